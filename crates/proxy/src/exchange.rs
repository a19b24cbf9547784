//! One call through the proxy: routed, its body read within bounds, its client authenticated,
//! its session found and thinking restored, judged by the mode, forwarded, and the answer
//! passed back (a stream chunk by chunk as it arrives) while it is recorded.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt as _;
use verbatim_model::{Api, Request, SessionId};
use verbatim_protocol::assemble::{self, BodyReport};
use verbatim_protocol::{anthropic, converse, messages_api};
use verbatim_transport::{Forward, Forwarded};

use crate::fold::Fold;
use crate::judge::{self, Verdict};
use crate::record::{Located, provenance};
use crate::reply::{Refusal, SESSION_HEADER, forwarded, passed_on};
use crate::route::{Op, Route};
use crate::{Mode, Shared};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if uri.path() == "/ping" && method == Method::GET {
        return Response::new(Body::from("{\"status\":\"healthy\"}"));
    }
    let route = match (method == Method::POST).then(|| Route::parse(uri.path())).flatten() {
        Some(route) => route,
        None => {
            let mut response = Response::new(Body::from(
                "{\"Output\":{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"},\"Version\":\"1.0\"}",
            ));
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            return response;
        }
    };
    let body = match read_body(&shared, &headers, body).await {
        Ok(body) => body,
        Err(refusal) => {
            let mut response = refusal.response(route.api);
            response.headers_mut().insert("connection", HeaderValue::from_static("close"));
            return response;
        }
    };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if let Err(refusal) = shared.config.auth.check(path, &headers, &body, SystemTime::now()) {
        tracing::info!(exception = refusal.exception, "proxy: a client was refused");
        return refusal.response(route.api);
    }
    let named = match headers.get(SESSION_HEADER).map(|v| v.to_str().map(SessionId::parse)) {
        None => None,
        Some(Ok(Ok(id))) => Some(id),
        Some(_) => {
            return Refusal::invalid_request(format!("{SESSION_HEADER}: not a session id"))
                .response(route.api);
        }
    };
    let call = Call { route, path: path.to_owned(), headers, body, named };
    call.run(&shared).await
}

/// Reads the body within the limits.
async fn read_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let limits = &shared.config.limits;
    let too_large = || {
        Refusal::new(
            413,
            "ValidationException",
            "Failed to buffer the request body: length limit exceeded",
        )
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(too_large());
    }
    let collect = async {
        let mut stream = body.into_data_stream();
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|_| Refusal::invalid_request("Failed to read the request body."))?;
            if out.len() + chunk.len() > limits.max_body {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(limits.body_read_timeout, collect).await.map_err(|_| {
        Refusal::new(408, "RequestTimeoutException", "Timed out reading the request body.")
    })?
}

/// A call that passed authentication.
struct Call {
    route: Route,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    named: Option<SessionId>,
}

/// What is recorded of a call once the model answered.
struct Recording {
    api: Api,
    located: Located,
    model_id: String,
    request: Request,
    notes: Vec<String>,
}

