//! Fixes recorded by earlier versions replay as they did: the store keeps its own record of a
//! fix, and the engine maps it back to the assembler's.
//!
//! `test_data/repaired-session.jsonl` holds the records the engine of commit `b644410` wrote
//! for a history that needed repair (two user messages in a row, a duplicate and a stale tool
//! result, a missing one): the messages, the `repair` record with its four fixes and the
//! answer. `test_data/repaired-session-request.json` is the body that engine then sent for
//! "Thanks" on a fresh engine over those records (appended to a new session as below). Both
//! were written by a test run once against that commit, not kept.

use serde_json::Value;
use verbatim_emulator::Behaviour;
use verbatim_protocol::assemble::Fix;
use verbatim_store::{Append, Entry, FixRecord, Record, SessionStore as _};

use super::*;
use crate::fixes;

fn test_data(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn repairs(session: &verbatim_store::Session) -> usize {
    session.records.iter().filter(|r| matches!(r.entry, Entry::Repair { .. })).count()
}

#[tokio::test]
async fn fixes_recorded_before_the_fix_record_replay_to_the_same_request() {
    let entries: Vec<Entry> = test_data("test_data/repaired-session.jsonl")
        .lines()
        .map(|line| serde_json::from_str::<Record>(line).unwrap().entry)
        .collect();
    let expected: Value =
        serde_json::from_str(&test_data("test_data/repaired-session-request.json")).unwrap();
    let rig = Rig::new(Behaviour::Claude).await;
    let engine = rig.builder().tool(Probe::new("get_weather")).build().unwrap();
    let id = engine.create().await.unwrap().id();
    rig.store().append(id, Append::new(0, entries)).await.unwrap();
    drop(engine);

    let engine = rig.builder().tool(Probe::new("get_weather")).build().unwrap();
    let session = engine.open(id).await.unwrap();
    session.send("Thanks").await.unwrap();
    assert_eq!(rig.bodies()[0], expected);
    let stored = session.load().await.unwrap();
    assert_eq!(repairs(&stored), 1, "replayed, not decided again");
}

/// Every fix of the store's fixture (written before the fix record, with every action) maps
/// to the fix the protocol's own type reads from the same JSON, and back to the same record.
#[test]
fn a_fix_record_maps_to_the_fix_written_with_it() {
    let text = test_data("../store/test_data/records-before-fix-record.jsonl");
    let mut seen = 0;
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        if value["type"] != "repair" {
            continue;
        }
        for fix in value["fixes"].as_array().unwrap() {
            let old: Fix = serde_json::from_value(fix.clone()).unwrap();
            let record: FixRecord = serde_json::from_value(fix.clone()).unwrap();
            assert_eq!(fixes::replay(record.clone()), old, "{fix}");
            assert_eq!(fixes::record(&old), record, "{fix}");
            assert_eq!(serde_json::to_value(&record).unwrap(), *fix);
            seen += 1;
        }
    }
    assert!(seen >= 15, "{seen} fixes");
}

#[test]
fn a_fix_of_a_rule_not_known_still_replays() {
    let text = r#"{"rule":"roles.renamed","severity":"warning","path":"messages[3].role","message":"two user messages in a row","action":{"op":"merge_with_next","message":2},"guard":"g"}"#;
    let record: FixRecord = serde_json::from_str(text).unwrap();
    let fix = fixes::replay(record);
    assert_eq!(fix.action, verbatim_protocol::assemble::Action::MergeWithNext { message: 2 });
    assert_eq!(fix.guard.as_deref(), Some("g"));
    assert_eq!(fix.diagnostic.rule, verbatim_protocol::rules::Rule::Malformed);
    assert!(fix.diagnostic.message.starts_with("recorded as roles.renamed at messages[3].role"));
}
