//! The `verbatim` command: check and repair Bedrock request bodies, explain Bedrock errors, run
//! the local emulator.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
