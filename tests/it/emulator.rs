//! The emulator driven through the HTTP transport: replies in all four operations that the
//! protocol decodes, a thinking tool loop whose replayed signatures verify, and Bedrock's
//! answers to what it refuses, each sent as a raw body (no assembler).

use serde_json::{Value, json};
use verbatim_emulator::{
    DEFAULT_ACCESS_KEY_ID, DEFAULT_API_KEY, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig,
    Script,
};
use verbatim_model::{ContentBlock, Response, StopReason};
use verbatim_protocol::stream::{AnthropicAccumulator, ConverseAccumulator};
use verbatim_protocol::{anthropic, converse};
use verbatim_transport::{
    Api, ApiError, Auth, Call, Exception, HttpConfig, HttpTransport, RetryConfig, Transport,
};

pub(crate) const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

fn transport(emulator: &Emulator, auth: Auth) -> HttpTransport {
    let config = HttpConfig::new("us-west-2", auth)
        .with_endpoint_url(emulator.url())
        .with_retry(RetryConfig::disabled());
    HttpTransport::new(config).unwrap()
}

pub(crate) fn signed(emulator: &Emulator) -> HttpTransport {
    transport(emulator, Auth::credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, None))
}

async fn send(transport: &HttpTransport, api: Api, body: &Value) -> Result<Response, ApiError> {
    send_to(transport, api, MODEL, body).await
}

pub(crate) async fn send_to(
    transport: &HttpTransport,
    api: Api,
    model: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    let call = Call::new(api, model, body.to_string());
    match transport.send(call).await {
        Ok(reply) => Ok(match api {
            Api::Converse => converse::decode_response(&reply.body).unwrap(),
            Api::InvokeModel | Api::Messages => anthropic::decode_response(&reply.body).unwrap(),
        }),
        Err(error) => Err(error.api().cloned().unwrap_or_else(|| panic!("{error}"))),
    }
}

async fn stream(transport: &HttpTransport, api: Api, body: &Value) -> Response {
    stream_from(transport, api, MODEL, body).await
}

async fn stream_from(transport: &HttpTransport, api: Api, model: &str, body: &Value) -> Response {
    let mut events = transport.stream(Call::new(api, model, body.to_string())).await.unwrap();
    let mut converse = ConverseAccumulator::new();
    let mut anthropic = AnthropicAccumulator::new();
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        match api {
            Api::Converse => converse.push(&event.event_type, &event.payload).unwrap(),
            Api::InvokeModel => anthropic.push_chunk(&event.payload).unwrap(),
            Api::Messages => anthropic.push(&event.payload).unwrap(),
        };
    }
    match api {
        Api::Converse => converse.finish().unwrap(),
        Api::InvokeModel | Api::Messages => anthropic.finish().unwrap(),
    }
}

fn tools_converse() -> Value {
    json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather of a city",
        "inputSchema": {"json": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}}]})
}

fn tool_use(id: &str) -> Value {
    json!({"role": "assistant", "content": [
        {"toolUse": {"toolUseId": id, "name": "get_weather", "input": {"city": "Lyon"}}}]})
}

fn tool_result(id: &str) -> Value {
    json!({"toolResult": {"toolUseId": id, "content": [{"text": "Sunny"}]}})
}

fn thinking_converse() -> Value {
    json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})
}

#[tokio::test]
async fn all_four_operations_answer_bodies_the_protocol_decodes() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let converse_body =
        json!({"messages": [{"role": "user", "content": [{"text": "Hello there"}]}]});
    let invoke_body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hello there"}]});
    let whole = send(&transport, Api::Converse, &converse_body).await.unwrap();
    let streamed = stream(&transport, Api::Converse, &converse_body).await;
    assert_eq!(whole.message, streamed.message, "a stream folds into the same message");
    assert!(
        matches!(&whole.message.content[0], ContentBlock::Text(t) if t.text.contains("Hello there"))
    );
    let whole = send(&transport, Api::InvokeModel, &invoke_body).await.unwrap();
    let streamed = stream(&transport, Api::InvokeModel, &invoke_body).await;
    assert_eq!(whole.message, streamed.message);
    assert_eq!(emulator.received().len(), 4);
    let operations: Vec<String> = emulator.received().into_iter().map(|r| r.operation).collect();
    assert_eq!(
        operations,
        ["converse", "converse-stream", "invoke", "invoke-with-response-stream"]
    );
}

