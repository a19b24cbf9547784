//! The shape of a body, checked before anything else: required keys, keys the service does
//! not know (it is strict about them, rules R1.1 and R5.1) and tagged unions that set other
//! than exactly one member.
//!
//! Unknown and missing keys get the service's schema-error text (`Malformed input request:
//! #/path: ...`, rules R1.9 and R5.1). A Converse union with two members or none gets the
//! text botocore gives before sending (rules R1.1); the service's own text for it has not been
//! recorded, and these are the words users search for.

use serde_json::{Map, Value};

use crate::checks::{Refusal, validation};
use crate::conversation::Dialect;

/// Top-level keys of a Converse body (the model id is in the path).
const CONVERSE_KEYS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
];

/// The members of Converse's `ContentBlock` union.
const CONTENT_MEMBERS: &[&str] = &[
    "text",
    "image",
    "document",
    "video",
    "audio",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
    "citationsContent",
    "searchResult",
    "toolAddition",
    "toolRemoval",
];

const REASONING_MEMBERS: &[&str] = &["reasoningText", "redactedContent"];
const TOOL_RESULT_MEMBERS: &[&str] =
    &["text", "image", "document", "json", "video", "searchResult"];
const SYSTEM_MEMBERS: &[&str] = &["text", "guardContent", "cachePoint"];

/// Top-level keys of an Anthropic Messages body on Bedrock (no `model`, no `stream`).
const ANTHROPIC_KEYS: &[&str] = &[
    "anthropic_version",
    "anthropic_beta",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "metadata",
    // Server compaction and context editing ([`crate::compaction`]): measured accepted on the
    // Messages API (messages-api F1), whose body is this one; taken on InvokeModel too.
    "context_management",
];

/// The keys each Anthropic block type may carry; other types are not checked.
fn anthropic_block_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "text" => &["type", "text", "cache_control", "citations"],
        "image" => &["type", "source", "cache_control"],
        "document" => &["type", "source", "title", "context", "citations", "cache_control"],
        "thinking" => &["type", "thinking", "signature"],
        "redacted_thinking" => &["type", "data"],
        "tool_use" => &["type", "id", "name", "input", "cache_control"],
        "tool_result" => &["type", "tool_use_id", "content", "is_error", "cache_control"],
        _ => return None,
    })
}

fn malformed(path: &str, problem: String) -> Refusal {
    validation(format!(
        "Malformed input request: {path}: {problem}, please reformat your input and try again."
    ))
}

fn extraneous(path: &str, object: &Map<String, Value>, allowed: &[&str]) -> Result<(), Refusal> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(malformed(path, format!("extraneous key [{key}] is not permitted"))),
        None => Ok(()),
    }
}

fn required(path: &str, object: &Map<String, Value>, keys: &[&str]) -> Result<(), Refusal> {
    match keys.iter().find(|key| !object.contains_key(**key)) {
        Some(key) => Err(malformed(path, format!("required key [{key}] not found"))),
        None => Ok(()),
    }
}

/// The schema error for `path` holding a value of the wrong type.
fn wrong_type(path: &str, expected: &str, value: &Value) -> Refusal {
    let found = match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    };
    malformed(path, format!("expected type: {expected}, found: {found}"))
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Refusal> {
    value.as_object().ok_or_else(|| wrong_type(path, "JSONObject", value))
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], Refusal> {
    value.as_array().map(Vec::as_slice).ok_or_else(|| wrong_type(path, "JSONArray", value))
}

/// A tagged union: unknown keys first, then exactly one member (`dotted` is botocore's path).
fn union(
    value: &Value,
    path: &str,
    dotted: &str,
    members: &[&str],
) -> Result<(String, Value), Refusal> {
    let object = object(value, path)?;
    extraneous(path, object, members)?;
    let mut set = object.iter();
    match (set.next(), set.next()) {
        (Some((name, member)), None) => Ok((name.clone(), member.clone())),
        (None, _) => Err(validation(format!(
            "Must set one of the following keys for tagged unionstructure {dotted}: {}.",
            members.join(", ")
        ))),
        (Some(_), Some(_)) => Err(validation(format!(
            "Invalid number of parameters set for tagged union structure {dotted}. Can only set one of the following keys: {}.",
            members.join(", ")
        ))),
    }
}

/// Checks the shape of a body; the first problem found.
pub(crate) fn check(dialect: Dialect, body: &Value) -> Result<(), Refusal> {
    let top = object(body, "#")?;
    match dialect {
        Dialect::Converse => converse(top),
        Dialect::Anthropic => anthropic(top),
    }
}

