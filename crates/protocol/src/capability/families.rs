//! The rows of the models Bedrock users run through Converse besides Claude: Amazon Nova,
//! Meta Llama, Mistral and Pixtral, DeepSeek, OpenAI gpt-oss, Qwen and Moonshot Kimi. Each
//! field a row grants or refuses has its evidence beside it; a refusal is an error only where a
//! recorded answer or an AWS page says Bedrock refuses it, otherwise the row is of the
//! conservative kind (`known: false`), whose refusals are warnings.
//!
//! Sources named below: the AWS model pages (`model-parameters-openai.html`,
//! `model-parameters-deepseek.html`, the Nova 2 user guide's Converse and extended-thinking
//! pages) and issue threads that quote Bedrock's answer.

use verbatim_model::{Effort, ThinkingConfig, ThinkingMode};

use super::{CLAUDE, CONSERVATIVE, Capabilities, NO_THINKING};

/// How a family's reasoning is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningSetting {
    /// Anthropic's `thinking` (Claude), judged by the row's thinking modes.
    Anthropic,
    /// `additionalModelRequestFields.reasoningConfig`: `{"type": "enabled"|"disabled",
    /// "maxReasoningEffort": "low"|"medium"|"high"}` (Amazon Nova 2; off by default).
    NovaReasoningConfig,
    /// `additionalModelRequestFields.reasoning_effort`: `low`, `medium` or `high` (OpenAI
    /// gpt-oss, which always reasons).
    ReasoningEffort,
    /// Always reasons and takes no setting for it (DeepSeek R1).
    AlwaysOn,
    /// Takes no reasoning setting: `reasoningConfig` is refused (Amazon Nova 1).
    NoneTaken,
    /// Not recorded either way.
    NotKnown,
}

impl ReasoningSetting {
    /// The `additionalModelRequestFields` key of the family's own setting, when it has one.
    pub fn field(self) -> Option<&'static str> {
        match self {
            ReasoningSetting::NovaReasoningConfig => Some(NOVA_REASONING_CONFIG),
            ReasoningSetting::ReasoningEffort => Some(REASONING_EFFORT),
            _ => None,
        }
    }
}

/// Nova 2's reasoning setting.
pub const NOVA_REASONING_CONFIG: &str = "reasoningConfig";
/// gpt-oss's reasoning setting.
pub const REASONING_EFFORT: &str = "reasoning_effort";
/// The efforts both families' settings take.
pub const EFFORTS: &[&str] = &["low", "medium", "high"];

/// Whether a user message on Converse may hold tool results beside other blocks (text, an
/// image, a document) in the same turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsBeside {
    /// Taken: Claude 3.5 and later, where the results come first and the rest after them
    /// (bedrock-rules R3.4: "Claude accepts toolResult followed by text in the same turn";
    /// the case `tool.results_first.text_before_result`'s near miss).
    Taken,
    /// Refused: "messages.4.content: Conversation blocks and tool result blocks cannot be
    /// provided in the same turn." (recorded for Llama 4 Maverick:
    /// strands-agents/harness-sdk#1223; reported for Claude 3 Opus on Converse:
    /// BerriAI/litellm#6053).
    Refused,
    /// Not recorded either way (langchain-ai/langchain-aws#141 reports the refusal without
    /// its model): a warning.
    NotKnown,
}

/// What a model takes back of the reasoning in its history (Converse `reasoningContent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayedReasoning {
    /// Signed reasoning only: an unsigned block is refused ("…thinking.signature: Field
    /// required", R1.8). Claude.
    Signed,
    /// Unsigned reasoning, as the family returns it; the `signature` field is refused ("This
    /// model doesn't support the reasoningContent.reasoningText.signature field. Remove
    /// reasoningContent.reasoningText.signature and try again."). `any_signature` says
    /// whether a signature of any value is recorded refused, or only an empty one.
    Unsigned {
        /// Recorded refused with any value (gpt-oss), not only empty (Nova).
        any_signature: bool,
    },
    /// No reasoning at all: "User messages cannot contain reasoning content. Please remove the
    /// reasoning content and try again." (DeepSeek R1).
    Refused,
    /// Not recorded either way: what is sent back is a warning, left in place.
    NotKnown,
}

