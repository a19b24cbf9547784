//! Store figures, printed in one run (`cargo bench -p verbatim-store --bench store`):
//!
//! - durable append latency (median, p99) at history lengths 10, 1,000 and 100,000 messages of
//!   an agent conversation (~3 KB messages: ~2 KB thinking with its signature, tool loops):
//!   three sessions of those lengths take turns in blocks of 50 appends, with the neighbours
//!   below between, so every figure sees the same disk;
//! - cold load time of 1,000- and 10,000-turn sessions (a turn: a user message and an
//!   assistant reply);
//! - appends per second with 1 and with 16 sessions appending concurrently;
//! - bytes on disk per byte of JSON, once the store is closed;
//! - for comparison on the same machine: raw sled insert + flush + `fdatasync`, and a plain
//!   append-only file with `fdatasync`.
//!
//! `VERBATIM_BENCH_MESSAGES` lowers the longest history (default 100,000).
//!
//! With the feature `postgres` and `TEST_DATABASE_URL` set
//! (`cargo bench -p verbatim-store --features postgres --bench store`), it then prints the
//! PostgreSQL store's figures next to a bare single-row INSERT commit and a bare SELECT of the
//! same rows (as text and as jsonb) on the same server, in a schema of its own;
//! `VERBATIM_BENCH_ONLY=postgres` prints only those.
//!
//! With the feature `dynamodb` and moto installed (`pip install 'moto[server]'`), it then
//! prints the DynamoDB store's append and load figures on a local moto server it starts, next
//! to a bare single-item `PutItem` and a bare `Query` of the same items on the same server;
//! `VERBATIM_BENCH_ONLY=dynamodb` prints only those. A local server says nothing of DynamoDB's
//! own latency (single-digit milliseconds in a region, over the network): these figures show
//! the client's overhead (the SDK, the store's requests and their encoding) over a bare request.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, Message, Provenance, Role, SessionId, ThinkingBlock,
    ToolResult, ToolResultBlock, ToolResultContent, ToolUse, Unmapped, Usage,
};
use verbatim_store::{Append, Durability, Entry, NewSession, SessionStore, SledStore};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// Message `n` of an agent conversation: user question, assistant thinking + tool call, tool
/// result, assistant thinking + answer, and again.
fn message(n: u64) -> Entry {
    let thinking = |n: u64| {
        ContentBlock::Thinking(ThinkingBlock {
            text: format!("Step {n}: check the figures against the previous quarter. ").repeat(30),
            signature: Some(format!("EqQBCkYIBxgCKkD{n:08}").repeat(24)),
            unmapped: Unmapped::default(),
        })
    };
    let assistant = |blocks| {
        let mut provenance = Provenance::new(MODEL, Api::Converse);
        provenance.usage = Some(Usage {
            input_tokens: Some(1200),
            output_tokens: Some(400),
            ..Default::default()
        });
        Entry::Message(HistoryMessage {
            message: Message::new(Role::Assistant, blocks),
            provenance: Some(provenance),
        })
    };
    let id = format!("tooluse_{}", n / 4);
    match n % 4 {
        0 => Entry::Message(
            Message::user_text(
                format!("Question {n}: what changed in section {}? ", n % 97).repeat(8),
            )
            .into(),
        ),
        1 => assistant(vec![
            thinking(n),
            ContentBlock::ToolUse(ToolUse {
                id: id.as_str().into(),
                name: "query_report".into(),
                input: json!({"section": n % 97, "filters": ["revenue", "cost"], "limit": 50}),
                kind: None,
                unmapped: Unmapped::default(),
            }),
        ]),
        2 => Entry::Message(
            Message::new(
                Role::User,
                vec![ContentBlock::ToolResult(ToolResult {
                    tool_use_id: id.as_str().into(),
                    content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text {
                        text: format!("row {n},revenue,cost,delta\n").repeat(100),
                    }])),
                    status: None,
                    unmapped: Unmapped::default(),
                })],
            )
            .into(),
        ),
        _ => assistant(vec![
            thinking(n),
            ContentBlock::text(format!("Section {} changed in three places.", n % 97)),
        ]),
    }
}

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort();
    times[((times.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() { dir_size(&e.path()) } else { meta.len() }
        })
        .sum()
}

