//! Storage damage after a crash: a child appends records, goes idle and is killed; then each
//! copy of its store is damaged in one way (a byte of sled's `db` overwritten, `db` removed, a
//! log segment removed, truncated, zeroed from some point or with one bit flipped) and
//! reopened. A store that opens holds every acknowledged record exactly; any other outcome is
//! an error that says the store is damaged, and salvage then opens it and keeps the log aside.

use super::*;

/// How many records the idle child appends before it is killed.
pub(super) const RECORDS: u64 = 40;

/// What reopening one damaged copy came to.
#[derive(Debug, Default)]
struct Tally {
    /// Opened, with every acknowledged record.
    intact: u32,
    /// Refused as damaged, then salvaged.
    refused: u32,
    /// Refused as damaged, sled unable to read its own database (nothing to salvage).
    unreadable: u32,
    /// Opened, and the load names a record sled gave back damaged.
    corrupt_on_read: u32,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} opened whole, {} refused as damaged and salvaged, {} refused as unreadable by \
             sled, {} opened with a record the load reports corrupt",
            self.intact, self.refused, self.unreadable, self.corrupt_on_read
        )
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The log's segment files in `store`, in order.
fn segments(store: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(store.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    out.sort();
    out
}

/// Reopens `store` (damaged by the caller as `what`): either every acknowledged record is
/// there, or the error says the store is damaged, and salvage opens it.
fn check(
    runtime: &tokio::runtime::Runtime,
    store: &Path,
    id: SessionId,
    what: &str,
    tally: &mut Tally,
) {
    let opened = open(store);
    let store_handle = match opened {
        Ok(handle) => handle,
        Err(e) => {
            let said = e.to_string();
            assert!(
                matches!(e, verbatim_store::StoreError::Damaged { .. }),
                "{what}: refused without saying it is damaged: {said}"
            );
            let salvaged = SledStore::open_with_options(
                store,
                SledOptions { wal_segment_bytes: 64 << 10, salvage: true, ..Default::default() },
            );
            if !said.contains("verbatim salvage") {
                // sled cannot read its own database: there is nothing to salvage from.
                let refused = salvaged.err().map(|e| e.to_string());
                assert!(
                    refused
                        .as_ref()
                        .is_some_and(|e| e.contains("restore the directory from a backup")),
                    "{what}: salvage of an unreadable store: {refused:?}"
                );
                tally.unreadable += 1;
                return;
            }
            let salvaged =
                salvaged.unwrap_or_else(|e| panic!("{what}: salvage does not open the store: {e}"));
            let found =
                salvaged.salvaged().unwrap_or_else(|| panic!("{what}: salvage found nothing"));
            assert!(found.contains("kept in"), "{what}: {found}");
            drop(salvaged);
            // Once salvaged, the store opens as any other.
            open(store)
                .unwrap_or_else(|e| panic!("{what}: the salvaged store does not reopen: {e}"));
            tally.refused += 1;
            return;
        }
    };
    let loaded = runtime.block_on(store_handle.load(id));
    let session = match loaded {
        Ok(session) => session,
        // sled handed back bytes that are not the record: the load names it.
        Err(e @ verbatim_store::StoreError::Corrupt { .. }) => {
            let said = e.to_string();
            assert!(said.contains("at record "), "{what}: {said}");
            tally.corrupt_on_read += 1;
            return;
        }
        Err(e) => panic!("{what}: the store opened but the session is lost: {e}"),
    };
    assert!(
        session.info.version >= RECORDS,
        "{what}: the store opened with version {}, but {RECORDS} records were acknowledged",
        session.info.version
    );
    for (n, record) in session.records.iter().enumerate() {
        assert_eq!(record.seq, n as u64 + 1, "{what}: a gap in the sequence");
        assert_eq!(record.entry, entry(record.seq), "{what}: record {} differs", record.seq);
    }
    tally.intact += 1;
}

/// The child's part: `RECORDS` appends, then idle until killed.
pub(super) async fn append_then_idle(store: &SledStore, id: SessionId) {
    let mut version = store.info(id).await.unwrap().version;
    let mut out = std::io::stdout().lock();
    while version < RECORDS {
        let seq = version + 1;
        version = store.append(id, Append::new(version, vec![entry(seq)])).await.unwrap().version;
        writeln!(out, "{version}").unwrap();
    }
    writeln!(out, "idle").unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// Writes `byte` at `at` in `file`.
fn poke(file: &Path, at: u64, byte: u8) {
    use std::os::unix::fs::FileExt as _;
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.write_all_at(&[byte], at).unwrap();
}

fn peek(file: &Path, at: u64) -> u8 {
    std::fs::read(file).unwrap()[at as usize]
}

pub(super) fn damage_is_reported_never_silent(root: &Path) {
    // sled panics on some damaged files (caught and reported by the store): not worth a
    // message each here.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.location().is_some_and(|l| l.file().contains("/sled-")) {
            default_hook(info);
        }
    }));
    let runtime = runtime();
    let dir = root.join("idle");
    let store = dir.join("store");
    let id = runtime
        .block_on(async { open(&store).unwrap().create(NewSession::new("m")).await.unwrap().id });
    std::fs::write(dir.join("session"), id.to_string()).unwrap();
    let mut child = spawn(&dir, "idle");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acknowledged = 0;
    for line in stdout.lines() {
        let line = line.unwrap();
        if line == "idle" {
            break;
        }
        acknowledged = line.parse().unwrap();
    }
    assert_eq!(acknowledged, RECORDS);
    child.kill().unwrap();
    child.wait().unwrap();
    let pristine = root.join("pristine");
    copy_dir(&store, &pristine);
    let started = Instant::now();

    // Undamaged, the crashed store replays what sled lacked: that is what damage can lose.
    let case = root.join("case");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&case);
        copy_dir(&pristine, &case);
        case.clone()
    };
    let replayed = {
        let store = open(&fresh()).unwrap();
        store.replayed_on_open()
    };

    // sled's database: each of its first 300 bytes overwritten in turn, then every 16381st.
    let mut db = Tally::default();
    let db_len = std::fs::metadata(pristine.join("db")).unwrap().len();
    let offsets = (0..300.min(db_len)).chain((300..db_len).step_by(16381));
    for at in offsets {
        let store = fresh();
        let byte = peek(&store.join("db"), at);
        poke(&store.join("db"), at, !byte);
        check(&runtime, &store, id, &format!("db byte {at} overwritten"), &mut db);
    }
    let store = fresh();
    std::fs::remove_file(store.join("db")).unwrap();
    let before = db.intact;
    check(&runtime, &store, id, "db removed", &mut db);
    assert_eq!(db.intact, before, "a store without its db opened");

    // The log: each segment removed, truncated, zeroed from some point, or a bit flipped.
    let mut log = Tally::default();
    let mut tail_lost = 0;
    for (n, segment) in segments(&pristine).iter().enumerate() {
        let name = segment.file_name().unwrap().to_owned();
        let len = std::fs::metadata(segment).unwrap().len();
        let store = fresh();
        std::fs::remove_file(store.join("wal").join(&name)).unwrap();
        check(&runtime, &store, id, &format!("segment {n} removed"), &mut log);
        for cut in [0, 16, 100, 1000, 4096, 20_000, len / 2] {
            let store = fresh();
            let file = std::fs::OpenOptions::new().write(true).open(store.join("wal").join(&name));
            file.unwrap().set_len(cut).unwrap();
            check(&runtime, &store, id, &format!("segment {n} truncated to {cut}"), &mut log);
            let store = fresh();
            let path = store.join("wal").join(&name);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[cut as usize..].fill(0);
            std::fs::write(&path, &bytes).unwrap();
            let before = log.refused;
            check(&runtime, &store, id, &format!("segment {n} zeroed from {cut}"), &mut log);
            tail_lost += log.refused - before;
        }
        for at in (8..len.min(40_000)).step_by(997) {
            let store = fresh();
            let path = store.join("wal").join(&name);
            let byte = peek(&path, at);
            poke(&path, at, byte ^ 0x04);
            check(&runtime, &store, id, &format!("segment {n}: a bit flipped at {at}"), &mut log);
        }
    }
    println!(
        "damage after an idle kill ({RECORDS} records acknowledged, {replayed} log frames sled lacked) in {:.1} s: sled's db, {db}; the log, {log}",
        started.elapsed().as_secs_f64()
    );
    if replayed > 0 {
        // The log held writes sled lacked: wiping the log's tail loses them, and must say so.
        assert!(
            tail_lost > 0,
            "no zeroed log tail was reported, though the log held {replayed} frames sled lacked"
        );
    }
}
