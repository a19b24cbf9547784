//! A session handle and the turn it runs: settle an unfinished tool loop, take in the input,
//! then call the model (appending the input meanwhile) and run its tools until it stops.

use std::collections::HashSet;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::Bytes;
use tokio::task::JoinSet;
use tracing::Instrument as _;
use verbatim_model::{
    ContentBlock, HistoryMessage, Message, Provenance, Request, Role, SessionId, StopReason,
    SystemPrompt, ThinkingConfig, Tool as ToolDecl, ToolResult, ToolResultBlock, ToolResultContent,
    ToolResultStatus, ToolSpec, ToolUse, Usage,
};
use verbatim_protocol::assemble::{
    Action, Assembly, Fix, PrefixHasher, TurnConfig, assemble_request, assemble_request_from,
};
use verbatim_protocol::body::Body;
use verbatim_protocol::rules::explain;
use verbatim_store::{Append, ConfigChange, Entry, StoreError, ToolCallEvent, ToolCallState};
use verbatim_transport::{Call, Exception, TransportError};

use crate::call::call_model;
use crate::context::{Trimmed, trim};
use crate::estimate_tokens;
use crate::log::{Log, tool_uses};
use crate::tool::{Tool, ToolOutput, spec};
use crate::{Engine, EngineError, Event, Reply, Settled};

/// How many times a configuration change ([`Session::set_thinking`], [`Session::set_model`],
/// [`Session::set_system`]) is appended, the session's version read again before each, when
/// other writers keep appending in between.
pub const CONFIGURE_ATTEMPTS: u32 = 5;

/// What the model reads for a call that started before a crash and never finished, when its
/// tool is not idempotent.
pub const INTERRUPTED: &str = "interrupted: the call started but the session stopped before it finished; it was not run again";

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
    kept: Arc<Mutex<Option<Kept>>>,
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
struct Kept {
    /// The log, up to the turn's last append.
    log: Log,
    /// The prefix hashing state of the turn's last request.
    prefix: Option<Prefix>,
}

/// The prefix hash of a request, carried on to the next request when that one extends it:
/// the hashing state after the request's messages, and what it took in (to check that).
struct Prefix {
    hasher: PrefixHasher,
    system: Option<SystemPrompt>,
    tools: Option<Vec<ToolDecl>>,
    /// The request's messages, until the next request is assembled over them (they move
    /// into it: see [`Turn::prepare`]).
    messages: Vec<Message>,
    /// How many messages the request had.
    count: usize,
    /// The request's body, when it was written from these messages: the next body copies
    /// the text of the messages it shares.
    body: Option<Body>,
}

impl Prefix {
    /// The hash of the prefix before message `request.messages.len()` (what the reply to
    /// `request` is produced after), hashing only the messages `last` did not take in when
    /// `request` extends `last`'s request: the same system prompt and tools, the same
    /// messages first. Equal values have the same canonical form (key order included: both
    /// requests are assembled from the same messages the same way), so the hash is the one
    /// [`verbatim_protocol::assemble::prefix_hash`] gives. `moved` is how many of `last`'s
    /// messages `request` holds as its first, when they were moved into it unchanged (they
    /// are not compared again).
    fn carry_on(
        last: Option<Prefix>,
        request: Request,
        body: Option<Body>,
        moved: Option<usize>,
    ) -> (String, Prefix) {
        let extends = |last: &Prefix| {
            let n = last.count;
            last.system == request.system
                && last.tools == request.tools
                && match moved {
                    Some(moved) => moved == n && request.messages.len() >= n,
                    None => {
                        last.messages.len() == n
                            && request.messages.get(..n) == Some(&last.messages[..])
                    }
                }
        };
        let mut hasher = match last {
            Some(last) if extends(&last) => last.hasher,
            _ => PrefixHasher::new(&request),
        };
        for message in &request.messages[hasher.messages()..] {
            hasher.push(message);
        }
        let Request { system, tools, messages, .. } = request;
        let count = messages.len();
        (hasher.hash(), Prefix { hasher, system, tools, messages, count, body })
    }
}

