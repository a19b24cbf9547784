//! Anthropic Messages stream events to an Anthropic response, whichever transport brought
//! them: InvokeModelWithResponseStream's `chunk` frames, or the Messages API's SSE events
//! ([`crate::sse`]), which hand their parsed data to
//! [`push_value`](AnthropicAccumulator::push_value).
//!
//! Each `chunk` frame's payload is `{"bytes": "<base64>"}`; the decoded bytes are one event
//! (`message_start`, `content_block_start`, `content_block_delta`, ...). A block starts as the
//! object in its `content_block_start` (redacted thinking, server tool results and other
//! blocks without deltas arrive whole there); deltas append to its fields: `text_delta`,
//! `thinking_delta`, `signature_delta` and `input_json_delta` fragments are concatenated as
//! sent, `citations_delta` appends its `citation` to the text block's `citations`, and
//! `compaction_delta` appends its `content` and replaces `encrypted_content`. `message_delta`
//! sets the message's `stop_reason` and the rest of its `delta`, merges `usage`, and keeps
//! its other keys (`context_management`, ...) on the message.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use verbatim_model::{JsonMap, Response};

use super::{Event, StreamError, StreamFailure, Update, tool_input};
use crate::{DecodeError, DecodeErrorKind, JsonPath, anthropic, json};

/// The Anthropic event inside an InvokeModelWithResponseStream `chunk` payload.
pub fn chunk_event(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let value = json::parse(payload)?;
    let bytes = value.get("bytes").ok_or_else(|| {
        DecodeError::new(JsonPath::root(), DecodeErrorKind::MissingField { field: "bytes" })
    })?;
    let text = bytes.as_str().ok_or_else(|| {
        DecodeError::new(
            JsonPath::root().key("bytes"),
            DecodeErrorKind::WrongType { expected: "a string", found: json::type_name(bytes) },
        )
    })?;
    STANDARD.decode(text).map_err(|error| {
        DecodeError::new(
            JsonPath::root().key("bytes"),
            DecodeErrorKind::InvalidValue { message: format!("not base64: {error}") },
        )
    })
}

/// Folds Anthropic stream events into a [`Response`].
#[derive(Debug, Default)]
pub struct AnthropicAccumulator {
    events: usize,
    /// The `message_start` message, its `content` taken out.
    message: Option<JsonMap>,
    blocks: BTreeMap<u64, Block>,
    /// The `message_stop` event's other keys (Bedrock's `amazon-bedrock-invocationMetrics`).
    stopped: Option<JsonMap>,
    /// What was kept raw, named (the response's `notes`).
    notes: Vec<String>,
}

#[derive(Debug)]
struct Block {
    /// The `content_block` of `content_block_start`, with deltas applied.
    value: JsonMap,
    /// Tool input fragments (`input_json_delta`), parsed at the end.
    input: Option<String>,
    stopped: bool,
}

impl AnthropicAccumulator {
    /// An accumulator before the first event.
    pub fn new() -> AnthropicAccumulator {
        AnthropicAccumulator::default()
    }

    /// Folds one InvokeModelWithResponseStream `chunk` payload.
    pub fn push_chunk(&mut self, payload: &[u8]) -> Result<Option<Update>, StreamError> {
        let event = chunk_event(payload).map_err(|error| StreamError::Payload {
            event: self.events,
            event_type: "chunk".to_owned(),
            error,
        })?;
        self.push(&event)
    }

