//! The Anthropic Messages API as Bedrock serves it at `/anthropic/v1/messages` (one path for
//! both hosts, `bedrock-runtime` and `bedrock-mantle`; spec messages-api.md).
//!
//! What differs from InvokeModel is the envelope: the model and `stream` are in the body, the
//! version is the `anthropic-version` header (judged on [`versions`]' Messages table), the
//! betas are the comma-joined `anthropic-beta` header, streams are server-sent events, and
//! refusals are Anthropic error objects. The conversation inside is InvokeModel's Anthropic
//! JSON, so once the envelope is taken off the body is judged by the same [`checks`] as an
//! InvokeModel body and answered by the same model, with the same signatures, under the same
//! texts. The envelope is read here from the spec, not with the workspace's codec, so the
//! emulator stays a second reading.
//!
//! Authentication (A1, A2): the API key as `Authorization: Bearer` or as `x-api-key`, never
//! both (400 `Cannot provide both ...`); or SigV4 signed for service `bedrock-mantle` (mantle,
//! what the SDK signs) or `bedrock` (runtime).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::checks::{self, Refusal, validation};
use crate::conversation::Dialect;
use crate::faults::Fault;
use crate::pace::Wait;
use crate::server::{self, Piece, State};
use crate::versions::{self, Surface};
use crate::{EmulatorConfig, model, wire};

/// The one route of this surface; other paths under `/anthropic/` are not served (R4).
pub(crate) const PATH: &str = "/anthropic/v1/messages";

/// The header that names the API version.
const VERSION_HEADER: &str = "anthropic-version";

/// The version a request without the version header is read as.
const DEFAULT_VERSION: &str = "2023-06-01";

/// The header that lists the betas, comma-joined.
const BETA_HEADER: &str = "anthropic-beta";

/// The SigV4 signing names this route takes: mantle's, which the SDK signs with, and the
/// runtime host's (unverified for this path, spec section 2).
const SERVICES: &[&str] = &["bedrock-mantle", "bedrock"];

/// Body keys of the envelope, taken off before the conversation is judged. The first-party
/// `context_management` (compaction, context editing), measured accepted on this surface
/// (F1), stays: the InvokeModel body takes it too ([`crate::compaction`]).
const ENVELOPE_KEYS: &[&str] = &["model", "stream"];

/// The version a body's conversation is judged under once the header's version has been
/// judged: InvokeModel's, which every model takes.
const JUDGED_AS: &str = "bedrock-2023-05-31";

/// Checks the credentials of a request to [`PATH`].
pub(crate) fn authenticate(
    config: &EmulatorConfig,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let api_key = headers.get("x-api-key");
    let authorization = headers.get("authorization");
    match (api_key, authorization) {
        // LIVE MM (2026-09-05): the text is cut short in its source after "Cannot provide both".
        (Some(_), Some(_)) => Err(validation(
            "Cannot provide both `x-api-key` and `Authorization` headers; send one of them.",
        )),
        (Some(key), None) => match &config.api_key {
            Some(expected) if key.as_bytes() == expected.as_bytes() => Ok(()),
            _ => Err(server::forbidden("The security token included in the request is invalid.")),
        },
        (None, Some(authorization)) => {
            let authorization = authorization.to_str().unwrap_or_default();
            server::check_authorization(
                config,
                authorization,
                method,
                uri,
                headers,
                body,
                Some(SERVICES),
            )
        }
        // R5 (LIVE MM): the runtime host's answer to a request with no credentials.
        (None, None) => Err(server::forbidden("Authorization header is missing")),
    }
}

/// The body's `model` when it is a string, for the record and the id's constraints.
pub(crate) fn model_of(body: &Value) -> Option<&str> {
    body.get("model").and_then(Value::as_str)
}

/// A call read from its envelope: the model, whether it streams, and the conversation as an
/// InvokeModel body.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) model: String,
    stream: bool,
    /// The conversation, judged as an InvokeModel body.
    pub(crate) body: Value,
}

