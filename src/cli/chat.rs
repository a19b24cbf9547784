//! `verbatim chat`: an interactive chat with streamed replies, on Bedrock when credentials or
//! an API key are configured, otherwise on the built-in emulator (saying so).

use std::process::ExitCode;
use std::sync::Arc;

use verbatim_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};
use verbatim_engine::{Engine, EngineError, Reply, Session};
use verbatim_model::{Api, Caching, ContentBlock, Role, SessionId, ThinkingConfig, ThinkingMode};
use verbatim_store::SessionStore;
use verbatim_transport::{Auth, HttpConfig, HttpTransport, Secret, Transport, TransportError};

use attach::Attachments;
use caching::CachingArg;
pub(crate) use caching::caching_text;
use commands::command_line;
use endpoint::{HostArg, talking_to, with_host};

use super::render::{Printer, cost_line, usage_line};
use super::sessions::transcript;
use super::{ApiArg, StoreArgs};
use verbatim_protocol::pricing::PriceTable;

/// The model a new chat talks to unless told otherwise.
const DEFAULT_MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

/// Says a line about the chat itself: on standard output, or on standard error when standard
/// output carries JSON.
macro_rules! inform {
    ($json:expr, $($arg:tt)*) => {{
        if $json {
            eprintln!($($arg)*);
        } else {
            say!($($arg)*);
        }
    }};
}

/// Turns in a row that the store may fail before the chat stops and asks to be reopened.
const STORE_FAILURES: u32 = 3;

/// Arguments of `verbatim chat`.
#[derive(Debug, clap::Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Continue this session instead of starting one.
    #[arg(long)]
    session: Option<String>,
    /// The model id, inference-profile id or ARN (for a new session, or to switch).
    #[arg(long, value_parser = super::model_id_arg)]
    model: Option<String>,
    /// Thinking: `off`, a budget in tokens, or `adaptive`.
    #[arg(long)]
    thinking: Option<String>,
    /// The API to call.
    #[arg(long, value_enum, default_value_t = ApiArg::Converse)]
    api: ApiArg,
    /// With `--api messages`: the host that serves it, `runtime`
    /// (bedrock-runtime.{region}.amazonaws.com) or `mantle` (bedrock-mantle.{region}.api.aws).
    /// AWS_ENDPOINT_URL_BEDROCK_RUNTIME and AWS_ENDPOINT_URL_BEDROCK_MANTLE override either.
    #[arg(long, value_enum, default_value_t = HostArg::Runtime, value_name = "HOST")]
    host: HostArg,
    /// Use the built-in emulator even when AWS credentials are configured.
    #[arg(long)]
    emulator: bool,
    /// Show each model call's end (`[step N] stop reason: ...`) as the turn runs.
    #[arg(long, short)]
    verbose: bool,
    /// Send this one message and end (for scripts), instead of reading messages from the
    /// input.
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
    /// With `--message`: print one JSON object (the session, the reply's text, stop reason,
    /// steps, usage and cost) instead of the streamed reply; what the chat says of itself goes
    /// to standard error.
    #[arg(long, requires = "message")]
    json: bool,
    /// Talk to an emulator already running at this URL (as `verbatim emulator` prints it)
    /// instead of starting one.
    #[arg(long, value_name = "URL")]
    emulator_url: Option<String>,
    /// The API key of the emulator (the one at `--emulator-url`, or the built-in one), as
    /// given to `verbatim emulator --api-key`; default: the emulator's default key. Never
    /// printed. Bedrock's own key is read from AWS_BEARER_TOKEN_BEDROCK, not from here.
    #[arg(long, env = "VERBATIM_EMULATOR_API_KEY", hide_env_values = true, value_name = "KEY", value_parser = super::secret_arg)]
    api_key: Option<Secret>,
    /// How the requests get their prompt-cache points: `auto` plans them (tools, system and
    /// the conversation's moving end, within Bedrock's limits), `auto-1h` as `auto` with a
    /// one-hour TTL on tools and system, `manual` sends only those the history holds, `off`
    /// none. Recorded with the session when given; a session without one uses `auto`.
    #[arg(long, value_enum, value_name = "MODE")]
    caching: Option<CachingArg>,
    /// How long a message waits for a turn another instance runs on the same session (a
    /// shared store) before the chat says the session is busy; seconds, fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = seconds_arg)]
    lease_wait: std::time::Duration,
    /// How long a turn's lease on its session lasts unless renewed (it is renewed while the
    /// turn runs); another instance takes the session over after a crashed chat's lease runs
    /// out. Seconds, fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds_arg)]
    lease_ttl: std::time::Duration,
}

