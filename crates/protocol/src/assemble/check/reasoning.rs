//! Reasoning of the families that are not Claude, as their capability rows say
//! (`capability/families.rs`): each family's own setting in `additionalModelRequestFields`
//! (Nova 2's `reasoningConfig`, gpt-oss's `reasoning_effort`), and what each takes back of
//! the reasoning in its history (gpt-oss and Nova unsigned, DeepSeek R1 none).
//!
//! Emits [`Rule::ReasoningSetting`] (`reasoning.setting`), [`Rule::ThinkingSignatureField`]
//! (`thinking.signature_field`), [`Rule::ThinkingNotReplayable`] (`thinking.not_replayable`)
//! and, for a family that is not recorded either way, [`Rule::ThinkingUnsigned`]
//! (`thinking.unsigned`) as a warning.

use serde_json::Value;
use verbatim_model::{Api, ThinkingBlock};

use super::CheckPass;
use crate::JsonPath;
use crate::assemble::Severity;
use crate::assemble::action::Action;
use crate::assemble::wire::Field;
use crate::capability::{
    EFFORTS, NOVA_REASONING_CONFIG, REASONING_EFFORT, ReasoningSetting, ReplayedReasoning,
};
use crate::rules::Rule;

/// The family settings written in the request's model fields (Converse only: on InvokeModel
/// the body is Anthropic's, and its top-level keys are judged as unknown keys).
pub(super) fn settings(out: &mut CheckPass<'_>) {
    if out.api() != Api::Converse {
        return;
    }
    let state = out.state;
    let request = &state.request;
    let Some(fields) = &request.model_fields else { return };
    let caps = out.context.caps;
    let root = JsonPath::root().key("additionalModelRequestFields");
    if let Some(config) = fields.get(NOVA_REASONING_CONFIG) {
        let path = root.clone().key(NOVA_REASONING_CONFIG);
        match caps.reasoning {
            ReasoningSetting::NovaReasoningConfig => {
                let max_tokens = request.inference.as_ref().and_then(|i| i.max_tokens);
                nova_config(out, config, path, max_tokens);
            }
            ReasoningSetting::NoneTaken => {
                let what = format!(
                    "{} takes no reasoning setting; `reasoningConfig` is Nova 2's",
                    caps.family
                );
                let detail = "The model returned the following errors: Malformed input request: the provided reasoning config value is invalid, please reformat your input and try again.";
                out.error(Rule::ReasoningSetting, path, what, detail);
            }
            _ => not_known(out, path, NOVA_REASONING_CONFIG, "Nova 2's"),
        }
    }
    if let Some(effort) = fields.get(REASONING_EFFORT) {
        let path = root.key(REASONING_EFFORT);
        if caps.reasoning == ReasoningSetting::ReasoningEffort {
            if !effort.as_str().is_some_and(|e| EFFORTS.contains(&e)) {
                let what = format!(
                    "{} takes reasoning_effort `low`, `medium` or `high`, not {effort}; whether Bedrock refuses another is not recorded",
                    caps.family
                );
                out.push(Rule::ReasoningSetting, Severity::Warning, path, what, "", None);
            }
        } else {
            not_known(out, path, REASONING_EFFORT, "gpt-oss's");
        }
    }
}

