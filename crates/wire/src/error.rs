//! Decoding and encoding errors.

use std::fmt;

use verbatim_model::Dialect;

use crate::JsonPath;

/// Wire JSON that cannot be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct DecodeError {
    /// Where the problem is (`messages[3].content[0]`).
    pub path: JsonPath,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

/// What is wrong with decoded JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The bytes are not JSON.
    #[error("not valid JSON: {message} at line {line}, column {column}")]
    Syntax {
        /// The parser's description.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A value of the wrong JSON type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type wanted.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A required key is absent.
    #[error("missing required field `{field}`")]
    MissingField {
        /// The key.
        field: &'static str,
    },
    /// A tagged union (an object that must hold exactly one member) holds none or several.
    #[error("{}", UnionDisplay { union, found, allowed })]
    UnionMembers {
        /// The union's name (`ContentBlock`, `ImageSource`, ...).
        union: &'static str,
        /// The keys found, in document order.
        found: Vec<String>,
        /// The members the union allows.
        allowed: &'static [&'static str],
    },
    /// A role other than the dialect's roles.
    #[error("unknown role `{role}`; expected one of: {}", allowed.join(", "))]
    UnknownRole {
        /// The role found.
        role: String,
        /// The roles the dialect allows.
        allowed: &'static [&'static str],
    },
    /// A key this object does not allow.
    #[error("unknown field `{field}`; expected one of: {}", allowed.join(", "))]
    UnknownField {
        /// The key found.
        field: String,
        /// The keys allowed.
        allowed: &'static [&'static str],
    },
    /// A key that must not be present.
    #[error("field `{field}` must not be present: {reason}")]
    Forbidden {
        /// The key.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A value outside what the field allows.
    #[error("invalid value: {message}")]
    InvalidValue {
        /// What is wrong with it.
        message: String,
    },
}

struct UnionDisplay<'a> {
    union: &'a str,
    found: &'a [String],
    allowed: &'a [&'static str],
}

impl fmt::Display for UnionDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = self.allowed.join(", ");
        if self.found.is_empty() {
            return write!(f, "{} has no member; set exactly one of: {allowed}", self.union);
        }
        write!(
            f,
            "{} has {} members ({}); set exactly one of: {allowed}",
            self.union,
            self.found.len(),
            self.found.join(", ")
        )
    }
}

impl DecodeError {
    pub(crate) fn new(path: JsonPath, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { path, kind }
    }

    /// The error for JSON text `input` that serde_json refused with `error` (see
    /// [`crate::json_input::syntax_error`]).
    pub fn syntax(input: &[u8], error: &serde_json::Error) -> DecodeError {
        crate::json_input::syntax_error(input, error)
    }
}

/// A value that cannot be written in the target dialect, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: cannot encode as {}: {kind}", target.name())]
pub struct EncodeError {
    /// Where in the value being encoded (`messages[1].content[2]`).
    pub path: JsonPath,
    /// The dialect being written.
    pub target: Dialect,
    /// Why.
    pub kind: EncodeErrorKind,
}

/// Why a value cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeErrorKind {
    /// The dialect has no way to say this.
    #[error("{what} has no equivalent in this dialect")]
    Unrepresentable {
        /// What cannot be said.
        what: String,
    },
    /// A required field is missing from the value.
    #[error("`{field}` is required")]
    Missing {
        /// The wire field.
        field: &'static str,
    },
    /// A cache point with no block before it to attach to.
    #[error("a cache point must follow a block it can be attached to")]
    DanglingCachePoint,
    /// A native field would overwrite a field the codec writes itself.
    #[error("native field `{field}` collides with a field the codec writes itself")]
    FieldCollision {
        /// The key.
        field: String,
    },
    /// Redacted thinking data that is not valid base64 of text, so it cannot change form.
    #[error("redacted thinking data cannot be converted between wire forms: {reason}")]
    RedactedData {
        /// Why.
        reason: String,
    },
}

impl EncodeError {
    pub(crate) fn new(path: JsonPath, target: Dialect, kind: EncodeErrorKind) -> EncodeError {
        EncodeError { path, target, kind }
    }
}
