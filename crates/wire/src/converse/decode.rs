//! Converse JSON to the model.

use serde_json::Value;
use verbatim_model::{
    CachePoint, ContentBlock, Dialect, DocumentBlock, DocumentSource, ImageBlock, InferenceConfig,
    JsonMap, MediaBlock, MediaSource, Message, Metrics, RawMember, RedactedForm, RedactedThinking,
    Request, Response, Role, S3Location, StopReason, SystemBlock, SystemPrompt, SystemTool,
    TextBlock, ThinkingBlock, Tool, ToolChoice, ToolChoiceKind, ToolResult, ToolResultBlock,
    ToolResultContent, ToolResultStatus, ToolSpec, ToolUse, UnknownBlock, Unmapped, Usage,
};

use super::{
    CONTENT_BLOCK_MEMBERS, DOCUMENT_SOURCE_MEMBERS, MEDIA_SOURCE_MEMBERS, OUTPUT_MEMBERS,
    REASONING_MEMBERS, ROLES, SYSTEM_BLOCK_MEMBERS, TOOL_CHOICE_MEMBERS, TOOL_MEMBERS,
    TOOL_RESULT_BLOCK_MEMBERS,
};
use crate::json::{self, Fields, Result};
use crate::path::At;
use crate::{DecodeErrorKind, thinking};

const CONVERSE: Dialect = Dialect::Converse;

/// Decodes a Converse request body.
pub fn decode_request(bytes: &[u8]) -> Result<Request> {
    decode_request_value(json::parse(bytes)?)
}

/// Decodes a Converse request body already parsed as JSON.
pub fn decode_request_value(value: Value) -> Result<Request> {
    let at = At::ROOT;
    let mut f = Fields::of(value, &at)?;
    let messages = f.required("messages", messages)?;
    let system = f.optional("system", |v, at| system_blocks(v, at).map(SystemPrompt::Blocks))?;
    let inference = f.optional("inferenceConfig", inference_config)?;
    let (tools, tool_choice) = f.optional("toolConfig", tool_config)?.unwrap_or((None, None));
    let additional = f.optional("additionalModelRequestFields", additional_fields)?;
    let unmapped = Unmapped::only(CONVERSE, f.rest());
    let additional = additional.unwrap_or_default();
    Ok(Request {
        messages,
        system,
        tools,
        tool_choice,
        inference,
        top_k: additional.top_k,
        thinking: additional.thinking,
        beta: additional.beta,
        model_fields: additional.model_fields,
        unmapped,
    })
}

/// Decodes a Converse response body.
pub fn decode_response(bytes: &[u8]) -> Result<Response> {
    decode_response_value(json::parse(bytes)?)
}

/// Decodes a Converse response body already parsed as JSON.
pub fn decode_response_value(value: Value) -> Result<Response> {
    let at = At::ROOT;
    let mut f = Fields::of(value, &at)?;
    let message = f.required("output", |v, at| {
        let (member, value) =
            json::sole_member(json::object(v, at)?, at, "ConverseOutput", OUTPUT_MEMBERS)?;
        match member.as_str() {
            "message" => message(value, &at.key("message")),
            _ => Err(json::unknown_member(at, "ConverseOutput", member, OUTPUT_MEMBERS)),
        }
    })?;
    let stop_reason =
        f.optional("stopReason", |v, at| Ok(StopReason::parse(&json::string(v, at)?)))?;
    let usage = f.optional("usage", usage)?;
    let metrics = f.optional("metrics", metrics)?;
    let model_fields = f.optional("additionalModelResponseFields", json::object)?;
    Ok(Response {
        id: None,
        model: None,
        message,
        stop_reason,
        usage,
        metrics,
        model_fields,
        unmapped: Unmapped::only(CONVERSE, f.rest()),
        notes: Vec::new(),
    })
}

/// Decodes a JSON array of Converse messages.
pub fn decode_messages(bytes: &[u8]) -> Result<Vec<Message>> {
    decode_messages_value(json::parse(bytes)?)
}

/// Decodes a JSON array of Converse messages already parsed as JSON.
pub fn decode_messages_value(value: Value) -> Result<Vec<Message>> {
    messages(value, &At::ROOT)
}

