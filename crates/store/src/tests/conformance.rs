//! The conformance suite: what every [`SessionStore`] must do. Each backend's tests call
//! [`suite`] on a fresh store, and [`random_operations`] to compare it with the in-memory
//! reference.

use serde_json::json;
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, Message, Provenance, Role, SessionId, ThinkingBlock,
    ToolResult, ToolResultBlock, ToolResultContent, ToolUse, Unmapped, Usage,
};

use super::fixtures;
use crate::{
    Append, ConfigChange, Entry, ListQuery, MemoryStore, NewSession, Origin, Record, SessionStore,
    StoreError, ToolCallEvent, ToolCallState,
};

/// Runs every case on `store`.
pub(crate) async fn suite(store: &dyn SessionStore) {
    create_and_append(store).await;
    recorded_conversations_round_trip_byte_exact(store).await;
    five_megabyte_tool_result(store).await;
    stale_version_conflicts_and_writes_nothing(store).await;
    idempotent_retry_appends_once(store).await;
    ranges_and_tails(store).await;
    listing(store).await;
    fork_copies_a_prefix(store).await;
    rewind_keeps_everything(store).await;
    delete_removes_one_session(store).await;
    put_stores_a_whole_session(store).await;
    concurrent_writers_one_wins(store).await;
    export_and_import_round_trip(store).await;
    super::import::suite(store).await;
}

fn user(text: &str) -> Entry {
    Entry::Message(Message::user_text(text).into())
}

fn assistant_turn(n: usize) -> Entry {
    let blocks = vec![
        ContentBlock::Thinking(ThinkingBlock {
            text: format!("step {n}\r\n  with trailing space \u{00d7} "),
            signature: Some(format!("EqQBCkYIBxgC{n}")),
            unmapped: Unmapped::default(),
        }),
        ContentBlock::ToolUse(ToolUse {
            id: format!("tooluse_{n}").into(),
            name: "lookup".into(),
            input: json!({"z": 1, "a": [1.5, "x"], "m": {"k": null}}),
            kind: None,
            unmapped: Unmapped::default(),
        }),
    ];
    let mut provenance =
        Provenance::new("us.anthropic.claude-sonnet-4-20250514-v1:0", Api::Converse);
    provenance.usage =
        Some(Usage { input_tokens: Some(10), output_tokens: Some(5), ..Default::default() });
    Entry::Message(HistoryMessage {
        message: Message::new(Role::Assistant, blocks),
        provenance: Some(provenance),
    })
}

fn tagged(tag: &str) -> NewSession {
    let mut new = NewSession::new("us.anthropic.claude-sonnet-4-20250514-v1:0");
    new.tags.push(tag.to_owned());
    new.metadata.insert("owner".into(), json!("tests"));
    new
}

/// The entries of records, without their timestamps.
fn entries(records: &[Record]) -> Vec<(u64, Entry)> {
    records.iter().map(|r| (r.seq, r.entry.clone())).collect()
}

async fn create_and_append(store: &dyn SessionStore) {
    let info = store.create(tagged("create")).await.unwrap();
    assert_eq!(info.version, 0);
    assert_eq!(store.info(info.id).await.unwrap(), info);
    assert!(store.load(info.id).await.unwrap().records.is_empty());

    let batch = vec![
        user("hello"),
        assistant_turn(1),
        Entry::ToolCall(ToolCallEvent {
            tool_use_id: "tooluse_1".into(),
            name: "lookup".into(),
            state: ToolCallState::Started,
        }),
        Entry::Config(ConfigChange::Model("us.anthropic.claude-opus-4-5-20251101-v1:0".into())),
    ];
    let done = store.append(info.id, Append::new(0, batch.clone())).await.unwrap();
    assert_eq!((done.first_seq, done.version), (1, 4));
    let session = store.load(info.id).await.unwrap();
    assert_eq!(session.info.version, 4);
    assert!(session.info.updated_at >= info.updated_at);
    let expected: Vec<(u64, Entry)> =
        batch.into_iter().enumerate().map(|(i, e)| (i as u64 + 1, e)).collect();
    assert_eq!(entries(&session.records), expected);
    assert_eq!(session.config().model, "us.anthropic.claude-opus-4-5-20251101-v1:0");
    assert_eq!(session.messages().len(), 2);
    assert_eq!(session.usage().output_tokens, Some(5));

    let empty = store.append(info.id, Append::new(4, Vec::new())).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    let missing = SessionId::from_random_bytes([7; 16]);
    assert!(matches!(
        store.append(missing, Append::new(0, vec![user("x")])).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.load(missing).await, Err(StoreError::NotFound(_))));
}

