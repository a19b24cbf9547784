//! The Messages API route (`/anthropic/v1/messages`) over a real socket: the whole answer and
//! its server-sent events, the version and beta headers, the API key headers, a thinking tool
//! loop replayed and tampered with, and the coral 200 for the paths beside it.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{DEFAULT_API_KEY, Emulator, EmulatorConfig, Fault, StreamException};

const PATH: &str = "/anthropic/v1/messages";
const OPUS: &str = "anthropic.claude-opus-4-7";
const SONNET: &str = "us.anthropic.claude-sonnet-5";

/// An answer: status, headers (names lower-cased) and the body, de-chunked.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `(event, data)` pairs of a server-sent event body.
    fn events(&self) -> Vec<(String, Value)> {
        self.body
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|event| {
                let (mut name, mut data) = (String::new(), Value::Null);
                for line in event.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
                    } else {
                        panic!("not an SSE line: {line:?}");
                    }
                }
                assert_eq!(data["type"], name.as_str(), "the event name is the data's type");
                (name, data)
            })
            .collect()
    }

    /// The `error` of an Anthropic error body, after checking its shape.
    fn error(&self) -> (String, String) {
        let body = self.json();
        assert_eq!(body["type"], "error", "{body}");
        let error = &body["error"];
        (error["type"].as_str().unwrap().to_owned(), error["message"].as_str().unwrap().to_owned())
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Sends one request with `headers` and reads the whole answer.
pub(super) async fn send(
    emulator: &Emulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = TcpStream::connect(emulator.addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the answer within 10 s")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.get(9..12)).and_then(|s| s.parse().ok()).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Answer { status, headers, body }
}

pub(super) const BEARER: (&str, &str) = ("authorization", "Bearer verbatim-emulator-api-key");
pub(super) const NEWEST: (&str, &str) = ("anthropic-version", "2026-10-21");

/// Posts `body` with the API key as a bearer token, version 2026-10-21 and `extra` headers.
async fn post(emulator: &Emulator, body: &Value, extra: &[(&str, &str)]) -> Answer {
    let mut headers = vec![BEARER, NEWEST];
    headers.extend_from_slice(extra);
    send(emulator, "POST", PATH, &headers, &body.to_string()).await
}

fn question(model: &str) -> Value {
    json!({"model": model, "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hello."}]})
}

fn weather_tool() -> Value {
    json!([{"name": "get_weather", "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"]}}])
}

/// A first turn that thinks and calls the tool.
fn tool_turn(model: &str) -> Value {
    json!({"model": model, "max_tokens": 2048, "thinking": {"type": "adaptive"},
        "tools": weather_tool(),
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}]})
}

async fn start() -> Emulator {
    Emulator::start(EmulatorConfig::default()).await.unwrap()
}

#[tokio::test]
async fn a_whole_answer_is_a_message_and_the_request_is_recorded_as_messages() {
    let emulator = start().await;
    let answer = post(&emulator, &question(OPUS), &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let message = answer.json();
    assert_eq!((&message["type"], &message["role"]), (&json!("message"), &json!("assistant")));
    assert_eq!(message["model"], OPUS, "the model as the body named it");
    assert_eq!(message["content"][0]["type"], "text");
    assert!(message["content"][0]["text"].as_str().unwrap().contains("Hello"), "{message}");
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let id = answer.header("request-id").expect("a request-id header");
    assert_eq!(answer.header("x-amzn-requestid"), Some(id));
    let received = emulator.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].operation.as_str(), received[0].model_id.as_str(), received[0].path.as_str()),
        ("messages", OPUS, PATH)
    );
    assert_eq!(received[0].status, 200);
}

#[tokio::test]
async fn a_paced_model_holds_the_stream_and_the_whole_answer_as_long() {
    let emulator = start().await;
    emulator.set_pace(crate::Pace { first_event_millis: 200, event_millis: 30 });
    let mut body = question(OPUS);
    body["stream"] = json!(true);
    let started = std::time::Instant::now();
    let answer = post(&emulator, &body, &[]).await;
    let streamed = started.elapsed();
    let events = answer.events().len();
    let at_pace = Duration::from_millis(200 + 30 * (events as u64 - 1));
    assert!(events > 3 && streamed >= at_pace, "{events} events in {streamed:?}");
    body["stream"] = json!(false);
    let started = std::time::Instant::now();
    assert_eq!(post(&emulator, &body, &[]).await.status, 200);
    let whole = started.elapsed();
    assert!(whole >= at_pace, "a whole answer after {whole:?}, its stream took {at_pace:?}");
}

