//! Converse JSON (the body of `Converse` / `ConverseStream` requests, `Converse` responses,
//! and message arrays) to and from the model.
//!
//! Decoding keeps everything: keys the model has no field for are kept in
//! [`Unmapped`](verbatim_model::Unmapped), content blocks of kinds this version does not know
//! become [`UnknownBlock`](verbatim_model::UnknownBlock)s. Encoding what was decoded gives an
//! equal JSON value. Tagged unions (content blocks, sources, tool choice, ...) must hold
//! exactly one member; anything else is a [`DecodeError`](crate::DecodeError) naming the
//! members found and those allowed.

mod decode;
mod encode;

pub use decode::{
    decode_message_value, decode_messages, decode_messages_value, decode_request,
    decode_request_value, decode_response, decode_response_value,
};
pub use encode::{
    encode_message, encode_messages, encode_request, encode_response, request_to_vec,
};

/// Members of Converse's `ContentBlock` union.
pub const CONTENT_BLOCK_MEMBERS: &[&str] = &[
    "text",
    "image",
    "document",
    "video",
    "audio",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
    "citationsContent",
    "searchResult",
    "toolAddition",
    "toolRemoval",
];

/// Members of Converse's `ToolResultContentBlock` union.
pub const TOOL_RESULT_BLOCK_MEMBERS: &[&str] =
    &["json", "text", "image", "document", "video", "searchResult"];

/// Members of Converse's `SystemContentBlock` union.
pub const SYSTEM_BLOCK_MEMBERS: &[&str] = &["text", "guardContent", "cachePoint"];

/// Members of Converse's `Tool` union.
pub const TOOL_MEMBERS: &[&str] = &["toolSpec", "systemTool", "cachePoint"];

/// Roles a Converse message may have.
pub const ROLES: &[&str] = &["user", "assistant", "system"];

const REASONING_MEMBERS: &[&str] = &["reasoningText", "redactedContent"];
const MEDIA_SOURCE_MEMBERS: &[&str] = &["bytes", "s3Location"];
const DOCUMENT_SOURCE_MEMBERS: &[&str] = &["bytes", "s3Location", "text", "content"];
const TOOL_CHOICE_MEMBERS: &[&str] = &["auto", "any", "tool"];
const OUTPUT_MEMBERS: &[&str] = &["message"];
