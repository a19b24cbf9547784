//! Structured output: the JSON Schema a request asks the reply to follow, checked against the
//! subset Claude's structured output compiles.
//!
//! Emits [`Rule::OutputSchema`] (`output.schema`).
//!
//! Where the schema is read: on Converse, `outputConfig.textFormat` of type `json_schema`,
//! whose `structure.jsonSchema.schema` is a JSON document in a string (bedrock-rules R1.15),
//! and `additionalModelRequestFields.output_config.format`; on InvokeModel and the Messages
//! API, `output_config.format` of type `json_schema`, whose `schema` is an object.
//!
//! The evidence for each verdict, strongest first:
//! - `maxItems` on an array: refused, recorded. Bedrock answered "The model returned the
//!   following errors: output_config.format.schema: For 'array' type, property 'maxItems' is
//!   not supported" to Claude Sonnet 4.5 (vercel/ai#17197, the response recorded in
//!   `packages/amazon-bedrock/src/__fixtures__/issue-17197-max-items-error.json`).
//! - `minItems` other than 0 or 1: refused, "values other than 0 or 1 are not supported"
//!   (reported from live calls with the text; instructor#2566 checks the same bound for
//!   Bedrock).
//! - `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf` on a number
//!   or integer: refused, "For 'integer' type, properties maximum, minimum are not supported"
//!   (reported with the text from Bedrock, vercel/ai#17268; instructor#2530 for Converse's
//!   `outputConfig`).
//! - `minLength` and `maxLength` on a string: reports disagree (instructor#2530 has Bedrock
//!   refuse them, others see them taken): a warning.
//! - an object without `additionalProperties: false`, a recursive `$ref`, `oneOf`: the
//!   documentation's limits (Anthropic's structured-output page; AWS's names recursive
//!   schemas) with no recorded answer on Bedrock: warnings.
//!
//! The refusals are Claude's own validator speaking, so they are errors on the Claude rows of
//! the capability table and warnings elsewhere: another family's schema compiler is not
//! recorded. A schema sent as an object where Converse types a string is an error on every
//! model (the API's shape). Repair leaves schemas alone: dropping a bound changes what the
//! caller asked for.

use serde_json::Value;
use verbatim_model::Api;

use super::CheckPass;
use crate::JsonPath;
use crate::assemble::Severity;
use crate::rules::Rule;

/// Bounds on numbers Claude's structured output does not compile.
const NUMBER_BOUNDS: &[&str] =
    &["exclusiveMaximum", "exclusiveMinimum", "maximum", "minimum", "multipleOf"];

/// Bounds on strings whose fate on Bedrock is reported both ways.
const STRING_BOUNDS: &[&str] = &["maxLength", "minLength"];

/// Keys whose values are lists of schemas.
const SCHEMA_LISTS: &[&str] = &["anyOf", "allOf", "oneOf", "prefixItems"];

/// One thing the schema asks that the subset does not have.
struct Problem {
    /// Where in the schema, as a JSON pointer (`/properties/labels`).
    pointer: String,
    /// Refused on the evidence (an error on Claude), or only documented (a warning).
    refused: bool,
    /// What is wrong, in the words Bedrock uses where it was recorded.
    detail: String,
}

/// The structured-output schemas of the request.
pub(super) fn output_schema(out: &mut CheckPass<'_>) {
    let state = out.state;
    let request = &state.request;
    let mut schemas: Vec<(JsonPath, bool, Value)> = Vec::new();
    match out.api() {
        Api::Converse => {
            let format =
                request.unmapped.converse.get("outputConfig").and_then(|c| c.get("textFormat"));
            if let Some(format) = format
                && format.get("type").and_then(Value::as_str) == Some("json_schema")
            {
                let path = JsonPath::root()
                    .key("outputConfig")
                    .key("textFormat")
                    .key("structure")
                    .key("jsonSchema")
                    .key("schema");
                match format.pointer("/structure/jsonSchema/schema") {
                    Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                        Ok(schema) => schemas.push((path, true, schema)),
                        Err(e) => {
                            let what = format!(
                                "the JSON schema in this string does not parse ({e}); the service compiles it as JSON Schema"
                            );
                            out.push(Rule::OutputSchema, Severity::Warning, path, what, "", None);
                        }
                    },
                    Some(other) => {
                        let what = format!(
                            "the JSON schema is {} where Converse takes it as a string holding the JSON document",
                            verbatim_wire::json::type_name(other)
                        );
                        let detail = format!(
                            "Invalid type for parameter {}, value: {}, valid types: <class 'str'>",
                            path.dotted(),
                            verbatim_wire::json::type_name(other)
                        );
                        out.error(Rule::OutputSchema, path, what, &detail);
                    }
                    None => {}
                }
            }
            if let Some(format) = request
                .model_fields
                .as_ref()
                .and_then(|f| f.get("output_config"))
                .and_then(|c| c.get("format"))
            {
                let path = JsonPath::root()
                    .key("additionalModelRequestFields")
                    .key("output_config")
                    .key("format")
                    .key("schema");
                anthropic_format(&mut schemas, path, format);
            }
        }
        Api::InvokeModel | Api::Messages => {
            // Kept among the native fields, or as an unmapped key of a body that came whole.
            let format = request
                .model_fields
                .as_ref()
                .and_then(|f| f.get("output_config"))
                .or_else(|| request.unmapped.anthropic.get("output_config"))
                .and_then(|c| c.get("format"));
            if let Some(format) = format {
                let path = JsonPath::root().key("output_config").key("format").key("schema");
                anthropic_format(&mut schemas, path, format);
            }
        }
    }
    for (path, in_string, schema) in schemas {
        let mut problems = Vec::new();
        walk(&schema, &schema, "", &mut Vec::new(), &mut problems);
        for problem in problems {
            report(out, &path, in_string, problem);
        }
    }
}

