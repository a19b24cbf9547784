//! Configuration from the environment, the way the AWS SDKs read it.

use aws_config::BehaviorVersion;

use crate::{Auth, HttpConfig, TransportError};

/// The variable holding a Bedrock API key (`AWS_BEARER_TOKEN_` + the signing name).
pub const API_KEY_VARIABLE: &str = "AWS_BEARER_TOKEN_BEDROCK";

impl HttpConfig {
    /// Region, endpoint and credentials from the standard AWS chain: environment, shared
    /// config and credentials files (profiles, SSO, credential processes), web identity,
    /// container and instance roles. An API key in `AWS_BEARER_TOKEN_BEDROCK` is preferred over
    /// AWS credentials, as botocore does. `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` or
    /// `AWS_ENDPOINT_URL` names another endpoint.
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
        let endpoint = std::env::var("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
            .ok()
            .filter(|url| !url.is_empty())
            .or_else(|| loaded.endpoint_url().map(str::to_owned));
        let config = HttpConfig::new(region, auth);
        Ok(match endpoint {
            Some(url) => config.with_endpoint_url(url),
            None => config,
        })
    }
}
