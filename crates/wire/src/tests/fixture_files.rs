//! The project's own fixtures (`test_data/round_trip`): every block kind, unknown kinds, cache
//! points, native fields and kept keys decode and re-encode to an equal JSON value.

use serde_json::Value;
use verbatim_model::{
    ContentBlock, Dialect, Effort, RedactedForm, SystemPrompt, ThinkingMode, Tool, ToolResultBlock,
    ToolResultContent,
};

use super::support::{Failure, case_files, decode_encode, test_data, verbatim_strings};
use crate::{anthropic, converse};

fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(test_data("round_trip").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn own_fixtures_round_trip_unchanged() {
    let files = case_files("round_trip");
    assert!(files.len() >= 6, "round_trip fixtures missing");
    for file in files {
        let text = std::fs::read_to_string(&file.path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let encoded = match decode_encode(file.wire, file.kind, value.clone()) {
            Ok(encoded) => encoded,
            Err(Failure::Decode(e)) => panic!("{}: does not decode: {e}", file.case),
            Err(Failure::Encode(e)) => panic!("{}: does not re-encode: {e}", file.case),
        };
        assert_eq!(encoded, value, "{}: re-encoded JSON differs", file.case);
        assert_eq!(verbatim_strings(&encoded), verbatim_strings(&value), "{}", file.case);
    }
}

#[test]
fn every_converse_member_decodes_to_its_own_variant() {
    let request =
        converse::decode_request_value(read("every_member.converse.request.json")).unwrap();
    let kinds: Vec<&str> = request
        .messages
        .iter()
        .flat_map(|m| m.content.iter().map(ContentBlock::kind_name))
        .collect();
    for member in converse::CONTENT_BLOCK_MEMBERS {
        let found = match *member {
            "reasoningContent" => kinds.iter().any(|k| k.starts_with("reasoningContent")),
            other => kinds.contains(&other),
        };
        assert!(found, "no block decoded as {member}: {kinds:?}");
    }
    // The unknown member is kept raw, exactly.
    let unknown = request.messages[1].content.iter().find_map(|b| match b {
        ContentBlock::Unknown(u) => Some(u),
        _ => None,
    });
    let unknown = unknown.expect("the future block is kept");
    assert_eq!(unknown.dialect, Dialect::Converse);
    assert_eq!(unknown.json["futureBlock"]["kind"], "not known to this version");

    // Named settings come out of additionalModelRequestFields; the rest stays native.
    let thinking = request.thinking.as_ref().unwrap();
    assert_eq!(thinking.mode, ThinkingMode::Adaptive { effort: Some(Effort::Max) });
    assert_eq!(thinking.display.as_deref(), Some("summarized"));
    assert!(thinking.extra.contains_key("block_binding"));
    assert_eq!(request.top_k, Some(40));
    assert_eq!(
        request.beta.as_deref(),
        Some(&["thinking-binding-controls-2026-08-01".to_owned()][..])
    );
    let native = request.model_fields.as_ref().unwrap();
    assert_eq!(native.keys().collect::<Vec<_>>(), ["output_config", "metadata"]);
    assert_eq!(native["output_config"], serde_json::json!({"format": {"type": "json"}}));
    assert!(request.unmapped.converse.contains_key("guardrailConfig"));

    // Tool input keeps its key order and its numbers.
    let ContentBlock::ToolUse(tool_use) = &request.messages[1].content[3] else { panic!() };
    let input = serde_json::to_string(&tool_use.input).unwrap();
    assert!(
        input.starts_with(
            r#"{"zeta":1,"alpha":{"y":[1,2.5,"x",null,true],"b":{}},"big":18446744073709551615"#
        ),
        "{input}"
    );
    assert_eq!(tool_use.kind.as_deref(), Some("tool_use"));
}

#[test]
fn anthropic_cache_control_becomes_a_cache_point_after_its_block() {
    let request =
        anthropic::decode_request_value(read("every_block.anthropic.request.json")).unwrap();
    let first = &request.messages[0].content;
    assert!(matches!(first[0], ContentBlock::Text(_)));
    assert!(matches!(&first[1], ContentBlock::CachePoint(p) if p.ttl.is_none()));
    let Some(SystemPrompt::Blocks(system)) = &request.system else { panic!("system blocks") };
    assert_eq!(system.len(), 3, "text, cache point, text");
    let tools = request.tools.as_ref().unwrap();
    assert!(matches!(tools[1], Tool::CachePoint(_)));
    assert!(
        matches!(&tools[3], Tool::Unknown(u) if u.dialect == Dialect::Anthropic),
        "server tool kept raw"
    );

    let assistant = &request.messages[1].content;
    assert!(
        matches!(&assistant[1], ContentBlock::RedactedThinking(r) if r.form == RedactedForm::AnthropicData)
    );
    assert!(
        matches!(&assistant[3], ContentBlock::ToolUse(t) if t.kind.as_deref() == Some("server_tool_use"))
    );
    assert!(matches!(&assistant[4], ContentBlock::Unknown(_)), "web_search_tool_result kept raw");
    assert!(matches!(&assistant[6], ContentBlock::CachePoint(p) if p.ttl.as_deref() == Some("5m")));

    let ContentBlock::ToolResult(result) = &request.messages[2].content[1] else { panic!() };
    let Some(ToolResultContent::Blocks(blocks)) = &result.content else { panic!() };
    assert!(matches!(blocks[1], ToolResultBlock::Unknown(_)), "text with cache_control kept raw");
    assert!(request.model_fields.as_ref().unwrap().contains_key("metadata"));
}

#[test]
fn anthropic_string_content_is_one_text_block_written_back_as_a_string() {
    let value = serde_json::json!([{"role": "user", "content": "hi there"}]);
    let mut messages = anthropic::decode_messages_value(value.clone()).unwrap();
    assert_eq!(messages[0].content, vec![ContentBlock::text("hi there")]);
    assert!(messages[0].string_content);
    // As it came, in its own dialect; as a list where the dialect has no other form.
    assert_eq!(anthropic::encode_messages(&messages).unwrap(), value);
    assert_eq!(
        converse::encode_messages(&messages).unwrap(),
        serde_json::json!([{"role": "user", "content": [{"text": "hi there"}]}])
    );
    // Content the string cannot hold is written as a list.
    messages[0].content.push(ContentBlock::text("more"));
    assert_eq!(
        anthropic::encode_messages(&messages).unwrap(),
        serde_json::json!([{"role": "user", "content": [
            {"type": "text", "text": "hi there"}, {"type": "text", "text": "more"}
        ]}])
    );
}

#[test]
fn an_anthropic_version_other_than_bedrocks_is_kept_and_written_back() {
    let value = read("sdk_version.anthropic.request.json");
    let request = anthropic::decode_request_value(value.clone()).unwrap();
    assert_eq!(request.unmapped.anthropic.get("anthropic_version"), Some(&"2026-10-21".into()));
    assert_eq!(request.unmapped.anthropic.len(), 1, "only the version is kept there");
    let encoded = anthropic::encode_request(&request).unwrap();
    assert_eq!(encoded.as_object().unwrap().keys().next().unwrap(), "anthropic_version");
    assert_eq!(encoded["anthropic_version"], "2026-10-21");
    assert_eq!(encoded, value);

    // Bedrock's own version is the default: nothing is kept, and it is what is written.
    let mut bedrock = value;
    bedrock["anthropic_version"] = anthropic::BEDROCK_ANTHROPIC_VERSION.into();
    let request = anthropic::decode_request_value(bedrock.clone()).unwrap();
    assert!(request.unmapped.is_empty());
    assert_eq!(anthropic::encode_request(&request).unwrap(), bedrock);

    // The Converse dialect has no version: a kept one cannot be sent there, and says so.
    let request = anthropic::decode_request_value(read("sdk_version.anthropic.request.json"));
    let error = converse::encode_request(&request.unwrap()).unwrap_err();
    assert_eq!(error.path.to_string(), "anthropic_version");
}
