//! What can go wrong: Bedrock's exceptions as a typed [`ApiError`], and the transport's own
//! failures ([`TransportError`]).

use std::fmt;
use std::time::Duration;

use verbatim_protocol::eventstream::FrameError;
use verbatim_protocol::sse::SseError;

/// A Bedrock Runtime exception (rules §7.1), by its modeled name. An Anthropic error type
/// (`overloaded_error`, `invalid_request_error`, ...) is kept as [`Exception::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Exception {
    /// 400: the request breaks a rule; never retried.
    Validation,
    /// 403: no access to the model, or bad credentials.
    AccessDenied,
    /// 404: no such model or resource.
    ResourceNotFound,
    /// 408: the model took too long.
    ModelTimeout,
    /// 424: the model produced invalid output.
    ModelError,
    /// 424, inside a stream: the model's stream failed.
    ModelStreamError,
    /// 429: too many requests or tokens; retried.
    Throttling,
    /// 429: the model is not ready yet; retried.
    ModelNotReady,
    /// 400: a quota is exceeded.
    ServiceQuotaExceeded,
    /// 500: retried.
    InternalServer,
    /// 503: retried.
    ServiceUnavailable,
    /// HTTP 200 with `com.amazon.coral.service#UnknownOperationException`: the path named no
    /// operation, typically because a model ARN was not encoded as one segment.
    UnknownOperation,
    /// Any other error code, as sent.
    Other(String),
}

impl Exception {
    /// Recognises a code in any of the forms Bedrock sends: `ThrottlingException`,
    /// `throttlingException` (stream frames), `ThrottlingException:http://...`
    /// (`x-amzn-ErrorType`) or `com.amazon...#ThrottlingException` (`__type`).
    pub fn from_code(code: &str) -> Exception {
        let code = code.split(':').next().unwrap_or(code);
        let code = code.rsplit('#').next().unwrap_or(code);
        let mut name = code.to_owned();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        match name.as_str() {
            "ValidationException" => Exception::Validation,
            "AccessDeniedException" => Exception::AccessDenied,
            "ResourceNotFoundException" => Exception::ResourceNotFound,
            "ModelTimeoutException" => Exception::ModelTimeout,
            "ModelErrorException" => Exception::ModelError,
            "ModelStreamErrorException" => Exception::ModelStreamError,
            "ThrottlingException" => Exception::Throttling,
            "ModelNotReadyException" => Exception::ModelNotReady,
            "ServiceQuotaExceededException" => Exception::ServiceQuotaExceeded,
            "InternalServerException" => Exception::InternalServer,
            "ServiceUnavailableException" => Exception::ServiceUnavailable,
            "UnknownOperationException" => Exception::UnknownOperation,
            _ => Exception::Other(code.to_owned()),
        }
    }

    /// The modeled name (`ThrottlingException`), or the code as sent.
    pub fn name(&self) -> &str {
        match self {
            Exception::Validation => "ValidationException",
            Exception::AccessDenied => "AccessDeniedException",
            Exception::ResourceNotFound => "ResourceNotFoundException",
            Exception::ModelTimeout => "ModelTimeoutException",
            Exception::ModelError => "ModelErrorException",
            Exception::ModelStreamError => "ModelStreamErrorException",
            Exception::Throttling => "ThrottlingException",
            Exception::ModelNotReady => "ModelNotReadyException",
            Exception::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            Exception::InternalServer => "InternalServerException",
            Exception::ServiceUnavailable => "ServiceUnavailableException",
            Exception::UnknownOperation => "UnknownOperationException",
            Exception::Other(code) => code,
        }
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An exception Bedrock answered with, or an Anthropic error object (the Messages API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exception} (HTTP {status}{}): {message}", request_id.as_deref().map(|id| format!(", request id {id}")).unwrap_or_default())]
pub struct ApiError {
    /// Which exception.
    pub exception: Exception,
    /// The HTTP status (200 for exceptions inside a stream and for `UnknownOperation`).
    pub status: u16,
    /// The message, as sent (`error.message`, `message` or `Message`), or the body itself
    /// (its first 1000 characters) when it names none.
    pub message: String,
    /// `x-amzn-RequestId`, else `request-id`, else the body's `request_id`, when sent.
    pub request_id: Option<String>,
    /// The wait the server asked for: `retry-after-ms`, `x-amz-retry-after` (milliseconds) or
    /// `retry-after` (seconds), when sent.
    pub retry_after: Option<Duration>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Bedrock answered with an exception.
    #[error(transparent)]
    Api(ApiError),
    /// No response (or no next stream chunk) within the configured time.
    #[error("timed out waiting for {waiting_for}")]
    Timeout {
        /// What was awaited: `a connection`, `the response`, `the first event`, `the next
        /// chunk`.
        waiting_for: &'static str,
    },
    /// The connection could not be made or broke (reset, closed, I/O error).
    #[error("connection failed: {message}")]
    Connection {
        /// What the HTTP client reported (no URL, no headers).
        message: String,
    },
    /// A stream's bytes are not valid event-stream frames, or stopped inside one.
    #[error("response stream: {0}")]
    Frame(#[from] FrameError),
    /// A Messages API stream's bytes are not valid server-sent events, or stopped inside one.
    #[error("response stream (server-sent events): {0}")]
    Sse(#[from] SseError),
    /// A successful status with a body that is not what the operation returns.
    #[error("unexpected response (HTTP {status}): {message}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// What was unexpected.
        message: String,
    },
    /// Credentials could not be obtained.
    #[error("no credentials: {message}")]
    Credentials {
        /// The provider's explanation (never the credentials).
        message: String,
    },
    /// The request could not be signed or built.
    #[error("cannot build the request: {message}")]
    Request {
        /// What went wrong.
        message: String,
    },
    /// The transport's configuration is invalid.
    #[error("invalid transport configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}

impl TransportError {
    /// The Bedrock exception, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            TransportError::Api(error) => Some(error),
            _ => None,
        }
    }

    /// Whether AWS standard retry mode would retry this error, judged from the error alone: a
    /// response's `x-should-retry` header, which the transport obeys while it retries
    /// ([`retry::decide`](crate::retry::decide)), is not part of the error.
    pub fn is_retryable(&self) -> bool {
        crate::retry::classify(self).is_some()
    }

    pub(crate) fn connection(error: reqwest::Error) -> TransportError {
        if error.is_timeout() {
            let waiting_for = if error.is_connect() { "a connection" } else { "the response" };
            return TransportError::Timeout { waiting_for };
        }
        // `without_url` keeps endpoints out of messages; headers never appear in them.
        let error = error.without_url();
        let mut message = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(&error);
        while let Some(error) = source {
            if !message.is_empty() {
                message.push_str(": ");
            }
            let text = error.to_string();
            message.push_str(&text);
            source = error.source();
        }
        TransportError::Connection { message }
    }
}

impl From<ApiError> for TransportError {
    fn from(error: ApiError) -> TransportError {
        TransportError::Api(error)
    }
}
