//! Anthropic Messages JSON as InvokeModel carries it (request bodies, responses and message
//! arrays) to and from the model.
//!
//! Request bodies must carry an `anthropic_version` and must not carry `model` or `stream`
//! (the URL names the model and the endpoint chooses streaming). The encoder writes
//! `bedrock-2023-05-31`; any other version a body carries (anthropic-python 2.x writes
//! `2026-10-21`) is kept as an unmapped key of the request and written back as it came.
//! Whether the model takes it is judged by the validator, from the capability table.
//! Anthropic's `cache_control` on a block becomes a
//! [`CachePoint`](verbatim_model::ContentBlock::CachePoint) right after that block, and goes
//! back onto it when encoding. Unknown top-level request keys are native model fields, the
//! same ones Converse sends in `additionalModelRequestFields`.

pub(crate) mod decode;
pub(crate) mod encode;

pub use decode::{
    decode_message_value, decode_messages, decode_messages_value, decode_request,
    decode_request_value, decode_response, decode_response_value,
};
pub use encode::{
    encode_message, encode_messages, encode_request, encode_response, request_to_vec,
};

/// The `anthropic_version` the AWS documentation gives for InvokeModel on Bedrock, taken by
/// every Claude model; the one the encoder writes unless the request keeps another.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The request key of the version; another version than [`BEDROCK_ANTHROPIC_VERSION`] is kept
/// under it in the request's unmapped Anthropic keys.
pub const VERSION_KEY: &str = "anthropic_version";

/// Roles an Anthropic message may have.
pub const ROLES: &[&str] = &["user", "assistant"];

/// Top-level request keys the codec writes itself; native fields may not reuse them.
const REQUEST_KEYS: &[&str] = &[
    "anthropic_version",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "thinking",
    "anthropic_beta",
    "model",
    "stream",
];

/// Top-level response keys the codec writes itself. `stop_reason` is not among them: a `null`
/// one (as in a stream's `message_start`) is kept with the native fields.
const RESPONSE_KEYS: &[&str] = &["id", "type", "role", "model", "content", "usage"];

/// Document media types and the Converse format names they correspond to.
const DOCUMENT_FORMATS: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    ("text/plain", "txt"),
    ("text/csv", "csv"),
    ("text/html", "html"),
    ("text/markdown", "md"),
    ("application/msword", "doc"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ("application/vnd.ms-excel", "xls"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
];
