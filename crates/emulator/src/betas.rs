//! Which beta flags Bedrock refuses, read from the reports on their own (messages-api B2),
//! apart from the validator's capability table.
//!
//! At Opus 4.7's launch (2026-04-16/17) Bedrock answered 400 `invalid beta flag` on the
//! InvokeModel path for the flags Claude Code sends (`claude-code-20250219`,
//! `effort-2025-11-24`, `tool-search-tool-2025-10-19`) and took
//! `interleaved-thinking-2025-05-14` (anthropics/claude-code#49370, #49648). Nothing is
//! recorded for other models or other flags, so the emulator takes those.

use serde_json::Value;

use crate::checks::{Refusal, validation};

/// The flags refused for Opus 4.7 on InvokeModel.
const REFUSED_BY_OPUS_4_7: &[&str] =
    &["claude-code-20250219", "effort-2025-11-24", "tool-search-tool-2025-10-19"];

/// Checks the betas of an InvokeModel body sent to `model_key` (a model id without its region
/// prefix or ARN path).
pub(crate) fn check_invoke(body: &Value, model_key: &str) -> Result<(), Refusal> {
    if !model_key.to_ascii_lowercase().contains("claude-opus-4-7") {
        return Ok(());
    }
    let flags = body.get("anthropic_beta").and_then(Value::as_array).into_iter().flatten();
    for flag in flags.filter_map(Value::as_str) {
        if REFUSED_BY_OPUS_4_7.contains(&flag) {
            // The text both reports quote, in either body shape.
            return Err(validation("invalid beta flag"));
        }
    }
    Ok(())
}
