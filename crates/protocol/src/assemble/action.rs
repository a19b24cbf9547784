//! The changes repair makes, as values that can be stored and replayed.

use serde::{Deserialize, Serialize};
use verbatim_model::{
    ContentBlock, InferenceConfig, Message, Role, SystemPrompt, ThinkingConfig, Tool, ToolChoice,
    Unmapped,
};

use super::State;

/// One change to a request. Message and block indexes refer to the request as it is when the
/// action applies (after the actions before it). Actions that change the history carry the
/// kind of block they expect, so replaying one on a different history fails instead of
/// editing the wrong block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    /// Remove one block.
    DropBlock {
        /// Message index.
        message: usize,
        /// Block index.
        block: usize,
        /// The kind of block expected there ([`ContentBlock::kind_name`]).
        kind: String,
    },
    /// Remove every thinking and redacted-thinking block of a message.
    DropThinking {
        /// Message index.
        message: usize,
    },
    /// Remove a message.
    DropMessage {
        /// Message index.
        message: usize,
    },
    /// Append the content of the next message (same role) to this one; in a user message the
    /// tool results then move to the front.
    MergeWithNext {
        /// Message index.
        message: usize,
    },
    /// Move the tool results of a user message to its front, keeping both orders.
    ResultsFirst {
        /// Message index.
        message: usize,
    },
    /// Insert a block.
    InsertBlock {
        /// Message index.
        message: usize,
        /// Where the block goes.
        block: usize,
        /// The block.
        content: ContentBlock,
    },
    /// Insert a message.
    InsertMessage {
        /// Where the message goes.
        message: usize,
        /// The message.
        content: Message,
    },
    /// Replace one block (never a thinking block).
    ReplaceBlock {
        /// Message index.
        message: usize,
        /// Block index.
        block: usize,
        /// The kind of block expected there.
        kind: String,
        /// The new block.
        content: ContentBlock,
    },
    /// Remove the keys the API does not define from a message.
    DropMessageUnmapped {
        /// Message index.
        message: usize,
    },
    /// Set the thinking setting of this request.
    SetThinking {
        /// The new setting.
        thinking: Option<ThinkingConfig>,
    },
    /// Set the inference parameters of this request.
    SetInference {
        /// The new parameters.
        inference: Option<InferenceConfig>,
    },
    /// Set `top_k` for this request.
    SetTopK {
        /// The new value.
        top_k: Option<u32>,
    },
    /// Set the tools of this request.
    SetTools {
        /// The new tools.
        tools: Option<Vec<Tool>>,
    },
    /// Set the tool choice of this request.
    SetToolChoice {
        /// The new choice.
        tool_choice: Option<ToolChoice>,
    },
    /// Set the system prompt of this request.
    SetSystem {
        /// The new system prompt.
        system: Option<SystemPrompt>,
    },
    /// Set the beta flags of this request.
    SetBeta {
        /// The new flags.
        beta: Option<Vec<String>>,
    },
}

/// A recorded action that does not fit the history it is replayed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplayError(String);

impl ReplayError {
    pub(crate) fn new(message: String) -> ReplayError {
        ReplayError(message)
    }
}

impl Action {
    /// True for actions that change the conversation history (to be recorded and replayed on
    /// every later request); false for those that only change this request's settings.
    pub fn changes_history(&self) -> bool {
        !matches!(
            self,
            Action::SetThinking { .. }
                | Action::SetInference { .. }
                | Action::SetTopK { .. }
                | Action::SetTools { .. }
                | Action::SetToolChoice { .. }
                | Action::SetSystem { .. }
                | Action::SetBeta { .. }
        )
    }

    /// The first message the action changes, for actions that change the history.
    pub fn message_index(&self) -> Option<usize> {
        match self {
            Action::DropBlock { message, .. }
            | Action::DropThinking { message }
            | Action::DropMessage { message }
            | Action::MergeWithNext { message }
            | Action::ResultsFirst { message }
            | Action::InsertBlock { message, .. }
            | Action::InsertMessage { message, .. }
            | Action::ReplaceBlock { message, .. }
            | Action::DropMessageUnmapped { message } => Some(*message),
            _ => None,
        }
    }

    /// Where the action applies, as (message, block) for ordering; settings come first.
    pub(crate) fn place(&self) -> (usize, usize) {
        match self {
            Action::DropBlock { message, block, .. }
            | Action::ReplaceBlock { message, block, .. }
            | Action::InsertBlock { message, block, .. } => (*message, *block),
            other => (other.message_index().unwrap_or(0), 0),
        }
    }

    /// A digest of the messages this history change reads in `state` (the message it edits;
    /// both messages of a merge; the message an inserted one follows). `None` for settings.
    pub(crate) fn guard(&self, state: &State<'_>) -> Option<String> {
        let messages = &state.request.messages;
        let index = self.message_index()?;
        let read: Vec<&Message> = match self {
            Action::MergeWithNext { .. } => messages.iter().skip(index).take(2).collect(),
            Action::InsertMessage { .. } => {
                index.checked_sub(1).and_then(|i| messages.get(i)).into_iter().collect()
            }
            _ => messages.get(index).into_iter().collect(),
        };
        Some(super::prefix::digest(&read))
    }

