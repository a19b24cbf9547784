//! The README's shell commands, run in order in a fresh directory as a person following it
//! runs them: every command line of every `sh` block is either run here, with what the README
//! says it does checked, or named below with the reason it cannot run in a test (an AWS
//! account, an RDS instance). A command added to the README without a case here fails the test.
//!
//! What a person would type differently here: the placeholder session id `0b6c...` is the
//! newest session of the store in use; the PostgreSQL URLs of the example deployment are the
//! test server's (`TEST_DATABASE_URL`, in a schema of its own given by `VERBATIM_SCHEMA`; the
//! PostgreSQL lines are skipped, saying so, without the variable); the files the examples name
//! (`body.json`, `invoke.json`, `messages.json`, `turn1.json`, `turn2.json`, `script.json`) come
//! from `tests/it/data`; `cargo run --release --` is the test build of the binary. No AWS
//! setting of the machine reaches the commands: `HOME` is the test's directory.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::postgres::Schema;
use crate::sessions_cli::Run;

/// The command lines of the README's `sh` blocks, in order, without comments.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut continued = String::new();
    for line in readme.lines() {
        // A line ending in `\` goes on on the next one.
        if let Some(start) = line.trim_end().strip_suffix('\\') {
            continued.push_str(start.trim_start());
            continued.push(' ');
            continue;
        }
        let whole = std::mem::take(&mut continued) + line.trim_start();
        let trimmed = whole.trim();
        if let Some(fence) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && fence == "sh";
            continue;
        }
        if !in_sh || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // A comment after a command starts after two spaces.
        let command = trimmed.split("  #").next().unwrap_or(trimmed).trim();
        commands.push(command.to_owned());
    }
    commands
}

/// Splits a command line into words: double or single quotes group, nothing else is special.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
}

/// The person's shell: a directory, the variables exported so far, a clean environment.
struct Shell {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    database: Option<(String, Schema)>,
    /// The DynamoDB deployment, once a line needs it.
    #[cfg(feature = "dynamodb")]
    dynamo: Option<Dynamo>,
}

/// The README's DynamoDB deployment, on loopback: a table on a moto server, and Bedrock played
/// by an emulator that takes the deployment's (dummy) AWS credentials.
#[cfg(feature = "dynamodb")]
struct Dynamo {
    _moto: crate::moto::Moto,
    url: String,
    /// Dropped before the runtime it runs on (fields drop in order).
    emulator: verbatim_emulator::Emulator,
    _runtime: tokio::runtime::Runtime,
}

#[cfg(feature = "dynamodb")]
impl Dynamo {
    const README_URL: &str = "dynamodb://chat-sessions?region=eu-west-1";

    fn start() -> Option<Dynamo> {
        let moto = crate::moto::Moto::start("the_readme_commands_run_in_order_as_written")?;
        let url = moto.new_table_url("readme");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config = verbatim_emulator::EmulatorConfig {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            ..Default::default()
        };
        let emulator = runtime.block_on(verbatim_emulator::Emulator::start(config)).unwrap();
        Some(Dynamo { _moto: moto, url, emulator, _runtime: runtime })
    }
}

impl Shell {
    fn cwd(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, words: &[String]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        command.args(&words[1..]).current_dir(self.cwd()).env_clear();
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command.env("HOME", self.cwd()).env("NO_COLOR", "1");
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `line` (a `verbatim` command, maybe with `< FILE` or `> FILE`), typing `input`.
    fn run(&self, line: &str, input: &str) -> Run {
        let (line, stdin_file) = match line.split_once(" < ") {
            Some((line, file)) => (line, Some(file.trim())),
            None => (line, None),
        };
        let (line, stdout_file) = match line.split_once(" > ") {
            Some((line, file)) => (line, Some(file.trim())),
            None => (line, None),
        };
        let words = words(line);
        assert_eq!(words[0], "verbatim", "{line}");
        let input = match stdin_file {
            Some(file) => std::fs::read(self.cwd().join(file)).unwrap(),
            None => input.as_bytes().to_vec(),
        };
        let run = crate::sessions_cli::run(self.command(&words), Some(&input));
        if let Some(file) = stdout_file {
            let path = self.path(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &run.stdout).unwrap();
        }
        run
    }

    /// A path as the shell reads it (`~` is the test's home).
    fn path(&self, file: &str) -> PathBuf {
        match file.strip_prefix("~/") {
            Some(rest) => self.cwd().join(rest),
            None => self.cwd().join(file),
        }
    }

    /// The newest session of the store in use: what `0b6c...` stands for.
    fn newest_session(&self) -> Option<String> {
        let listed = self.run("verbatim sessions list --json", "");
        assert_eq!(listed.code, 0, "{listed:?}");
        let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
        listed.as_array()?.first().map(|s| s["id"].as_str().unwrap().to_owned())
    }

    fn export(&mut self, assignment: &str) {
        let (name, value) = assignment.split_once('=').unwrap();
        let value = words(value).concat();
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value));
    }
}