    /// Folds one Anthropic event (its JSON bytes).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Update>, StreamError> {
        let value = json::parse(bytes).map_err(|error| StreamError::Payload {
            event: self.events,
            event_type: "?".to_owned(),
            error,
        });
        match value {
            Ok(value) => self.push_value(value),
            Err(error) => {
                self.events += 1;
                Err(error)
            }
        }
    }

    /// Folds one Anthropic event already parsed (an SSE event's data, say): the fold every
    /// transport of these events shares. The strings in it are kept as they are.
    pub fn push_value(&mut self, event: Value) -> Result<Option<Update>, StreamError> {
        let index = self.events;
        self.events += 1;
        let mut map = match event {
            Value::Object(map) => map,
            other => {
                return Err(Event { index, event_type: "?" }.wrong_type(
                    JsonPath::root(),
                    "an object",
                    &other,
                ));
            }
        };
        // `shift_remove` keeps the order of the keys left, which `message_delta` passes on.
        map.shift_remove("p");
        let event_type = match map.shift_remove("type") {
            Some(Value::String(event_type)) => event_type,
            _ => {
                return Err(Event { index, event_type: "?" }.payload_error(
                    JsonPath::root(),
                    DecodeErrorKind::MissingField { field: "type" },
                ));
            }
        };
        let event = Event { index, event_type: &event_type };
        if self.stopped.is_some() {
            return Err(event.sequence("the stream already ended with message_stop"));
        }
        let before_start = !matches!(event_type.as_str(), "message_start" | "ping" | "error");
        if before_start && self.message.is_none() {
            return Err(event.sequence("event before message_start"));
        }
        match event_type.as_str() {
            "message_start" => {
                if self.message.is_some() {
                    return Err(event.sequence("message_start after the message started"));
                }
                let mut message = take_object(&event, &mut map, "message")?;
                message.remove("content");
                self.message = Some(message);
                Ok(None)
            }
            "content_block_start" => {
                let index = event.index(&map, "index")?;
                let value = take_object(&event, &mut map, "content_block")?;
                let at = JsonPath::root().key("content_block");
                let kind = event.string(&value, &at, "type")?;
                if self.blocks.contains_key(&index) {
                    return Err(event.sequence(format!("block {index} started twice")));
                }
                let update = match kind {
                    "tool_use" | "server_tool_use" => Some(Update::ToolUse {
                        index,
                        id: event.string(&value, &at, "id")?.to_owned(),
                        name: event.string(&value, &at, "name")?.to_owned(),
                    }),
                    _ => None,
                };
                self.blocks.insert(index, Block { value, input: None, stopped: false });
                Ok(update)
            }
            "content_block_delta" => self.delta(&event, &map),
            "content_block_stop" => {
                let index = event.index(&map, "index")?;
                let block = self
                    .blocks
                    .get_mut(&index)
                    .ok_or_else(|| event.sequence(format!("index {index} was never started")))?;
                if block.stopped {
                    return Err(event.sequence(format!("block {index} already stopped")));
                }
                block.stopped = true;
                Ok(None)
            }
            "message_delta" => {
                let message = self.message.as_mut().expect("checked above");
                let delta = take_object(&event, &mut map, "delta")?;
                let stopped = delta
                    .get("stop_reason")
                    .and_then(Value::as_str)
                    .map(|reason| Update::Stopped { reason: reason.to_owned() });
                message.extend(delta);
                if let Some(usage) = map.shift_remove("usage") {
                    let Value::Object(usage) = usage else {
                        return Err(event.wrong_type(
                            JsonPath::root().key("usage"),
                            "an object",
                            &usage,
                        ));
                    };
                    let entry =
                        message.entry("usage").or_insert_with(|| Value::Object(JsonMap::new()));
                    if let Value::Object(total) = entry {
                        total.extend(usage);
                    }
                }
                // Keys beside `delta` and `usage` (`context_management`, ...) belong to the
                // message too.
                message.extend(map);
                Ok(stopped)
            }
            "message_stop" => {
                self.stopped = Some(map);
                Ok(None)
            }
            "ping" => Ok(None),
            "error" => Err(StreamError::Failed {
                event: index,
                failure: StreamFailure::from_body(&Value::Object(map)),
            }),
            // A type this version does not know: kept, named, and the reply read on. (A
            // block of an unknown type needs nothing of the kind: its start is kept whole.)
            other => {
                let mut raw = JsonMap::new();
                raw.insert("type".into(), Value::String(other.to_owned()));
                raw.extend(map);
                self.notes.push(format!(
                    "event {} ({other}): an event type this version does not read, kept as {}",
                    event.index,
                    Value::Object(raw)
                ));
                Ok(None)
            }
        }
    }

    fn delta(&mut self, event: &Event<'_>, map: &JsonMap) -> Result<Option<Update>, StreamError> {
        let index = event.index(map, "index")?;
        let at = JsonPath::root().key("delta");
        let delta = event.object(map, &JsonPath::root(), "delta")?;
        let kind = event.string(delta, &at, "type")?;
        let block = self
            .blocks
            .get_mut(&index)
            .ok_or_else(|| event.sequence(format!("delta for index {index}, never started")))?;
        if block.stopped {
            return Err(event.sequence(format!("delta for block {index} after its stop")));
        }
        let block_type = block.value.get("type").and_then(Value::as_str).unwrap_or_default();
        let (field, allowed): (&'static str, &[&str]) = match kind {
            "text_delta" => ("text", &["text"]),
            "thinking_delta" => ("thinking", &["thinking"]),
            "signature_delta" => ("signature", &["thinking"]),
            "input_json_delta" => ("partial_json", &["tool_use", "server_tool_use"]),
            "citations_delta" => ("citation", &["text"]),
            "compaction_delta" => ("content", &["compaction"]),
            other => {
                let raw = Value::Object(delta.clone());
                self.notes.push(format!(
                    "event {} ({}): block {index}: a delta type this version does not read \
                     ({other}), kept as {raw}",
                    event.index, event.event_type
                ));
                return Ok(None);
            }
        };
        if !allowed.contains(&block_type) {
            return Err(event.sequence(format!("{kind} for block {index}, a {block_type} block")));
        }
        match kind {
            "citations_delta" => {
                let citation = event.field(delta, &at, field)?.clone();
                match block.value.get_mut("citations") {
                    Some(Value::Array(citations)) => citations.push(citation),
                    None | Some(Value::Null) => {
                        block.value.insert("citations".into(), Value::Array(vec![citation]));
                    }
                    Some(other) => {
                        let found = json::type_name(other);
                        return Err(event.sequence(format!(
                            "block {index} has citations that are {found}, not an array"
                        )));
                    }
                }
                return Ok(None);
            }
            "compaction_delta" => {
                compaction(event, index, delta, &mut block.value)?;
                return Ok(None);
            }
            _ => {}
        }
        let fragment = event.string(delta, &at, field)?.to_owned();
        if field == "partial_json" {
            block.input.get_or_insert_default().push_str(&fragment);
            return Ok(Some(Update::ToolInput { index, json: fragment }));
        }
        append(event, index, &mut block.value, field, &fragment)?;
        Ok(match field {
            "text" => Some(Update::Text { index, text: fragment }),
            "thinking" => Some(Update::Thinking { index, text: fragment }),
            _ => None,
        })
    }

    /// The whole response; an error if the stream did not reach its end.
    pub fn finish(self) -> Result<Response, StreamError> {
        let incomplete = |reason: String| StreamError::Incomplete { reason };
        let mut message = self.message.ok_or_else(|| incomplete("no message_start".into()))?;
        let stopped = self.stopped.ok_or_else(|| incomplete("no message_stop".into()))?;
        if message.get("stop_reason").is_none_or(Value::is_null) {
            return Err(incomplete("no stop_reason (message_delta) before message_stop".into()));
        }
        let mut content = Vec::with_capacity(self.blocks.len());
        for (index, mut block) in self.blocks {
            if !block.stopped {
                return Err(incomplete(format!("block {index} was never stopped")));
            }
            if let Some(input) = block.input {
                let input = tool_input(&input).map_err(|error| {
                    incomplete(format!(
                        "the input of tool block {index} is not complete JSON: {error}"
                    ))
                })?;
                block.value.insert("input".into(), input);
            }
            content.push(Value::Object(block.value));
        }
        message.insert("content".into(), Value::Array(content));
        for (key, value) in stopped {
            message.insert(key, value);
        }
        let mut response = anthropic::decode_response_value(Value::Object(message))
            .map_err(StreamError::Assembled)?;
        response.notes = self.notes;
        Ok(response)
    }
}

