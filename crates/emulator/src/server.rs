//! Routing, authentication and answers over HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::checks::{self, Refusal};
use crate::conversation::Dialect;
use crate::faults::{Fault, Faults};
use crate::pace::{Pace, Wait};
use crate::prompt_cache::{self, CacheUsage, PromptCache};
use crate::{EmulatorConfig, Received, count_tokens, messages, model, sigv4, tokens, wire};

pub(crate) struct State {
    pub(crate) config: EmulatorConfig,
    pub(crate) received: Mutex<Vec<Received>>,
    pub(crate) faults: Mutex<Faults>,
    /// The model's pace, which a test may change while it runs.
    pub(crate) pace: Mutex<Pace>,
    /// Requests seen, for unique request ids.
    pub(crate) requests: AtomicU64,
    /// The prompt cache every request reads and writes.
    pub(crate) prompt_cache: PromptCache,
}

impl State {
    /// The model's pace now.
    pub(crate) fn pace(&self) -> Pace {
        *self.pace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The input tokens of a checked body and what its cache points read and write, the cache
    /// updated: the reply's input usage.
    pub(crate) fn input_usage(
        &self,
        dialect: Dialect,
        body: &Value,
        model_id: &str,
    ) -> (u64, Option<CacheUsage>) {
        let key = model::model_key(model_id);
        let prompt = tokens::read(dialect, body, &key);
        let usage = self.prompt_cache.serve(
            &prompt,
            prompt_cache::minimum_tokens(&key),
            self.config.clock.now(),
        );
        (usage.input, (!prompt.points.is_empty()).then_some(usage))
    }
}

/// The largest body accepted: Bedrock's `Body` blob maximum (rules R5.1). Larger bodies get
/// HTTP 413.
const MAX_BODY: usize = 25_000_000;
/// The longest model id (rules R5.2: `InvokeModelIdentifier`, max 2048).
const MAX_MODEL_ID: usize = 2048;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Why a body could not be read.
enum Unread {
    /// Over [`MAX_BODY`].
    TooLarge,
    /// Not all in within the body read timeout.
    TimedOut,
    /// The connection failed while it came in.
    Failed,
}

/// Reads the whole body, at most [`MAX_BODY`] bytes, within `timeout` of the headers.
async fn read_body(headers: &HeaderMap, body: Body, timeout: Duration) -> Result<Bytes, Unread> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Unread::TooLarge);
    }
    let collect = async {
        let mut stream = body.into_data_stream();
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| Unread::Failed)?;
            if out.len() + chunk.len() > MAX_BODY {
                return Err(Unread::TooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(timeout, collect).await.map_err(|_| Unread::TimedOut)?
}

/// The answer to a body that could not be read; the connection is closed after it.
fn unread(reason: Unread) -> Response {
    let (status, text) = match reason {
        Unread::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Failed to buffer the request body: length limit exceeded",
        ),
        // No recording has Bedrock's answer to a stalled body; this is the generic one.
        Unread::TimedOut => (StatusCode::REQUEST_TIMEOUT, "Timed out reading the request body."),
        Unread::Failed => (StatusCode::BAD_REQUEST, "Failed to read the request body."),
    };
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert("connection", HeaderValue::from_static("close"));
    response
}

/// The refusal of a model id the service's constraints refuse (rules R5.2), in the format of
/// its recorded validation errors.
fn model_id_refusal(model_id: &str) -> Option<Refusal> {
    let constraint = if model_id.is_empty() {
        "Member must have length greater than or equal to 1"
    } else if model_id.chars().count() > MAX_MODEL_ID {
        "Member must have length less than or equal to 2048"
    } else {
        return None;
    };
    Some(checks::validation(format!(
        "1 validation error detected: Value at 'modelId' failed to satisfy constraint: {constraint}"
    )))
}

