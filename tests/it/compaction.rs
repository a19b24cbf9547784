//! Server compaction end to end: an engine session with `context_management` set runs on
//! InvokeModel and the Messages API (whole and streamed) against the emulator, which compacts
//! past the trigger; the `compaction` block is stored as it arrived and sent back byte for
//! byte by every backend (memory, sled, PostgreSQL when `TEST_DATABASE_URL` is set, DynamoDB
//! on moto with feature `dynamodb`); a compacted session forks and rewinds to before the
//! compaction; Converse refuses compaction by name, in the engine and in the validator; the
//! emulator refuses a compaction block sent back edited.

use std::sync::Arc;

use serde_json::{Value, json};
use verbatim::model::{COMPACT_BETA, CONTEXT_MANAGEMENT_BETA, ContextManagement, Settings};
use verbatim::protocol::assemble;
use verbatim::protocol::rules::Rule;
use verbatim::store::{Entry, SessionStore};
use verbatim::transport::Call;
use verbatim::{
    Api, ContentBlock, Engine, EngineError, MemoryStore, Role, Session, SledStore, Transport as _,
};
use verbatim_emulator::{Emulator, EmulatorConfig};

use crate::emulator::signed;

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
/// Tokens (the emulator's count: a token per started four bytes of message JSON) past which
/// the emulator compacts: the first turn's long message (about 500) does not pass it, the
/// second turn's request, which holds it and its echo, does.
const TRIGGER: u64 = 800;

fn settings() -> Settings {
    let member = ContextManagement::new()
        .compact(Some(TRIGGER), Some("Keep the user's own words."))
        .clear_tool_uses(Some(100_000), Some(3));
    Settings { context_management: Some(member), ..Settings::default() }
}

fn engine(store: Arc<dyn SessionStore>, emulator: &Emulator, api: Api, streaming: bool) -> Engine {
    Engine::builder()
        .store(store)
        .transport(Arc::new(signed(emulator)))
        .api(api)
        .model(MODEL)
        .configure(|d| d.streaming = streaming)
        .build()
        .unwrap()
}

/// The compaction block of a message, as stored (raw JSON).
fn compaction(message: &verbatim::Message) -> Option<&Value> {
    message.content.iter().find_map(|block| match block {
        ContentBlock::Unknown(raw) if block.is_compaction() => Some(&raw.json),
        _ => None,
    })
}

/// The model calls' bodies, parsed.
fn bodies(emulator: &Emulator) -> Vec<Value> {
    let calls = emulator.received().into_iter().filter(|r| r.operation != "count-tokens");
    calls.map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
}

