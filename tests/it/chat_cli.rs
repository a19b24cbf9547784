//! `verbatim chat` (and `demo`) run as a person runs it: against an emulator on 127.0.0.1:0,
//! each test with its own sled store, its input piped in.

use std::process::Command;

use verbatim_emulator::{Emulator, EmulatorConfig, Fault, StreamException};

use crate::sessions_cli::{Run, run};

/// An emulator that takes only `key` as its API key.
async fn emulator_with_key(key: &str) -> Emulator {
    let config = EmulatorConfig { api_key: Some(key.to_owned()), ..EmulatorConfig::default() };
    Emulator::start(config).await.unwrap()
}

/// `verbatim chat --data DIR --emulator-url URL ARGS...` with `input` typed, and the
/// environment variables `env` (none of the machine's verbatim or AWS settings).
async fn chat(
    data: &std::path::Path,
    url: &str,
    args: &[&str],
    env: &[(&str, &str)],
    input: &str,
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.arg("chat").arg("--data").arg(data).args(["--emulator-url", url]).args(args);
    for variable in ["VERBATIM_EMULATOR_API_KEY", "VERBATIM_STORE", "VERBATIM_DATA", "RUST_LOG"] {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let input = input.as_bytes().to_vec();
    // The emulator runs on this test's runtime: the child is waited for off it.
    tokio::task::spawn_blocking(move || run(command, Some(&input))).await.unwrap()
}

#[tokio::test]
async fn chat_reaches_an_emulator_started_with_its_own_key() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let url = emulator.url();

    let by_flag =
        chat(&dir.path().join("a"), &url, &["--api-key", "my-key"], &[], "Hello\n/quit\n").await;
    assert_eq!(by_flag.code, 0, "{by_flag:?}");
    assert!(by_flag.stdout.contains("Hello! You said: Hello"), "{by_flag:?}");
    // At the end: the tokens, and what they cost at list prices.
    assert!(by_flag.stdout.contains("Cost: $0.0"), "{by_flag:?}");

    let by_env = chat(
        &dir.path().join("b"),
        &url,
        &[],
        &[("VERBATIM_EMULATOR_API_KEY", "my-key")],
        "Again\n/quit\n",
    )
    .await;
    assert_eq!(by_env.code, 0, "{by_env:?}");
    assert!(by_env.stdout.contains("Hello! You said: Again"), "{by_env:?}");

    // A wrong key: the refusal says which key is wrong and how to give the right one, and
    // never shows the key sent.
    let wrong =
        chat(&dir.path().join("c"), &url, &["--api-key", "not-my-key"], &[], "Hi\n/quit\n").await;
    let said = format!("{}{}", wrong.stdout, wrong.stderr);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(said.contains("the emulator refused the API key"), "{wrong:?}");
    assert!(said.contains("--api-key KEY or VERBATIM_EMULATOR_API_KEY"), "{wrong:?}");
    assert!(!said.contains("not-my-key") && !said.contains("my-key"), "a key was printed: {said}");
}

/// `chat --api messages` talks to `/anthropic/v1/messages` on either host, and the session
/// continues on another surface.
#[tokio::test]
async fn chat_runs_on_the_messages_api_on_either_host_and_moves_to_another_surface() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let url = emulator.url();
    let data = dir.path().join("store");
    let key = ["--api-key", "my-key"];
    for (host, input) in [("runtime", "Hello\n/quit\n"), ("mantle", "Again\n/quit\n")] {
        let args = [&key[..], &["--api", "messages", "--host", host]].concat();
        let run = chat(&dir.path().join(host), &url, &args, &[], input).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.contains("Hello! You said: "), "{run:?}");
    }
    let operations: Vec<String> = emulator.received().iter().map(|r| r.operation.clone()).collect();
    assert_eq!(operations, ["messages", "messages"]);

    // A session started on the Messages API continues on Converse.
    let args = [&key[..], &["--api", "messages"]].concat();
    let first = chat(&data, &url, &args, &[], "One\n/quit\n").await;
    assert_eq!(first.code, 0, "{first:?}");
    let list = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["sessions", "list", "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = listed[0]["id"].as_str().unwrap_or_else(|| panic!("{listed}")).to_owned();
    let args = [&key[..], &["--api", "converse", "--session", &id]].concat();
    let second = chat(&data, &url, &args, &[], "Two\n/quit\n").await;
    assert_eq!(second.code, 0, "{second:?}");
    assert!(second.stdout.contains("Hello! You said: Two"), "{second:?}");
    let last = emulator.received().last().map(|r| r.operation.clone());
    assert_eq!(last.as_deref(), Some("converse-stream"));

    // Mantle serves only the Messages API.
    let wrong = chat(&data, &url, &["--host", "mantle"], &[], "").await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
}

