//! Settings: the model id, the InvokeModel body's `anthropic_version`, the message count,
//! unknown top-level keys, the thinking mode and budget, max_tokens, and the sampling
//! settings.
//!
//! Emits [`Rule::ModelId`] (`model.id`), [`Rule::InvokeVersion`] (`invoke.version`),
//! [`Rule::NoMessages`] (`messages.none`),
//! [`Rule::TooManyMessages`] (`messages.too_many`), [`Rule::UnknownKey`]
//! (`shape.unknown_key`, top-level keys; `context_management` on Converse by name), [`Rule::ThinkingMode`] (`thinking.mode`),
//! [`Rule::MaxTokens`] (`inference.max_tokens`), [`Rule::ThinkingBudget`]
//! (`thinking.budget`), [`Rule::ThinkingSampling`] (`thinking.sampling`) and
//! [`Rule::Sampling`] (`inference.range`).

use serde_json::Number;
use verbatim_model::{Api, CONTEXT_MANAGEMENT_KEY, InferenceConfig, ThinkingConfig, ThinkingMode};

use super::{CheckPass, RequestFacts};
use crate::assemble::Severity;
use crate::assemble::action::Action;
use crate::assemble::wire::Setting;
use crate::capability::{ReasoningSetting, Sampling, other_provider};
use crate::rules::Rule;
use crate::{JsonPath, anthropic};

const MAX_MESSAGES: usize = 100_000;

const MAX_STOP_SEQUENCES: usize = 2500;

const MIN_BUDGET: u32 = 1024;

const INTERLEAVED_BETA: &str = "interleaved-thinking-2025-05-14";

/// Converse request members the model keeps as unmapped keys.
const CONVERSE_TOP_LEVEL: &[&str] = &[
    "requestMetadata",
    "performanceConfig",
    "guardrailConfig",
    "outputConfig",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "serviceTier",
];

/// Anthropic request members the model keeps as unmapped keys.
const ANTHROPIC_TOP_LEVEL: &[&str] = &[
    anthropic::VERSION_KEY,
    "metadata",
    "output_config",
    "service_tier",
    "container",
    CONTEXT_MANAGEMENT_KEY,
    "mcp_servers",
];

/// The request's settings, before anything in its messages.
pub(super) fn settings(out: &mut CheckPass<'_>, shape: &RequestFacts) {
    let state = out.state;
    let request = &state.request;
    let caps = out.context.caps;
    if let Some(id) = out.context.model_id
        && (id.is_empty() || id.len() > 2048)
    {
        let what = format!("the model id is {} characters long; it must be 1 to 2048", id.len());
        out.error(Rule::ModelId, JsonPath::root(), what, "");
    }
    if out.api() == Api::InvokeModel {
        anthropic_version(out, request);
    }
    if request.messages.is_empty() {
        out.error(Rule::NoMessages, JsonPath::root().key("messages"), "there are no messages", "");
    } else if request.messages.len() > MAX_MESSAGES {
        let what =
            format!("{} messages; at most {MAX_MESSAGES} are accepted", request.messages.len());
        out.error(Rule::TooManyMessages, JsonPath::root().key("messages"), what.clone(), &what);
    }
    unknown_top_level(out);
    thinking_mode(out, request);
    let inference = request.inference.clone().unwrap_or_default();
    let max_tokens = inference.max_tokens;
    // max_tokens present, in range, and required on InvokeModel.
    match max_tokens {
        None if out.api() == Api::InvokeModel => {
            let what = "InvokeModel requires max_tokens";
            let detail = "Malformed input request: #: required key [max_tokens] not found";
            out.error(Rule::MaxTokens, JsonPath::root().key("max_tokens"), what, detail);
        }
        None if shape.thinking_on => {
            let what = "thinking is on but maxTokens is not set; the model's default may be lower than the thinking budget";
            let path = out.setting(Setting::MaxTokens);
            out.push(Rule::MaxTokens, Severity::Warning, path, what, "", None);
        }
        Some(0) => {
            let detail = "Invalid value for parameter inferenceConfig.maxTokens, value: 0, valid min value: 1";
            out.error(Rule::MaxTokens, out.setting(Setting::MaxTokens), "max_tokens is 0", detail);
        }
        Some(n) => {
            if let Some(max) = caps.max_output_tokens
                && n > max
            {
                let what = format!("max_tokens {n} is above the {} maximum of {max}", caps.family);
                let detail = format!(
                    "max_tokens: {n} > {max}, which is the maximum allowed number of output tokens for {}",
                    caps.family
                );
                let action = Action::SetInference {
                    inference: Some(InferenceConfig { max_tokens: Some(max), ..inference.clone() }),
                };
                out.fix(Rule::MaxTokens, out.setting(Setting::MaxTokens), what, &detail, action);
            }
        }
        None => {}
    }
    if let Some(ThinkingConfig { mode: ThinkingMode::Enabled { budget_tokens }, .. }) =
        &request.thinking
    {
        budget(out, request, *budget_tokens, max_tokens);
    }
    let refused = deprecated_sampling(out, request, &inference);
    if shape.thinking_on && !refused {
        sampling_with_thinking(out, request, &inference);
    }
    ranges(out, &inference);
}

