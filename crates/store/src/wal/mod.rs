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
//! Frames and segments are in [`frame`].
//!
//! The batch applied to sled also sets the key `w` to the frame's LSN, so sled knows the last
//! frame it holds, and a checkpoint records in `c` where replay starts. Frames are written and
//! applied under one lock, so sled's order is the log's. On open, the log is followed from
//! `c` while each frame is whole (its CRC matches) and numbered one past the previous one, and
//! the frames after sled's LSN are applied; a torn or missing frame ends the log.
//!
//! Damage is told from an ordinary end, and a damaged store is refused, not opened with less
//! than was acknowledged (see [`recover`] and [`control`], and `docs/reliability.md`): sled
//! older than the log's last checkpoint (its files damaged, removed or restored from an older
//! copy), frames of the run after the end of the log, or a log that ends before the last
//! frame a sync made durable. Nothing is written before these checks, and no segment is reused
//! before its frames are known to be in sled. [`SledOptions::salvage`](crate::SledOptions)
//! opens such a store with what can be read and keeps the damaged files in `damaged-<time>/`.
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

mod control;
mod frame;
mod recover;

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt as _, FileExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use self::control::Control;
pub(crate) use self::frame::Writes;
use self::frame::{Segment, io, sync_dir};
use self::recover::{Position, frame_name, read_u64s, segment_name};
use crate::{Durability, StoreError};

/// The key, in the sessions tree, holding the LSN of the last frame applied to sled.
const LSN_KEY: &[u8] = b"w";
/// The key, in the sessions tree, of where replay starts (a [`Position`]: four u64s).
const CHECKPOINT_KEY: &[u8] = b"c";
/// How many emptied segments are kept for reuse.
const SPARES: usize = 2;
/// Numbers available to one opening of the store (see the module docs).
const RUN: u64 = 1 << 40;
/// The default size of a segment.
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;
/// How long the sync thread waits for the writers of its last round to come back, when there
/// were several (a single writer is never kept waiting).
const GATHER: Duration = Duration::from_micros(500);

/// Makes sled durable, with replay starting at `from` (and, when given, the LSN of the last
/// frame sled holds set to `lsn`), then records the checkpoint in the control file (`clean`
/// when the store is closing and nothing can be written after it).
fn checkpoint(
    tree: &sled::Tree,
    sled_files: &mut SledFiles,
    control: &Control,
    lsn: Option<u64>,
    from: Position,
    clean: bool,
) -> Result<(), String> {
    let mut batch = sled::Batch::default();
    batch.insert(CHECKPOINT_KEY, &from.encode());
    if let Some(lsn) = lsn {
        batch.insert(LSN_KEY, &lsn.to_be_bytes());
    }
    tree.apply_batch(batch).map_err(|e| e.to_string())?;
    sled_files.sync()?;
    control.record(from, clean)
}

/// The writers' state, under one lock.
#[derive(Debug)]
struct Log {
    active: Arc<Segment>,
    /// Where the next frame goes in `active`.
    offset: u64,
    /// The LSN of the next frame.
    next_lsn: u64,
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
    /// The salt of this run's checksums.
    salt: u64,
    control: Control,
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
        StoreError::backend_detail(format!(
            "the store's log failed ({first}); open the store again"
        ))
    }

    fn check(&self) -> Result<(), StoreError> {
        match self.failed.get() {
            Some(detail) => Err(StoreError::backend_detail(format!(
                "the store's log failed ({detail}); open the store again"
            ))),
            None => Ok(()),
        }
    }
}

/// A writer's request for durability: the segment its frame is in, the frame's LSN, and where
/// to answer.
type Request = (Arc<Segment>, u64, oneshot::Sender<Result<(), String>>);

