//! The failure scenarios of peers.md §4 that concern the engine, one test each, named after
//! the scenario (its number in a comment).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use verbatim_emulator::{Behaviour, Fault};
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, Message, Provenance, Role, SessionId, ThinkingBlock,
    ToolResult, ToolResultBlock, ToolResultContent, ToolUse, ToolUseId,
};
use verbatim_store::{Append, Entry, SessionStore as _};
use verbatim_transport::{Scripted, ScriptedTransport, StreamEvent, TransportError};

use super::*;
use crate::{EngineError, Event, INTERRUPTED, Settled};

fn test_data(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Appends `messages` to a session as another writer (an import, an older version) would.
async fn write(rig: &Rig, id: SessionId, messages: Vec<HistoryMessage>) {
    let store = rig.store();
    for message in messages {
        let version = store.info(id).await.unwrap().version;
        store.append(id, Append::new(version, vec![Entry::Message(message)])).await.unwrap();
    }
}

/// A session with a `get_weather` tool (the probe returned) whose history is `messages`, as
/// another writer left it.
async fn left_as(rig: &Rig, messages: Vec<HistoryMessage>) -> (Session, Arc<Probe>) {
    let weather = Probe::new("get_weather");
    let engine = rig.builder().tool(weather.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    write(rig, session.id(), messages).await;
    (session, weather)
}

fn user(blocks: Vec<ContentBlock>) -> HistoryMessage {
    Message::new(Role::User, blocks).into()
}

fn assistant(blocks: Vec<ContentBlock>) -> HistoryMessage {
    HistoryMessage {
        message: Message::new(Role::Assistant, blocks),
        provenance: Some(Provenance::new(MODEL, Api::Converse)),
    }
}

fn tool_use(id: &str) -> ContentBlock {
    ContentBlock::ToolUse(ToolUse {
        id: ToolUseId::new(id),
        name: "get_weather".into(),
        input: json!({"city": "Lyon"}),
        kind: None,
        unmapped: Default::default(),
    })
}

fn tool_result(id: &str, text: &str) -> ContentBlock {
    ContentBlock::ToolResult(ToolResult {
        tool_use_id: ToolUseId::new(id),
        content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text { text: text.into() }])),
        status: None,
        unmapped: Default::default(),
    })
}

/// The tool results of a message: (id, is error, text).
fn results(message: &Message) -> Vec<(String, bool, String)> {
    message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolResult(result) => Some((
                result.tool_use_id.as_str().to_owned(),
                result.status == Some(verbatim_model::ToolResultStatus::Error),
                serde_json::to_string(&result.content).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

fn repairs(session: &verbatim_store::Session) -> usize {
    session.records.iter().filter(|r| matches!(r.entry, Entry::Repair { .. })).count()
}

/// Whether the Converse body turns thinking on.
fn thinking_on(body: &Value) -> bool {
    !body["additionalModelRequestFields"]["thinking"].is_null()
}

fn reasoning_blocks(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().unwrap())
        .filter(|b| b.get("reasoningContent").is_some())
        .count()
}

// 1
#[tokio::test]
async fn crash_during_a_tool() {
    let mut rig = Rig::new(Behaviour::Claude).await;
    let held = Probe::held("get_weather", false);
    let engine = rig.builder().thinking(thinking()).tool(held.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    crash_while_running(&session, "Weather in Lyon?", &held).await;
    let id = session.id();
    let before = session.history().await.unwrap();
    assert_eq!(before.len(), 2, "the question and the call are stored, no result");
    drop((session, engine));

    // A new process: the call started and never finished, and the tool is not idempotent.
    rig.restart();
    let fresh = Probe::new("get_weather");
    let engine = rig.builder().thinking(thinking()).tool(fresh.clone()).build().unwrap();
    let session = engine.open(id).await.unwrap();
    let mut events = Vec::new();
    let reply = session.send_with("Are you there?", |e| events.push(e)).await.unwrap();
    assert!(reply.complete);
    assert_eq!(fresh.calls(), 0, "not run again");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ToolResult { is_error: true, settled: Settled::Interrupted, .. }
    )));
    let history = session.history().await.unwrap();
    assert_eq!(&history[..2], &before[..], "the signed thinking is byte-identical");
    let answer = &history[2].message;
    let found = results(answer);
    assert_eq!(found.len(), 1, "exactly one result");
    assert!(found[0].1 && found[0].2.contains(INTERRUPTED), "{found:?}");
    assert!(matches!(answer.content[0], ContentBlock::ToolResult(_)), "the result comes first");
    assert!(matches!(&answer.content[1], ContentBlock::Text(t) if t.text == "Are you there?"));
    let states: Vec<&str> = lifecycle(&session).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["requested", "started", "unknown"], "the interruption is recorded");
    assert_eq!(rig.statuses(), [200, 200], "the replayed signature verified");

    // An idempotent tool is run again on resume instead.
    let held = Probe::held("get_weather", true);
    let engine = rig.builder().thinking(thinking()).tool(held.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    crash_while_running(&session, "Weather in Lyon?", &held).await;
    let rerun = Probe::idempotent("get_weather");
    let engine = rig.builder().thinking(thinking()).tool(rerun.clone()).build().unwrap();
    let reply = engine.open(session.id()).await.unwrap().resume().await.unwrap().unwrap();
    assert!(reply.complete);
    assert_eq!(rerun.calls(), 1, "an idempotent call is run again");
    let states: Vec<&str> = lifecycle(&session).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["requested", "started", "started", "completed"]);
}