/// A chat left without typing a message stores nothing; the session is made with the first
/// message (or the first setting changed).
#[tokio::test]
async fn a_chat_left_without_a_message_makes_no_session() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let (url, data) = (emulator.url(), dir.path().join("store"));
    let key = ["--api-key", "my-key"];
    let run = chat(&data, &url, &key, &[], "/usage\n/model\n/quit\n").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("A new session starts with your first message."), "{run:?}");
    assert!(run.stdout.contains("No session yet"), "{run:?}");
    assert!(run.stdout.contains("model: us.anthropic.claude"), "{run:?}");
    assert!(run.stdout.contains("no session was made"), "{run:?}");
    let listed = |data: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_verbatim"))
            .args(["sessions", "list", "--json", "--data"])
            .arg(data)
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .map(|v| v.as_array().map_or(0, Vec::len))
            .unwrap_or(0)
    };
    assert_eq!(listed(&data), 0);
    assert!(emulator.received().is_empty());
    // The first message makes it, and says so.
    let run = chat(&data, &url, &key, &[], "Hi\n/quit\n").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("continue it later with --session"), "{run:?}");
    assert_eq!(listed(&data), 1);
    // Each model call's end is shown only when asked.
    assert!(!run.stdout.contains("[step "), "{run:?}");
    let verbose = [&key[..], &["--verbose"]].concat();
    let run = chat(&data, &url, &verbose, &[], "/help\n/model\nAgain\n/quit\n").await;
    assert!(run.stdout.contains("[step 1] stop reason: end_turn"), "{run:?}");
    // `/help` lists the commands; `/model` alone says which model the session talks to.
    assert!(run.stdout.contains("/usage    "), "{run:?}");
    assert!(run.stdout.contains("model: us.anthropic.claude"), "{run:?}");
}

/// `chat --message TEXT --json` sends one message and prints one JSON object, nothing else,
/// on standard output; `--message` alone prints the reply as the chat does.
#[tokio::test]
async fn chat_sends_one_message_for_a_script() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let (url, data) = (emulator.url(), dir.path().join("store"));
    let args = ["--api-key", "my-key", "--message", "Hi there", "--json"];
    let run = chat(&data, &url, &args, &[], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let out: serde_json::Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {:?}", run.stdout));
    assert_eq!(out["text"], "Hello! You said: Hi there");
    assert_eq!(out["stop_reason"], "end_turn");
    assert_eq!(out["complete"], true);
    assert!(out["usage"]["output_tokens"].as_u64().unwrap() > 0, "{out}");
    assert!(out["session_cost_usd"].as_f64().unwrap() > 0.0, "{out}");
    assert!(run.stderr.contains("Session "), "{run:?}");

    let run = chat(&data, &url, &["--api-key", "my-key", "--message", "Again"], &[], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Hello! You said: Again"), "{run:?}");
    assert!(!run.stdout.contains("Type a message"), "no invitation to type: {run:?}");
    // --json needs --message.
    assert_eq!(chat(&data, &url, &["--json"], &[], "").await.code, 2);
}

/// A turn whose stream breaks after some text: the chat says the text shown was not kept,
/// and `/retry` answers the stored input, which is never merged with the next one.
#[tokio::test]
async fn a_broken_turn_says_what_was_lost_and_retry_answers_the_stored_input() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let (url, data) = (emulator.url(), dir.path().join("store"));
    // The stream breaks after its third event, past the transport's retries (a model stream
    // error is not retried once events went out).
    emulator
        .inject(Fault::StreamException { after: 3, exception: StreamException::ModelStreamError });
    let input = "First try\n/retry\nSecond\n/quit\n";
    let run = chat(&data, &url, &["--api-key", "my-key"], &[], input).await;
    assert!(run.stdout.contains("was cut off: it was not kept"), "{run:?}");
    assert!(run.stdout.contains("/retry sends it again"), "{run:?}");
    assert!(run.stdout.contains("Hello! You said: First try"), "{run:?}");
    assert!(run.stdout.contains("Hello! You said: Second"), "{run:?}");
    assert!(!run.stdout.contains("First try Second") && !run.stdout.contains("First try\nSecond"));
}

