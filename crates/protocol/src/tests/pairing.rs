//! Tool pairing on random calls and results (ids repeated, results missing, unexpected or
//! after text): the findings are those a plain reading of the rules gives, list scans and all,
//! in the same order, with the same paths and texts. The checks keep sets instead of scanning
//! lists, which keeps a message with 80,000 calls linear (the `assemble` bench shows the
//! time); this shows the sets changed nothing else. A request with many findings in one list
//! (blank system blocks, tool result items) checks and repairs as before too.

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{Value, json};
use verbatim_model::Api;

use crate::assemble::{Severity, repair_body, validate_body};
use crate::rules::Rule;

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

/// A block of the user message that answers the calls.
#[derive(Debug, Clone)]
enum Item {
    Result(u8),
    Text,
    CachePoint,
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => (0u8..8).prop_map(Item::Result),
        2 => Just(Item::Text),
        1 => Just(Item::CachePoint),
    ]
}

fn id(n: u8) -> String {
    format!("tooluse_{n}")
}

fn body(uses: &[u8], items: &[Item]) -> Value {
    let mut calls: Vec<Value> = uses
        .iter()
        .map(|&n| json!({"toolUse": {"toolUseId": id(n), "name": "lookup", "input": {}}}))
        .collect();
    if calls.is_empty() {
        calls.push(json!({"text": "nothing to call"}));
    }
    let answers: Vec<Value> = items
        .iter()
        .map(|item| match item {
            Item::Result(n) => {
                json!({"toolResult": {"toolUseId": id(*n), "content": [{"text": "ok"}]}})
            }
            Item::Text => json!({"text": "and also"}),
            Item::CachePoint => json!({"cachePoint": {"type": "default"}}),
        })
        .collect();
    json!({
        "messages": [
            {"role": "user", "content": [{"text": "look these up"}]},
            {"role": "assistant", "content": calls},
            {"role": "user", "content": answers},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]},
    })
}

const PAIRING: &[Rule] =
    &[Rule::ResultUnexpected, Rule::ResultCount, Rule::ResultsFirst, Rule::ResultMissing];

/// The pairing findings by the rules, read plainly: (rule, path, a fragment of the message).
fn expected(uses: &[u8], items: &[Item]) -> Vec<(Rule, String, String)> {
    let uses: Vec<String> = uses.iter().map(|&n| id(n)).collect();
    let mut found = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut leading = true;
    for (j, item) in items.iter().enumerate() {
        let Item::Result(n) = item else {
            leading &= matches!(item, Item::CachePoint);
            continue;
        };
        let at = format!("messages[2].content[{j}]");
        let result = id(*n);
        if !uses.contains(&result) {
            let what = format!("a result for `{result}`, which the previous message did not call");
            found.push((Rule::ResultUnexpected, at, what));
        } else if seen.contains(&result) {
            found.push((Rule::ResultCount, at, format!("a second result for `{result}`")));
        } else if !leading {
            found.push((Rule::ResultsFirst, at, "tool results after other content".to_owned()));
            break;
        } else {
            seen.push(result);
        }
    }
    let answered: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Item::Result(n) => Some(id(*n)),
            _ => None,
        })
        .collect();
    let missing: Vec<&String> = uses.iter().filter(|u| !answered.contains(u)).collect();
    if let Some(first) = missing.first() {
        let j = uses.iter().position(|u| u == *first).unwrap();
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        let what = format!("no result for tool use {}", names.join(", "));
        found.push((Rule::ResultMissing, format!("messages[1].content[{j}]"), what));
    }
    found
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn pairing_findings_are_those_of_the_rules_in_order(
        uses in prop::collection::vec(0u8..6, 0..8),
        items in prop::collection::vec(item(), 1..10),
    ) {
        prop_assume!(items.iter().any(|i| matches!(i, Item::Result(_))));
        let bytes = serde_json::to_vec(&body(&uses, &items)).unwrap();
        let report = validate_body(Api::Converse, Some(MODEL), &bytes).unwrap();
        let got: Vec<_> = report
            .diagnostics
            .iter()
            .filter(|d| PAIRING.contains(&d.rule))
            .collect();
        let want = expected(&uses, &items);
        prop_assert_eq!(got.len(), want.len(), "{:#?} vs {:#?}", got, want);
        for (d, (rule, path, what)) in got.iter().zip(&want) {
            prop_assert_eq!(d.rule, *rule);
            prop_assert_eq!(d.path.to_string(), path.clone());
            prop_assert!(d.message.starts_with(what.as_str()), "{} vs {}", d.message, what);
            prop_assert_eq!(d.severity, Severity::Error);
        }
        // Every repeated call id is reported once per repeat, at the repeat.
        let mut ids = HashSet::new();
        let repeats: Vec<String> = uses
            .iter()
            .enumerate()
            .filter(|(_, n)| !ids.insert(**n))
            .map(|(j, _)| format!("messages[1].content[{j}]"))
            .collect();
        let reported: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.rule == Rule::DuplicateToolUseId)
            .map(|d| d.path.to_string())
            .collect();
        prop_assert_eq!(reported, repeats);
    }
}

