//! `verbatim sessions`: list, show, export, import, fork, rewind and remove stored sessions.
//!
//! Output meant for scripts is JSON on one line (`--json`, and `export` always); the ids that
//! `import`, `fork`, `rewind` and `rm` print are alone on their lines. Exit status: 0 done, 1 the
//! store failed or refused (its message is printed), 2 unusable input (a bad id, a body that
//! does not decode: the message names the JSON path).
//!
//! `import` reads a Converse request body, a bare messages array, an Anthropic Messages body or
//! a verbatim export document (one, or several as JSON lines), as the store crate's
//! `import::Importer` does for any library user (its docs say what is read, the memory it
//! takes, and how a re-run finds what an earlier one stored); `export` writes a body back with
//! `export::export_body`. Here: the arguments, and what is printed. Import reads the input
//! twice: the first pass decodes everything before the store is opened (bad input stores
//! nothing; standard input is copied to an unnamed temporary file to be read again); the
//! second stores one document at a time and prints each session's id as soon as it is whole,
//! one per document, in order: a re-run of a killed import prints the same ids, stores only
//! what is missing, and says on standard error which documents were already stored. A store
//! failure stops the import where it is: what was stored stays (its ids were printed), and a
//! re-run completes it. With
//! `--json`, standard error gets one JSON line per document as it is stored
//! (`{"document", "line", "id", "outcome"}`), and standard output the array of the sessions'
//! infos once all are stored.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::ValueEnum;
use serde_json::{Value, json};
use verbatim_model::{Dialect, SessionId, Usage};
use verbatim_store::export::{ExportError, RequestDefaults, export_request, export_session};
use verbatim_store::import::{ImportError, ImportOptions, Importer, Outcome as Imported};
use verbatim_store::{Entry, ListQuery, Origin, Session, SessionInfo, SessionStore, StoreError};

use super::StoreArgs;
pub(crate) use super::transcript::transcript;

const FAILED: u8 = 1;
const UNUSABLE: u8 = 2;

/// Arguments of `verbatim sessions`.
#[derive(Debug, clap::Args)]
// The store options may be given before or after the subcommand.
#[command(
    mut_arg("data", |a| a.global(true)),
    mut_arg("store_url", |a| a.global(true)),
    mut_arg("schema", |a| a.global(true))
)]
pub(crate) struct SessionsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SessionsCommand {
    /// List sessions, newest update first: id, model, records, last update, tags.
    List(ListArgs),
    /// Print a session's transcript and token usage.
    Show(ShowArgs),
    /// Print a session as a request body of a dialect (its messages exactly as stored), or as
    /// verbatim's own export document with `--full`.
    Export(ExportArgs),
    /// Store a request body, a messages array or export documents as sessions; prints each
    /// session's id on a line of its own as it is stored (run again after a failure, it
    /// stores only what is missing and prints the same ids).
    Import(ImportArgs),
    /// Copy a session's records up to one into a new session; prints the new id.
    Fork(ForkArgs),
    /// Set aside a session's history after a record (kept whole in an archive session);
    /// prints the session's id.
    Rewind(RewindArgs),
    /// Delete a session and its records; prints its id.
    #[command(visible_alias = "delete")]
    Rm(RmArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only sessions with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// At most this many sessions (all of them when absent).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Print a JSON array of session infos.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The session id.
    id: String,
    /// Print {"info", "config", "messages", "usage"} as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The session id.
    id: String,
    /// The dialect of the request body (or of the messages in a `--full` document).
    #[arg(long, value_enum, default_value_t = Format::Converse)]
    format: Format,
    /// Print verbatim's export document (provenance, usage, every record, metadata), which
    /// `import` reads back.
    #[arg(long)]
    full: bool,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The dialect of request bodies and message arrays (detected when absent: an
    /// `anthropic_version` or top-level `max_tokens`, string content or typed content blocks
    /// mean Anthropic, anything else Converse). Export documents name their own.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The model id of the new session (else the body's `modelId` or `model`; a Converse body
    /// or messages array may name none: the session then has no model until one is set, e.g.
    /// by `verbatim chat --session ID --model MODEL_ID`).
    #[arg(long, value_parser = super::model_id_arg)]
    model: Option<String>,
    /// A tag for the new session (repeatable; added to an export document's own tags).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Give export documents a new session id instead of the one they keep (to import an
    /// export into the store it came from); running the same import again finds it again.
    #[arg(long)]
    new_id: bool,
    /// The file to read, or `-` for standard input.
    file: String,
    /// Print a JSON array of the sessions' infos (one per document) once all are stored,
    /// instead of their ids; progress goes to standard error as JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ForkArgs {
    /// The session to fork.
    id: String,
    /// The last record of the source the fork keeps (0 for none).
    #[arg(long)]
    at: u64,
    /// Print the new session's info as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RewindArgs {
    /// The session to rewind.
    id: String,
    /// The last record kept in the history.
    #[arg(long)]
    to: u64,
    /// Print {"session", "archive"} infos as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// The session to delete (with the archives its rewinds kept, unless --keep-archives).
    id: String,
    /// Keep the archive sessions the session's rewinds made.
    #[arg(long)]
    keep_archives: bool,
    /// Print {"deleted": id, "archives": [ids]} as JSON.
    #[arg(long)]
    json: bool,
}

/// A wire dialect on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Bedrock Converse JSON.
    Converse,
    /// Anthropic Messages JSON (InvokeModel).
    Anthropic,
}

impl From<Format> for Dialect {
    fn from(format: Format) -> Dialect {
        match format {
            Format::Converse => Dialect::Converse,
            Format::Anthropic => Dialect::Anthropic,
        }
    }
}

pub(crate) fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Converse => "converse",
        Dialect::Anthropic => "anthropic",
    }
}