#[tokio::test]
async fn the_demo_reaches_an_emulator_started_with_its_own_key() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let demo = |key: &'static str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        command.arg("demo").arg("--data").arg(dir.path().join(key));
        command.args(["--endpoint-url", &emulator.url()]);
        command.env("VERBATIM_EMULATOR_API_KEY", key);
        tokio::task::spawn_blocking(move || run(command, None))
    };
    let done = demo("my-key").await.unwrap();
    assert_eq!(done.code, 0, "{done:?}");
    assert!(done.stdout.contains("-- Finished after"), "{done:?}");
    let refused = demo("another-key").await.unwrap();
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("HTTP 403"), "{refused:?}");
}

/// An emulator that refuses the next two requests with the same validation error naming
/// `messages.1`: a history refused twice, which the engine calls poisoned.
async fn refusing_twice() -> Emulator {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    for _ in 0..2 {
        emulator
            .inject(Fault::StreamException { after: 0, exception: StreamException::Validation });
    }
    emulator
}

#[tokio::test]
async fn chat_exits_non_zero_after_a_failed_turn_and_stops_on_a_poisoned_session() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = refusing_twice().await;
    let url = emulator.url();
    let poisoned = chat(dir.path(), &url, &[], &[], "Hello\nNever sent\n/quit\n").await;
    assert_eq!(poisoned.code, 1, "{poisoned:?}");
    assert!(poisoned.stdout.contains("refused this session's history twice"), "{poisoned:?}");
    assert!(poisoned.stderr.contains("is poisoned: every turn on it would be refused"));
    assert!(!poisoned.stdout.contains("Never sent"), "the chat stopped: {poisoned:?}");
    assert_eq!(emulator.received().len(), 2, "nothing sent after the second refusal");

    // A failure the chat goes on after (a throttled call, no retries left) still ends in exit
    // status 1; a chat with none ends in 0.
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    for _ in 0..3 {
        emulator.inject(Fault::Throttle);
    }
    let data = dir.path().join("throttled");
    let throttled = chat(&data, &emulator.url(), &[], &[], "Hello\n/quit\n").await;
    assert_eq!(throttled.code, 1, "{throttled:?}");
    assert!(throttled.stdout.contains("error: ThrottlingException"), "{throttled:?}");
    assert!(throttled.stderr.contains("1 turn failed"), "{throttled:?}");
    let fine = chat(&data, &emulator.url(), &[], &[], "Again\n/quit\n").await;
    assert_eq!(fine.code, 0, "{fine:?}");
}

#[tokio::test]
async fn the_poisoned_session_hint_names_the_store_and_runs_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    // A directory a shell would split: the hint quotes it.
    let data = dir.path().join("my data");
    let emulator = refusing_twice().await;
    let poisoned = chat(&data, &emulator.url(), &[], &[], "Hello\n/quit\n").await;
    assert_eq!(poisoned.code, 1, "{poisoned:?}");
    let prefix = "continue from the last accepted turn with: ";
    let hint = poisoned.stdout.lines().find_map(|l| l.strip_prefix(prefix));
    let hint = hint.unwrap_or_else(|| panic!("no hint: {poisoned:?}"));
    let quoted = format!("'{}'", data.display());
    assert!(hint.ends_with(&format!(" --data {quoted}")), "{hint}");

    // Run by a shell as printed (the binary in place of `verbatim`), it forks the session.
    let command = hint.strip_prefix("verbatim ").unwrap();
    let binary = env!("CARGO_BIN_EXE_verbatim");
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(format!("'{binary}' {command}"));
    shell.env_remove("VERBATIM_DATA").env_remove("VERBATIM_STORE");
    let forked = tokio::task::spawn_blocking(move || run(shell, None)).await.unwrap();
    assert_eq!(forked.code, 0, "{forked:?}");
    assert_eq!(forked.stdout.trim().len(), 36, "the new session's id: {forked:?}");
}

