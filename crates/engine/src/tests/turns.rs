//! Turns: chat, tool loops, streaming and whole replies on both APIs, step limits, timeouts,
//! busy sessions, context budgets, usage.

use std::time::Duration;

use verbatim_emulator::Behaviour;
use verbatim_model::{Api, ContentBlock, Role, StopReason};
use verbatim_store::SessionStore as _;
use verbatim_transport::Transport as _;

use super::*;
use crate::{ContextPolicy, EngineError, Event, Settled};

#[tokio::test]
async fn a_session_opened_after_a_restart_is_the_same_conversation() {
    let mut rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let session = engine.create().await.unwrap();
    let first = session.send("Hello").await.unwrap();
    assert_eq!(first.text(), "Hello! You said: Hello");
    session.send("And again").await.unwrap();
    let before = session.history().await.unwrap();
    let id = session.id();
    drop((session, engine));

    rig.restart().await;
    let engine = rig.builder().build().unwrap();
    let session = engine.open(id).await.unwrap();
    assert_eq!(session.history().await.unwrap(), before);
    session.send("Third").await.unwrap();
    let after = session.history().await.unwrap();
    assert_eq!(after.len(), 6);
    assert_eq!(&after[..4], &before[..]);
    assert_eq!(rig.statuses(), [200, 200, 200]);
    // The third request is the stored history plus the new input, as sent before.
    let bodies = rig.bodies();
    let sent = |i: usize| bodies[i]["messages"].as_array().unwrap().clone();
    assert_eq!(&sent(2)[..3], &sent(1)[..]);
}

async fn tool_loop(api: Api, streaming: bool) {
    let rig = Rig::new(Behaviour::Steps(2)).await;
    let weather = Probe::new("get_weather");
    let engine = rig
        .builder()
        .api(api)
        .thinking(thinking())
        .tool(weather.clone())
        .configure(|d| d.streaming = streaming)
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    let mut events = Vec::new();
    let reply = session.send_with("Weather in Lyon?", |e| events.push(e)).await.unwrap();
    assert!(reply.complete);
    assert_eq!(reply.steps, 3, "two tool steps, then the answer");
    assert_eq!(reply.stop_reason, Some(StopReason::EndTurn));
    assert!(reply.text().starts_with("Here is what the tool returned"), "{}", reply.text());
    assert_eq!(weather.calls(), 2);
    assert_eq!(rig.statuses(), [200, 200, 200], "{}", api_name(api));

    // Each call's lifecycle is in the log: requested with its message, started, completed.
    let states: Vec<&str> = lifecycle(&session).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["requested", "started", "completed"].repeat(2));

    // The stored assistant messages carry signed thinking first and their provenance.
    let history = session.history().await.unwrap();
    assert_eq!(history.len(), 6);
    for message in history.iter().filter(|m| m.message.role == Role::Assistant) {
        let ContentBlock::Thinking(block) = &message.message.content[0] else {
            panic!("thinking first: {:?}", message.message.content)
        };
        assert!(block.signature.as_deref().is_some_and(|s| !s.is_empty()));
        let provenance = message.provenance.as_ref().unwrap();
        assert_eq!((provenance.model_id.as_str(), provenance.api), (MODEL, api));
        assert_eq!(provenance.thinking, thinking());
        assert_eq!(provenance.region.as_deref(), Some("us-west-2"));
        assert!(provenance.prefix_hash.is_some() && provenance.usage.is_some());
    }
    let usage = session.usage().await.unwrap();
    assert_eq!(usage.output_tokens, reply.usage.output_tokens);
    assert!(usage.input_tokens.unwrap() > 0);

    // The caller saw thinking, both calls and their results, and the answer.
    let calls = events.iter().filter(|e| matches!(e, Event::ToolCall { .. })).count();
    let results: Vec<&Event> =
        events.iter().filter(|e| matches!(e, Event::ToolResult { .. })).collect();
    assert_eq!(calls, 2);
    assert!(
        results
            .iter()
            .all(|e| matches!(e, Event::ToolResult { is_error: false, settled: Settled::Ran, .. }))
    );
    assert!(events.iter().any(|e| matches!(e, Event::Thinking(t) if !t.is_empty())));
    let text: String = events
        .iter()
        .filter_map(|e| if let Event::Text(t) = e { Some(t.as_str()) } else { None })
        .collect();
    assert!(text.ends_with(&reply.text()), "{text:?}");
}

#[tokio::test]
async fn a_streamed_tool_loop_with_thinking_over_converse_runs_to_the_end() {
    tool_loop(Api::Converse, true).await;
}

#[tokio::test]
async fn a_whole_reply_tool_loop_with_thinking_over_converse_runs_to_the_end() {
    tool_loop(Api::Converse, false).await;
}

