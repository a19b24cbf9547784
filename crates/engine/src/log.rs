//! The engine's reading of a session log: the store's [`History`] (the live history, the
//! configuration in force, the recorded fixes, where each tool call of an unfinished loop
//! stands), the recorded fixes as the assembler replays them, and where the history's last
//! turn stands. Pure: no I/O.

use std::ops::Deref;

use verbatim_model::{ContentBlock, Message, Role, ThinkingConfig, ToolUse};
use verbatim_protocol::assemble::Fix;
use verbatim_store::{Entry, History, Record, Session};

/// A session as the engine works on it, kept in step with its own appends and, between
/// turns, with what others appended (see [`Log::extend`]). What is live is the store's
/// [`History`], which it derefs to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Log {
    history: History,
    /// The history's recorded fixes, as the assembler replays them.
    pub(crate) replay: Vec<Fix>,
}

impl Deref for Log {
    type Target = History;

    fn deref(&self) -> &History {
        &self.history
    }
}

impl Log {
    pub(crate) fn new(session: &Session) -> Log {
        let mut log = Log { history: session.history(), replay: Vec::new() };
        log.replayed();
        log
    }

    /// Takes in records this engine just appended (numbered from `first_seq`).
    pub(crate) fn appended(&mut self, first_seq: u64, entries: Vec<Entry>) {
        for (seq, entry) in (first_seq..).zip(entries) {
            let taken = self.history.take(seq, entry);
            debug_assert!(taken, "record {seq}, appended by this engine, continues the log");
        }
        self.replayed();
    }

    /// Takes in the records appended after the last one this log has read (by another
    /// writer, say), when they simply continue it (see [`History::extend`]). Otherwise (a
    /// rewind sets part of the history aside) it returns false and the session must be read
    /// whole again; the log is then left as it was.
    pub(crate) fn extend(&mut self, records: Vec<Record>) -> bool {
        let extended = self.history.extend(records);
        if extended {
            self.replayed();
        }
        extended
    }

    /// Brings [`Log::replay`] up to date with the history's recorded fixes (a history taking
    /// records in only adds to them).
    fn replayed(&mut self) {
        let recorded = self.history.fixes();
        if self.replay.len() > recorded.len() {
            self.replay.clear();
        }
        let new = &recorded[self.replay.len()..];
        self.replay.extend(new.iter().cloned().map(crate::fixes::replay));
    }

    /// The tool calls of the last message when it is an assistant message asking for tools:
    /// the model waits for their results.
    pub(crate) fn open_calls(&self) -> Vec<ToolUse> {
        match self.messages().last() {
            Some(last) if last.message.role == Role::Assistant => tool_uses(&last.message),
            _ => Vec::new(),
        }
    }

    /// Where the history's last turn stands: the index of its last message, looking past
    /// plain user messages appended after tool results (a turn that failed, then new input:
    /// the request merges them, and the loop goes on).
    fn loop_end(&self) -> Option<usize> {
        let mut i = self.messages().len().checked_sub(1)?;
        while i > 0
            && is_plain_user(&self.messages()[i].message)
            && self.messages()[i - 1].message.role == Role::User
        {
            i -= 1;
        }
        Some(i)
    }

    /// Whether the history ends inside an assistant turn: its last message asks for tools,
    /// or answers them.
    pub(crate) fn in_tool_loop(&self) -> bool {
        self.loop_end().is_some_and(|i| {
            let message = &self.messages()[i].message;
            match message.role {
                Role::Assistant => !tool_uses(message).is_empty(),
                Role::User => has_tool_results(message),
                _ => false,
            }
        })
    }

    /// The index of the user message that opened the turn holding message `index`: the
    /// nearest user message at or before it that carries no tool results.
    pub(crate) fn turn_start(&self, index: usize) -> Option<usize> {
        let end = index.min(self.messages().len().checked_sub(1)?);
        (0..=end).rev().find(|&i| is_plain_user(&self.messages()[i].message))
    }

    /// The thinking setting of the unfinished tool loop the history ends with, when known:
    /// the setting of the turn's first assistant message. A tool loop is one assistant turn,
    /// so its setting may only change at the next user turn.
    pub(crate) fn open_turn_thinking(&self) -> Option<Option<ThinkingConfig>> {
        if !self.in_tool_loop() {
            return None;
        }
        let start = self.turn_start(self.loop_end()?)?;
        let first = self.messages()[start..].iter().find(|m| m.message.role == Role::Assistant)?;
        first.provenance.as_ref().map(|p| p.thinking.clone())
    }
}

/// The tool calls of a message, in order.
pub(crate) fn tool_uses(message: &Message) -> Vec<ToolUse> {
    message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolUse(call) => Some(call.clone()),
            _ => None,
        })
        .collect()
}

fn has_tool_results(message: &Message) -> bool {
    message.content.iter().any(|b| matches!(b, ContentBlock::ToolResult(_)))
}

/// A user message with no tool results: the start of a turn.
pub(crate) fn is_plain_user(message: &Message) -> bool {
    message.role == Role::User && !has_tool_results(message)
}
