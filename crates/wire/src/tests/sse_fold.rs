//! Folding SSE streams of Anthropic events: each constructed stream gives the response its
//! non-streamed form decodes to, at every chunk size and line end; a stream cut anywhere is an
//! error; `ping`, `event: error` and odd events are handled as the SDK does; and the SSE path
//! folds the same events to the same response as the InvokeModel event-stream path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::{Value, json};
use verbatim_model::Response;

use super::eventstream::captures;
use super::sse::{streams, with_line_ends};
use super::support::{test_data, verbatim_strings};
use crate::anthropic;
use crate::eventstream::{Frame, decode_all};
use crate::sse::{MessagesEventError, MessagesFold, MessagesFoldError, SseEvent, messages_event};
use crate::stream::{AnthropicAccumulator, StreamError, StreamFailure, Update, chunk_event};

/// Folds `bytes` pushed in chunks of `chunk` bytes.
fn fold(bytes: &[u8], chunk: usize) -> (Result<Response, MessagesFoldError>, Vec<Update>) {
    let mut fold = MessagesFold::new();
    let mut updates = Vec::new();
    for part in bytes.chunks(chunk.max(1)) {
        match fold.push(part) {
            Ok(more) => updates.extend(more),
            Err(error) => return (Err(error), updates),
        }
    }
    (fold.finish(), updates)
}

/// The streams that have a non-streamed form: (name, bytes, that form as JSON).
fn streams_with_responses() -> Vec<(String, Vec<u8>, Value)> {
    let found: Vec<_> = streams()
        .into_iter()
        .filter_map(|(name, bytes)| {
            let path = test_data("sse").join(format!("{name}.response.json"));
            let text = std::fs::read_to_string(path).ok()?;
            Some((name, bytes, serde_json::from_str(&text).unwrap()))
        })
        .collect();
    assert!(found.len() >= 3);
    found
}

#[test]
fn each_stream_folds_into_the_response_its_non_streamed_form_decodes_to() {
    for (name, bytes, expected) in streams_with_responses() {
        let (response, updates) = fold(&bytes, bytes.len());
        let response = response.unwrap_or_else(|e| panic!("{name}: {e}"));
        let decoded = anthropic::decode_response_value(expected.clone()).unwrap();
        assert_eq!(response, decoded, "{name}");
        let encoded = anthropic::encode_response(&response).unwrap();
        assert_eq!(encoded, expected, "{name}");
        // Key order and bytes of thinking, signatures, redacted data and tool inputs.
        assert_eq!(verbatim_strings(&encoded), verbatim_strings(&expected), "{name}");
        assert!(updates.contains(&Update::Stopped {
            reason: expected["stop_reason"].as_str().unwrap().to_owned()
        }));
        for ending in ["\n", "\r\n", "\r"] {
            let bytes = with_line_ends(&bytes, ending);
            for size in [1, 2, 3, 7, 64, 1000] {
                let (again, again_updates) = fold(&bytes, size);
                assert_eq!(again.unwrap(), response, "{name} {ending:?} chunks of {size}");
                assert_eq!(again_updates, updates, "{name} {ending:?} chunks of {size}");
            }
        }
    }
}

