//! Two app instances share a session through PostgreSQL: two `verbatim chat` processes, each
//! with its own engine, on one session in one schema, against one emulator on 127.0.0.1:0.
//! They take turns; while one turn of the first runs (its model call slow), the second's input
//! waits for the first's lease on the session and is answered after it; both then show the same
//! history, which is the stored one. A chat whose message waits longer than its
//! `--lease-wait` says the message was not stored, and it is answered once when sent again:
//! what a person typed is never silently lost.
//!
//! Runs when `TEST_DATABASE_URL` is set (`.ci/run` sets it) and says it skipped otherwise.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use verbatim::model::Role;
use verbatim::store::Session;
use verbatim::{PostgresOptions, PostgresStore, SessionStore};
use verbatim_emulator::{Emulator, EmulatorConfig, Fault};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

/// A schema of its own on the test server, named at random and dropped when this is (also
/// when the test fails).
pub(crate) struct Schema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl Schema {
    /// A schema for `test` on the `TEST_DATABASE_URL` server, or `None` when the variable is
    /// not set, having said that `test` skipped (`.ci/run` sets it, so CI never skips).
    pub(crate) fn for_test(test: &str, prefix: &str) -> Option<Schema> {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping {test}: TEST_DATABASE_URL is not set");
            }
            return None;
        };
        Some(Schema::new(prefix, &url))
    }

    pub(crate) fn new(prefix: &str, url: &str) -> Schema {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap();
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Schema { url: url.to_owned(), name: format!("{prefix}_{suffix}") }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Dropped inside a runtime, maybe: the cleanup gets a thread and a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .map_err(std::io::Error::other)
            })
        })
        .join();
    }
}
const PATIENCE: Duration = Duration::from_secs(30);

/// One `verbatim chat` process and the lines it printed.
struct Instance {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Instance {
    fn spawn(name: &'static str, store: &[&str], id: &str, emulator_url: &str) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_verbatim"))
            .args(["chat", "--session", id, "--emulator-url", emulator_url])
            .args(store)
            .env_remove("VERBATIM_STORE")
            .env_remove("VERBATIM_SCHEMA")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Instance { name, stdin: child.stdin.take(), child, lines, seen: Vec::new() }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a printed line that contains `text`.
    fn wait_for_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("{}: no line with {text:?}; saw {:?}", self.name, self.seen),
            }
        }
    }

    /// Quits; the exit status.
    fn quit(mut self) -> std::process::ExitStatus {
        self.say("/quit");
        drop(self.stdin.take());
        self.child.wait().unwrap()
    }

    /// Shows the session, quits, and returns what `/show` printed.
    fn show_and_quit(mut self) -> String {
        self.say("/show");
        self.say("/quit");
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{}: {status}", self.name);
        self.seen.extend(self.lines.iter());
        let start = self.seen.iter().position(|l| l.starts_with("session ")).expect("shown");
        let end = self.seen.iter().position(|l| l.starts_with("Usage: ")).expect("usage");
        self.seen[start..end].join("\n")
    }
}

