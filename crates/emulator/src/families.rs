//! The model families whose answers differ, as this emulator tells them apart by their ids,
//! and what the families that are not Claude refuse: Anthropic's `thinking` on gpt-oss,
//! `reasoningConfig` on Nova 1, a reasoning signature on gpt-oss (and an empty one on Nova),
//! any reasoning sent back to DeepSeek R1, media to the text-only models, and tool results
//! beside text in one turn to Llama 4 and Claude 3 Opus. Written from the recorded answers (the
//! texts below), not from the validator's capability table.

use serde_json::Value;

use crate::checks::{Refusal, validation};
use crate::conversation::{Block, Dialect, Msg};
use crate::model::model_key;

/// A model family, by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Claude,
    /// Amazon Nova before Nova 2: no reasoning setting.
    Nova,
    /// Amazon Nova 2: reasoning by `reasoningConfig`, off by default.
    Nova2,
    /// OpenAI gpt-oss: always reasons, unsigned; effort by `reasoning_effort`.
    GptOss,
    /// DeepSeek R1: always reasons, unsigned; takes none of it back.
    DeepSeekR1,
    /// Another provider's model (Meta, Mistral, Qwen, Moonshot, other DeepSeek, …): answers
    /// in plain text, and its answers to reasoning settings are not recorded.
    OtherProvider,
    /// An id that names no provider (an application inference profile): treated as Claude.
    Unknown,
}

/// Vendor prefixes of other providers' base ids.
const OTHER_PROVIDERS: &[&str] = &[
    "meta.",
    "mistral.",
    "qwen.",
    "moonshot",
    "deepseek.",
    "openai.",
    "cohere.",
    "ai21.",
    "writer.",
];

impl Family {
    pub(crate) fn of(model_id: &str) -> Family {
        let key = model_key(model_id).to_ascii_lowercase();
        if key.starts_with("anthropic.claude") {
            Family::Claude
        } else if key.starts_with("amazon.nova-2") {
            Family::Nova2
        } else if key.starts_with("amazon.nova") {
            Family::Nova
        } else if key.starts_with("openai.gpt-oss") {
            Family::GptOss
        } else if key.starts_with("deepseek.r1") {
            Family::DeepSeekR1
        } else if OTHER_PROVIDERS.iter().any(|p| key.starts_with(p)) {
            Family::OtherProvider
        } else {
            Family::Unknown
        }
    }

    /// Either Nova.
    pub(crate) fn is_nova(self) -> bool {
        matches!(self, Family::Nova | Family::Nova2)
    }

    /// Whether reasoning it is sent back must carry a signature ("…thinking.signature: Field
    /// required"): Claude's, and an unknown id's, taken for Claude.
    pub(crate) fn signs_reasoning(self) -> bool {
        matches!(self, Family::Claude | Family::Unknown)
    }

    /// Whether the reply reasons, given whether the request asked for it: gpt-oss and
    /// DeepSeek R1 always do, Nova 1 and other providers' models never do here.
    pub(crate) fn reasons(self, asked: bool) -> bool {
        match self {
            Family::GptOss | Family::DeepSeekR1 => true,
            Family::Nova | Family::OtherProvider => false,
            Family::Claude | Family::Nova2 | Family::Unknown => asked,
        }
    }
}

/// The request's reasoning setting as the family answers it (Converse only: the other
/// families take no Anthropic body on InvokeModel here).
pub(crate) fn settings(dialect: Dialect, body: &Value, family: Family) -> Result<(), Refusal> {
    if dialect != Dialect::Converse {
        return Ok(());
    }
    let fields = &body["additionalModelRequestFields"];
    // Recorded: BerriAI/litellm#13959 (gpt-oss on Bedrock), cut before its request-specific
    // position.
    if family == Family::GptOss && fields.get("thinking").is_some() {
        return Err(validation(
            "The model returned the following errors: Failed to deserialize the JSON body into the target type: thinking: unknown field thinking, expected one of messages, model, store, reasoning_effort, metadata, frequency_penalty, logit_bias, logprobs, top_logprobs, max_tokens, max_completion_tokens, n, modalities, prediction, audio, presence_penalty, response_format, seed, service_tier, stop, stream, stream_options, temperature, top_p, tools, tool_choice, parallel_tool_calls, user, function_call, functions",
        ));
    }
    // Recorded: UKGovernmentBEIS/inspect_ai#5301 (Nova Pro, every effort).
    if family == Family::Nova && fields.get("reasoningConfig").is_some() {
        return Err(validation(
            "The model returned the following errors: Malformed input request: the provided reasoning config value is invalid, please reformat your input and try again.",
        ));
    }
    Ok(())
}

