//! Every Converse or Anthropic request, response or message array recorded from the live
//! service decodes and re-encodes to an equal JSON value, with thinking text, signatures,
//! redacted data and tool inputs unchanged.
//!
//! The recordings are not part of the project: the test reads the folder named by
//! `VERBATIM_REAL_FIXTURES` (relative paths are taken from the repository root), or
//! `../shared/fixtures/real` beside the repository when the variable is unset, and says it
//! skipped when that default is absent. A folder named by the variable must exist.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::support::{Failure, Kind, Wire, decode_encode, verbatim_strings};
use verbatim_model::Api;

use crate::assemble::{Severity, repair_body, validate_body};
use crate::{anthropic, converse};

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
struct Document {
    label: String,
    wire: Wire,
    kind: Kind,
    value: Value,
    /// The model id of the request URI, percent-decoded.
    model: Option<String>,
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
fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn documents(file: &Path) -> Vec<Document> {
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

#[test]
fn recorded_traffic_round_trips_unchanged() {
    let Some(dir) = fixtures_dir() else { return };
    let files = recordings(&dir);

    let mut checked = 0;
    let mut verbatim = 0;
    for file in &files {
        for doc in documents(file) {
            let expected_strings = verbatim_strings(&doc.value);
            let encoded = match decode_encode(doc.wire, doc.kind, doc.value.clone()) {
                Ok(encoded) => encoded,
                Err(Failure::Decode(e)) => panic!("{}: does not decode: {e}", doc.label),
                Err(Failure::Encode(e)) => panic!("{}: does not re-encode: {e}", doc.label),
            };
            assert_eq!(encoded, doc.value, "{}: re-encoded JSON differs", doc.label);
            assert_eq!(
                verbatim_strings(&encoded),
                expected_strings,
                "{}: thinking, signature, redacted data or tool input changed",
                doc.label
            );
            checked += 1;
            verbatim += expected_strings.len();
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "real fixtures: {checked} documents from {} files, {verbatim} verbatim strings",
            files.len()
        );
    }
    assert!(checked >= 40, "only {checked} documents found in {}", dir.display());
    assert!(verbatim >= 40, "only {verbatim} thinking/signature/tool-input strings found");
}

/// Recorded Converse requests that the Anthropic dialect can express survive the trip
/// Converse -> model -> Anthropic -> model -> Converse unchanged.
#[test]
fn recorded_converse_requests_survive_the_anthropic_dialect() {
    let Some(dir) = fixtures_dir() else { return };
    let mut crossed = 0;
    for file in &recordings(&dir) {
        for doc in documents(file) {
            if (doc.wire, doc.kind) != (Wire::Converse, Kind::Request) {
                continue;
            }
            let mut request = converse::decode_request_value(doc.value.clone()).unwrap();
            // Converse may leave maxTokens out; InvokeModel requires it.
            let inference = request.inference.get_or_insert_with(Default::default);
            let added_max_tokens = inference.max_tokens.is_none();
            inference.max_tokens.get_or_insert(4096);
            let Ok(body) = anthropic::encode_request(&request) else { continue };
            let back = anthropic::decode_request_value(body).unwrap();
            let mut again = converse::encode_request(&back).unwrap();
            if added_max_tokens {
                again["inferenceConfig"].as_object_mut().unwrap().shift_remove("maxTokens");
            }
            let expected = doc.value.clone();
            // An empty inferenceConfig comes back when maxTokens was added and removed again.
            if expected.get("inferenceConfig").is_none() {
                again.as_object_mut().unwrap().shift_remove("inferenceConfig");
            }
            assert_eq!(again, expected, "{}: changed on the way through Anthropic", doc.label);
            assert_eq!(verbatim_strings(&again), verbatim_strings(&expected), "{}", doc.label);
            crossed += 1;
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "real fixtures: {crossed} recorded Converse requests crossed to Anthropic and back"
        );
    }
    assert!(crossed >= 10, "only {crossed} recorded requests crossed dialects");
}

/// Every request the live service accepted (all recorded exchanges answered 200) validates
/// with no error against the capability row of the model its URI names, and repair changes
/// nothing in it because of an error.
#[test]
fn recorded_accepted_requests_validate_without_errors() {
    let Some(dir) = fixtures_dir() else { return };
    let mut validated = 0;
    let mut warnings = 0;
    for file in &recordings(&dir) {
        for doc in documents(file) {
            if doc.kind != Kind::Request {
                continue;
            }
            let api = match doc.wire {
                Wire::Converse => Api::Converse,
                Wire::Anthropic => Api::InvokeModel,
            };
            let model = doc.model.as_deref();
            assert!(model.is_some(), "{}: no model id in the URI", doc.label);
            let body = serde_json::to_vec(&doc.value).unwrap();
            let report = validate_body(api, model, &body).unwrap();
            let errors: Vec<String> = report
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(ToString::to_string)
                .collect();
            assert!(errors.is_empty(), "{} ({model:?}): {errors:#?}", doc.label);
            warnings += report.diagnostics.len();
            let repaired = repair_body(api, model, &body).unwrap();
            let changed: Vec<String> = repaired
                .fixes
                .iter()
                .filter(|f| f.diagnostic.severity == Severity::Error)
                .map(|f| f.diagnostic.to_string())
                .collect();
            assert!(
                changed.is_empty(),
                "{}: repair changed an accepted request: {changed:#?}",
                doc.label
            );
            // What repair may still do to an accepted request (merge a split turn) keeps every
            // thinking text, signature, redacted blob and tool input, in order.
            let request = repaired.request.expect("an accepted request decodes");
            let sent = crate::assemble::encode(api, &request).unwrap();
            assert_eq!(verbatim_strings(&sent), verbatim_strings(&doc.value), "{}", doc.label);
            validated += 1;
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("real fixtures: {validated} accepted requests validated, {warnings} warnings");
    }
    assert!(validated >= 30, "only {validated} recorded requests found");
}
