//! A local Bedrock Runtime that checks what it receives: offline tests and demos without AWS.
//!
//! [`Emulator::start`] binds `127.0.0.1:0` and serves `/model/{id}/converse`,
//! `/converse-stream`, `/invoke` and `/invoke-with-response-stream` with Bedrock's bodies,
//! headers and binary event-stream framing. Requests to them must be signed (SigV4, any
//! region) with the configured test credentials, or carry the configured API key as a bearer
//! token; anything else gets Bedrock's 403. It also serves the Messages API at
//! `POST /anthropic/v1/messages`, as both the runtime and the mantle hosts do: the model and
//! `stream` in the body, the `anthropic-version` and `anthropic-beta` headers, the API key as
//! a bearer token or `x-api-key` (never both) or SigV4 for service `bedrock-mantle` or
//! `bedrock`; the whole `message` or first-party server-sent events; refusals as Anthropic
//! error objects with the texts InvokeModel gives. Token counting is served at
//! `POST /model/{id}/count-tokens` and `POST /anthropic/v1/messages/count_tokens` (mantle's
//! route; the emulator serves it whatever the host). Other paths (`/anthropic/v1/models` too)
//! get what the service answers a path it does not route: HTTP 200 with
//! `UnknownOperationException`.
//!
//! Before the model answers, the request is judged the way Bedrock judges it: the body's shape
//! (unknown keys, required keys, unions with other than one member), the `anthropic_version`,
//! role order, empty messages and blank text, tool_use/tool_result pairing and unique ids, a
//! `toolConfig` whenever tool blocks are present, the rule that a continued assistant message
//! starts with thinking when thinking is on (and a final one holds none when it is off), the
//! signature on every thinking block replayed in the current turn, a model id that was not encoded as one path segment
//! (HTTP 200 with `UnknownOperationException`), and an empty model id or one over 2,048
//! characters (HTTP 400 `ValidationException`). Each refusal carries Bedrock's status,
//! `x-amzn-ErrorType` and text. These
//! checks are written here from the rules, not borrowed from `verbatim-protocol`, so the
//! emulator is an independent judge of what the assembler builds.
//!
//! The model behaves like Claude: a plain message gets a short text answer; with tools in the
//! request it thinks first (when thinking is on), calls the first tool with arguments that
//! satisfy its schema, and answers in text once the result arrives. Its thinking blocks are
//! signed with an HMAC over the thinking text, the model and the conversation before them, so
//! a replayed block verifies and an altered one does not.
//!
//! Input tokens are counted by one deterministic tokenizer (`tokens.rs`), shared by the
//! replies' usage and the counting routes. A prompt cache (`prompt_cache.rs`) keyed by the
//! prefix through each cache point, with TTLs on an injectable [`Clock`]
//! ([`EmulatorConfig::clock`]) and the minimum cacheable length of each model, makes usage
//! report cache reads and writes (`cacheReadInputTokens` / `cacheWriteInputTokens`,
//! `cache_read_input_tokens` / `cache_creation_input_tokens`); input, reads and writes always
//! add up to the request's count.
//!
//! What the model does can be chosen ([`Behaviour`]): by a model id named `emulator.NAME`
//! (`emulator.parallel`, `emulator.steps-5`, ...) or by a [`Script`] (JSON) that names a
//! behaviour per model id and faults to inject. Faults ([`Fault`]) are Bedrock's own:
//! throttling (429 with its texts), 500, 503, exception frames in the middle of a stream, a
//! connection cut mid-stream, a slow first byte; queued per request with
//! [`Emulator::inject`] or drawn at [`FaultRates`]. Streamed answers go out frame by frame,
//! at once or at a model's [`Pace`] (time to the first event and between events).
//!
//! A client has [`EmulatorConfig::header_read_timeout`] to send a request's headers (the
//! connection is closed past it) and [`EmulatorConfig::body_read_timeout`] to send its body
//! (HTTP 408 past it), so slow or half-open connections do not stay open.
//!
//! Defaults, for SDKs pointed at it by endpoint URL: access key id
//! [`DEFAULT_ACCESS_KEY_ID`], secret [`DEFAULT_SECRET_ACCESS_KEY`], API key
//! [`DEFAULT_API_KEY`].

mod attachments;
mod betas;
mod cache;
mod checks;
mod compaction;
mod connections;
mod constraints;
mod conversation;
mod count_tokens;
mod families;
mod faults;
mod messages;
mod model;
mod pace;
mod prompt_cache;
mod request_fields;
mod schema;
mod script;
mod server;
mod settings;
mod sigv4;
mod structured;
#[cfg(test)]
mod tests;
mod thinking_blocks;
mod tokens;
mod versions;
mod wire;

