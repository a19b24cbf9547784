//! Messages and the blocks they are made of.

use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::Value;

use crate::tagged::{self, Tagged};

use crate::{Dialect, JsonMap, ToolUseId, Unmapped};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The user (and tool results, which travel in user messages).
    User,
    /// The model.
    Assistant,
    /// An in-conversation system message (Converse only; carries tool additions and removals).
    System,
}

impl Role {
    /// The wire name, which both dialects share.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its blocks, in wire order.
    pub content: Vec<ContentBlock>,
    /// Message-level keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
    /// The Anthropic body gave `content` as one string, not a list of blocks: an Anthropic
    /// body written from this message does the same while its content is one plain text
    /// block. (Converse has no such form: its body always lists blocks.)
    #[serde(default, skip_serializing_if = "is_false")]
    pub string_content: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Message {
    /// A message with the given blocks.
    pub fn new(role: Role, content: Vec<ContentBlock>) -> Message {
        Message { role, content, unmapped: Unmapped::default(), string_content: false }
    }

    /// A user message holding one text block.
    pub fn user_text(text: impl Into<String>) -> Message {
        Message::new(Role::User, vec![ContentBlock::text(text)])
    }

    /// An assistant message holding one text block.
    pub fn assistant_text(text: impl Into<String>) -> Message {
        Message::new(Role::Assistant, vec![ContentBlock::text(text)])
    }

    /// Its text blocks, joined (thinking, tool calls and other blocks left out).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One block of message content: a member of Bedrock Converse's `ContentBlock` union.
///
/// Converse's `reasoningContent` member is split in two variants, [`ContentBlock::Thinking`]
/// (`reasoningText`) and [`ContentBlock::RedactedThinking`] (`redactedContent`), which is also
/// how the Anthropic dialect names them. Anthropic's `cache_control` on a block is a
/// [`ContentBlock::CachePoint`] right after that block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Visible text.
    Text(TextBlock),
    /// An image (user messages and tool results).
    Image(ImageBlock),
    /// A document (user messages and tool results).
    Document(DocumentBlock),
    /// A video.
    Video(MediaBlock),
    /// An audio clip.
    Audio(MediaBlock),
    /// A tool call made by the model.
    ToolUse(ToolUse),
    /// The answer to a tool call.
    ToolResult(ToolResult),
    /// Content for a guardrail to evaluate (Converse `guardContent`, kept as sent).
    GuardContent(RawMember),
    /// A prompt-cache checkpoint after the preceding block.
    CachePoint(CachePoint),
    /// Signed reasoning (Converse `reasoningContent.reasoningText`, Anthropic `thinking`).
    Thinking(ThinkingBlock),
    /// Encrypted reasoning (Converse `reasoningContent.redactedContent`, Anthropic
    /// `redacted_thinking`).
    RedactedThinking(RedactedThinking),
    /// Text with citations (Converse `citationsContent`, kept as sent).
    CitationsContent(RawMember),
    /// A search result (Converse `searchResult`, kept as sent).
    SearchResult(RawMember),
    /// A mid-conversation tool addition (Converse `toolAddition`, kept as sent).
    ToolAddition(RawMember),
    /// A mid-conversation tool removal (Converse `toolRemoval`, kept as sent).
    ToolRemoval(RawMember),
    /// A block kind this version does not know, kept as raw JSON.
    Unknown(UnknownBlock),
}

impl<'de> Deserialize<'de> for ContentBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ContentBlock, D::Error> {
        tagged::deserialize(deserializer)
    }
}