/// Scenario 20: a streamed reply folds into the message the same call answers whole, for
/// replies with signed and redacted thinking, several tool calls at once and thinking between
/// calls, on Converse and InvokeModel.
#[tokio::test]
async fn streamed_and_whole_replies_are_the_same_message_for_every_shape() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let converse = json!({"messages": [{"role": "user", "content": [{"text": "Weather in Lyon?"}]}],
        "toolConfig": tools_converse(), "additionalModelRequestFields": thinking_converse()});
    let invoke = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "get_weather", "description": "Weather of a city",
            "input_schema": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "Weather in Lyon?"}]});
    let (mut kinds, mut most_calls) = (std::collections::BTreeSet::new(), 0);
    for behaviour in ["claude", "redacted", "parallel", "interleaved"] {
        let model = format!("us.emulator.{behaviour}");
        for (api, body) in [(Api::Converse, &converse), (Api::InvokeModel, &invoke)] {
            let whole = send_to(&transport, api, &model, body).await.unwrap();
            let streamed = stream_from(&transport, api, &model, body).await;
            assert_eq!(whole.message, streamed.message, "{behaviour} on {api:?}");
            assert_eq!(whole.stop_reason, streamed.stop_reason, "{behaviour} on {api:?}");
            kinds.extend(whole.message.content.iter().map(|b| b.kind_name()));
            let calls = whole.message.content.iter().filter(|b| b.kind_name() == "toolUse");
            most_calls = most_calls.max(calls.count());
        }
    }
    // Every shape was there to compare.
    let shapes = ["reasoningContent.reasoningText", "reasoningContent.redactedContent", "toolUse"];
    assert!(shapes.iter().all(|k| kinds.contains(k)), "{kinds:?}");
    assert!(most_calls >= 2, "parallel calls compared");
}

