//! What a surface carries beside the conversation: the Messages API's `anthropic-version`
//! header, a version or betas written in a Messages API body, the beta flags on every surface,
//! and the thinking binding controls.
//!
//! Emits [`Rule::MessagesVersion`] (`messages.version`), [`Rule::HeaderInBody`]
//! (`messages.header_in_body`), [`Rule::BetaFlag`] (`beta.flag`) and
//! [`Rule::BindingControl`] (`thinking.binding_control`).

use serde_json::Value;
use verbatim_model::{Api, Request, ThinkingConfig, ThinkingMode};

use super::CheckPass;
use crate::assemble::Severity;
use crate::assemble::action::Action;
use crate::assemble::wire::Setting;
use crate::capability::{BINDING_CONTROLS_BETA, KNOWN_BETAS};
use crate::rules::Rule;
use crate::{JsonPath, anthropic, messages_api};

/// The key of the thinking object that holds the binding controls.
pub(crate) const BLOCK_BINDING: &str = "block_binding";

/// The control and the value that ask the API to drop a block bound to another prefix.
const PREFIX_MISMATCH: &str = "prefix_mismatch_behavior";
const DROP_BLOCK: &str = "drop_block";

pub(super) fn surface(out: &mut CheckPass<'_>) {
    if out.api() == Api::Messages {
        version_header(out);
        header_keys_in_body(out);
    }
    betas(out);
    binding_control(out);
}

/// The `anthropic-version` header, when the headers were given to judge: the capability
/// row's Messages versions decide, as `invoke.version` does for the body field.
fn version_header(out: &mut CheckPass<'_>) {
    let Some(headers) = out.context.headers else { return };
    let caps = out.context.caps;
    let path = JsonPath::root().key(messages_api::VERSION_HEADER);
    let accepted = caps.anthropic_versions.messages.join(", ");
    let Some(version) = headers.version.as_deref() else {
        let what = format!(
            "no anthropic-version header; the first-party API requires one, and what Bedrock answers without it is not recorded; send {}",
            caps.anthropic_versions.messages_header()
        );
        out.push(Rule::MessagesVersion, Severity::Warning, path, what, "", None);
        return;
    };
    if caps.anthropic_versions.messages_accepts(version) {
        return;
    }
    if caps.known {
        let what = format!(
            "{} does not take anthropic-version `{version}` on the Messages API; it takes {accepted}",
            caps.family
        );
        out.error(Rule::MessagesVersion, path, what, version);
    } else {
        let what = format!(
            "the capability table does not know this model, so whether it takes anthropic-version `{version}` is not known; every Claude model takes 2023-06-01"
        );
        out.push(Rule::MessagesVersion, Severity::Warning, path, what, version, None);
    }
}

/// A version or betas in a Messages API body (kept there by the codec): the surface reads
/// them from headers (messages-api B1), and nothing records what it does with the body form.
fn header_keys_in_body(out: &mut CheckPass<'_>) {
    let kept = &out.request().unmapped.anthropic;
    let found: Vec<(&'static str, &'static str)> = [
        (anthropic::VERSION_KEY, messages_api::VERSION_HEADER),
        ("anthropic_beta", messages_api::BETA_HEADER),
    ]
    .into_iter()
    .filter(|(key, _)| kept.contains_key(*key))
    .collect();
    for (key, header) in found {
        let what = format!(
            "`{key}` is an InvokeModel body field; the Messages API takes it as the `{header}` header"
        );
        let path = JsonPath::root().key(key);
        out.push(Rule::HeaderInBody, Severity::Warning, path, what, key, None);
    }
}

/// Where beta flag `k` sits on the surface.
fn beta_path(api: Api, k: usize) -> JsonPath {
    match api {
        Api::Converse => JsonPath::root().key("additionalModelRequestFields").key("anthropic_beta"),
        Api::InvokeModel => JsonPath::root().key("anthropic_beta"),
        Api::Messages => JsonPath::root().key(messages_api::BETA_HEADER),
    }
    .index(k)
}