/// A model id as listed: `-` for a session that has none yet.
fn model_or_none(model: &str) -> &str {
    if model.is_empty() { "-" } else { model }
}

/// Why a subcommand stopped: the exit status and what to print.
struct Failure {
    status: u8,
    message: String,
}

fn unusable(message: impl Into<String>) -> Failure {
    Failure { status: UNUSABLE, message: message.into() }
}

fn failed(message: impl Into<String>) -> Failure {
    Failure { status: FAILED, message: message.into() }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        failed(error.to_string())
    }
}

type Outcome = Result<(), Failure>;

pub(crate) fn sessions(args: &SessionsArgs) -> ExitCode {
    let name = match &args.command {
        SessionsCommand::List(_) => "list",
        SessionsCommand::Show(_) => "show",
        SessionsCommand::Export(_) => "export",
        SessionsCommand::Import(_) => "import",
        SessionsCommand::Fork(_) => "fork",
        SessionsCommand::Rewind(_) => "rewind",
        SessionsCommand::Rm(_) => "rm",
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("verbatim sessions {name}: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { status, message }) => {
            eprintln!("verbatim sessions {name}: {message}");
            ExitCode::from(status)
        }
    }
}

async fn run(args: &SessionsArgs) -> Outcome {
    match &args.command {
        SessionsCommand::List(list_args) => {
            list(&*open(&args.store).await?, list_args, &args.store.describe()).await
        }
        SessionsCommand::Show(show_args) => {
            let id = parse_id(&show_args.id)?;
            show(&*open(&args.store).await?, id, show_args.json).await
        }
        SessionsCommand::Export(export_args) => {
            let id = parse_id(&export_args.id)?;
            export(&*open(&args.store).await?, id, export_args).await
        }
        SessionsCommand::Import(import_args) => {
            let name = if import_args.file == "-" { "standard input" } else { &import_args.file };
            let options = ImportOptions {
                format: import_args.format.map(Dialect::from),
                model: import_args.model.clone(),
                tags: import_args.tags.clone(),
                new_id: import_args.new_id,
            };
            let importer = Importer::new(name, options);
            // Everything is read and decoded before the store is opened: bad input stores
            // nothing (and creates no store).
            let input = checked_input(&importer, &import_args.file)?;
            import(&*create_or_open(&args.store).await?, &importer, input, import_args.json).await
        }
        SessionsCommand::Fork(fork_args) => {
            let id = parse_id(&fork_args.id)?;
            let store = open(&args.store).await?;
            let info = store.fork(id, fork_args.at).await?;
            if fork_args.json {
                say!("{}", json!(info));
            } else {
                say!("{}", info.id);
            }
            Ok(())
        }
        SessionsCommand::Rewind(rewind_args) => {
            let id = parse_id(&rewind_args.id)?;
            let store = open(&args.store).await?;
            let current = store.info(id).await?;
            let rewound = store.rewind(id, current.version, rewind_args.to).await?;
            if rewind_args.json {
                let out = json!({"session": rewound.info, "archive": rewound.archive});
                say!("{out}");
            } else {
                say!("{}", rewound.info.id);
                eprintln!(
                    "verbatim sessions rewind: the history after record {} is kept in archive session {}",
                    rewind_args.to, rewound.archive.id
                );
            }
            Ok(())
        }
        SessionsCommand::Rm(rm_args) => {
            let id = parse_id(&rm_args.id)?;
            let store = open(&args.store).await?;
            let archives =
                if rm_args.keep_archives { Vec::new() } else { archives(&*store, id).await? };
            store.delete(id).await?;
            // The archives go after their session: a failure before this point leaves both.
            let mut deleted = Vec::new();
            for archive in archives {
                match store.delete(archive).await {
                    Ok(()) => deleted.push(archive),
                    // Already deleted by hand: nothing left to do.
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if rm_args.json {
                say!("{}", json!({"deleted": id, "archives": deleted}));
            } else {
                say!("{id}");
                for archive in deleted {
                    say!("{archive} (the archive of a rewind of {id})");
                }
            }
            Ok(())
        }
    }
}

/// The archive sessions the rewinds of session `id` kept, in the order they were made.
async fn archives(store: &dyn SessionStore, id: SessionId) -> Result<Vec<SessionId>, Failure> {
    let session = store.load(id).await?;
    let mut archives = Vec::new();
    for record in &session.records {
        if let Entry::Rewind { archive, .. } = &record.entry
            && !archives.contains(archive)
        {
            archives.push(*archive);
        }
    }
    Ok(archives)
}

/// Opens the store for a command that reads it or changes sessions already in it: one that
/// does not exist is an error, never created.
async fn open(store: &StoreArgs) -> Result<Arc<dyn SessionStore>, Failure> {
    store.open_existing().await.map_err(failed)
}

/// Opens the store `import` writes to, creating it when it does not exist.
async fn create_or_open(store: &StoreArgs) -> Result<Arc<dyn SessionStore>, Failure> {
    store.open().await.map_err(failed)
}

fn parse_id(text: &str) -> Result<SessionId, Failure> {
    SessionId::parse(text).map_err(|e| unusable(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// list

/// Lists the sessions of `store`, which is `place` (for the message when there are none).
async fn list(store: &dyn SessionStore, args: &ListArgs, place: &str) -> Outcome {
    const PAGE: usize = 100;
    let wanted = args.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut query = ListQuery { tag: args.tag.clone(), ..ListQuery::default() };
    let mut sessions: Vec<SessionInfo> = Vec::new();
    loop {
        let left = wanted.map(|w| w - sessions.len());
        query.limit = left.map_or(PAGE, |l| l.min(PAGE));
        let page = store.list(&query).await?;
        sessions.extend(page.sessions);
        let done = wanted.is_some_and(|w| sessions.len() >= w);
        match page.next {
            Some(cursor) if !done => query.after = Some(cursor),
            _ => break,
        }
    }
    if args.json {
        say!("{}", json!(sessions));
        return Ok(());
    }
    if sessions.is_empty() {
        let tagged = args.tag.as_deref().map(|t| format!(" tagged {}", super::printable_line(t)));
        say!("no sessions{} {place}", tagged.unwrap_or_default());
        return Ok(());
    }
    // Stored text is printed with its control characters escaped: an id stored by an older
    // version or imported may hold a newline or a terminal escape.
    let models: Vec<_> =
        sessions.iter().map(|s| super::printable_line(model_or_none(&s.start.model))).collect();
    let model_width = models.iter().map(|m| m.chars().count()).max().unwrap_or(0).max(5);
    let tags: Vec<String> = sessions
        .iter()
        .map(|info| {
            let tags =
                if info.start.tags.is_empty() { "-".into() } else { info.start.tags.join(",") };
            super::printable_line(&tags).into_owned()
        })
        .collect();
    let tags_width = tags.iter().map(|t| t.chars().count()).max().unwrap_or(0).max(4);
    say!(
        "{:<36}  {:<model_width$}  {:>7}  {:<20}  {:<tags_width$}  ORIGIN",
        "ID",
        "MODEL",
        "RECORDS",
        "UPDATED",
        "TAGS"
    );
    for ((info, model), tags) in sessions.iter().zip(&models).zip(&tags) {
        say!(
            "{:<36}  {:<model_width$}  {:>7}  {:<20}  {tags:<tags_width$}  {}",
            info.id.to_string(),
            model,
            info.version,
            info.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            origin(info.origin.as_ref()),
        );
    }
    Ok(())
}

/// Where a session came from, in a word and the source's id.
fn origin(origin: Option<&Origin>) -> String {
    match origin {
        None => "-".into(),
        Some(Origin::Fork { from, at }) => format!("fork of {from} at record {at}"),
        Some(Origin::Archive { from, at }) => format!("archive of {from} (rewind at record {at})"),
        Some(Origin::Import) => "import".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// show

async fn show(store: &dyn SessionStore, id: SessionId, json: bool) -> Outcome {
    let session = store.load(id).await?;
    if json {
        say!("{}", show_json(&session));
    } else {
        say!("{}", super::printable_text(transcript(&session).trim_end()));
    }
    Ok(())
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens.unwrap_or(0),
        "output_tokens": usage.output_tokens.unwrap_or(0),
        "cache_read_input_tokens": usage.cache_read_input_tokens.unwrap_or(0),
        "cache_write_input_tokens": usage.cache_write_input_tokens.unwrap_or(0),
        "total_tokens": usage.total_tokens.unwrap_or(0),
    })
}

fn show_json(session: &Session) -> Value {
    let config = session.config();
    let messages: Vec<Value> = session
        .live_records()
        .into_iter()
        .filter_map(|record| match &record.entry {
            Entry::Message(message) => {
                let mut value = json!(message);
                if let Value::Object(map) = &mut value {
                    map.shift_insert(0, "seq".into(), record.seq.into());
                }
                Some(value)
            }
            _ => None,
        })
        .collect();
    json!({
        "info": session.info,
        "config": {
            "model": config.model,
            "system": config.system,
            "tools": config.tools,
            "thinking": config.thinking,
        },
        "messages": messages,
        "usage": usage_json(&session.usage()),
    })
}

// ---------------------------------------------------------------------------------------------
// export

async fn export(store: &dyn SessionStore, id: SessionId, args: &ExportArgs) -> Outcome {
    let session = store.load(id).await?;
    let dialect = Dialect::from(args.format);
    // A body is a request Bedrock would accept: the max_tokens the engine sends by default
    // when the session recorded none, and the tools its history calls declared.
    let defaults =
        RequestDefaults { max_tokens: Some(verbatim_engine::Defaults::default().max_tokens) };
    let out = if args.full {
        export_session(&session, dialect)
    } else {
        export_request(&session, dialect, defaults)
    };
    let out = out.map_err(|error| {
        failed(match &error {
            ExportError::Body { .. } => format!("session {id} {error}"),
            ExportError::BodyRedactedForm { produced_on, .. } => {
                format!("session {id}: {error} (--format {})", dialect_name(*produced_on))
            }
            _ => format!("session {id}: {error}"),
        })
    })?;
    say!("{out}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// import

/// Runs the first pass over the input, then hands it back to be read again from its start: a
/// regular file as it is, anything else (standard input, a pipe) as the unnamed temporary file
/// it was copied to.
fn checked_input(importer: &Importer, file: &str) -> Result<File, Failure> {
    let refused = |error: ImportError| unusable(error.to_string());
    if file == "-" {
        return spool(importer, std::io::stdin().lock());
    }
    let opened = File::open(file).map_err(|e| unusable(format!("reading {file}: {e}")))?;
    let metadata = opened.metadata().map_err(|e| unusable(format!("reading {file}: {e}")))?;
    if !metadata.is_file() {
        return spool(importer, opened);
    }
    importer.check_size(metadata.len()).map_err(refused)?;
    importer.check(&opened).map_err(refused)?;
    (&opened).seek(SeekFrom::Start(0)).map_err(|e| unusable(format!("reading {file}: {e}")))?;
    Ok(opened)
}

fn spool(importer: &Importer, input: impl Read) -> Result<File, Failure> {
    let copy_failed = |e: std::io::Error| failed(format!("copying the input aside: {e}"));
    let mut copy = tempfile::tempfile().map_err(copy_failed)?;
    importer.check_copying(input, &copy).map_err(|error| unusable(error.to_string()))?;
    copy.seek(SeekFrom::Start(0)).map_err(copy_failed)?;
    Ok(copy)
}

async fn import(store: &dyn SessionStore, importer: &Importer, input: File, json: bool) -> Outcome {
    let mut ids = Vec::new();
    let done = importer
        .store(store, input, |imported| {
            let id = imported.id;
            if json {
                let outcome = match imported.outcome {
                    Imported::Stored => "stored",
                    Imported::AlreadyStored => "already_stored",
                    Imported::Completed { .. } => "completed",
                    Imported::Replaced => "replaced",
                };
                let line = json!({
                    "document": imported.document,
                    "line": imported.line,
                    "id": id,
                    "outcome": outcome,
                });
                eprintln!("{line}");
                ids.push(id);
                return;
            }
            say!("{id}");
            let note = match imported.outcome {
                Imported::Stored => return,
                Imported::AlreadyStored => format!("already stored as {id} by an earlier import"),
                Imported::Completed { from } => format!(
                    "session {id} was stored in part by an earlier import ({from} messages): completed"
                ),
                Imported::Replaced => format!(
                    "session {id} was stored in part by an earlier import: stored again whole"
                ),
            };
            eprintln!("verbatim sessions import: {}: {note}", imported.location);
        })
        .await;
    done.map_err(|error| {
        let message = error.to_string();
        if error.is_input() { unusable(message) } else { failed(message) }
    })?;
    if json {
        // Read back, one session at a time, once all are stored: standard output is the
        // whole array or, if the store fails here, the start of it and exit status 1.
        let mut out = std::io::stdout();
        let _ = out.write_all(b"[");
        for (i, id) in ids.into_iter().enumerate() {
            let info = store.info(id).await?;
            let separator = if i == 0 { "" } else { "," };
            let _ = write!(out, "{separator}{}", json!(info));
        }
        let _ = out.write_all(b"]\n");
    }
    Ok(())
}
