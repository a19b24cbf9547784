//! End to end: a five-step tool loop with thinking, each turn assembled from the history
//! stored in sled, sent through the HTTP transport (SigV4) to the emulator, and the reply
//! stored with its provenance. Every replayed signature verifies; one byte changed in a
//! stored thinking text makes the next request fail with Bedrock's invalid-signature error.

use serde_json::json;
use verbatim_emulator::{
    Behaviour, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig, Script,
};
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, Message, Provenance, Response, Role, StopReason,
    ThinkingConfig, ThinkingMode, Tool, ToolResult, ToolResultBlock, ToolResultContent, ToolSpec,
};
use verbatim_protocol::anthropic;
use verbatim_protocol::assemble::{Policy, TurnConfig, assemble};
use verbatim_protocol::stream::ConverseAccumulator;
use verbatim_store::{Append, Entry, NewSession, SessionStore, SledStore};
use verbatim_transport::{ApiError, Auth, Call, HttpConfig, HttpTransport, RetryConfig, Transport};

const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const STEPS: u32 = 5;

fn tools() -> Vec<Tool> {
    let spec = |name: &str, property: &str| {
        Tool::Spec(
            serde_json::from_value::<ToolSpec>(json!({
                "name": name,
                "description": format!("Looks up {property}"),
                "input_schema": {"type": "object", "required": [property],
                    "properties": {property: {"type": "string"}}},
            }))
            .unwrap(),
        )
    };
    vec![spec("get_weather", "city"), spec("get_time", "zone")]
}

fn turn(api: Api) -> TurnConfig {
    let mut turn = TurnConfig::new(MODEL, api);
    turn.tools = Some(tools());
    turn.thinking = Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 1024 }));
    turn.inference =
        Some(verbatim_model::InferenceConfig { max_tokens: Some(4096), ..Default::default() });
    turn
}

/// Sends the assembled body (streamed for Converse, whole for InvokeModel) and reads the reply.
async fn call(transport: &HttpTransport, api: Api, body: String) -> Result<Response, ApiError> {
    let call = Call::new(api, MODEL, body);
    let api_error = |e: verbatim_transport::TransportError| e.api().cloned().unwrap();
    match api {
        Api::Converse => {
            let mut events = transport.stream(call).await.map_err(api_error)?;
            let mut folded = ConverseAccumulator::new();
            while let Some(event) = events.next().await {
                let event = event.map_err(api_error)?;
                folded.push(&event.event_type, &event.payload).unwrap();
            }
            Ok(folded.finish().unwrap())
        }
        Api::InvokeModel | Api::Messages => {
            let reply = transport.send(call).await.map_err(api_error)?;
            Ok(anthropic::decode_response(&reply.body).unwrap())
        }
    }
}

fn answer(response: &Response) -> Option<Message> {
    let results: Vec<ContentBlock> = response
        .message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolUse(call) => Some(ContentBlock::ToolResult(ToolResult {
                tool_use_id: call.id.clone(),
                content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text {
                    text: format!("{} says: fine", call.name),
                }])),
                status: None,
                unmapped: Default::default(),
            })),
            _ => None,
        })
        .collect();
    (!results.is_empty()).then(|| Message::new(Role::User, results))
}

async fn append(store: &SledStore, id: verbatim_model::SessionId, message: HistoryMessage) {
    let version = store.info(id).await.unwrap().version;
    store.append(id, Append::new(version, vec![Entry::Message(message)])).await.unwrap();
}

async fn run_loop(api: Api) {
    let dir = tempfile::tempdir().unwrap();
    let script = Script {
        models: [(MODEL.to_owned(), Behaviour::Steps(STEPS))].into(),
        ..Script::default()
    };
    let emulator =
        Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }).await.unwrap();
    let auth = Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None);
    let transport = HttpTransport::new(
        HttpConfig::new("us-west-2", auth)
            .with_endpoint_url(emulator.url())
            .with_retry(RetryConfig::disabled()),
    )
    .unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let id = store.create(NewSession::new(MODEL)).await.unwrap().id;
    append(&store, id, Message::user_text("Plan a day in Lyon").into()).await;

    let mut stops = Vec::new();
    loop {
        let history = store.load(id).await.unwrap().messages();
        let assembly = assemble(&history, &turn(api), Policy::Strict);
        assert!(assembly.is_valid(), "{:?}", assembly.diagnostics);
        let body = assembly.body.unwrap().to_string();
        let response = call(&transport, api, body).await.unwrap_or_else(|e| panic!("{e}"));
        stops.push(response.stop_reason.clone());
        let mut provenance = Provenance::new(MODEL, api);
        provenance.stop_reason = response.stop_reason.clone();
        provenance.thinking = turn(api).thinking;
        let next = answer(&response);
        append(
            &store,
            id,
            HistoryMessage { message: response.message, provenance: Some(provenance) },
        )
        .await;
        match next {
            Some(results) => append(&store, id, results.into()).await,
            None => break,
        }
        assert!(stops.len() <= STEPS as usize + 1, "the loop did not end: {stops:?}");
    }
    let mut expected = vec![Some(StopReason::ToolUse); STEPS as usize];
    expected.push(Some(StopReason::EndTurn));
    assert_eq!(stops, expected);
    assert!(emulator.received().iter().all(|r| r.status == 200));

    // Reopened, the stored history is the one the emulator signed: replaying the fifth step's
    // request verifies. With one byte of one stored thinking text changed, it does not.
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    let history = store.load(id).await.unwrap().messages();
    let assistants = history.iter().filter(|h| h.message.role == Role::Assistant).count();
    assert_eq!(assistants, STEPS as usize + 1);
    let before_answer = &history[..history.len() - 1];
    let body = assemble(before_answer, &turn(api), Policy::Strict).body.unwrap().to_string();
    call(&transport, api, body).await.expect("the stored history replays as it was signed");

    let mut altered = before_answer.to_vec();
    let ContentBlock::Thinking(thinking) = &mut altered[5].message.content[0] else {
        panic!("the third step starts with thinking: {:?}", altered[5].message.content)
    };
    let original = thinking.text.clone();
    thinking.text = original.replacen('S', "s", 1);
    assert_eq!(thinking.text.len(), original.len());
    assert_ne!(thinking.text, original, "one byte changed");
    let body = assemble(&altered, &turn(api), Policy::Strict).body.unwrap().to_string();
    let error = call(&transport, api, body).await.unwrap_err();
    assert_eq!((error.status, error.exception.name()), (400, "ValidationException"));
    let expected = match api {
        Api::Converse => {
            "The model returned the following errors: messages.5.content.0: Invalid signature in thinking block"
        }
        Api::InvokeModel | Api::Messages => {
            "messages.5.content.0: Invalid `signature` in `thinking` block"
        }
    };
    assert_eq!(error.message, expected);
}

#[tokio::test]
async fn a_five_step_thinking_tool_loop_over_converse_stream_verifies_and_a_changed_byte_does_not()
{
    run_loop(Api::Converse).await;
}

#[tokio::test]
async fn a_five_step_thinking_tool_loop_over_invoke_model_verifies_and_a_changed_byte_does_not() {
    run_loop(Api::InvokeModel).await;
}
