//! Fuzzes the validator and the repairer on raw request bodies.
//!
//! The first byte picks the API and the model; the rest is the body. Validating and repairing
//! must never panic, and a body repair reports valid must pass strict validation as repaired.

#![no_main]

use libfuzzer_sys::fuzz_target;
use verbatim_model::Api;
use verbatim_protocol::assemble::{Severity, repair_body, validate_body, validate_request};

const MODELS: &[Option<&str>] = &[
    None,
    Some("us.anthropic.claude-sonnet-4-20250514-v1:0"),
    Some("anthropic.claude-3-7-sonnet-20250219-v1:0"),
    Some("us.anthropic.claude-opus-4-5-20251101-v1:0"),
    Some("amazon.nova-pro-v1:0"),
    Some("arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let api = if first & 1 == 0 { Api::Converse } else { Api::InvokeModel };
    let model = MODELS[usize::from(first >> 1) % MODELS.len()];
    let _ = validate_body(api, model, body);
    if let Ok(report) = repair_body(api, model, body) {
        if let (true, Some(request)) = (report.is_valid(), &report.request) {
            let left = validate_request(api, model, request);
            assert!(
                left.iter().all(|d| d.severity != Severity::Error),
                "a repaired request fails strict validation: {left:?}"
            );
        }
    }
});
