//! The emulated model: what it answers, and the signatures on its thinking.
//!
//! With no script it behaves like Claude: a plain question gets a short text answer; with
//! tools offered it thinks first (when thinking is on) and calls the first tool with arguments
//! that satisfy its input schema; once the tool's result arrives it answers in text.
//!
//! A thinking block's signature is an HMAC-SHA256, under the emulator's secret, of the model,
//! the conversation before the message (its text, tool calls and results; earlier thinking is
//! left out, as the service drops it from context) and the thinking text. So a replayed block
//! verifies, and an altered one, or one moved to another conversation or model, does not.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::conversation::{Block, Conversation, Msg, ToolDef, is_blank};
use crate::families::Family;
use crate::prompt_cache::CacheUsage;
use crate::script::Behaviour;

type HmacSha256 = Hmac<Sha256>;

/// Marks the emulator's signatures (and lets a foreign one be told apart).
const SIGNATURE_TAG: &[u8] = b"vbemu1";

/// What the model answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) blocks: Vec<Block>,
    pub(crate) stop_reason: &'static str,
    /// Input tokens neither read from the prompt cache nor written to it
    /// ([`crate::tokens`], [`crate::prompt_cache`]).
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    /// What the request's cache points did, when it had any.
    pub(crate) cache: Option<CacheUsage>,
    /// The `compaction` block that opens the reply, when the request compacted
    /// ([`crate::compaction`]).
    pub(crate) compaction: Option<Value>,
    /// The reply's `context_management` (`applied_edits`), when the request had one.
    pub(crate) context_management: Option<Value>,
}

/// The geographic prefix and ARN wrapping taken off a model id, so a signature made under
/// `us.anthropic.x` verifies under `anthropic.x` or a profile ARN of it.
pub(crate) fn model_key(model_id: &str) -> String {
    let id = model_id.rsplit('/').next().unwrap_or(model_id);
    for prefix in ["us.", "eu.", "apac.", "jp.", "au.", "ca.", "global.", "us-gov."] {
        if let Some(rest) = id.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    id.to_owned()
}

/// The digest of a conversation prefix, taken one message at a time, so a check that needs
/// the digest before each message of a long conversation hashes each message once.
#[derive(Clone, Default)]
pub(crate) struct PrefixDigest(Sha256);

impl PrefixDigest {
    /// Adds the next message of the prefix.
    pub(crate) fn push(&mut self, message: &Msg) {
        let hash = &mut self.0;
        hash.update(message.role.as_bytes());
        hash.update([0]);
        for block in &message.blocks {
            let part = match block {
                Block::Text(text) if is_blank(text) => continue,
                Block::Text(text) => format!("t:{text}"),
                Block::ToolUse { id, name, input } => format!("u:{id}:{name}:{input}"),
                Block::ToolResult { id, text, .. } => format!("r:{id}:{text}"),
                Block::Thinking { .. } | Block::Redacted(_) | Block::Other(_) => continue,
            };
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update([1]);
    }

    /// The digest of the messages pushed so far.
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }
}

fn prefix_digest(prefix: &[Msg]) -> [u8; 32] {
    let mut digest = PrefixDigest::default();
    for message in prefix {
        digest.push(message);
    }
    digest.digest()
}

/// The signature of thinking `text` produced by `model` after `prefix`.
#[cfg(test)]
pub(crate) fn sign(secret: &[u8], model: &str, prefix: &[Msg], text: &str) -> String {
    sign_after(secret, model, &prefix_digest(prefix), text)
}

/// [`sign`] after the prefix whose digest is `digest`.
pub(crate) fn sign_after(secret: &[u8], model: &str, digest: &[u8; 32], text: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(model_key(model).as_bytes());
    mac.update(&[0]);
    mac.update(digest);
    mac.update(text.as_bytes());
    let mut bytes = SIGNATURE_TAG.to_vec();
    bytes.extend_from_slice(&mac.finalize().into_bytes());
    STANDARD.encode(bytes)
}

/// Redacted thinking: opaque data that carries its own signature over the hidden text.
#[cfg(test)]
pub(crate) fn redacted(secret: &[u8], model: &str, prefix: &[Msg], hidden: &str) -> String {
    redacted_after(secret, model, &prefix_digest(prefix), hidden)
}

/// [`redacted`] after the prefix whose digest is `digest`.
pub(crate) fn redacted_after(
    secret: &[u8],
    model: &str,
    digest: &[u8; 32],
    hidden: &str,
) -> String {
    let signature = sign_after(secret, model, digest, hidden);
    STANDARD.encode(format!("{signature}.{hidden}"))
}

/// Whether a thinking block with `signature` over `text` was produced by this emulator for
/// `model` after `prefix`.
#[cfg(test)]
pub(crate) fn verify(
    secret: &[u8],
    model: &str,
    prefix: &[Msg],
    text: &str,
    signature: &str,
) -> bool {
    verify_after(secret, model, &prefix_digest(prefix), text, signature)
}

/// [`verify`] after the prefix whose digest is `digest`.
pub(crate) fn verify_after(
    secret: &[u8],
    model: &str,
    digest: &[u8; 32],
    text: &str,
    signature: &str,
) -> bool {
    sign_after(secret, model, digest, text) == signature
}

/// Whether redacted data was produced by this emulator for `model` after `prefix`.
#[cfg(test)]
pub(crate) fn verify_redacted(secret: &[u8], model: &str, prefix: &[Msg], data: &str) -> bool {
    verify_redacted_after(secret, model, &prefix_digest(prefix), data)
}

/// [`verify_redacted`] after the prefix whose digest is `digest`.
pub(crate) fn verify_redacted_after(
    secret: &[u8],
    model: &str,
    digest: &[u8; 32],
    data: &str,
) -> bool {
    let Ok(bytes) = STANDARD.decode(data) else { return false };
    let Ok(text) = String::from_utf8(bytes) else { return false };
    let Some((signature, hidden)) = text.split_once('.') else { return false };
    verify_after(secret, model, digest, hidden, signature)
}

/// What a conversation holds that decides the next reply.
struct Situation<'a> {
    question: String,
    /// The texts of the tool results the last message carries.
    results: Vec<&'a str>,
    /// The texts of every tool result since the last plain user message, in order, each once:
    /// what the final answer of a tool loop reports.
    turn_results: Vec<&'a str>,
    /// Tool-result rounds since the last plain user message: steps taken in this turn.
    steps: usize,
}

