//! Wire keys this version does not interpret, kept so that nothing is silently dropped.

use serde::{Deserialize, Serialize};

use crate::JsonMap;

/// The two JSON dialects Bedrock Runtime speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Bedrock's own Converse / ConverseStream JSON.
    Converse,
    /// Anthropic Messages JSON, as InvokeModel carries it in its body.
    Anthropic,
}

impl Dialect {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Converse => "Converse",
            Dialect::Anthropic => "Anthropic Messages",
        }
    }
}

/// Keys of a wire object that this version does not interpret, kept per dialect.
///
/// A codec writes back the keys of its own dialect unchanged; keys that came from the other
/// dialect cannot be expressed and make the encoder fail rather than drop them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmapped {
    /// Keys seen on the Converse surface.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub converse: JsonMap,
    /// Keys seen on the Anthropic Messages surface.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub anthropic: JsonMap,
}

impl Unmapped {
    /// Keys kept for one dialect only.
    pub fn only(dialect: Dialect, fields: JsonMap) -> Unmapped {
        let mut unmapped = Unmapped::default();
        *unmapped.get_mut(dialect) = fields;
        unmapped
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.converse.is_empty() && self.anthropic.is_empty()
    }

    /// The keys kept for `dialect`.
    pub fn get(&self, dialect: Dialect) -> &JsonMap {
        match dialect {
            Dialect::Converse => &self.converse,
            Dialect::Anthropic => &self.anthropic,
        }
    }

    /// The keys kept for `dialect`, mutably.
    pub fn get_mut(&mut self, dialect: Dialect) -> &mut JsonMap {
        match dialect {
            Dialect::Converse => &mut self.converse,
            Dialect::Anthropic => &mut self.anthropic,
        }
    }
}
