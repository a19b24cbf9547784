//! Connecting: [`PostgresOptions`], the pool of connections (settings every connection gets,
//! the bounded waits), and checking that the database's schema is the one this code needs,
//! migrating it when allowed.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::migrate::{Migrated, POSTGRES_SCHEMA_VERSION, newer};
use super::{PostgresStore, backend};
use crate::StoreError;

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

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(backend)
    }
}

/// Schema names go into SQL text (`search_path`, `CREATE SCHEMA`): only plain identifiers.
pub(super) fn check_schema_name(schema: &str) -> Result<(), StoreError> {
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
