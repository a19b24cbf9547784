//! The embedded backend: one sled database in one directory.
//!
//! Key layout (all integers big-endian, so keys sort by session then sequence number):
//!
//! | tree   | key                                   | value                              |
//! |--------|---------------------------------------|------------------------------------|
//! | `info` | session id (16 bytes)                 | [`SessionInfo`] JSON as created    |
//! | `head` | session id                            | version (u64) + update time (i64 µs)|
//! | `log`  | session id + seq (u64) + chunk (u32)  | a piece of the [`Record`] JSON     |
//! | `keys` | session id + idempotency key          | the [`Appended`] it produced       |
//!
//! An append writes its records, the head and the idempotency key in one transaction: a fixed
//! number of keys per record, whatever the length of the history. Records are split into
//! pieces of at most [`CHUNK`] bytes so that no value, and no tree node of at most 17 values,
//! reaches the size sled writes to its unsynced `blobs/` files.
//!
//! Durability: with [`Durability::Durable`] (the default) an append returns only after its
//! bytes are on stable storage (see [`crate::durable`]); appends that arrive together share
//! one sync. [`Durability::Relaxed`] returns after the write reached sled's buffers (it
//! survives the process being killed once sled's background flush ran, not a power cut).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use verbatim_model::SessionId;

use crate::durable::Syncer;
use crate::store::{check_numbering, listing_order, new_session_id, now, page};
use crate::{
    Append, Appended, Entry, ListQuery, NewSession, Origin, Page, Record, Rewound, Session,
    SessionInfo, SessionStore, StoreError,
};

/// The layout version this code writes; see `migrations/sled/`.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"verbatim.schema";
/// The largest piece of a record stored under one key.
pub const CHUNK: usize = 4096;

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// On stable storage (flush and `fdatasync`) before the append returns.
    #[default]
    Durable,
    /// In sled's buffers; sled flushes them in the background.
    Relaxed,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    info: sled::Tree,
    head: sled::Tree,
    log: sled::Tree,
    keys: sled::Tree,
    durability: Durability,
    syncer: Syncer,
}

/// Sessions in a sled database (one directory; one process at a time).
#[derive(Debug, Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
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

    fn decode(id: SessionId, bytes: &[u8]) -> Result<Head, StoreError> {
        let corrupt = || StoreError::Corrupt {
            id: id.to_string(),
            key: "head".into(),
            detail: format!("{} bytes, expected 16", bytes.len()),
        };
        let version = u64::from_be_bytes(bytes.get(..8).ok_or_else(corrupt)?.try_into().unwrap());
        let micros = i64::from_be_bytes(bytes.get(8..16).ok_or_else(corrupt)?.try_into().unwrap());
        let updated_at = DateTime::from_timestamp_micros(micros).ok_or_else(corrupt)?;
        Ok(Head { version, updated_at })
    }
}

fn log_key(id: SessionId, seq: u64, chunk: u32) -> [u8; 28] {
    let mut key = [0u8; 28];
    key[..16].copy_from_slice(id.as_bytes());
    key[16..24].copy_from_slice(&seq.to_be_bytes());
    key[24..].copy_from_slice(&chunk.to_be_bytes());
    key
}

fn idempotency_key(id: SessionId, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + key.len());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store values serialize")
}

/// The stored pieces of one record.
fn pieces(record: &Record) -> Vec<Vec<u8>> {
    let bytes = to_json(record);
    bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect()
}

fn write_record(
    log: &TransactionalTree,
    id: SessionId,
    seq: u64,
    pieces: &[Vec<u8>],
) -> Result<(), ConflictableTransactionError<StoreError>> {
    for (n, piece) in pieces.iter().enumerate() {
        log.insert(&log_key(id, seq, n as u32)[..], piece.as_slice())?;
    }
    Ok(())
}

impl SledStore {
    /// Opens (or creates) the store in `path` with durable appends.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStore::open_with(path, Durability::Durable)
    }

    /// Opens (or creates) the store in `path`.
    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SledStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = sled::Config::new().path(&path).open().map_err(|e| match e {
            sled::Error::Io(io) if io.to_string().contains("lock") => {
                StoreError::Locked { path: path.display().to_string(), detail: io.to_string() }
            }
            other => backend(format!("opening {}: {other}", path.display())),
        })?;
        migrate(&db, &path)?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let syncer = Syncer::new(db.clone(), &path)?;
        let inner = Inner {
            info: tree("info")?,
            head: tree("head")?,
            log: tree("log")?,
            keys: tree("keys")?,
            path,
            durability,
            syncer,
        };
        Ok(SledStore { inner: Arc::new(inner) })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many times the store synced its files to stable storage (each covers every append
    /// that was waiting).
    pub fn sync_count(&self) -> u64 {
        self.inner.syncer.sync_count()
    }

    /// Runs blocking sled work off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| backend(format!("store task: {e}")))?
    }
}