/// A duration in seconds (`5`, `0.5`).
fn seconds_arg(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds"))
}

pub(crate) fn chat(args: &ChatArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("verbatim chat: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Failed(error)) => {
            eprintln!("verbatim chat: {error}");
            ExitCode::FAILURE
        }
        Err(Stop::Unusable(error)) => {
            eprintln!("verbatim chat: {error}");
            ExitCode::from(2)
        }
    }
}

/// Why the chat stopped.
#[derive(Debug)]
enum Stop {
    /// A turn, the store or the transport failed (exit status 1).
    Failed(String),
    /// The arguments cannot be used (exit status 2); nothing was stored.
    Unusable(String),
}

impl From<String> for Stop {
    fn from(error: String) -> Stop {
        Stop::Failed(error)
    }
}

/// The line the chat prints for a thinking setting on `model`: what is sent and, when that is
/// not what was asked, why (from the model's capability row and the budget rules); an error
/// when the setting cannot be sent as meant (a budget under the minimum or not below
/// `max_tokens`).
/// The line's flag is true when what is sent differs from the setting.
fn thinking_line(
    model: &str,
    api: Api,
    asked: Option<&ThinkingConfig>,
) -> Result<(String, bool), String> {
    let named = thinking::describe(asked);
    let max_tokens = verbatim_engine::Defaults::default().max_tokens;
    match thinking::outcome(model, api, max_tokens, asked) {
        thinking::Outcome::AsAsked => Ok((format!("thinking: {named}"), false)),
        thinking::Outcome::Changed { sent, why } => Ok((
            format!(
                "thinking: {named} asked, but {} is sent: {why}",
                thinking::describe(sent.as_ref())
            ),
            true,
        )),
        thinking::Outcome::Mapped(sent) => Ok((
            format!("thinking: {named} asked; {model} takes its own setting, so {sent} is sent"),
            true,
        )),
        thinking::Outcome::Refused(why) => {
            Err(format!("thinking {named} cannot be sent to {model}: {why}"))
        }
    }
}

/// Parses `off`, a budget, or `adaptive`.
pub(crate) fn parse_thinking(value: &str) -> Result<Option<ThinkingConfig>, String> {
    match value {
        "off" => Ok(None),
        "adaptive" => Ok(Some(ThinkingConfig::new(ThinkingMode::Adaptive { effort: None }))),
        budget => budget
            .parse::<u32>()
            .map(|budget_tokens| Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens })))
            .map_err(|_| {
                format!("thinking must be off, a budget in tokens or adaptive, not {budget:?}")
            }),
    }
}

/// Whether an API key or AWS credentials are configured where the AWS SDKs look.
fn aws_configured() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("AWS_BEARER_TOKEN_BEDROCK") || set("AWS_ACCESS_KEY_ID") || set("AWS_PROFILE") {
        return true;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = |variable: &str, default: &str| {
        std::env::var_os(variable)
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
            .is_some_and(|path| path.is_file())
    };
    file("AWS_SHARED_CREDENTIALS_FILE", "credentials") || file("AWS_CONFIG_FILE", "config")
}

