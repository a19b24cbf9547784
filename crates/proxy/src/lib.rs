//! `verbatim serve`: a Bedrock Runtime endpoint that any Bedrock client (boto3, the Anthropic
//! SDK, anything honouring `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` or a base URL) can point at. It
//! forwards each call to Bedrock (or any URL speaking its wire, such as the emulator) and keeps
//! the conversation in verbatim's store, byte for byte.
//!
//! Routes: `POST /model/{id}/converse`, `/converse-stream`, `/invoke`,
//! `/invoke-with-response-stream`, `/count-tokens`, `POST /anthropic/v1/messages` (and
//! `/anthropic/v1/messages/count_tokens`), and `GET /ping`.
//!
//! What happens to a call:
//! - **Client auth** (`client_auth.rs`): the proxy's own API keys (`Authorization: Bearer` or
//!   `x-api-key`) or SigV4 with credentials the proxy issued. The upstream request carries the
//!   proxy's credentials, signed afresh; the client's never travel on, and the upstream's never
//!   reach a client, a log line or the store.
//! - **Sessions** (`record.rs`): `x-verbatim-session` names the session; without it the
//!   session whose stored prefix the request continues is found by the prefix hash the engine
//!   keeps (`assemble::prefix_hash`), else a new one starts. The answer carries the id in
//!   `x-verbatim-session`, only of a session that is stored (a refused first call names none).
//!   Each exchange is appended with its provenance (surface, model, prefix hash) and usage;
//!   of two calls continuing one session at once, the one recorded second goes into a fork at
//!   the point both continued (a whole answer names the fork).
//! - **Restore thinking** (`restore.rs`), in every mode: an assistant turn sent back with its
//!   thinking dropped, blanked or re-encoded gets the stored bytes back; the provenance notes
//!   say so.
//! - **Modes** (`judge.rs`): `observe` forwards and notes what breaks a rule; `guard` answers
//!   a request that breaks one with Bedrock's own status, error type and text (and the JSON
//!   path) without calling the model; `repair` applies the assembler's fixes and notes them.
//! - **Streams** (`exchange.rs`) pass through chunk by chunk as they arrive while a copy is
//!   folded for the record (`fold.rs`); a client that goes away cancels the upstream call, and
//!   a stream that breaks off stores the input alone, never a reply.
//!
//! One process per sled directory (sled locks it); any number on one PostgreSQL store.

mod client_auth;
mod connections;
mod exchange;
mod fold;
mod judge;
mod record;
mod reply;
mod restore;
mod route;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use verbatim_store::SessionStore;
use verbatim_transport::HttpTransport;

pub use client_auth::{ClientAuth, IssuedCredentials};

/// What the proxy does with a request that breaks one of Bedrock's rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Forwards it unchanged; the rules broken are noted in the record.
    #[default]
    Observe,
    /// Answers it with Bedrock's own refusal, without calling the model.
    Guard,
    /// Applies the assembler's fixes, forwards the repaired request, and notes the fixes.
    Repair,
}

impl Mode {
    /// `observe`, `guard` or `repair`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Guard => "guard",
            Mode::Repair => "repair",
        }
    }
}

/// Bounds on what a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest body accepted (default 25,000,000 bytes, Bedrock's own); larger is HTTP 413.
    pub max_body: usize,
    /// How long a body may take to arrive once its headers are in (default 30 s); past it
    /// HTTP 408.
    pub body_read_timeout: Duration,
    /// The largest whole (non-streamed) answer read from upstream (default 64 MiB).
    pub max_response: usize,
    /// How long a client may take to send a request's headers, also while a connection
    /// waits idle for its next request (default 10 s); past it the connection is closed.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 25_000_000,
            body_read_timeout: Duration::from_secs(30),
            max_response: verbatim_transport::MAX_RESPONSE_BYTES,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the proxy needs.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Where calls go, and with which credentials.
    pub upstream: HttpTransport,
    /// Where sessions are kept.
    pub store: Arc<dyn SessionStore>,
    /// Who may call the proxy.
    pub auth: ClientAuth,
    /// What to do with requests that break a rule.
    pub mode: Mode,
    /// Bounds on requests.
    pub limits: Limits,
    /// Serve HTTPS with this certificate and key (botocore sends a bearer token only over
    /// HTTPS); plain HTTP when `None`.
    pub tls: Option<Tls>,
}

/// A server certificate chain and its private key, PEM.
#[derive(Clone)]
pub struct Tls {
    /// The certificate chain, leaf first (PEM).
    pub cert_pem: Vec<u8>,
    /// The private key (PEM).
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls { key: [redacted], .. }")
    }
}

impl Tls {
    fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, ProxyError> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |what: &str, error: &dyn fmt::Display| ProxyError::Tls {
            message: format!("{what}: {error}"),
        };
        let certs = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("the certificate", &e))?;
        if certs.is_empty() {
            return Err(ProxyError::Tls {
                message: "the certificate file holds no certificate".to_owned(),
            });
        }
        let key =
            PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| invalid("the key", &e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("TLS versions", &e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid("the certificate and key", &e))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("upstream", &self.upstream)
            .field("auth", &self.auth)
            .field("mode", &self.mode)
            .field("limits", &self.limits)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// What can stop the proxy from starting.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No client could ever authenticate.
    #[error(
        "the proxy has no API key and no issued credentials: no client could call it (give --api-key or --access-key-id with --secret-access-key)"
    )]
    NoClientAuth,
    /// The certificate or key cannot serve TLS.
    #[error("TLS: {message}")]
    Tls {
        /// What is wrong (never the key).
        message: String,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// The state every request shares.
pub(crate) struct Shared {
    pub(crate) config: ProxyConfig,
    pub(crate) sessions: record::Sessions,
    /// Calls sent upstream so far.
    pub(crate) upstream_calls: AtomicU64,
}

/// A running proxy; dropping it stops it.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Proxy {
    /// Starts on `127.0.0.1` at a port the system picks.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        Proxy::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr`.
    pub async fn bind(addr: SocketAddr, config: ProxyConfig) -> Result<Proxy, ProxyError> {
        if config.auth.is_empty() {
            return Err(ProxyError::NoClientAuth);
        }
        let tls = config.tls.as_ref().map(Tls::acceptor).transpose()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ProxyError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Bind { addr, source })?;
        let sessions = record::Sessions::new(config.store.clone());
        let shared = Arc::new(Shared { config, sessions, upstream_calls: AtomicU64::new(0) });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = exchange::router(shared.clone());
        let header_read_timeout = shared.config.limits.header_read_timeout;
        let task =
            tokio::spawn(connections::serve(listener, app, header_read_timeout, tls, stopped));
        Ok(Proxy { addr, shared, stop: Some(stop), task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its endpoint URL (`http://127.0.0.1:PORT`, `https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.shared.config.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// How many calls it sent upstream so far.
    pub fn upstream_calls(&self) -> u64 {
        self.shared.upstream_calls.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets the requests in progress finish, and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Serves until the task ends (never, unless stopped).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
