//! Tests of the canonical form and the identifiers.

use serde_json::json;

use super::*;

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let text = serde_json::to_string(value).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_content_block_kind_survives_the_canonical_form() {
    let raw = RawMember { json: json!({"x": 1}).as_object().unwrap().clone() };
    let media = MediaBlock {
        format: "mp4".into(),
        source: MediaSource::S3(S3Location { uri: "s3://b/k".into(), bucket_owner: None }),
        unmapped: Unmapped::default(),
    };
    let blocks = vec![
        ContentBlock::text(" keep  spaces\n"),
        ContentBlock::Image(ImageBlock {
            format: Some("png".into()),
            source: MediaSource::Bytes("iVBORw0KGgo=".into()),
            unmapped: Unmapped::only(
                Dialect::Converse,
                json!({"error": {}}).as_object().unwrap().clone(),
            ),
        }),
        ContentBlock::Document(DocumentBlock {
            name: Some("Report 1".into()),
            format: Some("pdf".into()),
            source: DocumentSource::Content(vec!["a".into(), "b".into()]),
            context: None,
            citations: Some(true),
            unmapped: Unmapped::default(),
        }),
        ContentBlock::Video(media.clone()),
        ContentBlock::Audio(media),
        ContentBlock::ToolUse(ToolUse {
            id: "tooluse_1".into(),
            name: "get".into(),
            input: json!({"z": 1, "a": [1.5, "x"], "m": {"b": null, "a": true}}),
            kind: Some("tool_use".into()),
            unmapped: Unmapped::default(),
        }),
        ContentBlock::ToolResult(ToolResult {
            tool_use_id: "tooluse_1".into(),
            content: Some(ToolResultContent::Blocks(vec![
                ToolResultBlock::Text { text: "ok".into() },
                ToolResultBlock::Json { json: json!({"type": "kept"}) },
            ])),
            status: Some(ToolResultStatus::Error),
            unmapped: Unmapped::default(),
        }),
        ContentBlock::GuardContent(raw.clone()),
        ContentBlock::CachePoint(CachePoint { ttl: Some("1h".into()) }),
        ContentBlock::Thinking(ThinkingBlock {
            text: "Let me think…\r\n".into(),
            signature: Some("EqQBCkgIARABGAIiQ==".into()),
            unmapped: Unmapped::default(),
        }),
        ContentBlock::RedactedThinking(RedactedThinking {
            data: "RXU4RQ==".into(),
            form: RedactedForm::ConverseBlob,
            unmapped: Unmapped::default(),
        }),
        ContentBlock::CitationsContent(raw.clone()),
        ContentBlock::SearchResult(raw.clone()),
        ContentBlock::ToolAddition(raw.clone()),
        ContentBlock::ToolRemoval(raw),
        ContentBlock::Unknown(UnknownBlock {
            dialect: Dialect::Converse,
            json: json!({"futureBlock": {"type": "x", "n": 1}}),
        }),
    ];
    let message = Message::new(Role::Assistant, blocks);
    assert_eq!(round_trip(&message), message);
}

