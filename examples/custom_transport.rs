//! Plugging in a custom transport: any type implementing `Transport` can carry the engine's
//! calls. This one wraps the HTTP transport and logs each call's operation, model and size
//! (a proxy, a recorder or a test double fits the same way).
//!
//! ```sh
//! cargo run --example custom_transport
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use verbatim::transport::{Call, EventStream, Reply, TransportError};
use verbatim::{Auth, Engine, HttpConfig, HttpTransport, MemoryStore, Transport};
use verbatim_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};

/// Logs every call, then hands it to the transport it wraps.
#[derive(Debug)]
struct Logged<T>(T);

#[allow(clippy::print_stdout)]
#[async_trait]
impl<T: Transport> Transport for Logged<T> {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        println!("send {} ({} bytes)", call.path(false), call.body.len());
        self.0.send(call).await
    }

    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        println!("stream {} ({} bytes)", call.path(true), call.body.len());
        self.0.stream(call).await
    }
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let config = HttpConfig::new("us-west-2", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(emulator.url());
    let engine = Engine::builder()
        .store(Arc::new(MemoryStore::new()))
        .transport(Arc::new(Logged(HttpTransport::new(config)?)))
        .model("us.anthropic.claude-sonnet-4-20250514-v1:0")
        .build()?;
    let reply = engine.create().await?.send("Hello through my own transport").await?;
    println!("{}", reply.text());
    Ok(())
}
