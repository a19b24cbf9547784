//! The HTTP transport: reqwest with rustls, SigV4 or a bearer API key, typed errors, retries
//! and event-stream decoding.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tracing::Instrument;
use verbatim_protocol::eventstream::{Frame, FrameDecoder};

use crate::retry::{self, TokenBucket};
use crate::{
    ApiError, Auth, Call, EventSource, EventStream, Exception, Reply, RetryConfig, StreamEvent,
    Transport, TransportError, sign_sigv4,
};

/// Where the transport reads the time for signing.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How long the transport waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// To establish a connection (default 10 s).
    pub connect: Duration,
    /// For a whole non-streamed response, body included (default 10 min: a long answer with
    /// thinking takes minutes).
    pub response: Duration,
    /// For a stream's first event (default 2 min).
    pub first_event: Duration,
    /// Between two chunks of a stream (default 1 min).
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            response: Duration::from_secs(600),
            first_event: Duration::from_secs(120),
            idle: Duration::from_secs(60),
        }
    }
}

/// What the HTTP transport needs.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The AWS region (`us-east-1`): the endpoint's and the signature's.
    pub region: String,
    /// Another endpoint than `https://bedrock-runtime.{region}.amazonaws.com` (an emulator, a
    /// VPC endpoint, a FIPS endpoint).
    pub endpoint_url: Option<String>,
    /// How requests are authenticated.
    pub auth: Auth,
    /// How failed calls are retried.
    pub retry: RetryConfig,
    /// How long to wait.
    pub timeouts: Timeouts,
    /// The clock signatures are dated with.
    pub clock: Arc<dyn Clock>,
    /// The largest response read, whole or streamed (all its frames together); a longer one
    /// is an error.
    pub max_response_bytes: usize,
}

/// The default [`HttpConfig::max_response_bytes`]: far above any answer Bedrock gives (a
/// reply of the largest output a model allows is a few megabytes).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

impl HttpConfig {
    /// A configuration with standard retries and default timeouts.
    pub fn new(region: impl Into<String>, auth: Auth) -> HttpConfig {
        HttpConfig {
            region: region.into(),
            endpoint_url: None,
            auth,
            retry: RetryConfig::default(),
            timeouts: Timeouts::default(),
            clock: Arc::new(SystemClock),
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }

    /// With another endpoint URL.
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> HttpConfig {
        self.endpoint_url = Some(url.into());
        self
    }

    /// With another retry configuration.
    pub fn with_retry(mut self, retry: RetryConfig) -> HttpConfig {
        self.retry = retry;
        self
    }

    /// With other timeouts.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> HttpConfig {
        self.timeouts = timeouts;
        self
    }

    /// With another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> HttpConfig {
        self.clock = clock;
        self
    }

    /// With another bound on a whole response body.
    pub fn with_max_response_bytes(mut self, max: usize) -> HttpConfig {
        self.max_response_bytes = max;
        self
    }
}

