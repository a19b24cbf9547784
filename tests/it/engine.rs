//! End to end through the facade: the engine on a sled store, the HTTP transport (SigV4) and
//! the emulator on 127.0.0.1:0, on both APIs, streamed and whole: multi-turn chat, a tool loop
//! with thinking, parallel tools, thinking toggled between turns and asked for mid-loop, a
//! model switch, a crash mid-loop (a child process killed) then resume, and the demo past the
//! engine's default step limit and stopped by it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use verbatim::store::{Entry, SessionStore as _, ToolCallState};
use verbatim::{
    Api, Auth, ContentBlock, Engine, FnTool, HttpConfig, HttpTransport, Role, SessionId, SledStore,
    ThinkingConfig, ThinkingMode, ToolError, Transport,
};
use verbatim_emulator::{
    Behaviour, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig, Script,
};

/// Answers like Claude: thinks, calls the first tool, then answers.
const SONNET4: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
/// Calls every tool at once.
const SONNET45: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
/// Runs a two-step loop.
const OPUS45: &str = "us.anthropic.claude-opus-4-5-20251101-v1:0";

async fn emulator(script: Script) -> Emulator {
    Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }).await.unwrap()
}

fn transport(url: String) -> Arc<dyn Transport> {
    let auth = Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None);
    Arc::new(HttpTransport::new(HttpConfig::new("us-west-2", auth).with_endpoint_url(url)).unwrap())
}

fn thinking() -> Option<ThinkingConfig> {
    Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 1024 }))
}

#[derive(Deserialize)]
struct City {
    city: String,
}

fn weather() -> Arc<dyn verbatim::Tool> {
    FnTool::new(
        "get_weather",
        "The forecast for a city",
        json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}),
        |input: City| async move { Ok::<_, ToolError>(format!("{}: sunny", input.city)) },
    )
    .shared()
}

fn clock() -> Arc<dyn verbatim::Tool> {
    FnTool::new(
        "get_time",
        "The local time in a city",
        json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}),
        |input: City| async move { Ok::<_, ToolError>(json!({"city": input.city, "time": "09:30"})) },
    )
    .shared()
}

fn kinds(message: &verbatim::Message) -> Vec<&'static str> {
    message.content.iter().map(ContentBlock::kind_name).collect()
}

async fn conversation(api: Api, streaming: bool) {
    let script = Script {
        models: [
            (SONNET4.to_owned(), Behaviour::Claude),
            (SONNET45.to_owned(), Behaviour::Parallel),
            (OPUS45.to_owned(), Behaviour::Steps(2)),
        ]
        .into(),
        ..Script::default()
    };
    let emulator = emulator(script).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = |max_steps: u32| {
        Engine::builder()
            .store(store.clone())
            .transport(transport(emulator.url()))
            .api(api)
            .model(SONNET4)
            .thinking(thinking())
            .tool(weather())
            .tool(clock())
            .configure(|d| {
                d.streaming = streaming;
                d.max_steps = max_steps;
            })
            .build()
            .unwrap()
    };
    let label = format!("{} streaming={streaming}", api.as_str());
    let session = engine(16).create().await.unwrap();

    // A tool loop with thinking.
    let reply = session.send("Weather in Lyon?").await.unwrap();
    assert!(reply.complete && reply.steps == 2, "{label}");
    // Thinking off between turns, then a plain turn.
    session.set_thinking(None).await.unwrap();
    let reply = session.send("Thanks. And tomorrow?").await.unwrap();
    assert!(reply.message.content.iter().all(|b| !matches!(b, ContentBlock::Thinking(_))));
    // A model switch, thinking on again, parallel tools.
    session.set_model(SONNET45).await.unwrap();
    session.set_thinking(thinking()).await.unwrap();
    let reply = session.send("Weather and time in Paris?").await.unwrap();
    assert!(reply.complete, "{label}");
    let history = session.history().await.unwrap();
    let parallel = &history[history.len() - 3];
    assert_eq!(kinds(&parallel.message).iter().filter(|k| **k == "toolUse").count(), 2);
    assert_eq!(history[history.len() - 2].message.content.len(), 2, "both results, one message");
    // Thinking asked for in the middle of a loop waits for the loop's end.
    session.set_model(OPUS45).await.unwrap();
    session.set_thinking(None).await.unwrap();
    let open = engine(1).open(session.id()).await.unwrap();
    assert!(!open.send("Plan my day").await.unwrap().complete, "{label}: the loop is open");
    open.set_thinking(thinking()).await.unwrap();
    let reply = engine(16).open(session.id()).await.unwrap().resume().await.unwrap().unwrap();
    assert!(reply.complete, "{label}");
    assert!(reply.message.content.iter().all(|b| !matches!(b, ContentBlock::Thinking(_))));
    let reply = session.send("And in the evening?").await.unwrap();
    assert!(
        matches!(reply.message.content[0], ContentBlock::Thinking(_)),
        "{label}: it thinks now"
    );

    // Every request was accepted: signatures verified, pairs complete, roles alternating.
    let statuses: Vec<u16> = emulator.received().iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{label}: {statuses:?}");
    let operations: Vec<String> = emulator.received().iter().map(|r| r.operation.clone()).collect();
    let expected = match (api, streaming) {
        (Api::Converse, true) => "converse-stream",
        (Api::Converse, false) => "converse",
        (Api::InvokeModel, true) => "invoke-with-response-stream",
        (Api::InvokeModel, false) => "invoke",
        (Api::Messages, _) => "messages",
    };
    assert!(operations.iter().all(|o| o == expected), "{label}: {operations:?}");
    let history = session.history().await.unwrap();
    for pair in history.windows(2) {
        assert_ne!(pair[0].message.role, pair[1].message.role, "{label}: roles alternate");
    }
    let usage = session.usage().await.unwrap();
    assert!(usage.output_tokens.unwrap() > 0 && usage.input_tokens.unwrap() > 0);

    // After a restart the session is the same conversation.
    let id = session.id();
    drop((session, open, engine));
    drop(Arc::into_inner(store).expect("no engine holds the store"));
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = Engine::builder()
        .store(store)
        .transport(transport(emulator.url()))
        .api(api)
        .tool(weather())
        .tool(clock())
        .build()
        .unwrap();
    assert_eq!(engine.open(id).await.unwrap().history().await.unwrap(), history, "{label}");
}

