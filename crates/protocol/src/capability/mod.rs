//! What each model family accepts, as data: the rules of `bedrock-rules.md` that differ by
//! model are read from one row of [`TABLE`], never from scattered `if model == …` branches.
//!
//! That includes the `anthropic_version` values each family takes on each surface
//! ([`AnthropicVersions`]): on InvokeModel, the documented `bedrock-2023-05-31` for every
//! Claude model, and the first-party `2026-10-21`, which anthropic-python 2.x writes for every
//! model, for the current generation only (Opus 4.7 and later, which Anthropic calls "Claude in
//! Amazon Bedrock"): the ARN-versioned legacy models (Opus 4.6 and earlier) do not support it
//! and "can return a 400" (messages-api V2–V3, bedrock-rules R5.1).

use crate::model_id::base_model;

mod betas;
mod families;

pub use betas::{BINDING_CONTROLS_BETA, BetaFlags, KNOWN_BETAS};
use betas::{NO_REFUSED_BETAS, OPUS_4_7_BETAS};
pub use families::{
    EFFORTS, NOVA_REASONING_CONFIG, REASONING_EFFORT, ReasoningSetting, ReplayedReasoning,
    ResultsBeside, effort_for,
};

/// Whether a forced tool choice (`any` or a named tool) may be sent, and with which thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedToolChoice {
    /// Forced tool use is an error on this model, with or without thinking.
    Never,
    /// Allowed without thinking only (`Thinking may not be enabled when tool_choice forces
    /// tool use.`).
    WithoutThinking,
    /// Allowed without thinking and with adaptive thinking, not with manual (`enabled`)
    /// thinking.
    AdaptiveOrNone,
}

/// The thinking modes a model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkingModes {
    /// `{"type":"enabled","budget_tokens":N}` (manual extended thinking).
    pub enabled: bool,
    /// `{"type":"adaptive"}`.
    pub adaptive: bool,
    /// An explicit `{"type":"disabled"}`.
    pub disabled: bool,
    /// The request may leave `thinking` out (on models where thinking is always on, leaving
    /// it out still means thinking).
    pub may_omit: bool,
    /// Thinking cannot be switched off on this model: it is always on.
    pub always_on: bool,
}

impl ThinkingModes {
    /// True when the model accepts some form of thinking.
    pub fn any(&self) -> bool {
        self.enabled || self.adaptive || self.always_on
    }
}

/// The `anthropic_version` values a model accepts, per surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnthropicVersions {
    /// The body field `anthropic_version` of an InvokeModel request.
    pub invoke: &'static [&'static str],
    /// The header `anthropic-version` of the Messages API on Bedrock
    /// (`…/anthropic/v1/messages`, messages-api V1–V2), judged by the rule `messages.version`
    /// (`assemble/check/surface.rs`); the newest is the one verbatim sends.
    pub messages: &'static [&'static str],
}

impl AnthropicVersions {
    /// True when InvokeModel takes `version` in the body for this model.
    pub fn invoke_accepts(&self, version: &str) -> bool {
        self.invoke.contains(&version)
    }

    /// True when the Messages API takes `version` in the `anthropic-version` header for this
    /// model.
    pub fn messages_accepts(&self, version: &str) -> bool {
        self.messages.contains(&version)
    }

    /// The `anthropic-version` header verbatim sends on the Messages API: the newest the row
    /// takes (`2026-10-21` for the current generation, `2023-06-01` otherwise), as
    /// messages-api V2 advises.
    pub fn messages_header(&self) -> &'static str {
        self.messages.last().copied().unwrap_or(V2023_06_01)
    }
}

/// The version the AWS documentation gives for InvokeModel, taken by every Claude model
/// (bedrock-rules R5.1).
const BEDROCK_2023_05_31: &str = crate::anthropic::BEDROCK_ANTHROPIC_VERSION;

/// The first-party version anthropic-python 2.x sends, in the body on InvokeModel and in the
/// header on the Messages API (messages-api V1, V3).
const V2026_10_21: &str = crate::messages_api::VERSION_2026_10_21;

/// The first-party version the Messages API on Bedrock documents (messages-api V1).
const V2023_06_01: &str = crate::messages_api::VERSION_2023_06_01;

/// Opus 4.6 and earlier ("legacy", ARN-versioned ids): only the documented versions.
const LEGACY_VERSIONS: AnthropicVersions =
    AnthropicVersions { invoke: &[BEDROCK_2023_05_31], messages: &[V2023_06_01] };

