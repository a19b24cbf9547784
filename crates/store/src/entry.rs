//! What a session log holds: typed entries with a per-session sequence number.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use verbatim_model::{
    HistoryMessage, JsonMap, SessionId, SystemPrompt, ThinkingConfig, Tool, ToolResultContent,
    ToolUseId, Usage,
};
use verbatim_protocol::assemble::Fix;

/// What a new session starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSession {
    /// The model id, inference-profile id or ARN the session talks to.
    pub model: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// The tools offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// The thinking setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub metadata: JsonMap,
    /// Tags to list sessions by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl NewSession {
    /// A session for `model` with nothing else set.
    pub fn new(model: impl Into<String>) -> NewSession {
        NewSession {
            model: model.into(),
            system: None,
            tools: None,
            thinking: None,
            metadata: JsonMap::new(),
            tags: Vec::new(),
        }
    }
}

/// Where a session came from when it was not created fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    /// A fork: a new session whose history is the source's records up to `at`.
    Fork {
        /// The source session.
        from: SessionId,
        /// The last record of the source it copied.
        at: u64,
    },
    /// The archive a rewind keeps: every record the source had when it was rewound.
    Archive {
        /// The rewound session.
        from: SessionId,
        /// The source's version when it was rewound.
        at: u64,
    },
    /// Imported from an export.
    Import,
}

/// A session without its log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session id.
    pub id: SessionId,
    /// What the session was created with (later changes are [`Entry::Config`] records).
    #[serde(flatten)]
    pub start: NewSession,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its last record was appended.
    pub updated_at: DateTime<Utc>,
    /// The number of records: the sequence number of the last one (0 when empty). An append
    /// names the version it expects.
    pub version: u64,
    /// Where it came from, when not created fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// One change of the session's configuration, recorded as an entry so that an edit is an
/// append, never a rewrite of what was already sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "setting", content = "value")]
pub enum ConfigChange {
    /// The model.
    Model(String),
    /// The system prompt.
    System(Option<SystemPrompt>),
    /// The tools.
    Tools(Option<Vec<Tool>>),
    /// The thinking setting.
    Thinking(Option<ThinkingConfig>),
}

/// Where a tool call stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ToolCallState {
    /// The model asked for it.
    Requested,
    /// It started running.
    Started,
    /// It finished with this output.
    Completed {
        /// The output, as it goes into the tool result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent>,
    },
    /// It failed.
    Failed {
        /// What went wrong.
        message: String,
    },
    /// It started and nothing is known of its end (a crash while it ran).
    Unknown,
}

/// A step in the life of one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallEvent {
    /// The tool use it belongs to.
    pub tool_use_id: ToolUseId,
    /// The tool's name.
    pub name: String,
    /// The new state.
    #[serde(flatten)]
    pub state: ToolCallState,
}

/// One entry of a session log.
// Most entries are messages, the largest variant: boxing it would cost every one of them an
// allocation to save space on the few others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Entry {
    /// A message, with provenance on assistant messages.
    Message(HistoryMessage),
    /// A configuration change.
    Config(ConfigChange),
    /// A tool call's lifecycle step.
    ToolCall(ToolCallEvent),
    /// Fixes the assembler applied, recorded so they are replayed identically.
    Repair {
        /// The fixes, in order.
        fixes: Vec<Fix>,
    },
    /// The first record after a fork's copied history: where it came from.
    Forked {
        /// The source session.
        from: SessionId,
        /// The last record of the source it copied.
        through: u64,
    },
    /// The history after record `to` is set aside (kept whole in `archive`); later messages
    /// continue from `to`.
    Rewind {
        /// The last record kept in the history.
        to: u64,
        /// The session that keeps every record as it was before the rewind.
        archive: SessionId,
    },
}

/// An entry as stored: its sequence number in the session (1, 2, 3, ..., never ordered by
/// wall clock) and when it was appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The sequence number, starting at 1.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
}

/// A whole session: its info and every record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The info.
    pub info: SessionInfo,
    /// The records, in sequence order.
    pub records: Vec<Record>,
}

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
}

impl Config {
    /// Applies one change.
    pub fn apply(&mut self, change: ConfigChange) {
        match change {
            ConfigChange::Model(model) => self.model = model,
            ConfigChange::System(system) => self.system = system,
            ConfigChange::Tools(tools) => self.tools = tools,
            ConfigChange::Thinking(thinking) => self.thinking = thinking,
        }
    }
}

impl Session {
    /// The records that make the current history: rewinds set aside what followed the point
    /// they rewound to.
    pub fn live_records(&self) -> Vec<&Record> {
        let mut live: Vec<&Record> = Vec::with_capacity(self.records.len());
        for record in &self.records {
            match &record.entry {
                Entry::Rewind { to, .. } => live.retain(|r| r.seq <= *to),
                _ => live.push(record),
            }
        }
        live
    }

    /// The messages of the current history, in order.
    pub fn messages(&self) -> Vec<HistoryMessage> {
        self.live_records()
            .into_iter()
            .filter_map(|r| match &r.entry {
                Entry::Message(message) => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// The configuration in force: what the session started with, then each change.
    pub fn config(&self) -> Config {
        let start = &self.info.start;
        let mut config = Config {
            model: start.model.clone(),
            system: start.system.clone(),
            tools: start.tools.clone(),
            thinking: start.thinking.clone(),
        };
        for record in self.live_records() {
            if let Entry::Config(change) = &record.entry {
                config.apply(change.clone());
            }
        }
        config
    }

    /// The fixes recorded for the current history, in order.
    pub fn fixes(&self) -> Vec<Fix> {
        self.live_records()
            .into_iter()
            .filter_map(|r| match &r.entry {
                Entry::Repair { fixes } => Some(fixes.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Token usage summed over every assistant message ever appended, rewound ones included
    /// (they were paid for).
    pub fn usage(&self) -> Usage {
        let mut total = Usage::default();
        for record in &self.records {
            let Entry::Message(message) = &record.entry else { continue };
            if let Some(usage) = message.provenance.as_ref().and_then(|p| p.usage.as_ref()) {
                total.add(usage);
            }
        }
        total
    }
}
