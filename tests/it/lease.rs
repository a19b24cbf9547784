//! Exactly-once tools across processes: two engine processes on one shared session (PostgreSQL
//! and DynamoDB, the same cases on each), each
//! with a tool that records its runs in a file; the first is killed (SIGKILL) while its tool
//! runs. The second, sent its input meanwhile, waits for the first's lease, takes the session
//! over once it expired, settles the killed call as interrupted (its tool is not idempotent)
//! and runs its own turn. Every call is run at most once, every call that ran to its end ran
//! exactly once, and the history is whole. And two engines, each on a store of its own (two
//! pools), sending on one session at once: one turn waits for the other's lease, and each
//! tool call runs once.
//!
//! The test is its own child: run again with `VERBATIM_LEASE_CHILD` set (and `--exact` its
//! name), it plays one engine process. The PostgreSQL cases run when `TEST_DATABASE_URL` is set
//! (`.ci/run` sets it), the DynamoDB ones on a moto server they start (`.ci/run` installs
//! moto and sets `VERBATIM_REQUIRE_DYNAMODB=1`); each says it skipped otherwise.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use verbatim::model::Role;
use verbatim::store::{Entry, ToolCallState};
use verbatim::{
    Auth, ContentBlock, Engine, FnTool, HttpConfig, HttpTransport, SessionId, SessionStore,
    ToolError,
};
use verbatim_emulator::{
    Behaviour, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig, Script,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const CHILD: &str = "VERBATIM_LEASE_CHILD";

/// A shared store the cases run on, kept for as long as this is (a schema of its own, or a
/// moto server), and how a process opens it.
struct Shared {
    url: String,
    /// The PostgreSQL schema.
    schema: Option<String>,
    _kept: Box<dyn std::any::Any>,
}

impl Shared {
    /// A schema of its own on the `TEST_DATABASE_URL` server, or `None` (having said so).
    #[cfg(feature = "postgres")]
    fn postgres(test: &str, prefix: &str) -> Option<Shared> {
        let schema = crate::postgres::Schema::for_test(test, prefix)?;
        let url = schema.url.clone();
        Some(Shared { url, schema: Some(schema.name.clone()), _kept: Box::new(schema) })
    }

    /// A table on a moto server of its own, or `None` (having said so).
    #[cfg(feature = "dynamodb")]
    fn dynamodb(test: &str, prefix: &str) -> Option<Shared> {
        let moto = crate::moto::Moto::start(test)?;
        Some(Shared { url: moto.new_table_url(prefix), schema: None, _kept: Box::new(moto) })
    }

    async fn open(&self) -> Arc<dyn SessionStore> {
        open(&self.url, self.schema.clone(), 16).await
    }

    /// What a child process needs to open the store.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("LEASE_STORE", self.url.clone())];
        env.extend(self.schema.iter().map(|s| ("LEASE_SCHEMA", s.clone())));
        env
    }
}

/// The store `url` names (in `schema` on PostgreSQL), with a pool of `pool_size`; DynamoDB
/// with moto's dummy credentials.
async fn open(url: &str, schema: Option<String>, pool_size: usize) -> Arc<dyn SessionStore> {
    if url.starts_with("dynamodb://") {
        #[cfg(feature = "dynamodb")]
        {
            let options =
                verbatim::DynamoOptions::default().with_static_credentials("testing", "testing");
            return Arc::new(verbatim::DynamoStore::connect_with(url, options).await.unwrap());
        }
    }
    #[cfg(feature = "postgres")]
    {
        let options = verbatim::PostgresOptions { schema, pool_size, ..Default::default() };
        Arc::new(verbatim::PostgresStore::connect_with(url, options).await.unwrap())
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (schema, pool_size);
        panic!("no store for {url} in this build")
    }
}

#[derive(Deserialize)]
struct City {
    city: String,
}

/// Which engine process a child plays, told through its environment.
struct Part {
    name: &'static str,
    hang: bool,
}

