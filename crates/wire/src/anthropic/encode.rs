//! The model to Anthropic Messages JSON.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use verbatim_model::{
    CachePoint, ContentBlock, Dialect, DocumentBlock, DocumentSource, ImageBlock, JsonMap,
    MediaSource, Message, RedactedForm, RedactedThinking, Request, Response, Role, SystemBlock,
    SystemPrompt, Tool, ToolChoice, ToolChoiceKind, ToolResult, ToolResultBlock, ToolResultContent,
    ToolResultStatus, ToolUse, UnknownBlock, Usage,
};

use super::{
    BEDROCK_ANTHROPIC_VERSION, DOCUMENT_FORMATS, REQUEST_KEYS, RESPONSE_KEYS, VERSION_KEY,
};
use crate::encode::{self, Result, no_unmapped, object, put_fields, put_unmapped};
use crate::path::At;
use crate::{EncodeErrorKind, thinking};

const ANTHROPIC: Dialect = Dialect::Anthropic;

/// Encodes a request as an InvokeModel body (Anthropic Messages, with `anthropic_version`
/// `bedrock-2023-05-31` unless the request keeps another version among its unmapped
/// Anthropic keys, no `model` and no `stream`).
pub fn encode_request(request: &Request) -> Result<Value> {
    // A kept version goes first, where the default one goes, and not again with the other
    // kept keys.
    let (version, unmapped) = match request.unmapped.anthropic.get(VERSION_KEY) {
        Some(version) => {
            let mut rest = request.unmapped.clone();
            rest.anthropic.shift_remove(VERSION_KEY);
            (version.clone(), Cow::Owned(rest))
        }
        None => (BEDROCK_ANTHROPIC_VERSION.into(), Cow::Borrowed(&request.unmapped)),
    };
    let mut map = object([(VERSION_KEY, version)]);
    encode_conversation(request, &mut map)?;
    if let Some(beta) = &request.beta {
        map.insert("anthropic_beta".into(), beta.clone().into());
    }
    put_native(request, &mut map)?;
    put_unmapped(&mut map, &unmapped, &At::ROOT, ANTHROPIC)?;
    Ok(Value::Object(map))
}

/// Writes what a request says of the conversation and its settings into `map`, after the keys
/// that frame it on its surface (the version, or the model); `max_tokens` is required.
pub(crate) fn encode_conversation(request: &Request, map: &mut JsonMap) -> Result<()> {
    let at = At::ROOT;
    let inference = request.inference.as_ref();
    let Some(max_tokens) = inference.and_then(|i| i.max_tokens) else {
        let kind = EncodeErrorKind::Missing { field: "max_tokens" };
        return Err(encode::error(&at.key("max_tokens"), ANTHROPIC, kind));
    };
    map.insert("max_tokens".into(), max_tokens.into());
    map.insert("messages".into(), messages(&request.messages, &at.key("messages"))?);
    if let Some(system) = &request.system {
        map.insert("system".into(), system_prompt(system, &at.key("system"))?);
    }
    if let Some(inference) = inference {
        if let Some(temperature) = &inference.temperature {
            map.insert("temperature".into(), Value::Number(temperature.clone()));
        }
        if let Some(top_p) = &inference.top_p {
            map.insert("top_p".into(), Value::Number(top_p.clone()));
        }
        if let Some(stop) = &inference.stop_sequences {
            map.insert("stop_sequences".into(), stop.clone().into());
        }
    }
    if let Some(top_k) = request.top_k {
        map.insert("top_k".into(), top_k.into());
    }
    if let Some(tools) = &request.tools {
        map.insert("tools".into(), self::tools(tools, &at.key("tools"))?);
    }
    if let Some(choice) = &request.tool_choice {
        map.insert("tool_choice".into(), tool_choice(choice));
    }
    if let Some(thinking) = &request.thinking {
        let thinking = thinking::encode(thinking).map_err(|field| {
            encode::error(&at.key("thinking"), ANTHROPIC, EncodeErrorKind::FieldCollision { field })
        })?;
        map.insert("thinking".into(), thinking);
    }
    Ok(())
}

