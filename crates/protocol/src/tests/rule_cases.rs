//! One table, one row per case file in `test_data/rules`: each names a rule, a request body
//! that breaks it (with the path and severity the diagnostic must carry) and a near miss that
//! must pass. A body is a JSON value (`body`), or text sent as it is (`body_text`) for what a
//! JSON value cannot hold, such as a key given twice. A case says where its verdict comes from
//! (`evidence`: a recorded answer or a documented rule), and may list bodies Bedrock was
//! recorded accepting (`accepted`, each with its model and evidence): none may draw an error,
//! and repair leaves them alone under the case's rule. Every rule has at least one row, except
//! the few that a raw body cannot show (they need the history's provenance or a body too large
//! for a file); those have named tests in `assembler.rs`.

use serde_json::Value;
use verbatim_model::Api;

use super::support::test_data;
use crate::assemble::{BodyReport, Severity, repair_call, validate_call};
use crate::messages_api::Headers;
use crate::rules::Rule;

/// Rules shown by named tests instead of case files.
pub(crate) const SHOWN_ELSEWHERE: &[Rule] = &[
    Rule::Unrepresentable,
    Rule::TooManyMessages,
    Rule::ThinkingForeign,
    Rule::ThinkingPrefix,
    Rule::BodySize,
];

struct Case {
    file: String,
    rule: Rule,
    api: Api,
    model: Option<String>,
    breaks: Vec<u8>,
    /// The Messages API headers sent with the body (`headers`: name/value pairs).
    headers: Headers,
    path: String,
    severity: Severity,
    /// A fragment of Bedrock's answer the diagnostic must quote, when the case names one.
    bedrock: Option<String>,
    near_miss: Vec<u8>,
    near_headers: Headers,
    near_model: Option<String>,
    repairable: bool,
    /// Bodies Bedrock answered 200, each with the model it was sent to.
    accepted: Vec<(Option<String>, Vec<u8>)>,
}

fn cases() -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(test_data("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let rule = Rule::from_id(doc["rule"].as_str().unwrap())
                .unwrap_or_else(|| panic!("{file}: unknown rule {}", doc["rule"]));
            assert!(
                file.starts_with(&format!("{}.", rule.id())),
                "{file}: named after another rule"
            );
            let api = match doc["api"].as_str() {
                Some("converse") => Api::Converse,
                Some("invoke") => Api::InvokeModel,
                Some("messages") => Api::Messages,
                other => panic!("{file}: api {other:?}"),
            };
            let severity = serde_json::from_value(doc["breaks"]["severity"].clone()).unwrap();
            Case {
                rule,
                api,
                model: doc["model"].as_str().map(str::to_owned),
                breaks: body(&doc["breaks"]),
                headers: headers(&doc["breaks"]),
                near_headers: headers(&doc["near_miss"]),
                path: doc["breaks"]["path"].as_str().unwrap().to_owned(),
                severity,
                bedrock: doc["breaks"]["bedrock"].as_str().map(str::to_owned),
                near_miss: body(&doc["near_miss"]),
                near_model: doc["near_miss"]["model"].as_str().map(str::to_owned),
                repairable: doc["repairable"].as_bool().unwrap_or(false),
                accepted: accepted(&file, &doc),
                file,
            }
        })
        .collect()
}

/// The bodies of a case's `accepted` list; each must name its evidence.
fn accepted(file: &str, doc: &Value) -> Vec<(Option<String>, Vec<u8>)> {
    let Some(list) = doc.get("accepted") else { return Vec::new() };
    list.as_array()
        .unwrap_or_else(|| panic!("{file}: accepted is not a list"))
        .iter()
        .map(|entry| {
            assert!(entry["evidence"].is_string(), "{file}: an accepted body without evidence");
            let model = entry["model"].as_str().or(doc["model"].as_str()).map(str::to_owned);
            (model, body(entry))
        })
        .collect()
}

/// The headers a case part names (`headers`: a list of name/value pairs), none by default.
pub(crate) fn headers(part: &Value) -> Headers {
    let pairs: Vec<(String, String)> =
        serde_json::from_value(part.get("headers").cloned().unwrap_or_default())
            .unwrap_or_default();
    Headers::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}

/// The bytes of a case's `body` (a JSON value) or `body_text` (sent as it is).
fn body(part: &Value) -> Vec<u8> {
    match part["body_text"].as_str() {
        Some(text) => text.as_bytes().to_vec(),
        None => serde_json::to_vec(&part["body"]).unwrap(),
    }
}

