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
//! - the transport is wrapped in one that records the spans of wall time spent inside it: all
//!   of `send`, and for `stream` the call itself (the HTTP transport returns after the first
//!   event) plus every `next_event` until the stream is drained. That is the model's time, and
//!   it includes the transport's own work (SigV4 hashing of the body, HTTP, event-stream
//!   framing) and the emulator's. Overhead = wall time of `send` minus that. The engine's own
//!   work runs outside these spans, save taking in the result of the user message's append
//!   when its wait for the disk ends during the call;
//! - the store is wrapped the same way (reads: `load`, `load_range`, `info`; appends), so the
//!   overhead is split into store reads, appends and the rest (assembling and checking the
//!   request, serializing the body, folding the reply, provenance). A store span counts only
//!   for its part outside the model's spans: the engine appends the user's message while the
//!   model call runs (the request goes out first), and only what does not overlap the call
//!   costs the turn. The appends column is mostly the reply's append; in streamed rows it also
//!   takes the engine's work between events while the user's append waits for the disk (the
//!   columns split the overhead, they do not add to it);
//! - each size has a base session prefilled directly through the store with user/assistant text
//!   pairs of ~3 KB per message (assistant messages carry provenance and usage as the engine
//!   records them; no thinking). Sends go to forks of the base made two messages short of the
//!   size. Each fork gets a new handle (`Engine::open`); its first send reads the whole session
//!   and brings the history to the size named, and the measured sends follow on the same handle,
//!   which keeps the log (and the prefix hash's state) from one turn to the next and reads only
//!   what was appended since, as a chat does. So every measured turn sees the size named and
//!   the request holds that history plus the new ~3 KB user message: one measured send per
//!   fork at 10 and 100 messages; at 1,000, ten per fork (the history grows to at most 1,018
//!   messages; copying 3 MB for every send wore sled down and made the figures drift). The forks
//!   of a size and mode are made before its sends, then the bench pauses 500 ms so the store's
//!   background checkpoint of what they wrote does not run during the sends; they are deleted
//!   afterwards (none of this is timed);
//! - 5 warm-up sends, then 50 measured sends per size and mode (streamed, the default, and
//!   whole); `VERBATIM_BENCH_QUICK=1` measures 10. Median and p99 are printed (with 50 sends the
//!   p99 is the slowest); the breakdown columns are medians of each part, so they need not add
//!   up. "first send" is the median overhead of the first sends on the new handles (two
//!   messages short of the size, the whole session read; the first fork's is a warm-up, so at
//!   1,000 there are 5 of them, 1 in a quick run);
//! - the parts of "rest" that grow with the history are then timed alone, warm, on the same
//!   histories: reading the log (a handle's first send only), `assemble`, the body to a string,
//!   and the prefix hash of the provenance, from scratch (a handle's first send) and carried on
//!   from the previous request (later sends: its messages moved in, the two new ones hashed);
//! - last, the disk's latency for what a durable append waits on: 4 KB written in place into an
//!   allocated file, then `fdatasync`, in a temporary directory on the stores' file system,
//!   back to back and after 5 ms idle (on the development machine's virtual disk a sync after
//!   a pause takes two to four times one that follows another at once: ~0.1 ms back to back,
//!   ~0.15 ms after 1 ms idle, ~0.23 ms after 5 ms, ~0.4 ms after 20 ms). The appends column
//!   rests on it, so figures from two machines compare only alongside it.
//!
//! Reading the figures: on loopback the emulator answers a whole request in ~1.5-3 ms and
//! streams its answer (the ~3 KB input echoed, ~180 events) in ~5-7 ms at 10 and 100
//! messages. The engine's work after a longer wait is slower (caches gone cold) and a streamed
//! reply is folded event by event, so the streamed rows are the ones to read: a real model
//! keeps the engine waiting for longer still.
//!
//! Last measured on the idle 2-core development machine, six runs, medians per run in ms,
//! streamed / whole, with the disk's in-place sync at 0.08-0.10 ms back to back: 10 messages
//! 0.52-0.88 / 0.32-0.38, 100 messages 0.52-1.04 / 0.35-0.46, 1,000 messages 1.34-1.94 /
//! 1.26-1.94. The target held whole in every run and streamed in five of six (the sixth ran
//! beside another job). At 100 messages, streamed, the reply's durable append takes 0.32-0.47
//! ms, assembling the request and writing its body ~0.1 ms and the ~180 streamed events ~0.1 ms
//! between them. On a day the same disk synced in 0.2-0.37 ms, streamed at 100 took 0.81-1.12
//! ms (`docs/benchmarks.md` has the table).

