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

/// The shape errors of a body that does not decode: each message is decoded on its own, and
/// the rest of the body without its messages, so one broken block does not hide another.
pub(crate) fn shape_errors(api: Api, mut value: Value, error: DecodeError) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let messages = value
        .as_object_mut()
        .and_then(|body| body.insert("messages".into(), Value::Array(Vec::new())));
    let top = match api {
        Api::Converse => converse::decode_request_value(value).map(drop),
        Api::InvokeModel => anthropic::decode_request_value(value).map(drop),
        Api::Messages => {
            messages_api::decode_request_value(value, &messages_api::Headers::default()).map(drop)
        }
    };
    if let Err(error) = top {
        errors.push(shape_error(error, &JsonPath::root()));
    }
    match messages {
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let decoded = match api {
                    Api::Converse => converse::decode_message_value(item).map(drop),
                    Api::InvokeModel | Api::Messages => {
                        anthropic::decode_message_value(item).map(drop)
                    }
                };
                if let Err(error) = decoded {
                    errors.push(shape_error(error, &wire::message(i)));
                }
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
