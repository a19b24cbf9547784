//! Raw bodies and encoding: the findings made before (or instead of) the checklist, on a body
//! that is too large, repeats a key, does not decode, or cannot be encoded.
//!
//! Emits [`Rule::Unrepresentable`] (`shape.unrepresentable`), [`Rule::BodySize`]
//! (`request.size`), [`Rule::DuplicateKey`] (`shape.duplicate_key`) and, for a body that does
//! not decode, [`Rule::Union`] (`shape.union`), [`Rule::UnknownKey`] (`shape.unknown_key`),
//! [`Rule::Role`] (`roles.unknown`), [`Rule::InvokeBody`] (`invoke.body`) and
//! [`Rule::Malformed`] (`shape.malformed`).

use serde_json::Value;
use verbatim_model::Api;

use crate::assemble::wire;
use crate::assemble::{Diagnostic, Severity};
use crate::rules::Rule;
use crate::{
    DecodeError, DecodeErrorKind, EncodeError, JsonPath, anthropic, converse, messages_api,
};

/// Largest body Bedrock takes (the service model's `Body` blob maximum).
pub(crate) const MAX_BODY_BYTES: usize = 25_000_000;

/// The diagnostic for a request the target dialect cannot express.
pub(crate) fn unrepresentable(error: EncodeError) -> Diagnostic {
    let message =
        format!("{}. Bedrock answers: the request cannot be sent on this API", error.kind);
    Diagnostic { rule: Rule::Unrepresentable, severity: Severity::Error, path: error.path, message }
}

/// The diagnostic for a body larger than Bedrock takes.
pub(crate) fn body_too_large(len: usize) -> Diagnostic {
    let detail = format!("the body is {len} bytes; Bedrock takes at most {MAX_BODY_BYTES}");
    let message =
        format!("{detail}. Bedrock answers: {}", Rule::BodySize.bedrock_text("", &detail));
    Diagnostic { rule: Rule::BodySize, severity: Severity::Error, path: JsonPath::root(), message }
}

/// The warning for a key given twice in one object, at its repeat.
pub(crate) fn duplicate_key(path: JsonPath) -> Diagnostic {
    let key = match path.segments().last() {
        Some(crate::Segment::Key(key)) => key.clone(),
        _ => String::new(),
    };
    let message = format!(
        "the key `{}` is given twice in this object; verbatim reads the last value, and whether Bedrock reads the first, the last or refuses the body is not known",
        key.escape_debug()
    );
    Diagnostic { rule: Rule::DuplicateKey, severity: Severity::Warning, path, message }
}

/// The most top-level keys taken out one after another to find the next error.
const MAX_TOP_LEVEL_ERRORS: usize = 32;

/// The shape errors of a body that does not decode, as many as can be found in one run: the
/// body without its messages is decoded again after each error with the key at fault taken
/// out, and each message on its own, block by block, so one broken block or key does not
/// hide another.
pub(crate) fn shape_errors(api: Api, mut value: Value, error: DecodeError) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let messages = value
        .as_object_mut()
        .and_then(|body| body.insert("messages".into(), Value::Array(Vec::new())));
    for _ in 0..MAX_TOP_LEVEL_ERRORS {
        let Err(error) = decode_top(api, value.clone()) else { break };
        // The top-level key at fault, when there is one to take out and look again.
        let key = match (&error.kind, error.path.segments().first()) {
            (DecodeErrorKind::Forbidden { field, .. }, _) => Some((*field).to_owned()),
            (_, Some(crate::Segment::Key(key))) => Some(key.clone()),
            _ => None,
        };
        errors.push(shape_error(error, &JsonPath::root()));
        match key.and_then(|key| value.as_object_mut()?.shift_remove(&key)) {
            Some(_) => continue,
            None => break,
        }
    }
    match messages {
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                errors.extend(message_errors(api, i, item));
            }
        }
        Some(other) => {
            let found = verbatim_wire::json::type_name(&other);
            let kind = DecodeErrorKind::WrongType { expected: "array", found };
            errors.push(shape_error(
                DecodeError { path: JsonPath::root().key("messages"), kind },
                &JsonPath::root(),
            ));
        }
        None => {
            let kind = DecodeErrorKind::MissingField { field: "messages" };
            errors
                .push(shape_error(DecodeError { path: JsonPath::root(), kind }, &JsonPath::root()));
        }
    }
    if errors.is_empty() {
        // The parts decode on their own but not together: report the whole body's error.
        errors.push(shape_error(error, &JsonPath::root()));
    }
    errors
}

fn decode_top(api: Api, value: Value) -> Result<(), DecodeError> {
    match api {
        Api::Converse => converse::decode_request_value(value).map(drop),
        Api::InvokeModel => anthropic::decode_request_value(value).map(drop),
        Api::Messages => {
            messages_api::decode_request_value(value, &messages_api::Headers::default()).map(drop)
        }
    }
}

