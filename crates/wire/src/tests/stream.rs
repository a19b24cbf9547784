//! Folding recorded streams into responses: the assembled assistant message equals the one the
//! recording client sent back on its next request (which Bedrock accepted), streams cut short
//! are errors, and out-of-place events are named.

use serde_json::{Value, json};

use super::eventstream::captures;
use super::recordings::fixtures_dir;
use crate::eventstream::{Frame, decode_all};
use crate::stream::{AnthropicAccumulator, ConverseAccumulator, StreamError, Update};
use crate::{anthropic, converse};
use verbatim_model::{ContentBlock, Response};

/// Folds the frames of a capture; `chunk` frames are InvokeModel streams.
fn fold(frames: &[Frame]) -> (Result<Response, StreamError>, Vec<Update>) {
    let invoke = matches!(&frames[0], Frame::Event { event_type, .. } if event_type == "chunk");
    let mut updates = Vec::new();
    let mut converse = ConverseAccumulator::new();
    let mut anthropic = AnthropicAccumulator::new();
    for frame in frames {
        let Frame::Event { event_type, payload } = frame else { panic!("{frame:?}") };
        let update =
            if invoke { anthropic.push_chunk(payload) } else { converse.push(event_type, payload) };
        match update {
            Ok(update) => updates.extend(update),
            Err(error) => return (Err(error), updates),
        }
    }
    let response = if invoke { anthropic.finish() } else { converse.finish() };
    (response, updates)
}

#[test]
fn every_recorded_stream_folds_into_a_whole_response_without_padding() {
    for (name, bytes, _) in captures() {
        let frames = decode_all(&bytes).unwrap();
        let (response, updates) = fold(&frames);
        let response = response.unwrap_or_else(|e| panic!("{name}: {e}"));
        let streamed: String = updates
            .iter()
            .filter_map(|u| match u {
                Update::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let assembled: String = response
            .message
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(streamed, assembled, "{name}");
        assert!(response.stop_reason.is_some(), "{name}");
        assert!(response.usage.is_some(), "{name}");
        let encoded = serde_json::to_string(&response).unwrap();
        assert!(!encoded.contains("abcdefghijklmnop"), "{name}: the padding leaked in");
    }
}

/// The assistant message a client sent back after a streamed turn, and the capture it follows.
fn echoed_turns() -> Vec<(String, String, Value, bool)> {
    let Some(dir) = fixtures_dir() else { return Vec::new() };
    let mut turns = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !file.ends_with(".json") || file.ends_with("_events.json") {
            continue;
        }
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(exchanges) = document["exchanges"].as_array() else { continue };
        for pair in exchanges.windows(2) {
            let Some(capture) = pair[0]["response"]["body_eventstream_file"].as_str() else {
                continue;
            };
            let body = |request: &Value| -> Value {
                match request.get("body") {
                    Some(Value::String(text)) => serde_json::from_str(text).unwrap(),
                    _ => request["body_json"].clone(),
                }
            };
            let first = body(&pair[0]["request"]);
            let next = body(&pair[1]["request"]);
            let sent = first["messages"].as_array().unwrap().len();
            let echoed = next["messages"][sent].clone();
            assert_eq!(echoed["role"], "assistant", "{file}");
            let invoke = pair[0]["request"]["uri"].as_str().unwrap().contains("/invoke");
            turns.push((file.clone(), capture.replace(".eventstream.b64", ""), echoed, invoke));
        }
    }
    assert!(turns.len() >= 4, "expected streamed turns followed by a request");
    turns
}

#[test]
fn a_folded_stream_equals_the_message_bedrock_accepted_back_byte_for_byte() {
    let captures = captures();
    for (file, capture, echoed, invoke) in echoed_turns() {
        let (_, bytes, _) = captures.iter().find(|(name, ..)| *name == capture).unwrap();
        let (response, _) = fold(&decode_all(bytes).unwrap());
        let response = response.unwrap_or_else(|e| panic!("{capture}: {e}"));
        let mut encoded = if invoke {
            anthropic::encode_message(&response.message).unwrap()
        } else {
            converse::encode_message(&response.message).unwrap()
        };
        // The one liberty a recording client took: it left out toolUse's optional `type`
        // (`tool_use`, which the non-streamed response carries too) when sending the turn back.
        for (ours, theirs) in encoded["content"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip(echoed["content"].as_array().unwrap())
        {
            if let (Some(tool), Some(echoed_tool)) =
                (ours.get_mut("toolUse"), theirs.get("toolUse"))
                && echoed_tool.get("type").is_none()
            {
                let dropped = tool.as_object_mut().unwrap().remove("type");
                assert!(dropped.is_none() || dropped == Some(json!("tool_use")), "{dropped:?}");
            }
        }
        assert_eq!(encoded, echoed, "{file}: the message folded from {capture}");
    }
}

#[test]
fn a_stream_cut_short_at_any_event_is_an_error_never_a_partial_message() {
    for (name, bytes, _) in captures() {
        let frames = decode_all(&bytes).unwrap();
        for keep in 0..frames.len() {
            if keep == 0 {
                continue; // `fold` needs a first frame to tell the dialect
            }
            let (response, _) = fold(&frames[..keep]);
            assert!(
                matches!(response, Err(StreamError::Incomplete { .. })),
                "{name}: {keep} of {} events gave {response:?}",
                frames.len()
            );
        }
    }
}

fn converse_events(events: &[(&str, Value)]) -> Result<Response, StreamError> {
    let mut accumulator = ConverseAccumulator::new();
    for (event_type, payload) in events {
        accumulator.push(event_type, payload.to_string().as_bytes())?;
    }
    accumulator.finish()
}

/// Signature-only thinking (Opus 4.7's `display: "omitted"`: no text deltas, one signature
/// delta) folds into a block with empty text, which goes back as `"text": ""`: Bedrock takes
/// the empty string there, not a null or a missing key.
#[test]
fn signature_only_reasoning_folds_to_empty_text_and_goes_back_as_an_empty_string() {
    let response = converse_events(&[
        ("messageStart", json!({"role": "assistant"})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "EqQBCkYIBxgC"}}})),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "Done."}})),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("messageStop", json!({"stopReason": "end_turn"})),
        ("metadata", json!({"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}})),
    ])
    .unwrap();
    let message = converse::encode_message(&response.message).unwrap();
    assert_eq!(
        message["content"][0],
        json!({"reasoningContent": {"reasoningText": {"text": "", "signature": "EqQBCkYIBxgC"}}})
    );
}

