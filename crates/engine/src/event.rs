//! What a turn reports as it goes, and what it returns.

use serde_json::Value;
use verbatim_model::{Message, StopReason, ToolUseId, Usage};

/// Something that happened during a turn, reported as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Text the model produced (a streamed fragment, or a whole block when not streaming).
    Text(String),
    /// Thinking text the model produced (a fragment or a whole block).
    Thinking(String),
    /// The model asked for a tool call; it is stored. It is settled next, unless the step
    /// limit ends the turn first (then `resume` settles it).
    ToolCall {
        /// The call's id.
        id: ToolUseId,
        /// The tool's name.
        name: String,
        /// The input, as the model produced it.
        input: Value,
    },
    /// A tool call was settled: run, taken from the log, or answered as interrupted.
    ToolResult {
        /// The call's id.
        id: ToolUseId,
        /// The tool's name.
        name: String,
        /// Whether the result is an error.
        is_error: bool,
        /// How it was settled.
        settled: Settled,
    },
    /// A model call finished and its message is stored.
    Step {
        /// The step number within this turn, from 1.
        step: u32,
        /// Why the model stopped.
        stop_reason: Option<StopReason>,
        /// The call's usage.
        usage: Option<Usage>,
    },
}

/// How a tool call's result was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The tool ran now.
    Ran,
    /// The log already held its end (it completed or failed before a crash): not run again.
    FromLog,
    /// It started before a crash and never finished, and the tool is not idempotent: the
    /// model is told it was interrupted.
    Interrupted,
    /// No tool of that name is registered.
    Unknown,
}

/// What a turn returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The last assistant message stored.
    pub message: Message,
    /// Why the model stopped.
    pub stop_reason: Option<StopReason>,
    /// Token usage summed over the model calls of this turn.
    pub usage: Usage,
    /// The model calls made.
    pub steps: u32,
    /// False when the step limit stopped the tool loop before the model finished: the
    /// session's last message asks for tool calls, and `resume` continues.
    pub complete: bool,
}

impl Reply {
    /// The text blocks of the last message, joined.
    pub fn text(&self) -> String {
        self.message.text()
    }
}
