//! Resuming after a restart: a tool loop is cut short (here by a step limit, as a crash or a
//! deploy would cut it), the engine and the store are dropped, and a new engine on the same
//! directory opens the session by id and finishes the loop. Completed tool calls are not run
//! again; the signed thinking is replayed byte for byte.
//!
//! ```sh
//! cargo run --example resume
//! ```

use std::sync::Arc;

use serde_json::{Value, json};
use verbatim::{
    Auth, Engine, FnTool, HttpConfig, HttpTransport, SledStore, ThinkingConfig, ThinkingMode,
    ToolError,
};
use verbatim_emulator::{Behaviour, DEFAULT_API_KEY, Emulator, EmulatorConfig, Script};

fn engine(
    dir: &std::path::Path,
    url: String,
    max_steps: u32,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let lookup = FnTool::new(
        "lookup",
        "Looks a word up",
        json!({"type": "object", "required": ["word"], "properties": {"word": {"type": "string"}}}),
        |input: Value| async move { Ok::<_, ToolError>(format!("{} means something", input["word"])) },
    )
    .idempotent();
    let config =
        HttpConfig::new("us-west-2", Auth::api_key(DEFAULT_API_KEY)).with_endpoint_url(url);
    Ok(Engine::builder()
        .store(Arc::new(SledStore::open(dir)?))
        .transport(Arc::new(HttpTransport::new(config)?))
        .model("us.anthropic.claude-sonnet-4-20250514-v1:0")
        .thinking(Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 1024 })))
        .tool(lookup.shared())
        .configure(|defaults| defaults.max_steps = max_steps)
        .build()?)
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let script = Script { behaviour: Behaviour::Steps(4), ..Script::default() };
    let emulator = Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }).await?;
    let dir = tempfile::tempdir()?;

    let first = engine(dir.path(), emulator.url(), 2)?;
    let session = first.create().await?;
    let reply = session.send("Define four words").await?;
    println!("first run: {} model calls, complete: {}", reply.steps, reply.complete);
    let id = session.id();
    drop((session, first));

    let second = engine(dir.path(), emulator.url(), 16)?;
    let session = second.open(id).await?;
    let reply = session.resume().await?.expect("the loop was left open");
    println!("after the restart: {} more calls, complete: {}", reply.steps, reply.complete);
    println!("answer: {}", reply.text());
    println!("{} messages stored", session.history().await?.len());
    Ok(())
}
