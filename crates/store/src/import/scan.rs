//! Finding JSON documents in a byte stream, and the members and elements inside one, without
//! building a tree: the importer holds one document's bytes at a time and parses one message
//! at a time.
//!
//! [`DocumentReader`] only finds where a document ends (brackets outside strings); whether it
//! is JSON is for serde to say. The walkers below ([`members`], [`Elements`]) run on a document
//! serde has already accepted, so they never meet malformed input; they still never panic on
//! it (they stop early, and the decoders then report what is missing).

use std::io::Read;
use std::ops::Range;

/// One JSON document as it appears in the input.
#[derive(Debug)]
pub(crate) struct RawDocument {
    /// Its bytes, from its first byte to its last.
    pub(crate) bytes: Vec<u8>,
    /// The 1-based line of its first byte in the input.
    pub(crate) line: usize,
    /// The 1-based column (in bytes) of its first byte.
    pub(crate) column: usize,
}

/// Why the input could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The reader failed.
    Io(std::io::Error),
    /// More than the limit.
    TooLarge,
}

/// Yields the documents of an input one at a time: one JSON value, or several separated by
/// whitespace (JSON lines).
pub(crate) struct DocumentReader<R> {
    input: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    read: u64,
    limit: u64,
    line: usize,
    column: usize,
}

const BUFFER: usize = 64 << 10;

/// Where the scan of a document stands.
enum Mode {
    /// Inside an object or array: nesting depth, and whether in a string (after a backslash).
    Container { depth: usize, string: bool, escaped: bool },
    /// A string at the top level.
    String { escaped: bool },
    /// A number or literal: ends before whitespace or punctuation.
    Scalar,
}

impl<R: Read> DocumentReader<R> {
    /// A reader of `input` that fails once more than `limit` bytes were read.
    pub(crate) fn new(input: R, limit: u64) -> DocumentReader<R> {
        DocumentReader {
            input,
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            read: 0,
            limit,
            line: 1,
            column: 1,
        }
    }

    /// Refills the buffer when it is used up; false at the end of the input.
    fn fill(&mut self) -> Result<bool, ReadError> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        let n = loop {
            match self.input.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        };
        self.read += n as u64;
        if self.read > self.limit {
            return Err(ReadError::TooLarge);
        }
        self.pos = 0;
        self.end = n;
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Moves past `n` buffered bytes, counting lines and columns.
    fn consume(&mut self, n: usize) {
        let span = &self.buf[self.pos..self.pos + n];
        let mut i = 0;
        while i < n {
            if span[i] == b'\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
            i += 1;
        }
        self.pos += n;
    }

