//! The DynamoDB backend against a local DynamoDB-compatible server (moto, started by each test
//! on a free loopback port; see `tests/support/moto.rs`): the conformance suites, random
//! operations against the reference, and atomicity checked here rather than trusted to the
//! emulator: racing appends, racing idempotent retries, staged appends racing small ones, and
//! a staged append's writer dying. Each test says it skipped when moto is not installed,
//! unless `VERBATIM_REQUIRE_DYNAMODB=1`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use proptest::prelude::*;
use verbatim_model::Message;

use super::conformance::{self, op};
use super::lease;
use crate::{
    Append, Clock as _, DynamoOptions, DynamoStore, Entry, ManualClock, NewSession, SessionStore,
    StoreError,
};

#[path = "../../tests/support/moto.rs"]
mod moto;
use moto::Moto;

fn options() -> DynamoOptions {
    DynamoOptions::default().with_static_credentials("testing", "testing")
}

async fn store(moto: &Moto) -> DynamoStore {
    DynamoStore::connect_with(&moto.new_table_url("verbatim_test"), options()).await.unwrap()
}

fn user(text: &str) -> Entry {
    Entry::Message(Message::user_text(text).into())
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_store_conforms() {
    let Some(moto) = Moto::start("dynamodb_store_conforms") else { return };
    conformance::suite(&store(&moto).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_store_leases_conform() {
    let Some(moto) = Moto::start("dynamodb_store_leases_conform") else { return };
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let options = DynamoOptions { clock: clock.clone(), ..options() };
    let store = DynamoStore::connect_with(&moto.new_table_url("verbatim_lease"), options).await;
    lease::suite(&store.unwrap(), lease::Time::Manual(&clock)).await;
}

#[test]
fn dynamodb_matches_the_reference_on_random_operations() {
    let Some(moto) = Moto::start("dynamodb_matches_the_reference_on_random_operations") else {
        return;
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // One server for every case, a table per case.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(op(), 1..40), |ops| {
            runtime.block_on(async {
                conformance::random_operations(&store(&moto).await, &ops).await;
            });
            Ok(())
        })
        .unwrap();
}

/// Appends from many tasks at once, each expecting the same version: one wins each round,
/// the rest conflict and write nothing; the log has no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appends_are_atomic_one_winner_a_round() {
    let Some(moto) = Moto::start("racing_appends_are_atomic_one_winner_a_round") else { return };
    // Two stores, two clients: two instances of an app.
    let a = store(&moto).await;
    let b = DynamoStore::connect_with(&moto.url(a.table()), options()).await.unwrap();
    let id = a.create(NewSession::new("m")).await.unwrap().id;
    let mut winners = Vec::new();
    let mut version = 0;
    for round in 0..12u64 {
        let tasks: Vec<_> = (0..8)
            .map(|writer| {
                let store = if writer % 2 == 0 { a.clone() } else { b.clone() };
                // Every third round, one writer appends 150 entries (a staged append).
                let entries: Vec<Entry> = if round % 3 == 2 && writer == 3 {
                    (0..150).map(|n| user(&format!("round {round} writer {writer} #{n}"))).collect()
                } else {
                    vec![user(&format!("round {round} writer {writer}"))]
                };
                let append = Append::new(version, entries).idempotent(format!("{round}-{writer}"));
                tokio::spawn(async move { (writer, store.append(id, append).await) })
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (writer, Ok(done)) => won.push((writer, done)),
                (_, Err(StoreError::Conflict { expected, actual, .. })) => {
                    assert_eq!(expected, version);
                    assert!(actual > version, "round {round}: conflict at {actual}");
                }
                (_, Err(e)) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        let (writer, done) = won[0];
        assert_eq!(done.first_seq, version + 1);
        version = done.version;
        winners.push((round, writer, done));
    }
    let session = a.load(id).await.unwrap();
    assert_eq!(session.info.version, version);
    let seqs: Vec<u64> = session.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=version).collect::<Vec<_>>(), "no gap, no duplicate");
    for (round, writer, done) in &winners {
        for seq in done.first_seq..=done.version {
            let Entry::Message(m) = &session.records[seq as usize - 1].entry else { panic!() };
            let text = m.message.text();
            assert!(text.starts_with(&format!("round {round} writer {writer}")), "{seq}: {text}");
        }
        // The winner's retry answers as before; a loser's retry still conflicts.
        let retry = Append::new(done.first_seq - 1, vec![user("retry")])
            .idempotent(format!("{round}-{writer}"));
        assert_eq!(a.append(id, retry).await.unwrap(), *done);
        let loser = (writer + 1) % 8;
        let retry = Append::new(done.first_seq - 1, vec![user("retry")])
            .idempotent(format!("{round}-{loser}"));
        assert!(matches!(b.append(id, retry).await, Err(StoreError::Conflict { .. })));
    }
    assert_eq!(a.info(id).await.unwrap().version, version, "retries wrote nothing");
}

/// The same append (same key) sent by many tasks at once, as retries racing the original:
/// stored once, every sender told the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_retries_of_one_idempotent_append_store_it_once() {
    let Some(moto) = Moto::start("racing_retries_of_one_idempotent_append_store_it_once") else {
        return;
    };
    let store = store(&moto).await;
    let id = store.create(NewSession::new("m")).await.unwrap().id;
    for round in 0..10u64 {
        let append = Append::new(round * 2, vec![user("q"), user(&format!("turn {round}"))])
            .idempotent(format!("turn-{round}"));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (store, append) = (store.clone(), append.clone());
                tokio::spawn(async move { store.append(id, append).await.unwrap() })
            })
            .collect();
        for task in tasks {
            let done = task.await.unwrap();
            assert_eq!((done.first_seq, done.version), (round * 2 + 1, round * 2 + 2));
        }
    }
    let session = store.load(id).await.unwrap();
    assert_eq!(session.records.len(), 20, "each turn stored once");
}

