//! Helpers both encoders share.

use serde_json::Value;
use verbatim_model::{Dialect, JsonMap, Unmapped};

use crate::path::At;
use crate::{EncodeError, EncodeErrorKind};

pub(crate) type Result<T, E = EncodeError> = std::result::Result<T, E>;

pub(crate) fn error(at: &At<'_>, target: Dialect, kind: EncodeErrorKind) -> EncodeError {
    EncodeError::new(at.path(), target, kind)
}

pub(crate) fn unrepresentable(
    at: &At<'_>,
    target: Dialect,
    what: impl Into<String>,
) -> EncodeError {
    error(at, target, EncodeErrorKind::Unrepresentable { what: what.into() })
}

fn other(dialect: Dialect) -> Dialect {
    match dialect {
        Dialect::Converse => Dialect::Anthropic,
        Dialect::Anthropic => Dialect::Converse,
    }
}

/// Writes the kept keys of `target` into `map`; keys kept from the other dialect cannot be
/// written and are an error, as is a kept key that clashes with one already written.
pub(crate) fn put_unmapped(
    map: &mut JsonMap,
    unmapped: &Unmapped,
    at: &At<'_>,
    target: Dialect,
) -> Result<()> {
    if let Some(key) = unmapped.get(other(target)).keys().next() {
        let what = format!("field `{key}` of the {} dialect", other(target).name());
        return Err(unrepresentable(&at.key(key), target, what));
    }
    put_fields(map, unmapped.get(target), at, target)
}

/// Writes `fields` into `map`, refusing to overwrite a key already written.
pub(crate) fn put_fields(
    map: &mut JsonMap,
    fields: &JsonMap,
    at: &At<'_>,
    target: Dialect,
) -> Result<()> {
    for (key, value) in fields {
        if map.contains_key(key) {
            let kind = EncodeErrorKind::FieldCollision { field: key.clone() };
            return Err(error(&at.key(key), target, kind));
        }
        map.insert(key.clone(), value.clone());
    }
    Ok(())
}

/// Refuses kept keys in a place where the target dialect has no room for any.
pub(crate) fn no_unmapped(unmapped: &Unmapped, at: &At<'_>, target: Dialect) -> Result<()> {
    match unmapped.converse.keys().chain(unmapped.anthropic.keys()).next() {
        None => Ok(()),
        Some(key) => Err(unrepresentable(&at.key(key), target, format!("field `{key}` here"))),
    }
}

pub(crate) fn object(entries: impl IntoIterator<Item = (&'static str, Value)>) -> JsonMap {
    entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(crate) fn single(key: &'static str, value: Value) -> Value {
    Value::Object(object([(key, value)]))
}