pub use faults::{Fault, FaultRates, FaultRatesError, StreamException};
pub use pace::Pace;
pub use prompt_cache::{Clock, LOOKBACK, ManualClock, SystemClock};
pub use script::{Behaviour, Script, ScriptError};

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// The access key id the emulator accepts unless configured otherwise.
pub const DEFAULT_ACCESS_KEY_ID: &str = "AKIAVERBATIMEMULATOR";
/// The secret access key the emulator accepts unless configured otherwise.
pub const DEFAULT_SECRET_ACCESS_KEY: &str = "verbatim-emulator-secret-access-key";
/// The Bedrock API key the emulator accepts unless configured otherwise.
pub const DEFAULT_API_KEY: &str = "verbatim-emulator-api-key";

/// How the emulator authenticates and signs.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// The access key id SigV4 requests must be signed with.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The API key accepted as `Authorization: Bearer` (and, on the Messages API, as
    /// `x-api-key`), if any.
    pub api_key: Option<String>,
    /// The key of the HMAC on thinking blocks. Keep it across restarts and stored
    /// conversations keep verifying.
    pub signing_secret: Vec<u8>,
    /// The model's behaviour and the faults to inject.
    pub script: Script,
    /// How long a client may take to send a request's line and headers, from the moment
    /// the connection waits for them (also while it is idle between requests); past it the
    /// connection is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's whole body once its headers are in;
    /// past it the answer is HTTP 408 and the connection is closed. Default 30 s.
    pub body_read_timeout: Duration,
    /// The prompt cache's clock: entries expire by it. Default [`SystemClock`]; a test gives
    /// a [`ManualClock`] to move time on.
    pub clock: Arc<dyn Clock>,
}

/// The default [`EmulatorConfig::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`EmulatorConfig::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        EmulatorConfig {
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY.to_owned(),
            api_key: Some(DEFAULT_API_KEY.to_owned()),
            signing_secret: b"verbatim-emulator-thinking-signatures".to_vec(),
            script: Script::default(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            clock: Arc::new(SystemClock::default()),
        }
    }
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("signing_secret", &"[redacted]")
            .field("script", &self.script)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("clock", &self.clock)
            .finish()
    }
}

/// A request the emulator received (after authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The path as it arrived, still percent-encoded.
    pub path: String,
    /// The model id, decoded (on the Messages API, the body's `model`; empty when it has none).
    pub model_id: String,
    /// `converse`, `converse-stream`, `invoke`, `invoke-with-response-stream`, `messages`
    /// for the Messages API, streamed or not, or `count-tokens` for either counting route.
    pub operation: String,
    /// The body as it arrived.
    pub body: Vec<u8>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The fault injected into the answer, if any.
    pub fault: Option<Fault>,
}

/// A running emulator; dropping it stops it.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<server::State>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts on `127.0.0.1` at a port the system picks.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        Emulator::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr`. Refuses (`InvalidInput`) a script whose fault rates are outside
    /// 0 to 1 or add up to more than 1, and a zero read timeout.
    pub async fn bind(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let invalid =
            |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
        config.script.fault_rates.check().map_err(|e| invalid(e.to_string()))?;
        if config.header_read_timeout.is_zero() || config.body_read_timeout.is_zero() {
            return Err(invalid("the emulator's read timeouts must be above zero".to_owned()));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let faults =
            faults::Faults::new(config.script.faults.clone(), config.script.fault_rates.clone());
        let header_read_timeout = config.header_read_timeout;
        let pace = config.script.pace;
        let state = Arc::new(server::State {
            config,
            received: Mutex::new(Vec::new()),
            faults: Mutex::new(faults),
            pace: Mutex::new(pace),
            requests: AtomicU64::new(0),
            prompt_cache: prompt_cache::PromptCache::default(),
        });
        let (stop, stopped) = oneshot::channel();
        let app = server::router(state.clone());
        let task = tokio::spawn(connections::serve(listener, app, header_read_timeout, stopped));
        Ok(Emulator { addr, state, stop: Some(stop), task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its endpoint URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a fault for the next request that has none queued before it.
    pub fn inject(&self, fault: Fault) {
        self.state.faults.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }

    /// Sets the model's pace from the next answer on (it starts as the script's `pace`).
    pub fn set_pace(&self, pace: Pace) {
        *self.state.pace.lock().unwrap_or_else(|e| e.into_inner()) = pace;
    }

    /// The requests received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops serving and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