#[tokio::test]
async fn a_streamed_tool_loop_with_thinking_over_invoke_model_runs_to_the_end() {
    tool_loop(Api::InvokeModel, true).await;
}

#[tokio::test]
async fn a_whole_reply_tool_loop_with_thinking_over_invoke_model_runs_to_the_end() {
    tool_loop(Api::InvokeModel, false).await;
}

#[tokio::test]
async fn the_step_limit_stops_a_loop_before_its_tools_and_resume_finishes_it() {
    let rig = Rig::new(Behaviour::Steps(3)).await;
    let weather = Probe::new("get_weather");
    let engine = rig
        .builder()
        .thinking(thinking())
        .tool(weather.clone())
        .configure(|d| d.max_steps = 2)
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    let reply = session.send("Plan it").await.unwrap();
    assert!(!reply.complete);
    assert_eq!((reply.steps, reply.stop_reason), (2, Some(StopReason::ToolUse)));
    assert_eq!(weather.calls(), 1, "the second step's call waits for resume");
    let reply = session.resume().await.unwrap().expect("the loop was open");
    assert!(reply.complete);
    assert_eq!(reply.steps, 2);
    assert_eq!(weather.calls(), 3);
    assert_eq!(session.resume().await.unwrap(), None, "nothing left to do");
    assert!(rig.statuses().iter().all(|s| *s == 200));
}

/// Scenario 34: two resumes of one open loop at once (two handles, as two workers retrying
/// the same job would): one finishes the loop, the other is refused as busy or finds nothing
/// left; every call runs once and the history holds one answer per call.
#[tokio::test]
async fn two_resumes_at_once_finish_the_loop_once() {
    let rig = Rig::new(Behaviour::Steps(3)).await;
    let weather = Probe::new("get_weather");
    let engine =
        rig.builder().tool(weather.clone()).configure(|d| d.max_steps = 2).build().unwrap();
    let session = engine.create().await.unwrap();
    assert!(!session.send("Plan it").await.unwrap().complete);
    assert_eq!(weather.calls(), 1);
    let other = engine.open(session.id()).await.unwrap();
    let (a, b) = tokio::join!(session.resume(), other.resume());
    let outcomes = [a, b].map(|outcome| match outcome {
        Ok(Some(reply)) => {
            assert!(reply.complete);
            "finished"
        }
        Ok(None) => "nothing left",
        Err(EngineError::Busy { .. }) => "busy",
        Err(error) => panic!("{error}"),
    });
    assert_eq!(outcomes.iter().filter(|o| **o == "finished").count(), 1, "{outcomes:?}");
    assert_eq!(weather.calls(), 3, "each call ran once");
    let history = session.history().await.unwrap();
    let (mut uses, mut results) = (0, 0);
    for block in history.iter().flat_map(|m| &m.message.content) {
        match block {
            ContentBlock::ToolUse(_) => uses += 1,
            ContentBlock::ToolResult(_) => results += 1,
            _ => {}
        }
    }
    assert_eq!((uses, results), (3, 3));
    assert_eq!(history.last().unwrap().message.role, Role::Assistant);
}

#[tokio::test]
async fn a_tool_that_outlives_its_timeout_is_answered_as_failed() {
    let rig = Rig::new(Behaviour::Claude).await;
    let slow = Probe::held("get_weather", false);
    let engine = rig
        .builder()
        .tool(slow.clone())
        .configure(|d| d.tool_timeout = Duration::from_millis(50))
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    let reply = session.send("Weather?").await.unwrap();
    assert!(reply.complete);
    let history = session.history().await.unwrap();
    let ContentBlock::ToolResult(result) = &history[2].message.content[0] else { panic!() };
    assert_eq!(result.status, Some(verbatim_model::ToolResultStatus::Error));
    assert!(format!("{:?}", result.content).contains("did not finish within 0.05 s"));
    assert_eq!(lifecycle(&session).await.last().unwrap().1, "failed");
}