/// Decodes one Converse message already parsed as JSON.
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
    let content = f.required("content", |v, at| {
        let items = json::array(v, at)?;
        items.into_iter().enumerate().map(|(i, v)| content_block(v, &at.index(i))).collect()
    })?;
    Ok(Message {
        role,
        content,
        unmapped: Unmapped::only(CONVERSE, f.rest()),
        string_content: false,
    })
}

fn role(value: Value, at: &At<'_>) -> Result<Role> {
    match json::string(value, at)?.as_str() {
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        "system" => Ok(Role::System),
        other => Err(json::error(
            at,
            DecodeErrorKind::UnknownRole { role: other.to_owned(), allowed: ROLES },
        )),
    }
}

fn content_block(value: Value, at: &At<'_>) -> Result<ContentBlock> {
    let map = json::object(value, at)?;
    let (member, value) = json::sole_member(map, at, "ContentBlock", CONTENT_BLOCK_MEMBERS)?;
    let inner = at.key(&member);
    let at = &inner;
    Ok(match member.as_str() {
        "text" => ContentBlock::Text(TextBlock::new(json::string(value, at)?)),
        "image" => ContentBlock::Image(image(value, at)?),
        "document" => ContentBlock::Document(document(value, at)?),
        "video" => ContentBlock::Video(media(value, at)?),
        "audio" => ContentBlock::Audio(media(value, at)?),
        "toolUse" => ContentBlock::ToolUse(tool_use(value, at)?),
        "toolResult" => ContentBlock::ToolResult(tool_result(value, at)?),
        "guardContent" => ContentBlock::GuardContent(raw(value, at)?),
        "cachePoint" => ContentBlock::CachePoint(cache_point(value, at)?),
        "reasoningContent" => reasoning(value, at)?,
        "citationsContent" => ContentBlock::CitationsContent(raw(value, at)?),
        "searchResult" => ContentBlock::SearchResult(raw(value, at)?),
        "toolAddition" => ContentBlock::ToolAddition(raw(value, at)?),
        "toolRemoval" => ContentBlock::ToolRemoval(raw(value, at)?),
        _ => unknown(member, value),
    })
}

fn unknown(member: String, value: Value) -> ContentBlock {
    ContentBlock::Unknown(UnknownBlock { dialect: CONVERSE, json: wrap(member, value) })
}

fn wrap(member: String, value: Value) -> Value {
    let mut map = JsonMap::new();
    map.insert(member, value);
    Value::Object(map)
}

/// A reasoning member this version does not know keeps the whole block raw.
fn reasoning(value: Value, at: &At<'_>) -> Result<ContentBlock> {
    let map = json::object(value, at)?;
    let (member, value) = json::sole_member(map, at, "ReasoningContentBlock", REASONING_MEMBERS)?;
    let inner = at.key(&member);
    Ok(match member.as_str() {
        "reasoningText" => {
            let mut f = Fields::of(value, &inner)?;
            let text = f.required("text", json::string)?;
            let signature = f.optional("signature", json::string)?;
            let unmapped = Unmapped::only(CONVERSE, f.rest());
            ContentBlock::Thinking(ThinkingBlock { text, signature, unmapped })
        }
        "redactedContent" => ContentBlock::RedactedThinking(RedactedThinking {
            data: json::string(value, &inner)?,
            form: RedactedForm::ConverseBlob,
            unmapped: Unmapped::default(),
        }),
        _ => unknown("reasoningContent".to_owned(), wrap(member, value)),
    })
}

fn raw(value: Value, at: &At<'_>) -> Result<RawMember> {
    Ok(RawMember { json: json::object(value, at)? })
}

fn cache_point(value: Value, at: &At<'_>) -> Result<CachePoint> {
    let mut f = Fields::of(value, at)?;
    let kind = f.required("type", json::string)?;
    if kind != "default" {
        return Err(json::invalid(
            &at.key("type"),
            format!("cache point type `{kind}`; the only type is `default`"),
        ));
    }
    let ttl = f.optional("ttl", json::string)?;
    f.deny_rest(&["type", "ttl"])?;
    Ok(CachePoint { ttl })
}

fn image(value: Value, at: &At<'_>) -> Result<ImageBlock> {
    let mut f = Fields::of(value, at)?;
    let format = f.required("format", json::string)?;
    let source = f.required("source", |v, at| media_source(v, at, "ImageSource"))?;
    Ok(ImageBlock { format: Some(format), source, unmapped: Unmapped::only(CONVERSE, f.rest()) })
}

