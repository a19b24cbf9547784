//! Event-stream decoding throughput: a ConverseStream of 10,000 text and reasoning deltas
//! (about 2 MB, frames like Bedrock's, `p` padding included) fed in 16 KiB chunks, next to a
//! plain copy of the same bytes in the same chunks.
//!
//! Run with `cargo bench -p verbatim-wire --bench eventstream`. Besides criterion's report
//! it prints one summary line: MB/s and events/s for framing alone, for framing and folding the
//! events into a response, and for the copy.

mod support;

use std::hint::black_box;
use std::time::Duration;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use criterion::Criterion;
use verbatim_wire::eventstream::{Frame, FrameDecoder};
use verbatim_wire::stream::ConverseAccumulator;

const CHUNK: usize = 16 * 1024;
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

fn copy(bytes: &[u8], into: &mut Vec<u8>) -> usize {
    into.clear();
    for chunk in bytes.chunks(CHUNK) {
        into.extend_from_slice(chunk);
    }
    into.len()
}

fn benches(c: &mut Criterion) {
    let (bytes, events) = stream();
    assert_eq!(decode(&bytes), events);
    assert_eq!(decode_and_fold(&bytes), 2);
    let mut target = Vec::with_capacity(bytes.len());

    let mut group = c.benchmark_group("eventstream_10k_events");
    group.sample_size(20);
    group.bench_function("decode_frames", |b| b.iter(|| black_box(decode(black_box(&bytes)))));
    group.bench_function("decode_and_fold", |b| {
        b.iter(|| black_box(decode_and_fold(black_box(&bytes))))
    });
    group.bench_function("memcpy", |b| b.iter(|| black_box(copy(black_box(&bytes), &mut target))));
    group.finish();

    let times = support::medians(
        &mut [
            &mut || {
                black_box(decode(&bytes));
            },
            &mut || {
                black_box(decode_and_fold(&bytes));
            },
            &mut || {
                black_box(copy(&bytes, &mut target));
            },
        ],
        51,
    );
    let rate = |time: Duration| {
        let seconds = time.as_secs_f64();
        format!(
            "{:.0} MB/s, {:.2} M events/s",
            bytes.len() as f64 / seconds / 1e6,
            events as f64 / seconds / 1e6
        )
    };
    #[allow(clippy::print_stdout)]
    {
        println!(
            "summary: {events} events, {:.2} MB in {} KiB chunks; decode frames {} ({:.2} ms); decode and fold {} ({:.2} ms); memcpy {} ({:.3} ms)",
            bytes.len() as f64 / 1e6,
            CHUNK / 1024,
            rate(times[0]),
            times[0].as_secs_f64() * 1e3,
            rate(times[1]),
            times[1].as_secs_f64() * 1e3,
            rate(times[2]),
            times[2].as_secs_f64() * 1e3,
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
