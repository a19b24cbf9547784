//! What the Anthropic Messages API (`/anthropic/v1/messages`) needs of the transport: the
//! host it goes to and the name it is signed for ([`MessagesHost`]), and the body as sent,
//! the call's conversation object with `model` written before its keys and `stream` after
//! them ([`wire_body`]), spliced as bytes so the conversation goes out exactly as assembled.

use bytes::Bytes;

use crate::{Api, Call, TransportError};

/// Which Bedrock host serves the Messages API calls of a transport. Both serve the same path,
/// `/anthropic/v1/messages`; Converse and InvokeModel always go to the runtime host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MessagesHost {
    /// `https://bedrock-runtime.{region}.amazonaws.com` (the endpoint of
    /// [`HttpConfig::endpoint_url`](crate::HttpConfig::endpoint_url) when set), signed as
    /// `bedrock`.
    #[default]
    Runtime,
    /// `https://bedrock-mantle.{region}.api.aws` (the endpoint of
    /// [`HttpConfig::mantle_endpoint_url`](crate::HttpConfig::mantle_endpoint_url) when set),
    /// signed as `bedrock-mantle`.
    Mantle,
}

impl MessagesHost {
    /// The SigV4 signing name of the host.
    ///
    /// Mantle's is `bedrock-mantle`, as the Anthropic SDKs sign it (`DEFAULT_SERVICE_NAME` of
    /// their mantle clients). Runtime's is unverified for this path, where no public client
    /// signs: `bedrock` is the name the runtime host signs every other operation with.
    pub fn signing_name(self) -> &'static str {
        match self {
            MessagesHost::Runtime => "bedrock",
            MessagesHost::Mantle => "bedrock-mantle",
        }
    }

    /// The host's endpoint in `region`, when none is configured.
    pub fn default_endpoint(self, region: &str) -> String {
        match self {
            MessagesHost::Runtime => format!("https://bedrock-runtime.{region}.amazonaws.com"),
            MessagesHost::Mantle => format!("https://bedrock-mantle.{region}.api.aws"),
        }
    }
}

/// Headers the transport writes itself; a call that names one among its extra headers is
/// refused rather than sent with two values (an `x-api-key` beside `Authorization` is a 400 on
/// runtime `/anthropic`).
const OWN_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "content-type",
    "content-length",
    "host",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Refuses extra headers the transport writes itself.
pub(crate) fn check_headers(call: &Call) -> Result<(), TransportError> {
    for (name, _) in &call.headers {
        if OWN_HEADERS.iter().any(|own| name.eq_ignore_ascii_case(own)) {
            return Err(TransportError::Request {
                message: format!(
                    "header {name:?} among the call's extra headers is the transport's to write"
                ),
            });
        }
    }
    Ok(())
}

/// The body of the token count for `call` on `host` (see
/// [`count_tokens`](verbatim_protocol::count_tokens)): a Converse body's members under
/// `input.converse`; an InvokeModel body as base64 under `input.invokeModel.body`; a Messages
/// API body as sent (without `stream`) on mantle, and on runtime, which has no Messages API
/// count, as the InvokeModel body it stands for (`anthropic_version` written first).
pub(crate) fn count_tokens_body(call: &Call, host: MessagesHost) -> Result<Bytes, TransportError> {
    use verbatim_protocol::count_tokens::{converse_request, invoke_request};
    let body = match (call.api, host) {
        (Api::Converse, _) => converse_request(&call.body).map_err(|e| {
            TransportError::Request { message: format!("the Converse body cannot be counted: {e}") }
        })?,
        (Api::InvokeModel, _) => invoke_request(&call.body),
        (Api::Messages, MessagesHost::Mantle) => return wire_body(call, false),
        (Api::Messages, MessagesHost::Runtime) => {
            let inside = object_inside(&call.body)?;
            let mut invoke = b"{\"anthropic_version\":\"bedrock-2023-05-31\"".to_vec();
            if !inside.trim_ascii().is_empty() {
                invoke.push(b',');
                invoke.extend_from_slice(inside);
            }
            invoke.push(b'}');
            invoke_request(&invoke)
        }
    };
    Ok(Bytes::from(body))
}

/// The bytes between the braces of a Messages API body.
fn object_inside(body: &[u8]) -> Result<&[u8], TransportError> {
    let body = body.trim_ascii();
    body.strip_prefix(b"{").and_then(|b| b.strip_suffix(b"}")).ok_or_else(|| {
        TransportError::Request {
            message: "a Messages API body must be a JSON object (`{...}`): the transport writes \
                      `model` and `stream` into it"
                .to_owned(),
        }
    })
}

/// The body sent for `call`: on the Messages API `{"model":<id>,` + the body's keys +
/// `,"stream":true}` (no `stream` when not streaming), the body's bytes unchanged between;
/// elsewhere the body as it is.
pub(crate) fn wire_body(call: &Call, stream: bool) -> Result<Bytes, TransportError> {
    if call.api != Api::Messages {
        return Ok(call.body.clone());
    }
    let inside = object_inside(&call.body)?;
    let body = call.body.trim_ascii();
    let model = serde_json::to_string(&call.model_id).expect("a string always serializes");
    let mut out = Vec::with_capacity(body.len() + model.len() + 32);
    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(model.as_bytes());
    if !inside.trim_ascii().is_empty() {
        out.push(b',');
        out.extend_from_slice(inside);
    }
    if stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}
