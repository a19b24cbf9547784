//! ConverseStream events to a Converse response.
//!
//! Bedrock sends `contentBlockStart` only for tool use (and the newer tool-result and image
//! starts); text and reasoning blocks begin with their first delta.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use verbatim_model::{JsonMap, Response};

use super::{Event, StreamError, Update, only_key, tool_input};
use crate::{JsonPath, converse};

/// A `contentBlockDelta` event carrying text or reasoning text, as the fast path reads it:
/// these keys only (the padding `p` read as a string, so it is checked as the general way
/// checks it); another key, a duplicate key or a second member fails, and the event is then
/// read the general way.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextDelta<'a> {
    #[serde(rename = "contentBlockIndex")]
    index: u64,
    #[serde(borrow)]
    delta: TextMember<'a>,
    #[serde(borrow, default, rename = "p")]
    _padding: Option<Cow<'a, str>>,
}

impl<'a> TextDelta<'a> {
    fn read(payload: &'a [u8]) -> Option<TextDelta<'a>> {
        // A struct also reads from a JSON array; the general way wants an object.
        if payload.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        serde_json::from_slice(payload).ok()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum TextMember<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    ReasoningContent(#[serde(borrow)] ReasoningText<'a>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum ReasoningText<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
}

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
        // Most events of a reply are text or reasoning-text deltas: those are read straight
        // into borrowed fields. Anything else, or anything unusual about one of them (another
        // member, a duplicate key, a wrong type), goes the general way, which gives the same
        // result or the precise error.
        if event_type == "contentBlockDelta"
            && self.stop.is_none()
            && self.metadata.is_none()
            && let Some(delta) = TextDelta::read(payload)
        {
            let event = Event { index: self.events, event_type };
            self.events += 1;
            return match delta.delta {
                TextMember::Text(text) => self.fragment(&event, delta.index, "text", &text),
                TextMember::ReasoningContent(ReasoningText::Text(text)) => {
                    self.fragment(&event, delta.index, "reasoningContent", &text)
                }
            };
        }
        self.push_general(event_type, payload)
    }

    /// [`ConverseAccumulator::push`] without its fast path.
    fn push_general(
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

    /// The block a `member` delta for block `index` goes to, opened if it is a text or
    /// reasoning block's first; `None` for a delta to ignore.
    fn block(
        &mut self,
        event: &Event<'_>,
        index: u64,
        member: &str,
    ) -> Result<Option<&mut Block>, StreamError> {
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
        Ok(Some(block))
    }

    /// A text delta (`member` "text") or a reasoning-text one (`member` "reasoningContent")
    /// read by the fast path: checked against its block as the general path checks it.
    fn fragment(
        &mut self,
        event: &Event<'_>,
        index: u64,
        member: &'static str,
        fragment: &str,
    ) -> Result<Option<Update>, StreamError> {
        let Some(block) = self.block(event, index, member)? else { return Ok(None) };
        match (member, &mut block.kind) {
            ("text", Kind::Text(text)) => {
                text.push_str(fragment);
                Ok(Some(Update::Text { index, text: fragment.to_owned() }))
            }
            ("reasoningContent", Kind::Reasoning { text, .. }) => {
                text.get_or_insert_default().push_str(fragment);
                Ok(Some(Update::Thinking { index, text: fragment.to_owned() }))
            }
            (_, kind) => Err(event
                .sequence(format!("{member} delta for block {index}, a {} block", kind.name()))),
        }
    }

    fn delta(&mut self, event: &Event<'_>, map: &JsonMap) -> Result<Option<Update>, StreamError> {
        let index = event.index(map, "contentBlockIndex")?;
        let at = JsonPath::root().key("delta");
        let delta = event.object(map, &JsonPath::root(), "delta")?;
        let Some(member) = only_key(delta) else {
            return Err(event.not_one_member(at, "a delta"));
        };
        let Some(block) = self.block(event, index, member)? else { return Ok(None) };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An accumulator after `messageStart`, a text block 0 and a reasoning block 1 begun.
    fn started() -> ConverseAccumulator {
        let mut folded = ConverseAccumulator::new();
        folded.push("messageStart", br#"{"role":"assistant"}"#).unwrap();
        folded
            .push("contentBlockDelta", br#"{"contentBlockIndex":0,"delta":{"text":"a"}}"#)
            .unwrap();
        let reasoning = br#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"text":"b"}}}"#;
        folded.push("contentBlockDelta", reasoning).unwrap();
        folded
    }

    /// Folds the rest of a reply, so the responses of two accumulators can be compared.
    fn finish(mut folded: ConverseAccumulator) -> Result<Response, StreamError> {
        for (event_type, payload) in [
            ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"signature":"c2ln"}}}"#,
            ),
            ("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            ("messageStop", r#"{"stopReason":"end_turn"}"#),
            (
                "metadata",
                r#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3},"metrics":{"latencyMs":1}}"#,
            ),
        ] {
            folded.push(event_type, payload.as_bytes())?;
        }
        folded.finish()
    }

    #[test]
    fn the_fast_path_folds_a_delta_as_the_general_path_does() {
        let fast_ones = [
            r#"{"contentBlockIndex":0,"delta":{"text":" more"},"p":"abcdef"}"#,
            r#"{"p":"x","contentBlockIndex":0,"delta":{"text":"esc\u00e9 \"q\" \n \ud83d\ude00"}}"#,
            r#"  {"contentBlockIndex":1,"delta":{"reasoningContent":{"text":"  kept  "}}}"#,
            r#"{"contentBlockIndex":2,"delta":{"text":"a new block"}}"#,
            r#"{"contentBlockIndex":3,"delta":{"reasoningContent":{"text":"new"}}}"#,
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"wrong block"}}}"#,
            r#"{"contentBlockIndex":1,"delta":{"text":"wrong block"}}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":"x"},"p":null}"#,
        ];
        // Each of these the fast path leaves to the general one.
        let general_ones = [
            r#"{"contentBlockIndex":3,"delta":{"text":"new"},"extra":[1,2]}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":"x"},"p":"\ud800"}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":"x"},"p":1e400}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":"x"},"p":7}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":"x","reasoningContent":{"text":"y"}}}"#,
            r#"{"contentBlockIndex":0,"contentBlockIndex":1,"delta":{"text":"dup"}}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":"x"},"delta":{"text":"y"}}"#,
            r#"{"contentBlockIndex":1.0,"delta":{"text":"x"}}"#,
            r#"{"contentBlockIndex":-1,"delta":{"text":"x"}}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":7}}"#,
            r#"{"contentBlockIndex":0,"delta":{"text":null}}"#,
            r#"{"contentBlockIndex":0,"delta":{}}"#,
            r#"{"contentBlockIndex":0}"#,
            r#"[0,{"text":"an array"}]"#,
            r#"{"contentBlockIndex":0,"delta":{"text":"x"}} trailing"#,
            r#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"text":"a","signature":"s"}}}"#,
            r#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"signature":"c2ln"}}}"#,
            r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{"}}}"#,
            r#"{"contentBlockIndex":0,"delta":{"image":{}}}"#,
        ];
        for payload in fast_ones {
            assert!(TextDelta::read(payload.as_bytes()).is_some(), "{payload}");
        }
        for payload in general_ones {
            assert!(TextDelta::read(payload.as_bytes()).is_none(), "{payload}");
        }
        for payload in fast_ones.into_iter().chain(general_ones) {
            let (mut fast, mut general) = (started(), started());
            let a = fast.push("contentBlockDelta", payload.as_bytes());
            let b = general.push_general("contentBlockDelta", payload.as_bytes());
            assert_eq!(
                a.as_ref().map_err(ToString::to_string),
                b.as_ref().map_err(ToString::to_string),
                "{payload}"
            );
            if a.is_ok() {
                let (a, b) = (finish(fast), finish(general));
                assert_eq!(
                    a.as_ref().map_err(ToString::to_string),
                    b.as_ref().map_err(ToString::to_string),
                    "{payload}"
                );
            }
        }
        // After a block's stop, and after messageStop, the checks are the same too.
        let text = br#"{"contentBlockIndex":0,"delta":{"text":"late"}}"#;
        for stop in [
            ("contentBlockStop", &br#"{"contentBlockIndex":0}"#[..]),
            ("messageStop", &br#"{"stopReason":"end_turn"}"#[..]),
        ] {
            let (mut fast, mut general) = (started(), started());
            fast.push(stop.0, stop.1).unwrap();
            general.push(stop.0, stop.1).unwrap();
            let a = fast.push("contentBlockDelta", text).map_err(|e| e.to_string());
            let b = general.push_general("contentBlockDelta", text).map_err(|e| e.to_string());
            assert!(a.is_err());
            assert_eq!(a, b);
        }
    }
}
