//! The write-ahead log that makes the sled store's writes durable.
//!
//! Every write of the store (an append, a new session, a delete...) is a set of sled key
//! changes. It is first written to the log as one *frame*, then applied to sled as one batch,
//! and a durable write returns once its frame is on stable storage. sled itself is only made
//! durable now and then (a *checkpoint*: `flush()` and `fdatasync` of its files), off the
//! writers' path; opening the store replays the frames sled may have lost.
//!
//! Why not sync sled on every write: sled 0.34's `flush()` alone costs about as much as the
//! whole latency budget of an append, while an `fdatasync` of a file that is overwritten in
//! place (its size and blocks already allocated) writes only the data, with no file-system
//! journal commit. So the log lives in *segments*: files of fixed size, filled with zeros when
//! created and reused once a checkpoint has made their frames redundant.
//!
//! A frame is
//!
//! | bytes | what                                                          |
//! |-------|---------------------------------------------------------------|
//! | 4     | length of the payload (u32, big-endian)                       |
//! | 4     | CRC-32 of the run's salt, the next 8 bytes and the payload    |
//! | 8     | log sequence number (LSN, u64)                                |
//! | ...   | payload: changes, each `1` key value (insert) or `0` key (remove), with u32 lengths |
//!
//! The batch applied to sled also sets the key `w` to the frame's LSN, so sled knows the last
//! frame it holds, and a checkpoint records in `c` where replay starts. Frames are written and
//! applied under one lock, so sled's order is the log's. On open, the log is followed from
//! `c` while each frame is whole (its CRC matches) and numbered one past the previous one, and
//! the frames after sled's LSN are applied; a torn or missing frame ends the log.
//!
//! Old frames in reused segments cannot be taken for new ones: each open starts numbering at
//! the next multiple of 2^40 above every number used before, with a new random salt in the
//! checksum (both recorded in sled and synced before any new frame is written), and a frame
//! is accepted only if its number follows the previous one exactly.
//!
//! Group commit: a writer whose frame is written asks the sync thread for durability and
//! awaits the answer; the thread takes every request waiting, syncs the segment of the last
//! one once (covering the frames of every request taken: requests are sent in frame order,
//! and a segment is synced whole before the log moves to the next) and answers them all. A request names its segment, so the thread needs
//! no lock to find it and its sync starts while the writer applies the batch to sled.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt as _, FileExt, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::{Durability, StoreError};

/// The key, in the sessions tree, holding the LSN of the last frame applied to sled.
const LSN_KEY: &[u8] = b"w";
/// The key, in the sessions tree, of where replay starts (a [`Position`]: four u64s).
const CHECKPOINT_KEY: &[u8] = b"c";
/// How many emptied segments are kept for reuse.
const SPARES: usize = 2;
/// The size of a frame's header.
const HEADER: usize = 16;
/// Numbers available to one opening of the store (see the module docs).
const RUN: u64 = 1 << 40;
/// The default size of a segment.
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;
/// How long the sync thread waits for the writers of its last round to come back, when there
/// were several (a single writer is never kept waiting).
const GATHER: Duration = Duration::from_micros(500);

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// The changes of one write, as a frame payload and as the sled batch it becomes.
pub(crate) struct Writes {
    /// The frame: header space, then the payload.
    frame: Vec<u8>,
    batch: sled::Batch,
}

