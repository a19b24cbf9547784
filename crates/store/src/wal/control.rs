//! The log's control file, `wal/control`: what the log knows about sled, kept outside sled.
//!
//! sled records where replay starts (its key `c`), but when sled's own files are damaged or
//! removed it comes back older or empty, and nothing in it then says that anything is missing.
//! The control file keeps a second copy of every checkpoint, so opening the store can tell.
//! It also keeps the last frame a sync made durable (the *mark*), so a log whose tail was
//! truncated, zeroed or removed is told from a log that simply ended.
//!
//! | offset | bytes | what |
//! |--------|-------|------|
//! | 0, 64  | 49    | two checkpoint slots, written in turn: `VBWC`, sequence number, segment, offset, next LSN, salt (u64s), clean close (u8), CRC-32 of the rest |
//! | 128    | 24    | the mark: `VBWM`, salt, LSN (u64s), CRC-32 of the rest |
//!
//! A checkpoint is written, and synced, after sled is durable, so sled is never behind it
//! unless sled lost data. The slot with the higher sequence number that passes its CRC is the
//! last checkpoint: a slot torn by a power cut leaves the other. The mark is written after
//! each sync of the log, without a sync of its own: after a power cut it may be older than
//! the log, never newer.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Position;
use super::frame::{io, sync_dir};

const SLOT_MAGIC: &[u8; 4] = b"VBWC";
const MARK_MAGIC: &[u8; 4] = b"VBWM";
const SLOT_BYTES: usize = 49;
const SLOT_AT: [u64; 2] = [0, 64];
const MARK_AT: u64 = 128;
const MARK_BYTES: usize = 24;
/// The file's size.
const FILE_BYTES: u64 = 4096;
/// The file's name in the log's directory.
pub(super) const NAME: &str = "control";

/// The last checkpoint the control file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Recorded {
    /// Where replay starts.
    pub(super) from: Position,
    /// Whether the store was closed after it, with nothing written since.
    pub(super) clean: bool,
    /// Its number among checkpoints (which slot it is in).
    pub(super) seq: u64,
}

/// The last frame a sync made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    /// The salt of its run.
    pub(super) salt: u64,
    /// Its LSN.
    pub(super) lsn: u64,
}

/// What the control file held when the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    /// The last checkpoint.
    pub(super) recorded: Recorded,
    /// The mark, unless it is absent or torn.
    pub(super) mark: Option<Mark>,
}

/// Reads the control file in `wal_dir` without changing anything: `Ok(None)` when there is
/// none (a new store, or one written before the file existed), an error naming the damage
/// when neither checkpoint slot is whole.
pub(super) fn read(wal_dir: &Path) -> Result<Option<Found>, String> {
    let path = wal_dir.join(NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("reading", &path, e)),
    };
    let recorded = SLOT_AT
        .iter()
        .filter_map(|&at| decode_slot(bytes.get(at as usize..at as usize + SLOT_BYTES)?))
        .max_by_key(|r| r.seq);
    let Some(recorded) = recorded else {
        return Err(format!(
            "the log's control file {} holds no whole checkpoint ({} bytes)",
            path.display(),
            bytes.len()
        ));
    };
    let mark = bytes.get(MARK_AT as usize..MARK_AT as usize + MARK_BYTES).and_then(decode_mark);
    Ok(Some(Found { recorded, mark }))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn crc_ok(bytes: &[u8]) -> bool {
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    crc32fast::hash(body).to_be_bytes() == crc
}

fn decode_slot(bytes: &[u8]) -> Option<Recorded> {
    if &bytes[..4] != SLOT_MAGIC || !crc_ok(bytes) {
        return None;
    }
    let from = Position {
        number: u64_at(bytes, 12),
        offset: u64_at(bytes, 20),
        next: u64_at(bytes, 28),
        salt: u64_at(bytes, 36),
    };
    Some(Recorded { from, clean: bytes[44] == 1, seq: u64_at(bytes, 4) })
}

fn encode_slot(recorded: &Recorded) -> [u8; SLOT_BYTES] {
    let mut out = [0u8; SLOT_BYTES];
    out[..4].copy_from_slice(SLOT_MAGIC);
    let from = recorded.from;
    for (n, value) in
        [recorded.seq, from.number, from.offset, from.next, from.salt].into_iter().enumerate()
    {
        out[4 + n * 8..12 + n * 8].copy_from_slice(&value.to_be_bytes());
    }
    out[44] = u8::from(recorded.clean);
    let crc = crc32fast::hash(&out[..45]);
    out[45..].copy_from_slice(&crc.to_be_bytes());
    out
}

