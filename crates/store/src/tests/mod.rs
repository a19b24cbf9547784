//! Tests of the store: the conformance suite every backend passes, run here on the in-memory
//! reference and on sled, and sled's own durability and crash tests.

mod conformance;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod fixtures;
mod history;
mod import;
mod import_input;
mod lease;
mod memory;
#[cfg(feature = "postgres")]
mod pg_cluster;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_tls;
mod records;
mod sled;
