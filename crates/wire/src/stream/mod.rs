//! Folding streamed events into the response a non-streamed call would have returned.
//!
//! [`ConverseAccumulator`] takes ConverseStream events (`messageStart`, `contentBlockDelta`,
//! ...), [`AnthropicAccumulator`] takes the Anthropic Messages events that
//! InvokeModelWithResponseStream carries base64-encoded in `chunk` frames, and the same events
//! parsed from the Messages API's SSE stream ([`crate::sse`]) through
//! [`push_value`](AnthropicAccumulator::push_value): one fold for both. Each `push` returns
//! an [`Update`] for a live view; `finish` returns the whole
//! [`Response`](verbatim_model::Response) or, when the stream
//! stopped early, an error: a half-finished message is never returned.
//!
//! Blocks are keyed by their index (`contentBlockIndex` / `index`), never by arrival order.
//! Text, reasoning text, signatures and tool-input fragments are concatenated exactly as sent;
//! the padding key `p` and unknown event keys are ignored. The assembled message goes through
//! the same codec as a non-streamed response, so both give equal values.

mod anthropic;
mod converse;

pub use anthropic::{AnthropicAccumulator, chunk_event};
pub use converse::ConverseAccumulator;

use serde_json::Value;
use verbatim_model::JsonMap;

use crate::{DecodeError, DecodeErrorKind, JsonPath, json};

/// What an event added, for a caller showing the reply as it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Text appended to block `index`.
    Text {
        /// The block's index.
        index: u64,
        /// The fragment.
        text: String,
    },
    /// Reasoning (thinking) text appended to block `index`.
    Thinking {
        /// The block's index.
        index: u64,
        /// The fragment.
        text: String,
    },
    /// The model started a tool call in block `index`.
    ToolUse {
        /// The block's index.
        index: u64,
        /// The tool-use id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// A fragment of a tool call's JSON input.
    ToolInput {
        /// The block's index.
        index: u64,
        /// The fragment, as sent (not valid JSON on its own).
        json: String,
    },
    /// The model stopped generating.
    Stopped {
        /// The stop reason as sent.
        reason: String,
    },
}

/// Why a stream of events cannot be folded into a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// An event's payload is not what its type requires; `error.path` is inside the payload.
    #[error("event {event} ({event_type}): {error}")]
    Payload {
        /// The event's position in the stream, from 0.
        event: usize,
        /// Its type.
        event_type: String,
        /// What is wrong, and where in the payload.
        error: DecodeError,
    },
    /// An event that cannot come at this point (a delta for a block of another kind, an event
    /// after the end, ...).
    #[error("event {event} ({event_type}): {reason}")]
    Sequence {
        /// The event's position in the stream, from 0.
        event: usize,
        /// Its type.
        event_type: String,
        /// What is out of place.
        reason: String,
    },
    /// A kind of event, block or delta this version cannot assemble; it is reported rather
    /// than dropped.
    #[error("event {event} ({event_type}): unsupported {what}")]
    Unsupported {
        /// The event's position in the stream, from 0.
        event: usize,
        /// Its type.
        event_type: String,
        /// What is not supported.
        what: String,
    },
    /// The model's stream reported an error in an event (Anthropic `error`).
    #[error("event {event}: the model reported an error: {failure}")]
    Failed {
        /// The event's position in the stream, from 0.
        event: usize,
        /// The error's type and message.
        failure: StreamFailure,
    },
    /// The stream ended before the message was complete.
    #[error("stream ended early: {reason}")]
    Incomplete {
        /// What is missing.
        reason: String,
    },
    /// The assembled response did not decode (a block's content is invalid).
    #[error("assembled response: {0}")]
    Assembled(DecodeError),
}

/// An error the model sent inside its stream (an Anthropic `error` event), in place of the
/// rest of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFailure {
    /// The Anthropic error type (`overloaded_error`, `api_error`, ...), when the body names one.
    pub error_type: Option<String>,
    /// The error's message: `error.message`, else a top-level `message` or `Message` (the AWS
    /// shape), else the whole body as text.
    pub message: String,
}

