//! Message content: one pass over the messages and their blocks (role, keys, emptiness, text,
//! images, documents, other media), which hands thinking, tool and cache point blocks to the
//! block checks of their families in the block's place, then the media count of the request.
//!
//! Emits [`Rule::Role`] (`roles.unknown`, a system message), [`Rule::UnknownKey`]
//! (`shape.unknown_key`, message and block keys), [`Rule::EmptyMessage`] (`message.empty`),
//! [`Rule::BlankText`] (`text.blank`), [`Rule::BlockRole`] (`content.role`), [`Rule::Image`]
//! (`content.image`), [`Rule::Document`] (`content.document`), [`Rule::Base64`]
//! (`content.base64`), [`Rule::Media`] (`content.media`, also for video inside a tool result),
//! [`Rule::MediaSource`] (`content.s3`), [`Rule::Unrepresentable`] (`shape.unrepresentable`,
//! a server `compaction` block on Converse) and [`Rule::MediaCount`] (`content.count`). Through the block checks of [`super::thinking`], [`super::tools`] and
//! [`super::cache`] it also emits `thinking.unsigned`, `thinking.foreign_model`,
//! `tool.use_id_invalid`, `tool.name_invalid`, `tool.input_not_object`,
//! `tool.use_id_duplicate`, `tool_result.status`, `tool_result.content`, `cache.placement`
//! and `cache.ttl`.

use std::collections::{HashMap, HashSet};

use verbatim_model::{
    Api, ContentBlock, DocumentBlock, DocumentSource, ImageBlock, MediaSource, Message, Role,
    TextBlock, ToolResult, ToolResultBlock, ToolResultContent,
};

use super::{CheckPass, cache, thinking, tools};
use crate::JsonPath;
use crate::assemble::Severity;
use crate::assemble::action::{Action, is_thinking};
use crate::assemble::wire::{self, Field};
use crate::rules::Rule;

/// Largest image, counted on its base64 text as the service does.
const MAX_IMAGE_BASE64: usize = 5_242_880;
/// Largest document: 4.5 MB raw, as base64 text.
const MAX_DOCUMENT_BASE64: usize = 6_291_456;
const MAX_IMAGES: usize = 20;
const MAX_DOCUMENTS: usize = 5;
const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];
const DOCUMENT_FORMATS: &[&str] =
    &["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"];

/// What the pass carries from block to block, in sets so that each block is checked once.
#[derive(Default)]
struct Seen<'a> {
    /// Each tool use id and the block that first used it.
    tool_use_ids: HashMap<&'a str, (usize, usize)>,
    images: usize,
    documents: usize,
    document_names: HashSet<&'a str>,
}

/// What a block's checks need to know about its message.
struct InMessage {
    role: Role,
    /// The message has a text block that is not blank (documents need one).
    has_text: bool,
    /// The index of the message's first thinking block.
    first_thinking: Option<usize>,
}

/// Each message and each of its blocks, in order, then the media count.
pub(super) fn messages(out: &mut CheckPass<'_>) {
    let state = out.state;
    let request = &state.request;
    let mut seen = Seen::default();
    for (i, message) in request.messages.iter().enumerate() {
        if !message_checks(out, i, message) {
            continue;
        }
        let has_text = message
            .content
            .iter()
            .any(|b| matches!(b, ContentBlock::Text(t) if !t.text.trim().is_empty()));
        let first_thinking = thinking::first_thinking(message);
        let context = InMessage { role: message.role, has_text, first_thinking };
        for (j, block) in message.content.iter().enumerate() {
            block_checks(out, &mut seen, &context, message, i, j, block);
        }
    }
    let Seen { images, documents, .. } = seen;
    if images > MAX_IMAGES || documents > MAX_DOCUMENTS {
        let what = format!(
            "{images} images and {documents} documents; at most {MAX_IMAGES} images and {MAX_DOCUMENTS} documents"
        );
        let detail = format!("{images} + {documents} > {MAX_IMAGES}");
        out.error(Rule::MediaCount, JsonPath::root().key("messages"), what, &detail);
    }
}

