//! The model to Converse JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use verbatim_model::{
    CachePoint, ContentBlock, Dialect, DocumentBlock, DocumentSource, ImageBlock, InferenceConfig,
    JsonMap, MediaBlock, MediaSource, Message, Metrics, RedactedForm, Request, Response,
    S3Location, SystemBlock, SystemPrompt, Tool, ToolChoice, ToolChoiceKind, ToolResult,
    ToolResultBlock, ToolResultContent, ToolResultStatus, ToolUse, UnknownBlock, Usage,
};

use crate::encode::{self, Result, no_unmapped, object, put_fields, put_unmapped, single};
use crate::path::At;
use crate::{EncodeErrorKind, thinking};

const CONVERSE: Dialect = Dialect::Converse;

/// Encodes a request as a Converse request body.
pub fn encode_request(request: &Request) -> Result<Value> {
    let at = At::ROOT;
    let mut map = JsonMap::new();
    map.insert("messages".into(), messages(&request.messages, &at.key("messages"))?);
    if let Some(system) = &request.system {
        map.insert("system".into(), system_prompt(system, &at.key("system"))?);
    }
    if let Some(inference) = &request.inference {
        map.insert("inferenceConfig".into(), inference_config(inference));
    }
    if request.tools.is_some() || request.tool_choice.is_some() {
        let at = at.key("toolConfig");
        let mut config = JsonMap::new();
        if let Some(tools) = &request.tools {
            let at = at.key("tools");
            let tools = tools.iter().enumerate().map(|(i, t)| tool(t, &at.index(i)));
            config.insert("tools".into(), Value::Array(tools.collect::<Result<_>>()?));
        }
        if let Some(choice) = &request.tool_choice {
            config.insert("toolChoice".into(), tool_choice(choice, &at.key("toolChoice"))?);
        }
        map.insert("toolConfig".into(), Value::Object(config));
    }
    if let Some(additional) = additional_fields(request)? {
        map.insert("additionalModelRequestFields".into(), Value::Object(additional));
    }
    put_unmapped(&mut map, &request.unmapped, &at, CONVERSE)?;
    Ok(Value::Object(map))
}

/// Encodes a request as the bytes of a Converse request body.
pub fn request_to_vec(request: &Request) -> Result<Vec<u8>> {
    let value = encode_request(request)?;
    Ok(serde_json::to_vec(&value).expect("a JSON value always serializes"))
}

/// Encodes a response as a Converse response body.
pub fn encode_response(response: &Response) -> Result<Value> {
    let at = At::ROOT;
    if response.id.is_some() {
        return Err(encode::unrepresentable(&at.key("id"), CONVERSE, "a response id"));
    }
    if response.model.is_some() {
        return Err(encode::unrepresentable(&at.key("model"), CONVERSE, "a response model name"));
    }
    let mut map = JsonMap::new();
    let output = at.key("output");
    let message = message(&response.message, &output.key("message"))?;
    map.insert("output".into(), single("message", message));
    if let Some(reason) = &response.stop_reason {
        map.insert("stopReason".into(), reason.as_str().into());
    }
    if let Some(usage) = &response.usage {
        map.insert("usage".into(), self::usage(usage, &at.key("usage"))?);
    }
    if let Some(metrics) = &response.metrics {
        map.insert("metrics".into(), self::metrics(metrics, &at.key("metrics"))?);
    }
    if let Some(fields) = &response.model_fields {
        map.insert("additionalModelResponseFields".into(), Value::Object(fields.clone()));
    }
    put_unmapped(&mut map, &response.unmapped, &at, CONVERSE)?;
    Ok(Value::Object(map))
}

/// Encodes messages as a Converse message array.
pub fn encode_messages(list: &[Message]) -> Result<Value> {
    messages(list, &At::ROOT)
}

/// Encodes one message as a Converse message.
pub fn encode_message(item: &Message) -> Result<Value> {
    message(item, &At::ROOT)
}

fn messages(list: &[Message], at: &At<'_>) -> Result<Value> {
    let items = list.iter().enumerate().map(|(i, m)| message(m, &at.index(i)));
    Ok(Value::Array(items.collect::<Result<_>>()?))
}

pub(crate) fn message(message: &Message, at: &At<'_>) -> Result<Value> {
    let mut map = JsonMap::new();
    map.insert("role".into(), message.role.as_str().into());
    let content_at = at.key("content");
    let blocks = message.content.iter().enumerate();
    let content = blocks.map(|(i, b)| content_block(b, &content_at.index(i)));
    map.insert("content".into(), Value::Array(content.collect::<Result<_>>()?));
    put_unmapped(&mut map, &message.unmapped, at, CONVERSE)?;
    Ok(Value::Object(map))
}

