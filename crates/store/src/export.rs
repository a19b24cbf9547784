//! Export and import: a session as one JSON document whose messages are in Converse or
//! Anthropic Messages JSON (what other tools read), with everything else (provenance and usage,
//! configuration changes, tool-call steps, repairs, metadata) in verbatim's canonical form.
//! Several sessions go one per line (JSON lines).
//!
//! Nothing is re-encoded: redacted thinking is exported only in the dialect whose form it was
//! stored in (Converse's base64 blob or Anthropic's data string), and a block the dialect
//! cannot express is an error, not a drop.
//!
//! [`export_body`] writes a session as a request body of either dialect instead: its messages,
//! the configuration in force, and the request settings an import kept (see
//! [`crate::import`], which reads what `verbatim sessions import` reads).
//!
//! ```json
//! {"verbatim_export": 1, "dialect": "converse",
//!  "session": {"id": "…", "model": "…", "created_at": "…", …},
//!  "records": [{"seq": 1, "at": "…", "type": "message",
//!               "message": {"role": "user", "content": [{"text": "Hi"}]}}, …]}
//! ```

use serde_json::{Value, json};
use verbatim_model::{
    ContentBlock, Dialect, HistoryMessage, JsonMap, Message, Provenance, RedactedForm,
};
use verbatim_protocol::{DecodeError, EncodeError, JsonPath, anthropic, converse};

use crate::import::{IMPORT_KEY, imported_settings};
use crate::{ConfigChange, Entry, Origin, Record, Session, SessionInfo, SessionStore, StoreError};

/// The export format's version.
pub const EXPORT_VERSION: u64 = 1;

/// What can go wrong exporting or importing.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A message the chosen dialect cannot express.
    #[error("record {seq}: {error}")]
    Encode {
        /// The record.
        seq: u64,
        /// Why.
        error: EncodeError,
    },
    /// Redacted thinking kept in the other dialect's form: exporting it would re-encode it.
    #[error(
        "record {seq}: redacted thinking at {path} was produced on the other API; export in that dialect to keep its bytes"
    )]
    RedactedForm {
        /// The record.
        seq: u64,
        /// Where in the message.
        path: JsonPath,
    },
    /// Redacted thinking kept in the other dialect's form, in a request body: writing it would
    /// re-encode it.
    #[error(
        "redacted thinking at {path} was produced on the {} API; export it as {} to keep its bytes",
        dialect_name(*produced_on), dialect_name(*produced_on)
    )]
    BodyRedactedForm {
        /// Where in the body (`messages[1].content[1]`).
        path: JsonPath,
        /// The dialect whose form it is kept in.
        produced_on: Dialect,
    },
    /// A session that cannot be written as a request body of `target`.
    #[error("cannot be written as {}: {error}", dialect_name(*target))]
    Body {
        /// The dialect asked for.
        target: Dialect,
        /// Why.
        error: EncodeError,
    },
    /// An export document that does not read back.
    #[error("{location}: {detail}")]
    Malformed {
        /// Where: the line (for JSON lines) and the JSON path.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// A message that does not decode in the export's dialect.
    #[error("{location}: {error}")]
    Decode {
        /// Where: the line and record.
        location: String,
        /// Why.
        error: DecodeError,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The name of a dialect as the export format, the command line and the import metadata
/// write it.
pub(crate) fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Converse => "converse",
        Dialect::Anthropic => "anthropic",
    }
}

/// The dialect named `name` ([`dialect_name`]'s inverse).
pub(crate) fn dialect_named(name: &str) -> Option<Dialect> {
    match name {
        "converse" => Some(Dialect::Converse),
        "anthropic" => Some(Dialect::Anthropic),
        _ => None,
    }
}

/// The other dialect.
fn other(dialect: Dialect) -> Dialect {
    match dialect {
        Dialect::Converse => Dialect::Anthropic,
        Dialect::Anthropic => Dialect::Converse,
    }
}

/// The first block of `message` holding redacted thinking in another form than `dialect`'s
/// own: writing it in `dialect` would re-encode it.
fn foreign_redacted(message: &Message, dialect: Dialect) -> Option<usize> {
    let native = match dialect {
        Dialect::Converse => RedactedForm::ConverseBlob,
        Dialect::Anthropic => RedactedForm::AnthropicData,
    };
    message
        .content
        .iter()
        .position(|block| matches!(block, ContentBlock::RedactedThinking(r) if r.form != native))
}

