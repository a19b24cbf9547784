//! Anthropic Messages JSON to the model.

use serde_json::Value;
use verbatim_model::{
    CachePoint, ContentBlock, Dialect, DocumentBlock, DocumentSource, ImageBlock, InferenceConfig,
    JsonMap, MediaSource, Message, RedactedForm, RedactedThinking, Request, Response, Role,
    StopReason, SystemBlock, SystemPrompt, TextBlock, ThinkingBlock, Tool, ToolChoice,
    ToolChoiceKind, ToolResult, ToolResultBlock, ToolResultContent, ToolResultStatus, ToolSpec,
    ToolUse, UnknownBlock, Unmapped, Usage,
};

use super::{BEDROCK_ANTHROPIC_VERSION, DOCUMENT_FORMATS, ROLES, VERSION_KEY};
use crate::json::{self, Fields, Result};
use crate::path::At;
use crate::{DecodeErrorKind, thinking};

const ANTHROPIC: Dialect = Dialect::Anthropic;

/// Block types this version decodes; any other `type` is kept as an [`UnknownBlock`].
const KNOWN_BLOCKS: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "server_tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
];

/// Decodes an InvokeModel request body (Anthropic Messages).
pub fn decode_request(bytes: &[u8]) -> Result<Request> {
    decode_request_value(json::parse(bytes)?)
}

/// Decodes an InvokeModel request body already parsed as JSON.
pub fn decode_request_value(value: Value) -> Result<Request> {
    let at = At::ROOT;
    let mut f = Fields::of(value, &at)?;
    if f.contains("model") {
        let reason = "InvokeModel takes the model id from the URL";
        return Err(json::error(&at, DecodeErrorKind::Forbidden { field: "model", reason }));
    }
    if f.contains("stream") {
        let reason = "InvokeModel chooses streaming by endpoint";
        return Err(json::error(&at, DecodeErrorKind::Forbidden { field: "stream", reason }));
    }
    // Which versions a model takes is the capability table's to judge (rule
    // `invoke.version`), not the decoder's: a version other than the one the encoder writes
    // by default is kept as an unmapped key and written back unchanged.
    let version = f.required(VERSION_KEY, json::string)?;
    let kept_version = (version != BEDROCK_ANTHROPIC_VERSION).then_some(version);
    let beta = f.optional("anthropic_beta", json::strings)?;
    let mut request = decode_conversation(f)?;
    request.beta = beta;
    if let Some(version) = kept_version {
        request.unmapped =
            Unmapped::only(ANTHROPIC, JsonMap::from_iter([(VERSION_KEY.into(), version.into())]));
    }
    Ok(request)
}

/// Decodes what an Anthropic request body says of the conversation and its settings, once
/// the caller has taken the keys that frame it on its surface (the version, the betas, the
/// model, streaming); every key left over is a native model field.
pub(crate) fn decode_conversation(mut f: Fields<'_>) -> Result<Request> {
    let max_tokens = f.optional("max_tokens", json::uint32)?;
    let messages = f.required("messages", messages)?;
    let system = f.optional("system", system)?;
    let temperature = f.optional("temperature", json::number)?;
    let top_p = f.optional("top_p", json::number)?;
    let top_k = f.optional("top_k", json::uint32)?;
    let stop_sequences = f.optional("stop_sequences", json::strings)?;
    let tools = f.optional("tools", tools)?;
    let tool_choice = f.optional("tool_choice", tool_choice)?;
    let mut thinking = f.optional("thinking", thinking::decode)?;
    let mut rest = f.rest();
    thinking::take_effort(&mut thinking, &mut rest);
    let any_inference = max_tokens.is_some()
        || temperature.is_some()
        || top_p.is_some()
        || stop_sequences.is_some();
    let inference =
        any_inference.then_some(InferenceConfig { max_tokens, temperature, top_p, stop_sequences });
    Ok(Request {
        messages,
        system,
        tools,
        tool_choice,
        inference,
        top_k,
        thinking,
        beta: None,
        model_fields: (!rest.is_empty()).then_some(rest),
        unmapped: Unmapped::default(),
    })
}

