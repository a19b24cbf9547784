//! Engine tests: each runs the engine on a sled store in a temporary directory against the
//! emulator on 127.0.0.1:0, through the HTTP transport.

/// `SessionStore` for a test store wrapping another (in its field `inner`): `append` goes to
/// the wrapper's own `on_append`, every other method to `inner` as it is.
macro_rules! wrapping_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl verbatim_store::SessionStore for $store {
            async fn append(
                &self,
                id: verbatim_model::SessionId,
                append: verbatim_store::Append,
            ) -> Result<verbatim_store::Appended, verbatim_store::StoreError> {
                self.on_append(id, append).await
            }

            async fn create(
                &self,
                new: verbatim_store::NewSession,
            ) -> Result<verbatim_store::SessionInfo, verbatim_store::StoreError> {
                self.inner.create(new).await
            }

            async fn info(
                &self,
                id: verbatim_model::SessionId,
            ) -> Result<verbatim_store::SessionInfo, verbatim_store::StoreError> {
                self.inner.info(id).await
            }

            async fn load(
                &self,
                id: verbatim_model::SessionId,
            ) -> Result<verbatim_store::Session, verbatim_store::StoreError> {
                self.inner.load(id).await
            }

            async fn load_range(
                &self,
                id: verbatim_model::SessionId,
                from: u64,
                to: Option<u64>,
            ) -> Result<Vec<verbatim_store::Record>, verbatim_store::StoreError> {
                self.inner.load_range(id, from, to).await
            }

            async fn tail(
                &self,
                id: verbatim_model::SessionId,
                n: usize,
            ) -> Result<Vec<verbatim_store::Record>, verbatim_store::StoreError> {
                self.inner.tail(id, n).await
            }

            async fn list(
                &self,
                query: &verbatim_store::ListQuery,
            ) -> Result<verbatim_store::Page, verbatim_store::StoreError> {
                self.inner.list(query).await
            }

            async fn fork(
                &self,
                id: verbatim_model::SessionId,
                at: u64,
            ) -> Result<verbatim_store::SessionInfo, verbatim_store::StoreError> {
                self.inner.fork(id, at).await
            }

            async fn rewind(
                &self,
                id: verbatim_model::SessionId,
                expected_version: u64,
                to: u64,
            ) -> Result<verbatim_store::Rewound, verbatim_store::StoreError> {
                self.inner.rewind(id, expected_version, to).await
            }

            async fn delete(
                &self,
                id: verbatim_model::SessionId,
            ) -> Result<(), verbatim_store::StoreError> {
                self.inner.delete(id).await
            }

            async fn put(
                &self,
                session: verbatim_store::Session,
            ) -> Result<verbatim_store::SessionInfo, verbatim_store::StoreError> {
                self.inner.put(session).await
            }

            async fn acquire_lease(
                &self,
                id: verbatim_model::SessionId,
                owner: &str,
                ttl: std::time::Duration,
            ) -> Result<verbatim_store::Lease, verbatim_store::StoreError> {
                self.inner.acquire_lease(id, owner, ttl).await
            }

            async fn renew_lease(
                &self,
                lease: &verbatim_store::Lease,
                ttl: std::time::Duration,
            ) -> Result<verbatim_store::Lease, verbatim_store::StoreError> {
                self.inner.renew_lease(lease, ttl).await
            }

            async fn release_lease(
                &self,
                lease: &verbatim_store::Lease,
            ) -> Result<(), verbatim_store::StoreError> {
                self.inner.release_lease(lease).await
            }
        }
    };
}

mod caching;
mod kept;
mod lease;
mod model_ids;
mod recorded;
mod review;
mod scenarios;
mod settings;
mod store_failure;
mod turns;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};
use verbatim_emulator::{
    Behaviour, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig, Script,
};
pub(crate) use verbatim_model::{Api, ThinkingConfig, ThinkingMode};
use verbatim_store::{Entry, SledStore, ToolCallState};
use verbatim_transport::{Auth, HttpConfig, HttpTransport, RetryConfig};

pub(crate) use crate::{Engine, EngineBuilder, Session, Tool, ToolError, ToolOutput};

/// A Claude model id with thinking and tools (the emulator answers for any id).
pub(crate) const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

/// An emulator, a sled store in a temporary directory, and an HTTP transport between them.
pub(crate) struct Rig {
    pub(crate) emulator: Emulator,
    pub(crate) dir: tempfile::TempDir,
    store: Option<Arc<SledStore>>,
    pub(crate) transport: Arc<HttpTransport>,
}

