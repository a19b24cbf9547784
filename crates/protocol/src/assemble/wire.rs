//! Where things sit in the request as it is sent: the JSON path of a message, a block, a field
//! or a setting in the Converse or the Anthropic dialect.
//!
//! Messages map one to one. Content blocks do too in Converse; in Anthropic a cache point is
//! not a block but a `cache_control` key on the block before it, so block indexes shift.

use verbatim_model::{Api, ContentBlock, Request, SystemBlock, SystemPrompt, Tool};

use crate::JsonPath;

/// A field inside a content block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    ToolUseId,
    ToolName,
    ToolInput,
    ToolResultStatus,
    ToolResultContent(usize),
    Signature,
    ImageSource,
    ImageFormat,
    DocumentName,
    DocumentFormat,
    /// Inline image bytes (base64).
    ImageBytes,
    /// Inline document bytes (base64).
    DocumentBytes,
    /// Redacted thinking's data.
    RedactedData,
}

/// A top-level setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    MaxTokens,
    Temperature,
    TopP,
    TopK,
    StopSequences,
    Thinking,
    Budget,
    ToolChoice,
    Tools,
}

pub(crate) fn message(index: usize) -> JsonPath {
    JsonPath::root().key("messages").index(index)
}

/// Where the items of the request's lists land on the wire, taken once per check so that a
/// path costs the same whatever the index of its item (counting the cache points before an
/// item for each path would make a check quadratic in the length of a list).
///
/// In Anthropic a cache point is not an item but the `cache_control` of the item before it,
/// so the items after one move up; for each list that holds a cache point the table keeps
/// how many items that are not cache points come before each item. Converse needs no table.
pub(crate) struct Places {
    api: Api,
    /// Per message: the counts of its blocks, or empty when it holds no cache point.
    messages: Vec<Vec<usize>>,
    system: Vec<usize>,
    tools: Vec<usize>,
}

/// How many items that are not cache points come before each item, and after the last one;
/// empty when the list holds no cache point (then the count before item `k` is `k`).
fn counts<T>(items: &[T], is_point: impl Fn(&T) -> bool) -> Vec<usize> {
    if !items.iter().any(&is_point) {
        return Vec::new();
    }
    let mut before = 0;
    let mut counts = Vec::with_capacity(items.len() + 1);
    for item in items {
        counts.push(before);
        before += usize::from(!is_point(item));
    }
    counts.push(before);
    counts
}

fn block_is_point(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::CachePoint(_))
}

fn system_is_point(block: &SystemBlock) -> bool {
    matches!(block, SystemBlock::CachePoint(_))
}

fn tool_is_point(tool: &Tool) -> bool {
    matches!(tool, Tool::CachePoint(_))
}

fn system_blocks(request: &Request) -> &[SystemBlock] {
    match &request.system {
        Some(SystemPrompt::Blocks(blocks)) => blocks,
        _ => &[],
    }
}

impl Places {
    /// The table for `request` sent to `api`.
    pub(crate) fn of(api: Api, request: &Request) -> Places {
        if api == Api::Converse {
            return Places { api, messages: Vec::new(), system: Vec::new(), tools: Vec::new() };
        }
        Places {
            api,
            messages: request.messages.iter().map(|m| counts(&m.content, block_is_point)).collect(),
            system: counts(system_blocks(request), system_is_point),
            tools: counts(request.tools.as_deref().unwrap_or(&[]), tool_is_point),
        }
    }

    /// The path of `messages[i].content[j]` (of the model) in the wire request.
    pub(crate) fn block(&self, request: &Request, i: usize, j: usize) -> JsonPath {
        let content = request.messages.get(i).map_or(&[][..], |m| &m.content[..]);
        let counts = self.messages.get(i).map_or(&[][..], Vec::as_slice);
        self.item(message(i).key("content"), content, counts, j, block_is_point)
    }

    /// The path of item `k` of a list under `root`; `counts` as [`counts`] gives them.
    fn item<T>(
        &self,
        root: JsonPath,
        items: &[T],
        counts: &[usize],
        k: usize,
        is_point: impl Fn(&T) -> bool,
    ) -> JsonPath {
        match self.api {
            Api::Converse => root.index(k),
            Api::InvokeModel | Api::Messages => {
                let before = match counts {
                    [] => k.min(items.len()),
                    counts => counts[k.min(items.len())],
                };
                match items.get(k) {
                    Some(t) if is_point(t) => {
                        root.index(before.saturating_sub(1)).key("cache_control")
                    }
                    _ => root.index(before),
                }
            }
        }
    }

