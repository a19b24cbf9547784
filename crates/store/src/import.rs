//! Import: request bodies, messages arrays and verbatim export documents stored as sessions,
//! exactly as `verbatim sessions import` does it.
//!
//! # What is read
//!
//! One JSON document, or several separated by whitespace (JSON lines), each one of:
//! - a Converse request body or an Anthropic Messages body (an object with `messages`): a new
//!   session whose start configuration is the body's system prompt, tools and thinking; the
//!   request settings a session has no field for (inference parameters, tool choice, `top_k`,
//!   beta flags, native model fields, keys of one dialect only) are kept in canonical form in
//!   the metadata under `import.settings` ([`imported_settings`]), so that
//!   [`export_body`](crate::export::export_body) in the same dialect gives the body back whole;
//! - a bare messages array: a new session with those messages;
//! - a verbatim export document ([`crate::export`]): the session stored whole, keeping its id,
//!   records, times and metadata.
//!
//! The dialect of a body or array is [`ImportOptions::format`], else detected: Anthropic when
//! the body has an `anthropic_version` or a top-level `max_tokens`, or a message's content is
//! a string or holds typed blocks (`{"type": ...}`); Converse otherwise. Messages are decoded
//! by the protocol crate: never rebuilt, never re-encoded.
//!
//! The model is [`ImportOptions::model`], else the body's `modelId` or `model`. A Converse
//! body or a messages array that names none makes a session with no model (an empty model id)
//! until one is set (`verbatim chat --session ID --model MODEL_ID`, or a
//! [`ConfigChange::Model`](crate::ConfigChange) record). An Anthropic Messages body still needs
//! one: it is written for InvokeModel on an Anthropic model and carries that API's own
//! settings (`anthropic_version`, `anthropic_beta`, `max_tokens`), which must not later go to
//! a model of another family by default.
//!
//! # Two passes, one document at a time
//!
//! [`Importer::check`] reads the whole input and decodes every document, message and record,
//! storing nothing: bad input anywhere stores nothing (the CLI opens the store only after it).
//! [`Importer::store`] then reads the input again and stores each document as it comes.
//! Standard input, which cannot be read twice, is copied aside during the check
//! ([`Importer::check_copying`]). The input must not change between the passes.
//!
//! Neither pass holds more than one document: the reader (module `scan`) finds where a document
//! ends without parsing it; serde then checks its syntax without building anything; its small
//! parts (a body's settings, an export's `session`) are parsed, and its messages or records
//! are parsed and decoded one at a time. A body's messages are stored in chunks of at most
//! [`CHUNK_MESSAGES`] messages or [`CHUNK_BYTES`] bytes of their JSON: the first chunk with
//! the session (one [`SessionStore::put`]), the others as appends, each one write (one durable
//! sync on sled), not one per message. So memory is bounded by:
//! - for bodies and messages arrays: the largest document's bytes, plus one chunk decoded (a
//!   decoded message takes roughly 25 times its JSON for short texts, much less for long
//!   ones), plus what the store takes for one write;
//! - for export documents: the largest exported session decoded (they are stored whole, since
//!   only a put keeps their records' times), roughly 25 times its JSON for short messages;
//! - plus what the store keeps across writes (sled's page cache), whatever the input's size.
//!
//! The chunks are small because of what sled takes for one write: it frees the versions of
//! the tree nodes a batch replaces only once the whole batch is applied, and a session's
//! records have neighbouring keys, so every record of a batch copies the same leaf. One body
//! of 700,000 short messages (35 MB) peaks at 1.2 GB with 4,096 messages a write, 620 MB with
//! 2,048, 280 MB with 512 (then mostly sled's own), at the same speed (`benches/import.rs`).
//!
//! [`MAX_IMPORT_BYTES`] still bounds the whole input.
//!
//! # Re-runs: nothing stored twice
//!
//! A killed import is run again as it was, and stores only what the first run had not: each
//! document's session is found again under an import key, the SHA-256 of the document's bytes
//! (with, for a body, its dialect and the model and tags options), kept in the session's
//! metadata as `import.key` ([`import_key`]; [`export_session`](crate::export::export_session)
//! leaves it out). The store is asked by id, which every backend answers without a scan and
//! without a schema change:
//! - a body's session id is derived from the key (its first 16 bytes as a version 4 UUID:
//!   ids are the caller's when a session is stored with [`SessionStore::put`], which is also
//!   the one write that stores a session with its first records);
//! - an export document keeps its own id.
//!
//! Then, for the session under that id:
//! - absent: stored ([`Outcome::Stored`]);
//! - holding the key and at least the document's records: left alone and reported with its id
//!   ([`Outcome::AlreadyStored`]), also when records were appended to it since;
//! - holding the key but fewer records (a run killed between the chunks of a long body, or a
//!   session created without its records): a body's session is completed from where it stops
//!   ([`Outcome::Completed`], each chunk appended at the version it expects, so two runs at
//!   once conflict rather than duplicate), an export's is replaced whole (delete, then put:
//!   [`Outcome::Replaced`]);
//! - without the key (another session under an export's id): refused, [`ImportError::Exists`].
//!
//! The idempotency keys of [`Append`] are not what finds a document again: they are scoped to
//! a session whose id must be known first, and a put has none; the expected version already
//! makes a repeated chunk fail rather than duplicate. The same document twice in one input is
//! one session, reported twice. A session deleted after its import is imported again. A
//! partial import left by a version of verbatim without keys cannot be recognised.
//!
//! [`Importer::store`] reports each document when its session is whole, before reading the
//! next one, so a caller can print each id as it is stored.