/// Thousands of calls, a few answered twice, one not at all, one result unexpected: the
/// findings name exactly those, at their places.
#[test]
fn a_message_with_thousands_of_calls_gets_exactly_its_findings() {
    const COUNT: u16 = 5_000;
    let calls: Vec<Value> = (0..COUNT)
        .map(|n| json!({"toolUse": {"toolUseId": format!("t{n}"), "name": "lookup", "input": {}}}))
        .collect();
    let mut results: Vec<Value> = (0..COUNT)
        .filter(|n| *n != 1234)
        .map(|n| json!({"toolResult": {"toolUseId": format!("t{n}"), "content": [{"text": "ok"}]}}))
        .collect();
    let again = json!({"toolResult": {"toolUseId": "t7", "content": [{"text": "again"}]}});
    results.push(again);
    results.push(json!({"toolResult": {"toolUseId": "t99999", "content": [{"text": "stale"}]}}));
    let body = json!({
        "messages": [
            {"role": "user", "content": [{"text": "look these up"}]},
            {"role": "assistant", "content": calls},
            {"role": "user", "content": results},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]},
    });
    let report =
        validate_body(Api::Converse, Some(MODEL), &serde_json::to_vec(&body).unwrap()).unwrap();
    let found: Vec<(Rule, String)> =
        report.diagnostics.iter().map(|d| (d.rule, d.path.to_string())).collect();
    let last = usize::from(COUNT) - 1;
    assert_eq!(
        found,
        [
            (Rule::ResultCount, format!("messages[2].content[{last}]")),
            (Rule::ResultUnexpected, format!("messages[2].content[{}]", last + 1)),
            (Rule::ResultMissing, "messages[1].content[1234]".to_owned()),
        ]
    );
    assert!(report.diagnostics[2].message.starts_with("no result for tool use t1234."));
}

/// Many blank system blocks and blank tool result items: each is reported where it is, and
/// repair removes them all, the fixes built from the request as it stood.
#[test]
fn many_findings_in_one_list_are_reported_and_repaired_each() {
    // Few enough fixes for repair's bound (64 plus 4 per message and block).
    let system: Vec<Value> =
        (0..60)
            .map(|n| {
                if n % 3 == 1 { json!({"text": " "}) } else { json!({"text": format!("rule {n}")}) }
            })
            .collect();
    let items: Vec<Value> =
        (0..10).map(|n| json!({"text": if n % 2 == 0 { "" } else { "row" }})).collect();
    let body = json!({
        "system": system,
        "messages": [
            {"role": "user", "content": [{"text": "go"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": items}}]},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]},
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    let report = validate_body(Api::Converse, Some(MODEL), &bytes).unwrap();
    let blank_system: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.rule == Rule::BlankText)
        .map(|d| d.path.to_string())
        .collect();
    let want: Vec<String> =
        (0..60).filter(|n| n % 3 == 1).map(|n| format!("system[{n}]")).collect();
    assert_eq!(blank_system, want);
    let blank_items = report
        .diagnostics
        .iter()
        .filter(|d| d.rule == Rule::ToolResultContent && d.severity == Severity::Warning)
        .count();
    assert_eq!(blank_items, 5);

    let repaired = repair_body(Api::Converse, Some(MODEL), &bytes).unwrap();
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    assert!(repaired.diagnostics.is_empty(), "{:?}", repaired.diagnostics);
    let request = repaired.request.unwrap();
    let Some(verbatim_model::SystemPrompt::Blocks(blocks)) = &request.system else {
        panic!("system blocks")
    };
    assert_eq!(blocks.len(), 40);
    let encoded = crate::assemble::encode(Api::Converse, &request).unwrap();
    let items = encoded["messages"][2]["content"][0]["toolResult"]["content"].as_array().unwrap();
    assert!(items.iter().all(|item| item["text"] == "row" || item["text"] == "(no output)"));
}