/// Reads the schema version, writes it into a new store, refuses a newer one.
fn migrate(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    let stored = db.get(SCHEMA_KEY).map_err(backend)?;
    let version = match stored {
        None => {
            db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()).map_err(backend)?;
            db.flush().map_err(backend)?;
            SCHEMA_VERSION
        }
        Some(bytes) => {
            u32::from_be_bytes(bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                id: "-".into(),
                key: "schema".into(),
                detail: format!("{} bytes", bytes.len()),
            })?)
        }
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    // Version 1 is the first layout: nothing to upgrade yet. Each later version adds a step
    // here (and a note in migrations/sled/).
    Ok(())
}

impl Inner {
    fn durable(&self) -> Result<(), StoreError> {
        match self.durability {
            Durability::Durable => self.syncer.wait_durable(),
            Durability::Relaxed => Ok(()),
        }
    }

    fn head(&self, id: SessionId) -> Result<Head, StoreError> {
        let bytes = self.head.get(id.as_bytes()).map_err(backend)?;
        Head::decode(id, &bytes.ok_or(StoreError::NotFound(id))?)
    }

    fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        let head = self.head(id)?;
        let bytes =
            self.info.get(id.as_bytes()).map_err(backend)?.ok_or(StoreError::NotFound(id))?;
        let mut info: SessionInfo = serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::Corrupt { id: id.to_string(), key: "info".into(), detail: e.to_string() }
        })?;
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
        let mut out = Vec::new();
        let mut current: Option<(u64, Vec<u8>)> = None;
        let finish = |seq: u64, bytes: Vec<u8>| -> Result<Record, StoreError> {
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                id: id.to_string(),
                key: format!("record {seq}"),
                detail: e.to_string(),
            })
        };
        for item in self.log.range(&start[..]..=&end[..]) {
            let (key, value) = item.map_err(backend)?;
            let seq = u64::from_be_bytes(key[16..24].try_into().unwrap());
            match &mut current {
                Some((s, bytes)) if *s == seq => bytes.extend_from_slice(&value),
                _ => {
                    if let Some((s, bytes)) = current.take() {
                        out.push(finish(s, bytes)?);
                    }
                    current = Some((seq, value.to_vec()));
                }
            }
        }
        if let Some((s, bytes)) = current {
            out.push(finish(s, bytes)?);
        }
        Ok(out)
    }

    /// Writes a whole session (fork, archive, import) in one transaction.
    fn put(&self, info: &SessionInfo, records: &[Record]) -> Result<(), StoreError> {
        let stored_info = to_json(info);
        let head = Head { version: info.version, updated_at: info.updated_at }.encode();
        let pieces: Vec<Vec<Vec<u8>>> = records.iter().map(pieces).collect();
        let id = info.id;
        (&self.info, &self.head, &self.log)
            .transaction(|(info_tree, head_tree, log)| {
                if head_tree.get(id.as_bytes())?.is_some() {
                    return Err(abort(StoreError::AlreadyExists(id)));
                }
                info_tree.insert(id.as_bytes(), stored_info.as_slice())?;
                head_tree.insert(id.as_bytes(), &head[..])?;
                for (record, pieces) in records.iter().zip(&pieces) {
                    write_record(log, id, record.seq, pieces)?;
                }
                Ok(())
            })
            .map_err(tx_error)
    }
}

