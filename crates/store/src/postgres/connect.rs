//! Connecting: [`PostgresOptions`], the pool of connections (settings every connection gets,
//! TLS, the bounded waits), and checking that the database's schema is the one this code
//! needs, migrating it when allowed. Errors in making a connection name the URL, its password
//! replaced.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};

use super::migrate::{Migrated, POSTGRES_SCHEMA_VERSION, newer};
use super::tls::{SslMode, Tls, TlsFailure};
use super::{PostgresStore, backend, url};
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
    /// TLS: `None` takes the URL's `sslmode`, or `prefer` when it names none. Set, it wins over
    /// the URL's.
    pub ssl_mode: Option<SslMode>,
    /// The CA certificates (a PEM file, such as Amazon RDS's `global-bundle.pem`) that
    /// `verify-ca` and `verify-full` trust, and that make `require` check the chain. `None`
    /// takes the URL's `sslrootcert`, or the platform's CA store when it names none. Set, it
    /// wins over the URL's.
    pub ssl_root_cert: Option<PathBuf>,
}

impl PostgresOptions {
    /// These options with TLS mode `mode` (over the URL's `sslmode`).
    pub fn with_ssl_mode(mut self, mode: SslMode) -> PostgresOptions {
        self.ssl_mode = Some(mode);
        self
    }

    /// These options trusting the CA certificates in the PEM file at `path` (over the URL's
    /// `sslrootcert`).
    pub fn with_ssl_root_cert(mut self, path: impl Into<PathBuf>) -> PostgresOptions {
        self.ssl_root_cert = Some(path.into());
        self
    }

    /// These options with verbatim's tables in `schema`.
    pub fn with_schema(mut self, schema: impl Into<String>) -> PostgresOptions {
        self.schema = Some(schema.into());
        self
    }

    /// These options with `size` connections in the pool.
    pub fn with_pool_size(mut self, size: usize) -> PostgresOptions {
        self.pool_size = size;
        self
    }
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            schema: None,
            pool_size: 16,
            migrate: true,
            connect_timeout: Duration::from_secs(10),
            ssl_mode: None,
            ssl_root_cert: None,
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/database`, or the key=value form) with
    /// the default options, applying pending migrations. Besides what tokio-postgres reads,
    /// the URL may say `sslmode` (disable, prefer, require, verify-ca, verify-full) and
    /// `sslrootcert` (a PEM file of CA certificates) as libpq spells them.
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

    /// The pool: no connection is made yet (the root certificate file is read).
    fn pool(url: &str, options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let shown: Arc<str> = url::shown(url).into();
        let (url, own) = url::take_own_settings(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // The parser's message names the offending part, never the password's value.
            StoreError::Invalid(format!("the PostgreSQL URL {shown} is not valid: {e}"))
        })?;
        let mode = match (options.ssl_mode, &own.ssl_mode) {
            (Some(mode), _) => mode,
            (None, Some(given)) => given.parse()?,
            (None, None) => SslMode::Prefer,
        };
        let root_cert = options.ssl_root_cert.clone().or(own.ssl_root_cert.map(PathBuf::from));
        let tls = Tls::new(mode, root_cert.as_deref())?;
        config.ssl_mode(mode.for_tokio_postgres());
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
            tls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(backend)?;
        Ok(PostgresStore { pool, shown_url: shown, ssl_mode: mode })
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| self.not_connected(e))
    }

    /// A failure to get a connection, saying what happened and naming the URL (its password
    /// replaced) when a new connection could not be made.
    fn not_connected(&self, e: PoolError) -> StoreError {
        let target = &self.shown_url;
        let error = match &e {
            PoolError::Backend(error) => error,
            PoolError::Timeout(deadpool_postgres::TimeoutType::Create) => {
                let detail = format!(
                    "postgres: cannot connect to {target}: no connection within the connect timeout"
                );
                return StoreError::backend_with(detail, e);
            }
            _ => return backend(e),
        };
        let detail = match tls_cause(error) {
            TlsCause::Refused => format!(
                "postgres: cannot connect to {target}: the server does not accept TLS; \
                 sslmode={} needs it",
                self.ssl_mode
            ),
            TlsCause::Failure(failure) => {
                format!("postgres: cannot connect to {target}: {failure}")
            }
            TlsCause::None => format!("postgres: cannot connect to {target}: {}", causes(error)),
        };
        StoreError::backend_with(detail, e)
    }
}

/// What a connection error says of TLS.
enum TlsCause<'a> {
    /// The server answered TLS's request with no.
    Refused,
    /// The handshake failed: why.
    Failure(&'a TlsFailure),
    /// Nothing.
    None,
}

fn tls_cause(error: &tokio_postgres::Error) -> TlsCause<'_> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(failure) = cause.downcast_ref::<TlsFailure>() {
            return TlsCause::Failure(failure);
        }
        // tokio-postgres's words when the server answers `N` to the TLS request under a mode
        // that needs TLS (`connect_tls.rs`); the TLS tests would catch a change of them.
        if cause.to_string() == "server does not support TLS" {
            return TlsCause::Refused;
        }
        source = cause.source();
    }
    TlsCause::None
}

/// An error and its causes, one after the other (`error connecting to server: Connection
/// refused`), each once.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
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

#[cfg(test)]
impl PostgresStore {
    /// Whether a pooled connection is encrypted, as the server sees it (`pg_stat_ssl`).
    pub(crate) async fn connection_encrypted(&self) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .map_err(backend)?;
        Ok(row.get(0))
    }
}
