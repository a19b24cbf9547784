//! verbatim: a chat-session engine for Amazon Bedrock that keeps every byte of a conversation.
//!
//! Start with an [`Engine`]: built with a [`store`] (sled by default, [`MemoryStore`] for
//! tests, PostgreSQL with the `postgres` feature) and a [`Transport`] ([`HttpTransport`] to
//! Bedrock, with SigV4 or an API key), it opens [`Session`]s. [`Session::send`] runs a turn:
//! it assembles a request Bedrock accepts from the stored history (repairing or explaining
//! what Bedrock would refuse), calls the model, stores the reply byte for byte, and runs the
//! [`Tool`]s the model asks for until it stops; a turn a crash interrupted resumes with
//! [`Session::resume`] without running a tool twice.
//!
//! The layers underneath are here too, one dependency for all:
//!
//! - [`model`]: the vocabulary of a conversation ([`Request`], [`Message`], [`ContentBlock`],
//!   [`Response`], ...) and its canonical stored form.
//! - [`protocol`]: the pure wire logic: the lossless [`converse`] and [`anthropic`] codecs, and
//!   the assembler and validator ([`assemble`]) that check and repair requests against
//!   Bedrock's rules ([`protocol::rules`]).
//! - [`store`], [`transport`], [`engine`]: the durable session log, the HTTP edge, and the
//!   turn loop.
//!
//! ```no_run
//! let body = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#;
//! let request = verbatim::converse::decode_request(body)?;
//! let invoke_body = verbatim::anthropic::encode_request(&verbatim::Request {
//!     inference: Some(verbatim::InferenceConfig { max_tokens: Some(512), ..Default::default() }),
//!     ..request
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use verbatim_engine as engine;
pub use verbatim_engine::{
    ContextPolicy, Defaults, Engine, EngineBuilder, EngineError, Event, FnTool, Input, Reply,
    Session, Settled, Tool, ToolError, ToolOutput,
};
pub use verbatim_model as model;
pub use verbatim_model::{
    Api, ContentBlock, Dialect, InferenceConfig, Message, Request, Response, Role, SessionId,
    StopReason, ThinkingConfig, ThinkingMode, ToolUseId, Usage,
};
pub use verbatim_protocol as protocol;
pub use verbatim_protocol::{
    DecodeError, EncodeError, JsonPath, anthropic, assemble, converse, messages_api,
};
pub use verbatim_store as store;
#[cfg(feature = "dynamodb")]
pub use verbatim_store::{DynamoOptions, DynamoStore};
pub use verbatim_store::{MemoryStore, SessionStore, SledStore};
#[cfg(feature = "postgres")]
pub use verbatim_store::{PostgresOptions, PostgresStore, SslMode};
pub use verbatim_transport as transport;
pub use verbatim_transport::{Auth, HttpConfig, HttpTransport, MessagesHost, Transport};

/// README.md's code, compiled (and the part that needs no network, run) by `cargo test --doc`,
/// so that it stays true to the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
