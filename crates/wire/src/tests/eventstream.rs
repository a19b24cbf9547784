//! The event-stream frame decoder: the published test vector, every recorded capture at every
//! split point and chunk size, corrupted and truncated frames, exceptions and errors.

use std::path::{Path, PathBuf};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;

use super::recordings::fixtures_dir;
use super::support::test_data;
use crate::eventstream::{Frame, FrameDecoder, FrameError, MAX_PAYLOAD_LEN, decode_all};

fn hex(text: &str) -> Vec<u8> {
    let text = text.trim();
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// The 159-byte `contentBlockDelta` frame of the rules' Appendix A (as parsed by botocore).
fn vector() -> Vec<u8> {
    hex(&std::fs::read_to_string(test_data("eventstream").join("content_block_delta.hex")).unwrap())
}

/// Recorded streams: (name, raw bytes, the recorder's decoded frames).
pub(crate) fn captures() -> Vec<(String, Vec<u8>, Vec<Value>)> {
    let Some(dir) = fixtures_dir() else { return Vec::new() };
    let mut found = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_str().unwrap().ends_with(".eventstream.b64"))
        .collect();
    names.sort();
    for path in names {
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let bytes = STANDARD.decode(text).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().replace(".eventstream.b64", "");
        let events = events_file(&dir, &name);
        found.push((name, bytes, events));
    }
    assert!(found.len() >= 8, "expected the recorded streams in {}", dir.display());
    found
}

fn events_file(dir: &Path, name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{name}_events.json"))).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    document["frames"].as_array().unwrap().clone()
}

fn frame(message_type: &str, type_header: (&str, &str), payload: &str) -> Vec<u8> {
    let message = Message::new(Bytes::from(payload.to_owned()))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(message_type.to_owned().into()),
        ))
        .add_header(Header::new(
            type_header.0.to_owned(),
            HeaderValue::String(type_header.1.to_owned().into()),
        ))
        .add_header(Header::new(":content-type", HeaderValue::String("application/json".into())));
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes).unwrap();
    bytes
}

#[test]
fn the_published_vector_decodes_to_its_event_with_the_padding_untouched() {
    let frames = decode_all(&vector()).unwrap();
    assert_eq!(
        frames,
        [Frame::Event {
            event_type: "contentBlockDelta".to_owned(),
            payload: Bytes::from_static(
                br#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcd"}"#
            ),
        }]
    );
}

