//! The log's frames and the segment files that hold them.
//!
//! A frame is
//!
//! | bytes | what                                                          |
//! |-------|---------------------------------------------------------------|
//! | 4     | length of the payload (u32, big-endian)                       |
//! | 4     | CRC-32 of the run's salt, the next 8 bytes and the payload    |
//! | 8     | log sequence number (LSN, u64)                                |
//! | ...   | payload: changes, each `1` key value (insert) or `0` key (remove), with u32 lengths |

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The size of a frame's header.
pub(super) const HEADER: usize = 16;

pub(super) fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// The changes of one write, as a frame payload and as the sled batch it becomes.
pub(crate) struct Writes {
    /// The frame: header space, then the payload.
    frame: Vec<u8>,
    pub(super) batch: sled::Batch,
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
    pub(super) fn seal(&mut self, lsn: u64, salt: u64) -> &[u8] {
        let len = u32::try_from(self.frame.len() - HEADER).expect("a frame is under 4 GiB");
        self.frame[8..16].copy_from_slice(&lsn.to_be_bytes());
        let crc = checksum(salt, &self.frame[8..]);
        self.frame[..4].copy_from_slice(&len.to_be_bytes());
        self.frame[4..8].copy_from_slice(&crc.to_be_bytes());
        &self.frame
    }
}

/// The sled batch a frame's payload describes.
pub(super) fn decode(payload: &[u8]) -> Option<sled::Batch> {
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
pub(super) fn checksum(salt: u64, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_be_bytes());
    hasher.update(body);
    hasher.finalize()
}

/// Reads at most `limit` frames from `at` on, through `read_at` over `size` bytes, while each
/// is whole (its CRC matches) and numbered one past the previous one: (LSN, payload).
pub(super) fn read_frames(
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
pub(super) struct Segment {
    pub(super) path: PathBuf,
    /// The number in its name.
    pub(super) number: u64,
    pub(super) file: File,
    pub(super) size: u64,
}

impl Segment {
    pub(super) fn open(path: PathBuf, number: u64) -> Result<Segment, String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        let size = file.metadata().map_err(|e| io("reading", &path, e))?.len();
        Ok(Segment { path, number, file, size })
    }

    /// At most `limit` consecutive whole frames of the run with `salt` from `offset` on.
    pub(super) fn frames(
        &self,
        offset: u64,
        limit: usize,
        salt: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, String> {
        read_frames(|buf, at| self.file.read_exact_at(buf, at), self.size, offset, limit, salt)
            .map_err(|e| io("reading", &self.path, e))
    }

    /// A new segment of `size` zero bytes, synced with its directory entry.
    pub(super) fn create(dir: &Path, number: u64, size: u64) -> Result<Segment, String> {
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

pub(super) fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("syncing", dir, e))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::wal::RUN;

    pub(crate) const SALT: u64 = 0x5a17;

    pub(crate) fn salted(lsn: u64, salt: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut writes = Writes::default();
        writes.insert(key, value);
        writes.remove(b"gone");
        writes.seal(lsn, salt).to_vec()
    }

    pub(crate) fn frame(lsn: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        salted(lsn, SALT, key, value)
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
}