impl StreamFailure {
    /// Reads an error body: `{"type":"error","error":{"type":"...","message":"..."}}`, or the
    /// AWS shape `{"message":"..."}`.
    pub fn from_body(body: &Value) -> StreamFailure {
        let error = body.get("error");
        let error_type =
            error.and_then(|error| error.get("type")).and_then(Value::as_str).map(str::to_owned);
        let message = [
            error.and_then(|error| error.get("message")),
            body.get("message"),
            body.get("Message"),
        ]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_owned);
        StreamFailure { error_type, message }
    }
}

impl std::fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_type {
            Some(error_type) => write!(f, "{error_type}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The event being folded, for error reports.
struct Event<'a> {
    index: usize,
    event_type: &'a str,
}

impl Event<'_> {
    fn payload_error(&self, path: JsonPath, kind: DecodeErrorKind) -> StreamError {
        StreamError::Payload {
            event: self.index,
            event_type: self.event_type.to_owned(),
            error: DecodeError::new(path, kind),
        }
    }

    fn sequence(&self, reason: impl Into<String>) -> StreamError {
        StreamError::Sequence {
            event: self.index,
            event_type: self.event_type.to_owned(),
            reason: reason.into(),
        }
    }

    fn unsupported(&self, what: impl Into<String>) -> StreamError {
        StreamError::Unsupported {
            event: self.index,
            event_type: self.event_type.to_owned(),
            what: what.into(),
        }
    }

    fn parse(&self, payload: &[u8]) -> Result<JsonMap, StreamError> {
        let value = json::parse(payload).map_err(|error| StreamError::Payload {
            event: self.index,
            event_type: self.event_type.to_owned(),
            error,
        })?;
        match value {
            Value::Object(map) => Ok(map),
            other => Err(self.payload_error(
                JsonPath::root(),
                DecodeErrorKind::WrongType {
                    expected: "an object",
                    found: json::type_name(&other),
                },
            )),
        }
    }

    fn field<'v>(
        &self,
        map: &'v JsonMap,
        at: &JsonPath,
        key: &'static str,
    ) -> Result<&'v Value, StreamError> {
        map.get(key).ok_or_else(|| {
            self.payload_error(at.clone(), DecodeErrorKind::MissingField { field: key })
        })
    }

    fn object<'v>(
        &self,
        map: &'v JsonMap,
        at: &JsonPath,
        key: &'static str,
    ) -> Result<&'v JsonMap, StreamError> {
        let value = self.field(map, at, key)?;
        value.as_object().ok_or_else(|| self.wrong_type(at.clone().key(key), "an object", value))
    }

    fn string<'v>(
        &self,
        map: &'v JsonMap,
        at: &JsonPath,
        key: &'static str,
    ) -> Result<&'v str, StreamError> {
        let value = self.field(map, at, key)?;
        value.as_str().ok_or_else(|| self.wrong_type(at.clone().key(key), "a string", value))
    }

    fn index(&self, map: &JsonMap, key: &'static str) -> Result<u64, StreamError> {
        let value = self.field(map, &JsonPath::root(), key)?;
        value.as_u64().ok_or_else(|| {
            self.wrong_type(JsonPath::root().key(key), "a non-negative integer", value)
        })
    }

    /// A union object (`start`, `delta`, ...) that does not hold exactly one member.
    fn not_one_member(&self, path: JsonPath, what: &str) -> StreamError {
        let message = format!("{what} must hold exactly one member");
        self.payload_error(path, DecodeErrorKind::InvalidValue { message })
    }

    fn wrong_type(&self, path: JsonPath, expected: &'static str, found: &Value) -> StreamError {
        self.payload_error(
            path,
            DecodeErrorKind::WrongType { expected, found: json::type_name(found) },
        )
    }
}

/// The single key of a union object, or `None` when it has none or several.
fn only_key(map: &JsonMap) -> Option<&str> {
    let mut keys = map.keys();
    match (keys.next(), keys.next()) {
        (Some(key), None) => Some(key),
        _ => None,
    }
}

/// Parses accumulated tool-input JSON; an empty input is an empty object.
fn tool_input(fragments: &str) -> Result<Value, serde_json::Error> {
    if fragments.is_empty() {
        return Ok(Value::Object(JsonMap::new()));
    }
    serde_json::from_str(fragments)
}