impl Session {
    pub(crate) fn new(engine: Engine, id: SessionId) -> Session {
        Session { engine, id, kept: Arc::new(Mutex::new(None)) }
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
        let reply = self.run(Some(blocks), &mut on_event).await?;
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
        self.run(None, &mut on_event).await
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

    async fn run(
        &self,
        input: Option<Vec<ContentBlock>>,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<Option<Reply>, EngineError> {
        let _claim = self.engine.claim(self.id)?;
        let span = tracing::info_span!("turn", session = %self.id);
        async {
            // Taken out for the turn: a turn that fails or is cancelled leaves nothing kept.
            let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).take();
            let Kept { log, prefix } = self.read(kept).await?;
            let mut turn = Turn {
                engine: &self.engine,
                id: self.id,
                log,
                pending: None,
                prefix,
                on_event,
                usage: Usage::default(),
                steps: 0,
                origins: Vec::new(),
                has_input: false,
                input_stored: false,
            };
            let reply = match turn.start(input).await {
                Err(EngineError::Conflict { id, expected, actual, .. }) => {
                    let input_stored = turn.input_stored;
                    return Err(EngineError::Conflict { id, expected, actual, input_stored });
                }
                other => other?,
            };
            let kept = Kept { log: turn.log, prefix: turn.prefix };
            *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(kept);
            Ok(reply)
        }
        .instrument(span)
        .await
    }

    /// The session as it stands: what the last turn kept, brought up to date with the
    /// records appended since, or else the whole session read again.
    async fn read(&self, kept: Option<Kept>) -> Result<Kept, EngineError> {
        let store = &self.engine.inner.store;
        if let Some(mut kept) = kept {
            let since = store.load_range(self.id, kept.log.version + 1, None).await?;
            if kept.log.extend(since) {
                return Ok(kept);
            }
        }
        let session = store.load(self.id).await?;
        Ok(Kept { log: Log::new(&session), prefix: None })
    }
}

/// One turn in progress.
struct Turn<'a> {
    engine: &'a Engine,
    id: SessionId,
    /// The session, including `pending`.
    log: Log,
    /// Entries already in `log` and not yet in the store: the user's side of the next
    /// request (and the fixes recorded for it), appended while that request is under way.
    pending: Option<Append>,
    /// The prefix hashing state of the last request.
    prefix: Option<Prefix>,
    on_event: &'a mut (dyn FnMut(Event) + Send),
    usage: Usage,
    steps: u32,
    /// For each message of the last request sent, the stored message it came from (`None`
    /// for one a repair inserted).
    origins: Vec<Option<usize>>,
    /// Whether the turn takes in new input from the user (`send`, not `resume`).
    has_input: bool,
    /// Whether an append of what was pending (the turn's input first of all) succeeded.
    input_stored: bool,
}

/// A request ready to send.
struct Prepared {
    assembly: Assembly,
    body: Bytes,
    /// The body again, with where each message lies in it, when it holds every stored
    /// message (not a trimmed view).
    reusable: Option<Body>,
    /// How many messages of the last request this one holds as its first, moved into it
    /// unchanged.
    moved: Option<usize>,
    turn: TurnConfig,
    origins: Vec<Option<usize>>,
}

