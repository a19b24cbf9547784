//! ConverseStream events to a Converse response.
//!
//! Bedrock sends `contentBlockStart` only for tool use (and the newer tool-result and image
//! starts); text and reasoning blocks begin with their first delta.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use verbatim_model::{JsonMap, Response};

use super::{Event, StreamError, Update, only_key, tool_input};
use crate::{JsonPath, converse};

/// Folds ConverseStream events into a [`Response`].
#[derive(Debug, Default)]
pub struct ConverseAccumulator {
    events: usize,
    role: Option<String>,
    blocks: BTreeMap<u64, Block>,
    /// The `messageStop` payload (without `p`).
    stop: Option<JsonMap>,
    /// The `metadata` payload (without `p`).
    metadata: Option<JsonMap>,
}

#[derive(Debug)]
struct Block {
    kind: Kind,
    stopped: bool,
}

#[derive(Debug)]
enum Kind {
    Text(String),
    Reasoning { text: Option<String>, signature: Option<String>, redacted: Option<String> },
    ToolUse { start: JsonMap, input: String },
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Text(_) => "text",
            Kind::Reasoning { .. } => "reasoning",
            Kind::ToolUse { .. } => "toolUse",
        }
    }
}

impl ConverseAccumulator {
    /// An accumulator before the first event.
    pub fn new() -> ConverseAccumulator {
        ConverseAccumulator::default()
    }

    /// Folds one event (its `:event-type` and payload as received).
    pub fn push(
        &mut self,
        event_type: &str,
        payload: &[u8],
    ) -> Result<Option<Update>, StreamError> {
        let event = Event { index: self.events, event_type };
        self.events += 1;
        let mut map = event.parse(payload)?;
        map.remove("p");
        if self.metadata.is_some() {
            return Err(event.sequence("the stream already ended with metadata"));
        }
        if self.stop.is_some() && event_type != "metadata" {
            return Err(event.sequence("only metadata may follow messageStop"));
        }
        match event_type {
            "messageStart" => {
                if self.role.is_some() || !self.blocks.is_empty() {
                    return Err(event.sequence("messageStart after the message started"));
                }
                self.role = Some(event.string(&map, &JsonPath::root(), "role")?.to_owned());
                Ok(None)
            }
            "contentBlockStart" => self.start(&event, &map),
            "contentBlockDelta" => self.delta(&event, &map),
            "contentBlockStop" => {
                let index = event.index(&map, "contentBlockIndex")?;
                let block = self.blocks.get_mut(&index).ok_or_else(|| {
                    event.sequence(format!("contentBlockIndex {index} was never started"))
                })?;
                if block.stopped {
                    return Err(event.sequence(format!("block {index} already stopped")));
                }
                block.stopped = true;
                Ok(None)
            }
            "messageStop" => {
                let reason = event.string(&map, &JsonPath::root(), "stopReason")?.to_owned();
                self.stop = Some(map);
                Ok(Some(Update::Stopped { reason }))
            }
            "metadata" => {
                if self.stop.is_none() {
                    return Err(event.sequence("metadata before messageStop"));
                }
                self.metadata = Some(map);
                Ok(None)
            }
            other => Err(event.unsupported(format!("event type {other:?}"))),
        }
    }

    fn open(&mut self, event: &Event<'_>, index: u64, kind: Kind) -> Result<(), StreamError> {
        if self.role.is_none() {
            return Err(event.sequence("content before messageStart"));
        }
        if self.blocks.contains_key(&index) {
            return Err(event.sequence(format!("block {index} started twice")));
        }
        self.blocks.insert(index, Block { kind, stopped: false });
        Ok(())
    }

    fn start(&mut self, event: &Event<'_>, map: &JsonMap) -> Result<Option<Update>, StreamError> {
        let index = event.index(map, "contentBlockIndex")?;
        let at = JsonPath::root().key("start");
        let start = event.object(map, &JsonPath::root(), "start")?;
        match only_key(start) {
            Some("toolUse") => {
                let tool = event.object(start, &at, "toolUse")?;
                let at = at.key("toolUse");
                let id = event.string(tool, &at, "toolUseId")?.to_owned();
                let name = event.string(tool, &at, "name")?.to_owned();
                self.open(
                    event,
                    index,
                    Kind::ToolUse { start: tool.clone(), input: String::new() },
                )?;
                Ok(Some(Update::ToolUse { index, id, name }))
            }
            Some(other) => Err(event.unsupported(format!("block start {other:?}"))),
            None => Err(event.not_one_member(at, "a block start")),
        }
    }

