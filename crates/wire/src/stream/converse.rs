//! ConverseStream events to a Converse response.
//!
//! Bedrock sends `contentBlockStart` only for tool use (and the newer tool-result and image
//! starts); text and reasoning blocks begin with their first delta.
//!
//! `citation` deltas on a text block make it the `citationsContent` block a whole reply has
//! (`{"content": [{"text"}], "citations": [...]}`, each citation as sent, as the Strands
//! agent SDK folds them). A `toolResult` start (a server tool's result inside the assistant
//! turn, Nova 2's code interpreter) opens a tool-result block whose `toolResult` deltas add
//! content: consecutive text fragments join, JSON items are kept whole. An `image` start and
//! its delta make one image block. A block of a kind this version does not know is kept raw as
//! an unknown block, and an event of an unknown type is kept as its JSON text; both are named
//! in the response's `notes`, and the reply is not lost.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use verbatim_model::{JsonMap, Response};

use super::{Event, StreamError, Update, only_key, tool_input};
use crate::{JsonPath, converse};

/// The block starts and deltas this fold reads; any other member is a kind kept raw.
const KNOWN_MEMBERS: &[&str] =
    &["text", "citation", "reasoningContent", "toolUse", "toolResult", "image"];

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
    /// What was kept raw, named (the response's `notes`).
    notes: Vec<String>,
}

#[derive(Debug)]
struct Block {
    kind: Kind,
    stopped: bool,
}

#[derive(Debug)]
enum Kind {
    /// Text, with the citations sent for it.
    Text {
        text: String,
        citations: Vec<Value>,
    },
    Reasoning {
        text: Option<String>,
        signature: Option<String>,
        redacted: Option<String>,
    },
    ToolUse {
        start: JsonMap,
        input: String,
    },
    /// A server tool's result: its start, then its content.
    ToolResult {
        start: JsonMap,
        content: Vec<Value>,
    },
    /// An image: its start (`format`), then its delta's members (`source`, `error`).
    Image {
        image: JsonMap,
    },
    /// A kind this version does not read: its start and deltas as sent.
    Raw {
        member: String,
        start: Option<Value>,
        deltas: Vec<Value>,
    },
}

impl Kind {
    fn name(&self) -> &str {
        match self {
            Kind::Text { .. } => "text",
            Kind::Reasoning { .. } => "reasoning",
            Kind::ToolUse { .. } => "toolUse",
            Kind::ToolResult { .. } => "toolResult",
            Kind::Image { .. } => "image",
            Kind::Raw { member, .. } => member,
        }
    }

