//! The request's settings as the service judges them: an empty conversation, sampling ranges,
//! and Claude's thinking (which modes each model takes, the budget, sampling beside it), with
//! the texts Bedrock answers (rules file R1.15, R2.1, R4.1, R4.2, R4.4). Read from the raw
//! body in either dialect, on this emulator's own table of models.

use serde_json::Value;

use crate::checks::{Refusal, validation};
use crate::conversation::Dialect;
use crate::model::model_key;

/// The settings of a body, wherever its dialect keeps them.
struct Settings<'a> {
    messages: Option<&'a Value>,
    max_tokens: Option<u64>,
    temperature: Option<&'a Value>,
    top_p: Option<&'a Value>,
    top_k: Option<&'a Value>,
    thinking: Option<&'a Value>,
    betas: Vec<&'a str>,
    /// Whether the tool choice forces tool use (`any` or a named tool).
    forced: bool,
}

impl<'a> Settings<'a> {
    fn read(dialect: Dialect, body: &'a Value) -> Settings<'a> {
        let betas = |value: Option<&'a Value>| {
            value
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect()
        };
        match dialect {
            Dialect::Converse => {
                let inference = body.get("inferenceConfig");
                let field = |key| inference.and_then(|c| c.get(key));
                let extra = body.get("additionalModelRequestFields");
                let extra_field = |key| extra.and_then(|c| c.get(key));
                Settings {
                    messages: body.get("messages"),
                    max_tokens: field("maxTokens").and_then(Value::as_u64),
                    temperature: field("temperature"),
                    top_p: field("topP"),
                    top_k: extra_field("top_k"),
                    thinking: extra_field("thinking"),
                    betas: betas(extra_field("anthropic_beta")),
                    forced: body
                        .get("toolConfig")
                        .and_then(|c| c.get("toolChoice"))
                        .is_some_and(|c| c.get("any").is_some() || c.get("tool").is_some()),
                }
            }
            Dialect::Anthropic => Settings {
                messages: body.get("messages"),
                max_tokens: body.get("max_tokens").and_then(Value::as_u64),
                temperature: body.get("temperature"),
                top_p: body.get("top_p"),
                top_k: body.get("top_k"),
                thinking: body.get("thinking"),
                betas: betas(body.get("anthropic_beta")),
                forced: matches!(
                    body.get("tool_choice").and_then(|c| c.get("type")).and_then(Value::as_str),
                    Some("any" | "tool")
                ),
            },
        }
    }
}

/// Which thinking modes a Claude model takes: `enabled` (a budget), `adaptive`, `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Modes {
    enabled: bool,
    adaptive: bool,
    disabled: bool,
    /// Thinking cannot be switched off: leaving `thinking` out still means thinking, and
    /// forced tool use is an error even beside adaptive thinking (R3.7; elsewhere "adaptive
    /// thinking supports forced tool use").
    always_on: bool,
}

const ALWAYS_ON: Modes = Modes { enabled: false, adaptive: true, disabled: false, always_on: true };
const ADAPTIVE_ONLY: Modes =
    Modes { enabled: false, adaptive: true, disabled: false, always_on: false };
const EITHER: Modes = Modes { enabled: true, adaptive: true, disabled: true, always_on: false };
const BUDGET_ONLY: Modes =
    Modes { enabled: true, adaptive: false, disabled: true, always_on: false };
const NO_THINKING: Modes =
    Modes { enabled: false, adaptive: false, disabled: true, always_on: false };

/// The thinking modes of Claude models (rules R4.1, from AWS's "Adaptive thinking" page): the
/// first row with a name the model id contains; more specific names come first.
const MODES: &[(&[&str], Modes)] = &[
    (&["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-fable-5-1"], ALWAYS_ON),
    (&["claude-fable-5-2"], ALWAYS_ON),
    // "only support adaptive thinking ... disabled thinking ... not supported".
    (
        &["claude-opus-4-7", "claude-opus-4-8", "claude-mythos", "claude-opus-5", "claude-fable-5"],
        ADAPTIVE_ONLY,
    ),
    (&["claude-opus-4-6", "claude-sonnet-4-6", "claude-sonnet-5"], EITHER),
    // Before Claude 3.7: no extended thinking at all.
    (&["claude-3-5", "claude-3-haiku", "claude-3-sonnet", "claude-3-opus"], NO_THINKING),
    // Claude 3.7 and 4 to 4.5: a budget only ("Older models ... do not support adaptive").
    (&["claude-3-7", "claude-opus-4", "claude-sonnet-4", "claude-haiku-4"], BUDGET_ONLY),
];