#[test]
fn tool_input_key_order_is_kept_in_the_canonical_form() {
    let tool_use = ToolUse {
        id: "t".into(),
        name: "n".into(),
        input: serde_json::from_str(r#"{"zeta":1,"alpha":{"y":2,"b":3}}"#).unwrap(),
        kind: None,
        unmapped: Unmapped::default(),
    };
    let block = ContentBlock::ToolUse(tool_use);
    let ContentBlock::ToolUse(back) = round_trip(&block) else { panic!("variant changed") };
    assert_eq!(serde_json::to_string(&back.input).unwrap(), r#"{"zeta":1,"alpha":{"y":2,"b":3}}"#);
}

#[test]
fn request_and_response_survive_the_canonical_form() {
    let request = Request {
        messages: vec![Message::user_text("hi")],
        system: Some(SystemPrompt::Text("be brief".into())),
        tools: Some(vec![Tool::Spec(ToolSpec {
            name: "get".into(),
            description: None,
            input_schema: json!({"type": "object"}),
            strict: Some(true),
            unmapped: Unmapped::default(),
        })]),
        tool_choice: Some(ToolChoice::new(ToolChoiceKind::Tool { name: "get".into() })),
        inference: Some(InferenceConfig {
            max_tokens: Some(1024),
            temperature: Some(serde_json::Number::from(1)),
            top_p: Some(serde_json::Number::from_f64(0.5).unwrap()),
            stop_sequences: Some(vec![]),
        }),
        top_k: Some(5),
        thinking: Some(ThinkingConfig::new(ThinkingMode::Adaptive {
            effort: Some(Effort::Other("ultra".into())),
        })),
        beta: Some(vec!["interleaved-thinking-2025-05-14".into()]),
        model_fields: Some(JsonMap::new()),
        unmapped: Unmapped::default(),
    };
    assert_eq!(round_trip(&request), request);

    let response = Response {
        id: Some("msg_bdrk_1".into()),
        model: None,
        message: Message::assistant_text("ok"),
        stop_reason: Some(StopReason::Other("new_reason".into())),
        usage: Some(Usage { input_tokens: Some(3), ..Usage::default() }),
        metrics: Some(Metrics { latency_ms: Some(12), unmapped: Unmapped::default() }),
        model_fields: None,
        unmapped: Unmapped::default(),
        notes: vec!["event 7 (futureEvent): not read, kept as {}".into()],
    };
    assert_eq!(round_trip(&response), response);
}

#[test]
fn known_wire_values_parse_to_named_variants() {
    assert_eq!(StopReason::parse("tool_use"), StopReason::ToolUse);
    assert_eq!(StopReason::parse("novel"), StopReason::Other("novel".into()));
    assert_eq!(StopReason::parse("novel").as_str(), "novel");
    assert_eq!(Effort::parse("xhigh"), Effort::Xhigh);
    assert_eq!(serde_json::to_string(&Effort::High).unwrap(), r#""high""#);
    assert_eq!(serde_json::from_str::<Effort>(r#""max""#).unwrap(), Effort::Max);
    assert_eq!(serde_json::from_str::<Effort>(r#""odd""#).unwrap(), Effort::Other("odd".into()));
}

#[test]
fn session_ids_are_version_4_uuids() {
    let id = SessionId::from_random_bytes([0xAB; 16]);
    let text = id.to_string();
    assert_eq!(text.len(), 36);
    assert_eq!(&text[14..15], "4", "version nibble");
    assert_eq!(SessionId::parse(&text).unwrap(), id);
    assert_eq!(round_trip(&id), id);

    // A version 1 UUID is refused, as is garbage.
    assert!(matches!(
        SessionId::parse("c232ab00-9414-11ec-b3c8-9f6bdeced846"),
        Err(SessionIdError::NotVersion4(_))
    ));
    assert!(matches!(SessionId::parse("not-a-uuid"), Err(SessionIdError::Malformed(_))));
    assert!(serde_json::from_str::<SessionId>(r#""nope""#).is_err());
}

#[test]
fn model_ids_are_one_to_2048_printable_characters() {
    for id in [
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/p1",
        "é",
    ] {
        assert_eq!(check_model_id(id), Ok(()), "{id}");
    }
    assert_eq!(check_model_id(&"é".repeat(2048)), Ok(()), "counted in characters, not bytes");
    assert_eq!(check_model_id(""), Err(ModelIdError::Empty));
    assert_eq!(check_model_id(&"m".repeat(2049)), Err(ModelIdError::TooLong { chars: 2049 }));
    let huge = check_model_id(&"m".repeat(10_000_000)).unwrap_err();
    assert_eq!(
        huge.to_string(),
        "the model id is 10000000 characters long; Bedrock takes at most 2048"
    );
    let newline = check_model_id("anthropic.claude\nfake line").unwrap_err();
    assert_eq!(newline, ModelIdError::Control { found: '\n', at: 17 });
    assert_eq!(
        newline.to_string(),
        "the model id holds the control character \\n at character 17; model ids are printable text"
    );
    let escape = check_model_id("m\u{1b}[31mred").unwrap_err();
    assert_eq!(escape, ModelIdError::Control { found: '\u{1b}', at: 2 });
    assert!(escape.to_string().contains("\\u{1b}"), "{escape}");
    assert!(!escape.to_string().contains('\u{1b}'), "the message never holds the raw character");
    assert!(check_model_id("m\u{9b}31m").is_err(), "C1 controls too");
}

#[test]
fn newer_schema_versions_are_refused() {
    let stored = Versioned::new(Message::user_text("hi"));
    assert_eq!(stored.schema_version, SCHEMA_VERSION);
    assert_eq!(round_trip(&stored).into_current().unwrap(), Message::user_text("hi"));

    let future = Versioned { schema_version: SCHEMA_VERSION + 1, data: 0u8 };
    assert_eq!(
        future.into_current(),
        Err(SchemaError { found: SCHEMA_VERSION + 1, supported: SCHEMA_VERSION })
    );
}

#[test]
fn a_message_text_joins_its_text_blocks_only() {
    let message = Message::new(
        Role::Assistant,
        vec![
            ContentBlock::Thinking(ThinkingBlock {
                text: "hidden".into(),
                signature: Some("sig".into()),
                unmapped: Unmapped::default(),
            }),
            ContentBlock::text("Sunny "),
            ContentBlock::cache_point(),
            ContentBlock::text("today."),
        ],
    );
    assert_eq!(message.text(), "Sunny today.");
    assert_eq!(Message::new(Role::User, vec![]).text(), "");
}
