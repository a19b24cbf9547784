//! Crash safety of the stores, with real processes.
//!
//! - A child process appends in a loop and prints each version it was told is durable; the
//!   test kills it with SIGKILL at random moments (seeded), reopens the store, and checks that
//!   every acknowledged record is there byte for byte, that no record is partial, and that the
//!   store opens without repair. 50 kills by default (`VERBATIM_CRASH_KILLS` to change).
//! - The same kills against the PostgreSQL store when `TEST_DATABASE_URL` is set, and against
//!   the DynamoDB store on a moto server it starts (feature `dynamodb`; each says it skipped
//!   otherwise, DynamoDB unless `VERBATIM_REQUIRE_DYNAMODB=1`).
//! - A second process opening a store that is open gets a clear error.
//! - Storage damage after a kill (`crash/damage.rs`): never a store that opens with less than
//!   was acknowledged.
//!
//! The test binary is its own child: with `VERBATIM_CRASH_CHILD` set it runs the child's part.
//! It has no test harness (`harness = false`), so `main` runs both tests and panics on failure.

// The child reports to the parent on standard output; the parent prints its figures there.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use verbatim_model::{Message, SessionId};
use verbatim_store::{Append, Entry, NewSession, Session, SessionStore, SledOptions, SledStore};

#[path = "crash/damage.rs"]
mod damage;

const CHILD: &str = "VERBATIM_CRASH_CHILD";