fn media(value: Value, at: &At<'_>) -> Result<MediaBlock> {
    let mut f = Fields::of(value, at)?;
    let format = f.required("format", json::string)?;
    let source = f.required("source", |v, at| media_source(v, at, "MediaSource"))?;
    Ok(MediaBlock { format, source, unmapped: Unmapped::only(CONVERSE, f.rest()) })
}

fn media_source(value: Value, at: &At<'_>, union: &'static str) -> Result<MediaSource> {
    let map = json::object(value, at)?;
    let (member, value) = json::sole_member(map, at, union, MEDIA_SOURCE_MEMBERS)?;
    let inner = at.key(&member);
    match member.as_str() {
        "bytes" => Ok(MediaSource::Bytes(json::string(value, &inner)?)),
        "s3Location" => Ok(MediaSource::S3(s3_location(value, &inner)?)),
        _ => Err(json::unknown_member(at, union, member, MEDIA_SOURCE_MEMBERS)),
    }
}

fn s3_location(value: Value, at: &At<'_>) -> Result<S3Location> {
    let mut f = Fields::of(value, at)?;
    let uri = f.required("uri", json::string)?;
    let bucket_owner = f.optional("bucketOwner", json::string)?;
    f.deny_rest(&["uri", "bucketOwner"])?;
    Ok(S3Location { uri, bucket_owner })
}

fn document(value: Value, at: &At<'_>) -> Result<DocumentBlock> {
    let mut f = Fields::of(value, at)?;
    let format = f.optional("format", json::string)?;
    let name = f.optional("name", json::string)?;
    let source = f.required("source", document_source)?;
    let context = f.optional("context", json::string)?;
    let citations = f.optional("citations", citations)?;
    let unmapped = Unmapped::only(CONVERSE, f.rest());
    Ok(DocumentBlock { name, format, source, context, citations, unmapped })
}

fn document_source(value: Value, at: &At<'_>) -> Result<DocumentSource> {
    let map = json::object(value, at)?;
    let (member, value) = json::sole_member(map, at, "DocumentSource", DOCUMENT_SOURCE_MEMBERS)?;
    let outer = at;
    let inner = at.key(&member);
    let at = &inner;
    match member.as_str() {
        "bytes" => Ok(DocumentSource::Bytes(json::string(value, at)?)),
        "s3Location" => Ok(DocumentSource::S3(s3_location(value, at)?)),
        "text" => Ok(DocumentSource::Text(json::string(value, at)?)),
        "content" => {
            let items = json::array(value, at)?;
            let chunks = items.into_iter().enumerate().map(|(i, item)| {
                let at = at.index(i);
                let map = json::object(item, &at)?;
                let (member, value) =
                    json::sole_member(map, &at, "DocumentContentBlock", &["text"])?;
                match member.as_str() {
                    "text" => json::string(value, &at.key("text")),
                    _ => Err(json::unknown_member(&at, "DocumentContentBlock", member, &["text"])),
                }
            });
            Ok(DocumentSource::Content(chunks.collect::<Result<_>>()?))
        }
        _ => Err(json::unknown_member(
            outer,
            "DocumentSource",
            member.clone(),
            DOCUMENT_SOURCE_MEMBERS,
        )),
    }
}

fn citations(value: Value, at: &At<'_>) -> Result<bool> {
    let mut f = Fields::of(value, at)?;
    let enabled = f.required("enabled", json::boolean)?;
    f.deny_rest(&["enabled"])?;
    Ok(enabled)
}

fn tool_use(value: Value, at: &At<'_>) -> Result<ToolUse> {
    let mut f = Fields::of(value, at)?;
    let id = f.required("toolUseId", json::string)?.into();
    let name = f.required("name", json::string)?;
    let input = f.required("input", json::any)?;
    let kind = f.optional("type", json::string)?;
    Ok(ToolUse { id, name, input, kind, unmapped: Unmapped::only(CONVERSE, f.rest()) })
}