impl Rig {
    pub(crate) async fn new(behaviour: Behaviour) -> Rig {
        let script = Script { behaviour, ..Script::default() };
        let emulator =
            Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }).await.unwrap();
        let auth = Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None);
        let transport = HttpTransport::new(
            HttpConfig::new("us-west-2", auth)
                .with_endpoint_url(emulator.url())
                .with_retry(RetryConfig::disabled()),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        Rig { emulator, dir, store: Some(store), transport: Arc::new(transport) }
    }

    /// The store.
    pub(crate) fn store(&self) -> Arc<SledStore> {
        self.store.clone().expect("open")
    }

    /// A builder on this rig's store and transport, for `MODEL`.
    pub(crate) fn builder(&self) -> EngineBuilder {
        Engine::builder()
            .store(self.store())
            .transport(self.transport.clone())
            .model(MODEL)
            .region("us-west-2")
    }

    /// Closes the store and opens it again, as a restarted process would. Every engine on it
    /// must be dropped first (a turn dropped mid-way may still be giving its lease up: that
    /// is waited for, up to a second).
    pub(crate) async fn restart(&mut self) {
        let mut old = self.store.take().expect("open");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        let store = loop {
            match Arc::try_unwrap(old) {
                Ok(store) => break store,
                Err(shared) if tokio::time::Instant::now() < deadline => {
                    old = shared;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(_) => panic!("every engine on the store is dropped"),
            }
        };
        drop(store);
        self.store = Some(Arc::new(SledStore::open(self.dir.path()).unwrap()));
    }

    /// The status of every request the emulator received.
    pub(crate) fn statuses(&self) -> Vec<u16> {
        self.emulator.received().iter().map(|r| r.status).collect()
    }

    /// The JSON bodies the emulator received, in order.
    pub(crate) fn bodies(&self) -> Vec<Value> {
        self.emulator.received().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
    }
}

pub(crate) fn thinking() -> Option<ThinkingConfig> {
    Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 1024 }))
}

pub(crate) fn api_name(api: Api) -> &'static str {
    api.as_str()
}

/// A tool that counts its calls, says when it starts, and can be held until released.
pub(crate) struct Probe {
    name: String,
    idempotent: bool,
    pub(crate) calls: AtomicUsize,
    pub(crate) started: Notify,
    pub(crate) gate: Semaphore,
}

impl Probe {
    /// A tool that answers at once.
    pub(crate) fn new(name: &str) -> Arc<Probe> {
        Arc::new(Probe::unshared(name, Semaphore::MAX_PERMITS))
    }

    /// A tool declared idempotent that answers at once.
    pub(crate) fn idempotent(name: &str) -> Arc<Probe> {
        Arc::new(Probe { idempotent: true, ..Probe::unshared(name, Semaphore::MAX_PERMITS) })
    }

    /// A tool that waits, once started, until its gate gets a permit.
    pub(crate) fn held(name: &str, idempotent: bool) -> Arc<Probe> {
        Arc::new(Probe { idempotent, ..Probe::unshared(name, 0) })
    }

    fn unshared(name: &str, permits: usize) -> Probe {
        Probe {
            name: name.to_owned(),
            idempotent: false,
            calls: AtomicUsize::new(0),
            started: Notify::new(),
            gate: Semaphore::new(permits),
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Tool for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "Looks something up"
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}})
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }

    async fn call(&self, input: Value) -> Result<ToolOutput, ToolError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        let _permit = self.gate.acquire().await.map_err(|e| ToolError::new(e.to_string()))?;
        Ok(ToolOutput::Text(format!("{} for {}: sunny", self.name, input["city"])))
    }
}

/// Runs `send` on a task until `probe` starts, then cancels it there, as a crash would
/// stop a process: nothing after that point is written.
pub(crate) async fn crash_while_running(session: &Session, input: &str, probe: &Probe) {
    let task = {
        let session = session.clone();
        let input = input.to_owned();
        tokio::spawn(async move { session.send(input).await })
    };
    probe.started.notified().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
}

/// The lifecycle states recorded for tool calls, in order, by tool name.
pub(crate) async fn lifecycle(session: &Session) -> Vec<(String, &'static str)> {
    let name = |state: &ToolCallState| match state {
        ToolCallState::Requested => "requested",
        ToolCallState::Started => "started",
        ToolCallState::Completed { .. } => "completed",
        ToolCallState::Failed { .. } => "failed",
        ToolCallState::Unknown => "unknown",
    };
    session
        .load()
        .await
        .unwrap()
        .records
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::ToolCall(event) => Some((event.name.clone(), name(&event.state))),
            _ => None,
        })
        .collect()
}
