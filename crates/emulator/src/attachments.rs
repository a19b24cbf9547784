//! Images and documents in Converse messages, and the last message, as the service judges them
//! (rules file R1.3, R1.4, R2.5): image and document formats, at most 20 images and documents,
//! document names (charset, unique), a document beside text, media and reasoning only where
//! their role allows, and the prefill rules.

use serde_json::Value;

use crate::checks::{Refusal, validation};
use crate::conversation::Dialect;
use crate::model::model_key;

const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];
const DOCUMENT_FORMATS: &[&str] =
    &["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"];

fn from_model(message: impl AsRef<str>) -> Refusal {
    validation(format!("The model returned the following errors: {}", message.as_ref()))
}

fn enum_value(value: &str, at: &str, set: &[&str]) -> Refusal {
    validation(format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        set.join(", ")
    ))
}

/// R1.4's measured charset: letters, digits, `_`, `-`, parentheses, square brackets and
/// single spaces (no `.`).
fn document_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 200
        && !name.contains("  ")
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '(' | ')' | '[' | ']' | ' ')
        })
}

/// Checks the media and the last message of a Converse body sent to `model_id`.
pub(crate) fn check(dialect: Dialect, body: &Value, model_id: &str) -> Result<(), Refusal> {
    if dialect != Dialect::Converse {
        return Ok(());
    }
    let messages: Vec<&Value> =
        body.get("messages").and_then(Value::as_array).into_iter().flatten().collect();
    let (mut images, mut documents) = (0, 0);
    let mut names = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        let blocks: Vec<&Value> =
            message.get("content").and_then(Value::as_array).into_iter().flatten().collect();
        let has_text = blocks.iter().any(|b| b.get("text").is_some());
        for (j, block) in blocks.iter().enumerate() {
            let at = format!("messages.{}.member.content.{}.member", i + 1, j + 1);
            if let Some(image) = block.get("image") {
                images += 1;
                let format = image.get("format").and_then(Value::as_str).unwrap_or_default();
                if !IMAGE_FORMATS.contains(&format) {
                    return Err(enum_value(format, &format!("{at}.image.format"), IMAGE_FORMATS));
                }
            }
            if let Some(document) = block.get("document") {
                documents += 1;
                let format = document.get("format").and_then(Value::as_str);
                if let Some(format) = format
                    && !DOCUMENT_FORMATS.contains(&format)
                {
                    let at = format!("{at}.document.format");
                    return Err(enum_value(format, &at, DOCUMENT_FORMATS));
                }
                let name = document.get("name").and_then(Value::as_str).unwrap_or_default();
                // llm-bedrock#8, vercel/ai#20365 (recorded).
                if !document_name_ok(name) {
                    return Err(validation(
                        "The document file name can only contain alphanumeric characters, whitespace characters, hyphens, parentheses, and square brackets. The name can't contain more than one consecutive whitespace character. Check that the file name conforms to these restrictions and retry your request.",
                    ));
                }
                // bifrost#7003 (recorded).
                if names.contains(&name) {
                    return Err(validation(
                        "Messages can't contain duplicate document names. Rename the document and retry your request.",
                    ));
                }
                names.push(name);
                // The Message doc: a document needs a text block beside it (the text of the
                // refusal is not recorded).
                if !has_text {
                    return Err(from_model(format!(
                        "messages.{i}: a message with a document must also contain a text block"
                    )));
                }
            }
            // The Message doc: "You can only include images and documents if the role is
            // user"; reasoning is the assistant's own. (Texts not recorded.)
            let media = block.get("image").or(block.get("document")).is_some();
            if media && role != "user" {
                return Err(from_model(format!(
                    "messages.{i}.content.{j}: images and documents can only be sent in user messages"
                )));
            }
            if block.get("reasoningContent").is_some() && role == "user" {
                return Err(from_model(format!(
                    "messages.{i}.content.{j}: thinking blocks can only be sent in assistant messages"
                )));
            }
        }
    }
    // cline#1844 (recorded).
    if images + documents > 20 {
        return Err(from_model(format!(
            "too many images and documents: {images} + {documents} > 20"
        )));
    }
    prefill(&messages, model_id)
}

/// R2.5: a final assistant message does not end with whitespace, and models from Opus 4.6 /
/// Sonnet 4.6 on take none (both recorded).
fn prefill(messages: &[&Value], model_id: &str) -> Result<(), Refusal> {
    let Some(last) = messages.last() else { return Ok(()) };
    if last.get("role").and_then(Value::as_str) != Some("assistant") {
        return Ok(());
    }
    let key = model_key(model_id);
    let no_prefill = [
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-opus-4-7",
        "claude-opus-4-8",
        "claude-opus-5",
        "claude-sonnet-5",
        "claude-haiku-5",
        "claude-fable",
        "claude-mythos",
    ];
    if no_prefill.iter().any(|m| key.contains(m)) {
        return Err(validation(
            "This model does not support assistant message prefill. The conversation must end with a user message.",
        ));
    }
    let blocks = last.get("content").and_then(Value::as_array);
    let text = blocks.and_then(|b| b.last()).and_then(|b| b.get("text")).and_then(Value::as_str);
    if text.is_some_and(|t| !t.trim().is_empty() && t.ends_with(char::is_whitespace)) {
        return Err(from_model("final assistant content cannot end with trailing whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SONNET_4: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

    fn refused(content: Value) -> Option<String> {
        let body = json!({"messages": [{"role": "user", "content": content}]});
        check(Dialect::Converse, &body, SONNET_4).err().map(|r| r.message)
    }

    fn document(name: &str, format: &str) -> Value {
        json!({"document": {"name": name, "format": format, "source": {"bytes": "aGk="}}})
    }

    #[test]
    fn documents_are_judged_by_name_format_and_company() {
        let text = json!({"text": "read"});
        assert_eq!(refused(json!([text, document("report (v2)", "pdf")])), None);
        assert!(
            refused(json!([text, document("report.pdf", "pdf")])).unwrap().contains("file name")
        );
        let two = json!([text, document("r", "pdf"), document("r", "pdf")]);
        assert!(refused(two).unwrap().contains("duplicate document names"));
        assert!(refused(json!([text, document("r", "rtf")])).unwrap().contains("enum value set"));
        assert!(refused(json!([document("r", "pdf")])).unwrap().contains("text block"));
    }

    #[test]
    fn images_are_judged_by_format_and_count() {
        let image =
            |format: &str| json!({"image": {"format": format, "source": {"bytes": "aGk="}}});
        assert!(refused(json!([{"text": "see"}, image("bmp")])).unwrap().contains("bmp"));
        let mut twenty = vec![json!({"text": "see"})];
        twenty.extend((0..20).map(|_| image("png")));
        assert_eq!(refused(json!(twenty.clone())), None);
        twenty.push(image("png"));
        assert!(refused(json!(twenty)).unwrap().ends_with("21 + 0 > 20"));
    }

    #[test]
    fn the_last_message_follows_the_prefill_rules() {
        let prefill = |text: &str, model: &str| {
            let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]},
                {"role": "assistant", "content": [{"text": text}]}]});
            check(Dialect::Converse, &body, model).err().map(|r| r.message)
        };
        assert_eq!(prefill("The answer is", SONNET_4), None);
        assert!(prefill("The answer is ", SONNET_4).unwrap().contains("trailing whitespace"));
        assert!(prefill("Sure,", "us.anthropic.claude-sonnet-4-6").unwrap().contains("prefill"));
    }
}
