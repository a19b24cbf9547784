//! What a session handle keeps between turns: the log, brought up to date with what others
//! appended since, and read whole again after a rewind.

use verbatim_emulator::Behaviour;
use verbatim_model::{Api, HistoryMessage, Message, Provenance, Role};
use verbatim_store::{Append, ConfigChange, NewSession, SessionStore as _, ToolCallEvent};

use super::*;
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
    assert_eq!((read.version, read.messages.len(), read.calls.len()), (6, 2, 1));
    assert_eq!(read.config.model, OTHER_MODEL);
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
