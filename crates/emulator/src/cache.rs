//! Cache points as the service judges them (rules file R1.9): at most four per request across
//! tools, system and messages; a TTL of `5m` or `1h`, never longer after shorter in the order
//! tools, system, messages; not first, not after a reasoning block, not after a document that
//! is not a PDF. Converse `cachePoint` blocks and Anthropic `cache_control` alike.

use serde_json::Value;

use crate::checks::{Refusal, validation};
use crate::conversation::Dialect;

/// One cache point, where it sits.
struct Point {
    /// `tools[i]`, `system[i]` or `messages[i].content[j]`, in the body's terms.
    at: String,
    ttl: Option<String>,
    /// The block before it in the same list: its kind, or `None` when it is first.
    after: Option<String>,
}

fn points(dialect: Dialect, body: &Value) -> Vec<Point> {
    let mut points = Vec::new();
    let lists = [
        (
            "tools",
            body.get("tools").or_else(|| body.get("toolConfig").and_then(|c| c.get("tools"))),
        ),
        ("system", body.get("system")),
    ];
    for (name, list) in lists {
        scan(dialect, name, list, &mut points);
    }
    let messages = body.get("messages").and_then(Value::as_array).into_iter().flatten();
    for (i, message) in messages.enumerate() {
        scan(dialect, &format!("messages.{i}.content"), message.get("content"), &mut points);
    }
    points
}

/// The kind of a block: its Converse member or its Anthropic `type`, with a document's
/// format (`document/pdf`).
fn kind(dialect: Dialect, block: &Value) -> String {
    match dialect {
        Dialect::Converse => {
            let Some((member, inner)) = block.as_object().and_then(|m| m.iter().next()) else {
                return String::new();
            };
            match inner.get("format").and_then(Value::as_str) {
                Some(format) if member == "document" => format!("document/{format}"),
                _ => member.clone(),
            }
        }
        Dialect::Anthropic => {
            let kind = block.get("type").and_then(Value::as_str).unwrap_or("text");
            let media =
                block.get("source").and_then(|s| s.get("media_type")).and_then(Value::as_str);
            match media {
                Some("application/pdf") if kind == "document" => "document/pdf".to_owned(),
                Some(_) if kind == "document" => "document/other".to_owned(),
                _ => kind.to_owned(),
            }
        }
    }
}

fn scan(dialect: Dialect, name: &str, list: Option<&Value>, points: &mut Vec<Point>) {
    let mut before: Option<String> = None;
    for (j, block) in list.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = format!("{name}.{j}");
        match dialect {
            Dialect::Converse => {
                if let Some(point) = block.get("cachePoint") {
                    let ttl = point.get("ttl").and_then(Value::as_str).map(str::to_owned);
                    points.push(Point { at, ttl, after: before.clone() });
                    continue;
                }
            }
            Dialect::Anthropic => {
                if let Some(control) = block.get("cache_control") {
                    let ttl = control.get("ttl").and_then(Value::as_str).map(str::to_owned);
                    // The point is after the block that carries it.
                    points.push(Point { at, ttl, after: Some(kind(dialect, block)) });
                }
            }
        }
        before = Some(kind(dialect, block));
    }
}

fn seconds(ttl: Option<&str>) -> u32 {
    match ttl {
        Some("1h") => 3600,
        _ => 300,
    }
}

/// Checks the cache points of a body; the first refusal found.
pub(crate) fn check(dialect: Dialect, body: &Value) -> Result<(), Refusal> {
    let points = points(dialect, body);
    if points.len() > 4 {
        // The Anthropic text is recorded (Anthropic.SDK#50); Converse's is not (R1.9), and
        // takes the same words.
        let found = points.len();
        return Err(validation(format!(
            "A maximum of 4 blocks with cache_control may be provided. Found {found}."
        )));
    }
    let mut shortest_so_far: Option<u32> = None;
    for point in &points {
        // `ttl` is an enum of the service model; `""` is refused too (strands).
        if let Some(ttl) = &point.ttl
            && ttl != "5m"
            && ttl != "1h"
        {
            return Err(validation(format!(
                "1 validation error detected: Value '{ttl}' at '{}.ttl' failed to satisfy constraint: Member must satisfy enum value set: [5m, 1h]",
                point.at
            )));
        }
        let ttl = seconds(point.ttl.as_deref());
        // strands, verified live: a longer TTL after a shorter one is refused (text not
        // recorded: the Anthropic Messages API's words).
        if shortest_so_far.is_some_and(|shortest| ttl > shortest) {
            return Err(validation(format!(
                "{}: a cache_control block with a longer ttl cannot come after one with a shorter ttl",
                point.at
            )));
        }
        shortest_so_far = Some(shortest_so_far.map_or(ttl, |shortest| shortest.min(ttl)));
        match point.after.as_deref() {
            // strands quotes this one.
            None => return Err(validation("There is nothing available to cache")),
            // opencode#36517.
            Some("reasoningContent") => {
                return Err(validation(
                    "Cache point cannot be inserted after reasoning block. Please remove the invalid cache point and try again.",
                ));
            }
            // pizza-bot#6, after a text-format document.
            Some(kind) if kind.starts_with("document/") && kind != "document/pdf" => {
                return Err(validation(format!(
                    "The model returned the following errors: {}.type: Field required",
                    point.at
                )));
            }
            _ => {}
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

    fn user(content: Value) -> Value {
        json!({"messages": [{"role": "user", "content": content}]})
    }

    #[test]
    fn four_points_pass_and_a_fifth_is_refused() {
        let point = json!({"cachePoint": {"type": "default"}});
        let mut content = vec![];
        for text in ["a", "b", "c", "d"] {
            content.push(json!({"text": text}));
            content.push(point.clone());
        }
        assert_eq!(refused(user(json!(content.clone()))), None);
        content.push(json!({"text": "e"}));
        content.push(point);
        assert!(refused(user(json!(content))).unwrap().contains("Found 5"));
    }

    #[test]
    fn a_point_is_judged_by_its_ttl_and_what_comes_before_it() {
        let ttl = |ttl: &str| json!({"cachePoint": {"type": "default", "ttl": ttl}});
        assert!(refused(user(json!([{"text": "a"}, ttl("2h")]))).unwrap().contains("enum"));
        assert!(refused(user(json!([ttl("5m"), {"text": "a"}]))).unwrap().contains("nothing"));
        let mut body = user(json!([{"text": "a"}, ttl("1h")]));
        body["system"] = json!([{"text": "sys"}, ttl("5m")]);
        assert!(refused(body.clone()).unwrap().contains("longer ttl"));
        body["system"] = json!([{"text": "sys"}, ttl("1h")]);
        assert_eq!(refused(body), None);
        let txt = json!({"document": {"name": "n", "format": "txt", "source": {"bytes": "aGk="}}});
        assert!(refused(user(json!([{"text": "a"}, txt, ttl("5m")]))).is_some());
        let pdf = json!({"document": {"name": "n", "format": "pdf", "source": {"bytes": "aGk="}}});
        assert_eq!(refused(user(json!([{"text": "a"}, pdf, ttl("5m")]))), None);
    }
}
