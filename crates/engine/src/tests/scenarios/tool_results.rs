//! Tool calls interrupted by a crash, results missing, stale or duplicated as another writer
//! left them, and a second writer on the same session (scenarios 1 to 6).

use std::sync::Arc;
use std::time::Duration;

use verbatim_emulator::Behaviour;
use verbatim_model::{ContentBlock, HistoryMessage, Role};
use verbatim_store::SessionStore as _;

use super::*;
use crate::{EngineError, Event, INTERRUPTED, Settled};

/// A session with a `get_weather` tool (the probe returned) whose history is `messages`, as
/// another writer left it.
async fn left_as(rig: &Rig, messages: Vec<HistoryMessage>) -> (Session, Arc<Probe>) {
    let weather = Probe::new("get_weather");
    let engine = rig.builder().tool(weather.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    write(rig, session.id(), messages).await;
    (session, weather)
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
    rig.restart().await;
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

    rig.restart().await;
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
    let second = rig
        .builder()
        .tool(Probe::new("get_weather"))
        .configure(|d| d.lease_wait = Duration::from_millis(100))
        .build()
        .unwrap();
    let session = first.create().await.unwrap();
    let running = tokio::spawn({
        let session = session.clone();
        async move { session.send("Weather?").await }
    });
    held.started.notified().await;
    let version = rig.store().info(session.id()).await.unwrap().version;
    // The second writer meets the first's lease: told the session is busy, it writes
    // nothing, and the loop the first is running is not settled under it.
    let other = second.open(session.id()).await.unwrap();
    let busy = other.send("Still there?").await.unwrap_err();
    assert!(matches!(busy, EngineError::Busy { holder: Some(_), .. }), "{busy:?}");
    assert_eq!(rig.store().info(session.id()).await.unwrap().version, version);
    // The first finishes its turn; the second then goes on after it.
    held.gate.add_permits(1);
    assert!(running.await.unwrap().unwrap().complete);
    other.send("Still there?").await.unwrap();
    let history = session.history().await.unwrap();
    let roles: Vec<Role> = history.iter().map(|m| m.message.role).collect();
    use Role::{Assistant as A, User as U};
    assert_eq!(roles, [U, A, U, A, U, A, U, A], "two whole turns, one after the other");
    assert_eq!(results(&history[2].message).len(), 1);
    assert_eq!(held.calls(), 1, "the first turn's call ran once, in the first engine");
    assert!(rig.statuses().iter().all(|s| *s == 200));
}
