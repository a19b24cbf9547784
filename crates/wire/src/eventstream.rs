//! The binary `application/vnd.amazon.eventstream` framing of Bedrock's streaming responses, as
//! an incremental decoder: push bytes as they arrive, take frames out as they complete.
//!
//! A frame is `[total_len u32][headers_len u32][prelude_crc u32] headers payload [message_crc
//! u32]`, big-endian, both CRCs CRC-32 (IEEE). The prelude is checked as soon as its twelve
//! bytes are in, so a corrupted length is reported at once instead of waiting for gigabytes that
//! will never come; header parsing and the message CRC are `aws-smithy-eventstream`'s. Frames
//! are classified by `:message-type`: events, modeled exceptions (which arrive inside an HTTP 200)
//! and errors. Payloads are handed on exactly as received.
//!
//! The decoder does no I/O: the loop that feeds it from an HTTP body lives in the transport.

use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the prelude (two lengths and the prelude CRC).
const PRELUDE_LEN: usize = 12;
/// Bytes a frame needs besides its headers and payload (prelude and message CRC).
const OVERHEAD: usize = PRELUDE_LEN + 4;
/// The largest header section accepted (botocore's limit).
pub const MAX_HEADERS_LEN: usize = 128 * 1024;
/// The largest payload accepted (botocore's limit).
pub const MAX_PAYLOAD_LEN: usize = 24 * 1024 * 1024;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `:message-type: event`: an event of the stream.
    Event {
        /// `:event-type` (`contentBlockDelta`, `chunk`, ...).
        event_type: String,
        /// The payload as received (JSON, with the `p` padding key still in it).
        payload: Bytes,
    },
    /// `:message-type: exception`: a modeled exception sent inside the stream.
    Exception {
        /// `:exception-type` in lowerCamel case (`throttlingException`, ...).
        exception_type: String,
        /// The payload as received (JSON with a `message`).
        payload: Bytes,
    },
    /// `:message-type: error`: an unmodeled error.
    Error {
        /// `:error-code`.
        code: String,
        /// `:error-message` (empty when absent).
        message: String,
    },
}

/// Why a stream of frames could not be decoded. Offsets count bytes from the start of the
/// stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The prelude CRC does not match the first eight bytes.
    #[error("frame at byte {offset}: prelude checksum {found:#010x}, expected {expected:#010x}")]
    PreludeChecksum {
        /// Where the frame starts.
        offset: u64,
        /// The CRC computed over the prelude.
        expected: u32,
        /// The CRC the frame carries.
        found: u32,
    },
    /// The lengths in the prelude cannot describe a frame, or exceed the limits.
    #[error("frame at byte {offset}: {reason}")]
    Length {
        /// Where the frame starts.
        offset: u64,
        /// What is wrong with them.
        reason: String,
    },
    /// The headers or the message CRC are invalid (reported by `aws-smithy-eventstream`).
    #[error("frame at byte {offset}: {reason}")]
    Malformed {
        /// Where the frame starts.
        offset: u64,
        /// The decoder's explanation.
        reason: String,
    },
    /// A header the frame's message type needs is missing or not a string.
    #[error("frame at byte {offset}: header {name} is missing or not a string")]
    MissingHeader {
        /// Where the frame starts.
        offset: u64,
        /// The header's name.
        name: &'static str,
    },
    /// `:message-type` is not `event`, `exception` or `error`.
    #[error("frame at byte {offset}: unknown message type {message_type:?}")]
    UnknownMessageType {
        /// Where the frame starts.
        offset: u64,
        /// The value found.
        message_type: String,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside the frame at byte {offset} ({buffered} of {expected} bytes)")]
    Truncated {
        /// Where the unfinished frame starts.
        offset: u64,
        /// The bytes of it received.
        buffered: usize,
        /// The bytes it needs (the prelude's length when known, else the prelude itself).
        expected: usize,
    },
}

/// Decodes frames from bytes pushed in any chunking.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: BytesMut,
    /// Stream offset of `buffer[0]`.
    offset: u64,
    /// The error returned once: framing cannot be recovered after it.
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Adds bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed. After an error the
    /// decoder returns the same error again: framing cannot be recovered once lost.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_next();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn decode_next(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(total) = self.check_prelude()? else {
            return Ok(None);
        };
        if self.buffer.len() < total {
            return Ok(None);
        }
        let offset = self.offset;
        let bytes = self.buffer.split_to(total).freeze();
        self.offset += total as u64;
        let message = read_message_from(bytes)
            .map_err(|error| FrameError::Malformed { offset, reason: error.to_string() })?;
        classify(&message, offset).map(Some)
    }

    /// Ends the stream: an error if it stopped inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let expected = match self.check_prelude() {
            Ok(Some(total)) => total,
            _ => PRELUDE_LEN,
        };
        Err(FrameError::Truncated { offset: self.offset, buffered: self.buffer.len(), expected })
    }

    /// The total length of the buffered frame once its prelude is in and checks out.
    fn check_prelude(&self) -> Result<Option<usize>, FrameError> {
        if self.buffer.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let mut prelude = &self.buffer[..PRELUDE_LEN];
        let total = prelude.get_u32() as usize;
        let headers = prelude.get_u32() as usize;
        let found = prelude.get_u32();
        let expected = crc32fast::hash(&self.buffer[..8]);
        let offset = self.offset;
        if expected != found {
            return Err(FrameError::PreludeChecksum { offset, expected, found });
        }
        let length = |reason: String| FrameError::Length { offset, reason };
        // Headers first, so the sum below cannot overflow on any target.
        if headers > MAX_HEADERS_LEN {
            return Err(length(format!("{headers} bytes of headers exceed {MAX_HEADERS_LEN}")));
        }
        if total < OVERHEAD + headers {
            return Err(length(format!(
                "total length {total} is too small for {headers} bytes of headers"
            )));
        }
        let payload = total - OVERHEAD - headers;
        if payload > MAX_PAYLOAD_LEN {
            return Err(length(format!("{payload} bytes of payload exceed {MAX_PAYLOAD_LEN}")));
        }
        Ok(Some(total))
    }
}

/// Decodes a whole stream held in memory.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut decoder = FrameDecoder::new();
    decoder.push(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.next_frame()? {
        frames.push(frame);
    }
    decoder.finish()?;
    Ok(frames)
}

fn classify(message: &Message, offset: u64) -> Result<Frame, FrameError> {
    let header = |name: &'static str| -> Option<String> {
        message.headers().iter().find(|h| h.name().as_str() == name).and_then(|h| match h.value() {
            HeaderValue::String(value) => Some(value.as_str().to_owned()),
            _ => None,
        })
    };
    let required =
        |name: &'static str| header(name).ok_or(FrameError::MissingHeader { offset, name });
    let message_type = required(":message-type")?;
    let payload = message.payload().clone();
    match message_type.as_str() {
        "event" => Ok(Frame::Event { event_type: required(":event-type")?, payload }),
        "exception" => {
            Ok(Frame::Exception { exception_type: required(":exception-type")?, payload })
        }
        "error" => Ok(Frame::Error {
            code: required(":error-code")?,
            message: header(":error-message").unwrap_or_default(),
        }),
        _ => Err(FrameError::UnknownMessageType { offset, message_type }),
    }
}