/// The checks of message `i` itself; false when it has no blocks to check.
fn message_checks(out: &mut CheckPass<'_>, i: usize, message: &Message) -> bool {
    let mpath = wire::message(i);
    if message.role == Role::System {
        let what =
            "a system message inside messages; put instructions in the top-level system field";
        out.error(Rule::Role, mpath.clone().key("role"), what, "unknown role `system`");
    }
    if !message.unmapped.is_empty() {
        let keys = unmapped_keys(&message.unmapped);
        let what = format!("message keys the API does not define: {keys}");
        out.fix(
            Rule::UnknownKey,
            mpath.clone(),
            what,
            &keys,
            Action::DropMessageUnmapped { message: i },
        );
    }
    if message.content.is_empty() {
        out.fix(
            Rule::EmptyMessage,
            mpath,
            "a message with no content",
            "",
            Action::DropMessage { message: i },
        );
        return false;
    }
    true
}

/// The checks of block `j` of message `i`, in the order its findings are reported.
fn block_checks<'a>(
    out: &mut CheckPass<'a>,
    seen: &mut Seen<'a>,
    context: &InMessage,
    message: &Message,
    i: usize,
    j: usize,
    block: &'a ContentBlock,
) {
    let role = context.role;
    if let Some(keys) = block_unmapped(block) {
        let what = format!("block keys the API does not define: {keys}");
        let proposal = (!is_thinking(block)).then(|| {
            let mut clean = block.clone();
            clear_unmapped(&mut clean);
            Action::ReplaceBlock {
                message: i,
                block: j,
                kind: block.kind_name().to_owned(),
                content: clean,
            }
        });
        out.push(Rule::UnknownKey, Severity::Error, out.block(i, j), what, &keys, proposal);
    }
    match block {
        ContentBlock::Text(text) => blank_text(out, role, i, j, text),
        ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_)
            if role != Role::Assistant =>
        {
            let detail = "User messages cannot contain reasoning content. Please remove the reasoning content and try again.";
            let drop = drop_block(i, j, block);
            out.fix(Rule::BlockRole, out.block(i, j), "reasoning in a user message", detail, drop);
        }
        ContentBlock::Thinking(block) => {
            thinking::thinking_block(out, i, j, block, context.first_thinking);
        }
        ContentBlock::RedactedThinking(block) => {
            thinking::redacted_block(out, i, j, block, context.first_thinking);
        }
        ContentBlock::Image(image) => {
            seen.images += 1;
            if role != Role::User {
                out.error(
                    Rule::BlockRole,
                    out.block(i, j),
                    "an image in an assistant message",
                    "You can only include images and documents if the role is user.",
                );
            }
            text_only(out, i, j, "image");
            image_checks(out, i, j, image);
        }
        ContentBlock::Document(doc) => {
            seen.documents += 1;
            if role != Role::User {
                out.error(
                    Rule::BlockRole,
                    out.block(i, j),
                    "a document in an assistant message",
                    "You can only include images and documents if the role is user.",
                );
            }
            text_only(out, i, j, "document");
            document_checks(out, seen, context.has_text, i, j, doc);
        }
        ContentBlock::Video(media) | ContentBlock::Audio(media) => {
            let caps = out.context.caps;
            let (kind, ok) = match block {
                ContentBlock::Video(_) => ("video", caps.video),
                _ => ("audio", caps.audio),
            };
            if caps.text_only {
                text_only(out, i, j, kind);
            } else if !ok {
                out.not_granted(Rule::Media, out.block(i, j), kind, &unsupported_block(kind), None);
            }
            if matches!(block, ContentBlock::Video(_)) {
                s3_source(out, &media.source, out.block(i, j), "a video");
            }
        }
        ContentBlock::ToolUse(tool_use) => {
            if role != Role::Assistant {
                out.error(
                    Rule::BlockRole,
                    out.block(i, j),
                    "tool use in a user message",
                    "toolUse blocks are only allowed in assistant messages",
                );
            }
            tools::tool_use(out, &mut seen.tool_use_ids, i, j, tool_use);
        }
        ContentBlock::ToolResult(result) => {
            // In an assistant message a tool result is the server's answer to a server tool
            // use of the same message (Nova's built-in tools; recorded 200).
            let server_result = role == Role::Assistant
                && super::answered_in_message(message).contains(result.tool_use_id.as_str());
            if role != Role::User && !server_result {
                out.error(
                    Rule::BlockRole,
                    out.block(i, j),
                    "a tool result in an assistant message",
                    "toolResult blocks are only allowed in user messages",
                );
            }
            tools::tool_result(out, i, j, result);
            tool_result_media(out, i, j, result);
        }
        ContentBlock::CachePoint(point) => cache::cache_point(out, message, i, j, point),
        ContentBlock::Unknown(_) if block.is_compaction() && out.api() == Api::Converse => {
            // A server compaction block exists on InvokeModel and the Messages API only:
            // Converse's content union has no member for it, so the request cannot be
            // written (and must not be written without it: the summary replaces the turns
            // before it).
            let what = "a `compaction` block (server compaction) cannot be sent on Converse, whose content union has no such member; continue the session on InvokeModel or the Messages API";
            let detail = "server compaction exists only on InvokeModel and the Messages API";
            out.error(Rule::Unrepresentable, out.block(i, j), what, detail);
        }
        _ => {}
    }
}