async fn run(args: &ChatArgs) -> Result<(), Stop> {
    let thinking =
        args.thinking.as_deref().map(parse_thinking).transpose().map_err(Stop::Unusable)?;
    let api = Api::from(args.api);
    if matches!(args.host, HostArg::Mantle) && api != Api::Messages {
        return Err(Stop::Unusable("--host mantle serves only --api messages".into()));
    }
    if args.session.is_none()
        && let Some(asked) = &thinking
    {
        let model = args.model.as_deref().unwrap_or(DEFAULT_MODEL);
        thinking_line(model, api, asked.as_ref())
            .map_err(|e| Stop::Unusable(format!("--thinking: {e}")))?;
    }
    // A session to continue is looked for in an existing store: a mistyped --data is said,
    // not made into an empty store.
    let store = match args.session {
        Some(_) => args.store.open_existing().await?,
        None => args.store.open().await?,
    };
    let mut _emulator = None;
    let key = args.api_key.clone().unwrap_or_else(|| Secret::new(DEFAULT_API_KEY));
    let peer;
    let transport: Arc<dyn Transport> = if let Some(url) = &args.emulator_url {
        inform!(args.json, "Talking to the emulator at {url}.");
        peer = Peer::Emulator;
        let config = HttpConfig::new("us-west-2", Auth::api_key(key)).with_endpoint_url(url);
        let config = with_host(config, args.host, Some(url));
        Arc::new(HttpTransport::new(config).map_err(|e| e.to_string())?)
    } else if args.emulator || !aws_configured() {
        let config =
            EmulatorConfig { api_key: Some(key.expose().to_owned()), ..EmulatorConfig::default() };
        let emulator =
            Emulator::start(config).await.map_err(|e| format!("cannot start the emulator: {e}"))?;
        inform!(
            args.json,
            "No AWS credentials or Bedrock API key are configured: talking to the built-in emulator at {}.",
            emulator.url()
        );
        peer = Peer::Emulator;
        let config =
            HttpConfig::new("us-west-2", Auth::api_key(key)).with_endpoint_url(emulator.url());
        let config = with_host(config, args.host, Some(&emulator.url()));
        _emulator = Some(emulator);
        Arc::new(HttpTransport::new(config).map_err(|e| e.to_string())?)
    } else {
        let config = HttpConfig::from_env().await.map_err(|e| e.to_string())?;
        let config = with_host(config, args.host, None);
        inform!(args.json, "{}", talking_to(&config, api));
        if args.api_key.is_some() {
            inform!(
                args.json,
                "(the emulator's API key, --api-key or VERBATIM_EMULATOR_API_KEY, is not used with Bedrock)"
            );
        }
        peer = Peer::Bedrock;
        Arc::new(HttpTransport::new(config).map_err(|e| e.to_string())?)
    };
    let mut builder = Engine::builder()
        .store(store.clone())
        .transport(transport)
        .api(args.api.into())
        .model(args.model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_owned()))
        .configure(|defaults| {
            defaults.lease_wait = args.lease_wait;
            defaults.lease_ttl = args.lease_ttl;
            defaults.caching = Caching::from(CachingArg::Auto);
        });
    if let Some(thinking) = &thinking {
        builder = builder.thinking(thinking.clone());
    }
    let engine = builder.build().map_err(|e| e.to_string())?;
    let session = match &args.session {
        Some(id) => {
            let id = SessionId::parse(id).map_err(|e| format!("--session {id}: {e}"))?;
            let session = engine.open(id).await.map_err(|e| e.to_string())?;
            if let Some(asked) = &thinking {
                let stored = session.load().await.map_err(|e| e.to_string())?.config().model;
                let model = args.model.as_deref().unwrap_or(&stored);
                thinking_line(model, api, asked.as_ref())
                    .map_err(|e| Stop::Unusable(format!("--thinking: {e}")))?;
            }
            if let Some(model) = &args.model {
                session.set_model(model).await.map_err(|e| e.to_string())?;
            }
            if let Some(thinking) = thinking.clone() {
                session.set_thinking(thinking).await.map_err(|e| e.to_string())?;
            }
            if let Some(caching) = args.caching {
                session.set_caching(caching.into()).await.map_err(|e| e.to_string())?;
            }
            Some(session)
        }
        None => None,
    };
    let chat = Chat {
        peer,
        api,
        store_option: args.store.option(),
        verbose: args.verbose,
        model: args.model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
    };
    match &session {
        Some(session) => {
            inform!(
                args.json,
                "Session {} (continue it later with --session {}).",
                session.id(),
                session.id()
            );
            if args.message.is_none() {
                inform!(args.json, "Type a message; /help lists the commands.");
            }
            say_thinking(session, &chat).await;
        }
        None => {
            if args.message.is_none() {
                inform!(args.json, "A new session starts with your first message.");
                inform!(args.json, "Type a message; /help lists the commands.");
            }
            let model = args.model.as_deref().unwrap_or(DEFAULT_MODEL);
            if let Ok((line, true)) = thinking_line(model, api, thinking.flatten().as_ref()) {
                inform!(args.json, "{line}");
            }
        }
    }
    let current = Current {
        engine: &engine,
        session,
        json: args.json,
        attached: Attachments::default(),
        caching: args.caching.map(Caching::from),
    };
    match &args.message {
        Some(message) if args.json => Ok(one_shot_json(current, message).await?),
        Some(message) => {
            let lines = std::iter::once(Ok(message.clone()));
            Ok(converse(current, &*store, &chat, lines).await?)
        }
        None => Ok(converse(current, &*store, &chat, prompt::input_lines()).await?),
    }
}

