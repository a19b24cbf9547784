//! What `verbatim serve` keeps, checked against what crossed the wire: a thinking tool loop
//! through the proxy exports (`verbatim sessions export`) with the thinking text, signatures
//! and tool inputs (their numbers' digits) byte-equal to the upstream's replies, read by a
//! relay that records the bytes between the proxy and the emulator; a call refused upstream
//! names no session that was never stored; and two calls at once on one session both get
//! recorded, the second in a fork at the point both continued.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use verbatim_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, Fault};
use verbatim_model::Role;
use verbatim_proxy::{ClientAuth, Limits, Mode, Proxy, ProxyConfig};
use verbatim_store::{ListQuery, SessionStore, SledStore};
use verbatim_transport::{Auth, HttpConfig, HttpTransport, Secret};

const PATH: &str = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";

/// The bytes each connection's server side sent, in the order they arrived.
type Recorded = Arc<Mutex<Vec<Vec<u8>>>>;

/// A TCP relay in front of `upstream` that keeps every byte the upstream answers.
async fn recording_relay(upstream: SocketAddr) -> (SocketAddr, Recorded) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorded: Recorded = Arc::default();
    let log = recorded.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            let slot = {
                let mut log = log.lock().unwrap();
                log.push(Vec::new());
                log.len() - 1
            };
            let log = log.clone();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                loop {
                    let n = match server_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    log.lock().unwrap()[slot].extend_from_slice(&buffer[..n]);
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, recorded)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The bodies of the HTTP/1.1 responses in `bytes` (sized or chunked, without trailers).
fn bodies(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(end) = find(bytes, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        bytes = &bytes[end + 4..];
        let header = |name: &str| {
            head.lines().find_map(|line| Some(line.strip_prefix(name)?.trim().to_owned()))
        };
        let mut body = Vec::new();
        if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            loop {
                let line = find(bytes, b"\r\n").unwrap();
                let size = String::from_utf8_lossy(&bytes[..line]);
                let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16);
                bytes = &bytes[line + 2..];
                let size = size.unwrap();
                if size == 0 {
                    bytes = &bytes[2..];
                    break;
                }
                body.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
        } else {
            let length: usize = header("content-length:").map_or(0, |v| v.parse().unwrap());
            body.extend_from_slice(&bytes[..length]);
            bytes = &bytes[length..];
        }
        out.push(body);
    }
    out
}

async fn proxy(upstream: String, store: Arc<dyn SessionStore>) -> Proxy {
    let config =
        HttpConfig::new("us-east-1", Auth::api_key(DEFAULT_API_KEY)).with_endpoint_url(upstream);
    let config = ProxyConfig {
        upstream: HttpTransport::new(config).unwrap(),
        store,
        auth: ClientAuth { api_keys: vec![Secret::new(DEFAULT_API_KEY)], credentials: Vec::new() },
        mode: Mode::Observe,
        limits: Limits::default(),
        tls: None,
    };
    Proxy::start(config).await.unwrap()
}

