//! What the emulator refuses, with the status, exception and text Bedrock answers (rules
//! file, sections 1-5). Written from the rules, not from the assembler's validator, so it
//! judges requests independently.

use serde_json::Value;

use std::collections::HashSet;

use crate::conversation::{Block, Conversation, Dialect, Msg, is_blank, read};
use crate::families::{self, Family};
use crate::{
    attachments, cache, constraints, model, request_fields, schema, settings, structured,
    thinking_blocks, versions,
};

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
                if versions::accepts(
                    versions::Surface::Invoke,
                    &model::model_key(model_id),
                    version,
                ) => {}
            // The text of boto3#4218, which echoes the version sent (R5.1).
            Some(other) => {
                let shown = other.as_str().map_or_else(|| other.to_string(), str::to_owned);
                return Err(validation(format!("Invalid API version: {shown}")));
            }
        }
    }
    system_text(dialect, body)?;
    constraints::check(dialect, body)?;
    attachments::check(dialect, body, model_id)?;
    cache::check(dialect, body)?;
    let conversation = read(dialect, body);
    let messages = &conversation.messages;
    let family = Family::of(model_id);
    roles(dialect, messages, family)?;
    content(dialect, messages)?;
    if dialect == Dialect::Converse {
        media(body, family)?;
        families::text_only(body, family)?;
        families::results_alone(body, model_id)?;
    }
    tools(dialect, &conversation)?;
    if family.signs_reasoning() {
        // Anthropic's setting; the other families' reasoning is judged by `families`.
        final_thinking(dialect, messages, conversation.thinking)?;
    }
    families::replayed(messages, family)?;
    thinking_blocks::check(dialect, messages, family.signs_reasoning())?;
    if family.signs_reasoning() {
        signatures(dialect, messages, model_id, secret, drops_unbound_blocks(body))?;
    }
    if dialect == Dialect::Anthropic {
        crate::compaction::check_blocks(body, secret)?;
    }
    families::settings(dialect, body, family)?;
    // The settings' own checks come last: which of two problems Bedrock names first is not
    // recorded, and the messages' are what a replayed history most often gets wrong.
    request_fields::check(dialect, body)?;
    structured::check(dialect, body, model_id)?;
    settings::check(dialect, body, model_id)?;
    Ok(conversation)
}

/// Rules R1.12 and R1.2: a Converse system text is not empty or whitespace. (The empty one
/// botocore stops first; the server's text for a blank one is not recorded and follows its
/// ContentBlock wording.)
fn system_text(dialect: Dialect, body: &Value) -> Result<(), Refusal> {
    if dialect != Dialect::Converse {
        return Ok(());
    }
    let system = body.get("system").and_then(Value::as_array).into_iter().flatten();
    for (i, block) in system.enumerate() {
        if block.get("text").and_then(Value::as_str).is_some_and(is_blank) {
            return Err(validation(format!(
                "The text field in the SystemContentBlock object at system.{i} is blank. Add text to the text field, and try again."
            )));
        }
    }
    Ok(())
}

