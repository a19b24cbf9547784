//! Server-sent events (`text/event-stream`), the streaming framing of the Anthropic Messages API
//! on Bedrock (`/anthropic/v1/messages` with `"stream": true`), as an incremental decoder: push
//! bytes as they arrive, take events out as they complete.
//!
//! The decoder follows the WHATWG "event stream interpretation": one leading byte-order mark is
//! dropped; lines end with CRLF, LF or CR (a CRLF split across two pushes is still one line
//! end); a line starting with `:` is a comment; `field: value` loses one space after the colon;
//! `data` lines are joined with `\n`; `event`, `id` and `retry` set the event's name, the last
//! event id and the reconnection time; unknown fields are ignored; a blank line dispatches the
//! event, unless no `data` line came, in which case it is dropped as the standard says. Lines
//! and UTF-8 characters may be split across pushes anywhere. Where the standard decodes
//! invalid UTF-8 to U+FFFD this decoder reports an error instead: the data carries thinking
//! text and signatures, which are never altered.
//!
//! Memory is bounded by [`SseLimits`]: a line longer than `max_line` is an error as soon as
//! that many bytes of it are buffered, before its end arrives, and so is an event whose data
//! grows past `max_data`.
//!
//! [`messages_event`] reads one event as the Anthropic stream event it carries, and
//! [`MessagesFold`] decodes and folds a whole stream into the
//! [`Response`](verbatim_model::Response) a non-streamed call returns, through the same
//! [`AnthropicAccumulator`](crate::stream::AnthropicAccumulator) InvokeModel's event streams
//! go through. The decoder does no I/O: the loop that feeds it lives in the transport.

mod anthropic;

pub use anthropic::{MessagesEventError, MessagesFold, MessagesFoldError, messages_event};

/// The default bound on an event's data: the event-stream decoder's payload bound.
pub const DEFAULT_MAX_DATA: usize = crate::eventstream::MAX_PAYLOAD_LEN;
/// The default bound on a line: a whole event's data on one `data:` line, with room for the
/// field name.
pub const DEFAULT_MAX_LINE: usize = DEFAULT_MAX_DATA + 64;

/// The UTF-8 byte-order mark, dropped once at the start of the stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Size bounds of an [`SseDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseLimits {
    /// The longest line accepted, in bytes without its line end.
    pub max_line: usize,
    /// The most data one event may carry, in bytes (its `data` lines joined).
    pub max_data: usize,
}

impl Default for SseLimits {
    fn default() -> SseLimits {
        SseLimits { max_line: DEFAULT_MAX_LINE, max_data: DEFAULT_MAX_DATA }
    }
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, `None` when absent or empty (the standard's default name is
    /// `message`).
    pub event: Option<String>,
    /// The `data` lines joined with `\n`, exactly as sent.
    pub data: String,
    /// The last event id set by an `id` field, in this event or an earlier one; `None` while
    /// empty.
    pub id: Option<String>,
    /// Where the event's first field line starts, in bytes from the start of the stream.
    pub offset: u64,
}

/// Why a stream of events could not be decoded. Offsets count bytes from the start of the
/// stream, the byte-order mark included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than [`SseLimits::max_line`].
    #[error("line at byte {offset} is longer than the limit max_line ({limit} bytes)")]
    LineTooLong {
        /// Where the line starts.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// An event whose data exceeds [`SseLimits::max_data`].
    #[error("event at byte {offset}: its data exceeds the limit max_data ({limit} bytes)")]
    DataTooLarge {
        /// Where the event starts.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// Bytes that are not UTF-8.
    #[error("byte {offset} (in the line at byte {line}) is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the first invalid byte is.
        offset: u64,
        /// Where its line starts.
        line: u64,
    },
    /// The stream ended inside an event: no blank line dispatched it.
    #[error("stream ended inside the event at byte {offset}: no blank line ended it")]
    Truncated {
        /// Where the unfinished event (or line) starts.
        offset: u64,
    },
}

/// Decodes events from bytes pushed in any chunking.
#[derive(Debug, Default)]
pub struct SseDecoder {
    limits: SseLimits,
    buffer: Vec<u8>,
    /// Where the unread bytes of `buffer` start.
    start: usize,
    /// How many bytes past `start` hold no line end (searched already).
    searched: usize,
    /// Stream offset of `buffer[0]`.
    offset: u64,
    /// Whether the byte-order mark has been looked for.
    past_bom: bool,
    /// The last line ended with CR: a LF right after it belongs to that line end.
    after_cr: bool,
    /// The event type buffer.
    event_type: String,
    /// The data buffer (each line followed by `\n`, as the standard keeps it).
    data: String,
    /// Where the event being read starts, once a field line of it came.
    event_offset: Option<u64>,
    last_id: String,
    retry: Option<u64>,
    /// The error returned once: decoding does not go on after it.
    failed: Option<SseError>,
}

impl SseDecoder {
    /// A decoder at the start of a stream, with the default limits.
    pub fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// A decoder at the start of a stream, with the given limits.
    pub fn with_limits(limits: SseLimits) -> SseDecoder {
        SseDecoder { limits, ..SseDecoder::default() }
    }

