//! The chat loop on a store whose appends fail: the turn reports it, the session is read
//! again, no request carries input that was not stored, and a store that keeps failing stops
//! the chat with a message to reopen it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use verbatim_store::{
    Append, Appended, ListQuery, MemoryStore, NewSession, Page, Record, Rewound, SessionInfo,
    StoreError,
};
use verbatim_transport::{MessagesHost, RetryConfig};

use super::*;

/// A store in memory whose appends fail, as on a full disk, while `failing` is set.
#[derive(Default)]
struct Failing {
    inner: MemoryStore,
    failing: AtomicBool,
}

#[async_trait]
impl SessionStore for Failing {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        self.inner.create(new).await
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::backend(std::io::Error::from_raw_os_error(28)));
        }
        self.inner.append(id, append).await
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        self.inner.info(id).await
    }

    async fn load(&self, id: SessionId) -> Result<verbatim_store::Session, StoreError> {
        self.inner.load(id).await
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.load_range(id, from, to).await
    }

    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        self.inner.tail(id, n).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(query).await
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        self.inner.fork(id, at).await
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        self.inner.rewind(id, expected_version, to).await
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }

    async fn put(&self, session: verbatim_store::Session) -> Result<SessionInfo, StoreError> {
        self.inner.put(session).await
    }

    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<verbatim_store::Lease, StoreError> {
        self.inner.acquire_lease(id, owner, ttl).await
    }

    async fn renew_lease(
        &self,
        lease: &verbatim_store::Lease,
        ttl: std::time::Duration,
    ) -> Result<verbatim_store::Lease, StoreError> {
        self.inner.renew_lease(lease, ttl).await
    }

    async fn release_lease(&self, lease: &verbatim_store::Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }
}

/// The user texts of each request the emulator received.
fn requests(emulator: &Emulator) -> Vec<Vec<String>> {
    let user_texts = |body: &[u8]| {
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        let messages = body["messages"].as_array().unwrap().clone();
        messages
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| m["content"][0]["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    emulator.received().iter().map(|r| user_texts(&r.body)).collect()
}

#[tokio::test]
async fn after_a_store_failure_the_chat_sends_only_stored_history_and_stops_when_it_keeps_failing()
{
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let config = HttpConfig::new("us-west-2", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(emulator.url())
        .with_retry(RetryConfig::disabled());
    let store = Arc::new(Failing::default());
    let engine = Engine::builder()
        .store(store.clone())
        .transport(Arc::new(HttpTransport::new(config).unwrap()))
        .model(DEFAULT_MODEL)
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    let id = session.id();

    // What the user types; `!fail` and `!heal` (not sent) make the store's appends fail or
    // succeed from there on.
    let script = [
        "First", "!fail", "Second", "Third", "!heal", "Fourth", "!fail", "Fifth", "Sixth",
        "Seventh", "Eighth",
    ];
    let read = Mutex::new(Vec::new());
    let lines = script.iter().filter_map(|line| {
        read.lock().unwrap().push(*line);
        match *line {
            "!fail" => store.failing.store(true, Ordering::SeqCst),
            "!heal" => store.failing.store(false, Ordering::SeqCst),
            _ => return Some(Ok(line.to_string())),
        }
        None
    });
    let chat = Chat {
        peer: Peer::Emulator,
        api: Api::Converse,
        store_option: " --data 'my data'".into(),
        verbose: false,
        model: DEFAULT_MODEL.to_owned(),
    };
    let error = converse(
        Current {
            engine: &engine,
            session: Some(session),
            json: false,
            attached: Default::default(),
            caching: None,
        },
        &*store,
        &chat,
        lines,
    )
    .await
    .unwrap_err();
    assert!(error.contains("the store failed 3 turns in a row"), "{error}");
    assert!(error.contains(&format!("verbatim chat --session {id} --data 'my data'")), "{error}");
    assert_eq!(read.lock().unwrap().last(), Some(&"Seventh"), "nothing is read after the third");

    // "Second" went out with its append under way; "Third" was not sent: the store still
    // failed. "Fourth" carried the stored history and nothing of the turns not stored.
    // "Fifth" went out with its append under way; "Sixth" and "Seventh" were not sent.
    let first = || vec!["First".to_owned()];
    let sent = requests(&emulator);
    assert_eq!(
        sent,
        [first(), vec!["First".into(), "Second".into()], vec!["First".into(), "Fourth".into()], {
            let mut fifth = first();
            fifth.extend(["Fourth".into(), "Fifth".into()]);
            fifth
        }]
    );
    let stored = store.load(id).await.unwrap().messages();
    let texts: Vec<String> =
        stored.iter().filter(|m| m.message.role == Role::User).map(|m| m.message.text()).collect();
    assert_eq!(texts, ["First", "Fourth"]);
    assert_eq!(stored.len(), 4, "each stored input with its reply");
}

/// The chat names the endpoint it talks to when a variable points elsewhere than Bedrock, and
/// the Messages API's host.
#[test]
fn the_chat_says_the_endpoint_it_talks_to() {
    let config = HttpConfig::new("eu-west-3", Auth::api_key(Secret::new("k")));
    assert_eq!(talking_to(&config, Api::Converse), "Talking to Amazon Bedrock in eu-west-3.");
    let local = config.clone().with_endpoint_url("http://127.0.0.1:8787");
    assert_eq!(
        talking_to(&local, Api::Converse),
        "Talking to http://127.0.0.1:8787, region eu-west-3."
    );
    let mantle = config.with_messages_host(MessagesHost::Mantle);
    assert_eq!(
        talking_to(&mantle, Api::Messages),
        "Talking to Amazon Bedrock in eu-west-3 (the Messages API on bedrock-mantle)."
    );
}