    pub(crate) fn apply(&self, state: &mut State<'_>) -> Result<(), ReplayError> {
        let request = &mut state.request;
        match self {
            Action::DropBlock { message, block, kind } => {
                let content = &mut content_of(&mut request.messages, *message)?;
                expect_kind(content, *message, *block, kind)?;
                content.remove(*block);
            }
            Action::DropThinking { message } => {
                let content = content_of(&mut request.messages, *message)?;
                content.retain(|b| !is_thinking(b));
            }
            Action::DropMessage { message } => {
                check_message(&request.messages, *message)?;
                request.messages.remove(*message);
                if *message < state.provenance.len() {
                    state.provenance.remove(*message);
                }
            }
            Action::MergeWithNext { message } => {
                check_message(&request.messages, *message + 1)?;
                if request.messages[*message].role != request.messages[*message + 1].role {
                    return Err(ReplayError(format!(
                        "messages {message} and {} have different roles",
                        message + 1
                    )));
                }
                let next = request.messages.remove(*message + 1);
                let first = &mut request.messages[*message];
                first.content.extend(next.content);
                if first.role == Role::User {
                    results_first(&mut first.content);
                }
                if *message + 1 < state.provenance.len() {
                    let next = state.provenance.remove(*message + 1);
                    if state.provenance[*message].is_none() {
                        state.provenance[*message] = next;
                    }
                }
            }
            Action::ResultsFirst { message } => {
                results_first(content_of(&mut request.messages, *message)?);
            }
            Action::InsertBlock { message, block, content } => {
                let blocks = content_of(&mut request.messages, *message)?;
                if *block > blocks.len() {
                    return Err(ReplayError(format!(
                        "messages[{message}] has no position {block}"
                    )));
                }
                blocks.insert(*block, content.clone());
            }
            Action::InsertMessage { message, content } => {
                if *message > request.messages.len() {
                    return Err(ReplayError(format!("no message position {message}")));
                }
                request.messages.insert(*message, content.clone());
                if *message <= state.provenance.len() {
                    state.provenance.insert(*message, None);
                }
            }
            Action::ReplaceBlock { message, block, kind, content } => {
                let blocks = content_of(&mut request.messages, *message)?;
                expect_kind(blocks, *message, *block, kind)?;
                blocks[*block] = content.clone();
            }
            Action::DropMessageUnmapped { message } => {
                check_message(&request.messages, *message)?;
                request.messages[*message].unmapped = Unmapped::default();
            }
            Action::SetThinking { thinking } => request.thinking = thinking.clone(),
            Action::SetInference { inference } => request.inference = inference.clone(),
            Action::SetTopK { top_k } => request.top_k = *top_k,
            Action::SetTools { tools } => request.tools = tools.clone(),
            Action::SetToolChoice { tool_choice } => request.tool_choice = tool_choice.clone(),
            Action::SetSystem { system } => request.system = system.clone(),
            Action::SetBeta { beta } => request.beta = beta.clone(),
        }
        Ok(())
    }
}

pub(crate) fn is_thinking(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_))
}

/// Stable partition: tool results first. A cache point stays with the block before it (in
/// Anthropic it is that block's `cache_control`).
pub(crate) fn results_first(content: &mut Vec<ContentBlock>) {
    let mut units: Vec<Vec<ContentBlock>> = Vec::new();
    for block in content.drain(..) {
        match (&block, units.last_mut()) {
            (ContentBlock::CachePoint(_), Some(unit)) => unit.push(block),
            _ => units.push(vec![block]),
        }
    }
    let (results, rest): (Vec<_>, Vec<_>) =
        units.into_iter().partition(|unit| matches!(unit[0], ContentBlock::ToolResult(_)));
    content.extend(results.into_iter().chain(rest).flatten());
}

fn check_message(messages: &[Message], index: usize) -> Result<(), ReplayError> {
    if index < messages.len() {
        Ok(())
    } else {
        Err(ReplayError(format!("no messages[{index}] (the request has {})", messages.len())))
    }
}

fn content_of(
    messages: &mut [Message],
    index: usize,
) -> Result<&mut Vec<ContentBlock>, ReplayError> {
    check_message(messages, index)?;
    Ok(&mut messages[index].content)
}

fn expect_kind(
    content: &[ContentBlock],
    message: usize,
    block: usize,
    kind: &str,
) -> Result<(), ReplayError> {
    match content.get(block) {
        Some(found) if found.kind_name() == kind => Ok(()),
        Some(found) => Err(ReplayError(format!(
            "messages[{message}].content[{block}] is {}, expected {kind}",
            found.kind_name()
        ))),
        None => Err(ReplayError(format!("no messages[{message}].content[{block}]"))),
    }
}