#[tokio::test]
async fn a_stream_is_first_party_sse_and_folds_to_the_whole_answer() {
    let emulator = start().await;
    let mut body = tool_turn(SONNET);
    let whole = post(&emulator, &body, &[]).await.json();
    body["stream"] = json!(true);
    let answer = post(&emulator, &body, &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("text/event-stream; charset=utf-8"));
    let events = answer.events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..3],
        ["message_start", "ping", "content_block_start"],
        "message_start, then a ping"
    );
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["type"].as_str().unwrap())
        .collect();
    for kind in ["thinking_delta", "signature_delta", "input_json_delta"] {
        assert!(deltas.contains(&kind), "no {kind} in {deltas:?}");
    }
    assert!(events.last().unwrap().1.get("amazon-bedrock-invocationMetrics").is_none());
    // Folded by hand: the streamed blocks are the whole answer's.
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_text = String::new();
    for (name, data) in &events {
        match name.as_str() {
            "content_block_start" => blocks.push(data["content_block"].clone()),
            "content_block_delta" => {
                let block = blocks.last_mut().unwrap();
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap() {
                    "thinking_delta" => {
                        let text = block["thinking"].as_str().unwrap().to_owned();
                        block["thinking"] = json!(text + delta["thinking"].as_str().unwrap());
                    }
                    "signature_delta" => block["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        json_text.push_str(delta["partial_json"].as_str().unwrap())
                    }
                    "text_delta" => {
                        let text = block["text"].as_str().unwrap().to_owned();
                        block["text"] = json!(text + delta["text"].as_str().unwrap());
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" if !json_text.is_empty() => {
                blocks.last_mut().unwrap()["input"] =
                    serde_json::from_str(&std::mem::take(&mut json_text)).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(Value::Array(blocks), whole["content"]);
    let stop = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn a_thinking_tool_loop_replays_unchanged_and_a_tampered_signature_is_refused() {
    let emulator = start().await;
    let first = post(&emulator, &tool_turn(OPUS), &[]).await.json();
    assert_eq!(first["stop_reason"], "tool_use", "{first}");
    let content = first["content"].clone();
    let call = content.as_array().unwrap().iter().find(|b| b["type"] == "tool_use").unwrap();
    let mut next = tool_turn(OPUS);
    next["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": content}),
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
            "content": "Sunny, 21 C"}]}),
    ]);
    let answer = post(&emulator, &next, &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["stop_reason"], "end_turn");

    let signature = next["messages"][1]["content"][0]["signature"].as_str().unwrap().to_owned();
    next["messages"][1]["content"][0]["signature"] = json!(format!("A{}", &signature[1..]));
    let answer = post(&emulator, &next, &[]).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.error(),
        (
            "invalid_request_error".to_owned(),
            "messages.1.content.0: Invalid `signature` in `thinking` block".to_owned()
        )
    );
    assert_eq!(emulator.received().last().map(|r| r.status), Some(400));

    // Asked to drop a block that no longer binds (the control and its beta), the service
    // answers without it instead of refusing.
    next["thinking"]["block_binding"] = json!({"prefix_mismatch_behavior": "drop_block"});
    let control = ("anthropic-beta", "thinking-binding-controls-2026-08-01");
    let answer = post(&emulator, &next, &[control]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // The control without its beta is refused with the documentation's sentence.
    let answer = post(&emulator, &next, &[]).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.error().1.contains("`thinking-binding-controls-2026-08-01`"), "{answer:?}");
}

