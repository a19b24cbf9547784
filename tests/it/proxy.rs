//! `verbatim serve` between boto3 (unchanged, `tests/python/bedrock_sdk.py` and
//! `tests/python/proxy_client.py`) and the emulator: every operation passes, tool loops
//! streamed and whole are recorded as the model sent them, a proxy killed between two turns
//! is started again and the loop continues, thinking a client stripped is restored, and
//! `guard` refuses a broken history with Bedrock's text without calling the model. Skipped,
//! with a note, where `python3` has no boto3, unless `VERBATIM_REQUIRE_BOTO3` is set.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::Value;
use verbatim_emulator::{
    DEFAULT_ACCESS_KEY_ID, DEFAULT_API_KEY, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig,
};
use verbatim_model::{Api, HistoryMessage, Role};
use verbatim_protocol::{anthropic, converse};
use verbatim_proxy::{ClientAuth, IssuedCredentials, Limits, Mode, Proxy, ProxyConfig, Tls};
use verbatim_store::{ListQuery, SessionStore, SledStore};
use verbatim_transport::{Auth, HttpConfig, HttpTransport, Secret};

use crate::python_sdk::{boto3_available, python, run_script_with, sdk_available, strings};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}

fn boto3() -> bool {
    sdk_available(boto3_available(), "VERBATIM_REQUIRE_BOTO3", "boto3", "pip install boto3")
}

/// The emulator's own keys are the proxy's client keys here, so the SDK scripts run unchanged.
fn client_auth() -> ClientAuth {
    ClientAuth {
        api_keys: vec![Secret::new(DEFAULT_API_KEY)],
        credentials: vec![IssuedCredentials {
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: Secret::new(DEFAULT_SECRET_ACCESS_KEY),
        }],
    }
}

async fn proxy(emulator: &Emulator, store: Arc<dyn SessionStore>, mode: Mode) -> Proxy {
    let config = HttpConfig::new("us-east-1", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(emulator.url())
        .with_mantle_endpoint_url(emulator.url());
    let upstream = HttpTransport::new(config).unwrap();
    let config = ProxyConfig {
        upstream,
        store,
        auth: client_auth(),
        mode,
        limits: Limits::default(),
        tls: None,
    };
    Proxy::start(config).await.unwrap()
}

/// An emulator, a sled store in a new directory and a proxy between, in `mode`.
struct Setup {
    emulator: Emulator,
    dir: tempfile::TempDir,
    store: Arc<dyn SessionStore>,
    proxy: Proxy,
}

async fn setup(mode: Mode) -> Setup {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let proxy = proxy(&emulator, store.clone(), mode).await;
    Setup { emulator, dir, store, proxy }
}

/// Runs `script` with `args` (the endpoint first) and reads the JSON it prints.
async fn run(script: PathBuf, url: String, args: &[&str]) -> Value {
    let name = script.file_name().unwrap().to_string_lossy().into_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut command = python();
        command.arg(&script).arg(url).args(&args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed ({}):\n{stderr}\n{stdout}", out.status);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{name} printed no JSON ({e}):\n{stdout}"))
}

