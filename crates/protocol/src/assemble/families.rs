//! The engine's thinking setting on the families that are not Claude (`capability/families.rs`):
//! written as the family's own setting where it has one, left out elsewhere.

use serde_json::Value;
use verbatim_model::{Api, ThinkingConfig, ThinkingMode};

use super::{Diagnostic, Severity, TurnConfig, wire};
use crate::capability::{self, Capabilities, ReasoningSetting};
use crate::rules::Rule;

/// The thinking setting and model fields a turn sends. On Converse, for a family that asks
/// for reasoning in a field of its own (gpt-oss `reasoning_effort`, Nova 2 `reasoningConfig`),
/// the turn's thinking setting is written there ([`capability::effort_for`]) instead of as
/// Anthropic's `thinking`, which those models do not take; a field the turn's model fields
/// already hold is left as it is, and `disabled` sends neither (gpt-oss always reasons; Nova
/// 2's reasoning is off by default). To another provider's model with no setting known
/// (DeepSeek R1 always reasons; Llama, Mistral, Qwen, Kimi), Anthropic's setting is not sent
/// at all, and a warning says so.
pub(super) fn family_reasoning(
    turn: &TurnConfig,
    caps: &Capabilities,
) -> (Option<ThinkingConfig>, Option<verbatim_model::JsonMap>, Option<Diagnostic>) {
    let unchanged = (turn.thinking.clone(), turn.model_fields.clone(), None);
    let Some(thinking) = &turn.thinking else { return unchanged };
    let Some(field) = caps.reasoning.field().filter(|_| turn.api == Api::Converse) else {
        let Some(provider) = capability::other_provider(&turn.model_id) else { return unchanged };
        if matches!(thinking.mode, ThinkingMode::Disabled) {
            return unchanged;
        }
        let why = match caps.reasoning {
            ReasoningSetting::AlwaysOn => "it always reasons and takes no reasoning setting",
            _ => "no reasoning setting of its own is known",
        };
        let warning = Diagnostic {
            rule: Rule::ThinkingMode,
            severity: Severity::Warning,
            path: wire::setting(turn.api, wire::Setting::Thinking),
            message: format!(
                "the thinking setting is not sent to {} ({provider}): `thinking` is Anthropic's setting for Claude, and {why}",
                turn.model_id
            ),
        };
        return (None, turn.model_fields.clone(), Some(warning));
    };
    let mut fields = turn.model_fields.clone().unwrap_or_default();
    if let Some(effort) = capability::effort_for(thinking)
        && !fields.contains_key(field)
    {
        let value = match caps.reasoning {
            ReasoningSetting::NovaReasoningConfig => {
                serde_json::json!({"type": "enabled", "maxReasoningEffort": effort})
            }
            _ => Value::from(effort),
        };
        fields.insert(field.to_owned(), value);
    }
    (None, (!fields.is_empty()).then_some(fields), None)
}
