//! The body the stream-decoder benches share (`eventstream`, `sse`): one stream decoded, then
//! decoded and folded into a response, next to a plain copy of the same bytes in the same
//! chunks; criterion's report, then one summary line of MB/s and events/s for each.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

use crate::support;

/// The size of the pieces a stream is fed in.
pub const CHUNK: usize = 16 * 1024;

/// A stream to measure: its bytes, its event count, and the two ways of reading it.
pub struct Stream {
    /// The criterion group's name.
    pub group: &'static str,
    /// What `decode` does, as the summary says it (`decode frames`, `decode events`).
    pub decoding: &'static str,
    pub bytes: Vec<u8>,
    pub events: usize,
    /// Decodes the bytes in [`CHUNK`]s, giving the number of events.
    pub decode: fn(&[u8]) -> usize,
    /// Decodes and folds the bytes in [`CHUNK`]s, giving the number of content blocks.
    pub decode_and_fold: fn(&[u8]) -> usize,
}

fn copy(bytes: &[u8], into: &mut Vec<u8>) -> usize {
    into.clear();
    for chunk in bytes.chunks(CHUNK) {
        into.extend_from_slice(chunk);
    }
    into.len()
}

/// Measures `stream` (whose reply has two blocks) and prints the summary line.
pub fn bench(c: &mut Criterion, stream: &Stream) {
    let Stream { bytes, events, decode, decode_and_fold, .. } = stream;
    let (bytes, events) = (bytes.as_slice(), *events);
    assert_eq!(decode(bytes), events);
    assert_eq!(decode_and_fold(bytes), 2);
    let mut target = Vec::with_capacity(bytes.len());

    let mut group = c.benchmark_group(stream.group);
    group.sample_size(20);
    let id = stream.decoding.replace(' ', "_");
    group.bench_function(id, |b| b.iter(|| black_box(decode(black_box(bytes)))));
    group.bench_function("decode_and_fold", |b| {
        b.iter(|| black_box(decode_and_fold(black_box(bytes))))
    });
    group.bench_function("memcpy", |b| b.iter(|| black_box(copy(black_box(bytes), &mut target))));
    group.finish();

    let times = support::medians(
        &mut [
            &mut || {
                black_box(decode(bytes));
            },
            &mut || {
                black_box(decode_and_fold(bytes));
            },
            &mut || {
                black_box(copy(bytes, &mut target));
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
            "summary: {events} events, {:.2} MB in {} KiB chunks; {} {} ({:.2} ms); decode and fold {} ({:.2} ms); memcpy {} ({:.3} ms)",
            bytes.len() as f64 / 1e6,
            CHUNK / 1024,
            stream.decoding,
            rate(times[0]),
            times[0].as_secs_f64() * 1e3,
            rate(times[1]),
            times[1].as_secs_f64() * 1e3,
            rate(times[2]),
            times[2].as_secs_f64() * 1e3,
        );
    }
}
