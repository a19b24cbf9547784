//! The Anthropic Messages events an SSE stream carries: `event: <name>` and `data: <json>`,
//! the same events InvokeModel's `chunk` frames carry, folded by the same accumulator.
//!
//! As the Anthropic SDK reads them: `ping` is skipped, and so are events without a name or
//! with empty data; `event: error` is the model's error, which ends the stream (with or
//! without data); every other event's data is the JSON event to fold, and its `type` must be
//! the event's name. Unknown names are not skipped: the fold keeps what
//! they carry and names them in the response's `notes`.

use serde_json::Value;
use verbatim_model::Response;

use super::{SseDecoder, SseError, SseEvent, SseLimits};
use crate::stream::{AnthropicAccumulator, StreamError, StreamFailure, Update};
use crate::{DecodeError, json};

/// Why an SSE event is not an Anthropic stream event to fold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagesEventError {
    /// `event: error`: the model's stream reported an error in place of the rest of the reply.
    #[error("event at byte {offset}: the model reported an error: {failure}")]
    Failed {
        /// Where the SSE event starts in the stream.
        offset: u64,
        /// The error's type and message.
        failure: StreamFailure,
    },
    /// The data is not JSON.
    #[error("event {name:?} at byte {offset}: data: {error}")]
    Data {
        /// The event's name.
        name: String,
        /// Where the SSE event starts in the stream.
        offset: u64,
        /// What the JSON parser found.
        error: DecodeError,
    },
    /// The data's `type` is not the event's name.
    #[error("event {name:?} at byte {offset} carries data of type {found:?}")]
    Mismatch {
        /// The event's name.
        name: String,
        /// Where the SSE event starts in the stream.
        offset: u64,
        /// The data's `type`.
        found: String,
    },
}

/// The Anthropic stream event an SSE event carries, parsed; `None` for one to skip (`ping`,
/// no name, empty data).
pub fn messages_event(event: &SseEvent) -> Result<Option<Value>, MessagesEventError> {
    let Some(name) = event.event.as_deref() else { return Ok(None) };
    let offset = event.offset;
    if name == "error" {
        // Even without data: an error is never skipped.
        let failure = match json::parse(event.data.as_bytes()) {
            Ok(body) => StreamFailure::from_body(&body),
            Err(_) if event.data.is_empty() => StreamFailure {
                error_type: None,
                message: "an error event without data".to_owned(),
            },
            Err(_) => StreamFailure { error_type: None, message: event.data.clone() },
        };
        return Err(MessagesEventError::Failed { offset, failure });
    }
    if name == "ping" || event.data.is_empty() {
        return Ok(None);
    }
    let value = json::parse(event.data.as_bytes()).map_err(|error| MessagesEventError::Data {
        name: name.to_owned(),
        offset,
        error,
    })?;
    match value.get("type").and_then(Value::as_str) {
        Some(found) if found != name => Err(MessagesEventError::Mismatch {
            name: name.to_owned(),
            offset,
            found: found.to_owned(),
        }),
        _ => Ok(Some(value)),
    }
}

/// Why an SSE stream of Anthropic events did not give a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagesFoldError {
    /// The bytes are not a valid event stream.
    #[error(transparent)]
    Sse(#[from] SseError),
    /// An event is the model's error, or not an Anthropic event.
    #[error(transparent)]
    Event(#[from] MessagesEventError),
    /// An event cannot be folded at this point of the stream.
    #[error("event at byte {offset}: {error}")]
    Fold {
        /// Where the SSE event starts in the stream.
        offset: u64,
        /// What the fold found.
        error: StreamError,
    },
    /// The events ended before the message was whole, or it does not decode.
    #[error(transparent)]
    Finish(StreamError),
}

/// Decodes an SSE stream of Anthropic events and folds it into a [`Response`]: push bytes as
/// they arrive, then `finish`. After an error, `push` and `finish` return that error again.
#[derive(Debug, Default)]
pub struct MessagesFold {
    decoder: SseDecoder,
    accumulator: AnthropicAccumulator,
    failed: Option<MessagesFoldError>,
}

impl MessagesFold {
    /// A fold at the start of a stream, with the default limits.
    pub fn new() -> MessagesFold {
        MessagesFold::default()
    }

    /// A fold at the start of a stream, with the given limits.
    pub fn with_limits(limits: SseLimits) -> MessagesFold {
        MessagesFold { decoder: SseDecoder::with_limits(limits), ..MessagesFold::default() }
    }

    /// Folds every event the bytes complete; the updates they gave, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Update>, MessagesFoldError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.decoder.push(bytes);
        let mut updates = Vec::new();
        if let Err(error) = self.fold_events(&mut updates) {
            self.failed = Some(error.clone());
            return Err(error);
        }
        Ok(updates)
    }

    fn fold_events(&mut self, updates: &mut Vec<Update>) -> Result<(), MessagesFoldError> {
        while let Some(event) = self.decoder.next_event()? {
            let Some(value) = messages_event(&event)? else { continue };
            let update = self
                .accumulator
                .push_value(value)
                .map_err(|error| MessagesFoldError::Fold { offset: event.offset, error })?;
            updates.extend(update);
        }
        Ok(())
    }

    /// The whole response; an error if the stream stopped before the message was complete
    /// (the fold's reason first, else where the bytes stopped inside an event).
    pub fn finish(self) -> Result<Response, MessagesFoldError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let response = self.accumulator.finish().map_err(MessagesFoldError::Finish)?;
        self.decoder.finish()?;
        Ok(response)
    }
}