// 2
#[tokio::test]
async fn crash_between_parallel_results() {
    let mut rig = Rig::new(Behaviour::Parallel).await;
    let fast = Probe::new("get_weather");
    let held = Probe::held("get_time", false);
    let engine =
        rig.builder().thinking(thinking()).tool(fast.clone()).tool(held.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    let task = tokio::spawn({
        let session = session.clone();
        async move { session.send("Weather and time in Lyon?").await }
    });
    // Wait until the fast call's end is stored while the other still runs, then stop.
    loop {
        let states = lifecycle(&session).await;
        if states.contains(&("get_weather".to_owned(), "completed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    assert_eq!((fast.calls(), held.calls()), (1, 1));
    let id = session.id();
    drop((session, engine));

    rig.restart();
    let (fast, slow) = (Probe::new("get_weather"), Probe::new("get_time"));
    let engine =
        rig.builder().thinking(thinking()).tool(fast.clone()).tool(slow.clone()).build().unwrap();
    let session = engine.open(id).await.unwrap();
    let reply = session.resume().await.unwrap().unwrap();
    assert!(reply.complete);
    assert_eq!((fast.calls(), slow.calls()), (0, 0), "neither is run again");
    let history = session.history().await.unwrap();
    let asked: Vec<String> = history[1]
        .message
        .content
        .iter()
        .filter_map(|b| {
            if let ContentBlock::ToolUse(u) = b { Some(u.id.as_str().to_owned()) } else { None }
        })
        .collect();
    let answered = results(&history[2].message);
    assert_eq!(answered.len(), asked.len(), "as many results as calls, in one message");
    let ids: Vec<&String> = answered.iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids, asked.iter().collect::<Vec<_>>(), "in the order of the calls");
    assert!(!answered[0].1 && answered[0].2.contains("sunny"), "the completed result kept");
    assert!(answered[1].1 && answered[1].2.contains(INTERRUPTED));
    assert!(rig.statuses().iter().all(|s| *s == 200));
}

// 2, as another writer left it: `A(use:t1, use:t2) · U(res:t1)` with no record of the calls.
#[tokio::test]
async fn crash_between_parallel_results_as_stored() {
    let rig = Rig::new(Behaviour::Claude).await;
    let (session, weather) = left_as(
        &rig,
        vec![
            user(vec![ContentBlock::text("Weather in Lyon and Paris?")]),
            assistant(vec![tool_use("tooluse_t1"), tool_use("tooluse_t2")]),
            user(vec![tool_result("tooluse_t1", "sunny")]),
        ],
    )
    .await;
    let reply = session.resume().await.unwrap().unwrap();
    assert!(reply.complete);
    let first = rig.bodies()[0].clone();
    let sent = verbatim_protocol::converse::decode_message_value(first["messages"][2].clone());
    let answered = results(&sent.unwrap());
    let ids: Vec<&str> = answered.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids, ["tooluse_t1", "tooluse_t2"], "one result per call, in the calls' order");
    assert!(!answered[0].1 && answered[0].2.contains("sunny"), "the stored result kept");
    assert!(answered[1].1, "the missing one answered as an error: {answered:?}");
    assert_eq!(weather.calls(), 0, "nothing run again");
    assert_eq!(repairs(&session.load().await.unwrap()), 1, "the repair is recorded");
    assert_eq!(results(&session.history().await.unwrap()[2].message).len(), 1, "not rewritten");
    assert!(rig.statuses().iter().all(|s| *s == 200));
}

// 3
#[tokio::test]
async fn stale_results() {
    let rig = Rig::new(Behaviour::Claude).await;
    // A retried turn left a result for another call: A(use:A) · U(res:B).
    let (session, _) = left_as(
        &rig,
        vec![
            user(vec![ContentBlock::text("Weather?")]),
            assistant(vec![tool_use("tooluse_A")]),
            user(vec![tool_result("tooluse_B", "stale")]),
        ],
    )
    .await;
    let reply = session.resume().await.unwrap().unwrap();
    assert!(reply.complete);
    let stored = session.load().await.unwrap();
    assert_eq!(repairs(&stored), 1, "the repair is recorded");
    let first = rig.bodies()[0].clone();
    let sent = first["messages"][2]["content"].to_string();
    assert!(sent.contains("tooluse_A") && !sent.contains("tooluse_B"), "{sent}");
    // The next request replays the same repair: the same messages, then the new turn.
    session.send("Thanks").await.unwrap();
    let second = rig.bodies()[1].clone();
    let n = first["messages"].as_array().unwrap().len();
    assert_eq!(
        second["messages"].as_array().unwrap()[..n],
        first["messages"].as_array().unwrap()[..]
    );
    assert_eq!(repairs(&session.load().await.unwrap()), 1, "decided once");
    assert!(rig.statuses().iter().all(|s| *s == 200));
    // The stored history is as written, never rewritten.
    assert_eq!(results(&session.history().await.unwrap()[2].message)[0].0, "tooluse_B");
}

// 4
#[tokio::test]
async fn duplicate_results() {
    let rig = Rig::new(Behaviour::Claude).await;
    let (session, _) = left_as(
        &rig,
        vec![
            user(vec![ContentBlock::text("Weather?")]),
            assistant(vec![tool_use("tooluse_1")]),
            user(vec![tool_result("tooluse_1", "first"), tool_result("tooluse_1", "second")]),
        ],
    )
    .await;
    session.resume().await.unwrap().unwrap();
    let sent = rig.bodies()[0]["messages"][2]["content"].clone();
    assert_eq!(sent.as_array().unwrap().len(), 1, "{sent}");
    assert!(sent.to_string().contains("first"), "the first is kept: {sent}");
    assert_eq!(repairs(&session.load().await.unwrap()), 1);
    assert_eq!(rig.statuses(), [200]);
}

// 6
#[tokio::test]
async fn concurrent_writers() {
    let rig = Rig::new(Behaviour::Claude).await;
    // Two engines on one store stand for two processes serving the same session.
    let held = Probe::held("get_weather", false);
    let first = rig.builder().tool(held.clone()).build().unwrap();
    let second = rig.builder().tool(Probe::new("get_weather")).build().unwrap();
    let session = first.create().await.unwrap();
    let running = tokio::spawn({
        let session = session.clone();
        async move { session.send("Weather?").await }
    });
    held.started.notified().await;
    // The second writer settles the loop it finds open and finishes its own turn.
    let other = second.open(session.id()).await.unwrap();
    other.send("Still there?").await.unwrap();
    let version = rig.store().info(session.id()).await.unwrap().version;
    // The first writer's next append names a version that has moved on: refused, nothing
    // written, no interleaving.
    held.gate.add_permits(1);
    let error = running.await.unwrap().unwrap_err();
    // Its input was stored before the other writer went on: resume, do not send it again.
    assert!(matches!(error, EngineError::Conflict { input_stored: true, .. }), "{error:?}");
    assert_eq!(rig.store().info(session.id()).await.unwrap().version, version);
    let history = session.history().await.unwrap();
    let roles: Vec<Role> = history.iter().map(|m| m.message.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User, Role::Assistant]);
    assert_eq!(results(&history[2].message).len(), 1);
    assert!(rig.statuses().iter().all(|s| *s == 200));
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

// 19
#[tokio::test]
async fn aborted_streams() {
    let rig = Rig::new(Behaviour::Claude).await;
    let engine = rig.builder().thinking(thinking()).build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("Hello").await.unwrap();
    let stored = session.history().await.unwrap();

    // The stream is cut after three events: mid-thinking, no signature yet.
    rig.emulator.inject(Fault::Reset { after: 3 });
    let error = session.send("Tell me more").await.unwrap_err();
    assert!(matches!(error, EngineError::Transport(TransportError::Connection { .. })), "{error}");
    let after = session.history().await.unwrap();
    assert_eq!(after.len(), stored.len() + 1, "only the user's message is stored");
    assert_eq!(after[..stored.len()], stored[..]);
    assert_eq!(after.last().unwrap().message.role, Role::User);

    // An exception frame mid-stream: the same.
    rig.emulator.inject(Fault::StreamException {
        after: 2,
        exception: verbatim_emulator::StreamException::ModelStreamError,
    });
    let error = session.resume().await.unwrap_err();
    assert!(
        matches!(&error, EngineError::Transport(e) if e.api().is_some_and(|a| a.status == 200)),
        "the exception frame inside the 200 stream: {error}"
    );
    assert_eq!(session.history().await.unwrap().len(), after.len());

    // The next request is the one before plus the new input.
    session.send("Are you there?").await.unwrap();
    let bodies = rig.bodies();
    let (cut, next) = (&bodies[1]["messages"], &bodies[3]["messages"]);
    let n = cut.as_array().unwrap().len();
    assert_eq!(next.as_array().unwrap().len(), n);
    assert_eq!(next.as_array().unwrap()[..n - 1], cut.as_array().unwrap()[..n - 1]);
    let mut expected = cut[n - 1]["content"].as_array().unwrap().clone();
    expected.push(json!({"text": "Are you there?"}));
    assert_eq!(next[n - 1]["content"], Value::Array(expected));
    assert_eq!(rig.statuses().last(), Some(&200));
}

/// A Converse stream event, as the transport hands it over.
fn event(event_type: &str, payload: Value) -> Result<StreamEvent, TransportError> {
    Ok(StreamEvent { event_type: event_type.into(), payload: payload.to_string().into() })
}

// 19, cut inside a tool call's input: the call is neither stored nor run.
#[tokio::test]
async fn aborted_streams_mid_tool_use() {
    let rig = Rig::new(Behaviour::Text).await;
    let transport = Arc::new(ScriptedTransport::new());
    let start = json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_cut02", "name": "get_weather"}}});
    transport.push(Scripted::Events(vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Let me check."}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("contentBlockStart", start),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\": \"Ly"}}}),
        ),
        Err(TransportError::Connection { message: "connection reset".into() }),
    ]));
    transport.push(Scripted::Events(vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Still here."}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12}}),
        ),
    ]));
    let probe = Probe::new("get_weather");
    let engine = Engine::builder()
        .store(rig.store())
        .transport(transport.clone())
        .model(MODEL)
        .tool(probe.clone())
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    let error = session.send("Weather in Lyon?").await.unwrap_err();
    assert!(matches!(error, EngineError::Transport(TransportError::Connection { .. })), "{error}");
    let history = session.history().await.unwrap();
    assert_eq!(history.len(), 1, "only the user's message is stored: {history:?}");
    assert_eq!(probe.calls(), 0, "a call whose input was cut is never run");

    assert!(session.send("Are you there?").await.unwrap().complete);
    let calls = transport.calls();
    let bodies: Vec<Value> =
        calls.iter().map(|c| serde_json::from_slice(&c.body).unwrap()).collect();
    let (cut, next) = (&bodies[0]["messages"], &bodies[1]["messages"]);
    assert_eq!(cut.as_array().unwrap().len(), 1);
    assert_eq!(next.as_array().unwrap().len(), 1, "no half reply in between");
    let mut expected = cut[0]["content"].as_array().unwrap().clone();
    expected.push(json!({"text": "Are you there?"}));
    assert_eq!(next[0]["content"], Value::Array(expected), "the request before plus the input");
    assert_eq!(probe.calls(), 0);
}