/// Every session the proxy recorded, as messages.
async fn recorded(store: &dyn SessionStore) -> Vec<Vec<HistoryMessage>> {
    let query = ListQuery { tag: Some("proxy".to_owned()), limit: 1000, ..ListQuery::default() };
    let mut out = Vec::new();
    for info in store.list(&query).await.unwrap().sessions {
        out.push(store.load(info.id).await.unwrap().messages());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_through_the_proxy_runs_every_operation_and_the_sessions_hold_what_the_model_sent() {
    if !boto3() {
        return;
    }
    let Setup { emulator, store, proxy, .. } = setup(Mode::Observe).await;
    let url = proxy.url();
    let out = tokio::task::spawn_blocking(move || {
        run_script_with(python(), crate::python_sdk::script(), url)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bedrock_sdk.py through the proxy failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    for name in ["tool_loop", "stream_tool_loop"] {
        let tool_loop = &seen[name];
        assert_eq!(strings(&tool_loop["first_kinds"]), ["reasoningContent", "toolUse"], "{name}");
        assert_eq!(tool_loop["final_stop_reason"], "end_turn", "{name}: {tool_loop}");
    }
    assert_eq!(
        strings(&seen["converse_stream"]["events"]),
        ["messageStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"],
    );
    let received = emulator.received();
    assert_eq!(proxy.upstream_calls(), received.len() as u64, "one upstream call per client call");

    // Every assistant message a client sent back (as boto3 parsed it from the model's answer,
    // whole or streamed) is in a recorded session, equal to it: thinking text, signatures,
    // redacted bytes and tool inputs byte for byte.
    let sessions = recorded(store.as_ref()).await;
    let mut compared = 0;
    for request in received.iter().filter(|r| r.status == 200) {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let Some(messages) = body["messages"].as_array().filter(|m| m.len() >= 3) else { continue };
        let sent_back = &messages[1];
        let api = if request.operation.starts_with("converse") {
            Api::Converse
        } else {
            Api::InvokeModel
        };
        let found = sessions.iter().any(|session| {
            session.len() >= 2 && session[1].message.role == Role::Assistant && {
                let stored = match api {
                    Api::Converse => converse::encode_message(&session[1].message),
                    _ => anthropic::encode_message(&session[1].message),
                };
                stored.ok().as_ref() == Some(sent_back)
            }
        });
        assert!(
            found,
            "no recorded session holds the assistant turn sent back to {}: {sent_back}",
            request.path
        );
        compared += 1;
    }
    assert!(compared >= 4, "the tool loops' second calls were compared ({compared})");
    let with_usage = sessions
        .iter()
        .flatten()
        .filter(|m| {
            m.provenance.as_ref().is_some_and(|p| p.usage.is_some() && p.prefix_hash.is_some())
        })
        .count();
    assert!(with_usage >= 8, "replies carry provenance and usage ({with_usage})");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_strips_or_blanks_thinking_gets_it_restored_and_the_loop_is_accepted() {
    if !boto3() {
        return;
    }
    let Setup { emulator, dir, store, proxy } = setup(Mode::Guard).await;
    for step in ["strip", "blank"] {
        let state = dir.path().join(format!("{step}.json"));
        let state = state.to_str().unwrap();
        let first = run(script("proxy_client.py"), proxy.url(), &["first", state]).await;
        assert_eq!(strings(&first["kinds"]), ["reasoningContent", "toolUse"], "{first}");
        let second = run(script("proxy_client.py"), proxy.url(), &[step, state]).await;
        assert_eq!(second["stop_reason"], "end_turn", "{step}: {second}");
        assert_eq!(second["session"], first["session"], "{step}: found by its prefix");
        // What reached the model carried the stored thinking.
        let last = emulator.received().pop().unwrap();
        let body: Value = serde_json::from_slice(&last.body).unwrap();
        let sent = &body["messages"][1]["content"][0]["reasoningContent"]["reasoningText"];
        assert!(sent["text"].as_str().is_some_and(|t| !t.is_empty()), "{step}: {body}");
    }
    let sessions = recorded(store.as_ref()).await;
    assert_eq!(sessions.len(), 2, "one session per loop");
    for session in &sessions {
        assert_eq!(session.len(), 4);
        let notes = &session[3].provenance.as_ref().unwrap().notes;
        assert!(
            notes.iter().any(|n| n.contains("restored the stored thinking of messages[1]")),
            "{notes:?}"
        );
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_refuses_a_broken_history_with_bedrocks_text_and_calls_no_model() {
    if !boto3() {
        return;
    }
    let Setup { emulator, dir, proxy, .. } = setup(Mode::Guard).await;
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    run(script("proxy_client.py"), proxy.url(), &["first", state]).await;
    let calls = proxy.upstream_calls();
    let refused = run(script("proxy_client.py"), proxy.url(), &["broken", state]).await;
    assert_eq!(proxy.upstream_calls(), calls, "no upstream call for a refused request");
    assert_eq!(emulator.received().len() as u64, calls);
    assert_eq!(refused["code"], "ValidationException", "{refused}");
    assert_eq!(refused["status"], 400);

    // The emulator, judging the same body on its own, answers the same text.
    let observe = proxy_observe(&emulator, &dir).await;
    let direct = run(script("proxy_client.py"), observe.url(), &["broken", state]).await;
    assert_eq!(direct["code"], "ValidationException");
    assert_eq!(refused["message"], direct["message"], "Bedrock's own text");
    observe.shutdown().await;
    proxy.shutdown().await;
}

async fn proxy_observe(emulator: &Emulator, dir: &tempfile::TempDir) -> Proxy {
    let store: Arc<dyn SessionStore> =
        Arc::new(SledStore::open(dir.path().join("observe")).unwrap());
    proxy(emulator, store, Mode::Observe).await
}

/// `verbatim serve` on the sled directory `data`, forwarding to `upstream` with the API key
/// `upstream_key`, away from the user's AWS configuration; clients add their keys.
pub(crate) fn serve_command(data: &Path, upstream: &str, upstream_key: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--upstream", upstream])
        .arg("--data")
        .arg(data)
        .env("AWS_BEARER_TOKEN_BEDROCK", upstream_key)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
        .env_remove("VERBATIM_STORE")
        .stdout(Stdio::piped());
    command
}

/// Starts `command` (a [`serve_command`]) and reads its URL from its first line.
pub(crate) fn spawn_serve(mut command: Command) -> (Child, String) {
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (child, url)
}

/// A guarding `verbatim serve` taking the emulator's keys from clients, and its URL.
fn serve(data: &Path, upstream: &str) -> (Child, String) {
    let mut command = serve_command(data, upstream, DEFAULT_API_KEY);
    command
        .args(["--mode", "guard", "--api-key", DEFAULT_API_KEY])
        .args(["--access-key-id", DEFAULT_ACCESS_KEY_ID])
        .args(["--secret-access-key", DEFAULT_SECRET_ACCESS_KEY])
        .stderr(Stdio::inherit());
    spawn_serve(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_killed_between_two_turns_is_started_again_and_the_loop_continues() {
    if !boto3() {
        return;
    }
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let (mut first_proxy, url) = serve(&data, &emulator.url());
    let first = run(script("proxy_client.py"), url, &["first", state]).await;
    first_proxy.kill().unwrap();
    first_proxy.wait().unwrap();

    let (mut second_proxy, url) = serve(&data, &emulator.url());
    let second = run(script("proxy_client.py"), url, &["second", state]).await;
    second_proxy.kill().unwrap();
    second_proxy.wait().unwrap();
    assert_eq!(second["stop_reason"], "end_turn", "{second}");
    assert_eq!(second["session"], first["session"], "the restarted proxy found the session");

    let store = SledStore::open(&data).unwrap();
    let sessions = recorded(&store).await;
    assert_eq!(sessions.len(), 1);
    let roles: Vec<Role> = sessions[0].iter().map(|m| m.message.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User, Role::Assistant]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_on_both_surfaces_runs_unchanged_through_the_proxy() {
    let available = sdk_available(
        crate::anthropic_sdk::sdk_available(),
        "VERBATIM_REQUIRE_ANTHROPIC_SDK",
        "anthropic[bedrock]",
        "pip install \"anthropic[bedrock]>=2,<3\"",
    );
    if !available {
        return;
    }
    let Setup { emulator, store, proxy, .. } = setup(Mode::Observe).await;
    let url = proxy.url();
    let out = tokio::task::spawn_blocking(move || {
        let mut command = crate::anthropic_sdk::anthropic_python();
        command.env("VERBATIM_PROXIED", "1");
        run_script_with(command, crate::anthropic_sdk::script(), url)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "anthropic_sdk.py through the proxy failed:\n{stderr}\n{stdout}");
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    for name in ["bedrock_tool_loop", "mantle_tool_loop", "mantle_stream_loop"] {
        let tool_loop = &seen[name];
        assert_eq!(strings(&tool_loop["first_kinds"]), ["thinking", "tool_use"], "{name}");
        assert_eq!(tool_loop["final_stop_reason"], "end_turn", "{name}: {tool_loop}");
    }
    for name in ["bedrock_stream", "mantle_stream"] {
        let events = strings(&seen[name]["events"]);
        assert_eq!(events.last(), Some(&"message_stop"), "{name}: {events:?}");
    }
    // The altered signatures were put back by the proxy, and the model took them.
    for name in ["bedrock_tampered", "mantle_tampered"] {
        assert_eq!(seen[name]["status"], 200, "{name}: {}", seen[name]);
    }
    let received = emulator.received();
    assert_eq!(received.len(), 12);
    assert!(
        received.iter().all(|r| r.status == 200),
        "{:?}",
        received.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(proxy.upstream_calls(), 12);

    let sessions = recorded(store.as_ref()).await;
    let restored = sessions
        .iter()
        .flatten()
        .filter_map(|m| m.provenance.as_ref())
        .filter(|p| p.notes.iter().any(|n| n.contains("restored the stored thinking")))
        .count();
    assert_eq!(restored, 2, "both tampered turns are recorded as restored");
    let surfaces: Vec<Api> =
        sessions.iter().flatten().filter_map(|m| m.provenance.as_ref().map(|p| p.api)).collect();
    assert!(
        surfaces.contains(&Api::InvokeModel) && surfaces.contains(&Api::Messages),
        "{surfaces:?}"
    );
    proxy.shutdown().await;
}

/// boto3 sends a Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`) only over HTTPS: through a proxy
/// serving TLS with a certificate of a test CA (`AWS_CA_BUNDLE`), it goes as a bearer token
/// and the call is answered; the proxy takes no SigV4 credentials here, so the bearer token is
/// what was accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_sends_its_api_key_over_tls_to_the_proxy() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    if !boto3() {
        return;
    }
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "verbatim proxy test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert_pem = server.signed_by(&key, &issuer).unwrap().pem();
    let tls = Tls { cert_pem: cert_pem.into_bytes(), key_pem: key.serialize_pem().into_bytes() };

    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(SledStore::open(dir.path().join("data")).unwrap());
    let config = HttpConfig::new("us-east-1", Auth::api_key(DEFAULT_API_KEY))
        .with_endpoint_url(emulator.url());
    let auth =
        ClientAuth { api_keys: vec![Secret::new("client-bearer-key")], credentials: Vec::new() };
    let upstream = HttpTransport::new(config).unwrap();
    let config = ProxyConfig {
        upstream,
        store,
        auth,
        mode: Mode::Guard,
        limits: Limits::default(),
        tls: Some(tls),
    };
    let proxy = Proxy::start(config).await.unwrap();
    assert!(proxy.url().starts_with("https://127.0.0.1:"), "{}", proxy.url());
    let code = r#"
import json, sys, boto3
client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=sys.argv[1])
answer = client.converse(
    modelId="us.anthropic.claude-sonnet-4-20250514-v1:0",
    messages=[{"role": "user", "content": [{"text": "Hello there"}]}],
)
sent = answer["ResponseMetadata"]["HTTPHeaders"]
print(json.dumps({"stop_reason": answer["stopReason"], "session": sent.get("x-verbatim-session")}))
"#;
    let url = proxy.url();
    let out = tokio::task::spawn_blocking(move || {
        python()
            .env("AWS_BEARER_TOKEN_BEDROCK", "client-bearer-key")
            .env("AWS_CA_BUNDLE", &ca_file)
            .args(["-c", code, &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(seen["stop_reason"], "end_turn", "{seen}");
    assert!(seen["session"].is_string(), "{seen}");
    assert_eq!(proxy.upstream_calls(), 1);
    proxy.shutdown().await;
}
