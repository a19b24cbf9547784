//! `verbatim sessions`: list, show, export, import, fork, rewind and remove stored sessions.
//!
//! Output meant for scripts is JSON on one line (`--json`, and `export` always); the ids that
//! `import`, `fork`, `rewind` and `rm` print are alone on their lines. Exit status: 0 done, 1 the
//! store failed or refused (its message is printed), 2 unusable input (a bad id, a body that
//! does not decode: the message names the JSON path).
//!
//! `import` reads a Converse request body, a bare messages array, an Anthropic Messages body or
//! a verbatim export document (one, or several as JSON lines). A body's system prompt, tools and
//! thinking become the new session's start configuration; the request settings a session has
//! no field for (inference parameters, tool choice, `top_k`, beta flags, native model fields,
//! keys of one dialect only) are kept in canonical form in the session's metadata under
//! `import.settings`, and `export` writes them back, so a body exported in the dialect it was
//! imported from comes back whole. Messages are decoded by the protocol crate and exported by
//! its encoders: never rebuilt, never re-encoded.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::ValueEnum;
use serde_json::{Value, json};
use verbatim_model::{
    ContentBlock, Dialect, JsonMap, Message, RedactedForm, Request, SessionId, SystemBlock,
    SystemPrompt, ThinkingConfig, ThinkingMode, Tool, ToolResultBlock, ToolResultContent,
    ToolResultStatus, Usage,
};
use verbatim_protocol::{JsonPath, anthropic, converse};
use verbatim_store::export::{export_session, import_session};
use verbatim_store::{
    Append, ConfigChange, Entry, ListQuery, NewSession, Origin, Record, Session, SessionInfo,
    SessionStore, StoreError, ToolCallState,
};

use super::StoreArgs;

const FAILED: u8 = 1;
const UNUSABLE: u8 = 2;

/// The metadata key under which `import` records where a session came from.
const IMPORT_KEY: &str = "import";

/// Arguments of `verbatim sessions`.
#[derive(Debug, clap::Args)]
// The store options may be given before or after the subcommand.
#[command(mut_arg("data", |a| a.global(true)), mut_arg("store_url", |a| a.global(true)))]
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
    /// Store a request body, a messages array or export documents as new sessions; prints
    /// each new session id on a line of its own.
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
    /// The model id of the new session (else the body's `modelId` or `model`).
    #[arg(long, value_parser = super::model_id_arg)]
    model: Option<String>,
    /// A tag for the new session (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// The file to read, or `-` for standard input.
    file: String,
    /// Print a JSON array of the new sessions' infos instead of their ids.
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
    /// The session to delete.
    id: String,
    /// Print {"deleted": id} as JSON.
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

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Converse => "converse",
        Dialect::Anthropic => "anthropic",
    }
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
        SessionsCommand::List(list_args) => list(&*open(&args.store).await?, list_args).await,
        SessionsCommand::Show(show_args) => {
            let id = parse_id(&show_args.id)?;
            show(&*open(&args.store).await?, id, show_args.json).await
        }
        SessionsCommand::Export(export_args) => {
            let id = parse_id(&export_args.id)?;
            export(&*open(&args.store).await?, id, export_args).await
        }
        SessionsCommand::Import(import_args) => {
            // Everything is read and decoded before the store is opened: bad input stores
            // nothing (and creates no store).
            let sessions = read_imports(import_args)?;
            import(&*open(&args.store).await?, sessions, import_args.json).await
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
            open(&args.store).await?.delete(id).await?;
            if rm_args.json {
                say!("{}", json!({"deleted": id}));
            } else {
                say!("{id}");
            }
            Ok(())
        }
    }
}

async fn open(store: &StoreArgs) -> Result<Arc<dyn SessionStore>, Failure> {
    store.open().await.map_err(failed)
}

