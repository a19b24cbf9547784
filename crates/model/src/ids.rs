//! Identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The longest model id Bedrock takes, in characters (its `InvokeModelIdentifier` and
/// `ConversationalModelId` shapes: 1 to 2048).
pub const MAX_MODEL_ID_CHARS: usize = 2048;

/// A model id refused where it enters (a command-line flag, a session's configuration, an
/// import): Bedrock refuses it anyway, and a control character in it would reach terminals
/// and logs that print it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelIdError {
    /// No characters.
    #[error("the model id is empty")]
    Empty,
    /// Over [`MAX_MODEL_ID_CHARS`].
    #[error("the model id is {chars} characters long; Bedrock takes at most {MAX_MODEL_ID_CHARS}")]
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// A control character (a newline, a terminal escape, ...).
    #[error(
        "the model id holds the control character {} at character {at}; model ids are printable text",
        .found.escape_default()
    )]
    Control {
        /// The character.
        found: char,
        /// Its place, counted in characters from 1.
        at: usize,
    },
}

/// Checks a model id, inference-profile id or ARN as it enters: 1 to [`MAX_MODEL_ID_CHARS`]
/// characters, none of them a control character. Whether Bedrock knows the model is not
/// checked here.
pub fn check_model_id(id: &str) -> Result<(), ModelIdError> {
    if id.is_empty() {
        return Err(ModelIdError::Empty);
    }
    // Counting stops past the maximum: a 10 MB id is refused without counting all of it.
    let chars = id.chars().take(MAX_MODEL_ID_CHARS + 1).count();
    if chars > MAX_MODEL_ID_CHARS {
        return Err(ModelIdError::TooLong { chars: id.chars().count() });
    }
    match id.chars().enumerate().find(|(_, c)| c.is_control()) {
        Some((k, found)) => Err(ModelIdError::Control { found, at: k + 1 }),
        None => Ok(()),
    }
}

/// The id of a session: a random (version 4) UUID.
///
/// This crate generates no randomness; the caller supplies the random bytes
/// ([`SessionId::from_random_bytes`]), so the id is as unguessable as its source.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(Uuid);

/// A string that is not a version 4 UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    /// Not a UUID at all.
    #[error("session id `{0}` is not a UUID")]
    Malformed(String),
    /// A UUID of another version or variant.
    #[error("session id `{0}` is not a random (version 4) UUID")]
    NotVersion4(String),
}

impl SessionId {
    /// Builds a version 4 UUID from 16 random bytes (the version and variant bits are set).
    pub fn from_random_bytes(bytes: [u8; 16]) -> SessionId {
        SessionId(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// Parses the hyphenated (or simple) form, accepting only version 4 UUIDs.
    pub fn parse(s: &str) -> Result<SessionId, SessionIdError> {
        let uuid = Uuid::try_parse(s).map_err(|_| SessionIdError::Malformed(s.to_owned()))?;
        if uuid.get_version() != Some(uuid::Version::Random)
            || uuid.get_variant() != uuid::Variant::RFC4122
        {
            return Err(SessionIdError::NotVersion4(s.to_owned()));
        }
        Ok(SessionId(uuid))
    }

    /// The 16 bytes of the id (big-endian, as written in the hyphenated form).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

impl FromStr for SessionId {
    type Err = SessionIdError;

    fn from_str(s: &str) -> Result<SessionId, SessionIdError> {
        SessionId::parse(s)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0.hyphenated())
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SessionId, D::Error> {
        let s = String::deserialize(deserializer)?;
        SessionId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The id that pairs a tool use with its result, exactly as the model issued it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ToolUseId(String);

impl ToolUseId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> ToolUseId {
        ToolUseId(id.into())
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolUseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ToolUseId {
    fn from(id: &str) -> ToolUseId {
        ToolUseId(id.to_owned())
    }
}

impl From<String> for ToolUseId {
    fn from(id: String) -> ToolUseId {
        ToolUseId(id)
    }
}