async fn recorded_conversations_round_trip_byte_exact(store: &dyn SessionStore) {
    let Some(conversations) = fixtures::conversations() else { return };
    assert!(conversations.len() >= 10, "only {} recorded conversations", conversations.len());
    for recorded in &conversations {
        let info = store.create(tagged("fixtures")).await.unwrap();
        let entries: Vec<Entry> = recorded.messages.iter().cloned().map(Entry::Message).collect();
        store.append(info.id, Append::new(0, entries)).await.unwrap();
        let loaded = store.load(info.id).await.unwrap().messages();
        assert_eq!(loaded, recorded.messages, "{}", recorded.label);
        let wire = fixtures::to_wire(recorded.api, &loaded);
        assert_eq!(wire, fixtures::to_wire(recorded.api, &recorded.messages), "{}", recorded.label);
        if recorded.api == Api::Converse {
            assert_eq!(wire, recorded.wire, "{}: not the bytes the service sent", recorded.label);
        }
    }
}

async fn five_megabyte_tool_result(store: &dyn SessionStore) {
    let info = store.create(tagged("large")).await.unwrap();
    // 5 MB of text that is not one repeated byte, with characters JSON escapes.
    let text: String = (0..5 * 1024 * 1024 / 8)
        .map(|i| format!("{:07x}\n", i * 2_654_435_761u64 % 0xfff_ffff))
        .collect::<String>()
        + "\"\\\u{0}é";
    let result = ContentBlock::ToolResult(ToolResult {
        tool_use_id: "tooluse_big".into(),
        content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text {
            text: text.clone(),
        }])),
        status: None,
        unmapped: Unmapped::default(),
    });
    let entry = Entry::Message(Message::new(Role::User, vec![result]).into());
    store.append(info.id, Append::new(0, vec![entry.clone(), user("after")])).await.unwrap();
    let session = store.load(info.id).await.unwrap();
    assert_eq!(session.records[0].entry, entry);
    assert_eq!(session.records[1].entry, user("after"));
    let tail = store.tail(info.id, 1).await.unwrap();
    assert_eq!(entries(&tail), vec![(2, user("after"))]);
}

async fn stale_version_conflicts_and_writes_nothing(store: &dyn SessionStore) {
    let info = store.create(tagged("conflict")).await.unwrap();
    store.append(info.id, Append::new(0, vec![user("one")])).await.unwrap();
    let stale = store.append(info.id, Append::new(0, vec![user("two"), user("three")])).await;
    match stale {
        Err(StoreError::Conflict { expected: 0, actual: 1, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    let ahead = store.append(info.id, Append::new(5, vec![user("two")])).await;
    assert!(matches!(ahead, Err(StoreError::Conflict { expected: 5, actual: 1, .. })));
    let session = store.load(info.id).await.unwrap();
    assert_eq!(entries(&session.records), vec![(1, user("one"))]);
}

async fn idempotent_retry_appends_once(store: &dyn SessionStore) {
    let info = store.create(tagged("idempotent")).await.unwrap();
    let turn = Append::new(0, vec![user("hi"), assistant_turn(2)]).idempotent("turn-1");
    let first = store.append(info.id, turn.clone()).await.unwrap();
    // The retry after a timeout: same key, stale version, same answer, nothing written.
    let retry = store.append(info.id, turn).await.unwrap();
    assert_eq!(retry, first);
    assert_eq!(store.info(info.id).await.unwrap().version, 2);
    // Another key is another append.
    let next = Append::new(2, vec![user("again")]).idempotent("turn-2");
    assert_eq!(store.append(info.id, next).await.unwrap().version, 3);
    // Keys are per session.
    let other = store.create(tagged("idempotent")).await.unwrap();
    let there = store.append(other.id, Append::new(0, vec![user("x")]).idempotent("turn-1")).await;
    assert_eq!(there.unwrap().version, 1);
}

async fn ranges_and_tails(store: &dyn SessionStore) {
    let info = store.create(tagged("ranges")).await.unwrap();
    // Long enough for a backend to read it in parts (PostgreSQL parses long loads in parallel).
    let all: Vec<Entry> = (0..250).map(|i| user(&format!("m{i}"))).collect();
    store.append(info.id, Append::new(0, all.clone())).await.unwrap();
    let loaded = store.load(info.id).await.unwrap().records;
    assert_eq!(loaded.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=250).collect::<Vec<_>>());
    assert!(loaded.iter().map(|r| &r.entry).eq(&all));
    let range = store.load_range(info.id, 5, Some(9)).await.unwrap();
    assert_eq!(range.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 6, 7, 8, 9]);
    assert_eq!(range[0].entry, all[4]);
    let rest = store.load_range(info.id, 249, None).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![249, 250]);
    let long = store.load_range(info.id, 101, Some(230)).await.unwrap();
    assert!(long.iter().map(|r| &r.entry).eq(&all[100..230]));
    assert!(store.load_range(info.id, 300, None).await.unwrap().is_empty());
    let tail = store.tail(info.id, 3).await.unwrap();
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![248, 249, 250]);
    assert_eq!(store.tail(info.id, 100).await.unwrap().len(), 100);
    assert_eq!(store.tail(info.id, 1000).await.unwrap().len(), 250);
}

