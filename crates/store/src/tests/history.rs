//! A history kept in step record by record is the history read whole: for every kind of
//! record, those that replace earlier ones (configuration changes) and those that set earlier
//! ones aside (rewinds) included.

use chrono::{DateTime, Utc};
use verbatim_model::{
    Api, HistoryMessage, Message, Provenance, SessionId, SystemPrompt, ToolUseId, Usage,
};

use crate::{
    ActionRecord, ConfigChange, Entry, FixRecord, History, NewSession, Record, Session,
    SessionInfo, ToolCallEvent, ToolCallState,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

fn id(n: u8) -> SessionId {
    SessionId::from_random_bytes([n; 16])
}

fn at() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn user(text: &str) -> Entry {
    Entry::Message(Message::user_text(text).into())
}

fn assistant(text: &str, usage: Usage) -> Entry {
    let mut provenance = Provenance::new(MODEL, Api::Converse);
    provenance.usage = Some(usage);
    Entry::Message(HistoryMessage {
        message: Message::assistant_text(text),
        provenance: Some(provenance),
    })
}

fn output(tokens: u64) -> Usage {
    Usage { output_tokens: Some(tokens), ..Usage::default() }
}

/// A step of call `tooluse_{n}`.
fn call(n: u8, state: ToolCallState) -> Entry {
    let tool_use_id = format!("tooluse_{n}").into();
    Entry::ToolCall(ToolCallEvent { tool_use_id, name: "get_weather".into(), state })
}

fn completed() -> ToolCallState {
    ToolCallState::Completed { content: None }
}

fn failed() -> ToolCallState {
    ToolCallState::Failed { message: "boom".into() }
}

fn system(text: &str) -> Entry {
    Entry::Config(ConfigChange::System(Some(SystemPrompt::Text(text.into()))))
}

fn repair(rule: &str) -> Entry {
    Entry::Repair {
        fixes: vec![FixRecord {
            rule: rule.into(),
            severity: "error".into(),
            path: "messages[0]".into(),
            message: "recorded".into(),
            action: ActionRecord::DropMessage { message: 0 },
            guard: None,
        }],
    }
}

fn model(model: &str) -> Entry {
    Entry::Config(ConfigChange::Model(model.into()))
}

fn forked(through: u64) -> Entry {
    Entry::Forked { from: id(3), through }
}

fn rewind(to: u64) -> Entry {
    Entry::Rewind { to, archive: id(2) }
}

/// A session of the first `upto` of `entries`, numbered from 1.
fn session(entries: &[Entry], upto: usize) -> Session {
    let records: Vec<Record> = entries[..upto]
        .iter()
        .zip(1..)
        .map(|(entry, seq)| Record { seq, at: at(), entry: entry.clone() })
        .collect();
    Session {
        info: SessionInfo {
            id: id(1),
            start: NewSession::new(MODEL),
            created_at: at(),
            updated_at: at(),
            version: upto as u64,
            origin: None,
        },
        records,
    }
}

/// A log of every kind of record: a fork's copy, a tool loop with each step of a call,
/// fixes, configuration changes replacing one another, and two rewinds, the second to a
/// point after records the first set aside.
fn entries() -> Vec<Entry> {
    use ToolCallState::{Requested, Started};
    vec![
        user("Weather in Paris?"),            // 1
        forked(1),                            // 2
        system("Be brief."),                  // 3
        assistant("Let me look.", output(5)), // 4
        call(1, Requested),                   // 5
        call(1, Started),                     // 6
        call(1, completed()),                 // 7
        repair("roles.first"),                // 8
        user("Sunny, 21 degrees."),           // 9
        assistant("Sunny.", output(7)),       // 10
        model("second"),                      // 11
        model("third"),                       // 12
        user("And Rome?"),                    // 13
        assistant("Cloudy.", output(11)),     // 14
        call(2, Requested),                   // 15
        rewind(10),                           // 16
        user("And Rome, then?"),              // 17
        repair("blank.text"),                 // 18
        model("fourth"),                      // 19
        call(3, Started),                     // 20
        rewind(18),                           // 21
        call(4, failed()),                    // 22
    ]
}

#[test]
fn a_history_taking_each_record_in_is_the_history_read_whole() {
    let entries = entries();
    let mut kept = History::new(&session(&entries, 0));
    let mut refused = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let seq = i as u64 + 1;
        let whole = History::new(&session(&entries, i + 1));
        let before = kept.clone();
        if kept.take(seq, entry.clone()) {
            assert_eq!(kept, whole, "after record {seq}");
        } else {
            assert_eq!(kept, before, "record {seq} refused: the history stays as it was");
            assert_ne!(kept, whole, "record {seq}");
            refused.push(seq);
            kept = whole;
        }
        // Nor is a record taken in out of turn.
        let mut again = kept.clone();
        assert!(!again.take(seq, user("again")) && !again.take(seq + 2, user("later")));
        assert_eq!(again, kept);
    }
    assert_eq!(refused, [2, 16, 21], "a fork's record and the rewinds are read whole");

    let texts: Vec<String> = kept.messages().iter().map(|m| m.message.text()).collect();
    let live = ["Weather in Paris?", "Let me look.", "Sunny, 21 degrees.", "Sunny."];
    assert_eq!(texts, [&live[..], &["And Rome, then?"]].concat());
    assert_eq!(kept.seqs(), [1, 4, 9, 10, 17]);
    assert_eq!(kept.version(), 22);
    let config = kept.config();
    assert_eq!(config.model, MODEL, "every model change was rewound");
    assert_eq!(config.system, Some(SystemPrompt::Text("Be brief.".into())));
    let rules: Vec<&str> = kept.fixes().iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["roles.first", "blank.text"]);
    assert_eq!(kept.calls(), [(ToolUseId::from("tooluse_4"), failed())]);
    assert_eq!(kept.call_state(&"tooluse_4".into()), Some(&failed()));
    assert_eq!(kept.call_state(&"tooluse_1".into()), None, "a step before the last message");
    assert_eq!(kept.usage().output_tokens, Some(23), "the rewound reply was paid for too");
}

