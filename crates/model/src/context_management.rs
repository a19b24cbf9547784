//! Server compaction and context editing: the Anthropic request member `context_management`,
//! which InvokeModel and the Messages API carry and Converse has no field for.
//!
//! The names are the first-party Anthropic API's: nothing from Bedrock records them (spec
//! messages-api F6; F1 records compaction and context editing accepted on the Messages API).
//! They were read from the Anthropic SDKs' generated types (`BetaCompact20260112Edit`,
//! `BetaClearToolUses20250919Edit`, `BetaClearThinking20251015Edit`,
//! `BetaContextManagementResponse`, `BetaCompactionBlock`) and the compaction and context
//! editing documentation:
//!
//! - the request member is `{"edits": [...]}`; an edit is an object tagged by `type`:
//!   `compact_20260112` (`trigger`, `instructions`, `pause_after_compaction`; beta
//!   `compact-2026-01-12`), `clear_tool_uses_20250919` (`trigger`, `keep`, `clear_at_least`,
//!   `exclude_tools`, `clear_tool_inputs`) and `clear_thinking_20251015` (`keep`), the two
//!   clearing edits under beta `context-management-2025-06-27`; `clear_thinking_20251015` must
//!   come first in `edits`; a trigger is `{"type": "input_tokens", "value": N}`;
//! - the reply carries a top-level `context_management` whose `applied_edits` lists what was
//!   applied, and, when compaction ran, a `compaction` content block (`content`: the summary,
//!   `encrypted_content`: opaque, to be sent back as received) at the start of its content.
//!
//! [`ContextManagement`] is the member as it is sent: a JSON object kept as given, so a key
//! this version does not name still goes out. Its builders write the shapes above.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{ContentBlock, Dialect, JsonMap};

/// The request key (top level of an Anthropic body).
pub const CONTEXT_MANAGEMENT_KEY: &str = "context_management";
/// The edit type of server compaction.
pub const COMPACT_EDIT: &str = "compact_20260112";
/// The edit type that clears old tool results.
pub const CLEAR_TOOL_USES_EDIT: &str = "clear_tool_uses_20250919";
/// The edit type that clears old thinking.
pub const CLEAR_THINKING_EDIT: &str = "clear_thinking_20251015";
/// The beta flag server compaction takes.
pub const COMPACT_BETA: &str = "compact-2026-01-12";
/// The beta flag the clearing edits take.
pub const CONTEXT_MANAGEMENT_BETA: &str = "context-management-2025-06-27";
/// The `type` of the content block compaction answers with.
pub const COMPACTION_BLOCK: &str = "compaction";

/// The `context_management` member of a request, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContextManagement(pub JsonMap);

impl Default for ContextManagement {
    fn default() -> ContextManagement {
        ContextManagement::new()
    }
}

impl ContextManagement {
    /// No edits yet: `{"edits": []}`.
    pub fn new() -> ContextManagement {
        ContextManagement(JsonMap::from_iter([("edits".to_owned(), Value::Array(Vec::new()))]))
    }

    /// The member as a JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// Adds server compaction: once the input passes `trigger` tokens (the API's default,
    /// 150,000, when `None`), earlier turns are summarised into a `compaction` block,
    /// following `instructions` when given.
    pub fn compact(self, trigger: Option<u64>, instructions: Option<&str>) -> ContextManagement {
        let mut edit = JsonMap::from_iter([("type".to_owned(), json!(COMPACT_EDIT))]);
        if let Some(trigger) = trigger {
            edit.insert("trigger".to_owned(), input_tokens(trigger));
        }
        if let Some(instructions) = instructions {
            edit.insert("instructions".to_owned(), json!(instructions));
        }
        self.push(Value::Object(edit))
    }

    /// Adds tool-result clearing: once the input passes `trigger` tokens, tool results but
    /// the last `keep` are replaced by a placeholder (the API's defaults when `None`).
    pub fn clear_tool_uses(self, trigger: Option<u64>, keep: Option<u64>) -> ContextManagement {
        let mut edit = JsonMap::from_iter([("type".to_owned(), json!(CLEAR_TOOL_USES_EDIT))]);
        if let Some(trigger) = trigger {
            edit.insert("trigger".to_owned(), input_tokens(trigger));
        }
        if let Some(keep) = keep {
            edit.insert("keep".to_owned(), json!({"type": "tool_uses", "value": keep}));
        }
        self.push(Value::Object(edit))
    }

