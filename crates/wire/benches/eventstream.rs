//! Event-stream decoding throughput: a ConverseStream of 10,000 text and reasoning deltas
//! (about 2 MB, frames like Bedrock's, `p` padding included) fed in 16 KiB chunks, next to a
//! plain copy of the same bytes in the same chunks.
//!
//! Run with `cargo bench -p verbatim-wire --bench eventstream`. Besides criterion's report
//! it prints one summary line: MB/s and events/s for framing alone, for framing and folding the
//! events into a response, and for the copy.

mod streams;
mod support;

use std::hint::black_box;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use criterion::Criterion;
use streams::CHUNK;
use verbatim_wire::eventstream::{Frame, FrameDecoder};
use verbatim_wire::stream::ConverseAccumulator;

const DELTAS: usize = 10_000;

fn frame(event_type: &str, payload: String) -> Vec<u8> {
    let message = Message::new(Bytes::from(payload))
        .add_header(Header::new(":event-type", HeaderValue::String(event_type.to_owned().into())))
        .add_header(Header::new(":content-type", HeaderValue::String("application/json".into())))
        .add_header(Header::new(":message-type", HeaderValue::String("event".into())));
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes).unwrap();
    bytes
}

/// messageStart, 5,000 reasoning deltas and a signature in block 0, 5,000 text deltas in
/// block 1, the stops and metadata.
fn stream() -> (Vec<u8>, usize) {
    let padding = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = frame("messageStart", r#"{"p":"abcdefghijkl","role":"assistant"}"#.to_owned());
    let mut events = 1;
    for i in 0..DELTAS {
        let (index, delta) = if i < DELTAS / 2 {
            (0, r#"{"reasoningContent":{"text":" weighing the figures again, carefully"}}"#)
        } else {
            (1, r#"{"text":" and the answer follows from the table above"}"#)
        };
        let p = &padding[..i % padding.len()];
        bytes.extend(frame(
            "contentBlockDelta",
            format!(r#"{{"contentBlockIndex":{index},"delta":{delta},"p":"{p}"}}"#),
        ));
        events += 1;
        if i + 1 == DELTAS / 2 {
            let signature = "EqQBCkYIBxgCKkD".repeat(30);
            bytes.extend(frame(
                "contentBlockDelta",
                format!(r#"{{"contentBlockIndex":0,"delta":{{"reasoningContent":{{"signature":"{signature}"}}}}}}"#),
            ));
            bytes.extend(frame("contentBlockStop", r#"{"contentBlockIndex":0}"#.to_owned()));
            events += 2;
        }
    }
    bytes.extend(frame("contentBlockStop", r#"{"contentBlockIndex":1}"#.to_owned()));
    bytes.extend(frame("messageStop", r#"{"stopReason":"end_turn"}"#.to_owned()));
    bytes.extend(frame(
        "metadata",
        r#"{"usage":{"inputTokens":10,"outputTokens":20000,"totalTokens":20010},"metrics":{"latencyMs":1}}"#
            .to_owned(),
    ));
    (bytes, events + 3)
}

fn decode(bytes: &[u8]) -> usize {
    let mut decoder = FrameDecoder::new();
    let mut events = 0;
    for chunk in bytes.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(frame) = decoder.next_frame().unwrap() {
            events += usize::from(matches!(frame, Frame::Event { .. }));
        }
    }
    decoder.finish().unwrap();
    events
}

fn decode_and_fold(bytes: &[u8]) -> usize {
    let mut decoder = FrameDecoder::new();
    let mut accumulator = ConverseAccumulator::new();
    for chunk in bytes.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(frame) = decoder.next_frame().unwrap() {
            let Frame::Event { event_type, payload } = frame else { panic!("{frame:?}") };
            black_box(accumulator.push(&event_type, &payload).unwrap());
        }
    }
    accumulator.finish().unwrap().message.content.len()
}

fn main() {
    let (bytes, events) = stream();
    let stream = streams::Stream {
        group: "eventstream_10k_events",
        decoding: "decode frames",
        bytes,
        events,
        decode,
        decode_and_fold,
    };
    let mut criterion = Criterion::default().configure_from_args();
    streams::bench(&mut criterion, &stream);
    criterion.final_summary();
}