/// One Converse call to the proxy on a new connection: the status line and headers, the body.
async fn converse(proxy: SocketAddr, body: &str, session: Option<&str>) -> (String, String) {
    let mut request = format!(
        "POST {PATH} HTTP/1.1\r\nhost: proxy\r\nconnection: close\r\ncontent-type: application/json\r\nauthorization: Bearer {DEFAULT_API_KEY}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(id) = session {
        request.push_str(&format!("x-verbatim-session: {id}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

fn session_header(head: &str) -> Option<String> {
    head.lines().find_map(|line| Some(line.strip_prefix("x-verbatim-session: ")?.to_owned()))
}

/// A Converse answer's message, as the text it arrived in.
fn raw_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        output: Output<'a>,
    }
    #[derive(Deserialize)]
    struct Output<'a> {
        #[serde(borrow)]
        message: &'a RawValue,
    }
    let answer: Answer<'_> = serde_json::from_str(body).unwrap();
    answer.output.message.get().to_owned()
}

/// What must be byte-equal in a Converse message: each block's thinking text, signature, text,
/// and tool input as the JSON text it is written in.
fn exact_parts(message: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        content: Vec<Block<'a>>,
    }
    #[derive(Deserialize)]
    struct Block<'a> {
        text: Option<String>,
        #[serde(rename = "reasoningContent")]
        reasoning: Option<Value>,
        #[serde(rename = "toolUse", borrow)]
        tool_use: Option<ToolUse<'a>>,
    }
    #[derive(Deserialize)]
    struct ToolUse<'a> {
        #[serde(rename = "toolUseId")]
        id: String,
        name: String,
        #[serde(borrow)]
        input: &'a RawValue,
    }
    let message: Message<'_> = serde_json::from_str(message).unwrap();
    let mut parts = Vec::new();
    for block in message.content {
        if let Some(text) = block.text {
            parts.push(format!("text {text}"));
        }
        if let Some(reasoning) = block.reasoning {
            let thought = &reasoning["reasoningText"];
            parts.push(format!("thinking {}", thought["text"].as_str().unwrap()));
            parts.push(format!("signature {}", thought["signature"].as_str().unwrap()));
        }
        if let Some(tool) = block.tool_use {
            parts.push(format!("tool {} {} {}", tool.id, tool.name, tool.input.get()));
        }
    }
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thinking_tool_loop_exports_byte_equal_to_what_the_model_sent() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let (relay, recorded) = recording_relay(emulator.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let proxy = proxy(format!("http://{relay}"), store.clone()).await;

    // The loop, as a client writes it: each answer's message sent back as the text it came in.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/proxy_tool_loop.converse.json");
    let mut request: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let (head, first) = converse(proxy.addr(), &request.to_string(), None).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{first}");
    let id = session_header(&head).expect("the session is named");
    let first = raw_message(&first);
    let tool_use_id = serde_json::from_str::<Value>(&first).unwrap()["content"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|b| b["toolUse"]["toolUseId"].as_str().map(str::to_owned))
        .expect("the model called the tool");
    let result = serde_json::json!({"role": "user", "content": [
        {"toolResult": {"toolUseId": tool_use_id, "content": [{"json": {"parcels": 3}}]}}
    ]});
    request["messages"].as_array_mut().unwrap().push(Value::Null);
    request["messages"].as_array_mut().unwrap().push(result);
    let body = request.to_string().replacen("null", &first, 1);
    let (head, second) = converse(proxy.addr(), &body, None).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{second}");
    assert_eq!(
        session_header(&head).as_deref(),
        Some(id.as_str()),
        "the loop stays in one session"
    );
    let second = raw_message(&second);

    // What the upstream sent, read from the relay's record, not from the proxy.
    let upstream: Vec<String> = recorded
        .lock()
        .unwrap()
        .iter()
        .flat_map(|bytes| bodies(bytes))
        .map(|body| raw_message(std::str::from_utf8(&body).unwrap()))
        .collect();
    assert_eq!(upstream.len(), 2, "two model calls");
    assert!(upstream.contains(&first) && upstream.contains(&second), "the proxy passed them");
    let sent: Vec<Vec<String>> = [&first, &second].map(|m| exact_parts(m)).into();
    let all: Vec<&String> = sent.iter().flatten().collect();
    assert!(all.iter().any(|p| p.starts_with("thinking ")), "{all:?}");
    assert!(all.iter().any(|p| p.starts_with("signature ")), "{all:?}");
    let tool = all.iter().find(|p| p.starts_with("tool ")).unwrap();
    assert!(tool.contains(r#""count":9007199254740993"#), "{tool}");
    assert!(tool.contains(r#""ratio":0.1"#) && tool.contains(r#""tiny":1e-7"#), "{tool}");

    // The export, by the binary, from the store the proxy wrote (its lock released first).
    proxy.shutdown().await;
    drop(store);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["sessions", "export", &id, "--data"])
        .arg(dir.path())
        .env_remove("VERBATIM_STORE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    #[derive(Deserialize)]
    struct Export<'a> {
        #[serde(borrow)]
        messages: Vec<&'a RawValue>,
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let export: Export<'_> = serde_json::from_str(text.trim()).unwrap();
    let exported: Vec<Vec<String>> = export
        .messages
        .iter()
        .filter(|m| serde_json::from_str::<Value>(m.get()).unwrap()["role"] == "assistant")
        .map(|m| exact_parts(m.get()))
        .collect();
    assert_eq!(exported, sent);
    // The user turns too: the tool result's number as the client wrote it.
    assert!(text.contains(r#"{"json":{"parcels":3}}"#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_upstream_names_only_a_session_that_is_stored() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let proxy = proxy(emulator.url(), store.clone()).await;
    let hello = r#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#;
    let all = || async {
        let query = ListQuery { tag: Some("proxy".to_owned()), ..ListQuery::default() };
        store.list(&query).await.unwrap().sessions.len()
    };

    // A new conversation refused upstream: nothing stored, no session named.
    emulator.inject(Fault::Throttle);
    let (head, _) = converse(proxy.addr(), hello, None).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert_eq!(session_header(&head), None, "{head}");
    assert_eq!(all().await, 0);

    // A stored session's next call refused: the session it belongs to is named, and exists.
    let (head, answer) = converse(proxy.addr(), hello, None).await;
    let id = session_header(&head).unwrap();
    let reply = &serde_json::from_str::<Value>(&answer).unwrap()["output"]["message"];
    let next = serde_json::json!({"messages": [
        {"role": "user", "content": [{"text": "Hello"}]}, reply,
        {"role": "user", "content": [{"text": "Again"}]},
    ]})
    .to_string();
    emulator.inject(Fault::Internal);
    let (head, _) = converse(proxy.addr(), &next, None).await;
    assert!(head.starts_with("HTTP/1.1 500"), "{head}");
    assert_eq!(session_header(&head).as_deref(), Some(id.as_str()), "{head}");
    assert_eq!(all().await, 1);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_at_once_on_one_session_are_both_recorded_the_second_in_a_fork() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let proxy = proxy(emulator.url(), store.clone()).await;
    let (head, answer) =
        converse(proxy.addr(), r#"{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"#, None)
            .await;
    let id = session_header(&head).unwrap();
    let reply = serde_json::from_str::<Value>(&answer).unwrap()["output"]["message"].clone();
    let next = |text: &str| {
        serde_json::json!({"messages": [
            {"role": "user", "content": [{"text": "Hi"}]}, reply,
            {"role": "user", "content": [{"text": text}]},
        ]})
        .to_string()
    };

    // The slow call is located (and forwarded) first; the fast one, on the same session,
    // overtakes it and is recorded first.
    emulator.inject(Fault::SlowFirstByte { millis: 1500 });
    let addr = proxy.addr();
    let (slow_body, named) = (next("slow"), id.clone());
    let slow = tokio::spawn(async move { converse(addr, &slow_body, Some(named.as_str())).await });
    for _ in 0..100 {
        if emulator.received().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(emulator.received().len(), 2, "the slow call reached the model");
    let (head, _) = converse(proxy.addr(), &next("fast"), Some(&id)).await;
    assert_eq!(session_header(&head).as_deref(), Some(id.as_str()), "{head}");
    let (head, _) = slow.await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let fork = session_header(&head).unwrap();
    assert_ne!(fork, id, "the slow exchange went into a fork: {head}");

    let texts = |id: String| {
        let store = store.clone();
        async move {
            let session = store.load(verbatim_model::SessionId::parse(&id).unwrap()).await.unwrap();
            session
                .messages()
                .iter()
                .filter(|m| m.message.role == Role::User)
                .map(|m| format!("{:?}", m.message.content))
                .collect::<Vec<_>>()
        }
    };
    let (main, forked) = (texts(id).await, texts(fork).await);
    assert_eq!(main.len(), 2);
    assert!(main[1].contains("fast"), "{main:?}");
    assert_eq!(forked.len(), 2);
    assert!(forked[1].contains("slow"), "{forked:?}");
    assert_eq!(main[0], forked[0], "the fork holds the history both continued");
    proxy.shutdown().await;
}

/// Any number of proxies on one PostgreSQL database: a conversation whose calls go to two
/// proxies in turn, without naming its session, is found by its prefix in the shared store
/// and recorded as one session, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_on_one_postgres_record_one_conversation_in_one_session() {
    let Some(schema) = crate::postgres::Schema::for_test(
        "two_proxies_on_one_postgres_record_one_conversation_in_one_session",
        "verbatim_two_proxies",
    ) else {
        return;
    };
    let url = schema.url.clone();
    let connect = || async {
        let options =
            verbatim::PostgresOptions { schema: Some(schema.name.clone()), ..Default::default() };
        let store = verbatim::PostgresStore::connect_with(&url, options).await.unwrap();
        Arc::new(store) as Arc<dyn SessionStore>
    };
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let proxies = [
        proxy(emulator.url(), connect().await).await,
        proxy(emulator.url(), connect().await).await,
    ];

    let mut messages = vec![serde_json::json!({"role": "user", "content": [{"text": "Turn 0"}]})];
    let mut ids = Vec::new();
    for turn in 0..4 {
        let body = serde_json::json!({"messages": messages}).to_string();
        let (head, answer) = converse(proxies[turn % 2].addr(), &body, None).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        ids.push(session_header(&head).expect("the session is named"));
        messages.push(serde_json::from_str::<Value>(&answer).unwrap()["output"]["message"].clone());
        messages.push(serde_json::json!({"role": "user", "content": [{"text": format!("Turn {}", turn + 1)}]}));
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "one session across both proxies: {ids:?}");
    let session =
        connect().await.load(verbatim_model::SessionId::parse(&ids[0]).unwrap()).await.unwrap();
    let stored: Vec<String> = session
        .messages()
        .iter()
        .filter(|m| m.message.role == Role::User)
        .map(|m| format!("{:?}", m.message.content))
        .collect();
    assert_eq!(stored.len(), 4, "{stored:?}");
    for (k, text) in stored.iter().enumerate() {
        assert!(text.contains(&format!("Turn {k}")), "in order: {stored:?}");
    }
    for proxy in proxies {
        proxy.shutdown().await;
    }
}

/// A call naming a session its request does not continue (a client that kept the header of
/// another conversation) is recorded in the session it does continue, found by its prefix,
/// and the named one is left as it was.
#[tokio::test]
async fn a_call_naming_a_session_it_does_not_continue_goes_to_the_one_it_continues() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let proxy = proxy(emulator.url(), store.clone()).await;
    let start = |text: &str| {
        serde_json::json!({"messages": [{"role": "user", "content": [{"text": text}]}]}).to_string()
    };
    let (head, _) = converse(proxy.addr(), &start("About cats"), None).await;
    let cats = session_header(&head).unwrap();
    let (head, answer) = converse(proxy.addr(), &start("About dogs"), None).await;
    let dogs = session_header(&head).unwrap();
    assert_ne!(cats, dogs);
    let reply = &serde_json::from_str::<Value>(&answer).unwrap()["output"]["message"];
    let next = serde_json::json!({"messages": [
        {"role": "user", "content": [{"text": "About dogs"}]}, reply,
        {"role": "user", "content": [{"text": "More about dogs"}]},
    ]})
    .to_string();
    let (head, _) = converse(proxy.addr(), &next, Some(&cats)).await;
    assert_eq!(session_header(&head).as_deref(), Some(dogs.as_str()), "{head}");
    let count = |id: &str| {
        let (store, id) = (store.clone(), verbatim_model::SessionId::parse(id).unwrap());
        async move { store.load(id).await.unwrap().messages().len() }
    };
    assert_eq!(count(&dogs).await, 4, "the exchange went to the conversation it continues");
    assert_eq!(count(&cats).await, 2, "the named session is left as it was");
    proxy.shutdown().await;
}