/// Opus 4.7 and later. That InvokeModel takes `2026-10-21` for them is not recorded
/// (messages-api V2 is a warning about the legacy models, not a measurement of these); it is
/// what anthropic-python 2.x implies, which writes it into the InvokeModel body for every
/// model (CODE `lib/bedrock/_client.py`), while Anthropic names only the legacy models as
/// refusing it. On the Messages API, V1–V2 give both `2023-06-01` and `2026-10-21`.
const CURRENT_VERSIONS: AnthropicVersions = AnthropicVersions {
    invoke: &[BEDROCK_2023_05_31, V2026_10_21],
    messages: &[V2023_06_01, V2026_10_21],
};

/// Whether `temperature`, `top_p` and `top_k` may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Taken (within their ranges).
    Accepted,
    /// Refused: "The model returned the following errors: temperature is deprecated for this
    /// model." Recorded on Bedrock for Opus 4.7 and 4.8 (tinovyatkin/amazon-bedrock-copilot-chat
    /// #546, DayuanJiang/next-ai-draw-io#861; top_p and top_k alike, pollinations#11319).
    Refused,
    /// Not recorded either way for a model of the generation that refuses them: a warning.
    NotKnown,
}

/// One row of the capability table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// A short name for the family, shown in diagnostics.
    pub family: &'static str,
    /// False for the conservative row given to ids the table does not know.
    pub known: bool,
    /// Thinking modes accepted.
    pub thinking: ThinkingModes,
    /// Whether a final assistant message (prefill) is accepted.
    pub prefill: bool,
    /// Forced tool choice and thinking.
    pub forced_tool_choice: ForcedToolChoice,
    /// Whether `toolResult.status` is accepted.
    pub tool_result_status: bool,
    /// Whether replayed thinking is bound to the conversation prefix ("preserved thinking"):
    /// system, tools and every earlier message must be sent unchanged.
    pub prefix_binding: bool,
    /// The model's output-token maximum, when known.
    pub max_output_tokens: Option<u32>,
    /// Whether video blocks are accepted.
    pub video: bool,
    /// Whether audio blocks are accepted.
    pub audio: bool,
    /// Whether an image, video or document may name its bytes by `s3Location` on Converse.
    /// Claude refuses it: "This model doesn't support the s3Uri field. Remove s3Uri and try
    /// again." (recorded: fixtures/real `errors_recorded_bodies.json`, pydantic-ai
    /// `direct-uploaded_file-image-bedrock_claude`, Sonnet 4.5, an image inside a tool result),
    /// and for a document "…document.source.type: Field required" (recorded, same file,
    /// `tool_return_content-uploaded_file-document-bedrock_claude`).
    pub s3_media: bool,
    /// Whether a video may sit inside a tool result's content. Claude refuses it with its
    /// video text (recorded: pydantic-ai `direct-binary-video-bedrock_claude`); Nova with a
    /// schema error naming the `toolResult` key (the report, and the recorded
    /// `direct-uploaded_file-document-bedrock_nova` refusal of media in a tool result).
    pub video_in_tool_result: bool,
    /// Whether a `cachePoint` may appear in `toolConfig.tools`.
    pub cache_point_in_tools: bool,
    /// The fewest tokens a cache point's prefix must hold to be written (bedrock-rules R1.9:
    /// 1,024 for Claude 3.7 Sonnet, Sonnet 4 and Opus 4, taken for the other Claude models;
    /// 2,048 for Claude 3.5 Haiku; 4,096 for the Claude Haiku models after it, the Strands
    /// documentation's figure; 1,000 for Nova). The same on every surface. `None`: the
    /// model is not known to cache, and automatic caching places no point.
    pub cache_min_tokens: Option<u32>,
    /// The `anthropic_version` values accepted, per surface.
    pub anthropic_versions: AnthropicVersions,
    /// Beta flags known refused.
    pub betas: BetaFlags,
    /// Whether the sampling parameters are taken.
    pub sampling: Sampling,
    /// Whether the request may ask the API to drop thinking bound to another prefix itself
    /// (`thinking.block_binding.prefix_mismatch_behavior: "drop_block"` with the beta
    /// [`BINDING_CONTROLS_BETA`]), on the Messages API only: the prefix-binding models
    /// (bedrock-rules R4.8; binding controls are documented for the Messages API alone).
    pub binding_controls: bool,
    /// How the model's reasoning is asked for: Anthropic's `thinking` (judged by
    /// [`Capabilities::thinking`]) or the family's own field ([`ReasoningSetting`]).
    pub reasoning: ReasoningSetting,
    /// What the model takes back of reasoning in the history ([`ReplayedReasoning`]).
    pub replayed_reasoning: ReplayedReasoning,
    /// The model takes text only: an image, document, video or audio block is refused (the
    /// AWS model pages of gpt-oss and DeepSeek R1; see `families.rs`).
    pub text_only: bool,
    /// Whether a user message on Converse may hold tool results beside other blocks.
    pub results_beside: ResultsBeside,
}

