//! Taking decoded JSON apart while keeping track of where we are.
//!
//! Two readers are public, for code that reads a body before (or instead of) decoding it, as
//! `verbatim-protocol`'s validator does with raw bodies: [`parse`] (JSON text to a value, its
//! syntax error named as [`json_input::syntax_error`](crate::json_input::syntax_error) names
//! it) and [`type_name`] (the words an error uses for a value's JSON type). The rest is the
//! decoders' own.

use serde_json::{Number, Value};
use verbatim_model::JsonMap;

use crate::path::At;
use crate::{DecodeError, DecodeErrorKind};

pub(crate) type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Parses JSON text into a value. Text serde_json refuses (bad syntax, nesting past its limit)
/// is a [`DecodeError`] at the root whose kind is [`DecodeErrorKind::Syntax`], with the line
/// and column (see [`DecodeError::syntax`]).
pub fn parse(bytes: &[u8]) -> std::result::Result<Value, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::syntax(bytes, &e))
}

/// The words a wrong-type error uses for the JSON type of `value`: `null`, `a boolean`,
/// `a number`, `a string`, `an array` or `an object` (the `found` of
/// [`DecodeErrorKind::WrongType`]).
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn error(at: &At<'_>, kind: DecodeErrorKind) -> DecodeError {
    DecodeError::new(at.path(), kind)
}

pub(crate) fn invalid(at: &At<'_>, message: impl Into<String>) -> DecodeError {
    error(at, DecodeErrorKind::InvalidValue { message: message.into() })
}

fn wrong_type(at: &At<'_>, expected: &'static str, found: &Value) -> DecodeError {
    error(at, DecodeErrorKind::WrongType { expected, found: type_name(found) })
}

pub(crate) fn object(value: Value, at: &At<'_>) -> Result<JsonMap> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(wrong_type(at, "an object", &other)),
    }
}

pub(crate) fn array(value: Value, at: &At<'_>) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(wrong_type(at, "an array", &other)),
    }
}

pub(crate) fn string(value: Value, at: &At<'_>) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(at, "a string", &other)),
    }
}

pub(crate) fn boolean(value: Value, at: &At<'_>) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(wrong_type(at, "a boolean", &other)),
    }
}

pub(crate) fn number(value: Value, at: &At<'_>) -> Result<Number> {
    match value {
        Value::Number(n) => Ok(n),
        other => Err(wrong_type(at, "a number", &other)),
    }
}

pub(crate) fn uint64(value: Value, at: &At<'_>) -> Result<u64> {
    match value.as_u64() {
        Some(n) => Ok(n),
        None => Err(wrong_type(at, "a non-negative integer", &value)),
    }
}

pub(crate) fn uint32(value: Value, at: &At<'_>) -> Result<u32> {
    let n = uint64(value, at)?;
    u32::try_from(n).map_err(|_| invalid(at, format!("{n} is larger than {}", u32::MAX)))
}

pub(crate) fn strings(value: Value, at: &At<'_>) -> Result<Vec<String>> {
    array(value, at)?.into_iter().enumerate().map(|(i, v)| string(v, &at.index(i))).collect()
}

pub(crate) fn any(value: Value, _at: &At<'_>) -> Result<Value> {
    Ok(value)
}

/// The one member of a tagged-union object, or an error listing what was found and allowed.
pub(crate) fn sole_member(
    map: JsonMap,
    at: &At<'_>,
    union: &'static str,
    allowed: &'static [&'static str],
) -> Result<(String, Value)> {
    if map.len() != 1 {
        let found = map.keys().cloned().collect();
        return Err(error(at, DecodeErrorKind::UnionMembers { union, found, allowed }));
    }
    Ok(map.into_iter().next().expect("one member"))
}

/// The error for a union whose one member is not among those allowed.
pub(crate) fn unknown_member(
    at: &At<'_>,
    union: &'static str,
    member: String,
    allowed: &'static [&'static str],
) -> DecodeError {
    error(at, DecodeErrorKind::UnionMembers { union, found: vec![member], allowed })
}

/// An object being taken apart key by key; what is left can be kept or refused.
pub(crate) struct Fields<'a> {
    map: JsonMap,
    at: &'a At<'a>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(map: JsonMap, at: &'a At<'a>) -> Fields<'a> {
        Fields { map, at }
    }

    pub(crate) fn of(value: Value, at: &'a At<'a>) -> Result<Fields<'a>> {
        Ok(Fields::new(object(value, at)?, at))
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The value under `key`, left in place.
    pub(crate) fn peek(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.shift_remove(key)
    }

    /// A required key, decoded by `decode`.
    pub(crate) fn required<T>(
        &mut self,
        key: &'static str,
        decode: impl FnOnce(Value, &At<'_>) -> Result<T>,
    ) -> Result<T> {
        match self.take(key) {
            Some(value) => decode(value, &self.at.key(key)),
            None => Err(error(self.at, DecodeErrorKind::MissingField { field: key })),
        }
    }

    /// An optional key, decoded by `decode`. A `null` is decoded like any other value.
    pub(crate) fn optional<T>(
        &mut self,
        key: &'static str,
        decode: impl FnOnce(Value, &At<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.take(key) {
            Some(value) => decode(value, &self.at.key(key)).map(Some),
            None => Ok(None),
        }
    }

    /// An optional key whose `null` is left in place (so it is kept with the rest, unchanged).
    pub(crate) fn optional_non_null<T>(
        &mut self,
        key: &'static str,
        decode: impl FnOnce(Value, &At<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        if matches!(self.map.get(key), Some(Value::Null)) {
            return Ok(None);
        }
        self.optional(key, decode)
    }

    /// The keys not taken, in document order.
    pub(crate) fn rest(self) -> JsonMap {
        self.map
    }

    /// Refuses any key not taken.
    pub(crate) fn deny_rest(self, allowed: &'static [&'static str]) -> Result<()> {
        match self.map.into_iter().next() {
            None => Ok(()),
            Some((field, _)) => {
                let at = self.at.key(&field);
                Err(error(&at, DecodeErrorKind::UnknownField { field: field.clone(), allowed }))
            }
        }
    }
}