fn content_block(block: &ContentBlock, at: &At<'_>) -> Result<Value> {
    Ok(match block {
        ContentBlock::Text(text) => {
            no_unmapped(&text.unmapped, at, CONVERSE)?;
            single("text", text.text.clone().into())
        }
        ContentBlock::Image(image) => single("image", self::image(image, &at.key("image"))?),
        ContentBlock::Document(doc) => single("document", document(doc, &at.key("document"))?),
        ContentBlock::Video(video) => single("video", media(video, &at.key("video"))?),
        ContentBlock::Audio(audio) => single("audio", media(audio, &at.key("audio"))?),
        ContentBlock::ToolUse(tool_use) => single("toolUse", self::tool_use(tool_use, at)?),
        ContentBlock::ToolResult(result) => single("toolResult", tool_result(result, at)?),
        ContentBlock::GuardContent(raw) => single("guardContent", Value::Object(raw.json.clone())),
        ContentBlock::CachePoint(point) => single("cachePoint", cache_point(point)),
        ContentBlock::Thinking(thinking) => {
            let reasoning = at.key("reasoningContent");
            let at = reasoning.key("reasoningText");
            let mut map = object([("text", thinking.text.clone().into())]);
            if let Some(signature) = &thinking.signature {
                map.insert("signature".into(), signature.clone().into());
            }
            put_unmapped(&mut map, &thinking.unmapped, &at, CONVERSE)?;
            single("reasoningContent", single("reasoningText", Value::Object(map)))
        }
        ContentBlock::RedactedThinking(redacted) => {
            let reasoning = at.key("reasoningContent");
            let at = reasoning.key("redactedContent");
            no_unmapped(&redacted.unmapped, &at, CONVERSE)?;
            let blob = match redacted.form {
                RedactedForm::ConverseBlob => redacted.data.clone(),
                RedactedForm::AnthropicData => BASE64.encode(redacted.data.as_bytes()),
            };
            single("reasoningContent", single("redactedContent", blob.into()))
        }
        ContentBlock::CitationsContent(raw) => {
            single("citationsContent", Value::Object(raw.json.clone()))
        }
        ContentBlock::SearchResult(raw) => single("searchResult", Value::Object(raw.json.clone())),
        ContentBlock::ToolAddition(raw) => single("toolAddition", Value::Object(raw.json.clone())),
        ContentBlock::ToolRemoval(raw) => single("toolRemoval", Value::Object(raw.json.clone())),
        ContentBlock::Unknown(unknown) => self::unknown(unknown, at)?,
    })
}

fn unknown(block: &UnknownBlock, at: &At<'_>) -> Result<Value> {
    match block.dialect {
        Dialect::Converse => Ok(block.json.clone()),
        Dialect::Anthropic => Err(encode::unrepresentable(
            at,
            CONVERSE,
            "a block of a kind this version does not know, written in the Anthropic dialect",
        )),
    }
}

fn cache_point(point: &CachePoint) -> Value {
    let mut map = object([("type", "default".into())]);
    if let Some(ttl) = &point.ttl {
        map.insert("ttl".into(), ttl.clone().into());
    }
    Value::Object(map)
}

fn image(image: &ImageBlock, at: &At<'_>) -> Result<Value> {
    let Some(format) = &image.format else {
        return Err(encode::error(at, CONVERSE, EncodeErrorKind::Missing { field: "format" }));
    };
    let mut map = object([
        ("format", format.clone().into()),
        ("source", media_source(&image.source, &at.key("source"))?),
    ]);
    put_unmapped(&mut map, &image.unmapped, at, CONVERSE)?;
    Ok(Value::Object(map))
}

fn media(media: &MediaBlock, at: &At<'_>) -> Result<Value> {
    let mut map = object([
        ("format", media.format.clone().into()),
        ("source", media_source(&media.source, &at.key("source"))?),
    ]);
    put_unmapped(&mut map, &media.unmapped, at, CONVERSE)?;
    Ok(Value::Object(map))
}

fn media_source(source: &MediaSource, at: &At<'_>) -> Result<Value> {
    match source {
        MediaSource::Bytes(bytes) => Ok(single("bytes", bytes.clone().into())),
        MediaSource::S3(location) => Ok(single("s3Location", s3_location(location))),
        MediaSource::Url(_) => Err(encode::unrepresentable(at, CONVERSE, "a URL source")),
    }
}

fn s3_location(location: &S3Location) -> Value {
    let mut map = object([("uri", location.uri.clone().into())]);
    if let Some(owner) = &location.bucket_owner {
        map.insert("bucketOwner".into(), owner.clone().into());
    }
    Value::Object(map)
}

