//! A store that fails: a turn whose input is not stored keeps no reply and makes no further
//! model call while appends keep failing, and the next turn sends only what is stored; a
//! configuration change is appended again when another writer got in first.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use verbatim_emulator::Behaviour;
use verbatim_model::{HistoryMessage, Role, SessionId};
use verbatim_store::{Append, Appended, ConfigChange, SessionStore, StoreError};

use super::*;
use crate::{CONFIGURE_ATTEMPTS, EngineError, Settled};

const OTHER_MODEL: &str = "us.anthropic.claude-3-7-sonnet-20250219-v1:0";
const WRITERS_MODEL: &str = "us.anthropic.claude-opus-4-20250514-v1:0";

/// The rig's store, with faults set on demand: appends that fail as a full disk makes them
/// fail, after a number of appends that still succeed; and another writer that appends a
/// model change just before each of the next appends.
struct Faulty {
    inner: Arc<SledStore>,
    failing: AtomicBool,
    /// Appends that succeed before `failing` takes effect.
    fail_after: AtomicUsize,
    /// Appends before which the other writer appends first.
    slips: AtomicUsize,
    /// Every append asked of this store, failed or not.
    appends: AtomicUsize,
}

impl Faulty {
    fn new(inner: Arc<SledStore>) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner,
            failing: AtomicBool::new(false),
            fail_after: AtomicUsize::new(0),
            slips: AtomicUsize::new(0),
            appends: AtomicUsize::new(0),
        })
    }

    /// Appends fail from now on (`true`), or succeed again.
    fn fail(&self, failing: bool) {
        self.fail_after(0, failing);
    }

    /// Appends fail after `n` more succeed (`true`).
    fn fail_after(&self, n: usize, failing: bool) {
        self.fail_after.store(n, Ordering::SeqCst);
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }
}

impl Faulty {
    async fn on_append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        let counted =
            self.fail_after.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if self.failing.load(Ordering::SeqCst) && counted.is_err() {
            return Err(StoreError::backend(std::io::Error::from_raw_os_error(28)));
        }
        let slip =
            self.slips.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if slip.is_ok() {
            let change = vec![Entry::Config(ConfigChange::Model(WRITERS_MODEL.into()))];
            let version = self.inner.info(id).await?.version;
            self.inner.append(id, Append::new(version, change)).await?;
        }
        self.inner.append(id, append).await
    }
}

wrapping_store!(Faulty);

/// The texts of the messages of the `i`th request the emulator received.
fn sent_texts(rig: &Rig, i: usize) -> Vec<String> {
    let body = &rig.bodies()[i];
    let messages = body["messages"].as_array().unwrap();
    messages.iter().map(|m| m["content"][0]["text"].as_str().unwrap_or("").to_owned()).collect()
}

fn texts(history: &[HistoryMessage]) -> Vec<String> {
    history.iter().map(|m| m.message.text()).collect()
}

#[tokio::test]
async fn a_turn_whose_input_is_not_stored_keeps_no_reply_and_calls_the_model_no_more_until_appends_succeed()
 {
    let rig = Rig::new(Behaviour::Text).await;
    let store = Faulty::new(rig.store());
    let engine = rig.builder().store(store.clone()).build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("First").await.unwrap();
    let stored = texts(&session.history().await.unwrap());
    assert_eq!(stored, ["First", "Hello! You said: First"]);

    // The disk fills up. The request goes out while its input is appended (the append
    // fails): the reply is discarded and nothing else is appended.
    store.fail(true);
    let appends = store.appends();
    let error = session.send("Second").await.unwrap_err();
    let EngineError::NotStored { input: true, source: StoreError::Backend { .. } } = &error else {
        panic!("{error:?}")
    };
    assert!(error.to_string().contains("the turn's input was not stored"), "{error}");
    assert!(std::error::Error::source(&error).is_some(), "the store's error is kept");
    assert_eq!(store.appends(), appends + 1, "only the input's append was tried");
    assert_eq!(rig.statuses(), [200, 200], "the call was under way when the append failed");
    assert_eq!(texts(&session.history().await.unwrap()), stored);

    // While appends keep failing, the input is stored before the call: no call is made.
    for input in ["Third", "Fourth"] {
        let error = session.send(input).await.unwrap_err();
        assert!(matches!(error, EngineError::NotStored { input: true, .. }), "{error:?}");
    }
    assert_eq!(rig.statuses(), [200, 200], "no model call while appends fail");
    assert_eq!(store.appends(), appends + 3);

    // Space is freed. The next request holds what is stored and the new input, nothing the
    // handle held from the failed turns.
    store.fail(false);
    let reply = session.send("Fifth").await.unwrap();
    assert_eq!(reply.text(), "Hello! You said: Fifth");
    assert_eq!(sent_texts(&rig, 2), ["First", "Hello! You said: First", "Fifth"]);
    let history = texts(&session.history().await.unwrap());
    assert_eq!(history, ["First", "Hello! You said: First", "Fifth", "Hello! You said: Fifth"]);

    // Once an append succeeded, the call runs alongside the input's append again: a
    // failure costs the one call under way.
    store.fail(true);
    let error = session.send("Sixth").await.unwrap_err();
    assert!(matches!(error, EngineError::NotStored { input: true, .. }), "{error:?}");
    assert_eq!(rig.statuses(), [200; 4]);
    assert_eq!(texts(&session.history().await.unwrap()), history);
}

