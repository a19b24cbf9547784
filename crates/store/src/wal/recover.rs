//! Opening the log after the process stopped: following it from the last checkpoint, applying
//! what sled lacks, and telling damage from an ordinary end of the log.
//!
//! The log ends at its first frame that is torn, fails its CRC or is out of sequence. That is
//! an ordinary end when the process stopped while writing it. It is damage when frames of the
//! same run come after it (a bit flipped mid-log, a segment removed), or when the control
//! file's mark says later frames were made durable (a tail truncated, zeroed or removed).

use std::path::Path;

use super::control::Mark;
use super::frame::{HEADER, Segment, checksum, decode, io, sync_dir};
use super::{LSN_KEY, RUN};
use crate::StoreError;

/// `N` big-endian u64s stored under `key`, if present.
pub(super) fn read_u64s<const N: usize>(
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<[u64; N]>, StoreError> {
    let Some(bytes) = tree.get(key).map_err(StoreError::backend)? else {
        return Ok(None);
    };
    if bytes.len() != 8 * N {
        return Err(StoreError::corrupt(
            "-",
            format!("log key {}", String::from_utf8_lossy(key)),
            format!("{} bytes, expected {}", bytes.len(), 8 * N),
        ));
    }
    let mut out = [0u64; N];
    for (n, chunk) in bytes.chunks_exact(8).enumerate() {
        out[n] = u64::from_be_bytes(chunk.try_into().unwrap());
    }
    Ok(Some(out))
}

/// Where replay starts, as a checkpoint recorded it (sled's key `c`: four u64s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    /// The segment.
    pub(super) number: u64,
    /// The byte offset in it.
    pub(super) offset: u64,
    /// The LSN of the frame written there (or at the start of the next segment).
    pub(super) next: u64,
    /// The salt of the run writing from there.
    pub(super) salt: u64,
}

impl Position {
    pub(super) fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (n, value) in [self.number, self.offset, self.next, self.salt].into_iter().enumerate() {
            out[n * 8..n * 8 + 8].copy_from_slice(&value.to_be_bytes());
        }
        out
    }

    pub(super) fn decode([number, offset, next, salt]: [u64; 4]) -> Position {
        Position { number, offset, next, salt }
    }
}

/// A frame's number as people read it: its place in its run.
pub(super) fn frame_name(lsn: u64) -> String {
    format!("frame {} of run {}", lsn % RUN, lsn / RUN)
}

/// A segment's file name.
pub(super) fn segment_name(number: u64) -> String {
    format!("{number:010}.wal")
}

/// The log from a checkpoint on, as far as it is whole.
#[derive(Debug)]
pub(super) struct Followed {
    /// The frames, in order: (LSN, payload).
    pub(super) frames: Vec<(u64, Vec<u8>)>,
    /// The LSN of the last frame (one before the checkpoint's `next` when there is none).
    pub(super) end: u64,
    /// Where it ended: the segment and the byte offset after its last frame.
    pub(super) stopped: Option<(u64, u64)>,
}

/// Follows the log from `from`: the frames there, then those at the start of the segment whose
/// first frame has the next number, and so on, while each frame is whole and numbered one past
/// the previous one. Reads only.
pub(super) fn follow(segments: &[Segment], from: Position) -> Result<Followed, String> {
    let mut frames = Vec::new();
    let mut next = from.next;
    let mut at = segments.iter().find(|s| s.number == from.number).map(|s| (s, from.offset));
    let mut stopped = at.map(|(s, offset)| (s.number, offset));
    while let Some((segment, mut offset)) = at {
        for (lsn, payload) in segment.frames(offset, usize::MAX, from.salt)? {
            if lsn != next {
                break;
            }
            next += 1;
            offset += (HEADER + payload.len()) as u64;
            frames.push((lsn, payload));
        }
        stopped = Some((segment.number, offset));
        // The log goes on at the start of another segment, if one starts with the next frame.
        at = None;
        for segment in segments {
            let first = segment.frames(0, 1, from.salt)?;
            if first.first().map(|(lsn, _)| *lsn) == Some(next) {
                at = Some((segment, 0));
                break;
            }
        }
    }
    Ok(Followed { frames, end: next - 1, stopped })
}