async fn listing(store: &dyn SessionStore) {
    let tag = format!("list-{}", crate::new_session_id().unwrap());
    let mut ids = Vec::new();
    for _ in 0..5 {
        let info = store.create(tagged(&tag)).await.unwrap();
        ids.push(info.id);
    }
    // Touch the first one last: it becomes the newest.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    store.append(ids[0], Append::new(0, vec![user("bump")])).await.unwrap();
    let query = ListQuery { tag: Some(tag.clone()), limit: 2, ..Default::default() };
    let first = store.list(&query).await.unwrap();
    assert_eq!(first.sessions.len(), 2);
    assert_eq!(first.sessions[0].id, ids[0], "newest update first");
    let mut seen: Vec<SessionId> = first.sessions.iter().map(|s| s.id).collect();
    let mut next = first.next;
    while let Some(cursor) = next {
        let page = store.list(&ListQuery { after: Some(cursor), ..query.clone() }).await.unwrap();
        seen.extend(page.sessions.iter().map(|s| s.id));
        next = page.next;
    }
    let mut expected = ids.clone();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected, "every session once, across pages");
    let none = ListQuery { tag: Some(format!("{tag}-none")), ..Default::default() };
    assert!(store.list(&none).await.unwrap().sessions.is_empty());
    let since = ListQuery {
        tag: Some(tag),
        updated_since: Some(store.info(ids[0]).await.unwrap().updated_at),
        ..Default::default()
    };
    assert_eq!(
        store.list(&since).await.unwrap().sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
}

async fn fork_copies_a_prefix(store: &dyn SessionStore) {
    let info = store.create(tagged("fork")).await.unwrap();
    let all = vec![user("a"), assistant_turn(3), user("b"), assistant_turn(4)];
    store.append(info.id, Append::new(0, all.clone())).await.unwrap();
    let fork = store.fork(info.id, 2).await.unwrap();
    assert_eq!(fork.origin, Some(Origin::Fork { from: info.id, at: 2 }));
    assert_eq!(fork.version, 3);
    let forked = store.load(fork.id).await.unwrap();
    assert_eq!(
        entries(&forked.records),
        vec![
            (1, all[0].clone()),
            (2, all[1].clone()),
            (3, Entry::Forked { from: info.id, through: 2 })
        ]
    );
    assert_eq!(forked.messages().len(), 2);
    // Both go on independently.
    store.append(fork.id, Append::new(3, vec![user("fork only")])).await.unwrap();
    assert_eq!(store.info(info.id).await.unwrap().version, 4);
    assert!(matches!(store.fork(info.id, 9).await, Err(StoreError::Invalid(_))));
}