/// The child: one engine process sending `input` on the session, its tool recording each
/// run's start and end in the runs file (and hanging in its first run when told to).
fn child() {
    let var = |name: &str| std::env::var(name).unwrap();
    let (name, runs) = (var("LEASE_NAME"), PathBuf::from(var("LEASE_RUNS")));
    let hang = var("LEASE_HANG") == "1";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = open(&var("LEASE_STORE"), std::env::var("LEASE_SCHEMA").ok(), 2).await;
        let auth = Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None);
        let transport =
            HttpTransport::new(HttpConfig::new("us-west-2", auth).with_endpoint_url(var("LEASE_EMULATOR")))
                .unwrap();
        let tool_name = name.clone();
        let hung = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tool = FnTool::new(
            "get_weather",
            "The forecast for a city",
            json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}),
            move |input: City| {
                let (runs, name, hung) = (runs.clone(), tool_name.clone(), hung.clone());
                async move {
                    record(&runs, &format!("start {name} {}", input.city));
                    if hang && !hung.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    record(&runs, &format!("end {name} {}", input.city));
                    Ok::<_, ToolError>(format!("{}: sunny", input.city))
                }
            },
        );
        let engine = Engine::builder()
            .store(store)
            .transport(Arc::new(transport))
            .model(MODEL)
            .tool(tool.shared())
            .lease_owner(format!("process {name}"))
            .configure(|d| {
                d.lease_ttl = Duration::from_secs(2);
                d.lease_wait = Duration::from_secs(30);
            })
            .build()
            .unwrap();
        let session = engine.open(SessionId::parse(&var("LEASE_SESSION")).unwrap()).await.unwrap();
        let reply = session.send(format!("Weather, asks {name}?")).await.unwrap();
        assert!(reply.complete);
    });
}

/// Appends a line to the runs file (one write, so lines of two processes never mix).
fn record(runs: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(runs).unwrap();
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

fn spawn(test: &str, child: &Part, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test, "--nocapture", "--test-threads", "1"]);
    command.env(CHILD, "1").env("LEASE_NAME", child.name);
    command.env("LEASE_HANG", if child.hang { "1" } else { "0" });
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap()
}

