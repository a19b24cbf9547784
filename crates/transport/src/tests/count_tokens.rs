//! CountTokens against the scripted loopback server: the route and body for each surface and
//! host, the count read from either answer, and errors kept as errors.

use std::time::Duration;

use base64::Engine as _;

use super::server::{Action, Server};
use crate::{Api, Auth, Call, HttpConfig, HttpTransport, MessagesHost, RetryConfig, Transport};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const ENCODED: &str = "us.anthropic.claude-sonnet-4-20250514-v1%3A0";

fn transport(server: &Server, host: MessagesHost) -> HttpTransport {
    let config = HttpConfig::new("us-east-1", Auth::api_key("test-key"))
        .with_endpoint_url(&server.url)
        .with_mantle_endpoint_url(&server.url)
        .with_messages_host(host)
        .with_retry(
            RetryConfig::default().with_delays(Duration::from_millis(1), Duration::from_millis(5)),
        );
    HttpTransport::new(config).unwrap()
}

fn answer(status: u16, body: &str) -> Action {
    Action::Respond {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn converse_and_invoke_bodies_are_counted_on_the_runtime_route() {
    let server = Server::start(vec![
        answer(200, r#"{"inputTokens": 42}"#),
        answer(200, r#"{"inputTokens": 17}"#),
    ])
    .await;
    let transport = transport(&server, MessagesHost::Runtime);
    let converse = br#"{"messages":[{"role":"user","content":[{"text":"1.50"}]}],"inferenceConfig":{"maxTokens":9},"system":[{"text":"S"}]}"#;
    assert_eq!(
        transport.count_tokens(Call::new(Api::Converse, MODEL, &converse[..])).await.unwrap(),
        42
    );
    let invoke = br#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":9,"messages":[]}"#;
    assert_eq!(
        transport.count_tokens(Call::new(Api::InvokeModel, MODEL, &invoke[..])).await.unwrap(),
        17
    );

    let received = server.received();
    for request in &received {
        assert_eq!(request.path, format!("/model/{ENCODED}/count-tokens"));
        assert_eq!(request.header("authorization"), Some("Bearer test-key"));
    }
    // The members count-tokens takes, as their bytes; inferenceConfig left out.
    assert_eq!(
        received[0].body,
        br#"{"input":{"converse":{"messages":[{"role":"user","content":[{"text":"1.50"}]}],"system":[{"text":"S"}]}}}"#
    );
    let sent = json(&received[1].body);
    let body = sent["input"]["invokeModel"]["body"].as_str().unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(body).unwrap(), invoke);
}

#[tokio::test]
async fn messages_api_bodies_are_counted_on_mantle_or_as_invoke_bodies_on_runtime() {
    let body = br#"{"max_tokens":9,"messages":[{"role":"user","content":"Hi"}]}"#;
    let call = || {
        Call::new(Api::Messages, "anthropic.claude-opus-4-7", &body[..])
            .with_header("anthropic-version", "2023-06-01")
    };
    let mantle = Server::start(vec![answer(200, r#"{"input_tokens": 7}"#)]).await;
    assert_eq!(transport(&mantle, MessagesHost::Mantle).count_tokens(call()).await.unwrap(), 7);
    let received = &mantle.received()[0];
    assert_eq!(received.path, "/anthropic/v1/messages/count_tokens");
    assert_eq!(received.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        received.body,
        br#"{"model":"anthropic.claude-opus-4-7","max_tokens":9,"messages":[{"role":"user","content":"Hi"}]}"#
    );

    let runtime = Server::start(vec![answer(200, r#"{"inputTokens": 8}"#)]).await;
    assert_eq!(transport(&runtime, MessagesHost::Runtime).count_tokens(call()).await.unwrap(), 8);
    let received = &runtime.received()[0];
    assert_eq!(received.path, "/model/anthropic.claude-opus-4-7/count-tokens");
    assert_eq!(received.header("anthropic-version"), None, "the version is in the body");
    let sent = json(&received.body);
    let invoke = sent["input"]["invokeModel"]["body"].as_str().unwrap();
    let invoke = base64::engine::general_purpose::STANDARD.decode(invoke).unwrap();
    assert_eq!(
        invoke,
        br#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":9,"messages":[{"role":"user","content":"Hi"}]}"#
    );
}

#[tokio::test]
async fn a_refusal_is_an_api_error_and_an_answer_without_a_count_is_unexpected() {
    let refusal = r#"{"message":"The provided model identifier is invalid."}"#;
    let server = Server::start(vec![answer(400, refusal), answer(200, r#"{"tokens": 3}"#)]).await;
    let transport = transport(&server, MessagesHost::Runtime);
    let call = || Call::new(Api::Converse, MODEL, r#"{"messages":[]}"#);
    let error = transport.count_tokens(call()).await.unwrap_err();
    assert_eq!(error.api().map(|api| api.status), Some(400), "{error}");
    let error = transport.count_tokens(call()).await.unwrap_err();
    assert!(error.to_string().contains("inputTokens"), "{error}");
    // Not JSON at all: refused before anything is sent.
    let error = transport.count_tokens(Call::new(Api::Converse, MODEL, "[1,")).await.unwrap_err();
    assert!(error.to_string().contains("cannot be counted"), "{error}");
    assert_eq!(server.received().len(), 2);
}