fn tool_result(value: Value, at: &At<'_>) -> Result<ToolResult> {
    let mut f = Fields::of(value, at)?;
    let tool_use_id = f.required("toolUseId", json::string)?.into();
    let content = f.required("content", |v, at| {
        let items = json::array(v, at)?;
        let blocks = items.into_iter().enumerate().map(|(i, v)| tool_result_block(v, &at.index(i)));
        Ok(ToolResultContent::Blocks(blocks.collect::<Result<_>>()?))
    })?;
    let status = f.optional("status", |v, at| match json::string(v, at)?.as_str() {
        "success" => Ok(ToolResultStatus::Success),
        "error" => Ok(ToolResultStatus::Error),
        other => Err(json::invalid(at, format!("status `{other}`; expected success or error"))),
    })?;
    let unmapped = Unmapped::only(CONVERSE, f.rest());
    Ok(ToolResult { tool_use_id, content: Some(content), status, unmapped })
}

fn tool_result_block(value: Value, at: &At<'_>) -> Result<ToolResultBlock> {
    let map = json::object(value, at)?;
    let (member, value) =
        json::sole_member(map, at, "ToolResultContentBlock", TOOL_RESULT_BLOCK_MEMBERS)?;
    let inner = at.key(&member);
    let at = &inner;
    Ok(match member.as_str() {
        "json" => ToolResultBlock::Json { json: value },
        "text" => ToolResultBlock::Text { text: json::string(value, at)? },
        "image" => ToolResultBlock::Image(image(value, at)?),
        "document" => ToolResultBlock::Document(document(value, at)?),
        "video" => ToolResultBlock::Video(media(value, at)?),
        "searchResult" => ToolResultBlock::SearchResult(raw(value, at)?),
        _ => {
            ToolResultBlock::Unknown(UnknownBlock { dialect: CONVERSE, json: wrap(member, value) })
        }
    })
}

fn system_blocks(value: Value, at: &At<'_>) -> Result<Vec<SystemBlock>> {
    let items = json::array(value, at)?;
    let blocks = items.into_iter().enumerate().map(|(i, item)| {
        let at = at.index(i);
        let map = json::object(item, &at)?;
        let (member, value) =
            json::sole_member(map, &at, "SystemContentBlock", SYSTEM_BLOCK_MEMBERS)?;
        let inner = at.key(&member);
        Ok(match member.as_str() {
            "text" => SystemBlock::Text(TextBlock::new(json::string(value, &inner)?)),
            "guardContent" => SystemBlock::GuardContent(raw(value, &inner)?),
            "cachePoint" => SystemBlock::CachePoint(cache_point(value, &inner)?),
            _ => {
                SystemBlock::Unknown(UnknownBlock { dialect: CONVERSE, json: wrap(member, value) })
            }
        })
    });
    blocks.collect()
}

fn inference_config(value: Value, at: &At<'_>) -> Result<InferenceConfig> {
    let mut f = Fields::of(value, at)?;
    let config = InferenceConfig {
        max_tokens: f.optional("maxTokens", json::uint32)?,
        temperature: f.optional("temperature", json::number)?,
        top_p: f.optional("topP", json::number)?,
        stop_sequences: f.optional("stopSequences", json::strings)?,
    };
    f.deny_rest(&["maxTokens", "temperature", "topP", "stopSequences"])?;
    Ok(config)
}

type ToolConfig = (Option<Vec<Tool>>, Option<ToolChoice>);

fn tool_config(value: Value, at: &At<'_>) -> Result<ToolConfig> {
    let mut f = Fields::of(value, at)?;
    let tools = f.optional("tools", |v, at| {
        let items = json::array(v, at)?;
        items.into_iter().enumerate().map(|(i, v)| tool(v, &at.index(i))).collect()
    })?;
    let choice = f.optional("toolChoice", tool_choice)?;
    f.deny_rest(&["tools", "toolChoice"])?;
    Ok((tools, choice))
}