/// Applies to sled, in order, the frames after `held` (the last one sled holds). Returns the
/// last LSN sled then holds.
pub(super) fn apply(
    tree: &sled::Tree,
    frames: &[(u64, Vec<u8>)],
    held: u64,
) -> Result<u64, StoreError> {
    let mut last = held;
    for (lsn, payload) in frames {
        if *lsn <= held {
            // sled wrote this one itself before the process stopped.
            continue;
        }
        let mut batch = decode(payload).ok_or_else(|| {
            StoreError::corrupt(
                "-",
                format!("log {}", frame_name(*lsn)),
                "a whole frame whose changes do not parse",
            )
        })?;
        batch.insert(LSN_KEY, &lsn.to_be_bytes());
        tree.apply_batch(batch).map_err(StoreError::backend)?;
        last = *lsn;
    }
    Ok(last)
}

/// The first frame of the run with `salt` numbered after `after`, anywhere in `segments`:
/// (segment, byte offset, LSN). Every byte offset is tried, so a frame is found after a
/// damaged one whatever the damage did to its length.
pub(super) fn frame_beyond(
    segments: &[Segment],
    salt: u64,
    after: u64,
) -> Result<Option<(u64, u64, u64)>, String> {
    let run = (after + 1) / RUN;
    for segment in segments {
        let bytes = std::fs::read(&segment.path).map_err(|e| io("reading", &segment.path, e))?;
        for at in 0..bytes.len().saturating_sub(HEADER - 1) {
            let lsn = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
            if lsn <= after || lsn / RUN != run {
                continue;
            }
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let Some(body) = bytes.get(at + 8..at + HEADER + len) else { continue };
            let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap());
            if checksum(salt, body) == crc {
                return Ok(Some((segment.number, at as u64, lsn)));
            }
        }
    }
    Ok(None)
}

/// What is wrong with a log that replay followed from `from` to `followed.end`, sled holding
/// frames up to `held`, if anything: an error naming the damage, or `None` when the log ended
/// where a stopped process leaves it.
pub(super) fn log_damage(
    segments: &[Segment],
    from: Position,
    followed: &Followed,
    held: u64,
    mark: Option<Mark>,
) -> Result<Option<String>, String> {
    if !segments.iter().any(|s| s.number == from.number) {
        return Ok(Some(format!(
            "log segment {}, where replay starts, is missing",
            segment_name(from.number)
        )));
    }
    let end = followed.end.max(held);
    let ended = match followed.stopped {
        Some((number, offset)) => {
            format!("after {} (segment {}, byte {offset})", frame_name(end), segment_name(number))
        }
        None => format!("after {}", frame_name(end)),
    };
    if let Some(mark) = mark
        && mark.salt == from.salt
        && mark.lsn > end
    {
        return Ok(Some(format!(
            "writes up to {} were acknowledged as durable, but the log ends {ended}: its tail \
             was truncated, zeroed or removed",
            frame_name(mark.lsn)
        )));
    }
    if let Some((number, offset, lsn)) = frame_beyond(segments, from.salt, end)? {
        return Ok(Some(format!(
            "log segment {} holds {} at byte {offset}, but the log ends {ended}: a frame between \
             them is damaged or its segment is missing",
            segment_name(number),
            frame_name(lsn)
        )));
    }
    Ok(None)
}

/// Whether a segment's first header holds anything (a new segment is all zeros).
pub(super) fn written(segment: &Segment) -> Result<bool, String> {
    let mut header = [0u8; HEADER];
    if segment.size < HEADER as u64 {
        return Ok(segment.size > 0);
    }
    std::os::unix::fs::FileExt::read_exact_at(&segment.file, &mut header, 0)
        .map_err(|e| io("reading", &segment.path, e))?;
    Ok(header != [0u8; HEADER])
}