fn new_info(start: NewSession, origin: Option<Origin>) -> Result<SessionInfo, StoreError> {
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

#[async_trait]
impl SessionStore for SledStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        self.blocking(move |inner| {
            let info = new_info(new, None)?;
            inner.put(&info, &[])?;
            inner.durable()?;
            Ok(info)
        })
        .await
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        if append.entries.is_empty() {
            return Err(StoreError::Invalid("an append needs at least one entry".into()));
        }
        self.blocking(move |inner| {
            let now = now();
            let first_seq = append.expected_version + 1;
            let records: Vec<Vec<Vec<u8>>> = append
                .entries
                .into_iter()
                .enumerate()
                .map(|(n, entry)| pieces(&Record { seq: first_seq + n as u64, at: now, entry }))
                .collect();
            let done = Appended { first_seq, version: first_seq + records.len() as u64 - 1 };
            let idem = append.idempotency_key.as_deref().map(|k| idempotency_key(id, k));
            let outcome = (&inner.head, &inner.log, &inner.keys)
                .transaction(|(head_tree, log, keys)| {
                    if let Some(key) = &idem
                        && let Some(earlier) = keys.get(key)?
                    {
                        let earlier: Appended = serde_json::from_slice(&earlier).map_err(|e| {
                            abort(StoreError::Corrupt {
                                id: id.to_string(),
                                key: "idempotency key".into(),
                                detail: e.to_string(),
                            })
                        })?;
                        return Ok((earlier, false));
                    }
                    let bytes =
                        head_tree.get(id.as_bytes())?.ok_or(abort(StoreError::NotFound(id)))?;
                    let head = Head::decode(id, &bytes).map_err(abort)?;
                    if head.version != append.expected_version {
                        return Err(abort(StoreError::Conflict {
                            id,
                            expected: append.expected_version,
                            actual: head.version,
                        }));
                    }
                    for (n, pieces) in records.iter().enumerate() {
                        write_record(log, id, first_seq + n as u64, pieces)?;
                    }
                    let head = Head { version: done.version, updated_at: now };
                    head_tree.insert(id.as_bytes(), &head.encode()[..])?;
                    if let Some(key) = &idem {
                        keys.insert(key.as_slice(), to_json(&done))?;
                    }
                    Ok((done, true))
                })
                .map_err(tx_error)?;
            if outcome.1 {
                inner.durable()?;
            }
            Ok(outcome.0)
        })
        .await
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
        self.blocking(move |inner| {
            let version = inner.head(id)?.version;
            inner.records(id, from.max(1), to.unwrap_or(version).min(version))
        })
        .await
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
            for item in inner.head.iter() {
                let (key, _) = item.map_err(backend)?;
                let bytes: [u8; 16] = key.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    id: "-".into(),
                    key: "head".into(),
                    detail: format!("a key of {} bytes", key.len()),
                })?;
                all.push(inner.info(SessionId::from_random_bytes(bytes))?);
            }
            all.sort_by(listing_order);
            Ok(page(all.into_iter(), &query))
        })
        .await
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        self.blocking(move |inner| {
            let source = inner.info(id)?;
            if at > source.version {
                return Err(StoreError::Invalid(format!(
                    "session {id} has {} records; cannot fork at {at}",
                    source.version
                )));
            }
            let mut records = inner.records(id, 1, at)?;
            let mut info = new_info(source.start, Some(Origin::Fork { from: id, at }))?;
            records.push(Record {
                seq: at + 1,
                at: info.created_at,
                entry: Entry::Forked { from: id, through: at },
            });
            info.version = at + 1;
            inner.put(&info, &records)?;
            inner.durable()?;
            Ok(info)
        })
        .await
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        self.blocking(move |inner| {
            let source = inner.info(id)?;
            if source.version != expected_version {
                return Err(StoreError::Conflict {
                    id,
                    expected: expected_version,
                    actual: source.version,
                });
            }
            if to > source.version {
                return Err(StoreError::Invalid(format!(
                    "session {id} has {} records; cannot rewind to {to}",
                    source.version
                )));
            }
            // The archive is written first: if the rewind record then loses a race, the
            // archive is an extra copy, never a loss.
            let records = inner.records(id, 1, source.version)?;
            let origin = Origin::Archive { from: id, at: source.version };
            let mut archive = new_info(source.start.clone(), Some(origin))?;
            archive.version = source.version;
            archive.updated_at = source.updated_at;
            inner.put(&archive, &records)?;
            let now = now();
            let seq = source.version + 1;
            let record = Record { seq, at: now, entry: Entry::Rewind { to, archive: archive.id } };
            let pieces = pieces(&record);
            (&inner.head, &inner.log)
                .transaction(|(head_tree, log)| {
                    let bytes =
                        head_tree.get(id.as_bytes())?.ok_or(abort(StoreError::NotFound(id)))?;
                    let head = Head::decode(id, &bytes).map_err(abort)?;
                    if head.version != expected_version {
                        return Err(abort(StoreError::Conflict {
                            id,
                            expected: expected_version,
                            actual: head.version,
                        }));
                    }
                    write_record(log, id, seq, &pieces)?;
                    head_tree.insert(
                        id.as_bytes(),
                        &Head { version: seq, updated_at: now }.encode()[..],
                    )?;
                    Ok(())
                })
                .map_err(tx_error)?;
            inner.durable()?;
            let info = inner.info(id)?;
            Ok(Rewound { info, archive })
        })
        .await
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.blocking(move |inner| {
            // The head goes first: once it is gone the session is gone, and what remains of
            // its records is unreachable.
            inner.head(id)?;
            (&inner.head, &inner.info)
                .transaction(|(head, info)| {
                    head.remove(id.as_bytes())?;
                    info.remove(id.as_bytes())?;
                    Ok(())
                })
                .map_err(tx_error)?;
            let mut batch = sled::Batch::default();
            for item in inner.log.scan_prefix(id.as_bytes()) {
                batch.remove(item.map_err(backend)?.0);
            }
            inner.log.apply_batch(batch).map_err(backend)?;
            let mut batch = sled::Batch::default();
            for item in inner.keys.scan_prefix(id.as_bytes()) {
                batch.remove(item.map_err(backend)?.0);
            }
            inner.keys.apply_batch(batch).map_err(backend)?;
            inner.durable()
        })
        .await
    }

    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        check_numbering(&session)?;
        self.blocking(move |inner| {
            inner.put(&session.info, &session.records)?;
            inner.durable()?;
            Ok(session.info)
        })
        .await
    }
}