#[tokio::test]
async fn a_thinking_tool_loop_replays_its_signatures_and_an_altered_byte_is_refused() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let user = json!({"role": "user", "content": [{"text": "What is the weather in Lyon?"}]});
    let first = json!({"messages": [user], "toolConfig": tools_converse(),
        "additionalModelRequestFields": thinking_converse()});
    let reply = stream(&transport, Api::Converse, &first).await;
    let assistant = converse::encode_message(&reply.message).unwrap();
    assert!(assistant["content"][0]["reasoningContent"]["reasoningText"]["signature"].is_string());
    let tool_use = &assistant["content"][1]["toolUse"];
    assert_eq!(tool_use["name"], "get_weather");
    assert!(tool_use["input"]["city"].is_string(), "arguments satisfy the schema");
    let result = json!({"role": "user", "content": [{"toolResult": {"toolUseId": tool_use["toolUseId"],
        "content": [{"text": "Sunny, 21 C"}]}}]});
    let next = json!({"messages": [user, assistant, result], "toolConfig": tools_converse(),
        "additionalModelRequestFields": thinking_converse()});
    let answer = send(&transport, Api::Converse, &next).await.unwrap();
    assert!(
        matches!(&answer.message.content[0], ContentBlock::Text(t) if t.text.contains("Sunny"))
    );
    // One byte of the stored thinking text changed: Bedrock's invalid-signature answer.
    let mut altered = next.clone();
    let text =
        &mut altered["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]["text"];
    *text = json!(text.as_str().unwrap().replacen('T', "t", 1));
    let error = send(&transport, Api::Converse, &altered).await.unwrap_err();
    assert_eq!((error.status, &error.exception), (400, &Exception::Validation));
    assert_eq!(
        error.message,
        "The model returned the following errors: messages.1.content.0: Invalid signature in thinking block"
    );
    // Once the turn is finished and a new question asked, that thinking belongs to an earlier
    // turn, which the service ignores (rules R4.8): the same altered byte is not refused there.
    let answered = converse::encode_message(&answer.message).unwrap();
    let mut later = altered.clone();
    let messages = later["messages"].as_array_mut().unwrap();
    messages.push(answered);
    messages.push(json!({"role": "user", "content": [{"text": "And tomorrow?"}]}));
    assert!(send(&transport, Api::Converse, &later).await.is_ok());
    // Dropping the thinking of the continued tool loop: rule R4.6.
    let mut dropped = next.clone();
    dropped["messages"][1]["content"].as_array_mut().unwrap().remove(0);
    let error = send(&transport, Api::Converse, &dropped).await.unwrap_err();
    assert!(
        error.message.starts_with("The model returned the following errors: messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`."),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn refused_bodies_get_bedrocks_answers() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let text = |role: &str, text: &str| json!({"role": role, "content": [{"text": text}]});
    let cases = [
        (
            Api::Converse,
            json!({"messages": [text("user", "Hi"), text("user", "Hello")]}),
            "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "claude-3-sonnet-20240229-v1:0", "max_tokens": 10,
                "messages": [{"role": "user", "content": "a"}]}),
            "Invalid API version: claude-3-sonnet-20240229-v1:0",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": "a"},
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": "I made this up", "signature": "RXFRQkNrWUk="}]}],
                "thinking": {"type": "enabled", "budget_tokens": 1024}}),
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "stream": true,
                "messages": [{"role": "user", "content": "a"}]}),
            "Malformed input request: #: extraneous key [stream] is not permitted, please reformat your input and try again.",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31",
                "messages": [{"role": "user", "content": "a"}]}),
            "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again.",
        ),
        (
            Api::Converse,
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}),
            "Malformed input request: #/messages/0/content/0: extraneous key [type] is not permitted, please reformat your input and try again.",
        ),
        (
            Api::Converse,
            json!({"messages": [{"role": "user", "content": [
                {"text": "Hi", "image": {"format": "png", "source": {"bytes": "AA=="}}}]}]}),
            "Invalid number of parameters set for tagged union structure messages[0].content[0]. Can only set one of the following keys: text, image, document, video, audio, toolUse, toolResult, guardContent, cachePoint, reasoningContent, citationsContent, searchResult, toolAddition, toolRemoval.",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Hi"), text("assistant", "\n"), text("user", "Go on")]}),
            "The text field in the ContentBlock object at messages.1.content.0 is blank. Add text to the text field, and try again.",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Hi"), {"role": "assistant", "content": []}, text("user", "Go on")]}),
            "The content field in the Message object at messages.1 is empty. Add a ContentBlock object to the content field and try again.",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}),
            "messages: text content blocks must be non-empty",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "text", "text": " \n"}]}]}),
            "messages: text content blocks must contain non-whitespace text",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": []}, {"role": "assistant", "content": "ok"}]}),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Weather?"), tool_use("tooluse_a"), text("user", "Well?")],
                "toolConfig": tools_converse()}),
            "The model returned the following errors: messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: tooluse_a. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "c"}]}]}),
            "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Weather?"), tool_use("tooluse_a"),
                    {"role": "user", "content": [tool_result("tooluse_a"), tool_result("tooluse_a")]}],
                "toolConfig": tools_converse()}),
            "The number of toolResult blocks at messages.2.content exceeds the number of toolUse blocks of previous turn.",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Weather?"), tool_use("tooluse_a"),
                    {"role": "user", "content": [tool_result("tooluse_a")]}]}),
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Weather?"), tool_use("tooluse_a"),
                    {"role": "user", "content": [tool_result("tooluse_a")]},
                    tool_use("tooluse_a"), {"role": "user", "content": [tool_result("tooluse_a")]}],
                "toolConfig": tools_converse()}),
            "The model returned the following errors: messages.3.content.0: `tool_use` ids must be unique",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": "a"},
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]}]}),
            "messages.1.content.0: When thinking is disabled, an `assistant` message in the final position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request.",
        ),
        (
            Api::InvokeModel,
            json!({"max_tokens": 10, "messages": [{"role": "user", "content": "a"}]}),
            "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "assistant", "content": "a"}]}),
            "messages: first message must use the \"user\" role",
        ),
        (
            Api::Converse,
            json!({"messages": [{"role": "user", "content": [{}]}]}),
            "Must set one of the following keys for tagged unionstructure messages[0].content[0]: text, image, document, video, audio, toolUse, toolResult, guardContent, cachePoint, reasoningContent, citationsContent, searchResult, toolAddition, toolRemoval.",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Hi"), text("assistant", "Sure, here")],
                "additionalModelRequestFields": thinking_converse()}),
            "The model returned the following errors: messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Weather?"),
                    {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "hm"}}},
                        {"toolUse": {"toolUseId": "tooluse_a", "name": "get_weather", "input": {}}}]},
                    {"role": "user", "content": [tool_result("tooluse_a")]}],
                "toolConfig": tools_converse(), "additionalModelRequestFields": thinking_converse()}),
            "The model returned the following errors: messages.1.content.0.thinking.signature: Field required",
        ),
        (
            Api::InvokeModel,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": "Weather?"},
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": ""},
                        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "Sunny"}]}],
                "thinking": {"type": "enabled", "budget_tokens": 1024}}),
            "messages.1.content.0.thinking.signature: Field required",
        ),
        (
            Api::Converse,
            json!({"messages": [text("user", "Weather?"), tool_use("tooluse_a"),
                    {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_a", "content": [{"text": ""}]}}]}],
                "toolConfig": tools_converse()}),
            "The model returned the following errors: messages: text content blocks must be non-empty",
        ),
    ];
    for (api, body, says) in cases {
        let error = send(&transport, api, &body).await.unwrap_err();
        assert_eq!(error.status, 400, "{says}");
        assert_eq!(error.exception, Exception::Validation, "{says}");
        assert_eq!(error.message, says);
        assert!(error.request_id.is_some());
    }
}