/// Rules R2.2 and R2.3 as recorded. The first message: InvokeModel refuses an assistant one;
/// Converse took one from Claude Sonnet 4.5 (pydantic-ai
/// `test_bedrock_anthropic_message_history_starting_with_response`, 200). Neighbours with one
/// role: two user messages are refused on Converse to Claude (dify#9294, kibana#284682);
/// InvokeModel combines consecutive turns as the Anthropic Messages API does, and other models
/// on Converse take them. Two assistant messages pass (langchaingo's split reasoning and tool
/// use, 200) unless the second carries thinking, which combined would follow other blocks.
fn roles(dialect: Dialect, messages: &[Msg], family: Family) -> Result<(), Refusal> {
    if let Some(first) = messages.first() {
        if first.role != "user" && dialect == Dialect::Anthropic {
            return Err(validation("messages: first message must use the \"user\" role"));
        }
        if first.role != "user" && first.role != "assistant" {
            return Err(validation(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ));
        }
    }
    for pair in messages.windows(2) {
        let refused = match pair[1].role.as_str() {
            "assistant" => pair[1]
                .blocks
                .iter()
                .any(|b| matches!(b, Block::Thinking { .. } | Block::Redacted(_))),
            "user" => dialect == Dialect::Converse && family == Family::Claude,
            _ => true,
        };
        if pair[0].role == pair[1].role && refused {
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

/// Media the model does not take (Converse): video on Claude ("This model doesn't support
/// the video content block", recorded; audio gets the same words), an image or video from S3 on Claude ("This model
/// doesn't support the s3Uri field", recorded for an image inside a tool result), and video
/// inside a tool result on Nova, whose schema refuses the toolResult key (reported in the
/// false-refusal issue; the same text is recorded for S3 media inside a tool result). A
/// document from S3 in a Claude user message reaches the model without its source type
/// (recorded: pydantic-ai `tool_return_content-uploaded_file-document-bedrock_claude`).
fn media(body: &Value, family: Family) -> Result<(), Refusal> {
    const S3: &str = "This model doesn't support the s3Uri field. Remove s3Uri and try again.";
    const VIDEO: &str = "This model doesn't support the video content block that you provided. Update the content block and try again.";
    let from_s3 = |media: &Value| media["source"].get("s3Location").is_some();
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, message) in messages.iter().enumerate() {
        let blocks = message["content"].as_array().map(Vec::as_slice).unwrap_or_default();
        for (j, block) in blocks.iter().enumerate() {
            if family == Family::Claude && block.get("document").is_some_and(from_s3) {
                return Err(validation(format!(
                    "The model returned the following errors: messages.{i}.content.{j}.document.source.type: Field required"
                )));
            }
            let mut items: Vec<&Value> = vec![block];
            let in_result = block.get("toolResult");
            if let Some(result) = in_result {
                items.extend(result["content"].as_array().into_iter().flatten());
            }
            for item in items {
                if item.get("audio").is_some() && family == Family::Claude {
                    return Err(validation(VIDEO.replace("video", "audio")));
                }
                if let Some(video) = item.get("video") {
                    if family == Family::Claude {
                        return Err(validation(if from_s3(video) { S3 } else { VIDEO }));
                    }
                    if family.is_nova() && in_result.is_some() {
                        return Err(validation(format!(
                            "The model returned the following errors: Malformed input request: #/messages/{i}/content/{j}: extraneous key [toolResult] is not permitted, please reformat your input and try again."
                        )));
                    }
                }
                if let Some(image) = item.get("image")
                    && family == Family::Claude
                    && from_s3(image)
                {
                    return Err(validation(S3));
                }
            }
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
                // Recorded: Bedrock took a user message's "\n" beside other text (the
                // validator's `text.blank.user_whitespace_warning` case); the refusals
                // recorded are of empty text and of an assistant's whitespace (R1.2).
                Block::Text(text)
                    if message.role == "user" && !text.is_empty() && message.blocks.len() > 1 =>
                {
                    continue;
                }
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
            if let Block::ToolUse { id, .. } = block
                && !seen.insert(id.as_str())
            {
                return Err(validation(from_model(
                    dialect,
                    format!("messages.{i}.content.{j}: `tool_use` ids must be unique"),
                )));
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

/// Whether the request asks the service to drop a thinking block that no longer binds instead
/// of refusing it: `thinking.block_binding.prefix_mismatch_behavior: "drop_block"` with the
/// beta that enables it (rules R4.8). Only an Anthropic body carries it (the Messages API's
/// route moves its header betas into the body it judges).
fn drops_unbound_blocks(body: &Value) -> bool {
    let behaviour =
        body.pointer("/thinking/block_binding/prefix_mismatch_behavior").and_then(Value::as_str);
    let beta = body
        .get("anthropic_beta")
        .and_then(Value::as_array)
        .is_some_and(|b| b.iter().any(|f| f == "thinking-binding-controls-2026-08-01"));
    behaviour == Some("drop_block") && beta
}

/// Every thinking block replayed in the current assistant turn (since the last plain user
/// message: the tool loop in progress, or a prefill) must carry the signature this emulator
/// gave it, and a signature at all (rules R1.8). Thinking in earlier, finished turns is left
/// unchecked: the service ignores it for models that strip it (rules R4.8), so a history
/// compacted or continued on another model there is not refused. A request that asks for
/// unbound blocks to be dropped (`drop_unbound`) is answered without them.
fn signatures(
    dialect: Dialect,
    messages: &[Msg],
    model_id: &str,
    secret: &[u8],
    drop_unbound: bool,
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
                // Asked to, the service drops a block it cannot bind and goes on.
                if !valid && !drop_unbound {
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
        if last.role == "assistant"
            && let Some(j) = last
                .blocks
                .iter()
                .position(|b| matches!(b, Block::Thinking { .. } | Block::Redacted(_)))
        {
            let i = messages.len() - 1;
            return Err(validation(wrap(format!(
                "messages.{i}.content.{j}: When thinking is disabled, an `assistant` message in the final position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request."
            ))));
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    const NOVA: &str = "us.amazon.nova-2-lite-v1:0";
    const LLAMA: &str = "us.meta.llama4-maverick-17b-instruct-v1:0";

    fn answer(dialect: Dialect, body: Value, model: &str) -> Result<(), String> {
        check(dialect, &body, model, b"s").map(drop).map_err(|r| r.message)
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"text": text}]})
    }

    #[test]
    fn two_user_messages_are_refused_on_converse_to_claude_only() {
        let converse = json!({"messages": [user("a"), user("b")]});
        assert!(
            answer(Dialect::Converse, converse.clone(), CLAUDE).unwrap_err().contains("alternate")
        );
        assert_eq!(answer(Dialect::Converse, converse, LLAMA), Ok(()));
        let invoke = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
            "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]});
        assert_eq!(answer(Dialect::Anthropic, invoke, CLAUDE), Ok(()));
        let first =
            json!({"messages": [{"role": "assistant", "content": [{"text": "Hi"}]}, user("b")]});
        assert_eq!(answer(Dialect::Converse, first, CLAUDE), Ok(()));
    }

    #[test]
    fn media_from_s3_and_video_in_a_tool_result_get_each_familys_answer() {
        let with_result = |item: Value| {
            json!({"messages": [user("get it"),
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get", "input": {}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [item]}}]}],
                "toolConfig": {"tools": [{"toolSpec": {"name": "get", "inputSchema": {"json": {"type": "object"}}}}]}})
        };
        let s3 =
            json!({"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/k.png"}}}});
        let video = json!({"video": {"format": "mp4", "source": {"bytes": "AAAA"}}});
        assert_eq!(
            answer(Dialect::Converse, with_result(s3.clone()), CLAUDE).unwrap_err(),
            "This model doesn't support the s3Uri field. Remove s3Uri and try again."
        );
        assert_eq!(answer(Dialect::Converse, with_result(s3), NOVA), Ok(()));
        assert!(
            answer(Dialect::Converse, with_result(video.clone()), CLAUDE)
                .unwrap_err()
                .starts_with("This model doesn't support the video content block")
        );
        assert_eq!(
            answer(Dialect::Converse, with_result(video.clone()), NOVA).unwrap_err(),
            "The model returned the following errors: Malformed input request: #/messages/2/content/0: extraneous key [toolResult] is not permitted, please reformat your input and try again."
        );
        assert_eq!(answer(Dialect::Converse, with_result(video), LLAMA), Ok(()));
    }

    #[test]
    fn a_server_tool_answered_in_its_own_message_needs_no_user_result() {
        let turn = |result_id: &str| {
            json!({"messages": [user("1234 * 5678?"),
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "s1", "name": "nova_code_interpreter", "input": {}, "type": "server_tool_use"}},
                    {"toolResult": {"toolUseId": result_id, "content": [{"json": {"stdOut": "7006652"}}], "type": "nova_code_interpreter_result"}},
                    {"text": "7006652"}]},
                user("Now times 2")],
                "toolConfig": {"tools": [{"systemTool": {"name": "nova_code_interpreter"}}]}})
        };
        assert_eq!(answer(Dialect::Converse, turn("s1"), NOVA), Ok(()));
        // A result in the assistant message that answers nothing there is still refused.
        assert!(answer(Dialect::Converse, turn("other"), NOVA).is_err());
    }
}
