//! A session handle: the turns it runs (see [`crate::turn`]), its configuration changes, and
//! what it keeps from one turn to the next.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::Instrument as _;
use verbatim_model::{
    Caching, ContentBlock, HistoryMessage, SessionId, Settings, SystemPrompt, ThinkingConfig, Usage,
};
use verbatim_protocol::assemble::Assembler;
use verbatim_store::{Append, ConfigChange, Entry, Lease, StoreError};

use crate::log::Log;
use crate::turn::Turn;
use crate::{Engine, EngineError, Event, Reply};

/// How many times a configuration change ([`Session::set_thinking`], [`Session::set_model`],
/// [`Session::set_system`]) is appended, the session's version read again before each, when
/// other writers keep appending in between.
pub const CONFIGURE_ATTEMPTS: u32 = 5;

/// The user's side of a turn: text or content blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Input(pub Vec<ContentBlock>);

impl From<&str> for Input {
    fn from(text: &str) -> Input {
        Input(vec![ContentBlock::text(text)])
    }
}

impl From<String> for Input {
    fn from(text: String) -> Input {
        Input(vec![ContentBlock::text(text)])
    }
}

impl From<Vec<ContentBlock>> for Input {
    fn from(blocks: Vec<ContentBlock>) -> Input {
        Input(blocks)
    }
}

