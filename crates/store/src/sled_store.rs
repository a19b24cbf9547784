//! The embedded backend: one sled database in one directory.
//!
//! Key layout, in one tree (integers big-endian, so a session's records sort by sequence
//! number):
//!
//! | key                                        | value                               |
//! |--------------------------------------------|-------------------------------------|
//! | `h` + session id (16 bytes)                | version (u64) + update time (i64 µs), sealed |
//! | `i` + session id                           | [`SessionInfo`] JSON as created, sealed |
//! | `l` + session id + seq (u64) + piece (u32) | a piece of the sealed [`Record`] JSON |
//! | `k` + session id + idempotency key         | the [`Appended`] it produced, sealed |
//! | `e` + session id                           | the session's lease (see `lease.rs`), sealed |
//! | `w`                                        | LSN of the last log frame applied   |
//! | `c`                                        | where log replay starts             |
//!
//! *Sealed*: followed by a checksum, checked on every read ([`crate::sealed`]), so a value
//! damaged on disk is reported, not read back changed.
//!
//! An append writes its records, the head and the idempotency key as one sled batch (atomic,
//! and one frame of the write-ahead log):
//! a fixed number of keys per record, whatever the length of the history. Records are split
//! into pieces of at most [`CHUNK`] bytes (4 KiB) so that no value, and no tree node of at most
//! 17 values, reaches the size sled writes to its unsynced `blobs/` files.
//!
//! Writers of one session are serialised by an in-process lock (sled's file lock keeps other
//! processes out), under which the version and the lease's fencing token are checked; readers take no lock: they read the
//! head, then records up to its version, which are never rewritten.
//!
//! Durability: every write goes first to a write-ahead log (see [`crate::wal`]), then to sled.
//! With [`Durability::Durable`] (the default) an append returns only after its log frame is on
//! stable storage (`fdatasync`); appends that arrive together share one sync, and sled itself
//! is made durable (flush, then `fdatasync` of its files) in the background. With
//! [`Durability::Relaxed`] an append returns once written to the log file: it survives the
//! process being killed, not a power cut or an operating-system crash.

mod lease;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use verbatim_model::SessionId;

use crate::sealed;
use crate::sled_dir::{Released, migrate, owner_only_dir, wait_until_released};
use crate::store::{
    archive_info, check_fork, check_numbering, check_rewind, listing_order, new_info, now, page,
};
use crate::wal::{Committed, Precheck, SEGMENT_BYTES, Wal, Writes};
use crate::{
    Append, Appended, Clock, Entry, Lease, ListQuery, NewSession, Origin, Page, Record, Rewound,
    Session, SessionInfo, SessionStore, StoreError, SystemClock,
};

/// The layout version this code writes; see `migrations/sled/`.
pub const SCHEMA_VERSION: u32 = 3;
/// The sled tree holding the sessions.
const TREE: &str = "sessions";
/// The largest piece of a record stored under one key.
pub const CHUNK: usize = 4096;

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// On stable storage (`fdatasync` of the log) before the append returns.
    #[default]
    Durable,
    /// Written to the log file (the operating system's cache) before the append returns: it
    /// survives the process being killed, not a power cut.
    Relaxed,
}

/// How a [`SledStore`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SledOptions {
    /// When a write counts as done.
    pub durability: Durability,
    /// The size of the write-ahead log's segment files (filled with zeros when made, then
    /// reused). sled is made durable each time the log fills one, so this bounds the log
    /// replayed after a crash. A write larger than this gets a segment of its own.
    pub wal_segment_bytes: u64,
    /// Open a damaged store (one that [`StoreError::Damaged`] refuses) with what can still be
    /// read: the write-ahead log's frames up to the damage are replayed, and its files are
    /// moved to `damaged-<time>/wal/` (kept, never reused). [`SledStore::salvaged`] says what
    /// was found. Off by default.
    pub salvage: bool,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            durability: Durability::Durable,
            wal_segment_bytes: SEGMENT_BYTES,
            salvage: false,
        }
    }
}

/// Locks serialising writers per session: a session maps to one of these by its id.
const STRIPES: usize = 64;

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    tree: sled::Tree,
    stripes: Vec<Mutex<()>>,
    durability: Durability,
    wal: Wal,
    /// Where lease times are read.
    clock: RwLock<Arc<dyn Clock>>,
    /// This opening of the store, at random: leases written by another are expired.
    opening: u64,
    /// Last, so dropped after the rest: see [`Released`].
    _released: Released,
}

