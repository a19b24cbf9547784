//! Making sled's writes durable: flush, then `fdatasync` of its files, shared by the appends
//! that arrive together (group commit).
//!
//! sled 0.34's `flush()` writes its log with `sync_file_range`, which survives a process crash
//! but not a power cut, and values or nodes too large for a log segment go to files under
//! `blobs/` that sled never syncs. So after `flush()` the data file is `fdatasync`ed, and so is
//! every blob file not synced before, and the `blobs` directory itself.
//!
//! One thread does the syncing. A writer whose batch has been applied sends it a request and
//! awaits the answer; the thread takes every request waiting, runs one sync (which covers every
//! write applied before the requests were sent) and answers them all.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::StoreError;

type Reply = oneshot::Sender<Result<(), String>>;

/// How long the sync thread waits for the writers of its last round to come back, when there
/// were several (a single writer is never kept waiting).
const GATHER: std::time::Duration = std::time::Duration::from_micros(500);

/// The handle writers use. Dropping it stops the thread and waits for it, so that sled's
/// files (and its lock on them) are released when the store is dropped.
#[derive(Debug)]
pub(crate) struct Syncer {
    requests: Option<mpsc::Sender<Reply>>,
    thread: Option<std::thread::JoinHandle<()>>,
    syncs: Arc<AtomicU64>,
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// What the syncing thread owns.
struct Files {
    db: sled::Db,
    data_file: File,
    blobs: PathBuf,
    /// Blob files already synced.
    synced_blobs: HashSet<PathBuf>,
}

impl Syncer {
    pub(crate) fn new(db: sled::Db, dir: &Path) -> Result<Syncer, StoreError> {
        let data = dir.join("db");
        let data_file =
            File::open(&data).map_err(|e| StoreError::Backend(io("opening", &data, e)))?;
        let mut files =
            Files { db, data_file, blobs: dir.join("blobs"), synced_blobs: HashSet::new() };
        let (requests, incoming) = mpsc::channel::<Reply>();
        let syncs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&syncs);
        let thread = std::thread::Builder::new()
            .name("verbatim-store-sync".into())
            .spawn(move || {
                let mut last_round = 1;
                while let Ok(first) = incoming.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(incoming.try_iter());
                    // When the last sync served several writers, they are likely writing
                    // again: give them a moment to arrive so one sync serves them all.
                    let deadline = std::time::Instant::now() + GATHER;
                    while last_round > 1 && waiting.len() < last_round {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        match incoming.recv_timeout(left) {
                            Ok(reply) => waiting.push(reply),
                            Err(_) => break,
                        }
                    }
                    last_round = waiting.len();
                    let result = files.sync();
                    if result.is_ok() {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    for reply in waiting {
                        let _ = reply.send(result.clone());
                    }
                }
            })
            .map_err(|e| StoreError::Backend(format!("starting the sync thread: {e}")))?;
        Ok(Syncer { requests: Some(requests), thread: Some(thread), syncs })
    }

    /// How many times the files were synced (for tests and figures).
    pub(crate) fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Returns once everything written before the call is on stable storage.
    pub(crate) async fn wait_durable(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .expect("present until dropped")
            .send(reply)
            .map_err(|_| StoreError::Backend("the sync thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the sync thread has stopped".into()))?
            .map_err(StoreError::Backend)
    }
}

impl Files {
    /// One flush and sync of every file sled wrote.
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
        let mut present = HashSet::with_capacity(self.synced_blobs.len());
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
            let dir = File::open(&self.blobs).map_err(|e| io("opening", &self.blobs, e))?;
            dir.sync_all().map_err(|e| io("syncing", &self.blobs, e))?;
        }
        Ok(())
    }
}
