//! Making sled's writes durable: flush, then `fdatasync` of its files, shared by the appends
//! that arrive together (group commit).
//!
//! sled 0.34's `flush()` writes its log with `sync_file_range`, which survives a process crash
//! but not a power cut, and values or nodes too large for a log segment go to files under
//! `blobs/` that sled never syncs. So after `flush()` the data file is `fdatasync`ed, and so is
//! every blob file not synced before, and the `blobs` directory itself.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use crate::StoreError;

#[derive(Debug, Default)]
struct State {
    /// The next ticket to hand out.
    next_ticket: u64,
    /// Every ticket below this is durable.
    durable_below: u64,
    /// A sync is running.
    syncing: bool,
    /// Blob files already synced.
    synced_blobs: HashSet<PathBuf>,
}

/// Group commit: a caller whose write has committed takes a ticket and waits until a sync
/// that started after it has finished. One caller at a time runs the sync; the others wait
/// and are all covered by it.
#[derive(Debug)]
pub(crate) struct Syncer {
    db: sled::Db,
    data_file: File,
    blobs: PathBuf,
    state: Mutex<State>,
    done: Condvar,
    syncs: AtomicU64,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

impl Syncer {
    pub(crate) fn new(db: sled::Db, dir: &Path) -> Result<Syncer, StoreError> {
        let data = dir.join("db");
        let data_file = File::open(&data).map_err(|e| io("opening", &data, e))?;
        Ok(Syncer {
            db,
            data_file,
            blobs: dir.join("blobs"),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            syncs: AtomicU64::new(0),
        })
    }

    /// How many times the files were synced (for tests and figures).
    pub(crate) fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns once everything written before the call is on stable storage.
    pub(crate) fn wait_durable(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        loop {
            if state.durable_below > ticket {
                return Ok(());
            }
            if state.syncing {
                state = self.done.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            state.syncing = true;
            let covers = state.next_ticket;
            let known = std::mem::take(&mut state.synced_blobs);
            drop(state);
            let result = self.sync(known);
            state = self.lock();
            state.syncing = false;
            let outcome = match result {
                Ok(known) => {
                    state.synced_blobs = known;
                    state.durable_below = state.durable_below.max(covers);
                    Ok(())
                }
                Err((known, e)) => {
                    state.synced_blobs = known;
                    Err(e)
                }
            };
            self.done.notify_all();
            outcome?;
        }
    }

    /// One flush and sync of every file sled wrote.
    #[allow(clippy::type_complexity)]
    fn sync(
        &self,
        mut known: HashSet<PathBuf>,
    ) -> Result<HashSet<PathBuf>, (HashSet<PathBuf>, StoreError)> {
        let result = (|| {
            self.db.flush().map_err(|e| StoreError::Backend(format!("flush: {e}")))?;
            self.data_file.sync_data().map_err(|e| io("syncing", Path::new("db"), e))?;
            self.sync_blobs(&mut known)?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })();
        match result {
            Ok(()) => Ok(known),
            Err(e) => Err((known, e)),
        }
    }

    fn sync_blobs(&self, known: &mut HashSet<PathBuf>) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("listing", &self.blobs, e)),
        };
        let mut new = false;
        // Only blobs still present are remembered: sled removes those it no longer needs.
        let mut present = HashSet::with_capacity(known.len());
        for entry in entries {
            let path = entry.map_err(|e| io("listing", &self.blobs, e))?.path();
            if known.contains(&path) {
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
        *known = present;
        if new {
            let dir = File::open(&self.blobs).map_err(|e| io("opening", &self.blobs, e))?;
            dir.sync_all().map_err(|e| io("syncing", &self.blobs, e))?;
        }
        Ok(())
    }
}
