//! What a session log holds: typed entries with a per-session sequence number.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use verbatim_model::tagged::{self, Key, Tagged};
use verbatim_model::{
    Caching, HistoryMessage, JsonMap, SessionId, Settings, SystemPrompt, ThinkingConfig, Tool,
    ToolResultContent, ToolUseId,
};

use crate::fix_record::{FIX_RECORD_VERSION, FixRecord};

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
    /// The other request settings ([`Settings`]), replacing those in force.
    Settings(Box<Settings>),
    /// How the requests get their prompt-cache points.
    Caching(Caching),
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Entry {
    /// A message, with provenance on assistant messages.
    Message(HistoryMessage),
    /// A configuration change.
    Config(ConfigChange),
    /// A tool call's lifecycle step.
    ToolCall(ToolCallEvent),
    /// Fixes the assembler applied, recorded so they are replayed identically (see
    /// [`FixRecord`]).
    Repair {
        /// The fixes, in order.
        fixes: Vec<FixRecord>,
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

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entry, D::Error> {
        tagged::deserialize(deserializer)
    }
}

impl Tagged for Entry {
    const TAG: &'static str = "type";
    const VARIANTS: &'static [&'static str] =
        &["message", "config", "tool_call", "repair", "forked", "rewind"];
    const EXPECTING: &'static str = "a log entry";

    fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Repair {
            fixes: Vec<FixRecord>,
            /// Absent in version 1, the only one written so far.
            #[serde(default)]
            version: Option<u32>,
        }
        #[derive(Deserialize)]
        struct Forked {
            from: SessionId,
            through: u64,
        }
        #[derive(Deserialize)]
        struct Rewind {
            to: u64,
            archive: SessionId,
        }
        Ok(match tag {
            "message" => Entry::Message(HistoryMessage::deserialize(rest)?),
            "config" => Entry::Config(ConfigChange::deserialize(rest)?),
            "tool_call" => Entry::ToolCall(ToolCallEvent::deserialize(rest)?),
            "repair" => {
                let Repair { fixes, version } = Repair::deserialize(rest)?;
                if let Some(version) = version.filter(|v| *v != FIX_RECORD_VERSION) {
                    return Err(de::Error::custom(format_args!(
                        "repair record version {version} is not known: this build reads version {FIX_RECORD_VERSION}"
                    )));
                }
                Entry::Repair { fixes }
            }
            "forked" => {
                let Forked { from, through } = Forked::deserialize(rest)?;
                Entry::Forked { from, through }
            }
            "rewind" => {
                let Rewind { to, archive } = Rewind::deserialize(rest)?;
                Entry::Rewind { to, archive }
            }
            other => return Err(de::Error::unknown_variant(other, Self::VARIANTS)),
        })
    }
}

/// An entry as stored: its sequence number in the session (1, 2, 3, ..., never ordered by
/// wall clock) and when it was appended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// The sequence number, starting at 1.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
}

/// A record is read as it is written, `seq` and `at` then the entry (see
/// [`verbatim_model::tagged`]); in any other order it is read whole first.
impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Record, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = Record;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a log record")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
                let (mut seq, mut at) = (None, None);
                loop {
                    let Some(key) = map.next_key::<Key<'de>>()? else {
                        return Err(de::Error::missing_field(Entry::TAG));
                    };
                    match &*key.0 {
                        "seq" if seq.is_none() => seq = Some(map.next_value::<u64>()?),
                        "at" if at.is_none() => at = Some(map.next_value::<DateTime<Utc>>()?),
                        "type" => {
                            if let (Some(seq), Some(at)) = (seq, at) {
                                let tag: Key<'de> = map.next_value()?;
                                let taken = &["type", "seq", "at"];
                                let entry = tagged::variant_from_map(&tag.0, map, taken)?;
                                return Ok(Record { seq, at, entry });
                            }
                            return whole(seq, at, key, map);
                        }
                        _ => return whole(seq, at, key, map),
                    }
                }
            }
        }

        /// The record read whole, from `key` on, with what was read before it.
        fn whole<'de, A: MapAccess<'de>>(
            seq: Option<u64>,
            at: Option<DateTime<Utc>>,
            key: Key<'de>,
            map: A,
        ) -> Result<Record, A::Error> {
            let mut object = tagged::rest_of(key.0.into_owned(), map)?;
            let seq = field(&mut object, "seq", seq)?;
            let at = field(&mut object, "at", at)?;
            Ok(Record { seq, at, entry: tagged::from_object(object)? })
        }

        /// Field `name`: as read before, or taken out of `object`, not both.
        fn field<T: de::DeserializeOwned, E: de::Error>(
            object: &mut serde_json::Map<String, Value>,
            name: &'static str,
            read: Option<T>,
        ) -> Result<T, E> {
            match (read, object.remove(name)) {
                (Some(_), Some(_)) => Err(E::custom(format_args!("duplicate field `{name}`"))),
                (Some(read), None) => Ok(read),
                (None, Some(value)) => serde_json::from_value(value).map_err(E::custom),
                (None, None) => Err(E::missing_field(name)),
            }
        }

        deserializer.deserialize_map(RecordVisitor)
    }
}

