//! What a response says besides its body: the request id, the error a failed response
//! carries (in Bedrock's shape or the Anthropic API's), the wait the server asks for, and the
//! HTTP 200 answer to a path that names no operation.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::{Api, ApiError, Exception};

pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// `x-amzn-RequestId` (Bedrock's), else `request-id` (the Anthropic API's; which of the two
/// the Messages API hosts send is unverified, so both are read).
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    header(headers, "x-amzn-requestid").or_else(|| header(headers, "request-id"))
}

/// The message of an error body: the Anthropic `error.message`, else Bedrock's `message` or
/// `Message`.
pub(crate) fn json_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let message = value
        .get("error")
        .and_then(|error| error.get("message"))
        .or_else(|| value.get("message"))
        .or_else(|| value.get("Message"))?;
    message.as_str().map(str::to_owned)
}

/// The error a non-success response carries. The exception is `x-amzn-ErrorType`, else the
/// body's `__type` or `code`, else the Anthropic `error.type` (kept as sent:
/// `overloaded_error`), else `HTTP {status}`.
pub(crate) fn api_error(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let code = header(headers, "x-amzn-errortype").or_else(|| {
        let value = value.as_ref()?;
        let code = value
            .get("__type")
            .or_else(|| value.get("code"))
            .or_else(|| value.get("Code"))
            .or_else(|| value.get("error").and_then(|error| error.get("type")))?;
        code.as_str().map(str::to_owned)
    });
    let exception = match code {
        Some(code) if !code.is_empty() => Exception::from_code(&code),
        _ => Exception::Other(format!("HTTP {}", status.as_u16())),
    };
    let message = json_message(body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.chars().take(1000).collect()
    });
    let message = without_canonical_request(message);
    let body_request_id =
        || value.as_ref()?.get("request_id").and_then(Value::as_str).map(str::to_owned);
    ApiError {
        exception,
        status: status.as_u16(),
        message,
        request_id: request_id(headers).or_else(body_request_id),
        retry_after: retry_after(headers),
    }
}

/// The wait the server asked for, in the order the Anthropic SDK reads it: `retry-after-ms`,
/// then Bedrock's `x-amz-retry-after` (milliseconds too), then `retry-after` in seconds
/// (fractions allowed). `retry-after` may also be an HTTP date; that form is ignored, and the
/// backoff applies, since a date is only as good as the two clocks that read it.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |text: String, scale: f64| {
        let value = text.trim().parse::<f64>().ok()? / scale;
        (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value.min(86_400.0)))
    };
    header(headers, "retry-after-ms")
        .and_then(|ms| seconds(ms, 1000.0))
        .or_else(|| header(headers, "x-amz-retry-after").and_then(|ms| seconds(ms, 1000.0)))
        .or_else(|| header(headers, "retry-after").and_then(|s| seconds(s, 1.0)))
}

/// A signature mismatch answer echoes the canonical request, which holds the session token
/// (`x-amz-security-token:...`); error messages are logged, so that part is left out.
pub(crate) fn without_canonical_request(mut message: String) -> String {
    for marker in ["The Canonical String", "x-amz-security-token", "X-Amz-Security-Token"] {
        if let Some(at) = message.find(marker) {
            message.truncate(at);
            message = message.trim_end().to_owned();
            message.push_str(" [canonical request left out]");
        }
    }
    message
}

/// Bedrock's answer to a path that names no operation: HTTP 200 with
/// `{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}`.
/// On Converse and InvokeModel it comes from a model ARN not encoded as one segment; on the
/// Messages API from a host or endpoint that does not serve `/anthropic/v1/messages`.
pub(crate) fn unknown_operation(
    api: Api,
    body: &[u8],
    request_id: Option<String>,
) -> Option<ApiError> {
    const NAME: &[u8] = b"UnknownOperationException";
    if body.len() > 4096 || !body.windows(NAME.len()).any(|w| w == NAME) {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let kind = value.get("Output")?.get("__type")?.as_str()?;
    if !kind.ends_with("#UnknownOperationException") {
        return None;
    }
    let why = match api {
        Api::Messages => {
            "the endpoint does not serve /anthropic/v1/messages (check the host and \
                          the endpoint URL)"
        }
        Api::Converse | Api::InvokeModel => {
            "a model id or ARN must be percent-encoded as one path segment"
        }
    };
    Some(ApiError {
        exception: Exception::UnknownOperation,
        status: 200,
        message: format!("{kind}: the request path named no operation ({why})"),
        request_id,
        retry_after: None,
    })
}