/// Sessions in a sled database (one directory; one process at a time).
#[derive(Debug, Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(e)
}

/// The version and update time of a session.
#[derive(Debug, Clone, Copy)]
struct Head {
    version: u64,
    updated_at: DateTime<Utc>,
}

impl Head {
    fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.version.to_be_bytes());
        out[8..].copy_from_slice(&self.updated_at.timestamp_micros().to_be_bytes());
        out
    }

    fn decode(id: SessionId, value: &[u8]) -> Result<Head, StoreError> {
        let bytes = sealed::unseal_sized(value, 16)
            .map_err(|detail| StoreError::corrupt(id.to_string(), "head", detail))?;
        let corrupt = || {
            StoreError::corrupt(
                id.to_string(),
                "head",
                format!("{} bytes, expected 16", bytes.len()),
            )
        };
        let version = u64::from_be_bytes(bytes.get(..8).ok_or_else(corrupt)?.try_into().unwrap());
        let micros = i64::from_be_bytes(bytes.get(8..16).ok_or_else(corrupt)?.try_into().unwrap());
        let updated_at = DateTime::from_timestamp_micros(micros).ok_or_else(corrupt)?;
        Ok(Head { version, updated_at })
    }
}

fn head_key(id: SessionId) -> [u8; 17] {
    let mut key = [b'h'; 17];
    key[1..].copy_from_slice(id.as_bytes());
    key
}

fn info_key(id: SessionId) -> [u8; 17] {
    let mut key = [b'i'; 17];
    key[1..].copy_from_slice(id.as_bytes());
    key
}

fn log_prefix(id: SessionId) -> [u8; 17] {
    let mut key = [b'l'; 17];
    key[1..].copy_from_slice(id.as_bytes());
    key
}

fn log_key(id: SessionId, seq: u64, piece: u32) -> [u8; 29] {
    let mut key = [0u8; 29];
    key[..17].copy_from_slice(&log_prefix(id));
    key[17..25].copy_from_slice(&seq.to_be_bytes());
    key[25..].copy_from_slice(&piece.to_be_bytes());
    key
}

fn idempotency_prefix(id: SessionId) -> [u8; 17] {
    let mut key = [b'k'; 17];
    key[1..].copy_from_slice(id.as_bytes());
    key
}

fn idempotency_key(id: SessionId, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + key.len());
    out.extend_from_slice(&idempotency_prefix(id));
    out.extend_from_slice(key.as_bytes());
    out
}

/// A value's JSON, sealed with its checksum.
fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    sealed::seal(serde_json::to_vec(value).expect("store values serialize"))
}

/// A stored JSON value of session `id` (under `key`), checked and parsed.
fn from_json<T: serde::de::DeserializeOwned>(
    id: SessionId,
    key: impl Fn() -> String,
    value: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |detail: String| StoreError::corrupt(id.to_string(), key(), detail);
    let json = sealed::unseal_json(value).map_err(corrupt)?;
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        key: key(),
        detail: e.to_string(),
        source: Some(Box::new(e)),
    })
}

fn write_record(writes: &mut Writes, id: SessionId, record: &Record) {
    for (n, piece) in to_json(record).chunks(CHUNK).enumerate() {
        writes.insert(&log_key(id, record.seq, n as u32), piece);
    }
}

fn write_head(writes: &mut Writes, id: SessionId, head: Head) {
    writes.insert(&head_key(id), &sealed::seal(head.encode().to_vec()));
}