#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
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
use verbatim_protocol::assemble::{Assembler, Policy, TurnConfig, assemble, prefix_hash};
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

/// What a timed span was spent on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    /// Inside the transport.
    Model,
    /// Reading the store.
    Read,
    /// Appending to the store.
    Append,
}

/// The timed spans of one send, shared between the wrappers and the bench.
#[derive(Debug, Default)]
struct Timeline(Mutex<Vec<(Part, Instant, Instant)>>);

impl Timeline {
    fn add(&self, part: Part, start: Instant) {
        self.0.lock().unwrap().push((part, start, Instant::now()));
    }

    fn take(&self) -> Vec<(Part, Instant, Instant)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The time spent on `part`, all of it for the model, and outside the model's spans for the
/// store (an append that runs while the model call is under way costs the turn nothing).
fn spent(spans: &[(Part, Instant, Instant)], part: Part) -> Duration {
    let model: Vec<(Instant, Instant)> =
        spans.iter().filter(|s| s.0 == Part::Model).map(|s| (s.1, s.2)).collect();
    spans
        .iter()
        .filter(|s| s.0 == part)
        .map(|&(_, start, end)| {
            let inside: Duration = if part == Part::Model {
                Duration::ZERO
            } else {
                model
                    .iter()
                    .map(|&(m0, m1)| m1.min(end).saturating_duration_since(m0.max(start)))
                    .sum()
            };
            (end - start).saturating_sub(inside)
        })
        .sum()
}

/// The HTTP transport, timed.
#[derive(Debug)]
struct TimedTransport {
    inner: HttpTransport,
    timeline: Arc<Timeline>,
}

#[async_trait]
impl Transport for TimedTransport {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        let start = Instant::now();
        let reply = self.inner.send(call).await;
        self.timeline.add(Part::Model, start);
        reply
    }

    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        let start = Instant::now();
        let events = self.inner.stream(call).await;
        self.timeline.add(Part::Model, start);
        let events = events?;
        Ok(EventStream::new(TimedEvents { inner: events, timeline: self.timeline.clone() }))
    }
}

/// A stream whose every `next_event` counts as the model's time.
struct TimedEvents {
    inner: EventStream,
    timeline: Arc<Timeline>,
}

#[async_trait]
impl EventSource for TimedEvents {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        let start = Instant::now();
        let event = self.inner.next().await;
        self.timeline.add(Part::Model, start);
        event
    }
}

/// The sled store, with its reads and appends timed.
struct TimedStore {
    inner: Arc<SledStore>,
    timeline: Arc<Timeline>,
}

#[async_trait]
impl SessionStore for TimedStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        self.inner.create(new).await
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        let start = Instant::now();
        let appended = self.inner.append(id, append).await;
        self.timeline.add(Part::Append, start);
        appended
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        let start = Instant::now();
        let info = self.inner.info(id).await;
        self.timeline.add(Part::Read, start);
        info
    }

    async fn load(&self, id: SessionId) -> Result<verbatim_store::Session, StoreError> {
        let start = Instant::now();
        let session = self.inner.load(id).await;
        self.timeline.add(Part::Read, start);
        session
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        let start = Instant::now();
        let records = self.inner.load_range(id, from, to).await;
        self.timeline.add(Part::Read, start);
        records
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

    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<verbatim_store::Lease, StoreError> {
        self.inner.acquire_lease(id, owner, ttl).await
    }

    async fn renew_lease(
        &self,
        lease: &verbatim_store::Lease,
        ttl: Duration,
    ) -> Result<verbatim_store::Lease, StoreError> {
        self.inner.renew_lease(lease, ttl).await
    }

    async fn release_lease(&self, lease: &verbatim_store::Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }
}

/// A user message of ~3 KB.
fn user_text(n: u64) -> String {
    format!("Question {n}: what changed in section {} since the last review? ", n % 97).repeat(48)
}

