//! The SSE decoder: the standard's own examples, every line end and split point, the
//! byte-order mark, comments and fields, the size bounds, invalid UTF-8 and streams cut short.

use proptest::prelude::*;

use super::support::test_data;
use crate::sse::{SseDecoder, SseError, SseEvent, SseLimits, decode_all};

/// The constructed Messages API streams of `test_data/sse`: (name, bytes).
pub(crate) fn streams() -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(test_data("sse"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sse"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    found.sort();
    assert!(found.len() >= 4, "expected the streams of test_data/sse");
    found
}

/// The stream with its LF line ends made `ending`.
pub(crate) fn with_line_ends(bytes: &[u8], ending: &str) -> Vec<u8> {
    String::from_utf8(bytes.to_vec()).unwrap().replace('\n', ending).into_bytes()
}

/// (event, data) of each event: what survives a change of line ends, which moves offsets.
fn names_and_data(events: &[SseEvent]) -> Vec<(Option<String>, String)> {
    events.iter().map(|e| (e.event.clone(), e.data.clone())).collect()
}

/// Decodes `bytes` pushed in chunks of `chunk` bytes: the events, and the first error.
pub(crate) fn decode_chunked(
    bytes: &[u8],
    chunk: usize,
    limits: SseLimits,
) -> (Vec<SseEvent>, Option<SseError>) {
    let mut decoder = SseDecoder::with_limits(limits);
    let mut events = Vec::new();
    for part in bytes.chunks(chunk.max(1)) {
        decoder.push(part);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(error) => return (events, Some(error)),
            }
        }
    }
    (events, decoder.finish().err())
}

fn event(name: Option<&str>, data: &str, id: Option<&str>, offset: u64) -> SseEvent {
    SseEvent {
        event: name.map(str::to_owned),
        data: data.to_owned(),
        id: id.map(str::to_owned),
        offset,
    }
}

#[test]
fn the_standards_examples_decode_as_it_says() {
    // Three data lines joined by `\n`.
    assert_eq!(
        decode_all(b"data: YHOO\ndata: +2\ndata: 10\n\n").unwrap(),
        [event(None, "YHOO\n+2\n10", None, 0)]
    );
    // A comment; ids that persist and are reset; one space dropped after the colon, not two.
    let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
    assert_eq!(
        decode_all(stream).unwrap(),
        [
            event(None, "first event", Some("1"), 15),
            event(None, "second event", None, 40),
            event(None, " third event", None, 62),
        ]
    );
    // `data` with no colon is an empty data line; an unfinished last event is not dispatched.
    let stream = b"data\n\ndata\ndata\n\ndata:";
    let (events, error) = decode_chunked(stream, stream.len(), SseLimits::default());
    assert_eq!(events, [event(None, "", None, 0), event(None, "\n", None, 6)]);
    assert_eq!(error, Some(SseError::Truncated { offset: 17 }));
    // With and without the space, the same data.
    let events = decode_all(b"data:test\n\ndata: test\n\n").unwrap();
    assert_eq!(names_and_data(&events), [(None, "test".into()), (None, "test".into())]);
}

#[test]
fn every_line_end_and_split_point_gives_the_same_events() {
    for (name, lf) in streams() {
        let whole = decode_all(&lf).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(whole.len() >= 5, "{name}");
        assert!(whole.iter().all(|e| e.event.is_some() && e.id.is_none()), "{name}");
        for ending in ["\n", "\r\n", "\r"] {
            for bom in [false, true] {
                let mut bytes = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
                bytes.extend(with_line_ends(&lf, ending));
                let events = decode_all(&bytes).unwrap();
                assert_eq!(names_and_data(&events), names_and_data(&whole), "{name} {ending:?}");
                // One byte at a time splits every CRLF and every UTF-8 character.
                for size in (1..=64).chain([100, 1000, 4096]) {
                    let (chunked, error) = decode_chunked(&bytes, size, SseLimits::default());
                    assert_eq!(error, None, "{name} {ending:?}, chunks of {size}");
                    assert_eq!(chunked, events, "{name} {ending:?}, chunks of {size}");
                }
            }
        }
    }
}

