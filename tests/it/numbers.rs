//! Numbers keep the text they arrived with: a tool input, a tool result and an unknown block
//! holding an integer past `u64`, a negative zero, trailing zeros, exponents and values past
//! `f64`'s range come back with the same digits, sign and zeros from every codec and every
//! store. One spelling is made canonical, as JSON parsers read both the same: an exponent is
//! written `e+N` or `e-N` (`2.5E+3` and `1e400` come back as `2.5e+3` and `1e+400`).
//!
//! The PostgreSQL part runs when `TEST_DATABASE_URL` is set (`.ci/run` sets it) and says it
//! skipped otherwise.

use std::path::Path;

use serde_json::Value;
use verbatim::model::{HistoryMessage, Request};
use verbatim::protocol::messages_api;
use verbatim::store::{Append, Entry, NewSession, Session};
use verbatim::{Dialect, MemoryStore, SessionStore, SledStore, anthropic, converse};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

/// The members of the fixture as their text, compact (exponents canonical).
const INPUT: &str = r#"{"big":12345678901234567890123,"neg0":-0,"f":1.50,"e":2.5e+3,"upper":2.5e+3,"tiny":1e-400,"list":[0.10,-12.500,1e+400]}"#;
const RESULT: &str = r#"{"sum":12345678901234567890124.50,"neg0":-0.0}"#;
const UNKNOWN: &str = r#"{"futureBlock":{"weight":1.50,"count":12345678901234567890123}}"#;

fn fixture() -> Request {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/numbers.converse.json");
    converse::decode_request(&std::fs::read(path).unwrap()).unwrap()
}

/// The compact text of the value at `pointer` in `body`.
fn text_at(body: &Value, pointer: &str) -> String {
    let value = body.pointer(pointer).unwrap_or_else(|| panic!("{pointer} missing in {body}"));
    serde_json::to_string(value).unwrap()
}

/// A Converse body written from `request` holds the fixture's numbers as written.
fn assert_converse_exact(request: &Request, what: &str) {
    let body = converse::encode_request(request).unwrap();
    assert_eq!(text_at(&body, "/messages/1/content/0/toolUse/input"), INPUT, "{what}");
    assert_eq!(text_at(&body, "/messages/2/content/0/toolResult/content/0/json"), RESULT, "{what}");
    assert_eq!(text_at(&body, "/messages/2/content/1"), UNKNOWN, "{what}");
    // And as bytes on the wire, not only as values.
    let bytes = serde_json::to_string(&body).unwrap();
    assert!(bytes.contains(INPUT), "{what}: {bytes}");
}

#[test]
fn converse_keeps_the_text_of_numbers() {
    assert_converse_exact(&fixture(), "decoded then encoded");
}

#[test]
fn invoke_model_keeps_the_text_of_tool_input_numbers_both_ways() {
    let request = fixture();
    // The result's `json` block and the unknown block are Converse's own (Anthropic's body
    // cannot carry them, and its encoder says so): the tool call is what crosses over.
    let mut known = request.clone();
    known.messages.truncate(2);
    let body = anthropic::encode_request(&known).unwrap();
    assert_eq!(text_at(&body, "/messages/1/content/0/input"), INPUT);
    let text = serde_json::to_vec(&body).unwrap();
    let back = anthropic::decode_request(&text).unwrap();
    assert_eq!(back.messages[1], known.messages[1]);
    let again = anthropic::encode_request(&back).unwrap();
    assert_eq!(text_at(&again, "/messages/1/content/0/input"), INPUT);
}

/// Stores the fixture's messages in `store`, loads them and checks the numbers.
#[test]
fn the_messages_api_keeps_the_text_of_tool_input_numbers_both_ways() {
    let mut known = fixture();
    known.messages.truncate(2);
    let call = messages_api::Call {
        model: MODEL.into(),
        stream: Some(true),
        version: None,
        request: known,
    };
    let encoded = messages_api::encode_request(&call).unwrap();
    assert_eq!(text_at(&encoded.body, "/messages/1/content/0/input"), INPUT);
    let text = serde_json::to_vec(&encoded.body).unwrap();
    let back = messages_api::decode_request(&text, &encoded.headers).unwrap();
    let again = messages_api::encode_request(&back).unwrap();
    assert_eq!(text_at(&again.body, "/messages/1/content/0/input"), INPUT);
    // The body the transport splices (without `model` and `stream`) holds the same text.
    let body = messages_api::encode_body(&back.request).unwrap();
    assert!(serde_json::to_string(&body).unwrap().contains(INPUT));
}

async fn round_trip(store: &dyn SessionStore, what: &str) {
    let request = fixture();
    let info = store.create(NewSession::new(MODEL)).await.unwrap();
    let entries =
        request.messages.iter().cloned().map(|m| Entry::Message(HistoryMessage::from(m))).collect();
    store.append(info.id, Append::new(info.version, entries)).await.unwrap();
    let session: Session = store.load(info.id).await.unwrap();
    let mut loaded = request.clone();
    loaded.messages = session.messages().into_iter().map(|m| m.message).collect();
    assert_converse_exact(&loaded, what);
    let export = verbatim::store::export::export_body(&session, Dialect::Converse).unwrap();
    assert_eq!(text_at(&export, "/messages/1/content/0/toolUse/input"), INPUT, "{what} export");
}

#[tokio::test]
async fn memory_and_sled_stores_keep_the_text_of_numbers() {
    round_trip(&MemoryStore::new(), "memory").await;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        round_trip(&store, "sled").await;
    }
    // Read again after a reopen: from disk, not from a cache.
    let store = SledStore::open(dir.path()).unwrap();
    let page = store.list(&Default::default()).await.unwrap();
    let session = store.load(page.sessions[0].id).await.unwrap();
    let messages: Vec<_> = session.messages().into_iter().map(|m| m.message).collect();
    let mut request = fixture();
    request.messages = messages;
    assert_converse_exact(&request, "sled reopened");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_the_text_of_numbers() {
    let Some(schema) =
        crate::postgres::Schema::for_test("postgres_keeps_the_text_of_numbers", "verbatim_numbers")
    else {
        return;
    };
    let url = schema.url.clone();
    let options =
        verbatim::PostgresOptions { schema: Some(schema.name.clone()), ..Default::default() };
    let store = verbatim::PostgresStore::connect_with(&url, options).await.unwrap();
    round_trip(&store, "postgres").await;
}

#[test]
fn a_tool_reads_its_input_into_typed_fields_as_before() {
    #[derive(serde::Deserialize)]
    struct Args {
        big: f64,
        neg0: f64,
        f: f64,
        list: Vec<f64>,
    }
    let request = fixture();
    let verbatim::ContentBlock::ToolUse(call) = &request.messages[1].content[0] else {
        panic!("the fixture's second message holds the tool call")
    };
    let args: Args = serde_json::from_value(call.input.clone()).unwrap();
    assert_eq!(args.big, 1.2345678901234568e22);
    assert!(args.neg0 == 0.0 && args.neg0.is_sign_negative());
    assert_eq!((args.f, args.list[0], args.list[1]), (1.5, 0.1, -12.5));
    assert!(args.list[2].is_infinite());
}
