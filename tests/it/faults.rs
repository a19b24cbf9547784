//! Faults and load at a reduced size, in every test run: sessions running tool loops at once
//! against an emulator that throttles, fails, cuts streams and slows down at 1%, 10% and 50%
//! of requests, on sled and (with `TEST_DATABASE_URL`) on PostgreSQL. Every session ends
//! complete after resumes, and every history checks out (see `benches/support/load.rs`;
//! `cargo bench --bench load` is the full-size run).

#[path = "../../benches/support/load.rs"]
#[allow(dead_code)]
mod load;

use std::sync::Arc;

use load::{Load, run};
use verbatim::SledStore;

fn small(fault_rate: f64, seed: u64) -> Load {
    Load { sessions: 12, turns: 2, fault_rate, seed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_sessions_survive_faults_at_1_10_and_50_percent() {
    for (rate, seed) in [(0.01, 1), (0.10, 2), (0.50, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let report = run(store, &small(rate, seed)).await;
        // Every turn stored at least its question, a tool call, its result and an answer
        // (the harness checked each history; this checks the run did them all).
        assert!(report.records >= 24 * 4, "{report:?}");
        if rate >= 0.5 {
            assert!(report.errors > 0, "at 50% some faults outlast the retries: {report:?}");
        }
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_survive_faults_at_10_and_50_percent() {
    let Some(schema) =
        crate::postgres::Schema::for_test("postgres_sessions_survive_faults", "verbatim_faults")
    else {
        return;
    };
    let url = schema.url.clone();
    let options =
        verbatim::PostgresOptions { schema: Some(schema.name.clone()), ..Default::default() };
    let store = Arc::new(verbatim::PostgresStore::connect_with(&url, options).await.unwrap());
    for (rate, seed) in [(0.10, 4), (0.50, 5)] {
        let report = run(store.clone(), &small(rate, seed)).await;
        assert!(report.records >= 24 * 4, "{report:?}");
        if rate >= 0.5 {
            assert!(report.errors > 0, "at 50% some faults outlast the retries: {report:?}");
        }
    }
}
