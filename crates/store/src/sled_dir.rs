//! The sled store's directory: readable by its owner only, its layout version brought up to
//! date when it opens, and sled's file lock waited for when it closes.

use std::path::{Path, PathBuf};

use crate::StoreError;
use crate::sled_store::SCHEMA_VERSION;

const SCHEMA_KEY: &[u8] = b"verbatim.schema";

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(e)
}

/// Waits, when dropped, until sled's background threads have let go of the database's files
/// (and their lock), a moment after the last handle on it went: so a store dropped can be
/// opened again at once, in this process or another.
#[derive(Debug)]
pub(crate) struct Released(pub(crate) PathBuf);

impl Drop for Released {
    fn drop(&mut self) {
        wait_until_released(&self.0);
    }
}

/// Waits (two seconds at most) until no one holds the lock on the sled database in `dir`
/// (the lock sled takes, with the same crate).
pub(crate) fn wait_until_released(dir: &Path) {
    use fs2::FileExt as _;
    let Ok(file) = std::fs::File::open(dir.join("db")) else { return };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while file.try_lock_exclusive().is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = fs2::FileExt::unlock(&file);
}

fn set_schema(db: &sled::Db, version: u32) -> Result<(), StoreError> {
    db.insert(SCHEMA_KEY, &version.to_be_bytes()).map_err(backend)?;
    db.flush().map_err(backend)?;
    Ok(())
}

/// Reads the schema version, writes it into a new store, refuses a newer one.
pub(crate) fn migrate(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    let stored = db.get(SCHEMA_KEY).map_err(backend)?;
    let version = match stored {
        None => {
            set_schema(db, SCHEMA_VERSION)?;
            SCHEMA_VERSION
        }
        Some(bytes) => {
            let corrupt = |_| StoreError::corrupt("-", "schema", format!("{} bytes", bytes.len()));
            u32::from_be_bytes(bytes.as_ref().try_into().map_err(corrupt)?)
        }
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    // Each step upgrades one version (migrations/sled/ describes each layout).
    if version < 2 {
        // Layout 2 adds the write-ahead log, which the store creates when it opens; the sled
        // keys are unchanged.
        set_schema(db, 2)?;
    }
    if version < 3 {
        // Layout 3 seals the values it writes with a checksum (`crate::sealed`); values
        // written before are read as they are.
        set_schema(db, 3)?;
    }
    Ok(())
}

/// Creates the store's directory readable by its owner only (mode 0700), or narrows an
/// existing one to that: sessions hold whole conversations, and sled creates its files with
/// the process's umask, so the directory is what keeps other users out.
pub(crate) fn owner_only_dir(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let failed = |what: &str, e: std::io::Error| {
        StoreError::backend_with(format!("{what} {}: {e}", path.display()), e)
    };
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| failed("creating", e))?;
    }
    let mode = std::fs::metadata(path).map_err(|e| failed("reading", e))?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(|e| failed("restricting", e))?;
    }
    Ok(())
}