/// The InvokeModel body's `anthropic_version`, judged by the capability row: an error when
/// the table knows the model and its row does not list the version, a warning when the model
/// is unknown (whether it takes the version is not known). No fix: see the rule's action.
fn anthropic_version(out: &mut CheckPass<'_>, request: &verbatim_model::Request) {
    let Some(version) = request.unmapped.anthropic.get(anthropic::VERSION_KEY) else {
        return; // The default, which every row takes.
    };
    let caps = out.context.caps;
    let versions = &caps.anthropic_versions;
    if version.as_str().is_some_and(|v| versions.invoke_accepts(v)) {
        return;
    }
    let shown = version.as_str().map_or_else(|| version.to_string(), str::to_owned);
    let accepted = versions.invoke.join(", ");
    let path = JsonPath::root().key(anthropic::VERSION_KEY);
    if caps.known {
        let what = format!(
            "{} does not take anthropic_version `{shown}` on InvokeModel; it takes {accepted}",
            caps.family
        );
        out.error(Rule::InvokeVersion, path, what, &shown);
    } else {
        let unknown = match out.context.model_id {
            None => "no model is named",
            Some(_) => "the capability table does not know this model",
        };
        let what = format!(
            "{unknown}, so whether it takes anthropic_version `{shown}` is not known; every Claude model takes {accepted}"
        );
        out.push(Rule::InvokeVersion, Severity::Warning, path, what, &shown, None);
    }
}

fn unknown_top_level(out: &mut CheckPass<'_>) {
    let request = out.request();
    // On InvokeModel, top-level keys the model has no field for are kept as model fields.
    let (known, keys): (&[&str], Vec<&String>) = match out.api() {
        Api::Converse => (CONVERSE_TOP_LEVEL, request.unmapped.converse.keys().collect()),
        Api::InvokeModel | Api::Messages => (
            ANTHROPIC_TOP_LEVEL,
            request
                .unmapped
                .anthropic
                .keys()
                .chain(request.model_fields.iter().flat_map(|fields| fields.keys()))
                .collect(),
        ),
    };
    let unknown: Vec<String> =
        keys.into_iter().filter(|k| !known.contains(&k.as_str())).cloned().collect();
    if out.api() == Api::Converse {
        context_management_on_converse(out, &unknown);
    }
    let api = out.api();
    for key in unknown.into_iter().filter(|k| !on_converse_by_name(api, k)) {
        let what = format!("`{key}` is not a field of the request this version knows");
        let path = JsonPath::root().key(key.clone());
        out.push(Rule::UnknownKey, Severity::Warning, path, what, &key, None);
    }
}

/// True for a key [`context_management_on_converse`] reports by name.
fn on_converse_by_name(api: Api, key: &str) -> bool {
    api == Api::Converse && key == CONTEXT_MANAGEMENT_KEY
}

/// Server compaction and context editing (`context_management`) exist on InvokeModel and the
/// Messages API only. A top-level `context_management` in a Converse body is an error: the
/// Converse schema has no such member and Bedrock answers unknown keys with its schema text
/// (bedrock-rules R1.1, R1.9: `extraneous key [...] is not permitted`). Inside
/// `additionalModelRequestFields` it is passed to the model, and nothing records what
/// Bedrock answers, so a warning: Converse has no content member for the `compaction` block
/// the reply would carry.
fn context_management_on_converse(out: &mut CheckPass<'_>, unknown: &[String]) {
    let what = "`context_management` (server compaction and context editing) exists only on InvokeModel and the Messages API; Converse has no such field";
    if unknown.iter().any(|k| k == CONTEXT_MANAGEMENT_KEY) {
        let path = JsonPath::root().key(CONTEXT_MANAGEMENT_KEY);
        out.error(Rule::UnknownKey, path, what, CONTEXT_MANAGEMENT_KEY);
    }
    let request = out.request();
    if request.model_fields.as_ref().is_some_and(|f| f.contains_key(CONTEXT_MANAGEMENT_KEY)) {
        let path = JsonPath::root().key("additionalModelRequestFields").key(CONTEXT_MANAGEMENT_KEY);
        let what = "`context_management` in additionalModelRequestFields: Converse has no content member for the `compaction` block a compacting reply carries, and no recording shows what Bedrock answers; server compaction and context editing are InvokeModel's and the Messages API's";
        out.push(Rule::UnknownKey, Severity::Warning, path, what, CONTEXT_MANAGEMENT_KEY, None);
    }
}

