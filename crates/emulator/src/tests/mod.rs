//! Tests of the emulator over real sockets on 127.0.0.1:0, written byte by byte: what a slow
//! or broken client gets, refusals that need no HTTP client to show, and the Messages API
//! route.

mod caching;
mod connections;
mod messages;
