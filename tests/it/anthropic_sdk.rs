//! The emulator driven by the Anthropic Python SDK (2.x, `anthropic[bedrock]` from PyPI), in
//! `tests/python/anthropic_sdk.py`: `AnthropicBedrock` over InvokeModel (body version
//! `2026-10-21`) and `AnthropicBedrockMantle` over the Messages API (`/anthropic/v1/messages`),
//! each whole and streamed, API key and SigV4, a thinking tool loop sent back unchanged, and a
//! tampered signature refused with Bedrock's text. The SDK parses every answer, so one it cannot
//! read fails here. Skipped, with a note, where `python3` has no `anthropic`, unless
//! `VERBATIM_REQUIRE_ANTHROPIC_SDK` is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::python_sdk::{python, runs, sdk_script, strings};

const BEDROCK_MODEL: &str = "global.anthropic.claude-opus-4-7";
const MANTLE_MODEL: &str = "anthropic.claude-opus-4-7";
const PROFILE_MODEL: &str = "us.anthropic.claude-sonnet-5";

pub(crate) fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/anthropic_sdk.py")
}

/// `python3` as the boto3 test runs it, and without the variables the Anthropic SDK reads for
/// its keys and base URLs.
pub(crate) fn anthropic_python() -> Command {
    let mut command = python();
    for name in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AWS_API_KEY",
        "ANTHROPIC_BEDROCK_BASE_URL",
        "ANTHROPIC_BEDROCK_MANTLE_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
    ] {
        command.env_remove(name);
    }
    command
}

/// Whether `python3 -c "import anthropic"` finds the SDK with its Bedrock extra (botocore).
pub(crate) fn sdk_available() -> bool {
    runs(anthropic_python(), "import anthropic, botocore; anthropic.AnthropicBedrockMantle")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_runs_unchanged_over_invoke_model_and_the_messages_api() {
    let Some((seen, emulator)) = sdk_script(
        sdk_available(),
        "VERBATIM_REQUIRE_ANTHROPIC_SDK",
        "anthropic[bedrock]",
        "pip install \"anthropic[bedrock]>=2,<3\"",
        anthropic_python(),
        script(),
    )
    .await
    else {
        return;
    };
    assert!(seen["anthropic"].as_str().is_some_and(|v| v.starts_with("2.")), "{seen}");

    for name in ["bedrock_whole", "mantle_whole"] {
        let whole = &seen[name];
        assert_eq!((&whole["type"], &whole["role"]), (&"message".into(), &"assistant".into()));
        assert_eq!(strings(&whole["kinds"]), ["text"], "{name}");
        assert!(whole["text"].as_str().unwrap().contains("Hello"), "{name}: {whole}");
        assert_eq!(whole["stop_reason"], "end_turn", "{name}");
    }
    for name in ["bedrock_stream", "mantle_stream"] {
        let stream = &seen[name];
        let events = strings(&stream["events"]);
        assert_eq!(events.first(), Some(&"message_start"), "{name}: {events:?}");
        assert_eq!(events.last(), Some(&"message_stop"), "{name}: {events:?}");
        for kind in ["content_block_start", "content_block_delta", "text", "message_delta"] {
            assert!(events.contains(&kind), "{name}: no {kind} in {events:?}");
        }
        assert_eq!(stream["stop_reason"], "end_turn", "{name}");
        assert!(stream["text"].as_str().unwrap().contains("Hello"), "{name}: {stream}");
    }
    assert_eq!(seen["bedrock_stream"]["text"], seen["bedrock_whole"]["text"]);

    for name in ["bedrock_tool_loop", "mantle_tool_loop", "mantle_stream_loop"] {
        let tool_loop = &seen[name];
        assert_eq!(tool_loop["first_stop_reason"], "tool_use", "{name}: {tool_loop}");
        assert_eq!(strings(&tool_loop["first_kinds"]), ["thinking", "tool_use"], "{name}");
        assert!(tool_loop["signature_length"].as_u64().unwrap() > 0, "{name}");
        assert_eq!(tool_loop["tool_name"], "get_weather", "{name}");
        assert!(tool_loop["tool_input"]["city"].is_string(), "{name}: {tool_loop}");
        assert_eq!(tool_loop["final_stop_reason"], "end_turn", "{name}");
        assert_eq!(strings(&tool_loop["final_kinds"]), ["text"], "{name}");
        assert!(tool_loop["final_text"].as_str().unwrap().contains("Sunny, 21 C"), "{name}");
    }

    // A tampered signature: Bedrock's text on both surfaces, in each surface's error body.
    let text = "messages.1.content.0: Invalid `signature` in `thinking` block";
    for name in ["bedrock_tampered", "mantle_tampered"] {
        let refused = &seen[name];
        assert_eq!(refused["status"], 400, "{name}: {refused}");
        assert_eq!(refused["message"], text, "{name}: {refused}");
    }
    assert_eq!(seen["mantle_tampered"]["body"]["error"]["type"], "invalid_request_error");
    assert_eq!(seen["bedrock_tampered"]["body"]["message"], text);

    let received = emulator.received();
    let calls: Vec<(&str, &str, u16)> =
        received.iter().map(|r| (r.operation.as_str(), r.model_id.as_str(), r.status)).collect();
    assert_eq!(
        calls,
        [
            ("invoke", BEDROCK_MODEL, 200),
            ("invoke-with-response-stream", BEDROCK_MODEL, 200),
            ("invoke", BEDROCK_MODEL, 200),
            ("invoke", BEDROCK_MODEL, 200),
            ("messages", MANTLE_MODEL, 200),
            ("messages", PROFILE_MODEL, 200),
            ("messages", MANTLE_MODEL, 200),
            ("messages", MANTLE_MODEL, 200),
            ("messages", PROFILE_MODEL, 200),
            ("messages", PROFILE_MODEL, 200),
            ("messages", MANTLE_MODEL, 400),
            ("invoke", BEDROCK_MODEL, 400),
        ]
    );
    for request in &received {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        if request.operation == "messages" {
            // The model in the body, the version in the header: none in the body.
            assert_eq!(body["model"], request.model_id.as_str());
            assert!(body.get("anthropic_version").is_none(), "{body}");
            assert_eq!(request.path, "/anthropic/v1/messages");
        } else {
            // SDK 2.x writes its own version into InvokeModel bodies, and the model takes it.
            assert_eq!(body["anthropic_version"], "2026-10-21", "{body}");
            assert!(body.get("model").is_none(), "{body}");
        }
    }
    // The streamed Mantle loop's second request carries the thinking the stream folded.
    let replay: Value = serde_json::from_slice(&received[9].body).unwrap();
    assert_eq!(replay["stream"], true);
    assert_eq!(replay["messages"][1]["content"][0]["type"], "thinking", "{replay}");
}
