//! The HTTP transport: reqwest with rustls, SigV4 or a bearer API key, typed errors, retries
//! and stream decoding (`events.rs`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;
use verbatim_protocol::eventstream::FrameDecoder;
use verbatim_protocol::sse::SseDecoder;

use crate::events::{Framing, HttpEvents};
use crate::messages::{check_headers, count_tokens_body, wire_body};
use crate::response::{api_error, header, request_id, unknown_operation};
use crate::retry::{self, TokenBucket};
use crate::{
    Api, Auth, Call, EventSource, EventStream, MessagesHost, Reply, RetryConfig, SigningScope,
    Transport, TransportError, sign_sigv4_scoped,
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
    /// Which host serves Messages API calls (default: runtime).
    pub messages_host: MessagesHost,
    /// Another endpoint than `https://bedrock-mantle.{region}.api.aws` for Messages API calls
    /// on [`MessagesHost::Mantle`].
    pub mantle_endpoint_url: Option<String>,
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
            messages_host: MessagesHost::default(),
            mantle_endpoint_url: None,
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

    /// With Messages API calls sent to `host`.
    pub fn with_messages_host(mut self, host: MessagesHost) -> HttpConfig {
        self.messages_host = host;
        self
    }

    /// With another endpoint URL for the mantle host.
    pub fn with_mantle_endpoint_url(mut self, url: impl Into<String>) -> HttpConfig {
        self.mantle_endpoint_url = Some(url.into());
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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: reqwest::Client,
    /// The runtime endpoint without a trailing `/`.
    base: String,
    /// The mantle endpoint without a trailing `/`.
    mantle_base: String,
    pub(crate) config: HttpConfig,
    bucket: TokenBucket,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.inner.base)
            .field("messages_host", &self.inner.config.messages_host)
            .field("mantle_endpoint", &self.inner.mantle_base)
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
        let base = endpoint(&config, MessagesHost::Runtime, config.endpoint_url.as_deref())?;
        let mantle_base =
            endpoint(&config, MessagesHost::Mantle, config.mantle_endpoint_url.as_deref())?;
        // A signed POST is never validly redirected, and following one would resend the
        // conversation (and a session token) to another host.
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        let bucket = TokenBucket::new(config.retry.initial_tokens);
        Ok(HttpTransport { inner: Arc::new(Inner { client, base, mantle_base, config, bucket }) })
    }

    /// Where a call goes and the name it is signed for: Messages API calls to the configured
    /// host, everything else to runtime as `bedrock`.
    pub(crate) fn target(&self, api: Api) -> (&str, &'static str) {
        let inner = &self.inner;
        match (api, inner.config.messages_host) {
            (Api::Messages, MessagesHost::Mantle) => {
                (&inner.mantle_base, MessagesHost::Mantle.signing_name())
            }
            _ => (&inner.base, MessagesHost::Runtime.signing_name()),
        }
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
        Fut: Future<Output = Result<T, Failure>>,
    {
        let config = &self.inner.config.retry;
        let bucket = &self.inner.bucket;
        let mut spent = None;
        let attempts = config.max_attempts.max(1);
        for number in 0..attempts {
            let span = tracing::debug_span!("bedrock_attempt", model = %call.model_id, attempt = number + 1);
            let Failure { error, should_retry } = match attempt().instrument(span).await {
                Ok(value) => {
                    bucket.refund(spent.unwrap_or(1));
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let Some(class) = retry::decide(&error, should_retry) else { return Err(error) };
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

    /// Adds the credentials to `headers`: the API key as a bearer token, or a SigV4 signature
    /// (for `service`) over every header already in `headers`, the host (from `url`) and
    /// `body`. Signed afresh on every call, with credentials asked of the provider again.
    pub(crate) async fn authorize(
        &self,
        url: &str,
        service: &str,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), TransportError> {
        let inner = &self.inner;
        match &inner.config.auth {
            // `Authorization: Bearer` on every host, as the Anthropic SDKs' mantle clients send
            // it; never `x-api-key` beside it (a 400 on runtime `/anthropic`).
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
                let to_sign: Vec<(&str, &str)> = headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
                    .collect();
                let scope = SigningScope {
                    service,
                    region: &inner.config.region,
                    time: inner.config.clock.now(),
                };
                let signed = sign_sigv4_scoped("POST", url, &to_sign, body, &credentials, &scope)?;
                for (name, value) in signed {
                    let mut value = HeaderValue::try_from(value).map_err(|_| {
                        TransportError::Request { message: format!("signed header {name}") }
                    })?;
                    value.set_sensitive(true);
                    let name = HeaderName::try_from(name.as_str()).map_err(|_| {
                        TransportError::Request { message: format!("signed header {name}") }
                    })?;
                    headers.insert(name, value);
                }
            }
        }
        Ok(())
    }

    /// Sends one attempt of `call` with `body` (the bytes sent) and returns the response if
    /// its status is a success.
    async fn post(
        &self,
        call: &Call,
        body: &Bytes,
        stream: bool,
    ) -> Result<reqwest::Response, Failure> {
        self.post_to(call, &call.path(stream), body).await
    }

    /// Sends one attempt of `call`'s `body` to `path` on the call's host and returns the
    /// response if its status is a success.
    async fn post_to(
        &self,
        call: &Call,
        path: &str,
        body: &Bytes,
    ) -> Result<reqwest::Response, Failure> {
        let inner = &self.inner;
        let (base, service) = self.target(call.api);
        let url = format!("{base}{path}");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &call.headers {
            let bad = || TransportError::Request {
                message: format!("header {name:?}: not a valid header name and value"),
            };
            let name = HeaderName::try_from(name.as_str()).map_err(|_| bad())?;
            headers.append(name, HeaderValue::try_from(value.as_str()).map_err(|_| bad())?);
        }
        self.authorize(&url, service, &mut headers, body).await?;
        let response = inner
            .client
            .post(&url)
            .headers(headers)
            .body(body.clone())
            .send()
            .await
            .map_err(TransportError::connection)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let should_retry = match header(&headers, "x-should-retry").as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        // The status and headers already say what failed; a body that cannot be read must not
        // turn a validation error into a (retried) connection error.
        let body = self.read_body(response).await.unwrap_or_default();
        let error = TransportError::Api(api_error(status, &headers, &body));
        Err(Failure { error, should_retry })
    }

    /// A whole response body, refused past `max_response_bytes`.
    pub(crate) async fn read_body(
        &self,
        mut response: reqwest::Response,
    ) -> Result<Bytes, TransportError> {
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

    async fn send_once(&self, call: &Call, body: &Bytes) -> Result<Reply, Failure> {
        let response = self.post(call, body, false).await?;
        let request_id = request_id(response.headers());
        let body = self.read_body(response).await?;
        if let Some(error) = unknown_operation(call.api, &body, request_id.clone()) {
            return Err(TransportError::Api(error).into());
        }
        Ok(Reply { body, request_id })
    }

    async fn stream_once(&self, call: &Call, body: &Bytes) -> Result<EventStream, Failure> {
        let response = self.post(call, body, true).await?;
        let status = response.status();
        let request_id = request_id(response.headers());
        let content_type = header(response.headers(), "content-type").unwrap_or_default();
        let (expected, framing) = match call.api {
            Api::Messages => ("text/event-stream", Framing::Sse(SseDecoder::new())),
            Api::Converse | Api::InvokeModel => {
                ("application/vnd.amazon.eventstream", Framing::EventStream(FrameDecoder::new()))
            }
        };
        if !content_type.to_ascii_lowercase().starts_with(expected) {
            let body = self.read_body(response).await?;
            if let Some(error) = unknown_operation(call.api, &body, request_id) {
                return Err(TransportError::Api(error).into());
            }
            return Err(TransportError::UnexpectedResponse {
                status: status.as_u16(),
                message: format!(
                    "a stream answered with content type {content_type:?}, not {expected}"
                ),
            }
            .into());
        }
        let mut events = HttpEvents {
            response,
            framing,
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
            Some(Err(error)) => Err(error.into()),
            None => Err(TransportError::UnexpectedResponse {
                status: status.as_u16(),
                message: "the stream ended before its first event".to_owned(),
            }
            .into()),
        }
    }
}

/// A failed attempt: the error, and the response's `x-should-retry` when it had one.
struct Failure {
    error: TransportError,
    should_retry: Option<bool>,
}

impl From<TransportError> for Failure {
    fn from(error: TransportError) -> Failure {
        Failure { error, should_retry: None }
    }
}

/// The endpoint of `host`: the configured one or the default, checked (a URL, https, or http
/// only to loopback with an API key), without a trailing `/`.
fn endpoint(
    config: &HttpConfig,
    host: MessagesHost,
    configured: Option<&str>,
) -> Result<String, TransportError> {
    let invalid = |message: String| TransportError::Config { message };
    let base = match configured {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => host.default_endpoint(&config.region),
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
    Ok(base)
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        check_headers(&call)?;
        let body = wire_body(&call, false)?;
        let timeout = self.inner.config.timeouts.response;
        self.with_retries(&call, || async {
            tokio::time::timeout(timeout, self.send_once(&call, &body))
                .await
                .unwrap_or(Err(TransportError::Timeout { waiting_for: "the response" }.into()))
        })
        .await
    }

    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        check_headers(&call)?;
        let body = wire_body(&call, true)?;
        let timeout = self.inner.config.timeouts.first_event;
        self.with_retries(&call, || async {
            tokio::time::timeout(timeout, self.stream_once(&call, &body))
                .await
                .unwrap_or(Err(TransportError::Timeout { waiting_for: "the first event" }.into()))
        })
        .await
    }

    async fn count_tokens(&self, call: Call) -> Result<u64, TransportError> {
        check_headers(&call)?;
        let host = self.inner.config.messages_host;
        let body = count_tokens_body(&call, host)?;
        let path = call.count_tokens_path(host);
        // The Messages API's headers travel with a count on mantle; a runtime count is an
        // InvokeModel count, whose version and betas are in its body.
        let call = match (call.api, host) {
            (Api::Messages, MessagesHost::Runtime) => Call { headers: Vec::new(), ..call },
            _ => call,
        };
        let timeout = self.inner.config.timeouts.response;
        self.with_retries(&call, || async {
            let once = async {
                let response = self.post_to(&call, &path, &body).await?;
                let answer = self.read_body(response).await?;
                verbatim_protocol::count_tokens::read_count(&answer).map_err(|e| {
                    Failure::from(TransportError::UnexpectedResponse {
                        status: 200,
                        message: format!("the token count's answer: {e}"),
                    })
                })
            };
            tokio::time::timeout(timeout, once)
                .await
                .unwrap_or(Err(TransportError::Timeout { waiting_for: "the token count" }.into()))
        })
        .await
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
