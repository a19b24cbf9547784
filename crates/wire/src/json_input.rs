//! JSON text as it enters (a body to validate or repair, a document to import): a syntax
//! error that says what is wrong where the parser's own words do not (a UTF-8 byte order
//! mark, a lone UTF-16 surrogate escape), and the keys an object gives twice, which a parser
//! reads silently (serde_json keeps the last value; other parsers keep the first or refuse).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::{DecodeError, DecodeErrorKind, JsonPath};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The error for `input`, which serde_json refused with `error`: the parser's words, unless
/// the input starts with a byte order mark or the error sits at a lone UTF-16 surrogate
/// escape (`\ud800` without its pair), which are named as such, with the escape's place.
pub fn syntax_error(input: &[u8], error: &serde_json::Error) -> DecodeError {
    let kind = if input.starts_with(BOM) {
        DecodeErrorKind::Syntax {
            message: "the input starts with a UTF-8 byte order mark; remove it".to_owned(),
            line: 1,
            column: 1,
        }
    } else if let Some((escape, line, column)) = lone_surrogate(input, error) {
        DecodeErrorKind::Syntax {
            message: format!("lone UTF-16 surrogate \\u{escape}"),
            line,
            column,
        }
    } else {
        // serde_json's message ends with the position, which is kept as fields instead.
        let mut message = error.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        DecodeErrorKind::Syntax { message, line: error.line(), column: error.column() }
    };
    DecodeError::new(JsonPath::root(), kind)
}

/// The byte offset of a 1-based line and column as serde_json counts them (columns in bytes).
fn offset(input: &[u8], line: usize, column: usize) -> usize {
    let start = if line <= 1 {
        0
    } else {
        input
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(input.len(), |(k, _)| k + 1)
    };
    (start + column).min(input.len())
}

/// A `\uXXXX` escape at `at` (its backslash not itself escaped) whose value is a surrogate.
fn surrogate_at(input: &[u8], at: usize) -> Option<(String, u16)> {
    let escape = input.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    let backslashes = input[..at].iter().rev().take_while(|b| **b == b'\\').count();
    if backslashes % 2 == 1 {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    let value = u16::from_str_radix(hex, 16).ok()?;
    (0xD800..=0xDFFF).contains(&value).then(|| (hex.to_owned(), value))
}

/// The lone surrogate escape the error points at: the last surrogate escape that starts
/// within the few bytes before the error's position (a pair's second half may sit between).
fn lone_surrogate(input: &[u8], error: &serde_json::Error) -> Option<(String, usize, usize)> {
    if !error.is_syntax() && !error.is_eof() {
        return None;
    }
    let end = offset(input, error.line(), error.column());
    let from = end.saturating_sub(13);
    let (at, hex) = (from..=end).rev().find_map(|at| {
        let (hex, value) = surrogate_at(input, at)?;
        // A leading surrogate followed by a trailing one is a pair, not the error.
        let paired = (0xD800..0xDC00).contains(&value)
            && surrogate_at(input, at + 6).is_some_and(|(_, next)| next >= 0xDC00);
        (!paired).then_some((at, hex))
    })?;
    let line = 1 + input[..at].iter().filter(|b| **b == b'\n').count();
    let column = at - input[..at].iter().rposition(|b| *b == b'\n').map_or(0, |k| k + 1) + 1;
    Some((hex, line, column))
}

/// The paths of the keys `input` gives twice (or more) in one object, each at its repeat, in
/// document order: `messages[0].content[0].text`. Empty when there is none, or when `input`
/// is not JSON (its syntax error is reported elsewhere).
pub fn duplicate_keys(input: &[u8]) -> Vec<JsonPath> {
    let mut found = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    // A syntax error or a nesting past serde_json's limit ends the walk with what it found.
    let _ = Walk { path: JsonPath::root(), found: &mut found }.deserialize(&mut deserializer);
    found
}

/// Visits a JSON value, noting repeated keys; the value itself is not kept.
struct Walk<'a> {
    path: JsonPath,
    found: &'a mut Vec<JsonPath>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let item = Walk { path: self.path.clone().index(index), found: &mut *self.found };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.path.clone().key(key.clone());
            if !keys.insert(key) {
                self.found.push(path.clone());
            }
            map.next_value_seed(Walk { path, found: &mut *self.found })?;
        }
        Ok(())
    }
}
