//! Streams cut mid-reply, mid-thinking or inside a tool call's input (scenario 19): nothing of
//! the reply is stored or run, and the next request is the one before plus the new input.

use std::sync::Arc;

use serde_json::{Value, json};
use verbatim_emulator::{Behaviour, Fault};
use verbatim_model::Role;
use verbatim_transport::{Scripted, ScriptedTransport, StreamEvent, TransportError};

use super::*;
use crate::EngineError;

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

// A stream part of a kind this version does not read: the reply is stored, and what was kept
// raw is named in its provenance.
#[tokio::test]
async fn a_stream_part_of_an_unknown_kind_is_named_in_the_provenance() {
    let rig = Rig::new(Behaviour::Text).await;
    let transport = Arc::new(ScriptedTransport::new());
    transport.push(Scripted::Events(vec![
        event("messageStart", json!({"role": "assistant"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hello."}})),
        event("futureEvent", json!({"detail": 1})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12}}),
        ),
    ]));
    let engine =
        Engine::builder().store(rig.store()).transport(transport).model(MODEL).build().unwrap();
    let session = engine.create().await.unwrap();
    assert!(session.send("Hi").await.unwrap().complete);
    let history = session.history().await.unwrap();
    let reply = history.last().unwrap();
    assert_eq!(reply.message.text(), "Hello.");
    assert_eq!(
        reply.provenance.as_ref().unwrap().notes,
        ["event 2 (futureEvent): an event type this version does not read, kept as {\"detail\":1}"]
    );
}
