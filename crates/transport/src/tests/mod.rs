//! Tests of the transport: unit tests of signing, errors and retries, and the HTTP transport
//! against the emulator and a scripted loopback server.

mod count_tokens;
mod emulated;
#[cfg(feature = "aws-config")]
mod env;
mod http;
mod messages;
mod server;
mod unit;

use crate::{EventStream, TransportError};

/// Drains a stream: the event types received, and the error that ended it, if any.
pub(crate) async fn collect(events: &mut EventStream) -> (Vec<String>, Option<TransportError>) {
    let mut types = Vec::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(event) => types.push(event.event_type),
            Err(error) => return (types, Some(error)),
        }
    }
    (types, None)
}
