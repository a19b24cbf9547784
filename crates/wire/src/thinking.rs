//! The thinking object, which both dialects carry in the same JSON shape (Converse inside
//! `additionalModelRequestFields`, Anthropic at the top level), and the effort that adaptive
//! thinking takes from `output_config`.

use serde_json::Value;
use verbatim_model::{Effort, JsonMap, ThinkingConfig, ThinkingMode};

use crate::json::{self, Fields, Result};
use crate::path::At;

pub(crate) fn decode(value: Value, at: &At<'_>) -> Result<ThinkingConfig> {
    let mut f = Fields::of(value, at)?;
    let kind = f.required("type", json::string)?;
    let mode = match kind.as_str() {
        "enabled" => {
            ThinkingMode::Enabled { budget_tokens: f.required("budget_tokens", json::uint32)? }
        }
        "adaptive" => ThinkingMode::Adaptive { effort: None },
        "disabled" => ThinkingMode::Disabled,
        other => {
            return Err(json::invalid(
                &at.key("type"),
                format!("unknown thinking type `{other}`; expected enabled, adaptive or disabled"),
            ));
        }
    };
    let display = f.optional("display", json::string)?;
    Ok(ThinkingConfig { mode, display, extra: f.rest() })
}

/// `Err` names an extra key that clashes with one the setting itself writes.
pub(crate) fn encode(thinking: &ThinkingConfig) -> Result<Value, String> {
    let mut map = JsonMap::new();
    let kind = match thinking.mode {
        ThinkingMode::Disabled => "disabled",
        ThinkingMode::Enabled { .. } => "enabled",
        ThinkingMode::Adaptive { .. } => "adaptive",
    };
    map.insert("type".into(), kind.into());
    if let ThinkingMode::Enabled { budget_tokens } = thinking.mode {
        map.insert("budget_tokens".into(), budget_tokens.into());
    }
    if let Some(display) = &thinking.display {
        map.insert("display".into(), display.clone().into());
    }
    for (key, value) in &thinking.extra {
        if map.contains_key(key) {
            return Err(format!("thinking.{key}"));
        }
        map.insert(key.clone(), value.clone());
    }
    Ok(Value::Object(map))
}

/// Moves `output_config.effort` out of the native fields into adaptive thinking, removing an
/// `output_config` left empty. Other thinking modes leave the fields as they are.
pub(crate) fn take_effort(thinking: &mut Option<ThinkingConfig>, fields: &mut JsonMap) {
    let Some(ThinkingConfig { mode: ThinkingMode::Adaptive { effort }, .. }) = thinking else {
        return;
    };
    let Some(Value::Object(output_config)) = fields.get_mut("output_config") else { return };
    let Some(Value::String(level)) = output_config.get("effort") else { return };
    *effort = Some(Effort::parse(level));
    output_config.shift_remove("effort");
    if output_config.is_empty() {
        fields.shift_remove("output_config");
    }
}

/// Writes adaptive thinking's effort back into `output_config`; `Err` names a clashing key.
pub(crate) fn put_effort(
    thinking: Option<&ThinkingConfig>,
    fields: &mut JsonMap,
) -> Result<(), String> {
    let Some(ThinkingConfig { mode: ThinkingMode::Adaptive { effort: Some(effort) }, .. }) =
        thinking
    else {
        return Ok(());
    };
    let output_config =
        fields.entry("output_config").or_insert_with(|| Value::Object(JsonMap::new()));
    let Value::Object(output_config) = output_config else {
        return Err("output_config".into());
    };
    if output_config.contains_key("effort") {
        return Err("output_config.effort".into());
    }
    output_config.insert("effort".into(), effort.as_str().into());
    Ok(())
}
