//! Tests of the codecs and stream decoders: recorded traffic, the project's own fixture files, malformed input and
//! random conversations.

mod assembler;
mod cross_dialect;
mod decode_errors;
mod eventstream;
mod fixture_files;
mod json_input;
mod pairing;
mod real_fixtures;
mod repair_props;
mod round_trip_props;
mod rule_cases;
mod sse;
mod sse_fold;
mod stream;
mod support;
