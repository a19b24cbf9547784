//! Moving Bedrock Runtime requests and responses: the [`Transport`] trait the engine talks
//! through, the [`HttpTransport`] that talks to Bedrock (or anything that speaks its wire), and
//! the [`ScriptedTransport`] that replays canned answers in tests.
//!
//! A transport moves bytes and knows nothing about chat: it takes a request body already
//! assembled and validated, sends it to `/model/{id}/converse`, `/converse-stream`, `/invoke`,
//! `/invoke-with-response-stream` or the Anthropic Messages API's `/anthropic/v1/messages`,
//! and hands back the response body or the stream's events (their type and payload, exactly
//! as received). Turning those into messages is `verbatim-protocol`'s job
//! (`stream::ConverseAccumulator`, `stream::AnthropicAccumulator`, `sse::MessagesFold`).
//!
//! What the HTTP transport does on the way:
//! - the model id or inference-profile ARN is percent-encoded as one path segment; on the
//!   Messages API it goes in the body instead: the call's body (the conversation object) is
//!   sent as `{"model":..,` + its bytes unchanged + `,"stream":true}`, to the runtime or the
//!   mantle host ([`MessagesHost`]), with the call's extra headers (`anthropic-version`,
//!   `anthropic-beta`);
//! - auth is a Bedrock API key (`Authorization: Bearer`, never `x-api-key` beside it, refused
//!   over plain HTTP except to loopback) or SigV4 (service `bedrock`, `bedrock-mantle` on
//!   mantle; the encoded path encoded again in the canonical request), re-signed on every
//!   attempt;
//! - Bedrock's exceptions and Anthropic error objects become a typed [`ApiError`], including
//!   the HTTP 200 `UnknownOperationException` body that an unencoded ARN or an unserved route
//!   produces, exception frames inside a 200 stream and `event: error` inside an SSE stream;
//! - throttling, 500, 503, 529, model-not-ready and connection errors are retried in AWS
//!   standard mode (full-jitter backoff, a retry budget; `x-should-retry`, `retry-after-ms`,
//!   `x-amz-retry-after` and `retry-after` obeyed); validation errors and `invalid beta flag`
//!   never are, and a stream is retried only before its first event was handed out;
//! - streams are decoded as they arrive: event-stream frames, or server-sent events on the
//!   Messages API (`ping` and events without a name or data skipped).
//!
//! [`HttpTransport::forward`] passes on a request that arrived elsewhere (the proxy's): its
//! bytes unchanged, signed afresh with the transport's credentials, the answer handed back as
//! it arrives.
//!
//! Dropping a future or an [`EventStream`] cancels the request and closes its connection.
//! Secrets (API keys, AWS credentials) are kept in types whose `Debug` redacts them and never
//! appear in errors or logs.
//!
//! Feature `aws-config` (on by default) adds [`HttpConfig::from_env`]: region and credentials
//! from the standard AWS chain, or an API key from `AWS_BEARER_TOKEN_BEDROCK`, and the
//! endpoints from `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL_BEDROCK_MANTLE` and
//! `AWS_ENDPOINT_URL`.

mod auth;
#[cfg(feature = "aws-config")]
mod env;
mod error;
mod events;
mod forward;
mod http;
mod messages;
mod response;
pub mod retry;
mod scripted;
mod secret;

use std::collections::VecDeque;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

pub use auth::{Auth, SigningScope, sign_sigv4, sign_sigv4_scoped};
pub use error::{ApiError, Exception, TransportError};
pub use forward::{Forward, Forwarded};
pub use http::{Clock, HttpConfig, HttpTransport, MAX_RESPONSE_BYTES, SystemClock, Timeouts};
pub use messages::MessagesHost;
pub use retry::RetryConfig;
pub use scripted::{Scripted, ScriptedTransport};
pub use secret::Secret;
pub use verbatim_model::Api;

