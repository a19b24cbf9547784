//! What a session handle keeps between turns: the log, brought up to date with what others
//! appended since; read whole again after a rewind or a failed turn; and the prefix hash,
//! carried on from one request to the next.

use std::sync::atomic::{AtomicBool, Ordering};

use verbatim_emulator::Behaviour;
use verbatim_model::{Api, HistoryMessage, Message, Provenance, Request, Role, SessionId};
use verbatim_protocol::assemble::prefix_hash;
use verbatim_store::{
    Append, Appended, ConfigChange, NewSession, SessionStore, StoreError, ToolCallEvent,
};

use super::*;
use crate::EngineError;
use crate::log::Log;

const OTHER_MODEL: &str = "us.anthropic.claude-3-7-sonnet-20250219-v1:0";

/// The messages of the `i`th request the emulator received.
fn sent(rig: &Rig, i: usize) -> Vec<Value> {
    rig.bodies()[i]["messages"].as_array().unwrap().clone()
}

fn texts(history: &[HistoryMessage]) -> Vec<String> {
    history.iter().map(|m| format!("{:?}", m.message.content)).collect()
}

#[tokio::test]
async fn what_another_writer_appends_between_two_turns_is_in_the_next_request() {
    let rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("First").await.unwrap();
    // Another process takes a turn on the session, then switches its model.
    let other = rig.builder().build().unwrap().open(session.id()).await.unwrap();
    other.send("Second").await.unwrap();
    other.set_model(OTHER_MODEL).await.unwrap();

    session.send("Third").await.unwrap();
    let third = sent(&rig, 2);
    assert_eq!(third.len(), 5, "{third:?}");
    assert_eq!(third[..3], sent(&rig, 1)[..], "the other writer's turn is in the request");
    assert_eq!(third[3]["content"], json!([{"text": "Hello! You said: Second"}]));
    assert_eq!(third[4]["content"], json!([{"text": "Third"}]));
    assert_eq!(rig.emulator.received()[2].model_id, OTHER_MODEL, "and its configuration");
    let history = session.history().await.unwrap();
    let roles: Vec<Role> = history.iter().map(|m| m.message.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant].repeat(3));
    assert!(texts(&history)[5].contains("You said: Third"));
    assert_eq!(history[5].provenance.as_ref().unwrap().model_id, OTHER_MODEL);
}

