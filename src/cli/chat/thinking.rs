//! What a thinking setting becomes on the wire for a model, so the chat says it before the
//! next turn sends it: the engine's own assembly (the model's capability row, the budget rules)
//! run on a one-message history, the way each turn runs it.

use verbatim_model::{Api, HistoryMessage, InferenceConfig, Message, ThinkingConfig, ThinkingMode};
use verbatim_protocol::assemble::{Policy, TurnConfig, assemble};
use verbatim_protocol::capability::{self, ReasoningSetting};
use verbatim_protocol::rules::Rule;

/// What a thinking setting gives on a model.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// Sent as asked.
    AsAsked,
    /// Sent otherwise: the model takes another mode (`sent`; `why` says so, from the rules).
    Changed {
        /// What is sent instead.
        sent: Option<ThinkingConfig>,
        /// The rule's account of why.
        why: String,
    },
    /// Sent as the model family's own reasoning setting (gpt-oss `reasoning_effort`, Nova 2
    /// `reasoningConfig`), named as it goes on the wire.
    Mapped(String),
    /// Not sendable as asked on any terms the user would mean (a budget under the minimum or
    /// not below `max_tokens`): refused, with the rule's account of why.
    Refused(String),
}

/// What `asked` gives on `model` through `api`, with requests of `max_tokens`.
pub(super) fn outcome(
    model: &str,
    api: Api,
    max_tokens: u32,
    asked: Option<&ThinkingConfig>,
) -> Outcome {
    let caps = capability::capabilities(Some(model));
    let on = asked.is_some_and(|t| !matches!(t.mode, ThinkingMode::Disabled));
    // A family with a setting of its own gets it, written by the engine's assembly (on
    // Converse; InvokeModel's body is Anthropic's, which these models do not take).
    if on && api == Api::Converse && caps.reasoning.field().is_some() {
        return Outcome::Mapped(family_setting(model, api, max_tokens, asked));
    }
    // Anthropic's setting is Claude's: the chat does not send it to another provider's model.
    if on && let Some(provider) = capability::other_provider(model) {
        if caps.reasoning == ReasoningSetting::AlwaysOn {
            return Outcome::Refused(format!(
                "{model} ({provider}) always reasons and takes no reasoning setting; leave thinking off and its reasoning still comes"
            ));
        }
        return Outcome::Refused(format!(
            "{model} is a model of {provider}; `thinking` is Anthropic's setting for Claude and is not sent to it, and no setting of its own is known"
        ));
    }
    let mut turn = TurnConfig::new(model, api);
    turn.thinking = asked.cloned();
    turn.inference = Some(InferenceConfig { max_tokens: Some(max_tokens), ..Default::default() });
    let history = [HistoryMessage::from(Message::user_text("?"))];
    let assembly = assemble(&history, &turn, Policy::Repair);
    let thinking_rule = |rule: Rule| matches!(rule, Rule::ThinkingMode | Rule::ThinkingBudget);
    let why = |message: &str| {
        // The diagnostic ends with Bedrock's answer; what the rule says comes first.
        message.split(". Bedrock answers: ").next().unwrap_or(message).to_owned()
    };
    if let Some(fix) =
        assembly.fixes.iter().find(|f| matches!(f.diagnostic.rule, Rule::ThinkingBudget))
    {
        return Outcome::Refused(why(&fix.diagnostic.message));
    }
    if let Some(left) = assembly.diagnostics.iter().find(|d| {
        thinking_rule(d.rule) && d.severity == verbatim_protocol::assemble::Severity::Error
    }) {
        return Outcome::Refused(why(&left.message));
    }
    match assembly.fixes.iter().find(|f| thinking_rule(f.diagnostic.rule)) {
        Some(fix) => Outcome::Changed {
            sent: assembly.request.thinking.clone(),
            why: why(&fix.diagnostic.message),
        },
        None => Outcome::AsAsked,
    }
}

