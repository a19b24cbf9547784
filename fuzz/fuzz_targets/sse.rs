//! Fuzzes the SSE decoder and the Messages API fold with arbitrary bytes.
//!
//! The first byte chooses a chunk size and, through its top bit, small size limits; the rest
//! is the stream. Decoding must never panic, must give the same events (or the same error)
//! whether the bytes arrive whole or in chunks, and folding them into a response must not
//! panic either and must give the same result in chunks as whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use verbatim_protocol::sse::{
    MessagesFold, SseDecoder, SseError, SseEvent, SseLimits, messages_event,
};
use verbatim_protocol::stream::AnthropicAccumulator;

fn decode(bytes: &[u8], chunk: usize, limits: SseLimits) -> (Vec<SseEvent>, Option<SseError>) {
    let mut decoder = SseDecoder::with_limits(limits);
    let mut events = Vec::new();
    for part in bytes.chunks(chunk) {
        decoder.push(part);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(error) => return (events, Some(error)),
            }
        }
    }
    let error = decoder.finish().err();
    (events, error)
}

fn fold(bytes: &[u8], chunk: usize, limits: SseLimits) -> String {
    let mut fold = MessagesFold::with_limits(limits);
    for part in bytes.chunks(chunk) {
        if let Err(error) = fold.push(part) {
            return format!("{error:?}");
        }
    }
    format!("{:?}", fold.finish())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else { return };
    let chunk = usize::from(first & 0x7f).max(1);
    let limits = if first & 0x80 == 0 {
        SseLimits::default()
    } else {
        SseLimits { max_line: 300, max_data: 600 }
    };
    let whole = decode(bytes, bytes.len().max(1), limits);
    let chunked = decode(bytes, chunk, limits);
    assert_eq!(whole, chunked, "chunks of {chunk} bytes changed the events");
    // Every event the decoder gives, read as an Anthropic event and folded.
    let mut accumulator = AnthropicAccumulator::new();
    for event in &whole.0 {
        if let Ok(Some(value)) = messages_event(event) {
            let _ = accumulator.push_value(value);
        }
    }
    let _ = accumulator.finish();
    let whole = fold(bytes, bytes.len().max(1), limits);
    assert_eq!(whole, fold(bytes, chunk, limits), "chunks of {chunk} bytes changed the fold");
});
