//! The same workload straight to the emulator and through `verbatim serve` in one run: one
//! stream at a time (the latency the proxy adds), then 200 concurrent streams, then 200
//! concurrent whole calls; time to the first event and to the last byte, p50 and p99, and
//! requests per second. The proxy records every call in a sled store (durable appends), as it
//! does in use.
//!
//! `cargo bench -p verbatim-proxy --bench through` (`VERBATIM_BENCH_ROUNDS` sets the rounds of
//! each concurrent run, default 5).

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use verbatim_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};
use verbatim_model::Api;
use verbatim_proxy::{ClientAuth, Limits, Mode, Proxy, ProxyConfig};
use verbatim_store::SledStore;
use verbatim_transport::{
    Auth, Call, HttpConfig, HttpTransport, RetryConfig, Secret, Timeouts, Transport,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const BODY: &str = r#"{"messages":[{"role":"user","content":[{"text":"Hello there"}]}]}"#;

fn client(url: String) -> HttpTransport {
    let timeouts = Timeouts { connect: Duration::from_secs(30), ..Timeouts::default() };
    let config = HttpConfig::new("us-east-1", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(url)
        .with_retry(RetryConfig { max_attempts: 1, ..RetryConfig::default() })
        .with_timeouts(timeouts);
    HttpTransport::new(config).expect("a client")
}

/// One call's times: to the first event (or the whole body) and to the last byte.
async fn one(client: &HttpTransport, stream: bool) -> (Duration, Duration) {
    let call = Call::new(Api::Converse, MODEL, BODY);
    let start = Instant::now();
    if !stream {
        client.send(call).await.expect("an answer");
        let all = start.elapsed();
        return (all, all);
    }
    let mut events = client.stream(call).await.expect("a stream");
    let first = start.elapsed();
    while let Some(event) = events.next().await {
        event.expect("an event");
    }
    (first, start.elapsed())
}

struct Figures {
    first: Vec<Duration>,
    last: Vec<Duration>,
    per_second: f64,
}

async fn run(client: &HttpTransport, concurrency: usize, rounds: usize, stream: bool) -> Figures {
    let (mut first, mut last) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for _ in 0..rounds {
        let calls = (0..concurrency).map(|_| {
            let client = client.clone();
            tokio::spawn(async move { one(&client, stream).await })
        });
        for call in calls.collect::<Vec<_>>() {
            let (f, l) = call.await.expect("a call");
            first.push(f);
            last.push(l);
        }
    }
    let per_second = (concurrency * rounds) as f64 / start.elapsed().as_secs_f64();
    first.sort();
    last.sort();
    Figures { first, last, per_second }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn row(name: &str, direct: &Figures, proxied: &Figures) {
    println!(
        "{name:<28} first p50 {:>7.2} / {:>7.2} ms (+{:.2})  p99 {:>7.2} / {:>7.2} ms (+{:.2})",
        pct(&direct.first, 0.5),
        pct(&proxied.first, 0.5),
        pct(&proxied.first, 0.5) - pct(&direct.first, 0.5),
        pct(&direct.first, 0.99),
        pct(&proxied.first, 0.99),
        pct(&proxied.first, 0.99) - pct(&direct.first, 0.99),
    );
    println!(
        "{:<28} last  p50 {:>7.2} / {:>7.2} ms (+{:.2})  p99 {:>7.2} / {:>7.2} ms (+{:.2})  req/s {:.0} / {:.0}",
        "",
        pct(&direct.last, 0.5),
        pct(&proxied.last, 0.5),
        pct(&proxied.last, 0.5) - pct(&direct.last, 0.5),
        pct(&direct.last, 0.99),
        pct(&proxied.last, 0.99),
        pct(&proxied.last, 0.99) - pct(&direct.last, 0.99),
        direct.per_second,
        proxied.per_second,
    );
}

fn main() {
    let rounds: usize =
        std::env::var("VERBATIM_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let emulator = Emulator::start(EmulatorConfig::default()).await.expect("the emulator");
        let dir = tempfile::tempdir().expect("a directory");
        let store = Arc::new(SledStore::open(dir.path()).expect("a store"));
        let upstream = client(emulator.url());
        let auth = ClientAuth { api_keys: vec![Secret::new(DEFAULT_API_KEY)], credentials: Vec::new() };
        let config =
            ProxyConfig { upstream, store, auth, mode: Mode::Observe, limits: Limits::default(), tls: None };
        let proxy = Proxy::start(config).await.expect("the proxy");
        let (direct, through) = (client(emulator.url()), client(proxy.url()));
        // Warm both paths' connections.
        run(&direct, 20, 1, true).await;
        run(&through, 20, 1, true).await;
        println!("direct / through the proxy (same run, same emulator; the proxy records each call in sled)");
        for (name, concurrency, rounds, stream) in [
            ("1 stream at a time", 1, 200 * rounds / 5, true),
            ("200 concurrent streams", 200, rounds, true),
            ("200 concurrent whole calls", 200, rounds, false),
        ] {
            // Alternated so both see the same machine.
            let d = run(&direct, concurrency, rounds, stream).await;
            let p = run(&through, concurrency, rounds, stream).await;
            row(name, &d, &p);
        }
        proxy.shutdown().await;
    });
}
