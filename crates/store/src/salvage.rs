//! Opening sled's database when its files may be damaged, and rebuilding it from what can
//! still be read ([`SledOptions::salvage`](crate::SledOptions)).
//!
//! sled 0.34 reads a damaged database in one of three ways: it stops at the damage and comes
//! back older (or empty), it returns an error, or it panics ("tried to serialize
//! Uninitialized"). The first is caught by the log's checks (`wal::Precheck`); the other two
//! become [`StoreError::Damaged`] here. A database sled came back older from keeps the damaged
//! bytes in its file, and loses again whatever is written after them at its next opening, so
//! salvage does not go on writing into it: it copies every key sled can read into a new
//! database that takes its place, and keeps the old files.

use std::path::{Path, PathBuf};

use crate::StoreError;

/// The files of sled's own in a store's directory (the log's are under `wal/`).
fn is_sled_file(name: &str) -> bool {
    matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap.")
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(e)
}

fn damaged(path: &Path, detail: String) -> StoreError {
    StoreError::Damaged { path: path.display().to_string(), detail }
}

/// What a panic carried, as text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Runs `work` on sled, turning a panic inside sled into [`StoreError::Damaged`].
fn guarded<T>(path: &Path, work: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(damaged(
            path,
            format!(
                "sled cannot read its database ({}); restore the directory from a backup",
                panic_text(&*panic)
            ),
        ))
    })
}

/// Opens sled's database in `path`, with its own periodic flush off (the log makes writes
/// durable, and checkpoints flush sled when the log needs it).
pub(crate) fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    guarded(path, || {
        sled::Config::new().path(path).flush_every_ms(None).open().map_err(|e| match e {
            // The system's words ("Resource temporarily unavailable", an `Os { code: 11 }`)
            // say less than what it means: another process has the directory open.
            sled::Error::Io(io) if io.to_string().contains("lock") => StoreError::Locked {
                path: path.display().to_string(),
                detail: "another verbatim process (a chat, a demo or an application) has it open; stop that process or give another --data directory".into(),
            },
            sled::Error::Corruption { .. } => damaged(
                path,
                format!(
                    "sled reports its database corrupt ({e}); restore the directory from a backup"
                ),
            ),
            other => {
                StoreError::backend_with(format!("opening {}: {other}", path.display()), other)
            }
        })
    })
}

/// A new folder `damaged-<time>` in the store's directory, where salvage keeps what it sets
/// aside.
pub(crate) fn aside_dir(store_dir: &Path) -> Result<PathBuf, String> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = store_dir.join(format!("damaged-{secs}"));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = store_dir.join(format!("damaged-{secs}-{n}"));
    }
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&aside)
        .map_err(|e| format!("creating {}: {e}", aside.display()))?;
    Ok(aside)
}

fn moved(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::rename(from, to).map_err(|e| {
        StoreError::backend_with(format!("moving {} to {}: {e}", from.display(), to.display()), e)
    })
}

/// Moves sled's own files in `path` (a database it cannot use) into `aside`.
pub(crate) fn set_aside_sled_files(path: &Path, aside: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(path).map_err(backend)? {
        let entry = entry.map_err(backend)?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_sled_file) {
            moved(&entry.path(), &aside.join(&name))?;
        }
    }
    Ok(())
}

/// Copies every key sled can read of `db` (in `path`) into a new database that then takes its
/// place; the old files move to `aside`. Returns the new database, open.
pub(crate) fn rebuild(db: sled::Db, path: &Path, aside: &Path) -> Result<sled::Db, StoreError> {
    let building = path.join("rebuilding");
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(backend)?;
    }
    let fresh = open_sled(&building)?;
    guarded(path, || {
        for name in db.tree_names() {
            let (from, to) =
                (db.open_tree(&name).map_err(backend)?, fresh.open_tree(&name).map_err(backend)?);
            for item in from.iter() {
                let (key, value) = item.map_err(|e| {
                    damaged(path, format!("sled cannot read a key of its database back ({e})"))
                })?;
                to.insert(key, value).map_err(backend)?;
            }
        }
        fresh.flush().map_err(backend)?;
        Ok(())
    })?;
    drop(fresh);
    drop(db);
    crate::sled_dir::wait_until_released(&building);
    crate::sled_dir::wait_until_released(path);
    set_aside_sled_files(path, aside)?;
    for entry in std::fs::read_dir(&building).map_err(backend)? {
        let entry = entry.map_err(backend)?;
        moved(&entry.path(), &path.join(entry.file_name()))?;
    }
    std::fs::remove_dir(&building).map_err(backend)?;
    for dir in [path, aside] {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(backend)?;
    }
    open_sled(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuilt_database_holds_every_key_and_the_old_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_sled(dir.path()).unwrap();
        db.insert(b"top", b"1").unwrap();
        let tree = db.open_tree("sessions").unwrap();
        for n in 0..500u32 {
            tree.insert(n.to_be_bytes(), vec![n as u8; 100]).unwrap();
        }
        db.flush().unwrap();
        let aside = aside_dir(dir.path()).unwrap();
        let db = rebuild(db, dir.path(), &aside).unwrap();
        assert_eq!(db.get(b"top").unwrap().unwrap().as_ref(), b"1");
        let tree = db.open_tree("sessions").unwrap();
        assert_eq!(tree.len(), 500);
        assert_eq!(tree.get(7u32.to_be_bytes()).unwrap().unwrap().as_ref(), &[7u8; 100][..]);
        assert!(aside.join("db").exists() && aside.join("conf").exists());
        assert!(!dir.path().join("rebuilding").exists());
    }

    #[test]
    fn a_panic_inside_sled_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let result: Result<(), _> =
            guarded(dir.path(), || panic!("tried to serialize Uninitialized"));
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("is damaged: sled cannot read its database (tried to serialize"),
            "{err}"
        );
    }
}
