//! TLS for PostgreSQL connections, with rustls (no OpenSSL): the `sslmode`s libpq has and what
//! each one checks, the CA certificates (`sslrootcert`, or the platform's store), and the
//! connector tokio-postgres calls for each new connection.
//!
//! What each mode checks, as libpq does: `disable` never encrypts; `prefer` (the default)
//! encrypts when the server accepts TLS and checks nothing (a failed handshake is tried again
//! in plain text); `require` encrypts or fails, and
//! checks nothing, unless `sslrootcert` names a file, when it checks the chain as `verify-ca`
//! (libpq does the same when its default root file exists; this store reads no default file);
//! `verify-ca` checks that the server's certificate chains to a trusted CA, not its name;
//! `verify-full` checks the chain and that the certificate names the host connected to. Without
//! `sslrootcert`, or with libpq's `sslrootcert=system` (which also makes the mode
//! `verify-full`, and refuses a weaker one), the verify modes trust the platform's CA store (what `rustls-native-certs`
//! reads: `/etc/ssl/certs` and the like, `SSL_CERT_FILE`); Amazon RDS's CAs are not in it, so
//! RDS needs `sslrootcert` naming its bundle.
//!
//! With a SCRAM password, the connection is bound to the server's certificate
//! (`tls-server-end-point`, SCRAM-SHA-256-PLUS) when the server offers it.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::StoreError;

/// How a connection uses TLS, as libpq's `sslmode` spells it (see the module documentation
/// for what each one checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server accepts it, plain text otherwise; nothing is checked.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is checked only when a root file is given (then
    /// as [`SslMode::VerifyCa`]).
    Require,
    /// TLS, and the server's certificate chains to a trusted CA; its host name is not checked.
    VerifyCa,
    /// TLS, the certificate chains to a trusted CA and names the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }

    pub(super) fn for_tokio_postgres(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SslMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<SslMode, StoreError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Invalid(format!(
                    "sslmode `{other}` is not one this store knows: use disable, prefer, \
                     require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// Why a TLS connection was not made. tokio-postgres carries it as the cause of its "error
/// performing TLS handshake"; the store finds it there to say what happened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsFailure {
    /// `verify-full`, and the certificate does not name the host.
    #[error(
        "the server's certificate is not valid for the host name `{host}` (sslmode=verify-full \
         checks the name; connect with a name the certificate holds): {cause}"
    )]
    WrongHost {
        /// The host connected to.
        host: String,
        /// What rustls said.
        cause: rustls::Error,
    },
    /// The certificate does not chain to a trusted CA.
    #[error("the server's certificate is not signed by a CA in {roots} (sslmode={mode}): {cause}")]
    UnknownCa {
        /// Where the trusted CAs came from.
        roots: String,
        /// The mode that checked.
        mode: SslMode,
        /// What rustls said.
        cause: rustls::Error,
    },
    /// The certificate was refused for another reason (expired, not yet valid, ...).
    #[error("the server's certificate was refused (sslmode={mode}, CAs from {roots}): {cause}")]
    BadCertificate {
        /// Where the trusted CAs came from.
        roots: String,
        /// The mode that checked.
        mode: SslMode,
        /// What rustls said.
        cause: rustls::Error,
    },
    /// The handshake failed otherwise.
    #[error("the TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The host is not something a certificate can name.
    #[error("`{0}` is not a host name or address a TLS certificate can be checked against")]
    HostName(String),
}

/// The TLS side of a store's connections: one rustls configuration, built (and its root file
/// read) when the store connects.
#[derive(Clone)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    mode: SslMode,
    roots: Arc<str>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).field("roots", &self.roots).finish()
    }
}