fn validate(api: Api, model: Option<&str>, headers: &Headers, body: &[u8]) -> BodyReport {
    validate_call(api, model, headers, body).unwrap()
}

fn listing(report: &BodyReport) -> String {
    report.diagnostics.iter().map(|d| format!("\n  {d}")).collect()
}

#[test]
fn each_case_breaks_its_rule_at_its_path_and_its_near_miss_passes() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let model = case.model.as_deref();
        let report = validate(case.api, model, &case.headers, &case.breaks);
        match report.diagnostics.iter().find(|d| d.rule == case.rule) {
            None => failures.push(format!(
                "{}: no {} diagnostic; got:{}",
                case.file,
                case.rule,
                listing(&report)
            )),
            Some(hit) if hit.path.to_string() != case.path || hit.severity != case.severity => {
                failures.push(format!(
                    "{}: expected {:?} at {}, got {hit}",
                    case.file, case.severity, case.path
                ));
            }
            Some(hit)
                if case
                    .bedrock
                    .as_ref()
                    .is_some_and(|text| !hit.message.contains(text.as_str())) =>
            {
                failures.push(format!(
                    "{}: the message does not quote {:?}: {}",
                    case.file,
                    case.bedrock.as_ref().unwrap(),
                    hit.message
                ));
            }
            Some(_) if report.is_valid() != (case.severity == Severity::Warning) => {
                failures.push(format!(
                    "{}: validity disagrees with severity:{}",
                    case.file,
                    listing(&report)
                ));
            }
            Some(_) => {}
        }
        for (k, (model, body)) in case.accepted.iter().enumerate() {
            let report = validate(case.api, model.as_deref(), &case.headers, body);
            if !report.is_valid() {
                failures.push(format!(
                    "{}: accepted body {k} ({}) draws an error:{}",
                    case.file,
                    model.as_deref().unwrap_or("no model"),
                    listing(&report)
                ));
            }
        }
        let near_model = case.near_model.as_deref().or(model);
        let near = validate(case.api, near_model, &case.near_headers, &case.near_miss);
        if !near.diagnostics.iter().all(|d| d.severity == Severity::Warning && d.rule != case.rule)
        {
            failures.push(format!("{}: the near miss does not pass:{}", case.file, listing(&near)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let covered: std::collections::HashSet<Rule> = cases.iter().map(|c| c.rule).collect();
    for rule in Rule::ALL {
        assert!(
            covered.contains(rule) || SHOWN_ELSEWHERE.contains(rule),
            "rule {rule} has no case file in test_data/rules"
        );
    }
}

#[test]
fn repair_fixes_each_repairable_case_and_leaves_the_others_reported() {
    let mut failures = Vec::new();
    for case in cases() {
        let model = case.model.as_deref();
        // What Bedrock accepted, repair leaves as it is under the case's rule.
        for (k, (model, body)) in case.accepted.iter().enumerate() {
            let report = repair_call(case.api, model.as_deref(), &case.headers, body).unwrap();
            if let Some(fix) = report.fixes.iter().find(|f| f.diagnostic.rule == case.rule) {
                failures
                    .push(format!("{}: accepted body {k} changed: {}", case.file, fix.diagnostic));
            }
        }
        let report = repair_call(case.api, model, &case.headers, &case.breaks).unwrap();
        let still_broken = report.diagnostics.iter().any(|d| d.rule == case.rule);
        if !case.repairable {
            if !still_broken {
                failures.push(format!("{}: marked unrepairable but repair removed it", case.file));
            }
            continue;
        }
        if still_broken || !report.is_valid() {
            failures.push(format!("{}: not repaired:{}", case.file, listing(&report)));
            continue;
        }
        if !report.fixes.iter().any(|f| f.diagnostic.rule == case.rule) {
            failures.push(format!("{}: no fix names {}", case.file, case.rule));
        }
        // The repaired request passes strict validation as a raw body too.
        let (repaired, headers) = report.encoded(case.api).expect("a repaired request").unwrap();
        let strict = validate(case.api, model, &headers, &serde_json::to_vec(&repaired).unwrap());
        if !strict.is_valid() {
            failures.push(format!("{}: repaired body fails:{}", case.file, listing(&strict)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
