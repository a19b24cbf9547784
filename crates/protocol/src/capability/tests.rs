//! The capability table's rows, read back for the ids Bedrock users send.

use super::*;
use verbatim_model::{ThinkingConfig, ThinkingMode};

#[test]
fn ids_find_their_family_and_unknown_ids_get_the_conservative_row() {
    let family = |id| capabilities(Some(id)).family;
    assert_eq!(family("us.anthropic.claude-sonnet-4-20250514-v1:0"), "claude-sonnet-4");
    assert_eq!(family("anthropic.claude-sonnet-4-5-20250929-v1:0"), "claude-sonnet-4.5");
    assert_eq!(family("global.anthropic.claude-opus-4-6-v1"), "claude-opus-4.6");
    assert_eq!(family("us.anthropic.claude-3-7-sonnet-20250219-v1:0"), "claude-3.7-sonnet");
    assert_eq!(family("anthropic.claude-3-5-haiku-20241022-v1:0"), "claude-3.5");
    assert_eq!(family("anthropic.claude-opus-5-5"), "claude-opus-5.5");
    assert_eq!(family("us.amazon.nova-2-lite-v1:0"), "amazon-nova-2");
    assert_eq!(family("us.amazon.nova-pro-v1:0"), "amazon-nova");
    let app = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x1";
    assert_eq!(capabilities(Some(app)), &CONSERVATIVE);
    assert_eq!(capabilities(None), &CONSERVATIVE);
}

#[test]
fn rows_differ_where_the_rules_say_they_do() {
    let sonnet4 = capabilities(Some("anthropic.claude-sonnet-4-20250514-v1:0"));
    let opus47 = capabilities(Some("anthropic.claude-opus-4-7"));
    let opus55 = capabilities(Some("anthropic.claude-opus-5-5"));
    assert!(sonnet4.prefill && !opus47.prefill && !opus55.prefill);
    assert!(sonnet4.thinking.enabled && !sonnet4.thinking.adaptive);
    assert!(!opus47.thinking.enabled && opus47.thinking.adaptive && !opus47.thinking.disabled);
    assert!(opus55.thinking.always_on && !opus47.thinking.always_on);
    assert_eq!(opus55.forced_tool_choice, ForcedToolChoice::Never);
    assert!(opus55.prefix_binding && !sonnet4.prefix_binding);
    // Media: Claude refuses S3 sources and video (also inside a tool result); Nova takes
    // both at the top level but not video inside a tool result.
    let nova = capabilities(Some("us.amazon.nova-2-lite-v1:0"));
    assert!(!sonnet4.s3_media && !sonnet4.video && !sonnet4.video_in_tool_result);
    assert!(nova.s3_media && nova.video && !nova.video_in_tool_result);
    assert!(sonnet4.is_claude() && opus55.is_claude() && !nova.is_claude());
    assert!(!CONSERVATIVE.is_claude() && !CONSERVATIVE.known);
}

#[test]
fn the_current_generation_takes_the_sdk_version_and_legacy_models_do_not() {
    let takes = |id| capabilities(Some(id)).anthropic_versions.invoke_accepts("2026-10-21");
    for id in [
        "global.anthropic.claude-opus-4-7",
        "us.anthropic.claude-opus-4-8",
        "anthropic.claude-opus-5",
        "us.anthropic.claude-sonnet-5",
        "anthropic.claude-opus-5-5",
        "anthropic.claude-fable-5-1",
        "anthropic.claude-mythos-5",
    ] {
        assert!(takes(id), "{id}");
    }
    for id in [
        "global.anthropic.claude-opus-4-6-v1",
        "anthropic.claude-sonnet-4-6",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
    ] {
        assert!(!takes(id), "{id}");
    }
    // Unknown ids get the documented version only (the rule then warns, not refuses).
    assert_eq!(CONSERVATIVE.anthropic_versions.invoke, ["bedrock-2023-05-31"]);
}