fn decode_message(api: Api, item: Value) -> Result<(), DecodeError> {
    match api {
        Api::Converse => converse::decode_message_value(item).map(drop),
        Api::InvokeModel | Api::Messages => anthropic::decode_message_value(item).map(drop),
    }
}

/// The errors of message `i`: when it does not decode, each of its blocks is decoded in a
/// message of its own, so every broken block is named; the message's own error when no block
/// is at fault (its role, or content that is not a list).
fn message_errors(api: Api, i: usize, item: Value) -> Vec<Diagnostic> {
    let Err(error) = decode_message(api, item.clone()) else { return Vec::new() };
    let blocks = item.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut found = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let mut alone = item.clone();
        alone["content"] = Value::Array(vec![block]);
        let Err(inner) = decode_message(api, alone) else { continue };
        // The error names `content[0]`; it is block `j` of the message as sent.
        let rest = match inner.path.segments() {
            [crate::Segment::Key(content), crate::Segment::Index(0), rest @ ..]
                if content == "content" =>
            {
                rest
            }
            _ => {
                // Not about the block (the role, say): the message's own error says it once.
                found.clear();
                break;
            }
        };
        let base = wire::message(i).key("content").index(j);
        let path = rest.iter().fold(JsonPath::root(), |path, segment| match segment {
            crate::Segment::Key(key) => path.key(key.clone()),
            crate::Segment::Index(k) => path.index(*k),
        });
        found.push(shape_error(DecodeError { path, kind: inner.kind }, &base));
    }
    if found.is_empty() {
        found.push(shape_error(error, &wire::message(i)));
    }
    found
}

fn shape_error(error: DecodeError, base: &JsonPath) -> Diagnostic {
    let mut path = base.clone().join(&error.path);
    if let DecodeErrorKind::Forbidden { field, .. } = &error.kind {
        path = path.key(*field);
    }
    let rule = match &error.kind {
        DecodeErrorKind::UnionMembers { .. } => Rule::Union,
        DecodeErrorKind::UnknownField { .. } => Rule::UnknownKey,
        DecodeErrorKind::UnknownRole { .. } => Rule::Role,
        DecodeErrorKind::Forbidden { .. } => Rule::InvokeBody,
        _ if path.segments().first() == Some(&crate::Segment::Key("anthropic_version".into())) => {
            Rule::InvokeBody
        }
        _ => Rule::Malformed,
    };
    let detail = match &error.kind {
        DecodeErrorKind::UnionMembers { allowed, .. } => {
            format!("Can only set one of the following keys: {}.", allowed.join(", "))
        }
        DecodeErrorKind::UnknownField { field, .. } => field.clone(),
        DecodeErrorKind::Forbidden { field, .. } => format!(
            "Malformed input request: #: extraneous key [{field}] is not permitted, please reformat your input and try again."
        ),
        other => other.to_string(),
    };
    let bedrock = match rule {
        Rule::Union => rule.bedrock_text(&path.to_string(), &detail),
        _ => rule.bedrock_text(&path.dotted(), &detail),
    };
    let message = format!("{}. Bedrock answers: {bedrock}", error.kind);
    Diagnostic { rule, severity: Severity::Error, path, message }
}

#[cfg(test)]
mod tests {
    use verbatim_model::Api;

    use crate::assemble::validate_body;

    fn found(api: Api, body: &str) -> Vec<(String, String)> {
        let report = validate_body(api, None, body.as_bytes()).unwrap();
        report.diagnostics.iter().map(|d| (d.rule.id().to_owned(), d.path.to_string())).collect()
    }

    #[test]
    fn every_broken_key_and_block_is_named_in_one_run() {
        // Two bad top-level values, two broken blocks in one message, one in another.
        let body = r#"{"inferenceConfig": 5, "toolConfig": "x",
            "messages": [
                {"role": "user", "content": [{"text": "a"}, {"text": "b", "image": {}}, {"text": 3}]},
                {"role": "assistant", "content": [{"text": "ok"}]},
                {"role": "user", "content": [{"text": "c", "video": {}}]}
            ]}"#;
        let found = found(Api::Converse, body);
        let paths: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "inferenceConfig",
                "toolConfig",
                "messages[0].content[1]",
                "messages[0].content[2].text",
                "messages[2].content[0]",
            ],
            "{found:?}"
        );
        assert_eq!(found[2].0, "shape.union");
    }

    #[test]
    fn a_message_whose_role_is_wrong_is_named_once() {
        let body = r#"{"max_tokens": 5, "anthropic_version": "bedrock-2023-05-31",
            "messages": [{"role": "robot", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}"#;
        let found = found(Api::InvokeModel, body);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "messages[0].role");
    }
}
