//! `verbatim demo`: the main job on the embedded default. An agent with two tools and
//! thinking runs a tool loop against the built-in emulator into a sled store; the process
//! "crashes" once the first tool result is stored; a fresh engine on the same store resumes
//! and finishes. Prints what happens, the transcript and the usage.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;
use verbatim_emulator::{
    Behaviour, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig, Script,
};
use verbatim_engine::{Engine, FnTool, Session, ToolError};
use verbatim_model::{SessionId, ThinkingConfig, ThinkingMode};
use verbatim_store::SessionStore;
use verbatim_transport::{
    Auth, Call, EventStream, HttpConfig, HttpTransport, Reply, RetryConfig, Secret, Transport,
    TransportError,
};

use super::StoreArgs;
use super::render::Printer;

/// The model the demo names (the emulator answers for it).
const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
/// The question the agent works on.
const QUESTION: &str = "I am in Lyon tomorrow. What is the weather, and what time is it there?";

/// Arguments of `verbatim demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Tool steps in the loop before the answer (the built-in emulator's script). The engine
    /// makes up to this many model calls plus one in a run, and at least its default limit.
    #[arg(long, default_value_t = 3)]
    steps: u32,
    /// Use a running emulator (`verbatim emulator`) instead of starting one. The demo signs
    /// with the emulator's default test credentials, or sends `--api-key` when given.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The emulator's API key (as given to `verbatim emulator --api-key`), sent instead of
    /// signing with the default test credentials. Never printed.
    #[arg(long, env = "VERBATIM_EMULATOR_API_KEY", hide_env_values = true, value_name = "KEY", value_parser = super::secret_arg)]
    api_key: Option<Secret>,
    /// Only the first half: start the session, run until the first tool result is stored,
    /// then hang until the process is killed (Ctrl-C will do). Resume it with `--resume`.
    #[arg(long, conflicts_with = "resume")]
    stop_after_first_result: bool,
    /// Only the second half: resume this session (left by `--stop-after-first-result`).
    #[arg(long)]
    resume: Option<String>,
}

pub(crate) fn demo(args: &DemoArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("verbatim demo: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("verbatim demo: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Deserialize)]
struct City {
    city: String,
}

#[derive(Deserialize)]
struct Zone {
    zone: String,
}

/// The agent: two tools and thinking, on `store` through `transport`, making up to
/// `max_steps` model calls in a run.
fn agent(
    store: Arc<dyn SessionStore>,
    transport: Arc<dyn Transport>,
    max_steps: u32,
) -> Result<Engine, verbatim_engine::EngineError> {
    let weather = FnTool::new(
        "get_weather",
        "The weather forecast for a city",
        json!({"type": "object", "required": ["city"],
               "properties": {"city": {"type": "string", "enum": ["Lyon", "Paris"]}}}),
        |input: City| async move {
            Ok::<_, ToolError>(format!("{}: sunny, 24 °C, light wind", input.city))
        },
    );
    let time = FnTool::new(
        "get_time",
        "The local time in a time zone",
        json!({"type": "object", "required": ["zone"],
               "properties": {"zone": {"type": "string", "enum": ["Europe/Paris"]}}}),
        |input: Zone| async move { Ok::<_, ToolError>(format!("{}: 09:30", input.zone)) },
    )
    .idempotent();
    Engine::builder()
        .store(store)
        .transport(transport)
        .model(MODEL)
        .region("us-west-2")
        .system("You are a travel assistant. Use the tools.")
        .thinking(Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 1024 })))
        .tool(weather.shared())
        .tool(time.shared())
        .configure(|defaults| defaults.max_steps = max_steps)
        .build()
}

/// The most model calls one run makes: the engine's default limit, raised so that `steps`
/// tool steps and the answer fit in one run.
fn max_steps(steps: u32) -> u32 {
    verbatim_engine::Defaults::default().max_steps.max(steps.saturating_add(1))
}

