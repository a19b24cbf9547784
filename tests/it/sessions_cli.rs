//! `verbatim sessions` (list, show, export, import, fork, rewind, rm) run as a user runs it,
//! each test against its own sled store in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const SONNET4: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
/// The session id in `sessions_export.json`.
const EXPORTED_ID: &str = "6f1c2a9e-8d3b-4c5e-9a7f-0b1c2d3e4f50";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data").join(name)
}

fn fixture(name: &str) -> Value {
    json(&std::fs::read_to_string(data(name)).unwrap())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// What one run of the binary gave.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts success and returns standard output.
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "{self:?}");
        self.stdout
    }

    /// Asserts success and returns standard output as JSON.
    fn json(self) -> Value {
        json(&self.ok())
    }

    /// Asserts success and that standard output is exactly one session id on its own line.
    fn id(self) -> String {
        let out = self.ok();
        let id = out.strip_suffix('\n').unwrap_or_else(|| panic!("no newline: {out:?}"));
        assert_uuid(id);
        id.to_owned()
    }
}

fn assert_uuid(id: &str) {
    let parts: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12], "not a session id alone: {id:?}");
    assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "not a session id: {id:?}");
}

/// A store in a temporary directory (`data` inside it, created by the first command that
/// opens it).
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        Store { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `verbatim sessions --data DIR ARGS...` (with `stdin` piped in when given).
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        command.arg("sessions").arg("--data").arg(self.path()).args(args);
        command.env_remove("VERBATIM_STORE").env_remove("VERBATIM_DATA");
        run(command, stdin)
    }

    fn sessions(&self, args: &[&str]) -> Run {
        self.run(args, None)
    }

    fn import(&self, args: &[&str]) -> String {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        self.sessions(&all).id()
    }

    fn list(&self) -> Vec<Value> {
        self.sessions(&["list", "--json"]).json().as_array().unwrap().clone()
    }

    fn show(&self, id: &str) -> Value {
        self.sessions(&["show", id, "--json"]).json()
    }
}

/// Runs `command` (with `stdin` piped in when given) to its end.
pub(crate) fn run(mut command: Command, stdin: Option<&[u8]>) -> Run {
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the verbatim binary runs");
    if let Some(input) = stdin {
        // A command that refuses its arguments exits without reading its input: the pipe
        // is then closed, and what it answered is what the test reads.
        match child.stdin.take().unwrap().write_all(input) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            written => written.unwrap(),
        }
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("an exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn path(name: &str) -> String {
    data(name).to_str().unwrap().to_owned()
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|s| s["id"].as_str().unwrap()).collect()
}