impl Tagged for ContentBlock {
    const TAG: &'static str = "type";
    const VARIANTS: &'static [&'static str] = &[
        "text",
        "image",
        "document",
        "video",
        "audio",
        "tool_use",
        "tool_result",
        "guard_content",
        "cache_point",
        "thinking",
        "redacted_thinking",
        "citations_content",
        "search_result",
        "tool_addition",
        "tool_removal",
        "unknown",
    ];
    const EXPECTING: &'static str = "a content block";

    fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error> {
        Ok(match tag {
            "text" => ContentBlock::Text(TextBlock::deserialize(rest)?),
            "image" => ContentBlock::Image(ImageBlock::deserialize(rest)?),
            "document" => ContentBlock::Document(DocumentBlock::deserialize(rest)?),
            "video" => ContentBlock::Video(MediaBlock::deserialize(rest)?),
            "audio" => ContentBlock::Audio(MediaBlock::deserialize(rest)?),
            "tool_use" => ContentBlock::ToolUse(ToolUse::deserialize(rest)?),
            "tool_result" => ContentBlock::ToolResult(ToolResult::deserialize(rest)?),
            "guard_content" => ContentBlock::GuardContent(RawMember::deserialize(rest)?),
            "cache_point" => ContentBlock::CachePoint(CachePoint::deserialize(rest)?),
            "thinking" => ContentBlock::Thinking(ThinkingBlock::deserialize(rest)?),
            "redacted_thinking" => {
                ContentBlock::RedactedThinking(RedactedThinking::deserialize(rest)?)
            }
            "citations_content" => ContentBlock::CitationsContent(RawMember::deserialize(rest)?),
            "search_result" => ContentBlock::SearchResult(RawMember::deserialize(rest)?),
            "tool_addition" => ContentBlock::ToolAddition(RawMember::deserialize(rest)?),
            "tool_removal" => ContentBlock::ToolRemoval(RawMember::deserialize(rest)?),
            "unknown" => ContentBlock::Unknown(UnknownBlock::deserialize(rest)?),
            other => return Err(de::Error::unknown_variant(other, Self::VARIANTS)),
        })
    }
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> ContentBlock {
        ContentBlock::Text(TextBlock::new(text))
    }

    /// A cache point with the default time to live.
    pub fn cache_point() -> ContentBlock {
        ContentBlock::CachePoint(CachePoint::default())
    }

    /// The name of the variant's Converse union member (or `unknown`), for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ContentBlock::Text(_) => "text",
            ContentBlock::Image(_) => "image",
            ContentBlock::Document(_) => "document",
            ContentBlock::Video(_) => "video",
            ContentBlock::Audio(_) => "audio",
            ContentBlock::ToolUse(_) => "toolUse",
            ContentBlock::ToolResult(_) => "toolResult",
            ContentBlock::GuardContent(_) => "guardContent",
            ContentBlock::CachePoint(_) => "cachePoint",
            ContentBlock::Thinking(_) => "reasoningContent.reasoningText",
            ContentBlock::RedactedThinking(_) => "reasoningContent.redactedContent",
            ContentBlock::CitationsContent(_) => "citationsContent",
            ContentBlock::SearchResult(_) => "searchResult",
            ContentBlock::ToolAddition(_) => "toolAddition",
            ContentBlock::ToolRemoval(_) => "toolRemoval",
            ContentBlock::Unknown(_) => "unknown",
        }
    }
}

/// Visible text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextBlock {
    /// The text, exactly as written (never trimmed).
    pub text: String,
    /// Keys of the block this version does not interpret (Anthropic `citations`, say).
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

impl TextBlock {
    /// A text block.
    pub fn new(text: impl Into<String>) -> TextBlock {
        TextBlock { text: text.into(), unmapped: Unmapped::default() }
    }
}

/// Where the bytes of an image, video or audio block come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    /// Inline bytes as the base64 text that travelled on the wire (never re-encoded).
    Bytes(String),
    /// An object in S3.
    S3(S3Location),
    /// A URL (Anthropic only).
    Url(String),
}

/// An object in Amazon S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Location {
    /// `s3://bucket/key`.
    pub uri: String,
    /// The account that owns the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_owner: Option<String>,
}

/// An image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    /// The short format name: `png`, `jpeg`, `gif`, `webp` (absent for an Anthropic URL
    /// source, which names none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The image data.
    pub source: MediaSource,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// A video or audio clip (Converse only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaBlock {
    /// The format name, as Converse spells it (`mp4`, `mp3`, ...).
    pub format: String,
    /// The data.
    pub source: MediaSource,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// Where the content of a document comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentSource {
    /// Inline bytes as base64 text (never re-encoded).
    Bytes(String),
    /// An object in S3.
    S3(S3Location),
    /// Plain text.
    Text(String),
    /// A list of text chunks.
    Content(Vec<String>),
    /// A URL (Anthropic only).
    Url(String),
}

