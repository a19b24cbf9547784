//! Answers the proxy writes itself: refusals in Bedrock's shape (status, `x-amzn-ErrorType`,
//! `{"message"}`) or, on the Messages API, as an Anthropic error object; and which upstream
//! response headers a client gets.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use verbatim_model::Api;

/// The header naming the session a call belongs to.
pub(crate) const SESSION_HEADER: &str = "x-verbatim-session";

/// An answer given without calling the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The HTTP status.
    pub(crate) status: u16,
    /// Bedrock's exception name (`ValidationException`).
    pub(crate) exception: &'static str,
    /// The text.
    pub(crate) message: String,
    /// Where in the body, when a rule was broken: `(rule id, JSON path)`.
    pub(crate) rule: Option<(String, String)>,
}

impl Refusal {
    pub(crate) fn new(status: u16, exception: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { status, exception, message: message.into(), rule: None }
    }

    pub(crate) fn forbidden(exception: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::new(403, exception, message)
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Refusal {
        Refusal::new(400, "ValidationException", message)
    }

    /// The answer on `api`.
    pub(crate) fn response(&self, api: Api) -> Response {
        let mut body = match api {
            Api::Messages => json!({
                "type": "error",
                "error": { "type": anthropic_type(self.status), "message": self.message },
            }),
            Api::Converse | Api::InvokeModel => json!({ "message": self.message }),
        };
        if let Some((rule, path)) = &self.rule
            && let Value::Object(map) = &mut body
        {
            map.insert("verbatim".to_owned(), json!({ "rule": rule, "path": path }));
        }
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let kind =
            format!("{}:http://internal.amazon.com/coral/com.amazon.bedrock/", self.exception);
        if let Ok(value) = HeaderValue::from_str(&kind) {
            headers.insert("x-amzn-errortype", value);
        }
        response
    }
}

/// The Anthropic error type of a status, as the Messages API words it.
fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 | 408 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Whether an upstream response header goes on to the client: the content type, request ids,
/// error types, waits and Bedrock's and Anthropic's own headers; never anything else (no
/// cookies, no connection-level headers).
pub(crate) fn passed_on(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "x-amzn-requestid"
            | "x-amzn-errortype"
            | "request-id"
            | "retry-after"
            | "retry-after-ms"
            | "x-amz-retry-after"
            | "x-should-retry"
    ) || name.starts_with("x-amzn-bedrock-")
        || name.starts_with("anthropic-")
}

/// Whether a request header goes on upstream (the transport adds its own credentials).
pub(crate) fn forwarded(name: &str) -> bool {
    matches!(name, "content-type" | "accept" | "anthropic-version" | "anthropic-beta")
        || name.starts_with("x-amzn-bedrock-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_operation_headers_pass_either_way() {
        assert!(passed_on("x-amzn-requestid") && passed_on("x-amzn-bedrock-output-token-count"));
        assert!(!passed_on("set-cookie") && !passed_on("connection"));
        assert!(forwarded("anthropic-beta") && forwarded("x-amzn-bedrock-trace"));
        for secret in ["authorization", "x-api-key", "x-amz-security-token", "x-amz-date", "cookie"]
        {
            assert!(!forwarded(secret), "{secret}");
        }
    }
}