async fn rewind_keeps_everything(store: &dyn SessionStore) {
    let info = store.create(tagged("rewind")).await.unwrap();
    let all = vec![user("a"), assistant_turn(5), user("b"), assistant_turn(6)];
    store.append(info.id, Append::new(0, all.clone())).await.unwrap();
    assert!(matches!(store.rewind(info.id, 3, 2).await, Err(StoreError::Conflict { .. })));
    let rewound = store.rewind(info.id, 4, 2).await.unwrap();
    assert_eq!(rewound.info.version, 5);
    assert_eq!(rewound.archive.origin, Some(Origin::Archive { from: info.id, at: 4 }));
    let source = store.info(info.id).await.unwrap();
    assert_eq!(rewound.archive.created_at, source.created_at, "the archive's history began then");
    assert!(rewound.archive.updated_at >= rewound.archive.created_at);
    assert_eq!(store.info(rewound.archive.id).await.unwrap().created_at, source.created_at);
    let archive = store.load(rewound.archive.id).await.unwrap();
    let expected: Vec<(u64, Entry)> =
        all.iter().cloned().enumerate().map(|(i, e)| (i as u64 + 1, e)).collect();
    assert_eq!(entries(&archive.records), expected, "the archive keeps every record");
    store.append(info.id, Append::new(5, vec![user("c")])).await.unwrap();
    let session = store.load(info.id).await.unwrap();
    // The log still holds everything; the history continues from record 2.
    assert_eq!(session.records.len(), 6);
    let messages: Vec<Message> = session.messages().into_iter().map(|m| m.message).collect();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2], Message::user_text("c"));
}

async fn delete_removes_one_session(store: &dyn SessionStore) {
    let keep = store.create(tagged("delete")).await.unwrap();
    let gone = store.create(tagged("delete")).await.unwrap();
    store.append(keep.id, Append::new(0, vec![user("keep")])).await.unwrap();
    store.append(gone.id, Append::new(0, vec![user("gone")]).idempotent("k")).await.unwrap();
    store.delete(gone.id).await.unwrap();
    assert!(matches!(store.load(gone.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete(gone.id).await, Err(StoreError::NotFound(_))));
    assert_eq!(entries(&store.load(keep.id).await.unwrap().records), vec![(1, user("keep"))]);
}

async fn put_stores_a_whole_session(store: &dyn SessionStore) {
    let info = store.create(tagged("put")).await.unwrap();
    store.append(info.id, Append::new(0, vec![user("a"), assistant_turn(7)])).await.unwrap();
    let mut session = store.load(info.id).await.unwrap();
    assert!(matches!(store.put(session.clone()).await, Err(StoreError::AlreadyExists(_))));
    session.info.id = crate::new_session_id().unwrap();
    session.info.origin = Some(Origin::Import);
    let put = store.put(session.clone()).await.unwrap();
    assert_eq!(store.load(put.id).await.unwrap(), session);
    let mut gap = session.clone();
    gap.info.id = crate::new_session_id().unwrap();
    gap.records[1].seq = 3;
    assert!(matches!(store.put(gap).await, Err(StoreError::Invalid(_))));
}

async fn concurrent_writers_one_wins(store: &dyn SessionStore) {
    let info = store.create(tagged("race")).await.unwrap();
    let attempts =
        (0..8).map(|n| store.append(info.id, Append::new(0, vec![user(&format!("writer {n}"))])));
    let results = futures_join(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { .. }))).count();
    assert_eq!((won, lost), (1, 7), "{results:?}");
    assert_eq!(store.load(info.id).await.unwrap().records.len(), 1);
}