/// Polls the stored session until `done` holds.
fn wait_until(
    runtime: &tokio::runtime::Runtime,
    store: &PostgresStore,
    id: verbatim::SessionId,
    what: &str,
    done: impl Fn(&Session) -> bool,
) -> Session {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let session = runtime.block_on(store.load(id)).unwrap();
        if done(&session) {
            return session;
        }
        assert!(Instant::now() < deadline, "never: {what}; stored: {:#?}", session.messages());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the stored history ends with a reply after a user message saying `input`.
fn answered(session: &Session, input: &str) -> bool {
    let messages = session.messages();
    let asked = messages
        .iter()
        .position(|m| m.message.role == Role::User && m.message.text().contains(input));
    asked.is_some_and(|i| messages[i..].iter().any(|m| m.message.role == Role::Assistant))
        && messages.last().is_some_and(|m| m.message.role == Role::Assistant)
}

#[test]
fn two_engines_in_two_processes_share_a_session() {
    let Some(schema) =
        Schema::for_test("two_engines_in_two_processes_share_a_session", "verbatim_share")
    else {
        return;
    };
    let url = schema.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator = runtime.block_on(Emulator::start(EmulatorConfig::default())).unwrap();
    let options = PostgresOptions { schema: Some(schema.name.clone()), ..Default::default() };
    let store = runtime.block_on(PostgresStore::connect_with(&url, options)).unwrap();
    let id = runtime.block_on(store.create(verbatim::store::NewSession::new(MODEL))).unwrap().id;
    // The instances name the schema in the two ways a deployment would: in the URL, and with
    // --schema.
    let separator = if url.contains('?') { '&' } else { '?' };
    let shared_url = format!("{url}{separator}options=-c%20search_path%3D{}", schema.name);

    let (id_text, emulator_url) = (id.to_string(), emulator.url());
    let mut a = Instance::spawn("a", &["--store", &shared_url], &id_text, &emulator_url);
    let by_option = ["--store", &url, "--schema", &schema.name];
    let mut b = Instance::spawn("b", &by_option, &id_text, &emulator_url);
    let turn = |instance: &mut Instance, input: &str| {
        instance.say(input);
        wait_until(&runtime, &store, id, input, |s| answered(s, input));
    };
    // Alternate turns: each instance sees what the other stored.
    turn(&mut a, "first from a");
    turn(&mut b, "first from b");
    turn(&mut a, "second from a");
    turn(&mut b, "second from b");

    // a's next model call is slow; b's input meanwhile waits for a's lease (a turn runs in one
    // instance at a time) and is answered after a's turn, which is stored whole: no conflict.
    let calls = emulator.received().len();
    emulator.inject(Fault::SlowFirstByte { millis: 1500 });
    a.say("third from a");
    wait_until(&runtime, &store, id, "a's third input stored", |s| {
        s.messages().iter().any(|m| m.message.text() == "third from a")
    });
    let deadline = Instant::now() + PATIENCE;
    while emulator.received().len() == calls {
        assert!(Instant::now() < deadline, "a never called the model");
        std::thread::sleep(Duration::from_millis(5));
    }
    b.say("third from b");
    wait_until(&runtime, &store, id, "a's third answered", |s| answered(s, "third from a"));
    wait_until(&runtime, &store, id, "b's third answered", |s| answered(s, "third from b"));

    turn(&mut a, "fourth from a");
    turn(&mut b, "fourth from b");

    let shown_a = a.show_and_quit();
    let shown_b = b.show_and_quit();
    assert_eq!(shown_a, shown_b, "both instances see the same history");
    let stored = runtime.block_on(store.load(id)).unwrap();
    let roles: Vec<Role> = stored.messages().iter().map(|m| m.message.role).collect();
    use Role::{Assistant as A, User as U};
    assert_eq!(roles, [U, A, U, A, U, A, U, A, U, A, U, A, U, A, U, A], "{shown_a}");
    assert!(shown_a.contains(&format!("records: {}", stored.info.version)), "{shown_a}");
    for input in ["first from a", "second from b", "third from a", "third from b", "fourth from b"]
    {
        let count = stored.messages().iter().filter(|m| m.message.text() == input).count();
        assert_eq!(count, 1, "{input} stored once");
    }
    // Every turn's reply is stored, a's slow one among them, and in the order the turns ran.
    let replies = stored.messages().iter().filter(|m| m.message.role == A).count();
    assert_eq!(replies, 8);
    let third_a = stored.messages().iter().position(|m| m.message.text() == "third from a");
    let third_b = stored.messages().iter().position(|m| m.message.text() == "third from b");
    assert_eq!(third_b, third_a.map(|i| i + 2), "b's turn after a's whole turn");

    // `sessions` takes --schema (and VERBATIM_SCHEMA) as chat does (the session is in no other
    // schema).
    let list = |extra: &[&str], schema: Option<&str>| -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        command.args(["sessions", "list", "--json", "--store", &url]).args(extra);
        command.env_remove("VERBATIM_STORE").env_remove("VERBATIM_SCHEMA");
        if let Some(schema) = schema {
            command.env("VERBATIM_SCHEMA", schema);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(list(&["--schema", &schema.name], None).contains(&id_text));
    assert!(list(&[], Some(&schema.name)).contains(&id_text));

    // A message that meets another instance's turn for longer than --lease-wait is not
    // stored: the chat says so; sent again after that turn, it is answered once.
    let mut a = Instance::spawn("a", &["--store", &shared_url], &id_text, &emulator_url);
    let quick = ["--store", &shared_url, "--lease-wait", "0.2"];
    let mut c = Instance::spawn("c", &quick, &id_text, &emulator_url);
    let calls = emulator.received().len();
    emulator.inject(Fault::SlowFirstByte { millis: 2500 });
    a.say("fifth from a");
    let deadline = Instant::now() + PATIENCE;
    while emulator.received().len() == calls {
        assert!(Instant::now() < deadline, "a never called the model");
        std::thread::sleep(Duration::from_millis(5));
    }
    c.say("fifth from c");
    let said = c.wait_for_line("busy");
    assert!(said.contains("your message was not stored; send it again"), "{said}");
    wait_until(&runtime, &store, id, "a's fifth answered", |s| answered(s, "fifth from a"));
    c.say("fifth from c");
    wait_until(&runtime, &store, id, "c's fifth answered", |s| answered(s, "fifth from c"));
    let stored = runtime.block_on(store.load(id)).unwrap();
    let count = stored.messages().iter().filter(|m| m.message.text() == "fifth from c").count();
    assert_eq!(count, 1, "stored once, when sent again");
    a.show_and_quit();
    // A turn failed (the busy one): the chat's exit status says so.
    assert_eq!(c.quit().code(), Some(1));

    runtime.block_on(emulator.shutdown());
}
