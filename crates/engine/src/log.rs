//! The engine's reading of a session log: the live history, the configuration in force, the
//! recorded fixes, and where each tool call of an unfinished loop stands. Pure: no I/O.

use verbatim_model::{
    ContentBlock, HistoryMessage, Message, Role, ThinkingConfig, ToolUse, ToolUseId,
};
use verbatim_protocol::assemble::Fix;
use verbatim_store::{Config, Entry, Record, Session, ToolCallState};

/// A session as the engine works on it, kept in step with its own appends and, between
/// turns, with what others appended (see [`Log::extend`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Log {
    /// The version of the last record read or written.
    pub(crate) version: u64,
    /// The live history.
    pub(crate) messages: Vec<HistoryMessage>,
    /// The sequence number of each message of `messages`.
    pub(crate) seqs: Vec<u64>,
    /// The configuration in force.
    pub(crate) config: Config,
    /// The fixes recorded for the live history.
    pub(crate) fixes: Vec<Fix>,
    /// Tool-call lifecycle steps recorded after the last message, in order.
    pub(crate) calls: Vec<(ToolUseId, ToolCallState)>,
}

impl Log {
    pub(crate) fn new(session: &Session) -> Log {
        let mut log = Log {
            version: session.info.version,
            messages: Vec::new(),
            seqs: Vec::new(),
            config: session.config(),
            fixes: session.fixes().into_iter().map(crate::fixes::replay).collect(),
            calls: Vec::new(),
        };
        for record in session.live_records() {
            log.read(record);
        }
        log
    }

    fn read(&mut self, record: &Record) {
        match &record.entry {
            Entry::Message(message) => {
                self.messages.push(message.clone());
                self.seqs.push(record.seq);
                self.calls.clear();
            }
            Entry::ToolCall(event) => {
                self.calls.push((event.tool_use_id.clone(), event.state.clone()));
            }
            _ => {}
        }
    }

    /// Takes in records this engine just appended (numbered from `first_seq`).
    pub(crate) fn appended(&mut self, first_seq: u64, entries: Vec<Entry>) {
        for (i, entry) in entries.into_iter().enumerate() {
            self.take(first_seq + i as u64, entry);
        }
    }

    /// Takes in the records appended after the last one this log has read (by another
    /// writer, say), when they simply continue it: numbered on from its version, and only
    /// messages, tool-call steps, repairs and configuration changes. Otherwise (a rewind
    /// sets part of the history aside) it returns false and the session must be read whole
    /// again; the log is then left as it was.
    pub(crate) fn extend(&mut self, records: Vec<Record>) -> bool {
        let continues = records.iter().zip(self.version + 1..).all(|(record, seq)| {
            record.seq == seq
                && matches!(
                    record.entry,
                    Entry::Message(_)
                        | Entry::ToolCall(_)
                        | Entry::Repair { .. }
                        | Entry::Config(_)
                )
        });
        if continues {
            for record in records {
                self.take(record.seq, record.entry);
            }
        }
        continues
    }

    /// Takes in record `seq`, the one after the last read.
    fn take(&mut self, seq: u64, entry: Entry) {
        match entry {
            Entry::Message(message) => {
                self.messages.push(message);
                self.seqs.push(seq);
                self.calls.clear();
            }
            Entry::ToolCall(event) => self.calls.push((event.tool_use_id, event.state)),
            Entry::Repair { fixes } => {
                self.fixes.extend(fixes.into_iter().map(crate::fixes::replay))
            }
            Entry::Config(change) => self.config.apply(change),
            _ => {}
        }
        self.version = seq;
    }

    /// The tool calls of the last message when it is an assistant message asking for tools:
    /// the model waits for their results.
    pub(crate) fn open_calls(&self) -> Vec<ToolUse> {
        match self.messages.last() {
            Some(last) if last.message.role == Role::Assistant => tool_uses(&last.message),
            _ => Vec::new(),
        }
    }

    /// Where a call of the open loop stands: its last recorded step after the message that
    /// asked for it (ids may repeat across turns, so earlier steps do not count).
    pub(crate) fn call_state(&self, id: &ToolUseId) -> Option<&ToolCallState> {
        self.calls.iter().rev().find(|(call, _)| call == id).map(|(_, state)| state)
    }

    /// Where the history's last turn stands: the index of its last message, looking past
    /// plain user messages appended after tool results (a turn that failed, then new input:
    /// the request merges them, and the loop goes on).
    fn loop_end(&self) -> Option<usize> {
        let mut i = self.messages.len().checked_sub(1)?;
        while i > 0
            && is_plain_user(&self.messages[i].message)
            && self.messages[i - 1].message.role == Role::User
        {
            i -= 1;
        }
        Some(i)
    }

    /// Whether the history ends inside an assistant turn: its last message asks for tools,
    /// or answers them.
    pub(crate) fn in_tool_loop(&self) -> bool {
        self.loop_end().is_some_and(|i| {
            let message = &self.messages[i].message;
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
        let end = index.min(self.messages.len().checked_sub(1)?);
        (0..=end).rev().find(|&i| is_plain_user(&self.messages[i].message))
    }

    /// The thinking setting of the unfinished tool loop the history ends with, when known:
    /// the setting of the turn's first assistant message. A tool loop is one assistant turn,
    /// so its setting may only change at the next user turn.
    pub(crate) fn open_turn_thinking(&self) -> Option<Option<ThinkingConfig>> {
        if !self.in_tool_loop() {
            return None;
        }
        let start = self.turn_start(self.loop_end()?)?;
        let first = self.messages[start..].iter().find(|m| m.message.role == Role::Assistant)?;
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