fn document(doc: &DocumentBlock, at: &At<'_>) -> Result<Value> {
    let mut map = JsonMap::new();
    if let Some(name) = &doc.name {
        map.insert("name".into(), name.clone().into());
    }
    if let Some(format) = &doc.format {
        map.insert("format".into(), format.clone().into());
    }
    let source = match &doc.source {
        DocumentSource::Bytes(bytes) => single("bytes", bytes.clone().into()),
        DocumentSource::S3(location) => single("s3Location", s3_location(location)),
        DocumentSource::Text(text) => single("text", text.clone().into()),
        DocumentSource::Content(chunks) => {
            let chunks = chunks.iter().map(|c| single("text", c.clone().into())).collect();
            single("content", Value::Array(chunks))
        }
        DocumentSource::Url(_) => {
            return Err(encode::unrepresentable(&at.key("source"), CONVERSE, "a URL source"));
        }
    };
    map.insert("source".into(), source);
    if let Some(context) = &doc.context {
        map.insert("context".into(), context.clone().into());
    }
    if let Some(enabled) = doc.citations {
        map.insert("citations".into(), single("enabled", enabled.into()));
    }
    put_unmapped(&mut map, &doc.unmapped, at, CONVERSE)?;
    Ok(Value::Object(map))
}

fn tool_use(tool_use: &ToolUse, at: &At<'_>) -> Result<Value> {
    let at = at.key("toolUse");
    let mut map = object([
        ("toolUseId", tool_use.id.as_str().into()),
        ("name", tool_use.name.clone().into()),
        ("input", tool_use.input.clone()),
    ]);
    if let Some(kind) = &tool_use.kind {
        map.insert("type".into(), kind.clone().into());
    }
    put_unmapped(&mut map, &tool_use.unmapped, &at, CONVERSE)?;
    Ok(Value::Object(map))
}

fn tool_result(result: &ToolResult, at: &At<'_>) -> Result<Value> {
    let at = at.key("toolResult");
    let content_at = at.key("content");
    let content = match &result.content {
        // Converse has no "no content": an absent Anthropic `content` is an empty list.
        None => Vec::new(),
        Some(ToolResultContent::Text(text)) => vec![single("text", text.clone().into())],
        Some(ToolResultContent::Blocks(blocks)) => {
            let blocks = blocks.iter().enumerate();
            let blocks = blocks.map(|(i, b)| tool_result_block(b, &content_at.index(i)));
            blocks.collect::<Result<_>>()?
        }
    };
    let mut map = object([
        ("toolUseId", result.tool_use_id.as_str().into()),
        ("content", Value::Array(content)),
    ]);
    if let Some(status) = result.status {
        let status = match status {
            ToolResultStatus::Success => "success",
            ToolResultStatus::Error => "error",
        };
        map.insert("status".into(), status.into());
    }
    put_unmapped(&mut map, &result.unmapped, &at, CONVERSE)?;
    Ok(Value::Object(map))
}

fn tool_result_block(block: &ToolResultBlock, at: &At<'_>) -> Result<Value> {
    Ok(match block {
        ToolResultBlock::Text { text } => single("text", text.clone().into()),
        ToolResultBlock::Json { json } => single("json", json.clone()),
        ToolResultBlock::Image(image) => single("image", self::image(image, &at.key("image"))?),
        ToolResultBlock::Document(doc) => single("document", document(doc, &at.key("document"))?),
        ToolResultBlock::Video(video) => single("video", media(video, &at.key("video"))?),
        ToolResultBlock::SearchResult(raw) => {
            single("searchResult", Value::Object(raw.json.clone()))
        }
        ToolResultBlock::Unknown(unknown) => self::unknown(unknown, at)?,
    })
}

fn system_prompt(system: &SystemPrompt, at: &At<'_>) -> Result<Value> {
    let blocks = match system {
        SystemPrompt::Text(text) => vec![single("text", text.clone().into())],
        SystemPrompt::Blocks(blocks) => {
            let blocks = blocks.iter().enumerate().map(|(i, block)| {
                let at = at.index(i);
                Ok(match block {
                    SystemBlock::Text(text) => {
                        no_unmapped(&text.unmapped, &at, CONVERSE)?;
                        single("text", text.text.clone().into())
                    }
                    SystemBlock::GuardContent(raw) => {
                        single("guardContent", Value::Object(raw.json.clone()))
                    }
                    SystemBlock::CachePoint(point) => single("cachePoint", cache_point(point)),
                    SystemBlock::Unknown(unknown) => self::unknown(unknown, &at)?,
                })
            });
            blocks.collect::<Result<_>>()?
        }
    };
    Ok(Value::Array(blocks))
}

