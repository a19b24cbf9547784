//! The PostgreSQL backend (feature `postgres`): sessions shared by every app instance that
//! reaches the database.
//!
//! Tables (see `migrations/postgres/`): `sessions` (one row per session: what it was created
//! with, tags, times, version, origin), `records` (one row per record: session, sequence
//! number, time, the entry's JSON text) and `idempotency_keys`; a session's lease is in its
//! row. Entries are stored as the JSON
//! text serde wrote, never as `jsonb`, so every string, key order and number comes back byte
//! for byte.
//!
//! The backend by concern: `connect.rs` (options and the pool), `migrate.rs` (the schema and
//! its migration runner), `tls.rs` (TLS: `sslmode`, the CAs, the rustls connector), `iam.rs`
//! (RDS IAM tokens), `url.rs` (the settings this store reads from the URL itself, the URL shown
//! without its password), `lease.rs` (turn leases), `load.rs` (reading sessions and records),
//! `write.rs` (appends and the
//! other writes), `rows.rs` (values to and from columns). This file holds the store, the
//! [`SessionStore`] implementation, which calls into those, and backend errors.

mod connect;
mod iam;
mod lease;
mod load;
mod migrate;
mod rows;
mod tls;
mod url;
mod write;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;
use verbatim_model::SessionId;

use crate::{
    Append, Appended, Lease, ListQuery, NewSession, Page, Record, Rewound, Session, SessionInfo,
    SessionStore, StoreError,
};
pub use connect::PostgresOptions;
pub use iam::rds_auth_token;
use load::Lock;
pub use migrate::{Migrated, POSTGRES_SCHEMA_VERSION};
pub use tls::SslMode;

/// Sessions in PostgreSQL, through a pool of connections. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The URL as errors show it (its password replaced).
    shown_url: std::sync::Arc<str>,
    /// The TLS mode connections use.
    ssl_mode: SslMode,
    /// RDS IAM authentication, when on.
    iam: Option<std::sync::Arc<iam::Iam>>,
}

impl std::fmt::Debug for PostgresStore {
    // The connection settings may hold a password: they are not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore").field("connections", &status.size).finish_non_exhaustive()
    }
}

/// A backend error with its causes (`error connecting to server: Connection refused`). Neither
/// tokio-postgres nor the pool puts connection settings in their messages.
fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let mut text = format!("postgres: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_of(source);
    }
    StoreError::backend_with(text, e)
}

fn cause_of<'a>(
    e: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    e.and_then(|e| e.source())
}

fn sql_state(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

/// Whether `e` is a unique violation of `constraint`.
fn violates(e: &tokio_postgres::Error, constraint: &str) -> bool {
    sql_state(e) == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|db| db.constraint()) == Some(constraint)
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        self.create_session(new).await
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        self.append_entries(id, append).await
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        let client = self.client().await?;
        Self::info_with(&client, id, Lock::None).await
    }

    async fn load(&self, id: SessionId) -> Result<Session, StoreError> {
        self.load_session(id).await
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        self.load_records(id, from, to).await
    }

    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        self.tail_records(id, n).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.list_sessions(query).await
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        self.fork_session(id, at).await
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        self.rewind_session(id, expected_version, to).await
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.delete_session(id).await
    }

    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        self.put_session(session).await
    }

    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.acquire(id, owner, ttl).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        self.renew(lease, ttl).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.release(lease).await
    }
}