#[test]
fn a_history_brought_up_to_date_is_the_history_read_whole() {
    let entries = entries();
    let records = session(&entries, entries.len()).records;
    for from in 0..entries.len() {
        for to in from..=entries.len() {
            let mut kept = History::new(&session(&entries, from));
            let before = kept.clone();
            let simple = (from + 1..=to).all(|seq| ![2, 16, 21].contains(&seq));
            assert_eq!(kept.extend(records[from..to].to_vec()), simple, "{from}..{to}");
            if simple {
                assert_eq!(kept, History::new(&session(&entries, to)), "{from}..{to}");
            } else {
                assert_eq!(kept, before, "{from}..{to}");
            }
        }
        // Records that do not follow the last one read are not taken in.
        let mut kept = History::new(&session(&entries, from));
        let before = kept.clone();
        assert!(from + 1 == entries.len() || !kept.extend(records[from + 1..].to_vec()));
        assert_eq!(kept, before);
    }
}

#[test]
fn a_sessions_readings_are_its_historys() {
    let entries = entries();
    for upto in 0..=entries.len() {
        let session = session(&entries, upto);
        let history = session.history();
        assert_eq!(session.messages(), history.messages(), "{upto}");
        assert_eq!(session.config(), *history.config(), "{upto}");
        assert_eq!(session.fixes(), history.fixes(), "{upto}");
        assert_eq!(session.usage(), *history.usage(), "{upto}");
        let live: Vec<u64> = session
            .live_records()
            .iter()
            .filter(|r| matches!(r.entry, Entry::Message(_)))
            .map(|r| r.seq)
            .collect();
        assert_eq!(live, history.seqs(), "{upto}");
    }
}