/// Writes the request's native model fields (and the effort its thinking names) into `map`,
/// refusing one that would overwrite a key the codec writes itself.
pub(crate) fn put_native(request: &Request, map: &mut JsonMap) -> Result<()> {
    let at = At::ROOT;
    let mut native = request.model_fields.clone().unwrap_or_default();
    thinking::put_effort(request.thinking.as_ref(), &mut native).map_err(|field| {
        encode::error(&at, ANTHROPIC, EncodeErrorKind::FieldCollision { field })
    })?;
    if let Some(key) = native.keys().find(|k| REQUEST_KEYS.contains(&k.as_str())) {
        let kind = EncodeErrorKind::FieldCollision { field: key.clone() };
        return Err(encode::error(&at.key(key), ANTHROPIC, kind));
    }
    put_fields(map, &native, &at, ANTHROPIC)
}

/// Encodes a request as the bytes of an InvokeModel body.
pub fn request_to_vec(request: &Request) -> Result<Vec<u8>> {
    let value = encode_request(request)?;
    Ok(serde_json::to_vec(&value).expect("a JSON value always serializes"))
}

/// Encodes a response as an InvokeModel response body (an Anthropic `message`).
///
/// Converse's `totalTokens` is not written: Anthropic usage has no total, it is the sum of the
/// counters that are written.
pub fn encode_response(response: &Response) -> Result<Value> {
    let at = At::ROOT;
    if response.metrics.is_some() {
        return Err(encode::unrepresentable(&at.key("metrics"), ANTHROPIC, "response metrics"));
    }
    let mut map = JsonMap::new();
    if let Some(id) = &response.id {
        map.insert("id".into(), id.clone().into());
    }
    map.insert("type".into(), "message".into());
    map.insert("role".into(), role(response.message.role, &at.key("role"))?);
    if let Some(model) = &response.model {
        map.insert("model".into(), model.clone().into());
    }
    no_unmapped(&response.message.unmapped, &at, ANTHROPIC)?;
    map.insert("content".into(), content(&response.message.content, &at.key("content"))?);
    if let Some(reason) = &response.stop_reason {
        map.insert("stop_reason".into(), reason.as_str().into());
    }
    if let Some(usage) = &response.usage {
        map.insert("usage".into(), self::usage(usage, &at.key("usage"))?);
    }
    if let Some(fields) = &response.model_fields {
        if let Some(key) = fields.keys().find(|k| RESPONSE_KEYS.contains(&k.as_str())) {
            let kind = EncodeErrorKind::FieldCollision { field: key.clone() };
            return Err(encode::error(&at.key(key), ANTHROPIC, kind));
        }
        put_fields(&mut map, fields, &at, ANTHROPIC)?;
    }
    put_unmapped(&mut map, &response.unmapped, &at, ANTHROPIC)?;
    Ok(Value::Object(map))
}

/// Encodes messages as an Anthropic message array.
pub fn encode_messages(list: &[Message]) -> Result<Value> {
    messages(list, &At::ROOT)
}

/// Encodes one message as an Anthropic message.
pub fn encode_message(item: &Message) -> Result<Value> {
    message(item, &At::ROOT)
}

fn messages(list: &[Message], at: &At<'_>) -> Result<Value> {
    let items = list.iter().enumerate().map(|(i, m)| message(m, &at.index(i)));
    Ok(Value::Array(items.collect::<Result<_>>()?))
}

pub(crate) fn message(message: &Message, at: &At<'_>) -> Result<Value> {
    let content = match message.content.as_slice() {
        // Written as it came: a string, while the content is still one plain text block.
        [ContentBlock::Text(text)] if message.string_content && text.unmapped.is_empty() => {
            Value::String(text.text.clone())
        }
        blocks => content(blocks, &at.key("content"))?,
    };
    let mut map = object([("role", role(message.role, &at.key("role"))?), ("content", content)]);
    put_unmapped(&mut map, &message.unmapped, at, ANTHROPIC)?;
    Ok(Value::Object(map))
}

fn role(role: Role, at: &At<'_>) -> Result<Value> {
    match role {
        Role::User | Role::Assistant => Ok(role.as_str().into()),
        Role::System => Err(encode::unrepresentable(at, ANTHROPIC, "the `system` message role")),
    }
}

