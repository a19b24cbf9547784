//! Writing replies as Bedrock does: whole Converse and Anthropic bodies, the binary
//! event-stream frames of ConverseStream and InvokeModelWithResponseStream (with the `p`
//! padding key real streams carry), and the server-sent events of the Messages API. Written
//! here from the documented shapes, not with the workspace's codecs, so that a client's
//! decoders are checked against a second writer.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::conversation::Block;
use crate::faults::StreamException;
use crate::model::Reply;

const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// One frame: headers in the order Bedrock sends them.
pub(crate) fn frame(headers: &[(&str, &str)], payload: Vec<u8>) -> Vec<u8> {
    let mut message = Message::new(Bytes::from(payload));
    for (name, value) in headers {
        message = message.add_header(Header::new(
            (*name).to_owned(),
            HeaderValue::String((*value).to_owned().into()),
        ));
    }
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes).expect("frames the emulator builds are within limits");
    bytes
}

fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().into_bytes(),
    )
}

/// An exception frame as a stream carries it inside an HTTP 200 (rules R6.7).
pub(crate) fn exception_frame(exception: StreamException) -> Vec<u8> {
    let answer = exception.answer();
    let mut payload = json!({ "message": answer.message });
    if exception == StreamException::ModelStreamError {
        payload["originalStatusCode"] = json!(400);
        payload["originalMessage"] = json!(answer.message);
    }
    frame(
        &[
            (":exception-type", exception.frame_name()),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload.to_string().into_bytes(),
    )
}

/// Adds `p` with a length that varies from event to event.
fn padded(mut payload: Value, n: usize) -> Value {
    if let Value::Object(map) = &mut payload {
        map.insert("p".into(), Value::String(PADDING[..(n * 7) % PADDING.len() + 1].to_owned()));
    }
    payload
}

/// Text in the pieces a model streams it in.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, word) in text.split_inclusive(' ').enumerate() {
        current.push_str(word);
        if i % 3 == 2 {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// A whole Converse response body.
pub(crate) fn converse_body(reply: &Reply) -> Value {
    let content: Vec<Value> = reply
        .blocks
        .iter()
        .map(|block| match block {
            Block::Text(text) => json!({ "text": text }),
            // Unsigned reasoning (DeepSeek R1) has no signature key at all.
            Block::Thinking { text, signature: None } => {
                json!({ "reasoningContent": { "reasoningText": { "text": text } } })
            }
            Block::Thinking { text, signature } => {
                json!({ "reasoningContent": { "reasoningText": { "text": text, "signature": signature } } })
            }
            Block::Redacted(data) => json!({ "reasoningContent": { "redactedContent": data } }),
            Block::ToolUse { id, name, input } => {
                json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } })
            }
            Block::ToolResult { .. } | Block::Other(_) => json!({ "text": "" }),
        })
        .collect();
    json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": reply.stop_reason,
        "usage": usage_converse(reply),
        "metrics": { "latencyMs": 42 },
    })
}

/// Converse's usage: with cache points, the cache's counts too (and the total holds them, as
/// recorded: fixtures/real `converse_claude_sonnet45_cache_write_then_read.json`).
fn usage_converse(reply: &Reply) -> Value {
    let cache = reply.cache.unwrap_or_default();
    let mut usage = json!({
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.input_tokens + cache.read + cache.write + reply.output_tokens,
    });
    if reply.cache.is_some() {
        usage["cacheReadInputTokens"] = json!(cache.read);
        usage["cacheWriteInputTokens"] = json!(cache.write);
    }
    usage
}

/// Anthropic's usage (whole body and `message_start`): with cache points, the cache's counts
/// too (as recorded: fixtures/real `invoke_claude35haiku_prompt_cache_write_read.json`).
fn usage_anthropic(reply: &Reply) -> Value {
    let mut usage = json!({ "input_tokens": reply.input_tokens });
    if let Some(cache) = reply.cache {
        usage["cache_creation_input_tokens"] = json!(cache.write);
        usage["cache_read_input_tokens"] = json!(cache.read);
    }
    usage["output_tokens"] = json!(reply.output_tokens);
    usage
}

/// A whole Anthropic Messages response body.
pub(crate) fn anthropic_body(reply: &Reply, model: &str, id: &str) -> Value {
    let compaction = reply.compaction.iter().cloned();
    let content: Vec<Value> = compaction.chain(reply.blocks.iter().map(anthropic_block)).collect();
    let mut body = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": null,
        "usage": usage_anthropic(reply),
    });
    if let Some(applied) = &reply.context_management {
        body["context_management"] = applied.clone();
    }
    body
}

