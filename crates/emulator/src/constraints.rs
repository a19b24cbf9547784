//! Constraints on tools and tool blocks, as the service states them (rules file R1.6, R1.7,
//! R1.13, R1.14, R3.1, R3.4): names and ids by pattern, tool specifications, tool inputs and
//! results, the tool choice, tool results first in their message. Read from the raw body, in
//! the service's own terms: Converse member paths are 1-based (`messages.2.member.content.1`)
//! in constraint texts, as AWS's validation messages write them.

use serde_json::Value;

use crate::checks::{Refusal, validation};
use crate::conversation::Dialect;

/// Converse's tool-name pattern (R1.6; remote-swe-agents#457 recorded the text).
const NAME_PATTERN: &str = "[a-zA-Z0-9_-]+";
/// Converse's tool-use id pattern in the current service model (R1.6).
const ID_PATTERN: &str = "[a-zA-Z0-9_.:-]+";

/// 1 to 64 of letters, digits, `_` and `-`: a Converse tool name, and an Anthropic tool-use id.
fn word_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn converse_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// A Smithy constraint failure as AWS words it.
fn constraint(value: &str, at: &str, rule: &str) -> Refusal {
    validation(format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: Member must {rule}"
    ))
}

fn from_model(message: impl AsRef<str>) -> Refusal {
    validation(format!("The model returned the following errors: {}", message.as_ref()))
}

/// The tool constraints of a body; the first refusal found.
pub(crate) fn check(dialect: Dialect, body: &Value) -> Result<(), Refusal> {
    match dialect {
        Dialect::Converse => converse(body),
        Dialect::Anthropic => anthropic(body),
    }
}

fn converse(body: &Value) -> Result<(), Refusal> {
    let mut declared = Vec::new();
    if let Some(config) = body.get("toolConfig") {
        let tools = config.get("tools").and_then(Value::as_array);
        if tools.is_some_and(Vec::is_empty) {
            return Err(constraint(
                "[]",
                "toolConfig.tools",
                "have length greater than or equal to 1",
            ));
        }
        for (i, tool) in tools.into_iter().flatten().enumerate() {
            let Some(spec) = tool.get("toolSpec") else { continue };
            let at = format!("toolConfig.tools.{}.member.toolSpec", i + 1);
            let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
            if !word_ok(name) {
                let rule = format!("satisfy regular expression pattern: {NAME_PATTERN}");
                return Err(constraint(name, &format!("{at}.name"), &rule));
            }
            declared.push(name);
            if spec.get("description").and_then(Value::as_str) == Some("") {
                let rule = "have length greater than or equal to 1";
                return Err(constraint("", &format!("{at}.description"), rule));
            }
            // R1.13, aws-tools-for-powershell#354 (0-based there, as that text writes it).
            let schema = spec.get("inputSchema").and_then(|s| s.get("json"));
            let object = schema.and_then(|s| s.get("type")).and_then(Value::as_str);
            if schema.is_some() && object.is_some_and(|t| t != "object") {
                return Err(validation(format!(
                    "The format of the value at toolConfig.tools.{i}.toolSpec.inputSchema.json is invalid. Provide a json object for the field and try again."
                )));
            }
        }
        // R1.14: a named choice names a declared tool. The text is not recorded; this is the
        // Anthropic Messages API's.
        let chosen =
            config.get("toolChoice").and_then(|c| c.get("tool")).and_then(|t| t.get("name"));
        if let Some(name) = chosen.and_then(Value::as_str)
            && tools.is_some()
            && !declared.contains(&name)
        {
            return Err(from_model(format!("tool_choice.name: Tool '{name}' not found in tools")));
        }
    }
    let messages = body.get("messages").and_then(Value::as_array).into_iter().flatten();
    for (i, message) in messages.enumerate() {
        let blocks = message.get("content").and_then(Value::as_array).into_iter().flatten();
        let mut other_before = false;
        for (j, block) in blocks.enumerate() {
            let at = format!("messages.{}.member.content.{}.member", i + 1, j + 1);
            if let Some(tool_use) = block.get("toolUse") {
                let name = tool_use.get("name").and_then(Value::as_str).unwrap_or_default();
                if !word_ok(name) {
                    let rule = format!("satisfy regular expression pattern: {NAME_PATTERN}");
                    return Err(constraint(name, &format!("{at}.toolUse.name"), &rule));
                }
                let id = tool_use.get("toolUseId").and_then(Value::as_str).unwrap_or_default();
                if !converse_id_ok(id) {
                    let rule = format!("satisfy regular expression pattern: {ID_PATTERN}");
                    return Err(constraint(id, &format!("{at}.toolUse.toolUseId"), &rule));
                }
                // R1.6 (hydra#971): a Document object, never a JSON string. The text is not
                // recorded; it follows R1.13's recorded format.
                if tool_use.get("input").is_some_and(|input| !input.is_object()) {
                    return Err(validation(format!(
                        "The format of the value at messages.{i}.content.{j}.toolUse.input is invalid. Provide a json object for the field and try again."
                    )));
                }
            }
            if let Some(result) = block.get("toolResult") {
                let id = result.get("toolUseId").and_then(Value::as_str).unwrap_or_default();
                if !converse_id_ok(id) {
                    let rule = format!("satisfy regular expression pattern: {ID_PATTERN}");
                    return Err(constraint(id, &format!("{at}.toolResult.toolUseId"), &rule));
                }
                tool_result(i, j, result)?;
                // R3.4, Claude: a tool result after other content of its user message
                // (anthropic-sdk-typescript#653's wording of R3.1).
                if other_before && message.get("role").and_then(Value::as_str) == Some("user") {
                    return Err(from_model(format!(
                        "messages.{i}: Did not find 1 tool_result block(s) at the beginning of this message. Messages following tool_use blocks must begin with a matching number of tool_result blocks."
                    )));
                }
            } else if block.get("cachePoint").is_none() {
                other_before = true;
            }
        }
    }
    Ok(())
}

