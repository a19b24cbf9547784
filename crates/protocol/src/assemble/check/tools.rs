//! Tools: the declared tools, the tool choice, and the tool use and tool result blocks of the
//! messages.
//!
//! Emits [`Rule::ToolSpec`] (`tool.spec_invalid`), [`Rule::ToolName`] (`tool.name_invalid`),
//! [`Rule::CachePlacement`] and [`Rule::CacheTtl`] (`cache.placement`, `cache.ttl`, for cache
//! points among the tools), [`Rule::ToolChoiceUnknown`] (`tool.choice_unknown`),
//! [`Rule::ForcedToolChoice`] (`tool.choice_forced`), [`Rule::ToolUseId`]
//! (`tool.use_id_invalid`), [`Rule::ToolInput`] (`tool.input_not_object`),
//! [`Rule::DuplicateToolUseId`] (`tool.use_id_duplicate`), [`Rule::ToolResultStatus`]
//! (`tool_result.status`) and [`Rule::ToolResultContent`] (`tool_result.content`).

use std::collections::HashMap;

use verbatim_model::{
    Api, CachePoint, ContentBlock, ThinkingConfig, ThinkingMode, Tool, ToolChoice, ToolChoiceKind,
    ToolResult, ToolResultBlock, ToolResultContent, ToolResultStatus, ToolUse,
};

use super::cache::{bad_ttl, ttl_detail, ttl_what};
use super::{CheckPass, RequestFacts};
use crate::assemble::Severity;
use crate::assemble::action::Action;
use crate::assemble::wire::{self, Field, Setting};
use crate::capability::ForcedToolChoice;
use crate::rules::Rule;

/// The text repair puts in a tool result that has none.
pub(crate) const NO_OUTPUT: &str = "(no output)";

/// The names of the tools the request declares.
pub(super) fn declared_tool_names(request: &verbatim_model::Request) -> Vec<&str> {
    request
        .tools
        .iter()
        .flatten()
        .filter_map(|t| match t {
            Tool::Spec(spec) => Some(spec.name.as_str()),
            Tool::System(system) => Some(system.name.as_str()),
            _ => None,
        })
        .collect()
}

/// The tool choice: a tool the request declares, and forced tool use the model takes.
pub(super) fn tool_choice(
    out: &mut CheckPass<'_>,
    request: &verbatim_model::Request,
    shape: &RequestFacts,
) {
    let Some(choice) = &request.tool_choice else { return };
    let path = out.setting(Setting::ToolChoice);
    if let ToolChoiceKind::Tool { name } = &choice.kind
        && !declared_tool_names(request).contains(&name.as_str())
    {
        let what = format!("tool choice names `{name}`, which the request does not declare");
        let detail = format!("tool_choice.name: tool `{name}` not found in tools");
        out.error(Rule::ToolChoiceUnknown, path.clone(), what, &detail);
    }
    if !matches!(choice.kind, ToolChoiceKind::Any | ToolChoiceKind::Tool { .. }) {
        return;
    }
    let caps = out.context.caps;
    let manual =
        matches!(request.thinking, Some(ThinkingConfig { mode: ThinkingMode::Enabled { .. }, .. }));
    let forbidden = match caps.forced_tool_choice {
        ForcedToolChoice::Never => true,
        ForcedToolChoice::WithoutThinking => shape.thinking_on,
        ForcedToolChoice::AdaptiveOrNone => shape.thinking_on && manual,
    };
    if !forbidden {
        return;
    }
    let auto = Action::SetToolChoice {
        tool_choice: Some(ToolChoice { kind: ToolChoiceKind::Auto, ..choice.clone() }),
    };
    let at_boundary = shape.open_turn.is_none() && !shape.prefill;
    let (what, action) = if caps.forced_tool_choice == ForcedToolChoice::Never {
        (format!("{} rejects forced tool use", caps.family), auto)
    } else if at_boundary && !caps.thinking.always_on {
        (
            "a forced tool choice with thinking on; thinking is turned off for this request"
                .to_owned(),
            Action::SetThinking { thinking: None },
        )
    } else {
        ("a forced tool choice with thinking on inside a tool loop; the tool choice becomes auto".to_owned(), auto)
    };
    out.fix(Rule::ForcedToolChoice, path, what, "", action);
}

fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Converse takes `[a-zA-Z0-9_.:-]{1,64}`; the Anthropic layer behind InvokeModel takes only
/// `[a-zA-Z0-9_-]`.
fn valid_tool_use_id(api: Api, id: &str) -> bool {
    let extra = |b: u8| match api {
        Api::Converse => matches!(b, b'_' | b'.' | b':' | b'-'),
        Api::InvokeModel | Api::Messages => matches!(b, b'_' | b'-'),
    };
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || extra(b))
}

