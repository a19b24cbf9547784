//! The Anthropic Messages API as Bedrock serves it at `/anthropic/v1/messages` (on
//! `bedrock-runtime` and on `bedrock-mantle`): request bodies with the model in them,
//! responses, and the headers that carry the version and the betas.
//!
//! The conversation inside a body is the same Anthropic JSON InvokeModel carries (the
//! [`anthropic`] codec's), so a message reads and writes the same on both
//! surfaces. What differs is the envelope ([`Call`]): `model` is in the body and required,
//! `stream: true` in the body selects server-sent events, and the version and the betas travel
//! as the `anthropic-version` and `anthropic-beta` headers, not as body fields. A body that
//! carries `anthropic_version` or `anthropic_beta` anyway (one public gateway documents the
//! body form; it is unverified for these hosts) keeps them as unmapped Anthropic keys, written
//! back where they came from; the validator says they belong in the headers.
//!
//! Responses are the same `message` object InvokeModel returns: [`decode_response`] and
//! [`encode_response`] are the Anthropic codec's. Streams are SSE
//! ([`sse`](crate::sse)), folded by [`MessagesFold`](crate::sse::MessagesFold).

use serde_json::Value;
use verbatim_model::{Dialect, JsonMap, Request};

use crate::encode::{self, put_unmapped};
use crate::json::{self, Fields, Result};
use crate::path::At;
use crate::{EncodeError, EncodeErrorKind, anthropic};

pub use crate::anthropic::{decode_response, decode_response_value, encode_response};

/// The path every SDK appends to its base URL (`{host}/anthropic`).
pub const PATH: &str = "/anthropic/v1/messages";

/// The header that names the API version.
pub const VERSION_HEADER: &str = "anthropic-version";

/// The header that lists the betas, comma-joined.
pub const BETA_HEADER: &str = "anthropic-beta";

/// The version the first-party API and older SDKs send, taken by every Claude model there.
pub const VERSION_2023_06_01: &str = "2023-06-01";

/// The version the current Anthropic SDK (2.x) sends by default, taken only by Claude from
/// Opus 4.7 on (which models take which version is the capability table's to say).
pub const VERSION_2026_10_21: &str = "2026-10-21";

/// Body keys that belong in headers on this surface; a body that carries them keeps them as
/// unmapped Anthropic keys.
const HEADER_KEYS_IN_BODY: &[&str] = &[anthropic::VERSION_KEY, "anthropic_beta"];

/// One Messages API call: the body's envelope, the version header and the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The body's `model`: a bare foundation-model id on mantle (`anthropic.claude-opus-4-7`),
    /// an inference-profile id on runtime (`us.anthropic.claude-sonnet-5`).
    pub model: String,
    /// The body's `stream`, when it was given: `true` asks for server-sent events.
    pub stream: Option<bool>,
    /// The `anthropic-version` header, when it was given.
    pub version: Option<String>,
    /// The conversation and its settings; its `beta` are the `anthropic-beta` header's flags.
    pub request: Request,
}

/// The headers of a call that this codec reads or writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `anthropic-version`.
    pub version: Option<String>,
    /// `anthropic-beta`, split at commas and trimmed; `None` when the header is absent.
    pub beta: Option<Vec<String>>,
}

impl Headers {
    /// Reads the two headers from name/value pairs (names compared without case); a repeated
    /// `anthropic-beta` header adds its flags to the earlier ones, as HTTP joins repeated
    /// headers with commas.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Headers {
        let mut headers = Headers::default();
        for (name, value) in pairs {
            if name.eq_ignore_ascii_case(VERSION_HEADER) {
                headers.version = Some(value.trim().to_owned());
            } else if name.eq_ignore_ascii_case(BETA_HEADER) {
                let flags = headers.beta.get_or_insert_with(Vec::new);
                flags.extend(
                    value.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned),
                );
            }
        }
        headers
    }

    /// The headers as name/value pairs, the betas comma-joined as the SDKs join them.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(version) = &self.version {
            pairs.push((VERSION_HEADER, version.clone()));
        }
        if let Some(beta) = self.beta.as_ref().filter(|b| !b.is_empty()) {
            pairs.push((BETA_HEADER, beta.join(",")));
        }
        pairs
    }
}