/// Three turns: a short one, a long one the emulator compacts, and one that sends the
/// compaction back. Returns the session and the compaction block's text as it was sent
/// back.
async fn compacted(
    store: Arc<dyn SessionStore>,
    emulator: &Emulator,
    api: Api,
    streaming: bool,
) -> (Session, String) {
    let label = format!("{} streaming={streaming}", api.as_str());
    let session = engine(store, emulator, api, streaming).create().await.unwrap();
    session.set_settings(settings()).await.unwrap();
    let before = emulator.received().len();
    // The emulator answers by repeating the question: the first exchange passes the trigger
    // together, and the second turn's request, holding it, compacts.
    let long = format!("Here is everything about the trip: {}", "we go by train. ".repeat(120));
    let reply = session.send(long).await.unwrap();
    assert!(compaction(&reply.message).is_none(), "{label}: under the trigger");
    let reply = session.send("Hello there, I am planning a trip to Lyon.").await.unwrap();
    assert!(reply.message.content[0].is_compaction(), "{label}: {:?}", reply.message);
    assert!(reply.text().contains("Hello! You said"), "{label}: the answer follows the block");
    let reply = session.send("And what did I say first?").await.unwrap();
    assert!(compaction(&reply.message).is_none(), "{label}: compacted once");

    let history = session.history().await.unwrap();
    let stored = compaction(&history[3].message).expect("the second reply opens with it");
    let text = serde_json::to_string(stored).unwrap();
    assert!(stored["content"].as_str().unwrap().contains("everything about the trip"), "{label}");
    assert!(stored["encrypted_content"].is_string(), "{label}");
    // What the reply said it applied, recorded beside each message.
    let applied = |i: usize| history[i].provenance.as_ref().unwrap().context_management.clone();
    assert_eq!(applied(1), Some(json!({"applied_edits": []})), "{label}");
    assert_eq!(applied(3), Some(json!({"applied_edits": [{"type": "compact_20260112"}]})));
    // Every request carried the member as configured and its betas; the third the block,
    // byte for byte, and the emulator (which refuses an edited one) took them all.
    let received = emulator.received();
    assert!(received[before..].iter().all(|r| r.status == 200), "{label}");
    let bodies = bodies(emulator);
    let sent = &bodies[bodies.len() - 3..];
    for body in sent {
        assert_eq!(body["context_management"], settings().context_management.unwrap().to_value());
        if api == Api::InvokeModel {
            assert_eq!(body["anthropic_beta"], json!([COMPACT_BETA, CONTEXT_MANAGEMENT_BETA]));
        }
    }
    let last = String::from_utf8(received.last().unwrap().body.clone()).unwrap();
    assert!(last.contains(&text), "{label}: the block goes back as stored");
    assert_eq!(serde_json::to_string(&sent[2]["messages"][3]["content"][0]).unwrap(), text);
    (session, text)
}

/// Runs the three turns on `store` on both surfaces, whole and streamed, and reads each
/// session back from the store (`reload` opens it afresh) to find the block's text intact,
/// in the history and in an export.
async fn round_trip(store: Arc<dyn SessionStore>, what: &str) {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    for (api, streaming) in [
        (Api::InvokeModel, false),
        (Api::InvokeModel, true),
        (Api::Messages, false),
        (Api::Messages, true),
    ] {
        let (session, text) = compacted(store.clone(), &emulator, api, streaming).await;
        let loaded = store.load(session.id()).await.unwrap();
        let messages = loaded.messages();
        assert_eq!(serde_json::to_string(compaction(&messages[3].message).unwrap()).unwrap(), text);
        let export = verbatim::store::export::export_body(&loaded, verbatim::Dialect::Anthropic);
        let export = serde_json::to_string(&export.unwrap()).unwrap();
        assert!(export.contains(&text), "{what} {}: the export holds the block", api.as_str());
    }
}

