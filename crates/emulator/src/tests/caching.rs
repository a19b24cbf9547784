//! The prompt cache and the token counts over HTTP: usage that adds up to the count, reads
//! while an entry lives, and the three counting routes agreeing.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::messages::{BEARER, send};
use crate::{Emulator, EmulatorConfig, ManualClock};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1%3A0";

async fn start(clock: Arc<ManualClock>) -> Emulator {
    Emulator::start(EmulatorConfig { clock, ..EmulatorConfig::default() }).await.unwrap()
}

/// A Converse conversation: a system prompt of about 2,500 tokens cached, then `turns`
/// exchanges, the last user message cached too.
fn converse(turns: usize) -> Value {
    let mut messages = vec![];
    for n in 0..turns {
        messages.push(json!({"role": "user", "content": [{"text": format!("question {n}")}]}));
        messages.push(json!({"role": "assistant", "content": [{"text": format!("answer {n}")}]}));
    }
    messages.push(json!({"role": "user", "content": [{"text": format!("question {turns}")}, {"cachePoint": {"type": "default"}}]}));
    json!({
        "system": [{"text": "Rules of the house. ".repeat(500)}, {"cachePoint": {"type": "default"}}],
        "messages": messages,
    })
}

async fn post_json(emulator: &Emulator, path: &str, body: &Value) -> Value {
    let answer = send(emulator, "POST", path, &[BEARER], &body.to_string()).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.json());
    answer.json()
}

/// `(input, read, write, total)` of a Converse answer.
fn usage(answer: &Value) -> (u64, u64, u64, u64) {
    let usage = &answer["usage"];
    let n = |key: &str| usage[key].as_u64().unwrap_or_else(|| panic!("{key} in {usage}"));
    (n("inputTokens"), n("cacheReadInputTokens"), n("cacheWriteInputTokens"), n("totalTokens"))
}

#[tokio::test]
async fn converse_usage_reads_what_the_last_request_wrote_and_adds_up_to_the_count() {
    let clock = Arc::new(ManualClock::new());
    let emulator = start(clock.clone()).await;
    let converse_path = format!("/model/{MODEL}/converse");
    let count_path = format!("/model/{MODEL}/count-tokens");
    let count = |n: Value| n["inputTokens"].as_u64().unwrap();

    let first = post_json(&emulator, &converse_path, &converse(0)).await;
    let counted = count(
        post_json(&emulator, &count_path, &json!({"input": {"converse": converse(0)}})).await,
    );
    let (input, read, write, total) = usage(&first);
    assert_eq!((read, input + write), (0, counted));
    assert!(write > 2000, "the system prompt and the message are written: {write}");
    let output = first["usage"]["outputTokens"].as_u64().unwrap();
    assert_eq!(total, input + read + write + output);

    // The next turn reads the last request's prefix and writes only what is new.
    clock.advance(Duration::from_secs(60));
    let second = post_json(&emulator, &converse_path, &converse(1)).await;
    let counted = count(
        post_json(&emulator, &count_path, &json!({"input": {"converse": converse(1)}})).await,
    );
    let (input, read, write, _) = usage(&second);
    assert_eq!(read, input_write(&first));
    assert_eq!(input + read + write, counted);
    assert!(write > 0 && write < 50, "{write}");

    // Past five minutes from the last use nothing is read.
    clock.advance(Duration::from_secs(301));
    let third = post_json(&emulator, &converse_path, &converse(1)).await;
    assert_eq!(usage(&third).1, 0);

    // A request without cache points reports no cache counts.
    let mut plain = converse(0);
    plain["system"] = json!([{"text": "Be brief."}]);
    plain["messages"][0]["content"] = json!([{"text": "hi"}]);
    let answer = post_json(&emulator, &converse_path, &plain).await;
    assert!(answer["usage"].get("cacheReadInputTokens").is_none(), "{answer}");
}

fn input_write(answer: &Value) -> u64 {
    let (input, _, write, _) = usage(answer);
    input + write
}

#[tokio::test]
async fn the_three_counting_routes_count_one_conversation_alike() {
    let emulator = start(Arc::new(ManualClock::new())).await;
    let converse = json!({
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "What is the weather in Oslo today?"}]}],
    });
    let anthropic = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "What is the weather in Oslo today?"}]});
    let count_path = format!("/model/{MODEL}/count-tokens");
    let by_converse =
        post_json(&emulator, &count_path, &json!({"input": {"converse": converse}})).await;
    let encoded = STANDARD.encode(anthropic.to_string());
    let by_invoke =
        post_json(&emulator, &count_path, &json!({"input": {"invokeModel": {"body": encoded}}}))
            .await;
    let mut messages = anthropic.clone();
    messages["model"] = json!("anthropic.claude-sonnet-4-20250514-v1:0");
    messages.as_object_mut().unwrap().remove("anthropic_version");
    messages.as_object_mut().unwrap().remove("max_tokens");
    let by_messages = post_json(&emulator, "/anthropic/v1/messages/count_tokens", &messages).await;
    let n = by_converse["inputTokens"].as_u64().unwrap();
    assert!(n > 10, "{by_converse}");
    assert_eq!(by_invoke, json!({"inputTokens": n}));
    assert_eq!(by_messages, json!({"input_tokens": n}));
    let operations: Vec<String> = emulator.received().into_iter().map(|r| r.operation).collect();
    assert_eq!(operations, ["count-tokens"; 3]);

    // What the model would refuse, counting refuses too; a body without `input` is refused.
    let bad = json!({"input": {"converse": {"messages": [{"role": "user", "content": [{"text": " "}]}]}}});
    let answer = send(&emulator, "POST", &count_path, &[BEARER], &bad.to_string()).await;
    assert_eq!(answer.status, 400);
    let answer = send(&emulator, "POST", &count_path, &[BEARER], "{}").await;
    assert_eq!(answer.status, 400);
    assert!(answer.json()["message"].as_str().unwrap().contains("'input'"));
}