async fn export_and_import_round_trip(store: &dyn SessionStore) {
    use verbatim_model::Dialect;

    use crate::export::{export_lines, import};
    let info = store.create(tagged("export")).await.unwrap();
    let entries = vec![
        user("hello"),
        assistant_turn(8),
        Entry::ToolCall(ToolCallEvent {
            tool_use_id: "tooluse_8".into(),
            name: "lookup".into(),
            state: ToolCallState::Completed { content: None },
        }),
        Entry::Config(ConfigChange::Thinking(None)),
        user("bye"),
    ];
    store.append(info.id, Append::new(0, entries)).await.unwrap();
    store.rewind(info.id, 5, 2).await.unwrap();
    let mut sessions = vec![store.load(info.id).await.unwrap()];
    if let Some(conversations) = fixtures::conversations() {
        for recorded in conversations.iter().filter(|r| r.api == Api::Converse).take(4) {
            let info = store.create(tagged("export")).await.unwrap();
            let entries: Vec<Entry> =
                recorded.messages.iter().cloned().map(Entry::Message).collect();
            store.append(info.id, Append::new(0, entries)).await.unwrap();
            sessions.push(store.load(info.id).await.unwrap());
        }
    }
    for dialect in [Dialect::Converse, Dialect::Anthropic] {
        let ids: Vec<SessionId> = sessions.iter().map(|s| s.info.id).collect();
        let Ok(lines) = export_lines(store, &ids, dialect).await else {
            // A recorded Converse block Anthropic cannot express: export the first one alone.
            let lines = export_lines(store, &ids[..1], dialect).await.unwrap();
            store.delete(ids[0]).await.unwrap();
            let back = import(store, &lines).await.unwrap();
            assert_eq!(store.load(back[0].id).await.unwrap(), imported(&sessions[0]));
            continue;
        };
        assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), sessions.len());
        for id in &ids {
            store.delete(*id).await.unwrap();
        }
        let back = import(store, &lines).await.unwrap();
        assert_eq!(back.len(), sessions.len());
        for session in &sessions {
            // Usage, metadata, tags, ids, timestamps and every record come back as they were.
            let back = store.load(session.info.id).await.unwrap();
            assert_eq!(back, imported(session), "{dialect:?}");
        }
        // Importing the same sessions again is refused, not duplicated.
        assert!(import(store, &lines).await.is_err());
    }
    // One session per file, pretty-printed, is read too.
    let document = crate::export::export_session(&sessions[0], Dialect::Converse).unwrap();
    store.delete(sessions[0].info.id).await.unwrap();
    let pretty = serde_json::to_vec_pretty(&document).unwrap();
    let back = import(store, &pretty).await.unwrap();
    assert_eq!(store.load(back[0].id).await.unwrap(), imported(&sessions[0]));
    assert_eq!(sessions[0].usage().output_tokens, Some(5));
}

/// A session as an import gives it back: the same, marked as imported.
fn imported(session: &crate::Session) -> crate::Session {
    let mut session = session.clone();
    session.info.origin.get_or_insert(Origin::Import);
    session
}

/// Runs futures concurrently on the current task.
pub(crate) async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|v| v.expect("ready")).collect()
}

/// One random operation of [`random_operations`].
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Create,
    Append { session: usize, stale: bool, entries: usize, key: Option<u8> },
    Fork { session: usize, at: u64 },
    Rewind { session: usize, to: u64 },
    Delete { session: usize },
    Range { session: usize, from: u64, to: Option<u64> },
    Tail { session: usize, n: usize },
}

pub(crate) fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        1 => Just(Op::Create),
        6 => (0..4usize, proptest::bool::weighted(0.2), 1..4usize, proptest::option::of(0..3u8))
            .prop_map(|(session, stale, entries, key)| Op::Append { session, stale, entries, key }),
        1 => (0..4usize, 0..8u64).prop_map(|(session, at)| Op::Fork { session, at }),
        1 => (0..4usize, 0..8u64).prop_map(|(session, to)| Op::Rewind { session, to }),
        1 => (0..4usize).prop_map(|session| Op::Delete { session }),
        2 => (0..4usize, 0..8u64, proptest::option::of(0..10u64))
            .prop_map(|(session, from, to)| Op::Range { session, from, to }),
        1 => (0..4usize, 0..6usize).prop_map(|(session, n)| Op::Tail { session, n }),
    ]
}

/// The outcome of an operation, comparable across stores (ids replaced by their position).
#[derive(Debug, PartialEq)]
enum Outcome {
    Created,
    Appended(u64, u64),
    Records(Vec<(u64, String)>),
    Forked(u64),
    Rewound(u64, u64),
    Deleted,
    Error(String),
}

fn error_kind(e: &StoreError) -> String {
    match e {
        StoreError::NotFound(_) => "not found".into(),
        StoreError::Conflict { expected, actual, .. } => format!("conflict {expected} {actual}"),
        StoreError::Invalid(_) => "invalid".into(),
        other => format!("{other}"),
    }
}

/// A record's entry with ids that differ between stores (archives, forks) taken out.
fn comparable(record: &Record) -> (u64, String) {
    let entry = match &record.entry {
        Entry::Rewind { to, .. } => format!("rewind {to}"),
        Entry::Forked { through, .. } => format!("forked {through}"),
        other => serde_json::to_string(other).unwrap(),
    };
    (record.seq, entry)
}