#[tokio::test]
async fn only_the_configured_credentials_or_api_key_get_in() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let body = json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]});
    assert!(
        send(&transport(&emulator, Auth::api_key(DEFAULT_API_KEY)), Api::Converse, &body)
            .await
            .is_ok()
    );
    let wrong_secret = Auth::credentials(DEFAULT_ACCESS_KEY_ID, "not-the-secret", None);
    let error = send(&transport(&emulator, wrong_secret), Api::Converse, &body).await.unwrap_err();
    assert_eq!(error.status, 403);
    assert!(
        error.message.starts_with("The request signature we calculated does not match"),
        "{}",
        error.message
    );
    let wrong_key = Auth::credentials("AKIAOTHER", DEFAULT_SECRET_ACCESS_KEY, None);
    let error = send(&transport(&emulator, wrong_key), Api::Converse, &body).await.unwrap_err();
    assert_eq!(
        (error.status, error.message.as_str()),
        (403, "The security token included in the request is invalid.")
    );
    let error = send(&transport(&emulator, Auth::api_key("wrong")), Api::Converse, &body)
        .await
        .unwrap_err();
    assert_eq!(
        (error.status, error.message.as_str()),
        (403, "The security token included in the request is invalid.")
    );
    assert!(emulator.received().len() == 1, "refused requests reach no model");
}

/// A raw POST (the path as given, unencoded) and the status and body of the answer.
async fn raw_post(emulator: &Emulator, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(emulator.addr()).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\nauthorization: Bearer {DEFAULT_API_KEY}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        emulator.addr(),
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn an_arn_not_encoded_as_one_segment_gets_the_http_200_unknown_operation() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0";
    let (status, body) = raw_post(&emulator, &format!("/model/{arn}/converse"), "{}").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}"#), "{body}");
    let encoded = verbatim_protocol::model_id::path_segment(arn);
    let messages = r#"{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"#;
    let (status, _) = raw_post(&emulator, &format!("/model/{encoded}/converse"), messages).await;
    assert_eq!(status, 200);
    assert_eq!(emulator.received().last().unwrap().model_id, arn);
}

