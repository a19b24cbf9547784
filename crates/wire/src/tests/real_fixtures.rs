//! Every Converse or Anthropic request, response or message array recorded from the live
//! service decodes and re-encodes to an equal JSON value, with thinking text, signatures,
//! redacted data and tool inputs unchanged (the recordings are read as
//! `recordings.rs` says, and skipped when absent).

use super::recordings::{documents, fixtures_dir, recordings};
use super::support::{Failure, Kind, Wire, decode_encode, verbatim_strings};
use crate::{anthropic, converse};

#[test]
fn recorded_traffic_round_trips_unchanged() {
    let Some(dir) = fixtures_dir() else { return };
    let files = recordings(&dir);

    let mut checked = 0;
    let mut verbatim = 0;
    for file in &files {
        for doc in documents(file) {
            let expected_strings = verbatim_strings(&doc.value);
            let encoded = match decode_encode(doc.wire, doc.kind, doc.value.clone()) {
                Ok(encoded) => encoded,
                Err(Failure::Decode(e)) => panic!("{}: does not decode: {e}", doc.label),
                Err(Failure::Encode(e)) => panic!("{}: does not re-encode: {e}", doc.label),
            };
            assert_eq!(encoded, doc.value, "{}: re-encoded JSON differs", doc.label);
            assert_eq!(
                verbatim_strings(&encoded),
                expected_strings,
                "{}: thinking, signature, redacted data or tool input changed",
                doc.label
            );
            checked += 1;
            verbatim += expected_strings.len();
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "real fixtures: {checked} documents from {} files, {verbatim} verbatim strings",
            files.len()
        );
    }
    assert!(checked >= 40, "only {checked} documents found in {}", dir.display());
    assert!(verbatim >= 40, "only {verbatim} thinking/signature/tool-input strings found");
}

/// Recorded Converse requests that the Anthropic dialect can express survive the trip
/// Converse -> model -> Anthropic -> model -> Converse unchanged.
#[test]
fn recorded_converse_requests_survive_the_anthropic_dialect() {
    let Some(dir) = fixtures_dir() else { return };
    let mut crossed = 0;
    for file in &recordings(&dir) {
        for doc in documents(file) {
            if (doc.wire, doc.kind) != (Wire::Converse, Kind::Request) {
                continue;
            }
            let mut request = converse::decode_request_value(doc.value.clone()).unwrap();
            // Converse may leave maxTokens out; InvokeModel requires it.
            let inference = request.inference.get_or_insert_with(Default::default);
            let added_max_tokens = inference.max_tokens.is_none();
            inference.max_tokens.get_or_insert(4096);
            let Ok(body) = anthropic::encode_request(&request) else { continue };
            let back = anthropic::decode_request_value(body).unwrap();
            let mut again = converse::encode_request(&back).unwrap();
            if added_max_tokens {
                again["inferenceConfig"].as_object_mut().unwrap().shift_remove("maxTokens");
            }
            let expected = doc.value.clone();
            // An empty inferenceConfig comes back when maxTokens was added and removed again.
            if expected.get("inferenceConfig").is_none() {
                again.as_object_mut().unwrap().shift_remove("inferenceConfig");
            }
            assert_eq!(again, expected, "{}: changed on the way through Anthropic", doc.label);
            assert_eq!(verbatim_strings(&again), verbatim_strings(&expected), "{}", doc.label);
            crossed += 1;
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "real fixtures: {crossed} recorded Converse requests crossed to Anthropic and back"
        );
    }
    assert!(crossed >= 10, "only {crossed} recorded requests crossed dialects");
}