/// A signature may come in several deltas, and a reply may hold several signed blocks
/// (interleaved thinking): each block's pieces are joined in order, byte for byte, and no
/// piece leaks into another block.
#[test]
fn converse_signatures_in_pieces_join_per_block() {
    let signature = |index: u32, piece: &str| json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": piece}}});
    let response = converse_events(&[
        ("messageStart", json!({"role": "assistant"})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "First, "}}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "look."}}})),
        ("contentBlockDelta", signature(0, "EqQBCkYIBxgC")),
        ("contentBlockDelta", signature(0, "KkA+/x==")),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"n\":1.50}"}}})),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"reasoningContent": {"text": "Then answer."}}})),
        ("contentBlockDelta", signature(2, "Ep0C")),
        ("contentBlockDelta", signature(2, "")),
        ("contentBlockDelta", signature(2, "CkYIBx")),
        ("contentBlockDelta", signature(2, "gC/+==")),
        ("contentBlockStop", json!({"contentBlockIndex": 2})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        ("metadata", json!({"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}})),
    ])
    .unwrap();
    let message = converse::encode_message(&response.message).unwrap();
    assert_eq!(
        message["content"][0],
        json!({"reasoningContent": {"reasoningText": {"text": "First, look.", "signature": "EqQBCkYIBxgCKkA+/x=="}}})
    );
    assert_eq!(
        message["content"][2],
        json!({"reasoningContent": {"reasoningText": {"text": "Then answer.", "signature": "Ep0CCkYIBxgC/+=="}}})
    );
    assert_eq!(message["content"][1]["toolUse"]["input"].to_string(), r#"{"n":1.50}"#);
}

/// The same on InvokeModel and the Messages API: `signature_delta` pieces join per block.
#[test]
fn anthropic_signatures_in_pieces_join_per_block() {
    let thinking = |index: u32| json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}});
    let delta = |index: u32, delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
    let signature = |index: u32, piece: &str| {
        delta(index, json!({"type": "signature_delta", "signature": piece}))
    };
    let stop = |index: u32| json!({"type": "content_block_stop", "index": index});
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        thinking(0),
        delta(0, json!({"type": "thinking_delta", "thinking": "One."})),
        signature(0, "EqQB"),
        signature(0, "CkYI+/=="),
        stop(0),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        delta(1, json!({"type": "text_delta", "text": "Between."})),
        stop(1),
        thinking(2),
        delta(2, json!({"type": "thinking_delta", "thinking": "Two."})),
        signature(2, "Ep0C"),
        signature(2, "CkYIBxgC"),
        signature(2, "x/=="),
        stop(2),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "text", "text": ""}}),
        delta(3, json!({"type": "text_delta", "text": "Done."})),
        stop(3),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ];
    let mut accumulator = AnthropicAccumulator::new();
    for event in &events {
        accumulator.push(event.to_string().as_bytes()).unwrap();
    }
    let response = accumulator.finish().unwrap();
    let message = anthropic::encode_message(&response.message).unwrap();
    assert_eq!(
        message["content"][0],
        json!({"type": "thinking", "thinking": "One.", "signature": "EqQBCkYI+/=="})
    );
    assert_eq!(
        message["content"][2],
        json!({"type": "thinking", "thinking": "Two.", "signature": "Ep0CCkYIBxgCx/=="})
    );
}

