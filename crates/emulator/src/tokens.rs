//! The emulator's tokenizer: a deterministic count of a request's input tokens, shared by the
//! usage its replies report, its prompt cache and its token-counting routes.
//!
//! It is not Claude's tokenizer (which is not public); it is a fixed rule, so the same request
//! always counts the same and the same conversation counts the same in either dialect:
//!
//! - a piece of text counts one token per started four bytes of UTF-8 (`""` counts 0);
//! - a content block counts 1, plus its text: a text block its text; thinking its text (the
//!   signature is not counted); redacted thinking its data; a tool use its name and its input
//!   as JSON text; a tool result each part's text (a `json` part as JSON text); any other
//!   block (images, documents, ...) its JSON text, without `cache_control`;
//! - a message counts 3 more (its role and framing), counted with its first block;
//! - a tool definition counts 1 plus its name, description and input schema (as JSON text);
//!   a system text block counts 1 plus its text;
//! - cache points count nothing.
//!
//! A request is read as a list of [`Item`]s in the order the service builds the cached prefix
//! (tools, then system, then messages), each with its tokens, the running digest of the prefix
//! through it, and the cache points that follow it ([`Prompt`]).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::conversation::Dialect;

/// The tokens of a piece of text: one per started four bytes.
pub(crate) fn text_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// One item of the prefix: a tool definition, a system block or a content block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// The tokens of the prefix through it.
    pub(crate) through: u64,
    /// The digest of the prefix through it (model, then every item so far).
    pub(crate) digest: [u8; 32],
}

/// A cache point: after which item, and its time to live in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) after: usize,
    pub(crate) ttl_seconds: u64,
}

/// A request read as its prefix items and cache points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prompt {
    pub(crate) items: Vec<Item>,
    pub(crate) points: Vec<Point>,
}

impl Prompt {
    /// All its input tokens.
    pub(crate) fn total(&self) -> u64 {
        self.items.last().map_or(0, |i| i.through)
    }
}

/// Builds a [`Prompt`]: items are pushed with the text that identifies them.
struct Reader {
    hasher: Sha256,
    prompt: Prompt,
}

impl Reader {
    fn new(model_key: &str) -> Reader {
        let mut hasher = Sha256::new();
        hasher.update(model_key.as_bytes());
        hasher.update([0]);
        Reader { hasher, prompt: Prompt::default() }
    }

    /// Mixes something into the digest that is not an item (the settings the messages' cache
    /// depends on).
    fn mix(&mut self, part: &str) {
        self.hasher.update(part.as_bytes());
        self.hasher.update([2]);
    }

    fn push(&mut self, tokens: u64, identity: &str) {
        self.hasher.update(identity.as_bytes());
        self.hasher.update([0]);
        let through = self.prompt.total() + tokens;
        let digest = self.hasher.clone().finalize().into();
        self.prompt.items.push(Item { through, digest });
    }

    /// Ends a list (tools, system, a message's content): the next item starts another.
    fn end_list(&mut self) {
        self.hasher.update([1]);
    }

    fn point(&mut self, ttl: Option<&str>) {
        // A point with nothing before it is refused by the checks before it gets here.
        let Some(after) = self.prompt.items.len().checked_sub(1) else { return };
        let ttl_seconds = if ttl == Some("1h") { 3600 } else { 300 };
        self.prompt.points.push(Point { after, ttl_seconds });
    }
}

fn ttl_of(point: &Value) -> Option<&str> {
    point.get("ttl").and_then(Value::as_str)
}

/// Reads `body` (a checked request in `dialect`) for `model_key` (the model id without its
/// region prefix).
pub(crate) fn read(dialect: Dialect, body: &Value, model_key: &str) -> Prompt {
    let mut reader = Reader::new(model_key);
    match dialect {
        Dialect::Converse => converse(body, &mut reader),
        Dialect::Anthropic => anthropic(body, &mut reader),
    }
    reader.prompt
}

