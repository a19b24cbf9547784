//! The Anthropic Messages API (`/anthropic/v1/messages`) against the scripted loopback server:
//! the body written around the call's bytes, the headers, the host and signing name, SSE
//! streams, both error shapes and the Anthropic retry headers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use verbatim_protocol::sse::decode_all;

use super::collect;
use super::server::{Action, End, Server};
use crate::messages::wire_body;
use crate::{
    Api, Auth, Call, Clock, Exception, HttpConfig, HttpTransport, MessagesHost, RetryConfig,
    SigningScope, Transport, TransportError, sign_sigv4_scoped,
};

#[derive(Debug)]
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

const NOW: Duration = Duration::from_secs(1_795_000_000);
const MODEL: &str = "anthropic.claude-opus-4-7";
const MESSAGE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","content":[]}"#;
const CORAL: &str =
    r#"{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}"#;

fn file(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn wire_sse(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wire/test_data/sse").join(name)
}

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

fn call(body: impl Into<bytes::Bytes>) -> Call {
    Call::new(Api::Messages, MODEL, body)
        .with_header("anthropic-version", "2023-06-01")
        .with_header("anthropic-beta", "interleaved-thinking-2025-05-14")
}

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Action {
    Action::Respond {
        status,
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn ok(body: &str) -> Action {
    respond(200, &[("content-type", "application/json"), ("request-id", "req_ok_1")], body)
}

fn sse(bytes: &[u8], chunk: usize, end: End) -> Action {
    Action::Sse { chunks: bytes.chunks(chunk).map(<[u8]>::to_vec).collect(), end }
}

#[tokio::test]
async fn the_body_goes_out_with_model_and_stream_written_around_its_unchanged_bytes() {
    let body = file("test_data/messages/body.json");
    let stream = std::fs::read(wire_sse("thinking_tool_use.sse")).unwrap();
    let server = Server::start(vec![ok(MESSAGE), sse(&stream, 4096, End::Clean)]).await;
    let transport = transport(&server);
    let reply = transport.send(call(body.clone())).await.unwrap();
    assert_eq!(&reply.body[..], MESSAGE.as_bytes());
    assert_eq!(reply.request_id.as_deref(), Some("req_ok_1"), "`request-id` is recorded");
    transport.stream(call(body.clone())).await.unwrap();
    let inside = &body[1..body.len() - 1];
    let expected = |tail: &str| {
        [format!("{{\"model\":\"{MODEL}\",").as_bytes(), inside, tail.as_bytes()].concat()
    };
    let received = server.received();
    assert_eq!(received[0].body, expected("}"), "send: no `stream`");
    assert_eq!(received[1].body, expected(",\"stream\":true}"), "stream");
    for request in &received {
        assert_eq!(request.path, "/anthropic/v1/messages");
        let value: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(value["model"], MODEL);
        assert_eq!(value["thinking"]["type"], "adaptive");
    }
}

#[test]
fn an_empty_body_gets_only_model_and_stream_and_a_non_object_is_refused() {
    let empty = Call::new(Api::Messages, "us.anthropic.claude-\"x\"", " {} ");
    assert_eq!(&wire_body(&empty, false).unwrap()[..], br#"{"model":"us.anthropic.claude-\"x\""}"#);
    assert_eq!(
        &wire_body(&empty, true).unwrap()[..],
        br#"{"model":"us.anthropic.claude-\"x\"","stream":true}"#
    );
    for body in ["[]", "", "{\"a\":1", "null"] {
        let error = wire_body(&Call::new(Api::Messages, MODEL, body), false).unwrap_err();
        assert!(error.to_string().contains("must be a JSON object"), "{body:?}: {error}");
    }
    // Elsewhere the body is sent as it is.
    let converse = Call::new(Api::Converse, MODEL, "{\"messages\":[]}");
    assert_eq!(wire_body(&converse, true).unwrap(), converse.body);
}

#[tokio::test]
async fn version_beta_and_the_bearer_key_are_sent_and_x_api_key_never() {
    let server = Server::start(vec![ok(MESSAGE)]).await;
    let transport = transport(&server);
    transport.send(call("{}")).await.unwrap();
    let received = &server.received()[0];
    assert_eq!(received.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(received.header("anthropic-beta"), Some("interleaved-thinking-2025-05-14"));
    assert_eq!(received.header("authorization"), Some("Bearer test-key"));
    assert_eq!(received.header("content-type"), Some("application/json"));
    assert_eq!(received.header("x-api-key"), None);
    // A call cannot add a second credential header (a 400 on runtime `/anthropic`).
    for name in ["x-api-key", "Authorization"] {
        let error = transport.send(call("{}").with_header(name, "other")).await.unwrap_err();
        assert!(matches!(error, TransportError::Request { .. }), "{name}: {error}");
        assert!(!error.to_string().contains("other"), "the value is not shown: {error}");
    }
    assert_eq!(server.received().len(), 1, "refused calls are not sent");
}

#[tokio::test]
async fn sigv4_signs_messages_calls_as_bedrock_mantle_on_mantle_and_bedrock_on_runtime() {
    let runtime = Server::start(vec![ok(MESSAGE), ok("{}"), ok(MESSAGE)]).await;
    let mantle = Server::start(vec![ok(MESSAGE)]).await;
    let auth = || Auth::credentials("AKIDEXAMPLE", "secret", Some("token".into()));
    let on_mantle = config(&runtime, auth())
        .with_messages_host(MessagesHost::Mantle)
        .with_mantle_endpoint_url(&mantle.url);
    let on_mantle = HttpTransport::new(on_mantle).unwrap();
    on_mantle.send(call("{}")).await.unwrap();
    // Converse stays on runtime, whichever host serves the Messages API.
    on_mantle.send(Call::new(Api::Converse, "m", "{}")).await.unwrap();
    let on_runtime = HttpTransport::new(config(&runtime, auth())).unwrap();
    on_runtime.send(call("{}")).await.unwrap();

    let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "t");
    let cases = [
        (&mantle.received()[0], &mantle.url, "bedrock-mantle"),
        (&runtime.received()[0], &runtime.url, "bedrock"),
        (&runtime.received()[1], &runtime.url, "bedrock"),
    ];
    for (received, base, service) in cases {
        let authorization = received.header("authorization").unwrap();
        let scope = format!("/us-east-1/{service}/aws4_request");
        assert!(authorization.contains(&scope), "{service}: {authorization}");
        assert_eq!(received.header("x-api-key"), None);
        // The signature covers exactly what was sent, the extra headers included.
        let mut signed = vec![("content-type", "application/json")];
        for name in ["anthropic-beta", "anthropic-version"] {
            if let Some(value) = received.header(name) {
                signed.push((name, value));
                assert!(authorization.contains(name), "{name} is signed: {authorization}");
            }
        }
        let url = format!("{base}{}", received.path);
        let scope =
            SigningScope { service, region: "us-east-1", time: SystemTime::UNIX_EPOCH + NOW };
        let expected =
            sign_sigv4_scoped("POST", &url, &signed, &received.body, &credentials, &scope).unwrap();
        for (name, value) in &expected {
            assert_eq!(received.header(name), Some(value.as_str()), "{service}: {name}");
        }
    }
    assert_eq!(runtime.received()[0].path, "/model/m/converse");
    assert_eq!(runtime.received()[1].path, "/anthropic/v1/messages");
    assert_eq!(mantle.received()[0].path, "/anthropic/v1/messages");
}

/// The events a stream's bytes hold, as the transport hands them out: `ping`, unnamed and
/// empty ones skipped, the rest as name and data.
fn expected_events(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    decode_all(bytes)
        .unwrap()
        .into_iter()
        .filter(|e| e.event.as_deref().is_some_and(|name| name != "ping") && !e.data.is_empty())
        .map(|e| (e.event.unwrap(), e.data.into_bytes()))
        .collect()
}

#[tokio::test]
async fn sse_events_are_handed_out_as_sent_with_pings_and_empty_events_skipped_however_chunked() {
    for (bytes, count) in [
        (std::fs::read(wire_sse("thinking_tool_use.sse")).unwrap(), 19),
        (file("test_data/messages/skips.sse"), 6),
    ] {
        let expected = expected_events(&bytes);
        assert_eq!(expected.len(), count, "the fixture holds what the test expects");
        assert!(expected.iter().all(|(name, _)| name != "ping"));
        for chunk in [1, 7, 64, bytes.len()] {
            let server = Server::start(vec![sse(&bytes, chunk, End::Clean)]).await;
            let mut events = transport(&server).stream(call("{}")).await.unwrap();
            let mut got = Vec::new();
            while let Some(event) = events.next().await {
                let event = event.unwrap();
                got.push((event.event_type, event.payload.to_vec()));
            }
            assert_eq!(got, expected, "chunks of {chunk}");
        }
    }
    // The two `data:` lines of one event arrive joined with `\n`, as the standard says.
    let skips = expected_events(&file("test_data/messages/skips.sse"));
    let names: Vec<&str> = skips.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(
        skips[2].1.windows(2).any(|w| w == b",\n"),
        "{:?}",
        String::from_utf8_lossy(&skips[2].1)
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_it_with_the_anthropic_error() {
    let bytes = std::fs::read(wire_sse("error_mid_stream.sse")).unwrap();
    let server = Server::start(vec![sse(&bytes, 50, End::Clean), ok(MESSAGE)]).await;
    let mut events = transport(&server).stream(call("{}")).await.unwrap();
    let (types, error) = collect(&mut events).await;
    assert_eq!(types, ["message_start", "content_block_start", "content_block_delta"]);
    let error = error.expect("the stream ends in the error");
    let api = error.api().unwrap_or_else(|| panic!("an API error: {error}"));
    assert_eq!(api.exception, Exception::Other("overloaded_error".into()));
    assert_eq!(api.exception.name(), "overloaded_error");
    assert_eq!((api.status, api.message.as_str()), (200, "Overloaded"));
    assert_eq!(api.request_id.as_deref(), Some("req_sse_1"));
    assert!(events.next().await.is_none(), "nothing after the error");
    assert_eq!(server.received().len(), 1, "not retried once events were handed out");
}

#[tokio::test]
async fn an_error_event_before_any_other_is_retried_like_the_overload_it_reports() {
    let error = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let stream = file("test_data/messages/skips.sse");
    let server =
        Server::start(vec![sse(error, 4096, End::Clean), sse(&stream, 4096, End::Clean)]).await;
    let mut events = transport(&server).stream(call("{}")).await.unwrap();
    let (types, failure) = collect(&mut events).await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(types.len(), 6);
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_broken_sse_stream_is_an_error_not_an_early_end() {
    let bytes = file("test_data/messages/skips.sse");
    // Inside the text delta, after two events.
    let cut = bytes.windows(2).position(|w| w == b"Gr").unwrap();
    for end in [End::Cut, End::Clean] {
        let server =
            Server::start(vec![Action::Sse { chunks: vec![bytes[..cut].to_vec()], end }]).await;
        let mut events = transport(&server).stream(call("{}")).await.unwrap();
        let (types, error) = collect(&mut events).await;
        assert!(!types.is_empty(), "{end:?}: events before the break are handed out");
        let error = error.expect("a broken stream is an error");
        match end {
            End::Cut => assert!(matches!(error, TransportError::Connection { .. }), "{error}"),
            End::Clean => assert!(matches!(error, TransportError::Sse(_)), "{error}"),
            End::Hold => unreachable!("not among the cases"),
        }
    }
}

#[tokio::test]
async fn a_stream_answered_with_another_content_type_is_an_error_naming_it() {
    let server = Server::start(vec![ok(MESSAGE)]).await;
    let error = transport(&server).stream(call("{}")).await.unwrap_err();
    let TransportError::UnexpectedResponse { status: 200, message } = &error else {
        panic!("{error}")
    };
    assert!(
        message.contains("application/json") && message.contains("text/event-stream"),
        "{message}"
    );
    // An event-stream answer is not what the Messages API streams either.
    let frames = Server::start(vec![Action::Stream {
        chunks: vec![b"x".to_vec()],
        pause: Duration::ZERO,
        end: End::Clean,
    }])
    .await;
    let error = transport(&frames).stream(call("{}")).await.unwrap_err();
    assert!(error.to_string().contains("application/vnd.amazon.eventstream"), "{error}");
}

#[tokio::test]
async fn both_error_body_shapes_become_api_errors() {
    let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content: Field required"},"request_id":"req_body_1"}"#;
    let server = Server::start(vec![
        respond(400, &[("content-type", "application/json"), ("request-id", "req_400")], anthropic),
        respond(404, &[("x-amzn-RequestId", "aws-404")], r#"{"message":"Model not found."}"#),
        respond(403, &[], r#"{"Message":"User is not authorized."}"#),
        respond(401, &[], anthropic.replace(r#","request_id":"req_body_1""#, "").as_str()),
    ])
    .await;
    let transport = transport(&server);
    let mut errors = Vec::new();
    for _ in 0..4 {
        errors.push(transport.send(call("{}")).await.unwrap_err().api().unwrap().clone());
    }
    assert_eq!(errors[0].exception, Exception::Other("invalid_request_error".into()));
    assert_eq!(errors[0].message, "messages.0.content: Field required");
    assert_eq!((errors[0].status, errors[0].request_id.as_deref()), (400, Some("req_400")));
    assert_eq!(errors[1].exception, Exception::Other("HTTP 404".into()));
    assert_eq!(errors[1].message, "Model not found.");
    assert_eq!(errors[1].request_id.as_deref(), Some("aws-404"));
    assert_eq!(errors[2].message, "User is not authorized.");
    assert_eq!(errors[3].request_id, None);
    assert_eq!(errors[3].status, 401);
    assert_eq!(server.received().len(), 4, "none retried");
}

#[tokio::test]
async fn overloaded_529_is_retried_and_x_should_retry_decides_first() {
    let overloaded =
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let server = Server::start(vec![respond(529, &[], overloaded), ok(MESSAGE)]).await;
    transport(&server).send(call("{}")).await.unwrap();
    assert_eq!(server.received().len(), 2, "529 retried");

    let server = Server::start(vec![
        respond(529, &[("x-should-retry", "false")], overloaded),
        respond(409, &[("x-should-retry", "true")], r#"{"message":"conflict"}"#),
        ok(MESSAGE),
    ])
    .await;
    let transport = transport(&server);
    let error = transport.send(call("{}")).await.unwrap_err();
    assert_eq!(error.api().unwrap().status, 529);
    assert_eq!(server.received().len(), 1, "x-should-retry: false obeyed");
    transport.send(call("{}")).await.unwrap();
    assert_eq!(server.received().len(), 3, "x-should-retry: true retries even a 409");
}

#[tokio::test]
async fn invalid_beta_flag_is_never_retried_in_either_shape() {
    let server = Server::start(vec![
        respond(
            400,
            &[("x-should-retry", "true")],
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"invalid beta flag"}}"#,
        ),
        respond(400, &[("x-should-retry", "true")], r#"{"message":"invalid beta flag"}"#),
        ok(MESSAGE),
    ])
    .await;
    let transport = transport(&server);
    for expected in 1..=2 {
        let error = transport.send(call("{}")).await.unwrap_err();
        assert_eq!(error.api().unwrap().message, "invalid beta flag");
        assert_eq!(server.received().len(), expected);
    }
}

#[tokio::test]
async fn retry_after_ms_and_retry_after_are_honoured() {
    let overloaded =
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    for (header, value, at_least) in [
        ("retry-after-ms", "300", Duration::from_millis(300)),
        ("retry-after", "1", Duration::from_secs(1)),
    ] {
        let server =
            Server::start(vec![respond(429, &[(header, value)], overloaded), ok(MESSAGE)]).await;
        let started = Instant::now();
        transport(&server).send(call("{}")).await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= at_least, "{header}: retried after {waited:?}");
        assert_eq!(server.received().len(), 2);
    }
}

#[tokio::test]
async fn the_http_200_unknown_operation_body_on_the_messages_path_is_an_error() {
    let server = Server::start(vec![ok(CORAL), ok(CORAL)]).await;
    let transport = transport(&server);
    for error in [
        transport.send(call("{}")).await.unwrap_err(),
        transport.stream(call("{}")).await.unwrap_err(),
    ] {
        let api = error.api().unwrap_or_else(|| panic!("{error}"));
        assert_eq!((api.exception.clone(), api.status), (Exception::UnknownOperation, 200));
        assert!(api.message.contains("/anthropic/v1/messages"), "{}", api.message);
    }
    assert_eq!(server.received().len(), 2, "not retried");
}