/// A document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentBlock {
    /// Converse `name`, Anthropic `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The short format name (`pdf`, `txt`, `csv`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The content.
    pub source: DocumentSource,
    /// Context about the document for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Whether citations are enabled for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<bool>,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    /// The id its result must carry.
    pub id: ToolUseId,
    /// The tool's name.
    pub name: String,
    /// The arguments, exactly as the model produced them (key order kept).
    pub input: Value,
    /// An explicit tool-use type when the wire carried one: Converse's `type` (`tool_use`,
    /// `server_tool_use`), or `server_tool_use` for Anthropic's `server_tool_use` blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// The outcome a tool result reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolResultStatus {
    /// The tool ran (Converse `success`, Anthropic `is_error: false`).
    Success,
    /// The tool failed (Converse `error`, Anthropic `is_error: true`).
    Error,
}

/// The answer to a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the tool use it answers.
    pub tool_use_id: ToolUseId,
    /// What the tool returned. `None` only when an Anthropic body left `content` out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ToolResultContent>,
    /// Success or error, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ToolResultStatus>,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// The content of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolResultContent {
    /// A list of blocks (the only form Converse has).
    Blocks(Vec<ToolResultBlock>),
    /// Anthropic's shorthand: one string.
    Text(String),
}

/// One block of tool result content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolResultBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A JSON value (Converse only).
    Json {
        /// The value, key order kept.
        json: Value,
    },
    /// An image.
    Image(ImageBlock),
    /// A document.
    Document(DocumentBlock),
    /// A video (Converse only).
    Video(MediaBlock),
    /// A search result (Converse `searchResult`, kept as sent).
    SearchResult(RawMember),
    /// A block kind this version does not know, kept as raw JSON.
    Unknown(UnknownBlock),
}

impl<'de> Deserialize<'de> for ToolResultBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ToolResultBlock, D::Error> {
        tagged::deserialize(deserializer)
    }
}

impl Tagged for ToolResultBlock {
    const TAG: &'static str = "type";
    const VARIANTS: &'static [&'static str] =
        &["text", "json", "image", "document", "video", "search_result", "unknown"];
    const EXPECTING: &'static str = "a tool result block";

    fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Text {
            text: String,
        }
        #[derive(Deserialize)]
        struct Json {
            json: Value,
        }
        Ok(match tag {
            "text" => ToolResultBlock::Text { text: Text::deserialize(rest)?.text },
            "json" => ToolResultBlock::Json { json: Json::deserialize(rest)?.json },
            "image" => ToolResultBlock::Image(ImageBlock::deserialize(rest)?),
            "document" => ToolResultBlock::Document(DocumentBlock::deserialize(rest)?),
            "video" => ToolResultBlock::Video(MediaBlock::deserialize(rest)?),
            "search_result" => ToolResultBlock::SearchResult(RawMember::deserialize(rest)?),
            "unknown" => ToolResultBlock::Unknown(UnknownBlock::deserialize(rest)?),
            other => return Err(de::Error::unknown_variant(other, Self::VARIANTS)),
        })
    }
}

/// A prompt-cache checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachePoint {
    /// Time to live (`5m` or `1h`) when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// Signed reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingBlock {
    /// The reasoning text, byte for byte as the model produced it (may be empty).
    pub text: String,
    /// The opaque signature that lets the model verify the block. `None` when the wire carried
    /// none (a stream that broke before the signature, for instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// Which wire form the data of a redacted thinking block is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactedForm {
    /// Converse `redactedContent`: a blob, i.e. base64 of Anthropic's `data` text.
    ConverseBlob,
    /// Anthropic `redacted_thinking.data`.
    AnthropicData,
}

/// Encrypted reasoning, kept exactly in the form it arrived in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedactedThinking {
    /// The data string as it arrived, never re-encoded.
    pub data: String,
    /// Which wire form `data` is in. Converting to the other form happens only when the block
    /// is sent on the other dialect.
    pub form: RedactedForm,
    /// Keys this version does not interpret.
    #[serde(default, skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped,
}

/// A Converse union member this version carries without interpreting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawMember {
    /// The member's JSON object, exactly as sent.
    pub json: JsonMap,
}

/// A block of a kind this version does not know, kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownBlock {
    /// The dialect the block was written in; only that dialect can send it back.
    pub dialect: Dialect,
    /// The whole block, exactly as received.
    pub json: Value,
}