#[test]
fn converse_blocks_are_keyed_by_index_not_arrival_order() {
    let response = converse_events(&[
        ("messageStart", json!({"role": "assistant"})),
        ("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"b\":1,"}}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "lo"}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"a\":2.50}"}}})),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        ("metadata", json!({"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}, "metrics": {"latencyMs": 5}})),
    ])
    .unwrap();
    let message = converse::encode_message(&response.message).unwrap();
    let expected: Value = serde_json::from_str(
        r#"{"role": "assistant", "content": [
            {"text": "Hello"},
            {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"b": 1, "a": 2.50}}}
        ]}"#,
    )
    .unwrap();
    assert_eq!(message, expected);
    // Key order and number spelling of the tool input are kept: `2.50`, not `2.5`.
    let input = &message["content"][1]["toolUse"]["input"];
    assert_eq!(input.to_string(), r#"{"b":1,"a":2.50}"#);
}

#[test]
fn out_of_place_converse_events_name_the_event_and_the_reason() {
    let start = ("messageStart", json!({"role": "assistant"}));
    let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
        (
            vec![("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "x"}}))],
            "event 0 (contentBlockDelta): content before messageStart",
        ),
        (
            vec![
                start.clone(),
                ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "x"}})),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "y"}}}),
                ),
            ],
            "event 2 (contentBlockDelta): reasoningContent delta for block 0, a text block",
        ),
        (
            vec![
                start.clone(),
                ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": 7}})),
            ],
            "event 1 (contentBlockDelta): delta.text: expected a string, found a number",
        ),
        (
            vec![
                start.clone(),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "x", "toolUse": {}}}),
                ),
            ],
            "event 1 (contentBlockDelta): delta: invalid value: a delta must hold exactly one member",
        ),
        (
            vec![
                start.clone(),
                ("messageStop", json!({"stopReason": "end_turn"})),
                ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "x"}})),
            ],
            "event 2 (contentBlockDelta): only metadata may follow messageStop",
        ),
        (
            vec![
                start.clone(),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"toolResult": [{"text": "x"}]}}),
                ),
            ],
            "event 1 (contentBlockDelta): toolResult delta for block 0, which no toolResult start opened",
        ),
        (
            vec![
                start.clone(),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "y"}}}),
                ),
                ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"citation": {}}})),
            ],
            "event 2 (contentBlockDelta): citation delta for block 0, a reasoning block",
        ),
        (
            vec![
                start.clone(),
                ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"video": {}}})),
            ],
            "event 1 (contentBlockDelta): unsupported block 0 of kind \"video\"",
        ),
    ];
    for (events, says) in cases {
        let error = converse_events(&events).unwrap_err();
        assert_eq!(error.to_string(), says);
    }
}

