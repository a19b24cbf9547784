//! Thinking: the thinking blocks of the messages (signed, produced by this model, on this
//! API), where thinking stands in an assistant message, the final assistant message and the
//! unfinished tool loop against the thinking setting, and the prefix thinking is bound to.
//!
//! Emits [`Rule::ThinkingUnsigned`] (`thinking.unsigned`), [`Rule::ThinkingForeign`]
//! (`thinking.foreign_model`), [`Rule::ThinkingFirst`] (`thinking.first_block`),
//! [`Rule::ThinkingLast`] (`thinking.last_block`), [`Rule::ThinkingFinalAssistant`]
//! (`thinking.final_assistant`), [`Rule::ThinkingWhileDisabled`]
//! (`thinking.final_while_disabled`), [`Rule::ThinkingToggle`]
//! (`thinking.toggle_in_tool_loop`), [`Rule::ThinkingPrefix`] (`thinking.prefix_changed`)
//! and, on redacted data that is not base64, [`Rule::Base64`] (`content.base64`).

use verbatim_model::{
    Api, Message, RedactedForm, RedactedThinking, Role, ThinkingBlock, ThinkingConfig, ThinkingMode,
};

use super::content::base64;
use super::{CheckPass, RequestFacts, first_kind, has_thinking, starts_with_thinking};
use crate::JsonPath;
use crate::assemble::Severity;
use crate::assemble::action::{Action, is_thinking};
use crate::assemble::wire::{self, Field, Setting};
use crate::capability::ReplayedReasoning;
use crate::model_id::base_model;
use crate::rules::Rule;

/// The model that produced the thinking of message `i`, when it is not the target model.
fn foreign_producer(out: &CheckPass<'_>, i: usize) -> Option<String> {
    let target = out.context.model_id?;
    let producer = out.state.provenance.get(i)?.as_ref()?;
    if producer.model_id == target {
        return None;
    }
    (base_model(&producer.model_id) != base_model(target)).then(|| producer.model_id.clone())
}

/// The index of the first thinking block of a message.
pub(super) fn first_thinking(message: &Message) -> Option<usize> {
    message.content.iter().position(is_thinking)
}

/// Thinking produced on a surface of the other dialect is sent converted (redacted data
/// base64-decoded or encoded once). The mapping follows the recordings but was never confirmed
/// live, so the switch is reported rather than made silently. InvokeModel and the Messages API
/// carry the same Anthropic JSON, so thinking moves between them unconverted and unreported.
fn other_surface(out: &mut CheckPass<'_>, i: usize, path: JsonPath) {
    let Some(Some(producer)) = out.state.provenance.get(i) else { return };
    if producer.api.dialect() == out.api().dialect() {
        return;
    }
    let what = format!(
        "thinking produced on {} is sent on {}; send a turn with thinking on the API that produced it",
        producer.api.as_str(),
        out.api().as_str()
    );
    out.push(Rule::ThinkingForeign, Severity::Warning, path, what, "", None);
}

