//! The store's own record of a repair: what the engine needs to replay a fix it decided once,
//! in the store's schema rather than the assembler's.
//!
//! The assembler's `Fix`, `Action`, `Rule` and `Diagnostic` may be renamed or reshaped; a
//! [`FixRecord`] may not, since records written years ago must still read. The engine converts
//! between the two. Rule ids, severities and paths are kept as the text they were written as:
//! the store does not interpret them, and replay only needs the action and its guard.
//!
//! This is version [`FIX_RECORD_VERSION`] of the shape, the one written since fixes were first
//! recorded (a `repair` entry with no `version` key). A new shape would be a new version, read
//! beside this one; a `repair` entry naming a version this build does not know is refused
//! rather than misread.

use serde::{Deserialize, Serialize};
use verbatim_model::{
    ContentBlock, InferenceConfig, Message, SystemPrompt, ThinkingConfig, Tool, ToolChoice,
};

/// The version of [`FixRecord`] this build writes and reads.
pub const FIX_RECORD_VERSION: u32 = 1;

/// One recorded fix: the violation found (rule, severity, path, message) and the change made.
/// Written as `{"rule", "severity", "path", "message", "action", "guard"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixRecord {
    /// The stable id of the rule broken (`roles.alternate`).
    pub rule: String,
    /// How bad it was: `error` or `warning`.
    pub severity: String,
    /// Where, in the request as it was when the fix applied (`messages[3].role`).
    pub path: String,
    /// What was wrong.
    pub message: String,
    /// The change made.
    pub action: ActionRecord,
    /// For a history change: a digest of the messages it read, so replaying it on another
    /// history fails instead of editing the wrong message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

/// One recorded change to a request, tagged by `op`. Message and block indexes refer to the
/// request as it was when the change applied (after the changes before it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ActionRecord {
    /// Remove one block.
    DropBlock {
        /// Message index.
        message: usize,
        /// Block index.
        block: usize,
        /// The kind of block expected there.
        kind: String,
    },
    /// Remove every thinking and redacted-thinking block of a message.
    DropThinking {
        /// Message index.
        message: usize,
    },
    /// Remove a message.
    DropMessage {
        /// Message index.
        message: usize,
    },
    /// Append the content of the next message (same role) to this one.
    MergeWithNext {
        /// Message index.
        message: usize,
    },
    /// Move the tool results of a user message to its front.
    ResultsFirst {
        /// Message index.
        message: usize,
    },
    /// Insert a block.
    InsertBlock {
        /// Message index.
        message: usize,
        /// Where the block goes.
        block: usize,
        /// The block.
        content: ContentBlock,
    },
    /// Insert a message.
    InsertMessage {
        /// Where the message goes.
        message: usize,
        /// The message.
        content: Message,
    },
    /// Replace one block.
    ReplaceBlock {
        /// Message index.
        message: usize,
        /// Block index.
        block: usize,
        /// The kind of block expected there.
        kind: String,
        /// The new block.
        content: ContentBlock,
    },
    /// Remove the keys the API does not define from a message.
    DropMessageUnmapped {
        /// Message index.
        message: usize,
    },
    /// Set the thinking setting of one request (not replayed: it changes no history).
    SetThinking {
        /// The new setting.
        thinking: Option<ThinkingConfig>,
    },
    /// Set the inference parameters of one request (not replayed).
    SetInference {
        /// The new parameters.
        inference: Option<InferenceConfig>,
    },
    /// Set `top_k` for one request (not replayed).
    SetTopK {
        /// The new value.
        top_k: Option<u32>,
    },
    /// Set the tools of one request (not replayed).
    SetTools {
        /// The new tools.
        tools: Option<Vec<Tool>>,
    },
    /// Set the tool choice of one request (not replayed).
    SetToolChoice {
        /// The new choice.
        tool_choice: Option<ToolChoice>,
    },
    /// Set the system prompt of one request (not replayed).
    SetSystem {
        /// The new system prompt.
        system: Option<SystemPrompt>,
    },
    /// Set the beta flags of one request (not replayed).
    SetBeta {
        /// The new flags.
        beta: Option<Vec<String>>,
    },
}