impl Default for Writes {
    fn default() -> Self {
        Writes { frame: vec![0; HEADER], batch: sled::Batch::default() }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("keys and values are under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Writes {
    pub(crate) fn insert(&mut self, key: &[u8], value: &[u8]) {
        self.frame.push(1);
        put_bytes(&mut self.frame, key);
        put_bytes(&mut self.frame, value);
        self.batch.insert(key, value);
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.frame.push(0);
        put_bytes(&mut self.frame, key);
        self.batch.remove(key);
    }

    /// Fills in the header for `lsn` in the run with `salt` and returns the whole frame.
    fn seal(&mut self, lsn: u64, salt: u64) -> &[u8] {
        let len = u32::try_from(self.frame.len() - HEADER).expect("a frame is under 4 GiB");
        self.frame[8..16].copy_from_slice(&lsn.to_be_bytes());
        let crc = checksum(salt, &self.frame[8..]);
        self.frame[..4].copy_from_slice(&len.to_be_bytes());
        self.frame[4..8].copy_from_slice(&crc.to_be_bytes());
        &self.frame
    }
}

/// The sled batch a frame's payload describes.
fn decode(payload: &[u8]) -> Option<sled::Batch> {
    fn bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let out = rest.get(4..4 + len)?;
        *rest = &rest[4 + len..];
        Some(out)
    }
    let mut batch = sled::Batch::default();
    let mut rest = payload;
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        let key = bytes(&mut rest)?;
        match tag {
            1 => batch.insert(key, bytes(&mut rest)?),
            0 => batch.remove(key),
            _ => return None,
        }
    }
    Some(batch)
}

/// The CRC-32 of a run's salt and a frame's LSN and payload. The salt is random per opening,
/// so bytes left in a reused segment (which may be anybody's data) cannot pass for a frame.
fn checksum(salt: u64, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_be_bytes());
    hasher.update(body);
    hasher.finalize()
}

/// Reads at most `limit` frames from `at` on, through `read_at` over `size` bytes, while each
/// is whole (its CRC matches) and numbered one past the previous one: (LSN, payload).
fn read_frames(
    read_at: impl Fn(&mut [u8], u64) -> std::io::Result<()>,
    size: u64,
    mut at: u64,
    limit: usize,
    salt: u64,
) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    while out.len() < limit && at + HEADER as u64 <= size {
        let mut header = [0u8; HEADER];
        read_at(&mut header, at)?;
        let len = u64::from(u32::from_be_bytes(header[..4].try_into().unwrap()));
        let crc = u32::from_be_bytes(header[4..8].try_into().unwrap());
        let lsn = u64::from_be_bytes(header[8..16].try_into().unwrap());
        if at + HEADER as u64 + len > size {
            break;
        }
        if let Some(&(previous, _)) = out.last()
            && lsn != previous + 1
        {
            break;
        }
        // The CRC covers the LSN and the payload: read them into one buffer.
        let mut body = vec![0u8; 8 + len as usize];
        body[..8].copy_from_slice(&header[8..]);
        read_at(&mut body[8..], at + HEADER as u64)?;
        if checksum(salt, &body) != crc {
            break;
        }
        body.drain(..8);
        out.push((lsn, body));
        at += HEADER as u64 + len;
    }
    Ok(out)
}

/// One file of the log.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// The number in its name.
    number: u64,
    file: File,
    size: u64,
}

impl Segment {
    fn open(path: PathBuf, number: u64) -> Result<Segment, String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        let size = file.metadata().map_err(|e| io("reading", &path, e))?.len();
        Ok(Segment { path, number, file, size })
    }

    /// At most `limit` consecutive whole frames of the run with `salt` from `offset` on.
    fn frames(&self, offset: u64, limit: usize, salt: u64) -> Result<Vec<(u64, Vec<u8>)>, String> {
        read_frames(|buf, at| self.file.read_exact_at(buf, at), self.size, offset, limit, salt)
            .map_err(|e| io("reading", &self.path, e))
    }

    /// A new segment of `size` zero bytes, synced with its directory entry.
    fn create(dir: &Path, number: u64, size: u64) -> Result<Segment, String> {
        let path = dir.join(format!("{number:010}.wal"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("creating", &path, e))?;
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < size {
            let n = zeros.len().min((size - at) as usize);
            file.write_all_at(&zeros[..n], at).map_err(|e| io("filling", &path, e))?;
            at += n as u64;
        }
        file.sync_all().map_err(|e| io("syncing", &path, e))?;
        sync_dir(dir)?;
        Ok(Segment { path, number, file, size })
    }
}