/// The `thinking` object of each request the emulator received (Converse:
/// `additionalModelRequestFields.thinking`), `null` when none was sent.
fn thinking_sent(emulator: &Emulator) -> Vec<serde_json::Value> {
    let body = |r: &verbatim_emulator::Received| -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    };
    emulator
        .received()
        .iter()
        .map(|r| body(r)["additionalModelRequestFields"]["thinking"].clone())
        .collect()
}

#[tokio::test]
async fn chat_says_what_thinking_is_sent_and_sends_what_it_said() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let url = emulator.url();
    let dir = tempfile::tempdir().unwrap();

    // A budget under the minimum is refused before anything is stored or sent.
    let data = dir.path().join("refused");
    let refused = chat(&data, &url, &["--thinking", "500"], &[], "Hello\n/quit\n").await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--thinking: thinking enabled, budget 500 tokens cannot be sent to us.anthropic.claude-sonnet-4-20250514-v1:0: budget_tokens is 500; the minimum is 1024"), "{refused:?}");
    assert!(!data.exists(), "no store was created");
    assert!(emulator.received().is_empty());

    // Adaptive on Claude Sonnet 4 (manual thinking only): said, then sent, as enabled/1024.
    // On Opus 4.6, which takes adaptive, it is sent as asked.
    let input = "/thinking adaptive\nHello\n/thinking 500\n/model global.anthropic.claude-opus-4-6-v1\nAgain\n/quit\n";
    let out = chat(&dir.path().join("data"), &url, &[], &[], input).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("thinking: adaptive asked, but enabled, budget 1024 tokens is sent: claude-sonnet-4 does not support adaptive thinking; it takes `enabled` with budget_tokens (from the next turn)"),
        "{out:?}"
    );
    assert!(out.stdout.contains("error: thinking enabled, budget 500 tokens cannot be sent to us.anthropic.claude-sonnet-4-20250514-v1:0: budget_tokens is 500; the minimum is 1024; thinking unchanged"), "{out:?}");
    assert!(!out.stdout.contains("thinking: adaptive (from"), "{out:?}");
    assert_eq!(
        thinking_sent(&emulator),
        [
            serde_json::json!({"type": "enabled", "budget_tokens": 1024}),
            serde_json::json!({"type": "adaptive"})
        ]
    );
}

/// Anthropic's `thinking` is Claude's: `--thinking` on DeepSeek R1, which always reasons and
/// takes no setting, is refused before anything is stored or sent; on gpt-oss it is sent as
/// gpt-oss's own `reasoning_effort`, and the chat says so.
#[tokio::test]
async fn chat_thinking_on_other_families_is_their_own_setting_or_refused_before_sending() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let url = emulator.url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("deepseek");
    let args = ["--model", "us.deepseek.r1-v1:0", "--thinking", "2048"];
    let refused = chat(&data, &url, &args, &[], "Hello\n/quit\n").await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("always reasons and takes no reasoning setting"),
        "{refused:?}"
    );
    assert!(!data.exists(), "no store was created");
    assert!(emulator.received().is_empty());

    let args = ["--model", "openai.gpt-oss-120b-1:0", "--thinking", "2048"];
    let out = chat(&dir.path().join("gpt-oss"), &url, &args, &[], "Hello\n/quit\n").await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("reasoning_effort \"low\" is sent"), "{out:?}");
    let [request] = &emulator.received()[..] else { panic!("{:?}", emulator.received()) };
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body["additionalModelRequestFields"],
        serde_json::json!({"reasoning_effort": "low"})
    );
    assert!(out.stdout.contains("Hello! You said: Hello"), "{out:?}");
}

