//! The HTTP transport against the emulator, a local Bedrock Runtime that verifies what it
//! receives (the path, SigV4 or the API key, the body) and injects Bedrock's faults on request:
//! retries, what is never retried, timeouts and streams that break.
//!
//! What needs byte-level control of the wire (frames split anywhere, a frame cut in half, a
//! stall between chunks, `x-amz-retry-after`, a connection held open) stays with the scripted
//! loopback server in `http.rs`.

use std::time::Duration;

use verbatim_emulator::{
    DEFAULT_ACCESS_KEY_ID, DEFAULT_API_KEY, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig,
    Fault, Pace, StreamException,
};

use super::collect;
use crate::{
    Api, Auth, Call, Exception, HttpConfig, HttpTransport, RetryConfig, Timeouts, Transport,
    TransportError,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0";
const TOO_MANY: &str = "Too many requests, please wait before trying again.";
const HELLO: &str = r#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#;

async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default()).await.unwrap()
}

fn config(emulator: &Emulator, auth: Auth) -> HttpConfig {
    HttpConfig::new("eu-west-3", auth).with_endpoint_url(emulator.url()).with_retry(
        RetryConfig::default().with_delays(Duration::from_millis(1), Duration::from_millis(5)),
    )
}

fn transport(emulator: &Emulator) -> HttpTransport {
    HttpTransport::new(config(emulator, Auth::api_key(DEFAULT_API_KEY))).unwrap()
}

fn hello() -> Call {
    Call::new(Api::Converse, MODEL, HELLO)
}