/// `N` big-endian u64s stored under `key`, if present.
fn read_u64s<const N: usize>(
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<[u64; N]>, StoreError> {
    let Some(bytes) = tree.get(key).map_err(|e| StoreError::Backend(e.to_string()))? else {
        return Ok(None);
    };
    if bytes.len() != 8 * N {
        return Err(StoreError::Corrupt {
            id: "-".into(),
            key: format!("log key {}", String::from_utf8_lossy(key)),
            detail: format!("{} bytes, expected {}", bytes.len(), 8 * N),
        });
    }
    let mut out = [0u64; N];
    for (n, chunk) in bytes.chunks_exact(8).enumerate() {
        out[n] = u64::from_be_bytes(chunk.try_into().unwrap());
    }
    Ok(Some(out))
}

/// Where replay starts, as the last checkpoint recorded it (key `c`: four u64s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    /// The segment.
    number: u64,
    /// The byte offset in it.
    offset: u64,
    /// The LSN of the frame written there (or at the start of the next segment).
    next: u64,
    /// The salt of the run writing from there.
    salt: u64,
}

impl Position {
    fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (n, value) in [self.number, self.offset, self.next, self.salt].into_iter().enumerate() {
            out[n * 8..n * 8 + 8].copy_from_slice(&value.to_be_bytes());
        }
        out
    }
}

/// Follows the log from `from`: the frames there, then those at the start of the segment whose
/// first frame has the next number, and so on, while each frame is whole and numbered one past
/// the previous one. Frames after `held` (the last one sled holds) are applied to sled in
/// order. Returns the last LSN sled now holds.
fn replay(
    tree: &sled::Tree,
    segments: &[Segment],
    held: u64,
    from: Position,
) -> Result<u64, StoreError> {
    let backend = StoreError::Backend;
    let mut next = from.next;
    let mut at = segments.iter().find(|s| s.number == from.number).map(|s| (s, from.offset));
    loop {
        if let Some((segment, offset)) = at {
            for (lsn, payload) in segment.frames(offset, usize::MAX, from.salt).map_err(backend)? {
                if lsn != next {
                    break;
                }
                next += 1;
                if lsn <= held {
                    // sled wrote this one itself before the process stopped.
                    continue;
                }
                let mut batch = decode(&payload).ok_or_else(|| StoreError::Corrupt {
                    id: "-".into(),
                    key: format!("log frame {lsn}"),
                    detail: "a whole frame whose changes do not parse".into(),
                })?;
                batch.insert(LSN_KEY, &lsn.to_be_bytes());
                tree.apply_batch(batch).map_err(|e| backend(e.to_string()))?;
            }
        }
        // The log goes on at the start of another segment, if one starts with the next frame.
        at = None;
        for segment in segments {
            let first = segment.frames(0, 1, from.salt).map_err(backend)?;
            if first.first().map(|(lsn, _)| *lsn) == Some(next) {
                at = Some((segment, 0));
                break;
            }
        }
        if at.is_none() {
            return Ok(held.max(next - 1));
        }
    }
}

/// Makes sled durable, with replay starting at `from` (and, when given, the LSN of the last
/// frame sled holds set to `lsn`).
fn checkpoint(
    tree: &sled::Tree,
    sled_files: &mut SledFiles,
    lsn: Option<u64>,
    from: Position,
) -> Result<(), String> {
    let mut batch = sled::Batch::default();
    batch.insert(CHECKPOINT_KEY, &from.encode());
    if let Some(lsn) = lsn {
        batch.insert(LSN_KEY, &lsn.to_be_bytes());
    }
    tree.apply_batch(batch).map_err(|e| e.to_string())?;
    sled_files.sync()
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("syncing", dir, e))
}

/// The writers' state, under one lock.
#[derive(Debug)]
struct Log {
    active: Arc<Segment>,
    /// Where the next frame goes in `active`.
    offset: u64,
    /// The LSN of the next frame.
    next_lsn: u64,
    /// The salt of this run's checksums.
    salt: u64,
    /// Segments written full, with the LSN of their last frame, waiting for a checkpoint.
    sealed: Vec<(Arc<Segment>, u64)>,
    /// Segments whose frames sled holds durably: reused before new ones are made.
    spares: Vec<Arc<Segment>>,
    /// The number of the next segment file made.
    next_file: u64,
}