/// A Converse tool result: an error result carries content (R1.7, recorded); `json` content
/// is an object (R1.7's `ToolResultContentBlock`; the text is not recorded).
fn tool_result(i: usize, j: usize, result: &Value) -> Result<(), Refusal> {
    let content = result.get("content").and_then(Value::as_array);
    let error = result.get("status").and_then(Value::as_str) == Some("error");
    if error && content.is_none_or(Vec::is_empty) {
        return Err(validation(format!(
            "The content field at messages.{i}.content.{j}.toolResult cannot be empty when status value is error."
        )));
    }
    for (k, item) in content.into_iter().flatten().enumerate() {
        if item.get("json").is_some_and(|json| !json.is_object()) {
            return Err(validation(format!(
                "The format of the value at messages.{i}.content.{j}.toolResult.content.{k}.json is invalid. Provide a json object for the field and try again."
            )));
        }
    }
    Ok(())
}

/// InvokeModel: tool-use ids by the Anthropic Messages API's pattern (R1.6 on InvokeModel;
/// the text is the Anthropic API's schema message, not recorded from Bedrock).
fn anthropic(body: &Value) -> Result<(), Refusal> {
    let messages = body.get("messages").and_then(Value::as_array).into_iter().flatten();
    for (i, message) in messages.enumerate() {
        let blocks = message.get("content").and_then(Value::as_array).into_iter().flatten();
        for (j, block) in blocks.enumerate() {
            let (key, id) = match block.get("type").and_then(Value::as_str) {
                Some("tool_use") => ("id", block.get("id")),
                Some("tool_result") => ("tool_use_id", block.get("tool_use_id")),
                _ => continue,
            };
            let id = id.and_then(Value::as_str).unwrap_or_default();
            if !word_ok(id) {
                return Err(from_model(format!(
                    "messages.{i}.content.{j}.{key}: String should match pattern '^[a-zA-Z0-9_-]+$'"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(body: Value) -> Option<String> {
        check(Dialect::Converse, &body).err().map(|r| r.message)
    }

    fn with_tools(tools: Value) -> Value {
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}], "toolConfig": {"tools": tools}})
    }

    #[test]
    fn tool_specifications_are_judged_with_awss_constraint_texts() {
        let spec = |spec: Value| with_tools(json!([{"toolSpec": spec}]));
        let text = refused(spec(
            json!({"name": "Complete Session", "inputSchema": {"json": {"type": "object"}}}),
        ));
        assert_eq!(
            text.unwrap(),
            "1 validation error detected: Value 'Complete Session' at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
        );
        assert!(refused(with_tools(json!([]))).unwrap().contains("'toolConfig.tools'"));
        let empty = spec(
            json!({"name": "f", "description": "", "inputSchema": {"json": {"type": "object"}}}),
        );
        assert!(refused(empty).unwrap().contains("toolSpec.description"));
        let string = spec(json!({"name": "f", "inputSchema": {"json": {"type": "string"}}}));
        assert!(
            refused(string).unwrap().starts_with("The format of the value at toolConfig.tools.0")
        );
        assert_eq!(
            refused(spec(
                json!({"name": "get_weather", "inputSchema": {"json": {"type": "object"}}})
            )),
            None
        );
    }

    #[test]
    fn tool_blocks_are_judged_by_pattern_shape_and_place() {
        let history = |tool_use: Value, result: Value| {
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]},
                {"role": "assistant", "content": [{"toolUse": tool_use}]},
                {"role": "user", "content": result}]})
        };
        let result =
            |id: &str| json!([{"toolResult": {"toolUseId": id, "content": [{"text": "ok"}]}}]);
        let ok = history(
            json!({"toolUseId": "tooluse_1", "name": "f", "input": {}}),
            result("tooluse_1"),
        );
        assert_eq!(refused(ok), None);
        let piped =
            history(json!({"toolUseId": "call|1", "name": "f", "input": {}}), result("call|1"));
        assert!(refused(piped).unwrap().contains("toolUse.toolUseId"));
        let string = history(json!({"toolUseId": "t", "name": "f", "input": "{}"}), result("t"));
        assert!(refused(string).unwrap().contains("messages.1.content.0.toolUse.input"));
        let late = history(
            json!({"toolUseId": "t", "name": "f", "input": {}}),
            json!([{"text": "note"}, {"toolResult": {"toolUseId": "t", "content": [{"text": "ok"}]}}]),
        );
        assert!(refused(late).unwrap().contains("Did not find 1 tool_result block(s)"));
        let error = history(
            json!({"toolUseId": "t", "name": "f", "input": {}}),
            json!([{"toolResult": {"toolUseId": "t", "content": [], "status": "error"}}]),
        );
        assert!(refused(error).unwrap().contains("cannot be empty when status value is error"));
    }
}
