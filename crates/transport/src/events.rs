//! The events of a streamed HTTP response, decoded as its body arrives: event-stream frames
//! (ConverseStream, InvokeModelWithResponseStream) or server-sent events (the Messages API).
//!
//! Server-sent events are handed out as the Anthropic SDK reads them (its `Stream`): `ping`,
//! events without an `event` name and events with empty data are skipped; `event: error` ends
//! the stream with the Anthropic error it carries, as an [`ApiError`] with the stream's HTTP
//! status (200); every other event goes out as its name and its data, byte for byte.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use verbatim_protocol::eventstream::{Frame, FrameDecoder};
use verbatim_protocol::sse::{MessagesEventError, SseDecoder, SseEvent, messages_event};
use verbatim_protocol::stream::StreamFailure;

use crate::response::json_message;
use crate::{ApiError, EventSource, Exception, StreamEvent, TransportError};

/// How a stream's body is framed.
pub(crate) enum Framing {
    /// `application/vnd.amazon.eventstream`.
    EventStream(FrameDecoder),
    /// `text/event-stream`.
    Sse(SseDecoder),
}

/// The events of one HTTP response.
pub(crate) struct HttpEvents {
    pub(crate) response: reqwest::Response,
    pub(crate) framing: Framing,
    pub(crate) request_id: Option<String>,
    pub(crate) idle: Duration,
    /// The first event, read before the stream was handed out.
    pub(crate) first: Option<StreamEvent>,
    pub(crate) done: bool,
    /// Bytes of the stream received so far, and the most it may carry (the decoders bound
    /// each frame or event; this bounds their sum, so no stream grows a reply without end).
    pub(crate) received: usize,
    pub(crate) limit: usize,
}

#[async_trait]
impl EventSource for HttpEvents {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        if let Some(event) = self.first.take() {
            return Some(Ok(event));
        }
        if self.done {
            return None;
        }
        let item = self.read().await;
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// An exception or error sent inside the stream (its HTTP status was 200).
fn in_stream(request_id: &Option<String>, code: &str, message: String) -> TransportError {
    TransportError::Api(ApiError {
        exception: Exception::from_code(code),
        status: 200,
        message,
        request_id: request_id.clone(),
        retry_after: None,
    })
}

/// An SSE event as handed out; `None` for one skipped.
fn sse_event(
    request_id: &Option<String>,
    event: SseEvent,
) -> Option<Result<StreamEvent, TransportError>> {
    let name = event.event.as_deref()?;
    if name == "error" {
        // The wire reads the error object the way the fold does (`StreamFailure`).
        let failure = match messages_event(&event) {
            Err(MessagesEventError::Failed { failure, .. }) => failure,
            _ => StreamFailure { error_type: None, message: event.data.clone() },
        };
        let code = failure.error_type.as_deref().unwrap_or("error");
        return Some(Err(in_stream(request_id, code, failure.message)));
    }
    if name == "ping" || event.data.is_empty() {
        return None;
    }
    let event_type = name.to_owned();
    Some(Ok(StreamEvent { event_type, payload: Bytes::from(event.data.into_bytes()) }))
}

impl HttpEvents {
    /// The next event the bytes received so far hold; `None` when more are needed.
    fn decoded(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        let request_id = &self.request_id;
        match &mut self.framing {
            Framing::EventStream(decoder) => match decoder.next_frame() {
                Err(error) => Some(Err(error.into())),
                Ok(Some(Frame::Event { event_type, payload })) => {
                    Some(Ok(StreamEvent { event_type, payload }))
                }
                Ok(Some(Frame::Exception { exception_type, payload })) => {
                    let message = json_message(&payload)
                        .unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
                    Some(Err(in_stream(request_id, &exception_type, message)))
                }
                Ok(Some(Frame::Error { code, message })) => {
                    Some(Err(in_stream(request_id, &code, message)))
                }
                Ok(None) => None,
            },
            Framing::Sse(decoder) => loop {
                let event = match decoder.next_event() {
                    Err(error) => return Some(Err(error.into())),
                    Ok(None) => return None,
                    Ok(Some(event)) => event,
                };
                if let Some(item) = sse_event(request_id, event) {
                    return Some(item);
                }
            },
        }
    }

    /// The end of the body: an error if it stopped inside a frame or an event.
    fn finished(&self) -> Option<TransportError> {
        match &self.framing {
            Framing::EventStream(decoder) => decoder.finish().err().map(Into::into),
            Framing::Sse(decoder) => decoder.finish().err().map(Into::into),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        match &mut self.framing {
            Framing::EventStream(decoder) => decoder.push(bytes),
            Framing::Sse(decoder) => decoder.push(bytes),
        }
    }

    async fn read(&mut self) -> Option<Result<StreamEvent, TransportError>> {
        loop {
            if let Some(item) = self.decoded() {
                return Some(item);
            }
            match tokio::time::timeout(self.idle, self.response.chunk()).await {
                Err(_) => {
                    return Some(Err(TransportError::Timeout { waiting_for: "the next chunk" }));
                }
                Ok(Err(error)) => return Some(Err(TransportError::connection(error))),
                Ok(Ok(Some(bytes))) => {
                    self.received += bytes.len();
                    if self.received > self.limit {
                        return Some(Err(TransportError::UnexpectedResponse {
                            status: 200,
                            message: format!(
                                "the response stream is over the {}-byte limit (max_response_bytes)",
                                self.limit
                            ),
                        }));
                    }
                    self.push(&bytes);
                }
                Ok(Ok(None)) => return self.finished().map(Err),
            }
        }
    }
}