/// What the threads and the writers share.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    tree: sled::Tree,
    segment_bytes: u64,
    log: Mutex<Log>,
    /// Set when a write, sync or checkpoint failed: the log can no longer be trusted, and
    /// every later write fails with this until the store is opened again.
    failed: OnceLock<String>,
    syncs: AtomicU64,
    checkpoints: AtomicU64,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fail(&self, detail: String) -> StoreError {
        let first = self.failed.get_or_init(|| detail);
        StoreError::Backend(format!("the store's log failed ({first}); open the store again"))
    }

    fn check(&self) -> Result<(), StoreError> {
        match self.failed.get() {
            Some(detail) => Err(StoreError::Backend(format!(
                "the store's log failed ({detail}); open the store again"
            ))),
            None => Ok(()),
        }
    }
}

/// A writer's request for durability: the segment its frame is in, and where to answer.
type Request = (Arc<Segment>, oneshot::Sender<Result<(), String>>);

/// The log. Dropping it stops its threads and waits for them.
#[derive(Debug)]
pub(crate) struct Wal {
    shared: Arc<Shared>,
    sync_requests: Option<mpsc::Sender<Request>>,
    checkpoint_requests: Option<mpsc::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    replayed: u64,
}

impl Drop for Wal {
    fn drop(&mut self) {
        drop(self.sync_requests.take());
        drop(self.checkpoint_requests.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Wal {
    /// Opens the log in `store_dir/wal`, replays into `tree` the frames sled lacks, and makes
    /// the result durable before any new frame is written.
    pub(crate) fn open(
        db: sled::Db,
        tree: sled::Tree,
        store_dir: &Path,
        segment_bytes: u64,
    ) -> Result<Wal, StoreError> {
        let backend = StoreError::Backend;
        let dir = store_dir.join("wal");
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| backend(io("creating", &dir, e)))?;
            sync_dir(store_dir).map_err(backend)?;
        }
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| backend(io("listing", &dir, e)))? {
            let path = entry.map_err(|e| backend(io("listing", &dir, e)))?.path();
            let number = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wal"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(number) = number {
                segments.push(Segment::open(path, number).map_err(backend)?);
            }
        }
        segments.sort_by_key(|s| s.number);

        let held = read_u64s::<1>(&tree, LSN_KEY)?.map_or(0, |[lsn]| lsn);
        let last = match read_u64s::<4>(&tree, CHECKPOINT_KEY)? {
            // Every store that wrote a frame recorded where replay starts before it did.
            None => held,
            Some([number, offset, next, salt]) => {
                replay(&tree, &segments, held, Position { number, offset, next, salt })?
            }
        };
        let replayed = last - held;

        // A new run: numbers above any frame an earlier run may have left in the files, and a
        // new salt. It starts at the beginning of a segment of the usual size, or a new one.
        let next_lsn = ((last + 1) / RUN + 1) * RUN;
        let salt = getrandom::u64().map_err(|e| backend(format!("random salt: {e}")))?;
        let mut next_file = segments.last().map_or(0, |s| s.number + 1);
        let active = match segments.iter().position(|s| s.size == segment_bytes) {
            Some(at) => Arc::new(segments.swap_remove(at)),
            None => {
                next_file += 1;
                Arc::new(Segment::create(&dir, next_file - 1, segment_bytes).map_err(backend)?)
            }
        };
        // The replayed frames and the new run are durable before any segment is reused.
        let mut sled_files = SledFiles::new(db, store_dir).map_err(backend)?;
        let from = Position { number: active.number, offset: 0, next: next_lsn, salt };
        checkpoint(&tree, &mut sled_files, Some(next_lsn - 1), from).map_err(backend)?;

        // Every other segment is now redundant: keep a few for reuse.
        let mut spares = Vec::new();
        for segment in segments {
            if segment.size == segment_bytes && spares.len() < SPARES {
                spares.push(Arc::new(segment));
            } else {
                std::fs::remove_file(&segment.path)
                    .map_err(|e| backend(io("removing", &segment.path, e)))?;
            }
        }
        let log = Log { active, offset: 0, next_lsn, salt, sealed: Vec::new(), spares, next_file };