/// A staged append whose writer died after claiming the session and writing part of its
/// records: other appends wait while the claim is fresh, take it over once it is stale, and
/// the dead writer's records never show.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_staged_writer_is_taken_over_and_its_records_never_show() {
    let Some(moto) = Moto::start("a_dead_staged_writer_is_taken_over_and_its_records_never_show")
    else {
        return;
    };
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let options = DynamoOptions { clock: clock.clone(), ..options() };
    let store =
        DynamoStore::connect_with(&moto.new_table_url("verbatim_stale"), options).await.unwrap();
    let id = store.create(NewSession::new("m")).await.unwrap().id;
    store.append(id, Append::new(0, vec![user("one")])).await.unwrap();
    // The dead writer: its claim, and a record 2 of three parts of which two were written.
    let now = clock.now().timestamp_micros();
    store.dead_claim(id, 77, now, &vec![b'x'; 2 * crate::PART_BYTES + 5]).await;
    assert_eq!(store.load(id).await.unwrap().records.len(), 1);
    // While the claim is fresh, an append waits (and here gives up: the clock stands still).
    let waiting = tokio::time::timeout(
        Duration::from_millis(300),
        store.append(id, Append::new(1, vec![user("two")])),
    )
    .await;
    assert!(waiting.is_err(), "an append went past a fresh claim: {waiting:?}");
    clock.advance(crate::PENDING_STALE + Duration::from_secs(1));
    let done = store.append(id, Append::new(1, vec![user("two"), user("three")])).await.unwrap();
    assert_eq!(done.version, 3);
    let session = store.load(id).await.unwrap();
    assert_eq!(
        session.records.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(),
        vec![user("one"), user("two"), user("three")]
    );
    // The dead writer's later writes, checked against its claim, are refused.
    assert!(!store.dead_writer_writes(id, 77).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_are_stored_as_the_json_bytes_serde_wrote() {
    let Some(moto) = Moto::start("entries_are_stored_as_the_json_bytes_serde_wrote") else {
        return;
    };
    let store = store(&moto).await;
    let id = store.create(NewSession::new("m")).await.unwrap().id;
    let input =
        serde_json::from_str(r#"{"z":1.50e300,"a":"nul \u0000 é","k":{"y":[],"b":null}}"#).unwrap();
    let tricky = Entry::Message(
        Message::new(
            verbatim_model::Role::Assistant,
            vec![verbatim_model::ContentBlock::ToolUse(verbatim_model::ToolUse {
                id: "tooluse_1".into(),
                name: "lookup".into(),
                input,
                kind: None,
                unmapped: verbatim_model::Unmapped::default(),
            })],
        )
        .into(),
    );
    let written = serde_json::to_string(&tricky).unwrap();
    store.append(id, Append::new(0, vec![tricky.clone()])).await.unwrap();
    let item = store.raw_item(id, "r#00000000000000000001").await.unwrap();
    let Some(AttributeValue::B(bytes)) = item.get("entry") else { panic!("{item:?}") };
    assert_eq!(bytes.as_ref(), written.as_bytes());
    let loaded = store.load(id).await.unwrap();
    assert_eq!(serde_json::to_string(&loaded.records[0].entry).unwrap(), written);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_is_created_or_named_and_a_foreign_one_refused() {
    let Some(moto) = Moto::start("a_missing_table_is_created_or_named_and_a_foreign_one_refused")
    else {
        return;
    };
    let url = moto.new_table_url("verbatim_missing");
    let refused = DynamoOptions { create_table: false, ..options() };
    let error = DynamoStore::connect_with(&url, refused.clone()).await.unwrap_err().to_string();
    assert!(error.contains("does not exist") && error.contains("verbatim migrate"), "{error}");
    let store = DynamoStore::connect_with(&url, options()).await.unwrap();
    assert!(!store.create_table().await.unwrap(), "created once");
    DynamoStore::connect_with(&url, refused).await.unwrap();
    // A table of another shape is refused, not written to.
    let foreign = moto.new_table_url("foreign");
    let table = foreign.split(['/', '?']).nth(2).unwrap().to_owned();
    store.create_foreign_table(&table).await;
    let error = DynamoStore::connect_with(&foreign, options()).await.unwrap_err().to_string();
    assert!(error.contains("not a verbatim table"), "{error}");
    // Credentials never show.
    let shown = format!(
        "{:?}",
        DynamoOptions::default().with_static_credentials("AKIDSHOWN", "s3cr3t-value")
    );
    assert!(!shown.contains("s3cr3t") && !shown.contains("AKIDSHOWN"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_spread_over_many_query_pages_loads_whole() {
    let Some(moto) = Moto::start("a_session_spread_over_many_query_pages_loads_whole") else {
        return;
    };
    let store = store(&moto).await;
    let id = store.create(NewSession::new("m")).await.unwrap().id;
    // 3 MB of records: a Query page holds at most 1 MB.
    let entries: Vec<Entry> = (0..30).map(|n| user(&format!("{n:>3}").repeat(33_000))).collect();
    store.append(id, Append::new(0, entries.clone())).await.unwrap();
    let loaded = store.load(id).await.unwrap();
    assert!(loaded.records.iter().map(|r| &r.entry).eq(&entries));
    assert_eq!(store.tail(id, 5).await.unwrap().len(), 5);
    let forked = store.fork(id, 30).await.unwrap();
    let copy = store.load(forked.id).await.unwrap();
    assert!(copy.records[..30].iter().map(|r| &r.entry).eq(&entries));
}