/// The declared tools and the cache points among them.
pub(super) fn tools(out: &mut CheckPass<'_>) {
    let Some(tools) = out.request().tools.clone() else { return };
    let root = out.setting(Setting::Tools);
    if tools.is_empty() {
        let detail = "Invalid length for parameter toolConfig.tools, value: 0, valid min length: 1";
        let action = Action::SetTools { tools: None };
        out.fix(Rule::ToolSpec, root, "an empty tools list", detail, action);
        return;
    }
    // The tools as they are, with one changed: a fix built only when repair asks for it.
    let with_tool = |k: usize, change: fn(&mut Tool)| {
        move |request: &verbatim_model::Request| {
            let mut fixed = request.tools.clone().unwrap_or_default();
            change(&mut fixed[k]);
            Action::SetTools { tools: Some(fixed) }
        }
    };
    for (k, tool) in tools.iter().enumerate() {
        let path = out.places.tool(out.request(), k);
        match tool {
            Tool::Spec(spec) => {
                if !valid_tool_name(&spec.name) {
                    let what = format!("tool name `{}` must be 1-64 of [a-zA-Z0-9_-]", spec.name);
                    let name_path = out.places.tool_spec_field(out.request(), k, "name");
                    out.error(Rule::ToolName, name_path, what, &spec.name);
                }
                if spec.description.as_deref() == Some("") {
                    let detail = format!(
                        "Invalid length for parameter toolConfig.tools[{k}].toolSpec.description, value: 0, valid min length: 1"
                    );
                    let description = out.places.tool_spec_field(out.request(), k, "description");
                    out.fix_deferred(
                        Rule::ToolSpec,
                        Severity::Error,
                        description,
                        "an empty tool description",
                        &detail,
                        with_tool(k, |tool| {
                            if let Tool::Spec(s) = tool {
                                s.description = None;
                            }
                        }),
                    );
                }
                let schema_ok = spec
                    .input_schema
                    .as_object()
                    .is_some_and(|schema| schema.get("type").is_none_or(|t| t == "object"));
                if !schema_ok {
                    let what = "the input schema must be a JSON object whose type is object";
                    let detail = format!(
                        "The format of the value at toolConfig.tools.{k}.toolSpec.inputSchema.json is invalid. Provide a json object for the field and try again."
                    );
                    out.error(Rule::ToolSpec, path.clone(), what, &detail);
                }
            }
            Tool::CachePoint(point) => {
                if !out.context.caps.cache_point_in_tools {
                    let what = format!("{} cannot cache tools", out.context.caps.family);
                    let detail = format!(
                        "Malformed input request: #/toolConfig/tools/{k}: extraneous key [cachePoint] is not permitted, please reformat your input"
                    );
                    let without = move |request: &verbatim_model::Request| {
                        let mut fixed = request.tools.clone().unwrap_or_default();
                        fixed.remove(k);
                        Action::SetTools { tools: (!fixed.is_empty()).then_some(fixed) }
                    };
                    out.fix_deferred(
                        Rule::CachePlacement,
                        Severity::Error,
                        path,
                        what,
                        &detail,
                        without,
                    );
                } else if k == 0 {
                    let fixed: Vec<Tool> = tools[1..].to_vec();
                    let action = Action::SetTools { tools: (!fixed.is_empty()).then_some(fixed) };
                    out.fix(
                        Rule::CachePlacement,
                        path,
                        "a cache point first in the tools, with nothing before it",
                        "There is nothing available to cache",
                        action,
                    );
                } else if let Some(ttl) = bad_ttl(point) {
                    out.fix_deferred(
                        Rule::CacheTtl,
                        Severity::Error,
                        path,
                        ttl_what(ttl),
                        &ttl_detail(ttl),
                        with_tool(k, |tool| *tool = Tool::CachePoint(CachePoint { ttl: None })),
                    );
                }
            }
            Tool::System(_) | Tool::Unknown(_) => {}
        }
    }
}

/// The checks of tool use block `j` of message `i`: its id, name and input, and an id used
/// before (`tool_use_ids` holds each id and the block that first used it).
pub(super) fn tool_use<'a>(
    out: &mut CheckPass<'_>,
    tool_use_ids: &mut HashMap<&'a str, (usize, usize)>,
    i: usize,
    j: usize,
    tool_use: &'a ToolUse,
) {
    let api = out.api();
    let id = tool_use.id.as_str();
    if !valid_tool_use_id(api, id) {
        let pattern = match api {
            Api::Converse => "[a-zA-Z0-9_.:-]",
            Api::InvokeModel | Api::Messages => "[a-zA-Z0-9_-]",
        };
        let what = format!("tool use id `{id}` must be 1-64 of {pattern}");
        out.error(Rule::ToolUseId, out.field(i, j, Field::ToolUseId), what, id);
    }
    if !valid_tool_name(&tool_use.name) {
        let what = format!("tool name `{}` must be 1-64 of [a-zA-Z0-9_-]", tool_use.name);
        out.error(Rule::ToolName, out.field(i, j, Field::ToolName), what, &tool_use.name);
    }
    if !tool_use.input.is_object() {
        let what = format!(
            "tool input is a JSON {}, not an object",
            verbatim_wire::json::type_name(&tool_use.input)
        );
        out.error(Rule::ToolInput, out.field(i, j, Field::ToolInput), what, "");
    }
    if let Some(&(first_i, first_j)) = tool_use_ids.get(id) {
        let what = format!("tool use id `{id}` is also used at {}", out.block(first_i, first_j));
        let at = wire::message(i).key("content");
        out.push_at(
            Rule::DuplicateToolUseId,
            Severity::Error,
            out.block(i, j),
            &at,
            what,
            id,
            None,
        );
    } else {
        tool_use_ids.insert(id, (i, j));
    }
}