/// Attaches a cache point to the block written just before it.
fn attach_cache_point(out: &mut [Value], point: &CachePoint, at: &At<'_>) -> Result<()> {
    let Some(Value::Object(previous)) = out.last_mut() else {
        return Err(encode::error(at, ANTHROPIC, EncodeErrorKind::DanglingCachePoint));
    };
    if previous.contains_key("cache_control") {
        return Err(encode::error(at, ANTHROPIC, EncodeErrorKind::DanglingCachePoint));
    }
    let mut control = object([("type", "ephemeral".into())]);
    if let Some(ttl) = &point.ttl {
        control.insert("ttl".into(), ttl.clone().into());
    }
    previous.insert("cache_control".into(), Value::Object(control));
    Ok(())
}

fn content(blocks: &[ContentBlock], at: &At<'_>) -> Result<Value> {
    let mut out = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let at = at.index(i);
        match block {
            ContentBlock::CachePoint(point) => attach_cache_point(&mut out, point, &at)?,
            other => out.push(content_block(other, &at)?),
        }
    }
    Ok(Value::Array(out))
}

fn content_block(block: &ContentBlock, at: &At<'_>) -> Result<Value> {
    let (mut map, unmapped) = match block {
        ContentBlock::Text(text) => {
            (object([("type", "text".into()), ("text", text.text.clone().into())]), &text.unmapped)
        }
        ContentBlock::Image(image) => (self::image(image, at)?, &image.unmapped),
        ContentBlock::Document(doc) => (document(doc, at)?, &doc.unmapped),
        ContentBlock::ToolUse(tool_use) => (self::tool_use(tool_use, at)?, &tool_use.unmapped),
        ContentBlock::ToolResult(result) => (tool_result(result, at)?, &result.unmapped),
        ContentBlock::Thinking(thinking) => {
            let mut map =
                object([("type", "thinking".into()), ("thinking", thinking.text.clone().into())]);
            if let Some(signature) = &thinking.signature {
                map.insert("signature".into(), signature.clone().into());
            }
            (map, &thinking.unmapped)
        }
        ContentBlock::RedactedThinking(redacted) => {
            (self::redacted(redacted, at)?, &redacted.unmapped)
        }
        ContentBlock::Unknown(unknown) => return self::unknown(unknown, at),
        ContentBlock::CachePoint(_) => unreachable!("cache points are attached by content()"),
        ContentBlock::Video(_)
        | ContentBlock::Audio(_)
        | ContentBlock::GuardContent(_)
        | ContentBlock::CitationsContent(_)
        | ContentBlock::SearchResult(_)
        | ContentBlock::ToolAddition(_)
        | ContentBlock::ToolRemoval(_) => {
            let what = format!("a `{}` block", block.kind_name());
            return Err(encode::unrepresentable(at, ANTHROPIC, what));
        }
    };
    put_unmapped(&mut map, unmapped, at, ANTHROPIC)?;
    Ok(Value::Object(map))
}

fn unknown(block: &UnknownBlock, at: &At<'_>) -> Result<Value> {
    match block.dialect {
        Dialect::Anthropic => Ok(block.json.clone()),
        Dialect::Converse => Err(encode::unrepresentable(
            at,
            ANTHROPIC,
            "a block of a kind this version does not know, written in the Converse dialect",
        )),
    }
}

fn redacted(redacted: &RedactedThinking, at: &At<'_>) -> Result<JsonMap> {
    let data = match redacted.form {
        RedactedForm::AnthropicData => redacted.data.clone(),
        // Converse's blob is base64 of Anthropic's data: decoded exactly once.
        RedactedForm::ConverseBlob => {
            let fail = |reason: String| {
                encode::error(at, ANTHROPIC, EncodeErrorKind::RedactedData { reason })
            };
            let bytes = BASE64.decode(&redacted.data).map_err(|e| fail(e.to_string()))?;
            String::from_utf8(bytes).map_err(|e| fail(e.to_string()))?
        }
    };
    Ok(object([("type", "redacted_thinking".into()), ("data", data.into())]))
}

