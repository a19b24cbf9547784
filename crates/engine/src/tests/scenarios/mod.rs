//! The failure scenarios of peers.md §4 that concern the engine, one test each, named after
//! the scenario (its number in a comment).
//!
//! By family: `tool_results.rs` (crashes around tool calls, missing, stale and duplicate
//! results, a second writer), `replayed_blocks.rs` (thinking, signature-only, redacted and
//! interleaved blocks replayed as received), `streams.rs` (streams cut mid-reply) and
//! `thinking.rs` (thinking switched on, off or to another model, unsigned or altered thinking,
//! a changed prefix). The histories other writers leave are built with the helpers here.

mod replayed_blocks;
mod streams;
mod thinking;
mod tool_results;

use serde_json::json;
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, Message, Provenance, Role, SessionId, ToolResult,
    ToolResultBlock, ToolResultContent, ToolUse, ToolUseId,
};
use verbatim_store::{Append, Entry, SessionStore as _};

use super::*;

/// Appends `messages` to a session as another writer (an import, an older version) would.
async fn write(rig: &Rig, id: SessionId, messages: Vec<HistoryMessage>) {
    let store = rig.store();
    for message in messages {
        let version = store.info(id).await.unwrap().version;
        store.append(id, Append::new(version, vec![Entry::Message(message)])).await.unwrap();
    }
}

fn user(blocks: Vec<ContentBlock>) -> HistoryMessage {
    Message::new(Role::User, blocks).into()
}

fn assistant(blocks: Vec<ContentBlock>) -> HistoryMessage {
    HistoryMessage {
        message: Message::new(Role::Assistant, blocks),
        provenance: Some(Provenance::new(MODEL, Api::Converse)),
    }
}

fn tool_use(id: &str) -> ContentBlock {
    ContentBlock::ToolUse(ToolUse {
        id: ToolUseId::new(id),
        name: "get_weather".into(),
        input: json!({"city": "Lyon"}),
        kind: None,
        unmapped: Default::default(),
    })
}

fn tool_result(id: &str, text: &str) -> ContentBlock {
    ContentBlock::ToolResult(ToolResult {
        tool_use_id: ToolUseId::new(id),
        content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text { text: text.into() }])),
        status: None,
        unmapped: Default::default(),
    })
}

/// The tool results of a message: (id, is error, text).
fn results(message: &Message) -> Vec<(String, bool, String)> {
    message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolResult(result) => Some((
                result.tool_use_id.as_str().to_owned(),
                result.status == Some(verbatim_model::ToolResultStatus::Error),
                serde_json::to_string(&result.content).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

fn repairs(session: &verbatim_store::Session) -> usize {
    session.records.iter().filter(|r| matches!(r.entry, Entry::Repair { .. })).count()
}
