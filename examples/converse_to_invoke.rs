//! Converts a Converse request body into the equivalent InvokeModel (Anthropic Messages) body,
//! or says exactly where and why it cannot.
//!
//! ```sh
//! cargo run --example converse_to_invoke -- request.json
//! ```

use std::process::ExitCode;

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: converse_to_invoke <converse-request.json>");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("{path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let request = match verbatim::converse::decode_request(&bytes) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("{path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match verbatim::anthropic::encode_request(&request) {
        Ok(body) => {
            println!("{}", serde_json::to_string_pretty(&body).expect("JSON values serialize"));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{path}: {error}");
            ExitCode::FAILURE
        }
    }
}
