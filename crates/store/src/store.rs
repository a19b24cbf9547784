//! The `SessionStore` trait every backend implements, and the values it takes and gives.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use verbatim_model::SessionId;

use crate::{Entry, Lease, NewSession, Origin, Record, Session, SessionInfo};

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No session has this id.
    #[error("no session {0}")]
    NotFound(SessionId),
    /// The session moved on since the caller read it: nothing was written.
    #[error("session {id} is at version {actual}, not {expected}: reload and retry")]
    Conflict {
        /// The session.
        id: SessionId,
        /// The version the append expected.
        expected: u64,
        /// The version the session is at.
        actual: u64,
    },
    /// A session with this id already exists.
    #[error("session {0} already exists")]
    AlreadyExists(SessionId),
    /// A request that names records the session does not have, or is otherwise unusable.
    #[error("{0}")]
    Invalid(String),
    /// The store's files are in use by another process.
    #[error("the store at {path} is in use by another process ({detail})")]
    Locked {
        /// The store's directory.
        path: String,
        /// What the system said.
        detail: String,
    },
    /// The store was written by a newer version of verbatim.
    #[error(
        "the store at {path} has schema version {found}; this version of verbatim reads up to {supported}"
    )]
    NewerSchema {
        /// The store's directory.
        path: String,
        /// The version found.
        found: u32,
        /// The newest version this code reads.
        supported: u32,
    },
    /// Stored bytes that do not read back as what was written.
    #[error("corrupt record in session {id} at {key}: {detail}")]
    Corrupt {
        /// The session.
        id: String,
        /// Which record or key.
        key: String,
        /// What was wrong.
        detail: String,
        /// The error that said so, when there is one (a value that does not parse).
        #[source]
        source: Option<ErrorSource>,
    },
    /// The store's files are damaged in a way that loses, or may lose, what was stored: it was
    /// not opened, and nothing was written to it.
    #[error("the store at {path} is damaged: {detail}")]
    Damaged {
        /// The store's directory.
        path: String,
        /// What is damaged, and how to recover.
        detail: String,
    },
    /// The session's lease is held by another owner and has not expired: a turn runs there.
    /// Nothing was changed; wait and try again (the lease ends when its turn does, or expires
    /// `expires_in` from now if the holder stopped without releasing it).
    #[error(
        "session {id} is busy: its lease is held by {owner} for another {:.1} s",
        expires_in.as_secs_f64()
    )]
    Busy {
        /// The session.
        id: SessionId,
        /// Who holds the lease.
        owner: String,
        /// How long until the lease expires, unless renewed.
        expires_in: Duration,
    },
    /// The lease this write was made under was taken over (it expired and another owner
    /// acquired the session, with a higher fencing token): nothing was written.
    #[error(
        "session {id}: the lease with fencing token {token} was taken over (the session's lease token is now {current}); nothing was written"
    )]
    Fenced {
        /// The session.
        id: SessionId,
        /// The token the write carried.
        token: u64,
        /// The session's current lease token.
        current: u64,
    },
    /// The backend failed (I/O, database).
    #[error("store backend: {detail}")]
    Backend {
        /// What failed, with the text of the error underneath when there is one.
        detail: String,
        /// The error underneath (sled's, PostgreSQL's, the system's), when there is one.
        #[source]
        source: Option<ErrorSource>,
    },
}

/// An error underneath a [`StoreError`], kept so that a caller can look through to it.
pub type ErrorSource = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// A backend failure caused by `source`, its text as the detail.
    pub fn backend(source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend { detail: source.to_string(), source: Some(Box::new(source)) }
    }

    /// A backend failure said as `detail` (which should include `source`'s text), caused by
    /// `source`.
    pub fn backend_with(
        detail: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend { detail: detail.into(), source: Some(Box::new(source)) }
    }

    /// A backend failure with no error underneath (a worker thread that stopped, say).
    pub fn backend_detail(detail: impl Into<String>) -> StoreError {
        StoreError::Backend { detail: detail.into(), source: None }
    }

    /// Stored bytes of session `id` under `key` that do not read back: `detail` says why.
    pub fn corrupt(
        id: impl Into<String>,
        key: impl Into<String>,
        detail: impl Into<String>,
    ) -> StoreError {
        StoreError::Corrupt { id: id.into(), key: key.into(), detail: detail.into(), source: None }
    }
}