/// The thinking modes of a Claude model by its id: `None` for a model this emulator does not
/// know, whose settings it leaves alone.
fn modes(model_id: &str) -> Option<Modes> {
    let key = model_key(model_id);
    let claude = key.strip_prefix("anthropic.")?;
    MODES.iter().find(|(names, _)| names.iter().any(|n| claude.contains(n))).map(|(_, m)| *m)
}

/// The most output tokens a Claude model writes (rules file, max output tokens by model), by
/// its id; `None` for a model this emulator does not know.
fn max_output(model_id: &str) -> Option<u64> {
    let key = model_key(model_id);
    let claude = key.strip_prefix("anthropic.")?;
    let has = |name: &str| claude.contains(name);
    let newest = ["claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-4-6"];
    if newest.iter().any(|m| has(m)) || has("claude-opus-5") || has("claude-fable-5-1") {
        return Some(128_000);
    }
    if has("claude-opus-4-5") || has("claude-sonnet-4") || has("claude-haiku-4-5") {
        return Some(64_000);
    }
    if has("claude-opus-4") {
        return Some(32_000);
    }
    // 3.7 Sonnet writes 128K with the `output-128k-2025-02-19` beta: left to the service.
    None
}

/// The models that refuse `temperature`, `top_p` and `top_k`.
const SAMPLING_REFUSED: &[&str] = &["claude-opus-4-7", "claude-opus-4-8"];

fn from_model(message: impl AsRef<str>) -> Refusal {
    validation(format!("The model returned the following errors: {}", message.as_ref()))
}

