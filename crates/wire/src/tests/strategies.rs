//! Random model values for property tests: requests, with every kind of message and block
//! both dialects can express (any characters in text, any JSON in tool inputs).
//!
//! `verbatim-protocol`'s tests include this file too (its request bodies are written from
//! these requests).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use serde_json::{Number, Value};
use verbatim_model::{
    CachePoint, ContentBlock, DocumentBlock, DocumentSource, Effort, ImageBlock, InferenceConfig,
    JsonMap, MediaSource, Message, RedactedForm, RedactedThinking, Request, Role, SystemBlock,
    SystemPrompt, TextBlock, ThinkingBlock, ThinkingConfig, ThinkingMode, Tool, ToolChoice,
    ToolChoiceKind, ToolResult, ToolResultBlock, ToolResultContent, ToolResultStatus, ToolSpec,
    ToolUse, Unmapped,
};

fn text() -> impl Strategy<Value = String> {
    // Any characters, whitespace and control characters included.
    proptest::string::string_regex("(?s).{0,12}").unwrap()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64).prop_map(Value::Number),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((text(), json_value()), 0..4)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,24}"
}

fn base64_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 1..24).prop_map(|bytes| BASE64.encode(bytes))
}

fn image() -> impl Strategy<Value = ImageBlock> {
    (prop::sample::select(vec!["png", "jpeg", "gif", "webp"]), base64_text()).prop_map(
        |(format, data)| ImageBlock {
            format: Some(format.to_owned()),
            source: MediaSource::Bytes(data),
            unmapped: Unmapped::default(),
        },
    )
}

fn document() -> impl Strategy<Value = DocumentBlock> {
    let name = "[A-Za-z0-9]{1,8}( [A-Za-z0-9]{1,8})?";
    (name, base64_text(), proptest::option::of(text()), proptest::option::of(any::<bool>()))
        .prop_map(|(name, data, context, citations)| DocumentBlock {
            name: Some(name),
            format: Some("pdf".into()),
            source: DocumentSource::Bytes(data),
            context,
            citations,
            unmapped: Unmapped::default(),
        })
}

fn tool_result() -> impl Strategy<Value = ToolResult> {
    let block = prop_oneof![
        text().prop_map(|text| ToolResultBlock::Text { text }),
        image().prop_map(ToolResultBlock::Image),
        document().prop_map(ToolResultBlock::Document),
    ];
    let status = proptest::option::of(prop_oneof![
        Just(ToolResultStatus::Success),
        Just(ToolResultStatus::Error)
    ]);
    (id(), prop::collection::vec(block, 0..3), status).prop_map(|(id, blocks, status)| ToolResult {
        tool_use_id: id.into(),
        content: Some(ToolResultContent::Blocks(blocks)),
        status,
        unmapped: Unmapped::default(),
    })
}

fn block() -> impl Strategy<Value = ContentBlock> {
    prop_oneof![
        text().prop_map(ContentBlock::text),
        image().prop_map(ContentBlock::Image),
        document().prop_map(ContentBlock::Document),
        (id(), id(), json_object(), proptest::option::of(Just("server_tool_use".to_owned())))
            .prop_map(|(id, name, input, kind)| ContentBlock::ToolUse(ToolUse {
                id: id.into(),
                name,
                input,
                kind,
                unmapped: Unmapped::default(),
            })),
        tool_result().prop_map(ContentBlock::ToolResult),
        (text(), proptest::option::of(base64_text())).prop_map(|(text, signature)| {
            ContentBlock::Thinking(ThinkingBlock { text, signature, unmapped: Unmapped::default() })
        }),
        // Converse's redacted blob is base64 of Anthropic's (ASCII) data.
        "[A-Za-z0-9+/]{4,32}".prop_map(|data| ContentBlock::RedactedThinking(RedactedThinking {
            data: BASE64.encode(data),
            form: RedactedForm::ConverseBlob,
            unmapped: Unmapped::default(),
        })),
    ]
}

fn ttl() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop::sample::select(vec!["5m".to_owned(), "1h".to_owned()]))
}

/// Blocks with cache points only right after a block they can attach to.
fn blocks_with_cache_points() -> impl Strategy<Value = Vec<ContentBlock>> {
    prop::collection::vec((block(), proptest::option::of(ttl())), 0..4).prop_map(|items| {
        let mut blocks = Vec::new();
        for (block, cache) in items {
            blocks.push(block);
            if let Some(ttl) = cache {
                blocks.push(ContentBlock::CachePoint(CachePoint { ttl }));
            }
        }
        blocks
    })
}

pub(crate) fn message() -> impl Strategy<Value = Message> {
    (prop_oneof![Just(Role::User), Just(Role::Assistant)], blocks_with_cache_points())
        .prop_map(|(role, content)| Message::new(role, content))
}

