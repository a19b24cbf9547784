//! The emulator and the validator are two readings of the same evidence, in separate code:
//! sent the same bodies, the emulator (over HTTP) accepts exactly what the validator finds no
//! error in, and refuses the rest with the text the validator quotes.

use serde_json::{Value, json};
use verbatim_emulator::{Emulator, EmulatorConfig};
use verbatim_protocol::messages_api;
use verbatim_transport::{Api, ApiError, Call, HttpTransport, Transport as _};

use crate::emulator::{MODEL, send_to, signed};

/// The emulator's own reading of which `anthropic_version` each model takes
/// (`crates/emulator/src/versions.rs`) and the validator's capability table agree: a body is
/// accepted exactly when the validator finds no error in it, and refused with the text the
/// validator quotes.
#[tokio::test]
async fn the_emulator_and_the_validator_agree_on_anthropic_versions() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let models = [
        "global.anthropic.claude-opus-4-7",
        "us.anthropic.claude-opus-4-8",
        "anthropic.claude-opus-5-5",
        "us.anthropic.claude-sonnet-5",
        "global.anthropic.claude-opus-4-6-v1",
        "us.anthropic.claude-sonnet-4-6",
        MODEL,
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
    ];
    let (mut accepted, mut refused) = (0, 0);
    for model in models {
        for version in ["bedrock-2023-05-31", "2026-10-21", "2023-06-01"] {
            let body = json!({"anthropic_version": version, "max_tokens": 100,
                "messages": [{"role": "user", "content": "Hello"}]});
            let report = verbatim_protocol::assemble::validate_body(
                Api::InvokeModel,
                Some(model),
                &serde_json::to_vec(&body).unwrap(),
            )
            .unwrap();
            match send_to(&transport, Api::InvokeModel, model, &body).await {
                Ok(_) => {
                    assert!(report.is_valid(), "{model} {version}: {:?}", report.diagnostics);
                    accepted += 1;
                }
                Err(error) => {
                    assert_eq!(error.message, format!("Invalid API version: {version}"));
                    let [diagnostic] = &report.diagnostics[..] else {
                        panic!("{model} {version}: {:?}", report.diagnostics)
                    };
                    assert_eq!(diagnostic.rule.id(), "invoke.version");
                    assert!(diagnostic.message.ends_with(&error.message), "{diagnostic}");
                    refused += 1;
                }
            }
        }
    }
    // Both outcomes happen: the legacy models refuse two versions each, the current ones one.
    assert_eq!((accepted, refused), (15, 12));
}

/// The folder of the rule case files.
fn cases() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/protocol/test_data/rules")
}

/// One body of a rule case file (the break, the near miss, or a recorded 200) as both readings
/// judge it.
struct Judged {
    /// `<file> body <k>`, `k` 0 for the break, 1 for the near miss, 2 on for the 200s.
    label: String,
    /// Bedrock's answer to the break, where the case quotes it.
    quote: Option<String>,
    /// Whether the validator finds no error in it.
    valid: bool,
    /// The emulator's answer.
    answer: Result<verbatim_model::Response, ApiError>,
}

/// Sends each body of case file `name` to the emulator and the validator. Raw-text bodies (a
/// duplicate key, a malformed body) are the decoders' to judge and are left out.
async fn judge(transport: &HttpTransport, name: &str) -> Vec<Judged> {
    let case: Value = serde_json::from_slice(&std::fs::read(cases().join(name)).unwrap()).unwrap();
    let api = match case["api"].as_str() {
        Some("invoke") => Api::InvokeModel,
        Some("messages") => Api::Messages,
        _ => Api::Converse,
    };
    let mut bodies = vec![&case["breaks"], &case["near_miss"]];
    bodies.extend(case["accepted"].as_array().into_iter().flatten());
    let mut judged = Vec::new();
    for (k, part) in bodies.into_iter().enumerate() {
        if part.is_null() || part["body"].is_null() {
            continue;
        }
        let body = &part["body"];
        let raw = serde_json::to_vec(body).unwrap();
        let (report, answer) = if api == Api::Messages {
            // The model is the body's; the headers are the case part's.
            let pairs: Vec<(String, String)> =
                serde_json::from_value(part["headers"].clone()).unwrap_or_default();
            let headers = messages_api::Headers::from_pairs(
                pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            );
            let report =
                verbatim_protocol::assemble::validate_call(api, None, &headers, &raw).unwrap();
            (report, send_messages(transport, body, &pairs).await)
        } else {
            let model = part["model"].as_str().or(case["model"].as_str()).unwrap_or(MODEL);
            let report =
                verbatim_protocol::assemble::validate_body(api, Some(model), &raw).unwrap();
            (report, send_to(transport, api, model, body).await)
        };
        judged.push(Judged {
            label: format!("{name} body {k}"),
            quote: if k == 0 { part["bedrock"].as_str().map(str::to_owned) } else { None },
            valid: report.is_valid(),
            answer,
        });
    }
    judged
}