/// Takes the object at `key` out of an event.
fn take_object(
    event: &Event<'_>,
    map: &mut JsonMap,
    key: &'static str,
) -> Result<JsonMap, StreamError> {
    match map.shift_remove(key) {
        Some(Value::Object(object)) => Ok(object),
        Some(other) => Err(event.wrong_type(JsonPath::root().key(key), "an object", &other)),
        None => {
            Err(event.payload_error(JsonPath::root(), DecodeErrorKind::MissingField { field: key }))
        }
    }
}

/// Appends a fragment to a block's string field (absent or `null` counts as empty).
fn append(
    event: &Event<'_>,
    index: u64,
    block: &mut JsonMap,
    field: &str,
    fragment: &str,
) -> Result<(), StreamError> {
    match block.get_mut(field) {
        Some(Value::String(text)) => text.push_str(fragment),
        None | Some(Value::Null) => {
            block.insert(field.to_owned(), Value::String(fragment.to_owned()));
        }
        Some(other) => {
            let found = json::type_name(other);
            return Err(event
                .sequence(format!("block {index} has a {field} that is {found}, not a string")));
        }
    }
    Ok(())
}

/// A `compaction_delta`: its `content` (the summary, `null` when compaction failed) is
/// appended to the block's, and its `encrypted_content` (opaque, kept as sent) replaces the
/// block's; a `null` or absent member leaves the block's as it was.
fn compaction(
    event: &Event<'_>,
    index: u64,
    delta: &JsonMap,
    block: &mut JsonMap,
) -> Result<(), StreamError> {
    let at = JsonPath::root().key("delta");
    for key in ["content", "encrypted_content"] {
        match delta.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) if key == "content" => {
                append(event, index, block, key, text)?
            }
            Some(Value::String(text)) => {
                block.insert(key.to_owned(), Value::String(text.clone()));
            }
            Some(other) => {
                return Err(event.wrong_type(at.clone().key(key), "a string or null", other));
            }
        }
    }
    Ok(())
}