/// A handle on one stored session. Cheap to clone (clones share what the last turn left).
///
/// A handle keeps the session's log as its last turn left it. Each turn first reads the
/// records appended since (by another writer, another handle or a configuration change), so
/// a handle never works on a stale history, and reads the whole session only when it has
/// nothing kept: its first turn, the turn after one that failed (a refused append among
/// them), and a turn after a record that does not simply continue the log (a rewind). What
/// it keeps holds the history about three times over (the log, the last request's messages
/// for the prefix hash, and that request's body, whose message text the next body copies)
/// until the last clone of the handle is dropped.
#[derive(Clone)]
pub struct Session {
    engine: Engine,
    id: SessionId,
    state: Arc<Mutex<Option<HandleState>>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("engine", &self.engine)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a successful turn leaves for the next turn on the same handle.
struct HandleState {
    /// The log, up to the turn's last append.
    log: Log,
    /// The assembler, holding the turn's last request for the next to reuse.
    assembler: Assembler,
}

impl Session {
    pub(crate) fn new(engine: Engine, id: SessionId) -> Session {
        Session { engine, id, state: Arc::new(Mutex::new(None)) }
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Sends the user's input and runs the turn to its end (or the step limit).
    pub async fn send(&self, input: impl Into<Input>) -> Result<Reply, EngineError> {
        self.send_with(input, |_| {}).await
    }

    /// [`Session::send`], reporting each [`Event`] as it happens.
    pub async fn send_with(
        &self,
        input: impl Into<Input>,
        mut on_event: impl FnMut(Event) + Send,
    ) -> Result<Reply, EngineError> {
        let Input(blocks) = input.into();
        let blank = |block: &ContentBlock| match block {
            ContentBlock::Text(text) => text.text.trim().is_empty(),
            _ => false,
        };
        if blocks.iter().all(blank) {
            return Err(EngineError::Config("the input is empty or blank".into()));
        }
        let reply = self.run_turn(Some(blocks), &mut on_event).await?;
        Ok(reply.expect("a turn with input calls the model"))
    }

    /// Continues what a crash, an error or the step limit interrupted: settles the calls of
    /// an unfinished tool loop and calls the model again when the history ends with the
    /// user's side. `None` when the last turn is complete.
    pub async fn resume(&self) -> Result<Option<Reply>, EngineError> {
        self.resume_with(|_| {}).await
    }

    /// [`Session::resume`], reporting each [`Event`] as it happens.
    pub async fn resume_with(
        &self,
        mut on_event: impl FnMut(Event) + Send,
    ) -> Result<Option<Reply>, EngineError> {
        self.run_turn(None, &mut on_event).await
    }

    /// Sets the thinking setting from the next user turn on (inside a tool loop the loop's own
    /// setting stays until it ends).
    pub async fn set_thinking(&self, thinking: Option<ThinkingConfig>) -> Result<(), EngineError> {
        self.configure(ConfigChange::Thinking(thinking)).await
    }

    /// Switches the model for the next request. Thinking the new model cannot read is left
    /// out of requests (never turned into text); the store keeps it.
    pub async fn set_model(&self, model: impl Into<String>) -> Result<(), EngineError> {
        self.configure(ConfigChange::Model(crate::checked_model_id(model.into())?)).await
    }

    /// Sets the request settings sent from the next request on (sampling, stop sequences,
    /// tool choice, model-native fields, service tier, guardrail, request metadata, structured
    /// output: see [`Settings`]), replacing those in force; recorded in the log like a model
    /// change. Without `max_tokens` the engine's default is sent.
    pub async fn set_settings(&self, settings: Settings) -> Result<(), EngineError> {
        self.configure(ConfigChange::Settings(Box::new(settings))).await
    }

    /// Sets how this session's requests get their prompt-cache points (off, as the history
    /// holds them, or planned), from the next request on; recorded in the log like a model
    /// change, so the session keeps it after a restart and over other engines whose default
    /// ([`crate::Defaults::caching`]) differs.
    pub async fn set_caching(&self, caching: Caching) -> Result<(), EngineError> {
        self.configure(ConfigChange::Caching(caching)).await
    }

    /// Sets the system prompt. On models that bind thinking to the conversation prefix this
    /// invalidates earlier thinking, which requests then leave out.
    pub async fn set_system(&self, system: Option<SystemPrompt>) -> Result<(), EngineError> {
        self.configure(ConfigChange::System(system)).await
    }

    /// Appends a configuration change at the session's current version. A change does not
    /// depend on the history, so when another writer appended between reading the version
    /// and appending, the version is read again and the change appended again, up to
    /// [`CONFIGURE_ATTEMPTS`] times in all (a turn's conflict is met the same way by its
    /// caller, which sends or resumes on the session read again).
    async fn configure(&self, change: ConfigChange) -> Result<(), EngineError> {
        let _claim = self.engine.claim(self.id)?;
        let store = &self.engine.inner.store;
        let mut attempt = 1;
        loop {
            let version = store.info(self.id).await?.version;
            let append = Append::new(version, vec![Entry::Config(change.clone())]);
            match self.engine.appended(store.append(self.id, append).await) {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { actual, .. }) if attempt < CONFIGURE_ATTEMPTS => {
                    tracing::info!(
                        expected = version,
                        actual,
                        attempt,
                        "the session moved on: the configuration change is appended again"
                    );
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The current history.
    pub async fn history(&self) -> Result<Vec<HistoryMessage>, EngineError> {
        Ok(self.engine.inner.store.load(self.id).await?.messages())
    }

    /// Token usage over every model call of the session.
    pub async fn usage(&self) -> Result<Usage, EngineError> {
        Ok(self.engine.inner.store.load(self.id).await?.usage())
    }

    /// What the session's model calls cost, call by call, at `prices` (see
    /// [`verbatim_protocol::pricing`]).
    pub async fn ledger(
        &self,
        prices: &verbatim_protocol::pricing::PriceTable,
    ) -> Result<crate::Ledger, EngineError> {
        Ok(crate::Ledger::of(&self.engine.inner.store.load(self.id).await?, prices))
    }

    /// The whole stored session.
    pub async fn load(&self) -> Result<verbatim_store::Session, EngineError> {
        Ok(self.engine.inner.store.load(self.id).await?)
    }

    /// A new session whose history is this one's records up to `at` (see
    /// [`EngineError::Poisoned::fork_at`](EngineError::Poisoned)).
    pub async fn fork(&self, at: u64) -> Result<Session, EngineError> {
        let info = self.engine.inner.store.fork(self.id, at).await?;
        Ok(Session::new(self.engine.clone(), info.id))
    }

    async fn run_turn(
        &self,
        input: Option<Vec<ContentBlock>>,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<Option<Reply>, EngineError> {
        let _claim = self.engine.claim(self.id)?;
        // The turn's span carries its tokens under the OpenTelemetry GenAI semantic
        // conventions' names, recorded when the turn ends, for tracing exporters to pick up.
        let span = tracing::info_span!(
            "turn",
            session = %self.id,
            gen_ai.system = "aws.bedrock",
            gen_ai.operation.name = "chat",
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            gen_ai.usage.cache_read_input_tokens = tracing::field::Empty,
            gen_ai.usage.cache_creation_input_tokens = tracing::field::Empty,
        );
        let result = async {
            let guard = self.engine.lease(self.id).await?;
            let result =
                self.engine.renewing(&guard, self.leased_turn(&guard.lease, input, on_event)).await;
            guard.release().await;
            result
        }
        .instrument(span.clone())
        .await;
        if let Ok(Some(reply)) = &result {
            let usage = &reply.usage;
            let fields = [
                ("gen_ai.usage.input_tokens", usage.input_tokens),
                ("gen_ai.usage.output_tokens", usage.output_tokens),
                ("gen_ai.usage.cache_read_input_tokens", usage.cache_read_input_tokens),
                ("gen_ai.usage.cache_creation_input_tokens", usage.cache_write_input_tokens),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    span.record(name, value);
                }
            }
        }
        result
    }

    /// A turn under `lease`.
    async fn leased_turn(
        &self,
        lease: &Lease,
        input: Option<Vec<ContentBlock>>,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<Option<Reply>, EngineError> {
        // Taken out for the turn: a turn that fails or is cancelled leaves nothing kept.
        let kept = self.state.lock().unwrap_or_else(|e| e.into_inner()).take();
        let HandleState { log, assembler } = self.read(kept).await?;
        let mut turn = Turn {
            engine: &self.engine,
            id: self.id,
            lease,
            log,
            pending: None,
            assembler,
            on_event,
            usage: Usage::default(),
            steps: 0,
            origins: Vec::new(),
            has_input: false,
            input_stored: false,
            left_out: None,
        };
        let reply = match turn.run(input).await {
            Err(EngineError::Conflict { id, expected, actual, .. }) => {
                let input_stored = turn.input_stored;
                return Err(EngineError::Conflict { id, expected, actual, input_stored });
            }
            other => other?,
        };
        let kept = HandleState { log: turn.log, assembler: turn.assembler };
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(kept);
        Ok(reply)
    }

    /// The session as it stands: what the last turn kept, brought up to date with the
    /// records appended since, or else the whole session read again.
    async fn read(&self, kept: Option<HandleState>) -> Result<HandleState, EngineError> {
        let store = &self.engine.inner.store;
        if let Some(mut kept) = kept {
            let since = store.load_range(self.id, kept.log.version() + 1, None).await?;
            if kept.log.extend(since) {
                return Ok(kept);
            }
        }
        let session = store.load(self.id).await?;
        Ok(HandleState { log: Log::new(&session), assembler: Assembler::new() })
    }
}