/// Sends a Messages API body whole, with the case's headers: the transport writes the body's
/// `model` around the rest, as it does for every call on this surface.
async fn send_messages(
    transport: &HttpTransport,
    body: &Value,
    headers: &[(String, String)],
) -> Result<verbatim_model::Response, ApiError> {
    let mut rest = body.clone();
    let fields = rest.as_object_mut().expect("a Messages API case body is an object");
    let model = fields.shift_remove("model").and_then(|m| m.as_str().map(str::to_owned));
    fields.shift_remove("stream");
    let mut call = Call::new(Api::Messages, model.unwrap_or_default(), rest.to_string());
    for (name, value) in headers {
        call = call.with_header(name.clone(), value.clone());
    }
    match transport.send(call).await {
        Ok(reply) => Ok(messages_api::decode_response(&reply.body).unwrap()),
        Err(error) => Err(error.api().cloned().unwrap_or_else(|| panic!("{error}"))),
    }
}

/// The rule cases whose verdicts rest on what Bedrock was recorded answering: refusals that
/// need evidence, bodies it accepted. For each body of these case files (the break, the near
/// miss and every recorded 200), the emulator, which reads the rules on its own, accepts it
/// exactly when the validator finds no error; where the case quotes Bedrock's answer, the
/// emulator answers with it.
#[tokio::test]
async fn the_emulator_and_the_validator_agree_on_the_evidence_cases() {
    const CASES: &[&str] = &[
        "tool_result.status.unknown_model.json",
        "roles.alternate.two_users.json",
        "roles.alternate.invoke_two_users.json",
        "roles.alternate.two_users_not_claude.json",
        "roles.first_user.assistant_first.json",
        "roles.first_user.invoke_assistant_first.json",
        "tool.result_missing.nova_client_tool_unanswered.json",
        "content.role.tool_result_in_assistant.json",
        "shape.unknown_key.tool_result_key.json",
        "content.s3.image_in_tool_result.json",
        "content.s3.image_in_user_message.json",
        "content.s3.unknown_model_warning.json",
        "content.s3.document_in_user_message.json",
        "content.media.video_on_claude.json",
        "content.media.video_in_tool_result_claude.json",
        "content.media.video_in_tool_result_nova.json",
        "output.schema.max_items_invoke.json",
        "output.schema.converse_number_bounds.json",
        "output.schema.min_items_messages.json",
        "output.schema.converse_schema_not_a_string.json",
        "output.schema.unknown_model_warning.json",
        "request.field.latency_unknown.json",
        "request.field.service_tier_unknown.json",
        "request.field.metadata_too_many.json",
        "request.field.metadata_value_pattern.json",
        // The families that are not Claude (capability/families.rs).
        "reasoning.setting.reasoning_config_on_nova1.json",
        "reasoning.setting.anthropic_thinking_on_gpt_oss.json",
        "reasoning.setting.nova2_high_effort_with_max_tokens_warning.json",
        "thinking.mode.anthropic_thinking_on_deepseek_warning.json",
        "thinking.signature_field.empty_signature_gpt_oss.json",
        "thinking.not_replayable.deepseek_r1_reasoning.json",
        "thinking.unsigned.llama_not_recorded_warning.json",
        "content.media.image_on_text_only_gpt_oss.json",
        "tool.results_alone.llama4_text_beside_results.json",
        "tool.results_alone.claude3_opus_text_beside_results.json",
        "tool.results_alone.mistral_not_recorded_warning.json",
    ];
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let (mut accepted, mut refused) = (0, 0);
    for name in CASES {
        for Judged { label, quote, valid, answer } in judge(&transport, name).await {
            match answer {
                Ok(_) => {
                    assert!(valid, "{label}: accepted, the validator finds an error");
                    accepted += 1;
                }
                Err(error) => {
                    assert!(!valid, "{label}: refused: {}", error.message);
                    assert_eq!(error.status, 400, "{label}");
                    if let Some(quote) = quote {
                        assert!(error.message.contains(&quote), "{label}: {}", error.message);
                    }
                    refused += 1;
                }
            }
        }
    }
    // Both verdicts occur: twenty-six breaks are errors (six of them the other families', one
    // Claude 3 Opus'), the other bodies pass.
    assert_eq!((accepted, refused), (54, 26));
}

