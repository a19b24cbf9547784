//! What a session's log says is live: the one reading of its records that decides the history,
//! the configuration in force, the recorded fixes, where the calls of an unfinished tool loop
//! stand, and the tokens paid for. [`History::new`] reads a session whole; [`History::take`]
//! and [`History::extend`] keep a history in step with the records appended after it, one
//! record at a time, as long as they simply continue it (a rewind sets records aside: a
//! history that meets one is read whole again). [`Session`]'s readings go through it.

use verbatim_model::{
    Caching, HistoryMessage, Settings, SystemPrompt, ThinkingConfig, Tool, ToolUseId, Usage,
};

use crate::entry::{ConfigChange, Entry, NewSession, Record, Session, ToolCallState};
use crate::fix_record::FixRecord;

/// The configuration in force after all records.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The model.
    pub model: String,
    /// The system prompt.
    pub system: Option<SystemPrompt>,
    /// The tools.
    pub tools: Option<Vec<Tool>>,
    /// The thinking setting.
    pub thinking: Option<ThinkingConfig>,
    /// The other request settings: the last [`ConfigChange::Settings`], else those an import
    /// kept from the body it read (`import.settings`), else none.
    pub settings: Settings,
    /// How the requests get their prompt-cache points: the last [`ConfigChange::Caching`],
    /// else none (the engine's default).
    pub caching: Option<Caching>,
}

impl Config {
    /// Applies one change.
    pub fn apply(&mut self, change: ConfigChange) {
        match change {
            ConfigChange::Model(model) => self.model = model,
            ConfigChange::System(system) => self.system = system,
            ConfigChange::Tools(tools) => self.tools = tools,
            ConfigChange::Thinking(thinking) => self.thinking = thinking,
            ConfigChange::Settings(settings) => self.settings = *settings,
            ConfigChange::Caching(caching) => self.caching = Some(caching),
        }
    }

    /// What a session starts with, before any change.
    fn start(start: &NewSession) -> Config {
        Config {
            model: start.model.clone(),
            system: start.system.clone(),
            tools: start.tools.clone(),
            thinking: start.thinking.clone(),
            settings: crate::import::start_settings(start),
            caching: None,
        }
    }
}

/// What a session's records say is live, up to a version: the messages of the current history
/// with their sequence numbers, the configuration in force, the fixes recorded for that
/// history, the tool-call steps recorded after its last message, and the tokens every model
/// call of the session used.
///
/// Read a session whole with [`History::new`] (or [`Session::history`]), then take in the
/// records appended after it with [`History::take`] or [`History::extend`]: the result is the
/// history of the session read whole again.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    version: u64,
    messages: Vec<HistoryMessage>,
    seqs: Vec<u64>,
    config: Config,
    fixes: Vec<FixRecord>,
    calls: Vec<(ToolUseId, ToolCallState)>,
    usage: Usage,
}

impl History {
    /// The history of `session` as its records stand.
    pub fn new(session: &Session) -> History {
        let mut history = History {
            version: session.info.version,
            messages: Vec::new(),
            seqs: Vec::new(),
            config: Config::start(&session.info.start),
            fixes: Vec::new(),
            calls: Vec::new(),
            usage: usage(&session.records),
        };
        for record in live(&session.records) {
            history.fold(record.seq, record.entry.clone());
        }
        history
    }

    /// Takes in record `seq` holding `entry`, when it simply continues this history: numbered
    /// on from [`History::version`], and a message, a tool-call step, a repair or a
    /// configuration change. Otherwise (a rewind sets part of the history aside, a record is
    /// missing in between) it returns false and leaves the history as it was: the session is
    /// to be read whole again.
    pub fn take(&mut self, seq: u64, entry: Entry) -> bool {
        if seq != self.version + 1 || !continues(&entry) {
            return false;
        }
        if let Some(paid) = paid(&entry) {
            self.usage.add(paid);
        }
        self.fold(seq, entry);
        self.version = seq;
        true
    }

    /// Takes in `records`, the ones appended after this history's version, when all of them
    /// simply continue it (see [`History::take`]); otherwise it returns false and leaves the
    /// history as it was.
    pub fn extend(&mut self, records: Vec<Record>) -> bool {
        let continuing = records
            .iter()
            .zip(self.version + 1..)
            .all(|(record, seq)| record.seq == seq && continues(&record.entry));
        if continuing {
            for record in records {
                self.take(record.seq, record.entry);
            }
        }
        continuing
    }