#[test]
fn an_unfinished_tool_input_is_incomplete_even_after_message_stop() {
    let error = converse_events(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\":"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("messageStop", json!({"stopReason": "max_tokens"})),
        ("metadata", json!({"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}})),
    ])
    .unwrap_err();
    assert!(matches!(error, StreamError::Incomplete { .. }), "{error}");
    assert!(error.to_string().contains("tool block 0 is not complete JSON"), "{error}");
}

#[test]
fn anthropic_thinking_and_signature_deltas_fold_into_one_block() {
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCkYI"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ];
    let mut accumulator = AnthropicAccumulator::new();
    let mut updates = Vec::new();
    for event in &events {
        updates.extend(accumulator.push(event.to_string().as_bytes()).unwrap());
    }
    let response = accumulator.finish().unwrap();
    assert_eq!(
        anthropic::encode_message(&response.message).unwrap(),
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYI"},
            {"type": "text", "text": "Hi"},
        ]})
    );
    assert_eq!(response.usage.unwrap().output_tokens, Some(9));
    assert_eq!(updates.last(), Some(&Update::Stopped { reason: "end_turn".to_owned() }));
    let mut early = AnthropicAccumulator::new();
    early.push(events[0].to_string().as_bytes()).unwrap();
    let error = early.push(json!({"type": "content_block_delta", "index": 4, "delta": {"type": "text_delta", "text": "x"}}).to_string().as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "event 1 (content_block_delta): delta for index 4, never started"
    );
}