fn drop_block(i: usize, j: usize, block: &ContentBlock) -> Action {
    Action::DropBlock { message: i, block: j, kind: block.kind_name().to_owned() }
}

/// An empty text block, or a whitespace-only one.
fn blank_text(out: &mut CheckPass<'_>, role: Role, i: usize, j: usize, text: &TextBlock) {
    if text.text.is_empty() || (text.text.trim().is_empty() && role == Role::Assistant) {
        let what = if text.text.is_empty() {
            "an empty text block"
        } else {
            "a whitespace-only text block in an assistant message"
        };
        let drop = Action::DropBlock { message: i, block: j, kind: "text".to_owned() };
        out.fix(Rule::BlankText, out.block(i, j), what, "", drop);
    } else if text.text.trim().is_empty() {
        // Recorded traffic shows Bedrock accepting "\n" in a user message; reports
        // show it rejecting whitespace-only assistant text.
        let what = "a whitespace-only text block in a user message (accepted in recorded traffic, rejected in some reports)";
        out.push(Rule::BlankText, Severity::Warning, out.block(i, j), what, "", None);
    }
}

fn image_checks(out: &mut CheckPass<'_>, i: usize, j: usize, image: &ImageBlock) {
    if let Some(format) = &image.format
        && !IMAGE_FORMATS.contains(&format.as_str())
    {
        let what = format!("image format `{format}`; use png, jpeg, gif or webp");
        out.error(Rule::Image, out.field(i, j, Field::ImageFormat), what.clone(), &what);
    }
    if let MediaSource::Bytes(data) = &image.source {
        base64(out, data, out.field(i, j, Field::ImageBytes), "image bytes");
    }
    s3_source(out, &image.source, out.field(i, j, Field::ImageSource), "an image");
    if let MediaSource::Bytes(data) = &image.source
        && data.len() > MAX_IMAGE_BASE64
    {
        let what = format!("image of {} base64 bytes", data.len());
        let detail = format!(
            "The model returned the following errors: {}: image exceeds 5 MB maximum: {} bytes > {MAX_IMAGE_BASE64} bytes",
            out.field(i, j, Field::ImageSource).dotted(),
            data.len()
        );
        out.error(Rule::Image, out.field(i, j, Field::ImageSource), what, &detail);
    }
}

