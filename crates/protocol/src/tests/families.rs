//! The engine's thinking setting on families that ask for reasoning in a field of their own:
//! the assembled body carries that field and never Anthropic's `thinking`.

use serde_json::json;
use verbatim_model::{Api, HistoryMessage, InferenceConfig, Message, ThinkingConfig, ThinkingMode};

use crate::assemble::{Policy, Severity, TurnConfig, assemble};
use crate::rules::Rule;

fn body(
    model: &str,
    thinking: ThinkingMode,
    fields: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut turn = TurnConfig::new(model, Api::Converse);
    turn.thinking = Some(ThinkingConfig::new(thinking));
    turn.inference = Some(InferenceConfig { max_tokens: Some(4096), ..Default::default() });
    turn.model_fields = fields.map(|f| serde_json::from_value(f).unwrap());
    let history = [HistoryMessage::from(Message::user_text("Which is larger, 9.11 or 9.9?"))];
    let assembly = assemble(&history, &turn, Policy::Repair);
    assert!(assembly.is_valid(), "{model}: {:?}", assembly.diagnostics);
    assert!(assembly.fixes.is_empty(), "{model}: {:?}", assembly.fixes);
    assembly.body.unwrap()
}

#[test]
fn each_family_gets_its_own_reasoning_setting_and_never_anthropics() {
    let fields = |model, mode| body(model, mode, None)["additionalModelRequestFields"].clone();
    let budget = |budget_tokens| ThinkingMode::Enabled { budget_tokens };
    assert_eq!(fields("openai.gpt-oss-120b-1:0", budget(2048)), json!({"reasoning_effort": "low"}));
    assert_eq!(
        fields("us.amazon.nova-2-lite-v1:0", ThinkingMode::Adaptive { effort: None }),
        json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "medium"}})
    );
    // `disabled`: gpt-oss always reasons, Nova 2 is off by default; neither gets a setting.
    assert_eq!(
        body("openai.gpt-oss-20b-1:0", ThinkingMode::Disabled, None)
            .get("additionalModelRequestFields"),
        None
    );
    // A setting the turn's model fields already hold is the caller's and stays.
    let kept =
        body("openai.gpt-oss-20b-1:0", budget(30_000), Some(json!({"reasoning_effort": "low"})));
    assert_eq!(kept["additionalModelRequestFields"], json!({"reasoning_effort": "low"}));
    // Claude still gets Anthropic's.
    let claude = fields("us.anthropic.claude-sonnet-4-20250514-v1:0", budget(2048));
    assert_eq!(claude, json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}));
}

#[test]
fn anthropic_thinking_is_not_sent_to_a_family_without_a_known_setting() {
    for model in ["us.deepseek.r1-v1:0", "us.meta.llama4-maverick-17b-instruct-v1:0"] {
        let mut turn = TurnConfig::new(model, Api::Converse);
        turn.thinking = Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 2048 }));
        let history = [HistoryMessage::from(Message::user_text("hi"))];
        let assembly = assemble(&history, &turn, Policy::Repair);
        let body = assembly.body.expect("sent without the setting");
        assert_eq!(body.get("additionalModelRequestFields"), None, "{model}");
        let [warning] = &assembly.diagnostics[..] else { panic!("{:?}", assembly.diagnostics) };
        assert_eq!((warning.rule, warning.severity), (Rule::ThinkingMode, Severity::Warning));
        assert!(warning.message.contains("not sent"), "{warning}");
    }
}

#[test]
fn the_families_recorded_refusals_are_explained_by_their_rules() {
    let cases = [
        (
            "User messages cannot contain reasoning content. Please remove the reasoning content and try again.",
            Rule::ThinkingNotReplayable,
        ),
        (
            "This model doesn't support the reasoningContent.reasoningText.signature field. Remove reasoningContent.reasoningText.signature and try again.",
            Rule::ThinkingSignatureField,
        ),
        (
            "The model returned the following errors: Malformed input request: the provided reasoning config value is invalid, please reformat your input and try again.",
            Rule::ReasoningSetting,
        ),
        (
            "The model returned the following errors: Failed to deserialize the JSON body into the target type: thinking: unknown field thinking, expected one of messages, model",
            Rule::ReasoningSetting,
        ),
    ];
    for (message, rule) in cases {
        let found = crate::rules::explain(message);
        assert!(found.iter().take(2).any(|r| *r == rule), "{message}: {found:?}");
    }
    // DeepSeek R1's text is the one reasoning in a user message draws too: both are named.
    let both = crate::rules::explain(cases[0].0);
    assert!(both.iter().take(2).any(|r| *r == Rule::BlockRole), "{both:?}");
}