/// On a terminal the chat is a line editor: a prompt, the Up arrow brings back the last line
/// (never sent as `^[[A`), Ctrl-C clears a line without sending it, Ctrl-D leaves with exit 0.
/// Typed at a pseudo-terminal by `tests/python/chat_pty.py` (Python's standard library only).
#[tokio::test]
async fn chat_on_a_terminal_has_a_prompt_history_and_the_usual_keys() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/chat_pty.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(env!("CARGO_BIN_EXE_verbatim")).arg(&data);
    command.args([emulator.url().as_str(), "my-key"]);
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(shown.contains("line cleared"), "{shown}");

    let listed = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["sessions", "list", "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let shown = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["sessions", "show", &id, "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let session: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let typed: Vec<String> = session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["message"])
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"][0]["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(typed, ["hello there", "hello there"], "{session}");
}

/// `/attach FILE` sends an image or a document with the next message, inline and byte for
/// byte; a file Bedrock would refuse is refused before anything is stored.
#[tokio::test]
async fn attach_sends_a_file_with_the_next_message() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let notes = dir.path().join("meeting notes.v2.md");
    std::fs::write(&notes, "# Agenda\n- budget\n").unwrap();
    let unknown = dir.path().join("tool.exe");
    std::fs::write(&unknown, b"MZ").unwrap();
    let input = format!(
        "/attach {}\n/attach {}\n/attach\nwhat is in it?\nand now?\n/quit\n",
        unknown.display(),
        notes.display()
    );
    let run = chat(&data, &emulator.url(), &["--api-key", "my-key"], &[], &input).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("neither an image"), "{run:?}");
    assert!(run.stdout.contains("(document); it goes with your next message"), "{run:?}");
    assert!(run.stdout.contains("You said: what is in it?"), "{run:?}");

    let bodies: Vec<serde_json::Value> =
        emulator.received().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    let first = &bodies[bodies.len() - 2]["messages"][0]["content"];
    assert_eq!(first[0]["document"]["name"], "meeting notes-v2", "{first}");
    assert_eq!(first[0]["document"]["format"], "md");
    assert_eq!(first[0]["document"]["source"]["bytes"], "IyBBZ2VuZGEKLSBidWRnZXQK");
    assert_eq!(first[1]["text"], "what is in it?");
    // Sent once: the next message goes without it (the history still holds it).
    let last = &bodies[bodies.len() - 1]["messages"];
    let last = last.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["content"], serde_json::json!([{"text": "and now?"}]), "{last}");
}

/// `--caching`: a chat plans cache points unless told otherwise, and a mode given is recorded
/// with the session, which keeps it when continued without one.
#[tokio::test]
async fn chat_plans_cache_points_and_records_the_mode_it_was_given() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let (url, data) = (emulator.url(), dir.path().join("store"));
    // Long enough for a cached prefix (Claude Sonnet 4: 1,024 tokens at least).
    let long = "Please read this carefully. ".repeat(300);
    let points = |emulator: &Emulator| {
        let received = emulator.received();
        let body = String::from_utf8_lossy(&received.last().unwrap().body).into_owned();
        body.matches("\"cachePoint\"").count()
    };
    let run = chat(&data, &url, &["--api-key", "my-key", "--message", &long], &[], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(points(&emulator) >= 1, "planned by default");

    let args = ["--api-key", "my-key", "--caching", "off", "--message", &long, "--json"];
    let run = chat(&data.with_extension("off"), &url, &args, &[], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(points(&emulator), 0, "--caching off sends none");
    let out: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let id = out["session"].as_str().unwrap().to_owned();

    // Continued without --caching: still off, as recorded.
    let args = ["--api-key", "my-key", "--session", &id, "--message", &long];
    let run = chat(&data.with_extension("off"), &url, &args, &[], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(points(&emulator), 0, "the session's recorded mode");
    let mut show = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    show.args(["sessions", "show", &id, "--data"]).arg(data.with_extension("off"));
    let shown =
        tokio::task::spawn_blocking(move || crate::sessions_cli::run(show, None)).await.unwrap();
    assert!(shown.stdout.contains("[config] caching set to off"), "{shown:?}");
}
