//! What one dialect cannot express is a typed error naming where, never a silent drop; what both
//! can express moves between them exactly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use verbatim_model::{
    ContentBlock, Dialect, InferenceConfig, MediaBlock, MediaSource, Message, RedactedForm,
    RedactedThinking, Request, Role, ToolChoice, ToolChoiceKind, Unmapped,
};

use crate::{EncodeErrorKind, anthropic, converse};

fn request(messages: Vec<Message>) -> Request {
    Request {
        messages,
        inference: Some(InferenceConfig { max_tokens: Some(256), ..InferenceConfig::default() }),
        ..Request::default()
    }
}

#[test]
fn redacted_thinking_changes_form_only_across_dialects() {
    let data = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw";
    let blob = BASE64.encode(data);
    let body = json!({"messages": [{"role": "assistant", "content": [
        {"reasoningContent": {"redactedContent": blob}}
    ]}]});
    let decoded = converse::decode_request_value(body.clone()).unwrap();
    let ContentBlock::RedactedThinking(kept) = &decoded.messages[0].content[0] else { panic!() };
    assert_eq!((kept.data.as_str(), kept.form), (blob.as_str(), RedactedForm::ConverseBlob));

    let invoke = anthropic::encode_request(&request(decoded.messages)).unwrap();
    assert_eq!(
        invoke["messages"][0]["content"][0],
        json!({"type": "redacted_thinking", "data": data})
    );
    let back = anthropic::decode_request_value(invoke).unwrap();
    let converse_again = converse::encode_messages(&back.messages).unwrap();
    assert_eq!(converse_again, body["messages"]);
}

#[test]
fn a_redacted_blob_that_is_not_base64_text_cannot_go_to_anthropic() {
    let block = ContentBlock::RedactedThinking(RedactedThinking {
        data: "not base64!".into(),
        form: RedactedForm::ConverseBlob,
        unmapped: Unmapped::default(),
    });
    let error =
        anthropic::encode_request(&request(vec![Message::new(Role::Assistant, vec![block])]))
            .unwrap_err();
    assert_eq!(error.path.to_string(), "messages[0].content[0]");
    assert!(matches!(error.kind, EncodeErrorKind::RedactedData { .. }), "{error}");
}

#[test]
fn converse_only_blocks_are_refused_by_anthropic_with_their_path() {
    let video = ContentBlock::Video(MediaBlock {
        format: "mp4".into(),
        source: MediaSource::Bytes("AAAA".into()),
        unmapped: Unmapped::default(),
    });
    let messages = vec![
        Message::user_text("hi"),
        Message::new(Role::User, vec![ContentBlock::text("a"), video]),
    ];
    let error = anthropic::encode_request(&request(messages)).unwrap_err();
    assert_eq!(error.path.to_string(), "messages[1].content[1]");
    assert_eq!(error.target, Dialect::Anthropic);
    assert_eq!(
        error.to_string(),
        "messages[1].content[1]: cannot encode as Anthropic Messages: a `video` block has no equivalent in this dialect"
    );
}

#[test]
fn converse_request_fields_without_counterpart_are_refused_not_dropped() {
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "inferenceConfig": {"maxTokens": 10},
        "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}});
    let decoded = converse::decode_request_value(body).unwrap();
    let error = anthropic::encode_request(&decoded).unwrap_err();
    assert_eq!(error.path.to_string(), "guardrailConfig");
}

#[test]
fn invoke_model_needs_max_tokens() {
    let error = anthropic::encode_request(&Request {
        messages: vec![Message::user_text("hi")],
        ..Request::default()
    })
    .unwrap_err();
    assert_eq!(error.kind, EncodeErrorKind::Missing { field: "max_tokens" });
}

#[test]
fn anthropic_only_choices_are_refused_by_converse() {
    let mut req = request(vec![Message::user_text("hi")]);
    req.tool_choice = Some(ToolChoice::new(ToolChoiceKind::None));
    let error = converse::encode_request(&req).unwrap_err();
    assert_eq!(error.path.to_string(), "toolConfig.toolChoice");
    req.tool_choice =
        Some(ToolChoice { kind: ToolChoiceKind::Auto, disable_parallel_tool_use: Some(true) });
    assert!(converse::encode_request(&req).is_err());
}