#[tokio::test]
async fn a_conversation_over_converse_stream() {
    conversation(Api::Converse, true).await;
}

#[tokio::test]
async fn a_conversation_over_converse() {
    conversation(Api::Converse, false).await;
}

#[tokio::test]
async fn a_conversation_over_invoke_model_with_response_stream() {
    conversation(Api::InvokeModel, true).await;
}

#[tokio::test]
async fn a_conversation_over_invoke_model() {
    conversation(Api::InvokeModel, false).await;
}

/// One session moves from Converse to the Messages API to InvokeModel and back: each turn
/// is accepted (thinking and tool loops included), and the provenance of each reply names the
/// surface that produced it.
#[tokio::test]
async fn a_session_moves_between_the_three_surfaces_and_provenance_says_which() {
    let emulator = emulator(Script::default()).await;
    let store: Arc<dyn verbatim::SessionStore> = Arc::new(verbatim::MemoryStore::new());
    let engine = |api: Api, streaming: bool| {
        Engine::builder()
            .store(store.clone())
            .transport(transport(emulator.url()))
            .api(api)
            .model(SONNET4)
            .thinking(thinking())
            .tool(weather())
            .configure(|d| d.streaming = streaming)
            .build()
            .unwrap()
    };
    let id = engine(Api::Converse, true).create().await.unwrap().id();
    let turns = [
        (Api::Converse, true),
        (Api::Messages, true),
        (Api::InvokeModel, false),
        (Api::Messages, false),
        (Api::Converse, false),
    ];
    for (n, (api, streaming)) in turns.into_iter().enumerate() {
        let session = engine(api, streaming).open(id).await.unwrap();
        let reply = session.send(format!("Weather in city {n}?")).await.unwrap();
        assert!(reply.complete, "{}: {reply:?}", api.as_str());
    }
    let statuses: Vec<u16> = emulator.received().iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let history = engine(Api::Converse, false).open(id).await.unwrap().history().await.unwrap();
    let surfaces: Vec<&str> =
        history.iter().filter_map(|m| m.provenance.as_ref()).map(|p| p.api.as_str()).collect();
    // Each turn is a tool loop: two replies per surface, in the order the turns ran.
    let expected: Vec<&str> =
        turns.iter().flat_map(|(api, _)| [api.as_str(), api.as_str()]).collect();
    assert_eq!(surfaces, expected);
}

