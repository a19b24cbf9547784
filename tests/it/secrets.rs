//! Secrets never reach logs, `Debug` output or errors: a tool loop with throttling, a server
//! error and a refused request runs under a subscriber that records every span and event at
//! every level, once with a Bedrock API key and once with SigV4 credentials, and nothing it
//! recorded, nor the `Debug` of what holds the secrets, nor any error, contains them. The same
//! holds for the `verbatim` binary logging at `RUST_LOG=trace` under its global subscriber:
//! `verbatim chat` with the credentials in its environment, throttled once, prints none of
//! them on stdout or stderr (and prints nothing on stderr when `RUST_LOG` is unset).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use verbatim::transport::{Call, RetryConfig};
use verbatim::{Api, Auth, Engine, HttpConfig, HttpTransport, MemoryStore, Transport};
use verbatim_emulator::{
    DEFAULT_ACCESS_KEY_ID, DEFAULT_API_KEY, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig,
    Fault,
};

const SESSION_TOKEN: &str = "session-token-that-must-not-leak";

/// Writes every span's and event's name and fields, at every level, into one string.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Recorder {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut out = self.0.lock().unwrap();
        let _ = write!(out, "\nspan {}:", span.metadata().name());
        span.record(&mut Fields(&mut out));
        Id::from_u64(out.len() as u64 + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut out = self.0.lock().unwrap();
        let _ = write!(out, "\nevent {} {}:", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut out));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

async fn turns_under_faults(auth: Auth, secrets: &[&str]) {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let config = HttpConfig::new("us-west-2", auth).with_endpoint_url(emulator.url()).with_retry(
        RetryConfig {
            max_attempts: 3,
            base_delay: std::time::Duration::from_millis(5),
            max_delay: std::time::Duration::from_millis(20),
            ..RetryConfig::default()
        },
    );
    let transport = Arc::new(HttpTransport::new(config.clone()).unwrap());
    let mut shown = format!("{config:?} {transport:?}");
    let engine = Engine::builder()
        .store(Arc::new(MemoryStore::new()))
        .transport(transport.clone())
        .model("us.anthropic.claude-sonnet-4-20250514-v1:0")
        .build()
        .unwrap();
    shown.push_str(&format!("{engine:?}"));
    let session = engine.create().await.unwrap();

    // Retried faults: logged as retries.
    emulator.inject(Fault::Throttle);
    emulator.inject(Fault::Internal);
    let reply = session.send("Hello").await.unwrap();
    assert!(!reply.text().is_empty());
    // Faults past the retry budget: an error for the caller, logged as exhausted.
    for _ in 0..3 {
        emulator.inject(Fault::Unavailable);
    }
    let error = session.send("Again").await.unwrap_err();
    shown.push_str(&format!("{error} {error:?}"));
    // A request Bedrock refuses: a validation error, returned with Bedrock's message.
    let body = r#"{"messages":[{"role":"user","content":[{"text":"a","image":{}}]}]}"#;
    let refused = Call::new(Api::Converse, "us.anthropic.claude-sonnet-4-20250514-v1:0", body);
    let error = transport.send(refused).await.unwrap_err();
    assert_eq!(error.api().map(|e| e.status), Some(400), "{error}");
    shown.push_str(&format!("{error} {error:?}"));

    let logged = recorder.text();
    assert!(logged.contains("retrying"), "the faults were not logged: {logged}");
    assert!(logged.contains("span turn"), "no turn span: {logged}");
    for secret in secrets {
        assert!(!logged.contains(secret), "a secret reached the logs: {logged}");
        assert!(!shown.contains(secret), "a secret reached Debug or an error: {shown}");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_api_key_never_reaches_logs_debug_or_errors() {
    turns_under_faults(Auth::api_key(DEFAULT_API_KEY), &[DEFAULT_API_KEY]).await;
}

#[tokio::test]
async fn aws_credentials_never_reach_logs_debug_or_errors() {
    let auth = Auth::credentials(
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        Some(SESSION_TOKEN.into()),
    );
    turns_under_faults(auth, &[DEFAULT_SECRET_ACCESS_KEY, SESSION_TOKEN]).await;
}

const CLI_API_KEY: &str = "cli-api-key-that-must-not-leak";
const CLI_ACCESS_KEY_ID: &str = "AKIACLISECRETSTEST";
const CLI_SECRET_ACCESS_KEY: &str = "cli-secret-access-key-that-must-not-leak";

/// Runs `verbatim chat` on the credentials in `credentials` (and nothing else of the
/// machine's AWS configuration), against `emulator` as its Bedrock endpoint, for two turns:
/// its exit status, stdout and stderr.
async fn chat(emulator: &Emulator, rust_log: Option<&str>, credentials: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command
        .args(["chat", "--data"])
        .arg(home.path().join("data"))
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ENDPOINT_URL", emulator.url())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(credentials.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    // The emulator runs on this test's runtime: the child is waited for off it.
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"Hello\nAgain\n/quit\n").unwrap();
        let output = child.wait_with_output().unwrap();
        drop(home);
        output
    })
    .await
    .unwrap()
}

async fn cli_at_trace(credentials: &[(&str, &str)]) {
    let emulator = Emulator::start(EmulatorConfig {
        access_key_id: CLI_ACCESS_KEY_ID.to_owned(),
        secret_access_key: CLI_SECRET_ACCESS_KEY.to_owned(),
        api_key: Some(CLI_API_KEY.to_owned()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    emulator.inject(Fault::Throttle);
    let out = chat(&emulator, Some("trace"), credentials).await;
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    // The endpoint an AWS variable points at is the one named, not Amazon Bedrock.
    let talking = format!("Talking to {}, region us-west-2.", emulator.url());
    assert!(stdout.contains(&talking), "{stdout}");
    assert!(stdout.contains("Hello! You said: Again"), "{stdout}");
    // The global subscriber logs at trace: the engine's spans, the transport's attempts and
    // retry, the HTTP client's own lines.
    for logged in ["TRACE", "turn{session=", "bedrock_attempt", "retrying"] {
        assert!(stderr.contains(logged), "{logged:?} was not logged: {stderr}");
    }
    for secret in [CLI_API_KEY, CLI_SECRET_ACCESS_KEY, SESSION_TOKEN] {
        assert!(!stdout.contains(secret), "a secret reached stdout: {stdout}");
        assert!(!stderr.contains(secret), "a secret reached the log: {stderr}");
    }

    // Without RUST_LOG, nothing is logged.
    let out = chat(&emulator, None, credentials).await;
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_cli_logging_at_trace_never_shows_an_api_key() {
    cli_at_trace(&[("AWS_BEARER_TOKEN_BEDROCK", CLI_API_KEY)]).await;
}

#[tokio::test]
async fn the_cli_logging_at_trace_never_shows_aws_credentials() {
    cli_at_trace(&[
        ("AWS_ACCESS_KEY_ID", CLI_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", CLI_SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
    ])
    .await;
}
