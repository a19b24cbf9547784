//! Where thinking blocks may sit in any assistant message, whatever the turn (rules file R1.8,
//! R4.5): each carries a signature (a schema field, so it is checked in every message, unlike
//! the signature's value, which only the current turn's blocks are verified for); thinking
//! comes first in its message; and a message does not end with thinking.

use crate::checks::{Refusal, validation};
use crate::conversation::{Block, Dialect, Msg};

/// The text as each surface words it: Converse names the model as the source.
fn from_model(dialect: Dialect, message: String) -> Refusal {
    validation(match dialect {
        Dialect::Converse => format!("The model returned the following errors: {message}"),
        Dialect::Anthropic => message,
    })
}

/// Checks the thinking blocks of every assistant message; the first refusal found. `signed`:
/// the model's reasoning carries signatures (Claude's); the other families' unsigned reasoning
/// is judged by [`crate::families`].
pub(crate) fn check(dialect: Dialect, messages: &[Msg], signed: bool) -> Result<(), Refusal> {
    for (i, message) in messages.iter().enumerate() {
        if message.role != "assistant" {
            continue;
        }
        let thinking = |block: &Block| matches!(block, Block::Thinking { .. } | Block::Redacted(_));
        for (j, block) in message.blocks.iter().enumerate() {
            // R1.8: "messages.369.content.0.thinking.signature: Field required", and an empty
            // signature the same.
            if let Block::Thinking { signature, .. } = block
                && signed
                && signature.as_deref().is_none_or(str::is_empty)
            {
                let text = format!("messages.{i}.content.{j}.thinking.signature: Field required");
                return Err(from_model(dialect, text));
            }
        }
        let Some(first) = message.blocks.first() else { continue };
        // R4.5 (bedrock-agentcore-sdk-python#416, claude-code#20705).
        if !thinking(first) && message.blocks.iter().any(thinking) {
            let found = match first {
                Block::ToolUse { .. } => "tool_use",
                _ => "text",
            };
            return Err(from_model(
                dialect,
                format!(
                    "messages.{i}.content.0: If an assistant message contains any thinking blocks, the first block must be thinking or redacted_thinking. Found {found}."
                ),
            ));
        }
        // R4.5 (forgecode#2107). A final prefill of thinking alone is R4.6's to judge, and a
        // turn's reasoning followed by its tool call in a second assistant message was
        // recorded accepted (langchaingo's split-assistant exchange).
        let next = messages.get(i + 1).map(|m| m.role.as_str());
        if message.blocks.last().is_some_and(thinking) && next.is_some_and(|r| r != "assistant") {
            return Err(from_model(
                dialect,
                format!(
                    "messages.{i}: The final block in an assistant message cannot be `thinking`."
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thinking(signature: Option<&str>) -> Block {
        Block::Thinking { text: "hm".into(), signature: signature.map(str::to_owned) }
    }

    fn history(assistant: Vec<Block>) -> Vec<Msg> {
        let user = |text: &str| Msg { role: "user".into(), blocks: vec![Block::Text(text.into())] };
        vec![user("hi"), Msg { role: "assistant".into(), blocks: assistant }, user("more")]
    }

    fn refused(assistant: Vec<Block>) -> Option<String> {
        check(Dialect::Converse, &history(assistant), true).err().map(|r| r.message)
    }

    #[test]
    fn thinking_in_an_earlier_turn_is_signed_first_and_not_last() {
        let answer = || Block::Text("Answer.".into());
        assert_eq!(refused(vec![thinking(Some("c2ln")), answer()]), None);
        assert!(refused(vec![thinking(None), answer()]).unwrap().contains("Field required"));
        assert!(refused(vec![thinking(Some("")), answer()]).unwrap().contains("Field required"));
        let text_first = refused(vec![answer(), thinking(Some("c2ln"))]).unwrap();
        assert!(
            text_first
                .ends_with("the first block must be thinking or redacted_thinking. Found text.")
        );
        assert!(refused(vec![thinking(Some("c2ln"))]).unwrap().contains("cannot be `thinking`"));
        assert_eq!(refused(vec![answer()]), None);
    }
}