#[test]
fn a_cache_point_needs_a_block_before_it_on_anthropic() {
    let message =
        Message::new(Role::User, vec![ContentBlock::cache_point(), ContentBlock::text("hi")]);
    let error = anthropic::encode_messages(&[message]).unwrap_err();
    assert_eq!(error.kind, EncodeErrorKind::DanglingCachePoint);
    assert_eq!(error.path.to_string(), "$[0].content[0]");
}

#[test]
fn unknown_blocks_go_back_only_to_their_own_dialect() {
    let converse_body = json!([{"role": "user", "content": [{"futureThing": {"a": 1}}]}]);
    let messages = converse::decode_messages_value(converse_body.clone()).unwrap();
    assert_eq!(converse::encode_messages(&messages).unwrap(), converse_body);
    assert!(anthropic::encode_messages(&messages).is_err());

    let anthropic_body =
        json!([{"role": "assistant", "content": [{"type": "future_block", "a": 1}]}]);
    let messages = anthropic::decode_messages_value(anthropic_body.clone()).unwrap();
    assert_eq!(anthropic::encode_messages(&messages).unwrap(), anthropic_body);
    let error = converse::encode_messages(&messages).unwrap_err();
    assert_eq!(error.path.to_string(), "$[0].content[0]");
}

#[test]
fn keys_kept_from_one_dialect_are_never_written_into_the_other() {
    let body = json!([{"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t", "name": "n", "input": {}, "newField": 1}}
    ]}]);
    let messages = converse::decode_messages_value(body.clone()).unwrap();
    assert_eq!(converse::encode_messages(&messages).unwrap(), body);
    let error = anthropic::encode_messages(&messages).unwrap_err();
    assert_eq!(error.path.to_string(), "$[0].content[0].newField");
}

#[test]
fn invoke_model_bodies_always_name_the_bedrock_version_and_never_model_or_stream() {
    let body = anthropic::encode_request(&request(vec![Message::user_text("hi")])).unwrap();
    assert_eq!(body["anthropic_version"], "bedrock-2023-05-31");
    assert!(body.get("model").is_none() && body.get("stream").is_none(), "{body}");

    // A native field cannot smuggle them in either.
    for key in ["model", "stream", "anthropic_version"] {
        let mut req = request(vec![Message::user_text("hi")]);
        req.model_fields = Some(json!({key: true}).as_object().unwrap().clone());
        let error = anthropic::encode_request(&req).unwrap_err();
        assert_eq!(error.kind, EncodeErrorKind::FieldCollision { field: key.into() }, "{key}");
    }
}

#[test]
fn a_thinking_extra_key_that_clashes_is_refused_not_dropped() {
    let mut req = request(vec![Message::user_text("hi")]);
    let mut thinking = verbatim_model::ThinkingConfig::new(verbatim_model::ThinkingMode::Disabled);
    thinking.extra.insert("type".into(), json!("enabled"));
    req.thinking = Some(thinking);
    let error = converse::encode_request(&req).unwrap_err();
    assert_eq!(error.kind, EncodeErrorKind::FieldCollision { field: "thinking.type".into() });
    assert!(anthropic::encode_request(&req).is_err());
}

#[test]
fn converse_cache_counter_aliases_fill_in_when_the_main_name_is_absent() {
    let body = json!({"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "usage": {"inputTokens": 2, "outputTokens": 5, "cacheReadInputTokenCount": 7,
                  "cacheWriteInputTokens": 3, "cacheWriteInputTokenCount": 3}});
    let response = converse::decode_response_value(body).unwrap();
    let usage = response.usage.unwrap();
    assert_eq!(usage.cache_read_input_tokens, Some(7));
    assert_eq!(usage.cache_write_input_tokens, Some(3));
    // The aliases themselves are kept, so they are written back.
    assert!(usage.unmapped.converse.contains_key("cacheReadInputTokenCount"));
}

#[test]
fn text_document_sources_keep_their_media_type() {
    let body = json!([{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/csv", "data": "a,b"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    ]}]);
    let messages = anthropic::decode_messages_value(body.clone()).unwrap();
    assert_eq!(anthropic::encode_messages(&messages).unwrap(), body);
}