#[tokio::test]
async fn tool_results_not_stored_keep_no_reply_and_resume_settles_the_calls_from_the_log() {
    let rig = Rig::new(Behaviour::Steps(1)).await;
    let store = Faulty::new(rig.store());
    let weather = Probe::new("get_weather");
    let engine = rig.builder().store(store.clone()).tool(weather.clone()).build().unwrap();
    let session = engine.create().await.unwrap();

    // The input, the assistant message with its call, the call's start and its completion
    // are stored; the append of the results (with the second call) fails.
    store.fail_after(4, true);
    let error = session.send("Weather in Lyon?").await.unwrap_err();
    assert!(matches!(error, EngineError::NotStored { input: false, .. }), "{error:?}");
    assert!(error.to_string().contains("the tool results were not stored"), "{error}");
    assert_eq!(rig.statuses(), [200, 200]);
    let roles: Vec<Role> =
        session.history().await.unwrap().iter().map(|m| m.message.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant], "the second reply was discarded");

    store.fail(false);
    let mut settled = Vec::new();
    let reply = session
        .resume_with(|event| {
            if let crate::Event::ToolResult { settled: how, .. } = event {
                settled.push(how);
            }
        })
        .await
        .unwrap()
        .unwrap();
    assert!(reply.complete);
    assert_eq!(settled, [Settled::FromLog], "the completed call is not run again");
    assert_eq!(weather.calls(), 1);
    assert_eq!(session.history().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_configuration_change_is_appended_again_when_another_writer_got_in_first() {
    let rig = Rig::new(Behaviour::Text).await;
    let store = Faulty::new(rig.store());
    let engine = rig.builder().store(store.clone()).build().unwrap();
    let session = engine.create().await.unwrap();

    // The other writer appends before each of this one's first two tries.
    store.slips.store(2, Ordering::SeqCst);
    session.set_thinking(thinking()).await.unwrap();
    let stored = session.load().await.unwrap();
    assert_eq!(stored.config().thinking, thinking());
    assert_eq!(stored.config().model, WRITERS_MODEL, "the other writer's change stays");
    let changes = stored.records.iter().filter(|r| matches!(r.entry, Entry::Config(_))).count();
    assert_eq!(changes, 3, "two of the other writer's, one of this one's");

    // Then before every try, more than it makes: a conflict, after CONFIGURE_ATTEMPTS tries.
    let appends = store.appends();
    store.slips.store(CONFIGURE_ATTEMPTS as usize + 1, Ordering::SeqCst);
    let error = session.set_model(OTHER_MODEL).await.unwrap_err();
    assert!(matches!(error, EngineError::Conflict { input_stored: false, .. }), "{error:?}");
    assert_eq!(store.appends() - appends, CONFIGURE_ATTEMPTS as usize);
    assert_eq!(session.load().await.unwrap().config().model, WRITERS_MODEL);

    // With the other writer quiet again, the change goes in first time.
    store.slips.store(0, Ordering::SeqCst);
    session.set_model(OTHER_MODEL).await.unwrap();
    assert_eq!(session.load().await.unwrap().config().model, OTHER_MODEL);
}
