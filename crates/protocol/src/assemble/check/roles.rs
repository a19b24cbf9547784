//! Roles: the conversation starts with a user message, roles alternate, and a final assistant
//! message (a prefill) is one the model takes.
//!
//! Emits [`Rule::FirstUser`] (`roles.first_user`), [`Rule::Alternation`] (`roles.alternate`),
//! [`Rule::Prefill`] (`prefill.unsupported`) and [`Rule::PrefillWhitespace`]
//! (`prefill.trailing_whitespace`).

use verbatim_model::{ContentBlock, Role};

use super::{CheckPass, has_thinking};
use crate::assemble::Severity;
use crate::assemble::action::{Action, is_thinking};
use crate::assemble::wire;
use crate::rules::Rule;

/// The roles of the messages: the first, each pair of neighbours, and the last.
pub(super) fn roles(out: &mut CheckPass<'_>) {
    let state = out.state;
    let request = &state.request;
    let caps = out.context.caps;
    let messages = &request.messages;
    if let Some(first) = messages.first()
        && first.role != Role::User
    {
        let what = format!("the conversation starts with a {} message", first.role.as_str());
        // Leading assistant turns are trimmed (a window that starts mid-conversation); a
        // misplaced system message is reported, never dropped.
        let proposal =
            (first.role == Role::Assistant).then_some(Action::DropMessage { message: 0 });
        out.push(
            Rule::FirstUser,
            Severity::Error,
            wire::message(0).key("role"),
            what,
            "",
            proposal,
        );
    }
    for i in 1..messages.len() {
        let (a, b) = (&messages[i - 1], &messages[i]);
        if a.role != b.role || a.role == Role::System {
            continue;
        }
        // Merging puts the second message's blocks after the first's: when the second
        // carries thinking, that builds a layout the model never produced (thinking after
        // other blocks, or two responses' thinking run together).
        let thinking_second = a.role == Role::Assistant && has_thinking(b);
        let (severity, what) = match a.role {
            Role::Assistant if thinking_second => (
                Severity::Error,
                "two assistant messages in a row, the second carrying thinking; as one message its thinking would follow other blocks",
            ),
            Role::Assistant => (
                Severity::Warning,
                "two assistant messages in a row (accepted by Bedrock in 2026 recordings, rejected in older reports)",
            ),
            _ => (Severity::Error, "two user messages in a row"),
        };
        let proposal = (!thinking_second).then_some(Action::MergeWithNext { message: i - 1 });
        out.push(
            Rule::Alternation,
            severity,
            wire::message(i).key("role"),
            what,
            a.role.as_str(),
            proposal,
        );
    }
    let Some(last) = messages.last() else { return };
    let i = messages.len() - 1;
    if last.role != Role::Assistant {
        return;
    }
    if !caps.prefill {
        let reasoning_only = last.content.iter().all(is_thinking);
        let what = if reasoning_only {
            format!(
                "the conversation ends with a reasoning-only assistant message, which {} takes as a prefill",
                caps.family
            )
        } else {
            format!(
                "the conversation ends with an assistant message (a prefill), which {} rejects",
                caps.family
            )
        };
        let proposal = reasoning_only.then_some(Action::DropMessage { message: i });
        out.push(Rule::Prefill, Severity::Error, wire::message(i), what, "", proposal);
    }
    if let Some(ContentBlock::Text(text)) = last.content.last()
        && text.text != text.text.trim_end()
        && !text.text.trim().is_empty()
    {
        let j = last.content.len() - 1;
        let mut trimmed = text.clone();
        trimmed.text.truncate(text.text.trim_end().len());
        let action = Action::ReplaceBlock {
            message: i,
            block: j,
            kind: "text".to_owned(),
            content: ContentBlock::Text(trimmed),
        };
        out.fix(
            Rule::PrefillWhitespace,
            out.block(i, j),
            "the final assistant text ends with whitespace",
            "",
            action,
        );
    }
}