impl Turn<'_> {
    /// Settles an unfinished tool loop, takes in the input, and runs the turn; `None` when
    /// there is nothing to answer.
    async fn start(
        &mut self,
        input: Option<Vec<ContentBlock>>,
    ) -> Result<Option<Reply>, EngineError> {
        let open = self.log.open_calls();
        if !open.is_empty() {
            let mut content = self.settle(open).await?;
            self.has_input = input.is_some();
            content.extend(input.unwrap_or_default());
            self.defer(vec![Entry::Message(Message::new(Role::User, content).into())]);
        } else if let Some(input) = input {
            self.has_input = true;
            self.defer(vec![Entry::Message(Message::new(Role::User, input).into())]);
        } else if self.log.messages.last().is_none_or(|m| m.message.role != Role::User) {
            return Ok(None);
        }
        self.run().await.map(Some)
    }

    /// Appends `entries` now (after what is pending).
    async fn append(&mut self, entries: Vec<Entry>) -> Result<(), EngineError> {
        self.flush().await?;
        let append = Append::new(self.log.version, entries.clone());
        let appended =
            self.engine.appended(self.engine.inner.store.append(self.id, append).await)?;
        self.log.appended(appended.first_seq, entries);
        Ok(())
    }

    /// Takes `entries` into the log now and appends them with the next model call (see
    /// [`Turn::attempt`]), or before anything else is appended.
    fn defer(&mut self, entries: Vec<Entry>) {
        let version = self.log.version;
        let pending = self.pending.get_or_insert_with(|| Append::new(version, Vec::new()));
        pending.entries.extend(entries.iter().cloned());
        self.log.appended(version + 1, entries);
    }

    /// Appends what is pending.
    async fn flush(&mut self) -> Result<(), EngineError> {
        if let Some(append) = self.pending.take() {
            let appended = self.engine.inner.store.append(self.id, append).await;
            self.engine.appended(appended).map_err(|e| self.unstored(e))?;
            self.input_stored = true;
        }
        Ok(())
    }

    /// The error of a failed append of what was pending: a conflict stays one; any other
    /// failure says what was not stored.
    fn unstored(&self, error: StoreError) -> EngineError {
        match error {
            conflict @ StoreError::Conflict { .. } => conflict.into(),
            source => {
                let input = self.has_input && !self.input_stored;
                tracing::warn!(error = %source, input, "the user's side of the request was not stored; no reply is kept");
                EngineError::NotStored { input, source }
            }
        }
    }

    /// Calls the model and runs its tools until it stops or the step limit is reached.
    async fn run(&mut self) -> Result<Reply, EngineError> {
        let max_steps = self.engine.inner.defaults.max_steps;
        loop {
            self.steps += 1;
            let span = tracing::info_span!("step", step = self.steps);
            let (response, provenance) = self.step().instrument(span).await?;
            let calls = tool_uses(&response.message);
            self.check_ids(&calls)?;
            let mut entries = vec![Entry::Message(HistoryMessage {
                message: response.message.clone(),
                provenance: Some(provenance),
            })];
            entries.extend(calls.iter().map(|call| lifecycle(call, ToolCallState::Requested)));
            if response.stop_reason != Some(StopReason::ToolUse) {
                // A reply cut off (at max_tokens, say) may hold a call whose input is not what
                // the model meant: it is answered as failed, never run.
                let reason = response.stop_reason.as_ref().map_or("no stop reason", |r| r.as_str());
                let message = format!(
                    "not run: the reply stopped ({reason}) before the model finished asking for this call"
                );
                entries.extend(calls.iter().map(|call| {
                    lifecycle(call, ToolCallState::Failed { message: message.clone() })
                }));
            }
            self.append(entries).await?;
            if let Some(usage) = &response.usage {
                self.usage.add(usage);
            }
            (self.on_event)(Event::Step {
                step: self.steps,
                stop_reason: response.stop_reason.clone(),
                usage: response.usage.clone(),
            });
            for call in &calls {
                (self.on_event)(Event::ToolCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    input: call.input.clone(),
                });
            }
            let finished = calls.is_empty();
            if finished || self.steps >= max_steps {
                return Ok(Reply {
                    message: response.message,
                    stop_reason: response.stop_reason,
                    usage: self.usage.clone(),
                    steps: self.steps,
                    complete: finished,
                });
            }
            let results = self.settle(calls).await?;
            self.defer(vec![Entry::Message(Message::new(Role::User, results).into())]);
        }
    }

    /// One model call. A validation error is met by reading the session again and trying
    /// once more (another writer may have moved it on); the same error twice means the
    /// stored history itself is refused.
    async fn step(&mut self) -> Result<(verbatim_model::Response, Provenance), EngineError> {
        let first = match self.attempt().await {
            Err(EngineError::Transport(error))
                if is_validation(&error) && message_index(&message(&error)).is_some() =>
            {
                error
            }
            other => return other,
        };
        tracing::warn!(error = %first, "the history was refused; reading the session again");
        let session = self.engine.inner.store.load(self.id).await?;
        let moved = session.records.iter().any(|r| {
            r.seq > self.log.version && matches!(r.entry, Entry::Message(_) | Entry::ToolCall(_))
        });
        if moved {
            // Another writer went on with the conversation: this turn must not continue it.
            return Err(EngineError::Conflict {
                id: self.id,
                expected: self.log.version,
                actual: session.info.version,
                input_stored: self.input_stored,
            });
        }
        self.log = Log::new(&session);
        match self.attempt().await {
            Err(EngineError::Transport(second))
                if is_validation(&second) && message(&second) == message(&first) =>
            {
                Err(self.poisoned(message(&second)))
            }
            other => other,
        }
    }

    /// One model call, with the pending entries appended while it runs.
    ///
    /// The request goes out before the user's side of it is durable: until the reply is
    /// appended, nothing stored depends on the request, and the model keeps nothing between
    /// calls. The reply is appended only after the pending append succeeded; when that append
    /// fails (another writer moved the session on, the store failed) the reply is dropped and
    /// the append's error returned, so the session holds neither, as if the turn had stopped
    /// before its call. A crash during the call leaves the input stored or not, never a reply
    /// without it. (Text and thinking of a dropped reply may have been reported as events.)
    async fn attempt(&mut self) -> Result<(verbatim_model::Response, Provenance), EngineError> {
        let prepared = match self.prepare() {
            Ok(prepared) => prepared,
            Err(error) => {
                // Nothing is sent: the input is stored all the same, as the turn asked.
                self.flush().await?;
                return Err(error);
            }
        };
        if self.engine.store_failing() {
            // The last append failed: what is pending is stored before the call, so a store
            // that still fails costs no model call.
            self.flush().await?;
        }
        let Prepared { assembly, body, reusable, moved, turn, origins } = prepared;
        self.origins = origins;
        let engine = self.engine;
        let defaults = &engine.inner.defaults;
        tracing::debug!(model = %turn.model_id, api = turn.api.as_str(), bytes = body.len(), "calling the model");
        let call = Call::new(turn.api, turn.model_id.clone(), body);
        let (id, pending) = (self.id, self.pending.take());
        let written = async move {
            match pending {
                Some(append) => {
                    engine.appended(engine.inner.store.append(id, append).await).map(Some)
                }
                None => Ok(None),
            }
        };
        let called = call_model(
            engine.inner.transport.as_ref(),
            call,
            defaults.streaming,
            &mut *self.on_event,
        );
        // Work that does not need the reply is done while the model works: the prefix hash
        // of the request (carried on from the last one) and freeing what it was built from.
        let thinking = assembly.request.thinking.clone();
        let last = self.prefix.take();
        let hashed = async move {
            let request = assembly.request;
            Prefix::carry_on(last, request, reusable, moved)
        };
        // The call is polled first: the request goes out (signed, handed to the connection),
        // then the append writes and waits for the disk, and the hash is taken, while the
        // model works. All run to their end: an append is never left halfway for the reply's
        // sake.
        let (response, (written, (hash, prefix))) = both(called, both(written, hashed)).await;
        self.prefix = Some(prefix);
        // The reply is dropped when the append failed: it would answer a message the store
        // does not hold.
        if let Some(appended) = written.map_err(|e| self.unstored(e))? {
            debug_assert_eq!(appended.version, self.log.version, "the log took them in");
            self.input_stored = true;
        }
        let response = response?;
        let mut provenance = Provenance::new(turn.model_id, turn.api);
        provenance.thinking = thinking;
        provenance.region = defaults.region.clone();
        provenance.prefix_hash = Some(hash);
        provenance.stop_reason = response.stop_reason.clone();
        provenance.usage = response.usage.clone();
        Ok((response, provenance))
    }

    /// Assembles the next request over the whole history and records the history fixes it
    /// needed (so they are decided once and replayed identically; the record is appended
    /// with the call, see [`Turn::attempt`]). When a context budget is
    /// set and the request exceeds it, whole old turns are left out instead (see
    /// [`crate::ContextPolicy`]): that shortened request is a view, and its fixes are not
    /// recorded.
    fn prepare(&mut self) -> Result<Prepared, EngineError> {
        let turn = self.turn_config();
        let defaults = &self.engine.inner.defaults;
        // With no recorded fix to replay, the last request's messages are the history's
        // first messages: the request is assembled over them (moved, not copied again), and
        // unless a fix changes it their text is copied from the last body without comparing
        // them a second time. Otherwise the history is copied and compared.
        let replays = turn.recorded_fixes.iter().any(|f| f.action.changes_history());
        let over_last = self
            .prefix
            .as_mut()
            .filter(|p| !replays && p.body.is_some() && p.messages.len() == p.count && p.count > 0);
        let (full, body, moved) = match over_last {
            Some(last) => {
                let earlier = std::mem::take(&mut last.messages);
                let (mut full, same) =
                    assemble_request_from(&self.log.messages, earlier, &turn, defaults.policy);
                let unchanged = !full.fixes.iter().any(|f| f.action.changes_history());
                let body = match &last.body {
                    Some(previous) if unchanged => full.write_body_after(turn.api, previous, same),
                    _ => full.write_body(turn.api, None),
                };
                (full, body, unchanged.then_some(same))
            }
            None => {
                let mut full = assemble_request(&self.log.messages, &turn, defaults.policy);
                let previous = self
                    .prefix
                    .as_ref()
                    .and_then(|p| p.body.as_ref().map(|b| (b, &p.messages[..])));
                let body = full.write_body(turn.api, previous);
                (full, body, None)
            }
        };
        let context = defaults.context;
        let size = body.as_ref().map(|b| estimate_tokens(b.len()));
        if let Some(body) = body.filter(|_| context.is_none_or(|c| size <= Some(c.budget_tokens))) {
            let fixes: Vec<Fix> =
                full.fixes.iter().filter(|f| f.action.changes_history()).cloned().collect();
            let replayed = self.log.fixes.iter().filter(|f| f.action.changes_history());
            let origins = origins(0, self.log.messages.len(), replayed.chain(&fixes));
            if !fixes.is_empty() {
                for fix in &fixes {
                    tracing::info!(rule = %fix.diagnostic.rule, path = %fix.diagnostic.path, "repaired the history");
                }
                self.defer(vec![Entry::Repair {
                    fixes: fixes.iter().map(crate::fixes::record).collect(),
                }]);
            }
            return Ok(Prepared {
                assembly: full,
                body: body.bytes(),
                reusable: Some(body),
                moved,
                turn,
                origins,
            });
        }
        let Some(context) = context else {
            return Err(EngineError::Invalid { id: self.id, diagnostics: full.diagnostics });
        };
        let trimmed = if context.trim {
            trim(&self.log.messages, &turn, defaults.policy, &context)
        } else {
            None
        };
        let Some(Trimmed { assembly, body, left_out }) = trimmed else {
            return Err(match size {
                None => EngineError::Invalid { id: self.id, diagnostics: full.diagnostics },
                Some(estimate) => EngineError::ContextBudget {
                    estimate,
                    budget: context.budget_tokens,
                    trimmed: context.trim,
                },
            });
        };
        tracing::info!(left_out, "old turns left out of the request");
        let fixes = assembly.fixes.iter().filter(|f| f.action.changes_history());
        let origins = origins(left_out, self.log.messages.len() - left_out, fixes);
        Ok(Prepared { assembly, body: body.into(), reusable: None, moved: None, turn, origins })
    }

    fn turn_config(&self) -> TurnConfig {
        let inner = &self.engine.inner;
        let config = &self.log.config;
        let mut turn = TurnConfig::new(config.model.clone(), inner.defaults.api);
        let registered: Vec<ToolSpec> = inner.tools.iter().map(|t| spec(t.as_ref())).collect();
        turn.system = config.system.clone();
        turn.tools = config.tools.clone().or_else(|| {
            (!registered.is_empty())
                .then(|| registered.iter().cloned().map(ToolDecl::Spec).collect())
        });
        turn.recorded_tools = registered;
        turn.thinking = config.thinking.clone();
        turn.inference = Some(verbatim_model::InferenceConfig {
            max_tokens: Some(inner.defaults.max_tokens),
            ..Default::default()
        });
        turn.open_turn_thinking = self.log.open_turn_thinking();
        turn.recorded_fixes = self.log.fixes.clone();
        turn
    }

    fn poisoned(&self, message: String) -> EngineError {
        let last = self.log.messages.len().saturating_sub(1);
        // Bedrock counts the messages of the request as sent; map that back to the stored
        // message it came from (a message a repair inserted maps to the one before it).
        let message_index = message_index(&message).map(|sent| {
            let upto = sent.min(self.origins.len().saturating_sub(1));
            self.origins[..=upto.min(self.origins.len().saturating_sub(1))]
                .iter()
                .rev()
                .find_map(|origin| *origin)
                .unwrap_or(0)
                .min(last)
        });
        let rule = explain(&message).into_iter().next();
        let fork_at = self
            .log
            .turn_start(message_index.unwrap_or(last))
            .map_or(0, |start| self.log.seqs[start] - 1);
        tracing::error!(%message, ?message_index, fork_at, "the stored history is refused");
        EngineError::Poisoned { id: self.id, message_index, rule, message, fork_at }
    }

    /// Refuses a reply whose tool-use ids repeat, among themselves or in the history: Bedrock
    /// refuses a request with duplicate ids, so storing it would poison the session (and run
    /// its tools for nothing).
    fn check_ids(&self, calls: &[ToolUse]) -> Result<(), EngineError> {
        if calls.is_empty() {
            return Ok(());
        }
        let earlier: HashSet<&str> = self
            .log
            .messages
            .iter()
            .flat_map(|m| &m.message.content)
            .filter_map(|block| match block {
                ContentBlock::ToolUse(call) => Some(call.id.as_str()),
                _ => None,
            })
            .collect();
        let mut seen = HashSet::new();
        for call in calls {
            let id = call.id.as_str();
            if earlier.contains(id) || !seen.insert(id) {
                return Err(EngineError::Reply(format!(
                    "the reply uses tool_use id {id} twice in the conversation; Bedrock refuses duplicate ids, so the reply was not stored and no tool ran"
                )));
            }
        }
        Ok(())
    }

    /// Settles every call of an unfinished tool loop and returns their results, in the
    /// order the model asked for them. Each call's start and end are recorded around it.
    async fn settle(&mut self, calls: Vec<ToolUse>) -> Result<Vec<ContentBlock>, EngineError> {
        let mut results: Vec<Option<ToolResult>> = vec![None; calls.len()];
        let mut marks = Vec::new();
        let mut settled = Vec::new();
        let mut to_run: Vec<(usize, Arc<dyn Tool>)> = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let tool = self.engine.tool(&call.name);
            let state = self.log.call_state(&call.id).cloned();
            let (result, how) = match (state, tool) {
                (Some(ToolCallState::Completed { content }), _) => {
                    (ok_result(call, content), Settled::FromLog)
                }
                (Some(ToolCallState::Failed { message }), _) => {
                    (error_result(call, message), Settled::FromLog)
                }
                (Some(ToolCallState::Unknown), _) => {
                    (error_result(call, INTERRUPTED.into()), Settled::Interrupted)
                }
                (_, None) => {
                    let message = format!("no tool named {} is available", call.name);
                    marks.push(lifecycle(call, ToolCallState::Failed { message: message.clone() }));
                    (error_result(call, message), Settled::Unknown)
                }
                (Some(ToolCallState::Started), Some(tool)) if !tool.idempotent() => {
                    marks.push(lifecycle(call, ToolCallState::Unknown));
                    (error_result(call, INTERRUPTED.into()), Settled::Interrupted)
                }
                (_, Some(tool)) => {
                    marks.push(lifecycle(call, ToolCallState::Started));
                    to_run.push((i, tool));
                    continue;
                }
            };
            results[i] = Some(result);
            settled.push((i, how));
        }
        if !marks.is_empty() {
            self.append(marks).await?;
        }
        for (i, how) in settled {
            self.report(&calls[i], results[i].as_ref(), how);
        }

        let timeout = self.engine.inner.defaults.tool_timeout;
        let mut running = JoinSet::new();
        let mut tasks = std::collections::HashMap::new();
        for (i, tool) in to_run {
            let input = calls[i].input.clone();
            let run = async move {
                match tokio::time::timeout(timeout, tool.call(input)).await {
                    Ok(Ok(output)) => {
                        ToolCallState::Completed { content: Some(output.into_content()) }
                    }
                    Ok(Err(error)) => ToolCallState::Failed { message: error.0 },
                    Err(_) => ToolCallState::Failed {
                        message: format!(
                            "the tool did not finish within {} s",
                            timeout.as_secs_f64()
                        ),
                    },
                }
            };
            let handle = running.spawn(run.in_current_span());
            tasks.insert(handle.id(), i);
        }
        while let Some(joined) = running.join_next_with_id().await {
            let (task, state) = match joined {
                Ok((task, state)) => (task, state),
                Err(error) => {
                    (error.id(), ToolCallState::Failed { message: "the tool panicked".to_owned() })
                }
            };
            let i = tasks[&task];
            let call = &calls[i];
            self.append(vec![lifecycle(call, state.clone())]).await?;
            let result = match state {
                ToolCallState::Completed { content } => ok_result(call, content),
                ToolCallState::Failed { message } => error_result(call, message),
                _ => unreachable!("a run ends completed or failed"),
            };
            self.report(call, Some(&result), Settled::Ran);
            results[i] = Some(result);
        }
        Ok(results
            .into_iter()
            .map(|r| ContentBlock::ToolResult(r.expect("every call settled")))
            .collect())
    }

    fn report(&mut self, call: &ToolUse, result: Option<&ToolResult>, settled: Settled) {
        let is_error = result.is_some_and(|r| r.status == Some(ToolResultStatus::Error));
        (self.on_event)(Event::ToolResult {
            id: call.id.clone(),
            name: call.name.clone(),
            is_error,
            settled,
        });
    }
}

