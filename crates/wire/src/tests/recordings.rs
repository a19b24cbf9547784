//! Reading the recordings of live traffic: the folder they are in, and the request and
//! response bodies each holds, with their dialect and the model id of the request's URI.
//!
//! The recordings are not part of the project: they are read from the folder named by
//! `VERBATIM_REAL_FIXTURES` (relative paths are taken from the repository root), or
//! `../shared/fixtures/real` beside the repository when the variable is unset; a test says it
//! skipped when that default is absent. A folder named by the variable must exist.
//!
//! `verbatim-protocol`'s tests include this file too (its recorded requests must validate).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::support::{Kind, Wire};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn fixtures_dir() -> Option<PathBuf> {
    match std::env::var_os("VERBATIM_REAL_FIXTURES") {
        Some(dir) => {
            let dir = repository_root().join(dir);
            assert!(
                dir.is_dir(),
                "VERBATIM_REAL_FIXTURES names {}, which is not a folder",
                dir.display()
            );
            Some(dir)
        }
        None => {
            let dir = repository_root().join("../shared/fixtures/real");
            if dir.is_dir() {
                return Some(dir);
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "skipping real fixtures: {} is absent and VERBATIM_REAL_FIXTURES is unset",
                    dir.display()
                );
            }
            None
        }
    }
}

/// A document found in a recording.
pub(crate) struct Document {
    pub(crate) label: String,
    pub(crate) wire: Wire,
    pub(crate) kind: Kind,
    pub(crate) value: Value,
    /// The model id of the request URI, percent-decoded (the rules' tests read it).
    #[allow(dead_code)]
    pub(crate) model: Option<String>,
}

/// The `{modelId}` segment of a `/model/{modelId}/...` URI, percent-decoded.
fn model_of_uri(uri: &str) -> Option<String> {
    let rest = &uri[uri.find("/model/")? + "/model/".len()..];
    let segment = &rest[..rest.find('/')?];
    let mut out = Vec::new();
    let mut bytes = segment.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(byte);
        }
    }
    String::from_utf8(out).ok()
}

fn wire_of_uri(uri: &str) -> Option<Wire> {
    let last = uri.rsplit('/').next()?;
    match last {
        "converse" | "converse-stream" => Some(Wire::Converse),
        "invoke" | "invoke-with-response-stream" => Some(Wire::Anthropic),
        _ => None,
    }
}

/// A body kept as a raw string (`body`) or as parsed JSON (`body_json`).
fn body(part: &Value) -> Option<Value> {
    match (part.get("body"), part.get("body_json")) {
        (Some(Value::String(raw)), _) => {
            Some(serde_json::from_str(raw).expect("a recorded JSON body parses"))
        }
        (_, Some(json @ Value::Object(_))) => Some(json.clone()),
        _ => None,
    }
}

fn wire_of_response(body: &Value) -> Option<Wire> {
    if body.get("output").is_some() {
        return Some(Wire::Converse);
    }
    (body.get("type").and_then(Value::as_str) == Some("message")).then_some(Wire::Anthropic)
}

/// The recording files of the folder, sorted by name.
pub(crate) fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

pub(crate) fn documents(file: &Path) -> Vec<Document> {
    let text = std::fs::read_to_string(file).unwrap();
    let root: Value = serde_json::from_str(&text).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut found = Vec::new();
    if let Some(Value::Array(exchanges)) = root.get("exchanges") {
        for (i, exchange) in exchanges.iter().enumerate() {
            let request = &exchange["request"];
            let uri = request.get("uri").and_then(Value::as_str);
            let Some(wire) = uri.and_then(wire_of_uri) else { continue };
            let model = uri.and_then(model_of_uri);
            if let Some(value) = body(request) {
                let label = format!("{name} exchange {i} request");
                let model = model.clone();
                found.push(Document { label, wire, kind: Kind::Request, value, model });
            }
            if let Some(value) = body(&exchange["response"]) {
                let label = format!("{name} exchange {i} response");
                found.push(Document { label, wire, kind: Kind::Response, value, model });
            }
        }
    }
    if let Some(Value::Array(entries)) = root.get("entries") {
        for (i, entry) in entries.iter().enumerate() {
            let Some(value) = body(&entry["response"]) else { continue };
            let Some(wire) = wire_of_response(&value) else { continue };
            let label = format!("{name} entry {i} response");
            found.push(Document { label, wire, kind: Kind::Response, value, model: None });
        }
    }
    found
}
