//! The integration-test binary: one module per concern.

mod agreement;
mod anthropic_sdk;
mod chat_cli;
mod cli;
mod emulator;
mod engine;
mod faults;
mod hostile_input;
mod input_checks;
#[cfg(feature = "postgres")]
mod lease;
mod numbers;
#[cfg(feature = "postgres")]
mod postgres;
mod proxy;
mod proxy_wire;
mod python_sdk;
mod readme;
mod salvage;
mod secrets;
mod sessions_cli;
mod sessions_import;
mod tidy;
mod tool_loop;