mod decode;
mod scan;

use std::io::{Read, Write};

use serde::de::IgnoredAny;
use serde_json::Value;
use sha2::{Digest, Sha256};
use verbatim_model::{Dialect, JsonMap, Request, SessionId, Settings};
use verbatim_protocol::DecodeError;

use self::decode::{Body, Export, Plan, Problem, plan};
use self::scan::{DocumentReader, RawDocument, ReadError};
use crate::export::{ExportError, dialect_name};
use crate::store::now;
use crate::{
    Append, Entry, NewSession, Origin, Record, Session, SessionInfo, SessionStore, StoreError,
};

/// The largest input an import reads (the bytes of one file or of standard input).
pub const MAX_IMPORT_BYTES: u64 = 256 << 20;

/// The metadata key under which an import records where a session came from: `format`,
/// `settings` (a body's) and `key`.
pub const IMPORT_KEY: &str = "import";

/// The most messages of a body stored in one write (see the module docs for why so few).
pub const CHUNK_MESSAGES: usize = 512;

/// The most bytes of message JSON stored in one write (a message larger than this is one
/// write of its own).
pub const CHUNK_BYTES: usize = 1 << 20;

/// How to read bodies and messages arrays (export documents name their own dialect and model,
/// and refuse a model; tags are added to theirs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The dialect of bodies and messages arrays (detected when `None`).
    pub format: Option<Dialect>,
    /// The model of the new sessions (else the body's `modelId` or `model`).
    pub model: Option<String>,
    /// Tags for the new sessions (added to an export document's own).
    pub tags: Vec<String>,
    /// Export documents get a new session id instead of the one they keep, so an export can be
    /// imported into the store it came from. The id is derived from the document and these
    /// options, so a re-run finds the session again. (Bodies always get a new id.)
    pub new_id: bool,
}