#[test]
fn recorded_streams_decode_to_the_recorders_frames_however_they_are_split() {
    for (name, bytes, recorded) in captures() {
        let whole = decode_all(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(whole.len(), recorded.len(), "{name}: frame count");
        for (i, (frame, recorded)) in whole.iter().zip(&recorded).enumerate() {
            let headers = &recorded["headers"];
            let payload_raw = recorded["payload_raw"].as_str().unwrap().as_bytes();
            match frame {
                Frame::Event { event_type, payload } => {
                    assert_eq!(headers[":message-type"], "event", "{name} frame {i}");
                    assert_eq!(headers[":event-type"], event_type.as_str(), "{name} frame {i}");
                    assert_eq!(&payload[..], payload_raw, "{name} frame {i}: payload bytes");
                }
                other => panic!("{name} frame {i}: {other:?}"),
            }
        }
        // One byte at a time splits the stream at every byte boundary; then larger chunks.
        for size in (1..=64).chain([100, 1000, 4096]) {
            let mut decoder = FrameDecoder::new();
            let mut frames = Vec::new();
            for chunk in bytes.chunks(size) {
                decoder.push(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            decoder.finish().unwrap();
            assert_eq!(frames, whole, "{name}: chunks of {size} bytes");
        }
    }
}

#[test]
fn a_corrupted_prelude_is_reported_as_soon_as_its_twelve_bytes_arrive() {
    for byte in 0..12 {
        let mut bytes = vector();
        bytes[byte] ^= 0x01;
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes[..12]);
        let error = decoder.next_frame().unwrap_err();
        assert!(
            matches!(error, FrameError::PreludeChecksum { offset: 0, .. }),
            "byte {byte}: {error}"
        );
        // The decoder stays failed: framing cannot be recovered.
        decoder.push(&bytes[12..]);
        assert_eq!(decoder.next_frame().unwrap_err(), error);
    }
}

#[test]
fn a_corrupted_header_payload_or_message_checksum_is_an_error_naming_the_frame() {
    let good = vector();
    let mut two = good.clone();
    two.extend_from_slice(&good);
    for byte in 12..good.len() {
        let mut bytes = two.clone();
        bytes[good.len() + byte] ^= 0x20;
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        assert!(decoder.next_frame().unwrap().is_some(), "the first frame is intact");
        let error = decoder.next_frame().unwrap_err();
        assert!(
            matches!(&error, FrameError::Malformed { offset, .. } if *offset == good.len() as u64),
            "byte {byte}: {error}"
        );
        assert!(error.to_string().starts_with("frame at byte 159: "), "{error}");
    }
}

#[test]
fn a_stream_cut_inside_a_frame_is_truncated_not_silently_short() {
    let bytes = vector();
    for cut in 1..bytes.len() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes[..cut]);
        assert_eq!(decoder.next_frame().unwrap(), None, "cut at {cut}");
        let expected = if cut < 12 { 12 } else { bytes.len() };
        assert_eq!(
            decoder.finish().unwrap_err(),
            FrameError::Truncated { offset: 0, buffered: cut, expected },
            "cut at {cut}"
        );
    }
    assert!(decode_all(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn lengths_beyond_the_limits_fail_at_the_prelude_without_buffering_the_frame() {
    let prelude = |total: u32, headers: u32| {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&total.to_be_bytes());
        bytes.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes
    };
    let too_big = (16 + MAX_PAYLOAD_LEN + 1) as u32;
    for (total, headers, says) in [
        (too_big, 0, "bytes of payload exceed"),
        (u32::MAX, 0, "bytes of payload exceed"),
        (200, 300, "too small for 300 bytes of headers"),
        (15, 0, "too small"),
        (1_000_000, 200 * 1024, "bytes of headers exceed"),
    ] {
        let mut decoder = FrameDecoder::new();
        decoder.push(&prelude(total, headers));
        let error = decoder.next_frame().unwrap_err();
        assert!(matches!(error, FrameError::Length { offset: 0, .. }), "{error}");
        assert!(error.to_string().contains(says), "{error}");
    }
}

#[test]
fn exception_and_error_frames_are_classified_with_their_payload() {
    let body = r#"{"message":"Too many tokens, please wait before trying again."}"#;
    let mut bytes = vector();
    bytes.extend(frame("exception", (":exception-type", "throttlingException"), body));
    let error = Message::new(Bytes::new())
        .add_header(Header::new(":message-type", HeaderValue::String("error".into())))
        .add_header(Header::new(":error-code", HeaderValue::String("InternalFailure".into())))
        .add_header(Header::new(":error-message", HeaderValue::String("boom".into())));
    write_message_to(&error, &mut bytes).unwrap();
    let frames = decode_all(&bytes).unwrap();
    assert_eq!(
        frames[1],
        Frame::Exception {
            exception_type: "throttlingException".to_owned(),
            payload: Bytes::from(body.to_owned()),
        }
    );
    assert_eq!(
        frames[2],
        Frame::Error { code: "InternalFailure".to_owned(), message: "boom".to_owned() }
    );
}

#[test]
fn frames_without_their_type_headers_are_errors() {
    let no_event_type = Message::new(Bytes::from_static(b"{}"))
        .add_header(Header::new(":message-type", HeaderValue::String("event".into())));
    let mut bytes = Vec::new();
    write_message_to(&no_event_type, &mut bytes).unwrap();
    assert_eq!(
        decode_all(&bytes).unwrap_err(),
        FrameError::MissingHeader { offset: 0, name: ":event-type" }
    );
    let unknown = frame("gossip", (":event-type", "x"), "{}");
    assert!(matches!(
        decode_all(&unknown).unwrap_err(),
        FrameError::UnknownMessageType { message_type, .. } if message_type == "gossip"
    ));
}

fn decode_chunked(bytes: &[u8], chunk: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for part in bytes.chunks(chunk.max(1)) {
        decoder.push(part);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, decoder.finish().err())
}

proptest::proptest! {
    /// Any bytes (random, or the vector with bytes flipped, cut or repeated) decode without a
    /// panic, to the same frames or error however they are chunked; the same property the
    /// `fuzz/` target checks, here at a fixed count in every test run.
    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_never_changes_the_result(
        random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        flips in proptest::collection::vec((0usize..400, 1u8..=255), 0..4),
        cut in 0usize..400,
        chunk in 1usize..64,
    ) {
        let mut mutated = [vector(), vector()].concat();
        for (at, mask) in flips {
            let at = at % mutated.len();
            mutated[at] ^= mask;
        }
        mutated.truncate(cut.max(1) + 150);
        for bytes in [random, mutated] {
            let whole = decode_chunked(&bytes, bytes.len());
            proptest::prop_assert_eq!(&whole, &decode_chunked(&bytes, chunk));
            let mut converse = crate::stream::ConverseAccumulator::new();
            for frame in &whole.0 {
                if let Frame::Event { event_type, payload } = frame {
                    let _ = converse.push(event_type, payload);
                }
            }
            let _ = converse.finish();
        }
    }
}