/// The reasoning in the history as the family takes it back.
pub(crate) fn replayed(messages: &[Msg], family: Family) -> Result<(), Refusal> {
    const SIGNATURE: &str = "This model doesn't support the reasoningContent.reasoningText.signature field. Remove reasoningContent.reasoningText.signature and try again.";
    for message in messages.iter().filter(|m| m.role == "assistant") {
        for block in &message.blocks {
            let signature = match block {
                Block::Thinking { signature, .. } => signature.as_deref(),
                Block::Redacted(_) => None,
                _ => continue,
            };
            match family {
                // Recorded: langchain-ai/langchain-aws#401, aws-samples/bedrock-chat#845.
                Family::DeepSeekR1 => {
                    return Err(validation(
                        "User messages cannot contain reasoning content. Please remove the reasoning content and try again.",
                    ));
                }
                // Recorded: strands-agents/harness-sdk#682, earendil-works/pi#686.
                Family::GptOss if signature.is_some() => return Err(validation(SIGNATURE)),
                // Reported for an empty one: maximhq/bifrost#6624.
                _ if family.is_nova() && signature == Some("") => {
                    return Err(validation(SIGNATURE));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Media sent to a model that takes text only (gpt-oss: "These OpenAI models support only
/// text input and text output"; DeepSeek R1: "Text model"; the AWS model pages). The text
/// is the one recorded for video on Claude; these models' own is not recorded.
pub(crate) fn text_only(body: &Value, family: Family) -> Result<(), Refusal> {
    if !matches!(family, Family::GptOss | Family::DeepSeekR1) {
        return Ok(());
    }
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    for block in messages.iter().flat_map(|m| m["content"].as_array().into_iter().flatten()) {
        if let Some(kind) =
            ["image", "document", "video", "audio"].into_iter().find(|k| block.get(*k).is_some())
        {
            return Err(validation(format!(
                "This model doesn't support the {kind} content block that you provided. Update the content block and try again."
            )));
        }
    }
    Ok(())
}

/// Tool results beside other blocks (text, an image) in one user message on Converse, to the
/// models recorded refusing it: Llama 4 ("messages.4.content: Conversation blocks and tool
/// result blocks cannot be provided in the same turn.", recorded with Llama 4 Maverick in
/// strands-agents/harness-sdk#1223) and Claude 3 Opus (the same text, reported in
/// BerriAI/litellm#6053). Later Claude models take the results first and text after them.
pub(crate) fn results_alone(body: &Value, model_id: &str) -> Result<(), Refusal> {
    let key = model_key(model_id).to_ascii_lowercase();
    if !(key.starts_with("meta.llama4") || key.starts_with("anthropic.claude-3-opus")) {
        return Ok(());
    }
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, message) in messages.iter().enumerate() {
        if message["role"] != "user" {
            continue;
        }
        let content = message["content"].as_array().map(Vec::as_slice).unwrap_or_default();
        // A cache point marks a place; it is not conversation content.
        let (results, others): (Vec<&Value>, Vec<&Value>) = content
            .iter()
            .filter(|block| block.get("cachePoint").is_none())
            .partition(|block| block.get("toolResult").is_some());
        if !results.is_empty() && !others.is_empty() {
            return Err(validation(format!(
                "messages.{i}.content: Conversation blocks and tool result blocks cannot be provided in the same turn."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::checks::check;
    use crate::conversation::read;
    use crate::model::answer;
    use crate::script::Behaviour;

    const GPT_OSS: &str = "openai.gpt-oss-120b-1:0";
    const R1: &str = "us.deepseek.r1-v1:0";
    const NOVA_2: &str = "us.amazon.nova-2-lite-v1:0";
    const NOVA_PRO: &str = "us.amazon.nova-pro-v1:0";
    const LLAMA: &str = "us.meta.llama4-maverick-17b-instruct-v1:0";
    const CLAUDE: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

    fn refusal(body: &Value, model: &str) -> Option<String> {
        check(Dialect::Converse, body, model, b"s").err().map(|r| r.message)
    }

    fn with_reasoning(reasoning: Value) -> Value {
        json!({"messages": [
            {"role": "user", "content": [{"text": "Name a colour."}]},
            {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": reasoning}}, {"text": "Blue."}]},
            {"role": "user", "content": [{"text": "Another?"}]}]})
    }

    #[test]
    fn each_family_takes_back_the_reasoning_it_gives_and_refuses_the_rest() {
        let unsigned = with_reasoning(json!({"text": "One colour."}));
        let empty = with_reasoning(json!({"text": "One colour.", "signature": ""}));
        let signed = with_reasoning(json!({"text": "One colour.", "signature": "c2ln"}));
        assert_eq!(refusal(&unsigned, GPT_OSS), None);
        assert!(refusal(&empty, GPT_OSS).unwrap().contains("reasoningText.signature field"));
        assert!(refusal(&signed, GPT_OSS).unwrap().contains("reasoningText.signature field"));
        assert!(
            refusal(&unsigned, R1).unwrap().starts_with("User messages cannot contain reasoning")
        );
        assert_eq!(refusal(&unsigned, NOVA_2), None);
        assert!(refusal(&empty, NOVA_2).unwrap().contains("reasoningText.signature field"));
        assert_eq!(refusal(&unsigned, LLAMA), None);
        assert!(
            refusal(&unsigned, CLAUDE).unwrap().ends_with("thinking.signature: Field required")
        );
    }

    #[test]
    fn reasoning_settings_and_media_get_each_familys_answer() {
        let asking = |fields: Value| {
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "additionalModelRequestFields": fields})
        };
        let thinking = asking(json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}));
        assert!(refusal(&thinking, GPT_OSS).unwrap().contains("unknown field thinking"));
        assert_eq!(refusal(&thinking, R1), None);
        let config =
            asking(json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}));
        assert!(refusal(&config, NOVA_PRO).unwrap().contains("reasoning config value is invalid"));
        assert_eq!(refusal(&config, NOVA_2), None);
        assert_eq!(refusal(&asking(json!({"reasoning_effort": "high"})), GPT_OSS), None);
        let image = json!({"messages": [{"role": "user", "content": [
            {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}, {"text": "What?"}]}]});
        assert!(refusal(&image, GPT_OSS).unwrap().contains("the image content block"));
        assert!(refusal(&image, R1).is_some());
        assert_eq!(refusal(&image, LLAMA), None);
    }

    #[test]
    fn tool_results_beside_text_are_refused_by_llama_4_and_claude_3_opus_only() {
        let turn = |last: Value| {
            json!({"messages": [
                {"role": "user", "content": [{"text": "Weather?"}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "w", "input": {}}}]},
                {"role": "user", "content": last}],
                "toolConfig": {"tools": [{"toolSpec": {"name": "w", "inputSchema": {"json": {"type": "object"}}}}]}})
        };
        let result = json!({"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}]}});
        let mixed = turn(json!([result, {"text": "And tomorrow?"}]));
        let alone = turn(json!([result]));
        let cached = turn(json!([result, {"cachePoint": {"type": "default"}}]));
        let opus_3 = "anthropic.claude-3-opus-20240229-v1:0";
        for model in [LLAMA, opus_3] {
            assert_eq!(
                refusal(&mixed, model).as_deref(),
                Some(
                    "messages.2.content: Conversation blocks and tool result blocks cannot be provided in the same turn."
                ),
                "{model}"
            );
            assert_eq!(refusal(&alone, model), None, "{model}");
            assert_eq!(refusal(&cached, model), None, "{model}: a cache point is no content");
        }
        for model in [CLAUDE, GPT_OSS, "mistral.mistral-large-2407-v1:0"] {
            assert_eq!(refusal(&mixed, model), None, "{model}");
        }
    }

    /// The reasoning block of `model`'s reply to `body`, if any: its text and signature.
    fn reasoning_of(model: &str, body: Value) -> Option<(String, Option<String>)> {
        let conversation = read(Dialect::Converse, &body);
        let reply = answer(b"s", model, &Behaviour::default(), &conversation);
        reply.blocks.into_iter().find_map(|b| match b {
            Block::Thinking { text, signature } => Some((text, signature)),
            _ => None,
        })
    }

    #[test]
    fn each_family_answers_in_its_own_shape() {
        let question = |fields: Value| {
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "additionalModelRequestFields": fields})
        };
        let plain = question(json!({}));
        // gpt-oss and DeepSeek R1 reason unasked, unsigned.
        for model in [GPT_OSS, R1] {
            let (_, signature) = reasoning_of(model, plain.clone()).expect(model);
            assert_eq!(signature, None, "{model}");
        }
        // Nova 2 reasons when reasoningConfig enables it, shown as [REDACTED].
        assert_eq!(reasoning_of(NOVA_2, plain.clone()), None);
        let enabled =
            question(json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}));
        assert_eq!(reasoning_of(NOVA_2, enabled), Some(("[REDACTED]".into(), None)));
        // Llama answers in text even when Anthropic's thinking is asked; Claude signs.
        let thinking = question(json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}));
        assert_eq!(reasoning_of(LLAMA, thinking.clone()), None);
        assert!(reasoning_of(CLAUDE, thinking).unwrap().1.is_some());
    }
}
