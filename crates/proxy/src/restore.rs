//! Restoring thinking: a client (often a framework) that sends an assistant turn back with its
//! thinking blocks dropped, blanked or re-encoded gets Bedrock's `Invalid signature in thinking
//! block`. When the turn is otherwise the one stored (the same blocks once thinking is set
//! aside), the stored message goes back instead, byte for byte.

use verbatim_model::{ContentBlock, HistoryMessage, Message, Role};

/// How an incoming conversation stands against a stored one.
#[derive(Debug, PartialEq)]
pub(crate) enum Continues {
    /// The incoming messages start with the stored ones (after restoring thinking in the
    /// messages listed, by index).
    Yes {
        /// The indexes of the assistant messages whose stored thinking was put back.
        restored: Vec<usize>,
    },
    /// The incoming messages are the first `at` stored ones (after restoring thinking), and
    /// the session went on past them: the request goes back to an earlier point (a retry, a
    /// regenerated answer), which continues a fork of the session at that point.
    Earlier {
        /// How many stored messages the request holds.
        at: usize,
        /// As for [`Continues::Yes`].
        restored: Vec<usize>,
    },
    /// They differ: the incoming conversation is not this session's continuation.
    No,
}

/// Puts the stored thinking back into `incoming` where only thinking differs, and says whether
/// `incoming` continues `stored`.
pub(crate) fn restore(stored: &[HistoryMessage], incoming: &mut [Message]) -> Continues {
    if incoming.is_empty() {
        return Continues::No;
    }
    let mut restored = Vec::new();
    for (i, (kept, sent)) in stored.iter().zip(incoming.iter_mut()).enumerate() {
        let kept = &kept.message;
        if kept == sent {
            continue;
        }
        if kept.role == Role::Assistant
            && sent.role == Role::Assistant
            && has_thinking(kept)
            && without_thinking(kept) == without_thinking(sent)
        {
            *sent = kept.clone();
            restored.push(i);
            continue;
        }
        return Continues::No;
    }
    if incoming.len() < stored.len() {
        return Continues::Earlier { at: incoming.len(), restored };
    }
    Continues::Yes { restored }
}

fn has_thinking(message: &Message) -> bool {
    message.content.iter().any(is_thinking)
}

fn is_thinking(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_))
}

/// The message without its thinking blocks.
pub(crate) fn without_thinking(message: &Message) -> Message {
    let mut message = message.clone();
    message.content.retain(|block| !is_thinking(block));
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use verbatim_model::{ThinkingBlock, ToolUse, Unmapped};

    fn assistant(thinking: Option<(&str, Option<&str>)>) -> Message {
        let mut content = Vec::new();
        if let Some((text, signature)) = thinking {
            content.push(ContentBlock::Thinking(ThinkingBlock {
                text: text.to_owned(),
                signature: signature.map(str::to_owned),
                unmapped: Unmapped::default(),
            }));
        }
        content.push(ContentBlock::ToolUse(ToolUse {
            id: "tooluse_1".into(),
            name: "get_weather".to_owned(),
            input: serde_json::json!({"city": "Oslo"}),
            kind: None,
            unmapped: Unmapped::default(),
        }));
        Message::new(Role::Assistant, content)
    }

    #[test]
    fn dropped_blanked_or_altered_thinking_is_put_back_and_other_changes_are_not() {
        let stored: Vec<HistoryMessage> = vec![
            Message::user_text("weather?").into(),
            assistant(Some(("Let me look.", Some("c2ln")))).into(),
        ];
        for sent in [
            assistant(None),
            assistant(Some(("", Some("c2ln")))),
            assistant(Some(("Let me look.", Some("re-encoded")))),
        ] {
            let mut incoming =
                vec![Message::user_text("weather?"), sent, Message::user_text("next")];
            assert_eq!(restore(&stored, &mut incoming), Continues::Yes { restored: vec![1] });
            assert_eq!(incoming[1], stored[1].message);
        }
        let mut same = vec![stored[0].message.clone(), stored[1].message.clone()];
        assert_eq!(restore(&stored, &mut same), Continues::Yes { restored: vec![] });
        let mut edited = vec![Message::user_text("other question"), assistant(None)];
        assert_eq!(restore(&stored, &mut edited), Continues::No);
        let mut shorter = vec![Message::user_text("weather?")];
        assert_eq!(restore(&stored, &mut shorter), Continues::Earlier { at: 1, restored: vec![] });
        assert_eq!(restore(&stored, &mut []), Continues::No);
    }
}