/// Decodes an InvokeModel response body (an Anthropic `message`).
pub fn decode_response(bytes: &[u8]) -> Result<Response> {
    decode_response_value(json::parse(bytes)?)
}

/// Decodes an InvokeModel response body already parsed as JSON.
pub fn decode_response_value(value: Value) -> Result<Response> {
    let at = At::ROOT;
    let mut f = Fields::of(value, &at)?;
    let id = f.optional("id", json::string)?;
    let kind = f.required("type", json::string)?;
    if kind != "message" {
        let message = format!("response type `{kind}`; expected `message`");
        return Err(json::invalid(&at.key("type"), message));
    }
    let role = f.required("role", role)?;
    let model = f.optional("model", json::string)?;
    let content = f.required("content", content)?;
    let stop_reason =
        f.optional_non_null("stop_reason", |v, at| Ok(StopReason::parse(&json::string(v, at)?)))?;
    let usage = f.optional("usage", usage)?;
    let rest = f.rest();
    Ok(Response {
        id,
        model,
        message: Message::new(role, content),
        stop_reason,
        usage,
        metrics: None,
        model_fields: (!rest.is_empty()).then_some(rest),
        unmapped: Unmapped::default(),
        notes: Vec::new(),
    })
}

/// Decodes a JSON array of Anthropic messages.
pub fn decode_messages(bytes: &[u8]) -> Result<Vec<Message>> {
    decode_messages_value(json::parse(bytes)?)
}

/// Decodes a JSON array of Anthropic messages already parsed as JSON.
pub fn decode_messages_value(value: Value) -> Result<Vec<Message>> {
    messages(value, &At::ROOT)
}

/// Decodes one Anthropic message already parsed as JSON.
pub fn decode_message_value(value: Value) -> Result<Message> {
    message(value, &At::ROOT)
}

fn messages(value: Value, at: &At<'_>) -> Result<Vec<Message>> {
    let items = json::array(value, at)?;
    items.into_iter().enumerate().map(|(i, v)| message(v, &at.index(i))).collect()
}

fn message(value: Value, at: &At<'_>) -> Result<Message> {
    let mut f = Fields::of(value, at)?;
    let role = f.required("role", role)?;
    let string_content = matches!(f.peek("content"), Some(Value::String(_)));
    let content = f.required("content", content)?;
    Ok(Message { role, content, unmapped: Unmapped::only(ANTHROPIC, f.rest()), string_content })
}

fn role(value: Value, at: &At<'_>) -> Result<Role> {
    match json::string(value, at)?.as_str() {
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(json::error(
            at,
            DecodeErrorKind::UnknownRole { role: other.to_owned(), allowed: ROLES },
        )),
    }
}

/// Message content: Anthropic's string shorthand is one text block (the message remembers the
/// form: [`Message::string_content`]).
fn content(value: Value, at: &At<'_>) -> Result<Vec<ContentBlock>> {
    if let Value::String(text) = value {
        return Ok(vec![ContentBlock::text(text)]);
    }
    let items = json::array(value, at)?;
    let mut blocks = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        content_block(item, &at.index(i), &mut blocks)?;
    }
    Ok(blocks)
}

