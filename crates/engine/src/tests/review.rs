//! Replies and histories the happy path never produces: reused tool ids, a reply cut off in
//! a tool call, a refusal that names no message, blank input, new input after a failed step
//! inside a tool loop, context trimming on a model that binds thinking to the prefix.

use std::sync::Arc;

use serde_json::Value;
use verbatim_emulator::{Behaviour, Fault};
use verbatim_model::{ContentBlock, Role};
use verbatim_store::{Entry, SessionStore as _};
use verbatim_transport::{ApiError, Exception, ScriptedTransport, TransportError};

use super::*;
use crate::{ContextPolicy, EngineError};

fn test_data(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name))
        .unwrap()
}

fn scripted(rig: &Rig, transport: &Arc<ScriptedTransport>, probe: Arc<Probe>) -> Engine {
    Engine::builder()
        .store(rig.store())
        .transport(transport.clone())
        .model(MODEL)
        .tool(probe)
        .configure(|d| d.streaming = false)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_reply_that_reuses_a_tool_use_id_is_not_stored_and_runs_nothing() {
    let rig = Rig::new(Behaviour::Text).await;
    let transport = Arc::new(ScriptedTransport::new());
    transport.push_reply(test_data("reused_id_first.json"));
    transport.push_reply(test_data("reused_id_again.json"));
    let probe = Probe::new("get_weather");
    let session = scripted(&rig, &transport, probe.clone()).create().await.unwrap();
    let error = session.send("Weather?").await.unwrap_err();
    assert!(matches!(error, EngineError::Reply(ref m) if m.contains("tooluse_same01")), "{error}");
    assert_eq!(probe.calls(), 1, "only the first call ran");
    let history = session.history().await.unwrap();
    assert_eq!(history.len(), 3, "the second reply was not stored");
    assert_eq!(history[2].message.role, Role::User);
    // The session is not stuck: resumed, the model is asked again from the stored results,
    // and its fresh answer ends the turn.
    transport.push_reply(test_data("final_answer.json"));
    let reply = session.resume().await.unwrap().expect("the open turn is resumed");
    assert!(reply.complete);
    assert_eq!(transport.calls().len(), 3);
    assert_eq!(transport.calls()[2].body, transport.calls()[1].body, "the same request again");
    let history = session.history().await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(probe.calls(), 1, "nothing ran twice");
}

#[tokio::test]
async fn a_tool_call_in_a_reply_cut_off_at_max_tokens_is_answered_as_failed_not_run() {
    let rig = Rig::new(Behaviour::Text).await;
    let transport = Arc::new(ScriptedTransport::new());
    transport.push_reply(test_data("cut_off_tool_use.json"));
    transport.push_reply(test_data("final_answer.json"));
    let probe = Probe::new("get_weather");
    let session = scripted(&rig, &transport, probe.clone()).create().await.unwrap();
    let reply = session.send("Weather?").await.unwrap();
    assert!(reply.complete);
    assert_eq!(probe.calls(), 0, "a call with input cut short is never run");
    let states: Vec<&str> = lifecycle(&session).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["requested", "failed"]);
    let sent = String::from_utf8(transport.calls()[1].body.to_vec()).unwrap();
    assert!(
        sent.contains("stopped (max_tokens)") && sent.contains("\"status\":\"error\""),
        "{sent}"
    );
}

#[tokio::test]
async fn a_refusal_that_names_no_message_is_reported_once_not_as_a_poisoned_history() {
    let rig = Rig::new(Behaviour::Text).await;
    let transport = Arc::new(ScriptedTransport::new());
    transport.push_error(TransportError::Api(ApiError {
        exception: Exception::Validation,
        status: 400,
        message: "The provided model identifier is invalid.".into(),
        request_id: None,
        retry_after: None,
    }));
    let session = scripted(&rig, &transport, Probe::new("get_weather")).create().await.unwrap();
    let error = session.send("Hi").await.unwrap_err();
    assert!(matches!(error, EngineError::Transport(_)), "{error}");
    assert_eq!(transport.calls().len(), 1, "not retried");
}

#[tokio::test]
async fn blank_input_is_refused_and_stores_nothing() {
    let rig = Rig::new(Behaviour::Text).await;
    let session = rig.builder().build().unwrap().create().await.unwrap();
    let error = session.send(" \n\t").await.unwrap_err();
    assert_eq!(error.to_string(), "engine configuration: the input is empty or blank");
    assert_eq!(rig.store().info(session.id()).await.unwrap().version, 0);
    assert!(rig.statuses().is_empty());
}

#[tokio::test]
async fn new_input_after_a_failed_step_inside_a_loop_keeps_the_loops_thinking() {
    let rig = Rig::new(Behaviour::Steps(2)).await;
    let engine = |max_steps| {
        rig.builder()
            .thinking(thinking())
            .tool(Probe::new("get_weather"))
            .configure(|d| d.max_steps = max_steps)
            .build()
            .unwrap()
    };
    let session = engine(1).create().await.unwrap();
    assert!(!session.send("Plan it").await.unwrap().complete);
    // The tool runs and its result is stored; the next model call is throttled (retries off).
    rig.emulator.inject(Fault::Throttle);
    let session = engine(16).open(session.id()).await.unwrap();
    assert!(session.resume().await.is_err());
    let history = session.history().await.unwrap();
    assert!(matches!(history.last().unwrap().message.content[0], ContentBlock::ToolResult(_)));
    // Thinking off is asked for, then new input: the loop still goes on with its setting.
    session.set_thinking(None).await.unwrap();
    let reply = session.send("Go on").await.unwrap();
    assert!(reply.complete);
    let last = rig.bodies().last().unwrap().clone();
    assert!(!last["additionalModelRequestFields"]["thinking"].is_null(), "the loop's setting");
    assert_eq!(rig.statuses(), [200, 429, 200, 200], "{:?}", rig.statuses());
}