/// Small log segments, so that kills land while the log moves between segments, while sled is
/// checkpointed and while emptied segments are reused.
fn open(dir: &Path) -> Result<SledStore, verbatim_store::StoreError> {
    SledStore::open_with_options(
        dir,
        SledOptions { wal_segment_bytes: 64 << 10, ..Default::default() },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The entry appended as record `seq`: its size varies (some span several 4 KiB pieces) and
/// its text is derived from `seq`, so a reader can tell a whole record from a torn one.
fn entry(seq: u64) -> Entry {
    let len = (seq * 7919 % 13_000) as usize;
    let body: String =
        (0..len).map(|i| char::from(b'a' + ((seq as usize + i) % 26) as u8)).collect();
    Entry::Message(Message::user_text(format!("record {seq}: {body}")).into())
}

/// The child: append records one at a time, printing each acknowledged version.
fn child(dir: &Path, mode: &str) {
    let runtime = runtime();
    if mode == "open" {
        match SledStore::open(dir) {
            Ok(_) => println!("opened"),
            Err(e) => println!("error: {e}"),
        }
        return;
    }
    let id =
        SessionId::parse(std::fs::read_to_string(dir.join("session")).unwrap().trim()).unwrap();
    if mode == "idle" {
        let store = open(&dir.join("store")).unwrap();
        runtime.block_on(damage::append_then_idle(&store, id));
        return;
    }
    runtime.block_on(async {
        let store: Box<dyn SessionStore> = match mode {
            #[cfg(feature = "postgres")]
            "append-postgres" => Box::new(postgres::open(dir).await),
            #[cfg(feature = "dynamodb")]
            "append-dynamodb" => Box::new(dynamodb::open(dir).await),
            _ => Box::new(open(&dir.join("store")).unwrap()),
        };
        let mut version = store.info(id).await.unwrap().version;
        let mut out = std::io::stdout().lock();
        // The parent times its kill from here, so a slow start cannot swallow the window.
        writeln!(out, "open").unwrap();
        out.flush().unwrap();
        loop {
            let seq = version + 1;
            let done = match store.append(id, Append::new(version, vec![entry(seq)])).await {
                Ok(done) => done,
                // The killed child's last append committed after this one read the version
                // (a database finishes what it was sent): it wrote entry(seq) all the same.
                Err(verbatim_store::StoreError::Conflict { actual, .. }) => {
                    version = actual;
                    continue;
                }
                Err(e) => panic!("append: {e}"),
            };
            version = done.version;
            writeln!(out, "{version}").unwrap();
            out.flush().unwrap();
        }
    });
}

/// A small seeded generator (xorshift64*), so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn spawn(dir: &Path, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD, mode)
        .env("VERBATIM_CRASH_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// What the kill loop needs of a backend: the child's mode, a fresh handle as a restarted
/// process would open it, and how many log frames that opening replayed (sled only).
struct Backend<'a> {
    name: &'static str,
    child_mode: &'static str,
    reopen: &'a dyn Fn(&tokio::runtime::Runtime, SessionId) -> (Session, u64),
}

fn acknowledged_records_survive_sigkill(root: &Path, id: SessionId, backend: Backend<'_>) {
    let kills: u64 =
        std::env::var("VERBATIM_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let seed: u64 = std::env::var("VERBATIM_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let mut rng = Rng(seed);
    let runtime = runtime();
    std::fs::write(root.join("session"), id.to_string()).unwrap();
    let started = Instant::now();
    let mut acknowledged = 0u64;
    let mut killed_mid_write = 0;
    let mut progressed = 0u64;
    let mut replayed = 0u64;
    for kill in 0..kills {
        let mut child = spawn(root, backend.child_mode);
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel::<u64>();
        let (opened, open) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "open" {
                    let _ = opened.send(());
                } else if let Ok(version) = line.parse() {
                    let _ = sender.send(version);
                }
            }
        });
        // Once the store is open, let it write for a random while.
        let _ = open.recv_timeout(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1 + rng.below(150)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acknowledged;
        acknowledged = receiver.try_iter().fold(acknowledged, u64::max);
        // Reopen as a fresh process would: it must open without repair, hold every
        // acknowledged record exactly, and nothing partial.
        let (session, frames) = (backend.reopen)(&runtime, id);
        replayed += frames;
        assert!(
            session.info.version >= acknowledged,
            "kill {kill} (seed {seed}): version {} but {acknowledged} was acknowledged",
            session.info.version
        );
        assert_eq!(session.records.len() as u64, session.info.version, "kill {kill}");
        for (n, record) in session.records.iter().enumerate() {
            assert_eq!(record.seq, n as u64 + 1, "kill {kill}: a gap in the sequence");
            assert_eq!(
                record.entry,
                entry(record.seq),
                "kill {kill}: record {} differs",
                record.seq
            );
        }
        if session.info.version > acknowledged {
            killed_mid_write += 1;
        }
        progressed += u64::from(acknowledged > before);
    }
    println!(
        "sigkill ({}): {kills} kills (seed {seed}) in {:.1} s, {progressed} runs wrote, {acknowledged} acknowledged records all present, {killed_mid_write} kills landed between a durable write and its acknowledgement, {replayed} log frames replayed on reopening",
        backend.name,
        started.elapsed().as_secs_f64()
    );
    assert!(acknowledged >= kills, "only {acknowledged} records acknowledged in {kills} runs");
    assert!(progressed * 2 >= kills, "the child wrote in only {progressed} of {kills} runs");
    if backend.name == "sled" {
        // sled keeps recent writes in memory: after a kill, the log is what brings them back.
        assert!(replayed > 0, "no reopening replayed the log: the test no longer exercises it");
    }
}

fn sled_survives_sigkill(root: &Path) {
    let id = runtime().block_on(async {
        let store = open(&root.join("store")).unwrap();
        store.create(NewSession::new("m")).await.unwrap().id
    });
    let store_dir = root.join("store");
    let reopen = |runtime: &tokio::runtime::Runtime, id| {
        runtime.block_on(async {
            let store =
                open(&store_dir).unwrap_or_else(|e| panic!("the store does not reopen: {e}"));
            let session = store.load(id).await.unwrap_or_else(|e| panic!("load fails: {e}"));
            (session, store.replayed_on_open())
        })
    };
    let backend = Backend { name: "sled", child_mode: "append", reopen: &reopen };
    acknowledged_records_survive_sigkill(root, id, backend);
}

fn a_second_process_gets_a_clear_error(root: &Path) {
    let dir = root.join("locked");
    let _open = SledStore::open(&dir).unwrap();
    let child = spawn(&dir, "open").wait_with_output().unwrap();
    let said = String::from_utf8(child.stdout).unwrap();
    assert!(said.starts_with("error: "), "the second process opened the store: {said}");
    assert!(said.contains("in use by another process"), "unclear error: {said}");
    assert!(said.contains(&dir.display().to_string()), "the directory is not named: {said}");
    assert!(!said.contains("Os {"), "the system's raw error is shown: {said}");
    println!("second process: {}", said.trim());
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD) {
        let dir = PathBuf::from(std::env::var_os("VERBATIM_CRASH_DIR").unwrap());
        child(&dir, &mode);
        return;
    }
    let root = tempfile::tempdir().unwrap();
    a_second_process_gets_a_clear_error(root.path());
    damage::damage_is_reported_never_silent(root.path());
    sled_survives_sigkill(root.path());
    #[cfg(feature = "postgres")]
    postgres::survives_sigkill();
    #[cfg(feature = "dynamodb")]
    dynamodb::survives_sigkill();
}