fn converse(top: &Map<String, Value>) -> Result<(), Refusal> {
    extraneous("#", top, CONVERSE_KEYS)?;
    if let Some(system) = top.get("system") {
        for (i, block) in array(system, "#/system")?.iter().enumerate() {
            union(block, &format!("#/system/{i}"), &format!("system[{i}]"), SYSTEM_MEMBERS)?;
        }
    }
    let Some(messages) = top.get("messages") else { return Ok(()) };
    for (i, message) in array(messages, "#/messages")?.iter().enumerate() {
        let path = format!("#/messages/{i}");
        let message = object(message, &path)?;
        extraneous(&path, message, &["role", "content"])?;
        required(&path, message, &["role", "content"])?;
        let content_path = format!("{path}/content");
        for (j, block) in array(&message["content"], &content_path)?.iter().enumerate() {
            let path = format!("{content_path}/{j}");
            let dotted = format!("messages[{i}].content[{j}]");
            let (member, value) = union(block, &path, &dotted, CONTENT_MEMBERS)?;
            let path = format!("{path}/{member}");
            match member.as_str() {
                "toolUse" => {
                    let tool_use = object(&value, &path)?;
                    extraneous(&path, tool_use, &["toolUseId", "name", "input", "type"])?;
                    required(&path, tool_use, &["toolUseId", "name", "input"])?;
                }
                "toolResult" => {
                    let result = object(&value, &path)?;
                    extraneous(&path, result, &["toolUseId", "content", "status", "type"])?;
                    required(&path, result, &["toolUseId", "content"])?;
                    let items = array(&result["content"], &format!("{path}/content"))?;
                    for (k, item) in items.iter().enumerate() {
                        union(
                            item,
                            &format!("{path}/content/{k}"),
                            &format!("{dotted}.toolResult.content[{k}]"),
                            TOOL_RESULT_MEMBERS,
                        )?;
                    }
                }
                "reasoningContent" => {
                    let dotted = format!("{dotted}.reasoningContent");
                    let (kind, inner) = union(&value, &path, &dotted, REASONING_MEMBERS)?;
                    if kind == "reasoningText" {
                        let path = format!("{path}/reasoningText");
                        let text = object(&inner, &path)?;
                        extraneous(&path, text, &["text", "signature"])?;
                        required(&path, text, &["text"])?;
                        // Signature-only thinking keeps `"text": ""`; anything but a string
                        // (a null, as some layers write an omitted text) is a schema error.
                        if !text["text"].is_string() {
                            return Err(wrong_type(
                                &format!("{path}/text"),
                                "String",
                                &text["text"],
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn anthropic(top: &Map<String, Value>) -> Result<(), Refusal> {
    extraneous("#", top, ANTHROPIC_KEYS)?;
    required("#", top, &["max_tokens", "messages"])?;
    for (i, message) in array(&top["messages"], "#/messages")?.iter().enumerate() {
        let path = format!("#/messages/{i}");
        let message = object(message, &path)?;
        extraneous(&path, message, &["role", "content"])?;
        required(&path, message, &["role", "content"])?;
        let Value::Array(blocks) = &message["content"] else { continue };
        for (j, block) in blocks.iter().enumerate() {
            let path = format!("{path}/content/{j}");
            let block = object(block, &path)?;
            required(&path, block, &["type"])?;
            if let Some(allowed) = block["type"].as_str().and_then(anthropic_block_keys) {
                extraneous(&path, block, allowed)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(dialect: Dialect, body: Value) -> String {
        check(dialect, &body).unwrap_err().message
    }

    #[test]
    fn unions_need_exactly_one_member_and_no_unknown_key() {
        let with = |block: Value| json!({"messages": [{"role": "user", "content": [block]}]});
        assert!(check(Dialect::Converse, &with(json!({"text": "hi"}))).is_ok());
        let two = refused(
            Dialect::Converse,
            with(json!({"text": "hi", "reasoningContent": {"redactedContent": "x"}})),
        );
        assert!(
            two.starts_with("Invalid number of parameters set for tagged union structure messages[0].content[0]. Can only set one of the following keys: text, image,"),
            "{two}"
        );
        let none = refused(Dialect::Converse, with(json!({})));
        assert!(none.starts_with(
            "Must set one of the following keys for tagged unionstructure messages[0].content[0]: text,"
        ));
        assert_eq!(
            refused(Dialect::Converse, with(json!({"type": "text", "text": "hi"}))),
            "Malformed input request: #/messages/0/content/0: extraneous key [type] is not permitted, please reformat your input and try again."
        );
        let both = json!({"reasoningContent": {"reasoningText": {"text": "a", "signature": "s"}, "redactedContent": "x"}});
        assert!(
            refused(Dialect::Converse, with(both))
                .contains("messages[0].content[0].reasoningContent.")
        );
    }

    #[test]
    fn anthropic_bodies_have_no_model_or_stream_and_their_required_keys() {
        let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}], "model": "claude"});
        assert_eq!(
            refused(Dialect::Anthropic, body),
            "Malformed input request: #: extraneous key [model] is not permitted, please reformat your input and try again."
        );
        let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1,
            "messages": [{"role": "user"}]});
        assert_eq!(
            refused(Dialect::Anthropic, body),
            "Malformed input request: #/messages/0: required key [content] not found, please reformat your input and try again."
        );
        let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a", "reasoningContent": {}}]}]});
        assert!(
            refused(Dialect::Anthropic, body)
                .contains("#/messages/0/content/0: extraneous key [reasoningContent]")
        );
    }
}
