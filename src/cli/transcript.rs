//! A stored session as readable text: its settings, each live record (messages in full,
//! other entries on one line), and the token usage (`verbatim sessions show`, `chat`'s
//! `/show`, the end of `demo`).

use serde_json::Value;
use verbatim_model::{
    ContentBlock, SystemBlock, SystemPrompt, ThinkingConfig, ThinkingMode, Tool, ToolResultBlock,
    ToolResultContent, ToolResultStatus,
};
use verbatim_protocol::pricing::PriceTable;
use verbatim_store::{ConfigChange, Entry, Origin, Record, Session, ToolCallState};

use super::sessions::dialect_name;

/// The session as text: a header, each live record (messages in full, other entries on one
/// line), then the token usage.
pub(crate) fn transcript(session: &Session) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let info = &session.info;
    let config = session.config();
    line(format!("session {}", info.id));
    if config.model.is_empty() {
        line("model: none (set one with `verbatim chat --session ID --model MODEL_ID`)".into());
    } else {
        line(format!("model: {}", super::printable_line(&config.model)));
    }
    line(format!(
        "records: {}, created {}, updated {}",
        info.version,
        info.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
        info.updated_at.format("%Y-%m-%dT%H:%M:%SZ")
    ));
    if !info.start.tags.is_empty() {
        line(format!("tags: {}", super::printable_line(&info.start.tags.join(", "))));
    }
    match info.origin {
        Some(Origin::Fork { from, at }) => line(format!("forked from {from} at record {at}")),
        Some(Origin::Archive { from, at }) => {
            line(format!("archive of {from} as it was at record {at}"))
        }
        Some(Origin::Import) => line("imported".into()),
        None => {}
    }
    if let Some(system) = &config.system {
        line(format!("system: {}", system_text(system)));
    }
    if let Some(tools) = &config.tools {
        line(format!("tools: {}", tool_names(tools)));
    }
    if let Some(thinking) = &config.thinking {
        line(format!("thinking: {}", thinking_setting(thinking)));
    }
    for record in session.live_records() {
        line(String::new());
        line(record_text(record));
    }
    let usage = session.usage();
    line(String::new());
    line(format!("usage: {}", super::render::usage_line(&usage)));
    let ledger = verbatim_engine::Ledger::of(session, &PriceTable::new());
    line(format!("cost: {}", super::render::cost_line(&ledger)));
    out
}

