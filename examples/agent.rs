//! A tool-using agent with thinking: two typed tools, replies streamed as they come, the tool
//! loop run to its end. Against the built-in emulator (see `chat.rs` for Bedrock).
//!
//! ```sh
//! cargo run --example agent
//! ```

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use verbatim::{
    Auth, Engine, Event, FnTool, HttpConfig, HttpTransport, SledStore, ThinkingConfig,
    ThinkingMode, ToolError,
};
use verbatim_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};

#[derive(Deserialize)]
struct City {
    city: String,
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let config = HttpConfig::new("us-west-2", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(emulator.url());
    let weather = FnTool::new(
        "get_weather",
        "The forecast for a city",
        json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}),
        |input: City| async move { Ok::<_, ToolError>(format!("{}: sunny, 24 °C", input.city)) },
    );
    let dir = tempfile::tempdir()?;
    let engine = Engine::builder()
        .store(Arc::new(SledStore::open(dir.path())?))
        .transport(Arc::new(HttpTransport::new(config)?))
        .model("us.anthropic.claude-sonnet-4-20250514-v1:0")
        .thinking(Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 2048 })))
        .tool(weather.shared())
        .build()?;
    let session = engine.create().await?;
    // Thinking and text arrive in pieces: each is printed as it comes, on a line of its own
    // kind.
    let mut thinking = false;
    let reply = session
        .send_with("What is the weather in Lyon?", |event| match event {
            Event::Thinking(text) => {
                if !thinking {
                    print!("(thinking) ");
                    thinking = true;
                }
                print!("{text}");
            }
            Event::Text(text) => {
                if thinking {
                    println!();
                    thinking = false;
                }
                print!("{text}");
            }
            Event::ToolCall { name, input, .. } => println!("\n-> {name} {input}"),
            Event::ToolResult { name, is_error, .. } => {
                println!("<- {name}: {}", if is_error { "error" } else { "ok" });
            }
            Event::Step { step, stop_reason, .. } => {
                thinking = false;
                let reason = stop_reason.as_ref().map_or("unknown", |r| r.as_str());
                println!("\n[model call {step}: {reason}]");
            }
        })
        .await?;
    println!("done in {} model calls; usage: {}", reply.steps, reply.usage);
    Ok(())
}