#[test]
fn a_tool_delta_without_an_open_tool_block_is_ignored() {
    let response = converse_events(&[
        ("messageStart", json!({"role": "assistant"})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": ""}}})),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("messageStop", json!({"stopReason": "end_turn"})),
        ("metadata", json!({"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}})),
    ])
    .unwrap();
    assert_eq!(
        converse::encode_message(&response.message).unwrap(),
        json!({"role": "assistant", "content": [{"text": "Hi"}]})
    );
}

#[test]
fn an_anthropic_stream_without_a_stop_reason_is_incomplete() {
    let mut accumulator = AnthropicAccumulator::new();
    for event in [
        json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [], "stop_reason": null, "usage": {"input_tokens": 1, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Hi"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_stop"}),
    ] {
        accumulator.push(event.to_string().as_bytes()).unwrap();
    }
    let error = accumulator.finish().unwrap_err();
    assert!(error.to_string().contains("no stop_reason"), "{error}");
}

/// The stream sequence `name` under `test_data/stream/` folded, and the whole reply it must
/// give (see the README there for where each comes from).
fn stream_case(name: &str) -> (Response, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/stream");
    let read = |file: String| std::fs::read_to_string(dir.join(file)).unwrap();
    let events: Vec<(String, Value)> =
        serde_json::from_str(&read(format!("{name}.events.json"))).unwrap();
    let mut accumulator = ConverseAccumulator::new();
    for (event_type, payload) in &events {
        accumulator.push(event_type, payload.to_string().as_bytes()).unwrap();
    }
    let expected = serde_json::from_str(&read(format!("{name}.expected.json"))).unwrap();
    (accumulator.finish().unwrap(), expected)
}

#[test]
fn converse_citation_deltas_fold_into_the_citations_block_a_whole_reply_has() {
    let (response, expected) = stream_case("citations");
    assert_eq!(converse::encode_message(&response.message).unwrap(), expected);
    assert!(matches!(response.message.content[0], ContentBlock::CitationsContent(_)));
    assert!(response.notes.is_empty());
}

#[test]
fn a_server_tool_result_streamed_inside_the_assistant_turn_is_kept() {
    let (response, expected) = stream_case("nova_code_interpreter");
    let message = converse::encode_message(&response.message).unwrap();
    assert_eq!(message, expected);
    // The numbers of the result's JSON keep their text.
    assert_eq!(
        message["content"][1]["toolResult"]["content"][1].to_string(),
        r#"{"json":{"exitCode":0,"elapsed":0.50}}"#
    );
    assert!(matches!(response.message.content[1], ContentBlock::ToolResult(_)));
}

#[test]
fn stream_parts_of_unknown_kinds_are_kept_raw_and_named_not_lost() {
    let (response, expected) = stream_case("unknown_kinds");
    assert_eq!(converse::encode_message(&response.message).unwrap(), expected["message"]);
    assert!(matches!(response.message.content[1], ContentBlock::Unknown(_)));
    let notes: Vec<String> = serde_json::from_value(expected["notes"].clone()).unwrap();
    assert_eq!(response.notes, notes);
    // What comes after the unknown parts is read as usual.
    assert_eq!(response.stop_reason, Some(verbatim_model::StopReason::EndTurn));
    assert_eq!(response.usage.unwrap().output_tokens, Some(6));
}

#[test]
fn anthropic_citation_and_compaction_deltas_go_only_to_their_blocks() {
    let start = json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [], "stop_reason": null, "usage": {"input_tokens": 1, "output_tokens": 1}}});
    let fold = |events: &[Value]| {
        let mut accumulator = AnthropicAccumulator::new();
        for event in events {
            accumulator.push_value(event.clone())?;
        }
        accumulator.finish()
    };
    let error = fold(&[
        start.clone(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}}),
    ])
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "event 2 (content_block_delta): citations_delta for block 0, a thinking block"
    );
    let error = fold(&[
        start.clone(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "compaction", "content": null}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "compaction_delta", "content": 7}}),
    ])
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "event 2 (content_block_delta): delta.content: expected a string or null, found a number"
    );
    // A failed compaction (`content: null`) keeps what the block had; the opaque part is
    // replaced; `message_delta`'s own keys land on the message.
    let response = fold(&[
        start,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "compaction", "content": "kept", "encrypted_content": "old"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "compaction_delta", "content": null, "encrypted_content": "new"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "compaction"}, "usage": {"output_tokens": 5}, "context_management": {"applied_edits": []}, "diagnostics": null, "container": null}),
        json!({"type": "message_stop"}),
    ])
    .unwrap();
    let encoded = anthropic::encode_response(&response).unwrap();
    assert_eq!(
        encoded["content"],
        json!([{"type": "compaction", "content": "kept", "encrypted_content": "new"}])
    );
    assert_eq!(encoded["context_management"], json!({"applied_edits": []}));
    let kept: Vec<&str> =
        response.model_fields.as_ref().unwrap().keys().map(String::as_str).collect();
    assert_eq!(kept, ["context_management", "diagnostics", "container"], "in the order sent");
    assert_eq!(encoded["usage"], json!({"input_tokens": 1, "output_tokens": 5}));
}

#[test]
fn an_anthropic_event_that_is_not_an_object_is_named_as_before() {
    let mut accumulator = AnthropicAccumulator::new();
    let error = accumulator.push(b"[1]").unwrap_err();
    assert_eq!(error.to_string(), "event 0 (?): $: expected an object, found an array");
    let error = accumulator.push(b"{").unwrap_err();
    assert!(error.to_string().starts_with("event 1 (?): "), "{error}");
}

#[test]
fn anthropic_stream_parts_of_unknown_kinds_are_kept_in_the_notes_and_the_reply_read() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/stream");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let events: Vec<Value> =
        serde_json::from_str(&read("anthropic_unknown_kinds.events.json")).unwrap();
    let expected: Value =
        serde_json::from_str(&read("anthropic_unknown_kinds.expected.json")).unwrap();
    let mut accumulator = AnthropicAccumulator::new();
    for event in events {
        accumulator.push_value(event).unwrap();
    }
    let response = accumulator.finish().unwrap();
    assert_eq!(anthropic::encode_response(&response).unwrap()["content"], expected["content"]);
    let notes: Vec<String> = serde_json::from_value(expected["notes"].clone()).unwrap();
    assert_eq!(response.notes, notes);
}

#[test]
fn a_streamed_image_is_its_start_and_its_delta_in_one_block() {
    let (response, expected) = stream_case("image");
    assert_eq!(converse::encode_message(&response.message).unwrap(), expected);
    assert!(matches!(response.message.content[0], ContentBlock::Image(_)));
    assert!(response.notes.is_empty());
}