#[tokio::test]
async fn a_compacted_session_round_trips_byte_exact_on_memory_and_sled() {
    round_trip(Arc::new(MemoryStore::new()), "memory").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    round_trip(store.clone(), "sled").await;
    // From disk, not a cache: every stored block reads back the same after a reopen.
    let ids: Vec<_> = store.list(&Default::default()).await.unwrap().sessions;
    let before: Vec<_> = {
        let mut texts = Vec::new();
        for info in &ids {
            texts.push(serde_json::to_string(&store.load(info.id).await.unwrap().records).unwrap());
        }
        texts
    };
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    for (info, text) in ids.iter().zip(before) {
        let records = store.load(info.id).await.unwrap().records;
        assert_eq!(serde_json::to_string(&records).unwrap(), text);
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_compacted_session_round_trips_byte_exact_on_postgres() {
    let Some(schema) = crate::postgres::Schema::for_test(
        "a_compacted_session_round_trips_byte_exact_on_postgres",
        "verbatim_compaction",
    ) else {
        return;
    };
    let url = schema.url.clone();
    let options =
        verbatim::PostgresOptions { schema: Some(schema.name.clone()), ..Default::default() };
    let store = verbatim::PostgresStore::connect_with(&url, options).await.unwrap();
    round_trip(Arc::new(store), "postgres").await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test]
async fn a_compacted_session_round_trips_byte_exact_on_dynamodb() {
    let test = "a_compacted_session_round_trips_byte_exact_on_dynamodb";
    let Some(moto) = crate::moto::Moto::start(test) else { return };
    let url = moto.new_table_url("verbatim_compaction");
    let options = verbatim::DynamoOptions::default().with_static_credentials("testing", "testing");
    let store = verbatim::DynamoStore::connect_with(&url, options).await.unwrap();
    round_trip(Arc::new(store), "dynamodb").await;
}

/// The sequence number of the user message that opened the compacting turn.
fn compacting_turn(session: &verbatim::store::Session) -> u64 {
    let mut user = 0;
    for record in &session.records {
        if let Entry::Message(message) = &record.entry {
            if message.message.role == Role::User {
                user = record.seq;
            } else if compaction(&message.message).is_some() {
                return user;
            }
        }
    }
    panic!("no compaction in the session")
}

#[tokio::test]
async fn a_compacted_session_forks_and_rewinds_to_before_the_compaction() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let (session, text) = compacted(store.clone(), &emulator, Api::InvokeModel, false).await;
    let stored = store.load(session.id()).await.unwrap();
    let before = compacting_turn(&stored) - 1;

    // A fork before the compacting turn: the history without the block, and it goes on.
    let fork = session.fork(before).await.unwrap();
    let history = fork.history().await.unwrap();
    assert_eq!(history.len(), 2, "the first exchange only");
    assert!(history.iter().all(|m| compaction(&m.message).is_none()));
    // The setting came with the fork; without it the next turn sends the turns as they are.
    fork.set_settings(Settings::default()).await.unwrap();
    let reply = fork.send("Shall we take the train?").await.unwrap();
    assert!(compaction(&reply.message).is_none(), "short: nothing to compact");
    let sent = bodies(&emulator).pop().unwrap();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3);
    assert!(!sent.to_string().contains("\"compaction\""));

    // A rewind to the same point: the session goes on from there, and the archive keeps the
    // compacted turns as they were.
    let version = store.info(session.id()).await.unwrap().version;
    let rewound = store.rewind(session.id(), version, before).await.unwrap();
    let engine = engine(store.clone(), &emulator, Api::InvokeModel, false);
    let reopened = engine.open(session.id()).await.unwrap();
    let history = reopened.history().await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|m| compaction(&m.message).is_none()));
    reopened.set_settings(Settings::default()).await.unwrap();
    reopened.send("Let us start again.").await.unwrap();
    assert_eq!(reopened.history().await.unwrap().len(), 4);
    let archive = store.load(rewound.archive.id).await.unwrap();
    let kept = archive.messages();
    assert_eq!(serde_json::to_string(compaction(&kept[3].message).unwrap()).unwrap(), text);
}

#[tokio::test]
async fn converse_refuses_compaction_by_name() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());

    // Configured on a Converse session: refused before any call.
    let session = engine(store.clone(), &emulator, Api::Converse, false).create().await.unwrap();
    session.set_settings(settings()).await.unwrap();
    let error = session.send("Hello").await.unwrap_err();
    let EngineError::Unsupported(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("`context_management`") && message.contains("Converse"), "{message}");
    assert!(message.contains("extraneous key [context_management]"), "{message}");
    assert!(emulator.received().is_empty(), "no call was made");

    // A session compacted on InvokeModel, continued on Converse with the setting cleared:
    // the block cannot be written there, and the error names it.
    let (compacted, _) = compacted(store.clone(), &emulator, Api::InvokeModel, false).await;
    let calls = emulator.received().len();
    let converse = engine(store.clone(), &emulator, Api::Converse, false);
    let opened = converse.open(compacted.id()).await.unwrap();
    opened.set_settings(Settings::default()).await.unwrap();
    let error = opened.send("Go on").await.unwrap_err();
    let EngineError::Invalid { diagnostics, .. } = &error else { panic!("{error:?}") };
    let named = diagnostics.iter().find(|d| d.rule == Rule::Unrepresentable).unwrap();
    assert!(named.message.contains("`compaction` block"), "{}", named.message);
    assert_eq!(named.path.to_string(), "messages[3].content[0]");
    assert_eq!(emulator.received().len(), calls, "no call was made");

    // The validator, on a Converse body with the member: an error naming it, with Bedrock's
    // schema text for an unknown key, as the emulator answers.
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "context_management": {"edits": [{"type": "compact_20260112"}]}});
    let report =
        assemble::validate_body(Api::Converse, Some(MODEL), body.to_string().as_bytes()).unwrap();
    let error = report.diagnostics.iter().find(|d| d.rule == Rule::UnknownKey).unwrap();
    assert_eq!(error.severity, assemble::Severity::Error);
    assert!(error.message.contains("server compaction"), "{}", error.message);
    assert!(error.message.contains("extraneous key [context_management]"), "{}", error.message);
    let transport = signed(&emulator);
    let call = Call::new(Api::Converse, MODEL, body.to_string());
    let refused = transport.send(call).await.unwrap_err();
    let refused = refused.api().unwrap();
    assert!(refused.message.contains("extraneous key [context_management]"), "{}", refused.message);
}

