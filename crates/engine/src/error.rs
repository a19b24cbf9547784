//! What can go wrong in a turn.

use std::time::Duration;

use verbatim_model::SessionId;
use verbatim_protocol::DecodeError;
use verbatim_protocol::assemble::Diagnostic;
use verbatim_protocol::rules::Rule;
use verbatim_protocol::stream::StreamError;
use verbatim_store::StoreError;
use verbatim_transport::TransportError;

/// Why a turn did not complete. Whatever the error, the session holds only whole turns and
/// paired tool calls: `resume` continues from where it stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The builder lacks something it needs.
    #[error("engine configuration: {0}")]
    Config(String),
    /// The session's configuration asks for what its API cannot send (server compaction or
    /// context editing on Converse); refused before any call.
    #[error("{0}")]
    Unsupported(String),
    /// A model id refused as it enters (empty, over 2048 characters, or holding a control
    /// character): a new session's model or a model switch.
    #[error(transparent)]
    ModelId(#[from] verbatim_model::ModelIdError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// Another writer appended to the session since this one read it; nothing of this append
    /// was written. When `input_stored` is false nothing of the turn was stored: send it
    /// again. When it is true the turn's input is in the history (another writer went on
    /// after it): `resume` answers it if no one did, rather than sending it twice.
    #[error(
        "session {id} changed under this writer (expected version {expected}, found {actual}): nothing was written; retry"
    )]
    Conflict {
        /// The session.
        id: SessionId,
        /// The version this writer expected.
        expected: u64,
        /// The version found.
        actual: u64,
        /// Whether the turn's input had been stored before the conflict.
        input_stored: bool,
    },
    /// The store failed to append the user's side of a request: the turn's input (with any
    /// repairs recorded for it) or the results of its tool calls. None of it was stored;
    /// the model's reply, if the call had gone out while the append ran, was discarded, and
    /// nothing after it was stored. The handle reads the session from the store again on
    /// its next turn; until an append succeeds, the engine stores a request's input before
    /// calling the model, so no further call is made while appends keep failing.
    #[error(
        "the store failed: {} not stored, and no reply of the model was kept",
        if *.input { "the turn's input was" } else { "the tool results were" }
    )]
    NotStored {
        /// Whether what was not stored holds the turn's input (otherwise: tool results
        /// only, the input having been stored before).
        input: bool,
        /// Why the append failed.
        #[source]
        source: StoreError,
    },
    /// A turn of this session is already running: in this engine (`holder` is `None`), or in
    /// another engine or instance, which still held the session's lease when this one had
    /// waited [`crate::Defaults::lease_wait`]. Nothing was written; try again later.
    #[error("session {id} is busy with another turn{}", holder_text(.holder.as_deref(), *.expires_in))]
    Busy {
        /// The session.
        id: SessionId,
        /// The owner of the lease that kept this turn out, when it was another engine's.
        holder: Option<String>,
        /// How long that lease had to run, unless renewed.
        expires_in: Option<Duration>,
    },
    /// The turn's lease on its session expired and another engine or instance took the
    /// session over (this engine stalled, or could not reach the store to renew it): nothing
    /// more of the turn was stored, what it stored before stays, and the other instance
    /// settles the tool calls it left.
    #[error(
        "session {id} was taken over by another instance after this turn's lease expired (fencing token {token}, now {current}): nothing more of the turn was stored"
    )]
    LeaseLost {
        /// The session.
        id: SessionId,
        /// The fencing token of this turn's lease.
        token: u64,
        /// The session's lease token now.
        current: u64,
    },
    /// The request cannot be sent: the assembler found errors repair cannot fix.
    #[error("the request for session {id} breaks {} rule(s): {}", .diagnostics.len(), first(.diagnostics))]
    Invalid {
        /// The session.
        id: SessionId,
        /// What is wrong, each with its JSON path.
        diagnostics: Vec<Diagnostic>,
    },
    /// The request would exceed the context budget and the policy does not trim, or trimming
    /// whole old turns is not enough.
    #[error("the request is about {estimate} tokens, over the budget of {budget}{}", if *.trimmed { " even with old turns left out" } else { "" })]
    ContextBudget {
        /// The estimated size of the smallest request that could be built.
        estimate: u64,
        /// The budget.
        budget: u64,
        /// Whether old turns were already left out.
        trimmed: bool,
    },
    /// The transport failed (after its retries), or Bedrock refused the request.
    #[error(transparent)]
    Transport(TransportError),
    /// The stream broke off or its events did not fold into a message; nothing was stored.
    #[error("the reply could not be read (nothing was stored): {0}")]
    Stream(StreamError),
    /// The model's reply cannot be stored as a turn (it reuses a tool-use id); nothing was
    /// stored and no tool ran.
    #[error("unusable reply: {0}")]
    Reply(String),
    /// A whole reply did not decode; nothing was stored.
    #[error("the reply could not be decoded (nothing was stored): {0}")]
    Decode(DecodeError),
    /// The stored history drew the same validation error twice: it will not be accepted as
    /// it is. Nothing was changed; fork the session at `fork_at` (the end of the last turn
    /// before the offending message) to continue from a history that was accepted.
    #[error("session {id} is poisoned: Bedrock refused its history twice with the same error{} (rule {}): {message}; fork it at record {fork_at} to continue", index_text(*.message_index), rule_text(*.rule))]
    Poisoned {
        /// The session.
        id: SessionId,
        /// The stored message Bedrock's error names (its `messages.N`, mapped back from the
        /// request as sent to the stored history).
        message_index: Option<usize>,
        /// The rule the error points to, when known.
        rule: Option<Rule>,
        /// Bedrock's message.
        message: String,
        /// The record to fork at: the last record before the turn holding the offending
        /// message.
        fork_at: u64,
    },
}

fn holder_text(holder: Option<&str>, expires_in: Option<Duration>) -> String {
    match (holder, expires_in) {
        (None, _) => " in this engine".to_owned(),
        (Some(holder), Some(left)) => format!(
            " in {holder}, which holds its lease (it ends with that turn, or expires in {:.1} s if not renewed)",
            left.as_secs_f64()
        ),
        (Some(holder), None) => format!(" in {holder}, which holds its lease"),
    }
}

fn first(diagnostics: &[Diagnostic]) -> String {
    diagnostics.first().map(ToString::to_string).unwrap_or_default()
}

fn index_text(index: Option<usize>) -> String {
    index.map(|i| format!(" at messages[{i}]")).unwrap_or_default()
}

fn rule_text(rule: Option<Rule>) -> String {
    rule.map_or_else(|| "unknown".to_owned(), |r| r.id().to_owned())
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> EngineError {
        match error {
            StoreError::Conflict { id, expected, actual } => {
                EngineError::Conflict { id, expected, actual, input_stored: false }
            }
            StoreError::Fenced { id, token, current } => {
                EngineError::LeaseLost { id, token, current }
            }
            StoreError::Busy { id, owner, expires_in } => {
                EngineError::Busy { id, holder: Some(owner), expires_in: Some(expires_in) }
            }
            other => EngineError::Store(other),
        }
    }
}

impl From<TransportError> for EngineError {
    fn from(error: TransportError) -> EngineError {
        EngineError::Transport(error)
    }
}