fn document_checks<'a>(
    out: &mut CheckPass<'_>,
    seen: &mut Seen<'a>,
    has_text: bool,
    i: usize,
    j: usize,
    doc: &'a DocumentBlock,
) {
    if !has_text {
        out.error(
            Rule::Document,
            out.block(i, j),
            "a document needs a text block in the same message",
            "A text block must be included when using documents.",
        );
    }
    if let Some(name) = &doc.name {
        if !valid_document_name(name) {
            let what = format!(
                "document name `{name}` (a dot, slash or other character outside letters, digits, single spaces, hyphens, underscores, parentheses and brackets)"
            );
            let detail = "The document file name can only contain alphanumeric characters, whitespace characters, hyphens, parentheses, and square brackets. The name can't contain more than one consecutive whitespace character. Check that the file name conforms to these restrictions and retry your request.";
            out.error(Rule::Document, out.field(i, j, Field::DocumentName), what, detail);
        } else if !seen.document_names.insert(name) {
            let what = format!("document name `{name}` is used twice");
            out.error(Rule::Document, out.field(i, j, Field::DocumentName), what, "Messages can't contain duplicate document names. Rename the document and retry your request.");
        }
    }
    match &doc.format {
        Some(format) if !DOCUMENT_FORMATS.contains(&format.as_str()) => {
            let what =
                format!("document format `{format}`; use one of {}", DOCUMENT_FORMATS.join(", "));
            out.error(Rule::Document, out.field(i, j, Field::DocumentFormat), what.clone(), &what);
        }
        None if out.api() == Api::Converse => {
            let what = "a document without a format (older service versions require it)";
            out.push(
                Rule::Document,
                Severity::Warning,
                out.field(i, j, Field::DocumentFormat),
                what,
                "format is required",
                None,
            );
        }
        _ => {}
    }
    if let DocumentSource::Bytes(data) = &doc.source {
        base64(out, data, out.field(i, j, Field::DocumentBytes), "document bytes");
    }
    // Claude on Converse cannot read a document from S3: the source reaches the model without
    // the type it needs (recorded 400: fixtures/real `errors_recorded_bodies.json`, pydantic-ai
    // `tool_return_content-uploaded_file-document-bedrock_claude`, Sonnet 4.5).
    if out.api() == Api::Converse
        && matches!(doc.source, DocumentSource::S3(_))
        && !out.context.caps.s3_media
    {
        let at = out.block(i, j);
        let detail = format!(
            "The model returned the following errors: {}.document.source.type: Field required",
            at.dotted()
        );
        let path = at.key("document").key("source");
        out.not_granted(Rule::MediaSource, path, "a document from s3Location", &detail, None);
    }
    if let DocumentSource::Bytes(data) = &doc.source
        && data.len() > MAX_DOCUMENT_BASE64
    {
        let what = format!("document of {} base64 bytes; the limit is 4.5 MB", data.len());
        out.error(Rule::Document, out.block(i, j), what.clone(), &what);
    }
}

/// Bedrock's text for a media block the model does not take (recorded for video on Claude:
/// fixtures/real `errors_recorded_bodies.json`, `direct-binary-video-bedrock_claude`).
/// A block other than text sent to a model that takes text only: an error, on the AWS model
/// page's word (gpt-oss: "These OpenAI models support only text input and text output";
/// DeepSeek R1: "Text model"). The text Bedrock answers is not recorded for these models; the
/// one it gives Claude for video is quoted.
fn text_only(out: &mut CheckPass<'_>, i: usize, j: usize, kind: &str) {
    let caps = out.context.caps;
    if caps.text_only {
        let what = format!("{} takes text only, not {kind} blocks", caps.family);
        out.error(Rule::Media, out.block(i, j), what, &unsupported_block(kind));
    }
}

fn unsupported_block(kind: &str) -> String {
    format!(
        "This model doesn't support the {kind} content block that you provided. Update the content block and try again."
    )
}

/// An image or video named by `s3Location` on Converse, for a model that refuses it.
fn s3_source(out: &mut CheckPass<'_>, source: &MediaSource, path: JsonPath, what: &str) {
    if out.api() != Api::Converse || !matches!(source, MediaSource::S3(_)) {
        return;
    }
    if !out.context.caps.s3_media {
        let subject = format!("{what} from s3Location");
        let detail = "This model doesn't support the s3Uri field. Remove s3Uri and try again.";
        out.not_granted(Rule::MediaSource, path, &subject, detail, None);
    }
}