#[tokio::test]
async fn the_emulator_refuses_a_compaction_block_sent_back_edited() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    compacted(store, &emulator, Api::InvokeModel, false).await;
    let accepted = bodies(&emulator).pop().unwrap();
    let transport = signed(&emulator);
    // The body as sent is taken again; with one character of the summary changed, refused,
    // on InvokeModel and on the Messages API.
    let call = Call::new(Api::InvokeModel, MODEL, accepted.to_string());
    assert!(transport.send(call).await.is_ok());
    let mut edited = accepted.clone();
    let summary = &mut edited["messages"][3]["content"][0]["content"];
    *summary = json!(format!("{}.", summary.as_str().unwrap()));
    let call = Call::new(Api::InvokeModel, MODEL, edited.to_string());
    let refused = transport.send(call).await.unwrap_err();
    let text = "messages.3.content.0: Invalid `encrypted_content` in `compaction` block";
    assert_eq!(refused.api().unwrap().message, text);
    // The Messages API's body: the transport writes `model` around it.
    let mut messages = edited.clone();
    let fields = messages.as_object_mut().unwrap();
    fields.remove("anthropic_version");
    fields.remove("anthropic_beta");
    let call = Call::new(Api::Messages, MODEL, messages.to_string());
    let refused = transport.send(call).await.unwrap_err();
    assert_eq!(refused.api().unwrap().message, text);
}

#[tokio::test]
async fn a_paused_compaction_ends_the_turn_at_the_block_and_the_next_send_goes_on() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let session = engine(store, &emulator, Api::Messages, true).create().await.unwrap();
    let paused = json!({"type": "compact_20260112", "pause_after_compaction": true,
        "trigger": {"type": "input_tokens", "value": TRIGGER}});
    let member = ContextManagement::new().push(paused);
    let settings = Settings { context_management: Some(member), ..Settings::default() };
    session.set_settings(settings).await.unwrap();
    let long = format!("Here is everything about the trip: {}", "we go by train. ".repeat(120));
    session.send(long).await.unwrap();
    let reply = session.send("Hello there.").await.unwrap();
    assert_eq!(reply.message.content.len(), 1, "the block alone: {:?}", reply.message);
    assert!(reply.message.content[0].is_compaction());
    let history = session.history().await.unwrap();
    let provenance = history[3].provenance.as_ref().unwrap();
    assert_eq!(provenance.stop_reason, Some(verbatim::StopReason::Other("compaction".into())));
    // The next send goes on after the block, which the emulator verifies.
    let reply = session.send("Go on.").await.unwrap();
    assert!(reply.text().contains("Hello! You said: Go on."), "{:?}", reply.message);
    assert!(emulator.received().iter().all(|r| r.status == 200));
}