        let shared = Arc::new(Shared {
            dir,
            tree,
            segment_bytes,
            log: Mutex::new(log),
            failed: OnceLock::new(),
            syncs: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
        });
        let (sync_requests, incoming) = mpsc::channel::<Request>();
        let sync_thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("verbatim-store-sync".into())
                .spawn(move || sync_loop(&shared, &incoming))
                .map_err(|e| backend(format!("starting the sync thread: {e}")))?
        };
        let (checkpoint_requests, incoming) = mpsc::channel::<()>();
        let checkpoint_thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("verbatim-store-checkpoint".into())
                .spawn(move || checkpoint_loop(&shared, &mut sled_files, &incoming))
                .map_err(|e| backend(format!("starting the checkpoint thread: {e}")))?
        };
        Ok(Wal {
            shared,
            sync_requests: Some(sync_requests),
            checkpoint_requests: Some(checkpoint_requests),
            threads: vec![sync_thread, checkpoint_thread],
            replayed,
        })
    }

    /// Writes `writes` to the log and applies them to sled. The change is visible at once,
    /// and durable once [`Committed::durable`] returns.
    ///
    /// If sled fails to apply a batch whose frame is written, the log is marked failed and
    /// the write's outcome is unknown: opening the store again replays it.
    pub(crate) fn commit(
        &self,
        mut writes: Writes,
        durability: Durability,
    ) -> Result<Committed, StoreError> {
        let shared = &self.shared;
        let mut log = shared.log();
        shared.check()?;
        let lsn = log.next_lsn;
        let frame = writes.seal(lsn, log.salt);
        let len = frame.len() as u64;
        if log.offset + len > log.active.size {
            self.roll(&mut log, len)?;
        }
        let (active, offset) = (&log.active, log.offset);
        if let Err(e) = active.file.write_all_at(frame, offset) {
            return Err(shared.fail(io("writing", &active.path, e)));
        }
        // The sync starts now and runs while sled applies the batch.
        let durable = match durability {
            Durability::Durable => Some(self.request_sync(Arc::clone(active))?),
            Durability::Relaxed => None,
        };
        writes.batch.insert(LSN_KEY, &lsn.to_be_bytes());
        if let Err(e) = shared.tree.apply_batch(writes.batch) {
            // The frame is in the log but not in sled: only a new opening can reconcile them.
            return Err(shared.fail(format!("applying a batch: {e}")));
        }
        log.offset += len;
        log.next_lsn += 1;
        Ok(Committed { durable })
    }

    /// Moves the log to a segment with room for `len` bytes, the current one synced first.
    fn roll(&self, log: &mut Log, len: u64) -> Result<(), StoreError> {
        let shared = &self.shared;
        if let Err(e) = log.active.file.sync_data() {
            return Err(shared.fail(io("syncing", &log.active.path, e)));
        }
        let next = match log.spares.iter().position(|s| s.size >= len) {
            Some(at) => log.spares.swap_remove(at),
            None => {
                let size = shared.segment_bytes.max(len);
                log.next_file += 1;
                match Segment::create(&shared.dir, log.next_file - 1, size) {
                    Ok(segment) => Arc::new(segment),
                    Err(e) => return Err(shared.fail(e)),
                }
            }
        };
        let full = std::mem::replace(&mut log.active, next);
        log.sealed.push((full, log.next_lsn - 1));
        log.offset = 0;
        if let Some(requests) = &self.checkpoint_requests {
            let _ = requests.send(());
        }
        Ok(())
    }

    /// Asks the sync thread to sync every frame written so far, the last of them in `segment`.
    /// Called under the log's lock, so requests arrive in the order of their frames.
    fn request_sync(
        &self,
        segment: Arc<Segment>,
    ) -> Result<oneshot::Receiver<Result<(), String>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        match &self.sync_requests {
            Some(requests) if requests.send((segment, reply)).is_ok() => Ok(answer),
            _ => Err(StoreError::Backend("the sync thread has stopped".into())),
        }
    }

    /// How many times the log was synced.
    pub(crate) fn sync_count(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// How many checkpoints ran since the store was opened.
    pub(crate) fn checkpoint_count(&self) -> u64 {
        self.shared.checkpoints.load(Ordering::Relaxed)
    }

    /// How many frames opening the store replayed into sled.
    pub(crate) fn replayed(&self) -> u64 {
        self.replayed
    }
}