/// Where thinking stands in each assistant message, and the thinking of the message the request
/// continues from against the thinking setting.
pub(super) fn thinking_structure(out: &mut CheckPass<'_>, shape: &RequestFacts) {
    let state = out.state;
    let request = &state.request;
    let messages = &request.messages;
    let caps = out.context.caps;
    // Thinking of earlier, finished turns may be left out (the API ignores or strips it);
    // the message the request continues from (an unfinished tool loop's first assistant
    // message, or a final prefill) must keep its thinking as it was produced.
    let continued_from =
        if shape.prefill { messages.len().checked_sub(1) } else { shape.open_turn };
    let protected = |i: usize| Some(i) == continued_from;
    for (i, message) in messages.iter().enumerate() {
        if message.role != Role::Assistant || !has_thinking(message) {
            continue;
        }
        let only_thinking = message.content.iter().all(is_thinking);
        if !starts_with_thinking(message) {
            let found = wire::anthropic_kind(&message.content[0]);
            let what = format!("an assistant message with thinking starts with {found}");
            let proposal = (!protected(i)).then_some(Action::DropThinking { message: i });
            out.push(Rule::ThinkingFirst, Severity::Error, out.block(i, 0), what, found, proposal);
            continue;
        }
        // Consecutive assistant messages are read as one (see roles.alternate), so thinking
        // may end a message that another assistant message follows.
        let continued = messages.get(i + 1).is_some_and(|m| m.role == Role::Assistant);
        if message.content.last().is_some_and(is_thinking) && !continued {
            let j = message.content.len() - 1;
            let what = if only_thinking {
                "an assistant message that holds only thinking"
            } else {
                "an assistant message that ends with thinking"
            };
            let proposal = if only_thinking {
                Some(Action::DropMessage { message: i })
            } else {
                (!protected(i)).then_some(Action::DropThinking { message: i })
            };
            out.push_at(
                Rule::ThinkingLast,
                Severity::Error,
                out.block(i, j),
                &wire::message(i),
                what,
                "",
                proposal,
            );
            continue;
        }
    }
    // What follows reads Anthropic's setting: the families whose reasoning is not Claude's
    // (unsigned, or not taken back) are judged by their rows (`reasoning.rs`); gpt-oss's
    // reasoning goes back across tool turns without any such setting (vercel/ai#14720).
    if caps.replayed_reasoning != ReplayedReasoning::Signed {
        return;
    }
    if shape.prefill {
        let i = messages.len() - 1;
        let last = &messages[i];
        if last.content.is_empty() {
            return;
        }
        if shape.thinking_on && !starts_with_thinking(last) {
            let found = first_kind(last);
            let what = "thinking is on and the final assistant message (a prefill) does not start with thinking";
            out.push(
                Rule::ThinkingFinalAssistant,
                Severity::Error,
                out.block(i, 0),
                what,
                found,
                None,
            );
        } else if !shape.thinking_on && has_thinking(last) {
            let what = "thinking is off and the final assistant message carries thinking";
            out.fix(
                Rule::ThinkingWhileDisabled,
                out.block(i, 0),
                what,
                "",
                Action::DropThinking { message: i },
            );
        }
        return;
    }
    let Some(l) = shape.open_turn else { return };
    let starts = starts_with_thinking(&messages[l]);
    let path = out.block(l, 0);
    if shape.thinking_on && !starts {
        let found = first_kind(&messages[l]);
        let what = "thinking is on but the unfinished tool loop was produced without it (a tool loop is one assistant turn; thinking may change at the next user turn)";
        let proposal = (!caps.thinking.always_on && request.thinking.is_some())
            .then_some(Action::SetThinking { thinking: None });
        out.push(Rule::ThinkingFinalAssistant, Severity::Error, path, what, found, proposal);
        return;
    }
    let started = out.context.open_turn_thinking.cloned();
    // The loop's own setting is restored only where this model accepts it; otherwise the mode
    // check and this one would undo each other.
    let restorable = |config: &ThinkingConfig| match config.mode {
        ThinkingMode::Enabled { .. } => caps.thinking.enabled,
        ThinkingMode::Adaptive { .. } => caps.thinking.adaptive,
        ThinkingMode::Disabled => caps.thinking.disabled,
    };
    if !shape.thinking_on && starts {
        let what = "thinking is off but the unfinished tool loop was produced with it; the setting may change at the next user turn";
        let proposal = match started {
            Some(Some(config)) if restorable(&config) => {
                Some(Action::SetThinking { thinking: Some(config) })
            }
            _ => None,
        };
        out.push(Rule::ThinkingToggle, Severity::Error, path, what, "", proposal);
        return;
    }
    let kind = |config: Option<&ThinkingConfig>| config.map(|c| std::mem::discriminant(&c.mode));
    if let Some(Some(config)) = started
        && shape.thinking_on
        && request.thinking.as_ref() != Some(&config)
    {
        let path = out.setting(Setting::Thinking);
        if kind(request.thinking.as_ref()) != kind(Some(&config)) {
            let what = "the thinking mode changed inside an unfinished tool loop; it may change at the next user turn";
            let proposal =
                restorable(&config).then_some(Action::SetThinking { thinking: Some(config) });
            out.push(Rule::ThinkingToggle, Severity::Error, path, what, "", proposal);
        } else {
            // A budget or effort change: documented as a turn-boundary change, but other
            // rules (budget below max_tokens) may have asked for it, so it is only reported.
            let what = "the thinking budget or effort changed inside an unfinished tool loop; the documentation asks to change it at the next user turn";
            out.push(Rule::ThinkingToggle, Severity::Warning, path, what, "", None);
        }
    }
}