    fn text() -> Kind {
        Kind::Text { text: String::new(), citations: Vec::new() }
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
            other => {
                let raw = Value::Object(map);
                self.notes.push(format!(
                    "event {} ({other}): an event type this version does not read, kept as {raw}",
                    event.index
                ));
                Ok(None)
            }
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
            Some("toolResult") => {
                let result = event.object(start, &at, "toolResult")?;
                event.string(result, &at.key("toolResult"), "toolUseId")?;
                let kind = Kind::ToolResult { start: result.clone(), content: Vec::new() };
                self.open(event, index, kind)?;
                Ok(None)
            }
            Some("image") => {
                let image = event.object(start, &at, "image")?.clone();
                self.open(event, index, Kind::Image { image })?;
                Ok(None)
            }
            Some(other) => {
                let member = self.raw_member(event, index, other)?;
                let start = start.get(other).cloned();
                self.open(event, index, Kind::Raw { member, start, deltas: Vec::new() })?;
                Ok(None)
            }
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
                "text" | "citation" => Kind::text(),
                "reasoningContent" => {
                    Kind::Reasoning { text: None, signature: None, redacted: None }
                }
                // A tool delta with no open tool block has no id or name to belong to; Bedrock
                // has been seen sending one, and clients ignore it (rules R6.9).
                "toolUse" => return Ok(None),
                "toolResult" | "image" => {
                    return Err(event.sequence(format!(
                        "{member} delta for block {index}, which no {member} start opened"
                    )));
                }
                other => {
                    let member = self.raw_member(event, index, other)?;
                    Kind::Raw { member, start: None, deltas: Vec::new() }
                }
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
            ("text", Kind::Text { text, .. }) => {
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
            ("text", Kind::Text { text, .. }) => {
                let fragment = event.string(delta, &at, "text")?;
                text.push_str(fragment);
                Ok(Some(Update::Text { index, text: fragment.to_owned() }))
            }
            ("citation", Kind::Text { citations, .. }) => {
                citations.push(Value::Object(event.object(delta, &at, "citation")?.clone()));
                Ok(None)
            }
            ("toolResult", Kind::ToolResult { content, .. }) => {
                let at = at.clone().key("toolResult");
                let items = match delta.get("toolResult") {
                    Some(Value::Array(items)) => items,
                    Some(other) => return Err(event.wrong_type(at, "an array", other)),
                    None => unreachable!("the delta's only member"),
                };
                for (i, item) in items.iter().enumerate() {
                    let Value::Object(item) = item else {
                        return Err(event.wrong_type(at.index(i), "an object", item));
                    };
                    result_content(content, item);
                }
                Ok(None)
            }
            ("image", Kind::Image { image }) => {
                let delta = event.object(delta, &at, "image")?;
                image.extend(delta.iter().map(|(k, v)| (k.clone(), v.clone())));
                Ok(None)
            }
            (_, Kind::Raw { member: raw, deltas, .. }) if raw == member => {
                deltas.push(delta.get(member).cloned().unwrap_or(Value::Null));
                Ok(None)
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
        let mut response = converse::decode_response_value(Value::Object(response))
            .map_err(StreamError::Assembled)?;
        response.notes = self.notes;
        Ok(response)
    }

    /// The member name a block of unknown kind `member` is kept under, noted. A name the
    /// whole-reply codec reads as a known block cannot hold a raw start and deltas: that one
    /// stays unsupported.
    fn raw_member(
        &mut self,
        event: &Event<'_>,
        index: u64,
        member: &str,
    ) -> Result<String, StreamError> {
        if KNOWN_MEMBERS.contains(&member) || converse::CONTENT_BLOCK_MEMBERS.contains(&member) {
            return Err(event.unsupported(format!("block {index} of kind {member:?}")));
        }
        self.notes.push(format!(
            "block {index}: {member:?}, a block kind this version does not read, kept raw as an \
             unknown block"
        ));
        Ok(member.to_owned())
    }
}

/// Adds one item of a `toolResult` delta: a text fragment joins the text before it, anything
/// else is kept whole.
fn result_content(content: &mut Vec<Value>, item: &JsonMap) {
    if let (Some(Value::String(fragment)), 1) = (item.get("text"), item.len())
        && let Some(Value::Object(last)) = content.last_mut()
        && last.len() == 1
        && let Some(Value::String(text)) = last.get_mut("text")
    {
        text.push_str(fragment);
        return;
    }
    content.push(Value::Object(item.clone()));
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
        Kind::Text { text, citations } if citations.is_empty() => json!({ "text": text }),
        Kind::Text { text, citations } => json!({
            "citationsContent": { "content": [{ "text": text }], "citations": citations }
        }),
        Kind::ToolResult { mut start, content } => {
            start.insert("content".into(), Value::Array(content));
            json!({ "toolResult": start })
        }
        Kind::Image { image } => json!({ "image": image }),
        Kind::Raw { member, start: Some(start), deltas } if deltas.is_empty() => {
            json!({ member: start })
        }
        Kind::Raw { member, start, deltas } => {
            let mut raw = JsonMap::new();
            if let Some(start) = start {
                raw.insert("start".into(), start);
            }
            raw.insert("deltas".into(), Value::Array(deltas));
            json!({ member: raw })
        }
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