fn converse(body: &Value, reader: &mut Reader) {
    for tool in body["toolConfig"]["tools"].as_array().into_iter().flatten() {
        if let Some(point) = tool.get("cachePoint") {
            reader.point(ttl_of(point));
        } else if let Some(spec) = tool.get("toolSpec") {
            tool_item(reader, &spec["name"], &spec["description"], &spec["inputSchema"]["json"]);
        } else {
            reader.push(1 + text_tokens(&tool.to_string()), &format!("tool:{tool}"));
        }
    }
    reader.end_list();
    for block in body["system"].as_array().into_iter().flatten() {
        if let Some(point) = block.get("cachePoint") {
            reader.point(ttl_of(point));
        } else if let Some(text) = block.get("text").and_then(Value::as_str) {
            reader.push(1 + text_tokens(text), &format!("s:{text}"));
        } else {
            reader.push(1 + text_tokens(&block.to_string()), &format!("s:{block}"));
        }
    }
    reader.end_list();
    let fields = &body["additionalModelRequestFields"];
    reader.mix(&format!("{}{}", fields["thinking"], fields["reasoningConfig"]));
    reader.mix(&body["toolConfig"]["toolChoice"].to_string());
    for message in body["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or_default();
        let mut first = true;
        for block in message["content"].as_array().into_iter().flatten() {
            if let Some(point) = block.get("cachePoint") {
                reader.point(ttl_of(point));
                continue;
            }
            let (tokens, identity) = converse_block(block);
            let framing = if first { 3 } else { 0 };
            let identity = if first { format!("{role}\0{identity}") } else { identity };
            first = false;
            reader.push(framing + tokens, &identity);
        }
        reader.end_list();
    }
}

fn tool_item(reader: &mut Reader, name: &Value, description: &Value, schema: &Value) {
    let name = name.as_str().unwrap_or_default();
    let description = description.as_str().unwrap_or_default();
    let schema = schema.to_string();
    let tokens = 1 + text_tokens(name) + text_tokens(description) + text_tokens(&schema);
    reader.push(tokens, &format!("tool:{name}\0{description}\0{schema}"));
}

/// A block's tokens and identity, from its kind and text parts.
fn parts(kind: &str, texts: &[&str]) -> (u64, String) {
    let tokens = 1 + texts.iter().map(|t| text_tokens(t)).sum::<u64>();
    (tokens, format!("{kind}:{}", texts.join("\0")))
}

fn converse_block(block: &Value) -> (u64, String) {
    let Some((kind, value)) = block.as_object().and_then(|m| m.iter().next()) else {
        return parts("other", &[]);
    };
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match kind.as_str() {
        "text" => parts("t", &[&str_of(value)]),
        "reasoningContent" => match value.get("redactedContent") {
            Some(data) => parts("r", &[&str_of(data)]),
            None => {
                let text = str_of(&value["reasoningText"]["text"]);
                let (tokens, identity) = parts("k", &[&text]);
                // The signature is part of what is sent, so of the prefix, but not counted.
                (tokens, format!("{identity}\0{}", value["reasoningText"]["signature"]))
            }
        },
        "toolUse" => parts(
            &format!("u:{}", str_of(&value["toolUseId"])),
            &[&str_of(&value["name"]), &value["input"].to_string()],
        ),
        "toolResult" => {
            let texts: Vec<String> = value["content"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["text"].as_str().map_or_else(|| i["json"].to_string(), str::to_owned))
                .collect();
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            parts(&format!("res:{}", str_of(&value["toolUseId"])), &texts)
        }
        _ => parts("other", &[&block.to_string()]),
    }
}

