//! The engine's own overhead per turn, printed in one run
//! (`cargo bench -p verbatim-engine --bench overhead`): everything one `Session::send` spends
//! outside the model call, for sessions whose history holds 10, 100 and 1,000 messages. Target:
//! under 1 ms at 100 messages.
//!
//! Set-up, as the engine's tests have it: the emulator on 127.0.0.1:0 (every model id answers
//! as `Behaviour::Text`, so each send is one model call), the HTTP transport signing with SigV4
//! and retries disabled, a sled store (durable: every append `fdatasync`s its write-ahead log)
//! in a temporary directory.
//!
//! How it is measured:
//! - the transport is wrapped in one that adds up the wall time spent inside it: all of `send`,
//!   and for `stream` the call itself (the HTTP transport returns after the first event) plus
//!   every `next_event` until the stream is drained. That is the model's time, and it includes
//!   the transport's own work (SigV4 hashing of the body, HTTP, event-stream framing) and the
//!   emulator's. Overhead = wall time of `send` minus that;
//! - the store is wrapped the same way, so the overhead is split into store loads, store appends
//!   and the rest (reading the log, assembling and checking the request, serializing the body,
//!   folding the reply, provenance);
//! - each size has a base session prefilled directly through the store with user/assistant text
//!   pairs of ~3 KB per message (assistant messages carry provenance and usage as the engine
//!   records them; no thinking). Sends go to forks of the base, so every turn sees the size
//!   named and the request holds that history plus the new ~3 KB user message: one fork per
//!   send at 10 and 100 messages; at 1,000, one per 10 sends (the history grows to at most
//!   1,018 messages; copying 3 MB for every send wore sled down and made the figures drift).
//!   The forks of a size and mode are made before its sends, then the bench pauses
//!   500 ms so the store's background checkpoint of what they wrote does not run during the
//!   sends; they are deleted afterwards (none of this is timed);
//! - 5 warm-up sends, then 50 measured sends per size and mode (streamed, the default, and
//!   whole); `VERBATIM_BENCH_QUICK=1` measures 10. Median and p99 are printed (with 50 sends the
//!   p99 is the slowest); the breakdown columns are medians of each part, so they need not add
//!   up;
//! - the parts of "rest" that grow with the history are then timed alone, warm, on the same
//!   histories: reading the log, `assemble`, the body to a string, the prefix hash of the
//!   provenance.
//!
//! Reading the figures: on loopback the emulator's streamed answer takes ~50 ms and its whole
//! answer ~2 ms. The engine's work after a ~50 ms wait is slower than after a 2 ms one (caches
//! gone cold; a 45 ms sleep added to the whole calls gave the streamed figures), so the streamed
//! rows are the ones to read: a real model keeps the engine waiting for longer still.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use verbatim_emulator::{
    Behaviour, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig, Script,
};
use verbatim_engine::{Engine, Session};
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, InferenceConfig, Message, Provenance, Role, SessionId,
    StopReason, Usage,
};
use verbatim_protocol::assemble::{Policy, TurnConfig, assemble, prefix_hash};
use verbatim_store::{
    Append, Appended, Entry, ListQuery, NewSession, Page, Record, Rewound, SessionInfo,
    SessionStore, SledStore, StoreError,
};
use verbatim_transport::{
    Auth, Call, EventSource, EventStream, HttpConfig, HttpTransport, Reply, RetryConfig,
    StreamEvent, Transport, TransportError,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const SIZES: [u64; 3] = [10, 100, 1_000];
const WARM_UPS: usize = 5;

/// Wall time accumulated in nanoseconds, shared between a wrapper and the bench.
#[derive(Debug, Default)]
struct Clock(AtomicU64);

impl Clock {
    fn add(&self, since: Instant) {
        self.0.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn take(&self) -> Duration {
        Duration::from_nanos(self.0.swap(0, Ordering::Relaxed))
    }
}

/// The HTTP transport, timed.
#[derive(Debug)]
struct TimedTransport {
    inner: HttpTransport,
    model: Arc<Clock>,
}

#[async_trait]
impl Transport for TimedTransport {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        let start = Instant::now();
        let reply = self.inner.send(call).await;
        self.model.add(start);
        reply
    }

    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        let start = Instant::now();
        let events = self.inner.stream(call).await;
        self.model.add(start);
        let events = events?;
        Ok(EventStream::new(TimedEvents { inner: events, model: self.model.clone() }))
    }
}

