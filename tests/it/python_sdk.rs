//! The emulator driven by an SDK no one here wrote: boto3 from PyPI, in
//! `tests/python/bedrock_sdk.py`. botocore signs (SigV4), serialises the requests and parses
//! every answer, whole and event-stream, so a reply it cannot read fails here. Skipped, with a
//! note, where `python3` has no boto3, unless `VERBATIM_REQUIRE_BOTO3` is set.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use verbatim_emulator::{Emulator, EmulatorConfig};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
/// The emulator's model whose thinking comes back redacted (the script's `REDACTED_MODEL`).
const REDACTED: &str = "us.emulator.redacted";

pub(crate) fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/bedrock_sdk.py")
}

/// `python3` with the environment that keeps botocore off the network and away from the
/// user's AWS configuration: no profile, no config or credentials files, no instance metadata.
pub(crate) fn python() -> Command {
    let mut command = Command::new("python3");
    for name in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CA_BUNDLE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(name);
    }
    command
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    command
}

/// Whether `command -c code` succeeds (a module imports).
pub(crate) fn runs(mut command: Command, code: &str) -> bool {
    command
        .args(["-c", code])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether `python3 -c "import boto3"` succeeds.
pub(crate) fn boto3_available() -> bool {
    runs(python(), "import boto3, botocore")
}

/// `command script url`, its output captured.
pub(crate) fn run_script_with(mut command: Command, script: PathBuf, url: String) -> Output {
    command
        .arg(script)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("python3 runs")
}

/// Whether an SDK is there to run: `available`, or else (said on standard error) false when
/// the variable `require` is unset, which CI sets, and a failure when it is set.
pub(crate) fn sdk_available(available: bool, require: &str, what: &str, install: &str) -> bool {
    if !available {
        let required = std::env::var_os(require).is_some_and(|v| !v.is_empty());
        assert!(!required, "{require} is set but python3 has no {what}: install it ({install})");
        let _ = writeln!(
            std::io::stderr(),
            "skipped: python3 with {what} not found; set {require}=1 to require it"
        );
    }
    available
}

/// Runs an SDK script against a new emulator and reads the JSON it prints (with the emulator,
/// to look at what it received); `None` (said on
/// standard error) when `available` is false and the variable `require` is unset, which CI
/// sets. `what` names the package, `install` how to get it.
pub(crate) async fn sdk_script(
    available: bool,
    require: &str,
    what: &str,
    install: &str,
    command: Command,
    script: PathBuf,
) -> Option<(Value, Emulator)> {
    if !sdk_available(available, require, what, install) {
        return None;
    }
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let url = emulator.url();
    let name = script.file_name().unwrap().to_string_lossy().into_owned();
    // The child blocks a thread of its own; the emulator keeps serving on the runtime's.
    let out =
        tokio::task::spawn_blocking(move || run_script_with(command, script, url)).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed ({}):\n{stderr}\n{stdout}", out.status);
    let seen = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{name} printed no JSON ({e}):\n{stdout}\n{stderr}"));
    Some((seen, emulator))
}

/// The strings of a JSON array the scripts print.
pub(crate) fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_parses_every_operation_and_its_thinking_tool_loops_verify() {
    let Some((seen, emulator)) = sdk_script(
        boto3_available(),
        "VERBATIM_REQUIRE_BOTO3",
        "boto3",
        "pip install boto3",
        python(),
        script(),
    )
    .await
    else {
        return;
    };
    assert!(seen["boto3"].as_str().is_some_and(|v| !v.is_empty()), "{seen}");

    let converse = &seen["converse"];
    assert_eq!(converse["role"], "assistant", "{converse}");
    assert_eq!(strings(&converse["kinds"]), ["text"]);
    assert!(converse["text"].as_str().unwrap().contains("Hello there"), "{converse}");
    assert_eq!(converse["stop_reason"], "end_turn");
    assert_eq!(converse["http_status"], 200);
    let usage = &converse["usage"];
    assert_eq!(
        usage["totalTokens"].as_u64().unwrap(),
        usage["inputTokens"].as_u64().unwrap() + usage["outputTokens"].as_u64().unwrap()
    );
    assert!(converse["request_id"].as_str().is_some_and(|id| id.len() == 36), "{converse}");

    for name in ["tool_loop", "stream_tool_loop"] {
        let tool_loop = &seen[name];
        assert_eq!(tool_loop["first_stop_reason"], "tool_use", "{name}: {tool_loop}");
        assert_eq!(strings(&tool_loop["first_kinds"]), ["reasoningContent", "toolUse"], "{name}");
        assert!(tool_loop["signature_length"].as_u64().unwrap() > 0, "{name}");
        assert_eq!(tool_loop["tool_name"], "get_weather", "{name}");
        assert!(tool_loop["tool_input"]["city"].is_string(), "{name}: {tool_loop}");
        assert_eq!(tool_loop["final_stop_reason"], "end_turn", "{name}");
        assert_eq!(strings(&tool_loop["final_kinds"]), ["text"], "{name}");
    }
    assert!(seen["tool_loop"]["final_text"].as_str().unwrap().contains("Sunny, 21 C"));
    assert!(seen["stream_tool_loop"]["final_text"].as_str().unwrap().contains("Rain, 12 C"));
    assert_eq!(
        strings(&seen["stream_tool_loop"]["first_events"]),
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );

    let stream = &seen["converse_stream"];
    assert_eq!(
        strings(&stream["events"]),
        ["messageStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"],
        "{stream}"
    );
    assert_eq!(stream["stop_reason"], "end_turn");
    assert_eq!(stream["text"], converse["text"], "a stream says what the whole answer says");
    assert_eq!(stream["usage"], converse["usage"]);

    let invoke = &seen["invoke"];
    assert_eq!(invoke["content_type"], "application/json", "{invoke}");
    assert_eq!((&invoke["type"], &invoke["role"]), (&json!("message"), &json!("assistant")));
    assert_eq!(strings(&invoke["content_types"]), ["text"]);
    assert!(invoke["text"].as_str().unwrap().contains("Hello there"), "{invoke}");
    assert_eq!(invoke["stop_reason"], "end_turn");

    let invoke_stream = &seen["invoke_stream"];
    let chunks = strings(&invoke_stream["chunk_types"]);
    assert_eq!(chunks.first(), Some(&"message_start"), "{invoke_stream}");
    assert_eq!(chunks.last(), Some(&"message_stop"), "{invoke_stream}");
    for kind in
        ["content_block_start", "content_block_delta", "content_block_stop", "message_delta"]
    {
        assert!(chunks.contains(&kind), "no {kind} in {chunks:?}");
    }
    assert_eq!(invoke_stream["text"], invoke["text"]);
    assert_eq!(invoke_stream["stop_reason"], "end_turn");
    assert!(invoke_stream["invocation_metrics"]["outputTokenCount"].is_u64(), "{invoke_stream}");

    // Redacted thinking: boto3 decodes the blob and encodes it again; the emulator verifies it.
    let redacted = &seen["redacted_loop"];
    assert_eq!(redacted["first_stop_reason"], "tool_use", "{redacted}");
    assert_eq!(strings(&redacted["first_kinds"]), ["reasoningContent", "toolUse"]);
    assert_eq!(strings(&redacted["reasoning_kinds"]), ["redactedContent"]);
    assert!(redacted["redacted_bytes"].as_u64().unwrap() > 0);
    assert_eq!(redacted["final_stop_reason"], "end_turn");
    assert!(redacted["final_text"].as_str().unwrap().contains("Windy, 15 C"), "{redacted}");

    let invoke_loop = &seen["invoke_tool_loop"];
    assert_eq!(invoke_loop["first_stop_reason"], "tool_use", "{invoke_loop}");
    assert_eq!(strings(&invoke_loop["first_types"]), ["thinking", "tool_use"]);
    assert_eq!(invoke_loop["tool_name"], "get_weather");
    assert!(invoke_loop["tool_input"]["city"].is_string(), "{invoke_loop}");
    assert_eq!(invoke_loop["final_stop_reason"], "end_turn");
    assert_eq!(strings(&invoke_loop["final_types"]), ["text"]);
    assert!(invoke_loop["final_text"].as_str().unwrap().contains("Fog, 9 C"), "{invoke_loop}");

    // Every request arrived signed by botocore, verified, and was answered 200: the replayed
    // thinking signatures and redacted data included.
    let received = emulator.received();
    let calls: Vec<(&str, &str)> =
        received.iter().map(|r| (r.operation.as_str(), r.model_id.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("converse", MODEL),
            ("converse", MODEL),
            ("converse", MODEL),
            ("converse-stream", MODEL),
            ("converse-stream", MODEL),
            ("converse-stream", MODEL),
            ("invoke", MODEL),
            ("invoke-with-response-stream", MODEL),
            ("converse", REDACTED),
            ("converse", REDACTED),
            ("invoke", MODEL),
            ("invoke", MODEL),
        ]
    );
    for request in &received {
        assert_eq!(request.status, 200, "{} {}", request.operation, request.path);
        assert_eq!(request.fault, None);
    }
    // botocore put the model id in the path as one segment, `:` percent-encoded.
    assert_eq!(received[0].path, format!("/model/{}/converse", MODEL.replace(':', "%3A")));
    // The replayed assistant message carries the thinking block boto3 parsed, signature and all.
    let replay: Value = serde_json::from_slice(&received[2].body).unwrap();
    let thinking = &replay["messages"][1]["content"][0]["reasoningContent"]["reasoningText"];
    assert_eq!(thinking["text"], seen["tool_loop"]["reasoning_text"]);
    assert!(thinking["signature"].is_string(), "{replay}");
    assert_eq!(replay["additionalModelRequestFields"]["thinking"]["type"], "enabled");
}