/// Reads and judges the envelope: `model` and `stream` in the body, the version and the
/// betas in the headers. The texts for a missing or mistyped `model` or `stream` and a missing
/// version header are the first-party API's (no recording from these hosts has them); a
/// version a model does not take gets InvokeModel's text for the same fault.
pub(crate) fn envelope(body: &Value, headers: &HeaderMap) -> Result<Call, Refusal> {
    let Value::Object(fields) = body else {
        // Not an object: the shared schema check names what it is.
        return Err(checks::check(Dialect::Anthropic, body, "", b"").err().unwrap_or_else(|| {
            validation("Malformed input request, please reformat your input and try again.")
        }));
    };
    let model = match fields.get("model") {
        None => return Err(validation("model: Field required")),
        Some(Value::String(model)) => model.clone(),
        Some(_) => return Err(validation("model: Input should be a valid string")),
    };
    let stream = match fields.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(validation("stream: Input should be a valid boolean")),
    };
    let header = |name: &str| {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>()
    };
    // The first-party API requires the header; nothing records what these hosts answer
    // without it, so a request without one is read as the version every model takes.
    let version = header(VERSION_HEADER)
        .first()
        .map_or_else(|| DEFAULT_VERSION.to_owned(), |v| v.trim().to_owned());
    if !versions::accepts(Surface::Messages, &model::model_key(&model), &version) {
        return Err(validation(format!("Invalid API version: {version}")));
    }
    // Repeated headers join with commas, as HTTP reads them.
    let betas: Vec<Value> = header(BETA_HEADER)
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| Value::String(b.to_owned()))
        .collect();
    binding_control(fields, &betas)?;
    let mut inner = fields.clone();
    for key in ENVELOPE_KEYS {
        inner.remove(*key);
    }
    // A body that carries its own `anthropic_version` or `anthropic_beta` (one gateway
    // documents the body form for mantle; unverified, V4) keeps them and is judged on
    // InvokeModel's rules for them.
    inner.entry("anthropic_version").or_insert_with(|| json!(JUDGED_AS));
    if !betas.is_empty() {
        inner.entry("anthropic_beta").or_insert(Value::Array(betas));
    }
    Ok(Call { model, stream, body: Value::Object(inner) })
}

/// The beta a thinking binding control needs (bedrock-rules R4.8).
const BINDING_BETA: &str = "thinking-binding-controls-2026-08-01";

/// `thinking.block_binding` takes effect only with its beta; the documentation's own sentence
/// ("This setting requires the value ... in the `anthropic-beta` header.") is the answer.
fn binding_control(
    fields: &serde_json::Map<String, Value>,
    betas: &[Value],
) -> Result<(), Refusal> {
    let control = fields.get("thinking").and_then(|t| t.get("block_binding"));
    if control.is_none() || betas.iter().any(|b| b.as_str() == Some(BINDING_BETA)) {
        return Ok(());
    }
    Err(validation(format!(
        "thinking.block_binding: This setting requires the value `{BINDING_BETA}` in the `anthropic-beta` header."
    )))
}

/// The Anthropic error type of an HTTP status (the SDK maps statuses to these, R2).
fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        // Unverified which type these hosts give a 503; the SDK reads 529 as overloaded.
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// An Anthropic error object (R1).
fn error_object(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": error_type(status), "message": message } })
}