// 28
#[tokio::test]
async fn thinking_enabled_mid_loop() {
    let rig = Rig::new(Behaviour::Steps(2)).await;
    let engine = rig
        .builder()
        .tool(Probe::new("get_weather"))
        .configure(|d| d.max_steps = 1)
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    assert!(!session.send("Plan it").await.unwrap().complete, "the loop is open");
    session.set_thinking(thinking()).await.unwrap();
    // The loop keeps the setting it started with; the request is accepted.
    let engine = rig.builder().tool(Probe::new("get_weather")).build().unwrap();
    let same = engine.open(session.id()).await.unwrap();
    assert!(same.resume().await.unwrap().unwrap().complete);
    let bodies = rig.bodies();
    assert!(bodies.iter().all(|b| !thinking_on(b)), "thinking stays off until the loop ends");
    // The next user turn thinks.
    let reply = same.send("And now think").await.unwrap();
    assert!(thinking_on(rig.bodies().last().unwrap()));
    let history = same.history().await.unwrap();
    let answers = history.iter().rev().take_while(|m| {
        m.message.role != Role::User || {
            m.message.content.iter().any(|b| matches!(b, ContentBlock::ToolResult(_)))
        }
    });
    let first = answers.filter(|m| m.message.role == Role::Assistant).last().unwrap();
    assert!(matches!(first.message.content[0], ContentBlock::Thinking(_)), "the new turn thinks");
    assert!(reply.complete);
    assert!(rig.statuses().iter().all(|s| *s == 200), "{:?}", rig.statuses());
}