/// The `type` of a block, if it is one this version decodes.
fn known_type<'k>(map: &JsonMap, at: &At<'_>, known: &[&'k str]) -> Result<Option<&'k str>> {
    match map.get("type") {
        Some(Value::String(kind)) => Ok(known.iter().find(|k| **k == kind).copied()),
        Some(other) => Err(json::error(
            &at.key("type"),
            DecodeErrorKind::WrongType { expected: "a string", found: json::type_name(other) },
        )),
        None => Err(json::error(at, DecodeErrorKind::MissingField { field: "type" })),
    }
}

fn content_block(value: Value, at: &At<'_>, out: &mut Vec<ContentBlock>) -> Result<()> {
    let map = json::object(value, at)?;
    let Some(kind) = known_type(&map, at, KNOWN_BLOCKS)? else {
        out.push(unknown(map));
        return Ok(());
    };
    let mut f = Fields::new(map, at);
    f.take("type");
    let cache = f.optional("cache_control", cache_control)?;
    let block = match kind {
        "text" => {
            let text = f.required("text", json::string)?;
            ContentBlock::Text(TextBlock { text, unmapped: Unmapped::default() })
        }
        "image" => ContentBlock::Image(image(&mut f)?),
        "document" => ContentBlock::Document(document(&mut f)?),
        "tool_use" | "server_tool_use" => ContentBlock::ToolUse(ToolUse {
            id: f.required("id", json::string)?.into(),
            name: f.required("name", json::string)?,
            input: f.required("input", json::any)?,
            kind: (kind == "server_tool_use").then(|| kind.to_owned()),
            unmapped: Unmapped::default(),
        }),
        "tool_result" => ContentBlock::ToolResult(tool_result(&mut f)?),
        "thinking" => ContentBlock::Thinking(ThinkingBlock {
            text: f.required("thinking", json::string)?,
            signature: f.optional("signature", json::string)?,
            unmapped: Unmapped::default(),
        }),
        "redacted_thinking" => ContentBlock::RedactedThinking(RedactedThinking {
            data: f.required("data", json::string)?,
            form: RedactedForm::AnthropicData,
            unmapped: Unmapped::default(),
        }),
        _ => unreachable!("known_type returns only KNOWN_BLOCKS"),
    };
    out.push(with_unmapped(block, Unmapped::only(ANTHROPIC, f.rest())));
    if let Some(point) = cache {
        out.push(ContentBlock::CachePoint(point));
    }
    Ok(())
}

fn with_unmapped(mut block: ContentBlock, unmapped: Unmapped) -> ContentBlock {
    match &mut block {
        ContentBlock::Text(b) => b.unmapped = unmapped,
        ContentBlock::Image(b) => b.unmapped = unmapped,
        ContentBlock::Document(b) => b.unmapped = unmapped,
        ContentBlock::ToolUse(b) => b.unmapped = unmapped,
        ContentBlock::ToolResult(b) => b.unmapped = unmapped,
        ContentBlock::Thinking(b) => b.unmapped = unmapped,
        ContentBlock::RedactedThinking(b) => b.unmapped = unmapped,
        _ => unreachable!("only decoded kinds get unmapped keys"),
    }
    block
}

fn unknown(map: JsonMap) -> ContentBlock {
    ContentBlock::Unknown(UnknownBlock { dialect: ANTHROPIC, json: Value::Object(map) })
}

fn cache_control(value: Value, at: &At<'_>) -> Result<CachePoint> {
    let mut f = Fields::of(value, at)?;
    let kind = f.required("type", json::string)?;
    if kind != "ephemeral" {
        let message = format!("cache_control type `{kind}`; the only type is `ephemeral`");
        return Err(json::invalid(&at.key("type"), message));
    }
    let ttl = f.optional("ttl", json::string)?;
    f.deny_rest(&["type", "ttl"])?;
    Ok(CachePoint { ttl })
}

fn image(f: &mut Fields<'_>) -> Result<ImageBlock> {
    let (format, source) = f.required("source", |v, at| {
        let mut s = Fields::of(v, at)?;
        let kind = s.required("type", json::string)?;
        let decoded = match kind.as_str() {
            "base64" => {
                let media_type = s.required("media_type", json::string)?;
                let Some(format) = media_type.strip_prefix("image/") else {
                    let message = format!("media_type `{media_type}` is not an image type");
                    return Err(json::invalid(&at.key("media_type"), message));
                };
                let format = format.to_owned();
                (Some(format), MediaSource::Bytes(s.required("data", json::string)?))
            }
            "url" => (None, MediaSource::Url(s.required("url", json::string)?)),
            other => {
                let message = format!("image source type `{other}`; expected base64 or url");
                return Err(json::invalid(&at.key("type"), message));
            }
        };
        s.deny_rest(&["type", "media_type", "data", "url"])?;
        Ok(decoded)
    })?;
    Ok(ImageBlock { format, source, unmapped: Unmapped::default() })
}

fn document(f: &mut Fields<'_>) -> Result<DocumentBlock> {
    let (format, source) = f.required("source", document_source)?;
    let name = f.optional("title", json::string)?;
    let context = f.optional("context", json::string)?;
    let citations = f.optional("citations", |v, at| {
        let mut c = Fields::of(v, at)?;
        let enabled = c.required("enabled", json::boolean)?;
        c.deny_rest(&["enabled"])?;
        Ok(enabled)
    })?;
    Ok(DocumentBlock { name, format, source, context, citations, unmapped: Unmapped::default() })
}

fn document_source(value: Value, at: &At<'_>) -> Result<(Option<String>, DocumentSource)> {
    let mut s = Fields::of(value, at)?;
    let kind = s.required("type", json::string)?;
    let decoded = match kind.as_str() {
        "base64" | "text" => {
            let media_type = s.required("media_type", json::string)?;
            let Some((_, format)) = DOCUMENT_FORMATS.iter().find(|(m, _)| *m == media_type) else {
                let message = format!("document media_type `{media_type}` is not supported");
                return Err(json::invalid(&at.key("media_type"), message));
            };
            let data = s.required("data", json::string)?;
            let source = match kind.as_str() {
                "base64" => DocumentSource::Bytes(data),
                _ => DocumentSource::Text(data),
            };
            (Some((*format).to_owned()), source)
        }
        "content" => {
            let chunks = s.required("content", |v, at| {
                let items = json::array(v, at)?;
                let chunks = items.into_iter().enumerate().map(|(i, item)| {
                    let at = at.index(i);
                    let mut c = Fields::of(item, &at)?;
                    let kind = c.required("type", json::string)?;
                    if kind != "text" {
                        let message =
                            format!("document content block `{kind}`; only text is supported");
                        return Err(json::invalid(&at.key("type"), message));
                    }
                    let text = c.required("text", json::string)?;
                    c.deny_rest(&["type", "text"])?;
                    Ok(text)
                });
                chunks.collect::<Result<Vec<_>>>()
            })?;
            (None, DocumentSource::Content(chunks))
        }
        "url" => (None, DocumentSource::Url(s.required("url", json::string)?)),
        other => {
            let message =
                format!("document source type `{other}`; expected base64, text, content or url");
            return Err(json::invalid(&at.key("type"), message));
        }
    };
    s.deny_rest(&["type", "media_type", "data", "content", "url"])?;
    Ok(decoded)
}

fn tool_result(f: &mut Fields<'_>) -> Result<ToolResult> {
    let tool_use_id = f.required("tool_use_id", json::string)?.into();
    let content = f.optional("content", |v, at| {
        if let Value::String(text) = v {
            return Ok(ToolResultContent::Text(text));
        }
        let items = json::array(v, at)?;
        let blocks = items.into_iter().enumerate().map(|(i, v)| tool_result_block(v, &at.index(i)));
        Ok(ToolResultContent::Blocks(blocks.collect::<Result<_>>()?))
    })?;
    let status = f.optional("is_error", |v, at| {
        Ok(if json::boolean(v, at)? { ToolResultStatus::Error } else { ToolResultStatus::Success })
    })?;
    Ok(ToolResult { tool_use_id, content, status, unmapped: Unmapped::default() })
}

fn tool_result_block(value: Value, at: &At<'_>) -> Result<ToolResultBlock> {
    let map = json::object(value, at)?;
    let kind = known_type(&map, at, &["text", "image", "document"])?;
    // A text block with keys beyond `type` and `text` has no model field for them: kept raw.
    let plain_text = kind == Some("text") && map.len() == 2 && map.contains_key("text");
    if kind.is_none() || (kind == Some("text") && !plain_text) {
        return Ok(ToolResultBlock::Unknown(UnknownBlock {
            dialect: ANTHROPIC,
            json: Value::Object(map),
        }));
    }
    let mut f = Fields::new(map, at);
    f.take("type");
    let block = match kind {
        Some("text") => ToolResultBlock::Text { text: f.required("text", json::string)? },
        Some("image") => {
            let mut image = image(&mut f)?;
            image.unmapped = Unmapped::only(ANTHROPIC, f.rest());
            return Ok(ToolResultBlock::Image(image));
        }
        _ => {
            let mut document = document(&mut f)?;
            document.unmapped = Unmapped::only(ANTHROPIC, f.rest());
            return Ok(ToolResultBlock::Document(document));
        }
    };
    f.deny_rest(&["type", "text"])?;
    Ok(block)
}

fn system(value: Value, at: &At<'_>) -> Result<SystemPrompt> {
    if let Value::String(text) = value {
        return Ok(SystemPrompt::Text(text));
    }
    let items = json::array(value, at)?;
    let mut blocks = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = at.index(i);
        let map = json::object(item, &at)?;
        if known_type(&map, &at, &["text"])?.is_none() {
            blocks.push(SystemBlock::Unknown(UnknownBlock {
                dialect: ANTHROPIC,
                json: Value::Object(map),
            }));
            continue;
        }
        let mut f = Fields::new(map, &at);
        f.take("type");
        let cache = f.optional("cache_control", cache_control)?;
        let text = f.required("text", json::string)?;
        let unmapped = Unmapped::only(ANTHROPIC, f.rest());
        blocks.push(SystemBlock::Text(TextBlock { text, unmapped }));
        if let Some(point) = cache {
            blocks.push(SystemBlock::CachePoint(point));
        }
    }
    Ok(SystemPrompt::Blocks(blocks))
}