fn image(image: &ImageBlock, at: &At<'_>) -> Result<JsonMap> {
    let source = match &image.source {
        MediaSource::Bytes(data) => {
            let Some(format) = &image.format else {
                let kind = EncodeErrorKind::Missing { field: "format" };
                return Err(encode::error(at, ANTHROPIC, kind));
            };
            object([
                ("type", "base64".into()),
                ("media_type", format!("image/{format}").into()),
                ("data", data.clone().into()),
            ])
        }
        MediaSource::Url(url) => object([("type", "url".into()), ("url", url.clone().into())]),
        MediaSource::S3(_) => {
            return Err(encode::unrepresentable(&at.key("source"), ANTHROPIC, "an S3 source"));
        }
    };
    Ok(object([("type", "image".into()), ("source", Value::Object(source))]))
}

fn document(doc: &DocumentBlock, at: &At<'_>) -> Result<JsonMap> {
    let source_at = at.key("source");
    let media_type = |format: Option<&String>| -> Result<&'static str> {
        let format = format.map(String::as_str);
        match DOCUMENT_FORMATS.iter().find(|(_, f)| Some(*f) == format) {
            Some((media_type, _)) => Ok(media_type),
            None => {
                let what = format!("document format {format:?} as an inline source");
                Err(encode::unrepresentable(at, ANTHROPIC, what))
            }
        }
    };
    let source = match &doc.source {
        DocumentSource::Bytes(data) => object([
            ("type", "base64".into()),
            ("media_type", media_type(doc.format.as_ref())?.into()),
            ("data", data.clone().into()),
        ]),
        DocumentSource::Text(text) => {
            let media_type = match doc.format {
                None => "text/plain",
                Some(_) => media_type(doc.format.as_ref())?,
            };
            object([
                ("type", "text".into()),
                ("media_type", media_type.into()),
                ("data", text.clone().into()),
            ])
        }
        DocumentSource::Content(chunks) => {
            let chunks = chunks
                .iter()
                .map(|c| {
                    Value::Object(object([("type", "text".into()), ("text", c.clone().into())]))
                })
                .collect();
            object([("type", "content".into()), ("content", Value::Array(chunks))])
        }
        DocumentSource::Url(url) => object([("type", "url".into()), ("url", url.clone().into())]),
        DocumentSource::S3(_) => {
            return Err(encode::unrepresentable(&source_at, ANTHROPIC, "an S3 source"));
        }
    };
    let mut map = object([("type", "document".into()), ("source", Value::Object(source))]);
    if let Some(name) = &doc.name {
        map.insert("title".into(), name.clone().into());
    }
    if let Some(context) = &doc.context {
        map.insert("context".into(), context.clone().into());
    }
    if let Some(enabled) = doc.citations {
        map.insert("citations".into(), Value::Object(object([("enabled", enabled.into())])));
    }
    Ok(map)
}

fn tool_use(tool_use: &ToolUse, at: &At<'_>) -> Result<JsonMap> {
    let kind = match tool_use.kind.as_deref() {
        None | Some("tool_use") => "tool_use",
        Some("server_tool_use") => "server_tool_use",
        Some(other) => {
            let what = format!("tool use type `{other}`");
            return Err(encode::unrepresentable(at, ANTHROPIC, what));
        }
    };
    Ok(object([
        ("type", kind.into()),
        ("id", tool_use.id.as_str().into()),
        ("name", tool_use.name.clone().into()),
        ("input", tool_use.input.clone()),
    ]))
}

fn tool_result(result: &ToolResult, at: &At<'_>) -> Result<JsonMap> {
    let mut map = object([
        ("type", "tool_result".into()),
        ("tool_use_id", result.tool_use_id.as_str().into()),
    ]);
    let content_at = at.key("content");
    match &result.content {
        None => {}
        Some(ToolResultContent::Text(text)) => {
            map.insert("content".into(), text.clone().into());
        }
        Some(ToolResultContent::Blocks(blocks)) => {
            let blocks = blocks.iter().enumerate();
            let blocks = blocks.map(|(i, b)| tool_result_block(b, &content_at.index(i)));
            map.insert("content".into(), Value::Array(blocks.collect::<Result<_>>()?));
        }
    }
    if let Some(status) = result.status {
        map.insert("is_error".into(), (status == ToolResultStatus::Error).into());
    }
    Ok(map)
}