/// The session's info as an export document writes it: without the key an import recorded
/// (`metadata.import.key`), which names the input bytes of this store's import, not the
/// session.
fn exported_info(info: &SessionInfo) -> Value {
    let mut value = json!(info);
    let metadata = value.get_mut("metadata").and_then(Value::as_object_mut);
    if let Some(metadata) = metadata {
        let emptied = match metadata.get_mut(IMPORT_KEY) {
            Some(Value::Object(import)) => {
                import.shift_remove("key");
                import.is_empty()
            }
            _ => false,
        };
        if emptied {
            metadata.shift_remove(IMPORT_KEY);
        }
        if metadata.is_empty() {
            value.as_object_mut().expect("an object").shift_remove("metadata");
        }
    }
    value
}

/// One session as an export document.
pub fn export_session(session: &Session, dialect: Dialect) -> Result<Value, ExportError> {
    let mut records = Vec::with_capacity(session.records.len());
    for record in &session.records {
        let mut value = serde_json::to_value(record).expect("records serialize");
        if let Entry::Message(message) = &record.entry {
            if let Some(block) = foreign_redacted(&message.message, dialect) {
                let path = JsonPath::root().key("content").index(block);
                return Err(ExportError::RedactedForm { seq: record.seq, path });
            }
            let wire = match dialect {
                Dialect::Converse => converse::encode_message(&message.message),
                Dialect::Anthropic => anthropic::encode_message(&message.message),
            }
            .map_err(|error| ExportError::Encode { seq: record.seq, error })?;
            value["message"] = wire;
        }
        records.push(value);
    }
    Ok(json!({
        "verbatim_export": EXPORT_VERSION,
        "dialect": dialect_name(dialect),
        "session": exported_info(&session.info),
        "records": records,
    }))
}

/// The session as a request body of `dialect`: the stored messages encoded by the protocol
/// crate, the configuration in force, and the settings kept from an import
/// ([`imported_settings`]). A session that never knew `max_tokens` gives an Anthropic body
/// without one rather than with an invented value.
pub fn export_body(session: &Session, dialect: Dialect) -> Result<Value, ExportError> {
    let tools = session.history().config().tools.clone();
    body_with_tools(session, dialect, tools)
}