/// What can go wrong importing. [`ImportError::is_input`] tells bad input from a store that
/// failed or refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input could not be read.
    #[error("reading {name}: {error}")]
    Read {
        /// The input's name.
        name: String,
        /// What the system said.
        error: std::io::Error,
    },
    /// The input is larger than [`MAX_IMPORT_BYTES`].
    #[error(
        "{name} is larger than {} MiB: import it in parts (one session per file, or JSON lines split across files)",
        limit >> 20
    )]
    TooLarge {
        /// The input's name.
        name: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The input holds no document.
    #[error("{name}: no JSON document to import")]
    Empty {
        /// The input's name.
        name: String,
    },
    /// The input is not JSON (or nested deeper than 128 levels).
    #[error("{name}: not valid JSON: {message} at line {line} column {column}")]
    Syntax {
        /// The input's name.
        name: String,
        /// The parser's description.
        message: String,
        /// The 1-based line in the input.
        line: usize,
        /// The 1-based column (in bytes) in the input.
        column: usize,
    },
    /// A document of the wrong shape, or an option that does not apply to it.
    #[error("{location}: {detail}")]
    Invalid {
        /// The input (and line, when it holds several documents).
        location: String,
        /// What is wrong, from the JSON path where there is one.
        detail: String,
    },
    /// A body or message that does not decode.
    #[error("{location}: {error}")]
    Decode {
        /// The input (and line, when it holds several documents).
        location: String,
        /// Why, and where in the document.
        error: DecodeError,
    },
    /// An export document that does not read back.
    #[error("{location}: {}", error.to_string().trim_start())]
    Export {
        /// The input (and line, when it holds several documents).
        location: String,
        /// Why, and where in the document.
        error: Box<ExportError>,
    },
    /// Another session, not imported from this document, has the export document's id.
    #[error(
        "{location}: session {id} already exists in this store (an export document keeps its session id) and was not imported from this document"
    )]
    Exists {
        /// The input (and line, when it holds several documents).
        location: String,
        /// The session.
        id: SessionId,
    },
    /// The store failed or refused.
    #[error("{location}: {error}")]
    Store {
        /// The input (and line, when it holds several documents).
        location: String,
        /// What the store said.
        error: StoreError,
    },
}

impl ImportError {
    /// Whether the input is at fault (unreadable, not JSON, not a document import reads), as
    /// opposed to the store.
    pub fn is_input(&self) -> bool {
        !matches!(self, ImportError::Exists { .. } | ImportError::Store { .. })
    }
}

/// What [`Importer::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The number of documents, each a session.
    pub documents: usize,
}

/// What became of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its session is new.
    Stored,
    /// An earlier import stored it whole: nothing was written.
    AlreadyStored,
    /// An earlier import stored it in part: its remaining messages were appended after the
    /// first `from`.
    Completed {
        /// The messages the session had.
        from: u64,
    },
    /// An earlier import stored an export document's session in part: it was stored again
    /// whole.
    Replaced,
}

/// One document imported, as [`Importer::store`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Its session.
    pub id: SessionId,
    /// What was done.
    pub outcome: Outcome,
    /// The document's place in the input (1 for the first).
    pub document: usize,
    /// The line it starts on.
    pub line: usize,
    /// The input, and the line when it holds several documents (as errors name it).
    pub location: String,
}

/// Reads an input and stores its documents: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Importer {
    name: String,
    options: ImportOptions,
    chunk_messages: usize,
    chunk_bytes: usize,
    limit: u64,
}

impl Importer {
    /// An importer of the input called `name` in errors (a file name, "standard input").
    pub fn new(name: impl Into<String>, options: ImportOptions) -> Importer {
        Importer {
            name: name.into(),
            options,
            chunk_messages: CHUNK_MESSAGES,
            chunk_bytes: CHUNK_BYTES,
            limit: MAX_IMPORT_BYTES,
        }
    }