async fn run(args: &DemoArgs) -> Result<(), String> {
    // A session id that cannot be one is said before anything starts.
    let resume = match &args.resume {
        Some(id) => Some(SessionId::parse(id).map_err(|e| format!("--resume {id}: {e}"))?),
        None => None,
    };
    let script = Script { behaviour: Behaviour::Steps(args.steps), ..Script::default() };
    let mut _emulator = None;
    let url = match &args.endpoint_url {
        Some(url) => url.clone(),
        None => {
            let mut config = EmulatorConfig { script, ..EmulatorConfig::default() };
            if let Some(key) = &args.api_key {
                config.api_key = Some(key.expose().to_owned());
            }
            let emulator = Emulator::start(config)
                .await
                .map_err(|e| format!("cannot start the emulator: {e}"))?;
            let url = emulator.url();
            say!("The built-in emulator of Bedrock Runtime is at {url} (no AWS account is used).");
            _emulator = Some(emulator);
            url
        }
    };
    let auth = match &args.api_key {
        Some(key) => Auth::api_key(key.clone()),
        None => Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None),
    };
    let http = HttpTransport::new(
        HttpConfig::new("us-west-2", auth)
            .with_endpoint_url(url)
            .with_retry(RetryConfig::disabled()),
    )
    .map_err(|e| e.to_string())?;
    let http: Arc<dyn Transport> = Arc::new(http);
    let store = args.store.open().await?;
    say!("Sessions are stored {}.", args.store.describe());

    let max_steps = max_steps(args.steps);
    let id = match resume {
        Some(id) => id,
        None => {
            let id = first_half(store.clone(), http.clone(), max_steps).await?;
            if args.stop_after_first_result {
                say!(
                    "halted: session {id} stops here; kill this process, then run: verbatim demo --resume {id}{}",
                    args.store.option()
                );
                std::future::pending::<()>().await;
            }
            id
        }
    };
    second_half(store, http, id, max_steps).await
}

/// The first process: runs until the first tool result is stored, then stops dead.
async fn first_half(
    store: Arc<dyn SessionStore>,
    http: Arc<dyn Transport>,
    max_steps: u32,
) -> Result<SessionId, String> {
    let halted = Arc::new(Notify::new());
    let halting = Arc::new(Halting {
        inner: http,
        calls: AtomicUsize::new(0),
        halt_at: 2,
        halted: halted.clone(),
    });
    let engine = agent(store.clone(), halting, max_steps).map_err(|e| e.to_string())?;
    let session = engine.create().await.map_err(|e| e.to_string())?;
    let id = session.id();
    say!("Session {id}\n\nuser: {QUESTION}");
    let mut task = tokio::spawn(async move {
        let mut printer = Printer::new();
        let result = session.send_with(QUESTION, |event| printer.event(event)).await;
        printer.finish();
        result
    });
    tokio::select! {
        () = halted.notified() => {
            task.abort();
            let _ = task.await;
        }
        joined = &mut task => {
            return Err(match joined {
                Ok(Err(error)) => error.to_string(),
                _ => "the first run ended before its first tool result was stored".to_owned(),
            });
        }
    }
    let stored = store.load(id).await.map_err(|e| e.to_string())?;
    say!(
        "\n-- The process stops here, as a crash would: the first tool result is stored ({} records). --",
        stored.info.version
    );
    Ok(id)
}

/// The second process: a fresh engine on the same store resumes and finishes.
async fn second_half(
    store: Arc<dyn SessionStore>,
    http: Arc<dyn Transport>,
    id: SessionId,
    max_steps: u32,
) -> Result<(), String> {
    say!("-- A fresh engine opens session {id} in the same store and resumes. --\n");
    let engine = agent(store, http, max_steps).map_err(|e| e.to_string())?;
    let session = engine.open(id).await.map_err(|e| e.to_string())?;
    let mut printer = Printer::new();
    let reply = session.resume_with(|event| printer.event(event)).await;
    printer.finish();
    let reply = reply.map_err(|e| e.to_string())?.ok_or("nothing to resume")?;
    if reply.complete {
        say!("\n-- Finished after {} more model call(s). --\n", reply.steps);
    } else {
        say!(
            "\n-- Stopped at the step limit of {} model calls in a run: the last reply asks for tools that have not run, so the session is unfinished. Resume it with --resume {id} (--steps N allows N + 1 calls a run). --\n",
            reply.steps
        );
    }
    transcript(&session).await
}

async fn transcript(session: &Session) -> Result<(), String> {
    let stored = session.load().await.map_err(|e| e.to_string())?;
    say!("{}", super::sessions::transcript(&stored));
    Ok(())
}

/// A transport that stops answering at its `halt_at`-th call, as if the process died there.
#[derive(Debug)]
struct Halting {
    inner: Arc<dyn Transport>,
    calls: AtomicUsize,
    halt_at: usize,
    halted: Arc<Notify>,
}

impl Halting {
    async fn gate(&self) {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.halt_at {
            self.halted.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl Transport for Halting {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        self.gate().await;
        self.inner.send(call).await
    }

    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        self.gate().await;
        self.inner.stream(call).await
    }
}