fn situation(messages: &[Msg]) -> Situation<'_> {
    let last = messages.last();
    let results = last
        .map(|m| {
            m.blocks
                .iter()
                .filter_map(|b| match b {
                    Block::ToolResult { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let steps = messages
        .iter()
        .rev()
        .filter(|m| m.role == "user")
        .take_while(|m| m.has_tool_results())
        .count();
    let mut turn_results: Vec<&str> = Vec::new();
    let rounds = messages.iter().rev().filter(|m| m.role == "user").take(steps);
    let mut rounds: Vec<&Msg> = rounds.collect();
    rounds.reverse();
    for block in rounds.iter().flat_map(|m| &m.blocks) {
        if let Block::ToolResult { text, .. } = block
            && !turn_results.contains(&text.as_str())
        {
            turn_results.push(text);
        }
    }
    let question = messages
        .iter()
        .rev()
        .find(|m| m.is_plain_user())
        .map(|m| {
            m.blocks
                .iter()
                .filter_map(|b| match b {
                    Block::Text(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Situation { question, results, turn_results, steps }
}

/// The reply of `behaviour` to `conversation`.
pub(crate) fn answer(
    secret: &[u8],
    model: &str,
    behaviour: &Behaviour,
    conversation: &Conversation,
) -> Reply {
    let messages = &conversation.messages;
    let Situation { question, results, turn_results, steps } = situation(messages);
    // Taken once: every signature and call id of the reply comes after the same prefix.
    let digest = prefix_digest(messages);
    // Each family's reasoning: Claude reasons when asked, signed. DeepSeek R1 and gpt-oss
    // always reason, whatever the request asks, and do not sign it (Converse's
    // `reasoningText` without a signature: bedrock-rules R4.9's point 7, peers.md R-THINK-5;
    // vercel/ai#14720 for gpt-oss). Nova 2 reasons when `reasoningConfig` enables it and
    // shows its reasoning as `[REDACTED]` (the Nova 2 user guide, reasoning capabilities).
    // Nova 1 and the other providers' models answer in plain text.
    let family = Family::of(model);
    let unsigned_reasoning = !family.signs_reasoning();
    let think = || -> Option<Block> {
        if !family.reasons(conversation.thinking) {
            return None;
        }
        let text = if family == Family::Nova2 {
            "[REDACTED]".to_owned()
        } else if results.is_empty() {
            format!("The user asked: {question}. Let me work out the best next step.")
        } else {
            format!("Step {steps} of the task \"{question}\" is done; deciding what comes next.")
        };
        Some(match behaviour {
            _ if unsigned_reasoning => Block::Thinking { signature: None, text },
            Behaviour::Redacted => Block::Redacted(redacted_after(secret, model, &digest, &text)),
            _ => {
                Block::Thinking { signature: Some(sign_after(secret, model, &digest, &text)), text }
            }
        })
    };
    let call = |n: usize, tool: &ToolDef| Block::ToolUse {
        id: format!(
            "tooluse_emu{:016x}{n}",
            u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
        ),
        name: tool.name.clone(),
        input: example(&tool.schema),
    };
    let tools = &conversation.tools;
    // Whether to call a tool now, and whether this step thinks first.
    let (call_tools, thinks) = match behaviour {
        Behaviour::Text | Behaviour::MaxTokens => (false, results.is_empty()),
        Behaviour::Steps(n) => (steps < *n as usize, true),
        Behaviour::ThinkOnce(n) => (steps < *n as usize, steps == 0),
        Behaviour::Interleaved => (results.is_empty(), true),
        _ => (results.is_empty(), results.is_empty()),
    };
    let mut blocks: Vec<Block> = if thinks { think().into_iter().collect() } else { Vec::new() };
    let mut stop_reason = "end_turn";
    if call_tools && !tools.is_empty() {
        if *behaviour == Behaviour::Blank {
            blocks.push(Block::Text("\n\n".to_owned()));
        }
        match behaviour {
            Behaviour::Parallel => {
                let count = tools.len().max(2);
                blocks.extend((0..count).map(|n| call(n, &tools[n % tools.len()])));
            }
            Behaviour::Steps(_) | Behaviour::ThinkOnce(_) => {
                blocks.push(call(0, &tools[steps % tools.len()]))
            }
            _ => blocks.push(call(0, &tools[0])),
        }
        stop_reason = "tool_use";
    } else if *behaviour == Behaviour::Blank {
        blocks.push(Block::Text("\n".to_owned()));
    } else if *behaviour == Behaviour::MaxTokens {
        let limit = conversation.max_tokens.unwrap_or(64).clamp(1, 4096) as usize;
        let words: Vec<&str> = "This answer goes on for longer than it was allowed to"
            .split(' ')
            .cycle()
            .take(limit)
            .collect();
        blocks.push(Block::Text(words.join(" ")));
        stop_reason = "max_tokens";
    } else if results.is_empty() {
        blocks.push(Block::Text(format!("Hello! You said: {question}")));
    } else {
        let summary: String = turn_results.join("; ").chars().take(400).collect();
        let what = if turn_results.len() > 1 { "the tools" } else { "the tool" };
        blocks.push(Block::Text(format!("Here is what {what} returned: {summary}")));
    }
    let output_tokens = match stop_reason {
        "max_tokens" => conversation.max_tokens.unwrap_or(64).clamp(1, 4096),
        _ => blocks.iter().map(block_size).sum::<usize>() as u64 / 4 + 1,
    };
    // The input is counted by the server, which reads the whole body ([`crate::tokens`]).
    Reply {
        blocks,
        stop_reason,
        input_tokens: 0,
        output_tokens,
        cache: None,
        compaction: None,
        context_management: None,
    }
}

fn block_size(block: &Block) -> usize {
    match block {
        Block::Text(text) | Block::Redacted(text) => text.len(),
        Block::Thinking { text, .. } => text.len(),
        Block::ToolUse { input, .. } => input.to_string().len(),
        Block::ToolResult { text, .. } => text.len(),
        Block::Other(_) => 16,
    }
}

/// The most items an example array gets, whatever `minItems` asks for.
const MAX_EXAMPLE_ITEMS: u64 = 8;
/// The longest example string, whatever `minLength` asks for.
const MAX_EXAMPLE_LENGTH: u64 = 1024;
/// The most values one example holds: nested arrays and objects multiply, and the schema
/// comes from the request.
const MAX_EXAMPLE_VALUES: usize = 1_000;

/// A value that satisfies a JSON schema's common keywords, within the bounds above (past
/// them, `null`), so no request can make the emulator build a huge value.
pub(crate) fn example(schema: &Value) -> Value {
    let mut budget = MAX_EXAMPLE_VALUES;
    example_within(schema, &mut budget)
}

fn example_within(schema: &Value, budget: &mut usize) -> Value {
    if *budget == 0 {
        return Value::Null;
    }
    *budget -= 1;
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.clone();
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.as_str(),
        Value::Array(kinds) => {
            kinds.iter().filter_map(Value::as_str).find(|k| *k != "null").unwrap_or("null")
        }
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_else(|| properties.keys().map(String::as_str).collect());
                for (name, property) in properties {
                    if required.contains(&name.as_str()) {
                        object.insert(name.clone(), example_within(property, budget));
                    }
                }
            }
            Value::Object(object)
        }
        "array" => {
            // Bounded: the schema comes from the request.
            let count = schema["minItems"].as_u64().unwrap_or(1).clamp(1, MAX_EXAMPLE_ITEMS);
            Value::Array((0..count).map(|_| example_within(&schema["items"], budget)).collect())
        }
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(1)),
        "number" => json!(schema["minimum"].as_f64().unwrap_or(1.5)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => {
            let min = schema["minLength"].as_u64().unwrap_or(0).min(MAX_EXAMPLE_LENGTH) as usize;
            json!("example".repeat(min / 7 + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Msg {
        Msg { role: "user".into(), blocks: vec![Block::Text(text.into())] }
    }

    #[test]
    fn signatures_bind_text_model_and_prefix_but_not_earlier_thinking() {
        let secret = b"s";
        let prefix = vec![user("hi")];
        let signature = sign(secret, "us.anthropic.claude-x", &prefix, "thought");
        assert!(verify(secret, "anthropic.claude-x", &prefix, "thought", &signature));
        assert!(!verify(secret, "anthropic.claude-x", &prefix, "thought!", &signature));
        assert!(!verify(secret, "anthropic.claude-y", &prefix, "thought", &signature));
        assert!(!verify(secret, "anthropic.claude-x", &[user("hello")], "thought", &signature));
        assert!(!verify(b"other", "anthropic.claude-x", &prefix, "thought", &signature));
        let mut with_thinking = prefix.clone();
        with_thinking[0].blocks.push(Block::Thinking { text: "x".into(), signature: None });
        assert!(verify(secret, "anthropic.claude-x", &with_thinking, "thought", &signature));
        let data = redacted(secret, "m", &prefix, "hidden");
        assert!(verify_redacted(secret, "m", &prefix, &data));
        assert!(!verify_redacted(secret, "m", &[user("x")], &data));
    }

    #[test]
    fn example_arguments_satisfy_the_schema() {
        let schema = json!({"type": "object", "required": ["city", "days"], "properties": {
            "city": {"type": "string", "minLength": 10},
            "days": {"type": "integer", "minimum": 3},
            "unit": {"enum": ["c", "f"]},
            "tags": {"type": "array", "items": {"type": "string"}}
        }});
        let value = example(&schema);
        assert_eq!(value["days"], 3);
        assert!(value["city"].as_str().unwrap().len() >= 10);
        assert!(value.get("unit").is_none(), "only required properties");
        assert_eq!(example(&json!({"type": ["null", "boolean"]})), json!(true));
        // A schema asking for more than the bounds gets a bounded value.
        let mut nested = json!({"type": "string", "minLength": 1_000_000_000_000u64});
        for _ in 0..40 {
            nested = json!({"type": "array", "minItems": 1_000_000_000_000u64, "items": nested});
        }
        let bounded = example(&nested).to_string();
        assert!(bounded.len() < 1_100_000, "{} bytes", bounded.len());
    }
}