// 29
#[tokio::test]
async fn thinking_less_step_inside_a_thinking_loop() {
    let rig = Rig::new(Behaviour::ThinkOnce(2)).await;
    let engine =
        rig.builder().thinking(thinking()).tool(Probe::new("get_weather")).build().unwrap();
    let session = engine.create().await.unwrap();
    assert!(session.send("Plan it").await.unwrap().complete);
    let history = session.history().await.unwrap();
    assert!(matches!(history[1].message.content[0], ContentBlock::Thinking(_)));
    assert!(matches!(history[3].message.content[0], ContentBlock::ToolUse(_)), "no thinking");
    let bodies = rig.bodies();
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().all(thinking_on), "thinking stays on for the whole loop");
    assert_eq!(rig.statuses(), [200, 200, 200]);
}

// 31: from Sonnet with thinking to (a) Opus with thinking, (b) another Claude model with
// thinking off, (c) a model of another vendor. No request carries the earlier thinking, in
// any form; the store keeps it.
#[tokio::test]
async fn model_switch() {
    let rig = Rig::new(Behaviour::Claude).await;
    let engine = rig.builder().thinking(thinking()).build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("Hello").await.unwrap();
    let history = session.history().await.unwrap();
    let ContentBlock::Thinking(thought) = &history[1].message.content[0] else { panic!() };
    let signature = thought.signature.clone().unwrap();
    for (model, thinking) in [
        ("us.anthropic.claude-opus-4-5-20251101-v1:0", thinking()),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", None),
        ("us.amazon.nova-pro-v1:0", None),
    ] {
        session.set_model(model).await.unwrap();
        session.set_thinking(thinking.clone()).await.unwrap();
        session.send("And you?").await.unwrap();
        let last = rig.bodies().last().unwrap().clone();
        assert_eq!(rig.emulator.received().last().unwrap().model_id, model);
        assert_eq!(thinking_on(&last), thinking.is_some(), "{model}");
        let sent = last.to_string();
        assert!(!sent.contains(&thought.text) && !sent.contains(&signature), "{model}: {sent}");
        if thinking.is_none() {
            assert_eq!(reasoning_blocks(&last), 0, "{model}: no thinking at all");
        }
        let reply = session.history().await.unwrap().last().unwrap().clone();
        assert_eq!(reply.provenance.unwrap().model_id, model);
    }
    assert_eq!(session.history().await.unwrap()[..2], history[..], "the store keeps it");
    assert!(rig.statuses().iter().all(|s| *s == 200), "{:?}", rig.statuses());
}

