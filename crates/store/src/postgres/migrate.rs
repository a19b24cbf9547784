//! The schema: the migrations in `migrations/postgres/` embedded in order, the runner that
//! applies the missing ones under an advisory lock, and the version a database is at.

use super::connect::check_schema_name;
use super::{PostgresStore, backend};
use crate::StoreError;

/// The schema versions this code knows, in order: version, name, SQL.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "sessions", include_str!("../../../../migrations/postgres/0001_sessions.sql")),
    (
        2,
        "records_without_foreign_key",
        include_str!("../../../../migrations/postgres/0002_records_without_foreign_key.sql"),
    ),
    (3, "session_leases", include_str!("../../../../migrations/postgres/0003_session_leases.sql")),
];

/// The newest PostgreSQL schema version this code reads and writes; see `migrations/postgres/`.
pub const POSTGRES_SCHEMA_VERSION: u32 = 3;

/// The advisory lock the migration runner holds (any fixed number; "verbatim" in ASCII).
const MIGRATION_LOCK: i64 = 0x7665_7262_6174_696d;

/// What the migration runner found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before.
    pub from: u32,
    /// The versions applied now, in order (empty when the schema was current).
    pub applied: Vec<u32>,
}

impl PostgresStore {
    /// Applies the migrations the database lacks, each in the transaction that records it,
    /// under an advisory lock (two instances starting at once apply each file once). Creates
    /// `schema` first when given. Refuses a database newer than this code.
    pub async fn migrate(&self, schema: Option<&str>) -> Result<Migrated, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(backend)?;
        if let Some(schema) = schema {
            check_schema_name(schema)?;
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .await
                .map_err(backend)?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS verbatim_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(backend)?;
        let row = tx
            .query_one("SELECT coalesce(max(version), 0) FROM verbatim_migrations", &[])
            .await
            .map_err(backend)?;
        let from = row.get::<_, i32>(0) as u32;
        if from > POSTGRES_SCHEMA_VERSION {
            return Err(newer(from));
        }
        let mut applied = Vec::new();
        for &(version, name, sql) in MIGRATIONS.iter().filter(|(v, ..)| *v > from) {
            tx.batch_execute(sql).await.map_err(|e| match backend(e) {
                StoreError::Backend { detail, source } => StoreError::Backend {
                    detail: format!("migration {version} ({name}): {detail}"),
                    source,
                },
                other => other,
            })?;
            tx.execute(
                "INSERT INTO verbatim_migrations (version, name) VALUES ($1, $2)",
                &[&(version as i32), &name],
            )
            .await
            .map_err(backend)?;
            applied.push(version);
        }
        tx.commit().await.map_err(backend)?;
        Ok(Migrated { from, applied })
    }

    /// The schema version the database is at (0 when verbatim's tables are not there).
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        let client = self.client().await?;
        let exists = client
            .query_one("SELECT to_regclass('verbatim_migrations') IS NOT NULL", &[])
            .await
            .map_err(backend)?;
        if !exists.get::<_, bool>(0) {
            return Ok(0);
        }
        let row = client
            .query_one("SELECT coalesce(max(version), 0) FROM verbatim_migrations", &[])
            .await
            .map_err(backend)?;
        Ok(row.get::<_, i32>(0) as u32)
    }
}

/// The error for a database at schema version `found`, newer than this code.
pub(super) fn newer(found: u32) -> StoreError {
    StoreError::NewerSchema {
        path: "the PostgreSQL database".into(),
        found,
        supported: POSTGRES_SCHEMA_VERSION,
    }
}