/// Runs two futures on this task until both are done.
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    std::future::poll_fn(|cx| {
        if out_a.is_none()
            && let Poll::Ready(out) = a.as_mut().poll(cx)
        {
            out_a = Some(out);
        }
        if out_b.is_none()
            && let Poll::Ready(out) = b.as_mut().poll(cx)
        {
            out_b = Some(out);
        }
        match (out_a.take(), out_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (out_a, out_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// For each message of a request built from `len` stored messages starting at `offset`, the
/// stored message it came from, after the history changes `fixes` made (in order).
fn origins<'a>(
    offset: usize,
    len: usize,
    fixes: impl Iterator<Item = &'a Fix>,
) -> Vec<Option<usize>> {
    let mut origins: Vec<Option<usize>> = (offset..offset + len).map(Some).collect();
    for fix in fixes {
        match fix.action {
            Action::DropMessage { message } if message < origins.len() => {
                origins.remove(message);
            }
            Action::MergeWithNext { message } if message + 1 < origins.len() => {
                origins.remove(message + 1);
            }
            Action::InsertMessage { message, .. } if message <= origins.len() => {
                origins.insert(message, None);
            }
            _ => {}
        }
    }
    origins
}

fn lifecycle(call: &ToolUse, state: ToolCallState) -> Entry {
    Entry::ToolCall(ToolCallEvent { tool_use_id: call.id.clone(), name: call.name.clone(), state })
}

fn ok_result(call: &ToolUse, content: Option<ToolResultContent>) -> ToolResult {
    ToolResult {
        tool_use_id: call.id.clone(),
        content: Some(content.unwrap_or_else(|| ToolOutput::Text(String::new()).into_content())),
        status: None,
        unmapped: Default::default(),
    }
}

fn error_result(call: &ToolUse, message: String) -> ToolResult {
    let text = if message.trim().is_empty() { "the tool failed".to_owned() } else { message };
    ToolResult {
        tool_use_id: call.id.clone(),
        content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text { text }])),
        status: Some(ToolResultStatus::Error),
        unmapped: Default::default(),
    }
}

