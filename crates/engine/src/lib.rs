//! Chat sessions and tool loops on Bedrock that resume after a crash: the store, the
//! assembler and the transport put to work.
//!
//! An [`Engine`] holds a [`SessionStore`], a [`Transport`], the registered [`Tool`]s and the
//! defaults (model, API, thinking). A [`Session`] is a handle on one stored session; it keeps
//! the session's log between turns and reads only the records appended since (another
//! writer's among them), or the whole session again after a rewind or a failed turn:
//! - [`Session::send`] assembles the request from the stored history and the user's message
//!   (repairing what can be repaired and recording each repair), calls the model (streamed
//!   or not) while the user's message (and any repair) is appended, and, only once that
//!   append succeeded, appends the assistant message with its provenance and usage in one
//!   atomic append; when it fails, the reply is dropped ([`EngineError::NotStored`] says the
//!   input was not stored, or a conflict that nothing was) and the handle reads the session
//!   from the store again on its next turn. After an append failed (other than by a
//!   conflict), requests go out only once their input is stored, until an append succeeds
//!   again, so a store that keeps failing costs no model call. When the model asks for tools, the engine runs them (concurrently,
//!   each with a timeout), sends all results in one user message and loops until the model
//!   stops or the step limit is reached.
//! - Each tool call's lifecycle is in the log before and after it runs (requested with the
//!   assistant message, started, completed or failed), so after a crash
//!   [`Session::resume`] settles the calls of the unfinished loop: completed calls are not
//!   run again, calls that never started are run, and a call that started but never
//!   finished is run again only when its tool is idempotent; otherwise the model is told it
//!   was interrupted. Sending new input to a session with an unfinished loop settles it the
//!   same way first, and puts the results before the new input in one user message.
//! - A reply that breaks off (a cut stream, an exception frame) is not stored: the session
//!   still ends with the user's message, and the next request is the one before plus
//!   whatever comes next.
//! - A history Bedrock refuses twice with the same validation error is reported as
//!   [`EngineError::Poisoned`] with the message index, the rule and the record to fork at;
//!   nothing is stripped silently.
//! - Thinking and model changes ([`Session::set_thinking`], [`Session::set_model`]) are
//!   appended as configuration records (appended again at the new version when another
//!   writer got in first, up to [`CONFIGURE_ATTEMPTS`] times); the assembler keeps a tool loop's thinking setting
//!   until the next user turn and leaves out thinking another model cannot read.
//! - A [`ContextPolicy`] leaves whole old turns out of requests that would exceed a budget,
//!   or fails; the stored history is never rewritten.
//!
//! - A turn holds its session's lease in the store (see [`Defaults::lease_ttl`]), so of two
//!   engines (in one process or many, on a shared store) only one runs a turn on a session
//!   at a time; the other waits up to [`Defaults::lease_wait`], then gets
//!   [`EngineError::Busy`]. Every append of the turn carries the lease's fencing token: an
//!   engine that stalled past its lease's expiry, and was taken over, stores nothing more
//!   ([`EngineError::LeaseLost`]).
//!   If its process dies, the lease expires and the next instance settles the unfinished
//!   tool loop as a crash leaves it (a call that was running is run again only when its
//!   tool is idempotent).
//!
//! Every turn runs in a `tracing` span naming the session and step; no secret is recorded.

mod call;
mod compaction;
mod context;
mod error;
mod event;
mod fixes;
mod lease;
mod ledger;
mod log;
mod session;
mod settle;
mod tool;
mod turn;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use context::{ContextPolicy, estimate_tokens};
pub use error::EngineError;
pub use event::{Event, Reply, Settled};
pub use ledger::{Ledger, LedgerLine};
pub use session::{CONFIGURE_ATTEMPTS, Input, Session};
pub use settle::INTERRUPTED;
pub use tool::{EMPTY_OUTPUT, FnTool, Tool, ToolError, ToolOutput};

use verbatim_model::{Api, SessionId, SystemPrompt, ThinkingConfig};
use verbatim_protocol::assemble::{Caching, Policy};
use verbatim_store::{NewSession, SessionStore, StoreError};
use verbatim_transport::Transport;

