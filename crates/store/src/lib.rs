//! Durable, append-only chat sessions.
//!
//! A session is a log of typed [`Entry`]s, each stored as a [`Record`] with a per-session
//! sequence number (1, 2, 3, ...; never ordered by wall clock): messages with their provenance,
//! configuration changes, tool-call lifecycle steps, the fixes the assembler applied, forks and
//! rewinds. Nothing is ever rewritten: an edit is an append, a rewind sets history aside in an
//! archive. Appends are atomic, name the version they expect (a stale writer gets
//! [`StoreError::Conflict`] and writes nothing) and may carry an idempotency key. What the
//! records say is live (the history, the configuration in force, the recorded fixes) is a
//! [`History`], read whole or kept in step with the records appended since.
//!
//! A turn holds the session's [`Lease`] (owner, expiry, fencing token): another owner meets
//! [`StoreError::Busy`] until it is released or expires, and once it was taken over the
//! appends made under it are refused ([`StoreError::Fenced`]), on every backend and across
//! processes where the backend is shared.
//!
//! [`SessionStore`] is the trait every backend implements; [`SledStore`] is the embedded
//! default (one directory, durable appends with group commit); `PostgresStore` (feature
//! `postgres`) shares sessions between app instances, as `DynamoStore` (feature `dynamodb`) does
//! in a DynamoDB table; [`MemoryStore`] is the in-memory
//! reference the conformance suite checks backends against.

#[cfg(feature = "dynamodb")]
mod dynamodb;
mod entry;
pub mod export;
mod fix_record;
mod history;
pub mod import;
mod lease;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub mod redact;
mod salvage;
mod sealed;
mod sled_dir;
mod sled_store;
mod store;
mod wal;

#[cfg(feature = "dynamodb")]
pub use dynamodb::{DynamoOptions, DynamoStore, DynamoUrl, PART_BYTES, PENDING_STALE};
pub use entry::{
    ConfigChange, Entry, NewSession, Origin, Record, Session, SessionInfo, ToolCallEvent,
    ToolCallState,
};
pub use fix_record::{ActionRecord, FIX_RECORD_VERSION, FixRecord};
pub use history::{Config, History};
pub use lease::{Clock, Lease, ManualClock, SystemClock};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{
    Migrated, POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore, SslMode, rds_auth_token,
};
pub use sled_store::{CHUNK, Durability, SCHEMA_VERSION, SledOptions, SledStore};
pub use store::{
    Append, Appended, Cursor, ErrorSource, ListQuery, Page, Rewound, SessionStore, StoreError,
    new_session_id,
};

#[cfg(test)]
mod tests;