/// On models that bind thinking to the conversation prefix, thinking may only be sent back
/// while the prefix it was produced after (recorded in its provenance) is unchanged.
pub(super) fn prefix_binding(out: &mut CheckPass<'_>) {
    if !out.context.caps.prefix_binding {
        return;
    }
    let request = out.request();
    let recorded = |i: usize| {
        let message = &request.messages[i];
        let provenance = out.state.provenance.get(i)?.as_ref()?;
        (message.role == Role::Assistant && has_thinking(message))
            .then_some(provenance.prefix_hash.as_deref()?)
    };
    if !(0..request.messages.len()).any(|i| recorded(i).is_some()) {
        return;
    }
    let hashes = crate::assemble::prefix::prefix_hashes(request);
    let changed =
        (0..request.messages.len()).find(|&i| recorded(i).is_some_and(|h| h != hashes[i]));
    let Some(i) = changed else { return };
    let path = out.block(i, 0);
    if super::surface::drops_mismatched_blocks(request, out.api()) {
        // The request asks the API to drop what no longer binds: not refused, but the
        // thinking from here on is lost to the model.
        let what = "thinking produced after a prefix that has since changed; the request asks the API to drop it (`prefix_mismatch_behavior: \"drop_block\"`)";
        out.push(Rule::ThinkingPrefix, Severity::Warning, path, what, "", None);
        return;
    }
    let what = "thinking produced after a prefix that has since changed (system, tools or an earlier message)";
    // Where the model takes the binding control, asking the API to drop only what no longer
    // binds keeps the rest of the thinking; the beta it needs is added by the next fix.
    let action = if out.api() == Api::Messages && out.context.caps.binding_controls {
        let thinking = super::surface::with_drop_block(request.thinking.as_ref());
        Action::SetThinking { thinking: Some(thinking) }
    } else {
        Action::DropThinking { message: i }
    };
    out.fix(Rule::ThinkingPrefix, path, what, "", action);
}

/// The checks of a thinking block (`j` of assistant message `i`): signed, produced by this
/// model, and on this API.
pub(super) fn thinking_block(
    out: &mut CheckPass<'_>,
    i: usize,
    j: usize,
    thinking: &ThinkingBlock,
    first_thinking: Option<usize>,
) {
    if super::reasoning::replayed(out, i, j, thinking) {
        return;
    }
    if thinking.signature.as_deref().is_none_or(str::is_empty) {
        let what = "thinking without a signature cannot be sent back";
        let at = out.block(i, j);
        out.push_at(
            Rule::ThinkingUnsigned,
            Severity::Error,
            out.field(i, j, Field::Signature),
            &at,
            what,
            "",
            Some(Action::DropThinking { message: i }),
        );
    } else if let Some(producer) = foreign_producer(out, i) {
        let what = format!("thinking produced by `{producer}` cannot be sent to another model");
        out.push_at(
            Rule::ThinkingForeign,
            Severity::Error,
            out.block(i, j),
            &out.block(i, j),
            what,
            "",
            Some(Action::DropThinking { message: i }),
        );
    } else if first_thinking == Some(j) {
        other_surface(out, i, out.block(i, j));
    }
}

/// The checks of a redacted thinking block (`j` of assistant message `i`): its data, and
/// produced by this model on this API.
pub(super) fn redacted_block(
    out: &mut CheckPass<'_>,
    i: usize,
    j: usize,
    redacted: &RedactedThinking,
    first_thinking: Option<usize>,
) {
    if super::reasoning::replayed_redacted(out, i, j) {
        return;
    }
    // Checked in the form it is sent in; the other form is converted on the
    // way (base64-encoded, or decoded, which fails if it is not base64).
    let sent_as_is = matches!(
        (out.api(), redacted.form),
        (Api::Converse, RedactedForm::ConverseBlob)
            | (Api::InvokeModel, RedactedForm::AnthropicData)
    );
    if sent_as_is {
        let at = out.field(i, j, Field::RedactedData);
        base64(out, &redacted.data, at, "redacted thinking");
    }
    if let Some(producer) = foreign_producer(out, i) {
        let what =
            format!("redacted thinking produced by `{producer}` cannot be sent to another model");
        out.fix(
            Rule::ThinkingForeign,
            out.block(i, j),
            what,
            "",
            Action::DropThinking { message: i },
        );
    } else if first_thinking == Some(j) {
        other_surface(out, i, out.block(i, j));
    }
}
