//! Thinking across a session: switched on mid-loop, a step without it, a switch of model,
//! unsigned reasoning, a changed prefix and altered thinking that poisons a session
//! (scenarios 28 to 35).

use serde_json::Value;
use verbatim_emulator::Behaviour;
use verbatim_model::{ContentBlock, Role, ThinkingBlock};

use super::*;
use crate::EngineError;

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
