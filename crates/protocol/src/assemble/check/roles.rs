//! Roles: the conversation starts with a user message, roles alternate, and a final assistant
//! message (a prefill) is one the model takes. Where Bedrock was recorded accepting a break
//! (an assistant message first on Converse, two user messages on InvokeModel or to a model
//! that is not Claude), the finding is a warning that repair leaves alone.
//!
//! Emits [`Rule::FirstUser`] (`roles.first_user`), [`Rule::Alternation`] (`roles.alternate`),
//! [`Rule::Prefill`] (`prefill.unsupported`) and [`Rule::PrefillWhitespace`]
//! (`prefill.trailing_whitespace`).

use verbatim_model::{Api, ContentBlock, Role};

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
        let article = if first.role == Role::Assistant { "an" } else { "a" };
        let mut what =
            format!("the conversation starts with {article} {} message", first.role.as_str());
        // On Converse, Claude Sonnet 4.5 answered 200 to a history that starts with an
        // assistant message (pydantic-ai cassette
        // `test_bedrock_anthropic_message_history_starting_with_response`), and the reports
        // of "A conversation must start with a user message" (R2.2) name no model: a warning,
        // left in place. On InvokeModel the Anthropic layer's text stands (R2.2): leading
        // assistant turns are trimmed (a window that starts mid-conversation). A misplaced
        // system message is reported, never dropped.
        let (severity, proposal) = match (out.api(), first.role) {
            (Api::Converse, Role::Assistant) => {
                what.push_str(" (accepted by Claude Sonnet 4.5 on Converse in a 2026 recording)");
                (Severity::Warning, None)
            }
            (_, Role::Assistant) => (Severity::Error, Some(Action::DropMessage { message: 0 })),
            _ => (Severity::Error, None),
        };
        out.push(Rule::FirstUser, severity, wire::message(0).key("role"), what, "", proposal);
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
        // Two user messages: the Converse refusal is reported for Claude (R2.3: dify#9294,
        // langchain-aws#130 and others). On InvokeModel the Anthropic Messages API combines
        // consecutive turns, and on Converse some models that are not Claude take them: there
        // it is a warning, and repair leaves the messages as they are.
        let users_refused = out.api() == Api::Converse && caps.is_claude();
        let merge = Some(Action::MergeWithNext { message: i - 1 });
        let (severity, what, proposal) = match a.role {
            Role::Assistant if thinking_second => (
                Severity::Error,
                "two assistant messages in a row, the second carrying thinking; as one message its thinking would follow other blocks",
                None,
            ),
            Role::Assistant => (
                Severity::Warning,
                "two assistant messages in a row (accepted by Bedrock in 2026 recordings, rejected in older reports)",
                merge,
            ),
            _ if users_refused => (Severity::Error, "two user messages in a row", merge),
            _ if out.api() == Api::InvokeModel => (
                Severity::Warning,
                "two user messages in a row (the Anthropic Messages API combines consecutive turns; older reports show Bedrock refusing them)",
                None,
            ),
            _ => (
                Severity::Warning,
                "two user messages in a row (accepted by some models that are not Claude)",
                None,
            ),
        };
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