/// Moves the log's files (segments and control file) from `wal_dir` into `aside/wal`, where
/// they are kept.
pub(super) fn set_aside(
    wal_dir: &Path,
    segments: Vec<Segment>,
    aside: &Path,
) -> Result<(), String> {
    let to_dir = aside.join("wal");
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&to_dir)
        .map_err(|e| io("creating", &to_dir, e))?;
    let control = wal_dir.join(super::control::NAME);
    let paths = segments.into_iter().map(|s| s.path).chain(control.exists().then_some(control));
    for path in paths {
        let to = to_dir.join(path.file_name().expect("a file name"));
        std::fs::rename(&path, &to).map_err(|e| io("moving", &path, e))?;
    }
    sync_dir(&to_dir)?;
    sync_dir(aside)?;
    sync_dir(wal_dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt as _;

    use super::super::frame::tests::{SALT, salted};
    use super::*;

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

    fn replay(tree: &sled::Tree, segments: &[Segment], held: u64, from: Position) -> u64 {
        apply(tree, &follow(segments, from).unwrap().frames, held).unwrap()
    }

    #[test]
    fn replay_follows_the_log_into_the_next_segment_when_sled_is_already_there() {
        // sled wrote frames 4 and 5 itself; 6 was acknowledged but only the log has it.
        let dir = tempfile::tempdir().unwrap();
        let segments =
            [segment(dir.path(), 0, &run(1..=3, SALT)), segment(dir.path(), 1, &run(4..=6, SALT))];
        let tree = sled::Config::new().temporary(true).open().unwrap();
        let from = Position { number: 0, offset: 0, next: 1, salt: SALT };
        assert_eq!(replay(&tree, &segments, 5, from), 6);
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
        let from = Position { number: 0, offset: checkpoint_at, next: 4, salt: SALT };
        assert_eq!(replay(&tree, &segments, 3, from), 5);
        assert!(tree.get(b"k5").unwrap().is_some());
        assert!(tree.get(b"k1").unwrap().is_none(), "frames before the checkpoint are skipped");
        // Another run's frames are no damage either.
        let followed = follow(&segments, from).unwrap();
        assert_eq!(followed.stopped, Some((2, run(4..=5, SALT).len() as u64)));
        assert_eq!(log_damage(&segments, from, &followed, 3, None).unwrap(), None);
    }

    #[test]
    fn replay_with_nothing_after_the_checkpoint_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = run(1..=3, SALT);
        let segments = [segment(dir.path(), 0, &bytes)];
        let tree = sled::Config::new().temporary(true).open().unwrap();
        let from = Position { number: 0, offset: bytes.len() as u64, next: 4, salt: SALT };
        assert_eq!(replay(&tree, &segments, 3, from), 3);
        assert_eq!(tree.len(), 0);
    }

    const R: u64 = RUN;

    /// A log of frames R+1..=R+6 over two segments.
    fn log() -> (Vec<u8>, Vec<u8>) {
        (run(R + 1..=R + 3, SALT), run(R + 4..=R + 6, SALT))
    }

    fn damage(first: &[u8], second: Option<&[u8]>, mark: Option<u64>) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = vec![segment(dir.path(), 0, first)];
        if let Some(second) = second {
            segments.push(segment(dir.path(), 1, second));
        }
        let from = Position { number: 0, offset: 0, next: R + 1, salt: SALT };
        let followed = follow(&segments, from).unwrap();
        let mark = mark.map(|lsn| Mark { salt: SALT, lsn });
        log_damage(&segments, from, &followed, 0, mark).unwrap()
    }

    #[test]
    fn a_whole_log_or_a_torn_last_frame_is_no_damage() {
        let (first, second) = log();
        assert_eq!(damage(&first, Some(&second), Some(R + 6)), None);
        // The frame being written when the process stopped, never acknowledged.
        let torn = &second[..second.len() - 5];
        assert_eq!(damage(&first, Some(torn), Some(R + 5)), None);
    }

    #[test]
    fn a_damaged_frame_with_frames_after_it_is_damage() {
        let (mut first, second) = log();
        // A bit flipped in the second frame's payload: frame 3 follows it in the same segment.
        let at = run(R + 1..=R + 1, SALT).len() + 20;
        first[at] ^= 0x10;
        let found = damage(&first, Some(&second), None).unwrap();
        assert!(found.contains("holds frame 3 of run 1"), "{found}");
        assert!(found.contains("ends after frame 1 of run 1 (segment 0000000000.wal"), "{found}");
        // A length field damaged: the frames after it are found all the same.
        let (mut first, _) = log();
        let second_frame = run(R + 1..=R + 1, SALT).len();
        first[second_frame + 2] = 0x7f;
        assert!(damage(&first, None, None).unwrap().contains("holds frame 3 of run 1"));
    }

    #[test]
    fn a_missing_middle_segment_is_damage() {
        let (first, second) = log();
        let third = run(R + 7..=R + 8, SALT);
        // Segment 1 (frames 4-6) is gone; segment 2 starts at frame 7.
        let found = damage(&first, Some(&third), None).unwrap();
        assert!(found.contains("segment 0000000001.wal holds frame 7"), "{found}");
        assert_eq!(damage(&first, Some(&second), None), None);
    }

    #[test]
    fn a_log_that_ends_before_the_mark_is_damage() {
        let (first, second) = log();
        // The tail zeroed, truncated, or its segment removed: only the mark tells.
        let mut zeroed = second.clone();
        let keep = run(R + 4..=R + 4, SALT).len();
        zeroed[keep..].fill(0);
        let found = damage(&first, Some(&zeroed), Some(R + 6)).unwrap();
        assert!(found.contains("up to frame 6 of run 1"), "{found}");
        assert!(found.contains("ends after frame 4 of run 1"), "{found}");
        assert!(damage(&first, None, Some(R + 6)).is_some());
        // A mark of another run says nothing about this one.
        let dir = tempfile::tempdir().unwrap();
        let segments = vec![segment(dir.path(), 0, &first)];
        let from = Position { number: 0, offset: 0, next: R + 1, salt: SALT };
        let followed = follow(&segments, from).unwrap();
        let other = Some(Mark { salt: SALT + 1, lsn: R + 9 });
        assert_eq!(log_damage(&segments, from, &followed, 0, other).unwrap(), None);
        // Frames sled holds itself are not lost.
        let mark = Some(Mark { salt: SALT, lsn: R + 6 });
        assert_eq!(log_damage(&segments, from, &followed, R + 6, mark).unwrap(), None);
    }

    #[test]
    fn a_missing_first_segment_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let segments = vec![segment(dir.path(), 1, &run(R + 4..=R + 6, SALT))];
        let from = Position { number: 0, offset: 0, next: R + 1, salt: SALT };
        let followed = follow(&segments, from).unwrap();
        let found = log_damage(&segments, from, &followed, 0, None).unwrap().unwrap();
        assert!(found.contains("0000000000.wal, where replay starts, is missing"), "{found}");
    }

    #[test]
    fn set_aside_keeps_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let segments = vec![segment(dir.path(), 0, &run(1..=2, SALT))];
        std::fs::write(dir.path().join(super::super::control::NAME), b"x").unwrap();
        let aside = tempfile::tempdir().unwrap();
        set_aside(dir.path(), segments, aside.path()).unwrap();
        assert!(aside.path().join("wal/0000000000.wal").exists());
        assert!(aside.path().join("wal/control").exists());
        assert!(!dir.path().join("0000000000.wal").exists());
    }
}
