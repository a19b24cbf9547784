//! Two engines on one store (two instances of an app on a shared store, here in one process):
//! a turn holds its session's lease, so the other engine's turn waits for it or is told the
//! session is busy, and every tool call runs once; an engine that stalls past its lease's
//! expiry is taken over and stores nothing more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use verbatim_emulator::Behaviour;
use verbatim_model::Role;
use verbatim_store::{Append, Appended, Lease, MemoryStore, SessionStore, StoreError};

use super::{MODEL, Probe, Rig, lifecycle};
use crate::{EngineError, Settled};

/// A builder on `store` and the rig's transport.
fn builder(rig: &Rig, store: Arc<dyn SessionStore>) -> crate::EngineBuilder {
    crate::Engine::builder().store(store).transport(rig.transport.clone()).model(MODEL)
}

/// Two engines send on one session at once, each with a tool that counts its runs: one turn
/// runs, the other waits for its lease and then runs; every call runs once.
async fn two_engines_sending_at_once_take_turns(store: Arc<dyn SessionStore>) {
    let rig = Rig::new(Behaviour::Claude).await;
    let (probe_a, probe_b) = (Probe::new("get_weather"), Probe::new("get_weather"));
    let a = builder(&rig, store.clone()).tool(probe_a.clone()).lease_owner("a").build().unwrap();
    let b = builder(&rig, store.clone()).tool(probe_b.clone()).lease_owner("b").build().unwrap();
    let session = a.create().await.unwrap();
    let other = b.open(session.id()).await.unwrap();
    let (ra, rb) = tokio::join!(session.send("Weather in Lyon?"), other.send("Weather in Oslo?"));
    assert!(ra.unwrap().complete && rb.unwrap().complete);
    let history = session.history().await.unwrap();
    let roles: Vec<Role> = history.iter().map(|m| m.message.role).collect();
    use Role::{Assistant as A, User as U};
    assert_eq!(roles, [U, A, U, A, U, A, U, A], "two whole turns, one after the other");
    assert_eq!(probe_a.calls() + probe_b.calls(), 2, "each turn's call ran once");
    let states = lifecycle(&session).await;
    let count = |state| states.iter().filter(|(_, s)| *s == state).count();
    assert_eq!((count("requested"), count("started"), count("completed")), (2, 2, 2));
    assert_eq!(count("unknown"), 0, "no call was settled as interrupted");
}