/// A write applied to sled, and (if durable) the answer of the sync that covers it.
#[derive(Debug)]
#[must_use = "a durable write is durable once `durable` returns"]
pub(crate) struct Committed {
    durable: Option<oneshot::Receiver<Result<(), String>>>,
}

impl Committed {
    /// Returns once the write is as durable as it was asked to be.
    pub(crate) async fn durable(self, wal: &Wal) -> Result<(), StoreError> {
        let Some(answer) = self.durable else { return Ok(()) };
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(wal.shared.fail(e)),
            Err(_) => Err(StoreError::Backend("the sync thread has stopped".into())),
        }
    }
}

fn sync_loop(shared: &Shared, incoming: &mpsc::Receiver<Request>) {
    let mut last_round = 1;
    while let Ok(first) = incoming.recv() {
        let mut waiting = vec![first];
        waiting.extend(incoming.try_iter());
        // When the last sync served several writers, they are likely writing again: give
        // them a moment to arrive so one sync serves them all.
        let deadline = Instant::now() + GATHER;
        while last_round > 1 && waiting.len() < last_round {
            match incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(reply) => waiting.push(reply),
                Err(_) => break,
            }
        }
        last_round = waiting.len();
        // Every waiting frame is in the segment of the last request or in one synced when the
        // log left it. The log's lock is not taken: the sync runs while the writer that asked
        // for it, still holding that lock, applies its batch to sled.
        let active = Arc::clone(&waiting.last().expect("one request at least").0);
        let result = match shared.failed.get() {
            Some(detail) => Err(detail.clone()),
            None => active.file.sync_data().map_err(|e| {
                // Pages whose write-back failed may be dropped: no later sync can be trusted.
                let detail = io("syncing", &active.path, e);
                shared.fail(detail.clone());
                detail
            }),
        };
        // A sync of the same file elsewhere (the log moving on) may have met the write-back
        // error this one then did not see: checked again before anyone is told it is durable.
        let result = result.and_then(|()| shared.failed.get().map_or(Ok(()), |d| Err(d.clone())));
        if result.is_ok() {
            shared.syncs.fetch_add(1, Ordering::Relaxed);
        }
        for (_, reply) in waiting {
            let _ = reply.send(result.clone());
        }
    }
}

/// Makes sled durable each time the log moves to another segment, then frees the segments
/// it covers; and once more when the store closes, so that opening it again replays nothing.
fn checkpoint_loop(shared: &Shared, sled_files: &mut SledFiles, incoming: &mpsc::Receiver<()>) {
    while incoming.recv().is_ok() {
        while incoming.try_recv().is_ok() {}
        run_checkpoint(shared, sled_files);
    }
    run_checkpoint(shared, sled_files);
}

fn run_checkpoint(shared: &Shared, sled_files: &mut SledFiles) {
    if shared.failed.get().is_some() {
        return;
    }
    // Frames are applied as they are written, so sled holds every frame before this point.
    let (covered, from) = {
        let log = shared.log();
        let from = Position {
            number: log.active.number,
            offset: log.offset,
            next: log.next_lsn,
            salt: log.salt,
        };
        (log.next_lsn - 1, from)
    };
    if let Err(e) = checkpoint(&shared.tree, sled_files, None, from) {
        shared.fail(format!("checkpoint: {e}"));
        return;
    }
    let mut log = shared.log();
    // Replay now starts at `from`: every segment before it is redundant, not its own.
    let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut log.sealed)
        .into_iter()
        .partition(|(segment, last)| *last <= covered && segment.number != from.number);
    log.sealed = waiting;
    for (segment, _) in done {
        if segment.size == shared.segment_bytes && log.spares.len() < SPARES {
            log.spares.push(segment);
        } else {
            // Extra segments, and outsized ones (one frame larger than a segment), go.
            let _ = std::fs::remove_file(&segment.path);
        }
    }
    let make_spare = log.spares.is_empty();
    let number = log.next_file;
    if make_spare {
        log.next_file += 1;
    }
    drop(log);
    if make_spare {
        match Segment::create(&shared.dir, number, shared.segment_bytes) {
            Ok(segment) => shared.log().spares.push(Arc::new(segment)),
            Err(e) => {
                shared.fail(format!("checkpoint: {e}"));
                return;
            }
        }
    }
    shared.checkpoints.fetch_add(1, Ordering::Relaxed);
}

