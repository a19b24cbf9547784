//! Tests of the rules: the assembler, validation and repair on the rule case files, recorded
//! traffic and random conversations.
//!
//! The wire crate's test helpers (`support.rs`: codec helpers and `test_data`; `recordings.rs`:
//! the reader of recorded traffic; `strategies.rs`: random requests) are compiled in here too,
//! from their files, rather than copied: they name only items this crate re-exports at the
//! same paths. Part of `support.rs` goes unused on this side.

mod assembler;
mod body_reuse;
mod families;
mod json_input;
mod pairing;
mod real_fixtures;
#[path = "../../../wire/src/tests/recordings.rs"]
mod recordings;
mod repair_props;
mod replay;
mod rule_cases;
#[path = "../../../wire/src/tests/strategies.rs"]
mod strategies;
#[allow(dead_code)]
#[path = "../../../wire/src/tests/support.rs"]
mod support;