const fn modes(enabled: bool, adaptive: bool, disabled: bool, always_on: bool) -> ThinkingModes {
    ThinkingModes { enabled, adaptive, disabled, may_omit: true, always_on }
}

const NO_THINKING: ThinkingModes = modes(false, false, true, false);
const MANUAL: ThinkingModes = modes(true, false, true, false);
const MANUAL_OR_ADAPTIVE: ThinkingModes = modes(true, true, true, false);
const ADAPTIVE_ONLY: ThinkingModes = modes(false, true, false, false);
const ALWAYS_ADAPTIVE: ThinkingModes = modes(false, true, false, true);

const CLAUDE: Capabilities = Capabilities {
    family: "claude",
    known: true,
    thinking: MANUAL,
    prefill: true,
    forced_tool_choice: ForcedToolChoice::AdaptiveOrNone,
    tool_result_status: true,
    prefix_binding: false,
    max_output_tokens: None,
    video: false,
    audio: false,
    s3_media: false,
    video_in_tool_result: false,
    cache_point_in_tools: true,
    cache_min_tokens: Some(1024),
    anthropic_versions: LEGACY_VERSIONS,
    betas: NO_REFUSED_BETAS,
    sampling: Sampling::Accepted,
    binding_controls: false,
    reasoning: ReasoningSetting::Anthropic,
    replayed_reasoning: ReplayedReasoning::Signed,
    text_only: false,
    results_beside: ResultsBeside::Taken,
};

/// The row for ids the table does not know (application inference profiles, new models):
/// on each question the answer that Bedrock rejects least often. No thinking mode is
/// accepted everywhere, so modes are not judged; everything else takes the strict side. Its
/// versions are the documented ones; another version on an unknown model is a warning, not an
/// error, since whether that model takes it is not known. The checks read `known: false` the
/// same way everywhere: what this row does not grant is reported as a warning on an unknown
/// model, never as an error, and repair leaves it alone (an error needs evidence that Bedrock
/// refuses it for that model; Llama 4 Maverick, Pixtral Large and Kimi K2 accept the
/// `toolResult.status` this row does not grant).
pub const CONSERVATIVE: Capabilities = Capabilities {
    family: "unknown model",
    known: false,
    thinking: modes(true, true, true, false),
    prefill: false,
    forced_tool_choice: ForcedToolChoice::WithoutThinking,
    tool_result_status: false,
    prefix_binding: true,
    max_output_tokens: None,
    video: false,
    audio: false,
    s3_media: false,
    video_in_tool_result: false,
    cache_point_in_tools: true,
    cache_min_tokens: None,
    anthropic_versions: LEGACY_VERSIONS,
    betas: NO_REFUSED_BETAS,
    sampling: Sampling::Accepted,
    binding_controls: false,
    reasoning: ReasoningSetting::NotKnown,
    replayed_reasoning: ReplayedReasoning::Signed,
    text_only: false,
    results_beside: ResultsBeside::NotKnown,
};

