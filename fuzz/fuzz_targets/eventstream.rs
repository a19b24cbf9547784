//! Fuzzes the event-stream frame decoder and the stream accumulators with arbitrary bytes.
//!
//! The first byte chooses a chunk size; the rest is the stream. Decoding must never panic,
//! must give the same frames (or the same error) whether the bytes arrive whole or in chunks,
//! and every event is folded by both accumulators, which must not panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use verbatim_protocol::eventstream::{Frame, FrameDecoder, FrameError};
use verbatim_protocol::stream::{AnthropicAccumulator, ConverseAccumulator};

fn decode(bytes: &[u8], chunk: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for part in bytes.chunks(chunk) {
        decoder.push(part);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    let error = decoder.finish().err();
    (frames, error)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else { return };
    let chunk = usize::from(first).max(1);
    let whole = decode(bytes, bytes.len().max(1));
    let chunked = decode(bytes, chunk);
    assert_eq!(whole, chunked, "chunks of {chunk} bytes changed the result");
    let mut converse = ConverseAccumulator::new();
    let mut anthropic = AnthropicAccumulator::new();
    for frame in &whole.0 {
        if let Frame::Event { event_type, payload } = frame {
            let _ = converse.push(event_type, payload);
            let _ = anthropic.push_chunk(payload);
            let _ = anthropic.push(payload);
        }
    }
    let _ = converse.finish();
    let _ = anthropic.finish();
});
