//! Configuration from the environment, the way the AWS SDKs read it.

use aws_config::BehaviorVersion;

use crate::{Auth, HttpConfig, TransportError};

/// The variable holding a Bedrock API key (`AWS_BEARER_TOKEN_` + the signing name).
pub const API_KEY_VARIABLE: &str = "AWS_BEARER_TOKEN_BEDROCK";

/// The variable naming the runtime host's endpoint (`AWS_ENDPOINT_URL_` + the service id).
pub const RUNTIME_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME";

/// The variable naming the mantle host's endpoint, by the same rule (mantle has no AWS SDK
/// service of its own; this is the name the rule gives `bedrock-mantle`).
pub const MANTLE_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_BEDROCK_MANTLE";

impl HttpConfig {
    /// Region, endpoint and credentials from the standard AWS chain: environment, shared
    /// config and credentials files (profiles, SSO, credential processes), web identity,
    /// container and instance roles. An API key in `AWS_BEARER_TOKEN_BEDROCK` is preferred over
    /// AWS credentials, as botocore does. The endpoints are read as the SDKs read
    /// service-specific ones: `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` for the runtime host,
    /// `AWS_ENDPOINT_URL_BEDROCK_MANTLE` for the mantle host (the Messages API there), and
    /// `AWS_ENDPOINT_URL` (or a profile's `endpoint_url`) for either when its own is unset.
    /// Which host serves the Messages API is not read from the environment: it stays
    /// [`MessagesHost::Runtime`](crate::MessagesHost::Runtime) unless the caller chooses.
    pub async fn from_env() -> Result<HttpConfig, TransportError> {
        let loaded = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let region =
            loaded.region().map(|r| r.to_string()).ok_or_else(|| TransportError::Config {
                message: "no AWS region configured (set AWS_REGION or a profile's region)"
                    .to_owned(),
            })?;
        let auth = match std::env::var(API_KEY_VARIABLE) {
            Ok(key) if !key.is_empty() => Auth::api_key(key),
            _ => Auth::SigV4(loaded.credentials_provider().ok_or_else(|| {
                TransportError::Credentials {
                    message: "no AWS credentials provider could be configured".to_owned(),
                }
            })?),
        };
        let endpoint = |variable: &str| {
            std::env::var(variable)
                .ok()
                .filter(|url| !url.is_empty())
                .or_else(|| loaded.endpoint_url().map(str::to_owned))
        };
        let mut config = HttpConfig::new(region, auth);
        config.endpoint_url = endpoint(RUNTIME_ENDPOINT_VARIABLE);
        config.mantle_endpoint_url = endpoint(MANTLE_ENDPOINT_VARIABLE);
        Ok(config)
    }
}