    /// The same importer writing at most `messages` messages or `bytes` bytes of their JSON
    /// at once (instead of [`CHUNK_MESSAGES`] and [`CHUNK_BYTES`]).
    pub fn with_chunks(mut self, messages: usize, bytes: usize) -> Importer {
        self.chunk_messages = messages.max(1);
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// Refuses an input of `len` bytes before reading it, if larger than [`MAX_IMPORT_BYTES`].
    pub fn check_size(&self, len: u64) -> Result<(), ImportError> {
        if len > self.limit {
            return Err(ImportError::TooLarge { name: self.name.clone(), limit: self.limit });
        }
        Ok(())
    }

    /// The first pass: reads every document and decodes every message and record, storing
    /// nothing.
    pub fn check(&self, input: impl Read) -> Result<Checked, ImportError> {
        self.check_copying(input, std::io::sink())
    }

    /// [`Importer::check`], writing every byte read to `copy` (to read standard input again).
    pub fn check_copying(
        &self,
        input: impl Read,
        copy: impl Write,
    ) -> Result<Checked, ImportError> {
        let mut reader = DocumentReader::new(Tee { input, copy }, self.limit);
        let mut documents = 0;
        while let Some((doc, location)) = self.next(&mut reader, documents)? {
            documents += 1;
            match self.plan(&doc, &location)? {
                Plan::Body(body) => {
                    for (i, message) in body.messages().enumerate() {
                        body.decode(i, message).map_err(|e| decode_error(&location, e))?;
                    }
                }
                Plan::Export(export) => {
                    let mut count = 0;
                    for (i, bytes) in export.records().enumerate() {
                        let record =
                            export.decode(i, bytes).map_err(|e| export_error(&location, e))?;
                        count = check_seq(&export.info, &record, count, &location)?;
                    }
                    if export.info.version != count {
                        let detail = format!(
                            "session.version is {} but the document has {count} records",
                            export.info.version
                        );
                        return Err(ImportError::Invalid { location, detail });
                    }
                }
            }
        }
        if documents == 0 {
            return Err(ImportError::Empty { name: self.name.clone() });
        }
        Ok(Checked { documents })
    }

    /// The second pass: stores each document of `input` (checked before) and reports it to
    /// `progress` once its session is whole; returns the number of documents. The first
    /// failure stops the import; what was stored before it stays, and a re-run completes it.
    /// Reading and decoding run on the calling task.
    pub async fn store(
        &self,
        store: &dyn SessionStore,
        input: impl Read,
        mut progress: impl FnMut(&Imported),
    ) -> Result<usize, ImportError> {
        let mut reader = DocumentReader::new(input, self.limit);
        let mut documents = 0;
        while let Some((doc, location)) = self.next(&mut reader, documents)? {
            documents += 1;
            let (id, outcome) = match self.plan(&doc, &location)? {
                Plan::Body(mut body) => {
                    let (id, key) = body.key(&self.options);
                    self.store_body(store, body, id, &key, &location).await?
                }
                Plan::Export(mut export) => {
                    export.key(&self.options);
                    store_export(store, export, &location).await?
                }
            };
            progress(&Imported { id, outcome, document: documents, line: doc.line, location });
        }
        if documents == 0 {
            return Err(ImportError::Empty { name: self.name.clone() });
        }
        Ok(documents)
    }

    /// The next document and where it is, after `before` others; its syntax checked.
    fn next<R: Read>(
        &self,
        reader: &mut DocumentReader<R>,
        before: usize,
    ) -> Result<Option<(RawDocument, String)>, ImportError> {
        let read_error = |e| match e {
            ReadError::Io(error) => ImportError::Read { name: self.name.clone(), error },
            ReadError::TooLarge => {
                ImportError::TooLarge { name: self.name.clone(), limit: self.limit }
            }
        };
        let Some(doc) = reader.next_document().map_err(read_error)? else { return Ok(None) };
        if let Err(e) = serde_json::from_slice::<IgnoredAny>(&doc.bytes) {
            // The error named for what it is (a byte order mark, a lone surrogate), placed in
            // the document; then the document placed in the input.
            let (message, at_line, at_column) = match DecodeError::syntax(&doc.bytes, &e).kind {
                verbatim_protocol::DecodeErrorKind::Syntax { message, line, column } => {
                    (message, line, column)
                }
                _ => {
                    let mut message = e.to_string();
                    if let Some(at) = message.rfind(" at line ") {
                        message.truncate(at);
                    }
                    (message, e.line(), e.column())
                }
            };
            let line = doc.line + at_line.saturating_sub(1);
            let column =
                if at_line <= 1 { doc.column + at_column.saturating_sub(1) } else { at_column };
            return Err(ImportError::Syntax { name: self.name.clone(), message, line, column });
        }
        let several = before > 0 || reader.has_next().map_err(read_error)?;
        let location =
            if several { format!("{}: line {}", self.name, doc.line) } else { self.name.clone() };
        Ok(Some((doc, location)))
    }

    fn plan<'a>(&self, doc: &'a RawDocument, location: &str) -> Result<Plan<'a>, ImportError> {
        plan(&doc.bytes, &self.options).map_err(|problem| match problem {
            Problem::Detail(detail) => ImportError::Invalid { location: location.into(), detail },
            Problem::Decode(error) => decode_error(location, error),
            Problem::Export(error) => export_error(location, error),
        })
    }

    async fn store_body(
        &self,
        store: &dyn SessionStore,
        body: Body<'_>,
        id: SessionId,
        key: &str,
        location: &str,
    ) -> Result<(SessionId, Outcome), ImportError> {
        // The session's version once it exists: messages stored so far.
        let mut version = None;
        let mut outcome = Outcome::Stored;
        match store.info(id).await {
            Ok(existing) => {
                if import_key(&existing) != Some(key) {
                    return Err(ImportError::Exists { location: location.into(), id });
                }
                if existing.version >= body.messages().count() as u64 {
                    return Ok((id, Outcome::AlreadyStored));
                }
                version = Some(existing.version);
                outcome = Outcome::Completed { from: existing.version };
            }
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(store_error(location, error)),
        }
        let skip = version.unwrap_or(0) as usize;
        let mut entries = Vec::new();
        let mut bytes = 0;
        for (i, message) in body.messages().enumerate().skip(skip) {
            let decoded = body.decode(i, message).map_err(|e| decode_error(location, e))?;
            entries.push(Entry::Message(decoded.into()));
            bytes += message.len();
            if entries.len() >= self.chunk_messages || bytes >= self.chunk_bytes {
                let chunk = std::mem::take(&mut entries);
                version = Some(write(store, id, &body.new, version, chunk, location).await?);
                bytes = 0;
            }
        }
        if !entries.is_empty() || version.is_none() {
            write(store, id, &body.new, version, entries, location).await?;
        }
        Ok((id, outcome))
    }
}