/// DeepSeek R1 reasons without being asked and does not sign its reasoning: the engine keeps
/// the reasoning in the history as it came, and never sends it back (Bedrock refuses unsigned
/// reasoning); no Anthropic `thinking` setting is sent to it.
#[tokio::test]
async fn a_deepseek_tool_loop_keeps_its_unsigned_reasoning_and_never_sends_it_back() {
    const DEEPSEEK: &str = "us.deepseek.r1-v1:0";
    for streaming in [true, false] {
        let emulator = emulator(Script::default()).await;
        let engine = Engine::builder()
            .store(Arc::new(verbatim::MemoryStore::new()))
            .transport(transport(emulator.url()))
            .model(DEEPSEEK)
            .tool(weather())
            .configure(|d| d.streaming = streaming)
            .build()
            .unwrap();
        let session = engine.create().await.unwrap();
        let reply = session.send("Weather in Lyon?").await.unwrap();
        assert!(reply.complete && reply.steps == 2, "streaming={streaming}: {reply:?}");
        let statuses: Vec<u16> = emulator.received().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200], "streaming={streaming}");
        // Stored as it came: reasoning without a signature.
        let history = session.history().await.unwrap();
        let reasoning = history
            .iter()
            .flat_map(|m| &m.message.content)
            .filter_map(|b| match b {
                ContentBlock::Thinking(t) => Some(t),
                _ => None,
            })
            .collect::<Vec<_>>();
        assert!(!reasoning.is_empty(), "streaming={streaming}");
        assert!(reasoning.iter().all(|t| t.signature.is_none() && !t.text.is_empty()));
        // Never sent back, and no Anthropic setting sent at all.
        for received in emulator.received() {
            let body = String::from_utf8(received.body.clone()).unwrap();
            assert!(!body.contains("reasoningContent"), "streaming={streaming}: {body}");
            assert!(!body.contains("\"thinking\""), "streaming={streaming}: {body}");
        }
    }
}

/// gpt-oss and Nova 2 ask for reasoning in fields of their own: the session's thinking setting
/// goes out as gpt-oss's `reasoning_effort` and Nova 2's `reasoningConfig`, never as
/// Anthropic's `thinking`, and their unsigned reasoning goes back inside the tool loop as it
/// came, without a signature field (which gpt-oss refuses), and is accepted.
#[tokio::test]
async fn gpt_oss_and_nova_2_get_their_own_reasoning_settings_and_their_reasoning_back() {
    let cases = [
        ("openai.gpt-oss-120b-1:0", json!({"reasoning_effort": "low"})),
        (
            "us.amazon.nova-2-lite-v1:0",
            json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}),
        ),
    ];
    for (model, setting) in cases {
        let emulator = emulator(Script::default()).await;
        let engine = Engine::builder()
            .store(Arc::new(verbatim::MemoryStore::new()))
            .transport(transport(emulator.url()))
            .model(model)
            .thinking(Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 2048 })))
            .tool(weather())
            .build()
            .unwrap();
        let session = engine.create().await.unwrap();
        let reply = session.send("Weather in Lyon?").await.unwrap();
        assert!(reply.complete && reply.steps == 2, "{model}: {reply:?}");
        let received = emulator.received();
        let statuses: Vec<u16> = received.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200], "{model}");
        for request in &received {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(body["additionalModelRequestFields"], setting, "{model}");
        }
        // The second request sends the first reply's reasoning back, unsigned.
        let second: serde_json::Value = serde_json::from_slice(&received[1].body).unwrap();
        let reasoning = &second["messages"][1]["content"][0]["reasoningContent"]["reasoningText"];
        assert!(reasoning["text"].is_string(), "{model}: {second}");
        assert_eq!(reasoning.get("signature"), None, "{model}");
    }
}

#[tokio::test]
async fn a_conversation_over_the_messages_api_streamed() {
    conversation(Api::Messages, true).await;
}

#[tokio::test]
async fn a_conversation_over_the_messages_api() {
    conversation(Api::Messages, false).await;
}

fn demo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.arg("demo").args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn a_process_killed_mid_loop_is_resumed_by_another() {
    let emulator = emulator(Script { behaviour: Behaviour::Steps(3), ..Script::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let url = emulator.url();

    // The first process runs the loop until its first tool result is stored, then hangs
    // waiting on the model; it is killed there (SIGKILL).
    let mut child = demo(&["--data", data, "--endpoint-url", &url, "--stop-after-first-result"])
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let id = tokio::task::spawn_blocking(move || {
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("halted: session ") {
                return rest.split(' ').next().unwrap().to_owned();
            }
        }
        panic!("the child ended without halting")
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let id = SessionId::parse(&id).unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        let history = store.load(id).await.unwrap().messages();
        let roles: Vec<Role> = history.iter().map(|m| m.message.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User], "the first result is stored");
    }

    // Another process resumes from the store and finishes.
    let mut resume = demo(&["--data", data, "--endpoint-url", &url, "--resume", &id.to_string()]);
    // The emulator runs on this test's runtime: wait for the child off it.
    let out = tokio::task::spawn_blocking(move || resume.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Finished after 3 more model call(s)"), "{text}");
    let store = SledStore::open(dir.path()).unwrap();
    let session = store.load(id).await.unwrap();
    let history = session.messages();
    assert_eq!(history.len(), 8, "three tool steps and the answer");
    assert!(matches!(history[1].message.content[0], ContentBlock::Thinking(_)));
    let statuses: Vec<u16> = emulator.received().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses, [200; 4],
        "one call before the kill (the held one never left), three after"
    );
    // The call completed before the kill ran once: one start, one completion.
    let first_call = match &history[1].message.content[1] {
        ContentBlock::ToolUse(call) => call.id.clone(),
        other => panic!("{other:?}"),
    };
    let steps: Vec<&ToolCallState> = session
        .records
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::ToolCall(event) if event.tool_use_id == first_call => Some(&event.state),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 3, "requested, started, completed: {steps:?}");
}

