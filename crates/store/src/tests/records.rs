//! Records written by earlier versions still read, and write back byte for byte: the stored
//! shape of every entry, fix records included, does not change with the types behind it.

use std::collections::BTreeSet;

use verbatim_model::tagged::Tagged;

use crate::{ActionRecord, Entry, Record};

/// Every line of `test_data/<name>` (see `test_data/README.md` for how each file was made).
fn lines(name: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(str::to_owned).collect()
}

/// The `op` of a recorded action, as written.
fn op(action: &ActionRecord) -> String {
    serde_json::to_value(action).unwrap()["op"].as_str().unwrap().to_owned()
}

#[test]
fn records_written_before_the_fix_record_still_read() {
    let lines = lines("records-before-fix-record.jsonl");
    let (mut kinds, mut ops) = (BTreeSet::new(), BTreeSet::new());
    for (i, line) in lines.iter().enumerate() {
        let record: Record =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}\n{line}", i + 1));
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(serde_json::to_string(&record).unwrap(), *line, "line {} written back", i + 1);
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        kinds.insert(value["type"].as_str().unwrap().to_owned());
        if let Entry::Repair { fixes } = &record.entry {
            ops.extend(fixes.iter().map(|fix| op(&fix.action)));
        }
    }
    // The fixture covers every kind of entry and every recorded action.
    let every: BTreeSet<String> = Entry::VARIANTS.iter().map(|v| (*v).to_owned()).collect();
    assert_eq!(kinds, every);
    let every_op = [
        "drop_block",
        "drop_thinking",
        "drop_message",
        "merge_with_next",
        "results_first",
        "insert_block",
        "insert_message",
        "replace_block",
        "drop_message_unmapped",
        "set_thinking",
        "set_inference",
        "set_top_k",
        "set_tools",
        "set_tool_choice",
        "set_system",
    ];
    assert_eq!(ops, every_op.iter().map(|op| (*op).to_owned()).collect());
}

#[test]
fn a_repair_record_of_an_unknown_version_is_refused() {
    let fix = r#"{"rule":"roles.alternate","severity":"error","path":"messages[3].role","message":"m","action":{"op":"merge_with_next","message":2}}"#;
    let record = |version: &str| {
        format!(
            r#"{{"seq":1,"at":"2026-12-06T04:00:00Z","type":"repair","fixes":[{fix}]{version}}}"#
        )
    };
    let read = |text: String| serde_json::from_str::<Record>(&text);
    let first = read(record("")).unwrap();
    assert_eq!(read(record(r#","version":1"#)).unwrap(), first);
    let error = read(record(r#","version":2"#)).unwrap_err().to_string();
    assert!(error.contains("repair record version 2 is not known"), "{error}");
    // The tag last: the record is read whole, and the version checked the same.
    let text = format!(
        r#"{{"seq":1,"at":"2026-12-06T04:00:00Z","version":2,"fixes":[{fix}],"type":"repair"}}"#
    );
    let error = read(text).unwrap_err().to_string();
    assert!(error.contains("repair record version 2 is not known"), "{error}");
}