/// The chat's session: the one continued, or a new one made when the first message (or the
/// first setting) needs it, so a chat left without typing stores nothing.
struct Current<'e> {
    engine: &'e Engine,
    session: Option<Session>,
    /// Standard output carries JSON: what the chat says of itself goes to standard error.
    json: bool,
    /// Files `/attach` read for the next message.
    attached: Attachments,
    /// The `--caching` asked for, recorded with a session made here.
    caching: Option<Caching>,
}

impl Current<'_> {
    /// The session, made now if there is none yet.
    async fn get(&mut self) -> Result<&Session, String> {
        if self.session.is_none() {
            let session = self.engine.create().await.map_err(|e| e.to_string())?;
            if let Some(caching) = self.caching {
                session.set_caching(caching).await.map_err(|e| e.to_string())?;
            }
            let id = session.id();
            inform!(self.json, "Session {id} (continue it later with --session {id}).");
            self.session = Some(session);
        }
        Ok(self.session.as_ref().expect("made above"))
    }
}

/// `--message TEXT --json`: one turn, answered as one JSON object on standard output.
async fn one_shot_json(mut current: Current<'_>, message: &str) -> Result<(), String> {
    let session = current.get().await?;
    let reply = session.send(message).await.map_err(|e| e.to_string())?;
    let ledger = session.ledger(&PriceTable::new()).await.map_err(|e| e.to_string())?;
    let priced = ledger.lines.last().and_then(|line| line.cost);
    let out = serde_json::json!({
        "session": session.id().to_string(),
        "text": reply.text(),
        "stop_reason": reply.stop_reason.as_ref().map(|r| r.as_str()),
        "steps": reply.steps,
        "complete": reply.complete,
        "usage": serde_json::to_value(&reply.usage).map_err(|e| e.to_string())?,
        "session_cost_usd": (ledger.unpriced == 0).then_some(ledger.cost),
        "last_call_cost_usd": priced,
    });
    say!("{out}");
    Ok(())
}

/// Says what the session's thinking setting sends on its model, when that is not the setting
/// itself (a mode the model lacks, or a stored budget it refuses).
async fn say_thinking(session: &Session, chat: &Chat) {
    let Ok(stored) = session.load().await else { return };
    let config = stored.config();
    match thinking_line(&config.model, chat.api, config.thinking.as_ref()) {
        Ok((line, true)) => say!("{line}"),
        Ok(_) => {}
        Err(error) => say!("warning: {error}; set another with /thinking"),
    }
}