/// Talks to Bedrock Runtime (or anything speaking its wire) over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    /// The endpoint without a trailing `/`.
    base: String,
    config: HttpConfig,
    bucket: TokenBucket,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.inner.base)
            .field("region", &self.inner.config.region)
            .field("auth", &self.inner.config.auth)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport for `config`; an error if the endpoint or region is unusable, or if an API
    /// key would travel over plain HTTP to anything but loopback.
    pub fn new(config: HttpConfig) -> Result<HttpTransport, TransportError> {
        let invalid = |message: String| TransportError::Config { message };
        let region = &config.region;
        if region.is_empty()
            || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(format!("region {region:?} is not an AWS region name")));
        }
        let base = match &config.endpoint_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://bedrock-runtime.{region}.amazonaws.com"),
        };
        let url = Url::parse(&base)
            .map_err(|e| invalid(format!("endpoint URL {base:?} is not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if matches!(config.auth, Auth::ApiKey(_)) && !is_loopback(&url) => {
                return Err(invalid(
                    "a Bedrock API key is sent only over HTTPS (plain HTTP only to loopback)"
                        .to_owned(),
                ));
            }
            "http" => {}
            other => return Err(invalid(format!("endpoint URL scheme {other:?} is not http(s)"))),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("the endpoint URL must not have a query or fragment".to_owned()));
        }
        // A signed POST is never validly redirected, and following one would resend the
        // conversation (and a session token) to another host.
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        let bucket = TokenBucket::new(config.retry.initial_tokens);
        Ok(HttpTransport { inner: Arc::new(Inner { client, base, config, bucket }) })
    }

    /// Retry tokens left in the budget.
    pub fn retry_tokens(&self) -> u32 {
        self.inner.bucket.available()
    }

    /// Runs `attempt` under the retry policy; on exhaustion, the last error.
    async fn with_retries<T, F, Fut>(
        &self,
        call: &Call,
        mut attempt: F,
    ) -> Result<T, TransportError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let config = &self.inner.config.retry;
        let bucket = &self.inner.bucket;
        let mut spent = None;
        let attempts = config.max_attempts.max(1);
        for number in 0..attempts {
            let span = tracing::debug_span!("bedrock_attempt", model = %call.model_id, attempt = number + 1);
            let error = match attempt().instrument(span).await {
                Ok(value) => {
                    bucket.refund(spent.unwrap_or(1));
                    return Ok(value);
                }
                Err(error) => error,
            };
            let Some(class) = retry::classify(&error) else { return Err(error) };
            if number + 1 == attempts {
                return Err(error);
            }
            let cost = retry::cost(config, class);
            if !bucket.acquire(cost) {
                tracing::warn!(%error, "retry budget exhausted");
                return Err(error);
            }
            spent = Some(cost);
            let retry_after = error.api().and_then(|api| api.retry_after);
            let delay = config.delay(number, retry::jitter(), retry_after);
            tracing::info!(%error, attempt = number + 1, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::time::sleep(delay).await;
        }
        unreachable!("max_attempts is at least 1 and every iteration returns or continues")
    }

    /// Sends one attempt and returns the response if its status is a success.
    async fn post(&self, call: &Call, stream: bool) -> Result<reqwest::Response, TransportError> {
        let inner = &self.inner;
        let url = format!("{}{}", inner.base, call.path(stream));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &inner.config.auth {
            Auth::ApiKey(key) => {
                let mut value =
                    HeaderValue::try_from(format!("Bearer {}", key.expose())).map_err(|_| {
                        TransportError::Config {
                            message: "the API key has characters a header cannot carry".to_owned(),
                        }
                    })?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            Auth::SigV4(provider) => {
                let credentials = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| TransportError::Credentials { message: error_chain(&e) })?;
                let signed = sign_sigv4(
                    "POST",
                    &url,
                    &[("content-type", "application/json")],
                    &call.body,
                    &credentials,
                    &inner.config.region,
                    inner.config.clock.now(),
                )?;
                for (name, value) in signed {
                    let mut value = HeaderValue::try_from(value).map_err(|_| {
                        TransportError::Request { message: format!("signed header {name}") }
                    })?;
                    value.set_sensitive(true);
                    let name =
                        reqwest::header::HeaderName::try_from(name.as_str()).map_err(|_| {
                            TransportError::Request { message: format!("signed header {name}") }
                        })?;
                    headers.insert(name, value);
                }
            }
        }
        let response = inner
            .client
            .post(&url)
            .headers(headers)
            .body(call.body.clone())
            .send()
            .await
            .map_err(TransportError::connection)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        // The status and headers already say what failed; a body that cannot be read must not
        // turn a validation error into a (retried) connection error.
        let body = self.read_body(response).await.unwrap_or_default();
        Err(TransportError::Api(api_error(status, &headers, &body)))
    }

    /// A whole response body, refused past `max_response_bytes`.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, TransportError> {
        let limit = self.inner.config.max_response_bytes;
        let status = response.status().as_u16();
        let too_large = || TransportError::UnexpectedResponse {
            status,
            message: format!(
                "the response body is over the {limit}-byte limit (max_response_bytes)"
            ),
        };
        if response.content_length().is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(TransportError::connection)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    async fn send_once(&self, call: &Call) -> Result<Reply, TransportError> {
        let response = self.post(call, false).await?;
        let request_id = header(response.headers(), "x-amzn-requestid");
        let body = self.read_body(response).await?;
        if let Some(error) = unknown_operation(&body, request_id.clone()) {
            return Err(TransportError::Api(error));
        }
        Ok(Reply { body, request_id })
    }

    async fn stream_once(&self, call: &Call) -> Result<EventStream, TransportError> {
        let response = self.post(call, true).await?;
        let status = response.status();
        let request_id = header(response.headers(), "x-amzn-requestid");
        let content_type = header(response.headers(), "content-type").unwrap_or_default();
        if !content_type.starts_with("application/vnd.amazon.eventstream") {
            let body = self.read_body(response).await?;
            if let Some(error) = unknown_operation(&body, request_id) {
                return Err(TransportError::Api(error));
            }
            return Err(TransportError::UnexpectedResponse {
                status: status.as_u16(),
                message: format!("a stream answered with content type {content_type:?}"),
            });
        }
        let mut events = HttpEvents {
            response,
            decoder: FrameDecoder::new(),
            request_id,
            // The first event is bounded by `first_event` (the caller's timeout) alone.
            idle: self.inner.config.timeouts.first_event,
            first: None,
            done: false,
            received: 0,
            limit: self.inner.config.max_response_bytes,
        };
        // Nothing is handed out before the first event, so failing until then is retryable.
        match events.next_event().await {
            Some(Ok(event)) => {
                events.first = Some(event);
                events.idle = self.inner.config.timeouts.idle;
                Ok(EventStream::new(events))
            }
            Some(Err(error)) => Err(error),
            None => Err(TransportError::UnexpectedResponse {
                status: status.as_u16(),
                message: "the stream ended before its first event".to_owned(),
            }),
        }
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        let timeout = self.inner.config.timeouts.response;
        self.with_retries(&call, || async {
            tokio::time::timeout(timeout, self.send_once(&call))
                .await
                .unwrap_or(Err(TransportError::Timeout { waiting_for: "the response" }))
        })
        .await
    }

    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        let timeout = self.inner.config.timeouts.first_event;
        self.with_retries(&call, || async {
            tokio::time::timeout(timeout, self.stream_once(&call))
                .await
                .unwrap_or(Err(TransportError::Timeout { waiting_for: "the first event" }))
        })
        .await
    }
}