#[tokio::test]
async fn the_demo_crashes_and_resumes_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = demo(&["--data", dir.path().to_str().unwrap()]);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "built-in emulator",
        "the first tool result is stored",
        "A fresh engine opens session",
        "Finished after 3 more model call(s)",
        "] started",
        "] completed",
        "usage: input ",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    let store = SledStore::open(dir.path()).unwrap();
    let page = store.list(&Default::default()).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    let history = store.load(page.sessions[0].id).await.unwrap().messages();
    assert_eq!(history.len(), 8);
    assert_eq!(history.last().unwrap().message.role, Role::Assistant);
}

/// Runs `demo` to its end, off the test's runtime (where the emulator runs): its stdout.
async fn demo_output(mut command: Command) -> String {
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[tokio::test]
async fn the_demo_runs_as_many_tool_steps_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let text = demo_output(demo(&["--data", dir.path().to_str().unwrap(), "--steps", "40"])).await;
    // One call before the stop, forty after it: 40 tool steps and the answer, past the
    // engine's default of 16 calls a run.
    assert!(text.contains("Finished after 40 more model call(s)"), "{text}");
    assert!(!text.contains("step limit"), "{text}");
    let store = SledStore::open(dir.path()).unwrap();
    let page = store.list(&Default::default()).await.unwrap();
    let history = store.load(page.sessions[0].id).await.unwrap().messages();
    assert_eq!(history.len(), 82, "the question, 40 calls with their results, the answer");
    assert_eq!(history.last().unwrap().message.role, Role::Assistant);
}

#[tokio::test]
async fn a_demo_the_step_limit_stops_says_so_and_resumes_to_the_end() {
    // The emulator asks for 20 tool steps; the demo, told of 3, allows 16 calls a run.
    let emulator = emulator(Script { behaviour: Behaviour::Steps(20), ..Script::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let (data, url) = (dir.path().to_str().unwrap(), emulator.url());
    let text = demo_output(demo(&["--data", data, "--endpoint-url", &url])).await;
    assert!(text.contains("Stopped at the step limit of 16 model calls in a run"), "{text}");
    assert!(!text.contains("Finished"), "{text}");
    assert_eq!(emulator.received().len(), 17, "one call before the stop, 16 after");
    let id = text.split("Session ").nth(1).unwrap().split_whitespace().next().unwrap();
    assert!(text.contains(&format!("Resume it with --resume {id}")), "{text}");
    let store = SledStore::open(dir.path()).unwrap();
    let session = store.load(SessionId::parse(id).unwrap()).await.unwrap();
    let last = session.messages().last().unwrap().message.clone();
    assert_eq!(last.role, Role::Assistant);
    assert!(last.content.iter().any(|b| matches!(b, ContentBlock::ToolUse(_))), "{last:?}");
    let last_state = session.records.iter().rev().find_map(|r| match &r.entry {
        Entry::ToolCall(event) => Some(event.state.clone()),
        _ => None,
    });
    assert_eq!(last_state, Some(ToolCallState::Requested), "its call never ran");
    drop(store);

    // Told of the 20 steps, the resume finishes: four calls left (three steps, the answer).
    let resume = demo(&["--data", data, "--endpoint-url", &url, "--resume", id, "--steps", "20"]);
    let text = demo_output(resume).await;
    assert!(text.contains("Finished after 4 more model call(s)"), "{text}");
    assert_eq!(emulator.received().len(), 21);
}

#[tokio::test]
async fn chat_without_credentials_talks_to_the_emulator_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command
        .args(["chat", "--data", dir.path().to_str().unwrap(), "--thinking", "1024"])
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for variable in ["AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"] {
        command.env_remove(variable);
    }
    command.env_remove("AWS_SHARED_CREDENTIALS_FILE").env_remove("AWS_CONFIG_FILE");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Hello there\n/thinking off\nAgain\n/quit\n")
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("talking to the built-in emulator"), "{text}");
    assert!(text.contains("thinking: The user asked: Hello there"), "thinking shown: {text}");
    assert!(text.contains("Hello! You said: Hello there"), "{text}");
    assert!(text.contains("Hello! You said: Again"), "{text}");
    assert!(text.contains("Usage: input "), "{text}");
    let store = SledStore::open(dir.path()).unwrap();
    let page = store.list(&Default::default()).await.unwrap();
    let session = store.load(page.sessions[0].id).await.unwrap();
    assert_eq!(session.messages().len(), 4);
    assert_eq!(session.config().thinking, None, "the toggle is recorded");
}
