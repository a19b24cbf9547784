//! Authentication: a Bedrock API key (bearer) or SigV4 with AWS credentials.
//!
//! SigV4 signs for service `bedrock` in the endpoint's region (`bedrock-mantle` for the
//! Messages API on the mantle host, see [`MessagesHost`](crate::MessagesHost)). The path is already
//! percent-encoded (the model id is one segment, `:` as `%3A`, `/` as `%2F`), and the canonical
//! request encodes it again (`%253A`), as botocore does and Bedrock checks. Signing is pure:
//! it takes the time as a parameter.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::{Secret, TransportError};

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// A Bedrock API key, sent as `Authorization: Bearer <key>`.
    ApiKey(Secret),
    /// SigV4 with credentials from a provider (static keys, or the AWS chain).
    SigV4(SharedCredentialsProvider),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::ApiKey(_) => f.write_str("ApiKey([redacted])"),
            Auth::SigV4(_) => f.write_str("SigV4(..)"),
        }
    }
}

impl Auth {
    /// Authenticates with a Bedrock API key.
    pub fn api_key(key: impl Into<Secret>) -> Auth {
        Auth::ApiKey(key.into())
    }

    /// Signs with fixed credentials (a session token for temporary ones).
    pub fn credentials(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
        session_token: Option<Secret>,
    ) -> Auth {
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key.into().expose(),
            session_token.map(|token| token.expose().to_owned()),
            None,
            "verbatim",
        );
        Auth::SigV4(SharedCredentialsProvider::new(credentials))
    }

    /// Signs with credentials from a provider, asked before each attempt (providers cache).
    pub fn provider(provider: impl ProvideCredentials + 'static) -> Auth {
        Auth::SigV4(SharedCredentialsProvider::new(provider))
    }
}

/// The headers SigV4 adds to a request (`authorization`, `x-amz-date` and, with temporary
/// credentials, `x-amz-security-token`), for service `bedrock`. `url` is the full URL with its
/// path already percent-encoded; `headers` are the other headers to sign (the host is taken
/// from the URL).
pub fn sign_sigv4(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, TransportError> {
    let scope = SigningScope { service: "bedrock", region, time };
    sign_sigv4_scoped(method, url, headers, body, credentials, &scope)
}

/// What a signature is for: the signing name of the service, the region and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningScope<'a> {
    /// The signing name: `bedrock` (Bedrock Runtime) or `bedrock-mantle`.
    pub service: &'a str,
    /// The region (`us-east-1`).
    pub region: &'a str,
    /// When the request is signed.
    pub time: SystemTime,
}

/// As [`sign_sigv4`], for the service, region and time `scope` names.
pub fn sign_sigv4_scoped(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    scope: &SigningScope<'_>,
) -> Result<Vec<(String, String)>, TransportError> {
    let failed = |what: &str, error: &dyn std::error::Error| TransportError::Request {
        message: format!("{what}: {error}"),
    };
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed("signing parameters", &e))?
        .into();
    let request =
        SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
            .map_err(|e| failed("request to sign", &e))?;
    // aws-sigv4 traces the canonical request, which holds the session token: it signs with
    // no subscriber listening, so no log level lets a secret out.
    let silent = tracing::Dispatch::none();
    let signed = tracing::dispatcher::with_default(&silent, || sign(request, &params));
    let (instructions, _signature) = signed.map_err(|e| failed("signing", &e))?.into_parts();
    Ok(instructions.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect())
}