/// A batch of entries to append, all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Append {
    /// The version the caller last saw; the append fails with [`StoreError::Conflict`] (and
    /// writes nothing) if the session is at another.
    pub expected_version: u64,
    /// The entries, in order.
    pub entries: Vec<Entry>,
    /// When set, a second append with the same key writes nothing and returns the first
    /// append's result (a retry after a timeout must not duplicate a turn).
    pub idempotency_key: Option<String>,
    /// The fencing token of the lease the append is made under ([`Lease::token`]): when set,
    /// the append fails with [`StoreError::Fenced`] (and writes nothing) unless it is the
    /// session's current lease token, so a holder whose lease was taken over writes nothing.
    /// Appends without one are not fenced (the expected version still orders them).
    pub fencing_token: Option<u64>,
}

impl Append {
    /// An append of `entries` expecting `expected_version`.
    pub fn new(expected_version: u64, entries: Vec<Entry>) -> Append {
        Append { expected_version, entries, idempotency_key: None, fencing_token: None }
    }

    /// The same append, made under `lease` (it carries the lease's fencing token).
    pub fn under(mut self, lease: &Lease) -> Append {
        self.fencing_token = Some(lease.token);
        self
    }

    /// The same append with an idempotency key.
    pub fn idempotent(mut self, key: impl Into<String>) -> Append {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// The sequence number of its first record.
    pub first_seq: u64,
    /// The session's version after it (the sequence number of its last record).
    pub version: u64,
}

/// Which sessions to list: newest update first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Only sessions with this tag.
    pub tag: Option<String>,
    /// Only sessions updated at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// At most this many (0 means 100).
    pub limit: usize,
    /// Continue after this cursor (from the previous [`Page`]).
    pub after: Option<Cursor>,
}

/// Where a listing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The update time of the last session listed.
    pub updated_at: DateTime<Utc>,
    /// Its id (to order sessions updated at the same time).
    pub id: SessionId,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The sessions, newest update first.
    pub sessions: Vec<SessionInfo>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// The outcome of a rewind.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewound {
    /// The rewound session, one [`Entry::Rewind`] record longer.
    pub info: SessionInfo,
    /// The archive keeping every record the session had before.
    pub archive: SessionInfo,
}

/// Persistent sessions: each an append-only log of typed records with a per-session sequence
/// number. Every backend passes the same conformance suite.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates an empty session with a new random id.
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError>;

    /// Appends entries atomically: all are written or none.
    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError>;

    /// The session's info.
    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError>;

    /// The whole session.
    async fn load(&self, id: SessionId) -> Result<Session, StoreError>;

    /// The records with sequence numbers in `from..=to` (to the end when `to` is `None`).
    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError>;

    /// The last `n` records.
    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError>;

    /// Sessions, newest update first, a page at a time. (The sled backend reads every
    /// session's head to order them: fine for thousands of sessions, not millions.)
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// A new session whose history is this one's records up to `at`, followed by an
    /// [`Entry::Forked`] record.
    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError>;

    /// Sets aside the history after record `to`: every record is first copied to an archive
    /// session, then an [`Entry::Rewind`] record is appended (so nothing is lost).
    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError>;

    /// Deletes a session and its records.
    async fn delete(&self, id: SessionId) -> Result<(), StoreError>;

    /// Stores a whole session as given (an import): its id must be new, its records numbered
    /// 1, 2, 3, ... .
    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError>;

    /// Takes the session's lease for `owner` until `ttl` from now, with a fencing token higher
    /// than any the session gave before. A lease another owner holds and that has not expired
    /// is refused with [`StoreError::Busy`]; an expired one is taken over (its holder's
    /// appends are then [`StoreError::Fenced`]). An owner that holds the lease gets a new
    /// one (with a new token: its earlier holder's appends are fenced as well). Of several
    /// acquiring at once, one wins.
    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError>;

    /// Extends `lease` to `ttl` from now. [`StoreError::Fenced`] if it was taken over; a
    /// lease that expired but that no one took over is renewed.
    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError>;

    /// Gives `lease` up: another owner may take the session at once. [`StoreError::Fenced`]
    /// if it was taken over (there is then nothing to give up).
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;
}

/// The current time, to the microsecond (what every backend can store exactly).
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound as _;
    Utc::now().trunc_subsecs(6)
}

