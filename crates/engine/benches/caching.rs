//! What prompt caching saves on a long agent loop, printed in one run
//! (`cargo bench -p verbatim-engine --bench caching`): the billed input of 100 model calls
//! under three strategies, against the emulator's prompt cache. Target: verbatim's planner
//! bills at most 25% of the uncached input, and less than one moving cache point.
//!
//! The loop: 20 user turns of a 4-step tool loop with thinking (the emulator's `steps-4`
//! behaviour: think and call a tool at each step, then answer): 100 model calls, 80 tool
//! runs. A system prompt of ~5,000 tokens and three tools of ~300 tokens each; every tool
//! result ~400 tokens. A context budget of 16,000 estimated tokens (a JSON byte count over
//! four, an overcount of the emulator's tokens) forces old turns out of the request from about
//! the sixth turn on.
//!
//! The strategies:
//! - no caching: no cache point, the budget leaving out the fewest turns that fit (at the
//!   start of each turn, with the same room for the turn's tool loop as below, so no strategy
//!   cuts inside a tool loop);
//! - one moving point: what peers do: a cache point at the end of the last message of each
//!   request (written into the body on its way out), the same budget. The service's lookback
//!   lets each call read what the call before wrote while the start of the request stays put;
//! - verbatim: the planner (`Caching::Auto`: tools and system, and the moving ends of the
//!   messages) and the chunked budget (`ContextPolicy::trimming`: turns left out a quarter of
//!   the budget at a time, so the cut, and the cached prefix, stays put for several turns);
//! - and, to show what each half does, the planner with the fewest-turns budget.
//!
//! Billed input is counted in input-token equivalents from each call's usage as the store
//! recorded it: uncached input at 1, cache reads at `CACHE_READ` (0.1) and 5-minute writes at
//! `CACHE_WRITE_5M` (1.25) (`verbatim_protocol::pricing`); the emulator counts tokens by its
//! own deterministic rule (`crates/emulator/src/tokens.rs`). Output is the same under every
//! strategy and is left out.

#![allow(clippy::print_stdout)]

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{Value, json};
use verbatim_emulator::{
    Behaviour, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig, Script,
};
use verbatim_engine::{ContextPolicy, Engine, Tool, ToolError, ToolOutput};
use verbatim_model::{Api, ThinkingConfig, ThinkingMode, Usage};
use verbatim_protocol::assemble::{AutoCaching, Caching};
use verbatim_protocol::pricing::{CACHE_READ, CACHE_WRITE_5M};
use verbatim_store::MemoryStore;
use verbatim_transport::{
    Auth, Call, EventStream, HttpConfig, HttpTransport, Reply, RetryConfig, Transport,
    TransportError,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const TURNS: usize = 20;
const BUDGET: u64 = 16_000;

/// A tool whose result is ~400 tokens.
struct Lookup(&'static str);

#[async_trait]
impl Tool for Lookup {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "Looks a record up in the catalogue and returns every field it holds, one per line, \
         with the field's name, its value, its unit and when it was last changed. Use it \
         before answering any question about a record; never guess a field. "
    }
    fn input_schema(&self) -> Value {
        let field = json!({"type": "string", "description": "A record's id, as the user gave it, \
            without spaces; ids are case-sensitive and start with a letter."});
        json!({"type": "object", "properties": {"id": field, "fields": {"type": "array",
            "items": {"type": "string"}, "description": "The fields wanted; all when left out."}},
            "required": ["id"]})
    }
    async fn call(&self, input: Value) -> Result<ToolOutput, ToolError> {
        let lines: Vec<String> =
            (0..40).map(|n| format!("field {n:02} of {input}: value {}", n * 37 % 101)).collect();
        Ok(ToolOutput::Text(lines.join("\n")))
    }
}

/// Peers' strategy: one cache point at the end of the last message of each request.
#[derive(Debug)]
struct MovingPoint(HttpTransport);

fn with_moving_point(call: Call) -> Call {
    let mut body: Value = serde_json::from_slice(&call.body).expect("a JSON body");
    if let Some(content) = body["messages"]
        .as_array_mut()
        .and_then(|m| m.last_mut())
        .and_then(|m| m["content"].as_array_mut())
    {
        content.push(json!({"cachePoint": {"type": "default"}}));
    }
    let mut out = Call::new(call.api, call.model_id, Bytes::from(body.to_string()));
    out.headers = call.headers;
    out
}

#[async_trait]
impl Transport for MovingPoint {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        self.0.send(with_moving_point(call)).await
    }
    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        self.0.stream(with_moving_point(call)).await
    }
}