impl Call {
    async fn run(self, shared: &Arc<Shared>) -> Response {
        let api = self.route.api;
        if self.route.op == Op::CountTokens {
            return self.forward(shared, self.body.clone(), None, false).await;
        }
        let pairs = self.headers.iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)));
        let message_headers = messages_api::Headers::from_pairs(pairs);
        let model_id = self.route.model_id.as_deref();
        let mode = shared.config.mode;
        let first = match assemble::validate_call(api, model_id, &message_headers, &self.body) {
            Ok(report) => report,
            Err(_) if mode == Mode::Guard => return judge::unreadable(api).response(api),
            Err(_) => {
                return self.forward(shared, self.body.clone(), None, self.streams(None)).await;
            }
        };
        let stream = self.streams(first.stream);
        let model = model_id.map(str::to_owned).or_else(|| first.model.clone()).unwrap_or_default();
        // The session, and the thinking it restores.
        let (located, report, body) = match &first.request {
            Some(request) => {
                let mut request = request.clone();
                let located = match shared
                    .sessions
                    .locate(self.named, api, &model, &mut request)
                    .await
                {
                    Ok(located) => located,
                    Err(error) => {
                        tracing::error!(%error, "proxy: the store failed; the call is not forwarded");
                        return Refusal::new(
                            500,
                            "InternalServerException",
                            "The proxy's store failed.",
                        )
                        .response(api);
                    }
                };
                if located.restored.is_empty() {
                    (Some(located), first, self.body.clone())
                } else {
                    let restored = BodyReport { request: Some(request), ..first };
                    match judge::encoded(api, &restored).and_then(|body| {
                        let report =
                            assemble::validate_call(api, model_id, &message_headers, &body).ok()?;
                        Some((report, body))
                    }) {
                        Some((report, body)) => (Some(located), report, body),
                        None => {
                            tracing::warn!(
                                "proxy: restored thinking could not be encoded; sent as received"
                            );
                            let located = Located { restored: Vec::new(), ..located };
                            let report = assemble::validate_call(
                                api,
                                model_id,
                                &message_headers,
                                &self.body,
                            )
                            .unwrap_or(restored);
                            (Some(located), report, self.body.clone())
                        }
                    }
                }
            }
            None => (None, first, self.body.clone()),
        };
        let verdict = match judge::judge(mode, api, model_id, &message_headers, body, report) {
            Ok(verdict) => verdict,
            Err(refusal) => {
                tracing::info!(rule = ?refusal.rule, "proxy: guard refused a request");
                let mut response = refusal.response(api);
                // Only a session that is stored is named: a refused first call stores none.
                if let Some(located) = located.as_ref().filter(|l| l.new.is_none()) {
                    insert_session(&mut response, located.id);
                }
                return response;
            }
        };
        let Verdict { body, request, mut notes } = verdict;
        let recording = match (located, request) {
            (Some(located), Some(request)) => {
                for i in &located.restored {
                    notes.push(format!("proxy restored the stored thinking of messages[{i}]"));
                }
                Some(Recording { api, located, model_id: model, request, notes })
            }
            _ => None,
        };
        self.forward(shared, body, recording, stream).await
    }

    /// Whether the call streams: by its path, or on the Messages API by its body's `stream`.
    fn streams(&self, body_stream: Option<bool>) -> bool {
        match self.route.api {
            Api::Messages => body_stream == Some(true),
            Api::Converse | Api::InvokeModel => self.route.op == Op::Stream,
        }
    }

    async fn forward(
        &self,
        shared: &Arc<Shared>,
        body: Bytes,
        recording: Option<Recording>,
        stream: bool,
    ) -> Response {
        let api = self.route.api;
        let headers = self
            .headers
            .iter()
            .filter(|(name, _)| forwarded(name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let forward = Forward { api, path: self.path.clone(), headers, body };
        shared.upstream_calls.fetch_add(1, Ordering::Relaxed);
        let upstream = match shared.config.upstream.forward(&forward).await {
            Ok(upstream) => upstream,
            Err(error) => {
                tracing::warn!(%error, "proxy: the upstream call failed");
                return Refusal::new(
                    502,
                    "ServiceUnavailableException",
                    format!("The proxy could not reach Bedrock: {error}"),
                )
                .response(api);
            }
        };
        let mut response = Response::new(Body::empty());
        *response.status_mut() =
            StatusCode::from_u16(upstream.status).unwrap_or(StatusCode::BAD_GATEWAY);
        for (name, value) in &upstream.headers {
            if passed_on(name)
                && let (Ok(name), Ok(value)) =
                    (axum::http::HeaderName::try_from(name.as_str()), HeaderValue::from_str(value))
            {
                response.headers_mut().append(name, value);
            }
        }
        if !(200..300).contains(&upstream.status) {
            // Nothing is recorded of a refused call: only a session already stored is named.
            if let Some(recording) = recording.as_ref().filter(|r| r.located.new.is_none()) {
                insert_session(&mut response, recording.located.id);
            }
            *response.body_mut() =
                Body::from(upstream.error_body(shared.config.limits.max_response).await);
            return response;
        }
        let is_stream = upstream.headers.iter().any(|(n, v)| {
            n == "content-type"
                && (v.starts_with("application/vnd.amazon.eventstream")
                    || v.starts_with("text/event-stream"))
        });
        if stream && is_stream {
            // A stream is recorded when it ends, whole or broken off (its input alone), in
            // the session named here (or, if another call on it was recorded first, a fork).
            if let Some(recording) = &recording {
                insert_session(&mut response, recording.located.id);
            }
            *response.body_mut() = pump(shared.clone(), api, upstream, recording);
            return response;
        }
        let body = match whole(upstream, shared.config.limits.max_response).await {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(%why, "proxy: the upstream answer broke off");
                return Refusal::new(
                    502,
                    "ServiceUnavailableException",
                    "The answer from Bedrock broke off.",
                )
                .response(api);
            }
        };
        if let Some(recording) = recording {
            let decoded = match api {
                Api::Converse => converse::decode_response(&body),
                Api::InvokeModel => anthropic::decode_response(&body),
                Api::Messages => messages_api::decode_response(&body),
            };
            let recorded = match decoded {
                Ok(response) => record(shared, recording, Ok(response)).await,
                Err(error) => record(shared, recording, Err(error.to_string())).await,
            };
            if let Some(id) = recorded {
                insert_session(&mut response, id);
            }
        }
        *response.body_mut() = Body::from(body);
        response
    }
}