/// A stream whose every `next_event` counts as the model's time.
struct TimedEvents {
    inner: EventStream,
    model: Arc<Clock>,
}

#[async_trait]
impl EventSource for TimedEvents {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        let start = Instant::now();
        let event = self.inner.next().await;
        self.model.add(start);
        event
    }
}

/// The sled store, with its loads and appends timed.
struct TimedStore {
    inner: Arc<SledStore>,
    load: Arc<Clock>,
    append: Arc<Clock>,
}

#[async_trait]
impl SessionStore for TimedStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        self.inner.create(new).await
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        let start = Instant::now();
        let appended = self.inner.append(id, append).await;
        self.append.add(start);
        appended
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        self.inner.info(id).await
    }

    async fn load(&self, id: SessionId) -> Result<verbatim_store::Session, StoreError> {
        let start = Instant::now();
        let session = self.inner.load(id).await;
        self.load.add(start);
        session
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.load_range(id, from, to).await
    }

    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        self.inner.tail(id, n).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(query).await
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        self.inner.fork(id, at).await
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        self.inner.rewind(id, expected_version, to).await
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }

    async fn put(&self, session: verbatim_store::Session) -> Result<SessionInfo, StoreError> {
        self.inner.put(session).await
    }
}

/// A user message of ~3 KB.
fn user_text(n: u64) -> String {
    format!("Question {n}: what changed in section {} since the last review? ", n % 97).repeat(48)
}

/// Message `n` of the prefilled history: user and assistant text in turn, ~3 KB each.
fn message(n: u64) -> Entry {
    if n % 2 == 0 {
        return Entry::Message(Message::user_text(user_text(n)).into());
    }
    let text =
        format!("Section {} changed in three places: revenue, cost and delta. ", n % 97).repeat(48);
    let mut provenance = Provenance::new(MODEL, Api::Converse);
    provenance.region = Some("us-west-2".to_owned());
    provenance.stop_reason = Some(StopReason::EndTurn);
    provenance.usage =
        Some(Usage { input_tokens: Some(1200), output_tokens: Some(400), ..Default::default() });
    Entry::Message(HistoryMessage {
        message: Message::new(Role::Assistant, vec![ContentBlock::text(text)]),
        provenance: Some(provenance),
    })
}

/// One measured send.
struct Sample {
    overhead: Duration,
    model: Duration,
    load: Duration,
    append: Duration,
}

/// Everything one size needs: its own emulator (it keeps every request it receives), store
/// and engines.
struct Bench {
    _emulator: Emulator,
    _dir: tempfile::TempDir,
    store: Arc<SledStore>,
    streamed: Engine,
    whole: Engine,
    model: Arc<Clock>,
    load: Arc<Clock>,
    append: Arc<Clock>,
}