/// A whole session: its info and every record. What the records say is live (the history,
/// the configuration, the fixes, the usage) is read through [`Session::history`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The info.
    pub info: SessionInfo,
    /// The records, in sequence order.
    pub records: Vec<Record>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// `value`'s keys in the order `keys` gives, then the rest.
    fn reorder(value: &Value, keys: &[&str]) -> String {
        let object = value.as_object().unwrap();
        let mut out = serde_json::Map::new();
        for key in keys {
            out.insert((*key).to_owned(), object[*key].clone());
        }
        for (key, value) in object {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(out).to_string()
    }

    #[test]
    fn a_record_reads_the_same_whatever_the_order_of_its_keys() {
        let records = [
            json!({ "seq": 3, "at": "2026-11-22T10:00:00.123456789Z", "type": "message",
                    "message": { "role": "assistant",
                                 "content": [{ "type": "thinking", "text": "t", "signature": "s" },
                                             { "text": "answer", "type": "text" }] },
                    "provenance": { "model_id": "m", "api": "converse" } }),
            json!({ "seq": 4, "at": "2026-11-22T10:00:01Z", "type": "config",
                    "setting": "model", "value": "other" }),
            json!({ "seq": 5, "at": "2026-11-22T10:00:02Z", "type": "forked",
                    "from": "5f0c3b8e-2d4a-4c6b-9e1f-3a2b1c0d9e8f", "through": 2 }),
            json!({ "seq": 6, "at": "2026-11-22T10:00:03Z", "type": "tool_call",
                    "tool_use_id": "t1", "name": "f", "state": "failed", "message": "boom" }),
        ];
        for record in records {
            let written = reorder(&record, &["seq", "at", "type"]);
            let expected: Record = serde_json::from_str(&written).unwrap();
            assert_eq!(serde_json::to_value(&expected).unwrap(), record, "{written}");
            for keys in [&["type", "seq", "at"][..], &["at", "type"], &["seq", "type", "at"]] {
                let text = reorder(&record, keys);
                let read: Record = serde_json::from_str(&text).unwrap();
                assert_eq!(read, expected, "{text}");
            }
            // The entry alone, its tag first or last.
            let mut entry = record.as_object().unwrap().clone();
            entry.remove("seq");
            entry.remove("at");
            let entry = Value::Object(entry);
            let first: Entry = serde_json::from_str(&reorder(&entry, &["type"])).unwrap();
            assert_eq!(first, expected.entry);
            let mut object = entry.as_object().unwrap().clone();
            let tag = object.remove("type").unwrap();
            object.insert("type".into(), tag);
            let last: Entry = serde_json::from_value(Value::Object(object)).unwrap();
            assert_eq!(last, first, "{entry}");
        }
    }

    #[test]
    fn a_bad_record_is_refused_with_the_reason() {
        let error = |text: &str| serde_json::from_str::<Record>(text).unwrap_err().to_string();
        assert!(error(r#"{"seq":1,"at":"2026-11-22T10:00:00Z"}"#).contains("missing field `type`"));
        assert!(error(r#"{"at":"2026-11-22T10:00:00Z","type":"forked","from":"5f0c3b8e-2d4a-4c6b-9e1f-3a2b1c0d9e8f","through":1}"#).contains("missing field `seq`"));
        assert!(
            error(r#"{"seq":1,"at":"2026-11-22T10:00:00Z","type":"gone"}"#)
                .contains("unknown variant `gone`")
        );
        assert!(error(r#"{"seq":1,"seq":2,"at":"2026-11-22T10:00:00Z","type":"rewind","to":1,"archive":"5f0c3b8e-2d4a-4c6b-9e1f-3a2b1c0d9e8f"}"#).contains("duplicate field `seq`"));
        assert!(
            error(r#"{"seq":"one","at":"2026-11-22T10:00:00Z","type":"rewind"}"#)
                .contains("invalid type")
        );
        // A key read before the tag, or the tag, again after it.
        let rewind = r#""type":"rewind","to":1,"archive":"5f0c3b8e-2d4a-4c6b-9e1f-3a2b1c0d9e8f""#;
        for again in [r#""seq":2"#, r#""at":"2026-11-22T10:00:00Z""#, r#""type":"forked""#] {
            let text = format!(r#"{{"seq":1,"at":"2026-11-22T10:00:00Z",{rewind},{again}}}"#);
            assert!(error(&text).contains("duplicate field"), "{text}");
        }
    }
}