    fn delta(&mut self, event: &Event<'_>, map: &JsonMap) -> Result<Option<Update>, StreamError> {
        let index = event.index(map, "contentBlockIndex")?;
        let at = JsonPath::root().key("delta");
        let delta = event.object(map, &JsonPath::root(), "delta")?;
        let Some(member) = only_key(delta) else {
            return Err(event.not_one_member(at, "a delta"));
        };
        // Text and reasoning blocks start with their first delta.
        if !self.blocks.contains_key(&index) {
            let kind = match member {
                "text" => Kind::Text(String::new()),
                "reasoningContent" => {
                    Kind::Reasoning { text: None, signature: None, redacted: None }
                }
                // A tool delta with no open tool block has no id or name to belong to; Bedrock
                // has been seen sending one, and clients ignore it (rules R6.9).
                "toolUse" => return Ok(None),
                other => return Err(event.unsupported(format!("delta {other:?}"))),
            };
            self.open(event, index, kind)?;
        }
        let block = self.blocks.get_mut(&index).expect("opened above");
        if block.stopped {
            return Err(event.sequence(format!("delta for block {index} after its stop")));
        }
        let mismatch = |kind: &Kind| {
            event.sequence(format!("{member} delta for block {index}, a {} block", kind.name()))
        };
        match (member, &mut block.kind) {
            ("text", Kind::Text(text)) => {
                let fragment = event.string(delta, &at, "text")?;
                text.push_str(fragment);
                Ok(Some(Update::Text { index, text: fragment.to_owned() }))
            }
            ("toolUse", Kind::ToolUse { input, .. }) => {
                let tool = event.object(delta, &at, "toolUse")?;
                let fragment = event.string(tool, &at.clone().key("toolUse"), "input")?;
                input.push_str(fragment);
                Ok(Some(Update::ToolInput { index, json: fragment.to_owned() }))
            }
            ("reasoningContent", Kind::Reasoning { text, signature, redacted }) => {
                let reasoning = event.object(delta, &at, "reasoningContent")?;
                let at = at.clone().key("reasoningContent");
                match only_key(reasoning) {
                    Some("text") => {
                        let fragment = event.string(reasoning, &at, "text")?;
                        text.get_or_insert_default().push_str(fragment);
                        Ok(Some(Update::Thinking { index, text: fragment.to_owned() }))
                    }
                    Some("signature") => {
                        let fragment = event.string(reasoning, &at, "signature")?;
                        signature.get_or_insert_default().push_str(fragment);
                        Ok(None)
                    }
                    Some("redactedContent") => {
                        let data = event.string(reasoning, &at, "redactedContent")?;
                        append_base64(redacted, data).map_err(|reason| event.sequence(reason))?;
                        Ok(None)
                    }
                    Some(other) => Err(event.unsupported(format!("reasoning delta {other:?}"))),
                    None => Err(event.not_one_member(at, "a reasoning delta")),
                }
            }
            (_, kind) => Err(mismatch(kind)),
        }
    }

    /// The whole response; an error if the stream did not reach its end.
    pub fn finish(self) -> Result<Response, StreamError> {
        let incomplete = |reason: &str| StreamError::Incomplete { reason: reason.to_owned() };
        let role = self.role.ok_or_else(|| incomplete("no messageStart"))?;
        let stop = self.stop.ok_or_else(|| incomplete("no messageStop"))?;
        let metadata = self.metadata.ok_or_else(|| incomplete("no metadata after messageStop"))?;
        let mut content = Vec::with_capacity(self.blocks.len());
        for (index, block) in self.blocks {
            if !block.stopped {
                return Err(incomplete(&format!("block {index} was never stopped")));
            }
            content.push(block_value(index, block.kind)?);
        }
        let mut response = JsonMap::new();
        response
            .insert("output".into(), json!({ "message": { "role": role, "content": content } }));
        for (key, value) in stop {
            response.insert(key, value);
        }
        for (key, value) in metadata {
            response.insert(key, value);
        }
        converse::decode_response_value(Value::Object(response)).map_err(StreamError::Assembled)
    }
}

/// Appends a redacted-content delta. Two base64 texts concatenate to the base64 of both
/// byte strings only when the first has no padding; anything else would need re-encoding.
fn append_base64(redacted: &mut Option<String>, data: &str) -> Result<(), String> {
    match redacted {
        None => *redacted = Some(data.to_owned()),
        Some(previous) if previous.len() % 4 == 0 && !previous.ends_with('=') => {
            previous.push_str(data);
        }
        Some(_) => {
            return Err("a second redactedContent delta after a padded one".to_owned());
        }
    }
    Ok(())
}

fn block_value(index: u64, kind: Kind) -> Result<Value, StreamError> {
    Ok(match kind {
        Kind::Text(text) => json!({ "text": text }),
        Kind::Reasoning { redacted: Some(data), text: None, signature: None } => {
            json!({ "reasoningContent": { "redactedContent": data } })
        }
        Kind::Reasoning { redacted: Some(_), .. } => {
            return Err(StreamError::Incomplete {
                reason: format!("block {index} mixes redacted and readable reasoning"),
            });
        }
        Kind::Reasoning { text, signature, redacted: None } => {
            let mut reasoning = JsonMap::new();
            reasoning.insert("text".into(), Value::String(text.unwrap_or_default()));
            if let Some(signature) = signature {
                reasoning.insert("signature".into(), Value::String(signature));
            }
            json!({ "reasoningContent": { "reasoningText": reasoning } })
        }
        Kind::ToolUse { mut start, input } => {
            let input = tool_input(&input).map_err(|error| StreamError::Incomplete {
                reason: format!("the input of tool block {index} is not complete JSON: {error}"),
            })?;
            start.insert("input".into(), input);
            json!({ "toolUse": start })
        }
    })
}
