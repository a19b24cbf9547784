//! The emulator's own reading of a request body, in either dialect, into one neutral shape:
//! messages of blocks, the tools offered, whether thinking is on.
//!
//! This is deliberately a second implementation of the wire, sharing nothing with
//! `verbatim-protocol`: it reads `serde_json::Value`s the way the service would and reports
//! problems with the service's own texts (see `checks`).

use serde_json::Value;

/// Which body format arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `/converse`, `/converse-stream`.
    Converse,
    /// `/invoke`, `/invoke-with-response-stream` with an Anthropic Messages body.
    Anthropic,
}

/// One content block, whatever the dialect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    Text(String),
    Thinking {
        text: String,
        signature: Option<String>,
    },
    Redacted(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        id: String,
        text: String,
        /// Whether one of its text parts is empty or only whitespace.
        blank: bool,
    },
    /// Images, documents, cache points, ...: kept by kind only.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Msg {
    pub(crate) role: String,
    pub(crate) blocks: Vec<Block>,
}

impl Msg {
    /// The ids of its tool calls, in order.
    pub(crate) fn tool_use_ids(&self) -> Vec<&str> {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Its tool results: block index and the id each answers.
    pub(crate) fn tool_results(&self) -> Vec<(usize, &str)> {
        self.blocks
            .iter()
            .enumerate()
            .filter_map(|(j, b)| match b {
                Block::ToolResult { id, .. } => Some((j, id.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Whether it carries tool results.
    pub(crate) fn has_tool_results(&self) -> bool {
        self.blocks.iter().any(|b| matches!(b, Block::ToolResult { .. }))
    }

    /// A user message of the user's own (not tool results): where an assistant turn starts.
    pub(crate) fn is_plain_user(&self) -> bool {
        self.role == "user" && !self.has_tool_results()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolDef {
    pub(crate) name: String,
    pub(crate) schema: Value,
}

/// A request as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conversation {
    pub(crate) messages: Vec<Msg>,
    pub(crate) tools: Vec<ToolDef>,
    /// Converse: whether `toolConfig.tools` holds any tool (specs or system tools).
    pub(crate) tool_config: bool,
    pub(crate) thinking: bool,
    /// Anthropic `max_tokens` / Converse `inferenceConfig.maxTokens`.
    pub(crate) max_tokens: Option<u64>,
}

/// Reads the messages, tools and thinking setting. Structure is assumed checked already
/// (`checks` runs first); anything unexpected is skipped, never a panic.
pub(crate) fn read(dialect: Dialect, body: &Value) -> Conversation {
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    let messages = messages.iter().map(|m| read_message(dialect, m)).collect();
    let (tools, thinking, max_tokens) = match dialect {
        Dialect::Converse => {
            let tools = body["toolConfig"]["tools"]
                .as_array()
                .map(|tools| {
                    tools
                        .iter()
                        .filter_map(|t| {
                            let spec = t.get("toolSpec")?;
                            Some(ToolDef {
                                name: spec["name"].as_str()?.to_owned(),
                                schema: spec["inputSchema"]["json"].clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let fields = &body["additionalModelRequestFields"];
            let thinking =
                thinking_on(&fields["thinking"]) || thinking_on(&fields["reasoningConfig"]);
            (tools, thinking, body["inferenceConfig"]["maxTokens"].as_u64())
        }
        Dialect::Anthropic => {
            let tools = body["tools"]
                .as_array()
                .map(|tools| {
                    tools
                        .iter()
                        .filter_map(|t| {
                            Some(ToolDef {
                                name: t["name"].as_str()?.to_owned(),
                                schema: t["input_schema"].clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            (tools, thinking_on(&body["thinking"]), body["max_tokens"].as_u64())
        }
    };
    let tool_config = body["toolConfig"]["tools"].as_array().is_some_and(|t| !t.is_empty());
    Conversation { messages, tools, tool_config, thinking, max_tokens }
}

fn thinking_on(config: &Value) -> bool {
    matches!(config["type"].as_str(), Some("enabled" | "adaptive"))
}

fn read_message(dialect: Dialect, message: &Value) -> Msg {
    let role = message["role"].as_str().unwrap_or_default().to_owned();
    let blocks = match (&message["content"], dialect) {
        (Value::String(text), Dialect::Anthropic) if text.is_empty() => Vec::new(),
        (Value::String(text), Dialect::Anthropic) => vec![Block::Text(text.clone())],
        (Value::Array(items), Dialect::Converse) => {
            server_tools(items.iter().map(converse_block).collect(), items)
        }
        (Value::Array(items), Dialect::Anthropic) => items.iter().map(anthropic_block).collect(),
        _ => Vec::new(),
    };
    Msg { role, blocks }
}

/// Empty or only whitespace: text the service refuses.
pub(crate) fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

fn text_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn converse_block(block: &Value) -> Block {
    let Some((kind, value)) = block.as_object().and_then(|m| m.iter().next()) else {
        return Block::Other(String::new());
    };
    match kind.as_str() {
        "text" => Block::Text(text_of(value)),
        "reasoningContent" => {
            if let Some(data) = value.get("redactedContent") {
                return Block::Redacted(text_of(data));
            }
            let reasoning = &value["reasoningText"];
            Block::Thinking {
                text: text_of(&reasoning["text"]),
                signature: reasoning["signature"].as_str().map(str::to_owned),
            }
        }
        "toolUse" => Block::ToolUse {
            id: text_of(&value["toolUseId"]),
            name: text_of(&value["name"]),
            input: value["input"].clone(),
        },
        "toolResult" => {
            let items = value["content"].as_array().map(Vec::as_slice).unwrap_or_default();
            Block::ToolResult {
                id: text_of(&value["toolUseId"]),
                text: items
                    .iter()
                    .map(|i| {
                        i["text"].as_str().map_or_else(|| i["json"].to_string(), str::to_owned)
                    })
                    .collect(),
                blank: items.iter().any(|i| i["text"].as_str().is_some_and(is_blank)),
            }
        }
        other => Block::Other(other.to_owned()),
    }
}

/// Nova's built-in tools run on the server inside the assistant turn: a tool use of type
/// `server_tool_use` and the tool result answering it in the same message (recorded:
/// pydantic-ai `test_bedrock_model_multi_turn_code_execution`, 200). Both are content of the
/// turn, not a call waiting for the user's result, so they are kept by kind only.
fn server_tools(mut blocks: Vec<Block>, items: &[Value]) -> Vec<Block> {
    let server: Vec<&str> = items
        .iter()
        .filter(|i| i["toolUse"]["type"] == "server_tool_use")
        .filter_map(|i| i["toolUse"]["toolUseId"].as_str())
        .collect();
    let answered: Vec<&str> = items
        .iter()
        .filter_map(|i| i["toolResult"]["toolUseId"].as_str())
        .filter(|id| server.contains(id))
        .collect();
    for block in &mut blocks {
        let kind = match block {
            Block::ToolUse { id, .. } if answered.contains(&id.as_str()) => "serverToolUse",
            Block::ToolResult { id, .. } if answered.contains(&id.as_str()) => "serverToolResult",
            _ => continue,
        };
        *block = Block::Other(kind.to_owned());
    }
    blocks
}

fn anthropic_block(block: &Value) -> Block {
    match block["type"].as_str().unwrap_or_default() {
        "text" => Block::Text(text_of(&block["text"])),
        "thinking" => Block::Thinking {
            text: text_of(&block["thinking"]),
            signature: block["signature"].as_str().map(str::to_owned),
        },
        "redacted_thinking" => Block::Redacted(text_of(&block["data"])),
        "tool_use" => Block::ToolUse {
            id: text_of(&block["id"]),
            name: text_of(&block["name"]),
            input: block["input"].clone(),
        },
        "tool_result" => {
            let (text, blank) = match &block["content"] {
                Value::String(text) => (text.clone(), false),
                Value::Array(items) => {
                    let texts: Vec<&str> =
                        items.iter().filter_map(|i| i["text"].as_str()).collect();
                    (texts.concat(), texts.into_iter().any(is_blank))
                }
                _ => (String::new(), false),
            };
            Block::ToolResult { id: text_of(&block["tool_use_id"]), text, blank }
        }
        other => Block::Other(other.to_owned()),
    }
}
