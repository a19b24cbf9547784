//! The load run, printed (`cargo bench --bench load`): `VERBATIM_LOAD_SESSIONS` sessions at
//! once (default 200), each `VERBATIM_LOAD_TURNS` turns of tool loops with thinking (default
//! 3), against the emulator on loopback, on a sled store and then, when `TEST_DATABASE_URL` is
//! set, on PostgreSQL; without faults and with faults on 1%, 10% and 50% of requests (split evenly over
//! throttling, 500, 503, exception frames, cut connections and slow first bytes).
//! Prints turns per second, turn latency (median, p99), errors and the records checked; every
//! history is verified afterwards (see `support/load.rs`).

#![allow(clippy::print_stdout)]

#[path = "support/load.rs"]
mod load;

use std::sync::Arc;

use load::{Load, Report, run};
use verbatim::SessionStore;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn line(store: &str, rate: f64, load: &Load, report: &Report) {
    println!(
        "  {store:<10} faults {:>4.0}%: {} turns in {:.1} s = {:.0} turns/s; turn p50 {:.0} ms, p99 {:.0} ms; {} errors resumed; {} requests; {} records verified",
        rate * 100.0,
        report.turns,
        report.elapsed.as_secs_f64(),
        report.turns as f64 / report.elapsed.as_secs_f64(),
        report.p50.as_secs_f64() * 1e3,
        report.p99.as_secs_f64() * 1e3,
        report.errors,
        report.requests,
        report.records,
    );
    assert_eq!(report.turns, load.sessions * load.turns);
}

fn main() {
    let sessions = env("VERBATIM_LOAD_SESSIONS", 200);
    let turns = env("VERBATIM_LOAD_TURNS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        println!("load: {sessions} sessions at once, {turns} turns each (tool loops with thinking; 3 model calls per turn)");
        let rates = [0.0, 0.01, 0.10, 0.50];
        for (n, rate) in rates.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn SessionStore> = Arc::new(verbatim::SledStore::open(dir.path()).unwrap());
            let load = Load { sessions, turns, fault_rate: *rate, seed: n as u64 + 1 };
            line("sled", *rate, &load, &run(store, &load).await);
        }
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            println!("  postgres: skipped (TEST_DATABASE_URL is not set)");
            return;
        };
        let schema = format!("verbatim_load_{}", std::process::id());
        let options = verbatim::PostgresOptions { schema: Some(schema.clone()), pool_size: 16, ..Default::default() };
        let store: Arc<dyn SessionStore> = Arc::new(verbatim::PostgresStore::connect_with(&url, options).await.unwrap());
        for (n, rate) in rates.iter().enumerate() {
            let load = Load { sessions, turns, fault_rate: *rate, seed: n as u64 + 11 };
            line("postgres", *rate, &load, &run(store.clone(), &load).await);
        }
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
    });
}