/// A new random (version 4) session id from the operating system's generator.
pub fn new_session_id() -> Result<SessionId, StoreError> {
    let mut bytes = [0u8; 16];
    // getrandom's error is a std error only with its `std` feature: its text is kept.
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::backend_detail(format!("random id: {e}")))?;
    Ok(SessionId::from_random_bytes(bytes))
}

/// Checks that a session to be stored whole has its records numbered 1, 2, 3, ... and a
/// version equal to its last record.
pub(crate) fn check_numbering(session: &Session) -> Result<(), StoreError> {
    for (i, record) in session.records.iter().enumerate() {
        if record.seq != i as u64 + 1 {
            return Err(StoreError::Invalid(format!(
                "session {}: record {} has sequence number {}",
                session.info.id,
                i + 1,
                record.seq
            )));
        }
    }
    if session.info.version != session.records.len() as u64 {
        return Err(StoreError::Invalid(format!(
            "session {}: version {} but {} records",
            session.info.id,
            session.info.version,
            session.records.len()
        )));
    }
    Ok(())
}

/// Orders sessions for listing: newest update first, then by id.
pub(crate) fn listing_order(a: &SessionInfo, b: &SessionInfo) -> std::cmp::Ordering {
    b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id))
}

/// Whether `info` comes after `cursor` in listing order.
pub(crate) fn after_cursor(info: &SessionInfo, cursor: &Cursor) -> bool {
    (info.updated_at, info.id) < (cursor.updated_at, cursor.id)
}

/// Applies a query to sessions already in listing order.
pub(crate) fn page(sorted: impl Iterator<Item = SessionInfo>, query: &ListQuery) -> Page {
    let limit = if query.limit == 0 { 100 } else { query.limit };
    let mut sessions: Vec<SessionInfo> = sorted
        .filter(|s| query.tag.as_ref().is_none_or(|t| s.start.tags.contains(t)))
        .filter(|s| query.updated_since.is_none_or(|since| s.updated_at >= since))
        .filter(|s| query.after.as_ref().is_none_or(|c| after_cursor(s, c)))
        .take(limit + 1)
        .collect();
    let next = if sessions.len() > limit {
        sessions.truncate(limit);
        sessions.last().map(|s| Cursor { updated_at: s.updated_at, id: s.id })
    } else {
        None
    };
    Page { sessions, next }
}

/// The info of a new, empty session.
pub(crate) fn new_info(
    start: NewSession,
    origin: Option<Origin>,
) -> Result<SessionInfo, StoreError> {
    let now = now();
    Ok(SessionInfo {
        id: new_session_id()?,
        start,
        created_at: now,
        updated_at: now,
        version: 0,
        origin,
    })
}

/// The info of the archive a rewind of `source` keeps: every record it has, as it was last
/// updated.
pub(crate) fn archive_info(source: &SessionInfo) -> Result<SessionInfo, StoreError> {
    let origin = Origin::Archive { from: source.id, at: source.version };
    let mut archive = new_info(source.start.clone(), Some(origin))?;
    archive.version = source.version;
    // The archive holds the source's history as it stood: its times are the history's.
    archive.created_at = source.created_at;
    archive.updated_at = source.updated_at;
    Ok(archive)
}

/// A stored value of session `id` under `key` that `e` refused to read, kept as the source.
#[cfg(any(feature = "postgres", feature = "dynamodb"))]
pub(crate) fn corrupt_by(
    id: SessionId,
    key: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    let (id, key, detail) = (id.to_string(), key.into(), e.to_string());
    StoreError::Corrupt { id, key, detail, source: Some(Box::new(e)) }
}

/// Checks that a fork of `source` at record `at` is possible.
pub(crate) fn check_fork(source: &SessionInfo, at: u64) -> Result<(), StoreError> {
    if at > source.version {
        return Err(StoreError::Invalid(format!(
            "session {} has {} records; cannot fork at {at}",
            source.id, source.version
        )));
    }
    Ok(())
}

/// Checks that `source`, expected at `expected_version`, can be rewound to record `to`.
pub(crate) fn check_rewind(
    source: &SessionInfo,
    expected_version: u64,
    to: u64,
) -> Result<(), StoreError> {
    if source.version != expected_version {
        return Err(StoreError::Conflict {
            id: source.id,
            expected: expected_version,
            actual: source.version,
        });
    }
    if to > source.version {
        return Err(StoreError::Invalid(format!(
            "session {} has {} records; cannot rewind to {to}",
            source.id, source.version
        )));
    }
    Ok(())
}
