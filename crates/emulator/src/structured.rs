//! Structured output as the service judges it (rules file R1.15): the JSON Schema a body asks
//! the reply to follow. Claude's compiler refuses bounds it cannot enforce while decoding;
//! the texts are those Bedrock was recorded or reported answering:
//! - "output_config.format.schema: For 'array' type, property 'maxItems' is not supported"
//!   (recorded, vercel/ai#17197);
//! - "values other than 0 or 1 are not supported" for `minItems` (reported);
//! - "For 'integer' type, properties maximum, minimum are not supported" (reported,
//!   vercel/ai#17268), the same for `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`.
//!
//! Everything else a schema holds is taken: the documented limits without a recorded refusal
//! (string lengths, `additionalProperties`, recursion) are left to the real service. Other
//! families' compilers are not recorded, so only Claude refuses. On Converse the schema is a
//! string holding JSON, and a schema of another type is refused on every model.

use serde_json::Value;

use crate::checks::{Refusal, validation};
use crate::conversation::Dialect;
use crate::model::model_key;

/// Number bounds, in the order Bedrock's text lists them (alphabetical).
const BOUNDS: [&str; 5] =
    ["exclusiveMaximum", "exclusiveMinimum", "maximum", "minimum", "multipleOf"];

/// Checks the structured-output schema of a body sent to `model_id`.
pub(crate) fn check(dialect: Dialect, body: &Value, model_id: &str) -> Result<(), Refusal> {
    let claude = model_key(model_id).starts_with("anthropic.");
    let mut schemas: Vec<Value> = Vec::new();
    match dialect {
        Dialect::Converse => {
            let text_format = body.pointer("/outputConfig/textFormat");
            if let Some(format) = text_format
                && format["type"] == "json_schema"
            {
                match format.pointer("/structure/jsonSchema/schema") {
                    Some(Value::String(text)) => {
                        if let Ok(schema) = serde_json::from_str(text) {
                            schemas.push(schema);
                        }
                    }
                    Some(other) => {
                        let name = match other {
                            Value::Object(_) => "dict",
                            Value::Array(_) => "list",
                            Value::Number(_) => "number",
                            Value::Bool(_) => "bool",
                            _ => "null",
                        };
                        return Err(validation(format!(
                            "Invalid type for parameter outputConfig.textFormat.structure.jsonSchema.schema, value: {name}, valid types: <class 'str'>"
                        )));
                    }
                    None => {}
                }
            }
            if let Some(schema) =
                anthropic_schema(body.pointer("/additionalModelRequestFields/output_config/format"))
            {
                schemas.push(schema.clone());
            }
        }
        Dialect::Anthropic => {
            if let Some(schema) = anthropic_schema(body.pointer("/output_config/format")) {
                schemas.push(schema.clone());
            }
        }
    }
    if !claude {
        return Ok(());
    }
    for schema in &schemas {
        if let Some(text) = first_refusal(schema) {
            return Err(validation(format!(
                "The model returned the following errors: output_config.format.schema: {text}"
            )));
        }
    }
    Ok(())
}

fn anthropic_schema(format: Option<&Value>) -> Option<&Value> {
    let format = format?;
    (format["type"] == "json_schema").then(|| format.get("schema")).flatten()
}

/// The first bound Claude refuses, depth first, following local `$ref`s once each.
fn first_refusal(root: &Value) -> Option<String> {
    let mut pending: Vec<&Value> = vec![root];
    let mut followed: Vec<&str> = Vec::new();
    while let Some(node) = pending.pop() {
        let Value::Object(map) = node else { continue };
        let named: Vec<&str> = match map.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if named.contains(&"array") || map.contains_key("items") {
            if map.contains_key("maxItems") {
                return Some("For 'array' type, property 'maxItems' is not supported".into());
            }
            match map.get("minItems") {
                None => {}
                Some(v) if v.as_u64() == Some(0) || v.as_u64() == Some(1) => {}
                Some(_) => {
                    return Some(
                        "For 'array' type, 'minItems' values other than 0 or 1 are not supported"
                            .into(),
                    );
                }
            }
        }
        let numeric =
            named.iter().find(|t| **t == "integer").or(named.iter().find(|t| **t == "number"));
        if let Some(numeric) = numeric {
            let set: Vec<&str> = BOUNDS.into_iter().filter(|b| map.contains_key(*b)).collect();
            match set.len() {
                0 => {}
                1 => {
                    return Some(format!(
                        "For '{numeric}' type, property '{}' is not supported",
                        set[0]
                    ));
                }
                _ => {
                    return Some(format!(
                        "For '{numeric}' type, properties {} are not supported",
                        set.join(", ")
                    ));
                }
            }
        }
        if let Some(Value::String(target)) = map.get("$ref")
            && !followed.contains(&target.as_str())
        {
            followed.push(target);
            if let Some(found) = target.strip_prefix('#').and_then(|p| root.pointer(p)) {
                pending.push(found);
            }
        }
        if let Some(Value::Object(props)) = map.get("properties") {
            pending.extend(props.values());
        }
        for key in ["anyOf", "allOf", "oneOf", "prefixItems"] {
            if let Some(Value::Array(list)) = map.get(key) {
                pending.extend(list);
            }
        }
        match map.get("items") {
            Some(Value::Array(list)) => pending.extend(list),
            Some(item) => pending.push(item),
            None => {}
        }
        if let Some(extra @ Value::Object(_)) = map.get("additionalProperties") {
            pending.push(extra);
        }
    }
    None
}
