//! Token counting: `POST /model/{id}/count-tokens` (bedrock-rules R6.1) and the Messages
//! API's `POST /anthropic/v1/messages/count_tokens` (messages-api section 6), both counted by
//! the tokenizer the replies' usage uses ([`crate::tokens`]), so a count equals the
//! `inputTokens` (plus cache reads and writes) the same request is billed.
//!
//! Shapes: CountTokens takes `{"input": {"converse": {messages, system, toolConfig,
//! additionalModelRequestFields}}}` or `{"input": {"invokeModel": {"body": BASE64}}}` (the
//! rules file; the second recorded in fixtures/real `errors_recorded_bodies.json`) and
//! answers `{"inputTokens": N}` (the service model's output; no recording has one). The
//! Messages API's route takes a Messages body (its `model` in the body, no `max_tokens`
//! needed) and answers `{"input_tokens": N}`, as the first-party API does (unverified on
//! Bedrock). The body is judged as the same request sent to the model would be, and refused
//! with the same texts; the text for a missing or malformed `input` is this emulator's own
//! (no recording has it), in the service's validation format.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::checks::{self, Refusal, validation};
use crate::conversation::Dialect;
use crate::messages;
use crate::server::{self, State};
use crate::{model, tokens};

/// The Messages API's counting route (mantle's; the runtime host does not route it, R4).
pub(crate) const MESSAGES_PATH: &str = "/anthropic/v1/messages/count_tokens";

/// The count of a checked body.
fn count(dialect: Dialect, body: &Value, model_id: &str) -> u64 {
    tokens::read(dialect, body, &model::model_key(model_id)).total()
}

/// `POST /model/{id}/count-tokens`.
pub(crate) fn model(state: &State, model_id: &str, body: &Bytes, id: &str) -> Response {
    match model_input(state, model_id, body) {
        Ok(n) => server::json_response(200, id, &json!({ "inputTokens": n })),
        Err(refusal) => server::refuse(&refusal, id),
    }
}

fn model_input(state: &State, model_id: &str, body: &[u8]) -> Result<u64, Refusal> {
    let malformed = || {
        validation(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must not be null",
        )
    };
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|_| validation("The request body is not valid JSON."))?;
    let input = parsed.get("input").and_then(Value::as_object).ok_or_else(malformed)?;
    let secret = &state.config.signing_secret;
    match (input.get("converse"), input.get("invokeModel")) {
        (Some(converse), None) => {
            checks::check(Dialect::Converse, converse, model_id, secret)?;
            Ok(count(Dialect::Converse, converse, model_id))
        }
        (None, Some(invoke)) => {
            let bytes = invoke
                .get("body")
                .and_then(Value::as_str)
                .and_then(|b| STANDARD.decode(b).ok())
                .ok_or_else(malformed)?;
            let body: Value = serde_json::from_slice(&bytes).map_err(|_| {
                validation("Malformed input request, please reformat your input and try again.")
            })?;
            checks::check(Dialect::Anthropic, &body, model_id, secret)?;
            Ok(count(Dialect::Anthropic, &body, model_id))
        }
        _ => Err(malformed()),
    }
}

/// `POST /anthropic/v1/messages/count_tokens` (authenticated by the caller).
pub(crate) fn messages(state: &State, headers: &HeaderMap, body: &Bytes, id: &str) -> Response {
    let counted = serde_json::from_slice::<Value>(body)
        .map_err(|_| {
            validation("Malformed input request, please reformat your input and try again.")
        })
        .and_then(|value| {
            let mut call = messages::envelope(&value, headers)?;
            // Counting needs no `max_tokens`; the conversation is judged as if it had one.
            if let Value::Object(map) = &mut call.body {
                map.entry("max_tokens").or_insert(json!(1));
            }
            checks::check(
                Dialect::Anthropic,
                &call.body,
                &call.model,
                &state.config.signing_secret,
            )?;
            Ok(count(Dialect::Anthropic, &call.body, &call.model))
        });
    match counted {
        Ok(n) => server::json_response(200, id, &json!({ "input_tokens": n })),
        Err(refusal) => messages::refuse(&refusal, id),
    }
}