fn decode_mark(bytes: &[u8]) -> Option<Mark> {
    if &bytes[..4] != MARK_MAGIC || !crc_ok(bytes) {
        return None;
    }
    Some(Mark { salt: u64_at(bytes, 4), lsn: u64_at(bytes, 12) })
}

fn encode_mark(mark: Mark) -> [u8; MARK_BYTES] {
    let mut out = [0u8; MARK_BYTES];
    out[..4].copy_from_slice(MARK_MAGIC);
    out[4..12].copy_from_slice(&mark.salt.to_be_bytes());
    out[12..20].copy_from_slice(&mark.lsn.to_be_bytes());
    let crc = crc32fast::hash(&out[..20]);
    out[20..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The control file, open for writing: checkpoints from the checkpoint thread, marks from the
/// sync thread.
#[derive(Debug)]
pub(super) struct Control {
    path: PathBuf,
    file: File,
    /// The sequence number of the last checkpoint written.
    seq: AtomicU64,
}

impl Control {
    /// Opens the control file in `wal_dir`, creating it (synced, with its directory entry)
    /// when missing; checkpoints go on numbering after `last_seq`.
    pub(super) fn open(wal_dir: &Path, last_seq: u64) -> Result<Control, String> {
        let path = wal_dir.join(NAME);
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        if !existed {
            // Sized once, so that a mark never grows the file.
            file.set_len(FILE_BYTES).map_err(|e| io("sizing", &path, e))?;
            file.sync_all().map_err(|e| io("syncing", &path, e))?;
            sync_dir(wal_dir)?;
        }
        Ok(Control { path, file, seq: AtomicU64::new(last_seq) })
    }

    /// Records a checkpoint sled has made durable, and syncs it.
    pub(super) fn record(&self, from: Position, clean: bool) -> Result<(), String> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = encode_slot(&Recorded { from, clean, seq });
        self.file
            .write_all_at(&slot, SLOT_AT[(seq % 2) as usize])
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io("writing", &self.path, e))
    }

    /// Records that frames up to `lsn` of the run with `salt` are durable. Not synced: see the
    /// module docs.
    pub(super) fn mark(&self, salt: u64, lsn: u64) -> Result<(), String> {
        self.file
            .write_all_at(&encode_mark(Mark { salt, lsn }), MARK_AT)
            .map_err(|e| io("writing", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(number: u64) -> Position {
        Position { number, offset: 7, next: 1 << 40, salt: 99 }
    }

    #[test]
    fn the_last_whole_checkpoint_and_the_mark_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let control = Control::open(dir.path(), 0).unwrap();
        control.record(at(1), false).unwrap();
        control.record(at(2), true).unwrap();
        control.mark(99, 5).unwrap();
        let found = read(dir.path()).unwrap().unwrap();
        assert_eq!(found.recorded, Recorded { from: at(2), clean: true, seq: 2 });
        assert_eq!(found.mark, Some(Mark { salt: 99, lsn: 5 }));
        // Opened again, it numbers on and overwrites the older slot.
        let control = Control::open(dir.path(), found.recorded.seq).unwrap();
        control.record(at(3), false).unwrap();
        let found = read(dir.path()).unwrap().unwrap();
        assert_eq!(found.recorded, Recorded { from: at(3), clean: false, seq: 3 });
    }

    #[test]
    fn a_torn_slot_leaves_the_other_and_two_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::open(dir.path(), 0).unwrap();
        control.record(at(1), false).unwrap();
        control.record(at(2), false).unwrap();
        control.mark(99, 5).unwrap();
        let path = dir.path().join(NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        // The newer slot (2, in the first place) torn: the older one is the checkpoint.
        bytes[30] ^= 1;
        bytes[MARK_AT as usize + 13] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let found = read(dir.path()).unwrap().unwrap();
        assert_eq!(found.recorded.from, at(1));
        assert_eq!(found.mark, None, "a torn mark is no mark");
        bytes[64 + 30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(err.contains("holds no whole checkpoint"), "{err}");
    }
}