/// The log. Dropping it stops its threads and waits for them.
#[derive(Debug)]
pub(crate) struct Wal {
    shared: Arc<Shared>,
    sync_requests: Option<mpsc::Sender<Request>>,
    checkpoint_requests: Option<mpsc::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    replayed: u64,
    /// The damage a salvaging open found, if any.
    salvaged: Option<String>,
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

/// What opening found of the log before and after opening sled: the control file, and any
/// damage seen so far.
#[derive(Debug)]
pub(crate) struct Precheck {
    found: Option<control::Found>,
    damage: Vec<String>,
    /// Where salvage keeps what it sets aside, once it has set something aside.
    pub(crate) aside: Option<PathBuf>,
}

impl Precheck {
    /// Reads the log's control file in `store_dir`, before sled is opened (sled rewrites damaged
    /// files as it opens them): a store whose log recorded a checkpoint and whose sled database
    /// file is gone is damaged.
    pub(crate) fn before_sled(store_dir: &Path) -> Precheck {
        let mut damage = Vec::new();
        let found = control::read(&store_dir.join("wal")).unwrap_or_else(|e| {
            damage.push(e);
            None
        });
        if found.is_some() && !store_dir.join("db").exists() {
            damage.push("sled's database file `db` is missing".into());
        }
        Precheck { found, damage, aside: None }
    }

    /// Checks, before anything is written to it, that sled holds the log's last checkpoint.
    pub(crate) fn check_sled(&mut self, db: &sled::Db, tree_name: &str) -> Result<(), StoreError> {
        let Some(found) = self.found else { return Ok(()) };
        let recorded = found.recorded.from;
        let held = if db.tree_names().iter().any(|n| n == tree_name.as_bytes()) {
            let tree = db.open_tree(tree_name).map_err(StoreError::backend)?;
            read_u64s::<4>(&tree, CHECKPOINT_KEY)?.map(Position::decode)
        } else {
            None
        };
        match held {
            None => self.damage.push(format!(
                "sled's database holds no checkpoint, but the log's last one is at {}: sled's \
                 files were damaged, removed or replaced",
                frame_name(recorded.next)
            )),
            Some(held) if held.next < recorded.next => self.damage.push(format!(
                "sled's database stops at the checkpoint at {}, but the log's last one is at {}: \
                 sled lost writes, or its files were restored from an older copy",
                frame_name(held.next),
                frame_name(recorded.next)
            )),
            Some(_) => {}
        }
        Ok(())
    }

