//! Connecting: [`PostgresOptions`], the pool of connections (settings every connection gets,
//! TLS, the bounded waits), and checking that the database's schema is the one this code
//! needs, migrating it when allowed. Errors in making a connection name the URL, its password
//! replaced.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};

use super::iam::{Iam, region_of_host};
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
    /// Amazon RDS IAM authentication: each new connection's password is a token signed with
    /// [`aws_credentials`](Self::aws_credentials) (see [`rds_auth_token`](crate::rds_auth_token)).
    /// Also turned on by `aws_iam=true` in the URL.
    pub aws_iam: bool,
    /// The credentials IAM tokens are signed with (the CLI gives the standard AWS chain).
    pub aws_credentials: Option<SharedCredentialsProvider>,
    /// The region IAM tokens are signed for: `None` takes the URL's `aws_region`, or the
    /// region in an RDS endpoint's name (`NAME.ID.REGION.rds.amazonaws.com`).
    pub aws_region: Option<String>,
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

    /// These options with RDS IAM authentication, tokens signed with `credentials`.
    pub fn with_aws_iam(
        mut self,
        credentials: impl ProvideCredentials + 'static,
    ) -> PostgresOptions {
        self.aws_iam = true;
        self.aws_credentials = Some(SharedCredentialsProvider::new(credentials));
        self
    }

    /// These options signing IAM tokens for `region` (over the URL's `aws_region` and the
    /// endpoint's name).
    pub fn with_aws_region(mut self, region: impl Into<String>) -> PostgresOptions {
        self.aws_region = Some(region.into());
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
            aws_iam: false,
            aws_credentials: None,
            aws_region: None,
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

    /// Whether `url` asks for RDS IAM authentication (`aws_iam=true`): a caller that holds
    /// AWS credentials then gives them in [`PostgresOptions::aws_credentials`].
    pub fn url_wants_aws_iam(url: &str) -> bool {
        url::take_own_settings(url).1.aws_iam.as_deref() == Some("true")
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
    pub(crate) fn pool(url: &str, options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let shown: Arc<str> = url::shown(url).into();
        let (url, own) = url::take_own_settings(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // The parser's message names the offending part, never the password's value.
            StoreError::Invalid(format!("the PostgreSQL URL {shown} is not valid: {e}"))
        })?;
        let root_cert =
            options.ssl_root_cert.clone().or(own.ssl_root_cert.clone().map(PathBuf::from));
        // libpq's `sslrootcert=system`: the platform's CAs, and verify-full unless said.
        let system = root_cert.as_deref().is_some_and(|path| path.as_os_str() == "system");
        let mode = match (options.ssl_mode, &own.ssl_mode) {
            (Some(mode), _) => mode,
            (None, Some(given)) => given.parse()?,
            (None, None) if system => SslMode::VerifyFull,
            (None, None) => SslMode::Prefer,
        };
        if system && mode != SslMode::VerifyFull {
            return Err(StoreError::Invalid(format!(
                "sslrootcert=system needs sslmode=verify-full (as libpq), not {mode}"
            )));
        }
        let iam = iam(&config, options, &own, &shown)?;
        let tls = Tls::new(mode, if system { None } else { root_cert.as_deref() })?;
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
        let manager = Manager::from_connect(
            config,
            Connections { tls, iam: iam.clone() },
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(backend)?;
        Ok(PostgresStore { pool, shown_url: shown, ssl_mode: mode, iam })
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if let Some(iam) = &self.iam {
            // A live token for whatever connection the pool opens now.
            iam.refresh().await?;
        }
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

/// The IAM authentication `options` and the URL ask for, if any.
fn iam(
    config: &tokio_postgres::Config,
    options: &PostgresOptions,
    own: &url::OwnSettings,
    shown: &str,
) -> Result<Option<Arc<Iam>>, StoreError> {
    let from_url = match own.aws_iam.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(StoreError::Invalid(format!(
                "aws_iam `{other}` in {shown}: use true or false"
            )));
        }
    };
    if !(options.aws_iam || from_url) {
        return Ok(None);
    }
    let needs = |what: &str| {
        StoreError::Invalid(format!("RDS IAM authentication for {shown} needs {what}"))
    };
    let credentials = options.aws_credentials.clone().ok_or_else(|| {
        needs("AWS credentials (PostgresOptions::with_aws_iam, or the CLI's AWS chain)")
    })?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => return Err(needs("a TCP host name (the token is signed for it)")),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().ok_or_else(|| needs("a user name in the URL"))?.to_owned();
    let region = options
        .aws_region
        .clone()
        .or_else(|| own.aws_region.clone())
        .or_else(|| region_of_host(&host).map(str::to_owned))
        .ok_or_else(|| {
            needs("a region: aws_region=REGION in the URL (the host is no RDS endpoint)")
        })?;
    Ok(Some(Arc::new(Iam::new(credentials, host, port, user, region))))
}

/// A connection and the task that drives it, as deadpool wants them.
type Connecting<'a> = Pin<
    Box<
        dyn Future<
                Output = Result<
                    (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                    tokio_postgres::Error,
                >,
            > + Send
            + 'a,
    >,
>;

/// Makes the pool's connections: TLS as configured, and the current IAM token as the password
/// when IAM authentication is on.
struct Connections {
    tls: Tls,
    iam: Option<Arc<Iam>>,
}

impl deadpool_postgres::Connect for Connections {
    fn connect(&self, config: &tokio_postgres::Config) -> Connecting<'_> {
        let mut config = config.clone();
        if let Some(token) = self.iam.as_ref().and_then(|iam| iam.token()) {
            config.password(token.as_bytes());
        }
        let tls = self.tls.clone();
        Box::pin(async move {
            let (client, connection) = match config.connect(tls.clone()).await {
                // `prefer`, as libpq: a server that accepts TLS but whose handshake fails
                // (no cipher or version in common) is tried again in plain text.
                Err(e)
                    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Prefer
                        && matches!(tls_cause(&e), TlsCause::Failure(TlsFailure::Handshake(_))) =>
                {
                    config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                    config.connect(tls).await?
                }
                connected => connected?,
            };
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(target: "verbatim_store::postgres", "connection closed: {e}");
                }
            });
            Ok((client, task))
        })
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

    /// The IAM token new connections present, if one was made.
    pub(crate) fn iam_token(&self) -> Option<Arc<str>> {
        self.iam.as_ref().and_then(|iam| iam.token())
    }
}