/// The table: a model matches the first row whose pattern its base id
/// ([`base_model`]) contains. More specific patterns come first.
pub const TABLE: &[(&str, Capabilities)] = &[
    // Rows wrapped in `current` are Opus 4.7 and later, which also take `2026-10-21`; the
    // others (Opus 4.6 and earlier) take only the documented versions.
    //
    // Always-adaptive 5.x models: thinking cannot be disabled, forced tool use is an error,
    // replayed thinking is bound to the prefix (bedrock-rules R3.7, R4.1, R4.8).
    (
        "claude-opus-5-5",
        current(row(
            "claude-opus-5.5",
            ALWAYS_ADAPTIVE,
            false,
            ForcedToolChoice::Never,
            true,
            128_000,
        )),
    ),
    (
        "claude-sonnet-5-5",
        current(row(
            "claude-sonnet-5.5",
            ALWAYS_ADAPTIVE,
            false,
            ForcedToolChoice::Never,
            true,
            128_000,
        )),
    ),
    (
        "claude-haiku-5-5",
        haiku(current(row(
            "claude-haiku-5.5",
            ALWAYS_ADAPTIVE,
            false,
            ForcedToolChoice::Never,
            true,
            128_000,
        ))),
    ),
    (
        "claude-fable-5-1",
        current(row(
            "claude-fable-5.1",
            ALWAYS_ADAPTIVE,
            false,
            ForcedToolChoice::Never,
            true,
            128_000,
        )),
    ),
    (
        "claude-fable-5-2",
        current(row(
            "claude-fable-5.2",
            ALWAYS_ADAPTIVE,
            false,
            ForcedToolChoice::Never,
            true,
            128_000,
        )),
    ),
    // Adaptive-only models (R4.1): manual and disabled thinking return 400.
    (
        "claude-mythos",
        current(row(
            "claude-mythos",
            ADAPTIVE_ONLY,
            false,
            ForcedToolChoice::AdaptiveOrNone,
            false,
            128_000,
        )),
    ),
    (
        "claude-fable-5",
        current(row(
            "claude-fable-5",
            ADAPTIVE_ONLY,
            false,
            ForcedToolChoice::AdaptiveOrNone,
            false,
            128_000,
        )),
    ),
    (
        "claude-opus-5",
        current(row(
            "claude-opus-5",
            ADAPTIVE_ONLY,
            false,
            ForcedToolChoice::AdaptiveOrNone,
            false,
            128_000,
        )),
    ),
    (
        "claude-opus-4-7",
        Capabilities {
            betas: OPUS_4_7_BETAS,
            sampling: Sampling::Refused,
            ..current(row(
                "claude-opus-4.7",
                ADAPTIVE_ONLY,
                false,
                ForcedToolChoice::AdaptiveOrNone,
                false,
                128_000,
            ))
        },
    ),
    (
        "claude-opus-4-8",
        Capabilities {
            sampling: Sampling::Refused,
            ..current(row(
                "claude-opus-4.8",
                ADAPTIVE_ONLY,
                false,
                ForcedToolChoice::AdaptiveOrNone,
                false,
                128_000,
            ))
        },
    ),
    // Sonnet 5 and the 4.6 models: adaptive recommended, manual still accepted, no prefill.
    // Sonnet 5 is of the current generation, the 4.6 models are legacy.
    (
        "claude-sonnet-5",
        current(row(
            "claude-sonnet-5",
            MANUAL_OR_ADAPTIVE,
            false,
            ForcedToolChoice::AdaptiveOrNone,
            false,
            128_000,
        )),
    ),
    (
        "claude-opus-4-6",
        row(
            "claude-opus-4.6",
            MANUAL_OR_ADAPTIVE,
            false,
            ForcedToolChoice::AdaptiveOrNone,
            false,
            128_000,
        ),
    ),
    (
        "claude-sonnet-4-6",
        row(
            "claude-sonnet-4.6",
            MANUAL_OR_ADAPTIVE,
            false,
            ForcedToolChoice::AdaptiveOrNone,
            false,
            128_000,
        ),
    ),
    // Claude 4 / 4.1 / 4.5 and 3.7: manual thinking only, prefill allowed.
    (
        "claude-opus-4-5",
        row("claude-opus-4.5", MANUAL, true, ForcedToolChoice::WithoutThinking, false, 64_000),
    ),
    (
        "claude-sonnet-4-5",
        row("claude-sonnet-4.5", MANUAL, true, ForcedToolChoice::WithoutThinking, false, 64_000),
    ),
    (
        "claude-haiku-4-5",
        haiku(row(
            "claude-haiku-4.5",
            MANUAL,
            true,
            ForcedToolChoice::WithoutThinking,
            false,
            64_000,
        )),
    ),
    (
        "claude-opus-4-1",
        row("claude-opus-4.1", MANUAL, true, ForcedToolChoice::WithoutThinking, false, 32_000),
    ),
    (
        "claude-opus-4",
        row("claude-opus-4", MANUAL, true, ForcedToolChoice::WithoutThinking, false, 32_000),
    ),
    (
        "claude-sonnet-4",
        row("claude-sonnet-4", MANUAL, true, ForcedToolChoice::WithoutThinking, false, 64_000),
    ),
    (
        "claude-3-7-sonnet",
        row("claude-3.7-sonnet", MANUAL, true, ForcedToolChoice::WithoutThinking, false, 64_000),
    ),
    // Older Claude: no thinking.
    (
        "claude-3-5-haiku",
        Capabilities {
            cache_min_tokens: Some(2048),
            ..row("claude-3.5", NO_THINKING, true, ForcedToolChoice::WithoutThinking, false, 8_192)
        },
    ),
    (
        "claude-3-5",
        row("claude-3.5", NO_THINKING, true, ForcedToolChoice::WithoutThinking, false, 8_192),
    ),
    // Claude 3: tool results beside text refused on Converse, reported for Opus
    // (`ResultsBeside::Refused`); not recorded for Sonnet and Haiku.
    (
        "claude-3-opus",
        Capabilities {
            results_beside: ResultsBeside::Refused,
            ..row("claude-3", NO_THINKING, true, ForcedToolChoice::WithoutThinking, false, 4_096)
        },
    ),
    (
        "claude-3",
        Capabilities {
            results_beside: ResultsBeside::NotKnown,
            ..row("claude-3", NO_THINKING, true, ForcedToolChoice::WithoutThinking, false, 4_096)
        },
    ),
    // Other providers' models and Amazon Nova: `families.rs`, each field with its evidence.
    ("meta.llama4", families::LLAMA_4),
    ("meta.llama", families::LLAMA),
    ("mistral.pixtral", families::PIXTRAL),
    ("mistral.", families::MISTRAL),
    ("kimi-k2-thinking", families::KIMI_THINKING),
    ("moonshot", families::KIMI),
    ("deepseek.r1", families::DEEPSEEK_R1),
    ("deepseek.", families::DEEPSEEK),
    ("openai.gpt-oss", families::GPT_OSS),
    ("qwen.", families::QWEN),
    ("amazon.nova-2", families::NOVA_2),
    ("amazon.nova", families::NOVA),
];