fn tools(value: Value, at: &At<'_>) -> Result<Vec<Tool>> {
    let items = json::array(value, at)?;
    let mut tools = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = at.index(i);
        let map = json::object(item, &at)?;
        // A tool with a `type` other than `custom` is a server tool: kept as sent.
        let custom = match map.get("type") {
            None => true,
            Some(Value::String(kind)) => kind == "custom",
            Some(_) => false,
        };
        if !custom {
            tools
                .push(Tool::Unknown(UnknownBlock { dialect: ANTHROPIC, json: Value::Object(map) }));
            continue;
        }
        let mut f = Fields::new(map, &at);
        let cache = f.optional("cache_control", cache_control)?;
        let name = f.required("name", json::string)?;
        let description = f.optional("description", json::string)?;
        let input_schema = f.required("input_schema", json::any)?;
        let strict = f.optional("strict", json::boolean)?;
        let unmapped = Unmapped::only(ANTHROPIC, f.rest());
        tools.push(Tool::Spec(ToolSpec { name, description, input_schema, strict, unmapped }));
        if let Some(point) = cache {
            tools.push(Tool::CachePoint(point));
        }
    }
    Ok(tools)
}

fn tool_choice(value: Value, at: &At<'_>) -> Result<ToolChoice> {
    let mut f = Fields::of(value, at)?;
    let kind = match f.required("type", json::string)?.as_str() {
        "auto" => ToolChoiceKind::Auto,
        "any" => ToolChoiceKind::Any,
        "tool" => ToolChoiceKind::Tool { name: f.required("name", json::string)? },
        "none" => ToolChoiceKind::None,
        other => {
            let message = format!("tool_choice type `{other}`; expected auto, any, tool or none");
            return Err(json::invalid(&at.key("type"), message));
        }
    };
    let disable_parallel_tool_use = f.optional("disable_parallel_tool_use", json::boolean)?;
    f.deny_rest(&["type", "name", "disable_parallel_tool_use"])?;
    Ok(ToolChoice { kind, disable_parallel_tool_use })
}

fn usage(value: Value, at: &At<'_>) -> Result<Usage> {
    let mut f = Fields::of(value, at)?;
    // Counters that are `null` stay in `unmapped`, so they are written back as `null`.
    let usage = Usage {
        input_tokens: f.optional_non_null("input_tokens", json::uint64)?,
        output_tokens: f.optional_non_null("output_tokens", json::uint64)?,
        total_tokens: None,
        cache_read_input_tokens: f.optional_non_null("cache_read_input_tokens", json::uint64)?,
        cache_write_input_tokens: f
            .optional_non_null("cache_creation_input_tokens", json::uint64)?,
        unmapped: Unmapped::default(),
    };
    Ok(Usage { unmapped: Unmapped::only(ANTHROPIC, f.rest()), ..usage })
}