#[test]
fn import_prints_only_the_new_id_for_each_accepted_shape() {
    let store = Store::new();

    // A Converse body naming its model in `modelId` (as boto3's keywords do).
    let converse = store.import(&[&path("sessions_weather.converse.json")]);
    let info = &store.show(&converse)["info"];
    assert_eq!(info["model"], SONNET4);
    assert_eq!(info["version"], 4);

    // An Anthropic Messages body names no model: --model is asked for, then used.
    let anthropic = path("sessions_weather.anthropic.json");
    let refused = store.sessions(&["import", &anthropic]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--model"), "{}", refused.stderr);
    assert!(refused.stdout.is_empty());
    let anthropic = store.import(&["--model", "anthropic.claude-3-7-sonnet", &anthropic]);
    assert_eq!(store.show(&anthropic)["info"]["model"], "anthropic.claude-3-7-sonnet");

    // A bare messages array.
    let bare = store.import(&["--model", SONNET4, &path("sessions_messages.converse.json")]);
    assert_eq!(store.show(&bare)["messages"].as_array().unwrap().len(), 2);

    // An Anthropic body on standard input, with string content (detected as Anthropic).
    let body = std::fs::read(data("simple_turn.invoke.json")).unwrap();
    let piped = store.run(&["import", "--model", SONNET4, "-"], Some(&body)).id();
    let shown = store.show(&piped);
    assert_eq!(shown["messages"][0]["message"]["content"][0]["text"], "Hello");
    assert_eq!(shown["info"]["metadata"]["import"]["format"], "anthropic");

    // A verbatim export document keeps its id.
    let exported = store.import(&[&path("sessions_export.json")]);
    assert_eq!(exported, EXPORTED_ID);

    let listed = store.list();
    let mut listed: Vec<&str> = ids(&listed);
    let mut imported = vec![&*converse, &*anthropic, &*bare, &*piped, EXPORTED_ID];
    listed.sort_unstable();
    imported.sort_unstable();
    assert_eq!(listed, imported);

    // Export documents as JSON lines: one id per line, in order.
    let other = Store::new();
    let out = other.sessions(&["import", &path("sessions_two_exports.jsonl")]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [EXPORTED_ID, "0a6b7c8d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"], "{out}");
}

/// Imports a body and exports it in the same dialect: the messages (and here the whole body,
/// the model id aside) come back as they went in.
fn assert_round_trip(file: &str, import_args: &[&str], format: &str) {
    let store = Store::new();
    let mut args = import_args.to_vec();
    let file = path(file);
    args.push(&file);
    let id = store.import(&args);
    let exported = store.sessions(&["export", &id, "--format", format]).json();
    let mut input: Value = json(&std::fs::read_to_string(&file).unwrap());
    input.as_object_mut().unwrap().shift_remove("modelId");
    assert_eq!(exported["messages"], input["messages"]);
    assert_eq!(exported, input);
}

#[test]
fn export_gives_back_the_messages_of_an_imported_converse_body() {
    assert_round_trip("sessions_weather.converse.json", &[], "converse");
    assert_round_trip("sessions_weather.converse.json", &["--format", "converse"], "converse");
}

#[test]
fn export_gives_back_the_messages_of_an_imported_anthropic_body() {
    assert_round_trip("sessions_weather.anthropic.json", &["--model", SONNET4], "anthropic");
    let explicit = ["--model", SONNET4, "--format", "anthropic"];
    assert_round_trip("sessions_weather.anthropic.json", &explicit, "anthropic");
}

#[test]
fn export_writes_the_configuration_and_refuses_to_re_encode_redacted_thinking() {
    let store = Store::new();
    let id = store.import(&[&path("sessions_weather.converse.json")]);
    // Default format: Converse, with system, tools and thinking from the session.
    let body = store.sessions(&["export", &id]).json();
    assert_eq!(body["system"][0]["text"], "You answer weather questions briefly.");
    assert_eq!(body["toolConfig"]["tools"][0]["toolSpec"]["name"], "get_weather");
    assert_eq!(body["additionalModelRequestFields"]["thinking"]["budget_tokens"], 2048);

    // Converse's redacted blob cannot be written as Anthropic without re-encoding it.
    let refused = store.sessions(&["export", &id, "--format", "anthropic"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("messages[1].content[1]"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--format converse"), "{}", refused.stderr);

    // A session that never knew max_tokens exports an Anthropic body with the one the engine
    // sends by default (the field is required there), a Converse body without one.
    let bare = store.import(&["--model", SONNET4, &path("sessions_messages.converse.json")]);
    let body = store.sessions(&["export", &bare, "--format", "anthropic"]).json();
    assert_eq!(body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(body["max_tokens"], verbatim::Defaults::default().max_tokens, "{body}");
    let body = store.sessions(&["export", &bare, "--format", "converse"]).json();
    assert!(body.get("inferenceConfig").is_none(), "{body}");
    assert_eq!(body["messages"][1]["content"][0]["text"], "Hello.");
}

#[test]
fn export_full_keeps_provenance_records_usage_and_metadata() {
    let store = Store::new();
    let fixture = fixture("sessions_export.json");
    store.import(&[&path("sessions_export.json")]);
    let document = store.sessions(&["export", EXPORTED_ID, "--full"]).json();
    assert_eq!(document["verbatim_export"], 1);
    assert_eq!(document["dialect"], "converse");
    assert_eq!(document["records"], fixture["records"]);
    let session = &document["session"];
    assert_eq!(session["metadata"], fixture["session"]["metadata"]);
    assert_eq!(session["tags"], fixture["session"]["tags"]);
    assert_eq!(session["origin"]["kind"], "import");
    assert_eq!(document["records"][1]["provenance"]["usage"]["input_tokens"], 120);

    // What --full prints imports into another store unchanged.
    let other = Store::new();
    let line = serde_json::to_vec(&document).unwrap();
    assert_eq!(other.run(&["import", "-"], Some(&line)).id(), EXPORTED_ID);
    let again = other.sessions(&["export", EXPORTED_ID, "--full"]).json();
    assert_eq!(again, document);

    // Into the store it came from: refused as it is (the id is taken), taken with --new-id,
    // with --tag added to the document's tags; a re-run finds the same copy.
    let refused = store.run(&["import", "-"], Some(&line));
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("already exists"), "{refused:?}");
    let copy = store.run(&["import", "--new-id", "--tag", "copy", "-"], Some(&line)).id();
    assert_ne!(copy, EXPORTED_ID);
    let rerun = store.run(&["import", "--new-id", "--tag", "copy", "-"], Some(&line)).id();
    assert_eq!(rerun, copy, "a re-run stores nothing twice");
    let copied = store.sessions(&["export", &copy, "--full"]).json();
    assert_eq!(copied["records"], document["records"], "the records, byte for byte");
    let mut tags = fixture["session"]["tags"].as_array().unwrap().clone();
    tags.push("copy".into());
    assert_eq!(copied["session"]["tags"], Value::Array(tags));
    assert_eq!(store.list().len(), 2);
}

#[test]
fn list_orders_newest_first_and_filters_by_tag_and_limit() {
    let store = Store::new();
    drop(verbatim::SledStore::open(store.path()).unwrap());
    assert_eq!(store.list(), Vec::<Value>::new(), "an empty store");
    let first = store.import(&["--tag", "weather", &path("sessions_weather.converse.json")]);
    let second = store.import(&[
        "--model",
        "anthropic.claude-3-5-haiku",
        "--tag",
        "greeting",
        "--tag",
        "short",
        &path("sessions_messages.converse.json"),
    ]);

    assert_eq!(ids(&store.list()), [&*second, &*first]);
    let tagged = store.sessions(&["list", "--tag", "weather", "--json"]).json();
    assert_eq!(ids(tagged.as_array().unwrap()), [&*first]);
    let limited = store.sessions(&["list", "--limit", "1", "--json"]).json();
    assert_eq!(ids(limited.as_array().unwrap()), [&*second]);
    let listed = store.list();
    assert_eq!(listed[0]["model"], "anthropic.claude-3-5-haiku");
    assert_eq!(listed[0]["version"], 2);
    assert_eq!(listed[0]["tags"], serde_json::json!(["greeting", "short"]));
    assert!(listed[0]["updated_at"].is_string());

    // The text table: a header, then one line per session, newest first.
    let text = store.sessions(&["list"]).ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("MODEL"), "{text}");
    assert!(lines[1].starts_with(&second) && lines[1].contains("anthropic.claude-3-5-haiku"));
    assert!(lines[1].contains("  greeting,short  ") && lines[1].ends_with("import"), "{text}");
    assert!(lines[2].starts_with(&first) && lines[2].contains(SONNET4), "{text}");
    assert!(lines[2].contains("  weather  ") && lines[2].ends_with("import"), "{text}");

    // The store options may also follow the subcommand.
    let mut after = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    after.args(["sessions", "list", "--json", "--data"]).arg(store.path());
    after.env_remove("VERBATIM_STORE").env_remove("VERBATIM_DATA");
    assert_eq!(ids(run(after, None).json().as_array().unwrap()), [&*second, &*first]);
}

#[test]
fn show_prints_the_transcript_and_usage_as_text_and_json() {
    let store = Store::new();
    store.import(&[&path("sessions_export.json")]);

    let text = store.sessions(&["show", EXPORTED_ID]).ok();
    for expected in [
        &*format!("session {EXPORTED_ID}"),
        "tags: demo",
        "system: You answer weather questions briefly.",
        "tools: get_weather",
        "thinking: enabled, budget 2048 tokens",
        "#1 user\nWhat is the weather in Lyon?\n",
        "#2 assistant (us.anthropic.claude-sonnet-4-20250514-v1:0 via converse, tool_use)\n",
        "thinking: Lyon: call get_weather.\n",
        "[redacted thinking, 12 bytes]\n",
        "tool call get_weather (tooluse_7): {\"city\":\"Lyon\"}\n",
        "#3 [tool call get_weather (tooluse_7)] started",
        "#4 user\ntool result for tooluse_7 (success): 21 °C, sunny\n",
        "#5 assistant",
        "21 °C and sunny in Lyon.",
        "usage: input 320 tokens, output 75 tokens, cache read 180, cache write 10",
        // Sonnet 4 at $3/$15 per million, a cache read at 0.1 and a write at 1.25 times the
        // input price: 0.00096 + 0.001125 + 0.000054 + 0.0000375; 180 of 510 input read.
        "cost: $0.0022 at list prices, cache hit rate 35%",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }

    let shown = store.show(EXPORTED_ID);
    assert_eq!(shown["info"]["id"], EXPORTED_ID);
    assert_eq!(shown["config"]["model"], SONNET4);
    let seqs: Vec<u64> =
        shown["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 4, 5]);
    let usage = &shown["usage"];
    assert_eq!(usage["input_tokens"], 320);
    assert_eq!(usage["output_tokens"], 75);
    assert_eq!(usage["cache_read_input_tokens"], 180);
    assert_eq!(usage["cache_write_input_tokens"], 10);
    assert_eq!(shown["messages"][1]["provenance"]["usage"]["output_tokens"], 45);
    assert_eq!(shown["messages"][1]["message"]["content"][1]["type"], "redacted_thinking");

    // A failed tool result shows its status; a session without provenance used no tokens.
    let oslo = store.import(&["--model", SONNET4, &path("sessions_weather.anthropic.json")]);
    let text = store.sessions(&["show", &oslo]).ok();
    assert!(
        text.contains("tool result for toolu_01 (error): the weather service timed out"),
        "{text}"
    );
    assert!(text.contains("usage: input 0 tokens, output 0 tokens, cache read 0, cache write 0"));

    let missing = store.sessions(&["show", "6f1c2a9e-8d3b-4c5e-9a7f-0b1c2d3e4f51"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("no session 6f1c2a9e-8d3b-4c5e-9a7f-0b1c2d3e4f51"));
    let malformed = store.sessions(&["show", "not-an-id"]);
    assert_eq!(malformed.code, 2, "{malformed:?}");
    assert!(malformed.stderr.contains("not-an-id"), "{}", malformed.stderr);
}

#[test]
fn fork_rewind_and_rm_print_the_ids_they_touch() {
    let store = Store::new();
    let id = store.import(&[&path("sessions_weather.converse.json")]);

    let fork = store.sessions(&["fork", &id, "--at", "2"]).id();
    assert_ne!(fork, id);
    let forked = store.show(&fork);
    assert_eq!(forked["messages"].as_array().unwrap().len(), 2);
    assert_eq!(forked["info"]["origin"], serde_json::json!({"kind": "fork", "from": id, "at": 2}));
    let beyond = store.sessions(&["fork", &id, "--at", "9"]);
    assert_eq!(beyond.code, 1, "{beyond:?}");
    assert!(beyond.stderr.contains("cannot fork at 9"), "{}", beyond.stderr);

    let rewound = store.sessions(&["rewind", &id, "--to", "2"]);
    assert!(rewound.stderr.contains("archive session"), "{}", rewound.stderr);
    assert_eq!(rewound.id(), id);
    let shown = store.show(&id);
    assert_eq!(shown["info"]["version"], 5);
    assert_eq!(shown["messages"].as_array().unwrap().len(), 2);
    // The archive keeps every record; it is listed with the others, marked as what it is, with
    // the times of the history it holds.
    let list = store.list();
    assert_eq!(list.len(), 3);
    let archive = list.iter().find(|s| s["origin"]["kind"] == "archive").unwrap();
    assert_eq!(archive["origin"]["from"], id.as_str());
    let source = list.iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(archive["created_at"], source["created_at"]);
    assert!(archive["updated_at"].as_str() >= archive["created_at"].as_str(), "{archive}");
    let text = store.sessions(&["list"]).ok();
    let line = text.lines().find(|l| l.starts_with(archive["id"].as_str().unwrap())).unwrap();
    assert!(line.ends_with(&format!("archive of {id} (rewind at record 4)")), "{text}");
    let line = text.lines().find(|l| l.starts_with(&fork)).unwrap();
    assert!(line.ends_with(&format!("fork of {id} at record 2")), "{text}");
    let json = store.sessions(&["rewind", &id, "--to", "1", "--json"]).json();
    assert_eq!(json["session"]["id"], id.as_str());
    assert_eq!(json["archive"]["version"], 5);

    assert_eq!(store.sessions(&["rm", &fork]).id(), fork);
    assert!(!ids(&store.list()).contains(&&*fork));
    let again = store.sessions(&["delete", &fork]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains(&format!("no session {fork}")), "{}", again.stderr);
    // Deleting a session deletes the archives its rewinds kept (they are its history), unless
    // asked to keep them.
    let kept = store.import(&[&path("sessions_weather.converse.json"), "--tag", "kept"]);
    store.sessions(&["rewind", &kept, "--to", "2"]).ok();
    let json = store.sessions(&["delete", &kept, "--keep-archives", "--json"]).json();
    assert_eq!(json["archives"], serde_json::json!([]));
    assert_eq!(store.list().len(), 4, "the session, its two archives and the kept one");
    let json = store.sessions(&["delete", &id, "--json"]).json();
    assert_eq!(json["deleted"], id.as_str());
    assert_eq!(json["archives"].as_array().unwrap().len(), 2, "{json}");
    let left = store.list();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["origin"]["from"], kept.as_str());
}

#[test]
fn import_json_prints_the_new_sessions_infos() {
    let store = Store::new();
    let file = path("sessions_weather.converse.json");
    let infos = store.sessions(&["import", "--json", "--tag", "t", &file]).json();
    let infos = infos.as_array().unwrap();
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert_eq!(infos[0], store.show(infos[0]["id"].as_str().unwrap())["info"]);
    assert_eq!(infos[0]["tags"], serde_json::json!(["t"]));
}

#[test]
fn verbatim_data_names_the_store_when_data_is_not_given() {
    let store = Store::new();
    let id = store.import(&[&path("sessions_weather.converse.json")]);
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.args(["sessions", "list", "--json"]).env_remove("VERBATIM_STORE");
    // Run elsewhere, so the default `./verbatim-data` is not what is found.
    let elsewhere = tempfile::tempdir().unwrap();
    command.current_dir(elsewhere.path()).env("VERBATIM_DATA", store.path());
    let listed = run(command, None).json();
    assert_eq!(ids(listed.as_array().unwrap()), [id.as_str()]);
    assert!(!elsewhere.path().join("verbatim-data").exists());
}

#[test]
fn a_bad_import_exits_2_names_the_path_and_stores_nothing() {
    let store = Store::new();
    let cases: [(&[&str], &str); 4] = [
        (&["--model", SONNET4, &path("two_member_block.converse.json")], "messages[0].content[0]"),
        // The first line is fine; the second is not: neither is stored.
        (
            &[&path("sessions_bad_second_line.jsonl")],
            "line 2: messages[1].content[0].toolUse: missing required field `name`",
        ),
        // The right shape in the wrong dialect.
        (
            &["--model", SONNET4, "--format", "converse", &path("sessions_weather.anthropic.json")],
            "messages[0].content[0]",
        ),
        (&["--model", SONNET4, &path("sessions_weather.converse.json"), "--tag"], "--tag"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        let run = store.sessions(&all);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(run.stderr.contains(expected), "{expected:?} not in {}", run.stderr);
        assert!(!store.path().exists(), "{args:?} opened the store");
    }
    let not_json = store.run(&["import", "--model", SONNET4, "-"], Some(b"{\"messages\": ["));
    assert_eq!(not_json.code, 2, "{not_json:?}");
    assert!(not_json.stderr.contains("standard input: not valid JSON"), "{}", not_json.stderr);
    assert!(!store.path().exists());

    // A second copy of an export document is refused by the store (exit 1): the first line
    // of a two-line import is then taken back too.
    store.import(&[&path("sessions_export.json")]);
    let twice = store.sessions(&["import", &path("sessions_two_exports.jsonl")]);
    assert_eq!(twice.code, 1, "{twice:?}");
    assert!(twice.stderr.contains(&format!("session {EXPORTED_ID} already exists")));
    assert_eq!(ids(&store.list()), [EXPORTED_ID]);
}

#[test]
fn an_unreachable_postgres_store_fails_without_repeating_its_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: refused at once, no other address contacted.
    let url = "postgres://user:secret@127.0.0.1:1/db";
    let mut flag = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    flag.args(["sessions", "--store", url, "list"]).env_remove("VERBATIM_STORE");
    let mut env = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    env.args(["sessions", "list", "--json"]).env("VERBATIM_STORE", url);
    let mut runs = Vec::new();
    for mut command in [flag, env] {
        command.current_dir(dir.path()).env_remove("VERBATIM_DATA");
        runs.push(run(command, None));
    }
    for run in runs {
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(run.stderr.contains("cannot open the PostgreSQL store"), "{}", run.stderr);
        assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
        assert!(!run.stderr.contains("secret"), "{}", run.stderr);
    }
    // Nothing was created in the default data directory either.
    assert!(!dir.path().join("verbatim-data").exists());
}

/// Recorded live requests (Converse and InvokeModel) import and export in their dialect with
/// their messages unchanged, and the whole body besides.
#[test]
fn recorded_requests_round_trip_through_import_and_export() {
    let dir = match std::env::var_os("VERBATIM_REAL_FIXTURES") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real"),
    };
    if !dir.is_dir() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipping recorded requests: {} is absent", dir.display());
        }
        assert!(std::env::var_os("VERBATIM_REAL_FIXTURES").is_none(), "{} missing", dir.display());
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let store = Store::new();
    let mut checked = 0;
    for file in files {
        let root = json(&std::fs::read_to_string(&file).unwrap());
        let Some(exchanges) = root.get("exchanges").and_then(Value::as_array) else { continue };
        for (i, exchange) in exchanges.iter().enumerate() {
            let request = &exchange["request"];
            let uri = request["uri"].as_str().unwrap_or("");
            let format = if uri.ends_with("/converse") || uri.ends_with("/converse-stream") {
                "converse"
            } else if uri.ends_with("/invoke") || uri.ends_with("/invoke-with-response-stream") {
                "anthropic"
            } else {
                continue;
            };
            let body = match (request.get("body"), request.get("body_json")) {
                (Some(Value::String(raw)), _) => raw.as_bytes().to_vec(),
                (_, Some(body @ Value::Object(_))) => serde_json::to_vec(body).unwrap(),
                _ => continue,
            };
            let Ok(input) = serde_json::from_slice::<Value>(&body) else { continue };
            let label = format!("{} exchange {i}", file.display());
            let id = store
                .run(&["import", "--format", format, "--model", SONNET4, "-"], Some(&body))
                .id();
            let exported = store.sessions(&["export", &id, "--format", format]).json();
            assert_eq!(exported["messages"], input["messages"], "{label}");
            assert_eq!(exported, input, "{label}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no recorded request in {}", dir.display());
}

/// Import bounds what it reads: a file over 256 MiB and JSON nested deeper than 128 levels are
/// refused with a clear error, and nothing is stored.
#[test]
fn import_refuses_oversized_and_too_deeply_nested_input() {
    let store = Store::new();
    let big = store.dir.path().join("big.json");
    // Sparse: no disk is spent on it.
    std::fs::File::create(&big).unwrap().set_len((256 << 20) + 1).unwrap();
    let refused = store.sessions(&["import", big.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("larger than 256 MiB"), "{}", refused.stderr);

    let deep = format!(
        r#"{{"messages": [{{"role": "user", "content": [{{"text": "x"}}]}}], "modelId": "m", "x": {}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let refused = store.run(&["import", "-"], Some(deep.as_bytes()));
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("recursion limit"), "{}", refused.stderr);
    assert!(refused.stderr.contains("line 1 column"), "{}", refused.stderr);
    assert!(!store.path().exists(), "a refused import creates no store");
}

#[test]
fn commands_that_only_read_never_create_a_store_and_say_where_they_looked() {
    let store = Store::new();
    let typo = store.path();
    let id = "6f1c2a9e-8d3b-4c5e-9a7f-0b1c2d3e4f51";
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["show", id],
        &["export", id],
        &["fork", id, "--at", "1"],
        &["rewind", id, "--to", "1"],
        &["rm", id],
    ] {
        let run = store.sessions(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        let looked = format!("no store at {} (sled): no such directory", typo.display());
        assert!(run.stderr.contains(&looked), "{args:?}: {run:?}");
        assert!(run.stderr.contains("--data DIR or VERBATIM_DATA"), "{run:?}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }

    // A directory that exists but holds no store: said so, and left as it was.
    std::fs::create_dir(&typo).unwrap();
    let run = store.sessions(&["list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("(sled): the directory holds no store"), "{run:?}");
    assert_eq!(std::fs::read_dir(&typo).unwrap().count(), 0, "nothing was written");

    // Import creates the store; list then says where it found none with the tag asked.
    std::fs::remove_dir(&typo).unwrap();
    store.import(&[&path("sessions_weather.converse.json")]);
    let none = store.sessions(&["list", "--tag", "nowhere"]).ok();
    assert_eq!(none, format!("no sessions tagged nowhere under {} (sled)\n", typo.display()));
}

/// A session an engine ran (the demo: tools registered on the engine, not in the session's
/// configuration) exports as a request Bedrock would accept in both dialects (its tool calls
/// declared, max_tokens set), and the export imports again.
#[test]
fn an_engine_session_exports_as_a_valid_request_that_imports_again() {
    let store = Store::new();
    let demo = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["demo", "--data"])
        .arg(store.path())
        .env_remove("VERBATIM_STORE")
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let id = store.list()[0]["id"].as_str().unwrap().to_owned();
    for (format, api) in [("converse", "converse"), ("anthropic", "invoke")] {
        let body = store.sessions(&["export", &id, "--format", format]).ok();
        let mut validate = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        validate.args(["validate", "--api", api, "--model", SONNET4, "--json", "-"]);
        let checked = run(validate, Some(body.as_bytes()));
        assert_eq!(checked.code, 0, "{format}: {checked:?}");
        assert_eq!(json(&checked.stdout)["diagnostics"], serde_json::json!([]), "{format}");
        // It imports again, and the imported session exports the same request.
        let again = Store::new();
        let file = again.dir.path().join(format!("export.{format}.json"));
        std::fs::write(&file, &body).unwrap();
        let copy = again.import(&["--format", format, "--model", SONNET4, file.to_str().unwrap()]);
        let exported = again.sessions(&["export", &copy, "--format", format]).ok();
        assert_eq!(json(&exported), json(&body), "{format}: the import does not export the same");
    }
}