/// Stores `entries` in the session `id`: with the session (a put) when it does not exist yet
/// (`version` is `None`), else appended at `version`. Returns the session's version after.
async fn write(
    store: &dyn SessionStore,
    id: SessionId,
    new: &NewSession,
    version: Option<u64>,
    entries: Vec<Entry>,
    location: &str,
) -> Result<u64, ImportError> {
    let Some(version) = version else {
        let now = now();
        let records: Vec<Record> = entries
            .into_iter()
            .zip(1..)
            .map(|(entry, seq)| Record { seq, at: now, entry })
            .collect();
        let version = records.len() as u64;
        let info = SessionInfo {
            id,
            start: new.clone(),
            created_at: now,
            updated_at: now,
            version,
            origin: Some(Origin::Import),
        };
        store.put(Session { info, records }).await.map_err(|e| store_error(location, e))?;
        return Ok(version);
    };
    let appended = store
        .append(id, Append::new(version, entries))
        .await
        .map_err(|e| store_error(location, e))?;
    Ok(appended.version)
}

async fn store_export(
    store: &dyn SessionStore,
    export: Export<'_>,
    location: &str,
) -> Result<(SessionId, Outcome), ImportError> {
    let id = export.info.id;
    let mut records = Vec::with_capacity(export.info.version.min(1 << 16) as usize);
    for (i, bytes) in export.records().enumerate() {
        records.push(export.decode(i, bytes).map_err(|e| export_error(location, e))?);
    }
    let session = Session { info: export.info, records };
    let outcome = match store.info(id).await {
        Err(StoreError::NotFound(_)) => Outcome::Stored,
        Err(error) => return Err(store_error(location, error)),
        Ok(existing) => {
            if import_key(&existing) != import_key(&session.info) {
                return Err(ImportError::Exists { location: location.into(), id });
            }
            if existing.version >= session.info.version {
                return Ok((id, Outcome::AlreadyStored));
            }
            store.delete(id).await.map_err(|e| store_error(location, e))?;
            Outcome::Replaced
        }
    };
    store.put(session).await.map_err(|error| match error {
        StoreError::AlreadyExists(id) => ImportError::Exists { location: location.into(), id },
        error => store_error(location, error),
    })?;
    Ok((id, outcome))
}