/// The effort a thinking setting asks for, in the words of the families that take an effort:
/// an adaptive setting's own effort (`xhigh` and `max` are `high`, the most they take; none
/// is `medium`, gpt-oss's default), a budget by its size (under 4,096 tokens `low`, under
/// 16,384 `medium`, else `high`). `None` for `disabled`.
pub fn effort_for(thinking: &ThinkingConfig) -> Option<&'static str> {
    Some(match &thinking.mode {
        ThinkingMode::Disabled => return None,
        ThinkingMode::Adaptive { effort: Some(Effort::Low) } => "low",
        ThinkingMode::Adaptive { effort: Some(Effort::High | Effort::Xhigh | Effort::Max) } => {
            "high"
        }
        ThinkingMode::Adaptive { .. } => "medium",
        ThinkingMode::Enabled { budget_tokens } if *budget_tokens < 4096 => "low",
        ThinkingMode::Enabled { budget_tokens } if *budget_tokens < 16_384 => "medium",
        ThinkingMode::Enabled { .. } => "high",
    })
}

/// A row of the conservative kind for another provider's family: what it does not grant is a
/// warning, never an error (Anthropic's `thinking` too, see `other_provider`), unless a field
/// below says Bedrock was recorded refusing it.
const fn other(family: &'static str) -> Capabilities {
    Capabilities {
        family,
        replayed_reasoning: ReplayedReasoning::NotKnown,
        reasoning: ReasoningSetting::NotKnown,
        ..CONSERVATIVE
    }
}

/// `toolResult.status` accepted: pydantic-ai's Bedrock cassettes, HTTP 200 (the case file
/// `tool_result.status.unknown_model.json`), for Llama 4 Maverick, Pixtral Large and Kimi K2.
const fn with_status(row: Capabilities) -> Capabilities {
    Capabilities { tool_result_status: true, ..row }
}

/// Llama 4: no reasoning setting; images taken (multimodal). Two user messages in a row:
/// some recorded 200s, a refusal reported (the case `roles.alternate.two_users_not_claude`).
pub(super) const LLAMA_4: Capabilities = Capabilities {
    // Tool results beside text in one user message: refused (`ResultsBeside::Refused`).
    results_beside: ResultsBeside::Refused,
    ..with_status(other("meta-llama4"))
};
pub(super) const LLAMA: Capabilities = other("meta-llama");
pub(super) const PIXTRAL: Capabilities = with_status(other("mistral-pixtral"));
pub(super) const MISTRAL: Capabilities = other("mistral");
/// Kimi K2: no reasoning setting recorded.
pub(super) const KIMI: Capabilities = with_status(other("moonshot-kimi"));
/// Kimi K2 Thinking: always reasons, and on Converse returns its reasoning inside the text as
/// `<think>…</think>`, not as reasoning content (reported in JetBrains/koog#1436's review,
/// which added it for Bedrock); no setting for it is recorded.
pub(super) const KIMI_THINKING: Capabilities = Capabilities {
    reasoning: ReasoningSetting::AlwaysOn,
    ..with_status(other("moonshot-kimi-thinking"))
};
/// Qwen: assistant-first histories accepted (pydantic-ai's profile
/// `bedrock_supports_leading_assistant_message`; the conservative row does not refuse them).
pub(super) const QWEN: Capabilities = other("qwen");
/// DeepSeek V3 and later: hybrid models whose setting on Bedrock is not recorded.
pub(super) const DEEPSEEK: Capabilities = other("deepseek");