/// One model call: which API, which model, and the request body as assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Converse, InvokeModel or the Messages API (the streaming variant is chosen by the method
    /// called).
    pub api: Api,
    /// A model id, inference-profile id or ARN, unencoded (`us.anthropic.claude-...-v1:0`).
    pub model_id: String,
    /// The JSON body, sent as is; on the Messages API the conversation object without `model`
    /// and `stream`, which the transport writes around its bytes.
    pub body: Bytes,
    /// Extra request headers the API needs (on the Messages API `anthropic-version` and
    /// `anthropic-beta`), sent and signed with the others. Headers the transport writes itself
    /// (`authorization`, `x-api-key`, `content-type`, `host`, `x-amz-*`) are refused here.
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// A call with a body.
    pub fn new(api: Api, model_id: impl Into<String>, body: impl Into<Bytes>) -> Call {
        Call { api, model_id: model_id.into(), body: body.into(), headers: Vec::new() }
    }

    /// With one more request header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Call {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The path of the token count for this call on `host`: `/model/{encoded id}/count-tokens`,
    /// or on the Messages API on mantle `/anthropic/v1/messages/count_tokens`.
    pub fn count_tokens_path(&self, host: MessagesHost) -> String {
        if self.api == Api::Messages && host == MessagesHost::Mantle {
            return format!("{}/count_tokens", verbatim_protocol::messages_api::PATH);
        }
        format!("/model/{}/count-tokens", verbatim_protocol::model_id::path_segment(&self.model_id))
    }

    /// The request path: `/model/{encoded id}/{operation}`, or on the Messages API
    /// `/anthropic/v1/messages` (the model is in the body, and so is the choice to stream).
    pub fn path(&self, stream: bool) -> String {
        if self.api == Api::Messages {
            return verbatim_protocol::messages_api::PATH.to_owned();
        }
        let operation = match (self.api, stream) {
            (Api::Converse, false) => "converse",
            (Api::Converse, true) => "converse-stream",
            (Api::InvokeModel, false) => "invoke",
            (Api::InvokeModel, true) => "invoke-with-response-stream",
            (Api::Messages, _) => unreachable!("answered above"),
        };
        format!("/model/{}/{operation}", verbatim_protocol::model_id::path_segment(&self.model_id))
    }
}

/// A whole (non-streamed) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The response body, exactly as received.
    pub body: Bytes,
    /// `x-amzn-RequestId`, else `request-id` (the Anthropic API's), when sent.
    pub request_id: Option<String>,
}

/// One event of a stream: its `:event-type` (the SSE `event` name on the Messages API) and
/// payload (the SSE `data`), exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// `messageStart`, `contentBlockDelta`, ... (Converse), `chunk` (InvokeModel) or
    /// `message_start`, `content_block_delta`, ... (the Messages API).
    pub event_type: String,
    /// The payload (JSON; InvokeModel chunks hold base64 Anthropic events, Messages API events
    /// the Anthropic event itself).
    pub payload: Bytes,
}

/// Where a stream's events come from; implement it to plug in another transport's streams.
#[async_trait]
pub trait EventSource: Send {
    /// The next event, `None` once the stream ended cleanly. After an error, `None`.
    async fn next_event(&mut self) -> Option<Result<StreamEvent, TransportError>>;
}

/// The events of a streamed response, in order. Dropping it cancels the stream.
pub struct EventStream {
    source: Box<dyn EventSource>,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    /// A stream reading from `source`.
    pub fn new(source: impl EventSource + 'static) -> EventStream {
        EventStream { source: Box::new(source) }
    }

    /// A stream that yields the given items, then ends.
    pub fn from_items(items: Vec<Result<StreamEvent, TransportError>>) -> EventStream {
        EventStream::new(Items(items.into()))
    }

    /// The next event; `None` when the stream ended cleanly. A stream that broke off yields an
    /// error (never a silent end).
    pub async fn next(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        self.source.next_event().await
    }
}

struct Items(VecDeque<Result<StreamEvent, TransportError>>);

#[async_trait]
impl EventSource for Items {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        let item = self.0.pop_front()?;
        if item.is_err() {
            self.0.clear();
        }
        Some(item)
    }
}

/// Sends model calls. Object-safe, shared by reference, and cheap to mock.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Converse, InvokeModel or the Messages API: the whole response.
    async fn send(&self, call: Call) -> Result<Reply, TransportError>;

    /// ConverseStream, InvokeModelWithResponseStream or the Messages API with `stream: true`:
    /// the events as they arrive.
    async fn stream(&self, call: Call) -> Result<EventStream, TransportError>;

    /// CountTokens: the input tokens the model counts for the call's request, without running
    /// it (nothing is billed). A transport that cannot count says so with
    /// [`TransportError::Request`]; callers then estimate.
    async fn count_tokens(&self, call: Call) -> Result<u64, TransportError> {
        let _ = call;
        Err(TransportError::Request { message: "this transport does not count tokens".into() })
    }
}

#[cfg(test)]
mod tests;