/// The kinds of the blocks of a reply, in order.
fn kinds(response: &Response) -> Vec<&'static str> {
    response
        .message
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(t) if t.text.trim().is_empty() => "blank",
            ContentBlock::Text(_) => "text",
            ContentBlock::RedactedThinking(_) => "redacted",
            ContentBlock::Thinking(_) => "thinking",
            ContentBlock::ToolUse(_) => "tool_use",
            _ => "other",
        })
        .collect()
}

/// Runs a Converse tool loop against `model` until the model stops calling tools (at most
/// `limit` requests), answering every call; returns each reply's block kinds.
async fn tool_loop(
    transport: &HttpTransport,
    model: &str,
    tools: Value,
    limit: usize,
) -> (Vec<Vec<&'static str>>, Response) {
    let mut messages = vec![json!({"role": "user", "content": [{"text": "Plan my trip to Lyon"}]})];
    let mut shapes = Vec::new();
    for _ in 0..limit {
        let body = json!({"messages": messages, "toolConfig": tools,
            "additionalModelRequestFields": thinking_converse()});
        let reply = send_to(transport, Api::Converse, model, &body).await.unwrap();
        shapes.push(kinds(&reply));
        let assistant = converse::encode_message(&reply.message).unwrap();
        let results: Vec<Value> = reply
            .message
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::ToolUse(call) => Some(json!({"toolResult": {
                    "toolUseId": call.id, "content": [{"text": format!("done {}", call.name)}]}})),
                _ => None,
            })
            .collect();
        messages.push(assistant);
        if results.is_empty() {
            return (shapes, reply);
        }
        messages.push(json!({"role": "user", "content": results}));
    }
    panic!("the model was still calling tools after {limit} requests: {shapes:?}");
}

fn two_tools() -> Value {
    let mut tools = tools_converse();
    tools["tools"].as_array_mut().unwrap().push(json!({"toolSpec": {"name": "get_time",
        "inputSchema": {"json": {"type": "object", "properties": {"zone": {"type": "string"}}}}}}));
    tools
}

#[tokio::test]
async fn scripted_models_think_call_tools_and_answer_as_named() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let cases: [(&str, Vec<Vec<&str>>); 6] = [
        (
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            vec![vec!["thinking", "tool_use"], vec!["text"]],
        ),
        ("us.emulator.parallel", vec![vec!["thinking", "tool_use", "tool_use"], vec!["text"]]),
        ("us.emulator.interleaved", vec![vec!["thinking", "tool_use"], vec!["thinking", "text"]]),
        ("emulator.redacted", vec![vec!["redacted", "tool_use"], vec!["text"]]),
        ("emulator.text", vec![vec!["thinking", "text"]]),
        (
            "emulator.steps-3",
            vec![
                vec!["thinking", "tool_use"],
                vec!["thinking", "tool_use"],
                vec!["thinking", "tool_use"],
                vec!["thinking", "text"],
            ],
        ),
    ];
    for (model, expected) in cases {
        // Every replayed block (readable or redacted) passes the emulator's signature check.
        let (shapes, _) = tool_loop(&transport, model, two_tools(), 6).await;
        assert_eq!(shapes, expected, "{model}");
    }
    let received = emulator.received();
    let steps: Vec<String> = received
        .iter()
        .filter(|r| r.model_id == "emulator.steps-3" && r.status == 200)
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let last = &body["messages"].as_array().unwrap().last().unwrap()["content"][0];
            last["toolResult"]["content"][0]["text"].as_str().unwrap_or("question").to_owned()
        })
        .collect();
    assert_eq!(steps, ["question", "done get_weather", "done get_time", "done get_weather"]);
}

