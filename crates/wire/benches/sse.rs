//! SSE decoding throughput: a Messages API stream of 10,000 thinking and text deltas (about
//! 1.4 MB, events as the Messages API frames them) fed in 16 KiB chunks, next to a plain copy
//! of the same bytes in the same chunks. The same reply as the `eventstream` bench's, so the
//! two read side by side.
//!
//! Run with `cargo bench -p verbatim-wire --bench sse`. Besides criterion's report it
//! prints one summary line: MB/s and events/s for decoding the events alone, for decoding and
//! folding them into a response, and for the copy.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use verbatim_wire::sse::{MessagesFold, SseDecoder};

const CHUNK: usize = 16 * 1024;
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

    let mut group = c.benchmark_group("sse_10k_events");
    group.sample_size(20);
    group.bench_function("decode_events", |b| b.iter(|| black_box(decode(black_box(&bytes)))));
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
            "summary: {events} events, {:.2} MB in {} KiB chunks; decode events {} ({:.2} ms); decode and fold {} ({:.2} ms); memcpy {} ({:.3} ms)",
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