/// DeepSeek R1.
pub(super) const DEEPSEEK_R1: Capabilities = Capabilities {
    // It always reasons: the AWS page's request takes `prompt`, `temperature`, `top_p`,
    // `max_tokens` and `stop`, no reasoning setting, and every reply carries reasoning.
    reasoning: ReasoningSetting::AlwaysOn,
    // Its reasoning, unsigned, sent back in an assistant message: "User messages cannot
    // contain reasoning content. Please remove the reasoning content and try again."
    // (recorded: langchain-ai/langchain-aws#401, aws-samples/bedrock-chat#845 fixed by #851,
    // zed-industries/zed#32341; peers.md R-THINK-5, scenario 32).
    replayed_reasoning: ReplayedReasoning::Refused,
    // "Model name: DeepSeek-R1 · Text model" (AWS `model-parameters-deepseek.html`).
    text_only: true,
    ..other("deepseek-r1")
};

/// OpenAI gpt-oss (`openai.gpt-oss-20b-1:0`, `openai.gpt-oss-120b-1:0`).
pub(super) const GPT_OSS: Capabilities = Capabilities {
    // "Include any other fields in the additionalModelRequestFields object" (AWS
    // `model-parameters-openai.html`); `reasoning_effort` answered 200 on gpt-oss-120b
    // (kortix-ai/suna#6893's probe; jeremychone/rust-genai#315). Anthropic's `thinking` is
    // refused: "Failed to deserialize the JSON body into the target type: thinking: unknown
    // field thinking, expected one of messages, model, store, reasoning_effort, …"
    // (recorded: BerriAI/litellm#13959).
    reasoning: ReasoningSetting::ReasoningEffort,
    // "This model doesn't support the reasoningContent.reasoningText.signature field."
    // (recorded: strands-agents/harness-sdk#682 with an empty signature,
    // earendil-works/pi#686); its own reasoning, unsigned, replayed without the field is
    // taken (vercel/ai#14720 replays it across tool turns; the problem there is leaked tags,
    // not a refusal).
    replayed_reasoning: ReplayedReasoning::Unsigned { any_signature: true },
    // "These OpenAI models support only text input and text output." (AWS
    // `model-parameters-openai.html`.)
    text_only: true,
    ..other("openai-gpt-oss")
};

/// Amazon Nova (1): no Anthropic thinking, no cache point in tools (R1.9), video input. It
/// takes no Anthropic body on InvokeModel at all; its versions are the conservative ones.
pub(super) const NOVA: Capabilities = Capabilities {
    family: "amazon-nova",
    thinking: NO_THINKING,
    cache_point_in_tools: false,
    cache_min_tokens: Some(1000),
    video: true,
    s3_media: true,
    // `reasoningConfig` on Nova Pro: "Malformed input request: the provided reasoning config
    // value is invalid, please reformat your input and try again." (recorded:
    // UKGovernmentBEIS/inspect_ai#5301, at every effort).
    reasoning: ReasoningSetting::NoneTaken,
    // An empty signature: "This model doesn't support the
    // reasoningContent.reasoningText.signature field" (reported for Nova:
    // maximhq/bifrost#6624, which also reports leaving the field out as what Nova takes).
    replayed_reasoning: ReplayedReasoning::Unsigned { any_signature: false },
    results_beside: ResultsBeside::NotKnown,
    ..CLAUDE
};

/// Amazon Nova 2 (Lite, Pro): reasoning by `reasoningConfig`, off by default (the Nova 2 user
/// guide; the Converse call of aws's Nova 2 Lite announcement in stdapi-ai/stdapi.ai#7). At
/// `maxReasoningEffort: "high"` `maxTokens` must be left out (UKGovernmentBEIS/inspect_ai#3767,
/// from AWS's documentation; Bedrock's text not recorded). Its reasoning comes back as
/// `[REDACTED]` text ("reasoning content is redacted in the output", reasoning-capabilities).
pub(super) const NOVA_2: Capabilities = Capabilities {
    family: "amazon-nova-2",
    reasoning: ReasoningSetting::NovaReasoningConfig,
    ..NOVA
};