/// What the chat's messages depend on besides the session.
#[derive(Debug)]
struct Chat {
    /// Who the chat talks to.
    peer: Peer,
    /// The API requests go to.
    api: Api,
    /// The store option of the commands the chat prints as hints ([`StoreArgs::option`]).
    store_option: String,
    /// Whether each model call's end is shown (`--verbose`).
    verbose: bool,
    /// The model a new session talks to.
    model: String,
}

/// Who the chat talks to, for what a refusal of its credentials means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// An emulator: a 403 means the API key is not the one it was started with.
    Emulator,
    /// Amazon Bedrock.
    Bedrock,
}

/// Reads `lines` (messages and `/commands`) until they end or `/quit`, then shows the usage;
/// an error when a turn failed (the chat goes on after most failures: the exit status tells a
/// script it did not all go through). A refused API key or a poisoned session stops the chat
/// at once: no later turn could succeed. After a turn the store failed, the session is read again through a new handle, so the
/// next turn sends only what the store holds; after [`STORE_FAILURES`] such turns in a row,
/// or when the session cannot be read again, the chat stops with an error that says to
/// reopen it.
async fn converse(
    mut current: Current<'_>,
    store: &dyn SessionStore,
    chat: &Chat,
    lines: impl Iterator<Item = std::io::Result<String>>,
) -> Result<(), String> {
    let engine = current.engine;
    let mut store_failures = 0;
    let mut failed_turns = 0;
    for line in lines {
        let line = line.map_err(|e| e.to_string())?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(command) = line.strip_prefix('/') {
            if !command_line(&mut current, store, chat, command).await {
                break;
            }
            continue;
        }
        let input = current.attached.message(line);
        let session = current.get().await?;
        let id = session.id();
        let ended = turn(session, chat, &input).await;
        if !matches!(ended, Ended::StoreFailed) {
            // The input, attachments and all, is stored: /retry sends it again if need be.
            current.attached.sent();
        }
        match ended {
            Ended::Done => {
                store_failures = 0;
                continue;
            }
            Ended::Failed => {
                store_failures = 0;
                failed_turns += 1;
                continue;
            }
            Ended::Stop(why) => return Err(why),
            Ended::StoreFailed => {}
        }
        failed_turns += 1;
        store_failures += 1;
        let reopen = format!(
            "reopen the session once the store works again: verbatim chat --session {id}{}",
            chat.store_option
        );
        if store_failures >= STORE_FAILURES {
            return Err(format!("the store failed {store_failures} turns in a row; {reopen}"));
        }
        let session = engine.open(id).await.map_err(|e| {
            format!("the session cannot be read again from the store ({e}); {reopen}")
        })?;
        let session = current.session.insert(session);
        let history = session.history().await.map_err(|e| {
            format!("the session cannot be read again from the store ({e}); {reopen}")
        })?;
        say!(
            "(session read again from the store: {} messages; the next turn sends only those and the new input)",
            history.len()
        );
    }
    match &current.session {
        Some(session) => {
            let ledger = session.ledger(&PriceTable::new()).await.map_err(|e| e.to_string())?;
            say!("Usage: {}", usage_line(&ledger.usage));
            say!("Cost: {}", cost_line(&ledger));
        }
        None => say!("Nothing was typed: no session was made."),
    }
    match failed_turns {
        0 => Ok(()),
        1 => Err("1 turn failed (its error is shown above)".into()),
        n => Err(format!("{n} turns failed (their errors are shown above)")),
    }
}

/// How a turn ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Answered (or answered in another instance's turn).
    Done,
    /// Failed; the chat may go on.
    Failed,
    /// The store failed: the session is read again before the next turn.
    StoreFailed,
    /// Failed in a way no later turn can get past: the chat stops with this error.
    Stop(String),
}

