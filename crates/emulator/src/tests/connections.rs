//! Slow clients are dropped or answered 408 after the configured read timeouts; a model id
//! the service's constraints refuse gets its ValidationException; `steps-0` answers at once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultRates, Script};

/// An emulator with short read timeouts.
async fn emulator(header: Duration, body: Duration) -> Emulator {
    let config = EmulatorConfig {
        header_read_timeout: header,
        body_read_timeout: body,
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.unwrap()
}

/// Everything the server sends until it closes the connection, or `None` when it keeps it
/// open past `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        let mut buffer = [0u8; 4096];
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buffer[..n]),
        }
    }
}

fn head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {DEFAULT_API_KEY}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

/// Sends one whole request and reads the whole answer (the request asks to close after it).
async fn post(emulator: &Emulator, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let request = head(path, body.len()).replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
    let mut stream = TcpStream::connect(emulator.addr()).await.unwrap();
    stream.write_all(format!("{request}{body}").as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await.unwrap();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

fn question() -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": "hello"}]}]})
}

#[tokio::test]
async fn a_client_that_stops_inside_its_headers_is_disconnected() {
    let emulator = emulator(Duration::from_millis(300), Duration::from_secs(30)).await;
    let mut stream = TcpStream::connect(emulator.addr()).await.unwrap();
    stream.write_all(b"POST /model/m/converse HTTP/1.1\r\nhost: 127.0.0.1\r\n").await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.is_some(), "the connection is still open after 10 s");
    assert!(started.elapsed() >= Duration::from_millis(250), "closed before the timeout");
    // The emulator still serves others.
    let (status, answer) = post(&emulator, "/model/m/converse", &question()).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_client_that_stops_inside_its_body_gets_408_and_is_disconnected() {
    let emulator = emulator(Duration::from_secs(30), Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(emulator.addr()).await.unwrap();
    let request = format!("{}{{\"messages\": [", head("/model/m/converse", 100));
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let answer = answer.expect("the connection is still open after 10 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("Timed out reading the request body."), "{answer}");
    assert!(emulator.received().is_empty(), "a body never read is not a request received");
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    let emulator = emulator(Duration::from_millis(300), Duration::from_secs(30)).await;
    let mut stream = TcpStream::connect(emulator.addr()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(answer.as_deref(), Some(""), "an idle connection stays open");
}

#[tokio::test]
async fn an_empty_or_too_long_model_id_is_refused_as_the_service_refuses_it() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    for (path, constraint) in [
        ("/model//converse".to_owned(), "greater than or equal to 1"),
        ("/model//invoke".to_owned(), "greater than or equal to 1"),
        (format!("/model/{}/converse", "m".repeat(2049)), "less than or equal to 2048"),
    ] {
        let (status, answer) = post(&emulator, &path, &question()).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains("x-amzn-errortype: ValidationException"), "{answer}");
        let text = format!(
            "1 validation error detected: Value at 'modelId' failed to satisfy constraint: Member must have length {constraint}"
        );
        assert!(answer.contains(&text), "{answer}");
    }
    let (status, answer) =
        post(&emulator, &format!("/model/{}/converse", "m".repeat(2048)), &question()).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn steps_0_answers_in_text_without_a_tool_call() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "hello"}]}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]},
    });
    let (status, answer) = post(&emulator, "/model/emulator.steps-0/converse", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"stopReason\":\"end_turn\""), "{answer}");
    assert!(!answer.contains("toolUse"), "{answer}");
    let (status, answer) = post(&emulator, "/model/emulator.steps-1/converse", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"stopReason\":\"tool_use\""), "{answer}");
}

#[tokio::test]
async fn fault_rates_outside_zero_to_one_do_not_start() {
    for throttle in [5.0, -1.0] {
        let script = Script {
            fault_rates: FaultRates { throttle, ..FaultRates::default() },
            ..Script::default()
        };
        let error = Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() })
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(
            error.to_string(),
            format!("fault_rates.throttle is {throttle}; a rate is a probability from 0 to 1")
        );
    }
}
