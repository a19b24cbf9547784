//! Tests of the transport: unit tests of signing, errors and retries, and the HTTP transport
//! against a local server.

mod http;
mod server;
mod unit;