fn betas(out: &mut CheckPass<'_>) {
    let Some(flags) = out.request().beta.clone() else { return };
    let caps = out.context.caps;
    let api = out.api();
    for (k, flag) in flags.iter().enumerate() {
        let path = beta_path(api, k);
        if caps.betas.refused_on_invoke.contains(&flag.as_str()) {
            if api == Api::InvokeModel {
                let what = format!("Bedrock refuses the beta flag `{flag}` for {}", caps.family);
                let rest: Vec<String> = flags.iter().filter(|f| *f != flag).cloned().collect();
                let action = Action::SetBeta { beta: (!rest.is_empty()).then_some(rest) };
                out.fix(Rule::BetaFlag, path, what, flag, action);
            } else {
                let what = format!(
                    "Bedrock was recorded refusing the beta flag `{flag}` for {} on InvokeModel; on this surface it is not recorded",
                    caps.family
                );
                out.push(Rule::BetaFlag, Severity::Warning, path, what, flag, None);
            }
        } else if !KNOWN_BETAS.contains(&flag.as_str()) {
            let what = format!(
                "the beta flag `{flag}` is not one verbatim knows; Bedrock answers `invalid beta flag` for flags it does not take"
            );
            out.push(Rule::BetaFlag, Severity::Warning, path, what, flag, None);
        }
    }
}

/// The control `thinking.block_binding.prefix_mismatch_behavior` when the request sets it.
pub(crate) fn binding_behavior(request: &Request) -> Option<&Value> {
    request.thinking.as_ref()?.extra.get(BLOCK_BINDING)?.get(PREFIX_MISMATCH)
}

/// True when the request asks the API to drop the blocks bound to another prefix, in a form
/// the API takes: on the Messages API, with its beta.
pub(crate) fn drops_mismatched_blocks(request: &Request, api: Api) -> bool {
    api == Api::Messages
        && binding_behavior(request).and_then(Value::as_str) == Some(DROP_BLOCK)
        && has_binding_beta(request)
}

fn has_binding_beta(request: &Request) -> bool {
    request.beta.as_ref().is_some_and(|b| b.iter().any(|f| f == BINDING_CONTROLS_BETA))
}

fn binding_control(out: &mut CheckPass<'_>) {
    let request = out.request();
    if request.thinking.as_ref().is_none_or(|t| !t.extra.contains_key(BLOCK_BINDING)) {
        return;
    }
    let path = out.setting(Setting::Thinking).key(BLOCK_BINDING);
    let caps = out.context.caps;
    if out.api() != Api::Messages {
        let what = format!(
            "thinking binding controls are documented for the Messages API only; {} may refuse or ignore `{BLOCK_BINDING}`",
            out.api().as_str()
        );
        out.push(Rule::BindingControl, Severity::Warning, path, what, "", None);
        return;
    }
    if !has_binding_beta(request) {
        let what = format!("`thinking.{BLOCK_BINDING}` needs the beta `{BINDING_CONTROLS_BETA}`");
        let mut beta = request.beta.clone().unwrap_or_default();
        beta.push(BINDING_CONTROLS_BETA.to_owned());
        let at = path.to_string();
        out.fix(Rule::BindingControl, path, what, &at, Action::SetBeta { beta: Some(beta) });
        return;
    }
    if caps.known && !caps.binding_controls {
        let what = format!(
            "{} does not bind thinking to the conversation prefix; the control has nothing to do",
            caps.family
        );
        out.push(Rule::BindingControl, Severity::Warning, path, what, "", None);
    }
}

/// The thinking setting that asks the API to drop the blocks bound to another prefix itself,
/// keeping everything else the request's setting says.
pub(crate) fn with_drop_block(thinking: Option<&ThinkingConfig>) -> ThinkingConfig {
    let mut config = thinking
        .cloned()
        .unwrap_or_else(|| ThinkingConfig::new(ThinkingMode::Adaptive { effort: None }));
    let mut control = serde_json::Map::new();
    control.insert(PREFIX_MISMATCH.into(), DROP_BLOCK.into());
    config.extra.insert(BLOCK_BINDING.into(), Value::Object(control));
    config
}
