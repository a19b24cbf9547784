//! Tests of the transport: unit tests of signing, errors and retries, and the HTTP transport
//! against a local server.

#[cfg(feature = "aws-config")]
mod emulated;
mod env;
mod http;
mod server;
mod unit;
