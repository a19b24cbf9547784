//! Tool pairing: every tool use has one result in the next user message, every result answers
//! a use of the message before, results come first, and a history with tool blocks declares
//! tools. A server tool use (Nova's built-in tools, `"type": "server_tool_use"`) answered by a
//! tool result in its own assistant message is complete: the server ran it inside the turn.
//!
//! Emits [`Rule::ResultUnexpected`] (`tool.result_unexpected`), [`Rule::ResultCount`]
//! (`tool.result_count`), [`Rule::ResultsFirst`] (`tool.results_first`),
//! [`Rule::ResultMissing`] (`tool.result_missing`), [`Rule::ToolConfigMissing`]
//! (`tool.config_missing`) and [`Rule::ResultsAlone`] (`tool.results_alone`).

use std::collections::HashSet;

use verbatim_model::{
    Api, ContentBlock, Message, Role, Tool, ToolResult, ToolResultBlock, ToolResultContent,
    ToolResultStatus, ToolSpec,
};

use super::tools::declared_tool_names;
use super::{CheckPass, answered_in_message, has_results};
use crate::assemble::Severity;
use crate::assemble::action::Action;
use crate::assemble::wire::{self, Setting};
use crate::capability::ResultsBeside;
use crate::rules::Rule;

/// The text of the error result repair adds for a tool use that has none.
pub(crate) const INTERRUPTED: &str = "interrupted before completion: no result was recorded";

fn tool_uses(message: &Message) -> Vec<&str> {
    message
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse(u) => Some(u.id.as_str()),
            _ => None,
        })
        .collect()
}

fn interrupted(id: &str) -> ContentBlock {
    ContentBlock::ToolResult(ToolResult {
        tool_use_id: id.into(),
        content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text {
            text: INTERRUPTED.to_owned(),
        }])),
        status: Some(ToolResultStatus::Error),
        unmapped: Default::default(),
    })
}

