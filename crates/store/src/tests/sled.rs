//! The sled backend: the conformance suite, random operations against the reference, and what
//! only a durable store must do (reopen, schema versions, one process at a time, syncs).

use proptest::prelude::*;

use super::conformance::{self, op};
use super::lease;
use crate::{
    Append, Durability, Entry, NewSession, SessionStore, SledOptions, SledStore, StoreError,
};
use verbatim_model::Message;

fn user(text: &str) -> Entry {
    Entry::Message(Message::user_text(text).into())
}

#[tokio::test(flavor = "multi_thread")]
async fn sled_store_leases_conform() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(crate::ManualClock::at(chrono::Utc::now()));
    let store = SledStore::open(dir.path()).unwrap().with_clock(clock.clone());
    lease::suite(&store, lease::Time::Manual(&clock)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_outlives_no_opening_of_the_store_and_its_token_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = std::time::Duration::from_secs(3600);
    let (id, old) = {
        let store = SledStore::open(dir.path()).unwrap();
        let id = store.create(NewSession::new("m")).await.unwrap().id;
        let first = store.acquire_lease(id, "first process", ttl).await.unwrap();
        store.release_lease(&first).await.unwrap();
        let held = store.acquire_lease(id, "first process", ttl).await.unwrap();
        assert!(matches!(
            store.acquire_lease(id, "second process", ttl).await,
            Err(StoreError::Busy { .. })
        ));
        (id, held)
    };
    // The process that held it is gone (sled is one process at a time): the next opening
    // takes the session at once, with a token after every one given before.
    let store = SledStore::open(dir.path()).unwrap();
    let taken = store.acquire_lease(id, "second process", ttl).await.unwrap();
    assert_eq!(taken.token, old.token + 1);
    let stale = store.append(id, Append::new(0, vec![user("late")]).under(&old)).await;
    assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");
    store.append(id, Append::new(0, vec![user("taken")]).under(&taken)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sled_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    conformance::suite(&store).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sled_matches_the_reference_on_random_operations(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_with(dir.path(), Durability::Relaxed).unwrap();
        runtime.block_on(conformance::random_operations(&store, &ops));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = SledStore::open(dir.path()).unwrap();
        let info = store.create(NewSession::new("m")).await.unwrap();
        store.append(info.id, Append::new(0, vec![user("kept")])).await.unwrap();
        info.id
    };
    let store = SledStore::open(dir.path()).unwrap();
    let session = store.load(id).await.unwrap();
    assert_eq!(session.records.len(), 1);
    assert_eq!(session.records[0].entry, user("kept"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"verbatim.schema", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    // sled's threads let go of the files a moment after the drop.
    crate::sled_dir::wait_until_released(dir.path());
    match SledStore::open(dir.path()) {
        Err(StoreError::NewerSchema { found: 99, supported: crate::SCHEMA_VERSION, .. }) => {}
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn durable_appends_sync_and_relaxed_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let info = store.create(NewSession::new("m")).await.unwrap();
    let before = store.sync_count();
    for n in 0..5 {
        store.append(info.id, Append::new(n, vec![user("x")])).await.unwrap();
    }
    assert_eq!(store.sync_count() - before, 5, "one sync per sequential durable append");
    drop(store);

    let relaxed = SledStore::open_with(dir.path(), Durability::Relaxed).unwrap();
    let before = relaxed.sync_count();
    relaxed.append(info.id, Append::new(5, vec![user("y")])).await.unwrap();
    assert_eq!(relaxed.sync_count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_that_arrive_together_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let mut sessions = Vec::new();
    for _ in 0..16 {
        sessions.push(store.create(NewSession::new("m")).await.unwrap().id);
    }
    let before = store.sync_count();
    let rounds = 20;
    let tasks: Vec<_> = sessions
        .iter()
        .map(|&id| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..rounds {
                    store.append(id, Append::new(n, vec![user("x")])).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let syncs = store.sync_count() - before;
    let appends = 16 * rounds;
    assert!(syncs < appends, "{syncs} syncs for {appends} appends: no group commit");
    for id in sessions {
        assert_eq!(store.info(id).await.unwrap().version, rounds);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn long_sessions_load_in_order() {
    // Loads of 2,000 records and more are parsed on several threads: the order must hold.
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), Durability::Relaxed).unwrap();
    let id = store.create(NewSession::new("m")).await.unwrap().id;
    let entries: Vec<Entry> =
        (0..5_001).map(|n| user(&format!("{n} {}", "x".repeat(n % 5000)))).collect();
    for (n, chunk) in entries.chunks(1_000).enumerate() {
        store.append(id, Append::new(n as u64 * 1_000, chunk.to_vec())).await.unwrap();
    }
    let session = store.load(id).await.unwrap();
    assert_eq!(session.records.len(), entries.len());
    for (n, (record, entry)) in session.records.iter().zip(&entries).enumerate() {
        assert_eq!(record.seq, n as u64 + 1);
        assert_eq!(&record.entry, entry);
    }
    let range = store.load_range(id, 1_500, Some(4_200)).await.unwrap();
    assert_eq!(range.first().map(|r| r.seq), Some(1_500));
    assert_eq!(range.len(), 2_701);
}

fn wal_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("wal")).unwrap().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_moves_through_segments_checkpoints_and_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions { wal_segment_bytes: 16 << 10, ..SledOptions::default() };
    let store = SledStore::open_with_options(dir.path(), options).unwrap();
    let id = store.create(NewSession::new("m")).await.unwrap().id;
    let mut entries = Vec::new();
    for n in 0..300u64 {
        // Mostly ~2 KB, with one write far larger than a segment.
        let len = if n == 150 { 100_000 } else { 1_000 + (n as usize * 37) % 2_000 };
        let entry = user(&format!("{n}: {}", "y".repeat(len)));
        store.append(id, Append::new(n, vec![entry.clone()])).await.unwrap();
        entries.push(entry);
    }
    // Checkpoints run in the background: give the last one a moment.
    for _ in 0..100 {
        if store.checkpoint_count() >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(store.checkpoint_count() >= 10, "{} checkpoints", store.checkpoint_count());
    // About 40 segments' worth was written; the log keeps only a handful of files.
    let files = wal_files(dir.path());
    assert!(files <= 6, "{files} log files kept");
    drop(store);

    // A clean close checkpoints: nothing to replay, everything there.
    let store = SledStore::open_with_options(dir.path(), options).unwrap();
    assert_eq!(store.replayed_on_open(), 0);
    let session = store.load(id).await.unwrap();
    let loaded: Vec<Entry> = session.records.into_iter().map(|r| r.entry).collect();
    assert_eq!(loaded, entries);
    store.append(id, Append::new(300, vec![user("after")])).await.unwrap();
    assert_eq!(store.info(id).await.unwrap().version, 301);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = SledStore::open(dir.path()).unwrap();
        let id = store.create(NewSession::new("m")).await.unwrap().id;
        store.append(id, Append::new(0, vec![user("from version 1")])).await.unwrap();
        id
    };
    // Make it a version 1 store: no log, no log keys, values without their seal.
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"verbatim.schema", &1u32.to_be_bytes()).unwrap();
        let tree = db.open_tree("sessions").unwrap();
        tree.remove(b"w").unwrap();
        tree.remove(b"c").unwrap();
        let mut bare = 0;
        for item in tree.iter() {
            let (key, value) = item.unwrap();
            // Every record here is one piece: its seal is at the end of the value.
            if value.len() > crate::sealed::SEAL && value[value.len() - crate::sealed::SEAL] == 0 {
                tree.insert(key, &value[..value.len() - crate::sealed::SEAL]).unwrap();
                bare += 1;
            }
        }
        assert_eq!(bare, 3, "the head, the info and the record");
        db.flush().unwrap();
    }
    crate::sled_dir::wait_until_released(dir.path());
    std::fs::remove_dir_all(dir.path().join("wal")).unwrap();

    {
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.replayed_on_open(), 0);
        let session = store.load(id).await.unwrap();
        assert_eq!(session.records[0].entry, user("from version 1"));
        store.append(id, Append::new(1, vec![user("in version 3")])).await.unwrap();
    }
    // Bare values and sealed ones read side by side.
    {
        let store = SledStore::open(dir.path()).unwrap();
        let session = store.load(id).await.unwrap();
        assert_eq!(session.records[1].entry, user("in version 3"));
        assert_eq!(session.info.version, 2);
    }
    let db = sled::open(dir.path()).unwrap();
    let version = db.get(b"verbatim.schema").unwrap().unwrap();
    assert_eq!(version.as_ref(), &crate::SCHEMA_VERSION.to_be_bytes());
    assert_eq!(crate::SCHEMA_VERSION, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode();
    let root = tempfile::tempdir().unwrap();
    // A new directory is created 0700; an existing one open to others is narrowed.
    let fresh = root.path().join("nested").join("store");
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [&fresh, &shared] {
        let store = SledStore::open(dir).unwrap();
        let info = store.create(NewSession::new("m")).await.unwrap();
        store.append(info.id, Append::new(0, vec![user("private")])).await.unwrap();
        assert_eq!(mode(dir) & 0o777, 0o700, "{}", dir.display());
        assert_eq!(mode(&dir.join("wal")) & 0o777, 0o700);
        for segment in std::fs::read_dir(dir.join("wal")).unwrap() {
            assert_eq!(mode(&segment.unwrap().path()) & 0o777, 0o600);
        }
    }
}

#[test]
fn a_store_is_told_from_a_directory_without_one_and_looking_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("typo");
    assert!(!SledStore::exists(&missing));
    assert!(!missing.exists(), "looking created nothing");
    assert!(!SledStore::exists(root.path()), "an empty directory holds no store");
    let dir = root.path().join("store");
    drop(SledStore::open(&dir).unwrap());
    assert!(SledStore::exists(&dir));
}

#[test]
fn a_backend_error_keeps_the_system_error_underneath() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let error = SledStore::open(file.join("store")).unwrap_err();
    let StoreError::Backend { detail, .. } = &error else { panic!("{error:?}") };
    let source = std::error::Error::source(&error).expect("the system's error");
    let io = source.downcast_ref::<std::io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory, "{io:?}");
    // The text is what it was: what failed, then the system's words.
    assert_eq!(error.to_string(), format!("store backend: {detail}"));
    assert!(detail.ends_with(&io.to_string()), "{detail}");
}