    /// Adds bytes received from the stream (none once decoding has failed).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start == self.buffer.len() {
            self.offset += self.buffer.len() as u64;
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 0 {
            self.offset += self.start as u64;
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet read as lines.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// The reconnection time the last valid `retry` field set, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The next complete event, `Ok(None)` when more bytes are needed. After an error the
    /// decoder returns the same error again.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_next();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    /// Ends the stream: an error if it stopped inside an event (its `event` or `data` read, or
    /// a line other than a comment begun, with no blank line after them), or if decoding had
    /// failed.
    pub fn finish(&self) -> Result<(), SseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if !self.data.is_empty() || !self.event_type.is_empty() {
            let offset = self.event_offset.expect("a field line sets the event's offset");
            return Err(SseError::Truncated { offset });
        }
        // A comment cut short loses nothing; any other line does.
        let rest = &self.buffer[self.start..];
        if !rest.is_empty() && rest[0] != b':' {
            let offset = self.event_offset.unwrap_or(self.offset + self.start as u64);
            return Err(SseError::Truncated { offset });
        }
        Ok(())
    }

    fn decode_next(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if !self.past_bom {
                let rest = &self.buffer[self.start..];
                if rest.len() < BOM.len() && BOM.starts_with(rest) {
                    return Ok(None);
                }
                if rest.starts_with(BOM) {
                    self.start += BOM.len();
                }
                self.past_bom = true;
            }
            if self.after_cr {
                match self.buffer.get(self.start) {
                    None => return Ok(None),
                    Some(b'\n') => self.start += 1,
                    Some(_) => {}
                }
                self.after_cr = false;
            }
            let line_start = self.start;
            let line_offset = self.offset + line_start as u64;
            let from = line_start + self.searched;
            let Some(found) = memchr::memchr2(b'\n', b'\r', &self.buffer[from..]) else {
                self.searched = self.buffer.len() - line_start;
                if self.searched > self.limits.max_line {
                    let limit = self.limits.max_line;
                    return Err(SseError::LineTooLong { offset: line_offset, limit });
                }
                return Ok(None);
            };
            let end = from + found;
            self.searched = 0;
            self.after_cr = self.buffer[end] == b'\r';
            self.start = end + 1;
            if end - line_start > self.limits.max_line {
                let limit = self.limits.max_line;
                return Err(SseError::LineTooLong { offset: line_offset, limit });
            }
            if let Some(event) = self.line(line_start, end, line_offset)? {
                return Ok(Some(event));
            }
        }
    }

    /// Interprets the line `buffer[start..end]`; the event, when it is a blank line ending
    /// one.
    fn line(
        &mut self,
        start: usize,
        end: usize,
        offset: u64,
    ) -> Result<Option<SseEvent>, SseError> {
        let line = &self.buffer[start..end];
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let line = std::str::from_utf8(line).map_err(|error| SseError::InvalidUtf8 {
            offset: offset + error.valid_up_to() as u64,
            line: offset,
        })?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        let event_offset = *self.event_offset.get_or_insert(offset);
        match field {
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "data" => {
                if self.data.len() + value.len() > self.limits.max_data {
                    let limit = self.limits.max_data;
                    return Err(SseError::DataTooLarge { offset: event_offset, limit });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.last_id.clear();
                self.last_id.push_str(value);
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // A value too large for a u64 is ignored, like any other invalid value.
                if let Ok(retry) = value.parse() {
                    self.retry = Some(retry);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// A blank line: the event read so far, or nothing when it had no data.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let offset = self.event_offset.take();
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last data line
        Some(SseEvent {
            event: (!event_type.is_empty()).then_some(event_type),
            data,
            id: (!self.last_id.is_empty()).then(|| self.last_id.clone()),
            offset: offset.expect("a data line sets the event's offset"),
        })
    }
}

/// Decodes a whole stream held in memory, with the default limits.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
    let mut decoder = SseDecoder::new();
    decoder.push(bytes);
    let mut events = Vec::new();
    while let Some(event) = decoder.next_event()? {
        events.push(event);
    }
    decoder.finish()?;
    Ok(events)
}