fn insert_session(response: &mut Response, id: SessionId) {
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
}

/// A whole answer's body, at most `limit` bytes.
async fn whole(mut upstream: Forwarded, limit: usize) -> Result<Bytes, String> {
    let mut body = Vec::new();
    while let Some(chunk) = upstream.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("over the {limit}-byte limit"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Records the exchange: with the reply when the model's answer folded, else the input alone
/// (a stream that broke off is never a reply). Returns the session it went into, `None` when
/// the store failed.
async fn record(
    shared: &Shared,
    recording: Recording,
    reply: Result<verbatim_model::Response, String>,
) -> Option<SessionId> {
    let Recording { api, located, model_id, request, notes } = recording;
    let reply = match reply {
        Ok(response) => {
            let provenance = provenance(api, &model_id, &request, &response, notes);
            Some((response.message, provenance))
        }
        Err(why) => {
            tracing::warn!(session = %located.id, %why, "proxy: the answer broke off or did not read; its input alone is recorded");
            None
        }
    };
    match shared.sessions.record(&located, &model_id, &request, reply).await {
        Ok(id) => Some(id),
        Err(error) => {
            tracing::error!(session = %located.id, %error, "proxy: the exchange could not be recorded");
            None
        }
    }
}

/// The body of a streamed answer: each chunk goes to the client as it arrives and into the
/// fold; at the end the exchange is recorded before the body ends, so a client's next call
/// finds it. The body reads the upstream itself as the client's connection asks for more (no
/// task or channel between them: one wake-up per chunk, not two). A client that goes away
/// drops the body, which ends the upstream call at once and records the input alone.
fn pump(shared: Arc<Shared>, api: Api, upstream: Forwarded, recording: Option<Recording>) -> Body {
    let pumping = Pumping { shared, upstream, fold: Fold::new(api), recording, done: false };
    Body::from_stream(futures_util::stream::unfold(pumping, |mut pumping| async move {
        if pumping.done {
            return None;
        }
        match pumping.upstream.chunk().await {
            Ok(Some(bytes)) => {
                if pumping.recording.is_some() {
                    pumping.fold.push(&bytes);
                }
                Some((Ok(bytes), pumping))
            }
            Ok(None) => {
                pumping.done = true;
                if let Some(recording) = pumping.recording.take() {
                    let fold = std::mem::replace(&mut pumping.fold, Fold::Failed(String::new()));
                    let shared = pumping.shared.clone();
                    // On a task of its own, awaited: a client that goes away now does not cut
                    // the record short.
                    let recorded = tokio::spawn(async move {
                        record(&shared, recording, fold.finish()).await;
                    });
                    let _ = recorded.await;
                }
                None
            }
            Err(error) => {
                pumping.done = true;
                if let Some(recording) = pumping.recording.take() {
                    record(&pumping.shared, recording, Err(error.to_string())).await;
                }
                Some((Err(std::io::Error::other("the upstream stream broke off")), pumping))
            }
        }
    }))
}

/// A stream being passed on.
struct Pumping {
    shared: Arc<Shared>,
    upstream: Forwarded,
    fold: Fold,
    /// Taken once the exchange is recorded.
    recording: Option<Recording>,
    done: bool,
}

impl Drop for Pumping {
    /// The client went away before the end (or the record was cut short): the input alone
    /// is recorded, on a task of its own, since the body is gone.
    fn drop(&mut self) {
        let Some(recording) = self.recording.take() else { return };
        let shared = self.shared.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                record(&shared, recording, Err("the client went away mid-stream".to_owned())).await;
            });
        }
    }
}
