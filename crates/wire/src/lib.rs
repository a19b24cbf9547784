//! Pure wire logic for Bedrock Runtime: the Converse and Anthropic Messages codecs and the
//! decoders of streamed replies.
//!
//! - [`converse`] moves Converse JSON (request bodies, responses, message arrays) to and from
//!   the [`verbatim_model`] types.
//! - [`anthropic`] does the same for Anthropic Messages JSON as InvokeModel carries it, and
//!   [`messages_api`] for the Messages API's own envelope (`/anthropic/v1/messages`: the model
//!   in the body, the version and the betas in headers).
//! - [`eventstream`] decodes the binary frames of streaming responses, [`sse`] the server-sent
//!   events of the Messages API, and [`stream`] folds the events they carry into the response
//!   a non-streamed call returns.
//! - [`count_tokens`] writes the bodies of Bedrock's token-count routes and reads their count.
//! - [`json_input`] and [`json`] read JSON text as it enters and name what is wrong with it;
//!   [`model_id`] turns a model id into its URL path segment and base model.
//!
//! Both codecs are lossless within their dialect: decoding then encoding gives an equal JSON
//! value, with thinking text, signatures, redacted data and tool inputs unchanged (same string
//! bytes, same key order). Across dialects, what the target cannot express is an
//! [`EncodeError`], never a silent drop. Decoding errors name the JSON path of the offending
//! place ([`JsonPath`], e.g. `messages[3].content[0]`).
//!
//! This crate knows nothing of Bedrock's request rules (which requests a model accepts): those
//! are `verbatim-protocol`'s, built on top of it. It does no I/O: bytes and values in, values
//! out. It reads no clock, environment or randomness, and knows nothing of HTTP, storage or
//! the engine.

pub mod anthropic;
pub mod converse;
pub mod count_tokens;
mod encode;
mod error;
pub mod eventstream;
pub mod json;
pub mod json_input;
pub mod messages_api;
pub mod model_id;
mod path;
pub mod sse;
pub mod stream;
mod thinking;

pub use error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
pub use path::{JsonPath, Segment};

#[cfg(test)]
mod tests;
