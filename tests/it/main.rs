//! The integration-test binary: one module per concern.

mod cli;
mod emulator;
mod tidy;
