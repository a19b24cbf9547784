//! What a model answered.

use serde::{Deserialize, Serialize};

use crate::{JsonMap, Message, Unmapped};

/// A whole (non-streamed) response in canonical form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The message id (Anthropic `id`; Converse sends none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model that answered (Anthropic `model`; Converse sends none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The assistant message.
    pub message: Message,
    /// Why generation stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Timing (Converse `metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Fields the model returned natively: Converse `additionalModelResponseFields`, which are
    /// the other top-level keys of an Anthropic response (`stop_sequence`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_fields: Option<JsonMap>,
    /// Response keys of one dialect with no counterpart in the other.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
    /// What a streamed reply carried that this version does not read, each kept raw (an
    /// event of an unknown type as its JSON text, a block of an unknown kind as an `Unknown`
    /// content block) and named here. Empty for a reply read whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The model wants tool results.
    ToolUse,
    /// The token limit was reached.
    MaxTokens,
    /// A stop sequence was produced.
    StopSequence,
    /// A guardrail intervened.
    GuardrailIntervened,
    /// Content was filtered.
    ContentFiltered,
    /// The model produced malformed output.
    MalformedModelOutput,
    /// The model produced a malformed tool use.
    MalformedToolUse,
    /// The context window was exceeded.
    ModelContextWindowExceeded,
    /// A long-running server tool paused the turn (Anthropic).
    PauseTurn,
    /// The model refused (Anthropic).
    Refusal,
    /// A reason this version does not know, kept as written.
    #[serde(untagged)]
    Other(String),
}

impl StopReason {
    /// Parses a wire value; unknown reasons are kept as [`StopReason::Other`].
    pub fn parse(s: &str) -> StopReason {
        match s {
            "end_turn" => StopReason::EndTurn,
            "tool_use" => StopReason::ToolUse,
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            "guardrail_intervened" => StopReason::GuardrailIntervened,
            "content_filtered" => StopReason::ContentFiltered,
            "malformed_model_output" => StopReason::MalformedModelOutput,
            "malformed_tool_use" => StopReason::MalformedToolUse,
            "model_context_window_exceeded" => StopReason::ModelContextWindowExceeded,
            "pause_turn" => StopReason::PauseTurn,
            "refusal" => StopReason::Refusal,
            other => StopReason::Other(other.to_owned()),
        }
    }

    /// The wire value (both dialects share the spelling).
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::GuardrailIntervened => "guardrail_intervened",
            StopReason::ContentFiltered => "content_filtered",
            StopReason::MalformedModelOutput => "malformed_model_output",
            StopReason::MalformedToolUse => "malformed_tool_use",
            StopReason::ModelContextWindowExceeded => "model_context_window_exceeded",
            StopReason::PauseTurn => "pause_turn",
            StopReason::Refusal => "refusal",
            StopReason::Other(s) => s,
        }
    }
}

/// Token counts of one response.
///
/// `input_tokens` counts only the uncached part of the prompt; cache reads and writes are
/// counted separately.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// The total Converse reports (input + cache read + cache write + output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
    /// Keys this version does not interpret (Converse `serverToolUsage`, the `*Count` aliases,
    /// Anthropic `cache_creation`, ...).
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// `input 1200, output 300, cache read 5000, cache write 0 tokens`: the counts, zero when
/// not reported.
impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: Option<u64>| v.unwrap_or(0);
        write!(
            f,
            "input {}, output {}, cache read {}, cache write {} tokens",
            n(self.input_tokens),
            n(self.output_tokens),
            n(self.cache_read_input_tokens),
            n(self.cache_write_input_tokens)
        )
    }
}

impl Usage {
    /// Adds each count of `other` to this one (a count stays `None` until one is known).
    /// Unmapped keys are not summed.
    pub fn add(&mut self, other: &Usage) {
        let add = |sum: &mut Option<u64>, n: Option<u64>| {
            if let Some(n) = n {
                *sum = Some(sum.unwrap_or(0) + n);
            }
        };
        add(&mut self.input_tokens, other.input_tokens);
        add(&mut self.output_tokens, other.output_tokens);
        add(&mut self.total_tokens, other.total_tokens);
        add(&mut self.cache_read_input_tokens, other.cache_read_input_tokens);
        add(&mut self.cache_write_input_tokens, other.cache_write_input_tokens);
    }
}

/// Timing of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Latency the service measured, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}
