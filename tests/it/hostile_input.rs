//! The properties the `fuzz/` targets check, at a fixed count in every test run: the JSON
//! decoders, the validator and repairer, and the store's import never panic on hostile
//! input, and what they accept behaves (a decoded body survives a round trip, a repaired body
//! that reports valid passes strict validation, an imported session exports).
//!
//! Inputs are the repository's own request and response fixtures and rule cases, mutated structurally (a key
//! removed, a value replaced by another type, an element repeated, deep nesting added) so that
//! most of them still parse as JSON and reach the code behind the parser; and arbitrary bytes.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use verbatim::assemble::{Severity, repair_body, validate_body, validate_request};
use verbatim::store::export::{export_session, import_session};
use verbatim::{Api, Dialect, anthropic, converse};

fn seeds() -> &'static [Value] {
    static SEEDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(read_seeds)
}

fn read_seeds() -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    let round_trip = root.join("crates/wire/test_data/round_trip");
    let mut paths: Vec<_> =
        std::fs::read_dir(round_trip).unwrap().map(|e| e.unwrap().path()).collect();
    paths.push(root.join("tests/it/data/sessions_export.json"));
    paths.sort();
    for path in paths {
        seeds.push(serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap());
    }
    // Every rule case's bodies: one breaking each rule, one just passing it.
    let rules = root.join("crates/protocol/test_data/rules");
    let mut cases: Vec<_> = std::fs::read_dir(rules).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    for path in cases {
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for part in ["breaks", "passes"] {
            if let Some(body) = case.pointer(&format!("/{part}/body")) {
                seeds.push(body.clone());
            }
        }
    }
    seeds
}

/// Every node of `value`, as JSON pointers.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Applies one structural change at the node `pick` selects.
fn mutate(value: &mut Value, pick: usize, kind: u8, text: &str, number: i64) {
    let mut all = Vec::new();
    pointers(value, String::new(), &mut all);
    let pointer = &all[pick % all.len()];
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", ""));
    let replacement = match kind % 9 {
        0 => {
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.shift_remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                _ => {}
            }
            return;
        }
        1 => Value::Null,
        2 => json!(number),
        3 => json!(text),
        4 => Value::Object(Map::new()),
        5 => json!([]),
        6 => json!(number as f64 / 7.0),
        7 => {
            let mut deep = json!(text);
            for _ in 0..(number.unsigned_abs() % 200) {
                deep = json!([deep]);
            }
            deep
        }
        _ => {
            // Repeat an array element or add a key.
            match value.pointer_mut(pointer) {
                Some(Value::Array(items)) if !items.is_empty() => {
                    let first = items[0].clone();
                    items.push(first);
                }
                Some(Value::Object(map)) => {
                    map.insert(text.to_owned(), json!(number));
                }
                _ => {}
            }
            return;
        }
    };
    if let Some(node) = value.pointer_mut(pointer) {
        *node = replacement;
    }
}

fn hostile() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        0usize..1024,
        proptest::collection::vec((any::<usize>(), any::<u8>(), ".{0,12}", any::<i64>()), 1..5),
    )
        .prop_map(|(seed, changes)| {
            let seeds = seeds();
            let mut value = seeds[seed % seeds.len()].clone();
            for (pick, kind, text, number) in changes {
                mutate(&mut value, pick, kind, &text, number);
            }
            serde_json::to_vec(&value).unwrap()
        });
    prop_oneof![4 => mutated, 1 => proptest::collection::vec(any::<u8>(), 0..256)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_and_what_decodes_round_trips(body in hostile()) {
        if let Ok(request) = converse::decode_request(&body)
            && let Ok(value) = converse::encode_request(&request) {
                prop_assert_eq!(converse::decode_request_value(value).unwrap(), request);
            }
        if let Ok(request) = anthropic::decode_request(&body)
            && let Ok(value) = anthropic::encode_request(&request) {
                prop_assert_eq!(anthropic::decode_request_value(value).unwrap(), request);
            }
        if let Ok(response) = converse::decode_response(&body)
            && let Ok(value) = converse::encode_response(&response) {
                prop_assert_eq!(converse::decode_response_value(value).unwrap(), response);
            }
        if let Ok(response) = anthropic::decode_response(&body)
            && let Ok(value) = anthropic::encode_response(&response) {
                prop_assert_eq!(anthropic::decode_response_value(value).unwrap(), response);
            }
    }

    #[test]
    fn the_validator_never_panics_and_repairs_hold(body in hostile(), invoke in any::<bool>()) {
        let api = if invoke { Api::InvokeModel } else { Api::Converse };
        let model = Some("us.anthropic.claude-sonnet-4-20250514-v1:0");
        let _ = validate_body(api, model, &body);
        if let Ok(report) = repair_body(api, model, &body)
            && let (true, Some(request)) = (report.is_valid(), &report.request) {
                let left = validate_request(api, model, request);
                prop_assert!(left.iter().all(|d| d.severity != Severity::Error), "{:?}", left);
            }
    }

    #[test]
    fn import_never_panics_and_what_it_accepts_exports(body in hostile()) {
        if let Ok(document) = serde_json::from_slice::<Value>(&body)
            && let Ok(session) = import_session(document, "input") {
                // An imported session exports again, at least in the dialect it came in.
                let converse = export_session(&session, Dialect::Converse);
                let anthropic = export_session(&session, Dialect::Anthropic);
                prop_assert!(converse.is_ok() || anthropic.is_ok(), "{:?} / {:?}", converse, anthropic);
            }
    }
}