    /// Skips whitespace; true when a byte follows.
    fn skip_whitespace(&mut self) -> Result<bool, ReadError> {
        while self.fill()? {
            let blank =
                self.buf[self.pos..self.end].iter().take_while(|b| is_whitespace(**b)).count();
            self.consume(blank);
            if self.pos < self.end {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether another document follows (only whitespace is skipped).
    pub(crate) fn has_next(&mut self) -> Result<bool, ReadError> {
        self.skip_whitespace()
    }

    /// The next document, `None` at the end of the input. A document cut short by the end of
    /// the input is returned as it is (serde then says what is missing).
    pub(crate) fn next_document(&mut self) -> Result<Option<RawDocument>, ReadError> {
        if !self.skip_whitespace()? {
            return Ok(None);
        }
        let (line, column) = (self.line, self.column);
        let first = self.buf[self.pos];
        let mut bytes = Vec::new();
        let mut mode = match first {
            b'{' | b'[' => Mode::Container { depth: 0, string: false, escaped: false },
            b'"' => {
                bytes.push(first);
                self.consume(1);
                Mode::String { escaped: false }
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => Mode::Scalar,
            _ => {
                // Not the start of any JSON value: that byte alone, for serde to refuse.
                bytes.push(first);
                self.consume(1);
                return Ok(Some(RawDocument { bytes, line, column }));
            }
        };
        while self.fill()? {
            let chunk = &self.buf[self.pos..self.end];
            let (taken, done) = scan(&mut mode, chunk);
            bytes.extend_from_slice(&chunk[..taken]);
            self.consume(taken);
            if done {
                break;
            }
        }
        Ok(Some(RawDocument { bytes, line, column }))
    }
}

/// Scans `chunk` on from `mode`: how many bytes belong to the document, and whether it ends
/// there. (Plain index loops: this runs over every byte of the input, in debug builds too.)
fn scan(mode: &mut Mode, chunk: &[u8]) -> (usize, bool) {
    let len = chunk.len();
    let mut i = 0;
    match mode {
        Mode::Container { depth, string, escaped } => {
            while i < len {
                let b = chunk[i];
                i += 1;
                if *string {
                    if *escaped {
                        *escaped = false;
                    } else if b == b'\\' {
                        *escaped = true;
                    } else if b == b'"' {
                        *string = false;
                    }
                } else if b == b'"' {
                    *string = true;
                } else if b == b'{' || b == b'[' {
                    *depth += 1;
                } else if b == b'}' || b == b']' {
                    *depth = depth.saturating_sub(1);
                    if *depth == 0 {
                        return (i, true);
                    }
                }
            }
            (len, false)
        }
        Mode::String { escaped } => {
            while i < len {
                let b = chunk[i];
                i += 1;
                if *escaped {
                    *escaped = false;
                } else if b == b'\\' {
                    *escaped = true;
                } else if b == b'"' {
                    return (i, true);
                }
            }
            (len, false)
        }
        Mode::Scalar => {
            while i < len {
                if is_whitespace(chunk[i]) || is_punctuation(chunk[i]) {
                    return (i, true);
                }
                i += 1;
            }
            (len, false)
        }
    }
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_punctuation(b: u8) -> bool {
    matches!(b, b'{' | b'}' | b'[' | b']' | b',' | b':' | b'"')
}

/// The index of the first byte at or after `i` that is not whitespace.
fn skip(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).copied().is_some_and(is_whitespace) {
        i += 1;
    }
    i
}

/// The end (exclusive) of the JSON value starting at `start` (after whitespace).
fn value_end(bytes: &[u8], start: usize) -> usize {
    let Some(&first) = bytes.get(start) else { return start };
    let rest = &bytes[start..];
    let mut mode = match first {
        b'{' | b'[' => Mode::Container { depth: 0, string: false, escaped: false },
        b'"' => {
            let (taken, _) = scan(&mut Mode::String { escaped: false }, &rest[1..]);
            return start + 1 + taken;
        }
        _ => Mode::Scalar,
    };
    let (taken, _) = scan(&mut mode, rest);
    start + taken.max(1)
}

/// Whether `bytes` (a whole JSON value) is an object.
pub(crate) fn is_object(bytes: &[u8]) -> bool {
    bytes.get(skip(bytes, 0)) == Some(&b'{')
}

/// Whether `bytes` (a whole JSON value) is an array.
pub(crate) fn is_array(bytes: &[u8]) -> bool {
    bytes.get(skip(bytes, 0)) == Some(&b'[')
}

/// The members of the object `bytes` (valid JSON): each key, decoded, and where its value
/// lies, in document order.
pub(crate) fn members(bytes: &[u8]) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut i = skip(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return out;
    }
    i = skip(bytes, i + 1);
    while bytes.get(i) == Some(&b'"') {
        let key_end = value_end(bytes, i);
        let Ok(key) = serde_json::from_slice::<String>(&bytes[i..key_end]) else { break };
        i = skip(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            break;
        }
        let start = skip(bytes, i + 1);
        let end = value_end(bytes, start);
        out.push((key, start..end));
        i = skip(bytes, end);
        if bytes.get(i) != Some(&b',') {
            break;
        }
        i = skip(bytes, i + 1);
    }
    out
}

/// The elements of the array `bytes` (valid JSON), each as its bytes.
pub(crate) struct Elements<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Elements<'a> {
    /// The elements of `bytes`; none when it is not an array.
    pub(crate) fn of(bytes: &'a [u8]) -> Elements<'a> {
        let i = skip(bytes, 0);
        let pos = if bytes.get(i) == Some(&b'[') { skip(bytes, i + 1) } else { bytes.len() };
        Elements { bytes, pos }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        match bytes.get(self.pos) {
            None | Some(b']') => return None,
            Some(_) => {}
        }
        let start = self.pos;
        let end = value_end(bytes, start);
        let after = skip(bytes, end);
        self.pos = match bytes.get(after) {
            Some(b',') => skip(bytes, after + 1),
            _ => bytes.len(),
        };
        Some(&bytes[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(input: &[u8]) -> Vec<(String, usize, usize)> {
        let mut reader = DocumentReader::new(input, u64::MAX);
        let mut out = Vec::new();
        while let Some(doc) = reader.next_document().unwrap() {
            out.push((String::from_utf8(doc.bytes).unwrap(), doc.line, doc.column));
        }
        out
    }

    #[test]
    fn documents_end_at_their_closing_bracket_whatever_strings_hold() {
        let input = b"{\"a\": \"}]\\\"{\"}\n  [1, [2]] \"x\\\"y\" 12 true\n\n{\"b\": {}}";
        assert_eq!(
            documents(input),
            [
                ("{\"a\": \"}]\\\"{\"}".to_owned(), 1, 1),
                ("[1, [2]]".to_owned(), 2, 3),
                ("\"x\\\"y\"".to_owned(), 2, 12),
                ("12".to_owned(), 2, 19),
                ("true".to_owned(), 2, 22),
                ("{\"b\": {}}".to_owned(), 4, 1),
            ]
        );
    }

    #[test]
    fn a_cut_document_and_a_stray_byte_come_back_for_serde_to_refuse() {
        assert_eq!(documents(b"{\"messages\": ["), [("{\"messages\": [".to_owned(), 1, 1)]);
        assert_eq!(
            documents(b"}\0{}"),
            [("}".to_owned(), 1, 1), ("\0".to_owned(), 1, 2), ("{}".to_owned(), 1, 3)]
        );
    }

    #[test]
    fn documents_longer_than_the_buffer_and_the_limit() {
        let long = format!("[{}]", vec!["\"some text\""; 20_000].join(","));
        let input = format!("{long}\n{long}");
        let found = documents(input.as_bytes());
        assert_eq!(found.len(), 2);
        assert_eq!(found[1], (long.clone(), 2, 1));
        let mut reader = DocumentReader::new(input.as_bytes(), long.len() as u64);
        assert!(matches!(reader.next_document(), Err(ReadError::TooLarge)));
    }

    #[test]
    fn members_and_elements_of_a_document() {
        let doc = br#" { "a\u0041" : [ 1 , {"x": "]"} ,"s" ] , "b":null,"c" : {"d": [1]} } "#;
        let found = members(doc);
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["aA", "b", "c"]);
        let value = |r: &Range<usize>| std::str::from_utf8(&doc[r.clone()]).unwrap();
        assert_eq!(value(&found[1].1), "null");
        assert_eq!(value(&found[2].1), "{\"d\": [1]}");
        let array = &doc[found[0].1.clone()];
        let items: Vec<&str> =
            Elements::of(array).map(|e| std::str::from_utf8(e).unwrap()).collect();
        assert_eq!(items, ["1", "{\"x\": \"]\"}", "\"s\""]);
        assert_eq!(Elements::of(b"[]").count(), 0);
        assert_eq!(Elements::of(b"{}").count(), 0);
        assert!(is_object(doc) && !is_array(doc));
    }
}
