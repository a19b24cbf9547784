//! The integration-test binary: one module per concern.

mod agreement;
mod anthropic_sdk;
mod chat_cli;
mod cli;
mod compaction;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod emulator;
mod engine;
mod faults;
mod hostile_input;
mod input_checks;
#[cfg(any(feature = "postgres", feature = "dynamodb"))]
mod lease;
#[cfg(feature = "dynamodb")]
#[path = "../../crates/store/tests/support/moto.rs"]
mod moto;
mod numbers;
#[cfg(feature = "postgres")]
mod postgres;
mod proxy;
mod proxy_record;
mod proxy_wire;
mod python_sdk;
mod readme;
mod salvage;
mod secrets;
mod sessions_cli;
mod sessions_import;
mod tidy;
mod tool_loop;