#[cfg(feature = "dynamodb")]
#[path = "support/moto.rs"]
mod moto;

/// The same kills against DynamoDB, on a moto server of its own.
#[cfg(feature = "dynamodb")]
mod dynamodb {
    use super::*;
    use verbatim_store::{DynamoOptions, DynamoStore};

    /// The store at the URL in the file `url` of `dir`, as the children open it.
    pub(super) async fn open(dir: &Path) -> DynamoStore {
        let url = std::fs::read_to_string(dir.join("url")).unwrap();
        let options = DynamoOptions { create_table: false, ..Default::default() }
            .with_static_credentials("testing", "testing");
        DynamoStore::connect_with(&url, options).await.unwrap()
    }

    pub(super) fn survives_sigkill() {
        let Some(moto) = moto::Moto::start("sigkill (dynamodb)") else { return };
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("url"), moto.new_table_url("verbatim_crash")).unwrap();
        let runtime = runtime();
        let id = runtime.block_on(async {
            let url = std::fs::read_to_string(root.path().join("url")).unwrap();
            let options = DynamoOptions::default().with_static_credentials("testing", "testing");
            let store = DynamoStore::connect_with(&url, options).await.unwrap();
            store.create(NewSession::new("m")).await.unwrap().id
        });
        let reopen = |runtime: &tokio::runtime::Runtime, id| {
            runtime.block_on(async {
                let store = open(root.path()).await;
                (store.load(id).await.unwrap_or_else(|e| panic!("load fails: {e}")), 0)
            })
        };
        let backend = Backend { name: "dynamodb", child_mode: "append-dynamodb", reopen: &reopen };
        acknowledged_records_survive_sigkill(root.path(), id, backend);
    }
}

/// The same kills against PostgreSQL (`TEST_DATABASE_URL`), in a schema of its own.
#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use verbatim_store::{PostgresOptions, PostgresStore};

    fn url() -> Option<String> {
        std::env::var("TEST_DATABASE_URL").ok()
    }

    /// The store in the schema named by the file `schema` in `dir`, as the children open it.
    pub(super) async fn open(dir: &Path) -> PostgresStore {
        let schema = std::fs::read_to_string(dir.join("schema")).unwrap();
        let options = PostgresOptions {
            schema: Some(schema),
            pool_size: 2,
            migrate: false,
            ..Default::default()
        };
        PostgresStore::connect_with(&url().unwrap(), options).await.unwrap()
    }

    pub(super) fn survives_sigkill() {
        let Some(url) = url() else {
            println!("sigkill (postgres): skipped, TEST_DATABASE_URL is not set");
            return;
        };
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap();
        let schema: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let schema = format!("verbatim_crash_{schema}");
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("schema"), &schema).unwrap();
        let runtime = runtime();
        let id = runtime.block_on(async {
            let options = PostgresOptions { schema: Some(schema.clone()), ..Default::default() };
            let store = PostgresStore::connect_with(&url, options).await.unwrap();
            store.create(NewSession::new("m")).await.unwrap().id
        });
        let reopen = |runtime: &tokio::runtime::Runtime, id| {
            runtime.block_on(async {
                let store = open(root.path()).await;
                (store.load(id).await.unwrap_or_else(|e| panic!("load fails: {e}")), 0)
            })
        };
        let backend = Backend { name: "postgres", child_mode: "append-postgres", reopen: &reopen };
        acknowledged_records_survive_sigkill(root.path(), id, backend);
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
        });
    }
}
