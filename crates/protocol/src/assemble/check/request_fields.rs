//! Converse's request members beside the conversation, held to the constraints of Bedrock's
//! API model (bedrock-rules R1.15): `performanceConfig.latency` and `serviceTier.type` take
//! only their enum values, `requestMetadata` holds 1 to 16 entries whose keys (1 to 256
//! characters) and values (0 to 256) match `[a-zA-Z0-9\s:_@$#=/+,-.]`, and
//! `additionalModelResponseFieldPaths` holds at most 10 paths of 1 to 256 characters.
//!
//! Emits [`Rule::RequestField`] (`request.field`).
//!
//! The constraints are the API model's, so breaking one is an error on every model. The
//! texts are AWS's constraint wording (`1 validation error detected: Value ... failed to
//! satisfy constraint: ...`), which Bedrock gives for the constraints recorded elsewhere (tool
//! names, ids, TTLs); for these members no answer is recorded. Repair leaves them: which value
//! was meant is the caller's.

use serde_json::Value;
use verbatim_model::Api;

use super::CheckPass;
use crate::JsonPath;
use crate::rules::Rule;

const LATENCIES: &[&str] = &["standard", "optimized"];

const SERVICE_TIERS: &[&str] = &["priority", "default", "flex", "reserved"];

const MAX_METADATA: usize = 16;

const MAX_FIELD_PATHS: usize = 10;

/// The character class of `requestMetadata` keys and values.
const METADATA_PATTERN: &str = r"[a-zA-Z0-9\s:_@$#=/+,-.]";

/// The request members of a Converse body.
pub(super) fn request_fields(out: &mut CheckPass<'_>) {
    if out.api() != Api::Converse {
        return;
    }
    let state = out.state;
    let fields = &state.request.unmapped.converse;
    if let Some(config) = fields.get("performanceConfig") {
        one_of(out, config, "performanceConfig", "latency", LATENCIES);
    }
    if let Some(tier) = fields.get("serviceTier") {
        one_of(out, tier, "serviceTier", "type", SERVICE_TIERS);
    }
    if let Some(Value::Object(metadata)) = fields.get("requestMetadata") {
        let path = JsonPath::root().key("requestMetadata");
        if metadata.is_empty() || metadata.len() > MAX_METADATA {
            let bound = if metadata.is_empty() {
                "have length greater than or equal to 1".to_owned()
            } else {
                format!("have length less than or equal to {MAX_METADATA}")
            };
            let what = format!(
                "requestMetadata holds {} entries; 1 to {MAX_METADATA} are taken",
                metadata.len()
            );
            let detail =
                constraint(&format!("{} entries", metadata.len()), "requestMetadata", &bound);
            out.error(Rule::RequestField, path.clone(), what, &detail);
        }
        for (key, value) in metadata {
            let value = value.as_str();
            let bad_key = !matches_pattern(key, 1);
            let bad_value = value.is_none_or(|v| !matches_pattern(v, 0));
            if bad_key || bad_value {
                let (which, shown, min) = if bad_key {
                    ("key", key.as_str(), 1)
                } else {
                    ("value", value.unwrap_or_default(), 0)
                };
                let what = format!(
                    "requestMetadata {which} `{shown}` is not 1 to 256 characters of {METADATA_PATTERN}"
                );
                let rule =
                    format!("satisfy regular expression pattern: {METADATA_PATTERN}{{{min},256}}");
                let detail = constraint(shown, &format!("requestMetadata.{key}"), &rule);
                out.error(Rule::RequestField, path.clone().key(key.clone()), what, &detail);
            }
        }
    }
    if let Some(Value::Array(paths)) = fields.get("additionalModelResponseFieldPaths") {
        let at = JsonPath::root().key("additionalModelResponseFieldPaths");
        if paths.len() > MAX_FIELD_PATHS {
            let what = format!(
                "{} additionalModelResponseFieldPaths; at most {MAX_FIELD_PATHS} are taken",
                paths.len()
            );
            let detail = constraint(
                &format!("{} paths", paths.len()),
                "additionalModelResponseFieldPaths",
                &format!("have length less than or equal to {MAX_FIELD_PATHS}"),
            );
            out.error(Rule::RequestField, at.clone(), what, &detail);
        }
        for (k, path) in paths.iter().enumerate() {
            let text = path.as_str().unwrap_or_default();
            if !(1..=256).contains(&text.chars().count()) {
                let what = format!(
                    "additionalModelResponseFieldPaths[{k}] is {} characters long; 1 to 256 are taken",
                    text.chars().count()
                );
                let detail = constraint(
                    text,
                    &format!("additionalModelResponseFieldPaths.{}.member", k + 1),
                    "have length between 1 and 256",
                );
                out.error(Rule::RequestField, at.clone().index(k), what, &detail);
            }
        }
    }
}

/// Member `key` of object `member` is one of `values`.
fn one_of(out: &mut CheckPass<'_>, object: &Value, member: &str, key: &str, values: &[&str]) {
    let Some(value) = object.get(key) else { return };
    let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    if value.as_str().is_some_and(|v| values.contains(&v)) {
        return;
    }
    let what = format!("{member}.{key} is `{text}`; it takes {}", values.join(", "));
    let rule = format!("satisfy enum value set: [{}]", values.join(", "));
    let detail = constraint(&text, &format!("{member}.{key}"), &rule);
    out.error(Rule::RequestField, JsonPath::root().key(member).key(key), what, &detail);
}

/// AWS's wording of a broken constraint.
fn constraint(value: &str, at: &str, rule: &str) -> String {
    format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: Member must {rule}"
    )
}

/// `text` is `min` to 256 characters of the metadata pattern.
fn matches_pattern(text: &str, min: usize) -> bool {
    (min..=256).contains(&text.chars().count())
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c.is_whitespace()
                || matches!(c, ':' | '_' | '@' | '$' | '#' | '=' | '/' | '+' | ',' | '-' | '.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_pattern_takes_its_class_and_nothing_else() {
        assert!(matches_pattern("team: search-ui/v2 #1 a+b=c, d.e @f $g", 1));
        assert!(matches_pattern("", 0));
        assert!(!matches_pattern("", 1));
        for bad in ["a!", "a?", "naïve", "a;b", "a*b"] {
            assert!(!matches_pattern(bad, 1), "{bad}");
        }
        assert!(!matches_pattern(&"x".repeat(257), 1));
    }
}