#[tokio::test]
async fn the_version_header_is_judged_per_model_and_the_beta_header_reaches_the_checks() {
    let emulator = start().await;
    let legacy = question("anthropic.claude-sonnet-4-6-v1");
    let answer = post(&emulator, &legacy, &[]).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error().1, "Invalid API version: 2026-10-21");
    let headers = [BEARER, ("anthropic-version", "2023-06-01")];
    let answer = send(&emulator, "POST", PATH, &headers, &legacy.to_string()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // Without the header the request is read as 2023-06-01, which every model takes (what
    // these hosts answer without one is not recorded; the validator warns).
    let answer = send(&emulator, "POST", PATH, &[BEARER], &question(OPUS).to_string()).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // A budget at max_tokens is refused unless interleaved thinking is on, by header.
    let mut budget = question(SONNET);
    budget["thinking"] = json!({"type": "enabled", "budget_tokens": 2000});
    budget["max_tokens"] = json!(2000);
    let answer = post(&emulator, &budget, &[]).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.error().1.contains("`max_tokens` must be greater"), "{answer:?}");
    let beta = (
        "anthropic-beta",
        "fine-grained-tool-streaming-2025-05-14, interleaved-thinking-2025-05-14",
    );
    assert_eq!(post(&emulator, &budget, &[beta]).await.status, 200);
    // The SDKs' beta resources add `?beta=true` (E4); the route is the same.
    let headers = [BEARER, NEWEST, beta];
    let beta_path = format!("{PATH}?beta=true");
    let answer = send(&emulator, "POST", &beta_path, &headers, &budget.to_string()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(emulator.received().last().map(|r| r.path.as_str()), Some(PATH));
}

#[tokio::test]
async fn the_api_key_goes_in_either_header_but_not_both() {
    let emulator = start().await;
    let body = question(OPUS).to_string();
    let x_api_key = ("x-api-key", DEFAULT_API_KEY);
    let answer = send(&emulator, "POST", PATH, &[x_api_key, NEWEST], &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = send(&emulator, "POST", PATH, &[x_api_key, BEARER, NEWEST], &body).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.error().1.starts_with("Cannot provide both"), "{answer:?}");
    let answer = send(&emulator, "POST", PATH, &[("x-api-key", "wrong"), NEWEST], &body).await;
    assert_eq!((answer.status, answer.error().0.as_str()), (403, "permission_error"));
    let answer = send(&emulator, "POST", PATH, &[NEWEST], &body).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.error().1, "Authorization header is missing");
    // A signature scoped to a service this route is not.
    let s3 = (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIAVERBATIMEMULATOR/20261206/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
    );
    let answer = send(&emulator, "POST", PATH, &[s3, NEWEST], &body).await;
    assert_eq!(answer.status, 403);
    assert!(answer.error().1.contains("correct service: 'bedrock-mantle'"), "{answer:?}");
    // Refused credentials (both headers included) are not requests received.
    assert_eq!(emulator.received().len(), 1);
}

#[tokio::test]
async fn other_paths_under_anthropic_get_the_coral_200() {
    let emulator = start().await;
    for (method, path) in [
        ("GET", "/anthropic/v1/models"),
        ("GET", "/anthropic/v1/messages/count_tokens"),
        ("GET", PATH),
    ] {
        let answer = send(&emulator, method, path, &[BEARER, NEWEST], "{}").await;
        assert_eq!(answer.status, 200, "{method} {path}");
        assert_eq!(
            answer.json(),
            json!({"Output": {"__type": "com.amazon.coral.service#UnknownOperationException"}, "Version": "1.0"})
        );
    }
    assert!(emulator.received().is_empty());
}

#[tokio::test]
async fn faults_answer_as_anthropic_errors_and_mid_stream_as_an_error_event() {
    let emulator = start().await;
    emulator.inject(Fault::Throttle);
    let answer = post(&emulator, &question(OPUS), &[]).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.error().0, "rate_limit_error");
    emulator.inject(Fault::StreamException { after: 2, exception: StreamException::Internal });
    let mut body = question(OPUS);
    body["stream"] = json!(true);
    let answer = post(&emulator, &body, &[]).await;
    assert_eq!(answer.status, 200);
    let events = answer.events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["message_start", "ping", "error"]);
    assert_eq!(events[2].1["error"]["type"], "api_error");
    let faults: Vec<_> = emulator.received().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults.len(), 2);
    assert!(faults.iter().all(Option::is_some));
}