#[tokio::test]
async fn a_rewind_between_two_turns_makes_the_next_read_the_session_whole() {
    let rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("First").await.unwrap();
    session.send("Second").await.unwrap();
    let store = rig.store();
    let version = store.info(session.id()).await.unwrap().version;
    store.rewind(session.id(), version, 2).await.unwrap();

    session.send("Third").await.unwrap();
    let third = sent(&rig, 2);
    assert_eq!(third.len(), 3, "the first turn and the new input: {third:?}");
    assert_eq!(third[..2], sent(&rig, 1)[..2]);
    assert!(!Value::Array(third).to_string().contains("Second"));
    assert_eq!(session.history().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_refused_input_append_stores_neither_input_nor_reply_and_the_next_turn_reads_afresh() {
    let rig = Rig::new(Behaviour::Text).await;
    let store = Arc::new(Racing { inner: rig.store(), armed: AtomicBool::new(false) });
    let engine = rig.builder().store(store.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("First").await.unwrap();

    // Another writer slips a turn in just before the input's append, which the model call
    // runs alongside: the append is refused, and the reply to the request already sent is
    // dropped.
    store.armed.store(true, Ordering::SeqCst);
    let error = session.send("Second").await.unwrap_err();
    assert!(
        matches!(error, EngineError::Conflict { expected: 2, actual: 4, input_stored: false, .. }),
        "{error:?}"
    );
    assert_eq!(rig.statuses(), [200, 200], "the request went out");
    let history = session.history().await.unwrap();
    assert_eq!(history.len(), 4);
    assert!(texts(&history)[2].contains("Slipped in") && texts(&history)[3].contains("Noted"));
    assert!(!texts(&history).concat().contains("Second"));

    // The handle kept nothing from the failed turn: the next one reads the session afresh.
    session.send("Third").await.unwrap();
    let third = sent(&rig, 2);
    assert_eq!(third.len(), 5, "{third:?}");
    assert!(!Value::Array(third.clone()).to_string().contains("Second"));
    assert!(third[2].to_string().contains("Slipped in"));
    assert_eq!(session.history().await.unwrap().len(), 6);
}

#[tokio::test]
async fn a_kept_handle_records_the_prefix_hashes_of_the_requests_as_sent() {
    let rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let kept = engine.create().await.unwrap();
    let fresh = engine.create().await.unwrap();
    for input in ["First", "Second", "Third"] {
        kept.send(input).await.unwrap();
        // A new handle for every turn: the hash computed from scratch.
        engine.open(fresh.id()).await.unwrap().send(input).await.unwrap();
    }
    let hashes = |history: &[HistoryMessage]| -> Vec<String> {
        let assistant = history.iter().filter(|m| m.message.role == Role::Assistant);
        assistant.map(|m| m.provenance.clone().unwrap().prefix_hash.unwrap()).collect()
    };
    let history = kept.history().await.unwrap();
    assert_eq!(hashes(&history), hashes(&fresh.history().await.unwrap()));
    // Each is the hash of the messages before the reply (no system prompt, no tools).
    for (turn, hash) in hashes(&history).iter().enumerate() {
        let upto = 2 * turn + 1;
        let messages = history[..upto].iter().map(|m| m.message.clone()).collect();
        let request = Request { messages, ..Request::default() };
        assert_eq!(*hash, prefix_hash(&request, upto), "turn {turn}");
    }
}

#[tokio::test]
async fn a_log_brought_up_to_date_is_the_log_read_whole() {
    let rig = Rig::new(Behaviour::Text).await;
    let store = rig.store();
    let id = store.create(NewSession::new(MODEL)).await.unwrap().id;
    let call = ToolCallEvent {
        tool_use_id: "tooluse_1".into(),
        name: "get_weather".into(),
        state: ToolCallState::Requested,
    };
    let entries = vec![
        Entry::Message(Message::user_text("Weather?").into()),
        Entry::Config(ConfigChange::Thinking(thinking())),
        Entry::Message(HistoryMessage {
            message: Message::assistant_text("Let me look."),
            provenance: Some(Provenance::new(MODEL, Api::Converse)),
        }),
        Entry::ToolCall(call),
        Entry::Repair { fixes: Vec::new() },
        Entry::Config(ConfigChange::Model(OTHER_MODEL.into())),
    ];
    for entry in entries {
        let version = store.info(id).await.unwrap().version;
        store.append(id, Append::new(version, vec![entry])).await.unwrap();
    }
    let whole = store.load(id).await.unwrap();
    let read = Log::new(&whole);
    assert_eq!((read.version(), read.messages().len(), read.calls().len()), (6, 2, 1));
    assert_eq!(read.config().model, OTHER_MODEL);
    for at in 0..=whole.records.len() {
        let mut start = whole.clone();
        start.info.version = at as u64;
        start.records.truncate(at);
        let mut log = Log::new(&start);
        assert!(log.extend(whole.records[at..].to_vec()), "from {at}");
        assert_eq!(log, read, "from {at}");
    }

    // A rewind is not taken in: the log stays as it was, to be read whole again.
    store.rewind(id, 6, 1).await.unwrap();
    let mut log = read.clone();
    assert!(!log.extend(store.load_range(id, 7, None).await.unwrap()));
    assert_eq!(log, read);
    // Nor are records that do not follow the last one read.
    assert!(!log.extend(whole.records[4..].to_vec()));
    assert_eq!(log, read);
}

/// The rig's store, where another writer can be set to slip a turn in just before the
/// next append.
struct Racing {
    inner: Arc<SledStore>,
    armed: AtomicBool,
}

impl Racing {
    async fn on_append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            let turn = vec![
                Entry::Message(Message::user_text("Slipped in").into()),
                Entry::Message(HistoryMessage {
                    message: Message::assistant_text("Noted"),
                    provenance: Some(Provenance::new(MODEL, Api::Converse)),
                }),
            ];
            self.inner.append(id, Append::new(append.expected_version, turn)).await?;
        }
        self.inner.append(id, append).await
    }
}

wrapping_store!(Racing);

#[tokio::test]
async fn a_kept_handle_sends_the_bodies_a_handle_reading_the_session_afresh_sends() {
    // A tool loop with thinking, plain turns, then a model that cannot read the earlier
    // thinking: the repair that drops it is recorded, and replayed by the turns after.
    let rig = Rig::new(Behaviour::Claude).await;
    let engine =
        rig.builder().thinking(thinking()).tool(Probe::new("get_weather")).build().unwrap();
    let kept = engine.create().await.unwrap();
    let fresh = engine.create().await.unwrap();
    let steps = ["Weather in Paris?", "Thanks.", "And Rome?", "switch", "Once more.", "Bye."];
    for step in steps {
        let before = rig.emulator.received().len();
        if step == "switch" {
            kept.set_model(OTHER_MODEL).await.unwrap();
            fresh.set_model(OTHER_MODEL).await.unwrap();
            continue;
        }
        kept.send(step).await.unwrap();
        let between = rig.emulator.received().len();
        engine.open(fresh.id()).await.unwrap().send(step).await.unwrap();
        let received = rig.emulator.received();
        let (by_kept, afresh) = (&received[before..between], &received[between..]);
        assert_eq!(by_kept.len(), afresh.len(), "{step}");
        for (sent, expected) in by_kept.iter().zip(afresh) {
            assert_eq!(
                String::from_utf8_lossy(&sent.body),
                String::from_utf8_lossy(&expected.body),
                "{step}"
            );
        }
    }
    let history = kept.load().await.unwrap();
    assert!(history.records.iter().any(|r| matches!(r.entry, Entry::Repair { .. })));
    assert_eq!(kept.history().await.unwrap().len(), fresh.history().await.unwrap().len());
}
