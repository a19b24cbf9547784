//! What the emulator refuses, with the status, exception and text Bedrock answers (rules
//! file, sections 1-5). Written from the rules, not from the assembler's validator, so it
//! judges requests independently.

use serde_json::Value;

use crate::conversation::{Block, Dialect, Msg, read};
use crate::model;

/// A refusal: the answer Bedrock gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) exception: &'static str,
    pub(crate) message: String,
}

fn validation(message: impl Into<String>) -> Refusal {
    Refusal { status: 400, exception: "ValidationException", message: message.into() }
}

/// The Anthropic version InvokeModel on Bedrock accepts.
const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Checks a parsed body; the first refusal found, in the order Bedrock reports them.
pub(crate) fn check(
    dialect: Dialect,
    body: &Value,
    model_id: &str,
    secret: &[u8],
) -> Result<(), Refusal> {
    if !body.is_object() {
        return Err(validation(
            "Malformed input request, please reformat your input and try again.",
        ));
    }
    if dialect == Dialect::Anthropic {
        match body.get("anthropic_version") {
            // No recording has this text; it follows Bedrock's schema-error format (R5.1).
            None => {
                return Err(validation(
                    "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.",
                ));
            }
            Some(Value::String(version)) if version == ANTHROPIC_VERSION => {}
            Some(other) => {
                let shown = other.as_str().map_or_else(|| other.to_string(), str::to_owned);
                return Err(validation(format!("Invalid API version: {shown}")));
            }
        }
    }
    let conversation = read(dialect, body);
    let messages = &conversation.messages;
    roles(dialect, messages)?;
    signatures(dialect, messages, model_id, secret)?;
    final_thinking(dialect, messages, conversation.thinking)?;
    Ok(())
}

fn roles(dialect: Dialect, messages: &[Msg]) -> Result<(), Refusal> {
    if let Some(first) = messages.first() {
        if first.role != "user" {
            return Err(validation(match dialect {
                Dialect::Converse => {
                    "A conversation must start with a user message. Try again with a conversation that starts with a user message."
                }
                Dialect::Anthropic => "messages: first message must use the \"user\" role",
            }));
        }
    }
    for pair in messages.windows(2) {
        if pair[0].role == pair[1].role {
            return Err(validation(match dialect {
                Dialect::Converse => "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".to_owned(),
                Dialect::Anthropic => format!(
                    "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{}\" roles in a row",
                    pair[1].role
                ),
            }));
        }
    }
    Ok(())
}

/// Every replayed thinking block must carry the signature this emulator gave it.
fn signatures(
    dialect: Dialect,
    messages: &[Msg],
    model_id: &str,
    secret: &[u8],
) -> Result<(), Refusal> {
    for (i, message) in messages.iter().enumerate() {
        if message.role != "assistant" {
            continue;
        }
        let prefix = &messages[..i];
        for (j, block) in message.blocks.iter().enumerate() {
            let valid = match block {
                Block::Thinking { text, signature } => signature
                    .as_deref()
                    .is_some_and(|s| model::verify(secret, model_id, prefix, text, s)),
                Block::Redacted(data) => model::verify_redacted(secret, model_id, prefix, data),
                _ => continue,
            };
            if !valid {
                return Err(validation(match dialect {
                    Dialect::Converse => format!(
                        "The model returned the following errors: messages.{i}.content.{j}: Invalid signature in thinking block"
                    ),
                    Dialect::Anthropic => {
                        format!("messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
                    }
                }));
            }
        }
    }
    Ok(())
}

/// Rules R4.6: with thinking on, the assistant message a request continues from (a final
/// prefill, or the one holding the last tool calls of an unfinished tool loop) must start with
/// thinking; with thinking off, a final assistant message may not contain any.
fn final_thinking(dialect: Dialect, messages: &[Msg], thinking: bool) -> Result<(), Refusal> {
    let Some(last) = messages.last() else { return Ok(()) };
    let wrap = |message: String| match dialect {
        Dialect::Converse => format!("The model returned the following errors: {message}"),
        Dialect::Anthropic => message,
    };
    if !thinking {
        if last.role == "assistant" {
            if let Some(j) = last
                .blocks
                .iter()
                .position(|b| matches!(b, Block::Thinking { .. } | Block::Redacted(_)))
            {
                let i = messages.len() - 1;
                return Err(validation(wrap(format!(
                    "messages.{i}.content.{j}: When thinking is disabled, an `assistant` message in the final position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request."
                ))));
            }
        }
        return Ok(());
    }
    let continued = if last.role == "assistant" {
        Some(messages.len() - 1)
    } else {
        let results = last.blocks.iter().any(|b| matches!(b, Block::ToolResult { .. }));
        let n = messages.len();
        (results && n >= 2 && messages[n - 2].role == "assistant").then(|| n - 2)
    };
    let Some(i) = continued else { return Ok(()) };
    let found = match messages[i].blocks.first() {
        Some(Block::Thinking { .. } | Block::Redacted(_)) => return Ok(()),
        Some(Block::Text(_)) | None => "text",
        Some(Block::ToolUse { .. }) => "tool_use",
        Some(Block::ToolResult { .. }) => "tool_result",
        Some(Block::Other(_)) => "text",
    };
    Err(validation(wrap(format!(
        "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    ))))
}