fn tool(value: Value, at: &At<'_>) -> Result<Tool> {
    let map = json::object(value, at)?;
    let (member, value) = json::sole_member(map, at, "Tool", TOOL_MEMBERS)?;
    let inner = at.key(&member);
    let at = &inner;
    Ok(match member.as_str() {
        "toolSpec" => {
            let mut f = Fields::of(value, at)?;
            let name = f.required("name", json::string)?;
            let description = f.optional("description", json::string)?;
            let input_schema = f.required("inputSchema", |v, at| {
                let map = json::object(v, at)?;
                let (member, value) = json::sole_member(map, at, "ToolInputSchema", &["json"])?;
                match member.as_str() {
                    "json" => Ok(value),
                    _ => Err(json::unknown_member(at, "ToolInputSchema", member, &["json"])),
                }
            })?;
            let strict = f.optional("strict", json::boolean)?;
            let unmapped = Unmapped::only(CONVERSE, f.rest());
            Tool::Spec(ToolSpec { name, description, input_schema, strict, unmapped })
        }
        "systemTool" => {
            let mut f = Fields::of(value, at)?;
            let name = f.required("name", json::string)?;
            f.deny_rest(&["name"])?;
            Tool::System(SystemTool { name })
        }
        "cachePoint" => Tool::CachePoint(cache_point(value, at)?),
        _ => Tool::Unknown(UnknownBlock { dialect: CONVERSE, json: wrap(member, value) }),
    })
}

fn tool_choice(value: Value, at: &At<'_>) -> Result<ToolChoice> {
    let map = json::object(value, at)?;
    let (member, value) = json::sole_member(map, at, "ToolChoice", TOOL_CHOICE_MEMBERS)?;
    let inner = at.key(&member);
    let mut f = Fields::of(value, &inner)?;
    let kind = match member.as_str() {
        "auto" => ToolChoiceKind::Auto,
        "any" => ToolChoiceKind::Any,
        "tool" => ToolChoiceKind::Tool { name: f.required("name", json::string)? },
        _ => return Err(json::unknown_member(at, "ToolChoice", member, TOOL_CHOICE_MEMBERS)),
    };
    f.deny_rest(&["name"])?;
    Ok(ToolChoice::new(kind))
}

#[derive(Default)]
struct Additional {
    thinking: Option<verbatim_model::ThinkingConfig>,
    beta: Option<Vec<String>>,
    top_k: Option<u32>,
    model_fields: Option<JsonMap>,
}

/// Splits `additionalModelRequestFields` into what the model names (thinking, effort, beta
/// flags, top_k) and the native fields passed through.
fn additional_fields(value: Value, at: &At<'_>) -> Result<Additional> {
    let mut f = Fields::of(value, at)?;
    let mut thinking = f.optional("thinking", thinking::decode)?;
    let beta = f.optional("anthropic_beta", json::strings)?;
    let top_k = f.optional("top_k", json::uint32)?;
    let mut rest = f.rest();
    thinking::take_effort(&mut thinking, &mut rest);
    let named_any = thinking.is_some() || beta.is_some() || top_k.is_some();
    let model_fields = if rest.is_empty() && named_any { None } else { Some(rest) };
    Ok(Additional { thinking, beta, top_k, model_fields })
}

fn usage(value: Value, at: &At<'_>) -> Result<Usage> {
    let mut f = Fields::of(value, at)?;
    let mut usage = Usage {
        input_tokens: f.optional("inputTokens", json::uint64)?,
        output_tokens: f.optional("outputTokens", json::uint64)?,
        total_tokens: f.optional("totalTokens", json::uint64)?,
        cache_read_input_tokens: f.optional("cacheReadInputTokens", json::uint64)?,
        cache_write_input_tokens: f.optional("cacheWriteInputTokens", json::uint64)?,
        unmapped: Unmapped::default(),
    };
    let rest = f.rest();
    // Converse also sends each cache counter as `*Count`; those stay in `unmapped` (so they
    // are written back) and fill the counter when the main name is absent.
    let alias = |key: &str| rest.get(key).and_then(Value::as_u64);
    usage.cache_read_input_tokens =
        usage.cache_read_input_tokens.or_else(|| alias("cacheReadInputTokenCount"));
    usage.cache_write_input_tokens =
        usage.cache_write_input_tokens.or_else(|| alias("cacheWriteInputTokenCount"));
    usage.unmapped = Unmapped::only(CONVERSE, rest);
    Ok(usage)
}

fn metrics(value: Value, at: &At<'_>) -> Result<Metrics> {
    let mut f = Fields::of(value, at)?;
    let latency_ms = f.optional("latencyMs", json::uint64)?;
    Ok(Metrics { latency_ms, unmapped: Unmapped::only(CONVERSE, f.rest()) })
}