    /// The damage found so far, as one sentence.
    pub(crate) fn damage(&self) -> Option<String> {
        (!self.damage.is_empty()).then(|| self.damage.join("; "))
    }
}

/// The error for a store the log's checks found damaged, with what to do.
pub(crate) fn damaged(store_dir: &Path, detail: String) -> StoreError {
    let path = store_dir.display();
    let detail = format!(
        "{detail}. It was not opened, and its log was left as it was. Restore the directory \
         from a backup, or open it with what can still be read (`verbatim salvage --data \
         {path}`, or `SledOptions::salvage`), which keeps the damaged files in \
         {path}/damaged-<time>/"
    );
    StoreError::Damaged { path: path.to_string(), detail }
}

impl Wal {
    /// Opens the log in `store_dir/wal`, replays into `tree` the frames sled lacks, and makes
    /// the result durable before any new frame is written.
    ///
    /// A damaged store (see the module docs) is refused with [`StoreError::Damaged`] before
    /// anything is written, unless `salvage` is set: then the frames that can be read are
    /// replayed, the log's files are moved to `damaged-<time>/wal/`, and the store opens.
    pub(crate) fn open(
        db: sled::Db,
        tree: sled::Tree,
        store_dir: &Path,
        segment_bytes: u64,
        mut precheck: Precheck,
        salvage: bool,
    ) -> Result<Wal, StoreError> {
        let backend = StoreError::backend_detail;
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
        let last = match read_u64s::<4>(&tree, CHECKPOINT_KEY)?.map(Position::decode) {
            // Every store that wrote a frame recorded where replay starts before it did.
            None => {
                if precheck.found.is_none() {
                    for segment in &segments {
                        if recover::written(segment).map_err(backend)? {
                            precheck.damage.push(format!(
                                "log segment {} holds frames, but neither sled nor the log's \
                                 control file records a checkpoint",
                                segment_name(segment.number)
                            ));
                            break;
                        }
                    }
                }
                if let Some(detail) = precheck.damage().filter(|_| !salvage) {
                    return Err(damaged(store_dir, detail));
                }
                held
            }
            Some(from) => {
                let followed = recover::follow(&segments, from).map_err(backend)?;
                // After a clean close nothing follows the last checkpoint: no frame can be lost.
                let clean = precheck
                    .found
                    .is_some_and(|found| found.recorded.clean && found.recorded.from == from);
                if !clean {
                    let mark = precheck.found.and_then(|found| found.mark);
                    let damage = recover::log_damage(&segments, from, &followed, held, mark)
                        .map_err(backend)?;
                    precheck.damage.extend(damage);
                }
                if let Some(detail) = precheck.damage().filter(|_| !salvage) {
                    return Err(damaged(store_dir, detail));
                }
                recover::apply(&tree, &followed.frames, held)?.max(held)
            }
        };
        let replayed = last - held;

        // Salvage: what could be read is in sled; the log's files are kept aside, not reused.
        let salvaged = match precheck.damage() {
            Some(detail) => {
                let aside = match precheck.aside.take() {
                    Some(aside) => aside,
                    None => crate::salvage::aside_dir(store_dir).map_err(backend)?,
                };
                recover::set_aside(&dir, std::mem::take(&mut segments), &aside).map_err(backend)?;
                Some(format!("{detail} (the damaged files are kept in {})", aside.display()))
            }
            None => None,
        };
        let last_seq = match (&salvaged, precheck.found) {
            (None, Some(found)) => found.recorded.seq,
            _ => 0,
        };

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
        let control = Control::open(&dir, last_seq).map_err(backend)?;
        let mut sled_files = SledFiles::new(db, store_dir).map_err(backend)?;
        let from = Position { number: active.number, offset: 0, next: next_lsn, salt };
        checkpoint(&tree, &mut sled_files, &control, Some(next_lsn - 1), from, false)
            .map_err(backend)?;

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
        let log = Log { active, offset: 0, next_lsn, sealed: Vec::new(), spares, next_file };

        let shared = Arc::new(Shared {
            dir,
            tree,
            segment_bytes,
            salt,
            control,
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
            salvaged,
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
        let frame = writes.seal(lsn, shared.salt);
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
            Durability::Durable => Some(self.request_sync(Arc::clone(active), lsn)?),
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

    /// Asks the sync thread to sync every frame written so far, the last of them (`lsn`) in
    /// `segment`. Called under the log's lock, so requests arrive in the order of their frames.
    fn request_sync(
        &self,
        segment: Arc<Segment>,
        lsn: u64,
    ) -> Result<oneshot::Receiver<Result<(), String>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        match &self.sync_requests {
            Some(requests) if requests.send((segment, lsn, reply)).is_ok() => Ok(answer),
            _ => Err(StoreError::backend_detail("the sync thread has stopped")),
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

    /// The damage a salvaging open found, if it found any.
    pub(crate) fn salvaged(&self) -> Option<&str> {
        self.salvaged.as_deref()
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
            Err(_) => Err(StoreError::backend_detail("the sync thread has stopped")),
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
            // The mark lets a later opening tell a lost tail from the end of the log. It is
            // only a second witness: a failure to write it does not fail the writes.
            let lsn = waiting.last().expect("one request at least").1;
            let _ = shared.control.mark(shared.salt, lsn);
        }
        for (_, _, reply) in waiting {
            let _ = reply.send(result.clone());
        }
    }
}

/// Makes sled durable each time the log moves to another segment, then frees the segments
/// it covers; and once more when the store closes, so that opening it again replays nothing.
fn checkpoint_loop(shared: &Shared, sled_files: &mut SledFiles, incoming: &mpsc::Receiver<()>) {
    while incoming.recv().is_ok() {
        while incoming.try_recv().is_ok() {}
        run_checkpoint(shared, sled_files, false);
    }
    // The store is closing: no writer is left, so nothing can follow this checkpoint.
    run_checkpoint(shared, sled_files, true);
}

fn run_checkpoint(shared: &Shared, sled_files: &mut SledFiles, clean: bool) {
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
            salt: shared.salt,
        };
        (log.next_lsn - 1, from)
    };
    if let Err(e) = checkpoint(&shared.tree, sled_files, &shared.control, None, from, clean) {
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