fn is_validation(error: &TransportError) -> bool {
    error.api().is_some_and(|api| api.exception == Exception::Validation)
}

fn message(error: &TransportError) -> String {
    error.api().map(|api| api.message.clone()).unwrap_or_default()
}

/// The message index Bedrock's error names (`messages.5.content.0: ...`).
fn message_index(text: &str) -> Option<usize> {
    let at = text.find("messages.")? + "messages.".len();
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod unit {
    use super::*;

    fn fix(action: Action) -> Fix {
        let diagnostic = verbatim_protocol::assemble::Diagnostic {
            rule: verbatim_protocol::rules::Rule::Malformed,
            severity: verbatim_protocol::assemble::Severity::Error,
            path: verbatim_protocol::JsonPath::root(),
            message: String::new(),
        };
        Fix { diagnostic, action, guard: None }
    }

    #[test]
    fn request_messages_map_back_to_the_stored_messages_they_came_from() {
        let content = Message::new(Role::User, vec![ContentBlock::text("x")]);
        let fixes = [
            fix(Action::DropMessage { message: 1 }),
            fix(Action::MergeWithNext { message: 2 }),
            fix(Action::InsertMessage { message: 0, content }),
            fix(Action::DropThinking { message: 0 }),
        ];
        // Stored messages 4..10 (4 left out), then: drop 5, merge 8 into 7, insert at the front.
        let mapped = origins(4, 6, fixes.iter());
        assert_eq!(mapped, [None, Some(4), Some(6), Some(7), Some(9)]);
    }

    #[test]
    fn a_prefix_hash_carried_on_is_the_hash_from_scratch() {
        let messages: Vec<Message> = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
                Message::new(role, vec![ContentBlock::text(*text)])
            })
            .collect();
        let request = |n: usize| Request { messages: messages[..n].to_vec(), ..Request::default() };
        let scratch = |request: &Request| {
            verbatim_protocol::assemble::prefix_hash(request, request.messages.len())
        };
        let (hash, first) = Prefix::carry_on(None, request(3), None, None);
        assert_eq!(hash, scratch(&request(3)));
        // A request that extends the last one: only its new messages are hashed.
        let (hash, second) = Prefix::carry_on(Some(first), request(5), None, None);
        assert_eq!(hash, scratch(&request(5)));
        assert_eq!(second.messages, messages);
        // One that does not (an earlier message changed, another system prompt, fewer
        // messages) is hashed from scratch.
        let mut edited = request(5);
        edited.messages[1] = Message::assistant_text("B");
        let (hash, third) = Prefix::carry_on(Some(second), edited.clone(), None, None);
        assert_eq!(hash, scratch(&edited));
        let mut system = edited.clone();
        system.system = Some(SystemPrompt::Text("Be brief.".into()));
        let (hash, fourth) = Prefix::carry_on(Some(third), system.clone(), None, None);
        assert_eq!(hash, scratch(&system));
        let (hash, _) = Prefix::carry_on(Some(fourth), request(2), None, None);
        assert_eq!(hash, scratch(&request(2)));

        // Messages moved in from the last request are taken as they are, not compared: all
        // of them carry the state on (here wrongly, to show it), fewer do not.
        let edited = |n: usize| {
            let mut edited = request(n);
            edited.messages[1] = Message::assistant_text("B");
            edited
        };
        let (_, last) = Prefix::carry_on(None, request(3), None, None);
        let (hash, _) = Prefix::carry_on(Some(last), edited(5), None, Some(3));
        assert_ne!(hash, scratch(&edited(5)), "three moved: the last state, carried on");
        let (_, last) = Prefix::carry_on(None, request(3), None, None);
        let (hash, _) = Prefix::carry_on(Some(last), edited(5), None, Some(2));
        assert_eq!(hash, scratch(&edited(5)));
        // Once its messages were taken, a prefix is compared with nothing: from scratch.
        let (_, mut last) = Prefix::carry_on(None, request(3), None, None);
        last.messages.clear();
        let (hash, _) = Prefix::carry_on(Some(last), edited(5), None, None);
        assert_eq!(hash, scratch(&edited(5)));
    }

    #[test]
    fn the_message_index_is_read_from_both_forms_of_the_error() {
        let converse = "The model returned the following errors: messages.5.content.0: Invalid signature in thinking block";
        assert_eq!(message_index(converse), Some(5));
        assert_eq!(
            message_index("messages.12.content.0: Invalid `signature` in `thinking` block"),
            Some(12)
        );
        assert_eq!(message_index("Invalid API version"), None);
    }
}