/// Whatever a tool returns, the next request is one Bedrock takes: JSON of any kind (an
/// array, a number, null) goes back as its JSON text, and nothing at all or blank text as a
/// fixed placeholder, since Bedrock refuses blank tool-result text.
#[tokio::test]
async fn odd_tool_outputs_go_back_as_text_bedrock_takes() {
    let rig = Rig::new(Behaviour::Steps(5)).await;
    let outputs = std::sync::Mutex::new(std::collections::VecDeque::from([
        ToolOutput::Json(json!([1, "a"])),
        ToolOutput::Json(json!(42)),
        ToolOutput::Json(Value::Null),
        ToolOutput::Text(String::new()),
        ToolOutput::Text(" \n".to_owned()),
    ]));
    let tool =
        crate::FnTool::new("get_weather", "Weather", json!({"type": "object"}), move |_: Value| {
            let next = outputs.lock().unwrap().pop_front().expect("five calls");
            async move { Ok::<_, ToolError>(next) }
        });
    let engine = rig.builder().tool(tool.shared()).build().unwrap();
    let session = engine.create().await.unwrap();
    let reply = session.send("Weather?").await.unwrap();
    assert!(reply.complete);
    assert!(rig.statuses().iter().all(|s| *s == 200), "{:?}", rig.statuses());
    let history = session.history().await.unwrap();
    let results: Vec<&str> = history
        .iter()
        .flat_map(|m| &m.message.content)
        .filter_map(|block| match block {
            ContentBlock::ToolResult(result) => match result.content.as_ref()? {
                verbatim_model::ToolResultContent::Blocks(blocks) => match &blocks[..] {
                    [verbatim_model::ToolResultBlock::Text { text }] => Some(text.as_str()),
                    _ => None,
                },
                verbatim_model::ToolResultContent::Text(text) => Some(text.as_str()),
            },
            _ => None,
        })
        .collect();
    let empty = crate::EMPTY_OUTPUT;
    assert_eq!(results, [r#"[1,"a"]"#, "42", "null", empty, empty]);
}

/// A session whose recorded tools include one this engine does not have (recorded by the
/// proxy for another client, say): the model's call to it is answered as an error result that
/// names it, marked failed, and the loop goes on to the model's answer.
#[tokio::test]
async fn a_call_to_a_tool_the_engine_lacks_is_answered_as_an_error_and_the_loop_goes_on() {
    let rig = Rig::new(Behaviour::Steps(2)).await;
    let weather = Probe::new("get_weather");
    let time = Probe::new("get_time");
    let recorded = [weather.as_ref() as &dyn Tool, time.as_ref()]
        .map(|tool| verbatim_model::Tool::Spec(crate::tool::spec(tool)));
    let engine = rig.builder().tool(weather.clone()).build().unwrap();
    let mut new = verbatim_store::NewSession::new(MODEL);
    new.tools = Some(recorded.to_vec());
    let session = engine.create_with(new).await.unwrap();
    let reply = session.send("Weather and time?").await.unwrap();
    assert!(reply.complete);
    assert_eq!((weather.calls(), time.calls()), (1, 0));
    assert!(rig.statuses().iter().all(|s| *s == 200), "{:?}", rig.statuses());
    let history = session.history().await.unwrap();
    let results: Vec<_> = history
        .iter()
        .flat_map(|m| &m.message.content)
        .filter_map(|block| match block {
            ContentBlock::ToolResult(result) => Some(result),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1].status, Some(verbatim_model::ToolResultStatus::Error));
    let said = format!("{:?}", results[1].content);
    assert!(said.contains("no tool named get_time is available"), "{said}");
    let states: Vec<_> = lifecycle(&session).await.into_iter().map(|(_, state)| state).collect();
    assert_eq!(states.last(), Some(&"failed"), "{states:?}");
}

#[tokio::test]
async fn a_second_turn_on_a_session_already_in_a_turn_is_refused_as_busy() {
    let rig = Rig::new(Behaviour::Claude).await;
    let held = Probe::held("get_weather", false);
    let engine = rig.builder().tool(held.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    let running = tokio::spawn({
        let session = session.clone();
        async move { session.send("Weather?").await }
    });
    held.started.notified().await;
    let version = rig.store().info(session.id()).await.unwrap().version;
    let busy = session.send("Hello?").await.unwrap_err();
    assert!(
        matches!(busy, EngineError::Busy { id, holder: None, .. } if id == session.id()),
        "{busy}"
    );
    assert_eq!(rig.store().info(session.id()).await.unwrap().version, version, "nothing written");
    held.gate.add_permits(1);
    assert!(running.await.unwrap().unwrap().complete);
}

#[tokio::test]
async fn over_the_context_budget_old_turns_are_left_out_of_the_request_not_the_store() {
    let rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let session = engine.create().await.unwrap();
    for i in 0..4 {
        session.send(format!("Message number {i} {}", "padding ".repeat(40))).await.unwrap();
    }
    let full = rig.bodies().last().unwrap().to_string().len() as u64 / 4;

    let budget = ContextPolicy {
        budget_tokens: full / 2,
        trim: true,
        chunk_tokens: 0,
        headroom_tokens: 0,
        count_tokens: false,
    };
    let trimming = rig.builder().configure(|d| d.context = Some(budget)).build().unwrap();
    let same = trimming.open(session.id()).await.unwrap();
    same.send("Short").await.unwrap();
    let sent = rig.bodies().last().unwrap().clone();
    assert!(crate::estimate_tokens(sent.to_string().len()) <= budget.budget_tokens);
    let messages = sent["messages"].as_array().unwrap();
    assert!(messages.len() < 9 && messages.len() % 2 == 1, "{}", messages.len());
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages.last().unwrap()["content"][0]["text"], "Short");
    assert_eq!(same.history().await.unwrap().len(), 10, "the store keeps every message");

    let strict = ContextPolicy {
        budget_tokens: full / 2,
        trim: false,
        chunk_tokens: 0,
        headroom_tokens: 0,
        count_tokens: false,
    };
    let failing = rig.builder().configure(|d| d.context = Some(strict)).build().unwrap();
    let error = failing.open(session.id()).await.unwrap().send("More").await.unwrap_err();
    assert!(
        matches!(error, EngineError::ContextBudget { trimmed: false, budget, .. } if budget == full / 2),
        "{error}"
    );
    let tiny = ContextPolicy {
        budget_tokens: 10,
        trim: true,
        chunk_tokens: 0,
        headroom_tokens: 0,
        count_tokens: false,
    };
    let hopeless = rig.builder().configure(|d| d.context = Some(tiny)).build().unwrap();
    let error = hopeless.open(session.id()).await.unwrap().send("More").await.unwrap_err();
    assert!(matches!(error, EngineError::ContextBudget { trimmed: true, .. }), "{error}");
}

#[tokio::test]
async fn the_builder_names_what_it_lacks() {
    let rig = Rig::new(Behaviour::Text).await;
    let no_store = Engine::builder().transport(rig.transport.clone()).build().unwrap_err();
    assert_eq!(no_store.to_string(), "engine configuration: no store");
    let twice = rig.builder().tool(Probe::new("a")).tool(Probe::new("a")).build().unwrap_err();
    assert_eq!(twice.to_string(), "engine configuration: two tools named a");
    let no_model = Engine::builder().store(rig.store()).transport(rig.transport.clone());
    let error = no_model.build().unwrap().create().await.unwrap_err();
    assert!(error.to_string().contains("no default model"), "{error}");
}

/// With `count_tokens`, a request the estimate finds over the budget is counted by the model
/// (CountTokens through the transport) and goes whole when the count is within it; without,
/// the estimate trims it.
#[tokio::test]
async fn a_counted_budget_sends_whole_what_the_estimate_would_trim() {
    let rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let session = engine.create().await.unwrap();
    for i in 0..4 {
        session.send(format!("Message number {i} {}", "padding ".repeat(40))).await.unwrap();
    }
    let version = session.load().await.unwrap().info.version;
    // The request "Short" makes, as sent without a budget: its estimate and its count.
    let reference = session.fork(version).await.unwrap();
    reference.send("Short").await.unwrap();
    let whole = rig.emulator.received().last().unwrap().body.clone();
    let estimate = crate::estimate_tokens(whole.len());
    let model = "us.anthropic.claude-sonnet-4-20250514-v1:0";
    let call = verbatim_transport::Call::new(Api::Converse, model, whole.clone());
    let counted = rig.transport.count_tokens(call).await.unwrap();
    assert!(counted < estimate, "the estimate is the conservative one: {counted} {estimate}");
    let budget_tokens = (counted + estimate) / 2;

    let budget = |count_tokens| ContextPolicy {
        budget_tokens,
        trim: true,
        chunk_tokens: 0,
        headroom_tokens: 0,
        count_tokens,
    };
    let sent_messages = |count_tokens: bool| {
        let rig = &rig;
        let session = &session;
        async move {
            let engine = rig
                .builder()
                .configure(|d| d.context = Some(budget(count_tokens)))
                .build()
                .unwrap();
            let fork = engine.open(session.fork(version).await.unwrap().id()).await.unwrap();
            let before = rig.emulator.received().len();
            fork.send("Short").await.unwrap();
            let received = rig.emulator.received();
            let operations: Vec<String> =
                received[before..].iter().map(|r| r.operation.clone()).collect();
            let body: Value = serde_json::from_slice(&received.last().unwrap().body).unwrap();
            (body["messages"].as_array().unwrap().len(), operations)
        }
    };
    let whole_messages =
        serde_json::from_slice::<Value>(&whole).unwrap()["messages"].as_array().unwrap().len();
    let (counted_messages, operations) = sent_messages(true).await;
    assert_eq!(operations, ["count-tokens", "converse-stream"]);
    assert_eq!(counted_messages, whole_messages, "sent whole: the count is within the budget");
    let (estimated_messages, operations) = sent_messages(false).await;
    assert_eq!(operations, ["converse-stream"]);
    assert!(estimated_messages < whole_messages, "the estimate trims");
}