fn anthropic(body: &Value, reader: &mut Reader) {
    for tool in body["tools"].as_array().into_iter().flatten() {
        if tool.get("input_schema").is_some() {
            tool_item(reader, &tool["name"], &tool["description"], &tool["input_schema"]);
        } else {
            let plain = without_cache_control(tool);
            reader.push(1 + text_tokens(&plain.to_string()), &format!("tool:{plain}"));
        }
        if let Some(control) = tool.get("cache_control") {
            reader.point(ttl_of(control));
        }
    }
    reader.end_list();
    match &body["system"] {
        Value::String(text) if !text.is_empty() => {
            reader.push(1 + text_tokens(text), &format!("s:{text}"));
        }
        Value::Array(blocks) => {
            for block in blocks {
                let text = block["text"].as_str().unwrap_or_default();
                reader.push(1 + text_tokens(text), &format!("s:{text}"));
                if let Some(control) = block.get("cache_control") {
                    reader.point(ttl_of(control));
                }
            }
        }
        _ => {}
    }
    reader.end_list();
    reader.mix(&format!("{}null", without_cache_control(&body["thinking"])));
    reader.mix(&body["tool_choice"].to_string());
    for message in body["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or_default();
        let blocks = match &message["content"] {
            Value::String(text) => vec![serde_json::json!({"type": "text", "text": text})],
            Value::Array(blocks) => blocks.clone(),
            _ => Vec::new(),
        };
        for (j, block) in blocks.iter().enumerate() {
            let (tokens, identity) = anthropic_block(block);
            let (framing, identity) =
                if j == 0 { (3, format!("{role}\0{identity}")) } else { (0, identity) };
            reader.push(framing + tokens, &identity);
            if let Some(control) = block.get("cache_control") {
                reader.point(ttl_of(control));
            }
        }
        reader.end_list();
    }
}

fn without_cache_control(value: &Value) -> Value {
    let mut value = value.clone();
    if let Value::Object(map) = &mut value {
        map.remove("cache_control");
    }
    value
}

fn anthropic_block(block: &Value) -> (u64, String) {
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match block["type"].as_str().unwrap_or_default() {
        "text" => parts("t", &[&str_of(&block["text"])]),
        "thinking" => {
            let (tokens, identity) = parts("k", &[&str_of(&block["thinking"])]);
            // Written as Converse writes it, so both dialects give one digest.
            let signature = block.get("signature").cloned().unwrap_or(Value::Null);
            (tokens, format!("{identity}\0{signature}"))
        }
        "redacted_thinking" => parts("r", &[&str_of(&block["data"])]),
        "tool_use" => parts(
            &format!("u:{}", str_of(&block["id"])),
            &[&str_of(&block["name"]), &block["input"].to_string()],
        ),
        "tool_result" => {
            let texts: Vec<String> = match &block["content"] {
                Value::String(text) => vec![text.clone()],
                Value::Array(items) => items.iter().map(|i| str_of(&i["text"])).collect(),
                _ => Vec::new(),
            };
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            parts(&format!("res:{}", str_of(&block["tool_use_id"])), &texts)
        }
        _ => parts("other", &[&without_cache_control(block).to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_counts_one_token_per_started_four_bytes() {
        assert_eq!(text_tokens(""), 0);
        assert_eq!(text_tokens("abcd"), 1);
        assert_eq!(text_tokens("abcde"), 2);
        assert_eq!(text_tokens("é"), 1);
    }

    #[test]
    fn one_conversation_counts_the_same_in_both_dialects() {
        let converse = json!({
            "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "f", "description": "does f",
                "inputSchema": {"json": {"type": "object"}}}}]},
            "messages": [
                {"role": "user", "content": [{"text": "hello there"}]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}}]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"text": "done"}]}},
                    {"cachePoint": {"type": "default", "ttl": "1h"}}]}
            ]
        });
        let anthropic = json!({
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "f", "description": "does f", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": "hello there"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "done"}], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}
            ]
        });
        let a = read(Dialect::Converse, &converse, "m");
        let b = read(Dialect::Anthropic, &anthropic, "m");
        // tool: 1 + 1 + 2 + 5; system: 1 + 3; messages: 3 + 1 + 3, 3 + 1 + 1 + 2, 3 + 1 + 1.
        assert_eq!(a.total(), 9 + 4 + 7 + 7 + 5);
        assert_eq!(a.total(), b.total());
        assert_eq!(a.points, b.points);
        assert_eq!(
            a.points,
            vec![Point { after: 1, ttl_seconds: 300 }, Point { after: 4, ttl_seconds: 3600 }]
        );
        assert_eq!(a.items[4].digest, b.items[4].digest, "the same prefix, the same digest");
        assert_ne!(read(Dialect::Converse, &converse, "other").items[0].digest, a.items[0].digest);
    }
}