/// Settings every session of an engine shares, unless the session records its own.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The model new sessions talk to.
    pub model: Option<String>,
    /// The API requests go to.
    pub api: Api,
    /// The thinking setting of new sessions.
    pub thinking: Option<ThinkingConfig>,
    /// The system prompt of new sessions.
    pub system: Option<SystemPrompt>,
    /// The region (or inference profile) recorded in provenance.
    pub region: Option<String>,
    /// `maxTokens` / `max_tokens` of every request.
    pub max_tokens: u32,
    /// Stream replies (ConverseStream / InvokeModelWithResponseStream) or take them whole.
    pub streaming: bool,
    /// The most model calls one `send` or `resume` makes.
    pub max_steps: u32,
    /// How long one tool call may run before it is answered as failed.
    pub tool_timeout: Duration,
    /// Repair what can be repaired (recording each fix) or refuse any violation.
    pub policy: Policy,
    /// The context budget, if any.
    pub context: Option<ContextPolicy>,
    /// Where the requests' cache points go: as the history and configuration hold them
    /// (`Caching::Manual`, the default), none, or planned by the protocol's planner
    /// (`Caching::Auto`: tools, system and moving points in the messages, within Bedrock's
    /// rules; see `verbatim_protocol::assemble::Caching`).
    pub caching: Caching,
    /// How long a turn's lease on its session lasts unless renewed; the turn renews it every
    /// third of this while it runs. A process that dies holding it keeps other instances out
    /// of the session until it expires (30 s by default).
    pub lease_ttl: Duration,
    /// How long a turn waits for a session whose lease another instance holds before giving
    /// up with [`EngineError::Busy`] (5 s by default).
    pub lease_wait: Duration,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            model: None,
            api: Api::Converse,
            thinking: None,
            system: None,
            region: None,
            max_tokens: 4096,
            streaming: true,
            max_steps: 16,
            tool_timeout: Duration::from_secs(60),
            policy: Policy::Repair,
            context: None,
            caching: Caching::Manual,
            lease_ttl: Duration::from_secs(30),
            lease_wait: Duration::from_secs(5),
        }
    }
}