/// The checks of tool result block `j` of message `i`: its status and its content.
pub(super) fn tool_result(out: &mut CheckPass<'_>, i: usize, j: usize, result: &ToolResult) {
    let replace = |content: ToolResult| Action::ReplaceBlock {
        message: i,
        block: j,
        kind: "toolResult".to_owned(),
        content: ContentBlock::ToolResult(content),
    };
    let placeholder = || {
        Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text { text: NO_OUTPUT.to_owned() }]))
    };
    let path = out.block(i, j);
    // An error only where the table knows the model refuses the field; the conservative row
    // does not grant it, but Llama 4 Maverick, Pixtral Large and Kimi K2 (unknown to the
    // table) answered 200 to it, so on an unknown model it is a warning left in place.
    if result.status.is_some() && !out.context.caps.tool_result_status {
        let action = replace(ToolResult { status: None, ..result.clone() });
        let path = out.field(i, j, Field::ToolResultStatus);
        out.not_granted(Rule::ToolResultStatus, path, "toolResult.status", "", Some(action));
    }
    let empty = match &result.content {
        None => true,
        Some(ToolResultContent::Blocks(blocks)) => blocks.is_empty(),
        Some(ToolResultContent::Text(text)) => text.is_empty(),
    };
    if empty {
        let action = replace(ToolResult { content: placeholder(), ..result.clone() });
        // The empty-error-result rejection is Bedrock's own (Converse) validation.
        if result.status == Some(ToolResultStatus::Error) && out.api() == Api::Converse {
            let detail = format!(
                "The content field at {}.toolResult cannot be empty when status value is error.",
                path.dotted()
            );
            out.fix(
                Rule::ToolResultContent,
                path,
                "an error result with no content",
                &detail,
                action,
            );
        } else {
            let what = "a tool result with no content (some models reject it)";
            out.push(
                Rule::ToolResultContent,
                Severity::Warning,
                path,
                what,
                "messages: text content blocks must be non-empty",
                Some(action),
            );
        }
        return;
    }
    let Some(ToolResultContent::Blocks(blocks)) = &result.content else { return };
    // The result with item `k` replaced: a fix built only when repair asks for it.
    let with_item = |k: usize, item: ToolResultBlock| {
        move |request: &verbatim_model::Request| {
            let Some(ContentBlock::ToolResult(result)) =
                request.messages.get(i).and_then(|m| m.content.get(j))
            else {
                unreachable!("built for the tool result at messages[{i}].content[{j}]")
            };
            let mut result = result.clone();
            if let Some(ToolResultContent::Blocks(blocks)) = &mut result.content {
                blocks[k] = item.clone();
            }
            Action::ReplaceBlock {
                message: i,
                block: j,
                kind: "toolResult".to_owned(),
                content: ContentBlock::ToolResult(result),
            }
        }
    };
    for (k, item) in blocks.iter().enumerate() {
        let item_path = out.field(i, j, Field::ToolResultContent(k));
        match item {
            ToolResultBlock::Json { json } if !json.is_object() => {
                let action = with_item(k, ToolResultBlock::Text { text: json.to_string() });
                let what = format!(
                    "tool result json is a JSON {}, not an object",
                    verbatim_wire::json::type_name(json)
                );
                let detail = format!(
                    "The format of the value at {}.json is invalid. Provide a json object for the field and try again.",
                    item_path.dotted()
                );
                let rule = Rule::ToolResultContent;
                out.fix_deferred(rule, Severity::Error, item_path, what, &detail, action);
                continue;
            }
            ToolResultBlock::Text { text } if text.trim().is_empty() => {
                let action = with_item(k, ToolResultBlock::Text { text: NO_OUTPUT.to_owned() });
                let what = "blank text in a tool result (some models reject it)";
                out.fix_deferred(
                    Rule::ToolResultContent,
                    Severity::Warning,
                    item_path,
                    what,
                    "messages: text content blocks must be non-empty",
                    action,
                );
                continue;
            }
            _ => {}
        }
    }
}