/// An Anthropic `format` object of type `json_schema`: its `schema`.
fn anthropic_format(schemas: &mut Vec<(JsonPath, bool, Value)>, path: JsonPath, format: &Value) {
    if format.get("type").and_then(Value::as_str) == Some("json_schema")
        && let Some(schema) = format.get("schema")
    {
        schemas.push((path, false, schema.clone()));
    }
}

fn report(out: &mut CheckPass<'_>, base: &JsonPath, in_string: bool, problem: Problem) {
    let Problem { pointer, refused, detail } = problem;
    // Inside a string the place is the string's, with the pointer in the text; in an object
    // the path goes down to the schema node.
    let path = if in_string {
        base.clone()
    } else {
        pointer.split('/').skip(1).fold(base.clone(), |p, segment| match segment.parse::<usize>() {
            Ok(n) if !segment.is_empty() => p.index(n),
            _ => p.key(unescape(segment)),
        })
    };
    let place = if pointer.is_empty() {
        "the schema's root".to_owned()
    } else {
        format!("schema {pointer}")
    };
    let caps = out.context.caps;
    if refused && caps.is_claude() {
        let what = format!("{place}: {detail}");
        out.error(Rule::OutputSchema, path, what, &detail);
    } else {
        let why = if refused {
            format!("Claude refuses this; whether {} does is not recorded", caps.family)
        } else {
            "outside the documented subset; no refusal is recorded on Bedrock".to_owned()
        };
        let what = format!("{place}: {detail} ({why})");
        out.push(Rule::OutputSchema, Severity::Warning, path, what, &detail, None);
    }
}