#[tokio::test]
async fn trimming_on_a_prefix_bound_model_keeps_a_tool_loop_going_and_records_no_repair() {
    let rig = Rig::new(Behaviour::Steps(2)).await;
    let bound = "us.anthropic.claude-sonnet-5-5-v1:0";
    let adaptive = ThinkingConfig::new(ThinkingMode::Adaptive { effort: None });
    let build = |context: Option<ContextPolicy>| {
        rig.builder()
            .model(bound)
            .thinking(Some(adaptive.clone()))
            .tool(Probe::new("get_weather"))
            .configure(|d| d.context = context)
            .build()
            .unwrap()
    };
    let session = build(None).create().await.unwrap();
    for i in 0..3 {
        session.send(format!("Turn {i}: {}", "padding ".repeat(60))).await.unwrap();
    }
    let full = rig.bodies().last().unwrap().to_string().len() as u64 / 4;
    let budget = ContextPolicy {
        budget_tokens: full * 2 / 3,
        trim: true,
        chunk_tokens: 0,
        headroom_tokens: 0,
        count_tokens: false,
    };
    let trimming = build(Some(budget)).open(session.id()).await.unwrap();
    let reply = trimming.send("One more loop").await.unwrap();
    assert!(reply.complete && reply.steps == 3, "{reply:?}");
    assert!(rig.statuses().iter().all(|s| *s == 200));
    let stored = trimming.load().await.unwrap();
    let repairs = stored.records.iter().filter(|r| matches!(r.entry, Entry::Repair { .. })).count();
    assert_eq!(repairs, 0, "a shortened request is a view: nothing recorded");
    // The loop's requests left the same old turns out and replayed its own thinking.
    let bodies = rig.bodies();
    let loop_bodies = &bodies[bodies.len() - 3..];
    let first_user = |b: &Value| b["messages"][0]["content"][0]["text"].clone();
    assert!(loop_bodies.iter().all(|b| first_user(b) == first_user(&loop_bodies[0])));
    assert_ne!(first_user(&loop_bodies[0]), first_user(&bodies[0]), "old turns left out");
    let last = &loop_bodies[2]["messages"];
    let n = last.as_array().unwrap().len();
    assert!(last[n - 2]["content"][0].get("reasoningContent").is_some(), "{last}");
    let history = trimming.history().await.unwrap();
    assert!(matches!(history[history.len() - 1].message.content[0], ContentBlock::Thinking(_)));
}

/// A turn's span carries its tokens under the OpenTelemetry GenAI names, for an exporter to
/// pick up.
#[tokio::test]
async fn a_turns_span_carries_its_usage_under_the_gen_ai_names() {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt as _};

    /// The fields of every closed `turn` span, as recorded. A global subscriber, set once:
    /// a thread's own default would see its spans only when no other test of this binary
    /// registers the same callsite first (the callsite's interest is cached process-wide).
    static CLOSED: OnceLock<Mutex<Vec<BTreeMap<String, String>>>> = OnceLock::new();
    struct Values<'a>(&'a mut BTreeMap<String, String>);
    impl Visit for Values<'_> {
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.insert(field.name().to_owned(), value.to_string());
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }
    struct Turns;
    impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>
        tracing_subscriber::Layer<S> for Turns
    {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            id: &tracing::span::Id,
            cx: Context<'_, S>,
        ) {
            if attrs.metadata().name() != "turn" {
                return;
            }
            let mut fields = BTreeMap::new();
            attrs.record(&mut Values(&mut fields));
            if let Some(span) = cx.span(id) {
                span.extensions_mut().insert(fields);
            }
        }
        fn on_record(
            &self,
            id: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            cx: Context<'_, S>,
        ) {
            let Some(span) = cx.span(id) else { return };
            if let Some(fields) = span.extensions_mut().get_mut::<BTreeMap<String, String>>() {
                values.record(&mut Values(fields));
            }
        }
        fn on_close(&self, id: tracing::span::Id, cx: Context<'_, S>) {
            let Some(span) = cx.span(&id) else { return };
            if let Some(fields) = span.extensions_mut().remove::<BTreeMap<String, String>>() {
                CLOSED.get_or_init(Default::default).lock().unwrap().push(fields);
            }
        }
    }
    CLOSED.get_or_init(Default::default);
    let subscriber = tracing_subscriber::registry().with(Turns);
    // Set once for the binary; another test may have set one first, which this test would
    // then find no spans in, and say so.
    let set = tracing::subscriber::set_global_default(subscriber).is_ok();
    assert!(set, "another global subscriber is set in this test binary");

    let rig = Rig::new(Behaviour::Text).await;
    let transport = Arc::new(ScriptedTransport::new());
    transport.push_reply(test_data("final_answer.json"));
    let session = scripted(&rig, &transport, Probe::new("get_weather")).create().await.unwrap();
    session.send("Weather?").await.unwrap();
    let id = session.id().to_string();
    let closed = CLOSED.get().unwrap().lock().unwrap().clone();
    let fields = closed
        .iter()
        .find(|f| f.get("session") == Some(&id))
        .unwrap_or_else(|| panic!("no turn span for session {id} among {}", closed.len()));
    assert_eq!(fields.get("gen_ai.system").map(String::as_str), Some("aws.bedrock"));
    assert_eq!(fields.get("gen_ai.usage.input_tokens").map(String::as_str), Some("120"));
    assert_eq!(fields.get("gen_ai.usage.output_tokens").map(String::as_str), Some("9"));
}