/// A request id, unique per request (a retried request gets a new one, as from the service).
fn request_id(n: u64, path: &str, body: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(n.to_be_bytes())
        .chain_update(path)
        .chain_update(body)
        .finalize();
    let hex = hex::encode(&digest[..16]);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

pub(crate) fn json_response(status: u16, id: &str, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

/// Bedrock's error answer: status, `x-amzn-ErrorType`, `x-amzn-RequestId`, `{"message"}`.
pub(crate) fn refuse(refusal: &Refusal, id: &str) -> Response {
    let mut response = json_response(refusal.status, id, &json!({ "message": refusal.message }));
    let kind =
        format!("{}:http://internal.amazon.com/coral/com.amazon.bedrock/", refusal.exception);
    if let Ok(value) = HeaderValue::from_str(&kind) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

fn unknown_operation(id: &str) -> Response {
    json_response(
        200,
        id,
        &json!({"Output": {"__type": "com.amazon.coral.service#UnknownOperationException"}, "Version": "1.0"}),
    )
}

pub(crate) fn forbidden(message: &str) -> Refusal {
    Refusal { status: 403, exception: "AccessDeniedException", message: message.to_owned() }
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn authenticate(
    config: &EmulatorConfig,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    // The texts for a missing header and a wrong API key are not in the rules file (no
    // recording has them); these are the AWS API gateway's generic answers.
    let Some(authorization) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(forbidden("Missing Authentication Token"));
    };
    check_authorization(config, authorization, method, uri, headers, body, None)
}

/// Checks an `Authorization` header: the API key as a bearer token, or a SigV4 signature
/// (for one of `services` when they are given; the model routes take any signing name).
pub(crate) fn check_authorization(
    config: &EmulatorConfig,
    authorization: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    services: Option<&[&str]>,
) -> Result<(), Refusal> {
    if let Some(key) = authorization.strip_prefix("Bearer ") {
        return match &config.api_key {
            Some(expected) if key == expected => Ok(()),
            _ => Err(forbidden("The security token included in the request is invalid.")),
        };
    }
    let auth = sigv4::parse(authorization).map_err(|_| {
        forbidden("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    })?;
    if let Some(services) = services
        && !services.contains(&auth.service.as_str())
    {
        // The AWS gateway's text for a credential scoped to another service.
        return Err(Refusal {
            status: 403,
            exception: "InvalidSignatureException",
            message: format!(
                "Credential should be scoped to correct service: '{}'. ",
                services.first().copied().unwrap_or_default()
            ),
        });
    }
    let lowered: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let received = sigv4::Received {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &lowered,
        body,
    };
    sigv4::verify(&auth, &received, &config.access_key_id, &config.secret_access_key).map_err(|refusal| match refusal {
        sigv4::Refusal::UnknownKey => Refusal {
            status: 403,
            exception: "UnrecognizedClientException",
            message: "The security token included in the request is invalid.".to_owned(),
        },
        sigv4::Refusal::Mismatch | sigv4::Refusal::Malformed => Refusal {
            status: 403,
            exception: "InvalidSignatureException",
            message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_owned(),
        },
    })
}

async fn handle(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&headers, body, state.config.body_read_timeout).await {
        Ok(body) => body,
        Err(reason) => return unread(reason),
    };
    let path = uri.path().to_owned();
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let id = request_id(n, &path, &body);
    if path == messages::PATH && method == Method::POST {
        return handle_messages(&state, &method, &uri, &headers, &body, path, &id).await;
    }
    if path == count_tokens::MESSAGES_PATH && method == Method::POST {
        if let Err(refusal) = messages::authenticate(&state.config, &method, &uri, &headers, &body)
        {
            return messages::refuse(&refusal, &id);
        }
        let response = count_tokens::messages(&state, &headers, &body, &id);
        let model_id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| messages::model_of(&v).map(str::to_owned))
            .unwrap_or_default();
        let received = Received {
            path,
            model_id,
            operation: "count-tokens".to_owned(),
            body: body.to_vec(),
            status: response.status().as_u16(),
            fault: None,
        };
        return record(&state, received, response).await;
    }
    let segments: Vec<&str> = path.split('/').collect();
    let (model_id, operation) = match segments[..] {
        ["", "model", id_segment, operation] if method == Method::POST => {
            match (percent_decode(id_segment), operation) {
                (
                    Some(model_id),
                    "converse"
                    | "converse-stream"
                    | "invoke"
                    | "invoke-with-response-stream"
                    | "count-tokens",
                ) => (model_id, operation.to_owned()),
                _ => return unknown_operation(&id),
            }
        }
        // An ARN with a raw `/` splits the path: Bedrock finds no operation and says so in a 200.
        _ => return unknown_operation(&id),
    };
    if let Err(refusal) = authenticate(&state.config, &method, &uri, &headers, &body) {
        return refuse(&refusal, &id);
    }
    // The id's constraints are checked as the request is read, before any fault is drawn.
    let refused_id = model_id_refusal(&model_id);
    let fault = match refused_id {
        Some(_) => None,
        None => state.faults.lock().unwrap_or_else(|e| e.into_inner()).next(),
    };
    let stream = operation.ends_with("stream");
    let response = match (&refused_id, fault.as_ref().and_then(|f| f.error(stream))) {
        (Some(refusal), _) => refuse(refusal, &id),
        (None, Some(error)) => refuse(
            &Refusal {
                status: error.status,
                exception: error.exception,
                message: error.message.to_owned(),
            },
            &id,
        ),
        (None, None) if operation == "count-tokens" => {
            count_tokens::model(&state, &model_id, &body, &id)
        }
        (None, None) => answer(&state, &model_id, &operation, stream, &body, &id, fault.as_ref()),
    };
    let received = Received {
        path,
        model_id,
        operation,
        body: body.to_vec(),
        status: response.status().as_u16(),
        fault,
    };
    record(&state, received, response).await
}

/// Records a request and hands its answer back after the fault's delay, if any, and the time a
/// whole answer takes at the model's pace.
async fn record(state: &State, received: Received, response: Response) -> Response {
    let delay = received.fault.as_ref().map(Fault::delay).unwrap_or_default()
        + response.extensions().get::<Wait>().map_or(Duration::ZERO, |wait| wait.0);
    // Recorded before a slow first byte, so a client that gives up is still seen to have asked.
    state.received.lock().unwrap_or_else(|e| e.into_inner()).push(received);
    tokio::time::sleep(delay).await;
    response
}

/// A request to the Messages API route (`messages.rs`): authenticated by its own rules,
/// answered with Anthropic error objects, recorded as operation `messages`.
async fn handle_messages(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    path: String,
    id: &str,
) -> Response {
    if let Err(refusal) = messages::authenticate(&state.config, method, uri, headers, body) {
        return messages::refuse(&refusal, id);
    }
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let model_id = parsed.as_ref().and_then(messages::model_of).unwrap_or_default().to_owned();
    // A body that is not JSON, or a model id the constraints refuse, is refused as it is read,
    // before any fault is drawn.
    let early = match &parsed {
        None => Some(checks::validation(
            "Malformed input request, please reformat your input and try again.",
        )),
        Some(value) => messages::model_of(value).and_then(model_id_refusal),
    };
    let fault = match early {
        Some(_) => None,
        None => state.faults.lock().unwrap_or_else(|e| e.into_inner()).next(),
    };
    let stream = parsed.as_ref().is_some_and(|v| v.get("stream") == Some(&Value::Bool(true)));
    let response = match (early, fault.as_ref().and_then(|f| f.error(stream))) {
        (Some(refusal), _) => messages::refuse(&refusal, id),
        (None, Some(error)) => messages::refuse(
            &Refusal {
                status: error.status,
                exception: error.exception,
                message: error.message.to_owned(),
            },
            id,
        ),
        (None, None) => {
            let value = parsed.as_ref().unwrap_or(&Value::Null);
            messages::answer(state, value, headers, id, fault.as_ref())
        }
    };
    let received = Received {
        path,
        model_id,
        operation: "messages".to_owned(),
        body: body.to_vec(),
        status: response.status().as_u16(),
        fault,
    };
    record(state, received, response).await
}

fn answer(
    state: &State,
    model_id: &str,
    operation: &str,
    stream: bool,
    body: &[u8],
    id: &str,
    fault: Option<&Fault>,
) -> Response {
    let dialect =
        if operation.starts_with("invoke") { Dialect::Anthropic } else { Dialect::Converse };
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        let message = match dialect {
            Dialect::Anthropic => {
                "Malformed input request, please reformat your input and try again."
            }
            Dialect::Converse => "The request body is not valid JSON.",
        };
        return refuse(
            &Refusal { status: 400, exception: "ValidationException", message: message.to_owned() },
            id,
        );
    };
    let config = &state.config;
    let secret = &config.signing_secret;
    let checked = checks::check(dialect, &parsed, model_id, secret).and_then(|conversation| {
        // Betas are refused on the InvokeModel route only: that is where the refusals were
        // recorded (the Messages API route reads them from a header and refuses none).
        if dialect == Dialect::Anthropic {
            crate::betas::check_invoke(&parsed, &model::model_key(model_id))?;
        }
        Ok(conversation)
    });
    let conversation = match checked {
        Ok(conversation) => conversation,
        Err(refusal) => return refuse(&refusal, id),
    };
    let key = model::model_key(model_id);
    let behaviour = config.script.behaviour(model_id, &key);
    let mut reply = model::answer(secret, model_id, &behaviour, &conversation);
    if dialect == Dialect::Anthropic {
        crate::compaction::apply(&parsed, secret, &mut reply);
    }
    (reply.input_tokens, reply.cache) = state.input_usage(dialect, &parsed, model_id);
    let message_id = format!("msg_bdrk_emu{}", &id.replace('-', "")[..20]);
    let pace = state.pace();
    let frames = || match dialect {
        Dialect::Converse => wire::converse_stream(&reply),
        Dialect::Anthropic => wire::anthropic_stream(&reply, &key, &message_id),
    };
    if !stream {
        if let Some(Fault::Reset { .. }) = fault {
            return cut_response("application/json");
        }
        let body = match dialect {
            Dialect::Converse => wire::converse_body(&reply),
            Dialect::Anthropic => wire::anthropic_body(&reply, &key, &message_id),
        };
        let mut response = json_response(200, id, &body);
        if !pace.is_immediate() {
            response.extensions_mut().insert(Wait(pace.whole(frames().len())));
        }
        return response;
    }
    let frames = frames();
    let mut sent: Vec<Piece> = frames.into_iter().map(|f| Piece::Frame(Bytes::from(f))).collect();
    match fault {
        Some(Fault::StreamException { after, exception }) => {
            sent.truncate(*after);
            sent.push(Piece::Frame(Bytes::from(wire::exception_frame(*exception))));
        }
        Some(Fault::Reset { after }) => {
            sent.truncate(*after);
            sent.push(Piece::Cut);
        }
        _ => {}
    }
    let mut response = Response::new(Body::from_stream(pieces(sent, pace)));
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/vnd.amazon.eventstream"));
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-amzn-requestid", value);
    }
    if dialect == Dialect::Anthropic {
        headers.insert("x-amzn-bedrock-content-type", HeaderValue::from_static("application/json"));
    }
    response
}

/// An answer whose head goes out and whose body is cut: a reset connection.
pub(crate) fn cut_response(content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from_stream(pieces(vec![Piece::Cut], Pace::default())));
    response.headers_mut().insert("content-type", HeaderValue::from_static(content_type));
    response
}

/// What a streamed answer sends, one piece at a time.
pub(crate) enum Piece {
    /// One event-stream frame.
    Frame(Bytes),
    /// The connection cut: the body fails and the server drops the connection.
    Cut,
}

/// A body that hands its pieces over one by one, yielding between them (or waiting, at the
/// model's pace), so the client sees frames arrive separately as from the service.
pub(crate) fn pieces(
    pieces: Vec<Piece>,
    pace: Pace,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold((pieces.into_iter(), 0), move |(mut rest, index)| async move {
        // The next piece is taken before the wait, so the stream ends with its last piece.
        let next = rest.next()?;
        let wait = pace.before_event(index);
        if wait.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(wait).await;
        }
        let piece = match next {
            Piece::Frame(frame) => Ok(frame),
            Piece::Cut => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault injected: connection reset",
            )),
        };
        Some((piece, (rest, index + 1)))
    })
}
