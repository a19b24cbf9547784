//! Command-line parsing and the subcommands. Output goes to stdout; problems with the input
//! itself go to stderr with exit status 2. The log lines `RUST_LOG` asks for go to stderr.

#![allow(clippy::print_stderr)]

/// Writes a line to standard output. A closed pipe (`verbatim validate x | head`) is not an
/// error of the command: the line is dropped and the exit status still tells the result.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod chat;
mod check;
mod demo;
mod emulator;
mod explain;
#[cfg(any(feature = "postgres", feature = "dynamodb"))]
mod migrate;
mod render;
mod salvage;
mod serve;
mod sessions;
mod shell;
mod transcript;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use verbatim_model::Api;
use verbatim_store::{SessionStore, SledStore};

/// A chat-session engine for Amazon Bedrock that keeps every byte of a conversation.
#[derive(Debug, Parser)]
#[command(name = "verbatim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a raw request body as it would be POSTed to Bedrock. Exit status: 0 no errors
    /// (warnings allowed), 1 errors, 2 unusable input.
    Validate(CheckArgs),
    /// Repair a raw request body and print {"request", "fixes", "diagnostics"}. Exit status: 0
    /// when the repaired request is valid, 1 otherwise, 2 unusable input.
    Repair(CheckArgs),
    /// Map a Bedrock or Anthropic error message to the rule behind it, its cause and what
    /// verbatim does about it. Exit status 1 when no rule matches.
    Explain(explain::ExplainArgs),
    /// Say where two consecutive request bodies of a conversation stop sharing their cached
    /// prefix, why, and which cache points of the later one read the cache or write it again.
    /// Exit status: 0 when the later request continues the earlier one's prefix, 1 when the
    /// cache misses somewhere, 2 unusable input.
    ExplainCache(check::ExplainCacheArgs),
    /// Run a local Bedrock Runtime that checks what it receives (SigV4 with the test
    /// credentials, or the API key), for offline tests and demos. Prints its URL, then serves
    /// until stopped.
    Emulator(emulator::EmulatorArgs),
    /// Run the main job on the embedded default: an agent with two tools and thinking runs a
    /// tool loop against the built-in emulator into a sled store, stops after the first tool
    /// result is stored (as a crash would), and a fresh engine resumes and finishes it.
    Demo(demo::DemoArgs),
    /// Chat interactively, streaming the replies (thinking shown dimmed). Talks to Bedrock
    /// when an API key or AWS credentials are configured, otherwise to the built-in emulator.
    /// Exit status: 0 when every turn went through, 1 when one failed (a refused API key or a
    /// poisoned session stops the chat at once), 2 unusable arguments.
    Chat(chat::ChatArgs),
    /// List, show, export, import, fork, rewind and remove stored sessions.
    Sessions(sessions::SessionsArgs),
    /// Serve a Bedrock Runtime proxy that forwards any SDK's calls and records them byte for
    /// byte (`--mode guard` refuses broken requests before they cost a model call).
    Serve(serve::ServeArgs),
    /// Open a damaged sled store (one other commands refuse as damaged) with what can still be
    /// read. The damaged files are kept in a `damaged-<time>` folder of the store.
    Salvage(salvage::SalvageArgs),
    /// Bring a PostgreSQL store's schema up to date, or create a DynamoDB store's table (what
    /// opening it with `--store` also does). Safe to run from several instances at once.
    #[cfg(any(feature = "postgres", feature = "dynamodb"))]
    Migrate(migrate::MigrateArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g.
    /// `verbatim completions bash > ~/.local/share/bash-completion/completions/verbatim`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

/// Where sessions are stored, for every command that reads or writes them.
#[derive(Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// The directory of the embedded (sled) store.
    #[arg(long, env = "VERBATIM_DATA", default_value = "verbatim-data")]
    pub(crate) data: PathBuf,
    /// A shared store to use instead of the data directory: PostgreSQL (`postgres://...`) or
    /// DynamoDB (`dynamodb://TABLE?region=REGION`).
    #[arg(long = "store", env = "VERBATIM_STORE", hide_env_values = true)]
    pub(crate) store_url: Option<String>,
    /// With --store: the PostgreSQL schema holding verbatim's tables (created if missing); the
    /// default is the first schema of the server's search path.
    #[arg(long, env = "VERBATIM_SCHEMA", value_name = "SCHEMA")]
    pub(crate) schema: Option<String>,
}

impl std::fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A database URL may hold a password: only whether one was given is shown.
        f.debug_struct("StoreArgs")
            .field("data", &self.data)
            .field("store_url", &self.store_url.as_ref().map(|_| "[redacted]"))
            .field("schema", &self.schema)
            .finish()
    }
}