// 32
#[tokio::test]
async fn unsigned_reasoning() {
    let rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let session = engine.create().await.unwrap();
    let reasoning = "<think>extracted reasoning from another model</think>";
    let unsigned = ContentBlock::Thinking(ThinkingBlock {
        text: reasoning.into(),
        signature: None,
        unmapped: Default::default(),
    });
    write(
        &rig,
        session.id(),
        vec![
            user(vec![ContentBlock::text("Hi")]),
            assistant(vec![unsigned, ContentBlock::text("Hello.")]),
        ],
    )
    .await;
    session.send("Go on").await.unwrap();
    let sent = rig.bodies()[0].clone();
    assert_eq!(reasoning_blocks(&sent), 0, "never sent as reasoning");
    assert!(!sent.to_string().contains("extracted reasoning"), "never re-rendered as text");
    assert_eq!(repairs(&session.load().await.unwrap()), 1, "left out with a recorded note");
    assert!(session.history().await.unwrap()[1].message.content.len() == 2, "kept in the store");
    assert_eq!(rig.statuses(), [200]);
}

// 33
#[tokio::test]
async fn prefix_mutation() {
    let rig = Rig::new(Behaviour::Claude).await;
    let bound = "us.anthropic.claude-sonnet-5-5-v1:0";
    let adaptive = ThinkingConfig::new(ThinkingMode::Adaptive { effort: None });
    let engine = rig
        .builder()
        .model(bound)
        .system("You are helpful.")
        .thinking(Some(adaptive))
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    session.send("Hello").await.unwrap();
    session.send("Again").await.unwrap();
    assert_eq!(reasoning_blocks(rig.bodies().last().unwrap()), 1, "kept while the prefix holds");
    // The system prompt changes: an append, and the thinking bound to the old prefix is left
    // out of the request (never sent to be refused), while the store keeps it.
    let stored = session.history().await.unwrap();
    session.set_system(Some(verbatim_model::SystemPrompt::Text("Be brief.".into()))).await.unwrap();
    session.send("Third").await.unwrap();
    let last = rig.bodies().last().unwrap().clone();
    assert_eq!(reasoning_blocks(&last), 0, "{last}");
    assert_eq!(session.history().await.unwrap()[..4], stored[..]);
    assert!(rig.statuses().iter().all(|s| *s == 200));
}