    /// The path of a field of `messages[i].content[j]`.
    pub(crate) fn field(&self, request: &Request, i: usize, j: usize, field: Field) -> JsonPath {
        let api = self.api;
        let at = self.block(request, i, j);
        match (api, field) {
            (Api::Converse, Field::ToolUseId) => at.key("toolUse").key("toolUseId"),
            (Api::Converse, Field::ToolName) => at.key("toolUse").key("name"),
            (Api::Converse, Field::ToolInput) => at.key("toolUse").key("input"),
            (Api::Converse, Field::ToolResultStatus) => at.key("toolResult").key("status"),
            (Api::Converse, Field::ToolResultContent(k)) => {
                at.key("toolResult").key("content").index(k)
            }
            (Api::Converse, Field::Signature) => {
                at.key("reasoningContent").key("reasoningText").key("signature")
            }
            (Api::Converse, Field::ImageSource) => at.key("image").key("source"),
            (Api::Converse, Field::ImageFormat) => at.key("image").key("format"),
            (Api::Converse, Field::DocumentName) => at.key("document").key("name"),
            (Api::Converse, Field::DocumentFormat) => at.key("document").key("format"),
            (Api::Converse, Field::ImageBytes) => at.key("image").key("source").key("bytes"),
            (Api::Converse, Field::DocumentBytes) => at.key("document").key("source").key("bytes"),
            (Api::Converse, Field::RedactedData) => {
                at.key("reasoningContent").key("redactedContent")
            }
            (Api::InvokeModel | Api::Messages, Field::ToolUseId) => at.key("id"),
            (Api::InvokeModel | Api::Messages, Field::ToolName) => at.key("name"),
            (Api::InvokeModel | Api::Messages, Field::ToolInput) => at.key("input"),
            (Api::InvokeModel | Api::Messages, Field::ToolResultStatus) => at.key("is_error"),
            (Api::InvokeModel | Api::Messages, Field::ToolResultContent(k)) => {
                at.key("content").index(k)
            }
            (Api::InvokeModel | Api::Messages, Field::Signature) => at.key("signature"),
            (Api::InvokeModel | Api::Messages, Field::ImageSource) => at.key("source"),
            (Api::InvokeModel | Api::Messages, Field::ImageFormat) => {
                at.key("source").key("media_type")
            }
            (Api::InvokeModel | Api::Messages, Field::DocumentName) => at.key("title"),
            (Api::InvokeModel | Api::Messages, Field::DocumentFormat) => {
                at.key("source").key("media_type")
            }
            (Api::InvokeModel | Api::Messages, Field::ImageBytes | Field::DocumentBytes) => {
                at.key("source").key("data")
            }
            (Api::InvokeModel | Api::Messages, Field::RedactedData) => at.key("data"),
        }
    }

    /// The path of `system[k]` (of the model).
    pub(crate) fn system_block(&self, request: &Request, k: usize) -> JsonPath {
        let root = JsonPath::root().key("system");
        match &request.system {
            Some(SystemPrompt::Blocks(blocks)) => {
                self.item(root, blocks, &self.system, k, system_is_point)
            }
            _ => root,
        }
    }

    /// The path of `tools[k]` (of the model).
    pub(crate) fn tool(&self, request: &Request, k: usize) -> JsonPath {
        let tools = request.tools.as_deref().unwrap_or(&[]);
        let root = setting(self.api, Setting::Tools);
        self.item(root, tools, &self.tools, k, tool_is_point)
    }

    /// The path of a field of the tool specification `tools[k]`.
    pub(crate) fn tool_spec_field(&self, request: &Request, k: usize, name: &str) -> JsonPath {
        let at = self.tool(request, k);
        match self.api {
            Api::Converse => at.key("toolSpec").key(name),
            Api::InvokeModel | Api::Messages => at.key(name),
        }
    }
}

/// The path of a top-level setting.
pub(crate) fn setting(api: Api, setting: Setting) -> JsonPath {
    let root = JsonPath::root();
    match (api, setting) {
        (Api::Converse, Setting::MaxTokens) => root.key("inferenceConfig").key("maxTokens"),
        (Api::Converse, Setting::Temperature) => root.key("inferenceConfig").key("temperature"),
        (Api::Converse, Setting::TopP) => root.key("inferenceConfig").key("topP"),
        (Api::Converse, Setting::StopSequences) => root.key("inferenceConfig").key("stopSequences"),
        (Api::Converse, Setting::TopK) => root.key("additionalModelRequestFields").key("top_k"),
        (Api::Converse, Setting::Thinking) => {
            root.key("additionalModelRequestFields").key("thinking")
        }
        (Api::Converse, Setting::Budget) => {
            root.key("additionalModelRequestFields").key("thinking").key("budget_tokens")
        }
        (Api::Converse, Setting::ToolChoice) => root.key("toolConfig").key("toolChoice"),
        (Api::Converse, Setting::Tools) => root.key("toolConfig").key("tools"),
        (Api::InvokeModel | Api::Messages, Setting::MaxTokens) => root.key("max_tokens"),
        (Api::InvokeModel | Api::Messages, Setting::Temperature) => root.key("temperature"),
        (Api::InvokeModel | Api::Messages, Setting::TopP) => root.key("top_p"),
        (Api::InvokeModel | Api::Messages, Setting::StopSequences) => root.key("stop_sequences"),
        (Api::InvokeModel | Api::Messages, Setting::TopK) => root.key("top_k"),
        (Api::InvokeModel | Api::Messages, Setting::Thinking) => root.key("thinking"),
        (Api::InvokeModel | Api::Messages, Setting::Budget) => {
            root.key("thinking").key("budget_tokens")
        }
        (Api::InvokeModel | Api::Messages, Setting::ToolChoice) => root.key("tool_choice"),
        (Api::InvokeModel | Api::Messages, Setting::Tools) => root.key("tools"),
    }
}

/// The Anthropic name of a block kind (`text`, `tool_use`, `thinking`, …): thinking errors come
/// from the Anthropic layer and name blocks its way on both APIs.
pub(crate) fn anthropic_kind(block: &ContentBlock) -> &'static str {
    match block {
        ContentBlock::ToolUse(_) => "tool_use",
        ContentBlock::ToolResult(_) => "tool_result",
        ContentBlock::Thinking(_) => "thinking",
        ContentBlock::RedactedThinking(_) => "redacted_thinking",
        block => block.kind_name(),
    }
}
