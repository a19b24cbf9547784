//! The in-memory reference passes the conformance suite.

use std::sync::Arc;

use super::{conformance, lease};
use crate::{ManualClock, MemoryStore};

#[tokio::test(flavor = "multi_thread")]
async fn memory_store_conforms() {
    conformance::suite(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_store_leases_conform() {
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let store = MemoryStore::new().with_clock(clock.clone());
    lease::suite(&store, lease::Time::Manual(&clock)).await;
}
