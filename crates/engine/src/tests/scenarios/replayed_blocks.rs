//! Replies replayed exactly as received: signature-only thinking, redacted bytes, thinking
//! interleaved with calls and text (scenarios 12 to 14), partly from scripted replies in
//! `test_data/`.

use std::sync::Arc;

use serde_json::Value;
use verbatim_emulator::Behaviour;
use verbatim_model::{Api, ContentBlock, HistoryMessage, ThinkingBlock};
use verbatim_transport::ScriptedTransport;

use super::*;

fn test_data(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// 12
#[tokio::test]
async fn signature_only_blocks() {
    let file = "signature_only_tool_use.json";
    // Replayed exactly as received, nothing repaired: checked by the helper.
    let stored = replayed_as_received("us.anthropic.claude-sonnet-4-6", file).await;
    let received: Value = serde_json::from_slice(&test_data(file)).unwrap();
    let block = &received["output"]["message"]["content"][0];
    let ContentBlock::Thinking(ThinkingBlock { text, signature, .. }) = &stored[0] else {
        panic!("kept: {stored:?}")
    };
    assert_eq!(text, "", "never dropped, never filled in");
    assert_eq!(
        signature.as_deref(),
        block["reasoningContent"]["reasoningText"]["signature"].as_str()
    );
}

// 13
#[tokio::test]
async fn redacted_bytes() {
    for api in [Api::Converse, Api::InvokeModel] {
        let rig = Rig::new(Behaviour::Redacted).await;
        let engine = rig
            .builder()
            .api(api)
            .thinking(thinking())
            .tool(Probe::new("get_weather"))
            .build()
            .unwrap();
        let session = engine.create().await.unwrap();
        assert!(session.send("Weather?").await.unwrap().complete);
        let history = session.history().await.unwrap();
        let ContentBlock::RedactedThinking(stored) = &history[1].message.content[0] else {
            panic!("{:?}", history[1].message.content)
        };
        // The second request carries the redacted block exactly as the first reply held it,
        // and the emulator verified it.
        let bodies = rig.bodies();
        let replayed = bodies[1]["messages"][1]["content"][0].to_string();
        let data = serde_json::to_value(stored).unwrap();
        let bytes = data.as_object().unwrap().values().find_map(Value::as_str).unwrap().to_owned();
        assert!(replayed.contains(&bytes), "{}: {replayed}", api_name(api));
        assert_eq!(rig.statuses(), [200, 200], "{}", api_name(api));
    }
}

// 13, the alternating shape: redacted, signed thinking, redacted, then the call; the redacted
// bytes are not UTF-8.
#[tokio::test]
async fn redacted_bytes_alternating_with_thinking() {
    let stored = replayed_as_received(MODEL, "redacted_alternating.json").await;
    let kinds: Vec<&str> = stored.iter().map(ContentBlock::kind_name).collect();
    let (redacted, thinking) =
        ("reasoningContent.redactedContent", "reasoningContent.reasoningText");
    assert_eq!(kinds, [redacted, thinking, redacted, "toolUse"]);
    let ContentBlock::RedactedThinking(first) = &stored[0] else { panic!("{stored:?}") };
    let ContentBlock::RedactedThinking(second) = &stored[2] else { panic!("{stored:?}") };
    assert_ne!(first, second, "each block keeps its own bytes");
}

// 14
#[tokio::test]
async fn interleaved_order() {
    let rig = Rig::new(Behaviour::Interleaved).await;
    let engine =
        rig.builder().thinking(thinking()).tool(Probe::new("get_weather")).build().unwrap();
    let session = engine.create().await.unwrap();
    assert!(session.send("Weather?").await.unwrap().complete);
    let kinds = |m: &HistoryMessage| -> Vec<&'static str> {
        m.message.content.iter().map(ContentBlock::kind_name).collect()
    };
    let history = session.history().await.unwrap();
    let (thinking, call) = ("reasoningContent.reasoningText", "toolUse");
    assert_eq!(kinds(&history[1]), [thinking, call]);
    assert_eq!(kinds(&history[3]), [thinking, "text"]);
    // Replayed in the same order, each signature with its own block.
    session.send("And tomorrow?").await.unwrap();
    let last = rig.bodies().last().unwrap().clone();
    for (i, stored) in history.iter().enumerate() {
        let sent = &last["messages"][i];
        let message = verbatim_protocol::converse::decode_message_value(sent.clone()).unwrap();
        assert_eq!(message, stored.message, "messages[{i}]");
    }
    assert!(rig.statuses().iter().all(|s| *s == 200));
}

// 14, inside one message: thinking, a call, thinking, text, a call.
#[tokio::test]
async fn interleaved_order_in_one_message() {
    let stored = replayed_as_received(MODEL, "interleaved_in_one_message.json").await;
    let kinds: Vec<&str> = stored.iter().map(ContentBlock::kind_name).collect();
    let (thinking, call) = ("reasoningContent.reasoningText", "toolUse");
    assert_eq!(kinds, [thinking, call, thinking, "text", call]);
    let signatures: Vec<&str> = stored
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Thinking(t) => t.signature.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(signatures.len(), 2);
    assert_ne!(signatures[0], signatures[1], "each signature stays with its own block");
}

/// Runs one tool call round on `model` with a scripted reply read from `file` (then the final
/// answer): the reply must be stored block for block and replayed in the next request exactly
/// as received, with one result per call, in the calls' order, and nothing repaired. Returns
/// the stored reply's blocks.
async fn replayed_as_received(model: &str, file: &str) -> Vec<ContentBlock> {
    let rig = Rig::new(Behaviour::Text).await;
    let transport = Arc::new(ScriptedTransport::new());
    transport.push_reply(test_data(file));
    transport.push_reply(test_data("final_answer.json"));
    let probe = Probe::new("get_weather");
    let engine = Engine::builder()
        .store(rig.store())
        .transport(transport.clone())
        .model(model)
        .thinking(thinking())
        .tool(probe.clone())
        .configure(|d| d.streaming = false)
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    assert!(session.send("Weather?").await.unwrap().complete, "{file}");
    let received: Value = serde_json::from_slice(&test_data(file)).unwrap();
    let content = &received["output"]["message"]["content"];
    let calls: Vec<&str> = content
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["toolUse"]["toolUseId"].as_str())
        .collect();
    assert_eq!(probe.calls(), calls.len(), "{file}: every call run once");
    let sent: Value = serde_json::from_slice(&transport.calls()[1].body).unwrap();
    assert_eq!(&sent["messages"][1]["content"], content, "{file}: replayed exactly as received");
    let history = session.history().await.unwrap();
    let answered: Vec<String> = results(&history[2].message).into_iter().map(|r| r.0).collect();
    assert_eq!(answered, calls, "{file}: one result per call, in order");
    assert_eq!(repairs(&session.load().await.unwrap()), 0, "{file}: nothing repaired");
    history[1].message.content.clone()
}