fn thinking_mode(out: &mut CheckPass<'_>, request: &verbatim_model::Request) {
    let caps = out.context.caps;
    let Some(config) = &request.thinking else { return };
    let path = out.setting(Setting::Thinking);
    // gpt-oss was recorded refusing the field, whatever its value (BerriAI/litellm#13959);
    // repair leaves it out, and the model reasons at its default effort (`reasoning_effort`
    // sets another).
    if caps.reasoning == ReasoningSetting::ReasoningEffort && out.api() == Api::Converse {
        let what = format!(
            "`thinking` is Anthropic's setting for Claude; {} takes `reasoning_effort` instead",
            caps.family
        );
        let detail = "The model returned the following errors: Failed to deserialize the JSON body into the target type: thinking: unknown field thinking";
        let action = Action::SetThinking { thinking: None };
        out.fix(Rule::ReasoningSetting, path, what, detail, action);
        return;
    }
    // Another provider's model: Anthropic's setting is not known to be taken (nothing records
    // the answer), and it is not how those models reason (DeepSeek R1 always reasons and
    // returns its reasoning unsigned), so a warning that says so.
    if let Some(provider) = out.context.model_id.and_then(other_provider)
        && !matches!(config.mode, ThinkingMode::Disabled)
    {
        let what = format!(
            "`thinking` is Anthropic's setting for Claude; {provider} models are not known to take it"
        );
        out.push(Rule::ThinkingMode, Severity::Warning, path, what, "", None);
        return;
    }
    let with_mode = |mode| Some(ThinkingConfig { mode, ..config.clone() });
    match &config.mode {
        ThinkingMode::Enabled { .. } if !caps.thinking.enabled => {
            let (what, thinking) = if caps.thinking.adaptive {
                let what = format!(
                    "{} takes only adaptive thinking; manual thinking (`enabled` with budget_tokens) returns 400",
                    caps.family
                );
                (what, with_mode(ThinkingMode::Adaptive { effort: None }))
            } else {
                (format!("{} does not support thinking", caps.family), None)
            };
            let detail = "type `enabled` is not supported for this model";
            out.fix(Rule::ThinkingMode, path, what, detail, Action::SetThinking { thinking });
        }
        ThinkingMode::Adaptive { .. } if !caps.thinking.adaptive => {
            let (what, thinking) = if caps.thinking.enabled {
                let what = format!(
                    "{} does not support adaptive thinking; it takes `enabled` with budget_tokens",
                    caps.family
                );
                let mode = ThinkingMode::Enabled { budget_tokens: MIN_BUDGET };
                (what, Some(ThinkingConfig::new(mode)))
            } else {
                (format!("{} does not support thinking", caps.family), None)
            };
            let detail = "type `adaptive` is not supported for this model";
            out.fix(Rule::ThinkingMode, path, what, detail, Action::SetThinking { thinking });
        }
        ThinkingMode::Disabled if !caps.thinking.disabled => {
            let what = if caps.thinking.always_on {
                format!(
                    "thinking cannot be disabled on {}; leaving the setting out keeps its default",
                    caps.family
                )
            } else {
                format!("{} does not accept `disabled`; leave thinking out instead", caps.family)
            };
            let detail = "type `disabled` is not supported for this model";
            out.fix(Rule::ThinkingMode, path, what, detail, Action::SetThinking { thinking: None });
        }
        _ => {}
    }
}

fn budget(
    out: &mut CheckPass<'_>,
    request: &verbatim_model::Request,
    budget: u32,
    max_tokens: Option<u32>,
) {
    let config = request.thinking.clone().expect("called with manual thinking");
    let path = out.setting(Setting::Budget);
    let set = |budget_tokens| Action::SetThinking {
        thinking: Some(ThinkingConfig {
            mode: ThinkingMode::Enabled { budget_tokens },
            ..config.clone()
        }),
    };
    if budget < MIN_BUDGET {
        let what = format!("budget_tokens is {budget}; the minimum is {MIN_BUDGET}");
        let detail =
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024";
        out.fix(Rule::ThinkingBudget, path, what, detail, set(MIN_BUDGET));
        return;
    }
    // Interleaved thinking (a beta flag with manual thinking) budgets the whole turn, so the
    // budget may exceed max_tokens; adaptive thinking has no budget to check.
    let interleaved =
        request.beta.as_ref().is_some_and(|b| b.iter().any(|f| f == INTERLEAVED_BETA));
    if let Some(max) = max_tokens
        && budget >= max
        && !interleaved
    {
        let what = format!("budget_tokens {budget} is not below max_tokens {max}");
        let detail = "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size";
        let proposal = (max > MIN_BUDGET).then(|| set(max - 1));
        out.push(Rule::ThinkingBudget, Severity::Error, path, what, detail, proposal);
    }
}

