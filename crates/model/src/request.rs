//! A request to a model: the conversation plus the configuration it is sent with.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::{
    CachePoint, ContextManagement, JsonMap, Message, RawMember, TextBlock, UnknownBlock, Unmapped,
};

/// A request in canonical form, whichever dialect it came from or goes to.
///
/// Optional fields keep the difference between "absent" and "present but empty" (`None` versus
/// `Some(vec![])`), because the wire does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The conversation.
    pub messages: Vec<Message>,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Tool definitions (and the cache points between them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model may choose tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Inference parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceConfig>,
    /// Top-k sampling (Anthropic `top_k`; Converse sends it in `additionalModelRequestFields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Extended thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Anthropic beta flags (`anthropic_beta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<Vec<String>>,
    /// Fields passed to the model natively: the rest of Converse's
    /// `additionalModelRequestFields`, which are top-level keys of an Anthropic body.
    /// `Some(empty)` records an empty `additionalModelRequestFields` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_fields: Option<JsonMap>,
    /// Request keys of one dialect with no counterpart in the other (Converse
    /// `guardrailConfig`, `requestMetadata`, ...).
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// The settings a session sends with every request besides its model, system prompt, tools
/// and thinking: sampling (`inferenceConfig` / `temperature`, `top_p`, `top_k`,
/// `stop_sequences`, `max_tokens`), the tool choice, model-native fields
/// (`additionalModelRequestFields`, or the top-level keys of an Anthropic body), and the
/// request keys kept as they came ([`Request::unmapped`]: Converse `serviceTier`,
/// `performanceConfig`, `requestMetadata`, `guardrailConfig`, `outputConfig`, Anthropic
/// `output_config`, `service_tier`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Inference parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceConfig>,
    /// Anthropic's `top_k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// How the model may choose tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Fields passed to the model natively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_fields: Option<JsonMap>,
    /// Request keys of one dialect, kept as they came.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
    /// Server compaction and context editing (Anthropic `context_management`), sent on
    /// InvokeModel and the Messages API with the beta flags its edits take; Converse has no
    /// such field, and a session that sets it refuses to run there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<ContextManagement>,
}

impl Settings {
    /// The settings `request` is sent with.
    pub fn of(request: &Request) -> Settings {
        Settings {
            inference: request.inference.clone(),
            top_k: request.top_k,
            tool_choice: request.tool_choice.clone(),
            model_fields: request.model_fields.clone(),
            unmapped: request.unmapped.clone(),
            context_management: None,
        }
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Settings::default()
    }
}

/// The system prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemPrompt {
    /// A list of blocks (the only form Converse has).
    Blocks(Vec<SystemBlock>),
    /// Anthropic's shorthand: one string.
    Text(String),
}

/// One block of a system prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SystemBlock {
    /// Text.
    Text(TextBlock),
    /// Guardrail content (Converse only, kept as sent).
    GuardContent(RawMember),
    /// A prompt-cache checkpoint.
    CachePoint(CachePoint),
    /// A block kind this version does not know.
    Unknown(UnknownBlock),
}

/// One entry of the tool list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tool {
    /// A tool the caller implements.
    Spec(ToolSpec),
    /// A tool the provider runs (Converse `systemTool`).
    System(SystemTool),
    /// A prompt-cache checkpoint after the preceding tools.
    CachePoint(CachePoint),
    /// A tool kind this version does not know (an Anthropic server tool, say).
    Unknown(UnknownBlock),
}

/// A tool the caller implements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON schema of its input, kept as given.
    pub input_schema: Value,
    /// Strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// A tool the provider runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemTool {
    /// Its name.
    pub name: String,
}

/// How the model may choose tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolChoice {
    /// The choice.
    pub kind: ToolChoiceKind,
    /// Anthropic's `disable_parallel_tool_use` (no Converse counterpart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

impl ToolChoice {
    /// A choice without further options.
    pub fn new(kind: ToolChoiceKind) -> ToolChoice {
        ToolChoice { kind, disable_parallel_tool_use: None }
    }
}

/// The tool choices the dialects know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoiceKind {
    /// The model decides.
    Auto,
    /// The model must call some tool.
    Any,
    /// The model must call this tool.
    Tool {
        /// The tool's name.
        name: String,
    },
    /// The model must not call tools (Anthropic only).
    None,
}

/// Inference parameters (Converse `inferenceConfig`).
///
/// Numbers that may be written either as integers or as decimals are kept as JSON numbers, so
/// `1` stays `1` and `1.0` stays `1.0`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InferenceConfig {
    /// The most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<Number>,
    /// Sequences that stop generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
}

/// The extended-thinking setting of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingConfig {
    /// Disabled, enabled with a budget, or adaptive.
    pub mode: ThinkingMode,
    /// `summarized` or `omitted`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Other keys of the thinking object (`block_binding`, ...), passed through as given.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub extra: JsonMap,
}

impl ThinkingConfig {
    /// A setting with no display choice and no extra keys.
    pub fn new(mode: ThinkingMode) -> ThinkingConfig {
        ThinkingConfig { mode, display: None, extra: JsonMap::new() }
    }
}

/// Whether and how the model thinks before answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingMode {
    /// No thinking.
    Disabled,
    /// Thinking with a token budget.
    Enabled {
        /// Tokens the model may spend thinking.
        budget_tokens: u32,
    },
    /// The model decides how much to think.
    Adaptive {
        /// How hard to try (`output_config.effort`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effort: Option<Effort>,
    },
}

/// How much effort an adaptive-thinking model spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `xhigh`.
    Xhigh,
    /// `max`.
    Max,
    /// A level this version does not know, kept as written.
    #[serde(untagged)]
    Other(String),
}

impl Effort {
    /// Parses a wire value; unknown levels are kept as [`Effort::Other`].
    pub fn parse(s: &str) -> Effort {
        match s {
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::Xhigh,
            "max" => Effort::Max,
            other => Effort::Other(other.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::Xhigh => "xhigh",
            Effort::Max => "max",
            Effort::Other(s) => s,
        }
    }
}