/// A refusal as this surface answers it: the status, an Anthropic error object, and the
/// request id under both names (R3: which one these hosts send is unverified).
pub(crate) fn refuse(refusal: &Refusal, id: &str) -> Response {
    let mut response =
        server::json_response(refusal.status, id, &error_object(refusal.status, &refusal.message));
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// Judges a call and answers it, whole or as server-sent events.
pub(crate) fn answer(
    state: &State,
    body: &Value,
    headers: &HeaderMap,
    id: &str,
    fault: Option<&Fault>,
) -> Response {
    let call = match envelope(body, headers) {
        Ok(call) => call,
        Err(refusal) => return refuse(&refusal, id),
    };
    let config = &state.config;
    let secret = &config.signing_secret;
    let conversation = match checks::check(Dialect::Anthropic, &call.body, &call.model, secret) {
        Ok(conversation) => conversation,
        Err(refusal) => return refuse(&refusal, id),
    };
    let key = model::model_key(&call.model);
    let behaviour = config.script.behaviour(&call.model, &key);
    let mut reply = model::answer(secret, &call.model, &behaviour, &conversation);
    crate::compaction::apply(&call.body, secret, &mut reply);
    (reply.input_tokens, reply.cache) =
        state.input_usage(Dialect::Anthropic, &call.body, &call.model);
    let message_id = format!("msg_bdrk_emu{}", &id.replace('-', "")[..20]);
    let pace = state.pace();
    if !call.stream {
        if let Some(Fault::Reset { .. }) = fault {
            return server::cut_response("application/json");
        }
        let mut response =
            server::json_response(200, id, &wire::anthropic_body(&reply, &call.model, &message_id));
        if !pace.is_immediate() {
            let events = wire::messages_sse(&reply, &call.model, &message_id).len();
            response.extensions_mut().insert(Wait(pace.whole(events)));
        }
        if let Ok(value) = HeaderValue::from_str(id) {
            response.headers_mut().insert("request-id", value);
        }
        return response;
    }
    let events = wire::messages_sse(&reply, &call.model, &message_id);
    let mut sent: Vec<Piece> = events.into_iter().map(|e| Piece::Frame(Bytes::from(e))).collect();
    match fault {
        // A mid-stream error is an `error` event in the first-party convention (S3, S4).
        Some(Fault::StreamException { after, exception }) => {
            sent.truncate(*after);
            let answer = exception.answer();
            let event = wire::sse_event(&error_object(answer.status, answer.message));
            sent.push(Piece::Frame(Bytes::from(event)));
        }
        Some(Fault::Reset { after }) => {
            sent.truncate(*after);
            sent.push(Piece::Cut);
        }
        _ => {}
    }
    let mut response = Response::new(Body::from_stream(server::pieces(sent, pace)));
    let response_headers = response.headers_mut();
    response_headers
        .insert("content-type", HeaderValue::from_static("text/event-stream; charset=utf-8"));
    response_headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(id) {
        response_headers.insert("x-amzn-requestid", value.clone());
        response_headers.insert("request-id", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_envelope_moves_into_an_invoke_body_and_the_betas_join() {
        let body = json!({"model": "us.anthropic.claude-sonnet-5", "stream": true, "max_tokens": 9,
            "messages": [{"role": "user", "content": "hi"}]});
        let sent = headers(&[
            ("anthropic-version", "2026-10-21"),
            ("anthropic-beta", "a-1, b-2"),
            ("anthropic-beta", "c-3"),
        ]);
        let call = envelope(&body, &sent).unwrap();
        assert_eq!((call.model.as_str(), call.stream), ("us.anthropic.claude-sonnet-5", true));
        assert_eq!(
            call.body,
            json!({"max_tokens": 9, "messages": [{"role": "user", "content": "hi"}],
                "anthropic_version": JUDGED_AS, "anthropic_beta": ["a-1", "b-2", "c-3"]})
        );
    }

    #[test]
    fn the_envelope_refuses_what_it_cannot_read_with_the_first_party_texts() {
        let version = headers(&[("anthropic-version", "2023-06-01")]);
        let refused = |body: Value, headers: &HeaderMap| envelope(&body, headers).unwrap_err();
        assert_eq!(refused(json!({"max_tokens": 1}), &version).message, "model: Field required");
        assert_eq!(
            refused(json!({"model": 5}), &version).message,
            "model: Input should be a valid string"
        );
        assert_eq!(
            refused(json!({"model": "m", "stream": "yes"}), &version).message,
            "stream: Input should be a valid boolean"
        );
        // No version header: read as 2023-06-01, which a legacy model takes.
        let bare = json!({"model": "anthropic.claude-sonnet-4-6-v1"});
        assert!(envelope(&bare, &HeaderMap::new()).is_ok());
        // A binding control without its beta is refused with the documentation's sentence.
        let control = json!({"model": "anthropic.claude-opus-5-5",
            "thinking": {"type": "adaptive", "block_binding": {"prefix_mismatch_behavior": "drop_block"}}});
        assert!(
            refused(control.clone(), &version)
                .message
                .contains("`thinking-binding-controls-2026-08-01`")
        );
        let with_beta = headers(&[
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "thinking-binding-controls-2026-08-01"),
        ]);
        assert!(envelope(&control, &with_beta).is_ok());
        let legacy = json!({"model": "anthropic.claude-sonnet-4-6-v1"});
        let newest = headers(&[("anthropic-version", "2026-10-21")]);
        assert_eq!(refused(legacy.clone(), &newest).message, "Invalid API version: 2026-10-21");
        assert!(envelope(&legacy, &version).is_ok());
    }

    #[test]
    fn statuses_map_to_the_error_types_the_sdk_reads() {
        assert_eq!(
            error_object(400, "x"),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "x"}})
        );
        for (status, kind) in [
            (403, "permission_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "overloaded_error"),
        ] {
            assert_eq!(error_type(status), kind);
        }
    }
}