/// Walks schema node `node` at JSON pointer `pointer`, with `refs` the `$ref`s followed to
/// get here (a `$ref` already among them is a recursive schema).
fn walk(
    root: &Value,
    node: &Value,
    pointer: &str,
    refs: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    let Some(fields) = node.as_object() else { return };
    let types = types(node);
    let has = |t: &str| types.iter().any(|x| x == t);
    if has("array") || fields.contains_key("items") {
        if fields.contains_key("maxItems") {
            problems
                .push(refusal(pointer, "For 'array' type, property 'maxItems' is not supported"));
        }
        if let Some(min) = fields.get("minItems")
            && !matches!(min.as_u64(), Some(0 | 1))
        {
            problems.push(refusal(
                pointer,
                "For 'array' type, 'minItems' values other than 0 or 1 are not supported",
            ));
        }
    }
    let number = if has("integer") {
        Some("integer")
    } else if has("number") {
        Some("number")
    } else {
        None
    };
    if let Some(ty) = number {
        let present: Vec<&str> =
            NUMBER_BOUNDS.iter().copied().filter(|k| fields.contains_key(*k)).collect();
        if !present.is_empty() {
            problems.push(refusal(pointer, &properties_text(ty, &present)));
        }
    }
    if has("string") {
        let present: Vec<&str> =
            STRING_BOUNDS.iter().copied().filter(|k| fields.contains_key(*k)).collect();
        if !present.is_empty() {
            problems.push(documented(pointer, &properties_text("string", &present)));
        }
    }
    if has("object") || fields.contains_key("properties") {
        match fields.get("additionalProperties") {
            Some(Value::Bool(false)) => {}
            None => problems.push(documented(
                pointer,
                "an object without `additionalProperties: false`, which the documentation requires",
            )),
            Some(_) => problems.push(documented(
                pointer,
                "`additionalProperties` other than false, which the documentation does not take",
            )),
        }
    }
    if fields.contains_key("oneOf") {
        problems.push(documented(
            pointer,
            "`oneOf`, which the documentation does not list (use `anyOf`)",
        ));
    }
    if let Some(Value::String(target)) = fields.get("$ref") {
        if refs.contains(target) {
            problems.push(documented(pointer, &format!("a recursive schema (`$ref` {target} refers to a schema that contains it), which the documentation does not take")));
        } else if let Some(resolved) = target.strip_prefix('#').and_then(|p| root.pointer(p)) {
            refs.push(target.clone());
            walk(root, resolved, pointer, refs, problems);
            refs.pop();
        }
    }
    // `$defs` and `definitions` are walked where they are used, through `$ref`, so that a
    // recursive one is found as such and no problem is reported twice.
    if let Some(Value::Object(children)) = fields.get("properties") {
        for (name, child) in children {
            walk(root, child, &format!("{pointer}/properties/{}", escape(name)), refs, problems);
        }
    }
    for list in SCHEMA_LISTS {
        if let Some(Value::Array(children)) = fields.get(*list) {
            for (k, child) in children.iter().enumerate() {
                walk(root, child, &format!("{pointer}/{list}/{k}"), refs, problems);
            }
        }
    }
    match fields.get("items") {
        Some(Value::Array(children)) => {
            for (k, child) in children.iter().enumerate() {
                walk(root, child, &format!("{pointer}/items/{k}"), refs, problems);
            }
        }
        Some(child) => walk(root, child, &format!("{pointer}/items"), refs, problems),
        None => {}
    }
    if let Some(child @ Value::Object(_)) = fields.get("additionalProperties") {
        walk(root, child, &format!("{pointer}/additionalProperties"), refs, problems);
    }
}

/// The node's `type`, one name or a list.
fn types(node: &Value) -> Vec<String> {
    match node.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

/// Bedrock's wording: "property 'maxItems' is not supported" for one, "properties maximum,
/// minimum are not supported" for several (recorded both ways).
fn properties_text(ty: &str, keys: &[&str]) -> String {
    match keys {
        [one] => format!("For '{ty}' type, property '{one}' is not supported"),
        many => format!("For '{ty}' type, properties {} are not supported", many.join(", ")),
    }
}

fn refusal(pointer: &str, detail: &str) -> Problem {
    Problem { pointer: pointer.to_owned(), refused: true, detail: detail.to_owned() }
}

fn documented(pointer: &str, detail: &str) -> Problem {
    Problem { pointer: pointer.to_owned(), refused: false, detail: detail.to_owned() }
}

/// A JSON pointer segment for `name` (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(schema: Value) -> Vec<(String, bool, String)> {
        let mut found = Vec::new();
        walk(&schema, &schema, "", &mut Vec::new(), &mut found);
        found.into_iter().map(|p| (p.pointer, p.refused, p.detail)).collect()
    }

    #[test]
    fn a_property_named_like_a_bound_is_not_a_bound() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "properties": {"maximum": {"type": "integer"}, "maxItems": {"type": "string"}}});
        assert_eq!(problems(schema), vec![]);
    }

    #[test]
    fn bounds_are_found_through_refs_lists_and_items_at_their_pointer() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "$defs": {"tag": {"type": "array", "items": {"type": "number", "multipleOf": 0.5}, "minItems": 2}},
            "properties": {"a/b": {"anyOf": [{"$ref": "#/$defs/tag"}, {"type": "null"}]}}});
        let found = problems(schema);
        assert_eq!(
            found,
            vec![
                (
                    "/properties/a~1b/anyOf/0".to_owned(),
                    true,
                    "For 'array' type, 'minItems' values other than 0 or 1 are not supported"
                        .to_owned()
                ),
                (
                    "/properties/a~1b/anyOf/0/items".to_owned(),
                    true,
                    "For 'number' type, property 'multipleOf' is not supported".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_recursive_schema_is_reported_once_and_the_walk_ends() {
        let schema = json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
            "additionalProperties": false,
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}});
        let found = problems(schema);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "/properties/children/items");
        assert!(!found[0].1 && found[0].2.contains("recursive"), "{found:?}");
    }

    #[test]
    fn several_number_bounds_are_named_together_as_bedrock_does() {
        let schema = json!({"type": ["integer", "null"], "maximum": 10, "minimum": 0});
        assert_eq!(
            problems(schema)[0].2,
            "For 'integer' type, properties maximum, minimum are not supported"
        );
    }
}
