//! The load and fault harness shared by `benches/load.rs` (full size, prints figures) and
//! `tests/it/faults.rs` (reduced size, in every test run): many sessions at once, each running
//! tool loops with thinking through one engine against the emulator, which draws faults at the
//! configured rates (throttling, 500, 503, exception frames mid-stream, cut connections, slow
//! first bytes). A turn that fails is resumed until it completes. Afterwards every history is
//! checked: records numbered without gaps, every tool call answered exactly once, no
//! duplicate ids, and each session accepted whole by a second emulator that checks signatures,
//! pairing and order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use verbatim::store::SessionStore;
use verbatim::transport::RetryConfig;
use verbatim::{
    Auth, ContentBlock, Engine, FnTool, HttpConfig, HttpTransport, Role, SessionId, ThinkingConfig,
    ThinkingMode, ToolError,
};
use verbatim_emulator::{Behaviour, DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultRates, Script};

/// A two-step tool loop with thinking at every step.
pub const STEPS_MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
/// Parallel tool calls in one message.
pub const PARALLEL_MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// What to run.
#[derive(Debug, Clone)]
pub struct Load {
    /// Sessions running at once.
    pub sessions: usize,
    /// Turns (user messages) per session.
    pub turns: usize,
    /// The share of requests that meet a fault (0.0 to 1.0), split evenly over the six kinds.
    pub fault_rate: f64,
    /// Seeds the faults.
    pub seed: u64,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Turns that completed (all of them, when the run passes).
    pub turns: usize,
    /// Errors the engine returned (each followed by a resume).
    pub errors: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Turn latency (a send and the resumes it needed), median.
    pub p50: Duration,
    /// Turn latency, 99th percentile.
    pub p99: Duration,
    /// Records in all sessions after the run.
    pub records: u64,
    /// Requests the faulty emulator received.
    pub requests: usize,
}

fn tools() -> Vec<Arc<dyn verbatim::Tool>> {
    let weather = FnTool::new(
        "get_weather",
        "The forecast for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        |_: serde_json::Value| async move { Ok::<_, ToolError>("sunny, 21 C".to_owned()) },
    )
    .idempotent();
    let clock = FnTool::new(
        "get_time",
        "The local time in a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        |_: serde_json::Value| async move { Ok::<_, ToolError>(json!({"time": "09:30"})) },
    );
    vec![weather.shared(), clock.shared()]
}

fn engine(store: Arc<dyn SessionStore>, url: String, streaming: bool) -> Engine {
    let config = HttpConfig::new("us-west-2", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(url)
        .with_retry(RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            ..RetryConfig::default()
        });
    let mut builder = Engine::builder()
        .store(store)
        .transport(Arc::new(HttpTransport::new(config).unwrap()))
        .model(STEPS_MODEL)
        .thinking(Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 1024 })))
        .configure(|d| d.streaming = streaming);
    for tool in tools() {
        builder = builder.tool(tool);
    }
    builder.build().unwrap()
}

fn script(rates: FaultRates) -> Script {
    let mut script =
        Script { behaviour: Behaviour::Steps(2), fault_rates: rates, ..Script::default() };
    script.models.insert(PARALLEL_MODEL.to_owned(), Behaviour::Parallel);
    script
}