impl Tls {
    /// The settings for `mode`, trusting the CAs in `root_cert` (a PEM file) or, for the verify
    /// modes without one, the platform's.
    pub(crate) fn new(mode: SslMode, root_cert: Option<&Path>) -> Result<Tls, StoreError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let check_chain = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || (mode == SslMode::Require && root_cert.is_some());
        let (roots, described) = match (check_chain, root_cert) {
            (false, _) => (None, "nowhere (nothing is checked)".to_owned()),
            (true, Some(path)) => {
                (Some(roots_from_file(path)?), format!("sslrootcert {}", path.display()))
            }
            (true, None) => (Some(platform_roots()?), "the platform's CA store".to_owned()),
        };
        let verifier = Verifier {
            roots: roots.map(Arc::new),
            check_name: mode == SslMode::VerifyFull,
            provider: provider.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Invalid(format!("TLS settings: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // PostgreSQL 17 asks for it with direct TLS negotiation; earlier servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Tls { config: Arc::new(config), mode, roots: described.into() })
    }
}

/// The CA certificates of a PEM file.
fn roots_from_file(path: &Path) -> Result<RootCertStore, StoreError> {
    let unreadable =
        |detail: String| StoreError::Invalid(format!("sslrootcert {}: {detail}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(format!("cannot be read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(format!("not a PEM certificate file: {e}")))?;
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(unreadable("holds no usable CA certificate".into()));
    }
    Ok(roots)
}

/// The platform's CA certificates.
fn platform_roots() -> Result<RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(StoreError::Invalid(format!(
            "no CA certificates found in the platform's store ({}): name a PEM file with \
             sslrootcert",
            if errors.is_empty() { "none there".into() } else { errors.join("; ") }
        )));
    }
    Ok(roots)
}

/// Checks what the mode asks for: the chain (when `roots` is set) and the name (`check_name`).
/// The handshake's signatures are always checked (the server holds the certificate's key).
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for Tls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connector;
    type Error = TlsFailure;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connector, TlsFailure> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsFailure::HostName(host.to_owned()))?;
        Ok(Connector { tls: self.clone(), name })
    }
}

/// One connection's handshake.
pub(crate) struct Connector {
    tls: Tls,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = TlsFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Stream<S>, TlsFailure>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let Connector { tls, name } = self;
            let host = name.to_str().into_owned();
            tokio_rustls::TlsConnector::from(tls.config.clone())
                .connect(name, stream)
                .await
                .map(Stream)
                .map_err(|e| failure(e, &tls, host))
        })
    }
}

/// What a failed handshake means, from rustls's error inside the I/O error.
fn failure(e: io::Error, tls: &Tls, host: String) -> TlsFailure {
    let Some(rustls::Error::InvalidCertificate(certificate)) =
        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return TlsFailure::Handshake(e);
    };
    let cause = rustls::Error::InvalidCertificate(certificate.clone());
    let (roots, mode) = (tls.roots.to_string(), tls.mode);
    match certificate {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TlsFailure::WrongHost { host, cause }
        }
        CertificateError::UnknownIssuer
        | CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
            TlsFailure::UnknownCa { roots, mode, cause }
        }
        _ => TlsFailure::BadCertificate { roots, mode, cause },
    }
}

/// A TLS connection to the server.
pub(crate) struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, connection) = self.0.get_ref();
        match connection.peer_certificates().and_then(|certs| certs.first()) {
            Some(cert) => match tls_server_end_point(cert) {
                Some(hash) => ChannelBinding::tls_server_end_point(hash),
                None => ChannelBinding::none(),
            },
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929's `tls-server-end-point`: the certificate hashed with its signature's hash (SHA-256
/// for MD5 and SHA-1), as PostgreSQL computes it. `None` for a signature whose hash this does
/// not know (the connection then goes without channel binding).
pub(crate) fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let oid = signature_algorithm(cert)?;
    // Under 1.2.840.113549.1.1 (RSA) and 1.2.840.10045.4 (ECDSA).
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
    let hash = match oid {
        o if o.starts_with(RSA) && o.len() == RSA.len() + 1 => match o[RSA.len()] {
            4 | 5 | 11 => Hash::Sha256,
            12 => Hash::Sha384,
            13 => Hash::Sha512,
            _ => return None,
        },
        o if o.starts_with(ECDSA) => match &o[ECDSA.len()..] {
            [0x01] | [0x03, 0x02] => Hash::Sha256,
            [0x03, 0x03] => Hash::Sha384,
            [0x03, 0x04] => Hash::Sha512,
            _ => return None,
        },
        _ => return None,
    };
    Some(match hash {
        Hash::Sha256 => sha2::Sha256::digest(cert).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(cert).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(cert).to_vec(),
    })
}

enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// The OID of a DER certificate's `signatureAlgorithm` (the second element of the outer
/// SEQUENCE).
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (tag, certificate, _) = der(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _tbs, rest) = der(certificate)?;
    let (tag, algorithm, _) = der(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der(algorithm)?;
    (tag == 0x06).then_some(oid)
}

/// One DER element: its tag, its contents and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}