/// Nova 2's `reasoningConfig`: its type and effort, and `maxTokens` beside a high effort.
fn nova_config(out: &mut CheckPass<'_>, config: &Value, path: JsonPath, max_tokens: Option<u32>) {
    let kind = config.get("type").and_then(Value::as_str);
    let effort = config.get("maxReasoningEffort");
    let warn = |out: &mut CheckPass<'_>, path: JsonPath, what: String| {
        out.push(Rule::ReasoningSetting, Severity::Warning, path, what, "", None);
    };
    if !matches!(kind, Some("enabled" | "disabled")) {
        let what = "reasoningConfig.type is `enabled` or `disabled` in the Nova 2 user guide; whether Bedrock refuses another is not recorded";
        warn(out, path.clone().key("type"), what.to_owned());
    }
    if let Some(effort) = effort
        && !effort.as_str().is_some_and(|e| EFFORTS.contains(&e))
    {
        let what = format!(
            "maxReasoningEffort is `low`, `medium` or `high` in the Nova 2 user guide, not {effort}"
        );
        warn(out, path.clone().key("maxReasoningEffort"), what);
    }
    // "AWS Nova Converse API only requires maxTokens to be unset when
    // maxReasoningEffort=\"high\"" (UKGovernmentBEIS/inspect_ai#3767, from AWS's
    // documentation); Bedrock's text is not recorded, so a warning.
    if kind == Some("enabled")
        && effort.and_then(Value::as_str) == Some("high")
        && let Some(max_tokens) = max_tokens
    {
        let what = format!(
            "maxTokens {max_tokens} beside maxReasoningEffort `high`: Nova 2 documents leaving maxTokens out at high effort"
        );
        warn(out, JsonPath::root().key("inferenceConfig").key("maxTokens"), what);
    }
}

/// A family setting sent to a model that is not recorded taking or refusing it.
fn not_known(out: &mut CheckPass<'_>, path: JsonPath, field: &str, whose: &str) {
    let what = format!(
        "`{field}` is {whose} reasoning setting; {} is not recorded taking it (some models refuse fields they do not know)",
        out.context.caps.family
    );
    out.push(Rule::ReasoningSetting, Severity::Warning, path, what, "", None);
}

/// Reasoning sent back, as the model's family takes it: `true` when the family's row judged
/// the block (the Claude checks of signatures then do not apply), `false` for a family that
/// takes signed reasoning only.
pub(super) fn replayed(
    out: &mut CheckPass<'_>,
    i: usize,
    j: usize,
    thinking: &ThinkingBlock,
) -> bool {
    let caps = out.context.caps;
    let drop = Some(Action::DropThinking { message: i });
    match caps.replayed_reasoning {
        ReplayedReasoning::Signed => false,
        ReplayedReasoning::Refused => {
            let what = format!("{} takes no reasoning back in its history", caps.family);
            out.push(Rule::ThinkingNotReplayable, Severity::Error, out.block(i, j), what, "", drop);
            true
        }
        ReplayedReasoning::Unsigned { any_signature } => {
            let Some(signature) = &thinking.signature else { return true };
            let severity = if any_signature || signature.is_empty() {
                Severity::Error
            } else {
                Severity::Warning
            };
            let what = format!("{} takes its reasoning back without a signature", caps.family);
            let path = out.field(i, j, Field::Signature);
            let fix = if severity == Severity::Error { drop } else { None };
            out.push(Rule::ThinkingSignatureField, severity, path, what, "", fix);
            true
        }
        // Signed reasoning goes on to the checks every model's does (produced by another
        // model, on another surface).
        ReplayedReasoning::NotKnown
            if thinking.signature.as_deref().is_some_and(|s| !s.is_empty()) =>
        {
            false
        }
        ReplayedReasoning::NotKnown => {
            let what = format!(
                "unsigned reasoning sent back to {}, which is not recorded taking or refusing it",
                caps.family
            );
            let path = out.field(i, j, Field::Signature);
            out.push(Rule::ThinkingUnsigned, Severity::Warning, path, what, "", None);
            true
        }
    }
}

/// Redacted reasoning sent back to a family that takes no reasoning back: `true` when judged.
pub(super) fn replayed_redacted(out: &mut CheckPass<'_>, i: usize, j: usize) -> bool {
    let caps = out.context.caps;
    if caps.replayed_reasoning != ReplayedReasoning::Refused {
        return false;
    }
    let what = format!("{} takes no reasoning back in its history", caps.family);
    let drop = Some(Action::DropThinking { message: i });
    out.push(Rule::ThinkingNotReplayable, Severity::Error, out.block(i, j), what, "", drop);
    true
}
