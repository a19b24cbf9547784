//! Amazon RDS IAM authentication: the password of each new connection is a token, a SigV4
//! presigned URL for the action `connect` of service `rds-db`
//! (`HOST:PORT/?Action=connect&DBUser=USER&X-Amz-...`, the `https://` left off), valid 15
//! minutes, signed with credentials the caller provides (a [`ProvideCredentials`]; the CLI
//! gives the standard AWS chain). The database user needs the `rds_iam` role, and the signing
//! identity the IAM permission `rds-db:connect` on
//! `arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI_RESOURCE_ID/USER`.
//!
//! A token is made when the store needs a connection and the one it has is older than
//! [`REFRESH_AFTER`], well inside its 15 minutes: connections the pool opens always present a
//! live token (a token is checked at login only; open connections stay open).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::StoreError;

/// How long a token is valid (RDS's limit).
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// Age at which a new token is made for new connections.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_secs(600);

/// The RDS IAM token for `user` at `host:port` in `region`, signed at `now` (pure: no clock, no
/// network).
pub fn rds_auth_token(
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<String, StoreError> {
    let failed = |what: &str, error: &dyn std::error::Error| {
        StoreError::Invalid(format!("RDS IAM token for {user}@{host}:{port}: {what}: {error}"))
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| failed("signing parameters", &e))?
        .into();
    let url = format!("https://{host}:{port}/?Action=connect&DBUser={}", encode(user));
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::empty())
        .map_err(|e| failed("request to sign", &e))?;
    // aws-sigv4 traces the canonical request, which holds the session token: it signs with no
    // subscriber listening, so no log level lets a secret out.
    let silent = tracing::Dispatch::none();
    let signed = tracing::dispatcher::with_default(&silent, || sign(request, &params));
    let (instructions, _signature) = signed.map_err(|e| failed("signing", &e))?.into_parts();
    let mut token = url["https://".len()..].to_owned();
    for (name, value) in instructions.params() {
        token.push('&');
        token.push_str(&encode(name));
        token.push('=');
        token.push_str(&encode(value));
    }
    Ok(token)
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The region of an RDS endpoint (`NAME.ID.REGION.rds.amazonaws.com`, or `.com.cn`).
pub(crate) fn region_of_host(host: &str) -> Option<&str> {
    let host =
        host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let host = host.strip_suffix(".rds")?;
    host.rsplit('.').next().filter(|region| !region.is_empty())
}

/// A store's IAM authentication: who and where to sign for, and the token new connections use.
pub(crate) struct Iam {
    credentials: SharedCredentialsProvider,
    host: String,
    port: u16,
    user: String,
    region: String,
    /// The token and when it was made.
    current: Mutex<Option<(Arc<str>, SystemTime)>>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Iam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iam")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Iam {
    pub(crate) fn new(
        credentials: SharedCredentialsProvider,
        host: String,
        port: u16,
        user: String,
        region: String,
    ) -> Iam {
        Iam {
            credentials,
            host,
            port,
            user,
            region,
            current: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The token new connections present now, if one was made.
    pub(crate) fn token(&self) -> Option<Arc<str>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(t, _)| t.clone())
    }

    fn fresh(&self, now: SystemTime) -> bool {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .is_some_and(|(_, made)| now.duration_since(*made).is_ok_and(|age| age < REFRESH_AFTER))
    }

    /// Makes a new token when the current one is older than [`REFRESH_AFTER`] (or there is
    /// none), with credentials asked for now (a provider caches and renews its own).
    pub(crate) async fn refresh(&self) -> Result<(), StoreError> {
        if self.fresh(SystemTime::now()) {
            return Ok(());
        }
        let _one = self.refreshing.lock().await;
        if self.fresh(SystemTime::now()) {
            return Ok(());
        }
        let credentials = self.credentials.provide_credentials().await.map_err(|e| {
            StoreError::backend_with(
                format!(
                    "postgres: no AWS credentials for the RDS IAM token of {}@{}:{}: {e}",
                    self.user, self.host, self.port
                ),
                e,
            )
        })?;
        let now = SystemTime::now();
        let token =
            rds_auth_token(&self.host, self.port, &self.user, &self.region, &credentials, now)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.into(), now));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    /// Query parameters of a token, sorted (their order is not part of the format).
    fn parts(token: &str) -> (String, Vec<String>) {
        let (base, query) = token.split_once('?').unwrap();
        let mut params: Vec<String> = query.split('&').map(str::to_owned).collect();
        params.sort();
        (base.to_owned(), params)
    }

    /// botocore's published case (its `TestGenerateDBAuthToken`): keys `akid` / `skid`,
    /// 2016-11-07T17:39:33Z, us-east-1, kept in `test_data/rds-iam-token.txt`.
    #[test]
    fn the_token_is_the_documented_presigned_url() {
        let expected = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/rds-iam-token.txt"
        ))
        .unwrap();
        let credentials = Credentials::new("akid", "skid", None, None, "test");
        let at = UNIX_EPOCH + Duration::from_secs(1_478_540_373);
        let token = rds_auth_token(
            "prod-instance.us-east-1.rds.amazonaws.com",
            3306,
            "someusername",
            "us-east-1",
            &credentials,
            at,
        )
        .unwrap();
        assert_eq!(parts(&token), parts(expected.trim()));
        assert!(token.starts_with(
            "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect&DBUser=someusername&"
        ));
    }

    #[test]
    fn a_session_token_is_signed_and_carried_encoded() {
        let credentials = Credentials::new("akid", "skid", Some("tok/en+=".into()), None, "test");
        let at = UNIX_EPOCH + Duration::from_secs(1_478_540_373);
        let token =
            rds_auth_token("db.example", 5432, "app user", "eu-west-1", &credentials, at).unwrap();
        let (base, params) = parts(&token);
        assert_eq!(base, "db.example:5432/");
        assert!(params.contains(&"DBUser=app%20user".to_owned()), "{params:?}");
        assert!(params.contains(&"X-Amz-Security-Token=tok%2Fen%2B%3D".to_owned()), "{params:?}");
        assert!(
            params.contains(
                &"X-Amz-Credential=akid%2F20161107%2Feu-west-1%2Frds-db%2Faws4_request".to_owned()
            ),
            "{params:?}"
        );
        assert!(params.contains(&"X-Amz-Expires=900".to_owned()), "{params:?}");
        // Another second, another signature.
        let later = rds_auth_token(
            "db.example",
            5432,
            "app user",
            "eu-west-1",
            &credentials,
            at + Duration::from_secs(1),
        )
        .unwrap();
        assert_ne!(token, later);
    }

    #[test]
    fn the_region_is_read_from_an_rds_endpoint() {
        assert_eq!(region_of_host("db.abc123.eu-west-1.rds.amazonaws.com"), Some("eu-west-1"));
        assert_eq!(
            region_of_host("c.cluster-ro-abc.cn-north-1.rds.amazonaws.com.cn"),
            Some("cn-north-1")
        );
        assert_eq!(region_of_host("db.internal"), None);
    }
}
