//! The HTTP transport against a scripted loopback server, for what needs byte-level control
//! of the wire: the exact SigV4 headers, `x-amz-retry-after`, the HTTP 200 unknown-operation
//! body, frames split anywhere or cut in half, a stall between chunks, a connection held
//! open. Everything else runs against the emulator (`emulated.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;

use super::collect;
use super::server::{Action, End, Server};
use crate::{
    Api, Auth, Call, Clock, Exception, HttpConfig, HttpTransport, RetryConfig, Timeouts, Transport,
    TransportError,
};

#[derive(Debug)]
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

const NOW: Duration = Duration::from_secs(1_795_000_000);
const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0";

fn config(server: &Server, auth: Auth) -> HttpConfig {
    HttpConfig::new("us-east-1", auth)
        .with_endpoint_url(&server.url)
        .with_retry(
            RetryConfig::default().with_delays(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .with_clock(Arc::new(FixedClock(SystemTime::UNIX_EPOCH + NOW)))
}

fn transport(server: &Server) -> HttpTransport {
    HttpTransport::new(config(server, Auth::api_key("test-key"))).unwrap()
}

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Action {
    Action::Respond {
        status,
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn ok(body: &str) -> Action {
    respond(200, &[("content-type", "application/json"), ("x-amzn-RequestId", "ok-1")], body)
}

const TOO_MANY: &str = "Too many requests, please wait before trying again.";

fn call() -> Call {
    Call::new(Api::Converse, "us.anthropic.claude-sonnet-4-20250514-v1:0", r#"{"messages":[]}"#)
}

fn frame(headers: &[(&str, &str)], payload: &str) -> Vec<u8> {
    let mut message = Message::new(Bytes::from(payload.to_owned()));
    for (name, value) in headers {
        message = message.add_header(Header::new(
            name.to_string(),
            HeaderValue::String(value.to_string().into()),
        ));
    }
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes).unwrap();
    bytes
}

fn event(event_type: &str, payload: &str) -> Vec<u8> {
    frame(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", "application/json"),
        ],
        payload,
    )
}

fn stream(chunks: Vec<Vec<u8>>, end: End) -> Action {
    Action::Stream { chunks, pause: Duration::ZERO, end }
}

#[tokio::test]
async fn sigv4_requests_carry_the_signature_of_exactly_what_is_sent() {
    let server = Server::start(vec![ok("{}")]).await;
    let auth = Auth::credentials("AKIDEXAMPLE", "secret", Some("token".into()));
    let transport = HttpTransport::new(config(&server, auth)).unwrap();
    transport.send(Call::new(Api::InvokeModel, ARN, "{\"a\":1}")).await.unwrap();
    let received = &server.received()[0];
    assert_eq!(received.body, b"{\"a\":1}");
    let url = format!("{}{}", server.url, received.path);
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "t");
    let expected = crate::sign_sigv4(
        "POST",
        &url,
        &[("content-type", "application/json")],
        b"{\"a\":1}",
        &credentials,
        "us-east-1",
        SystemTime::UNIX_EPOCH + NOW,
    )
    .unwrap();
    for (name, value) in &expected {
        assert_eq!(received.header(name), Some(value.as_str()), "{name}");
    }
    let authorization = received.header("authorization").unwrap();
    assert!(authorization.contains("/us-east-1/bedrock/aws4_request"), "{authorization}");
    assert!(
        authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token")
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let throttled = respond(
        429,
        &[("x-amzn-ErrorType", "ThrottlingException"), ("x-amz-retry-after", "400")],
        &format!("{{\"message\":\"{TOO_MANY}\"}}"),
    );
    let server = Server::start(vec![throttled, ok("{}")]).await;
    let started = Instant::now();
    transport(&server).send(call()).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "retried after {waited:?}");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let server = Server::start(vec![Action::Close, ok("{}")]).await;
    transport(&server).send(call()).await.unwrap();
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn the_http_200_unknown_operation_body_is_an_error_not_a_reply() {
    let body = r#"{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}"#;
    let server = Server::start(vec![ok(body), ok(body)]).await;
    let transport = transport(&server);
    let error = transport.send(call()).await.unwrap_err();
    assert_eq!(error.api().unwrap().exception, Exception::UnknownOperation);
    let error = transport.stream(call()).await.unwrap_err();
    assert_eq!(error.api().unwrap().exception, Exception::UnknownOperation);
    assert_eq!(server.received().len(), 2, "not retried");
}

#[tokio::test]
async fn a_stream_arrives_as_events_however_its_frames_are_chunked() {
    let mut bytes = event("messageStart", r#"{"p":"abc","role":"assistant"}"#);
    bytes.extend(event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#));
    bytes.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#));
    let chunks: Vec<Vec<u8>> = bytes.chunks(7).map(<[u8]>::to_vec).collect();
    let server = Server::start(vec![stream(chunks, End::Clean)]).await;
    let mut events = transport(&server).stream(call()).await.unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(&first.payload[..], br#"{"p":"abc","role":"assistant"}"#, "payload as sent");
    let (types, error) = collect(&mut events).await;
    assert_eq!(types, ["contentBlockDelta", "messageStop"]);
    assert!(error.is_none());
    assert_eq!(
        server.received()[0].path,
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
    );
}

#[tokio::test]
async fn a_stream_cut_mid_frame_is_an_error_and_is_not_retried_after_its_first_event() {
    let start = event("messageStart", r#"{"role":"assistant"}"#);
    let delta = event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#);
    let half = delta[..delta.len() / 2].to_vec();
    for end in [End::Cut, End::Clean] {
        let server =
            Server::start(vec![stream(vec![start.clone(), half.clone()], end), ok("{}")]).await;
        let mut events = transport(&server).stream(call()).await.unwrap();
        let (types, error) = collect(&mut events).await;
        assert_eq!(types, ["messageStart"], "{end:?}");
        let error = error.expect("a broken stream is an error, never a silent end");
        match end {
            // The connection closed without the chunked terminator.
            End::Cut => assert!(matches!(error, TransportError::Connection { .. }), "{error}"),
            // The body ended cleanly, but inside a frame.
            End::Clean => assert!(matches!(error, TransportError::Frame(_)), "{error}"),
            End::Hold => unreachable!("not among the cases"),
        }
        assert_eq!(server.received().len(), 1, "{end:?}");
    }
}

#[tokio::test]
async fn a_stalled_stream_times_out_between_chunks() {
    let chunks = vec![event("messageStart", r#"{"role":"assistant"}"#), event("messageStop", "{}")];
    let server = Server::start(vec![Action::Stream {
        chunks,
        pause: Duration::from_millis(400),
        end: End::Clean,
    }])
    .await;
    let timeouts = Timeouts { idle: Duration::from_millis(150), ..Timeouts::default() };
    let transport =
        HttpTransport::new(config(&server, Auth::api_key("k")).with_timeouts(timeouts)).unwrap();
    let mut events = transport.stream(call()).await.unwrap();
    let (types, error) = collect(&mut events).await;
    assert_eq!(types, ["messageStart"]);
    assert!(
        matches!(error, Some(TransportError::Timeout { waiting_for: "the next chunk" })),
        "{error:?}"
    );
}

#[tokio::test]
async fn dropping_a_call_or_a_stream_closes_its_connection() {
    let server = Server::start(vec![
        Action::Hang,
        Action::Stream {
            chunks: vec![event("messageStart", r#"{"role":"assistant"}"#)],
            pause: Duration::ZERO,
            end: End::Hold,
        },
    ])
    .await;
    let transport = transport(&server);
    let call_future = transport.send(call());
    assert!(tokio::time::timeout(Duration::from_millis(200), call_future).await.is_err());
    let mut events = transport.stream(call()).await.unwrap();
    assert!(events.next().await.unwrap().is_ok());
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.closed_by_client() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.closed_by_client(), 2, "both connections were closed by dropping");
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_refused_not_read_on() {
    let big = format!(
        r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"{}"}}]}}}}}}"#,
        "x".repeat(4096)
    );
    let server = Server::start(vec![ok(&big), ok(&big)]).await;
    let transport = HttpTransport::new(
        config(&server, Auth::api_key("test-key")).with_max_response_bytes(1024),
    )
    .unwrap();
    let error = transport.send(call()).await.unwrap_err();
    assert!(error.to_string().contains("1024-byte limit"), "{error}");
    assert_eq!(server.received().len(), 1, "not retried");
    // Within the limit it is read whole.
    let fits = HttpTransport::new(config(&server, Auth::api_key("test-key"))).unwrap();
    assert_eq!(fits.send(call()).await.unwrap().body.len(), big.len());
}

#[tokio::test]
async fn a_stream_over_the_size_limit_ends_in_an_error() {
    let mut bytes = event("messageStart", r#"{"p":"abc","role":"assistant"}"#);
    let delta = format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"{}"}}}}"#, "y".repeat(200));
    for _ in 0..20 {
        bytes.extend(event("contentBlockDelta", &delta));
    }
    bytes.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#));
    let chunks: Vec<Vec<u8>> = bytes.chunks(256).map(<[u8]>::to_vec).collect();
    let server = Server::start(vec![stream(chunks, End::Clean)]).await;
    let config = config(&server, Auth::api_key("test-key")).with_max_response_bytes(2048);
    let mut events = HttpTransport::new(config).unwrap().stream(call()).await.unwrap();
    let (types, error) = collect(&mut events).await;
    assert!(types.len() < 20, "stopped early: {types:?}");
    let error = error.expect("an error past the limit");
    assert!(error.to_string().contains("2048-byte limit"), "{error}");
}