/// Checks that `record`, following `count` others, is numbered `count + 1`.
fn check_seq(
    info: &SessionInfo,
    record: &Record,
    count: u64,
    location: &str,
) -> Result<u64, ImportError> {
    if record.seq != count + 1 {
        let detail = format!(
            "records[{count}]: session {} has record {} numbered {}; records are numbered 1, 2, 3, ...",
            info.id,
            count + 1,
            record.seq
        );
        return Err(ImportError::Invalid { location: location.into(), detail });
    }
    Ok(count + 1)
}

fn decode_error(location: &str, error: DecodeError) -> ImportError {
    ImportError::Decode { location: location.into(), error }
}

fn export_error(location: &str, error: ExportError) -> ImportError {
    ImportError::Export { location: location.into(), error: Box::new(error) }
}

fn store_error(location: &str, error: StoreError) -> ImportError {
    ImportError::Store { location: location.into(), error }
}

/// Copies what it reads to `copy`.
struct Tee<R, W> {
    input: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The key an import recorded in a session's metadata (`import.key`), if any.
pub fn import_key(info: &SessionInfo) -> Option<&str> {
    info.start.metadata.get(IMPORT_KEY)?.get("key")?.as_str()
}

/// The import key of a body or messages array: the SHA-256 of its bytes and of what else
/// shapes its session (its dialect, the model and tags options), in hex.
pub(crate) fn body_key(bytes: &[u8], dialect: Dialect, options: &ImportOptions) -> [u8; 32] {
    let model = options.model.as_deref().map(|m| format!("model:{m}")).unwrap_or_default();
    let mut parts: Vec<&[u8]> = vec![b"body", dialect_name(dialect).as_bytes(), model.as_bytes()];
    let count = options.tags.len().to_string();
    parts.push(count.as_bytes());
    parts.extend(options.tags.iter().map(|t| t.as_bytes()));
    parts.push(bytes);
    digest(&parts)
}

/// The import key of an export document: the SHA-256 of its bytes (and of the tags and
/// new-id options, when given).
pub(crate) fn export_key(bytes: &[u8], options: &ImportOptions) -> [u8; 32] {
    if options.tags.is_empty() && !options.new_id {
        return digest(&[b"export", bytes]);
    }
    let new_id: &[u8] = if options.new_id { b"new-id" } else { b"same-id" };
    let count = options.tags.len().to_string();
    let mut parts: Vec<&[u8]> = vec![b"export", new_id, count.as_bytes()];
    parts.extend(options.tags.iter().map(|t| t.as_bytes()));
    parts.push(bytes);
    digest(&parts)
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"verbatim import 1");
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A key as the metadata keeps it: lowercase hex.
pub(crate) fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session id a body's key gives: its first 16 bytes as a version 4 UUID.
pub(crate) fn key_id(key: &[u8; 32]) -> SessionId {
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&key[..16]);
    SessionId::from_random_bytes(bytes)
}

/// The settings a session starts with: those an import kept (`import.settings`), else none.
/// Settings the metadata holds in a shape this version cannot read are left out (an export
/// still carries them as they are).
pub(crate) fn start_settings(start: &NewSession) -> Settings {
    match settings_in(&start.metadata) {
        Ok(Some(request)) => Settings::of(&request),
        _ => Settings::default(),
    }
}

/// The request settings an import kept in the session's metadata (`import.settings`): what a
/// body had that the session has no field for.
pub fn imported_settings(session: &Session) -> Result<Option<Request>, ExportError> {
    settings_in(&session.info.start.metadata)
}

fn settings_in(metadata: &JsonMap) -> Result<Option<Request>, ExportError> {
    let Some(settings) = metadata.get(IMPORT_KEY).and_then(|i| i.get("settings")) else {
        return Ok(None);
    };
    let mut settings = settings.clone();
    if let Value::Object(map) = &mut settings {
        map.insert("messages".into(), Value::Array(Vec::new()));
    }
    serde_json::from_value(settings).map(Some).map_err(|e| ExportError::Malformed {
        location: format!("metadata.{IMPORT_KEY}.settings"),
        detail: e.to_string(),
    })
}