fn statuses(emulator: &Emulator) -> Vec<u16> {
    emulator.received().iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn an_arn_model_id_travels_as_one_path_segment_with_the_api_key_or_sigv4() {
    let emulator = emulator().await;
    let body = r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}"#;
    let reply = transport(&emulator).send(Call::new(Api::InvokeModel, ARN, body)).await.unwrap();
    assert!(reply.request_id.is_some());
    let signed = Auth::credentials(
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        Some("a-session-token".into()),
    );
    let signed = HttpTransport::new(config(&emulator, signed)).unwrap();
    signed.send(Call::new(Api::Converse, ARN, HELLO)).await.unwrap();
    let mut events = signed.stream(Call::new(Api::Converse, ARN, HELLO)).await.unwrap();
    assert_eq!(collect(&mut events).await.1.map(|e| e.to_string()), None);
    let received = emulator.received();
    assert_eq!(
        received[0].path,
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-7-sonnet-20250219-v1%3A0/invoke"
    );
    assert!(received.iter().all(|r| r.model_id == ARN && r.status == 200));
    let wrong = Auth::credentials(DEFAULT_ACCESS_KEY_ID, "wrong-secret", None);
    let error = HttpTransport::new(config(&emulator, wrong)).unwrap().send(hello()).await;
    let error = error.unwrap_err();
    assert_eq!(
        (error.api().unwrap().status, error.api().unwrap().exception.name()),
        (403, "InvalidSignatureException")
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_success() {
    let emulator = emulator().await;
    emulator.inject(Fault::Throttle);
    emulator.inject(Fault::Unavailable);
    let transport = transport(&emulator);
    let before = transport.retry_tokens();
    let reply = transport.send(hello()).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["stopReason"], "end_turn");
    assert_eq!(statuses(&emulator), [429, 503, 200]);
    // Two retries cost 5 each; the successful retry gives its cost back.
    assert_eq!(transport.retry_tokens(), before - 5);
}

#[tokio::test]
async fn attempts_run_out_with_the_last_error_reported() {
    let emulator = emulator().await;
    for fault in [Fault::Internal, Fault::Internal, Fault::Throttle] {
        emulator.inject(fault);
    }
    let error = transport(&emulator).send(hello()).await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!((api.exception.clone(), api.status), (Exception::Throttling, 429));
    assert_eq!(api.message, TOO_MANY);
    assert!(api.request_id.is_some());
    assert_eq!(statuses(&emulator), [500, 500, 429], "standard mode makes three attempts");
}

#[tokio::test]
async fn validation_errors_are_never_retried() {
    let emulator = emulator().await;
    let body = r#"{"messages":[{"role":"user","content":[{"text":"a"}]},{"role":"user","content":[{"text":"b"}]}]}"#;
    let error = transport(&emulator).send(Call::new(Api::Converse, MODEL, body)).await;
    let error = error.unwrap_err();
    assert_eq!(error.api().unwrap().exception, Exception::Validation);
    assert!(error.api().unwrap().message.starts_with("A conversation must alternate"));
    assert!(!error.is_retryable());
    assert_eq!(statuses(&emulator), [400]);
}

#[tokio::test]
async fn a_connection_cut_before_the_body_is_retried() {
    let emulator = emulator().await;
    emulator.inject(Fault::Reset { after: 0 });
    transport(&emulator).send(hello()).await.unwrap();
    assert_eq!(emulator.received().len(), 2);
}

#[tokio::test]
async fn a_slow_first_byte_times_out_on_every_attempt() {
    let emulator = emulator().await;
    for _ in 0..2 {
        emulator.inject(Fault::SlowFirstByte { millis: 2_000 });
    }
    let timeouts = Timeouts { response: Duration::from_millis(150), ..Timeouts::default() };
    let config =
        config(&emulator, Auth::api_key(DEFAULT_API_KEY)).with_timeouts(timeouts).with_retry(
            RetryConfig::default().with_max_attempts(2).with_delays(Duration::ZERO, Duration::ZERO),
        );
    let error = HttpTransport::new(config).unwrap().send(hello()).await.unwrap_err();
    assert!(matches!(error, TransportError::Timeout { waiting_for: "the response" }), "{error}");
    assert_eq!(emulator.received().len(), 2, "both attempts were given up on");
}

#[tokio::test]
async fn a_paced_model_spaces_its_events_and_holds_a_whole_answer_as_long() {
    let emulator = emulator().await;
    let transport = transport(&emulator);
    emulator.set_pace(Pace { first_event_millis: 300, event_millis: 40 });
    let start = std::time::Instant::now();
    let mut events = transport.stream(hello()).await.unwrap();
    let first = start.elapsed();
    let mut count = 0;
    // The first event comes out of `next` too.
    while let Some(event) = events.next().await {
        event.unwrap();
        count += 1;
    }
    let streamed = start.elapsed();
    assert!(first >= Duration::from_millis(300), "first event after {first:?}");
    let at_pace = Duration::from_millis(300 + 40 * (count - 1));
    assert!(count > 3 && streamed >= at_pace, "{count} events in {streamed:?}");
    let start = std::time::Instant::now();
    transport.send(hello()).await.unwrap();
    let whole = start.elapsed();
    assert!(whole >= at_pace, "a whole answer after {whole:?}, its stream took {at_pace:?}");

    emulator.set_pace(Pace::default());
    let start = std::time::Instant::now();
    let mut events = transport.stream(hello()).await.unwrap();
    while events.next().await.is_some() {}
    assert!(start.elapsed() < Duration::from_millis(300), "back at once: {:?}", start.elapsed());
}

#[tokio::test]
async fn an_exception_frame_before_the_first_event_is_retried_after_it_is_not() {
    let emulator = emulator().await;
    let transport = transport(&emulator);
    emulator.inject(Fault::StreamException { after: 0, exception: StreamException::Throttling });
    let mut events = transport.stream(hello()).await.unwrap();
    let (types, error) = collect(&mut events).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(types.first().map(String::as_str), Some("messageStart"));
    assert_eq!(types.last().map(String::as_str), Some("metadata"));
    assert_eq!(emulator.received().len(), 2, "retried: nothing had been handed out");

    emulator
        .inject(Fault::StreamException { after: 2, exception: StreamException::ModelStreamError });
    let mut events = transport.stream(hello()).await.unwrap();
    let (types, error) = collect(&mut events).await;
    assert_eq!(types, ["messageStart", "contentBlockDelta"]);
    let error = error.expect("the exception frame ends the stream with an error");
    let api = error.api().unwrap();
    assert_eq!((api.exception.clone(), api.status), (Exception::ModelStreamError, 200));
    assert!(api.message.starts_with("Model produced invalid sequence as part of ToolUse."));
    assert!(api.request_id.is_some());
    assert!(events.next().await.is_none());
    assert_eq!(emulator.received().len(), 3, "nothing retried once an event was handed out");
}

#[tokio::test]
async fn a_stream_cut_before_its_first_event_is_retried_after_it_is_an_error() {
    let emulator = emulator().await;
    let transport = transport(&emulator);
    emulator.inject(Fault::Reset { after: 0 });
    let mut events = transport.stream(hello()).await.unwrap();
    let (types, error) = collect(&mut events).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(types.last().map(String::as_str), Some("metadata"));
    assert_eq!(emulator.received().len(), 2);

    emulator.inject(Fault::Reset { after: 3 });
    let mut events = transport.stream(hello()).await.unwrap();
    let (types, error) = collect(&mut events).await;
    assert_eq!(types.len(), 3);
    let error = error.expect("a cut stream is an error, never a silent end");
    assert!(matches!(error, TransportError::Connection { .. }), "{error}");
    assert_eq!(emulator.received().len(), 3);
}

#[tokio::test]
async fn a_stream_request_that_gets_an_error_status_is_typed_like_a_send() {
    let emulator = emulator().await;
    let transport = HttpTransport::new(
        config(&emulator, Auth::api_key(DEFAULT_API_KEY)).with_retry(RetryConfig::disabled()),
    )
    .unwrap();
    emulator.inject(Fault::TooManyTokens);
    let error = transport.stream(hello()).await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!((api.exception.clone(), api.status), (Exception::Throttling, 429));
    assert_eq!(api.message, "Too many tokens, please wait before trying again.");
}