impl Capabilities {
    /// True for the rows of Claude models (their family names start with `claude`).
    pub fn is_claude(&self) -> bool {
        self.family.starts_with("claude")
    }
}

/// A Claude Haiku row after 3.5: a prefix of 4,096 tokens at least is cached.
const fn haiku(row: Capabilities) -> Capabilities {
    Capabilities { cache_min_tokens: Some(4096), ..row }
}

/// A row of the current generation: Opus 4.7 and later, which also take `2026-10-21`, and
/// whose sampling parameters are refused where recorded (Opus 4.7 and 4.8) and not known
/// elsewhere.
const fn current(row: Capabilities) -> Capabilities {
    Capabilities { anthropic_versions: CURRENT_VERSIONS, sampling: Sampling::NotKnown, ..row }
}

const fn row(
    family: &'static str,
    thinking: ThinkingModes,
    prefill: bool,
    forced_tool_choice: ForcedToolChoice,
    prefix_binding: bool,
    max_output_tokens: u32,
) -> Capabilities {
    Capabilities {
        family,
        thinking,
        prefill,
        forced_tool_choice,
        prefix_binding,
        binding_controls: prefix_binding,
        max_output_tokens: Some(max_output_tokens),
        ..CLAUDE
    }
}

/// Providers on Bedrock other than Anthropic and Amazon whose models the table has no row for,
/// by the vendor prefix of their base ids, with the name diagnostics give them.
const OTHER_PROVIDERS: &[(&str, &str)] = &[
    ("deepseek.", "DeepSeek"),
    ("meta.", "Meta Llama"),
    ("mistral.", "Mistral"),
    ("openai.", "OpenAI gpt-oss"),
    ("qwen.", "Qwen"),
    ("moonshot", "Moonshot Kimi"),
    ("cohere.", "Cohere"),
    ("ai21.", "AI21"),
    ("writer.", "Writer"),
];

/// The provider of a model id when it is neither Anthropic nor Amazon (`DeepSeek` for
/// `us.deepseek.r1-v1:0`): Anthropic's settings, such as `thinking`, are Claude's, and such a
/// model is not known to take them. `None` for Claude, Nova and ids that name no provider
/// (application inference profiles).
pub fn other_provider(model_id: &str) -> Option<&'static str> {
    let base = base_model(model_id);
    OTHER_PROVIDERS.iter().find(|(prefix, _)| base.starts_with(prefix)).map(|(_, name)| *name)
}

/// The capability row for a model id, inference-profile id or ARN; [`CONSERVATIVE`] when
/// the id matches no row (or is absent).
pub fn capabilities(model_id: Option<&str>) -> &'static Capabilities {
    let Some(id) = model_id else { return &CONSERVATIVE };
    let base = base_model(id);
    TABLE.iter().find(|(pattern, _)| base.contains(pattern)).map_or(&CONSERVATIVE, |(_, row)| row)
}

#[cfg(test)]
mod tests;