/// Runs chat sessions: a store, a transport, tools and defaults. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SessionStore>,
    transport: Arc<dyn Transport>,
    tools: Vec<Arc<dyn Tool>>,
    defaults: Defaults,
    /// The name this engine's leases carry.
    owner: String,
    busy: Mutex<HashSet<SessionId>>,
    /// Whether the store's last append (of any session) failed other than by a conflict:
    /// until an append succeeds again, a turn appends the user's side of a request before
    /// calling the model rather than while the call runs, so a store that keeps failing
    /// costs no model call.
    store_failing: AtomicBool,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tools: Vec<&str> = self.inner.tools.iter().map(|t| t.name()).collect();
        f.debug_struct("Engine")
            .field("transport", &self.inner.transport)
            .field("tools", &tools)
            .field("defaults", &self.inner.defaults)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Engine`].
#[derive(Default)]
pub struct EngineBuilder {
    store: Option<Arc<dyn SessionStore>>,
    transport: Option<Arc<dyn Transport>>,
    tools: Vec<Arc<dyn Tool>>,
    defaults: Defaults,
    owner: Option<String>,
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder").field("defaults", &self.defaults).finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// The store sessions live in (required).
    pub fn store(mut self, store: Arc<dyn SessionStore>) -> EngineBuilder {
        self.store = Some(store);
        self
    }

    /// The transport model calls go through (required).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> EngineBuilder {
        self.transport = Some(transport);
        self
    }

    /// Registers a tool.
    pub fn tool(mut self, tool: Arc<dyn Tool>) -> EngineBuilder {
        self.tools.push(tool);
        self
    }

    /// The model of new sessions.
    pub fn model(mut self, model: impl Into<String>) -> EngineBuilder {
        self.defaults.model = Some(model.into());
        self
    }

    /// The API requests go to (Converse by default).
    pub fn api(mut self, api: Api) -> EngineBuilder {
        self.defaults.api = api;
        self
    }

    /// The thinking setting of new sessions.
    pub fn thinking(mut self, thinking: Option<ThinkingConfig>) -> EngineBuilder {
        self.defaults.thinking = thinking;
        self
    }

    /// The system prompt of new sessions.
    pub fn system(mut self, system: impl Into<String>) -> EngineBuilder {
        self.defaults.system = Some(SystemPrompt::Text(system.into()));
        self
    }

    /// The region or inference profile recorded in provenance.
    pub fn region(mut self, region: impl Into<String>) -> EngineBuilder {
        self.defaults.region = Some(region.into());
        self
    }

    /// Every other default at once.
    pub fn defaults(mut self, defaults: Defaults) -> EngineBuilder {
        self.defaults = defaults;
        self
    }

    /// The name this engine's leases carry, shown to another instance that meets one (by
    /// default `pid N engine X`, X at random).
    pub fn lease_owner(mut self, owner: impl Into<String>) -> EngineBuilder {
        self.owner = Some(owner.into());
        self
    }

    /// Changes the defaults in place.
    pub fn configure(mut self, change: impl FnOnce(&mut Defaults)) -> EngineBuilder {
        change(&mut self.defaults);
        self
    }

    /// The engine, or what it lacks.
    pub fn build(self) -> Result<Engine, EngineError> {
        let store = self.store.ok_or_else(|| EngineError::Config("no store".into()))?;
        let transport = self.transport.ok_or_else(|| EngineError::Config("no transport".into()))?;
        let mut names = HashSet::new();
        for tool in &self.tools {
            if !names.insert(tool.name().to_owned()) {
                return Err(EngineError::Config(format!("two tools named {}", tool.name())));
            }
        }
        if self.defaults.max_steps == 0 {
            return Err(EngineError::Config("max_steps must be at least 1".into()));
        }
        if let Some(model) = &self.defaults.model {
            verbatim_model::check_model_id(model)?;
        }
        if self.defaults.lease_ttl < Duration::from_millis(3) {
            return Err(EngineError::Config("lease_ttl must be at least 3 ms".into()));
        }
        let owner = match self.owner {
            Some(owner) => owner,
            None => {
                let random = verbatim_store::new_session_id()?.to_string();
                format!("pid {} engine {}", std::process::id(), &random[..8])
            }
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                transport,
                tools: self.tools,
                defaults: self.defaults,
                owner,
                busy: Mutex::new(HashSet::new()),
                store_failing: AtomicBool::new(false),
            }),
        })
    }
}

/// `model`, when it passes [`verbatim_model::check_model_id`].
pub(crate) fn checked_model_id(model: String) -> Result<String, EngineError> {
    verbatim_model::check_model_id(&model)?;
    Ok(model)
}

impl Engine {
    /// A builder with the default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// A new session with the engine's defaults.
    pub async fn create(&self) -> Result<Session, EngineError> {
        let defaults = &self.inner.defaults;
        let model = defaults
            .model
            .clone()
            .ok_or_else(|| EngineError::Config("no default model to create a session".into()))?;
        let mut new = NewSession::new(model);
        new.thinking = defaults.thinking.clone();
        new.system = defaults.system.clone();
        self.create_with(new).await
    }

    /// A new session as described. Its model id is checked first
    /// ([`verbatim_model::check_model_id`]).
    pub async fn create_with(&self, new: NewSession) -> Result<Session, EngineError> {
        verbatim_model::check_model_id(&new.model)?;
        let info = self.inner.store.create(new).await?;
        Ok(Session::new(self.clone(), info.id))
    }

    /// The stored session `id` (after a restart, the same conversation).
    pub async fn open(&self, id: SessionId) -> Result<Session, EngineError> {
        self.inner.store.info(id).await?;
        Ok(Session::new(self.clone(), id))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The defaults.
    pub fn defaults(&self) -> &Defaults {
        &self.inner.defaults
    }

    fn tool(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.inner.tools.iter().find(|t| t.name() == name).cloned()
    }

    /// Notes how an append went (see `Inner::store_failing`) and passes its result on.
    fn appended<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match &result {
            Ok(_) => self.inner.store_failing.store(false, Ordering::Relaxed),
            Err(StoreError::Conflict { .. } | StoreError::Fenced { .. }) => {}
            Err(error) => {
                tracing::warn!(%error, "an append failed: the next requests go out once their input is stored");
                self.inner.store_failing.store(true, Ordering::Relaxed);
            }
        }
        result
    }

    /// Whether the last append failed (other than by a conflict).
    fn store_failing(&self) -> bool {
        self.inner.store_failing.load(Ordering::Relaxed)
    }

    /// Marks `id` busy for as long as the guard lives.
    fn claim(&self, id: SessionId) -> Result<Claim, EngineError> {
        let mut busy = self.inner.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(id) {
            return Err(EngineError::Busy { id, holder: None, expires_in: None });
        }
        Ok(Claim { engine: self.clone(), id })
    }
}

/// A turn's hold on its session; released when dropped (also when the turn is cancelled).
struct Claim {
    engine: Engine,
    id: SessionId,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.engine.inner.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

#[cfg(test)]
mod tests;
