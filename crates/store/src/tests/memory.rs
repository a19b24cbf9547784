//! The in-memory reference passes the conformance suite.

use super::conformance;
use crate::MemoryStore;

#[tokio::test(flavor = "multi_thread")]
async fn memory_store_conforms() {
    conformance::suite(&MemoryStore::new()).await;
}
