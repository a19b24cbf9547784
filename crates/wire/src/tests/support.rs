//! Helpers shared by the codec tests (`verbatim-protocol`'s tests include this file too).

use serde_json::Value;

use crate::{DecodeError, EncodeError, anthropic, converse};

/// What a JSON document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Response,
    Messages,
}

/// The dialects, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Converse,
    Anthropic,
}

#[derive(Debug)]
pub(crate) enum Failure {
    Decode(DecodeError),
    Encode(EncodeError),
}

/// Decodes `value` as `kind` in `wire` and encodes it back in the same dialect.
pub(crate) fn decode_encode(wire: Wire, kind: Kind, value: Value) -> Result<Value, Failure> {
    use Failure::{Decode, Encode};
    match (wire, kind) {
        (Wire::Converse, Kind::Request) => {
            let request = converse::decode_request_value(value).map_err(Decode)?;
            converse::encode_request(&request).map_err(Encode)
        }
        (Wire::Converse, Kind::Response) => {
            let response = converse::decode_response_value(value).map_err(Decode)?;
            converse::encode_response(&response).map_err(Encode)
        }
        (Wire::Converse, Kind::Messages) => {
            let messages = converse::decode_messages_value(value).map_err(Decode)?;
            converse::encode_messages(&messages).map_err(Encode)
        }
        (Wire::Anthropic, Kind::Request) => {
            let request = anthropic::decode_request_value(value).map_err(Decode)?;
            anthropic::encode_request(&request).map_err(Encode)
        }
        (Wire::Anthropic, Kind::Response) => {
            let response = anthropic::decode_response_value(value).map_err(Decode)?;
            anthropic::encode_response(&response).map_err(Encode)
        }
        (Wire::Anthropic, Kind::Messages) => {
            let messages = anthropic::decode_messages_value(value).map_err(Decode)?;
            anthropic::encode_messages(&messages).map_err(Encode)
        }
    }
}

/// The strings that must survive byte for byte, in document order: thinking text, signatures,
/// redacted data, and every tool input serialized (which also pins its key order).
pub(crate) fn verbatim_strings(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(value, &mut out);
    out
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        Value::Object(map) => {
            let mut push = |v: Option<&Value>| {
                if let Some(v) = v {
                    out.push(match v {
                        Value::String(s) => s.clone(),
                        other => serde_json::to_string(other).unwrap(),
                    });
                }
            };
            if let Some(Value::Object(text)) = map.get("reasoningText") {
                push(text.get("text"));
                push(text.get("signature"));
            }
            push(map.get("redactedContent"));
            match map.get("type").and_then(Value::as_str) {
                Some("thinking") => {
                    push(map.get("thinking"));
                    push(map.get("signature"));
                }
                Some("redacted_thinking") => push(map.get("data")),
                Some("tool_use" | "server_tool_use") => push(map.get("input")),
                _ => {}
            }
            if let Some(Value::Object(tool_use)) = map.get("toolUse") {
                push(tool_use.get("input"));
            }
            map.values().for_each(|v| collect(v, out));
        }
        _ => {}
    }
}

/// A fixture file named `<case>.<dialect>.<kind>.json` in `test_data/<folder>`.
pub(crate) struct CaseFile {
    pub(crate) path: std::path::PathBuf,
    pub(crate) case: String,
    pub(crate) wire: Wire,
    pub(crate) kind: Kind,
}

pub(crate) fn test_data(folder: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(folder)
}

/// The case files of a `test_data` folder, sorted by name.
pub(crate) fn case_files(folder: &str) -> Vec<CaseFile> {
    let mut files: Vec<CaseFile> = std::fs::read_dir(test_data(folder))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let parts: Vec<&str> = stem.split('.').collect();
            let [case, wire, kind] = parts[..] else {
                panic!("{}: expected <case>.<dialect>.<kind>.json", path.display())
            };
            let wire = match wire {
                "converse" => Wire::Converse,
                "anthropic" => Wire::Anthropic,
                other => panic!("{}: unknown dialect {other}", path.display()),
            };
            let kind = match kind {
                "request" => Kind::Request,
                "response" => Kind::Response,
                "messages" => Kind::Messages,
                other => panic!("{}: unknown kind {other}", path.display()),
            };
            CaseFile { case: case.to_owned(), path, wire, kind }
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// Decodes raw bytes as `kind` in `wire`, keeping only the error.
pub(crate) fn decode_bytes(wire: Wire, kind: Kind, bytes: &[u8]) -> Result<(), DecodeError> {
    match (wire, kind) {
        (Wire::Converse, Kind::Request) => converse::decode_request(bytes).map(drop),
        (Wire::Converse, Kind::Response) => converse::decode_response(bytes).map(drop),
        (Wire::Converse, Kind::Messages) => converse::decode_messages(bytes).map(drop),
        (Wire::Anthropic, Kind::Request) => anthropic::decode_request(bytes).map(drop),
        (Wire::Anthropic, Kind::Response) => anthropic::decode_response(bytes).map(drop),
        (Wire::Anthropic, Kind::Messages) => anthropic::decode_messages(bytes).map(drop),
    }
}