/// Appends `count` messages after `from` in relaxed mode, in batches (to build long histories).
async fn prefill(store: &SledStore, id: SessionId, from: u64, count: u64) -> u64 {
    let mut version = from;
    while version < from + count {
        let batch: Vec<Entry> = (version..(version + 500).min(from + count)).map(message).collect();
        version = store.append(id, Append::new(version, batch)).await.unwrap().version;
    }
    version
}

/// The neighbours measured in the same time windows as the store (the disk's latency drifts
/// over minutes, so figures taken at different times do not compare).
struct Neighbours {
    sled: sled::Db,
    sled_data: std::fs::File,
    sled_times: Vec<Duration>,
    file: std::fs::File,
    file_times: Vec<Duration>,
    value: Vec<u8>,
    line: Vec<u8>,
    n: u64,
}

impl Neighbours {
    fn new(dir: &Path) -> Neighbours {
        let sled = sled::open(dir.join("raw")).unwrap();
        let sled_data = std::fs::File::open(dir.join("raw").join("db")).unwrap();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("plain.log"))
            .unwrap();
        let value = serde_json::to_vec(&message(1)).unwrap();
        let mut line = value.clone();
        line.push(b'\n');
        Neighbours {
            sled,
            sled_data,
            sled_times: Vec::new(),
            file,
            file_times: Vec::new(),
            value,
            line,
            n: 0,
        }
    }

    /// Raw sled insert + flush + fdatasync, `rounds` times.
    fn sled(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.n += 1;
            let start = Instant::now();
            self.sled.insert(self.n.to_be_bytes(), self.value.as_slice()).unwrap();
            self.sled.flush().unwrap();
            self.sled_data.sync_data().unwrap();
            self.sled_times.push(start.elapsed());
        }
    }

    /// A plain append-only file: write + fdatasync, `rounds` times.
    fn file(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let start = Instant::now();
            self.file.write_all(&self.line).unwrap();
            self.file.sync_data().unwrap();
            self.file_times.push(start.elapsed());
        }
    }
}

/// Median and p99 of `rounds` durable single-message appends to each session of `sessions`
/// (id and version), taken in blocks of 50 that go round the sessions and the neighbours, so
/// all see the same disk (its latency drifts over seconds).
async fn append_latency(
    store: &SledStore,
    sessions: &mut [(SessionId, u64)],
    rounds: usize,
    neighbours: &mut Neighbours,
) -> Vec<(Duration, Duration)> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); sessions.len()];
    while times[0].len() < rounds {
        for ((id, version), times) in sessions.iter_mut().zip(&mut times) {
            for _ in 0..50 {
                let entry = message(*version);
                let start = Instant::now();
                *version =
                    store.append(*id, Append::new(*version, vec![entry])).await.unwrap().version;
                times.push(start.elapsed());
            }
        }
        neighbours.sled(50);
        neighbours.file(50);
    }
    times.into_iter().map(|mut t| (percentile(&mut t, 0.5), percentile(&mut t, 0.99))).collect()
}

