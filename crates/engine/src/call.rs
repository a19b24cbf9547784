//! One model call: the assembled body through the transport, whole or streamed, folded into
//! the response a non-streamed call returns. A stream that breaks off is an error and yields
//! no message, so nothing half-made is ever stored.

use verbatim_model::{Api, ContentBlock, Response};
use verbatim_protocol::stream::{AnthropicAccumulator, ConverseAccumulator, Update};
use verbatim_protocol::{anthropic, converse, messages_api};
use verbatim_transport::{Call, Transport};

use crate::{EngineError, Event};

/// Sends `call` and reads the reply, reporting text and thinking as they come.
pub(crate) async fn call_model(
    transport: &dyn Transport,
    call: Call,
    streaming: bool,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Response, EngineError> {
    let api = call.api;
    if !streaming {
        let reply = transport.send(call).await?;
        let response = match api {
            Api::Converse => converse::decode_response(&reply.body),
            Api::InvokeModel => anthropic::decode_response(&reply.body),
            Api::Messages => messages_api::decode_response(&reply.body),
        }
        .map_err(EngineError::Decode)?;
        for block in &response.message.content {
            match block {
                ContentBlock::Text(text) => on_event(Event::Text(text.text.clone())),
                ContentBlock::Thinking(thinking) => {
                    on_event(Event::Thinking(thinking.text.clone()))
                }
                _ => {}
            }
        }
        return Ok(response);
    }
    let mut events = transport.stream(call).await?;
    let mut folded = Folded::new(api);
    while let Some(event) = events.next().await {
        let event = event?;
        let update = folded.push(&event.event_type, &event.payload).map_err(EngineError::Stream)?;
        match update {
            Some(Update::Text { text, .. }) => on_event(Event::Text(text)),
            Some(Update::Thinking { text, .. }) => on_event(Event::Thinking(text)),
            _ => {}
        }
    }
    folded.finish().map_err(EngineError::Stream)
}

enum Folded {
    Converse(ConverseAccumulator),
    /// InvokeModel's `chunk` events, each an Anthropic event in base64.
    Anthropic(AnthropicAccumulator),
    /// The Messages API's server-sent events, as the transport hands them on: the event's
    /// name and its `data` (one Anthropic event as JSON; `ping` and `error` never reach here).
    Messages(AnthropicAccumulator),
}

impl Folded {
    fn new(api: Api) -> Folded {
        match api {
            Api::Converse => Folded::Converse(ConverseAccumulator::new()),
            Api::InvokeModel => Folded::Anthropic(AnthropicAccumulator::new()),
            Api::Messages => Folded::Messages(AnthropicAccumulator::new()),
        }
    }

    fn push(
        &mut self,
        event_type: &str,
        payload: &[u8],
    ) -> Result<Option<Update>, verbatim_protocol::stream::StreamError> {
        match self {
            Folded::Converse(folded) => folded.push(event_type, payload),
            Folded::Anthropic(folded) => folded.push_chunk(payload),
            Folded::Messages(folded) => folded.push(payload),
        }
    }

    fn finish(self) -> Result<Response, verbatim_protocol::stream::StreamError> {
        match self {
            Folded::Converse(folded) => folded.finish(),
            Folded::Anthropic(folded) | Folded::Messages(folded) => folded.finish(),
        }
    }
}
