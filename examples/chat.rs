//! A minimal chat: two turns in a session stored under a temporary directory. It talks to the
//! built-in emulator; to talk to Bedrock, build the transport from
//! `HttpConfig::from_env().await?` instead (an API key in `AWS_BEARER_TOKEN_BEDROCK`, or AWS
//! credentials and a region from the usual places).
//!
//! ```sh
//! cargo run --example chat
//! ```

use std::sync::Arc;

use verbatim::{Auth, Engine, HttpConfig, HttpTransport, SledStore};
use verbatim_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let config = HttpConfig::new("us-west-2", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(emulator.url());
    let dir = tempfile::tempdir()?;
    let engine = Engine::builder()
        .store(Arc::new(SledStore::open(dir.path())?))
        .transport(Arc::new(HttpTransport::new(config)?))
        .model("us.anthropic.claude-sonnet-4-20250514-v1:0")
        .build()?;
    let session = engine.create().await?;
    for question in ["Hello!", "What did I just say?"] {
        let reply = session.send(question).await?;
        println!("user: {question}\nassistant: {}", reply.text());
    }
    println!("usage: {}", session.usage().await?);
    Ok(())
}