#[test]
fn the_messages_header_is_the_newest_version_a_row_takes() {
    let header = |id| capabilities(Some(id)).anthropic_versions.messages_header();
    assert_eq!(header("us.anthropic.claude-sonnet-5"), "2026-10-21");
    assert_eq!(header("anthropic.claude-opus-4-7"), "2026-10-21");
    assert_eq!(header("global.anthropic.claude-opus-4-6-v1"), "2023-06-01");
    assert_eq!(CONSERVATIVE.anthropic_versions.messages_header(), "2023-06-01");
    for (pattern, row) in TABLE {
        assert!(row.anthropic_versions.messages_accepts("2023-06-01"), "{pattern}");
    }
}

#[test]
fn binding_controls_go_with_prefix_binding_and_refused_betas_with_their_evidence() {
    for (pattern, row) in TABLE.iter().filter(|(_, row)| row.is_claude()) {
        assert_eq!(row.binding_controls, row.prefix_binding, "{pattern}");
        for flag in row.betas.refused_on_invoke {
            assert!(KNOWN_BETAS.contains(flag), "{pattern}: {flag}");
        }
    }
    let opus47 = capabilities(Some("global.anthropic.claude-opus-4-7"));
    assert!(opus47.betas.refused_on_invoke.contains(&"effort-2025-11-24"));
    assert!(!opus47.betas.refused_on_invoke.contains(&"interleaved-thinking-2025-05-14"));
    assert!(
        !capabilities(Some("arn:aws:bedrock:us-east-1:1:application-inference-profile/x"))
            .binding_controls
    );
}

#[test]
fn sampling_is_refused_where_recorded_and_not_known_for_the_rest_of_the_generation() {
    let sampling = |id| capabilities(Some(id)).sampling;
    assert_eq!(sampling("global.anthropic.claude-opus-4-7"), Sampling::Refused);
    assert_eq!(sampling("us.anthropic.claude-opus-4-8"), Sampling::Refused);
    assert_eq!(sampling("us.anthropic.claude-sonnet-5"), Sampling::NotKnown);
    assert_eq!(sampling("anthropic.claude-opus-5-5"), Sampling::NotKnown);
    assert_eq!(sampling("global.anthropic.claude-opus-4-6-v1"), Sampling::Accepted);
    assert_eq!(CONSERVATIVE.sampling, Sampling::Accepted);
}

#[test]
fn other_providers_families_have_rows_that_grant_only_what_was_recorded() {
    let row = |id| capabilities(Some(id));
    let llama = row("us.meta.llama4-maverick-17b-instruct-v1:0");
    assert_eq!((llama.family, llama.known, llama.tool_result_status), ("meta-llama4", false, true));
    assert!(row("us.mistral.pixtral-large-2502-v1:0").tool_result_status);
    assert!(row("moonshot.kimi-k2-thinking").tool_result_status);
    let deepseek = row("us.deepseek.r1-v1:0");
    assert_eq!((deepseek.family, deepseek.tool_result_status), ("deepseek-r1", false));
    assert_eq!(row("openai.gpt-oss-120b-1:0").family, "openai-gpt-oss");
    // Everything else is the conservative row's (warnings, never errors), but for what was
    // not recorded about reasoning sent back, which is a warning too, and tool results beside
    // text in one turn, recorded refused.
    assert_eq!(
        Capabilities {
            family: CONSERVATIVE.family,
            tool_result_status: false,
            replayed_reasoning: ReplayedReasoning::Signed,
            results_beside: ResultsBeside::NotKnown,
            ..*llama
        },
        CONSERVATIVE
    );
    assert_eq!(llama.replayed_reasoning, ReplayedReasoning::NotKnown);
    assert_eq!(llama.results_beside, ResultsBeside::Refused);
    assert_eq!(row("anthropic.claude-3-opus-20240229-v1:0").results_beside, ResultsBeside::Refused);
    assert_eq!(
        row("anthropic.claude-3-haiku-20240307-v1:0").results_beside,
        ResultsBeside::NotKnown
    );
    assert_eq!(
        row("us.anthropic.claude-sonnet-4-20250514-v1:0").results_beside,
        ResultsBeside::Taken
    );
    assert_eq!(row("mistral.mistral-large-2407-v1:0").results_beside, ResultsBeside::NotKnown);
}