fn system() -> impl Strategy<Value = Option<SystemPrompt>> {
    let blocks =
        prop::collection::vec((text(), proptest::option::of(ttl())), 0..3).prop_map(|items| {
            let mut blocks = Vec::new();
            for (text, cache) in items {
                blocks.push(SystemBlock::Text(TextBlock::new(text)));
                if let Some(ttl) = cache {
                    blocks.push(SystemBlock::CachePoint(CachePoint { ttl }));
                }
            }
            SystemPrompt::Blocks(blocks)
        });
    proptest::option::of(blocks)
}

fn tools() -> impl Strategy<Value = Option<Vec<Tool>>> {
    let spec =
        (id(), proptest::option::of(text()), json_object(), proptest::option::of(any::<bool>()))
            .prop_map(|(name, description, input_schema, strict)| {
                Tool::Spec(ToolSpec {
                    name,
                    description,
                    input_schema,
                    strict,
                    unmapped: Unmapped::default(),
                })
            });
    let entries =
        prop::collection::vec((spec, proptest::option::of(ttl())), 0..3).prop_map(|items| {
            let mut tools = Vec::new();
            for (tool, cache) in items {
                tools.push(tool);
                if let Some(ttl) = cache {
                    tools.push(Tool::CachePoint(CachePoint { ttl }));
                }
            }
            tools
        });
    proptest::option::of(entries)
}

fn tool_choice() -> impl Strategy<Value = Option<ToolChoice>> {
    proptest::option::of(
        prop_oneof![
            Just(ToolChoiceKind::Auto),
            Just(ToolChoiceKind::Any),
            id().prop_map(|name| ToolChoiceKind::Tool { name }),
        ]
        .prop_map(ToolChoice::new),
    )
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        (0u64..=1).prop_map(Number::from),
        (0.0f64..=1.0).prop_filter_map("finite", Number::from_f64),
    ]
}

fn inference() -> impl Strategy<Value = InferenceConfig> {
    (
        1u32..200_000,
        proptest::option::of(number()),
        proptest::option::of(number()),
        proptest::option::of(prop::collection::vec(text(), 0..3)),
    )
        .prop_map(|(max_tokens, temperature, top_p, stop_sequences)| InferenceConfig {
            max_tokens: Some(max_tokens),
            temperature,
            top_p,
            stop_sequences,
        })
}

fn thinking() -> impl Strategy<Value = Option<ThinkingConfig>> {
    let effort = proptest::option::of(prop_oneof![
        Just(Effort::Low),
        Just(Effort::High),
        Just(Effort::Max),
        "[a-z]{1,6}".prop_map(|s| Effort::parse(&s)),
    ]);
    let mode = prop_oneof![
        Just(ThinkingMode::Disabled),
        (1024u32..64_000).prop_map(|budget_tokens| ThinkingMode::Enabled { budget_tokens }),
        effort.prop_map(|effort| ThinkingMode::Adaptive { effort }),
    ];
    let display = proptest::option::of(prop::sample::select(vec![
        "summarized".to_owned(),
        "omitted".to_owned(),
    ]));
    let extra = proptest::option::of(json_value()).prop_map(|binding| {
        let mut extra = JsonMap::new();
        if let Some(binding) = binding {
            extra.insert("block_binding".into(), binding);
        }
        extra
    });
    proptest::option::of((mode, display, extra).prop_map(|(mode, display, extra)| ThinkingConfig {
        mode,
        display,
        extra,
    }))
}

fn model_fields() -> impl Strategy<Value = Option<JsonMap>> {
    // Native keys that no named setting claims.
    let key =
        prop::sample::select(vec!["metadata", "context_management", "mcp_servers", "x_custom"]);
    proptest::option::of(prop::collection::vec((key, json_value()), 1..3).prop_map(|entries| {
        entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<JsonMap>()
    }))
}

pub(crate) fn request() -> impl Strategy<Value = Request> {
    (
        prop::collection::vec(message(), 0..5),
        system(),
        tools(),
        tool_choice(),
        inference(),
        proptest::option::of(1u32..500),
        thinking(),
        proptest::option::of(prop::collection::vec("[a-z0-9-]{1,20}", 0..3)),
        model_fields(),
    )
        .prop_map(
            |(
                messages,
                system,
                tools,
                tool_choice,
                inference,
                top_k,
                thinking,
                beta,
                model_fields,
            )| {
                Request {
                    messages,
                    system,
                    tools,
                    tool_choice,
                    inference: Some(inference),
                    top_k,
                    thinking,
                    beta,
                    model_fields,
                    unmapped: Unmapped::default(),
                }
            },
        )
}