fn http(emulator: &Emulator) -> HttpTransport {
    let auth = Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None);
    HttpTransport::new(
        HttpConfig::new("us-west-2", auth)
            .with_endpoint_url(emulator.url())
            .with_retry(RetryConfig::disabled()),
    )
    .expect("a transport")
}

/// The figures of one run.
struct Run {
    calls: usize,
    usage: Usage,
    /// Billed input in input-token equivalents.
    billed: f64,
}

async fn run(moving_point: bool, caching: Caching, context: ContextPolicy) -> Run {
    // A fresh emulator per strategy: each starts with an empty cache.
    let script = Script { behaviour: Behaviour::Steps(4), ..Script::default() };
    let emulator = Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() })
        .await
        .expect("the emulator starts");
    let transport: Arc<dyn Transport> = if moving_point {
        Arc::new(MovingPoint(http(&emulator)))
    } else {
        Arc::new(http(&emulator))
    };
    let system = "You are the catalogue's assistant. Answer from the records only, cite each \
                  field you use by its name, and say when a record lacks what was asked. "
        .repeat(120);
    let mut builder = Engine::builder()
        .store(Arc::new(MemoryStore::new()))
        .transport(transport)
        .model(MODEL)
        .api(Api::Converse)
        .system(system)
        .thinking(Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 1024 })))
        .configure(|d| {
            d.caching = caching;
            d.context = Some(context);
            d.streaming = false;
        });
    for name in ["lookup", "catalogue_search", "record_history"] {
        builder = builder.tool(Arc::new(Lookup(name)));
    }
    let engine = builder.build().expect("an engine");
    let session = engine.create().await.expect("a session");
    for turn in 0..TURNS {
        let reply = session
            .send(format!("Task {turn}: look the records up and summarise what changed."))
            .await
            .expect("a turn");
        assert!(reply.complete, "turn {turn} ended early");
    }
    let history = session.load().await.expect("the session");
    let mut usage = Usage::default();
    let mut billed = 0.0;
    let mut calls = 0;
    for line in verbatim_engine::Ledger::of(&history, &Default::default()).lines {
        let n = |v: Option<u64>| v.unwrap_or(0) as f64;
        let u = &line.usage;
        billed += n(u.input_tokens)
            + n(u.cache_read_input_tokens) * CACHE_READ
            + n(u.cache_write_input_tokens) * CACHE_WRITE_5M;
        usage.add(u);
        calls += 1;
    }
    emulator.shutdown().await;
    Run { calls, usage, billed }
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    // Every strategy keeps the same room for a turn's tool loop, so none cuts inside one.
    let fewest = ContextPolicy { chunk_tokens: 0, ..ContextPolicy::trimming(BUDGET) };
    let chunked = ContextPolicy::trimming(BUDGET);
    let planner = Caching::Auto(AutoCaching::default());
    let runs = runtime.block_on(async {
        vec![
            ("no caching", run(false, Caching::Off, fewest).await),
            ("one moving point", run(true, Caching::Off, fewest).await),
            ("verbatim (planner, chunked budget)", run(false, planner, chunked).await),
            ("planner, fewest-turns budget", run(false, planner, fewest).await),
        ]
    });
    let uncached = runs[0].1.billed;
    println!(
        "{TURNS} turns of a 4-step tool loop with thinking, budget {BUDGET} estimated tokens, \
         model {MODEL}"
    );
    println!(
        "{:<36} {:>5} {:>10} {:>10} {:>10} {:>12} {:>8}",
        "strategy", "calls", "input", "read", "write", "billed input", "of none"
    );
    for (name, run) in &runs {
        let n = |v: Option<u64>| v.unwrap_or(0);
        println!(
            "{:<36} {:>5} {:>10} {:>10} {:>10} {:>12.0} {:>7.1}%",
            name,
            run.calls,
            n(run.usage.input_tokens),
            n(run.usage.cache_read_input_tokens),
            n(run.usage.cache_write_input_tokens),
            run.billed,
            100.0 * run.billed / uncached,
        );
    }
    let (moving, verbatim) = (runs[1].1.billed, runs[2].1.billed);
    let holds = verbatim <= 0.25 * uncached && verbatim < moving;
    println!(
        "target (verbatim <= 25% of none and < one moving point): {}",
        if holds { "met" } else { "NOT met" }
    );
}
