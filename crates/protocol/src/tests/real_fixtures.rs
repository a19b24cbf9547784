//! Every request recorded from the live service (all answered 200) validates without an error,
//! and repair changes nothing in it because of one. The recordings are read with the wire
//! crate's reader (`recordings.rs`), and the test says it skipped when they are absent.

use verbatim_model::Api;

use super::recordings::{documents, fixtures_dir, recordings};
use super::support::{Kind, Wire, verbatim_strings};
use crate::assemble::{Severity, repair_body, validate_body};

/// Every request the live service accepted (all recorded exchanges answered 200) validates
/// with no error against the capability row of the model its URI names, and repair changes
/// nothing in it because of an error.
#[test]
fn recorded_accepted_requests_validate_without_errors() {
    let Some(dir) = fixtures_dir() else { return };
    let mut validated = 0;
    let mut warnings = 0;
    for file in &recordings(&dir) {
        for doc in documents(file) {
            if doc.kind != Kind::Request {
                continue;
            }
            let api = match doc.wire {
                Wire::Converse => Api::Converse,
                Wire::Anthropic => Api::InvokeModel,
            };
            let model = doc.model.as_deref();
            assert!(model.is_some(), "{}: no model id in the URI", doc.label);
            let body = serde_json::to_vec(&doc.value).unwrap();
            let report = validate_body(api, model, &body).unwrap();
            let errors: Vec<String> = report
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(ToString::to_string)
                .collect();
            assert!(errors.is_empty(), "{} ({model:?}): {errors:#?}", doc.label);
            warnings += report.diagnostics.len();
            let repaired = repair_body(api, model, &body).unwrap();
            let changed: Vec<String> = repaired
                .fixes
                .iter()
                .filter(|f| f.diagnostic.severity == Severity::Error)
                .map(|f| f.diagnostic.to_string())
                .collect();
            assert!(
                changed.is_empty(),
                "{}: repair changed an accepted request: {changed:#?}",
                doc.label
            );
            // What repair may still do to an accepted request (merge a split turn) keeps every
            // thinking text, signature, redacted blob and tool input, in order.
            let request = repaired.request.expect("an accepted request decodes");
            let sent = crate::assemble::encode(api, &request).unwrap();
            assert_eq!(verbatim_strings(&sent), verbatim_strings(&doc.value), "{}", doc.label);
            validated += 1;
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("real fixtures: {validated} accepted requests validated, {warnings} warnings");
    }
    assert!(validated >= 30, "only {validated} recorded requests found");
}