/// Every rule case file: each body (the break, the near miss, every recorded 200) is accepted
/// by the emulator exactly when the validator finds no error in it. A refusal for a thinking
/// signature the emulator did not issue is not counted: case files carry made-up signatures,
/// and only the service can judge one.
#[tokio::test]
async fn the_emulator_and_the_validator_agree_on_every_rule_case() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let mut names: Vec<_> = std::fs::read_dir(cases())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let (mut disagreements, mut compared) = (Vec::new(), 0);
    for name in &names {
        for Judged { label, valid, answer, .. } in judge(&transport, name).await {
            if let Err(error) = &answer
                && (error.message.contains("Invalid signature in thinking block")
                    || error.message.contains("Invalid `signature` in `thinking` block"))
            {
                continue;
            }
            compared += 1;
            if answer.is_ok() != valid {
                let verdict = if answer.is_ok() { "accepted" } else { "refused" };
                disagreements.push(format!("{label}: the emulator {verdict}"));
            }
        }
    }
    assert!(disagreements.is_empty(), "over {compared} bodies:\n{}", disagreements.join("\n"));
    // Every case file was read, and nearly every body compared.
    assert!(names.len() > 100 && compared > 200, "{} files, {compared} bodies", names.len());
}

/// The recordings of live traffic (`VERBATIM_REAL_FIXTURES`, or `../shared/fixtures/real`).
fn real_fixtures() -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("VERBATIM_REAL_FIXTURES") {
        Some(dir) => Some(root.join(dir)),
        None => {
            let dir = root.join("../shared/fixtures/real");
            if dir.is_dir() {
                return Some(dir);
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping recorded requests: {} is absent", dir.display());
            }
            None
        }
    }
}

/// Every request Bedrock was recorded answering 200 is accepted by both readings: the
/// validator finds no error in it, and the emulator takes it (a refusal of a thinking
/// signature the emulator did not issue aside: only the service can judge those).
#[tokio::test]
async fn both_readings_accept_every_request_bedrock_accepted() {
    let Some(dir) = real_fixtures() else { return };
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut compared, mut signatures, mut failures) = (0, 0, Vec::new());
    for file in files {
        let root: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (k, exchange) in root["exchanges"].as_array().into_iter().flatten().enumerate() {
            let (request, response) = (&exchange["request"], &exchange["response"]);
            if response["status"].as_u64().is_some_and(|s| s != 200) {
                continue;
            }
            let uri = request["uri"].as_str().unwrap_or_default();
            let api = match uri.rsplit('/').next() {
                Some("converse" | "converse-stream") => Api::Converse,
                Some("invoke" | "invoke-with-response-stream") => Api::InvokeModel,
                _ => continue,
            };
            let Some(segment) = uri.split("/model/").nth(1).and_then(|r| r.split('/').next())
            else {
                continue;
            };
            let model = segment.replace("%3A", ":").replace("%2F", "/");
            let body: Value = match &request["body"] {
                Value::String(raw) => serde_json::from_str(raw).unwrap(),
                _ => match &request["body_json"] {
                    json @ Value::Object(_) => json.clone(),
                    _ => continue,
                },
            };
            let label = format!("{name} exchange {k}");
            let raw = serde_json::to_vec(&body).unwrap();
            let report =
                verbatim_protocol::assemble::validate_body(api, Some(&model), &raw).unwrap();
            if !report.is_valid() {
                failures.push(format!("{label}: the validator refuses: {:?}", report.diagnostics));
            }
            match send_to(&transport, api, &model, &body).await {
                Ok(_) => {}
                Err(error)
                    if error.message.contains("Invalid signature in thinking block")
                        || error.message.contains("Invalid `signature` in `thinking` block") =>
                {
                    signatures += 1;
                }
                Err(error) => {
                    failures.push(format!("{label}: the emulator refuses: {}", error.message))
                }
            }
            compared += 1;
        }
    }
    assert!(failures.is_empty(), "over {compared} requests:\n{}", failures.join("\n"));
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{compared} recorded requests accepted by both ({signatures} carry Bedrock's own signatures)"
        );
    }
    assert!(compared >= 20, "only {compared} recorded requests");
}