/// The events of one HTTP response.
struct HttpEvents {
    response: reqwest::Response,
    decoder: FrameDecoder,
    request_id: Option<String>,
    idle: Duration,
    /// The first event, read before the stream was handed out.
    first: Option<StreamEvent>,
    done: bool,
    /// Bytes of the stream received so far, and the most it may carry (the frame decoder
    /// bounds each frame; this bounds their sum, so no stream grows a reply without end).
    received: usize,
    limit: usize,
}

#[async_trait]
impl EventSource for HttpEvents {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        if let Some(event) = self.first.take() {
            return Some(Ok(event));
        }
        if self.done {
            return None;
        }
        let item = self.read().await;
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

impl HttpEvents {
    /// An exception or error sent inside the stream (its HTTP status was 200).
    fn in_stream(&self, code: &str, message: String) -> TransportError {
        TransportError::Api(ApiError {
            exception: Exception::from_code(code),
            status: 200,
            message,
            request_id: self.request_id.clone(),
            retry_after: None,
        })
    }

    async fn read(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        loop {
            match self.decoder.next_frame() {
                Err(error) => return Some(Err(error.into())),
                Ok(Some(Frame::Event { event_type, payload })) => {
                    return Some(Ok(StreamEvent { event_type, payload }));
                }
                Ok(Some(Frame::Exception { exception_type, payload })) => {
                    let message = json_message(&payload)
                        .unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
                    return Some(Err(self.in_stream(&exception_type, message)));
                }
                Ok(Some(Frame::Error { code, message })) => {
                    return Some(Err(self.in_stream(&code, message)));
                }
                Ok(None) => {}
            }
            match tokio::time::timeout(self.idle, self.response.chunk()).await {
                Err(_) => {
                    return Some(Err(TransportError::Timeout { waiting_for: "the next chunk" }));
                }
                Ok(Err(error)) => return Some(Err(TransportError::connection(error))),
                Ok(Ok(Some(bytes))) => {
                    self.received += bytes.len();
                    if self.received > self.limit {
                        return Some(Err(TransportError::UnexpectedResponse {
                            status: 200,
                            message: format!(
                                "the response stream is over the {}-byte limit (max_response_bytes)",
                                self.limit
                            ),
                        }));
                    }
                    self.decoder.push(&bytes);
                }
                Ok(Ok(None)) => return self.decoder.finish().err().map(|e| Err(e.into())),
            }
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn json_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let message = value.get("message").or_else(|| value.get("Message"))?;
    message.as_str().map(str::to_owned)
}

/// The error a non-success response carries.
pub(crate) fn api_error(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let code = header(headers, "x-amzn-errortype").or_else(|| {
        let value = value.as_ref()?;
        let code =
            value.get("__type").or_else(|| value.get("code")).or_else(|| value.get("Code"))?;
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
    let retry_after = header(headers, "x-amz-retry-after")
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    ApiError {
        exception,
        status: status.as_u16(),
        message,
        request_id: header(headers, "x-amzn-requestid"),
        retry_after,
    }
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
pub(crate) fn unknown_operation(body: &[u8], request_id: Option<String>) -> Option<ApiError> {
    const NAME: &[u8] = b"UnknownOperationException";
    if body.len() > 4096 || !body.windows(NAME.len()).any(|w| w == NAME) {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let kind = value.get("Output")?.get("__type")?.as_str()?;
    if !kind.ends_with("#UnknownOperationException") {
        return None;
    }
    Some(ApiError {
        exception: Exception::UnknownOperation,
        status: 200,
        message: format!(
            "{kind}: the request path named no operation (a model id or ARN must be \
             percent-encoded as one path segment)"
        ),
        request_id,
        retry_after: None,
    })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        message.push_str(": ");
        message.push_str(&error.to_string());
        source = error.source();
    }
    message
}