    /// Adds thinking clearing: thinking of assistant turns but the last `keep_turns` is left
    /// out (`None`: the API's default). Put first in `edits`, as the API requires.
    pub fn clear_thinking(mut self, keep_turns: Option<u64>) -> ContextManagement {
        let mut edit = JsonMap::from_iter([("type".to_owned(), json!(CLEAR_THINKING_EDIT))]);
        if let Some(keep) = keep_turns {
            edit.insert("keep".to_owned(), json!({"type": "thinking_turns", "value": keep}));
        }
        self.edits_mut().insert(0, Value::Object(edit));
        self
    }

    /// Adds an edit as given.
    pub fn push(mut self, edit: Value) -> ContextManagement {
        self.edits_mut().push(edit);
        self
    }

    fn edits_mut(&mut self) -> &mut Vec<Value> {
        let edits = self.0.entry("edits").or_insert_with(|| Value::Array(Vec::new()));
        if !edits.is_array() {
            *edits = Value::Array(Vec::new());
        }
        edits.as_array_mut().expect("made an array")
    }

    /// The `type` of each edit, in order.
    pub fn edit_types(&self) -> Vec<&str> {
        let edits = self.0.get("edits").and_then(Value::as_array);
        edits.into_iter().flatten().filter_map(|e| e.get("type")?.as_str()).collect()
    }

    /// The beta flags the edits take, in a fixed order: [`COMPACT_BETA`] for compaction,
    /// [`CONTEXT_MANAGEMENT_BETA`] for the clearing edits.
    pub fn betas(&self) -> Vec<&'static str> {
        let types = self.edit_types();
        let mut betas = Vec::new();
        if types.contains(&COMPACT_EDIT) {
            betas.push(COMPACT_BETA);
        }
        if types.iter().any(|t| *t == CLEAR_TOOL_USES_EDIT || *t == CLEAR_THINKING_EDIT) {
            betas.push(CONTEXT_MANAGEMENT_BETA);
        }
        betas
    }
}

fn input_tokens(value: u64) -> Value {
    json!({"type": "input_tokens", "value": value})
}

impl ContentBlock {
    /// True for an Anthropic `compaction` block (kept raw, as an unknown block, exactly as
    /// received: its summary and `encrypted_content` are never rebuilt).
    pub fn is_compaction(&self) -> bool {
        match self {
            ContentBlock::Unknown(block) => {
                block.dialect == Dialect::Anthropic
                    && block.json.get("type").and_then(Value::as_str) == Some(COMPACTION_BLOCK)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TextBlock, UnknownBlock};

    #[test]
    fn the_builders_write_the_first_party_shapes_clear_thinking_first() {
        let member = ContextManagement::new()
            .compact(Some(100_000), Some("Keep file names."))
            .clear_tool_uses(Some(50_000), Some(3))
            .clear_thinking(Some(2));
        assert_eq!(
            member.to_value(),
            json!({"edits": [
                {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 2}},
                {"type": "compact_20260112", "trigger": {"type": "input_tokens", "value": 100000},
                 "instructions": "Keep file names."},
                {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 50000},
                 "keep": {"type": "tool_uses", "value": 3}}]})
        );
        assert_eq!(member.betas(), [COMPACT_BETA, CONTEXT_MANAGEMENT_BETA]);
        assert_eq!(ContextManagement::new().compact(None, None).betas(), [COMPACT_BETA]);
        assert!(ContextManagement::new().betas().is_empty());
        // Stored as the member itself, read back equal.
        let text = serde_json::to_string(&member).unwrap();
        assert_eq!(serde_json::from_str::<ContextManagement>(&text).unwrap(), member);
    }

    #[test]
    fn a_compaction_block_is_an_anthropic_unknown_block_of_its_type() {
        let raw = |dialect, json| ContentBlock::Unknown(UnknownBlock { dialect, json });
        let block = json!({"type": "compaction", "content": "s", "encrypted_content": "e"});
        assert!(raw(Dialect::Anthropic, block.clone()).is_compaction());
        assert!(!raw(Dialect::Converse, block).is_compaction());
        assert!(!raw(Dialect::Anthropic, json!({"type": "other"})).is_compaction());
        assert!(!ContentBlock::Text(TextBlock::new("compaction")).is_compaction());
    }
}