/// What the assembly sends for `asked` on a family with its own setting: its field and value
/// as they appear in `additionalModelRequestFields`.
fn family_setting(
    model: &str,
    api: Api,
    max_tokens: u32,
    asked: Option<&ThinkingConfig>,
) -> String {
    let mut turn = TurnConfig::new(model, api);
    turn.thinking = asked.cloned();
    turn.inference = Some(InferenceConfig { max_tokens: Some(max_tokens), ..Default::default() });
    let history = [HistoryMessage::from(Message::user_text("?"))];
    let assembly = assemble(&history, &turn, Policy::Repair);
    let fields = assembly.request.model_fields.unwrap_or_default();
    let field = capability::capabilities(Some(model)).reasoning.field().unwrap_or_default();
    match fields.get(field) {
        Some(value) => format!("additionalModelRequestFields.{field} {value}"),
        None => "nothing".to_owned(),
    }
}

/// A thinking setting as the chat names it: `off`, `adaptive`, `enabled, budget N tokens`.
pub(super) fn describe(thinking: Option<&ThinkingConfig>) -> String {
    match thinking.map(|t| &t.mode) {
        None => "off".into(),
        Some(ThinkingMode::Enabled { budget_tokens }) => {
            format!("enabled, budget {budget_tokens} tokens")
        }
        Some(ThinkingMode::Adaptive { effort: None }) => "adaptive".into(),
        Some(ThinkingMode::Adaptive { effort: Some(effort) }) => {
            format!("adaptive, effort {}", effort.as_str())
        }
        Some(ThinkingMode::Disabled) => "disabled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SONNET4: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
    const OPUS46: &str = "global.anthropic.claude-opus-4-6-v1";

    fn enabled(budget_tokens: u32) -> ThinkingConfig {
        ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens })
    }

    #[test]
    fn each_setting_is_sent_as_asked_changed_or_refused_as_the_rules_say() {
        let adaptive = ThinkingConfig::new(ThinkingMode::Adaptive { effort: None });
        let of = |model, asked: Option<&ThinkingConfig>| outcome(model, Api::Converse, 4096, asked);
        assert_eq!(of(SONNET4, None), Outcome::AsAsked);
        assert_eq!(of(SONNET4, Some(&enabled(2048))), Outcome::AsAsked);
        let Outcome::Changed { sent, why } = of(SONNET4, Some(&adaptive)) else { panic!() };
        assert_eq!(sent, Some(enabled(1024)));
        assert!(why.contains("does not support adaptive thinking"), "{why}");
        let Outcome::Refused(why) = of(SONNET4, Some(&enabled(500))) else { panic!() };
        assert_eq!(why, "budget_tokens is 500; the minimum is 1024");
        let Outcome::Refused(why) = of(SONNET4, Some(&enabled(5000))) else { panic!() };
        assert!(why.contains("not below max_tokens 4096"), "{why}");
        assert_eq!(of(OPUS46, Some(&adaptive)), Outcome::AsAsked);
        // Another provider's model never gets Anthropic's setting.
        let Outcome::Refused(why) = of("us.deepseek.r1-v1:0", Some(&enabled(2048))) else {
            panic!()
        };
        assert!(why.contains("always reasons") && why.contains("leave thinking off"), "{why}");
        assert_eq!(of("us.deepseek.r1-v1:0", None), Outcome::AsAsked);
        let llama = of("us.meta.llama4-maverick-17b-instruct-v1:0", Some(&enabled(2048)));
        let Outcome::Refused(why) = llama else { panic!("{llama:?}") };
        assert!(why.contains("a model of Meta Llama") && why.contains("not sent"), "{why}");
        // gpt-oss and Nova 2 get their own settings.
        assert_eq!(
            of("openai.gpt-oss-120b-1:0", Some(&enabled(2048))),
            Outcome::Mapped("additionalModelRequestFields.reasoning_effort \"low\"".into())
        );
        let Outcome::Mapped(sent) = of("us.amazon.nova-2-lite-v1:0", Some(&adaptive)) else {
            panic!()
        };
        assert!(sent.contains("reasoningConfig") && sent.contains("\"medium\""), "{sent}");
    }
}