fn anthropic_block(block: &Block) -> Value {
    match block {
        Block::Text(text) => json!({ "type": "text", "text": text }),
        Block::Thinking { text, signature } => {
            json!({ "type": "thinking", "thinking": text, "signature": signature })
        }
        Block::Redacted(data) => json!({ "type": "redacted_thinking", "data": data }),
        Block::ToolUse { id, name, input } => {
            json!({ "type": "tool_use", "id": id, "name": name, "input": input })
        }
        Block::ToolResult { .. } | Block::Other(_) => json!({ "type": "text", "text": "" }),
    }
}

/// The frames of a ConverseStream reply. Text and reasoning blocks begin with their first
/// delta; only tool use has a `contentBlockStart` (as the service does).
pub(crate) fn converse_stream(reply: &Reply) -> Vec<Vec<u8>> {
    let mut n = 0;
    let mut frames = Vec::new();
    let mut push = |event_type: &str, payload: Value| {
        n += 1;
        frames.push(event_frame(event_type, &padded(payload, n)));
    };
    push("messageStart", json!({ "role": "assistant" }));
    for (index, block) in reply.blocks.iter().enumerate() {
        match block {
            Block::Text(text) => {
                for piece in pieces(text) {
                    push(
                        "contentBlockDelta",
                        json!({ "contentBlockIndex": index, "delta": { "text": piece } }),
                    );
                }
            }
            Block::Thinking { text, signature } => {
                for piece in pieces(text) {
                    push(
                        "contentBlockDelta",
                        json!({ "contentBlockIndex": index, "delta": { "reasoningContent": { "text": piece } } }),
                    );
                }
                if let Some(signature) = signature {
                    push(
                        "contentBlockDelta",
                        json!({ "contentBlockIndex": index, "delta": { "reasoningContent": { "signature": signature } } }),
                    );
                }
            }
            Block::Redacted(data) => push(
                "contentBlockDelta",
                json!({ "contentBlockIndex": index, "delta": { "reasoningContent": { "redactedContent": data } } }),
            ),
            Block::ToolUse { id, name, input } => {
                push(
                    "contentBlockStart",
                    json!({ "contentBlockIndex": index, "start": { "toolUse": { "toolUseId": id, "name": name } } }),
                );
                let input = input.to_string();
                let middle = input.len() / 2;
                let split = (middle..=input.len())
                    .find(|&i| input.is_char_boundary(i))
                    .unwrap_or(input.len());
                for fragment in [&input[..split], &input[split..]] {
                    push(
                        "contentBlockDelta",
                        json!({ "contentBlockIndex": index, "delta": { "toolUse": { "input": fragment } } }),
                    );
                }
            }
            Block::ToolResult { .. } | Block::Other(_) => continue,
        }
        push("contentBlockStop", json!({ "contentBlockIndex": index }));
    }
    push("messageStop", json!({ "stopReason": reply.stop_reason }));
    push("metadata", json!({ "usage": usage_converse(reply), "metrics": { "latencyMs": 42 } }));
    frames
}

/// The frames of an InvokeModelWithResponseStream reply: `chunk` events whose `bytes` are the
/// base64 of Anthropic stream events, the last (`message_stop`) with Bedrock's invocation
/// metrics.
pub(crate) fn anthropic_stream(reply: &Reply, model: &str, id: &str) -> Vec<Vec<u8>> {
    let mut events = anthropic_events(reply, model, id);
    if let Some(Value::Object(stop)) = events.last_mut() {
        stop.insert(
            "amazon-bedrock-invocationMetrics".into(),
            json!({
                "inputTokenCount": reply.input_tokens,
                "outputTokenCount": reply.output_tokens,
                "invocationLatency": 42,
                "firstByteLatency": 21,
            }),
        );
        if let Some(cache) = reply.cache {
            // The names of the response headers of a cached call, recorded
            // (`X-Amzn-Bedrock-Cache-Read-Input-Token-Count`), as metrics keys.
            let metrics = &mut stop["amazon-bedrock-invocationMetrics"];
            metrics["cacheReadInputTokenCount"] = json!(cache.read);
            metrics["cacheWriteInputTokenCount"] = json!(cache.write);
        }
    }
    events
        .into_iter()
        .enumerate()
        .map(|(n, event)| {
            let chunk = json!({ "bytes": STANDARD.encode(event.to_string()) });
            event_frame("chunk", &padded(chunk, n + 1))
        })
        .collect()
}

