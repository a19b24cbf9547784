//! The `verbatim validate`, `repair`, `explain` and `emulator` commands, run as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const SONNET4: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data").join(name)
}

/// Runs `verbatim` with `args` (and `stdin` piped in when given): exit code and stdout.
fn verbatim(args: &[&str], stdin: Option<&[u8]>) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.args(args);
    let run = crate::sessions_cli::run(command, stdin);
    (run.code, run.stdout)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn validate_reports_rule_severity_and_path_and_exits_1_on_errors() {
    let file = data("tool_loop_crash.converse.json");
    let (code, out) =
        verbatim(&["validate", "--model", SONNET4, "--json", file.to_str().unwrap()], None);
    assert_eq!(code, 1, "{out}");
    let out = json(&out);
    assert_eq!(out["valid"], false);
    let first = &out["diagnostics"][0];
    assert_eq!(first["rule"], "tool.result_missing");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["path"], "messages[1].content[1]");
    assert!(first["message"].as_str().unwrap().contains("tool_use` ids were found without"));

    // Text output names the same diagnostic.
    let (code, text) = verbatim(&["validate", "--model", SONNET4, file.to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert!(text.contains("error[tool.result_missing] messages[1].content[1]"), "{text}");
}

#[test]
fn validate_reads_raw_bodies_a_typed_model_cannot_hold() {
    let file = data("two_member_block.converse.json");
    let (code, out) = verbatim(&["validate", "--json", file.to_str().unwrap()], None);
    assert_eq!(code, 1, "{out}");
    let out = json(&out);
    let paths: Vec<(&str, &str)> = out["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["path"].as_str().unwrap()))
        .collect();
    // Both broken blocks are reported, not only the first.
    assert_eq!(
        paths,
        vec![("shape.union", "messages[0].content[0]"), ("shape.union", "messages[1].content[0]")]
    );
}

#[test]
fn validate_exits_0_on_a_valid_body_and_2_on_unusable_input() {
    let file = data("simple_turn.invoke.json");
    let (code, out) = verbatim(
        &["validate", "--api", "invoke", "--model", SONNET4, "--json", file.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(json(&out), serde_json::json!({"valid": true, "diagnostics": []}));
    // The same body read from standard input.
    let body = std::fs::read(&file).unwrap();
    assert_eq!(verbatim(&["validate", "--api", "invoke", "-"], Some(&body)).0, 0);

    assert_eq!(verbatim(&["validate", "-"], Some(b"{not json")).0, 2);
    assert_eq!(verbatim(&["validate", "-"], Some(b"[1, 2]")).0, 2);
    assert_eq!(verbatim(&["validate", "/no/such/file.json"], None).0, 2);
}

/// anthropic-python 2.x writes `"anthropic_version": "2026-10-21"` into InvokeModel bodies:
/// accepted for the models the capability table allows it, refused with Bedrock's text for an
/// earlier one, a warning for a model the table does not know, and never rewritten by repair.
#[test]
fn validate_judges_the_anthropic_version_by_the_model() {
    let file = data("sdk_version.invoke.json");
    let file = file.to_str().unwrap();
    let validate = |model: Option<&str>| {
        let mut args = vec!["validate", "--api", "invoke", "--json", file];
        args.extend(model.iter().flat_map(|m| ["--model", *m]));
        let (code, out) = verbatim(&args, None);
        (code, json(&out))
    };
    for model in ["global.anthropic.claude-opus-4-7", "us.anthropic.claude-sonnet-5"] {
        let (code, out) = validate(Some(model));
        assert_eq!((code, &out), (0, &serde_json::json!({"valid": true, "diagnostics": []})));
    }

    for model in [SONNET4, "global.anthropic.claude-opus-4-6-v1"] {
        let (code, out) = validate(Some(model));
        assert_eq!(code, 1, "{out}");
        let diagnostics = out["diagnostics"].as_array().unwrap();
        assert_eq!(diagnostics.len(), 1, "{out}");
        let found = &diagnostics[0];
        assert_eq!(
            (&found["rule"], &found["severity"], &found["path"]),
            (&"invoke.version".into(), &"error".into(), &"anthropic_version".into())
        );
        let message = found["message"].as_str().unwrap();
        assert!(message.ends_with("Bedrock answers: Invalid API version: 2026-10-21"), "{message}");
    }

    // No model (or one the table does not know): a warning, and the body passes.
    let (code, out) = validate(None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["diagnostics"][0]["rule"], "invoke.version");
    assert_eq!(out["diagnostics"][0]["severity"], "warning");

    // Repair reports the refusal and leaves the version as it was sent.
    let (code, out) = verbatim(&["repair", "--api", "invoke", "--model", SONNET4, file], None);
    assert_eq!(code, 1, "{out}");
    let out = json(&out);
    assert_eq!(out["fixes"], serde_json::json!([]));
    assert_eq!(out["request"]["anthropic_version"], "2026-10-21");
    assert_eq!(out["diagnostics"][0]["rule"], "invoke.version");
}

/// The Messages API: the model is read from the body, the version and betas from
/// `--anthropic-version` and `--beta`; repair prints the body with its model and `stream`
/// and the headers beside it.
#[test]
fn validate_and_repair_read_a_messages_api_body_with_its_headers() {
    let file = data("binding_control.messages.json");
    let file = file.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["validate", "--api", "messages", "--json"];
        args.extend_from_slice(extra);
        args.push(file);
        let (code, out) = verbatim(&args, None);
        (code, json(&out))
    };
    // The control without its beta: refused, at the control's place.
    let (code, out) = run(&["--anthropic-version", "2026-10-21"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["diagnostics"][0]["rule"], "thinking.binding_control");
    assert_eq!(out["diagnostics"][0]["path"], "thinking.block_binding");
    // With it: valid.
    let beta =
        ["--anthropic-version", "2026-10-21", "--beta", "thinking-binding-controls-2026-08-01"];
    let (code, out) = run(&beta);
    assert_eq!((code, &out), (0, &serde_json::json!({"valid": true, "diagnostics": []})));
    // The SDK's version on a model that does not take it (the body's model, overridden).
    let (code, out) = run(&[
        "--model",
        "global.anthropic.claude-opus-4-6-v1",
        "--anthropic-version",
        "2026-10-21",
    ]);
    assert_eq!(code, 1, "{out}");
    let rules: Vec<&str> = out["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"messages.version"), "{out}");

    // Repair adds the beta to the headers and leaves the body as it came.
    let (code, out) =
        verbatim(&["repair", "--api", "messages", "--anthropic-version", "2026-10-21", file], None);
    assert_eq!(code, 0, "{out}");
    let out = json(&out);
    let sent: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(out["request"], sent);
    assert_eq!(out["headers"]["anthropic-beta"], "thinking-binding-controls-2026-08-01");
    assert_eq!(out["headers"]["anthropic-version"], "2026-10-21");

    // Headers belong to the Messages API only.
    let (code, _) = verbatim(&["validate", "--api", "invoke", "--beta", "x", file], None);
    assert_eq!(code, 2);
}

#[test]
fn repair_prints_the_fixed_request_with_its_fixes_and_the_result_validates() {
    let file = data("tool_loop_crash.converse.json");
    let (code, out) = verbatim(&["repair", "--model", SONNET4, file.to_str().unwrap()], None);
    assert_eq!(code, 0, "{out}");
    let out = json(&out);
    assert_eq!(out["diagnostics"], serde_json::json!([]));
    let fix = &out["fixes"][0];
    assert_eq!(fix["rule"], "tool.result_missing");
    assert_eq!(fix["action"]["op"], "insert_block");
    let request = &out["request"];
    let results = &request["messages"][2]["content"];
    assert_eq!(results[0]["toolResult"]["toolUseId"], "tooluse_1");
    assert_eq!(results[1]["text"], "Are you still there?");
    // The thinking went through untouched.
    let original = json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(request["messages"][1], original["messages"][1]);

    let repaired = serde_json::to_vec(request).unwrap();
    assert_eq!(verbatim(&["validate", "--model", SONNET4, "-"], Some(&repaired)).0, 0);

    // What cannot be fixed stays an error, with exit status 1.
    let broken = data("two_member_block.converse.json");
    let (code, out) = verbatim(&["repair", broken.to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert_eq!(json(&out)["diagnostics"][0]["rule"], "shape.union");
}

/// A signature error has three causes, given in the order they are met, each with Bedrock's
/// text for each surface; errors that are not about the request's shape are known too.
#[test]
fn explain_gives_causes_in_order_with_each_surfaces_text() {
    let (code, out) = verbatim(
        &[
            "explain",
            "The model returned the following errors: messages.3.content.0: Invalid signature in thinking block",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let first = out.find("1. error thinking.altered").expect(&out);
    let second = out.find("2. rule thinking.prefix_changed").expect(&out);
    let third = out.find("3. rule thinking.foreign_model").expect(&out);
    assert!(first < second && second < third, "{out}");
    assert!(out.contains("bedrock (InvokeModel and the Messages API): <path>: Invalid `signature` in `thinking` block"), "{out}");
    let (code, out) = verbatim(
        &[
            "explain",
            "--json",
            "ThrottlingException: Too many requests, please wait before trying again.",
        ],
        None,
    );
    assert_eq!(code, 0);
    let out = json(&out);
    assert_eq!(out["causes"][0]["id"], "service.throttling");
    assert_eq!(out["causes"][0]["rule"], Value::Null);
}

#[test]
fn explain_maps_bedrock_errors_to_their_rules() {
    let (code, out) = verbatim(
        &[
            "explain",
            "--json",
            "ValidationException: The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ],
        None,
    );
    assert_eq!(code, 0);
    let out = json(&out);
    assert_eq!(out["causes"][0]["rule"], "tool.config_missing");
    assert!(out["causes"][0]["action"].as_str().unwrap().contains("recorded tool specs"));
    assert_eq!(verbatim(&["explain", "the weather is nice"], None).0, 1);
}

/// The error messages users reported from Bedrock (in the shared recordings) each map to the
/// rule of their category.
#[test]
fn explain_knows_every_reported_error() {
    let dir = match std::env::var_os("VERBATIM_REAL_FIXTURES") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real"),
    };
    let file = dir.join("errors_reported_in_issues.json");
    if !file.is_file() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipping reported errors: {} is absent", file.display());
        }
        assert!(std::env::var_os("VERBATIM_REAL_FIXTURES").is_none(), "{} missing", file.display());
        return;
    }
    let reported = json(&std::fs::read_to_string(&file).unwrap());
    let mut checked = 0;
    for error in reported["errors"].as_array().unwrap() {
        let message = error["message"].as_str().unwrap();
        let (code, out) = verbatim(&["explain", "--json", message], None);
        assert_eq!(code, 0, "no rule for: {message}");
        let first = json(&out)["causes"][0]["id"].as_str().unwrap().to_owned();
        let category = error["category"].as_str().unwrap();
        let expected = match category {
            c if c.starts_with("thinking: final assistant") => "thinking.final_assistant",
            "thinking: blocks in latest assistant message modified" => "thinking.prefix_changed",
            "thinking: missing signature" => "thinking.unsigned",
            "thinking: first block must be thinking" => "thinking.first_block",
            "thinking vs tool_choice" => "tool.choice_forced",
            "thinking budget" => "thinking.budget",
            "role alternation" => "roles.alternate",
            "tool ordering: missing toolResult" => "tool.result_missing",
            "tool config required" => "tool.config_missing",
            c if c.starts_with("tool result") => "tool_result.content",
            "empty text block" => "text.blank",
            c if c.starts_with("schema") || c.starts_with("tagged union") => {
                assert!(
                    first == "shape.unknown_key" || first == "invoke.body",
                    "{category}: {first}"
                );
                checked += 1;
                continue;
            }
            other => panic!("a category this test does not know: {other}"),
        };
        assert_eq!(first, expected, "{category}: {message}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} reported errors");
}

/// A `verbatim emulator` process, killed when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_emulator_command_serves_with_the_given_key_and_script_until_stopped() {
    use std::io::BufRead;
    use verbatim_transport::{Api, Auth, Call, HttpConfig, HttpTransport, RetryConfig, Transport};

    let script = data("emulator_script.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["emulator", "--port", "0", "--first-event-millis", "300", "--script"])
        .arg(&script)
        .env("VERBATIM_EMULATOR_API_KEY", "a-test-key")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the verbatim binary runs");
    let stdout = child.stdout.take().unwrap();
    let served = Served(child);
    let lines: Vec<String> =
        std::io::BufReader::new(stdout).lines().take(4).map(Result::unwrap).collect();
    let url = lines[0].strip_prefix("verbatim emulator listening on ").unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(lines.iter().all(|l| !l.contains("a-test-key")), "a key given is never printed");

    let transport = |key: &str| {
        let config = HttpConfig::new("us-east-1", Auth::api_key(key))
            .with_endpoint_url(&url)
            .with_retry(RetryConfig::disabled());
        HttpTransport::new(config).unwrap()
    };
    let body = serde_json::json!({"messages": [{"role": "user", "content": [{"text": "Weather?"}]}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}]}});
    let call = || Call::new(Api::Converse, SONNET4, body.to_string());
    let refused = transport("another-key").send(call()).await.unwrap_err();
    assert_eq!(refused.api().unwrap().status, 403);
    // The script's one fault, then its behaviour for this model: two tool calls at once.
    let throttled = transport("a-test-key").send(call()).await.unwrap_err();
    assert_eq!(throttled.api().unwrap().status, 429);
    let started = std::time::Instant::now();
    let reply = transport("a-test-key").send(call()).await.unwrap();
    let waited = started.elapsed();
    let reply = json(std::str::from_utf8(&reply.body).unwrap());
    let content = reply["output"]["message"]["content"].as_array().unwrap();
    assert_eq!(content.iter().filter(|b| b.get("toolUse").is_some()).count(), 2, "{reply}");
    // `--first-event-millis`: the model takes its time, the answer comes no sooner.
    assert!(waited >= std::time::Duration::from_millis(300), "answered after {waited:?}");
    drop(served);

    let (code, _) = verbatim(&["emulator", "--script", "no/such/script.json"], None);
    assert_eq!(code, 2, "a script that cannot be read is unusable input");
}

/// `--version` is the crate's, and `completions` prints a script for each shell that names
/// the subcommands.
#[test]
fn version_and_completions() {
    let (code, out) = verbatim(&["--version"], None);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("verbatim {}", env!("CARGO_PKG_VERSION")));
    assert_ne!(env!("CARGO_PKG_VERSION"), "0.0.0");
    for shell in ["bash", "zsh", "fish"] {
        let (code, script) = verbatim(&["completions", shell], None);
        assert_eq!(code, 0, "{shell}");
        for word in ["validate", "sessions", "chat", "--api"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    assert_eq!(verbatim(&["completions", "cmd.exe"], None).0, 2);
}

/// `demo --resume` with something that is no session id says so before starting anything:
/// no emulator, no store.
#[test]
fn demo_refuses_a_bad_resume_id_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["demo", "--resume", "nope", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--resume nope"), "{said}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("emulator"));
    assert!(!data.exists(), "a store was made");
}

/// `explain-cache` names where two consecutive requests stop sharing their cached prefix and
/// what each cache point gets: a conversation that grows at the end reads its tools and system
/// from the cache; the same tools reordered write everything again.
#[test]
fn explain_cache_says_where_and_why_the_cache_misses() {
    let first = data("cache_turn1.converse.json");
    let (first, grown, reordered) = (
        first.to_str().unwrap().to_owned(),
        data("cache_turn2.converse.json").to_str().unwrap().to_owned(),
        data("cache_turn2_tools_reordered.converse.json").to_str().unwrap().to_owned(),
    );
    let (code, out) = verbatim(&["explain-cache", "--json", &first, &grown], None);
    assert_eq!(code, 0, "{out}");
    let out = json(&out);
    assert_eq!(out["divergence"], Value::Null);
    let reads: Vec<bool> = out["cache_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["read"].as_bool().unwrap())
        .collect();
    assert_eq!(reads, [true, true, false]);

    let (code, out) = verbatim(&["explain-cache", &first, &reordered], None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("The prefixes part at tools[0]: the same tools in another order"),
        "{out}"
    );
    assert!(out.contains("cache point system[1]: written (again)"), "{out}");
    assert_eq!(verbatim(&["explain-cache", &first, "/no/such.json"], None).0, 2);
}