#[tokio::test]
async fn blank_text_and_max_tokens_replies_are_what_claude_sometimes_sends() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = signed(&emulator);
    let question = json!({"role": "user", "content": [{"text": "Weather in Lyon?"}]});
    let body = json!({"messages": [question], "toolConfig": tools_converse()});
    let reply = send_to(&transport, Api::Converse, "emulator.blank", &body).await.unwrap();
    assert_eq!(kinds(&reply), ["blank", "tool_use"]);
    // Replayed as it came, the blank text is refused, as Bedrock refuses it.
    let assistant = converse::encode_message(&reply.message).unwrap();
    let id = assistant["content"][1]["toolUse"]["toolUseId"].clone();
    let body = json!({"messages": [question, assistant,
        {"role": "user", "content": [{"toolResult": {"toolUseId": id, "content": [{"text": "Sunny"}]}}]}],
        "toolConfig": tools_converse()});
    let error = send_to(&transport, Api::Converse, "emulator.blank", &body).await.unwrap_err();
    assert_eq!(
        error.message,
        "The text field in the ContentBlock object at messages.1.content.0 is blank. Add text to the text field, and try again."
    );
    let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 12,
        "messages": [{"role": "user", "content": "Tell me everything"}]});
    let reply = send_to(&transport, Api::InvokeModel, "emulator.max-tokens", &body).await.unwrap();
    assert_eq!(reply.stop_reason, Some(StopReason::MaxTokens));
    assert_eq!(reply.usage.as_ref().unwrap().output_tokens, Some(12));
    let ContentBlock::Text(text) = &reply.message.content[0] else { panic!("{reply:?}") };
    assert_eq!(text.text.split(' ').count(), 12);
}

#[tokio::test]
async fn a_script_names_behaviours_by_model_id() {
    let script: Script = serde_json::from_value(json!({
        "behaviour": "text",
        "models": {"anthropic.claude-sonnet-4-20250514-v1:0": "parallel"}
    }))
    .unwrap();
    let emulator =
        Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }).await.unwrap();
    let transport = signed(&emulator);
    let (shapes, _) = tool_loop(&transport, MODEL, tools_converse(), 3).await;
    assert_eq!(shapes, [vec!["thinking", "tool_use", "tool_use"], vec!["text"]]);
    let (shapes, _) = tool_loop(&transport, "anthropic.other-model", tools_converse(), 3).await;
    assert_eq!(shapes, [vec!["thinking", "text"]]);
}

#[tokio::test]
async fn faults_drawn_by_rate_reach_the_client_as_bedrock_sends_them() {
    let script: Script = serde_json::from_value(json!({
        "fault_rates": {"seed": 7, "throttle": 0.25, "unavailable": 0.15}
    }))
    .unwrap();
    let emulator =
        Emulator::start(EmulatorConfig { script, ..EmulatorConfig::default() }).await.unwrap();
    let transport = signed(&emulator);
    let body = json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]});
    let mut answered = Vec::new();
    for _ in 0..60 {
        answered.push(match send(&transport, Api::Converse, &body).await {
            Ok(_) => 200,
            Err(error) => {
                let expected = match error.status {
                    429 => (
                        Exception::Throttling,
                        "Too many requests, please wait before trying again.",
                    ),
                    503 => (
                        Exception::ServiceUnavailable,
                        "Bedrock is unable to process your request.",
                    ),
                    other => panic!("unexpected status {other}: {error:?}"),
                };
                assert_eq!((error.exception.clone(), error.message.as_str()), expected);
                error.status
            }
        });
    }
    let count = |status: u16| answered.iter().filter(|s| **s == status).count();
    assert!((5..=25).contains(&count(429)), "{answered:?}");
    assert!((2..=18).contains(&count(503)), "{answered:?}");
    let statuses: Vec<u16> = emulator.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, answered, "the emulator's record agrees with what the client saw");
}

/// The emulator bounds what it reads: a body over Bedrock's 25,000,000-byte maximum is refused
/// with HTTP 413 before any of it is judged, and nothing is recorded as received.
#[tokio::test]
async fn a_body_over_the_size_limit_is_refused_with_413() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = transport(&emulator, Auth::api_key(DEFAULT_API_KEY));
    let text = "x".repeat(25_000_001);
    let body = json!({"messages": [{"role": "user", "content": [{"text": text}]}]});
    let call = Call::new(Api::Converse, MODEL, body.to_string());
    let error = transport.send(call).await.unwrap_err();
    assert_eq!(error.api().map(|e| e.status), Some(413), "{error}");
    assert!(emulator.received().is_empty());
}
