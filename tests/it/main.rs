//! The integration-test binary: one module per concern.

mod cli;
mod emulator;
mod python_sdk;
mod tidy;
mod tool_loop;
