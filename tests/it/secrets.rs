//! Secrets never reach logs, `Debug` output or errors: a tool loop with throttling, a server
//! error and a refused request runs under a subscriber that records every span and event at
//! every level, once with a Bedrock API key and once with SigV4 credentials, and nothing it
//! recorded, nor the `Debug` of what holds the secrets, nor any error, contains them.

use std::fmt::Write as _;
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