#[test]
fn updates_carry_text_thinking_and_tool_calls_as_they_stream() {
    let bytes = std::fs::read(test_data("sse").join("thinking_tool_use.sse")).unwrap();
    let (response, updates) = fold(&bytes, 5);
    response.unwrap();
    let thinking: String = updates
        .iter()
        .filter_map(|u| match u {
            Update::Thinking { index: 0, text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(thinking.starts_with("The user wants the weather in Zürich — "), "{thinking}");
    assert!(updates.contains(&Update::ToolUse {
        index: 2,
        id: "toolu_bdrk_01T1x1fJ34qAmk2tNTrN7Up6".to_owned(),
        name: "get_weather".to_owned(),
    }));
    let input: String = updates
        .iter()
        .filter_map(|u| match u {
            Update::ToolInput { json, .. } => Some(json.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(input, r#"{"location": "Z\u00fcrich, CH", "unit": "celsius", "days": 1}"#);
}

#[test]
fn a_stream_cut_anywhere_is_an_error_never_a_partial_response() {
    for (name, bytes, _) in streams_with_responses() {
        for cut in 0..bytes.len() {
            let (response, _) = fold(&bytes[..cut], 7);
            let error = response.expect_err(&format!("{name} cut at byte {cut}"));
            assert!(
                matches!(
                    error,
                    MessagesFoldError::Finish(StreamError::Incomplete { .. })
                        | MessagesFoldError::Sse(_)
                ),
                "{name} cut at {cut}: {error}"
            );
        }
    }
}

#[test]
fn an_error_event_mid_stream_carries_the_anthropic_error_type_and_message() {
    let bytes = std::fs::read(test_data("sse").join("error_mid_stream.sse")).unwrap();
    let mut fold = MessagesFold::new();
    let mut updates = Vec::new();
    let mut error = None;
    for part in bytes.chunks(11) {
        match fold.push(part) {
            Ok(more) => updates.extend(more),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert_eq!(updates, [Update::Text { index: 0, text: "Hello".to_owned() }]);
    let error = error.expect("the error event fails the stream");
    let offset = bytes.windows(12).position(|w| w == b"event: error").unwrap() as u64;
    let failure = StreamFailure {
        error_type: Some("overloaded_error".to_owned()),
        message: "Overloaded".to_owned(),
    };
    assert_eq!(
        error,
        MessagesFoldError::Event(MessagesEventError::Failed { offset, failure: failure.clone() })
    );
    assert_eq!(
        error.to_string(),
        format!(
            "event at byte {offset}: the model reported an error: overloaded_error: Overloaded"
        )
    );
    // The InvokeModel path's `error` event reads the same body the same way.
    let mut accumulator = AnthropicAccumulator::new();
    let body =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    assert_eq!(accumulator.push_value(body), Err(StreamError::Failed { event: 0, failure }));
}

fn sse_event(name: Option<&str>, data: &str) -> SseEvent {
    SseEvent { event: name.map(str::to_owned), data: data.to_owned(), id: None, offset: 40 }
}

#[test]
fn error_bodies_of_either_shape_and_no_json_keep_their_message() {
    let failed = |data: &str| match messages_event(&sse_event(Some("error"), data)) {
        Err(MessagesEventError::Failed { offset: 40, failure }) => failure,
        other => panic!("{data}: {other:?}"),
    };
    let anthropic = failed(
        r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"},"request_id":"req_1"}"#,
    );
    assert_eq!(anthropic.to_string(), "api_error: Internal server error");
    let aws = failed(r#"{"message":"The system encountered an unexpected error"}"#);
    assert_eq!(
        aws,
        StreamFailure {
            error_type: None,
            message: "The system encountered an unexpected error".to_owned()
        }
    );
    assert_eq!(failed(r#"{"Message":"Bad"}"#).message, "Bad");
    assert_eq!(failed(r#"{"code":7}"#).message, r#"{"code":7}"#);
    assert_eq!(failed("upstream timeout").message, "upstream timeout");
    assert_eq!(failed("").message, "an error event without data");
}

#[test]
fn pings_unnamed_and_empty_events_are_skipped_and_odd_ones_named() {
    for (name, data) in [
        (Some("ping"), r#"{"type": "ping"}"#),
        (None, r#"{"type": "message_stop"}"#),
        (None, "[DONE]"),
        (Some("message_stop"), ""),
    ] {
        assert_eq!(messages_event(&sse_event(name, data)), Ok(None), "{name:?} {data}");
    }
    let stop = messages_event(&sse_event(Some("message_stop"), r#"{"type":"message_stop"}"#));
    assert_eq!(stop, Ok(Some(json!({"type": "message_stop"}))));
    let error = messages_event(&sse_event(Some("content_block_stop"), "{\"type\":")).unwrap_err();
    assert!(matches!(error, MessagesEventError::Data { offset: 40, .. }), "{error}");
    assert!(
        error.to_string().starts_with("event \"content_block_stop\" at byte 40: data: "),
        "{error}"
    );
    let error =
        messages_event(&sse_event(Some("content_block_stop"), r#"{"type":"message_stop"}"#))
            .unwrap_err();
    assert_eq!(
        error.to_string(),
        "event \"content_block_stop\" at byte 40 carries data of type \"message_stop\""
    );
    // An unknown name reaches the fold, which keeps it, names it, and reads on.
    let mut fold = MessagesFold::new();
    let start = r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":1}}}"#;
    let stream = format!(
        "event: message_start\ndata: {start}\n\n: a comment\nevent: ping\ndata: {{}}\n\nevent: content_block_flash\ndata: {{\"type\":\"content_block_flash\",\"at\":1.50}}\n\n"
    );
    fold.push(stream.as_bytes()).unwrap();
    let rest = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    fold.push(rest.as_bytes()).unwrap();
    let response = fold.finish().unwrap();
    assert_eq!(
        response.notes,
        ["event 1 (content_block_flash): an event type this version does not read, kept as \
             {\"type\":\"content_block_flash\",\"at\":1.50}"]
    );
    assert_eq!(response.stop_reason, Some(verbatim_model::StopReason::EndTurn));
}

#[test]
fn bytes_after_the_message_that_do_not_end_an_event_are_an_error() {
    let bytes = std::fs::read(test_data("sse").join("compaction.sse")).unwrap();
    let (response, _) = fold(&bytes, 100);
    response.unwrap();
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"event: ping\ndata: {}\n");
    let (response, _) = fold(&longer, 100);
    assert_eq!(
        response.unwrap_err(),
        MessagesFoldError::Sse(crate::sse::SseError::Truncated { offset: bytes.len() as u64 })
    );
}

/// The InvokeModel streams recorded live, as the events their `chunk` frames carry.
fn recorded_invoke_events(
    captures: Vec<(String, Vec<u8>, Vec<Value>)>,
) -> Vec<(String, Vec<Vec<u8>>)> {
    captures
        .into_iter()
        .filter(|(name, ..)| name.starts_with("invoke_"))
        .map(|(name, bytes, _)| {
            let events = decode_all(&bytes)
                .unwrap()
                .into_iter()
                .map(|frame| match frame {
                    Frame::Event { payload, .. } => chunk_event(&payload).unwrap(),
                    other => panic!("{name}: {other:?}"),
                })
                .collect();
            (name, events)
        })
        .collect()
}

/// The events as the Messages API would send them over SSE.
fn as_sse(events: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        let value: Value = serde_json::from_slice(event).unwrap();
        out.extend(format!("event: {}\ndata: ", value["type"].as_str().unwrap()).into_bytes());
        out.extend(event);
        out.extend(b"\n\n");
    }
    out
}

/// The events as InvokeModel sends them: base64 in `chunk` payloads, padded.
fn fold_chunks(events: &[Vec<u8>]) -> Result<Response, StreamError> {
    let mut accumulator = AnthropicAccumulator::new();
    for (i, event) in events.iter().enumerate() {
        let payload =
            json!({"bytes": STANDARD.encode(event), "p": "abcdefghij"[..i % 10].to_owned()});
        accumulator.push_chunk(payload.to_string().as_bytes())?;
    }
    accumulator.finish()
}

#[test]
fn recorded_invoke_model_streams_fold_the_same_over_sse() {
    let captures = captures();
    if captures.is_empty() {
        return; // `captures` said it skipped
    }
    let recorded = recorded_invoke_events(captures);
    assert!(recorded.len() >= 2);
    for (name, events) in recorded {
        let expected = fold_chunks(&events).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sse = as_sse(&events);
        for size in [1, 13, sse.len()] {
            let (response, _) = fold(&sse, size);
            assert_eq!(response.unwrap(), expected, "{name}, chunks of {size}");
        }
    }
}

/// A valid event sequence: a message of random blocks, each with random fragments.
fn events_strategy() -> impl Strategy<Value = Vec<Value>> {
    let text = proptest::collection::vec(any::<String>(), 0..4);
    let block = (0u8..5, text, "[A-Za-z0-9+/]{0,40}");
    proptest::collection::vec(block, 0..5).prop_map(|blocks| {
        let mut events = vec![json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}})];
        for (index, (kind, fragments, opaque)) in blocks.into_iter().enumerate() {
            let delta = |delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
            let (start, deltas): (Value, Vec<Value>) = match kind {
                0 => (
                    json!({"type": "text", "text": ""}),
                    fragments.iter().map(|t| delta(json!({"type": "text_delta", "text": t}))).collect(),
                ),
                1 => {
                    let mut deltas: Vec<Value> = fragments
                        .iter()
                        .map(|t| delta(json!({"type": "thinking_delta", "thinking": t})))
                        .collect();
                    deltas.push(delta(json!({"type": "signature_delta", "signature": opaque})));
                    (json!({"type": "thinking", "thinking": "", "signature": ""}), deltas)
                }
                2 => {
                    // The input's JSON text cut into fragments at character boundaries.
                    let input = json!({"q": fragments.concat(), "n": fragments.len()}).to_string();
                    let chars: Vec<char> = input.chars().collect();
                    let step = chars.len() / (fragments.len() + 1) + 1;
                    let deltas = chars
                        .chunks(step)
                        .map(|part| {
                            let part: String = part.iter().collect();
                            delta(json!({"type": "input_json_delta", "partial_json": part}))
                        })
                        .collect();
                    (json!({"type": "tool_use", "id": format!("toolu_{index}"), "name": "f", "input": {}}), deltas)
                }
                3 => (json!({"type": "redacted_thinking", "data": opaque}), Vec::new()),
                _ => (
                    json!({"type": "text", "text": ""}),
                    fragments
                        .iter()
                        .map(|t| delta(json!({"type": "citations_delta", "citation": {"type": "char_location", "cited_text": t}})))
                        .collect(),
                ),
            };
            events.push(json!({"type": "content_block_start", "index": index, "content_block": start}));
            events.extend(deltas);
            events.push(json!({"type": "content_block_stop", "index": index}));
        }
        events.push(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 9}}));
        events.push(json!({"type": "message_stop"}));
        events
    })
}

proptest! {
    /// The same events folded over SSE (any line ends, comments and pings between them, any
    /// chunking) and over InvokeModel's event stream give the same response, or both say the
    /// stream stopped early when it is cut after any event.
    #[test]
    fn the_sse_fold_equals_the_event_stream_fold_of_the_same_events(
        events in events_strategy(),
        ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        noise in proptest::collection::vec(0u8..3, 0..40),
        chunk in 1usize..200,
        keep in any::<prop::sample::Index>(),
    ) {
        let events: Vec<Vec<u8>> =
            events.iter().map(|e| serde_json::to_vec(e).unwrap()).collect();
        for kept in [events.len(), keep.index(events.len())] {
            let events = &events[..kept];
            let mut sse = String::new();
            for (i, event) in events.iter().enumerate() {
                match noise.get(i) {
                    Some(1) => sse.push_str(": keep-alive\n"),
                    Some(2) => sse.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
                    _ => {}
                }
                let value: Value = serde_json::from_slice(event).unwrap();
                sse.push_str(&format!("event: {}\ndata: ", value["type"].as_str().unwrap()));
                sse.push_str(std::str::from_utf8(event).unwrap());
                sse.push_str("\n\n");
            }
            let sse = sse.replace('\n', ending);
            let (over_sse, _) = fold(sse.as_bytes(), chunk);
            match (over_sse, fold_chunks(events)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(MessagesFoldError::Finish(a)), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "over SSE {:?}, over chunks {:?}", a, b),
            }
        }
    }

    /// Any bytes, pushed in any chunks, fold without a panic to the same result.
    #[test]
    fn arbitrary_bytes_never_panic_the_fold(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
    ) {
        let (whole, _) = fold(&bytes, bytes.len());
        let (chunked, _) = fold(&bytes, chunk);
        prop_assert_eq!(whole, chunked);
    }
}