impl StoreArgs {
    /// Opens the store the arguments name: DynamoDB or PostgreSQL when a URL is given
    /// (creating the table or migrating the schema if needed), otherwise the sled directory.
    /// The error never repeats the URL (it may hold a password).
    pub(crate) async fn open(&self) -> Result<Arc<dyn SessionStore>, String> {
        if let Some(url) = &self.store_url {
            if url.starts_with("dynamodb://") {
                return open_dynamodb(url).await;
            }
            return open_postgres(url, self.schema.as_deref()).await;
        }
        let store = SledStore::open(&self.data)
            .map_err(|e| format!("cannot open the store at {}: {e}", self.data.display()))?;
        Ok(Arc::new(store))
    }

    /// Opens the store the arguments name when it exists, for commands that only read it
    /// or change sessions already in it: a sled directory that holds no store is an error
    /// that says where it looked, and nothing is created there. (A PostgreSQL URL is opened
    /// as [`StoreArgs::open`] does.)
    pub(crate) async fn open_existing(&self) -> Result<Arc<dyn SessionStore>, String> {
        if self.store_url.is_none() && !SledStore::exists(&self.data) {
            let what = if self.data.exists() {
                "the directory holds no store"
            } else {
                "no such directory"
            };
            return Err(format!(
                "no store at {} (sled): {what}; name the store's directory with --data DIR or VERBATIM_DATA (nothing was created)",
                self.data.display()
            ));
        }
        self.open().await
    }

    /// The option that names this store again in a command line printed as a hint, with a
    /// leading space (` --data DIR`, ` --store URL`), shell-quoted: run as printed, the
    /// command finds the same store. A URL's password never appears: it is replaced by a
    /// placeholder the text names, or, when it cannot be told apart, the URL is not printed.
    pub(crate) fn option(&self) -> String {
        let Some(url) = &self.store_url else {
            return format!(" --data {}", shell::quote(&self.data.to_string_lossy()));
        };
        let schema = match &self.schema {
            Some(schema) => format!(" --schema {}", shell::quote(schema)),
            None => String::new(),
        };
        match shell::store_url_without_password(url) {
            Some(printed) if printed == *url => format!(" --store {}{schema}", shell::quote(url)),
            Some(printed) => format!(
                " --store {}{schema} (with your password in place of {})",
                shell::quote(&printed),
                shell::PASSWORD
            ),
            None => format!("{schema}, with the same --store (its password is not printed)"),
        }
    }

    /// Where sessions go, for messages: the directory, "PostgreSQL" or "DynamoDB".
    pub(crate) fn describe(&self) -> String {
        match &self.store_url {
            Some(url) if url.starts_with("dynamodb://") => "in DynamoDB".into(),
            Some(_) => "in PostgreSQL".into(),
            None => format!("under {} (sled)", self.data.display()),
        }
    }
}

/// The store's options for `url`: with the standard AWS credential chain (environment,
/// profiles, SSO, container and instance roles) when the URL asks for RDS IAM authentication
/// (`aws_iam=true`).
#[cfg(feature = "postgres")]
pub(crate) async fn postgres_options(url: &str) -> verbatim_store::PostgresOptions {
    let mut options = verbatim_store::PostgresOptions::default();
    if verbatim_store::PostgresStore::url_wants_aws_iam(url) {
        let loaded = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        options.aws_credentials = loaded.credentials_provider();
    }
    options
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, schema: Option<&str>) -> Result<Arc<dyn SessionStore>, String> {
    let options = verbatim_store::PostgresOptions {
        schema: schema.map(str::to_owned),
        ..postgres_options(url).await
    };
    let store = verbatim_store::PostgresStore::connect_with(url, options)
        .await
        .map_err(|e| format!("cannot open the PostgreSQL store: {e}"))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str, _schema: Option<&str>) -> Result<Arc<dyn SessionStore>, String> {
    Err("--store: this build has no PostgreSQL store (feature `postgres`); use --data DIR".into())
}

#[cfg(feature = "dynamodb")]
async fn open_dynamodb(url: &str) -> Result<Arc<dyn SessionStore>, String> {
    let store = verbatim_store::DynamoStore::connect(url)
        .await
        .map_err(|e| format!("cannot open the DynamoDB store: {e}"))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "dynamodb"))]
async fn open_dynamodb(_url: &str) -> Result<Arc<dyn SessionStore>, String> {
    Err("--store: this build has no DynamoDB store (feature `dynamodb`); use --data DIR".into())
}