/// Runs one turn and reports it.
async fn turn(session: &Session, chat: &Chat, input: &[ContentBlock]) -> Ended {
    // Another instance may write to the same session (a shared PostgreSQL store). A turn
    // whose append finds the session moved on is taken up again on the reloaded session: sent
    // again when none of it was stored, otherwise resumed (which answers the input if the
    // other instance's turn has not), at most three times.
    let mut input_stored = false;
    for _ in 0..3 {
        let mut printer = Printer::showing_steps(chat.verbose);
        let result = if input_stored {
            match session.resume_with(|event| printer.event(event)).await {
                Ok(Some(reply)) => Ok(reply),
                Ok(None) => {
                    printer.finish();
                    answered_elsewhere(session).await;
                    return Ended::Done;
                }
                Err(error) => Err(error),
            }
        } else {
            session.send_with(input.to_vec(), |event| printer.event(event)).await
        };
        printer.finish();
        if result.is_err() && printer.printed() {
            say!(
                "(the reply shown above was cut off: it was not kept, and the model will not see it)"
            );
        }
        match result {
            Err(EngineError::Conflict { input_stored: stored, .. }) => {
                input_stored |= stored;
                say!("(this session changed in another instance: reloading)");
            }
            result => return report(session, chat, result),
        }
    }
    if input_stored {
        say!("error: the session kept changing in another instance; /show it, then go on");
    } else {
        say!(
            "error: the session kept changing in another instance: your message was not stored; send it again (Up brings it back)"
        );
    }
    Ended::Failed
}

/// After a conflict, when resuming found nothing to answer: the other instance's turn
/// answered this input too; shows its reply.
async fn answered_elsewhere(session: &Session) {
    match session.history().await {
        Ok(history) => {
            if let Some(reply) = history.iter().rev().find(|m| m.message.role == Role::Assistant) {
                say!("(answered in the other instance's turn:)");
                say!("{}", reply.message.text());
            }
        }
        Err(error) => say!("error: {error}"),
    }
}

/// Reports a turn's end.
fn report(session: &Session, chat: &Chat, result: Result<Reply, EngineError>) -> Ended {
    match result {
        Ok(reply) if !reply.complete => {
            say!(
                "(stopped after {} model calls with tool calls pending; send anything to go on)",
                reply.steps
            );
            Ended::Done
        }
        Ok(_) => Ended::Done,
        Err(EngineError::Poisoned { message_index, fork_at, message, .. }) => {
            say!("error: Bedrock refused this session's history twice: {message}");
            if let Some(index) = message_index {
                say!("the refused message is messages[{index}]");
            }
            say!(
                "continue from the last accepted turn with: verbatim sessions fork {} --at {fork_at}{}",
                session.id(),
                chat.store_option
            );
            Ended::Stop(format!(
                "session {} is poisoned: every turn on it would be refused",
                session.id()
            ))
        }
        Err(EngineError::NotStored { input, source }) => {
            let what = if input { "your input was" } else { "the tool results were" };
            say!(
                "error: the store failed ({source}): {what} not stored and the reply shown, if any, was not kept"
            );
            Ended::StoreFailed
        }
        Err(EngineError::Transport(TransportError::Api(refusal)))
            if chat.peer == Peer::Emulator && refusal.status == 403 =>
        {
            say!(
                "error: the emulator refused the API key ({refusal}): give the key it was started with, by --api-key KEY or VERBATIM_EMULATOR_API_KEY"
            );
            Ended::Stop("the emulator refused the API key".into())
        }
        Err(error @ EngineError::Busy { .. }) => {
            say!(
                "error: {error}: your message was not stored; send it again when that turn ends (Up brings it back)"
            );
            Ended::Failed
        }
        Err(error @ EngineError::Store(_)) => {
            say!(
                "error: the store failed ({error}): what it holds stays, the rest of the turn was not kept"
            );
            Ended::StoreFailed
        }
        Err(error) => {
            say!(
                "error: {error} (what was stored stays, your input included: /retry sends it again, /show shows the session)"
            );
            Ended::Failed
        }
    }
}

mod attach;
mod caching;
mod commands;
mod endpoint;
mod prompt;
#[cfg(test)]
mod tests;
mod thinking;
