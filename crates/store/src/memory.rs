//! An in-memory store: the reference the conformance suite checks backends against, and a
//! store for tests and short-lived programs. Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use verbatim_model::SessionId;

use crate::lease::LeaseState;
use crate::store::{
    archive_info, check_fork, check_numbering, check_rewind, listing_order, new_info, now, page,
};
use crate::{
    Append, Appended, Clock, Entry, Lease, ListQuery, NewSession, Origin, Page, Record, Rewound,
    Session, SessionInfo, SessionStore, StoreError, SystemClock,
};

#[derive(Debug, Clone)]
struct Stored {
    session: Session,
    keys: HashMap<String, Appended>,
    lease: LeaseState,
}

impl Stored {
    fn new(session: Session) -> Stored {
        Stored { session, keys: HashMap::new(), lease: LeaseState::default() }
    }
}

/// Sessions in a map behind a mutex.
#[derive(Debug)]
pub struct MemoryStore {
    sessions: Mutex<BTreeMap<SessionId, Stored>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore { sessions: Mutex::default(), clock: Arc::new(SystemClock) }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The same store, reading the time of its leases from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> MemoryStore {
        self.clock = clock;
        self
    }

    fn leased<T>(
        &self,
        id: SessionId,
        f: impl FnOnce(&mut LeaseState, chrono::DateTime<chrono::Utc>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = self.clock.now();
        self.with(|sessions| {
            let stored = sessions.get_mut(&id).ok_or(StoreError::NotFound(id))?;
            f(&mut stored.lease, now)
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<SessionId, Stored>) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut sessions)
    }
}

fn get(sessions: &BTreeMap<SessionId, Stored>, id: SessionId) -> Result<&Stored, StoreError> {
    sessions.get(&id).ok_or(StoreError::NotFound(id))
}

/// Appends `entries` to `stored`, numbering them after its last record.
fn push(stored: &mut Stored, entries: Vec<Entry>) -> Appended {
    let now = now();
    let first_seq = stored.session.info.version + 1;
    for entry in entries {
        let seq = stored.session.info.version + 1;
        stored.session.records.push(Record { seq, at: now, entry });
        stored.session.info.version = seq;
    }
    stored.session.info.updated_at = now;
    Appended { first_seq, version: stored.session.info.version }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        let info = new_info(new, None)?;
        self.with(|sessions| {
            let session = Session { info: info.clone(), records: Vec::new() };
            sessions.insert(info.id, Stored::new(session));
        });
        Ok(info)
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        self.with(|sessions| {
            let stored = sessions.get_mut(&id).ok_or(StoreError::NotFound(id))?;
            if let Some(done) = append.idempotency_key.as_ref().and_then(|k| stored.keys.get(k)) {
                return Ok(*done);
            }
            stored.lease.check(id, append.fencing_token)?;
            let actual = stored.session.info.version;
            if actual != append.expected_version {
                return Err(StoreError::Conflict { id, expected: append.expected_version, actual });
            }
            if append.entries.is_empty() {
                return Err(StoreError::Invalid("an append needs at least one entry".into()));
            }
            let done = push(stored, append.entries);
            if let Some(key) = append.idempotency_key {
                stored.keys.insert(key, done);
            }
            Ok(done)
        })
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        self.with(|sessions| Ok(get(sessions, id)?.session.info.clone()))
    }

    async fn load(&self, id: SessionId) -> Result<Session, StoreError> {
        self.with(|sessions| Ok(get(sessions, id)?.session.clone()))
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|sessions| {
            let records = &get(sessions, id)?.session.records;
            let to = to.unwrap_or(u64::MAX);
            Ok(records.iter().filter(|r| r.seq >= from && r.seq <= to).cloned().collect())
        })
    }

    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        self.with(|sessions| {
            let records = &get(sessions, id)?.session.records;
            Ok(records[records.len().saturating_sub(n)..].to_vec())
        })
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let mut all: Vec<SessionInfo> =
            self.with(|sessions| sessions.values().map(|s| s.session.info.clone()).collect());
        all.sort_by(listing_order);
        Ok(page(all.into_iter(), query))
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        self.with(|sessions| {
            let source = &get(sessions, id)?.session;
            check_fork(&source.info, at)?;
            let mut info =
                new_info(source.info.start.clone(), Some(Origin::Fork { from: id, at }))?;
            let records: Vec<Record> = source.records[..at as usize].to_vec();
            info.version = at;
            let mut stored = Stored::new(Session { info, records });
            push(&mut stored, vec![Entry::Forked { from: id, through: at }]);
            let info = stored.session.info.clone();
            sessions.insert(info.id, stored);
            Ok(info)
        })
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        self.with(|sessions| {
            let source = &get(sessions, id)?.session;
            check_rewind(&source.info, expected_version, to)?;
            let archive = archive_info(&source.info)?;
            let records = source.records.clone();
            let archived = Stored::new(Session { info: archive.clone(), records });
            sessions.insert(archive.id, archived);
            let stored = sessions.get_mut(&id).expect("read above");
            push(stored, vec![Entry::Rewind { to, archive: archive.id }]);
            Ok(Rewound { info: stored.session.info.clone(), archive })
        })
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.with(|sessions| sessions.remove(&id).map(drop).ok_or(StoreError::NotFound(id)))
    }

    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        check_numbering(&session)?;
        self.with(|sessions| {
            let id = session.info.id;
            if sessions.contains_key(&id) {
                return Err(StoreError::AlreadyExists(id));
            }
            let info = session.info.clone();
            sessions.insert(id, Stored::new(session));
            Ok(info)
        })
    }

    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.leased(id, |lease, now| lease.acquire(id, owner, ttl, now))
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        self.leased(lease.session, |state, now| state.renew(lease, ttl, now))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.leased(lease.session, |state, _| state.release(lease))
    }
}