    /// The live record `seq`, `entry`, taken into what it changes.
    fn fold(&mut self, seq: u64, entry: Entry) {
        match entry {
            Entry::Message(message) => {
                self.messages.push(message);
                self.seqs.push(seq);
                self.calls.clear();
            }
            Entry::ToolCall(event) => self.calls.push((event.tool_use_id, event.state)),
            Entry::Repair { fixes } => self.fixes.extend(fixes),
            Entry::Config(change) => self.config.apply(change),
            Entry::Forked { .. } | Entry::Rewind { .. } => {}
        }
    }

    /// The session's version this history is read up to: the sequence number of the last
    /// record taken in.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The messages of the current history, in order.
    pub fn messages(&self) -> &[HistoryMessage] {
        &self.messages
    }

    /// The messages of the current history, in order, taken out.
    pub fn into_messages(self) -> Vec<HistoryMessage> {
        self.messages
    }

    /// The sequence number of each message of [`History::messages`].
    pub fn seqs(&self) -> &[u64] {
        &self.seqs
    }

    /// The configuration in force: what the session started with, then each change.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The fixes recorded for the current history, in order.
    pub fn fixes(&self) -> &[FixRecord] {
        &self.fixes
    }

    /// The tool-call steps recorded after the last message, in order.
    pub fn calls(&self) -> &[(ToolUseId, ToolCallState)] {
        &self.calls
    }

    /// Where a call asked for by the last message stands: its last step recorded after that
    /// message (ids may repeat across turns, so earlier steps do not count).
    pub fn call_state(&self, id: &ToolUseId) -> Option<&ToolCallState> {
        self.calls.iter().rev().find(|(call, _)| call == id).map(|(_, state)| state)
    }

    /// Token usage summed over every assistant message ever appended, rewound ones included
    /// (they were paid for).
    pub fn usage(&self) -> &Usage {
        &self.usage
    }
}

/// Whether a record of `entry` may simply continue a history, changing only what follows
/// what it holds. A rewind sets records aside; a fork's record only follows the copy that
/// makes a session.
fn continues(entry: &Entry) -> bool {
    matches!(
        entry,
        Entry::Message(_) | Entry::ToolCall(_) | Entry::Repair { .. } | Entry::Config(_)
    )
}

/// The records that make the current history: rewinds set aside what followed the point
/// they rewound to.
fn live(records: &[Record]) -> Vec<&Record> {
    let mut live: Vec<&Record> = Vec::with_capacity(records.len());
    for record in records {
        match &record.entry {
            Entry::Rewind { to, .. } => live.retain(|r| r.seq <= *to),
            _ => live.push(record),
        }
    }
    live
}

/// The tokens the model call that produced `entry` used, when it holds one.
fn paid(entry: &Entry) -> Option<&Usage> {
    let Entry::Message(message) = entry else { return None };
    message.provenance.as_ref()?.usage.as_ref()
}

/// The tokens used over `records`, rewound ones included.
fn usage(records: &[Record]) -> Usage {
    let mut total = Usage::default();
    for paid in records.iter().filter_map(|record| paid(&record.entry)) {
        total.add(paid);
    }
    total
}

impl Session {
    /// What the records say is live (see [`History`]).
    pub fn history(&self) -> History {
        History::new(self)
    }

    /// The records that make the current history: rewinds set aside what followed the point
    /// they rewound to.
    pub fn live_records(&self) -> Vec<&Record> {
        live(&self.records)
    }

    /// The messages of the current history, in order.
    pub fn messages(&self) -> Vec<HistoryMessage> {
        self.history().into_messages()
    }

    /// The configuration in force: what the session started with, then each change.
    pub fn config(&self) -> Config {
        self.history().config
    }

    /// The fixes recorded for the current history, in order.
    pub fn fixes(&self) -> Vec<FixRecord> {
        self.history().fixes
    }

    /// Token usage summed over every assistant message ever appended, rewound ones included
    /// (they were paid for).
    pub fn usage(&self) -> Usage {
        usage(&self.records)
    }
}