/// Waits until the runs file holds a line satisfying `found`.
fn wait_for_run(runs: &Path, what: &str, found: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(runs).unwrap_or_default();
        if text.lines().any(&found) {
            return;
        }
        assert!(Instant::now() < deadline, "never: {what}; runs: {text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(feature = "postgres")]
#[test]
fn a_process_killed_while_its_tool_runs_is_taken_over_and_no_call_runs_twice() {
    const TEST: &str =
        "lease::a_process_killed_while_its_tool_runs_is_taken_over_and_no_call_runs_twice";
    if std::env::var(CHILD).is_ok() {
        child();
        return;
    }
    if let Some(shared) = Shared::postgres(TEST, "verbatim_lease") {
        killed_while_its_tool_runs(TEST, &shared);
    }
}

#[cfg(feature = "dynamodb")]
#[test]
fn on_dynamodb_a_process_killed_while_its_tool_runs_is_taken_over_and_no_call_runs_twice() {
    const TEST: &str = "lease::on_dynamodb_a_process_killed_while_its_tool_runs_is_taken_over_and_no_call_runs_twice";
    if std::env::var(CHILD).is_ok() {
        child();
        return;
    }
    if let Some(shared) = Shared::dynamodb(TEST, "verbatim_lease") {
        killed_while_its_tool_runs(TEST, &shared);
    }
}

/// Test `test` on `shared` (see the module docs).
fn killed_while_its_tool_runs(test: &str, shared: &Shared) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let script = Script { behaviour: Behaviour::Steps(2), ..Script::default() };
    let emulator =
        runtime.block_on(Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }));
    let emulator = emulator.unwrap();
    let store = runtime.block_on(shared.open());
    let id = runtime.block_on(store.create(verbatim::store::NewSession::new(MODEL))).unwrap().id;
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut env = shared.env();
    env.extend([
        ("LEASE_EMULATOR", emulator.url()),
        ("LEASE_SESSION", id.to_string()),
        ("LEASE_RUNS", runs.to_str().unwrap().to_owned()),
    ]);

    // a runs its turn until its tool hangs; b is sent its input then, and meets a's lease.
    let mut a = spawn(test, &Part { name: "a", hang: true }, &env);
    wait_for_run(&runs, "a's tool started", |l| l.starts_with("start a"));
    let mut b = spawn(test, &Part { name: "b", hang: false }, &env);
    std::thread::sleep(Duration::from_millis(500));
    // a dies with its tool running: its lease expires (2 s) and b takes the session over.
    a.kill().unwrap();
    a.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = b.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "b never finished");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "b: {status}");

    let session = runtime.block_on(store.load(id)).unwrap();
    let text = std::fs::read_to_string(&runs).unwrap();
    let starts = text.lines().filter(|l| l.starts_with("start")).count();
    let ends = text.lines().filter(|l| l.starts_with("end")).count();
    assert_eq!(text.lines().filter(|l| l.starts_with("start a")).count(), 1, "{text}");
    assert_eq!(ends, starts - 1, "every run but the killed one ran to its end: {text}");
    // The lifecycle: each call started at most once (never run twice), every call settled
    // once, the killed one as interrupted.
    let mut states: HashMap<String, Vec<&ToolCallState>> = HashMap::new();
    for record in &session.records {
        if let Entry::ToolCall(event) = &record.entry {
            states.entry(event.tool_use_id.as_str().to_owned()).or_default().push(&event.state);
        }
    }
    let is_start = |s: &&&ToolCallState| matches!(s, ToolCallState::Started);
    let started: usize = states.values().map(|s| s.iter().filter(is_start).count()).sum();
    assert_eq!(started, starts, "one start recorded per run: {states:?}");
    for (call, steps) in &states {
        let starts = steps.iter().filter(is_start).count();
        let ends = steps
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    ToolCallState::Completed { .. }
                        | ToolCallState::Failed { .. }
                        | ToolCallState::Unknown
                )
            })
            .count();
        assert!(starts <= 1, "{call} ran {starts} times: {steps:?}");
        assert_eq!(ends, 1, "{call} settled once: {steps:?}");
    }
    let interrupted =
        states.values().filter(|s| s.iter().any(|s| matches!(s, ToolCallState::Unknown))).count();
    assert_eq!(interrupted, 1, "the killed call: {states:?}");
    // The history is whole: roles alternate, every call is answered once, b's input answered.
    let messages = session.messages();
    for pair in messages.windows(2) {
        assert_ne!(pair[0].message.role, pair[1].message.role, "{messages:#?}");
    }
    assert_eq!(messages.last().unwrap().message.role, Role::Assistant);
    let (mut calls, mut results) = (Vec::new(), Vec::new());
    for block in messages.iter().flat_map(|m| &m.message.content) {
        match block {
            ContentBlock::ToolUse(call) => calls.push(call.id.clone()),
            ContentBlock::ToolResult(result) => results.push(result.tool_use_id.clone()),
            _ => {}
        }
    }
    assert_eq!(calls, results, "every call answered once, in order");
    assert!(messages.iter().any(|m| m.message.text().contains("asks b")));
    runtime.block_on(emulator.shutdown());
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread")]
async fn two_engines_sending_at_once_on_postgres_take_turns_and_each_call_runs_once() {
    let test = "two_engines_sending_at_once_on_postgres_take_turns_and_each_call_runs_once";
    if let Some(shared) = Shared::postgres(test, "verbatim_lease_engines") {
        two_engines_sending_at_once(&shared).await;
    }
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread")]
async fn two_engines_sending_at_once_on_dynamodb_take_turns_and_each_call_runs_once() {
    let test = "two_engines_sending_at_once_on_dynamodb_take_turns_and_each_call_runs_once";
    if let Some(shared) = Shared::dynamodb(test, "verbatim_lease_engines") {
        two_engines_sending_at_once(&shared).await;
    }
}

/// Two engines, each on a store of its own, sending on one session at once.
async fn two_engines_sending_at_once(shared: &Shared) {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut engines = Vec::new();
    // Two stores, two pools or clients: two instances of an app on one shared store.
    for name in ["a", "b"] {
        let store = shared.open().await;
        let auth = Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None);
        let config = HttpConfig::new("us-west-2", auth).with_endpoint_url(emulator.url());
        let runs = runs.clone();
        let tool = FnTool::new(
            "get_weather",
            "The forecast for a city",
            json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}),
            move |input: City| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, ToolError>(format!("{}: sunny", input.city))
                }
            },
        );
        let engine = Engine::builder()
            .store(store)
            .transport(Arc::new(HttpTransport::new(config).unwrap()))
            .model(MODEL)
            .tool(tool.shared())
            .lease_owner(format!("instance {name}"))
            .build()
            .unwrap();
        engines.push(engine);
    }
    let a = engines[0].create().await.unwrap();
    let b = engines[1].open(a.id()).await.unwrap();
    let (ra, rb) = tokio::join!(a.send("Weather in Lyon?"), b.send("Weather in Oslo?"));
    assert!(ra.unwrap().complete && rb.unwrap().complete);
    let session = a.load().await.unwrap();
    let roles: Vec<Role> = session.messages().iter().map(|m| m.message.role).collect();
    use Role::{Assistant as A, User as U};
    assert_eq!(roles, [U, A, U, A, U, A, U, A], "two whole turns, one after the other");
    let started = session
        .records
        .iter()
        .filter(
            |r| matches!(&r.entry, Entry::ToolCall(e) if matches!(e.state, ToolCallState::Started)),
        )
        .count();
    assert_eq!(
        (runs.load(std::sync::atomic::Ordering::SeqCst), started),
        (2, 2),
        "each call ran once"
    );
    emulator.shutdown().await;
}