impl Bench {
    async fn new() -> Bench {
        let script = Script { behaviour: Behaviour::Text, ..Script::default() };
        let emulator =
            Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }).await.unwrap();
        let auth = Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None);
        let http = HttpTransport::new(
            HttpConfig::new("us-west-2", auth)
                .with_endpoint_url(emulator.url())
                .with_retry(RetryConfig::disabled()),
        )
        .unwrap();
        let model = Arc::new(Clock::default());
        let transport = Arc::new(TimedTransport { inner: http, model: model.clone() });
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let load = Arc::new(Clock::default());
        let append = Arc::new(Clock::default());
        let timed = Arc::new(TimedStore {
            inner: store.clone(),
            load: load.clone(),
            append: append.clone(),
        });
        let engine = |streaming: bool| {
            Engine::builder()
                .store(timed.clone())
                .transport(transport.clone())
                .model(MODEL)
                .region("us-west-2")
                .configure(|d| d.streaming = streaming)
                .build()
                .unwrap()
        };
        Bench {
            streamed: engine(true),
            whole: engine(false),
            _emulator: emulator,
            _dir: dir,
            store,
            model,
            load,
            append,
        }
    }

    /// A session of `messages` messages, appended in batches straight to the store.
    async fn base(&self, messages: u64) -> (SessionId, u64) {
        let id = self.store.create(NewSession::new(MODEL)).await.unwrap().id;
        let mut version = 0;
        while version < messages {
            let batch: Vec<Entry> = (version..(version + 200).min(messages)).map(message).collect();
            version = self.store.append(id, Append::new(version, batch)).await.unwrap().version;
        }
        (id, version)
    }

    /// `count` forks of `base` (its first `at` records), made before any is measured; then a
    /// pause, so the store's background checkpoint of what the forks wrote is over before the
    /// sends start.
    async fn forks(&self, base: SessionId, at: u64, count: usize) -> Vec<SessionId> {
        let mut forks = Vec::with_capacity(count);
        for _ in 0..count {
            forks.push(self.store.fork(base, at).await.unwrap().id);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        forks
    }

    /// One send of a new ~3 KB user message to the session `id`, timed.
    async fn sample(&self, engine: &Engine, id: SessionId, n: u64) -> Sample {
        let session: Session = engine.open(id).await.unwrap();
        let before = self.store.info(id).await.unwrap().version;
        let input = user_text(n);
        self.model.take();
        self.load.take();
        self.append.take();
        let start = Instant::now();
        let reply = session.send(input).await.unwrap();
        let elapsed = start.elapsed();
        let model = self.model.take();
        let sample = Sample {
            overhead: elapsed - model,
            model,
            load: self.load.take(),
            append: self.append.take(),
        };
        assert!(reply.complete && reply.steps == 1, "one model call, no tools");
        // The user message and the reply: no repair was recorded, nothing else was written.
        assert_eq!(self.store.info(id).await.unwrap().version, before + 2);
        sample
    }
}

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort();
    times[((times.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median_of(samples: &[Sample], part: impl Fn(&Sample) -> Duration) -> Duration {
    let mut times: Vec<Duration> = samples.iter().map(part).collect();
    percentile(&mut times, 0.5)
}

/// The parts of "rest" that grow with the history, each timed alone on the session a send
/// starts from (median of `rounds`): reading the log (the live messages cloned, the
/// configuration and the recorded fixes, as the engine's `Log::new` does), `assemble` on that
/// history plus the new user message, the body's serialization, and the prefix hash recorded
/// in the reply's provenance.
fn rest_alone(session: &verbatim_store::Session, input: &str, rounds: usize) -> [Duration; 4] {
    let mut turn = TurnConfig::new(MODEL, Api::Converse);
    turn.inference = Some(InferenceConfig { max_tokens: Some(4096), ..Default::default() });
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..rounds {
        let start = Instant::now();
        let mut history = session.messages();
        let config = session.config();
        let fixes = session.fixes();
        times[0].push(start.elapsed());
        assert!(config.model == MODEL && fixes.is_empty());
        history.push(Message::user_text(input).into());
        let start = Instant::now();
        let assembly = assemble(&history, &turn, Policy::Repair);
        times[1].push(start.elapsed());
        assert!(assembly.is_valid() && assembly.fixes.is_empty());
        let start = Instant::now();
        let body = assembly.body.as_ref().unwrap().to_string();
        times[2].push(start.elapsed());
        assert!(!body.is_empty());
        let start = Instant::now();
        let hash = prefix_hash(&assembly.request, assembly.request.messages.len());
        times[3].push(start.elapsed());
        assert!(!hash.is_empty());
    }
    times.map(|mut t| percentile(&mut t, 0.5))
}

/// The CPU time stolen by the hypervisor and the total, in ticks, from `/proc/stat` (Linux), to
/// say how much a shared machine's neighbours disturbed the run.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    Some((*ticks.get(7)?, ticks.iter().sum()))
}

fn main() {
    let ticks = cpu_ticks();
    let quick = std::env::var("VERBATIM_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rounds = if quick { 10 } else { 50 };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        println!(
            "verbatim-engine overhead per turn (send minus time in the transport; emulator on 127.0.0.1, SigV4, sled store durable)"
        );
        println!("  {WARM_UPS} warm-ups, then {rounds} sends per size and mode, on forks of a history of ~3 KB text messages (one per send; at 1,000 one per 10 sends)");
        println!(
            "  {:>8}  {:<8}  {:>9}  {:>9}  |  {:>10}  {:>11}  {:>9}  |  {:>9}",
            "history", "mode", "median", "p99", "store load", "appends (2)", "rest", "model"
        );
        let mut at_100 = None;
        let mut alone = Vec::new();
        for size in SIZES {
            let bench = Bench::new().await;
            let (base, version) = bench.base(size).await;
            let mut n = size;
            for (mode, engine) in [("streamed", &bench.streamed), ("whole", &bench.whole)] {
                // One fork per send, or per `size / 100` sends: a long history may grow by 2%
                // (10 sends of 2 messages on 1,000) rather than be copied for every send.
                let sends = WARM_UPS + rounds;
                let per_fork = (size / 100).max(1) as usize;
                let forks = bench.forks(base, version, sends.div_ceil(per_fork)).await;
                let mut samples = Vec::with_capacity(rounds);
                for i in 0..sends {
                    let sample = bench.sample(engine, forks[i / per_fork], n).await;
                    n += 2;
                    if i >= WARM_UPS {
                        samples.push(sample);
                    }
                }
                for fork in forks {
                    bench.store.delete(fork).await.unwrap();
                }
                let mut overheads: Vec<Duration> = samples.iter().map(|s| s.overhead).collect();
                let median = percentile(&mut overheads, 0.5);
                let p99 = percentile(&mut overheads, 0.99);
                let load = median_of(&samples, |s| s.load);
                let append = median_of(&samples, |s| s.append);
                let rest = median_of(&samples, |s| s.overhead.saturating_sub(s.load + s.append));
                let model = median_of(&samples, |s| s.model);
                if size == 100 && mode == "streamed" {
                    at_100 = Some(median);
                }
                println!(
                    "  {size:>8}  {mode:<8}  {:>6.3} ms  {:>6.3} ms  |  {:>7.3} ms  {:>8.3} ms  {:>6.3} ms  |  {:>6.3} ms",
                    ms(median),
                    ms(p99),
                    ms(load),
                    ms(append),
                    ms(rest),
                    ms(model)
                );
            }
            let session = bench.store.load(base).await.unwrap();
            alone.push((size, rest_alone(&session, &user_text(n), rounds)));
        }
        println!("  parts of the rest, each timed alone on the same histories (median):");
        for (size, [log, assembling, serializing, hash]) in alone {
            println!(
                "  {size:>8}  read the log {:.3} ms, assemble {:.3} ms, body to string {:.3} ms, prefix hash {:.3} ms",
                ms(log),
                ms(assembling),
                ms(serializing),
                ms(hash)
            );
        }
        let at_100 = at_100.expect("100 is measured");
        let verdict = if at_100 < Duration::from_millis(1) { "holds" } else { "does not hold" };
        if let (Some((steal0, total0)), Some((steal1, total1))) = (ticks, cpu_ticks()) {
            let share = (steal1 - steal0) as f64 / (total1 - total0).max(1) as f64;
            println!(
                "  cpu time stolen by the hypervisor during the run: {:.0}% (figures are noisy when high)",
                share * 100.0
            );
        }
        println!(
            "  target: under 1 ms per turn at 100 messages (streamed median {:.3} ms): {verdict}",
            ms(at_100)
        );
    });
}
