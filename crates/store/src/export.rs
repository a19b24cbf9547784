//! Export and import: a session as one JSON document whose messages are in Converse or
//! Anthropic Messages JSON (what other tools read), with everything else (provenance and usage,
//! configuration changes, tool-call steps, repairs, metadata) in verbatim's canonical form.
//! Several sessions go one per line (JSON lines).
//!
//! Nothing is re-encoded: redacted thinking is exported only in the dialect whose form it was
//! stored in (Converse's base64 blob or Anthropic's data string), and a block the dialect
//! cannot express is an error, not a drop.
//!
//! ```json
//! {"verbatim_export": 1, "dialect": "converse",
//!  "session": {"id": "…", "model": "…", "created_at": "…", …},
//!  "records": [{"seq": 1, "at": "…", "type": "message",
//!               "message": {"role": "user", "content": [{"text": "Hi"}]}}, …]}
//! ```

use serde_json::{Value, json};
use verbatim_model::{ContentBlock, Dialect, HistoryMessage, Provenance, RedactedForm};
use verbatim_protocol::{DecodeError, EncodeError, JsonPath, anthropic, converse};

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

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Converse => "converse",
        Dialect::Anthropic => "anthropic",
    }
}

/// One session as an export document.
pub fn export_session(session: &Session, dialect: Dialect) -> Result<Value, ExportError> {
    let mut records = Vec::with_capacity(session.records.len());
    for record in &session.records {
        let mut value = serde_json::to_value(record).expect("records serialize");
        if let Entry::Message(message) = &record.entry {
            let native = match dialect {
                Dialect::Converse => RedactedForm::ConverseBlob,
                Dialect::Anthropic => RedactedForm::AnthropicData,
            };
            let foreign = message.message.content.iter().position(
                |block| matches!(block, ContentBlock::RedactedThinking(r) if r.form != native),
            );
            if let Some(block) = foreign {
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
        "session": session.info,
        "records": records,
    }))
}

fn malformed(location: &str, path: &JsonPath, detail: impl Into<String>) -> ExportError {
    ExportError::Malformed { location: format!("{location} {path}"), detail: detail.into() }
}

/// Reads an export document back into a session.
pub fn import_session(document: Value, location: &str) -> Result<Session, ExportError> {
    let root = JsonPath::root();
    let Value::Object(mut document) = document else {
        return Err(malformed(location, &root, "an export is a JSON object"));
    };
    match document.get("verbatim_export").and_then(Value::as_u64) {
        Some(EXPORT_VERSION) => {}
        Some(other) => {
            let detail = format!("export version {other}; this version reads {EXPORT_VERSION}");
            return Err(malformed(location, &root.clone().key("verbatim_export"), detail));
        }
        None => return Err(malformed(location, &root.clone().key("verbatim_export"), "missing")),
    }
    let dialect = match document.get("dialect").and_then(Value::as_str) {
        Some("converse") => Dialect::Converse,
        Some("anthropic") => Dialect::Anthropic,
        _ => {
            return Err(malformed(
                location,
                &root.clone().key("dialect"),
                "expected converse or anthropic",
            ));
        }
    };
    let info: SessionInfo =
        serde_json::from_value(document.remove("session").unwrap_or(Value::Null))
            .map_err(|e| malformed(location, &root.clone().key("session"), e.to_string()))?;
    verbatim_model::check_model_id(&info.start.model).map_err(|e| {
        malformed(location, &root.clone().key("session").key("model"), e.to_string())
    })?;
    let Some(Value::Array(items)) = document.remove("records") else {
        return Err(malformed(location, &root.clone().key("records"), "expected an array"));
    };
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = root.clone().key("records").index(i);
        let Value::Object(mut fields) = item else {
            return Err(malformed(location, &at, "a record is a JSON object"));
        };
        let is_message = fields.get("type").and_then(Value::as_str) == Some("message");
        let wire = if is_message { fields.remove("message") } else { None };
        let record = if let Some(wire) = wire {
            let message = match dialect {
                Dialect::Converse => converse::decode_message_value(wire),
                Dialect::Anthropic => anthropic::decode_message_value(wire),
            }
            .map_err(|error| ExportError::Decode {
                location: format!("{location} {at}.message"),
                error,
            })?;
            let provenance: Option<Provenance> = match fields.remove("provenance") {
                Some(value) => Some(serde_json::from_value(value).map_err(|e| {
                    malformed(location, &at.clone().key("provenance"), e.to_string())
                })?),
                None => None,
            };
            let seq = fields.get("seq").and_then(Value::as_u64);
            let seq = seq.ok_or_else(|| malformed(location, &at.clone().key("seq"), "missing"))?;
            let time = serde_json::from_value(fields.remove("at").unwrap_or(Value::Null))
                .map_err(|e| malformed(location, &at.clone().key("at"), e.to_string()))?;
            Record { seq, at: time, entry: Entry::Message(HistoryMessage { message, provenance }) }
        } else {
            serde_json::from_value(Value::Object(fields))
                .map_err(|e| malformed(location, &at, e.to_string()))?
        };
        if let Entry::Config(ConfigChange::Model(model)) = &record.entry {
            verbatim_model::check_model_id(model)
                .map_err(|e| malformed(location, &at.clone().key("value"), e.to_string()))?;
        }
        records.push(record);
    }
    Ok(Session { info, records })
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

/// Imports sessions from export documents: one document (a file holding one session, pretty
/// printed or not), or JSON lines. Each keeps its id, which must be new to the store; its
/// origin is marked as an import.
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