#[tokio::test]
async fn two_engines_sending_at_once_on_memory_take_turns_and_each_call_runs_once() {
    two_engines_sending_at_once_take_turns(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn two_engines_sending_at_once_on_sled_take_turns_and_each_call_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    two_engines_sending_at_once_take_turns(Arc::new(
        verbatim_store::SledStore::open(dir.path()).unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn a_turn_meeting_another_engines_lease_waits_its_bound_then_is_busy() {
    let rig = Rig::new(Behaviour::Claude).await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let held = Probe::held("get_weather", false);
    let first = builder(&rig, store.clone()).tool(held.clone()).lease_owner("first").build();
    let first = first.unwrap();
    let second = builder(&rig, store.clone())
        .tool(Probe::new("get_weather"))
        .lease_owner("second")
        .configure(|d| d.lease_wait = Duration::from_millis(300))
        .build()
        .unwrap();
    let session = first.create().await.unwrap();
    let running = tokio::spawn({
        let session = session.clone();
        async move { session.send("Weather?").await }
    });
    held.started.notified().await;
    let version = store.info(session.id()).await.unwrap().version;
    let other = second.open(session.id()).await.unwrap();
    let started = tokio::time::Instant::now();
    let busy = other.send("Still there?").await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited its bound");
    assert!(
        matches!(&busy, EngineError::Busy { id, holder: Some(holder), .. } if *id == session.id() && holder == "first"),
        "{busy:?}"
    );
    let text = busy.to_string();
    assert!(text.contains(&session.id().to_string()) && text.contains("first"), "{text}");
    assert_eq!(store.info(session.id()).await.unwrap().version, version, "nothing written");
    // The first turn ends and gives the lease up: the second goes on at once.
    held.gate.add_permits(1);
    assert!(running.await.unwrap().unwrap().complete);
    assert!(other.send("Still there?").await.unwrap().complete);
    assert_eq!(held.calls(), 1);
}

/// A store whose lease renewals fail while `cut` is set, as for an instance cut off from a
/// shared store (or stalled) while its tool runs.
struct Cut {
    inner: MemoryStore,
    cut: AtomicBool,
}

#[async_trait::async_trait]
impl SessionStore for Cut {
    async fn create(
        &self,
        new: verbatim_store::NewSession,
    ) -> Result<verbatim_store::SessionInfo, StoreError> {
        self.inner.create(new).await
    }
    async fn append(
        &self,
        id: verbatim_model::SessionId,
        append: Append,
    ) -> Result<Appended, StoreError> {
        self.inner.append(id, append).await
    }
    async fn info(
        &self,
        id: verbatim_model::SessionId,
    ) -> Result<verbatim_store::SessionInfo, StoreError> {
        self.inner.info(id).await
    }
    async fn load(
        &self,
        id: verbatim_model::SessionId,
    ) -> Result<verbatim_store::Session, StoreError> {
        self.inner.load(id).await
    }
    async fn load_range(
        &self,
        id: verbatim_model::SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<verbatim_store::Record>, StoreError> {
        self.inner.load_range(id, from, to).await
    }
    async fn tail(
        &self,
        id: verbatim_model::SessionId,
        n: usize,
    ) -> Result<Vec<verbatim_store::Record>, StoreError> {
        self.inner.tail(id, n).await
    }
    async fn list(
        &self,
        query: &verbatim_store::ListQuery,
    ) -> Result<verbatim_store::Page, StoreError> {
        self.inner.list(query).await
    }
    async fn fork(
        &self,
        id: verbatim_model::SessionId,
        at: u64,
    ) -> Result<verbatim_store::SessionInfo, StoreError> {
        self.inner.fork(id, at).await
    }
    async fn rewind(
        &self,
        id: verbatim_model::SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<verbatim_store::Rewound, StoreError> {
        self.inner.rewind(id, expected_version, to).await
    }
    async fn delete(&self, id: verbatim_model::SessionId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn put(
        &self,
        session: verbatim_store::Session,
    ) -> Result<verbatim_store::SessionInfo, StoreError> {
        self.inner.put(session).await
    }
    async fn acquire_lease(
        &self,
        id: verbatim_model::SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.inner.acquire_lease(id, owner, ttl).await
    }
    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(StoreError::backend_detail("cut off"));
        }
        self.inner.renew_lease(lease, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }
}

#[tokio::test]
async fn a_turn_whose_lease_was_taken_over_stores_nothing_more_and_its_call_runs_once() {
    let rig = Rig::new(Behaviour::Claude).await;
    let store = Arc::new(Cut { inner: MemoryStore::new(), cut: AtomicBool::new(false) });
    let short = |d: &mut crate::Defaults| {
        d.lease_ttl = Duration::from_millis(300);
        d.lease_wait = Duration::from_secs(5);
    };
    let held = Probe::held("get_weather", false);
    let first = builder(&rig, store.clone()).tool(held.clone()).lease_owner("first");
    let first = first.configure(short).build().unwrap();
    let fresh = Probe::new("get_weather");
    let second = builder(&rig, store.clone()).tool(fresh.clone()).lease_owner("second");
    let second = second.configure(short).build().unwrap();
    let session = first.create().await.unwrap();
    let running = tokio::spawn({
        let session = session.clone();
        async move { session.send("Weather?").await }
    });
    held.started.notified().await;
    // The first instance is cut off while its tool runs: its lease expires, and the second
    // takes the session over, settling the call it finds started as interrupted.
    store.cut.store(true, Ordering::SeqCst);
    let other = second.open(session.id()).await.unwrap();
    let mut settled = Vec::new();
    let reply = other
        .send_with("Still there?", |event| {
            if let crate::Event::ToolResult { settled: how, .. } = event {
                settled.push(how);
            }
        })
        .await
        .unwrap();
    assert!(reply.complete);
    assert_eq!(settled, [Settled::Interrupted], "not run again: the tool is not idempotent");
    let version = store.info(session.id()).await.unwrap().version;
    // The first's tool finishes: its result is refused by the fencing token.
    held.gate.add_permits(1);
    let error = running.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, EngineError::LeaseLost { id, .. } if *id == session.id()),
        "{error:?}"
    );
    assert_eq!(store.info(session.id()).await.unwrap().version, version, "nothing more stored");
    assert_eq!((held.calls(), fresh.calls()), (1, 0), "the call ran once");
    let states = lifecycle(&session).await;
    assert!(!states.iter().any(|(_, s)| *s == "completed"), "{states:?}");
}
