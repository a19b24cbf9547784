//! Converse's members beside the conversation as the service judges them (rules file R1.15):
//! the enum values of `performanceConfig.latency` and `serviceTier.type`, the size and
//! characters of `requestMetadata`, the count and length of
//! `additionalModelResponseFieldPaths`. The texts follow AWS's constraint wording; Bedrock's
//! answers for these members are not recorded.

use serde_json::Value;

use crate::checks::{Refusal, validation};
use crate::conversation::Dialect;

/// Checks the request members of a Converse body; the first refusal, in the order above.
pub(crate) fn check(dialect: Dialect, body: &Value) -> Result<(), Refusal> {
    if dialect != Dialect::Converse {
        return Ok(());
    }
    let enums: [(&str, &str, &[&str]); 2] = [
        ("performanceConfig", "latency", &["standard", "optimized"]),
        ("serviceTier", "type", &["priority", "default", "flex", "reserved"]),
    ];
    for (member, key, allowed) in enums {
        if let Some(value) = body.get(member).and_then(|m| m.get(key)) {
            let ok = matches!(value, Value::String(s) if allowed.iter().any(|a| a == s));
            if !ok {
                let shown = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                return Err(broken(
                    &shown,
                    &format!("{member}.{key}"),
                    &format!("satisfy enum value set: [{}]", allowed.join(", ")),
                ));
            }
        }
    }
    if let Some(Value::Object(metadata)) = body.get("requestMetadata") {
        let n = metadata.len();
        if n == 0 {
            return Err(broken(
                "0 entries",
                "requestMetadata",
                "have length greater than or equal to 1",
            ));
        }
        if n > 16 {
            return Err(broken(
                &format!("{n} entries"),
                "requestMetadata",
                "have length less than or equal to 16",
            ));
        }
        for (key, value) in metadata {
            let at = format!("requestMetadata.{key}");
            if !allowed(key, 1) {
                let rule = r"satisfy regular expression pattern: [a-zA-Z0-9\s:_@$#=/+,-.]{1,256}";
                return Err(broken(key, &at, rule));
            }
            let text = value.as_str();
            if !text.is_some_and(|t| allowed(t, 0)) {
                let rule = r"satisfy regular expression pattern: [a-zA-Z0-9\s:_@$#=/+,-.]{0,256}";
                return Err(broken(text.unwrap_or_default(), &at, rule));
            }
        }
    }
    if let Some(Value::Array(paths)) = body.get("additionalModelResponseFieldPaths") {
        if paths.len() > 10 {
            let shown = format!("{} paths", paths.len());
            return Err(broken(
                &shown,
                "additionalModelResponseFieldPaths",
                "have length less than or equal to 10",
            ));
        }
        for (k, path) in paths.iter().enumerate() {
            let text = path.as_str().unwrap_or("");
            let length = text.chars().count();
            if length == 0 || length > 256 {
                let at = format!("additionalModelResponseFieldPaths.{}.member", k + 1);
                return Err(broken(text, &at, "have length between 1 and 256"));
            }
        }
    }
    Ok(())
}

/// Whether `text` is `least` to 256 characters of `[a-zA-Z0-9\s:_@$#=/+,-.]`.
fn allowed(text: &str, least: usize) -> bool {
    let count = text.chars().count();
    count >= least
        && count <= 256
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || ":_@$#=/+,-.".contains(c))
}

fn broken(value: &str, at: &str, rule: &str) -> Refusal {
    validation(format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: Member must {rule}"
    ))
}