/// Cold load of 1,000 turns from a plain log: read and parse 2,000 lines.
fn plain_file_load(path: &Path) -> Duration {
    let mut out = std::fs::File::create(path).unwrap();
    for n in 0..2000 {
        serde_json::to_writer(&mut out, &message(n)).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.sync_all().unwrap();
    let start = Instant::now();
    let text = std::fs::read(path).unwrap();
    let parsed: Vec<Entry> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let load = start.elapsed();
    assert_eq!(parsed.len(), 2000);
    load
}

async fn cold_load(dir: &Path, turns: u64) -> (Duration, Duration) {
    let id = {
        let store = SledStore::open_with(dir, Durability::Relaxed).unwrap();
        let id = store.create(NewSession::new(MODEL)).await.unwrap().id;
        prefill(&store, id, 0, turns * 2).await;
        id
    };
    // Reopen: a new store handle, as a restarted process would (sled replays its log).
    let start = Instant::now();
    let store = SledStore::open(dir).unwrap();
    let opened = start.elapsed();
    let session = store.load(id).await.unwrap();
    let took = start.elapsed();
    assert_eq!(session.records.len() as u64, turns * 2);
    (opened, took)
}

async fn throughput(store: &SledStore, sessions: usize, appends_each: u64) -> (f64, f64) {
    let mut ids = Vec::new();
    for _ in 0..sessions {
        ids.push(store.create(NewSession::new(MODEL)).await.unwrap().id);
    }
    let syncs = store.sync_count();
    let start = Instant::now();
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                for version in 0..appends_each {
                    store.append(id, Append::new(version, vec![message(version)])).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let appends = sessions as u64 * appends_each;
    let rate = appends as f64 / start.elapsed().as_secs_f64();
    (rate, (store.sync_count() - syncs) as f64 / appends as f64)
}

fn main() {
    let longest: u64 = std::env::var("VERBATIM_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let root = tempfile::tempdir().unwrap();
    #[cfg(feature = "postgres")]
    if std::env::var("VERBATIM_BENCH_ONLY").as_deref() == Ok("postgres") {
        let url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL names the server");
        runtime.block_on(postgres::figures(&url));
        return;
    }
    #[cfg(feature = "dynamodb")]
    if std::env::var("VERBATIM_BENCH_ONLY").as_deref() == Ok("dynamodb") {
        runtime.block_on(dynamodb::figures());
        return;
    }
    runtime.block_on(async {
        let rounds = 300;
        let store = SledStore::open(root.path().join("store")).unwrap();
        let mut neighbours = Neighbours::new(root.path());
        // Warm up (files, caches) on another session, so the first length measured is not
        // also the first write.
        let warm = store.create(NewSession::new(MODEL)).await.unwrap().id;
        append_latency(&store, &mut [(warm, 0)], rounds, &mut neighbours).await;
        neighbours.sled_times.clear();
        neighbours.file_times.clear();
        let lengths = [10, 1_000, longest];
        let mut sessions = Vec::new();
        for length in lengths {
            let id = store.create(NewSession::new(MODEL)).await.unwrap().id;
            sessions.push((id, prefill(&store, id, 0, length).await));
        }
        // Let the store's background checkpoint of the prefill finish first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let figures = append_latency(&store, &mut sessions, rounds, &mut neighbours).await;
        let mut lines = Vec::new();
        for (length, (median, p99)) in lengths.iter().zip(&figures) {
            lines.push(format!("  durable append at {length:>6} messages: median {:.3} ms, p99 {:.3} ms", ms(*median), ms(*p99)));
        }
        let medians: Vec<Duration> = figures.iter().map(|f| f.0).collect();
        let flat = medians.iter().max().unwrap().as_secs_f64() / medians.iter().min().unwrap().as_secs_f64();

        let one = throughput(&store, 1, 400).await;
        let sixteen = throughput(&store, 16, 100).await;
        drop(store);
        // On disk once closed (sled flushed, the log checkpointed): every session's records,
        // the warm-up's and the throughput runs' included.
        let versions: Vec<u64> = sessions
            .iter()
            .map(|s| s.1)
            .chain([rounds as u64, 400])
            .chain([100; 16])
            .collect();
        let json: u64 = versions
            .iter()
            .flat_map(|&version| (0..version).map(|n| serde_json::to_vec(&message(n)).unwrap().len() as u64))
            .sum();
        let disk = dir_size(&root.path().join("store"));

        let load_1k = cold_load(&root.path().join("load1k"), 1_000).await;
        let load_10k = cold_load(&root.path().join("load10k"), 10_000).await;
        let file_load = plain_file_load(&root.path().join("plain.turns"));
        let (sled_median, sled_p99) = (percentile(&mut neighbours.sled_times, 0.5), percentile(&mut neighbours.sled_times, 0.99));
        let (file_median, file_p99) = (percentile(&mut neighbours.file_times, 0.5), percentile(&mut neighbours.file_times, 0.99));

        println!("verbatim-store (sled 0.34.7 behind a write-ahead log; durable = fdatasync of the log)");
        for line in lines {
            println!("{line}");
        }
        println!("  flat from 10 to {longest} messages: slowest median / fastest = {flat:.2}x (target <= 1.2x)");
        println!(
            "  cold load (open + load): 1,000 turns {:.1} ms (open {:.1}; target <= 30), 10,000 turns {:.1} ms (open {:.1}; target <= 250)",
            ms(load_1k.1),
            ms(load_1k.0),
            ms(load_10k.1),
            ms(load_10k.0)
        );
        println!(
            "  appends/s: 1 session {:.0}, 16 sessions {:.0} ({:.1}x; target >= 3x); syncs per append {:.2} and {:.2}",
            one.0,
            sixteen.0,
            sixteen.0 / one.0,
            one.1,
            sixteen.1
        );
        println!("  disk: {:.2} bytes per byte of JSON ({} MB on disk for {} MB of records; target <= 2.5)", disk as f64 / json as f64, disk / 1_000_000, json / 1_000_000);
        println!("  neighbours, interleaved with the appends above in blocks of 50:");
        println!("              raw sled insert+flush+fdatasync median {:.3} ms, p99 {:.3} ms", ms(sled_median), ms(sled_p99));
        println!("              plain append-only file + fdatasync median {:.3} ms, p99 {:.3} ms; its cold load of 1,000 turns {:.1} ms", ms(file_median), ms(file_p99), ms(file_load));

        #[cfg(feature = "postgres")]
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => postgres::figures(&url).await,
            Err(_) => println!("verbatim-store on PostgreSQL: skipped (TEST_DATABASE_URL is not set)"),
        }
        #[cfg(feature = "dynamodb")]
        dynamodb::figures().await;
    });
}

#[cfg(feature = "dynamodb")]
#[path = "../tests/support/moto.rs"]
mod moto;

#[cfg(feature = "dynamodb")]
#[path = "store/dynamodb.rs"]
mod dynamodb;

#[cfg(feature = "postgres")]
mod postgres {
    //! The PostgreSQL store next to bare statements on the same server.

    use super::*;
    use verbatim_store::{PostgresOptions, PostgresStore};

    async fn client(url: &str, schema: &str) -> tokio_postgres::Client {
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.options(format!("-c search_path={schema}"));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    fn median(times: &mut [Duration]) -> f64 {
        ms(percentile(times, 0.5))
    }

    /// Appends `count` messages after `from`, in batches.
    async fn prefill(store: &PostgresStore, id: SessionId, from: u64, count: u64) -> u64 {
        let mut version = from;
        while version < from + count {
            let batch: Vec<Entry> =
                (version..(version + 500).min(from + count)).map(message).collect();
            version = store.append(id, Append::new(version, batch)).await.unwrap().version;
        }
        version
    }

    pub(super) async fn figures(url: &str) {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap();
        let schema: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let schema = format!("verbatim_bench_{schema}");
        let options = PostgresOptions { schema: Some(schema.clone()), ..Default::default() };
        let store = PostgresStore::connect_with(url, options).await.unwrap();
        let bare = client(url, &schema).await;
        bare.batch_execute(
            "CREATE TABLE bare_insert (id bigserial PRIMARY KEY, body text NOT NULL);
             CREATE TABLE bare_text (seq bigint PRIMARY KEY, body text NOT NULL);
             CREATE TABLE bare_jsonb (seq bigint PRIMARY KEY, body jsonb NOT NULL);",
        )
        .await
        .unwrap();
        let insert = bare.prepare("INSERT INTO bare_insert (body) VALUES ($1)").await.unwrap();
        let body = serde_json::to_string(&message(1)).unwrap();

        // Durable appends of one ~3 KB message, in blocks of 50 interleaved with 50 bare
        // single-row INSERT commits of the same text.
        let rounds = 300;
        let id = store.create(NewSession::new(MODEL)).await.unwrap().id;
        let mut version = 0;
        let mut bare_times = Vec::new();
        let mut lines = Vec::new();
        let mut all = Vec::new();
        for length in [10u64, 1_000, 10_000] {
            version = prefill(&store, id, version, length - version).await;
            let mut times = Vec::new();
            while times.len() < rounds {
                for _ in 0..50 {
                    let entry = message(version);
                    let start = Instant::now();
                    version =
                        store.append(id, Append::new(version, vec![entry])).await.unwrap().version;
                    times.push(start.elapsed());
                }
                for _ in 0..50 {
                    let start = Instant::now();
                    bare.execute(&insert, &[&body]).await.unwrap();
                    bare_times.push(start.elapsed());
                }
            }
            all.extend_from_slice(&times);
            let p99 = ms(percentile(&mut times, 0.99));
            lines.push(format!(
                "  durable append at {length:>6} messages: median {:.3} ms, p99 {p99:.3} ms",
                median(&mut times)
            ));
        }
        let append_median = median(&mut all);
        let bare_median = median(&mut bare_times);
        let bare_p99 = ms(percentile(&mut bare_times, 0.99));

        // Loads of a 1,000-turn (2,000-message) session, next to a bare SELECT of the same
        // 2,000 rows of JSON, as text and as jsonb.
        let loaded = store.create(NewSession::new(MODEL)).await.unwrap().id;
        prefill(&store, loaded, 0, 2_000).await;
        let texts: Vec<String> =
            (0..2_000).map(|n| serde_json::to_string(&message(n)).unwrap()).collect();
        let seqs: Vec<i64> = (1..=2_000).collect();
        bare.execute(
            "INSERT INTO bare_text SELECT * FROM unnest($1::bigint[], $2::text[])",
            &[&seqs, &texts],
        )
        .await
        .unwrap();
        bare.execute(
            "INSERT INTO bare_jsonb SELECT s, b::jsonb FROM unnest($1::bigint[], $2::text[]) AS t(s, b)",
            &[&seqs, &texts],
        )
        .await
        .unwrap();
        for table in ["bare_text", "bare_jsonb", "records"] {
            bare.batch_execute(&format!("VACUUM ANALYZE {table}")).await.unwrap();
        }
        let select_text = bare.prepare("SELECT body FROM bare_text ORDER BY seq").await.unwrap();
        let select_jsonb =
            bare.prepare("SELECT body::text FROM bare_jsonb ORDER BY seq").await.unwrap();
        let (mut load_times, mut text_times, mut jsonb_times) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..100 {
            let start = Instant::now();
            let session = store.load(loaded).await.unwrap();
            load_times.push(start.elapsed());
            assert_eq!(session.records.len(), 2_000);
            let start = Instant::now();
            let rows = bare.query(&select_text, &[]).await.unwrap();
            let bodies: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
            text_times.push(start.elapsed());
            assert_eq!(bodies.len(), 2_000);
            let start = Instant::now();
            let rows = bare.query(&select_jsonb, &[]).await.unwrap();
            let bodies: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
            jsonb_times.push(start.elapsed());
            assert_eq!(bodies.len(), 2_000);
        }
        let load = median(&mut load_times);
        let text = median(&mut text_times);
        let jsonb = median(&mut jsonb_times);

        println!(
            "verbatim-store on PostgreSQL (synchronous_commit on: durable = the commit's WAL flush)"
        );
        for line in lines {
            println!("{line}");
        }
        println!(
            "  append median over all lengths {append_median:.3} ms; bare single-row INSERT commit (same text) median {bare_median:.3} ms, p99 {bare_p99:.3} ms: {:.2}x (target <= 1.5x)",
            append_median / bare_median
        );
        println!(
            "  load of 1,000 turns (2,000 records, parsed): median {load:.1} ms; bare SELECT of the same rows as text {text:.1} ms ({:.2}x; target <= 1.5x), as jsonb {jsonb:.1} ms",
            load / text
        );
        bare.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
    }
}
