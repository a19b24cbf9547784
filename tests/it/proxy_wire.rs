//! `verbatim serve` on the wire, against the emulator, with the attacks of
//! `docs/reliability.md`: streams cut upstream or carrying an exception reach the client as
//! such and are never recorded as a reply; upstream errors pass unchanged; bad auth, oversized
//! and slow bodies and hostile bodies are answered before any upstream call; the upstream's
//! secret never reaches a client, the store, `Debug` output or a log line at `RUST_LOG=trace`.

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::proxy::{serve_command, spawn_serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use verbatim_emulator::{Emulator, EmulatorConfig, Fault, StreamException};
use verbatim_model::{Api, Role};
use verbatim_proxy::{ClientAuth, IssuedCredentials, Limits, Mode, Proxy, ProxyConfig};
use verbatim_store::{ListQuery, SessionStore, SledStore};
use verbatim_transport::{
    Auth, Call, HttpConfig, HttpTransport, RetryConfig, Secret, Timeouts, Transport, TransportError,
};

const UPSTREAM_KEY: &str = "upstream-key-that-must-stay-in-the-proxy";
const CLIENT_KEY: &str = "client-key-of-the-proxy";
const CLIENT_ACCESS_KEY_ID: &str = "AKIAPROXYCLIENT";
const CLIENT_SECRET: &str = "proxy-client-secret-access-key";
const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const BODY: &str = r#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#;

async fn emulator() -> Emulator {
    let config =
        EmulatorConfig { api_key: Some(UPSTREAM_KEY.to_owned()), ..EmulatorConfig::default() };
    Emulator::start(config).await.unwrap()
}

async fn proxy(
    emulator: &Emulator,
    store: Arc<dyn SessionStore>,
    mode: Mode,
    limits: Limits,
) -> Proxy {
    let config =
        HttpConfig::new("us-east-1", Auth::api_key(UPSTREAM_KEY)).with_endpoint_url(emulator.url());
    let auth = ClientAuth {
        api_keys: vec![Secret::new(CLIENT_KEY)],
        credentials: vec![IssuedCredentials {
            access_key_id: CLIENT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: Secret::new(CLIENT_SECRET),
        }],
    };
    let upstream = HttpTransport::new(config).unwrap();
    Proxy::start(ProxyConfig { upstream, store, auth, mode, limits, tls: None }).await.unwrap()
}

/// A client of the proxy: the transport, without retries.
fn client(proxy: &Proxy, auth: Auth) -> HttpTransport {
    let config = HttpConfig::new("us-east-1", auth)
        .with_endpoint_url(proxy.url())
        .with_retry(RetryConfig { max_attempts: 1, ..RetryConfig::default() })
        .with_timeouts(short());
    HttpTransport::new(config).unwrap()
}

fn short() -> Timeouts {
    Timeouts {
        response: Duration::from_secs(30),
        first_event: Duration::from_secs(30),
        ..Timeouts::default()
    }
}

/// One raw HTTP/1.1 exchange: the status line and headers, and the body.
async fn raw(proxy: &Proxy, request: String) -> (String, String) {
    let mut tcp = TcpStream::connect(proxy.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

fn post(path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: proxy\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request
}

async fn sessions(store: &dyn SessionStore) -> Vec<Vec<Role>> {
    let query = ListQuery { tag: Some("proxy".to_owned()), ..ListQuery::default() };
    let mut out = Vec::new();
    for info in store.list(&query).await.unwrap().sessions {
        out.push(
            store.load(info.id).await.unwrap().messages().iter().map(|m| m.message.role).collect(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_pass_and_a_cut_or_failed_stream_is_never_recorded_as_a_reply() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let proxy = proxy(&emulator, store.clone(), Mode::Observe, Limits::default()).await;
    let client = client(&proxy, Auth::api_key(CLIENT_KEY));
    let call = || Call::new(Api::Converse, MODEL, BODY);

    // A whole stream: its events as the emulator sent them, and the reply recorded.
    let mut events = client.stream(call()).await.unwrap();
    let mut names = Vec::new();
    while let Some(event) = events.next().await {
        names.push(event.unwrap().event_type);
    }
    assert_eq!(names.first().map(String::as_str), Some("messageStart"), "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("metadata"), "{names:?}");
    assert!(names.iter().any(|n| n == "contentBlockDelta"), "{names:?}");
    assert_eq!(sessions(store.as_ref()).await, [vec![Role::User, Role::Assistant]]);

    // Cut after two events, or an exception frame after two: the client sees the break, and
    // only the input is recorded.
    emulator.inject(Fault::Reset { after: 2 });
    let mut events = client.stream(call()).await.unwrap();
    let mut failed = false;
    while let Some(event) = events.next().await {
        failed |= event.is_err();
    }
    assert!(failed, "the cut reached the client as an error");
    emulator.inject(Fault::StreamException { after: 2, exception: StreamException::Throttling });
    let mut events = client.stream(call()).await.unwrap();
    let mut exception = None;
    while let Some(event) = events.next().await {
        if let Err(TransportError::Api(error)) = event {
            exception = Some(error.exception.to_string());
        }
    }
    assert!(exception.is_some_and(|e| e.contains("hrottling")), "the exception frame passed");
    // The client stops at the exception frame; the proxy records once the stream ends.
    let mut recorded = sessions(store.as_ref()).await;
    for _ in 0..50 {
        if recorded.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        recorded = sessions(store.as_ref()).await;
    }
    recorded.sort_by_key(Vec::len);
    assert_eq!(recorded, [vec![Role::User], vec![Role::User], vec![Role::User, Role::Assistant]]);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_pass_unchanged_and_the_session_header_names_the_session() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let proxy = proxy(&emulator, store.clone(), Mode::Observe, Limits::default()).await;
    let path = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
    let bearer = format!("Bearer {CLIENT_KEY}");
    emulator.inject(Fault::Throttle);
    let (head, body) = raw(
        &proxy,
        post(path, &[("authorization", &bearer), ("content-type", "application/json")], BODY),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-amzn-errortype: throttlingexception"), "{head}");
    assert_eq!(body, r#"{"message":"Too many requests, please wait before trying again."}"#);

    let (head, answer) = raw(&proxy, post(path, &[("authorization", &bearer)], BODY)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let id = head
        .lines()
        .find_map(|line| line.strip_prefix("x-verbatim-session: "))
        .unwrap_or_else(|| panic!("no session header in {head}"))
        .to_owned();
    let reply = &answer["output"]["message"];
    let next = serde_json::json!({"messages": [
        {"role": "user", "content": [{"text": "Hello"}]},
        reply,
        {"role": "user", "content": [{"text": "Again"}]},
    ]})
    .to_string();
    let (head, _) =
        raw(&proxy, post(path, &[("authorization", &bearer), ("x-verbatim-session", &id)], &next))
            .await;
    assert!(head.contains(&format!("x-verbatim-session: {id}")), "{head}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_auth_oversized_slow_and_hostile_requests_are_answered_before_any_upstream_call() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let limits = Limits {
        max_body: 4096,
        body_read_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let proxy = proxy(&emulator, store.clone(), Mode::Guard, limits).await;
    let path = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
    let bearer = format!("Bearer {CLIENT_KEY}");

    // Bad auth: none, a wrong key, the upstream's own key, a key twice, a wrong signature.
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("x-api-key", UPSTREAM_KEY)],
        vec![("authorization", bearer.as_str()), ("x-api-key", CLIENT_KEY)],
    ] {
        let (head, _) = raw(&proxy, post(path, &headers, BODY)).await;
        assert!(
            head.starts_with("HTTP/1.1 403") || head.starts_with("HTTP/1.1 400"),
            "{headers:?}: {head}"
        );
    }
    let wrong = client(&proxy, Auth::credentials(CLIENT_ACCESS_KEY_ID, "wrong-secret", None));
    let refused = wrong.send(Call::new(Api::Converse, MODEL, BODY)).await.unwrap_err();
    assert_eq!(refused.api().map(|e| e.status), Some(403), "{refused}");
    // The issued SigV4 credentials are accepted, and signed afresh upstream with the API key.
    let signed = client(&proxy, Auth::credentials(CLIENT_ACCESS_KEY_ID, CLIENT_SECRET, None));
    signed.send(Call::new(Api::Converse, MODEL, BODY)).await.unwrap();
    assert_eq!(proxy.upstream_calls(), 1);

    // Oversized: by its declared length, and by what arrives past a false one.
    let big = format!(
        r#"{{"messages":[{{"role":"user","content":[{{"text":"{}"}}]}}]}}"#,
        "x".repeat(5000)
    );
    let (head, _) = raw(&proxy, post(path, &[("authorization", &bearer)], &big)).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let chunked = format!(
        "POST {path} HTTP/1.1\r\nhost: proxy\r\nconnection: close\r\nauthorization: {bearer}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let (head, _) = raw(&proxy, chunked).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // Slow: a body that never comes in full.
    let slow = format!(
        "POST {path} HTTP/1.1\r\nhost: proxy\r\nauthorization: {bearer}\r\ncontent-length: 100\r\n\r\n{{\"mess"
    );
    let (head, _) = raw_open(&proxy, slow).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    // Slow headers: the connection is closed.
    let mut tcp = TcpStream::connect(proxy.addr()).await.unwrap();
    tcp.write_all(format!("POST {path} HTTP/1.1\r\nhost: proxy\r\n").as_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a client stalled inside its headers is disconnected");
    // Hostile bodies: not JSON, not an object, a history that breaks a rule.
    for body in [
        "{\"messages\": [",
        "[1,2]",
        "\u{feff}{}",
        r#"{"messages":[{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"r"}]}}]}]}"#,
    ] {
        let (head, answer) = raw(&proxy, post(path, &[("authorization", &bearer)], body)).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{body}: {head}");
        assert!(answer.contains("\"message\""), "{answer}");
    }
    // Paths no operation serves.
    let (head, answer) =
        raw(&proxy, post("/model/arn:aws:bedrock/x/converse", &[("authorization", &bearer)], BODY))
            .await;
    assert!(
        head.starts_with("HTTP/1.1 200") && answer.contains("UnknownOperationException"),
        "{head}"
    );
    let bodies: Vec<String> =
        emulator.received().iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    assert_eq!(proxy.upstream_calls(), 1, "none of them reached the model: {bodies:?}");
    assert_eq!(emulator.received().len(), 1);
    proxy.shutdown().await;
}

/// A raw exchange that does not close its side: the proxy must answer on its own.
async fn raw_open(proxy: &Proxy, request: String) -> (String, String) {
    let mut tcp = TcpStream::connect(proxy.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = vec![0u8; 4096];
    let n =
        tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out[..n]).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_secret_reaches_no_client_no_store_no_debug_output_and_no_log_line() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = serve_command(&data, &emulator.url(), UPSTREAM_KEY);
    command.args(["--api-key", CLIENT_KEY]).env("RUST_LOG", "trace").stderr(Stdio::piped());
    let (mut child, url) = spawn_serve(command);
    // Read as it comes: a full pipe would stop the logging process.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let config = HttpConfig::new("us-east-1", Auth::api_key(CLIENT_KEY))
        .with_endpoint_url(url)
        .with_retry(RetryConfig { max_attempts: 1, ..RetryConfig::default() })
        .with_timeouts(short());
    let client = HttpTransport::new(config).unwrap();
    let mut answers = String::new();
    emulator.inject(Fault::Internal);
    answers.push_str(
        &client.send(Call::new(Api::Converse, MODEL, BODY)).await.unwrap_err().to_string(),
    );
    answers.push_str(&String::from_utf8_lossy(
        &client.send(Call::new(Api::Converse, MODEL, BODY)).await.unwrap().body,
    ));
    let mut events = client.stream(Call::new(Api::InvokeModel, MODEL, r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}"#)).await.unwrap();
    while let Some(event) = events.next().await {
        answers.push_str(&String::from_utf8_lossy(&event.unwrap().payload));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stderr = logged.join().unwrap();
    assert!(stderr.contains("TRACE") || stderr.contains("DEBUG"), "the log was on: {stderr:.400}");
    assert!(!stderr.contains(UPSTREAM_KEY), "the log holds the upstream key");
    assert!(!answers.contains(UPSTREAM_KEY));
    assert!(
        !store_files_contain(&data, UPSTREAM_KEY.as_bytes()),
        "the store holds the upstream key"
    );
    assert!(!store_files_contain(&data, CLIENT_KEY.as_bytes()), "the store holds the client key");
    let config = HttpConfig::new("us-east-1", Auth::api_key(UPSTREAM_KEY));
    let debug = format!("{:?}", HttpTransport::new(config).unwrap());
    assert!(!debug.contains(UPSTREAM_KEY), "{debug}");
    let auth = ClientAuth {
        api_keys: vec![Secret::new(CLIENT_KEY)],
        credentials: vec![IssuedCredentials {
            access_key_id: "A".into(),
            secret_access_key: Secret::new(CLIENT_SECRET),
        }],
    };
    let debug = format!("{auth:?}");
    assert!(!debug.contains(CLIENT_KEY) && !debug.contains(CLIENT_SECRET), "{debug}");
}

fn store_files_contain(dir: &Path, needle: &[u8]) -> bool {
    let mut found = false;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found |= store_files_contain(&path, needle);
        } else if let Ok(bytes) = std::fs::read(&path) {
            found |= bytes.windows(needle.len()).any(|w| w == needle);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_sends_the_fixed_request_and_records_its_fixes_and_observe_sends_it_unchanged() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let broken = r#"{"messages":[{"role":"user","content":[{"text":"Hi"}]},{"role":"user","content":[{"text":"Hello"}]}]}"#;
    for (mode, expected) in
        [(Mode::Repair, "proxy repaired: "), (Mode::Observe, "proxy observed: ")]
    {
        let store: Arc<dyn SessionStore> =
            Arc::new(SledStore::open(dir.path().join(mode.as_str())).unwrap());
        let proxy = proxy(&emulator, store.clone(), mode, Limits::default()).await;
        let client = client(&proxy, Auth::api_key(CLIENT_KEY));
        let answer = client.send(Call::new(Api::Converse, MODEL, broken)).await;
        let sent = emulator.received().pop().unwrap();
        let sent: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
        let query = ListQuery { tag: Some("proxy".to_owned()), ..ListQuery::default() };
        let listed = store.list(&query).await.unwrap().sessions;
        if mode == Mode::Repair {
            answer.unwrap();
            let messages = store.load(listed[0].id).await.unwrap().messages();
            assert_eq!(sent["messages"].as_array().unwrap().len(), 1, "merged: {sent}");
            let notes = &messages.last().unwrap().provenance.as_ref().unwrap().notes;
            assert!(notes.iter().any(|n| n.starts_with(expected)), "{notes:?}");
            // The fix reads as `verbatim repair` prints it, never as Rust's Debug form.
            assert!(notes.iter().any(|n| n.contains(r#"{"op":"#)), "{notes:?}");
        } else {
            // Observed: sent as it came; the emulator's own refusal passes, and a refused
            // exchange leaves no session.
            assert_eq!(sent["messages"].as_array().unwrap().len(), 2);
            assert_eq!(answer.unwrap_err().api().map(|e| e.status), Some(400));
            assert!(listed.is_empty());
        }
        proxy.shutdown().await;
    }
}

/// A Messages API upstream that answers every request with an SSE stream sending one event
/// every 50 ms until it cannot write; the flag says it could not (the proxy hung up).
async fn endless_upstream() -> (String, Arc<std::sync::atomic::AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cancelled.clone();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 65536];
        let _ = tcp.read(&mut request).await.unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let event = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n";
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        if tcp.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..200 {
            if tcp.write_all(chunk.as_bytes()).await.is_err() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (url, cancelled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_stream_cancels_the_upstream_call() {
    let (url, cancelled) = endless_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let config = HttpConfig::new("us-east-1", Auth::api_key(UPSTREAM_KEY)).with_endpoint_url(url);
    let auth = ClientAuth { api_keys: vec![Secret::new(CLIENT_KEY)], credentials: Vec::new() };
    let upstream = HttpTransport::new(config).unwrap();
    let config = ProxyConfig {
        upstream,
        store: store.clone(),
        auth,
        mode: Mode::Observe,
        limits: Limits::default(),
        tls: None,
    };
    let proxy = Proxy::start(config).await.unwrap();
    let client = client(&proxy, Auth::api_key(CLIENT_KEY));
    let body = r#"{"max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}"#;
    let mut events =
        client.stream(Call::new(Api::Messages, "anthropic.claude-opus-4-7", body)).await.unwrap();
    events.next().await.unwrap().unwrap();
    drop(events);
    drop(client);
    for _ in 0..100 {
        if cancelled.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancelled.load(std::sync::atomic::Ordering::SeqCst), "the upstream stream went on");
    // Nothing of it is a reply; the input alone is recorded.
    let mut recorded = sessions(store.as_ref()).await;
    for _ in 0..50 {
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        recorded = sessions(store.as_ref()).await;
    }
    assert_eq!(recorded, [vec![Role::User]]);
    proxy.shutdown().await;
}