fn system_text(system: &SystemPrompt) -> String {
    match system {
        SystemPrompt::Text(text) => text.clone(),
        SystemPrompt::Blocks(blocks) => blocks
            .iter()
            .map(|block| match block {
                SystemBlock::Text(text) => text.text.clone(),
                SystemBlock::GuardContent(raw) => {
                    format!("[guardContent] {}", Value::Object(raw.json.clone()))
                }
                SystemBlock::CachePoint(_) => "[cache point]".into(),
                SystemBlock::Unknown(unknown) => format!("[unknown block] {}", unknown.json),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn tool_names(tools: &[Tool]) -> String {
    let names: Vec<String> = tools
        .iter()
        .filter_map(|tool| match tool {
            Tool::Spec(spec) => Some(spec.name.clone()),
            Tool::System(system) => Some(format!("{} (system tool)", system.name)),
            Tool::CachePoint(_) => None,
            Tool::Unknown(unknown) => Some(format!("[unknown tool] {}", unknown.json)),
        })
        .collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

fn thinking_setting(thinking: &ThinkingConfig) -> String {
    match &thinking.mode {
        ThinkingMode::Disabled => "disabled".into(),
        ThinkingMode::Enabled { budget_tokens } => {
            format!("enabled, budget {budget_tokens} tokens")
        }
        ThinkingMode::Adaptive { effort: Some(effort) } => {
            format!("adaptive, effort {}", effort.as_str())
        }
        ThinkingMode::Adaptive { effort: None } => "adaptive".into(),
    }
}

fn record_text(record: &Record) -> String {
    let seq = record.seq;
    match &record.entry {
        Entry::Message(history) => {
            let mut head = format!("#{seq} {}", history.message.role.as_str());
            if let Some(provenance) = &history.provenance {
                head.push_str(&format!(
                    " ({} via {}",
                    provenance.model_id,
                    provenance.api.as_str()
                ));
                if let Some(reason) = &provenance.stop_reason {
                    head.push_str(&format!(", {}", reason.as_str()));
                }
                head.push(')');
            }
            let mut text = head;
            for block in &history.message.content {
                text.push('\n');
                text.push_str(&block_text(block));
            }
            text
        }
        Entry::Config(change) => {
            let what = match change {
                ConfigChange::Model(model) => format!("model set to {model}"),
                ConfigChange::System(Some(system)) => {
                    format!("system set to {}", system_text(system))
                }
                ConfigChange::System(None) => "system prompt removed".into(),
                ConfigChange::Tools(Some(tools)) => format!("tools set to {}", tool_names(tools)),
                ConfigChange::Tools(None) => "tools removed".into(),
                ConfigChange::Thinking(Some(thinking)) => {
                    format!("thinking set to {}", thinking_setting(thinking))
                }
                ConfigChange::Thinking(None) => "thinking removed".into(),
                ConfigChange::Settings(settings) if settings.is_empty() => {
                    "settings cleared".into()
                }
                ConfigChange::Settings(settings) => {
                    let json = serde_json::to_string(settings).unwrap_or_default();
                    format!("settings set to {json}")
                }
                ConfigChange::Caching(caching) => {
                    format!("caching set to {}", super::chat::caching_text(caching))
                }
            };
            format!("#{seq} [config] {what}")
        }
        Entry::ToolCall(event) => {
            let state = match &event.state {
                ToolCallState::Requested => "requested".to_owned(),
                ToolCallState::Started => "started".to_owned(),
                ToolCallState::Completed { .. } => "completed".to_owned(),
                ToolCallState::Failed { message } => format!("failed: {message}"),
                ToolCallState::Unknown => "outcome unknown".to_owned(),
            };
            format!("#{seq} [tool call {} ({})] {state}", event.name, event.tool_use_id.as_str())
        }
        Entry::Repair { fixes } => format!("#{seq} [repair] {} fix(es) applied", fixes.len()),
        Entry::Forked { from, through } => {
            format!("#{seq} [forked] from {from} after its record {through}")
        }
        Entry::Rewind { to, archive } => {
            format!("#{seq} [rewind] to record {to}; archive {archive}")
        }
    }
}

fn block_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Thinking(thinking) => format!("thinking: {}", thinking.text),
        ContentBlock::RedactedThinking(redacted) => {
            format!("[redacted thinking, {} bytes]", redacted.data.len())
        }
        ContentBlock::ToolUse(tool_use) => {
            format!("tool call {} ({}): {}", tool_use.name, tool_use.id.as_str(), tool_use.input)
        }
        ContentBlock::ToolResult(result) => {
            let status = match result.status {
                Some(ToolResultStatus::Success) => "success",
                Some(ToolResultStatus::Error) => "error",
                None => "status not stated",
            };
            let mut text = format!("tool result for {} ({status})", result.tool_use_id.as_str());
            match &result.content {
                Some(ToolResultContent::Text(content)) => {
                    text.push_str(": ");
                    text.push_str(content);
                }
                Some(ToolResultContent::Blocks(blocks)) => {
                    let parts: Vec<String> = blocks.iter().map(result_block_text).collect();
                    text.push_str(": ");
                    text.push_str(&parts.join("\n"));
                }
                None => {}
            }
            text
        }
        ContentBlock::Image(image) => {
            format!(
                "[image{}]",
                image.format.as_deref().map(|f| format!(" {f}")).unwrap_or_default()
            )
        }
        ContentBlock::Document(document) => format!(
            "[document{}]",
            document.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
        ),
        ContentBlock::Video(media) => format!("[video {}]", media.format),
        ContentBlock::Audio(media) => format!("[audio {}]", media.format),
        ContentBlock::CachePoint(_) => "[cache point]".into(),
        ContentBlock::GuardContent(raw)
        | ContentBlock::CitationsContent(raw)
        | ContentBlock::SearchResult(raw)
        | ContentBlock::ToolAddition(raw)
        | ContentBlock::ToolRemoval(raw) => {
            format!("[{}] {}", block.kind_name(), Value::Object(raw.json.clone()))
        }
        ContentBlock::Unknown(unknown) => {
            format!("[unknown {} block] {}", dialect_name(unknown.dialect), unknown.json)
        }
    }
}

fn result_block_text(block: &ToolResultBlock) -> String {
    match block {
        ToolResultBlock::Text { text } => text.clone(),
        ToolResultBlock::Json { json } => json.to_string(),
        ToolResultBlock::Image(image) => {
            format!(
                "[image{}]",
                image.format.as_deref().map(|f| format!(" {f}")).unwrap_or_default()
            )
        }
        ToolResultBlock::Document(document) => format!(
            "[document{}]",
            document.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
        ),
        ToolResultBlock::Video(media) => format!("[video {}]", media.format),
        ToolResultBlock::SearchResult(raw) => {
            format!("[searchResult] {}", Value::Object(raw.json.clone()))
        }
        ToolResultBlock::Unknown(unknown) => {
            format!("[unknown {} block] {}", dialect_name(unknown.dialect), unknown.json)
        }
    }
}
