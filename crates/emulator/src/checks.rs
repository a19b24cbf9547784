//! What the emulator refuses, with the status, exception and text Bedrock answers (rules
//! file, sections 1-5). Written from the rules, not from the assembler's validator, so it
//! judges requests independently.

use serde_json::Value;

use std::collections::HashSet;

use crate::conversation::{Block, Conversation, Dialect, Msg, is_blank, read};
use crate::{model, schema, versions};

/// A refusal: the answer Bedrock gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) exception: &'static str,
    pub(crate) message: String,
}

pub(crate) fn validation(message: impl Into<String>) -> Refusal {
    Refusal { status: 400, exception: "ValidationException", message: message.into() }
}

/// Checks a parsed body and gives the conversation it holds; or the first refusal found, in
/// the order Bedrock reports them.
pub(crate) fn check(
    dialect: Dialect,
    body: &Value,
    model_id: &str,
    secret: &[u8],
) -> Result<Conversation, Refusal> {
    schema::check(dialect, body)?;
    if dialect == Dialect::Anthropic {
        match body.get("anthropic_version") {
            // No recording has this text; it follows Bedrock's schema-error format (R5.1).
            None => {
                return Err(validation(
                    "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.",
                ));
            }
            Some(Value::String(version))
                if versions::accepts(&model::model_key(model_id), version) => {}
            // The text of boto3#4218, which echoes the version sent (R5.1).
            Some(other) => {
                let shown = other.as_str().map_or_else(|| other.to_string(), str::to_owned);
                return Err(validation(format!("Invalid API version: {shown}")));
            }
        }
    }
    let conversation = read(dialect, body);
    let messages = &conversation.messages;
    roles(dialect, messages)?;
    content(dialect, messages)?;
    tools(dialect, &conversation)?;
    final_thinking(dialect, messages, conversation.thinking)?;
    signatures(dialect, messages, model_id, secret)?;
    Ok(conversation)
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

/// Converse reports what the model rejected under this prefix; the Anthropic body does not.
fn from_model(dialect: Dialect, message: String) -> String {
    match dialect {
        Dialect::Converse => format!("The model returned the following errors: {message}"),
        Dialect::Anthropic => message,
    }
}

/// Rules R1.2 and R2.4: no empty message (but a final assistant one on InvokeModel), no
/// empty or whitespace-only text.
fn content(dialect: Dialect, messages: &[Msg]) -> Result<(), Refusal> {
    for (i, message) in messages.iter().enumerate() {
        if message.blocks.is_empty() {
            let final_assistant = i + 1 == messages.len() && message.role == "assistant";
            match dialect {
                Dialect::Converse => {
                    return Err(validation(format!(
                        "The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."
                    )));
                }
                Dialect::Anthropic if !final_assistant => {
                    return Err(validation(format!(
                        "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                    )));
                }
                Dialect::Anthropic => {}
            }
        }
        for (j, block) in message.blocks.iter().enumerate() {
            let (text, in_result) = match block {
                Block::Text(text) if is_blank(text) => (text.as_str(), false),
                Block::ToolResult { blank: true, .. } => ("", true),
                _ => continue,
            };
            return Err(validation(match dialect {
                Dialect::Converse if !in_result => format!(
                    "The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
                ),
                _ if text.is_empty() => {
                    from_model(dialect, "messages: text content blocks must be non-empty".into())
                }
                _ => from_model(
                    dialect,
                    "messages: text content blocks must contain non-whitespace text".into(),
                ),
            }));
        }
    }
    Ok(())
}

/// Rules R3.1-R3.3, R3.5, R3.6: every tool call answered in the next message, every result
/// answering a call of the previous one, ids unique, and (Converse) a `toolConfig` whenever
/// the history holds tool blocks.
fn tools(dialect: Dialect, conversation: &Conversation) -> Result<(), Refusal> {
    let messages = &conversation.messages;
    let mut seen = HashSet::new();
    let mut any_tool_block = false;
    for (i, message) in messages.iter().enumerate() {
        for (j, block) in message.blocks.iter().enumerate() {
            if let Block::ToolUse { id, .. } = block {
                if !seen.insert(id.as_str()) {
                    return Err(validation(from_model(
                        dialect,
                        format!("messages.{i}.content.{j}: `tool_use` ids must be unique"),
                    )));
                }
            }
        }
        let results = message.tool_results();
        let uses = message.tool_use_ids();
        any_tool_block |= !uses.is_empty() || !results.is_empty();
        if !results.is_empty() {
            let previous: HashSet<&str> = match i.checked_sub(1).map(|p| &messages[p]) {
                Some(previous) if previous.role == "assistant" => {
                    previous.tool_use_ids().into_iter().collect()
                }
                _ => HashSet::new(),
            };
            // The previous message's ids are unique (checked above as it was read), so the
            // set holds as many as the message has tool uses.
            if dialect == Dialect::Converse && results.len() > previous.len() {
                return Err(validation(format!(
                    "The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn."
                )));
            }
            if let Some((j, id)) = results.iter().find(|(_, id)| !previous.contains(id)) {
                return Err(validation(from_model(
                    dialect,
                    format!(
                        "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    ),
                )));
            }
        }
        if uses.is_empty() || message.role != "assistant" {
            continue;
        }
        let answered: HashSet<&str> = match messages.get(i + 1) {
            Some(next) if next.role == "user" => {
                next.tool_results().into_iter().map(|(_, id)| id).collect()
            }
            _ => HashSet::new(),
        };
        let missing: Vec<&str> = uses.into_iter().filter(|id| !answered.contains(id)).collect();
        if !missing.is_empty() {
            return Err(validation(from_model(
                dialect,
                format!(
                    "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    missing.join(", ")
                ),
            )));
        }
    }
    if dialect == Dialect::Converse && any_tool_block && !conversation.tool_config {
        return Err(validation(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ));
    }
    Ok(())
}

/// Every thinking block replayed in the current assistant turn (since the last plain user
/// message: the tool loop in progress, or a prefill) must carry the signature this emulator
/// gave it, and a signature at all (rules R1.8). Thinking in earlier, finished turns is left
/// unchecked: the service ignores it for models that strip it (rules R4.8), so a history
/// compacted or continued on another model there is not refused.
fn signatures(
    dialect: Dialect,
    messages: &[Msg],
    model_id: &str,
    secret: &[u8],
) -> Result<(), Refusal> {
    let turn_start = messages.iter().rposition(Msg::is_plain_user).map_or(0, |i| i + 1);
    // The digest of the messages before each one, taken message by message: hashing the
    // whole prefix again for every thinking block would be quadratic in a long tool loop.
    let mut prefix = model::PrefixDigest::default();
    for message in &messages[..turn_start] {
        prefix.push(message);
    }
    for (i, message) in messages.iter().enumerate().skip(turn_start) {
        if message.role == "assistant" {
            let digest = prefix.digest();
            for (j, block) in message.blocks.iter().enumerate() {
                let valid = match block {
                    Block::Thinking { signature, .. }
                        if signature.as_deref().is_none_or(str::is_empty) =>
                    {
                        return Err(validation(from_model(
                            dialect,
                            format!("messages.{i}.content.{j}.thinking.signature: Field required"),
                        )));
                    }
                    Block::Thinking { text, signature: Some(s) } => {
                        model::verify_after(secret, model_id, &digest, text, s)
                    }
                    Block::Redacted(data) => {
                        model::verify_redacted_after(secret, model_id, &digest, data)
                    }
                    _ => continue,
                };
                if !valid {
                    return Err(validation(match dialect {
                        Dialect::Converse => from_model(
                            dialect,
                            format!(
                                "messages.{i}.content.{j}: Invalid signature in thinking block"
                            ),
                        ),
                        Dialect::Anthropic => format!(
                            "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                        ),
                    }));
                }
            }
        }
        prefix.push(message);
    }
    Ok(())
}

/// Rules R4.6: with thinking on, the assistant message a request continues from (a final
/// prefill, or the one holding the last tool calls of an unfinished tool loop) must start with
/// thinking; with thinking off, a final assistant message may not contain any.
fn final_thinking(dialect: Dialect, messages: &[Msg], thinking: bool) -> Result<(), Refusal> {
    let Some(last) = messages.last() else { return Ok(()) };
    let wrap = |message: String| from_model(dialect, message);
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
    // In a tool loop the requirement falls on the assistant message that opened the loop: the
    // loop is one assistant turn, Claude without interleaved thinking thinks only before its
    // first call, and Bedrock accepts a turn whose reasoning and tool call came back as two
    // consecutive assistant messages (recorded: langchaingo's split-assistant exchange).
    let continued = if last.role == "assistant" {
        Some(messages.len() - 1)
    } else if last.has_tool_results() {
        let mut first = None;
        for (i, message) in messages[..messages.len() - 1].iter().enumerate().rev() {
            match message.role.as_str() {
                "assistant" => first = Some(i),
                _ if message.has_tool_results() => {}
                _ => break,
            }
        }
        first
    } else {
        None
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