fn parse_id(text: &str) -> Result<SessionId, Failure> {
    SessionId::parse(text).map_err(|e| unusable(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// list

async fn list(store: &dyn SessionStore, args: &ListArgs) -> Outcome {
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
        say!("no sessions");
        return Ok(());
    }
    // Stored text is printed with its control characters escaped: an id stored by an older
    // version or imported may hold a newline or a terminal escape.
    let models: Vec<_> = sessions.iter().map(|s| super::printable_line(&s.start.model)).collect();
    let model_width = models.iter().map(|m| m.chars().count()).max().unwrap_or(0).max(5);
    say!("{:<36}  {:<model_width$}  {:>7}  {:<20}  TAGS", "ID", "MODEL", "RECORDS", "UPDATED");
    for (info, model) in sessions.iter().zip(&models) {
        let tags =
            if info.start.tags.is_empty() { "-".to_owned() } else { info.start.tags.join(",") };
        let tags = super::printable_line(&tags);
        say!(
            "{:<36}  {:<model_width$}  {:>7}  {:<20}  {tags}",
            info.id.to_string(),
            model,
            info.version,
            info.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    Ok(())
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

/// The session as text: a header, each live record (messages in full, other entries on one
/// line), then the token usage.
/// A readable transcript: the session's settings, each live record, and the token usage.
pub(crate) fn transcript(session: &Session) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let info = &session.info;
    let config = session.config();
    line(format!("session {}", info.id));
    line(format!("model: {}", super::printable_line(&config.model)));
    line(format!(
        "records: {}, created {}, updated {}",
        info.version,
        info.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
        info.updated_at.format("%Y-%m-%dT%H:%M:%SZ")
    ));
    if !info.start.tags.is_empty() {
        line(format!("tags: {}", super::printable_line(&info.start.tags.join(", "))));
    }
    match info.origin {
        Some(Origin::Fork { from, at }) => line(format!("forked from {from} at record {at}")),
        Some(Origin::Archive { from, at }) => {
            line(format!("archive of {from} as it was at record {at}"))
        }
        Some(Origin::Import) => line("imported".into()),
        None => {}
    }
    if let Some(system) = &config.system {
        line(format!("system: {}", system_text(system)));
    }
    if let Some(tools) = &config.tools {
        line(format!("tools: {}", tool_names(tools)));
    }
    if let Some(thinking) = &config.thinking {
        line(format!("thinking: {}", thinking_setting(thinking)));
    }
    for record in session.live_records() {
        line(String::new());
        line(record_text(record));
    }
    let usage = session.usage();
    line(String::new());
    line(format!("usage: {}", super::render::usage_line(&usage)));
    out
}

fn system_text(system: &SystemPrompt) -> String {
    match system {
        SystemPrompt::Text(text) => text.clone(),
        SystemPrompt::Blocks(blocks) => blocks
            .iter()
            .map(|block| match block {
                SystemBlock::Text(text) => text.text.clone(),
                SystemBlock::GuardContent(raw) => {
                    format!("[guardContent] {}", Value::Object(raw.json.clone()))
                }
                SystemBlock::CachePoint(_) => "[cache point]".into(),
                SystemBlock::Unknown(unknown) => format!("[unknown block] {}", unknown.json),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn tool_names(tools: &[Tool]) -> String {
    let names: Vec<String> = tools
        .iter()
        .filter_map(|tool| match tool {
            Tool::Spec(spec) => Some(spec.name.clone()),
            Tool::System(system) => Some(format!("{} (system tool)", system.name)),
            Tool::CachePoint(_) => None,
            Tool::Unknown(unknown) => Some(format!("[unknown tool] {}", unknown.json)),
        })
        .collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

fn thinking_setting(thinking: &ThinkingConfig) -> String {
    match &thinking.mode {
        ThinkingMode::Disabled => "disabled".into(),
        ThinkingMode::Enabled { budget_tokens } => {
            format!("enabled, budget {budget_tokens} tokens")
        }
        ThinkingMode::Adaptive { effort: Some(effort) } => {
            format!("adaptive, effort {}", effort.as_str())
        }
        ThinkingMode::Adaptive { effort: None } => "adaptive".into(),
    }
}

fn record_text(record: &Record) -> String {
    let seq = record.seq;
    match &record.entry {
        Entry::Message(history) => {
            let mut head = format!("#{seq} {}", history.message.role.as_str());
            if let Some(provenance) = &history.provenance {
                head.push_str(&format!(
                    " ({} via {}",
                    provenance.model_id,
                    provenance.api.as_str()
                ));
                if let Some(reason) = &provenance.stop_reason {
                    head.push_str(&format!(", {}", reason.as_str()));
                }
                head.push(')');
            }
            let mut text = head;
            for block in &history.message.content {
                text.push('\n');
                text.push_str(&block_text(block));
            }
            text
        }
        Entry::Config(change) => {
            let what = match change {
                ConfigChange::Model(model) => format!("model set to {model}"),
                ConfigChange::System(Some(system)) => {
                    format!("system set to {}", system_text(system))
                }
                ConfigChange::System(None) => "system prompt removed".into(),
                ConfigChange::Tools(Some(tools)) => format!("tools set to {}", tool_names(tools)),
                ConfigChange::Tools(None) => "tools removed".into(),
                ConfigChange::Thinking(Some(thinking)) => {
                    format!("thinking set to {}", thinking_setting(thinking))
                }
                ConfigChange::Thinking(None) => "thinking removed".into(),
            };
            format!("#{seq} [config] {what}")
        }
        Entry::ToolCall(event) => {
            let state = match &event.state {
                ToolCallState::Requested => "requested".to_owned(),
                ToolCallState::Started => "started".to_owned(),
                ToolCallState::Completed { .. } => "completed".to_owned(),
                ToolCallState::Failed { message } => format!("failed: {message}"),
                ToolCallState::Unknown => "outcome unknown".to_owned(),
            };
            format!("#{seq} [tool call {} ({})] {state}", event.name, event.tool_use_id.as_str())
        }
        Entry::Repair { fixes } => format!("#{seq} [repair] {} fix(es) applied", fixes.len()),
        Entry::Forked { from, through } => {
            format!("#{seq} [forked] from {from} after its record {through}")
        }
        Entry::Rewind { to, archive } => {
            format!("#{seq} [rewind] to record {to}; archive {archive}")
        }
    }
}

fn block_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Thinking(thinking) => format!("thinking: {}", thinking.text),
        ContentBlock::RedactedThinking(redacted) => {
            format!("[redacted thinking, {} bytes]", redacted.data.len())
        }
        ContentBlock::ToolUse(tool_use) => {
            format!("tool call {} ({}): {}", tool_use.name, tool_use.id.as_str(), tool_use.input)
        }
        ContentBlock::ToolResult(result) => {
            let status = match result.status {
                Some(ToolResultStatus::Success) => "success",
                Some(ToolResultStatus::Error) => "error",
                None => "status not stated",
            };
            let mut text = format!("tool result for {} ({status})", result.tool_use_id.as_str());
            match &result.content {
                Some(ToolResultContent::Text(content)) => {
                    text.push_str(": ");
                    text.push_str(content);
                }
                Some(ToolResultContent::Blocks(blocks)) => {
                    let parts: Vec<String> = blocks.iter().map(result_block_text).collect();
                    text.push_str(": ");
                    text.push_str(&parts.join("\n"));
                }
                None => {}
            }
            text
        }
        ContentBlock::Image(image) => {
            format!(
                "[image{}]",
                image.format.as_deref().map(|f| format!(" {f}")).unwrap_or_default()
            )
        }
        ContentBlock::Document(document) => format!(
            "[document{}]",
            document.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
        ),
        ContentBlock::Video(media) => format!("[video {}]", media.format),
        ContentBlock::Audio(media) => format!("[audio {}]", media.format),
        ContentBlock::CachePoint(_) => "[cache point]".into(),
        ContentBlock::GuardContent(raw)
        | ContentBlock::CitationsContent(raw)
        | ContentBlock::SearchResult(raw)
        | ContentBlock::ToolAddition(raw)
        | ContentBlock::ToolRemoval(raw) => {
            format!("[{}] {}", block.kind_name(), Value::Object(raw.json.clone()))
        }
        ContentBlock::Unknown(unknown) => {
            format!("[unknown {} block] {}", dialect_name(unknown.dialect), unknown.json)
        }
    }
}

fn result_block_text(block: &ToolResultBlock) -> String {
    match block {
        ToolResultBlock::Text { text } => text.clone(),
        ToolResultBlock::Json { json } => json.to_string(),
        ToolResultBlock::Image(image) => {
            format!(
                "[image{}]",
                image.format.as_deref().map(|f| format!(" {f}")).unwrap_or_default()
            )
        }
        ToolResultBlock::Document(document) => format!(
            "[document{}]",
            document.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
        ),
        ToolResultBlock::Video(media) => format!("[video {}]", media.format),
        ToolResultBlock::SearchResult(raw) => {
            format!("[searchResult] {}", Value::Object(raw.json.clone()))
        }
        ToolResultBlock::Unknown(unknown) => {
            format!("[unknown {} block] {}", dialect_name(unknown.dialect), unknown.json)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// export

async fn export(store: &dyn SessionStore, id: SessionId, args: &ExportArgs) -> Outcome {
    let session = store.load(id).await?;
    let dialect = Dialect::from(args.format);
    let out = if args.full {
        export_session(&session, dialect).map_err(|e| failed(format!("session {id}: {e}")))?
    } else {
        request_body(&session, dialect)?
    };
    say!("{out}");
    Ok(())
}

/// The session as a request body of `dialect`: the stored messages encoded by the protocol
/// crate, the configuration in force, and the settings kept from an import.
fn request_body(session: &Session, dialect: Dialect) -> Result<Value, Failure> {
    let id = session.info.id;
    let mut request = imported_settings(session)?.unwrap_or_default();
    let history = session.messages();
    let native = match dialect {
        Dialect::Converse => RedactedForm::ConverseBlob,
        Dialect::Anthropic => RedactedForm::AnthropicData,
    };
    for (i, message) in history.iter().enumerate() {
        let foreign = message.message.content.iter().position(
            |block| matches!(block, ContentBlock::RedactedThinking(r) if r.form != native),
        );
        if let Some(block) = foreign {
            let other = match dialect {
                Dialect::Converse => "anthropic",
                Dialect::Anthropic => "converse",
            };
            let path = JsonPath::root().key("messages").index(i).key("content").index(block);
            return Err(failed(format!(
                "session {id}: redacted thinking at {path} was produced on the other API; export with --format {other} to keep its bytes"
            )));
        }
    }
    let config = session.config();
    request.messages = history.into_iter().map(|h| h.message).collect();
    request.system = config.system;
    request.tools = config.tools;
    request.thinking = config.thinking;
    let encoded = match dialect {
        Dialect::Converse => converse::encode_request(&request),
        Dialect::Anthropic => {
            // A session need not know `max_tokens` (only an imported body's does); the body
            // then goes without it rather than with an invented value.
            let unknown = request.inference.as_ref().and_then(|i| i.max_tokens).is_none();
            if unknown {
                request.inference.get_or_insert_with(Default::default).max_tokens = Some(1);
            }
            anthropic::encode_request(&request).map(|mut body| {
                if let (true, Value::Object(map)) = (unknown, &mut body) {
                    map.shift_remove("max_tokens");
                }
                body
            })
        }
    };
    encoded.map_err(|e| {
        failed(format!("session {id} cannot be written as {}: {e}", dialect_name(dialect)))
    })
}

/// The request settings an import kept in the session's metadata (`import.settings`).
fn imported_settings(session: &Session) -> Result<Option<Request>, Failure> {
    let Some(settings) =
        session.info.start.metadata.get(IMPORT_KEY).and_then(|i| i.get("settings"))
    else {
        return Ok(None);
    };
    let mut settings = settings.clone();
    if let Value::Object(map) = &mut settings {
        map.insert("messages".into(), Value::Array(Vec::new()));
    }
    serde_json::from_value(settings).map(Some).map_err(|e| {
        failed(format!("session {}: metadata.{IMPORT_KEY}.settings: {e}", session.info.id))
    })
}

// ---------------------------------------------------------------------------------------------
// import

/// One decoded input document, ready to store.
enum Import {
    /// A request body or messages array: a new session, then its messages in one append.
    Body { new: NewSession, messages: Vec<Message> },
    /// An export document: stored whole, keeping its id.
    Export(Session),
}

/// The largest input `import` reads (the bytes of one file or of standard input).
const MAX_IMPORT_BYTES: u64 = 256 << 20;

fn read_input(file: &str) -> Result<Vec<u8>, Failure> {
    let (name, source): (&str, Box<dyn Read>) = if file == "-" {
        ("standard input", Box::new(std::io::stdin()))
    } else {
        let opened =
            std::fs::File::open(file).map_err(|e| unusable(format!("reading {file}: {e}")))?;
        (file, Box::new(opened))
    };
    let mut body = Vec::new();
    source
        .take(MAX_IMPORT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| unusable(format!("reading {name}: {e}")))?;
    if body.len() as u64 > MAX_IMPORT_BYTES {
        return Err(unusable(format!(
            "{name} is larger than {} MiB: import it in parts (one session per file, or JSON lines split across files)",
            MAX_IMPORT_BYTES >> 20
        )));
    }
    Ok(body)
}

/// Reads every document of the input (one JSON value, or several as JSON lines) and decodes
/// each; the first problem stops the import before anything is stored.
fn read_imports(args: &ImportArgs) -> Result<Vec<Import>, Failure> {
    let name = if args.file == "-" { "standard input" } else { args.file.as_str() };
    let bytes = read_input(&args.file)?;
    let mut documents: Vec<(usize, Value)> = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let Some(next) = stream.next() else { break };
        let value = next.map_err(|e| unusable(format!("{name}: not valid JSON: {e}")))?;
        let skipped = bytes[start..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let line = 1 + bytes[..start + skipped].iter().filter(|&&b| b == b'\n').count();
        documents.push((line, value));
    }
    if documents.is_empty() {
        return Err(unusable(format!("{name}: no JSON document to import")));
    }
    let several = documents.len() > 1;
    documents
        .into_iter()
        .map(|(line, value)| {
            let location = if several { format!("{name}: line {line}") } else { name.to_owned() };
            decode_document(value, args).map_err(|e| unusable(format!("{location}: {e}")))
        })
        .collect()
}

fn decode_document(value: Value, args: &ImportArgs) -> Result<Import, String> {
    if value.get("verbatim_export").is_some() {
        return decode_export(value, args);
    }
    let dialect = match args.format {
        Some(format) => Dialect::from(format),
        None => detect(&value),
    };
    let (body_model, request) = match value {
        Value::Array(_) => {
            let messages = match dialect {
                Dialect::Converse => converse::decode_messages_value(value),
                Dialect::Anthropic => anthropic::decode_messages_value(value),
            }
            .map_err(|e| e.to_string())?;
            (None, Request { messages, ..Request::default() })
        }
        Value::Object(mut map) => {
            if !map.contains_key("messages") {
                return Err("$: expected a request body (an object with `messages`), a messages array, or a verbatim export document (`verbatim_export`)".into());
            }
            let model = take_model(&mut map)?;
            let request = match dialect {
                Dialect::Converse => converse::decode_request_value(Value::Object(map)),
                Dialect::Anthropic => anthropic::decode_request_value(Value::Object(map)),
            }
            .map_err(|e| e.to_string())?;
            (model, request)
        }
        _ => {
            return Err(
                "$: expected a request body, a messages array, or a verbatim export document"
                    .into(),
            );
        }
    };
    let Some(model) = args.model.clone().or(body_model) else {
        return Err(
            "no model: the body names none in `modelId` or `model`; pass --model MODEL_ID".into()
        );
    };
    let mut request = request;
    let messages = std::mem::take(&mut request.messages);
    let mut new = NewSession::new(model);
    new.system = request.system.take();
    new.tools = request.tools.take();
    new.thinking = request.thinking.take();
    new.tags = args.tags.clone();
    let mut import = JsonMap::new();
    import.insert("format".into(), dialect_name(dialect).into());
    if request != Request::default() {
        let mut settings = json!(request);
        if let Value::Object(map) = &mut settings {
            map.shift_remove("messages");
        }
        import.insert("settings".into(), settings);
    }
    new.metadata.insert(IMPORT_KEY.into(), Value::Object(import));
    Ok(Import::Body { new, messages })
}

fn decode_export(value: Value, args: &ImportArgs) -> Result<Import, String> {
    if args.model.is_some() {
        return Err("--model does not apply to a verbatim export document (it names its model in `session.model`)".into());
    }
    if !args.tags.is_empty() {
        return Err("--tag does not apply to a verbatim export document (it keeps its own tags in `session.tags`)".into());
    }
    if let Some(format) = args.format {
        let wanted = dialect_name(format.into());
        let found = value.get("dialect").and_then(Value::as_str).unwrap_or("");
        if found != wanted {
            return Err(format!(
                "dialect: the export document is in {found:?}, not {wanted} as --format says"
            ));
        }
    }
    // The caller puts the file (and line) before the error; the document's paths follow.
    let mut session =
        import_session(value, "").map_err(|e| e.to_string().trim_start().to_owned())?;
    if session.info.origin.is_none() {
        session.info.origin = Some(Origin::Import);
    }
    Ok(Import::Export(session))
}

/// Takes the model a body names (`modelId`, as boto3's `converse` keywords do, or `model`)
/// out of it: neither dialect's request body carries one.
fn take_model(map: &mut JsonMap) -> Result<Option<String>, String> {
    let mut model: Option<String> = None;
    for key in ["modelId", "model"] {
        let Some(value) = map.shift_remove(key) else { continue };
        let Value::String(name) = value else {
            return Err(format!("{key}: expected a string (a model id)"));
        };
        if let Some(first) = &model {
            if *first != name {
                return Err(format!("{key}: names {name:?} but `modelId` names {first:?}"));
            }
        }
        model = Some(name);
    }
    Ok(model)
}

/// The dialect of a body or messages array with no `--format`: Anthropic when it has an
/// `anthropic_version` or a top-level `max_tokens`, or a message whose content is a string or
/// holds typed blocks (`{"type": ...}`); Converse otherwise.
fn detect(value: &Value) -> Dialect {
    let anthropic_message = |message: &Value| match message.get("content") {
        Some(Value::String(_)) => true,
        Some(Value::Array(blocks)) => {
            blocks.iter().any(|b| b.get("type").is_some_and(Value::is_string))
        }
        _ => false,
    };
    let messages = match value {
        Value::Array(messages) => Some(messages),
        Value::Object(map) => {
            if map.contains_key("anthropic_version") || map.contains_key("max_tokens") {
                return Dialect::Anthropic;
            }
            map.get("messages").and_then(Value::as_array)
        }
        _ => None,
    };
    if messages.is_some_and(|m| m.iter().any(anthropic_message)) {
        Dialect::Anthropic
    } else {
        Dialect::Converse
    }
}

async fn import(store: &dyn SessionStore, imports: Vec<Import>, json: bool) -> Outcome {
    let mut stored: Vec<SessionId> = Vec::with_capacity(imports.len());
    let mut infos = Vec::new();
    for item in imports {
        let done = async {
            let id = store_one(store, item).await?;
            stored.push(id);
            // Read back for `--json` before anything is printed: a failure here takes back
            // the whole import like any other.
            if json {
                infos.push(store.info(id).await?);
            }
            Ok::<(), Failure>(())
        }
        .await;
        if let Err(error) = done {
            // All or nothing: take back what this import already stored.
            for id in stored {
                let _ = store.delete(id).await;
            }
            return Err(error);
        }
    }
    if json {
        say!("{}", json!(infos));
    } else {
        for id in stored {
            say!("{id}");
        }
    }
    Ok(())
}

async fn store_one(store: &dyn SessionStore, item: Import) -> Result<SessionId, Failure> {
    match item {
        Import::Body { new, messages } => {
            let info = store.create(new).await?;
            if messages.is_empty() {
                return Ok(info.id);
            }
            let entries = messages.into_iter().map(|m| Entry::Message(m.into())).collect();
            if let Err(error) = store.append(info.id, Append::new(info.version, entries)).await {
                let _ = store.delete(info.id).await;
                return Err(error.into());
            }
            Ok(info.id)
        }
        Import::Export(session) => {
            let id = session.info.id;
            store.put(session).await.map(|info| info.id).map_err(|error| match error {
                StoreError::AlreadyExists(_) => failed(format!(
                    "session {id} already exists in this store (an export document keeps its session id)"
                )),
                other => other.into(),
            })
        }
    }
}