// 35
#[tokio::test]
async fn poisoned_session() {
    let rig = Rig::new(Behaviour::Claude).await;
    let engine =
        rig.builder().thinking(thinking()).tool(Probe::new("get_weather")).build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("Hello").await.unwrap();
    // A writer stored a tool call whose thinking was altered: it can never be sent again.
    let forged = ContentBlock::Thinking(ThinkingBlock {
        text: "Let me look it up.".into(),
        signature: Some("Zm9yZ2VkIHNpZ25hdHVyZQ==".into()),
        unmapped: Default::default(),
    });
    let mut altered = assistant(vec![forged, tool_use("tooluse_forged")]);
    altered.provenance.as_mut().unwrap().thinking = thinking();
    write(&rig, session.id(), vec![user(vec![ContentBlock::text("Weather?")]), altered]).await;
    let before = session.history().await.unwrap();
    let error = session.resume().await.unwrap_err();
    let EngineError::Poisoned { message_index, rule, fork_at, ref message, .. } = error else {
        panic!("{error}")
    };
    assert_eq!(message_index, Some(before.len() - 1), "the altered message");
    assert!(message.contains("Invalid signature in thinking block"), "{message}");
    assert_eq!(rule.map(|r| r.id()), Some("thinking.foreign_model"), "the rule it points to");
    assert_eq!(rig.statuses(), [200, 200, 400, 400], "tried twice, then stopped");
    let named = format!("messages[{}]", before.len() - 1);
    assert!(error.to_string().contains(&named), "{error}");
    // Nothing was stripped: the history is as it was, plus the settled result.
    let after = session.history().await.unwrap();
    assert_eq!(after[..before.len()], before[..]);
    // The fork holds the turns that were accepted and goes on from there.
    let fork = session.fork(fork_at).await.unwrap();
    assert_eq!(fork.history().await.unwrap()[..], before[..before.len() - 2]);
    assert!(fork.send("Weather?").await.unwrap().complete);
    assert_eq!(rig.statuses().last(), Some(&200));
}