impl SledStore {
    /// Opens (or creates) the store in `path` with durable appends.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStore::open_with(path, Durability::Durable)
    }

    /// Whether `path` holds a store (sled's database or the write-ahead log), looked at
    /// without opening or creating anything: a caller that only reads can report a mistyped
    /// directory instead of opening it, which would create an empty store there.
    pub fn exists(path: impl AsRef<Path>) -> bool {
        let path = path.as_ref();
        path.join("db").is_file() || path.join("wal").is_dir()
    }

    /// Opens (or creates) the store in `path` with the given durability.
    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SledStore, StoreError> {
        SledStore::open_with_options(path, SledOptions { durability, ..SledOptions::default() })
    }

    /// Opens (or creates) the store in `path`: upgrades an older layout, replays the frames of
    /// the write-ahead log that sled lacks (after a crash), and makes the result durable.
    pub fn open_with_options(
        path: impl AsRef<Path>,
        options: SledOptions,
    ) -> Result<SledStore, StoreError> {
        if options.wal_segment_bytes < 4096 {
            return Err(StoreError::Invalid(format!(
                "wal_segment_bytes is {}; it must be at least 4096",
                options.wal_segment_bytes
            )));
        }
        let path = path.as_ref().to_path_buf();
        owner_only_dir(&path)?;
        // Damage is looked for before anything is written, and before sled opens its files
        // (it rewrites damaged ones as it reads them).
        let mut precheck = Precheck::before_sled(&path);
        if let Some(detail) = precheck.damage() {
            if !options.salvage {
                return Err(crate::wal::damaged(&path, detail));
            }
            // sled's database is gone: the rest of its files would not open without it.
            let aside = crate::salvage::aside_dir(&path).map_err(StoreError::backend_detail)?;
            crate::salvage::set_aside_sled_files(&path, &aside)?;
            precheck.aside = Some(aside);
        }
        let db = crate::salvage::open_sled(&path)?;
        precheck.check_sled(&db, TREE)?;
        let db = match precheck.damage() {
            None => db,
            Some(detail) if !options.salvage => {
                drop(db);
                wait_until_released(&path);
                return Err(crate::wal::damaged(&path, detail));
            }
            // sled came back older or empty, and would lose again what is written after the
            // damage: what it can read moves to a new database.
            Some(_) => {
                let aside = match precheck.aside.take() {
                    Some(aside) => aside,
                    None => crate::salvage::aside_dir(&path).map_err(StoreError::backend_detail)?,
                };
                let db = crate::salvage::rebuild(db, &path, &aside)?;
                precheck.aside = Some(aside);
                db
            }
        };
        migrate(&db, &path)?;
        let tree = db.open_tree(TREE).map_err(backend)?;
        let wal = Wal::open(
            db,
            tree.clone(),
            &path,
            options.wal_segment_bytes,
            precheck,
            options.salvage,
        )
        .inspect_err(|_| wait_until_released(&path))?;
        let stripes = (0..STRIPES).map(|_| Mutex::new(())).collect();
        let released = Released(path.clone());
        let mut opening = [0u8; 8];
        getrandom::fill(&mut opening)
            .map_err(|e| StoreError::backend_detail(format!("random opening id: {e}")))?;
        let inner = Inner {
            path,
            tree,
            stripes,
            durability: options.durability,
            wal,
            clock: RwLock::new(Arc::new(SystemClock)),
            opening: u64::from_le_bytes(opening),
            _released: released,
        };
        Ok(SledStore { inner: Arc::new(inner) })
    }

    /// The same store, reading the time of its leases from `clock` (for every clone).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> SledStore {
        *self.inner.clock.write().unwrap_or_else(|e| e.into_inner()) = clock;
        self
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many times the store synced its log to stable storage since it was opened (each
    /// sync covers every write that was waiting).
    pub fn sync_count(&self) -> u64 {
        self.inner.wal.sync_count()
    }

    /// How many times sled was made durable in the background since the store was opened
    /// (once each time the log filled a segment).
    pub fn checkpoint_count(&self) -> u64 {
        self.inner.wal.checkpoint_count()
    }

    /// How many log frames opening the store applied to sled: writes sled had not made
    /// durable itself when the process last stopped.
    pub fn replayed_on_open(&self) -> u64 {
        self.inner.wal.replayed()
    }

    /// When the store was opened with [`SledOptions::salvage`] and was damaged: what was
    /// damaged, and where the log's files were kept.
    pub fn salvaged(&self) -> Option<&str> {
        self.inner.wal.salvaged()
    }

    /// Runs blocking sled work off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| StoreError::backend_with(format!("store task: {e}"), e))?
    }
}

impl Inner {
    /// The writers' lock of a session.
    fn lock(&self, id: SessionId) -> MutexGuard<'_, ()> {
        let stripe = usize::from(id.as_bytes()[15]) % STRIPES;
        self.stripes[stripe].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn commit(&self, writes: Writes) -> Result<Committed, StoreError> {
        self.wal.commit(writes, self.durability)
    }

    fn head(&self, id: SessionId) -> Result<Head, StoreError> {
        let bytes = self.tree.get(head_key(id)).map_err(backend)?;
        Head::decode(id, &bytes.ok_or(StoreError::NotFound(id))?)
    }

    fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        let head = self.head(id)?;
        let bytes =
            self.tree.get(info_key(id)).map_err(backend)?.ok_or(StoreError::NotFound(id))?;
        let mut info: SessionInfo = from_json(id, || "info".into(), &bytes)?;
        info.version = head.version;
        info.updated_at = head.updated_at;
        Ok(info)
    }

    /// Records of `id` with sequence numbers in `from..=to`.
    fn records(&self, id: SessionId, from: u64, to: u64) -> Result<Vec<Record>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let start = log_key(id, from, 0);
        let end = log_key(id, to, u32::MAX);
        // First the raw JSON of each record (most are one piece, kept without a copy) ...
        let mut raw: Vec<(u64, sled::IVec, Vec<u8>)> = Vec::new();
        for item in self.tree.range(&start[..]..=&end[..]) {
            let (key, value) = item.map_err(backend)?;
            let seq = u64::from_be_bytes(key[17..25].try_into().unwrap());
            match raw.last_mut() {
                Some((s, first, rest)) if *s == seq => {
                    if rest.is_empty() {
                        rest.extend_from_slice(first);
                    }
                    rest.extend_from_slice(&value);
                }
                _ => raw.push((seq, value, Vec::new())),
            }
        }
        // ... then parsed, on every core for long sessions (parsing is most of a cold load).
        let parse = |part: &[(u64, sled::IVec, Vec<u8>)]| -> Result<Vec<Record>, StoreError> {
            part.iter()
                .map(|(seq, first, rest)| {
                    let bytes = if rest.is_empty() { &first[..] } else { &rest[..] };
                    from_json(id, || format!("record {seq}"), bytes)
                })
                .collect()
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if raw.len() < 2_000 || threads < 2 {
            return parse(&raw);
        }
        let part = raw.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> =
                raw.chunks(part).map(|chunk| scope.spawn(move || parse(chunk))).collect();
            let mut out = Vec::with_capacity(raw.len());
            for handle in handles {
                out.extend(handle.join().expect("parsing does not panic")?);
            }
            Ok(out)
        })
    }

    /// Writes a whole session (fork, archive, import) in one batch.
    fn put(&self, info: &SessionInfo, records: &[Record]) -> Result<Committed, StoreError> {
        let _writer = self.lock(info.id);
        if self.tree.contains_key(head_key(info.id)).map_err(backend)? {
            return Err(StoreError::AlreadyExists(info.id));
        }
        let mut writes = Writes::default();
        self.write_session(&mut writes, info, records);
        self.commit(writes)
    }

    fn write_session(&self, writes: &mut Writes, info: &SessionInfo, records: &[Record]) {
        writes.insert(&info_key(info.id), &to_json(info));
        write_head(writes, info.id, Head { version: info.version, updated_at: info.updated_at });
        for record in records {
            write_record(writes, info.id, record);
        }
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        let info = new_info(new, None)?;
        self.inner.put(&info, &[])?.durable(&self.inner.wal).await?;
        Ok(info)
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        if append.entries.is_empty() {
            return Err(StoreError::Invalid("an append needs at least one entry".into()));
        }
        // The write itself is a few in-memory sled operations: done here, not on a blocking
        // thread; only the wait for the sync is long, and it is awaited.
        let inner = &self.inner;
        let (done, committed) = {
            let now = now();
            let first_seq = append.expected_version + 1;
            let count = append.entries.len() as u64;
            let done = Appended { first_seq, version: first_seq + count - 1 };
            let idem = append.idempotency_key.as_deref().map(|k| idempotency_key(id, k));
            {
                let _writer = inner.lock(id);
                if let Some(key) = &idem
                    && let Some(earlier) = inner.tree.get(key).map_err(backend)?
                {
                    return from_json(id, || "idempotency key".into(), &earlier);
                }
                if append.fencing_token.is_some() {
                    inner.lease(id)?.check(id, append.fencing_token)?;
                }
                let head = inner.head(id)?;
                if head.version != append.expected_version {
                    return Err(StoreError::Conflict {
                        id,
                        expected: append.expected_version,
                        actual: head.version,
                    });
                }
                let mut writes = Writes::default();
                for (n, entry) in append.entries.into_iter().enumerate() {
                    write_record(
                        &mut writes,
                        id,
                        &Record { seq: first_seq + n as u64, at: now, entry },
                    );
                }
                write_head(&mut writes, id, Head { version: done.version, updated_at: now });
                if let Some(key) = idem {
                    writes.insert(&key, &to_json(&done));
                }
                (done, inner.commit(writes)?)
            }
        };
        committed.durable(&inner.wal).await?;
        Ok(done)
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        self.blocking(move |inner| inner.info(id)).await
    }

    async fn load(&self, id: SessionId) -> Result<Session, StoreError> {
        self.blocking(move |inner| {
            let info = inner.info(id)?;
            let records = inner.records(id, 1, info.version)?;
            Ok(Session { info, records })
        })
        .await
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        // The head is one read, from sled's cache unless the session has gone cold, done here
        // as an append does: a handle asking for what was appended since its last turn most
        // often learns there is nothing, with no hop to a blocking thread.
        let version = self.inner.head(id)?.version;
        let to = to.unwrap_or(version).min(version);
        if from.max(1) > to {
            return Ok(Vec::new());
        }
        self.blocking(move |inner| inner.records(id, from.max(1), to)).await
    }

    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        self.blocking(move |inner| {
            let version = inner.head(id)?.version;
            let from = version.saturating_sub(n as u64) + 1;
            inner.records(id, from, version)
        })
        .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let query = query.clone();
        self.blocking(move |inner| {
            let mut all = Vec::new();
            for item in inner.tree.scan_prefix(b"h") {
                let (key, _) = item.map_err(backend)?;
                let bytes: [u8; 16] = key[1..].try_into().map_err(|_| {
                    StoreError::corrupt("-", "head", format!("a key of {} bytes", key.len()))
                })?;
                all.push(inner.info(SessionId::from_random_bytes(bytes))?);
            }
            all.sort_by(listing_order);
            Ok(page(all.into_iter(), &query))
        })
        .await
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        let (info, committed) = self
            .blocking(move |inner| {
                let source = inner.info(id)?;
                check_fork(&source, at)?;
                let mut records = inner.records(id, 1, at)?;
                let mut info = new_info(source.start, Some(Origin::Fork { from: id, at }))?;
                records.push(Record {
                    seq: at + 1,
                    at: info.created_at,
                    entry: Entry::Forked { from: id, through: at },
                });
                info.version = at + 1;
                let committed = inner.put(&info, &records)?;
                Ok((info, committed))
            })
            .await?;
        committed.durable(&self.inner.wal).await?;
        Ok(info)
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        let (rewound, committed) = self
            .blocking(move |inner| {
                let (archive, committed) = {
                    let _writer = inner.lock(id);
                    let source = inner.info(id)?;
                    check_rewind(&source, expected_version, to)?;
                    // The archive and the rewind record go in one batch: both or neither.
                    let records = inner.records(id, 1, source.version)?;
                    let archive = archive_info(&source)?;
                    let mut writes = Writes::default();
                    inner.write_session(&mut writes, &archive, &records);
                    let now = now();
                    let seq = source.version + 1;
                    let rewind =
                        Record { seq, at: now, entry: Entry::Rewind { to, archive: archive.id } };
                    write_record(&mut writes, id, &rewind);
                    write_head(&mut writes, id, Head { version: seq, updated_at: now });
                    (archive, inner.commit(writes)?)
                };
                Ok((Rewound { info: inner.info(id)?, archive }, committed))
            })
            .await?;
        committed.durable(&self.inner.wal).await?;
        Ok(rewound)
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.blocking(move |inner| {
            let _writer = inner.lock(id);
            inner.head(id)?;
            let mut writes = Writes::default();
            writes.remove(&head_key(id));
            writes.remove(&info_key(id));
            writes.remove(&lease::lease_key(id));
            for prefix in [log_prefix(id), idempotency_prefix(id)] {
                for item in inner.tree.scan_prefix(prefix) {
                    writes.remove(&item.map_err(backend)?.0);
                }
            }
            inner.commit(writes)
        })
        .await?
        .durable(&self.inner.wal)
        .await
    }

    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        check_numbering(&session)?;
        let (info, committed) = self
            .blocking(move |inner| {
                let committed = inner.put(&session.info, &session.records)?;
                Ok((session.info, committed))
            })
            .await?;
        committed.durable(&self.inner.wal).await?;
        Ok(info)
    }

    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.leased(id, |state, now| state.acquire(id, owner, ttl, now)).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        self.leased(lease.session, |state, now| state.renew(lease, ttl, now)).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.leased(lease.session, |state, _| state.release(lease)).await
    }
}
