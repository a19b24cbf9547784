//! The vocabulary of a verbatim conversation and its canonical (stored) form.
//!
//! Everything else in verbatim speaks in these types: a [`Request`] holds the [`Message`]s of a
//! conversation with the configuration it is sent with, a [`Response`] holds what a model
//! answered. Their serde form is the canonical form the store persists, wrapped in
//! [`Versioned`] with [`SCHEMA_VERSION`].
//!
//! The model is lossless: thinking text, signatures, redacted thinking data and tool inputs are
//! kept exactly as they arrived (tool inputs keep their key order), content the current version
//! does not understand is kept as raw JSON ([`UnknownBlock`]), and wire keys it does not
//! interpret are kept per dialect ([`Unmapped`]) so a re-encode restores them.
//!
//! This crate is pure: it does no I/O and reads no clock, environment or randomness (session ids
//! are built from random bytes the caller supplies). It knows nothing about wire formats beyond
//! naming the two [`Dialect`]s; the codecs live in `verbatim-protocol`.

mod caching;
mod content;
mod context_management;
mod ids;
mod provenance;
mod request;
mod response;
pub mod tagged;
mod unmapped;
mod versioned;

pub use caching::{AutoCaching, CacheTtl, Caching};
pub use content::{
    CachePoint, ContentBlock, DocumentBlock, DocumentSource, ImageBlock, MediaBlock, MediaSource,
    Message, RawMember, RedactedForm, RedactedThinking, Role, S3Location, TextBlock, ThinkingBlock,
    ToolResult, ToolResultBlock, ToolResultContent, ToolResultStatus, ToolUse, UnknownBlock,
};
pub use context_management::{
    CLEAR_THINKING_EDIT, CLEAR_TOOL_USES_EDIT, COMPACT_BETA, COMPACT_EDIT, COMPACTION_BLOCK,
    CONTEXT_MANAGEMENT_BETA, CONTEXT_MANAGEMENT_KEY, ContextManagement,
};
pub use ids::{
    MAX_MODEL_ID_CHARS, ModelIdError, SessionId, SessionIdError, ToolUseId, check_model_id,
};
pub use provenance::{Api, HistoryMessage, Provenance};
pub use request::{
    Effort, InferenceConfig, Request, Settings, SystemBlock, SystemPrompt, SystemTool,
    ThinkingConfig, ThinkingMode, Tool, ToolChoice, ToolChoiceKind, ToolSpec,
};
pub use response::{Metrics, Response, StopReason, Usage};
pub use unmapped::{Dialect, Unmapped};
pub use versioned::{SCHEMA_VERSION, SchemaError, Versioned};

/// A JSON object, the shape of free-form wire fields (tool schemas, unknown keys).
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

#[cfg(test)]
mod tests;