/// The test server's URL for the example deployment's, or `None` without one.
fn database_url(shell: &Shell, line: &str) -> Option<String> {
    let (url, _) = shell.database.as_ref()?;
    Some(line.replace("postgres://app@db.internal/chat", url))
}

fn say_skipped(line: &str, why: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("readme: not run here: {line} ({why})");
    }
}

fn ok(ran: &Run, line: &str) {
    assert_eq!(ran.code, 0, "{line}: {ran:?}");
}

fn copy_data(shell: &Shell, from: &str, to: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data").join(from);
    std::fs::copy(source, shell.cwd().join(to)).unwrap();
}

/// Runs a server's line (`verbatim emulator`, `verbatim serve`) until it says where it
/// listens; stops it then.
fn listens(shell: &Shell, line: &str, says: &str) -> String {
    let mut command = shell.command(&words(line));
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let listening = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(text) if text.starts_with(says) => break text,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!("{line}: never said where it listens: {output:?}");
            }
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    listening
}

/// A line of the README's DynamoDB deployment: run on moto with the table's URL in place of
/// the example's, the deployment's credentials (dummy) and its Bedrock (an emulator) exported
/// with the store; skipped, saying so, without moto or the `dynamodb` feature.
#[cfg(feature = "dynamodb")]
fn dynamodb_line(shell: &mut Shell, line: &str) {
    if shell.dynamo.is_none() {
        shell.dynamo = Dynamo::start();
    }
    let Some(dynamo) = &shell.dynamo else {
        return say_skipped(line, "python3 has no moto server");
    };
    let line = line.replace(Dynamo::README_URL, &dynamo.url);
    let emulator = dynamo.emulator.url();
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &emulator),
    ] {
        shell.export(&format!("{name}={value}"));
    }
    if let Some(assignment) = line.strip_prefix("export ") {
        shell.export(assignment);
        // The deployment's sessions: one to continue by id below.
        let run = shell.run("verbatim chat --message Hello", "");
        ok(&run, "a first session in DynamoDB");
        assert!(run.stdout.contains(&format!("Talking to {emulator}")), "{run:?}");
    } else {
        let run = shell.run(&line, "");
        ok(&run, &line);
        assert!(run.stdout.contains("created"), "{line}: {run:?}");
    }
}

#[cfg(not(feature = "dynamodb"))]
fn dynamodb_line(_shell: &mut Shell, line: &str) {
    say_skipped(line, "this build has no DynamoDB store (feature `dynamodb`)");
}

