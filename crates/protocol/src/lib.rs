//! Bedrock's request rules over the pure wire logic of Bedrock Runtime.
//!
//! - [`rules`] holds every rule as data ([`explain`] reads an error message back to its
//!   causes), [`capability`] the per-model-family table the rules
//!   read, and [`assemble`] the assembler, validator and repairer that apply them to a
//!   history, a request or a raw body.
//! - The wire itself is `verbatim-wire`'s, re-exported here at the paths it has always had:
//!   [`converse`] and [`anthropic`] (the lossless codecs), [`eventstream`], [`sse`] and
//!   [`stream`] (streamed replies), [`messages_api`] (the Messages API envelope),
//!   [`json_input`], [`model_id`], and the errors and paths
//!   ([`DecodeError`], [`EncodeError`], [`JsonPath`]).
//!
//! Every diagnostic names the JSON path of the offending place (`messages[3].content[0]`).
//! Repair never edits a thinking block; a repaired request passes strict validation.
//!
//! This crate does no I/O: bytes and values in, values out. It reads no clock, environment or
//! randomness, and knows nothing of HTTP, storage or the engine.

pub mod assemble;
pub mod cache_diff;
pub mod capability;
pub mod explain;
pub mod pricing;
pub mod rules;

pub use verbatim_wire::{
    DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind, JsonPath, Segment, anthropic,
    converse, count_tokens, eventstream, json_input, messages_api, model_id, sse, stream,
};

#[cfg(test)]
mod tests;