/// Runs `ops` on `store` and on a [`MemoryStore`], asserting the same outcome each time and
/// the same sessions at the end.
pub(crate) async fn random_operations(store: &dyn SessionStore, ops: &[Op]) {
    let reference = MemoryStore::new();
    let mut ids: Vec<(SessionId, SessionId)> = Vec::new();
    let mut counter = 0;
    for op in ops {
        let pick = |session: usize| ids.get(session % ids.len().max(1)).copied();
        let (a, b) = match op {
            Op::Create => {
                let x = store.create(tagged("random")).await.unwrap();
                let y = reference.create(tagged("random")).await.unwrap();
                ids.push((x.id, y.id));
                (Outcome::Created, Outcome::Created)
            }
            Op::Append { session, stale, entries, key } => {
                let Some((x, y)) = pick(*session) else { continue };
                let version = reference.info(y).await.map(|i| i.version).unwrap_or(0);
                let expected = if *stale { version.saturating_sub(1) } else { version };
                let batch: Vec<Entry> = (0..*entries)
                    .map(|_| {
                        counter += 1;
                        if counter % 3 == 0 {
                            assistant_turn(counter)
                        } else {
                            user(&format!("u{counter}"))
                        }
                    })
                    .collect();
                let mut append = Append::new(expected, batch);
                if let Some(key) = key {
                    append = append.idempotent(format!("key-{key}"));
                }
                let show = |r: Result<crate::Appended, StoreError>| match r {
                    Ok(done) => Outcome::Appended(done.first_seq, done.version),
                    Err(e) => Outcome::Error(error_kind(&e)),
                };
                (
                    show(store.append(x, append.clone()).await),
                    show(reference.append(y, append).await),
                )
            }
            Op::Fork { session, at } => {
                let Some((x, y)) = pick(*session) else { continue };
                match (store.fork(x, *at).await, reference.fork(y, *at).await) {
                    (Ok(fx), Ok(fy)) => {
                        ids.push((fx.id, fy.id));
                        (Outcome::Forked(fx.version), Outcome::Forked(fy.version))
                    }
                    (ra, rb) => (
                        ra.map_or_else(
                            |e| Outcome::Error(error_kind(&e)),
                            |i| Outcome::Forked(i.version),
                        ),
                        rb.map_or_else(
                            |e| Outcome::Error(error_kind(&e)),
                            |i| Outcome::Forked(i.version),
                        ),
                    ),
                }
            }
            Op::Rewind { session, to } => {
                let Some((x, y)) = pick(*session) else { continue };
                let version = reference.info(y).await.map(|i| i.version).unwrap_or(0);
                let show = |r: Result<crate::Rewound, StoreError>| match r {
                    Ok(done) => Outcome::Rewound(done.info.version, done.archive.version),
                    Err(e) => Outcome::Error(error_kind(&e)),
                };
                (
                    show(store.rewind(x, version, *to).await),
                    show(reference.rewind(y, version, *to).await),
                )
            }
            Op::Delete { session } => {
                let Some((x, y)) = pick(*session) else { continue };
                let show = |r: Result<(), StoreError>| {
                    r.map_or_else(|e| Outcome::Error(error_kind(&e)), |()| Outcome::Deleted)
                };
                (show(store.delete(x).await), show(reference.delete(y).await))
            }
            Op::Range { session, from, to } => {
                let Some((x, y)) = pick(*session) else { continue };
                let show = |r: Result<Vec<Record>, StoreError>| match r {
                    Ok(records) => Outcome::Records(records.iter().map(comparable).collect()),
                    Err(e) => Outcome::Error(error_kind(&e)),
                };
                (
                    show(store.load_range(x, *from, *to).await),
                    show(reference.load_range(y, *from, *to).await),
                )
            }
            Op::Tail { session, n } => {
                let Some((x, y)) = pick(*session) else { continue };
                let show = |r: Result<Vec<Record>, StoreError>| match r {
                    Ok(records) => Outcome::Records(records.iter().map(comparable).collect()),
                    Err(e) => Outcome::Error(error_kind(&e)),
                };
                (show(store.tail(x, *n).await), show(reference.tail(y, *n).await))
            }
        };
        assert_eq!(a, b, "{op:?}");
    }
    for (x, y) in ids {
        match (store.load(x).await, reference.load(y).await) {
            (Ok(a), Ok(b)) => {
                let a: Vec<_> = a.records.iter().map(comparable).collect();
                let b: Vec<_> = b.records.iter().map(comparable).collect();
                assert_eq!(a, b);
            }
            (Err(StoreError::NotFound(_)), Err(StoreError::NotFound(_))) => {}
            (a, b) => panic!("stores disagree: {a:?} / {b:?}"),
        }
    }
}