/// Message `n` of the prefilled history: user and assistant text in turn, ~3 KB each.
fn message(n: u64) -> Entry {
    if n.is_multiple_of(2) {
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
    read: Duration,
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
    timeline: Arc<Timeline>,
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
        let timeline = Arc::new(Timeline::default());
        let transport = Arc::new(TimedTransport { inner: http, timeline: timeline.clone() });
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let timed = Arc::new(TimedStore { inner: store.clone(), timeline: timeline.clone() });
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
            timeline,
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

    /// One send of a new ~3 KB user message through the handle `session`, timed.
    async fn sample(&self, session: &Session, n: u64) -> Sample {
        let id = session.id();
        let before = self.store.info(id).await.unwrap().version;
        let input = user_text(n);
        self.timeline.take();
        let start = Instant::now();
        let reply = session.send(input).await.unwrap();
        let elapsed = start.elapsed();
        let spans = self.timeline.take();
        let model = spent(&spans, Part::Model);
        let sample = Sample {
            overhead: elapsed - model,
            model,
            read: spent(&spans, Part::Read),
            append: spent(&spans, Part::Append),
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
/// starts from (median of `rounds`): reading the log (the session's `History`: the live
/// messages cloned, the configuration and the recorded fixes, as the engine's `Log::new` does
/// on a handle's first send), `assemble` on that history plus the new user message, the body's serialization, and
/// the prefix hash recorded in the reply's provenance: from scratch (a handle's first send),
/// and carried on from the previous request's as later sends do (the assembler's `sent`: the
/// previous request's messages were moved into this one, so only the two new ones are hashed).
fn rest_alone(session: &verbatim_store::Session, input: &str, rounds: usize) -> [Duration; 5] {
    let mut turn = TurnConfig::new(MODEL, Api::Converse);
    turn.inference = Some(InferenceConfig { max_tokens: Some(4096), ..Default::default() });
    let mut times: [Vec<Duration>; 5] = Default::default();
    for _ in 0..rounds {
        let start = Instant::now();
        let read = session.history();
        times[0].push(start.elapsed());
        assert!(read.config().model == MODEL && read.fixes().is_empty());
        let mut history = read.into_messages();
        history.push(Message::user_text(input).into());
        let start = Instant::now();
        let assembly = assemble(&history, &turn, Policy::Repair);
        times[1].push(start.elapsed());
        assert!(assembly.is_valid() && assembly.fixes.is_empty());
        let start = Instant::now();
        let body = assembly.body.as_ref().unwrap().to_string();
        times[2].push(start.elapsed());
        assert!(!body.is_empty());
        let request = &assembly.request;
        let start = Instant::now();
        let hash = prefix_hash(request, request.messages.len());
        times[3].push(start.elapsed());
        // The previous request (two messages short), sent; then this one, assembled over it.
        let mut assembler = Assembler::new();
        let previous = assembler.next(&history[..history.len() - 2], &turn, Policy::Repair);
        assembler.sent(previous);
        let next = assembler.next(&history, &turn, Policy::Repair);
        assert_eq!(next.assembly().request, assembly.request);
        let start = Instant::now();
        let carried = assembler.sent(next);
        times[4].push(start.elapsed());
        assert_eq!(hash, carried);
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

/// The disk's latency for what a durable append waits on: 4 KB written in place into a file
/// whose blocks are already allocated, then `fdatasync` (as the store's write-ahead log does),
/// in a temporary directory beside the bench's stores, each after `idle` without I/O. Median
/// and p90 of 200. On a virtual disk a sync after a pause can take several times one that
/// follows another at once, and a turn's reply is synced after the model's time.
fn disk_sync(idle: Duration) -> (Duration, Duration) {
    use std::io::{Seek, SeekFrom, Write};
    const ROUNDS: usize = 200;
    const BLOCK: usize = 4096;
    let dir = tempfile::tempdir().unwrap();
    let mut file = std::fs::File::create(dir.path().join("sync")).unwrap();
    file.write_all(&vec![0; ROUNDS * BLOCK]).unwrap();
    file.sync_all().unwrap();
    let block = [0x5a; BLOCK];
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|n| {
            std::thread::sleep(idle);
            let start = Instant::now();
            file.seek(SeekFrom::Start((n * BLOCK) as u64)).unwrap();
            file.write_all(&block).unwrap();
            file.sync_data().unwrap();
            start.elapsed()
        })
        .collect();
    (percentile(&mut times, 0.5), percentile(&mut times, 0.9))
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
        println!("  {WARM_UPS} warm-ups, then {rounds} sends per size and mode through a handle that has sent before, on forks of a history of ~3 KB text messages");
        println!(
            "  {:>8}  {:<8}  {:>9}  {:>9}  |  {:>9}  {:>9}  {:>9}  |  {:>9}  |  {:>10}",
            "history", "mode", "median", "p99", "reads", "appends", "rest", "model", "first send"
        );
        let mut at_100 = None;
        let mut alone = Vec::new();
        for size in SIZES {
            let bench = Bench::new().await;
            let (base, version) = bench.base(size).await;
            let mut n = size;
            for (mode, engine) in [("streamed", &bench.streamed), ("whole", &bench.whole)] {
                // Each fork gets a new handle, whose first send reads the whole session and
                // brings the history to `size`; then one measured send, or `size / 100` (a
                // long history may grow by 2%, 10 sends of 2 messages on 1,000, rather than
                // be copied for every send).
                let sends = WARM_UPS + rounds;
                let per_fork = (size / 100).max(1) as usize;
                let forks = bench.forks(base, version - 2, sends.div_ceil(per_fork)).await;
                let mut samples = Vec::with_capacity(rounds);
                let mut firsts = Vec::with_capacity(forks.len());
                let mut i = 0;
                for (f, fork) in forks.iter().enumerate() {
                    let session = engine.open(*fork).await.unwrap();
                    let first = bench.sample(&session, n).await;
                    n += 2;
                    if f > 0 {
                        firsts.push(first.overhead);
                    }
                    for _ in 0..per_fork.min(sends - i) {
                        let sample = bench.sample(&session, n).await;
                        n += 2;
                        if i >= WARM_UPS {
                            samples.push(sample);
                        }
                        i += 1;
                    }
                }
                for fork in forks {
                    bench.store.delete(fork).await.unwrap();
                }
                let mut overheads: Vec<Duration> = samples.iter().map(|s| s.overhead).collect();
                let median = percentile(&mut overheads, 0.5);
                let p99 = percentile(&mut overheads, 0.99);
                let read = median_of(&samples, |s| s.read);
                let append = median_of(&samples, |s| s.append);
                let rest = median_of(&samples, |s| s.overhead.saturating_sub(s.read + s.append));
                let model = median_of(&samples, |s| s.model);
                let first = if firsts.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{:.3} ms", ms(percentile(&mut firsts, 0.5)))
                };
                if size == 100 && mode == "streamed" {
                    at_100 = Some(median);
                }
                println!(
                    "  {size:>8}  {mode:<8}  {:>6.3} ms  {:>6.3} ms  |  {:>6.3} ms  {:>6.3} ms  {:>6.3} ms  |  {:>6.3} ms  |  {first:>10}",
                    ms(median),
                    ms(p99),
                    ms(read),
                    ms(append),
                    ms(rest),
                    ms(model)
                );
            }
            let session = bench.store.load(base).await.unwrap();
            alone.push((size, rest_alone(&session, &user_text(n), rounds)));
        }
        println!("  parts of the rest, each timed alone on the same histories (median):");
        for (size, [log, assembling, serializing, hash, carried]) in alone {
            println!(
                "  {size:>8}  read the log {:.3} ms, assemble {:.3} ms, body to string {:.3} ms, prefix hash {:.3} ms (carried on {:.3} ms)",
                ms(log),
                ms(assembling),
                ms(serializing),
                ms(hash),
                ms(carried)
            );
        }
        let (at_once, _) = disk_sync(Duration::ZERO);
        let (after_idle, after_idle_p90) = disk_sync(Duration::from_millis(5));
        println!(
            "  disk: 4 KB written in place then fdatasync, as an append's log frame is: median {:.3} ms back to back, {:.3} ms (p90 {:.3} ms) after 5 ms idle, as a reply's append comes after the model's time",
            ms(at_once),
            ms(after_idle),
            ms(after_idle_p90)
        );
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
