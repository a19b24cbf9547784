//! The same workload straight to the emulator and through `verbatim serve` in one run: one
//! stream at a time (the latency the proxy adds), then 200 concurrent streams and 200
//! concurrent whole calls as fast as the machine goes (its capacity), then 200 streams kept
//! open at a model's pace (the emulator takes 500 ms to the first event and 25 ms between
//! events; 200 clients each stream one call after another, their first calls spread out):
//! time to the first event and to the last byte, p50 and p99, requests per second, and the
//! CPU time per call. The proxy records every call in a sled store (durable appends), as it
//! does in use (`VERBATIM_BENCH_STORE=memory`: in memory, to tell the durable write's share
//! apart). LiteLLM's proxy, the peer, runs the same workload in the same run through its
//! Bedrock pass-through route when `litellm` is installed (`through/litellm.rs`); otherwise
//! the bench says it skipped it.
//!
//! `cargo bench -p verbatim-proxy --bench through` (`VERBATIM_BENCH_ROUNDS` sets the rounds of
//! each concurrent run, default 5, and at the model's pace the blocks of 4 calls per client
//! in which straight and verbatim take turns; `VERBATIM_BENCH_ONLY=pace`
//! runs only the workload at the model's pace; `VERBATIM_LITELLM` the `litellm` executable,
//! default the one on `PATH`).

#![allow(clippy::print_stdout)]

#[path = "through/litellm.rs"]
mod litellm;

use std::sync::Arc;
use std::time::{Duration, Instant};

use verbatim_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, Pace};
use verbatim_model::Api;
use verbatim_proxy::{ClientAuth, Limits, Mode, Proxy, ProxyConfig};
use verbatim_store::{MemoryStore, SessionStore, SledStore};
use verbatim_transport::{
    Auth, Call, HttpConfig, HttpTransport, RetryConfig, Secret, Timeouts, Transport,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
/// The model's pace in the last workload: milliseconds to the first event and between events.
const PACE: (u64, u64) = (500, 25);
const BODY: &str = r#"{"messages":[{"role":"user","content":[{"text":"Hello there"}]}]}"#;

fn client(url: String, key: &str) -> HttpTransport {
    let timeouts = Timeouts { connect: Duration::from_secs(30), ..Timeouts::default() };
    let config = HttpConfig::new("us-east-1", Auth::api_key(key))
        .with_endpoint_url(url)
        .with_retry(RetryConfig { max_attempts: 1, ..RetryConfig::default() })
        .with_timeouts(timeouts);
    HttpTransport::new(config).expect("a client")
}

/// One call's times: to the first event (or the whole body) and to the last byte; the error
/// when it failed.
async fn one(client: &HttpTransport, stream: bool) -> Result<(Duration, Duration), String> {
    let call = Call::new(Api::Converse, MODEL, BODY);
    let start = Instant::now();
    if !stream {
        client.send(call).await.map_err(|e| e.to_string())?;
        let all = start.elapsed();
        return Ok((all, all));
    }
    let mut events = client.stream(call).await.map_err(|e| e.to_string())?;
    let first = start.elapsed();
    while let Some(event) = events.next().await {
        event.map_err(|e| e.to_string())?;
    }
    Ok((first, start.elapsed()))
}

#[derive(Default)]
struct Figures {
    /// The times of the calls that succeeded, sorted.
    first: Vec<Duration>,
    last: Vec<Duration>,
    /// Calls made, and the time they took.
    calls: usize,
    elapsed: Duration,
    /// The CPU time of this process (client, emulator and verbatim's proxy) and of `other`
    /// (LiteLLM's process) when given: unlike the latencies, it does not depend on what else
    /// the machine runs.
    cpu: Duration,
    /// Calls that failed (left out of the times), and the first failure.
    failed: usize,
    failure: Option<String>,
}

impl Figures {
    /// Requests served per second.
    fn per_second(&self) -> f64 {
        (self.calls - self.failed) as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU time per call, in microseconds.
    fn cpu_per_call(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.calls as f64
    }

    /// Both runs' figures as one.
    fn merge(mut self, other: Figures) -> Figures {
        self.first.extend(other.first);
        self.last.extend(other.last);
        self.first.sort();
        self.last.sort();
        self.calls += other.calls;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.failed += other.failed;
        self.failure = self.failure.or(other.failure);
        self
    }
}

/// The CPU time (user and system, every thread) process `pid` (this one when `None`) used so
/// far, from `/proc` (zero where there is none).
fn cpu(pid: Option<u32>) -> Duration {
    let path = pid.map_or("/proc/self/stat".to_owned(), |pid| format!("/proc/{pid}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else { return Duration::ZERO };
    // The fields after the command's closing parenthesis; utime and stime are the 14th and
    // 15th of the line, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// How a workload's calls start.
#[derive(Clone, Copy)]
enum Arrival {
    /// `concurrency` calls at once, the next round once all are done: as fast as the machine
    /// goes, so the latencies are mostly the wait for a core.
    Rounds,
    /// `concurrency` clients, each making its calls one after another, their first calls
    /// spread evenly over this time: streams open throughout, as a model's users open them,
    /// not in bursts.
    Spread(Duration),
}

async fn run(
    client: &HttpTransport,
    other: Option<u32>,
    concurrency: usize,
    rounds: usize,
    stream: bool,
    arrival: Arrival,
) -> Figures {
    let (mut first, mut last) = (Vec::new(), Vec::new());
    let (mut failed, mut failure) = (0, None);
    let mut collect = |result: Result<(Duration, Duration), String>| match result {
        Ok((f, l)) => {
            first.push(f);
            last.push(l);
        }
        Err(why) => {
            failed += 1;
            failure.get_or_insert(why);
        }
    };
    let cpu_before = cpu(None) + other.map_or(Duration::ZERO, |pid| cpu(Some(pid)));
    let start = Instant::now();
    match arrival {
        Arrival::Rounds => {
            for _ in 0..rounds {
                let calls = (0..concurrency).map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move { one(&client, stream).await })
                });
                for call in calls.collect::<Vec<_>>() {
                    collect(call.await.expect("a call"));
                }
            }
        }
        Arrival::Spread(over) => {
            let clients = (0..concurrency).map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(over.mul_f64(i as f64 / concurrency as f64)).await;
                    let mut results = Vec::with_capacity(rounds);
                    for _ in 0..rounds {
                        results.push(one(&client, stream).await);
                    }
                    results
                })
            });
            for client in clients.collect::<Vec<_>>() {
                client.await.expect("a client").into_iter().for_each(&mut collect);
            }
        }
    }
    let elapsed = start.elapsed();
    // Saturating: a peer that exited reads as zero.
    let cpu =
        (cpu(None) + other.map_or(Duration::ZERO, |pid| cpu(Some(pid)))).saturating_sub(cpu_before);
    first.sort();
    last.sort();
    Figures { first, last, calls: concurrency * rounds, elapsed, cpu, failed, failure }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// One workload's figures: straight, then each proxy with what it adds to straight.
