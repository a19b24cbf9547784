//! The Messages API codec over the bodies in `test_data/messages_api/`: decoding then encoding
//! gives the same body and headers, the envelope is read from the body and the headers, and a
//! body that is not one names the place.

use serde_json::Value;

use super::support::{test_data, verbatim_strings};
use crate::messages_api::{self, Call, Headers};
use crate::{DecodeErrorKind, anthropic, converse};

fn case(name: &str) -> (Vec<u8>, Headers) {
    let dir = test_data("messages_api");
    let body = std::fs::read(dir.join(format!("{name}.request.json"))).unwrap();
    let pairs: Vec<(String, String)> =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.headers.json"))).unwrap())
            .unwrap();
    let headers = Headers::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    (body, headers)
}

const CASES: &[&str] = &["thinking_tool_loop", "body_version", "compaction_context"];

#[test]
fn every_case_decodes_and_encodes_to_the_same_body_and_headers() {
    for name in CASES {
        let (body, headers) = case(name);
        let value: Value = serde_json::from_slice(&body).unwrap();
        let call = messages_api::decode_request(&body, &headers).unwrap();
        let encoded = messages_api::encode_request(&call).unwrap();
        assert_eq!(encoded.body, value, "{name}: body changed");
        assert_eq!(verbatim_strings(&encoded.body), verbatim_strings(&value), "{name}");
        assert_eq!(encoded.headers, headers, "{name}: headers changed");
    }
}

#[test]
fn the_envelope_is_read_from_the_body_and_the_headers() {
    let (body, headers) = case("thinking_tool_loop");
    let call = messages_api::decode_request(&body, &headers).unwrap();
    assert_eq!(call.model, "us.anthropic.claude-sonnet-5");
    assert_eq!(call.stream, Some(true));
    assert_eq!(call.version.as_deref(), Some(messages_api::VERSION_2026_10_21));
    assert_eq!(
        call.request.beta.as_deref(),
        Some(
            &[
                "interleaved-thinking-2025-05-14".to_owned(),
                "thinking-binding-controls-2026-08-01".to_owned()
            ][..]
        )
    );
    // None of the envelope is a native model field or an unmapped key.
    assert!(
        call.request
            .model_fields
            .as_ref()
            .is_none_or(|f| !f.contains_key("model") && !f.contains_key("stream"))
    );
    assert!(call.request.unmapped.is_empty());
    // The tool input's numbers go out as they were written.
    let (bytes, _) = messages_api::request_to_vec(&call).unwrap();
    let input = br#""input":{"a":1.10,"b":2.200,"precision":1.5e+2}"#;
    assert!(bytes.windows(input.len()).any(|w| w == input));
    // The betas go out joined as the SDKs join them.
    let pairs = messages_api::encode_request(&call).unwrap().headers.to_pairs();
    assert_eq!(
        pairs,
        vec![
            ("anthropic-version", "2026-10-21".to_owned()),
            (
                "anthropic-beta",
                "interleaved-thinking-2025-05-14,thinking-binding-controls-2026-08-01".to_owned()
            ),
        ]
    );
}

#[test]
fn a_version_or_betas_written_in_the_body_stay_in_the_body() {
    let (body, headers) = case("body_version");
    let call = messages_api::decode_request(&body, &headers).unwrap();
    assert_eq!(call.version, None);
    assert_eq!(call.request.beta, None);
    let kept = &call.request.unmapped.anthropic;
    assert_eq!(kept.get("anthropic_version"), Some(&Value::from("bedrock-2023-05-31")));
    assert!(kept.contains_key("anthropic_beta"));
    // Header betas as well as body betas would say the same thing twice: refused by name.
    let mut twice: Call = call.clone();
    twice.request.beta = Some(vec!["interleaved-thinking-2025-05-14".into()]);
    let error = messages_api::encode_request(&twice).unwrap_err();
    assert_eq!(error.path.to_string(), "anthropic_beta");
    // Converse cannot say a key kept from the Anthropic body: refused, not dropped.
    let error = converse::encode_request(&call.request).unwrap_err();
    assert!(error.path.to_string().starts_with("anthropic_"), "{error}");
}

#[test]
fn a_messages_api_request_goes_to_invoke_model_and_back_unchanged() {
    let (body, headers) = case("thinking_tool_loop");
    let call = messages_api::decode_request(&body, &headers).unwrap();
    let invoke = anthropic::encode_request(&call.request).unwrap();
    assert_eq!(invoke["anthropic_version"], "bedrock-2023-05-31");
    assert!(invoke.get("model").is_none() && invoke.get("stream").is_none());
    assert_eq!(invoke["anthropic_beta"][1], "thinking-binding-controls-2026-08-01");
    let back = anthropic::decode_request_value(invoke).unwrap();
    let again = Call { request: back, ..call.clone() };
    let encoded = messages_api::encode_request(&again).unwrap();
    assert_eq!(encoded.body, serde_json::from_slice::<Value>(&body).unwrap());
    assert_eq!(encoded.headers, headers);
}

#[test]
fn bodies_that_are_not_messages_api_requests_name_the_place() {
    let none = Headers::default();
    let error =
        messages_api::decode_request(br#"{"max_tokens":1,"messages":[]}"#, &none).unwrap_err();
    assert_eq!(error.path.to_string(), "$");
    assert!(matches!(error.kind, DecodeErrorKind::MissingField { field: "model" }));
    let error =
        messages_api::decode_request(br#"{"model":"m","stream":"yes","messages":[]}"#, &none)
            .unwrap_err();
    assert_eq!(error.path.to_string(), "stream");
    let error = messages_api::decode_request(
        br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
        &none,
    )
    .unwrap_err();
    assert_eq!(error.path.to_string(), "messages[0].content[0]");
    // An InvokeModel body is refused by InvokeModel's decoder when it names a model, and a
    // Messages API body without a model is refused here: neither is taken for the other.
    assert!(anthropic::decode_request(&case("thinking_tool_loop").0).is_err());
}

#[test]
fn headers_are_read_without_case_and_repeated_betas_add_up() {
    let headers = Headers::from_pairs([
        ("Anthropic-Version", " 2023-06-01 "),
        ("ANTHROPIC-BETA", "a-1, b-2"),
        ("content-type", "application/json"),
        ("anthropic-beta", "c-3,"),
    ]);
    assert_eq!(headers.version.as_deref(), Some("2023-06-01"));
    assert_eq!(headers.beta, Some(vec!["a-1".into(), "b-2".into(), "c-3".into()]));
    assert_eq!(Headers::default().to_pairs(), vec![]);
}
