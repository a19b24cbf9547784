//! A transport that replays canned answers in order and records the calls it was given, for
//! tests of whatever sits on top (no sockets, so a tool loop runs in milliseconds).

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Call, EventStream, Reply, StreamEvent, Transport, TransportError};

/// One canned answer.
#[derive(Debug)]
pub enum Scripted {
    /// The answer to a `send`.
    Reply(Reply),
    /// The answer to a `stream`: these events (an `Err` ends the stream with that error).
    Events(Vec<Result<StreamEvent, TransportError>>),
    /// A failure, for either kind of call.
    Error(TransportError),
}

/// Replays [`Scripted`] answers in order and records every [`Call`].
#[derive(Debug, Default)]
pub struct ScriptedTransport {
    script: Mutex<VecDeque<Scripted>>,
    calls: Mutex<Vec<Call>>,
}

impl ScriptedTransport {
    /// A transport with an empty script.
    pub fn new() -> ScriptedTransport {
        ScriptedTransport::default()
    }

    /// Adds an answer at the end of the script.
    pub fn push(&self, answer: Scripted) -> &ScriptedTransport {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).push_back(answer);
        self
    }

    /// Adds a whole response body.
    pub fn push_reply(&self, body: impl Into<Bytes>) -> &ScriptedTransport {
        self.push(Scripted::Reply(Reply { body: body.into(), request_id: None }))
    }

    /// Adds a stream of `(event type, payload)` events that ends cleanly.
    pub fn push_events<T, P>(&self, events: impl IntoIterator<Item = (T, P)>) -> &ScriptedTransport
    where
        T: Into<String>,
        P: Into<Bytes>,
    {
        let events = events
            .into_iter()
            .map(|(event_type, payload)| {
                Ok(StreamEvent { event_type: event_type.into(), payload: payload.into() })
            })
            .collect();
        self.push(Scripted::Events(events))
    }

    /// Adds a failure.
    pub fn push_error(&self, error: TransportError) -> &ScriptedTransport {
        self.push(Scripted::Error(error))
    }

    /// The calls received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Answers not yet used.
    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn next(&self, call: Call, wanted: &str) -> Result<Scripted, TransportError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
        self.script.lock().unwrap_or_else(|e| e.into_inner()).pop_front().ok_or_else(|| {
            TransportError::Config {
                message: format!("the script has no answer left for a {wanted}"),
            }
        })
    }
}

#[async_trait]
impl Transport for ScriptedTransport {
    async fn send(&self, call: Call) -> Result<Reply, TransportError> {
        match self.next(call, "send")? {
            Scripted::Reply(reply) => Ok(reply),
            Scripted::Error(error) => Err(error),
            Scripted::Events(_) => Err(TransportError::Config {
                message: "the script holds a stream where a send was made".to_owned(),
            }),
        }
    }

    async fn stream(&self, call: Call) -> Result<EventStream, TransportError> {
        match self.next(call, "stream")? {
            // Like the HTTP transport: a stream is handed out only once its first event is in.
            Scripted::Events(mut events) => match events.first() {
                None => Err(TransportError::UnexpectedResponse {
                    status: 200,
                    message: "the stream ended before its first event".to_owned(),
                }),
                Some(Err(_)) => Err(events.remove(0).expect_err("checked above")),
                Some(Ok(_)) => Ok(EventStream::from_items(events)),
            },
            Scripted::Error(error) => Err(error),
            Scripted::Reply(_) => Err(TransportError::Config {
                message: "the script holds a reply where a stream was opened".to_owned(),
            }),
        }
    }
}