/// Checks the settings of a body sent to `model_id`; the first refusal, in the order below.
pub(crate) fn check(dialect: Dialect, body: &Value, model_id: &str) -> Result<(), Refusal> {
    let settings = Settings::read(dialect, body);
    if settings.messages.and_then(Value::as_array).is_some_and(Vec::is_empty) {
        // The texts for an empty list are not recorded (R2.1: "Converse: UNVERIFIED text");
        // these are the Anthropic Messages API's and Converse's first-message texts.
        return Err(match dialect {
            Dialect::Anthropic => from_model("messages: at least one message is required"),
            Dialect::Converse => validation(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ),
        });
    }
    // R1.15: temperature and topP in [0, 1]; botocore does not check the maximum, the
    // service does (its text is not recorded: the Anthropic Messages API's is used).
    for (value, name) in [(settings.temperature, "temperature"), (settings.top_p, "top_p")] {
        if let Some(number) = value.and_then(Value::as_f64)
            && !(0.0..=1.0).contains(&number)
        {
            return Err(from_model(format!("{name}: range: 0..1")));
        }
    }
    // Opus 4.7 and 4.8 take no sampling parameters at all: "The model returned the
    // following errors: temperature is deprecated for this model." (reported on Bedrock for
    // temperature; top_p and top_k alike, pollinations#11319). Other models of their
    // generation are not recorded refusing them, so they take them here.
    let key = model_key(model_id).to_ascii_lowercase();
    if SAMPLING_REFUSED.iter().any(|name| key.contains(name)) {
        let sampling = [
            (settings.temperature, "temperature"),
            (settings.top_p, "top_p"),
            (settings.top_k, "top_k"),
        ];
        if let Some((_, name)) = sampling.iter().find(|(value, _)| value.is_some()) {
            return Err(from_model(format!("{name} is deprecated for this model.")));
        }
    }
    // The text is not recorded: the Anthropic Messages API's.
    if let (Some(max), Some(limit)) = (settings.max_tokens, max_output(model_id))
        && max > limit
    {
        return Err(from_model(format!(
            "max_tokens: {max} > {limit}, which is the maximum allowed number of output tokens for {}",
            model_key(model_id)
        )));
    }
    let Some(modes) = modes(model_id) else { return Ok(()) };
    let Some(thinking) = settings.thinking else {
        if settings.forced && modes.always_on {
            return Err(from_model(
                "Thinking may not be enabled when tool_choice forces tool use.",
            ));
        }
        return Ok(());
    };
    let kind = thinking.get("type").and_then(Value::as_str).unwrap_or_default();
    let taken = match kind {
        "enabled" => modes.enabled,
        "adaptive" => modes.adaptive,
        "disabled" => modes.disabled,
        _ => true,
    };
    if !taken {
        // R4.1 says these "will return a 400 error" without quoting it; this is the text of
        // the Anthropic Messages API's schema check.
        return Err(from_model(format!(
            "thinking.type: Input should be one of the thinking types this model supports, not '{kind}'"
        )));
    }
    if kind != "enabled" && kind != "adaptive" {
        return Ok(());
    }
    // R3.7 (pydantic-ai#3092, oh-my-pi#341): manual thinking never takes forced tool use;
    // adaptive takes it where the model does.
    if settings.forced && (kind == "enabled" || modes.always_on) {
        return Err(from_model("Thinking may not be enabled when tool_choice forces tool use."));
    }
    if kind == "enabled" {
        let budget = thinking.get("budget_tokens").and_then(Value::as_u64);
        // R4.2, LibreChat#8346.
        if budget.is_some_and(|b| b < 1024) {
            return Err(from_model(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            ));
        }
        // R4.2, vercel/ai#7927; interleaved thinking lets the budget cover the whole turn.
        let interleaved = settings.betas.iter().any(|b| b.starts_with("interleaved-thinking-"));
        if let (Some(budget), Some(max)) = (budget, settings.max_tokens)
            && budget >= max
            && !interleaved
        {
            return Err(from_model(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
            ));
        }
    }
    // R4.4: sampling beside thinking (one-hub#529, n8n#14288, quarkus-langchain4j#1812).
    if settings.temperature.and_then(Value::as_f64).is_some_and(|t| t != 1.0) {
        return Err(from_model(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#important-considerations-when-using-extended-thinking",
        ));
    }
    if settings.top_p.is_some_and(|v| !v.is_null()) {
        return Err(from_model("top_p must be unset when thinking is enabled."));
    }
    if settings.top_k.is_some_and(|v| !v.is_null()) {
        return Err(from_model("`top_k` must be unset when thinking is enabled."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SONNET_4: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

    fn refused(body: Value, model: &str) -> Option<String> {
        check(Dialect::Converse, &body, model).err().map(|r| r.message)
    }

    fn anthropic(body: Value, model: &str) -> Option<String> {
        check(Dialect::Anthropic, &body, model).err().map(|r| r.message)
    }

    fn thinking(thinking: Value, max_tokens: u64) -> Value {
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": max_tokens},
            "additionalModelRequestFields": {"thinking": thinking}})
    }

    #[test]
    fn each_model_takes_its_thinking_modes() {
        let adaptive = json!({"type": "adaptive"});
        let enabled = json!({"type": "enabled", "budget_tokens": 2048});
        let disabled = json!({"type": "disabled"});
        assert!(refused(thinking(adaptive.clone(), 4096), SONNET_4).is_some());
        assert_eq!(refused(thinking(enabled.clone(), 4096), SONNET_4), None);
        let opus_47 = "global.anthropic.claude-opus-4-7";
        assert_eq!(refused(thinking(adaptive.clone(), 4096), opus_47), None);
        assert!(refused(thinking(enabled.clone(), 4096), opus_47).is_some());
        assert!(refused(thinking(disabled.clone(), 4096), opus_47).is_some());
        assert_eq!(refused(thinking(disabled.clone(), 4096), SONNET_4), None);
        assert!(refused(thinking(disabled, 4096), "anthropic.claude-opus-5-5").is_some());
        assert!(refused(thinking(enabled.clone(), 4096), "anthropic.claude-3-5-haiku").is_some());
        // A model this emulator does not know is left alone.
        assert_eq!(refused(thinking(adaptive, 4096), "meta.llama4-maverick-17b"), None);
    }

    #[test]
    fn forced_tool_use_goes_with_adaptive_thinking_where_the_model_takes_it() {
        let forced = |thinking_config: Value, model: &str| {
            let mut body = thinking(thinking_config, 4096);
            body["toolConfig"] = json!({"tools": [], "toolChoice": {"any": {}}});
            refused(body, model)
        };
        let enabled = json!({"type": "enabled", "budget_tokens": 2048});
        let adaptive = json!({"type": "adaptive"});
        assert!(forced(enabled.clone(), SONNET_4).unwrap().contains("forces tool use"));
        assert!(forced(enabled, "us.anthropic.claude-sonnet-4-6").is_some());
        assert_eq!(forced(adaptive.clone(), "us.anthropic.claude-sonnet-4-6"), None);
        assert!(forced(adaptive, "anthropic.claude-opus-5-5").is_some());
        let mut omitted = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
        omitted["toolConfig"] = json!({"tools": [], "toolChoice": {"any": {}}});
        assert!(refused(omitted.clone(), "anthropic.claude-opus-5-5").is_some());
        assert_eq!(refused(omitted, "global.anthropic.claude-opus-4-7"), None);
    }

    #[test]
    fn the_budget_and_sampling_beside_thinking_get_bedrocks_texts() {
        let budget = |n| json!({"type": "enabled", "budget_tokens": n});
        assert!(refused(thinking(budget(512), 4096), SONNET_4).unwrap().contains("1024"));
        let text = refused(thinking(budget(4096), 4096), SONNET_4).unwrap();
        assert!(text.contains("`max_tokens` must be greater than"), "{text}");
        let mut body = thinking(budget(4096), 4096);
        body["additionalModelRequestFields"]["anthropic_beta"] =
            json!(["interleaved-thinking-2025-05-14"]);
        assert_eq!(refused(body, SONNET_4), None);
        let mut body = thinking(budget(2048), 4096);
        body["inferenceConfig"]["temperature"] = json!(0.5);
        assert!(refused(body.clone(), SONNET_4).unwrap().contains("`temperature` may only"));
        body["inferenceConfig"]["temperature"] = json!(1);
        assert_eq!(refused(body.clone(), SONNET_4), None);
        body["additionalModelRequestFields"]["top_k"] = json!(40);
        assert!(refused(body, SONNET_4).unwrap().contains("`top_k` must be unset"));
    }

    #[test]
    fn max_tokens_past_the_models_output_maximum_is_refused() {
        let body = |max: u64| {
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "inferenceConfig": {"maxTokens": max}})
        };
        assert_eq!(refused(body(64_000), SONNET_4), None);
        assert!(refused(body(64_001), SONNET_4).unwrap().contains("64001 > 64000"));
        assert_eq!(refused(body(100_000), "global.anthropic.claude-opus-4-7"), None);
        assert!(refused(body(40_000), "us.anthropic.claude-opus-4-1-20250805-v1:0").is_some());
    }

    #[test]
    fn opus_4_7_and_4_8_refuse_every_sampling_parameter() {
        let body = |extra: Value| {
            let mut body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
                "messages": [{"role": "user", "content": "hi"}]});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body
        };
        for model in ["global.anthropic.claude-opus-4-7", "us.anthropic.claude-opus-4-8"] {
            for (key, value) in
                [("temperature", json!(0.5)), ("top_p", json!(0.9)), ("top_k", json!(5))]
            {
                let message = anthropic(body(json!({key: value})), model).unwrap();
                assert!(
                    message.ends_with(&format!("{key} is deprecated for this model.")),
                    "{message}"
                );
            }
            assert_eq!(anthropic(body(json!({})), model), None);
        }
        assert_eq!(
            anthropic(body(json!({"temperature": 0.5})), "us.anthropic.claude-sonnet-5"),
            None
        );
    }

    #[test]
    fn an_empty_conversation_and_sampling_out_of_range_are_refused() {
        assert!(refused(json!({"messages": []}), SONNET_4).is_some());
        let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"temperature": 1.5}});
        assert!(refused(body, SONNET_4).unwrap().ends_with("temperature: range: 0..1"));
        let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"temperature": 1, "topP": 0}});
        assert_eq!(refused(body, SONNET_4), None);
    }
}