fn rows(name: &str, direct: &Figures, proxies: &[(&str, Figures)], arrival: Arrival) {
    println!(
        "{name}: straight  first p50 {:.2} p99 {:.2} ms  last p50 {:.2} p99 {:.2} ms  {:.0} req/s  cpu {:.0} us/call",
        pct(&direct.first, 0.5),
        pct(&direct.first, 0.99),
        pct(&direct.last, 0.5),
        pct(&direct.last, 0.99),
        direct.per_second(),
        direct.cpu_per_call(),
    );
    for (proxy, figures) in proxies {
        let added = |sorted: &[Duration], base: &[Duration], p: f64| pct(sorted, p) - pct(base, p);
        println!(
            "  {proxy:<9} first p50 {:.2} (+{:.2}) p99 {:.2} (+{:.2}) ms  last p50 {:.2} (+{:.2}) p99 {:.2} (+{:.2}) ms  {:.0} req/s  cpu {:.0} us/call (+{:.0})",
            pct(&figures.first, 0.5),
            added(&figures.first, &direct.first, 0.5),
            pct(&figures.first, 0.99),
            added(&figures.first, &direct.first, 0.99),
            pct(&figures.last, 0.5),
            added(&figures.last, &direct.last, 0.5),
            pct(&figures.last, 0.99),
            added(&figures.last, &direct.last, 0.99),
            figures.per_second(),
            figures.cpu_per_call(),
            figures.cpu_per_call() - direct.cpu_per_call(),
        );
    }
    for (name, figures) in
        std::iter::once(("straight", direct)).chain(proxies.iter().map(|(n, f)| (*n, f)))
    {
        if let Some(why) = &figures.failure {
            println!("  {name}: {} calls failed (first: {why})", figures.failed);
        }
    }
    if let (Arrival::Spread(_), [(_, through), ..]) = (arrival, proxies) {
        // The clients wait for the model: what is served is what they ask for, unless a
        // proxy cannot keep up.
        println!(
            "  requests/s here is the load the clients offer: straight {:.0}, through verbatim {:.0}{}",
            direct.per_second(),
            through.per_second(),
            proxies.get(1).map_or(String::new(), |(peer, other)| format!(
                ", through {peer} {:.0}",
                other.per_second()
            )),
        );
    } else if let [(_, through), (peer, other)] = proxies {
        println!(
            "  requests/s through verbatim / {peer}: {:.1}x",
            through.per_second() / other.per_second()
        );
    }
}