#[test]
fn each_family_has_its_own_reasoning_setting_and_what_it_takes_back() {
    let row = |id| capabilities(Some(id));
    let gpt_oss = row("openai.gpt-oss-120b-1:0");
    assert_eq!(gpt_oss.reasoning, ReasoningSetting::ReasoningEffort);
    assert_eq!(gpt_oss.reasoning.field(), Some("reasoning_effort"));
    assert_eq!(gpt_oss.replayed_reasoning, ReplayedReasoning::Unsigned { any_signature: true });
    let nova2 = row("global.amazon.nova-2-lite-v1:0");
    assert_eq!(nova2.reasoning.field(), Some("reasoningConfig"));
    assert_eq!(row("us.amazon.nova-pro-v1:0").reasoning, ReasoningSetting::NoneTaken);
    let r1 = row("us.deepseek.r1-v1:0");
    assert_eq!((r1.family, r1.reasoning), ("deepseek-r1", ReasoningSetting::AlwaysOn));
    assert_eq!(r1.replayed_reasoning, ReplayedReasoning::Refused);
    assert!(r1.text_only && gpt_oss.text_only && !nova2.text_only);
    assert_eq!(row("us.deepseek.v3-v1:0").reasoning, ReasoningSetting::NotKnown);
    let kimi = row("moonshot.kimi-k2-thinking");
    assert_eq!((kimi.reasoning, kimi.tool_result_status), (ReasoningSetting::AlwaysOn, true));
    // Claude's is Anthropic's `thinking`, signed; none of the others is known.
    let sonnet = row("us.anthropic.claude-sonnet-4-20250514-v1:0");
    assert_eq!(sonnet.reasoning, ReasoningSetting::Anthropic);
    assert_eq!(sonnet.replayed_reasoning, ReplayedReasoning::Signed);
    for (pattern, caps) in TABLE {
        assert_eq!(caps.is_claude(), caps.reasoning == ReasoningSetting::Anthropic, "{pattern}");
        assert!(caps.is_claude() || !caps.known || caps.family.starts_with("amazon"), "{pattern}");
    }
}

#[test]
fn a_thinking_setting_becomes_an_effort_by_its_own_effort_or_its_budget() {
    let of = |mode| effort_for(&ThinkingConfig::new(mode));
    assert_eq!(of(ThinkingMode::Enabled { budget_tokens: 2048 }), Some("low"));
    assert_eq!(of(ThinkingMode::Enabled { budget_tokens: 8192 }), Some("medium"));
    assert_eq!(of(ThinkingMode::Enabled { budget_tokens: 16_384 }), Some("high"));
    assert_eq!(of(ThinkingMode::Adaptive { effort: None }), Some("medium"));
    assert_eq!(
        of(ThinkingMode::Adaptive { effort: Some(verbatim_model::Effort::Max) }),
        Some("high")
    );
    assert_eq!(of(ThinkingMode::Disabled), None);
}

#[test]
fn models_of_other_providers_are_named_and_claude_and_nova_are_not() {
    assert_eq!(other_provider("us.deepseek.r1-v1:0"), Some("DeepSeek"));
    assert_eq!(other_provider("us.meta.llama4-maverick-17b-instruct-v1:0"), Some("Meta Llama"));
    assert_eq!(other_provider("openai.gpt-oss-120b-1:0"), Some("OpenAI gpt-oss"));
    assert_eq!(other_provider("moonshotai.kimi-k2-thinking"), Some("Moonshot Kimi"));
    assert_eq!(other_provider("us.anthropic.claude-sonnet-5"), None);
    assert_eq!(other_provider("us.amazon.nova-2-lite-v1:0"), None);
    assert_eq!(other_provider("arn:aws:bedrock:us-east-1:1:application-inference-profile/x"), None);
}

#[test]
fn every_row_takes_the_documented_invoke_version() {
    for (pattern, row) in TABLE {
        assert!(row.anthropic_versions.invoke_accepts(BEDROCK_2023_05_31), "{pattern}");
    }
}