/// sled's own files, made durable: `flush()`, then `fdatasync` of the data file and of every
/// blob file not synced before, and of the `blobs` directory.
///
/// sled 0.34's `flush()` writes its log with `sync_file_range`, which survives a process crash
/// but not a power cut, and values or nodes too large for a log segment go to files under
/// `blobs/` that sled never syncs.
struct SledFiles {
    db: sled::Db,
    data_file: File,
    blobs: PathBuf,
    /// Blob files already synced.
    synced_blobs: std::collections::HashSet<PathBuf>,
}

impl SledFiles {
    fn new(db: sled::Db, dir: &Path) -> Result<SledFiles, String> {
        let data = dir.join("db");
        let data_file = File::open(&data).map_err(|e| io("opening", &data, e))?;
        Ok(SledFiles { db, data_file, blobs: dir.join("blobs"), synced_blobs: Default::default() })
    }

    fn sync(&mut self) -> Result<(), String> {
        self.db.flush().map_err(|e| format!("flush: {e}"))?;
        self.data_file.sync_data().map_err(|e| io("syncing", Path::new("db"), e))?;
        self.sync_blobs()
    }

    fn sync_blobs(&mut self) -> Result<(), String> {
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("listing", &self.blobs, e)),
        };
        let mut new = false;
        // Only blobs still present are remembered: sled removes those it no longer needs.
        let mut present = std::collections::HashSet::with_capacity(self.synced_blobs.len());
        for entry in entries {
            let path = entry.map_err(|e| io("listing", &self.blobs, e))?.path();
            if self.synced_blobs.contains(&path) {
                present.insert(path);
                continue;
            }
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("opening", &path, e)),
            };
            file.sync_data().map_err(|e| io("syncing", &path, e))?;
            present.insert(path);
            new = true;
        }
        self.synced_blobs = present;
        if new {
            sync_dir(&self.blobs)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: u64 = 0x5a17;

    fn salted(lsn: u64, salt: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut writes = Writes::default();
        writes.insert(key, value);
        writes.remove(b"gone");
        writes.seal(lsn, salt).to_vec()
    }

    fn frame(lsn: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        salted(lsn, SALT, key, value)
    }

    /// A segment file holding `bytes` at its start.
    fn segment(dir: &Path, number: u64, bytes: &[u8]) -> Segment {
        let segment = Segment::create(dir, number, 64 << 10).unwrap();
        segment.file.write_all_at(bytes, 0).unwrap();
        segment
    }

    /// Frames `lsns`, each setting key `k<lsn>`.
    fn run(lsns: std::ops::RangeInclusive<u64>, salt: u64) -> Vec<u8> {
        lsns.flat_map(|n| salted(n, salt, format!("k{n}").as_bytes(), b"v")).collect()
    }

    fn held_by(tree: &sled::Tree, lsn: u64) {
        tree.insert(LSN_KEY, &lsn.to_be_bytes()).unwrap();
    }

    fn frames(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let read = |buf: &mut [u8], at: u64| {
            buf.copy_from_slice(&bytes[at as usize..at as usize + buf.len()]);
            Ok(())
        };
        read_frames(read, bytes.len() as u64, 0, usize::MAX, SALT).unwrap()
    }

    #[test]
    fn frames_read_back_with_their_changes() {
        let mut bytes = frame(7, b"k1", b"v1");
        bytes.extend(frame(8, b"k2", &[0u8; 300]));
        bytes.extend(vec![0; 64]);
        let read = frames(&bytes);
        assert_eq!(read.iter().map(|(lsn, _)| *lsn).collect::<Vec<_>>(), [7, 8]);
        let tree = sled::Config::new().temporary(true).open().unwrap();
        tree.insert(b"gone", b"x").unwrap();
        tree.apply_batch(decode(&read[1].1).unwrap()).unwrap();
        assert_eq!(tree.get(b"k2").unwrap().unwrap().as_ref(), &[0u8; 300][..]);
        assert!(tree.get(b"gone").unwrap().is_none());
    }

    #[test]
    fn a_torn_frame_ends_the_log() {
        let mut bytes = frame(1, b"k", b"v");
        let second = frame(2, b"k", b"longer value");
        bytes.extend(&second[..second.len() - 3]);
        bytes.extend(frame(3, b"k", b"v"));
        assert_eq!(frames(&bytes).len(), 1);
        // A flipped byte in the payload is caught too.
        let mut bytes = frame(1, b"k", b"v");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(frames(&bytes).is_empty());
    }

    #[test]
    fn a_frame_out_of_sequence_ends_the_log() {
        // An old frame left in a reused segment after the new ones.
        let mut bytes = frame(RUN + 1, b"k", b"v");
        bytes.extend(frame(5, b"k", b"v"));
        bytes.extend(frame(RUN + 2, b"k", b"v"));
        assert_eq!(frames(&bytes).len(), 1);
    }

    #[test]
    fn a_payload_that_does_not_parse_is_refused() {
        assert!(decode(&[2, 0, 0, 0, 0]).is_none());
        assert!(decode(&[1, 0, 0, 0, 9, b'k']).is_none());
        assert!(decode(&[]).is_some());
    }

    #[test]
    fn replay_follows_the_log_into_the_next_segment_when_sled_is_already_there() {
        // sled wrote frames 4 and 5 itself; 6 was acknowledged but only the log has it.
        let dir = tempfile::tempdir().unwrap();
        let segments =
            [segment(dir.path(), 0, &run(1..=3, SALT)), segment(dir.path(), 1, &run(4..=6, SALT))];
        let tree = sled::Config::new().temporary(true).open().unwrap();
        held_by(&tree, 5);
        let from = Position { number: 0, offset: 0, next: 1, salt: SALT };
        assert_eq!(replay(&tree, &segments, 5, from).unwrap(), 6);
        assert!(tree.get(b"k6").unwrap().is_some());
        assert!(tree.get(b"k5").unwrap().is_none(), "frames sled holds are not applied again");
    }

    #[test]
    fn replay_starts_where_the_checkpoint_says_and_ignores_other_runs() {
        let dir = tempfile::tempdir().unwrap();
        // Segment 0: this run's frames 1-3, then (from an earlier use of the file) frames of
        // another run that happen to carry the next numbers.
        let mut first = run(1..=3, SALT);
        let checkpoint_at = first.len() as u64;
        first.extend(run(4..=5, SALT + 1));
        // Segment 1 starts with another run's frame 4; segment 2 with this run's.
        let segments = [
            segment(dir.path(), 0, &first),
            segment(dir.path(), 1, &run(4..=9, SALT + 1)),
            segment(dir.path(), 2, &run(4..=5, SALT)),
        ];
        let tree = sled::Config::new().temporary(true).open().unwrap();
        held_by(&tree, 3);
        let from = Position { number: 0, offset: checkpoint_at, next: 4, salt: SALT };
        assert_eq!(replay(&tree, &segments, 3, from).unwrap(), 5);
        assert!(tree.get(b"k5").unwrap().is_some());
        assert!(tree.get(b"k1").unwrap().is_none(), "frames before the checkpoint are skipped");
    }

    #[test]
    fn replay_with_nothing_after_the_checkpoint_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = run(1..=3, SALT);
        let segments = [segment(dir.path(), 0, &bytes)];
        let tree = sled::Config::new().temporary(true).open().unwrap();
        held_by(&tree, 3);
        let from = Position { number: 0, offset: bytes.len() as u64, next: 4, salt: SALT };
        assert_eq!(replay(&tree, &segments, 3, from).unwrap(), 3);
        assert_eq!(tree.len(), 1);
    }
}
