//! One turn in progress: settle an unfinished tool loop, take in the input, then call the
//! model (appending the input meanwhile) and run its tools until it stops.
//!
//! The verbs, outermost first: [`Turn::run`] (the whole turn), [`Turn::tool_loop`] (model
//! calls and tool runs until the model stops or the step limit), [`Turn::call_with_retry`]
//! (one model call, tried again once on a validation error after reading the session again),
//! [`Turn::call_once`] (one request out, the pending append written meanwhile), and
//! [`Turn::build_request`] (the request from the assembler, within the context budget).

use std::collections::HashSet;
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use tracing::Instrument as _;
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, Message, Provenance, Role, SessionId, StopReason,
    Tool as ToolDecl, ToolSpec, ToolUse, Usage,
};
use verbatim_protocol::assemble::{Action, Assembler, Fix, Prepared, TurnConfig};
use verbatim_protocol::messages_api;
use verbatim_protocol::rules::explain;
use verbatim_store::{Append, Entry, Lease, StoreError, ToolCallState};
use verbatim_transport::{Call, Exception, TransportError};

use crate::call::call_model;
use crate::context::{Size, Trimmed, trim};
use crate::estimate_tokens;
use crate::log::{Log, tool_uses};
use crate::settle::lifecycle;
use crate::tool::spec;
use crate::{Engine, EngineError, Event, Reply};

/// One turn in progress.
pub(crate) struct Turn<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) id: SessionId,
    /// The session's lease, whose fencing token every append of the turn carries.
    pub(crate) lease: &'a Lease,
    /// The session, including `pending`.
    pub(crate) log: Log,
    /// Entries already in `log` and not yet in the store: the user's side of the next
    /// request (and the fixes recorded for it), appended while that request is under way.
    pub(crate) pending: Option<Append>,
    /// Assembles each request, reusing what the last one shares with it.
    pub(crate) assembler: Assembler,
    pub(crate) on_event: &'a mut (dyn FnMut(Event) + Send),
    pub(crate) usage: Usage,
    pub(crate) steps: u32,
    /// For each message of the last request sent, the stored message it came from (`None`
    /// for one a repair inserted).
    pub(crate) origins: Vec<Option<usize>>,
    /// Whether the turn takes in new input from the user (`send`, not `resume`).
    pub(crate) has_input: bool,
    /// Whether an append of what was pending (the turn's input first of all) succeeded.
    pub(crate) input_stored: bool,
    /// How many stored messages the context budget left out of this turn's last request:
    /// the later requests of the turn keep that cut while it fits, so the thinking of the
    /// tool loop in progress stays after the prefix it was produced after, and the cached
    /// prefix stays put.
    pub(crate) left_out: Option<usize>,
}

/// A request ready to send.
struct Outgoing {
    /// The request and its body, from the assembler.
    prepared: Prepared,
    body: Bytes,
    turn: TurnConfig,
    origins: Vec<Option<usize>>,
}

