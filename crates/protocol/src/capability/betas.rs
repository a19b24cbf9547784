//! Beta flags as data: the ones Bedrock was recorded refusing per model, the ones known to
//! it in some form, and the one the thinking binding controls need.

/// Beta flags, judged as data (messages-api B2: Bedrock answers `invalid beta flag` for a flag
/// it does not take, and the answer is never worth retrying).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BetaFlags {
    /// Flags Bedrock was seen refusing for this model on InvokeModel with `invalid beta flag`
    /// (an error there; elsewhere, without a recording, a warning).
    pub refused_on_invoke: &'static [&'static str],
}

/// No flag is known refused.
pub(super) const NO_REFUSED_BETAS: BetaFlags = BetaFlags { refused_on_invoke: &[] };

/// Opus 4.7 at launch (2026-04-16/17): Bedrock took only `interleaved-thinking-2025-05-14` and
/// refused these with 400 `invalid beta flag` (REPORTED anthropics/claude-code#49370, #49648,
/// the InvokeModel path; fixtures/real `messages_api/errors_reported.json`).
pub(super) const OPUS_4_7_BETAS: BetaFlags = BetaFlags {
    refused_on_invoke: &[
        "claude-code-20250219",
        "effort-2025-11-24",
        "tool-search-tool-2025-10-19",
    ],
};

/// Beta flags known to Bedrock in some form: Anthropic's enum of flags (anthropic-python 2.12
/// `anthropic_beta_param.py`, bedrock-rules R4.3) as far as a Bedrock document or recording
/// names them. A flag outside this list draws a warning (Bedrock refuses flags it does not
/// know), never an error: the list is not a measurement of what Bedrock takes.
pub const KNOWN_BETAS: &[&str] = &[
    "interleaved-thinking-2025-05-14",
    "thinking-binding-controls-2026-08-01",
    "compact-2026-01-12",
    "context-management-2025-06-27",
    "token-efficient-tools-2025-02-19",
    "fine-grained-tool-streaming-2025-05-14",
    "output-128k-2025-02-19",
    "context-1m-2025-08-07",
    "mid-conversation-system-clear-at-2026-08-21",
    "claude-code-20250219",
    "effort-2025-11-24",
    "tool-search-tool-2025-10-19",
];

/// The beta flag that the thinking binding controls require (bedrock-rules R4.8: "This setting
/// requires the value `thinking-binding-controls-2026-08-01` in the `anthropic-beta` header.").
pub const BINDING_CONTROLS_BETA: &str = "thinking-binding-controls-2026-08-01";