fn main() {
    let rounds: usize = std::env::var("VERBATIM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let emulator = Emulator::start(EmulatorConfig::default()).await.expect("the emulator");
        let dir = tempfile::tempdir().expect("a directory");
        // `VERBATIM_BENCH_STORE=memory` keeps the sessions in memory instead: what the proxy
        // costs without its durable write, to tell the two apart.
        let in_memory = std::env::var("VERBATIM_BENCH_STORE").is_ok_and(|v| v == "memory");
        let store: Arc<dyn SessionStore> = if in_memory {
            Arc::new(MemoryStore::new())
        } else {
            Arc::new(SledStore::open(dir.path()).expect("a store"))
        };
        let upstream = client(emulator.url(), DEFAULT_API_KEY);
        let auth = ClientAuth { api_keys: vec![Secret::new(DEFAULT_API_KEY)], credentials: Vec::new() };
        let config =
            ProxyConfig { upstream, store, auth, mode: Mode::Observe, limits: Limits::default(), tls: None };
        let proxy = Proxy::start(config).await.expect("the proxy");
        let peer = match litellm::start(&emulator.url(), MODEL) {
            Ok(Some(peer)) => Some(peer),
            Ok(None) => {
                println!(
                    "LiteLLM: skipped (no `litellm` on PATH and no VERBATIM_LITELLM); install it with {}",
                    litellm::INSTALL
                );
                None
            }
            Err(why) => panic!("LiteLLM did not start: {why}"),
        };
        let (direct, through) =
            (client(emulator.url(), DEFAULT_API_KEY), client(proxy.url(), DEFAULT_API_KEY));
        let other = peer.as_ref().map(|peer| client(peer.url.clone(), litellm::MASTER_KEY));
        // Warm every path's connections.
        let pid = peer.as_ref().map(|peer| peer.pid);
        // 200, as many as the concurrent workloads keep open.
        run(&direct, None, 200, 1, true, Arrival::Rounds).await;
        run(&through, None, 200, 1, true, Arrival::Rounds).await;
        if let Some(other) = &other {
            run(other, pid, 20, 1, true, Arrival::Rounds).await;
            run(other, pid, 20, 1, false, Arrival::Rounds).await;
        }
        let kept = if in_memory { "in memory (VERBATIM_BENCH_STORE=memory)" } else { "in sled" };
        println!("the same workload in one run, the same emulator behind; verbatim records each call {kept}");
        if let Some(peer) = &peer {
            println!("LiteLLM {} (its Bedrock pass-through route, one process as `litellm --config` starts it)", peer.version);
        }
        let paced = Pace { first_event_millis: PACE.0, event_millis: PACE.1 };
        let spread = Arrival::Spread(Duration::from_millis(PACE.0 + 10 * PACE.1));
        // `VERBATIM_BENCH_ONLY=pace`: only the workload at a model's pace.
        let only_pace = std::env::var("VERBATIM_BENCH_ONLY").is_ok_and(|v| v == "pace");
        // Each workload: its name, concurrency, calls per client (in each block), whether it
        // streams, how the calls start, and in how many blocks straight and verbatim take
        // turns (so that both see the same machine as it drifts; LiteLLM, slower by far, runs
        // one block).
        for (name, concurrency, calls_each, stream, arrival, blocks) in [
            ("1 stream at a time", 1, 200 * rounds / 5, true, Arrival::Rounds, 1),
            ("200 concurrent streams", 200, rounds, true, Arrival::Rounds, 1),
            ("200 concurrent whole calls", 200, rounds, false, Arrival::Rounds, 1),
            ("200 streams open at a model's pace", 200, 4, true, spread, rounds),
        ] {
            if only_pace && matches!(arrival, Arrival::Rounds) {
                continue;
            }
            if let Arrival::Spread(over) = arrival {
                emulator.set_pace(paced);
                println!(
                    "the model now takes {} ms to its first event and {} ms between events; 200 clients stream {calls_each} calls one after another, their first calls spread over {} ms; straight and verbatim take turns {blocks} times",
                    PACE.0,
                    PACE.1,
                    over.as_millis(),
                );
            }
            let (mut d, mut through_figures) = (Figures::default(), Figures::default());
            let mut peer_figures = None;
            for block in 0..blocks {
                d = d.merge(run(&direct, None, concurrency, calls_each, stream, arrival).await);
                through_figures = through_figures
                    .merge(run(&through, None, concurrency, calls_each, stream, arrival).await);
                if let Some(other) = other.as_ref().filter(|_| block == 0) {
                    peer_figures = Some(run(other, pid, concurrency, calls_each, stream, arrival).await);
                }
            }
            let mut proxies = vec![("verbatim", through_figures)];
            proxies.extend(peer_figures.map(|figures| ("LiteLLM", figures)));
            rows(name, &d, &proxies, arrival);
        }
        proxy.shutdown().await;
        drop(peer);
    });
}