#[test]
fn the_readme_commands_run_in_order_as_written() {
    let database = std::env::var("TEST_DATABASE_URL").ok().map(|url| {
        let schema = Schema::new("verbatim_readme", &url);
        (url, schema)
    });
    let mut shell = Shell {
        dir: tempfile::tempdir().unwrap(),
        env: Vec::new(),
        database,
        #[cfg(feature = "dynamodb")]
        dynamo: None,
    };
    if let Some((_, schema)) = &shell.database {
        let name = schema.name.clone();
        shell.env.push(("VERBATIM_SCHEMA".into(), name));
    } else {
        say_skipped("the PostgreSQL lines", "TEST_DATABASE_URL is not set");
    }
    copy_data(&shell, "readme/body.json", "body.json");
    copy_data(&shell, "readme/invoke.json", "invoke.json");
    copy_data(&shell, "readme/messages.json", "messages.json");
    copy_data(&shell, "cache_turn1.converse.json", "turn1.json");
    copy_data(&shell, "cache_turn2_tools_reordered.converse.json", "turn2.json");
    copy_data(&shell, "emulator_script.json", "script.json");

    let mut ran = 0;
    for line in readme_commands() {
        let line = line.as_str();
        match line {
            "cargo run --release -- demo" => {
                let run = shell.run("verbatim demo", "");
                ok(&run, line);
                assert!(run.stdout.contains("resum"), "{line}: {run:?}");
                // The answer reports what every tool of the turn returned, the time too.
                let answer = run.stdout.lines().find(|l| l.starts_with("Here is what the tools"));
                let answer = answer.unwrap_or_else(|| panic!("{line}: no answer: {run:?}"));
                assert!(answer.contains("Europe/Paris: 09:30"), "{answer}");
                assert!(shell.cwd().join("verbatim-data").is_dir(), "{line}: ./verbatim-data");
            }
            _ if line.starts_with("cargo test --workspace") => {
                say_skipped(line, "this test is part of it")
            }
            _ if line.contains("dynamodb://") => dynamodb_line(&mut shell, line),
            "cargo install cargo-fuzz" | "fuzz/run 300000" => {
                say_skipped(line, ".ci/run runs the fuzz targets")
            }
            _ if line.starts_with("export AWS_ENDPOINT_URL_BEDROCK_RUNTIME=")
                || line.starts_with("export ANTHROPIC_BEDROCK_BASE_URL=")
                || (line.starts_with("export ") && line.contains("AKIALOCAL")) =>
            {
                say_skipped(line, "a client's settings for verbatim serve: tests/it/proxy.rs");
            }
            // A region alone reaches no account: set as written (the proxy's upstream needs one).
            _ if line.starts_with("export AWS_REGION=") && line.split_whitespace().count() == 2 => {
                shell.export(line.trim_start_matches("export "));
            }
            _ if line.starts_with("export AWS_") => {
                say_skipped(line, "needs an AWS account; without one the chat uses the emulator")
            }
            _ if line.starts_with("export VERBATIM_STORE=")
                && line.contains("rds.amazonaws.com") =>
            {
                say_skipped(line, "needs an RDS instance; the store's TLS and IAM tests stand in")
            }
            _ if line.starts_with("export VERBATIM_STORE=") => {
                if let Some(line) = database_url(&shell, line) {
                    shell.export(line.trim_start_matches("export "));
                    // The deployment's sessions: one to continue by id below.
                    let run = shell.run("verbatim chat --message Hello", "");
                    ok(&run, "a first session in PostgreSQL");
                }
            }
            _ if line.starts_with("verbatim migrate") => {
                if let Some(line) = database_url(&shell, line) {
                    let run = shell.run(&line, "");
                    ok(&run, &line);
                    assert!(run.stdout.starts_with("schema version"), "{line}: {run:?}");
                }
            }
            _ if line.starts_with("verbatim chat --session ") => {
                let id = shell.newest_session().expect("a session to continue");
                let run = shell.run(&line.replace("0b6c...", &id), "And again\n/quit\n");
                ok(&run, line);
                assert!(run.stdout.contains(&format!("Session {id}")), "{line}: {run:?}");
                assert!(run.stdout.contains("You said: And again"), "{line}: {run:?}");
            }
            _ if line.starts_with("verbatim chat ") => {
                let run = shell.run(line, "Hello\n/quit\n");
                ok(&run, line);
                assert!(run.stdout.contains("talking to the built-in emulator"), "{run:?}");
                assert!(run.stdout.contains("You said: Hello"), "{line}: {run:?}");
            }
            "verbatim sessions list" => {
                let id = shell.newest_session().expect("sessions");
                let run = shell.run(line, "");
                ok(&run, line);
                assert!(run.stdout.contains(&id), "{line}: {run:?}");
            }
            _ if line.starts_with("verbatim validate") => {
                let run = shell.run(line, "");
                assert_eq!(run.code, 1, "errors exit 1: {line}: {run:?}");
                assert!(run.stdout.contains("tool.result_missing"), "{line}: {run:?}");
                if line.contains("--json") {
                    let out: Value = serde_json::from_str(&run.stdout).unwrap();
                    assert_eq!(out["valid"], false);
                    assert_eq!(out["diagnostics"][0]["path"], "messages[1].content[0]");
                }
            }
            _ if line.starts_with("verbatim repair") => {
                let run = shell.run(line, "");
                ok(&run, line);
                let out: Value = serde_json::from_str(&run.stdout).unwrap();
                assert!(out["request"].is_object() && out["fixes"].is_array(), "{out}");
            }
            _ if line.starts_with("verbatim explain-cache") => {
                // turn2.json reorders the tools: exit 1, the cache misses, and says why.
                let run = shell.run(line, "");
                assert_eq!(run.code, 1, "{line}: {run:?}");
                assert!(run.stdout.contains("the same tools in another order"), "{run:?}");
            }
            _ if line.starts_with("verbatim completions bash > ") => {
                let run = shell.run(line, "");
                ok(&run, line);
                let file = shell.path(line.split_once(" > ").unwrap().1);
                let script = std::fs::read_to_string(file).unwrap();
                assert!(script.contains("complete") && script.contains("verbatim"), "{line}");
            }
            _ if line.starts_with("verbatim explain ") => {
                let run = shell.run(line, "");
                ok(&run, line);
                assert!(run.stdout.contains("toolConfig"), "{line}: {run:?}");
            }
            "verbatim emulator" => {
                // The README's fixed port: run as written when it is free here.
                if std::net::TcpListener::bind("127.0.0.1:8787").is_err() {
                    say_skipped(line, "127.0.0.1:8787 is taken on this machine");
                    continue;
                }
                let listening = listens(&shell, line, "verbatim emulator listening on ");
                assert!(listening.ends_with("http://127.0.0.1:8787"), "{listening}");
            }
            _ if line.starts_with("verbatim emulator ") => {
                let listening = listens(&shell, line, "verbatim emulator listening on ");
                assert!(listening.contains("http://127.0.0.1:"), "{listening}");
            }
            _ if line.starts_with("verbatim serve ") => {
                // The README's fixed port: run as written when it is free here.
                if std::net::TcpListener::bind("127.0.0.1:8788").is_err() {
                    say_skipped(line, "127.0.0.1:8788 is taken on this machine");
                    continue;
                }
                let listening = listens(&shell, line, "verbatim serve listening on ");
                assert!(listening.contains("http://127.0.0.1:8788 (mode guard"), "{listening}");
            }
            _ => panic!("a README command this test does not know: {line:?}; add its case"),
        }
        ran += 1;
    }
    assert!(ran >= 15, "only {ran} README commands seen");
}
