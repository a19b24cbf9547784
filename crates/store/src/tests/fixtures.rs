//! Conversations recorded from the live service, as history messages, for byte-exact round
//! trips. The recordings are not part of the project: they are read from the folder named by
//! `VERBATIM_REAL_FIXTURES` (relative paths from the repository root), or
//! `../shared/fixtures/real` beside the repository when the variable is unset; the tests say
//! they skipped when that default is absent.

use std::path::{Path, PathBuf};

use serde_json::Value;
use verbatim_model::{Api, HistoryMessage, Message, Provenance, Role};
use verbatim_protocol::{anthropic, converse};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn folder() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VERBATIM_REAL_FIXTURES") {
        let dir = repository_root().join(dir);
        assert!(dir.is_dir(), "VERBATIM_REAL_FIXTURES names {}, not a folder", dir.display());
        return Some(dir);
    }
    let dir = repository_root().join("../shared/fixtures/real");
    if dir.is_dir() {
        return Some(dir);
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipping real fixtures: {} is absent", dir.display());
    }
    None
}

/// A recorded conversation: the messages of a request followed by the reply, as the wire
/// carried them (for checking what a round trip gives back).
pub(crate) struct Recorded {
    pub(crate) label: String,
    pub(crate) api: Api,
    pub(crate) messages: Vec<HistoryMessage>,
    pub(crate) wire: Vec<Value>,
}

fn body(part: &Value) -> Option<Value> {
    match (part.get("body"), part.get("body_json")) {
        (Some(Value::String(raw)), _) => serde_json::from_str(raw).ok(),
        (_, Some(json @ Value::Object(_))) => Some(json.clone()),
        _ => None,
    }
}

/// Every recorded request that has a reply: its messages and the reply's message.
pub(crate) fn conversations() -> Option<Vec<Recorded>> {
    let dir = folder()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let root: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let Some(Value::Array(exchanges)) = root.get("exchanges") else { continue };
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, exchange) in exchanges.iter().enumerate() {
            let uri = exchange["request"].get("uri").and_then(Value::as_str).unwrap_or("");
            let api = if uri.ends_with("/converse") {
                Api::Converse
            } else if uri.ends_with("/invoke") {
                Api::InvokeModel
            } else {
                continue;
            };
            let (Some(request), Some(response)) =
                (body(&exchange["request"]), body(&exchange["response"]))
            else {
                continue;
            };
            let mut wire: Vec<Value> = request["messages"].as_array().unwrap().clone();
            let (messages, reply): (Vec<Message>, Message) = match api {
                Api::Converse => {
                    let request = converse::decode_request_value(request).unwrap();
                    wire.push(response["output"]["message"].clone());
                    let response = converse::decode_response_value(response).unwrap();
                    (request.messages, response.message)
                }
                Api::InvokeModel | Api::Messages => {
                    let request = anthropic::decode_request_value(request).unwrap();
                    let content = response["content"].clone();
                    wire.push(serde_json::json!({"role": "assistant", "content": content}));
                    let response = anthropic::decode_response_value(response).unwrap();
                    (request.messages, response.message)
                }
            };
            let segment = uri.split("/model/").nth(1).unwrap_or("").split('/').next().unwrap_or("");
            let model = segment.replace("%3A", ":").replace("%2F", "/");
            let mut history: Vec<HistoryMessage> = messages.into_iter().map(Into::into).collect();
            assert_eq!(reply.role, Role::Assistant);
            history.push(HistoryMessage {
                message: reply,
                provenance: Some(Provenance::new(model, api)),
            });
            out.push(Recorded {
                label: format!("{name} exchange {i}"),
                api,
                messages: history,
                wire,
            });
        }
    }
    Some(out)
}

/// The messages encoded back to the wire dialect they came from.
pub(crate) fn to_wire(api: Api, messages: &[HistoryMessage]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| match api {
            Api::Converse => converse::encode_message(&m.message).unwrap(),
            Api::InvokeModel | Api::Messages => anthropic::encode_message(&m.message).unwrap(),
        })
        .collect()
}