/// [`export_body`] with `tools` as the tools in force.
fn body_with_tools(
    session: &Session,
    dialect: Dialect,
    tools: Option<Vec<verbatim_model::Tool>>,
) -> Result<Value, ExportError> {
    let mut request = imported_settings(session)?.unwrap_or_default();
    let history = session.history();
    for (i, message) in history.messages().iter().enumerate() {
        if let Some(block) = foreign_redacted(&message.message, dialect) {
            let path = JsonPath::root().key("messages").index(i).key("content").index(block);
            return Err(ExportError::BodyRedactedForm { path, produced_on: other(dialect) });
        }
    }
    let config = history.config().clone();
    request.messages = history.into_messages().into_iter().map(|h| h.message).collect();
    request.system = config.system;
    request.tools = tools;
    request.thinking = config.thinking;
    let encoded = match dialect {
        Dialect::Converse => converse::encode_request(&request),
        Dialect::Anthropic => {
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
    encoded.map_err(|error| ExportError::Body { target: dialect, error })
}

/// What [`export_request`] fills in where a session's records do not say it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestDefaults {
    /// The `max_tokens` the session's requests were sent with when no import recorded one
    /// (the engine's default, which the engine does not store per session).
    pub max_tokens: Option<u32>,
}

/// The session as a request Bedrock would accept: [`export_body`], with `max_tokens` from
/// `defaults` where the session never recorded one (always on Anthropic, where it is required;
/// on Converse for a session an engine ran, not for one imported without it, which exports as
/// it came), and every tool its history calls but its
/// configuration does not declare (a tool an engine registered, whose schema the session does
/// not keep) declared by name with an open input schema and a description that says so.
/// Bedrock refuses tool blocks without a tool configuration; it does not check the calls
/// against the schemas.
pub fn export_request(
    session: &Session,
    dialect: Dialect,
    defaults: RequestDefaults,
) -> Result<Value, ExportError> {
    let history = session.history();
    let config = history.config();
    let declared: Vec<&str> = config
        .tools
        .iter()
        .flatten()
        .filter_map(|t| match t {
            verbatim_model::Tool::Spec(spec) => Some(spec.name.as_str()),
            _ => None,
        })
        .collect();
    let mut undeclared: Vec<String> = Vec::new();
    for message in history.messages() {
        for block in &message.message.content {
            if let ContentBlock::ToolUse(call) = block
                && !declared.contains(&call.name.as_str())
                && !undeclared.contains(&call.name)
            {
                undeclared.push(call.name.clone());
            }
        }
    }
    let mut tools = config.tools.clone();
    if !undeclared.is_empty() {
        let list = tools.get_or_insert_with(Vec::new);
        list.extend(undeclared.into_iter().map(|name| {
            verbatim_model::Tool::Spec(verbatim_model::ToolSpec {
                name,
                description: Some(
                    "Declared by the export: the session's configuration does not keep this tool's schema.".into(),
                ),
                input_schema: serde_json::json!({"type": "object"}),
                strict: None,
                unmapped: Default::default(),
            })
        }));
    }
    let imported = imported_settings(session)?;
    let from_engine = session.info.origin != Some(Origin::Import);
    let max_tokens =
        imported.and_then(|r| r.inference.and_then(|i| i.max_tokens)).or(defaults.max_tokens);
    let mut body = body_with_tools(session, dialect, tools)?;
    // Anthropic bodies require max_tokens. A Converse body may leave it out: one imported
    // without it is left so (it exports as it came); one an engine ran gets the default the
    // engine sent it with.
    if let (Some(max), Value::Object(map)) = (max_tokens, &mut body) {
        match dialect {
            Dialect::Anthropic => {
                map.entry("max_tokens").or_insert_with(|| max.into());
            }
            Dialect::Converse if from_engine => {
                let config =
                    map.entry("inferenceConfig").or_insert_with(|| Value::Object(JsonMap::new()));
                if let Value::Object(config) = config {
                    config.entry("maxTokens").or_insert_with(|| max.into());
                }
            }
            Dialect::Converse => {}
        }
    }
    Ok(body)
}

pub(crate) fn malformed(location: &str, path: &JsonPath, detail: impl Into<String>) -> ExportError {
    ExportError::Malformed { location: format!("{location} {path}"), detail: detail.into() }
}

/// Reads an export document back into a session.
pub fn import_session(document: Value, location: &str) -> Result<Session, ExportError> {
    let root = JsonPath::root();
    let Value::Object(mut document) = document else {
        return Err(malformed(location, &root, "an export is a JSON object"));
    };
    let (dialect, info) = export_head(&mut document, location)?;
    let Some(Value::Array(items)) = document.remove("records") else {
        return Err(malformed(location, &root.clone().key("records"), "expected an array"));
    };
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        records.push(import_record(item, dialect, location, i)?);
    }
    Ok(Session { info, records })
}

/// Reads what an export document says besides its records (its version, dialect and
/// session), taking the session out of `document`.
pub(crate) fn export_head(
    document: &mut JsonMap,
    location: &str,
) -> Result<(Dialect, SessionInfo), ExportError> {
    let root = JsonPath::root();
    match document.get("verbatim_export").and_then(Value::as_u64) {
        Some(EXPORT_VERSION) => {}
        Some(other) => {
            let detail = format!("export version {other}; this version reads {EXPORT_VERSION}");
            return Err(malformed(location, &root.clone().key("verbatim_export"), detail));
        }
        None => return Err(malformed(location, &root.clone().key("verbatim_export"), "missing")),
    }
    let Some(dialect) = document.get("dialect").and_then(Value::as_str).and_then(dialect_named)
    else {
        return Err(malformed(
            location,
            &root.clone().key("dialect"),
            "expected converse or anthropic",
        ));
    };
    let info: SessionInfo =
        serde_json::from_value(document.remove("session").unwrap_or(Value::Null))
            .map_err(|e| malformed(location, &root.clone().key("session"), e.to_string()))?;
    verbatim_model::check_model_id(&info.start.model).map_err(|e| {
        malformed(location, &root.clone().key("session").key("model"), e.to_string())
    })?;
    Ok((dialect, info))
}