fn inference_config(config: &InferenceConfig) -> Value {
    let mut map = JsonMap::new();
    if let Some(max_tokens) = config.max_tokens {
        map.insert("maxTokens".into(), max_tokens.into());
    }
    if let Some(temperature) = &config.temperature {
        map.insert("temperature".into(), Value::Number(temperature.clone()));
    }
    if let Some(top_p) = &config.top_p {
        map.insert("topP".into(), Value::Number(top_p.clone()));
    }
    if let Some(stop) = &config.stop_sequences {
        map.insert("stopSequences".into(), stop.clone().into());
    }
    Value::Object(map)
}

fn tool(tool: &Tool, at: &At<'_>) -> Result<Value> {
    Ok(match tool {
        Tool::Spec(spec) => {
            let at = at.key("toolSpec");
            let mut map = object([("name", spec.name.clone().into())]);
            if let Some(description) = &spec.description {
                map.insert("description".into(), description.clone().into());
            }
            map.insert("inputSchema".into(), single("json", spec.input_schema.clone()));
            if let Some(strict) = spec.strict {
                map.insert("strict".into(), strict.into());
            }
            put_unmapped(&mut map, &spec.unmapped, &at, CONVERSE)?;
            single("toolSpec", Value::Object(map))
        }
        Tool::System(system) => single("systemTool", single("name", system.name.clone().into())),
        Tool::CachePoint(point) => single("cachePoint", cache_point(point)),
        Tool::Unknown(unknown) => self::unknown(unknown, at)?,
    })
}

fn tool_choice(choice: &ToolChoice, at: &At<'_>) -> Result<Value> {
    if choice.disable_parallel_tool_use.is_some() {
        let at = at.key("disable_parallel_tool_use");
        return Err(encode::unrepresentable(&at, CONVERSE, "disable_parallel_tool_use"));
    }
    Ok(match &choice.kind {
        ToolChoiceKind::Auto => single("auto", Value::Object(JsonMap::new())),
        ToolChoiceKind::Any => single("any", Value::Object(JsonMap::new())),
        ToolChoiceKind::Tool { name } => single("tool", single("name", name.clone().into())),
        ToolChoiceKind::None => {
            return Err(encode::unrepresentable(
                at,
                CONVERSE,
                "tool choice `none` (leave the tools out instead)",
            ));
        }
    })
}

/// Builds `additionalModelRequestFields` from the native fields plus thinking, effort, beta
/// flags and top_k.
fn additional_fields(request: &Request) -> Result<Option<JsonMap>> {
    let named_any = request.thinking.is_some() || request.beta.is_some() || request.top_k.is_some();
    if request.model_fields.is_none() && !named_any {
        return Ok(None);
    }
    let root = At::ROOT;
    let at = root.key("additionalModelRequestFields");
    let mut map = JsonMap::new();
    if let Some(thinking) = &request.thinking {
        let thinking = thinking::encode(thinking).map_err(|field| {
            encode::error(&at, CONVERSE, EncodeErrorKind::FieldCollision { field })
        })?;
        map.insert("thinking".into(), thinking);
    }
    if let Some(beta) = &request.beta {
        map.insert("anthropic_beta".into(), beta.clone().into());
    }
    if let Some(top_k) = request.top_k {
        map.insert("top_k".into(), top_k.into());
    }
    if let Some(fields) = &request.model_fields {
        put_fields(&mut map, fields, &at, CONVERSE)?;
    }
    thinking::put_effort(request.thinking.as_ref(), &mut map)
        .map_err(|field| encode::error(&at, CONVERSE, EncodeErrorKind::FieldCollision { field }))?;
    Ok(Some(map))
}

fn usage(usage: &Usage, at: &At<'_>) -> Result<Value> {
    let mut map = JsonMap::new();
    let counters = [
        ("inputTokens", usage.input_tokens),
        ("outputTokens", usage.output_tokens),
        ("totalTokens", usage.total_tokens),
        ("cacheReadInputTokens", usage.cache_read_input_tokens),
        ("cacheWriteInputTokens", usage.cache_write_input_tokens),
    ];
    for (key, value) in counters {
        if let Some(value) = value {
            map.insert(key.into(), value.into());
        }
    }
    put_unmapped(&mut map, &usage.unmapped, at, CONVERSE)?;
    Ok(Value::Object(map))
}

fn metrics(metrics: &Metrics, at: &At<'_>) -> Result<Value> {
    let mut map = JsonMap::new();
    if let Some(latency) = metrics.latency_ms {
        map.insert("latencyMs".into(), latency.into());
    }
    put_unmapped(&mut map, &metrics.unmapped, at, CONVERSE)?;
    Ok(Value::Object(map))
}