/// A call encoded: the JSON body and the headers that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The request body.
    pub body: Value,
    /// `anthropic-version` and `anthropic-beta`.
    pub headers: Headers,
}

/// Decodes a Messages API request body and the headers sent with it.
pub fn decode_request(bytes: &[u8], headers: &Headers) -> Result<Call> {
    decode_request_value(json::parse(bytes)?, headers)
}

/// Decodes a Messages API request body already parsed as JSON, and its headers.
pub fn decode_request_value(value: Value, headers: &Headers) -> Result<Call> {
    let at = At::ROOT;
    let mut f = Fields::of(value, &at)?;
    let model = f.required("model", json::string)?;
    let stream = f.optional("stream", json::boolean)?;
    let mut kept = JsonMap::new();
    for key in HEADER_KEYS_IN_BODY {
        if let Some(value) = f.take(key) {
            kept.insert((*key).to_owned(), value);
        }
    }
    let mut request = anthropic::decode::decode_conversation(f)?;
    request.beta = headers.beta.clone();
    *request.unmapped.get_mut(Dialect::Anthropic) = kept;
    Ok(Call { model, stream, version: headers.version.clone(), request })
}

/// Encodes a call: `model` first, the conversation, the request's native fields and the
/// Anthropic keys it keeps, `stream` last when it was given; the version and the betas as
/// headers.
///
/// Keys kept from the Converse dialect cannot be expressed and are an [`EncodeError`]. So
/// are betas both in the request and kept as a body `anthropic_beta`, which would say the same
/// thing twice with possibly different values.
pub fn encode_request(call: &Call) -> std::result::Result<Encoded, EncodeError> {
    let mut map = JsonMap::new();
    map.insert("model".into(), call.model.clone().into());
    write_body(&call.request, &mut map)?;
    if let Some(stream) = call.stream {
        map.insert("stream".into(), stream.into());
    }
    let headers = Headers { version: call.version.clone(), beta: call.request.beta.clone() };
    Ok(Encoded { body: Value::Object(map), headers })
}

/// Encodes the part of a body that is the request's: everything but `model` and `stream`,
/// which name the call rather than the conversation. A transport that knows the model and
/// whether it streams writes `model` before this object's keys and `stream` after them, which
/// gives the body [`encode_request`] gives.
pub fn encode_body(request: &Request) -> std::result::Result<Value, EncodeError> {
    let mut map = JsonMap::new();
    write_body(request, &mut map)?;
    Ok(Value::Object(map))
}

fn write_body(request: &Request, map: &mut JsonMap) -> std::result::Result<(), EncodeError> {
    let at = At::ROOT;
    if request.beta.is_some() && request.unmapped.anthropic.contains_key("anthropic_beta") {
        let kind = EncodeErrorKind::FieldCollision { field: "anthropic_beta".into() };
        return Err(encode::error(&at.key("anthropic_beta"), Dialect::Anthropic, kind));
    }
    anthropic::encode::encode_conversation(request, map)?;
    // `put_native` refuses native fields named `model` or `stream`, like every key the
    // Anthropic codec writes itself.
    anthropic::encode::put_native(request, map)?;
    put_unmapped(map, &request.unmapped, &at, Dialect::Anthropic)
}

/// Encodes a call as the bytes of its body, with its headers.
pub fn request_to_vec(call: &Call) -> std::result::Result<(Vec<u8>, Headers), EncodeError> {
    let Encoded { body, headers } = encode_request(call)?;
    Ok((serde_json::to_vec(&body).expect("a JSON value always serializes"), headers))
}