/// The server-sent events of a streamed Messages API reply (`/anthropic/v1/messages` with
/// `stream: true`): first-party framing, `event: NAME` then `data: JSON` and a blank line,
/// with a `ping` after `message_start` as the first-party API sends one (messages-api S1).
/// `message_stop` carries no invocation metrics: nothing shows them on SSE (S5).
pub(crate) fn messages_sse(reply: &Reply, model: &str, id: &str) -> Vec<Vec<u8>> {
    let mut events = anthropic_events(reply, model, id);
    events.insert(1, json!({ "type": "ping" }));
    events.iter().map(sse_event).collect()
}

/// One server-sent event named by the payload's `type`.
pub(crate) fn sse_event(payload: &Value) -> Vec<u8> {
    let name = payload["type"].as_str().unwrap_or("message");
    format!("event: {name}\ndata: {payload}\n\n").into_bytes()
}

/// The Anthropic stream events of a reply, as both InvokeModelWithResponseStream and the
/// Messages API send them (each wraps them in its own framing).
fn anthropic_events(reply: &Reply, model: &str, id: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut push = |event: Value| events.push(event);
    let mut start = anthropic_body(reply, model, id);
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    start.as_object_mut().map(|m| m.remove("context_management"));
    push(json!({ "type": "message_start", "message": start }));
    // A compaction block starts empty and arrives whole in one `compaction_delta`.
    let first = usize::from(reply.compaction.is_some());
    if let Some(block) = &reply.compaction {
        let opening = json!({ "type": "compaction", "content": null });
        push(json!({ "type": "content_block_start", "index": 0, "content_block": opening }));
        let delta = json!({ "type": "compaction_delta", "content": block["content"],
            "encrypted_content": block["encrypted_content"] });
        push(json!({ "type": "content_block_delta", "index": 0, "delta": delta }));
        push(json!({ "type": "content_block_stop", "index": 0 }));
    }
    for (index, block) in reply.blocks.iter().enumerate() {
        let index = index + first;
        let mut opening = anthropic_block(block);
        let deltas: Vec<Value> = match block {
            Block::Text(text) => {
                opening["text"] = json!("");
                pieces(text)
                    .into_iter()
                    .map(|p| json!({ "type": "text_delta", "text": p }))
                    .collect()
            }
            Block::Thinking { text, signature } => {
                opening["thinking"] = json!("");
                opening["signature"] = json!("");
                let mut deltas: Vec<Value> = pieces(text)
                    .into_iter()
                    .map(|p| json!({ "type": "thinking_delta", "thinking": p }))
                    .collect();
                if let Some(signature) = signature {
                    deltas.push(json!({ "type": "signature_delta", "signature": signature }));
                }
                deltas
            }
            Block::Redacted(_) => Vec::new(),
            Block::ToolUse { input, .. } => {
                opening["input"] = json!({});
                vec![json!({ "type": "input_json_delta", "partial_json": input.to_string() })]
            }
            Block::ToolResult { .. } | Block::Other(_) => continue,
        };
        push(json!({ "type": "content_block_start", "index": index, "content_block": opening }));
        for delta in deltas {
            push(json!({ "type": "content_block_delta", "index": index, "delta": delta }));
        }
        push(json!({ "type": "content_block_stop", "index": index }));
    }
    let mut delta = json!({
        "type": "message_delta",
        "delta": { "stop_reason": reply.stop_reason, "stop_sequence": null },
        "usage": { "output_tokens": reply.output_tokens },
    });
    if let Some(applied) = &reply.context_management {
        delta["context_management"] = applied.clone();
    }
    push(delta);
    push(json!({ "type": "message_stop" }));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules' Appendix A frame, byte for byte.
    #[test]
    fn the_encoder_writes_the_published_vector() {
        let vector = "0000009f00000057c37babff0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224869227d2c2270223a2261626364227df2ace5ff";
        let payload = br#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcd"}"#.to_vec();
        let bytes = frame(
            &[
                (":event-type", "contentBlockDelta"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload,
        );
        assert_eq!(hex::encode(bytes), vector);
    }

    #[test]
    fn text_is_streamed_in_pieces_that_join_to_it() {
        for text in ["", "one", "one two three four five six seven", "ünïcödé words here too"] {
            assert_eq!(pieces(text).concat(), text);
        }
    }
}