/// Runs `load` on `store` and checks every history; panics on any lost, duplicated or
/// unpaired entry.
pub async fn run(store: Arc<dyn SessionStore>, load: &Load) -> Report {
    let each = load.fault_rate.clamp(0.0, 1.0) / 6.0;
    let rates = FaultRates {
        seed: load.seed,
        throttle: each,
        internal: each,
        unavailable: each,
        stream_exception: each,
        reset: each,
        slow: each,
        slow_millis: 50,
    };
    let config = EmulatorConfig { script: script(rates), ..EmulatorConfig::default() };
    let emulator = Emulator::start(config).await.unwrap();
    let streamed = engine(store.clone(), emulator.url(), true);
    let whole = engine(store.clone(), emulator.url(), false);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..load.sessions {
        let engine = if n % 2 == 0 { streamed.clone() } else { whole.clone() };
        let turns = load.turns;
        tasks.spawn(async move {
            let session = engine.create().await.unwrap();
            if n % 3 == 1 {
                session.set_model(PARALLEL_MODEL).await.unwrap();
            }
            let mut latencies = Vec::new();
            let mut errors = 0;
            for turn in 0..turns {
                let start = Instant::now();
                let mut outcome = session.send(format!("Session {n}, question {turn}")).await;
                let mut attempts = 0;
                loop {
                    match outcome {
                        Ok(reply) if reply.complete => break,
                        Ok(_) => {}
                        Err(_) => errors += 1,
                    }
                    attempts += 1;
                    assert!(attempts < 50, "session {n} turn {turn} never completed");
                    outcome = match session.resume().await {
                        Ok(None) => break,
                        Ok(Some(reply)) => Ok(reply),
                        Err(error) => Err(error),
                    };
                }
                latencies.push(start.elapsed());
            }
            (session.id(), latencies, errors)
        });
    }
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (id, times, errs) = done.unwrap();
        ids.push(id);
        latencies.extend(times);
        errors += errs;
    }
    let elapsed = started.elapsed();
    let requests = emulator.received().len();
    emulator.shutdown().await;

    let mut records = 0;
    for &id in &ids {
        records += check_history(&*store, id, load.turns).await;
    }
    accepted_whole(store, &ids).await;

    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Report {
        turns: latencies.len(),
        errors,
        elapsed,
        p50: at(0.5),
        p99: at(0.99),
        records,
        requests,
    }
}

/// Checks one stored history; returns its record count.
async fn check_history(store: &dyn SessionStore, id: SessionId, turns: usize) -> u64 {
    let session = store.load(id).await.unwrap();
    for (i, record) in session.records.iter().enumerate() {
        assert_eq!(record.seq, i as u64 + 1, "session {id}: a gap in the records");
    }
    let messages = session.messages();
    let mut asked = std::collections::HashMap::new();
    let mut answered = std::collections::HashMap::new();
    for message in &messages {
        for block in &message.message.content {
            match block {
                ContentBlock::ToolUse(call) => {
                    assert_eq!(message.message.role, Role::Assistant);
                    let before = asked.insert(call.id.as_str().to_owned(), ());
                    assert!(
                        before.is_none(),
                        "session {id}: tool_use id {} twice",
                        call.id.as_str()
                    );
                }
                ContentBlock::ToolResult(result) => {
                    *answered.entry(result.tool_use_id.as_str().to_owned()).or_insert(0) += 1;
                }
                _ => {}
            }
        }
    }
    for call in asked.keys() {
        assert_eq!(
            answered.get(call),
            Some(&1),
            "session {id}: {call} answered {:?} times",
            answered.get(call)
        );
    }
    assert_eq!(answered.len(), asked.len(), "session {id}: results without calls");
    let users = messages
        .iter()
        .filter(|m| {
            m.message.role == Role::User
                && m.message
                    .content
                    .iter()
                    .any(|b| matches!(b, ContentBlock::Text(t) if t.text.contains("question")))
        })
        .count();
    assert_eq!(users, turns, "session {id}: every question stored once");
    assert_eq!(
        messages.last().map(|m| m.message.role),
        Some(Role::Assistant),
        "session {id}: ends unanswered"
    );
    session.info.version
}

/// Every session continues one more turn on a second emulator without faults: it accepts the
/// whole history only if every signature verifies and every rule holds.
async fn accepted_whole(store: Arc<dyn SessionStore>, ids: &[SessionId]) {
    let emulator = Emulator::start(EmulatorConfig {
        script: script(FaultRates::default()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let engine = engine(store, emulator.url(), false);
    for &id in ids {
        let session = engine.open(id).await.unwrap();
        let reply = session
            .send("Anything else?")
            .await
            .unwrap_or_else(|e| panic!("session {id} refused: {e}"));
        assert!(reply.complete);
    }
    let refused = emulator.received().iter().filter(|r| r.status != 200).count();
    assert_eq!(refused, 0, "the checking emulator refused requests");
    emulator.shutdown().await;
}