#[test]
fn a_crlf_split_across_pushes_is_one_line_end_and_a_lone_cr_is_one_too() {
    let mut decoder = SseDecoder::new();
    decoder.push(b"data: a\r");
    assert_eq!(decoder.next_event().unwrap(), None);
    decoder.push(b"\ndata: b\r");
    assert_eq!(decoder.next_event().unwrap(), None);
    // The CR is a blank line whatever follows; a LF after it is part of that line end.
    decoder.push(b"\n\r");
    assert_eq!(decoder.next_event().unwrap(), Some(event(None, "a\nb", None, 0)));
    decoder.push(b"\n");
    assert_eq!(decoder.next_event().unwrap(), None);
    assert_eq!(decoder.buffered(), 0);
    decoder.finish().unwrap();
    // CR CR: a line end, then a blank line.
    let events = decode_all(b"data: a\r\rdata: b\r\r").unwrap();
    assert_eq!(names_and_data(&events), [(None, "a".into()), (None, "b".into())]);
}

#[test]
fn only_one_byte_order_mark_and_only_at_the_start_is_dropped() {
    for split in 0..=3 {
        let bytes = b"\xEF\xBB\xBFdata: x\n\n";
        let mut decoder = SseDecoder::new();
        decoder.push(&bytes[..split]);
        assert_eq!(decoder.next_event().unwrap(), None);
        decoder.push(&bytes[split..]);
        assert_eq!(decoder.next_event().unwrap(), Some(event(None, "x", None, 3)), "{split}");
    }
    // A second mark belongs to the field name, which is then unknown: no event.
    assert_eq!(decode_all(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n").unwrap(), []);
    // Past the start it is data like any other character.
    let events = decode_all("data: \u{FEFF}x\n\n".as_bytes()).unwrap();
    assert_eq!(events[0].data, "\u{FEFF}x");
    // A stream of one or two bytes of a mark has begun a line it never finished.
    assert_eq!(decode_all(b"\xEF\xBB"), Err(SseError::Truncated { offset: 0 }));
}

#[test]
fn fields_are_read_as_the_standard_says() {
    let stream = "retry: 1500\nretry: 15x\nid: a\0b\nevent: \nevent: first\ndata: 1\nDATA: no\nbogus: field\n: comment\nid: 7\n\nid\nevent: ping\n\nevent:x\ndata:\n\n";
    let mut decoder = SseDecoder::new();
    decoder.push(stream.as_bytes());
    assert_eq!(decoder.next_event().unwrap(), Some(event(Some("first"), "1", Some("7"), 0)));
    // `event: ping` without data is dropped, and its name with it; the id reset stays.
    assert_eq!(decoder.next_event().unwrap(), Some(event(Some("x"), "", None, 115)));
    assert_eq!(decoder.next_event().unwrap(), None);
    assert_eq!(decoder.retry(), Some(1500), "a retry that is not all digits is ignored");
    decoder.finish().unwrap();
    // An empty `event:` is no name.
    let events = decode_all(b"event:\ndata: x\n\n").unwrap();
    assert_eq!(events[0].event, None);
    // The last `event` line wins; `data` lines keep their inner spaces and colons.
    let events = decode_all(b"event: a\nevent: b\ndata:  {\"k\": \"v:w\"}  \n\n").unwrap();
    assert_eq!(events, [event(Some("b"), " {\"k\": \"v:w\"}  ", None, 0)]);
}

#[test]
fn an_event_is_located_at_its_first_field_line() {
    let stream = b": keep-alive\n\nevent: ping\ndata: {}\n\n\n\nid: 9\nevent: x\ndata: y\n\n";
    let events = decode_all(stream).unwrap();
    assert_eq!(events.iter().map(|e| e.offset).collect::<Vec<_>>(), [14, 38]);
    assert_eq!(&stream[38..43], b"id: 9");
}

#[test]
fn a_line_over_the_limit_fails_before_its_end_arrives() {
    let limits = SseLimits { max_line: 16, max_data: 1000 };
    let mut decoder = SseDecoder::with_limits(limits);
    decoder.push(b"data: ok\n\n");
    assert!(decoder.next_event().unwrap().is_some());
    // Seventeen bytes of a line, no line end: the limit is crossed, so it fails now.
    for byte in b"data: 0123456789".iter().chain(b"X") {
        decoder.push(&[*byte]);
        if let Err(error) = decoder.next_event() {
            assert_eq!(error, SseError::LineTooLong { offset: 10, limit: 16 });
            assert_eq!(
                error.to_string(),
                "line at byte 10 is longer than the limit max_line (16 bytes)"
            );
            assert!(decoder.buffered() <= 17);
            // The decoder stays failed, and takes no more bytes.
            decoder.push(b"\n\n");
            assert!(decoder.buffered() <= 17);
            assert_eq!(decoder.next_event(), Err(error.clone()));
            assert_eq!(decoder.finish(), Err(error));
            return;
        }
    }
    panic!("the long line was accepted");
}

#[test]
fn a_line_at_the_limit_passes_and_one_past_it_fails_whole_or_split() {
    let limits = SseLimits { max_line: 16, max_data: 1000 };
    let at_limit = b"data: 0123456789\n\n";
    for chunk in [1, 5, at_limit.len()] {
        let (events, error) = decode_chunked(at_limit, chunk, limits);
        assert_eq!((events.len(), error), (1, None));
        let (_, error) = decode_chunked(b"data: 0123456789X\n\n", chunk, limits);
        assert_eq!(error, Some(SseError::LineTooLong { offset: 0, limit: 16 }));
    }
}

#[test]
fn data_over_the_limit_is_an_error_naming_the_event_and_the_limit() {
    let limits = SseLimits { max_line: 100, max_data: 10 };
    let (events, error) =
        decode_chunked(b"data: 12345\n\nevent: x\ndata: 12345\ndata: 678901\n\n", 3, limits);
    assert_eq!(events.len(), 1);
    let error = error.unwrap();
    assert_eq!(error, SseError::DataTooLarge { offset: 13, limit: 10 });
    assert_eq!(
        error.to_string(),
        "event at byte 13: its data exceeds the limit max_data (10 bytes)"
    );
}

#[test]
fn invalid_utf8_is_an_error_at_its_byte_never_a_replacement_character() {
    let error = decode_all(b"data: ok\n\ndata: caf\xC3\n\n").unwrap_err();
    assert_eq!(error, SseError::InvalidUtf8 { offset: 19, line: 10 });
    assert_eq!(error.to_string(), "byte 19 (in the line at byte 10) is not valid UTF-8");
    // In a field name too; comments are skipped unread.
    assert!(decode_all(b"d\xFFta: x\n\n").is_err());
    assert_eq!(decode_all(b": \xFF\xFE\n\ndata: x\n\n").unwrap().len(), 1);
}

#[test]
fn a_stream_that_stops_inside_an_event_is_truncated() {
    for (stream, offset) in [
        (&b"data: x"[..], 0),
        (b"data: x\n", 0),
        (b"data: a\n\nevent: b\n", 9),
        (b"data: a\n\nevent: b\ndata: c", 9),
        (b"data: a\n\nevent", 9),
    ] {
        let mut decoder = SseDecoder::new();
        decoder.push(stream);
        while decoder.next_event().unwrap().is_some() {}
        assert_eq!(decoder.finish(), Err(SseError::Truncated { offset }), "{stream:?}");
    }
    // Nothing is lost after a blank line, in a comment cut short, or in `id` or `retry`.
    for stream in [&b""[..], b"data: a\n\n", b"data: a\n\n: keep", b"retry: 5\n", b"id: 3\n"] {
        let mut decoder = SseDecoder::new();
        decoder.push(stream);
        while decoder.next_event().unwrap().is_some() {}
        assert_eq!(decoder.finish(), Ok(()), "{stream:?}");
    }
}

proptest! {
    /// Any bytes (random, or a stream with bytes flipped, cut or turned into line ends)
    /// decode without a panic, to the same events or error however they are chunked; the
    /// same property the `sse` fuzz target checks.
    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_never_changes_the_result(
        random in proptest::collection::vec(any::<u8>(), 0..400),
        flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..6),
        cut in 0usize..4000,
        chunk in 1usize..80,
        max_line in 1usize..300,
    ) {
        let streams = streams();
        let (_, base) = &streams[cut % streams.len()];
        let mut mutated = base.clone();
        for (at, byte) in flips {
            let at = at % mutated.len();
            mutated[at] = [byte, b'\r', b'\n', b':'][usize::from(byte) % 4];
        }
        mutated.truncate(cut);
        let limits = [SseLimits::default(), SseLimits { max_line, max_data: max_line * 2 }];
        for bytes in [random, mutated] {
            for limits in limits {
                let whole = decode_chunked(&bytes, bytes.len(), limits);
                prop_assert_eq!(&whole, &decode_chunked(&bytes, chunk, limits));
            }
        }
    }
}
