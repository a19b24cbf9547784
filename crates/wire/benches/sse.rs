//! SSE decoding throughput: a Messages API stream of 10,000 thinking and text deltas (about
//! 1.4 MB, events as the Messages API frames them) fed in 16 KiB chunks, next to a plain copy
//! of the same bytes in the same chunks. The same reply as the `eventstream` bench's, so the
//! two read side by side.
//!
//! Run with `cargo bench -p verbatim-wire --bench sse`. Besides criterion's report it
//! prints one summary line: MB/s and events/s for decoding the events alone, for decoding and
//! folding them into a response, and for the copy.

mod streams;
mod support;

use std::hint::black_box;

use criterion::Criterion;
use streams::CHUNK;
use verbatim_wire::sse::{MessagesFold, SseDecoder};

const DELTAS: usize = 10_000;

fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// message_start and a ping, 5,000 thinking deltas and a signature in block 0, 5,000 text
/// deltas in block 1, the stops, message_delta and message_stop.
fn stream() -> (Vec<u8>, usize) {
    let mut text = event(
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-opus-4-7","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}"#,
    );
    text.push_str(&event("ping", r#"{"type": "ping"}"#));
    text.push_str(&event(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
    ));
    let mut events = 3;
    for i in 0..DELTAS {
        if i == DELTAS / 2 {
            let signature = "EqQBCkYIBxgCKkD".repeat(30);
            text.push_str(&event(
                "content_block_delta",
                &format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"signature_delta","signature":"{signature}"}}}}"#),
            ));
            text.push_str(&event(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ));
            text.push_str(&event(
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            ));
            events += 3;
        }
        let data = if i < DELTAS / 2 {
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" weighing the figures again, carefully"}}"#
        } else {
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" and the answer follows from the table above"}}"#
        };
        text.push_str(&event("content_block_delta", data));
        events += 1;
    }
    text.push_str(&event("content_block_stop", r#"{"type":"content_block_stop","index":1}"#));
    text.push_str(&event(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":20000}}"#,
    ));
    text.push_str(&event("message_stop", r#"{"type":"message_stop"}"#));
    (text.into_bytes(), events + 3)
}

fn decode(bytes: &[u8]) -> usize {
    let mut decoder = SseDecoder::new();
    let mut events = 0;
    for chunk in bytes.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event().unwrap() {
            black_box(&event);
            events += 1;
        }
    }
    decoder.finish().unwrap();
    events
}

fn decode_and_fold(bytes: &[u8]) -> usize {
    let mut fold = MessagesFold::new();
    for chunk in bytes.chunks(CHUNK) {
        black_box(fold.push(chunk).unwrap());
    }
    fold.finish().unwrap().message.content.len()
}

fn main() {
    let (bytes, events) = stream();
    let stream = streams::Stream {
        group: "sse_10k_events",
        decoding: "decode events",
        bytes,
        events,
        decode,
        decode_and_fold,
    };
    let mut criterion = Criterion::default().configure_from_args();
    streams::bench(&mut criterion, &stream);
    criterion.final_summary();
}
