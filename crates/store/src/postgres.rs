//! The PostgreSQL backend (feature `postgres`): sessions shared by every app instance that
//! reaches the database.
//!
//! Tables (see `migrations/postgres/`): `sessions` (one row per session: what it was created
//! with, tags, times, version, origin), `records` (one row per record: session, sequence
//! number, time, the entry's JSON text) and `idempotency_keys`. Entries are stored as the JSON
//! text serde wrote, never as `jsonb`, so every string, key order and number comes back byte
//! for byte.
//!
//! An append is one statement, so one round trip and one transaction: it bumps the session's
//! version only if it still is the version the caller expected, and inserts the records and
//! the idempotency key only if it did. Under PostgreSQL's row lock a second writer expecting
//! the same version finds the row changed and writes nothing ([`StoreError::Conflict`]). With
//! the server's default `synchronous_commit = on`, an append returns once its commit is on
//! stable storage.
//!
//! Readers take no lock: a load reads the session row, then its records up to that row's
//! version, which are never rewritten.

use std::sync::mpsc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::TryStreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;
use verbatim_model::SessionId;

use crate::store::{check_fork, check_numbering, check_rewind, new_info, now};
use crate::{
    Append, Appended, Entry, ListQuery, NewSession, Origin, Page, Record, Rewound, Session,
    SessionInfo, SessionStore, StoreError,
};

/// The schema versions this code knows, in order: version, name, SQL.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "sessions", include_str!("../../../migrations/postgres/0001_sessions.sql")),
    (
        2,
        "records_without_foreign_key",
        include_str!("../../../migrations/postgres/0002_records_without_foreign_key.sql"),
    ),
];

/// The newest PostgreSQL schema version this code reads and writes; see `migrations/postgres/`.
pub const POSTGRES_SCHEMA_VERSION: u32 = 2;

/// The advisory lock the migration runner holds (any fixed number; "verbatim" in ASCII).
const MIGRATION_LOCK: i64 = 0x7665_7262_6174_696d;

/// How to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema holding verbatim's tables (created if missing); `None` uses the first schema
    /// of the server's `search_path` (normally `public`). Letters, digits and `_` only.
    pub schema: Option<String>,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Apply pending migrations when connecting (the default). When false, connecting to a
    /// database that is not at [`POSTGRES_SCHEMA_VERSION`] is an error naming the command that
    /// migrates it.
    pub migrate: bool,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            schema: None,
            pool_size: 16,
            migrate: true,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What the migration runner found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before.
    pub from: u32,
    /// The versions applied now, in order (empty when the schema was current).
    pub applied: Vec<u32>,
}

/// Sessions in PostgreSQL, through a pool of connections. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
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

fn uuid(id: SessionId) -> Uuid {
    Uuid::from_bytes(*id.as_bytes())
}

fn session_id(uuid: Uuid) -> SessionId {
    // Stored ids are version 4 UUIDs: setting the version and variant bits changes nothing.
    SessionId::from_random_bytes(uuid.into_bytes())
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store values serialize")
}

fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/database`, or the key=value form) with
    /// the default options, applying pending migrations.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects to `url` with `options`.
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore::pool(url, &options)?;
        let current = store.schema_version().await?;
        if current > POSTGRES_SCHEMA_VERSION {
            return Err(newer(current));
        }
        if current < POSTGRES_SCHEMA_VERSION {
            if !options.migrate {
                return Err(StoreError::Invalid(format!(
                    "the database has schema version {current}, this version of verbatim needs \
                     {POSTGRES_SCHEMA_VERSION}: run `verbatim migrate --database-url URL`"
                )));
            }
            // The lock and the DDL only when something is missing (checked again under the
            // lock): once the schema is in place, an app's role needs no right to create.
            store.migrate(options.schema.as_deref()).await?;
        }
        Ok(store)
    }

    /// Connects to `url` and applies pending migrations, saying what it found and did
    /// (`options.migrate` is not read).
    pub async fn connect_and_migrate(
        url: &str,
        options: PostgresOptions,
    ) -> Result<(PostgresStore, Migrated), StoreError> {
        let store = PostgresStore::pool(url, &options)?;
        let migrated = store.migrate(options.schema.as_deref()).await?;
        Ok((store, migrated))
    }

    /// The pool: no connection is made yet.
    fn pool(url: &str, options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // The parser's message names the offending part, never the password's value.
            StoreError::Invalid(format!("the PostgreSQL URL is not valid: {e}"))
        })?;
        config.connect_timeout(options.connect_timeout);
        // Durable appends need the commit's WAL flush, whatever the server's default; options
        // from the URL are kept (after ours, so they win where they say otherwise).
        let mut settings = String::from("-c synchronous_commit=on");
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
            settings.push_str(&format!(" -c search_path={schema}"));
        }
        if let Some(given) = config.get_options() {
            settings.push(' ');
            settings.push_str(given);
        }
        config.options(settings);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(backend)?;
        Ok(PostgresStore { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(backend)
    }

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

    async fn info_with(
        client: &impl GenericClient,
        id: SessionId,
        lock: Lock,
    ) -> Result<SessionInfo, StoreError> {
        let sql = match lock {
            Lock::None => {
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE id = $1"
            }
            Lock::KeepRow => {
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE id = $1 FOR KEY SHARE"
            }
            Lock::Write => {
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE id = $1 FOR UPDATE"
            }
        };
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        let row = client.query_opt(&statement, &[&uuid(id)]).await.map_err(backend)?;
        row.map(|row| session_info(&row)).ok_or(StoreError::NotFound(id))?
    }

    /// Records `from..=to` of a session (to its version as this statement sees it when `to`
    /// is `None`), in order.
    async fn records(
        client: &impl GenericClient,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        if to.is_some_and(|to| from > to) {
            return Ok(Vec::new());
        }
        let mut records = match Self::records_in_groups(client, id, from, to).await {
            Ok(records) => records,
            // A group's row is one message, which PostgreSQL caps at 1 GB: a run of entries
            // averaging more than 16 MB is read one row per record instead.
            Err(Grouped::TooLarge) => Self::records_by_row(client, id, from, to).await?,
            Err(Grouped::Failed(e)) => return Err(e),
        };
        // Within a group, records come as the server read them: in `seq` order unless it
        // read the table's pages in their own order.
        if !records.is_sorted_by_key(|r| r.seq) {
            records.sort_unstable_by_key(|r| r.seq);
        }
        Ok(records)
    }

    /// [`PostgresStore::records`] one row per record.
    async fn records_by_row(
        client: &impl GenericClient,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        let statement = client
            .prepare_cached(
                "SELECT seq, at, entry FROM records \
                 WHERE session_id = $1 AND seq >= $2 \
                   AND seq <= coalesce($3, (SELECT version FROM sessions WHERE id = $1)) \
                 ORDER BY seq",
            )
            .await
            .map_err(backend)?;
        let to = to.map(version);
        let rows =
            client.query(&statement, &[&uuid(id), &version(from), &to]).await.map_err(backend)?;
        rows.iter()
            .map(|row| {
                let seq = row.get::<_, i64>(0) as u64;
                Ok(Record { seq, at: row.get(1), entry: entry(id, seq, row.get(2))? })
            })
            .collect()
    }

    /// The records `from..=to` read one row per record, as a load over the size limit of a
    /// group reads them.
    #[cfg(test)]
    pub(crate) async fn records_one_row_each(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        Self::records_by_row(&self.client().await?, id, from, to).await
    }

    /// [`PostgresStore::records`] in groups, not yet sorted.
    async fn records_in_groups(
        client: &impl GenericClient,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, Grouped> {
        // Records come in groups of `GROUP_RECORDS`, one row per group holding three arrays
        // (sequence numbers, times, entry texts) that list the same records in the same order.
        // One row per record costs the client a protocol message, a channel send and often a
        // thread wake-up each: on a long session that, more than the server, bounded a plain
        // SELECT. Each group is aggregated on its own, so the server sends it once it is read
        // and goes on with the next while the client parses it.
        let statement = client
            .prepare_cached(
                "SELECT g.seqs, g.ats, g.entries \
                 FROM generate_series( \
                     0, (coalesce($3, (SELECT version FROM sessions WHERE id = $1)) - $2) / $4 \
                 ) AS b(n) \
                 CROSS JOIN LATERAL ( \
                     SELECT array_agg(seq) AS seqs, array_agg(at) AS ats, \
                            array_agg(entry) AS entries \
                     FROM records \
                     WHERE session_id = $1 AND seq >= $2 + b.n * $4 AND seq < $2 + (b.n + 1) * $4 \
                       AND seq <= coalesce($3, (SELECT version FROM sessions WHERE id = $1)) \
                 ) g \
                 WHERE g.seqs IS NOT NULL",
            )
            .await
            .map_err(backend)?;
        let to = to.map(version);
        let params: [&(dyn ToSql + Sync); 4] = [&uuid(id), &version(from), &to, &GROUP_RECORDS];
        let groups = client.query_raw(&statement, params).await.map_err(Grouped::from)?;
        let mut groups = std::pin::pin!(groups);
        // A short first group (a short session, a tail) is parsed here. Otherwise groups are
        // handed in turn to parsing threads, one per core, as they come: parsing is most of a
        // long load's own work. A parser stops at its first bad group, and the load with it.
        let mut parts: Vec<Vec<Record>> = Vec::new();
        let mut parsers: Vec<(mpsc::Sender<(usize, Row)>, JoinHandle<_>)> = Vec::new();
        while let Some(group) = groups.try_next().await.map_err(Grouped::from)? {
            if parsers.is_empty() && group_len(&group) < PARSE_APART {
                parts.push(parse_group(id, &group)?);
                continue;
            }
            if parsers.len() < parse_threads() {
                let (send, receive) = mpsc::channel::<(usize, Row)>();
                let parser = tokio::task::spawn_blocking(move || {
                    let mut parsed = Vec::new();
                    for (n, group) in receive {
                        parsed.push((n, parse_group(id, &group).map_err(|e| (n, e))?));
                    }
                    Ok::<_, (usize, StoreError)>(parsed)
                });
                parsers.push((send, parser));
            }
            let n = parts.len();
            parts.push(Vec::new());
            if parsers[n % parsers.len()].0.send((n, group)).is_err() {
                break;
            }
        }
        // Each parser took its groups in order and stopped at its first bad one: the first
        // bad group of all is the first of theirs.
        let mut failed: Option<(usize, StoreError)> = None;
        for (send, parser) in parsers {
            drop(send);
            match parser.await.map_err(|e| Grouped::Failed(backend(e)))? {
                Ok(parsed) => parsed.into_iter().for_each(|(n, part)| parts[n] = part),
                Err((n, e)) => {
                    if failed.as_ref().is_none_or(|(first, _)| n < *first) {
                        failed = Some((n, e));
                    }
                }
            }
        }
        if let Some((_, e)) = failed {
            return Err(Grouped::Failed(e));
        }
        Ok(parts.into_iter().flatten().collect())
    }

    /// Inserts a session row and its records in `client`'s transaction.
    async fn insert_session(
        client: &impl GenericClient,
        info: &SessionInfo,
        records: &[Record],
    ) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "INSERT INTO sessions (id, start, tags, created_at, updated_at, version, origin) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await
            .map_err(backend)?;
        let origin = info.origin.as_ref().map(to_json);
        let inserted = client
            .execute(
                &statement,
                &[
                    &uuid(info.id),
                    &to_json(&info.start),
                    &info.start.tags,
                    &info.created_at,
                    &info.updated_at,
                    &version(info.version),
                    &origin,
                ],
            )
            .await;
        match inserted {
            Err(e) if violates(&e, "sessions_pkey") => {
                return Err(StoreError::AlreadyExists(info.id));
            }
            other => other.map_err(backend)?,
        };
        Self::insert_records(client, info.id, records).await
    }

    async fn insert_records(
        client: &impl GenericClient,
        id: SessionId,
        records: &[Record],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let statement = client
            .prepare_cached(
                "INSERT INTO records (session_id, seq, at, entry) \
                 SELECT $1, r.seq, r.at, r.entry \
                 FROM unnest($2::bigint[], $3::timestamptz[], $4::text[]) AS r(seq, at, entry)",
            )
            .await
            .map_err(backend)?;
        let seqs: Vec<i64> = records.iter().map(|r| version(r.seq)).collect();
        let times: Vec<DateTime<Utc>> = records.iter().map(|r| r.at).collect();
        let entries: Vec<String> = records.iter().map(|r| to_json(&r.entry)).collect();
        client.execute(&statement, &[&uuid(id), &seqs, &times, &entries]).await.map_err(backend)?;
        Ok(())
    }

    /// After an append wrote nothing: the earlier result of its idempotency key, or why.
    async fn unwritten(
        client: &impl GenericClient,
        id: SessionId,
        append: &Append,
    ) -> Result<Appended, StoreError> {
        let statement = client
            .prepare_cached(
                "SELECT s.version, k.first_seq, k.version FROM sessions s \
                 LEFT JOIN idempotency_keys k ON k.session_id = s.id AND k.key = $2 \
                 WHERE s.id = $1",
            )
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&statement, &[&uuid(id), &append.idempotency_key])
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound(id))?;
        if let (Some(first_seq), Some(version)) =
            (row.get::<_, Option<i64>>(1), row.get::<_, Option<i64>>(2))
        {
            return Ok(Appended { first_seq: first_seq as u64, version: version as u64 });
        }
        let actual = row.get::<_, i64>(0) as u64;
        if actual != append.expected_version {
            return Err(StoreError::Conflict { id, expected: append.expected_version, actual });
        }
        if append.entries.is_empty() {
            return Err(StoreError::Invalid("an append needs at least one entry".into()));
        }
        Err(StoreError::corrupt(
            id.to_string(),
            "idempotency_keys",
            "a key was refused that is not stored",
        ))
    }
}

fn newer(found: u32) -> StoreError {
    StoreError::NewerSchema {
        path: "the PostgreSQL database".into(),
        found,
        supported: POSTGRES_SCHEMA_VERSION,
    }
}

/// Schema names go into SQL text (`search_path`, `CREATE SCHEMA`): only plain identifiers.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if plain {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "schema name `{schema}`: use 1 to 63 lowercase letters, digits and `_`, not starting \
             with a digit"
        )))
    }
}

/// A stored value of session `id` under `key` that `e` refused.
fn corrupt(
    id: SessionId,
    key: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    let (id, key, detail) = (id.to_string(), key.into(), e.to_string());
    StoreError::Corrupt { id, key, detail, source: Some(Box::new(e)) }
}

fn session_info(row: &Row) -> Result<SessionInfo, StoreError> {
    let id = session_id(row.get(0));
    let start: NewSession =
        serde_json::from_str(row.get(1)).map_err(|e| corrupt(id, "sessions.start", e))?;
    let origin = row
        .get::<_, Option<&str>>(5)
        .map(serde_json::from_str::<Origin>)
        .transpose()
        .map_err(|e| corrupt(id, "sessions.origin", e))?;
    Ok(SessionInfo {
        id,
        start,
        created_at: row.get(2),
        updated_at: row.get(3),
        version: row.get::<_, i64>(4) as u64,
        origin,
    })
}

/// The row lock a read of a session row takes.
#[derive(Clone, Copy)]
enum Lock {
    /// None: a plain read.
    None,
    /// The row cannot be deleted until the transaction ends (`FOR KEY SHARE`).
    KeepRow,
    /// No other writer until the transaction ends (`FOR UPDATE`).
    Write,
}

/// Records per group read at once (see `records_in_groups`). A group's arrays are built in the
/// server's memory and sent as one row, which PostgreSQL caps at 1 GB: 64 entries stay under
/// it unless they average 16 MB (a whole InvokeModel request body may hold 25 MB); beyond, the
/// records are read one row each.
const GROUP_RECORDS: i64 = 64;

/// Why records could not be read in groups.
enum Grouped {
    /// A group was over PostgreSQL's limit for one value or one row.
    TooLarge,
    /// Any other failure.
    Failed(StoreError),
}

impl From<StoreError> for Grouped {
    fn from(e: StoreError) -> Grouped {
        Grouped::Failed(e)
    }
}

impl From<tokio_postgres::Error> for Grouped {
    fn from(e: tokio_postgres::Error) -> Grouped {
        // `array size exceeds the maximum allowed`; `Cannot enlarge string buffer` (the row).
        match e.code() {
            Some(code)
                if *code == SqlState::PROGRAM_LIMIT_EXCEEDED
                    || *code == SqlState::OUT_OF_MEMORY =>
            {
                Grouped::TooLarge
            }
            _ => Grouped::Failed(backend(e)),
        }
    }
}

/// A first group of fewer records than this is parsed in place, not on a parsing thread.
const PARSE_APART: usize = 32;

/// Threads that parse the groups of one load: one per core, up to four.
fn parse_threads() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4))
}

/// The number of records in a group row.
fn group_len(group: &Row) -> usize {
    group.try_get::<_, Vec<i64>>(0).map_or(0, |seqs| seqs.len())
}

/// Parses a group row: arrays of sequence numbers, times and entry texts.
fn parse_group(id: SessionId, group: &Row) -> Result<Vec<Record>, StoreError> {
    let seqs: Vec<i64> = group.try_get(0).map_err(|e| corrupt(id, "records", e))?;
    let times: Vec<DateTime<Utc>> = group.try_get(1).map_err(|e| corrupt(id, "records", e))?;
    let entries: Vec<&str> = group.try_get(2).map_err(|e| corrupt(id, "records", e))?;
    if times.len() != seqs.len() || entries.len() != seqs.len() {
        return Err(StoreError::corrupt(
            id.to_string(),
            "records",
            "a group's arrays differ in length",
        ));
    }
    seqs.into_iter()
        .zip(times)
        .zip(entries)
        .map(|((seq, at), text)| {
            let seq = seq as u64;
            Ok(Record { seq, at, entry: entry(id, seq, text)? })
        })
        .collect()
}

/// The entry of record `seq` from its stored text.
fn entry(id: SessionId, seq: u64, text: &str) -> Result<Entry, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(id, format!("record {seq}"), e))
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        let info = new_info(new, None)?;
        let client = self.client().await?;
        Self::insert_session(&client, &info, &[]).await?;
        Ok(info)
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        let client = self.client().await?;
        if append.entries.is_empty() {
            return Self::unwritten(&client, id, &append).await;
        }
        let statement = client
            .prepare_cached(
                "WITH bumped AS ( \
                     UPDATE sessions SET version = $3, updated_at = $4 \
                     WHERE id = $1 AND version = $2 RETURNING id \
                 ), written AS ( \
                     INSERT INTO records (session_id, seq, at, entry) \
                     SELECT b.id, $2 + e.n, $4, e.entry \
                     FROM bumped b, unnest($5::text[]) WITH ORDINALITY AS e(entry, n) \
                 ), keyed AS ( \
                     INSERT INTO idempotency_keys (session_id, key, first_seq, version) \
                     SELECT b.id, $6, $2 + 1, $3 FROM bumped b WHERE $6::text IS NOT NULL \
                 ) \
                 SELECT count(*) FROM bumped",
            )
            .await
            .map_err(backend)?;
        let expected = version(append.expected_version);
        let count = append.entries.len() as u64;
        let Some(new_version) = append.expected_version.checked_add(count) else {
            return Self::unwritten(&client, id, &append).await;
        };
        let entries: Vec<String> = append.entries.iter().map(to_json).collect();
        let written = client
            .query_one(
                &statement,
                &[
                    &uuid(id),
                    &expected,
                    &version(new_version),
                    &now(),
                    &entries,
                    &append.idempotency_key,
                ],
            )
            .await;
        match written {
            Ok(row) if row.get::<_, i64>(0) == 1 => {
                Ok(Appended { first_seq: append.expected_version + 1, version: new_version })
            }
            Ok(_) => Self::unwritten(&client, id, &append).await,
            // The key was used by an earlier append (which then moved the version on).
            Err(e) if violates(&e, "idempotency_keys_pkey") => {
                Self::unwritten(&client, id, &append).await
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        let client = self.client().await?;
        Self::info_with(&client, id, Lock::None).await
    }

    async fn load(&self, id: SessionId) -> Result<Session, StoreError> {
        let client = self.client().await?;
        // Both statements go out at once (one round trip). The session row is read first;
        // the records statement, run after it, sees that version or a later one, so the
        // records are cut to the row's version (records are never rewritten).
        let (info, mut records) = futures_util::future::try_join(
            Self::info_with(&client, id, Lock::None),
            Self::records(&client, id, 1, None),
        )
        .await?;
        records.truncate(info.version as usize);
        if records.len() as u64 != info.version {
            // Deleted between the two reads.
            return Err(StoreError::NotFound(id));
        }
        Ok(Session { info, records })
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        let client = self.client().await?;
        let info = Self::info_with(&client, id, Lock::None).await?;
        let to = to.map_or(info.version, |to| to.min(info.version));
        Self::records(&client, id, from.max(1), Some(to)).await
    }

    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        let client = self.client().await?;
        let info = Self::info_with(&client, id, Lock::None).await?;
        let from = info.version.saturating_sub(n as u64) + 1;
        Self::records(&client, id, from, Some(info.version)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let limit = if query.limit == 0 { 100 } else { query.limit };
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE ($1::text IS NULL OR tags @> ARRAY[$1::text]) \
                   AND ($2::timestamptz IS NULL OR updated_at >= $2) \
                   AND ($3::timestamptz IS NULL OR (updated_at, id) < ($3, $4::uuid)) \
                 ORDER BY updated_at DESC, id DESC LIMIT $5",
            )
            .await
            .map_err(backend)?;
        let after_time = query.after.map(|c| c.updated_at);
        let after_id = query.after.map(|c| uuid(c.id));
        let rows = client
            .query(
                &statement,
                &[&query.tag, &query.updated_since, &after_time, &after_id, &(limit as i64 + 1)],
            )
            .await
            .map_err(backend)?;
        let mut sessions = rows.iter().map(session_info).collect::<Result<Vec<_>, _>>()?;
        let next = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions.last().map(|s| crate::Cursor { updated_at: s.updated_at, id: s.id })
        } else {
            None
        };
        Ok(Page { sessions, next })
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The key-share lock keeps a delete out until the fork commits (appends may go on).
        let source = Self::info_with(&tx, id, Lock::KeepRow).await?;
        check_fork(&source, at)?;
        let mut info = new_info(source.start.clone(), Some(Origin::Fork { from: id, at }))?;
        info.version = at + 1;
        Self::insert_session(&tx, &info, &[]).await?;
        let copy = tx
            .prepare_cached(
                "INSERT INTO records (session_id, seq, at, entry) \
                 SELECT $1, seq, at, entry FROM records WHERE session_id = $2 AND seq <= $3",
            )
            .await
            .map_err(backend)?;
        let copied =
            tx.execute(&copy, &[&uuid(info.id), &uuid(id), &version(at)]).await.map_err(backend)?;
        if copied != at {
            return Err(StoreError::corrupt(
                id.to_string(),
                "records",
                format!("{copied} records up to {at}"),
            ));
        }
        let forked = Record {
            seq: at + 1,
            at: info.updated_at,
            entry: Entry::Forked { from: id, through: at },
        };
        Self::insert_records(&tx, info.id, &[forked]).await?;
        tx.commit().await.map_err(backend)?;
        Ok(info)
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The row lock keeps appends out until the rewind commits.
        let source = Self::info_with(&tx, id, Lock::Write).await?;
        check_rewind(&source, expected_version, to)?;
        let actual = source.version;
        let mut archive =
            new_info(source.start.clone(), Some(Origin::Archive { from: id, at: actual }))?;
        archive.version = actual;
        archive.updated_at = source.updated_at;
        Self::insert_session(&tx, &archive, &[]).await?;
        let copy = tx
            .prepare_cached(
                "INSERT INTO records (session_id, seq, at, entry) \
                 SELECT $1, seq, at, entry FROM records WHERE session_id = $2 AND seq <= $3",
            )
            .await
            .map_err(backend)?;
        tx.execute(&copy, &[&uuid(archive.id), &uuid(id), &version(actual)])
            .await
            .map_err(backend)?;
        let now = now();
        let rewind =
            Record { seq: actual + 1, at: now, entry: Entry::Rewind { to, archive: archive.id } };
        Self::insert_records(&tx, id, std::slice::from_ref(&rewind)).await?;
        tx.execute(
            "UPDATE sessions SET version = $2, updated_at = $3 WHERE id = $1",
            &[&uuid(id), &version(actual + 1), &now],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        let info = SessionInfo { version: actual + 1, updated_at: now, ..source };
        Ok(Rewound { info, archive })
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The row first: an append waiting for it then finds it gone and writes nothing. The
        // records after, in a statement of their own, which sees every record of an append
        // that committed before the row was taken (records hold no foreign key; see
        // migrations/postgres/0002).
        let row = tx.prepare_cached("DELETE FROM sessions WHERE id = $1").await.map_err(backend)?;
        if tx.execute(&row, &[&uuid(id)]).await.map_err(backend)? == 0 {
            return Err(StoreError::NotFound(id));
        }
        let records = tx
            .prepare_cached("DELETE FROM records WHERE session_id = $1")
            .await
            .map_err(backend)?;
        tx.execute(&records, &[&uuid(id)]).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        check_numbering(&session)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        Self::insert_session(&tx, &session.info, &session.records).await?;
        tx.commit().await.map_err(backend)?;
        Ok(session.info)
    }
}