/// Reads record `i` of an export document in `dialect`.
pub(crate) fn import_record(
    item: Value,
    dialect: Dialect,
    location: &str,
    i: usize,
) -> Result<Record, ExportError> {
    let at = JsonPath::root().key("records").index(i);
    let Value::Object(mut fields) = item else {
        return Err(malformed(location, &at, "a record is a JSON object"));
    };
    let is_message = fields.get("type").and_then(Value::as_str) == Some("message");
    let wire = if is_message { fields.remove("message") } else { None };
    let Some(wire) = wire else {
        let record: Record = serde_json::from_value(Value::Object(fields))
            .map_err(|e| malformed(location, &at, e.to_string()))?;
        if let Entry::Config(ConfigChange::Model(model)) = &record.entry {
            verbatim_model::check_model_id(model)
                .map_err(|e| malformed(location, &at.clone().key("value"), e.to_string()))?;
        }
        return Ok(record);
    };
    let message = match dialect {
        Dialect::Converse => converse::decode_message_value(wire),
        Dialect::Anthropic => anthropic::decode_message_value(wire),
    }
    .map_err(|error| ExportError::Decode { location: format!("{location} {at}.message"), error })?;
    let provenance: Option<Provenance> = match fields.remove("provenance") {
        Some(value) => Some(
            serde_json::from_value(value)
                .map_err(|e| malformed(location, &at.clone().key("provenance"), e.to_string()))?,
        ),
        None => None,
    };
    let seq = fields.get("seq").and_then(Value::as_u64);
    let seq = seq.ok_or_else(|| malformed(location, &at.clone().key("seq"), "missing"))?;
    let time = serde_json::from_value(fields.remove("at").unwrap_or(Value::Null))
        .map_err(|e| malformed(location, &at.clone().key("at"), e.to_string()))?;
    Ok(Record { seq, at: time, entry: Entry::Message(HistoryMessage { message, provenance }) })
}

/// Exports sessions of `store`, one JSON document per line.
pub async fn export_lines(
    store: &dyn SessionStore,
    ids: &[verbatim_model::SessionId],
    dialect: Dialect,
) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    for &id in ids {
        let document = export_session(&store.load(id).await?, dialect)?;
        serde_json::to_writer(&mut out, &document).expect("JSON values serialize");
        out.push(b'\n');
    }
    Ok(out)
}

/// Stores sessions from export documents as they are: one document (a file holding one
/// session, pretty printed or not), or JSON lines, read whole. Each keeps its id, which must be
/// new to the store (a second import is refused); its origin is marked as an import. What
/// `verbatim sessions import` does (every input shape, one document at a time, re-runs that
/// store nothing twice) is [`crate::import::Importer`].
pub async fn import(
    store: &dyn SessionStore,
    bytes: &[u8],
) -> Result<Vec<SessionInfo>, ExportError> {
    let documents: Vec<(String, Value)> = match serde_json::from_slice::<Value>(bytes) {
        Ok(document) => vec![("document".to_owned(), document)],
        Err(_) => {
            let text = std::str::from_utf8(bytes).map_err(|e| ExportError::Malformed {
                location: "input".into(),
                detail: e.to_string(),
            })?;
            let mut documents = Vec::new();
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let location = format!("line {}", n + 1);
                let document = serde_json::from_str(line).map_err(|e| ExportError::Malformed {
                    location: location.clone(),
                    // Names a byte order mark or a lone surrogate escape as such.
                    detail: DecodeError::syntax(line.as_bytes(), &e).kind.to_string(),
                })?;
                documents.push((location, document));
            }
            documents
        }
    };
    let mut imported = Vec::with_capacity(documents.len());
    for (location, document) in documents {
        let mut session = import_session(document, &location)?;
        if session.info.origin.is_none() {
            session.info.origin = Some(Origin::Import);
        }
        imported.push(store.put(session).await?);
    }
    Ok(imported)
}