fn tool_result_block(block: &ToolResultBlock, at: &At<'_>) -> Result<Value> {
    let (mut map, unmapped) = match block {
        ToolResultBlock::Text { text } => {
            return Ok(Value::Object(object([
                ("type", "text".into()),
                ("text", text.clone().into()),
            ])));
        }
        ToolResultBlock::Image(image) => (self::image(image, at)?, &image.unmapped),
        ToolResultBlock::Document(doc) => (document(doc, at)?, &doc.unmapped),
        ToolResultBlock::Unknown(unknown) => return self::unknown(unknown, at),
        ToolResultBlock::Json { .. } => {
            return Err(encode::unrepresentable(at, ANTHROPIC, "a `json` tool result block"));
        }
        ToolResultBlock::Video(_) => {
            return Err(encode::unrepresentable(at, ANTHROPIC, "a `video` tool result block"));
        }
        ToolResultBlock::SearchResult(_) => {
            let what = "a `searchResult` tool result block";
            return Err(encode::unrepresentable(at, ANTHROPIC, what));
        }
    };
    put_unmapped(&mut map, unmapped, at, ANTHROPIC)?;
    Ok(Value::Object(map))
}

fn system_prompt(system: &SystemPrompt, at: &At<'_>) -> Result<Value> {
    let blocks = match system {
        SystemPrompt::Text(text) => return Ok(text.clone().into()),
        SystemPrompt::Blocks(blocks) => blocks,
    };
    let mut out = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let at = at.index(i);
        match block {
            SystemBlock::Text(text) => {
                let mut map = object([("type", "text".into()), ("text", text.text.clone().into())]);
                put_unmapped(&mut map, &text.unmapped, &at, ANTHROPIC)?;
                out.push(Value::Object(map));
            }
            SystemBlock::CachePoint(point) => attach_cache_point(&mut out, point, &at)?,
            SystemBlock::Unknown(unknown) => out.push(self::unknown(unknown, &at)?),
            SystemBlock::GuardContent(_) => {
                return Err(encode::unrepresentable(
                    &at,
                    ANTHROPIC,
                    "a `guardContent` system block",
                ));
            }
        }
    }
    Ok(Value::Array(out))
}

fn tools(tools: &[Tool], at: &At<'_>) -> Result<Value> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let at = at.index(i);
        match tool {
            Tool::Spec(spec) => {
                let mut map = object([("name", spec.name.clone().into())]);
                if let Some(description) = &spec.description {
                    map.insert("description".into(), description.clone().into());
                }
                map.insert("input_schema".into(), spec.input_schema.clone());
                if let Some(strict) = spec.strict {
                    map.insert("strict".into(), strict.into());
                }
                put_unmapped(&mut map, &spec.unmapped, &at, ANTHROPIC)?;
                out.push(Value::Object(map));
            }
            Tool::CachePoint(point) => attach_cache_point(&mut out, point, &at)?,
            Tool::Unknown(unknown) => out.push(self::unknown(unknown, &at)?),
            Tool::System(_) => {
                return Err(encode::unrepresentable(&at, ANTHROPIC, "a `systemTool`"));
            }
        }
    }
    Ok(Value::Array(out))
}

fn tool_choice(choice: &ToolChoice) -> Value {
    let mut map = JsonMap::new();
    match &choice.kind {
        ToolChoiceKind::Auto => map.insert("type".into(), "auto".into()),
        ToolChoiceKind::Any => map.insert("type".into(), "any".into()),
        ToolChoiceKind::None => map.insert("type".into(), "none".into()),
        ToolChoiceKind::Tool { name } => {
            map.insert("type".into(), "tool".into());
            map.insert("name".into(), name.clone().into())
        }
    };
    if let Some(disable) = choice.disable_parallel_tool_use {
        map.insert("disable_parallel_tool_use".into(), disable.into());
    }
    Value::Object(map)
}

fn usage(usage: &Usage, at: &At<'_>) -> Result<Value> {
    let mut map = JsonMap::new();
    let counters = [
        ("input_tokens", usage.input_tokens),
        ("cache_creation_input_tokens", usage.cache_write_input_tokens),
        ("cache_read_input_tokens", usage.cache_read_input_tokens),
        ("output_tokens", usage.output_tokens),
    ];
    for (key, value) in counters {
        if let Some(value) = value {
            map.insert(key.into(), value.into());
        }
    }
    put_unmapped(&mut map, &usage.unmapped, at, ANTHROPIC)?;
    Ok(Value::Object(map))
}