/// Arguments shared by `validate` and `repair`.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The API the body is for.
    #[arg(long, value_enum, default_value_t = ApiArg::Converse)]
    api: ApiArg,
    /// The model id, inference-profile id or ARN (unknown or absent ids get the
    /// conservative capability row).
    #[arg(long, value_parser = model_id_arg)]
    model: Option<String>,
    /// Print JSON instead of text (`repair` always prints JSON).
    #[arg(long)]
    json: bool,
    /// With `--api messages`: the `anthropic-version` header sent with the body (judged
    /// against the model's row; `2026-10-21` only for Opus 4.7 and later).
    #[arg(long, value_name = "VERSION")]
    anthropic_version: Option<String>,
    /// With `--api messages`: an `anthropic-beta` header sent with the body (repeat it, or
    /// give the flags comma-joined).
    #[arg(long = "beta", value_name = "FLAGS")]
    betas: Vec<String>,
    /// The body to read, or `-` for standard input.
    file: String,
}

/// A `--model` value: 1 to 2048 characters, no control character
/// ([`verbatim_model::check_model_id`]).
pub(crate) fn model_id_arg(text: &str) -> Result<String, String> {
    verbatim_model::check_model_id(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// An API key or other secret given as an argument: kept in a type that never shows it.
pub(crate) fn secret_arg(text: &str) -> Result<verbatim_transport::Secret, String> {
    if text.is_empty() {
        return Err("the key is empty".into());
    }
    Ok(verbatim_transport::Secret::new(text))
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), for a one-line field
/// printed on a terminal: a stored model id or tag from an older version, or an import, may
/// hold them.
pub(crate) fn printable_line(text: &str) -> std::borrow::Cow<'_, str> {
    printable(text, |_| true)
}

/// `text` with its control characters other than line breaks and tabs escaped, for text
/// shown over several lines (a transcript): a terminal escape never reaches the terminal.
pub(crate) fn printable_text(text: &str) -> std::borrow::Cow<'_, str> {
    printable(text, |c| c != '\n' && c != '\t')
}

fn printable(text: &str, escaped: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && escaped(c);
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ApiArg {
    /// Converse / ConverseStream (Bedrock JSON).
    Converse,
    /// InvokeModel / InvokeModelWithResponseStream (Anthropic Messages JSON).
    Invoke,
    /// The Anthropic Messages API at /anthropic/v1/messages (model in the body, version and
    /// betas as headers, server-sent events).
    Messages,
}

impl From<ApiArg> for Api {
    fn from(api: ApiArg) -> Api {
        match api {
            ApiArg::Converse => Api::Converse,
            ApiArg::Invoke => Api::InvokeModel,
            ApiArg::Messages => Api::Messages,
        }
    }
}

/// Parses the command line and runs the subcommand.
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    log_to_stderr();
    match cli.command {
        Command::Validate(args) => check::validate(&args),
        Command::Repair(args) => check::repair(&args),
        Command::Explain(args) => explain::explain(&args),
        Command::ExplainCache(args) => check::explain_cache(&args),
        Command::Emulator(args) => emulator::emulator(&args),
        Command::Demo(args) => demo::demo(&args),
        Command::Chat(args) => chat::chat(&args),
        Command::Sessions(args) => sessions::sessions(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Salvage(args) => salvage::salvage(&args),
        #[cfg(any(feature = "postgres", feature = "dynamodb"))]
        Command::Migrate(args) => migrate::migrate(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Written whole to a buffer first: a reader that stops early (`| head`) closes the
            // pipe, which the generator would treat as a bug.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "verbatim", &mut script);
            match std::io::stdout().write_all(&script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("verbatim completions: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes the log lines `RUST_LOG` asks for (`RUST_LOG=debug`,
/// `RUST_LOG=verbatim_transport=trace`, ...) to stderr, those of the dependencies that use
/// the `log` crate among them. Unset or empty, nothing is logged: the commands say what
/// matters themselves. No log line holds a secret, at any level: the transport signs with
/// no subscriber listening (aws-sigv4 traces the canonical request, session token included).
fn log_to_stderr() {
    if std::env::var_os("RUST_LOG").is_none_or(|value| value.is_empty()) {
        return;
    }
    match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => {
            let logger =
                tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
            if let Err(error) = logger.try_init() {
                eprintln!("verbatim: RUST_LOG ignored: {error}");
            }
        }
        Err(error) => eprintln!("verbatim: RUST_LOG ignored: {error}"),
    }
}