fn sampling_with_thinking(
    out: &mut CheckPass<'_>,
    request: &verbatim_model::Request,
    inference: &InferenceConfig,
) {
    let one = Number::from(1);
    if let Some(t) = &inference.temperature
        && t.as_f64() != one.as_f64()
    {
        let what = format!("temperature {t} is set while thinking is on");
        let detail = "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#important-considerations-when-using-extended-thinking";
        let inference = InferenceConfig { temperature: None, ..inference.clone() };
        let action = Action::SetInference { inference: Some(inference) };
        out.fix(Rule::ThinkingSampling, out.setting(Setting::Temperature), what, detail, action);
    }
    if inference.top_p.is_some() {
        let detail = "top_p must be unset when thinking is enabled.";
        let inference = InferenceConfig { top_p: None, ..inference.clone() };
        let action = Action::SetInference { inference: Some(inference) };
        let what = "top_p is set while thinking is on";
        out.fix(Rule::ThinkingSampling, out.setting(Setting::TopP), what, detail, action);
    }
    if request.top_k.is_some() {
        let detail = "`top_k` must be unset when thinking is enabled.";
        let what = "top_k is set while thinking is on";
        let action = Action::SetTopK { top_k: None };
        out.fix(Rule::ThinkingSampling, out.setting(Setting::TopK), what, detail, action);
    }
}

/// `temperature`, `top_p` and `top_k` on a model that no longer takes them: true when the
/// model is known to refuse them (the checks of sampling beside thinking then say nothing
/// more about the same parameters).
fn deprecated_sampling(
    out: &mut CheckPass<'_>,
    request: &verbatim_model::Request,
    inference: &InferenceConfig,
) -> bool {
    let caps = out.context.caps;
    if caps.sampling == Sampling::Accepted {
        return false;
    }
    let refused = caps.sampling == Sampling::Refused;
    let set: [(Setting, &str, bool, Action); 3] = [
        (
            Setting::Temperature,
            "temperature",
            inference.temperature.is_some(),
            Action::SetInference {
                inference: Some(InferenceConfig { temperature: None, ..inference.clone() }),
            },
        ),
        (
            Setting::TopP,
            "top_p",
            inference.top_p.is_some(),
            Action::SetInference {
                inference: Some(InferenceConfig { top_p: None, ..inference.clone() }),
            },
        ),
        (Setting::TopK, "top_k", request.top_k.is_some(), Action::SetTopK { top_k: None }),
    ];
    for (setting, name, present, action) in set {
        if !present {
            continue;
        }
        let path = out.setting(setting);
        if refused {
            let what = format!("{} no longer takes {name}", caps.family);
            out.fix(Rule::SamplingDeprecated, path, what, name, action);
        } else {
            let what = format!(
                "{name} is refused by Opus 4.7 and 4.8; whether {} takes it is not recorded",
                caps.family
            );
            out.push(Rule::SamplingDeprecated, Severity::Warning, path, what, name, None);
        }
    }
    refused
}

fn ranges(out: &mut CheckPass<'_>, inference: &InferenceConfig) {
    for (setting, value, name) in [
        (Setting::Temperature, &inference.temperature, "temperature"),
        (Setting::TopP, &inference.top_p, "top_p"),
    ] {
        let Some(v) = value.as_ref().and_then(Number::as_f64) else { continue };
        if (0.0..=1.0).contains(&v) {
            continue;
        }
        let clamped = if v < 0.0 { Number::from(0) } else { Number::from(1) };
        let mut fixed = inference.clone();
        match setting {
            Setting::Temperature => fixed.temperature = Some(clamped),
            _ => fixed.top_p = Some(clamped),
        }
        let what = format!("{name} is {v}; it must be between 0 and 1");
        let detail = format!("{name}: Input should be less than or equal to 1");
        let action = Action::SetInference { inference: Some(fixed) };
        out.fix(Rule::Sampling, out.setting(setting), what, &detail, action);
    }
    if let Some(stops) = &inference.stop_sequences {
        let path = out.setting(Setting::StopSequences);
        if let Some(k) = stops.iter().position(String::is_empty) {
            let mut fixed = inference.clone();
            fixed.stop_sequences = Some(stops.iter().filter(|s| !s.is_empty()).cloned().collect());
            let detail = format!(
                "Invalid length for parameter inferenceConfig.stopSequences[{k}], value: 0, valid min length: 1"
            );
            let action = Action::SetInference { inference: Some(fixed) };
            out.fix(Rule::Sampling, path.index(k), "an empty stop sequence", &detail, action);
        } else if stops.len() > MAX_STOP_SEQUENCES {
            let what = format!("{} stop sequences; at most {MAX_STOP_SEQUENCES}", stops.len());
            out.error(Rule::Sampling, path, what.clone(), &what);
        }
    }
}