impl Turn<'_> {
    /// Settles an unfinished tool loop, takes in the input, and runs the turn; `None` when
    /// there is nothing to answer.
    pub(crate) async fn run(
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
        } else if self.log.messages().last().is_none_or(|m| m.message.role != Role::User) {
            return Ok(None);
        }
        self.tool_loop().await.map(Some)
    }

    /// Appends `entries` now (after what is pending).
    pub(crate) async fn append(&mut self, entries: Vec<Entry>) -> Result<(), EngineError> {
        self.flush().await?;
        let append = Append::new(self.log.version(), entries.clone()).under(self.lease);
        let appended =
            self.engine.appended(self.engine.inner.store.append(self.id, append).await)?;
        self.log.appended(appended.first_seq, entries);
        Ok(())
    }

    /// Takes `entries` into the log now and appends them with the next model call (see
    /// [`Turn::call_once`]), or before anything else is appended.
    fn defer(&mut self, entries: Vec<Entry>) {
        let version = self.log.version();
        let lease = self.lease;
        let pending =
            self.pending.get_or_insert_with(|| Append::new(version, Vec::new()).under(lease));
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
            // The lease was taken over: the other instance goes on, this turn stops here.
            fenced @ StoreError::Fenced { .. } => fenced.into(),
            source => {
                let input = self.has_input && !self.input_stored;
                tracing::warn!(error = %source, input, "the user's side of the request was not stored; no reply is kept");
                EngineError::NotStored { input, source }
            }
        }
    }

    /// Calls the model and runs its tools until it stops or the step limit is reached.
    async fn tool_loop(&mut self) -> Result<Reply, EngineError> {
        let max_steps = self.engine.inner.defaults.max_steps;
        loop {
            self.steps += 1;
            let span = tracing::info_span!("step", step = self.steps);
            let (response, provenance) = self.call_with_retry().instrument(span).await?;
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
    async fn call_with_retry(
        &mut self,
    ) -> Result<(verbatim_model::Response, Provenance), EngineError> {
        let first = match self.call_once().await {
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
            r.seq > self.log.version() && matches!(r.entry, Entry::Message(_) | Entry::ToolCall(_))
        });
        if moved {
            // Another writer went on with the conversation: this turn must not continue it.
            return Err(EngineError::Conflict {
                id: self.id,
                expected: self.log.version(),
                actual: session.info.version,
                input_stored: self.input_stored,
            });
        }
        self.log = Log::new(&session);
        match self.call_once().await {
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
    async fn call_once(&mut self) -> Result<(verbatim_model::Response, Provenance), EngineError> {
        let prepared = match self.build_request().await {
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
        let Outgoing { prepared, body, turn, origins } = prepared;
        self.origins = origins;
        let engine = self.engine;
        let defaults = &engine.inner.defaults;
        tracing::debug!(model = %turn.model_id, api = turn.api.as_str(), bytes = body.len(), "calling the model");
        let call = messages_headers(
            Call::new(turn.api, turn.model_id.clone(), body),
            prepared.assembly().request.beta.as_deref(),
        );
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
        let thinking = prepared.assembly().request.thinking.clone();
        let assembler = &mut self.assembler;
        let hashed = async move { assembler.sent(prepared) };
        // The call is polled first: the request goes out (signed, handed to the connection),
        // then the append writes and waits for the disk, and the hash is taken, while the
        // model works. All run to their end: an append is never left halfway for the reply's
        // sake.
        let (response, (written, hash)) = join_both(called, join_both(written, hashed)).await;
        // The reply is dropped when the append failed: it would answer a message the store
        // does not hold.
        if let Some(appended) = written.map_err(|e| self.unstored(e))? {
            debug_assert_eq!(appended.version, self.log.version(), "the log took them in");
            self.input_stored = true;
        }
        let response = response?;
        let mut provenance = Provenance::new(turn.model_id, turn.api);
        provenance.thinking = thinking;
        provenance.region = defaults.region.clone();
        provenance.prefix_hash = Some(hash);
        provenance.stop_reason = response.stop_reason.clone();
        provenance.usage = response.usage.clone();
        provenance.notes = response.notes.clone();
        provenance.context_management = crate::compaction::applied(&response);
        Ok((response, provenance))
    }

    /// Assembles the next request over the whole history and records the history fixes it
    /// needed (so they are decided once and replayed identically; the record is appended
    /// with the call, see [`Turn::call_once`]). When a context budget is
    /// set and the request exceeds it, whole old turns are left out instead (see
    /// [`crate::ContextPolicy`]): that shortened request is a view, and its fixes are not
    /// recorded.
    async fn build_request(&mut self) -> Result<Outgoing, EngineError> {
        let turn = self.turn_config()?;
        let engine = self.engine;
        let defaults = &engine.inner.defaults;
        let full = self.assembler.next(self.log.messages(), &turn, defaults.policy);
        let context = defaults.context;
        let mut size = full.body_len().map(estimate_tokens);
        // The first request of a turn leaves the context budget's headroom for its tool loop;
        // once the turn has left old turns out, its later requests keep doing so.
        let limit = context.map(|c| c.limit(self.steps <= 1 && self.left_out.is_none()));
        let over = |size: Option<u64>| limit.is_some_and(|l| size.is_none_or(|s| s > l));
        // Over the budget by the estimate: the model's own count decides, when asked for.
        let mut scale = 1.0;
        if self.left_out.is_none()
            && over(size)
            && context.is_some_and(|c| c.count_tokens)
            && let (Some(body), Some(estimate)) = (full.body(), size)
        {
            let beta = full.assembly().request.beta.as_deref();
            let call = messages_headers(Call::new(turn.api, turn.model_id.clone(), body), beta);
            match engine.inner.transport.count_tokens(call).await {
                Ok(counted) => {
                    tracing::debug!(counted, estimate, "the model counted the request");
                    scale = counted as f64 / estimate.max(1) as f64;
                    size = Some(counted);
                }
                Err(error) => {
                    tracing::info!(%error, "no token count: the estimate decides");
                }
            }
        }
        let fits = self.left_out.is_none() && !over(size);
        if let Some(body) = full.body().filter(|_| fits) {
            let fixes: Vec<Fix> = full
                .assembly()
                .fixes
                .iter()
                .filter(|f| f.action.changes_history())
                .cloned()
                .collect();
            let replayed = self.log.replay.iter().filter(|f| f.action.changes_history());
            let origins = origins(0, self.log.messages().len(), replayed.chain(&fixes));
            if !fixes.is_empty() {
                for fix in &fixes {
                    tracing::info!(rule = %fix.diagnostic.rule, path = %fix.diagnostic.path, "repaired the history");
                }
                self.defer(vec![Entry::Repair {
                    fixes: fixes.iter().map(crate::fixes::record).collect(),
                }]);
            }
            return Ok(Outgoing { prepared: full, body, turn, origins });
        }
        let Some(context) = context else {
            let diagnostics = full.into_assembly().diagnostics;
            return Err(EngineError::Invalid { id: self.id, diagnostics });
        };
        let trimmed = if context.trim {
            let messages = self.log.messages();
            let limit = limit.unwrap_or(context.budget_tokens);
            let full = size.unwrap_or(0);
            let full = Size { tokens: full, scale };
            trim(messages, &turn, defaults.policy, &context, full, self.left_out, limit)
        } else {
            None
        };
        let Some(Trimmed { prepared, body, left_out }) = trimmed else {
            return Err(match size {
                None => {
                    let diagnostics = full.into_assembly().diagnostics;
                    EngineError::Invalid { id: self.id, diagnostics }
                }
                Some(estimate) => EngineError::ContextBudget {
                    estimate,
                    budget: context.budget_tokens,
                    trimmed: context.trim,
                },
            });
        };
        tracing::info!(left_out, "old turns left out of the request");
        self.left_out = Some(left_out);
        let fixes = prepared.assembly().fixes.iter().filter(|f| f.action.changes_history());
        let origins = origins(left_out, self.log.messages().len() - left_out, fixes);
        Ok(Outgoing { prepared, body, turn, origins })
    }

    fn turn_config(&self) -> Result<TurnConfig, EngineError> {
        let inner = &self.engine.inner;
        let config = self.log.config();
        let mut turn = TurnConfig::new(config.model.clone(), inner.defaults.api);
        let registered: Vec<ToolSpec> = inner.tools.iter().map(|t| spec(t.as_ref())).collect();
        turn.system = config.system.clone();
        turn.tools = config.tools.clone().or_else(|| {
            (!registered.is_empty())
                .then(|| registered.iter().cloned().map(ToolDecl::Spec).collect())
        });
        turn.recorded_tools = registered;
        turn.thinking = config.thinking.clone();
        let settings = &config.settings;
        let mut inference = settings.inference.clone().unwrap_or_default();
        inference.max_tokens = inference.max_tokens.or(Some(inner.defaults.max_tokens));
        turn.inference = Some(inference);
        turn.top_k = settings.top_k;
        turn.tool_choice = settings.tool_choice.clone();
        turn.model_fields = settings.model_fields.clone();
        // Kept request keys go only to the surface whose keys they are (a session imported
        // from an InvokeModel body goes on over Converse without them), and never the
        // `anthropic_version` an imported body named: the engine writes the model's own.
        let dialect = turn.api.dialect();
        let mut kept = settings.unmapped.get(dialect).clone();
        kept.shift_remove(verbatim_protocol::anthropic::VERSION_KEY);
        turn.unmapped = verbatim_model::Unmapped::only(dialect, kept);
        crate::compaction::configure(&mut turn, settings.context_management.as_ref())?;
        turn.open_turn_thinking = self.log.open_turn_thinking();
        // The session's own choice, else the engine's.
        turn.caching = config.caching.unwrap_or(inner.defaults.caching);
        turn.recorded_fixes = self.log.replay.clone();
        Ok(turn)
    }

    fn poisoned(&self, message: String) -> EngineError {
        let last = self.log.messages().len().saturating_sub(1);
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
            .map_or(0, |start| self.log.seqs()[start] - 1);
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
            .messages()
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
}

/// Runs two futures on this task until both are done.
async fn join_both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
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
/// On the Messages API the version and the betas travel as headers: the newest version the
/// model's capability row takes (messages-api V2: `2026-10-21` only from Opus 4.7 on), and
/// the request's betas as assembled (after repair). Other surfaces carry both in the body.
fn messages_headers(call: Call, beta: Option<&[String]>) -> Call {
    if call.api != Api::Messages {
        return call;
    }
    let caps = verbatim_protocol::capability::capabilities(Some(&call.model_id));
    let version = caps.anthropic_versions.messages_header();
    let call = call.with_header(messages_api::VERSION_HEADER, version);
    match beta.filter(|b| !b.is_empty()) {
        Some(beta) => call.with_header(messages_api::BETA_HEADER, beta.join(",")),
        None => call,
    }
}

fn is_validation(error: &TransportError) -> bool {
    // The Messages API answers in Anthropic's shape, where a refused request is an
    // `invalid_request_error` rather than a ValidationException.
    error.api().is_some_and(|api| {
        api.exception == Exception::Validation || api.exception.name() == "invalid_request_error"
    })
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