/// Tool uses against tool results across the messages, and the tools a history with tool
/// blocks needs.
pub(super) fn pairing(out: &mut CheckPass<'_>) {
    let state = out.state;
    let request = &state.request;
    let messages = &request.messages;
    let status_ok = out.context.caps.tool_result_status;
    let synthesized = |id: &str| {
        let mut block = interrupted(id);
        if let ContentBlock::ToolResult(r) = &mut block
            && !status_ok
        {
            r.status = None;
        }
        block
    };
    for (i, message) in messages.iter().enumerate() {
        if message.role != Role::User || !has_results(message) {
            continue;
        }
        // A set: a message may hold tens of thousands of calls and as many results.
        let uses: HashSet<&str> = match i.checked_sub(1).map(|p| &messages[p]) {
            Some(previous) if previous.role == Role::Assistant => {
                tool_uses(previous).into_iter().collect()
            }
            _ => HashSet::new(),
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut leading = true;
        for (j, block) in message.content.iter().enumerate() {
            let ContentBlock::ToolResult(result) = block else {
                // A cache point belongs to the block before it (Anthropic's cache_control).
                leading &= matches!(block, ContentBlock::CachePoint(_));
                continue;
            };
            let id = result.tool_use_id.as_str();
            let drop = Action::DropBlock { message: i, block: j, kind: "toolResult".to_owned() };
            if !uses.contains(id) {
                let what = format!("a result for `{id}`, which the previous message did not call");
                let at = wire::message(i).key("content").index(j);
                out.push_at(
                    Rule::ResultUnexpected,
                    Severity::Error,
                    out.block(i, j),
                    &at,
                    what,
                    id,
                    Some(drop),
                );
                continue;
            }
            if !seen.insert(id) {
                let what = format!("a second result for `{id}`");
                let at = wire::message(i).key("content");
                out.push_at(
                    Rule::ResultCount,
                    Severity::Error,
                    out.block(i, j),
                    &at,
                    what,
                    "",
                    Some(drop),
                );
                continue;
            }
            if !leading {
                let what = "tool results after other content; results come first";
                let missing = message
                    .content
                    .iter()
                    .filter(|b| matches!(b, ContentBlock::ToolResult(_)))
                    .count();
                out.fix(
                    Rule::ResultsFirst,
                    out.block(i, j),
                    what,
                    &missing.to_string(),
                    Action::ResultsFirst { message: i },
                );
                break;
            }
        }
    }
    for (i, message) in messages.iter().enumerate() {
        if message.role != Role::Assistant {
            continue;
        }
        // A server tool use answered inside its own message needs no user result.
        let inside = answered_in_message(message);
        let uses: Vec<&str> =
            tool_uses(message).into_iter().filter(|id| !inside.contains(id)).collect();
        if uses.is_empty() {
            continue;
        }
        let next = messages.get(i + 1).filter(|m| m.role == Role::User);
        let answered: HashSet<&str> = next
            .map(|m| {
                m.content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::ToolResult(r) => Some(r.tool_use_id.as_str()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<&str> = uses.iter().copied().filter(|id| !answered.contains(id)).collect();
        let Some(first) = missing.first() else { continue };
        let j = message
            .content
            .iter()
            .position(|b| matches!(b, ContentBlock::ToolUse(u) if u.id.as_str() == *first))
            .expect("a use of the message");
        let what = format!("no result for tool use {}", missing.join(", "));
        let action = match next {
            Some(next) => {
                let at = next
                    .content
                    .iter()
                    .take_while(|b| {
                        matches!(b, ContentBlock::ToolResult(_) | ContentBlock::CachePoint(_))
                    })
                    .count();
                Action::InsertBlock { message: i + 1, block: at, content: synthesized(first) }
            }
            None => Action::InsertMessage {
                message: i + 1,
                content: Message::new(Role::User, vec![synthesized(first)]),
            },
        };
        out.push_at(
            Rule::ResultMissing,
            Severity::Error,
            out.block(i, j),
            &wire::message(i),
            what,
            &missing.join(", "),
            Some(action),
        );
        continue;
    }
    let history_tools: Vec<&str> = messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            ContentBlock::ToolUse(u) => Some(u.name.as_str()),
            _ => None,
        })
        .collect();
    let any_results = messages.iter().any(has_results);
    let declared = declared_tool_names(request);
    if (!history_tools.is_empty() || any_results) && declared.is_empty() {
        let mut specs: Vec<ToolSpec> = out.context.recorded_tools.to_vec();
        let mut named: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
        for name in history_tools {
            if named.insert(name.to_owned()) {
                specs.push(ToolSpec {
                    name: name.to_owned(),
                    description: None,
                    input_schema: serde_json::json!({"type": "object"}),
                    strict: None,
                    unmapped: Default::default(),
                });
            }
        }
        if specs.is_empty() {
            specs.push(ToolSpec {
                name: "none".to_owned(),
                description: Some("No tool is available.".to_owned()),
                input_schema: serde_json::json!({"type": "object"}),
                strict: None,
                unmapped: Default::default(),
            });
        }
        let mut tools: Vec<Tool> = request.tools.clone().unwrap_or_default();
        tools.splice(0..0, specs.into_iter().map(Tool::Spec));
        let what = "the history holds tool use or results but the request declares no tools";
        out.fix(
            Rule::ToolConfigMissing,
            out.setting(Setting::Tools),
            what,
            "",
            Action::SetTools { tools: Some(tools) },
        );
    }
}

/// A user message holding tool results beside other blocks, on Converse, to a model that takes
/// the results alone in their turn (bedrock-rules R3.4): an error where Bedrock was recorded
/// refusing it, a warning where whether the model takes it is not known.
pub(super) fn results_alone(out: &mut CheckPass<'_>) {
    if out.api() != Api::Converse {
        return;
    }
    let caps = out.context.caps;
    let severity = match caps.results_beside {
        ResultsBeside::Taken => return,
        ResultsBeside::Refused => Severity::Error,
        ResultsBeside::NotKnown => Severity::Warning,
    };
    let state = out.state;
    for (i, message) in state.request.messages.iter().enumerate() {
        if message.role != Role::User || !has_results(message) {
            continue;
        }
        // A cache point is a marker, not conversation content: it is not counted.
        let other = message
            .content
            .iter()
            .position(|b| !matches!(b, ContentBlock::ToolResult(_) | ContentBlock::CachePoint(_)));
        let Some(j) = other else { continue };
        let kind = message.content[j].kind_name();
        let what = match severity {
            Severity::Error => {
                format!("{} takes tool results alone in their turn, not beside {kind}", caps.family)
            }
            _ => format!(
                "tool results beside {kind} in one turn, sent to {}, which is not recorded taking or refusing it; some models refuse it",
                caps.family
            ),
        };
        let at = wire::message(i).key("content");
        out.push_at(Rule::ResultsAlone, severity, out.block(i, j), &at, what, "", None);
    }
}
