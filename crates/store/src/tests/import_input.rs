//! What an import refuses before storing anything: a model id Bedrock refuses (or that would
//! put a control character on a terminal), and input whose JSON error is named for what it is.

use verbatim_model::Dialect;

use crate::export::{export_session, import};
use crate::{MemoryStore, NewSession, SessionStore};

async fn exported() -> (MemoryStore, serde_json::Value) {
    let store = MemoryStore::new();
    let info = store.create(NewSession::new("us.anthropic.claude-sonnet-4-20250514-v1:0")).await;
    let session = store.load(info.unwrap().id).await.unwrap();
    let document = export_session(&session, Dialect::Converse).unwrap();
    (MemoryStore::new(), document)
}

#[tokio::test]
async fn an_import_with_a_model_id_holding_a_control_character_is_refused() {
    let (store, mut document) = exported().await;
    document["session"]["model"] = "anthropic.claude\u{1b}[2J".into();
    let error = import(&store, document.to_string().as_bytes()).await.unwrap_err().to_string();
    assert!(error.contains("session.model"), "{error}");
    assert!(error.contains("control character \\u{1b} at character 17"), "{error}");
    assert!(!error.contains('\u{1b}'), "{error}");
    document["session"]["model"] = "m".repeat(2049).into();
    let error = import(&store, document.to_string().as_bytes()).await.unwrap_err().to_string();
    assert!(error.contains("2049 characters long"), "{error}");
    assert!(store.list(&Default::default()).await.unwrap().sessions.is_empty());
}

#[tokio::test]
async fn an_import_starting_with_a_byte_order_mark_says_so() {
    let (store, document) = exported().await;
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(document.to_string().as_bytes());
    let error = import(&store, &bytes).await.unwrap_err().to_string();
    assert!(error.contains("starts with a UTF-8 byte order mark; remove it"), "{error}");
    let lone = document.to_string().replacen("\"session\"", "\"\\ud800\":1,\"session\"", 1);
    let error = import(&store, lone.as_bytes()).await.unwrap_err().to_string();
    assert!(error.contains("lone UTF-16 surrogate \\ud800"), "{error}");
}

#[tokio::test]
async fn an_anthropic_message_stored_with_string_content_exports_as_stored() {
    use crate::{Append, Entry};
    let store = MemoryStore::new();
    let info = store.create(NewSession::new("us.anthropic.claude-sonnet-4-20250514-v1:0")).await;
    let info = info.unwrap();
    let wire = br#"[{"role":"user","content":"What is 2 + 2?"}]"#;
    let messages = verbatim_protocol::anthropic::decode_messages(wire).unwrap();
    let entries = messages.into_iter().map(|m| Entry::Message(m.into())).collect();
    store.append(info.id, Append::new(info.version, entries)).await.unwrap();
    let session = store.load(info.id).await.unwrap();
    let document = export_session(&session, Dialect::Anthropic).unwrap();
    assert_eq!(document["records"][0]["message"]["content"], "What is 2 + 2?");
    let body = crate::export::export_body(&session, Dialect::Anthropic).unwrap();
    assert_eq!(body["messages"][0]["content"], "What is 2 + 2?");
    // Converse has no string form: there it is a list.
    let body = crate::export::export_body(&session, Dialect::Converse).unwrap();
    assert_eq!(body["messages"][0]["content"][0]["text"], "What is 2 + 2?");
}