/// The media inside a tool result's content: an image or video from S3, and video where the
/// model does not take it there.
fn tool_result_media(out: &mut CheckPass<'_>, i: usize, j: usize, result: &ToolResult) {
    let Some(ToolResultContent::Blocks(items)) = &result.content else { return };
    for (k, item) in items.iter().enumerate() {
        let path = out.field(i, j, Field::ToolResultContent(k));
        match item {
            ToolResultBlock::Image(image) => s3_source(out, &image.source, path, "an image"),
            ToolResultBlock::Video(video) => {
                let caps = out.context.caps;
                if !caps.video || !caps.video_in_tool_result {
                    let what = "video inside a tool result";
                    // Claude answers with its video text; Nova's schema refuses the whole
                    // toolResult key (the Converse message and block indexes are the wire's).
                    let detail = if caps.video {
                        format!(
                            "The model returned the following errors: Malformed input request: #/messages/{i}/content/{j}: extraneous key [toolResult] is not permitted, please reformat your input and try again."
                        )
                    } else {
                        unsupported_block("video")
                    };
                    out.not_granted(Rule::Media, path.clone(), what, &detail, None);
                }
                s3_source(out, &video.source, path, "a video");
            }
            _ => {}
        }
    }
}

/// A warning when inline bytes are not standard base64 (see the rule: Bedrock's answer to
/// them is not recorded).
pub(super) fn base64(out: &mut CheckPass<'_>, data: &str, path: JsonPath, what: &str) {
    if is_base64(data) {
        return;
    }
    let shown: String = data.chars().take(16).flat_map(char::escape_debug).collect();
    let what = format!(
        "{what} are not standard base64 (A-Z, a-z, 0-9, + and /, padded with = to a multiple of 4 characters; starting `{shown}`)"
    );
    out.push(Rule::Base64, Severity::Warning, path, what, "", None);
}

/// Whether `text` is standard base64 (RFC 4648 alphabet, padded), as a blob member takes it.
fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return false;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    padding <= 2
        && bytes[..bytes.len() - padding]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn valid_document_name(name: &str) -> bool {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '(' | ')' | '[' | ']');
    (1..=200).contains(&name.chars().count())
        && name.chars().all(|c| allowed(c) || c == ' ')
        && !name.contains("  ")
        && name.chars().any(allowed)
}

fn unmapped_keys(unmapped: &verbatim_model::Unmapped) -> String {
    let keys: Vec<&str> =
        unmapped.converse.keys().chain(unmapped.anthropic.keys()).map(String::as_str).collect();
    keys.join(", ")
}

fn block_unmapped(block: &ContentBlock) -> Option<String> {
    let unmapped = match block {
        ContentBlock::Text(b) => &b.unmapped,
        ContentBlock::Image(b) => &b.unmapped,
        ContentBlock::Document(b) => &b.unmapped,
        ContentBlock::Video(b) | ContentBlock::Audio(b) => &b.unmapped,
        ContentBlock::ToolUse(b) => &b.unmapped,
        ContentBlock::ToolResult(b) => {
            // Converse's toolResult has a `type` (`nova_code_interpreter_result` for the result
            // of a Nova built-in tool, service model and recorded 200); it is kept among the
            // unmapped keys and is not an unknown key.
            let mut rest = b.unmapped.clone();
            if super::tool_result_kind(b).is_some() {
                rest.converse.shift_remove("type");
            }
            return (!rest.is_empty()).then(|| unmapped_keys(&rest));
        }
        ContentBlock::Thinking(b) => &b.unmapped,
        ContentBlock::RedactedThinking(b) => &b.unmapped,
        _ => return None,
    };
    (!unmapped.is_empty()).then(|| unmapped_keys(unmapped))
}

fn clear_unmapped(block: &mut ContentBlock) {
    let unmapped = match block {
        ContentBlock::Text(b) => &mut b.unmapped,
        ContentBlock::Image(b) => &mut b.unmapped,
        ContentBlock::Document(b) => &mut b.unmapped,
        ContentBlock::Video(b) | ContentBlock::Audio(b) => &mut b.unmapped,
        ContentBlock::ToolUse(b) => &mut b.unmapped,
        ContentBlock::ToolResult(b) => {
            let kind = b.unmapped.converse.get("type").filter(|t| t.is_string()).cloned();
            b.unmapped = Default::default();
            if let Some(kind) = kind {
                b.unmapped.converse.insert("type".to_owned(), kind);
            }
            return;
        }
        _ => return,
    };
    *unmapped = Default::default();
}
