//! Who may call the proxy: its own API keys (`Authorization: Bearer` or `x-api-key`) and
//! SigV4 with credentials it issued.
//!
//! A SigV4 request is checked by signing it again: the headers the client says it signed, with
//! their values as they arrived, the path as it arrived and the body, through the transport's
//! signer (aws-sigv4) with the issued secret, dated by the request's `x-amz-date`; the two
//! signatures must be equal, and the date within 15 minutes of the proxy's clock, as AWS
//! requires.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use axum::http::HeaderMap;
use verbatim_transport::{Secret, SigningScope, sign_sigv4_scoped};

use crate::reply::Refusal;

/// A SigV4 credential the proxy issues to its clients.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCredentials {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: Secret,
}

impl fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .finish()
    }
}

/// The keys and credentials the proxy accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAuth {
    /// API keys, as a bearer token or `x-api-key`.
    pub api_keys: Vec<Secret>,
    /// SigV4 credentials.
    pub credentials: Vec<IssuedCredentials>,
}

/// How far a request's date may be from the proxy's clock (AWS's own bound).
const SKEW: Duration = Duration::from_secs(15 * 60);

impl ClientAuth {
    /// True when nothing would be accepted.
    pub fn is_empty(&self) -> bool {
        self.api_keys.is_empty() && self.credentials.is_empty()
    }

    /// Accepts the request or says why not, in the words of the AWS gateway.
    pub(crate) fn check(
        &self,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (authorization, api_key) = (header("authorization"), header("x-api-key"));
        if let Some(key) = api_key {
            if authorization.is_some() {
                return Err(Refusal::invalid_request(
                    "Send the API key as Authorization or x-api-key, not both.",
                ));
            }
            return self.key(key);
        }
        let Some(authorization) = authorization else {
            return Err(Refusal::forbidden(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ));
        };
        if let Some(key) = authorization.strip_prefix("Bearer ") {
            return self.key(key);
        }
        self.sigv4(authorization, path_and_query, headers, body, now)
    }

    fn key(&self, key: &str) -> Result<(), Refusal> {
        if self.api_keys.iter().any(|known| constant_time_eq(known.expose(), key)) {
            return Ok(());
        }
        Err(Refusal::forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ))
    }

    fn sigv4(
        &self,
        authorization: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let malformed = || {
            Refusal::forbidden(
                "IncompleteSignatureException",
                "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
            )
        };
        let mismatch = || {
            Refusal::forbidden(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            )
        };
        let parsed = parse(authorization).ok_or_else(malformed)?;
        let Some(issued) =
            self.credentials.iter().find(|c| c.access_key_id == parsed.access_key_id)
        else {
            return Err(Refusal::forbidden(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        };
        let date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(mismatch)?;
        let time = amz_date(date).ok_or_else(mismatch)?;
        let skew =
            now.duration_since(time).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
        if skew > SKEW {
            return Err(Refusal::forbidden(
                "InvalidSignatureException",
                "Signature expired: the request's X-Amz-Date is more than 15 minutes from the server's time.",
            ));
        }
        let mut signed = Vec::new();
        for name in &parsed.signed_headers {
            let values: Vec<&str> =
                headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect();
            if values.is_empty() {
                return Err(mismatch());
            }
            signed.push((name.as_str(), values.join(",")));
        }
        let host = signed
            .iter()
            .find(|(n, _)| *n == "host")
            .map(|(_, v)| v.clone())
            .ok_or_else(mismatch)?;
        let url = format!("http://{host}{path_and_query}");
        let to_sign: Vec<(&str, &str)> = signed.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let credentials = Credentials::new(
            &issued.access_key_id,
            issued.secret_access_key.expose(),
            None,
            None,
            "verbatim-proxy",
        );
        let scope = SigningScope { service: &parsed.service, region: &parsed.region, time };
        let ours = sign_sigv4_scoped("POST", &url, &to_sign, body, &credentials, &scope)
            .map_err(|_| mismatch())?;
        let ours = ours
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, value)| parse(value))
            .ok_or_else(mismatch)?;
        let same = constant_time_eq(&ours.signature, &parsed.signature)
            && ours.signed_headers == parsed.signed_headers
            && ours.date == parsed.date;
        if same { Ok(()) } else { Err(mismatch()) }
    }
}

/// The parts of `AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
#[derive(Debug, PartialEq, Eq)]
struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse(header: &str) -> Option<Authorization> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else { return None };
    Some(Authorization {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: signature?.to_owned(),
    })
}

/// `20261122T123456Z` as a time.
fn amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Equality that takes the same time wherever the strings differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth() -> ClientAuth {
        ClientAuth {
            api_keys: vec![Secret::new("key-1")],
            credentials: vec![IssuedCredentials {
                access_key_id: "AKIDEXAMPLE".to_owned(),
                secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            }],
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// botocore's signature for a Converse call (crates/transport/test_data/sigv4, first
    /// case), which the emulator's verifier takes too.
    #[test]
    fn a_botocore_signature_verifies_and_any_change_breaks_it() {
        let authorization = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=b30ed4ef227cf15df34d22b039b6ce0aba4406a64b1d9e9dfe3ac30fabcf8984";
        let signed = headers(&[
            ("authorization", authorization),
            ("content-type", "application/json"),
            ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
            ("x-amz-date", "20261122T123456Z"),
            ("user-agent", "not signed, not checked"),
        ]);
        let body = br#"{"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}"#;
        let path = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
        let now = amz_date("20261122T123956Z").unwrap();
        assert_eq!(auth().check(path, &signed, body, now), Ok(()));
        let refused = |headers: &HeaderMap, path: &str, body: &[u8], now| {
            auth().check(path, headers, body, now).unwrap_err().exception
        };
        assert_eq!(refused(&signed, path, b"{}", now), "InvalidSignatureException");
        let decoded = "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/converse";
        assert_eq!(refused(&signed, decoded, body, now), "InvalidSignatureException");
        let late = now + Duration::from_secs(20 * 60);
        assert_eq!(refused(&signed, path, body, late), "InvalidSignatureException");
        let other = authorization.replace("AKIDEXAMPLE", "AKIDOTHER");
        let unknown = headers(&[("authorization", &other)]);
        assert_eq!(refused(&unknown, path, body, now), "UnrecognizedClientException");
        let malformed = headers(&[("authorization", "AWS4-HMAC-SHA256 Signature=abc")]);
        assert_eq!(refused(&malformed, path, body, now), "IncompleteSignatureException");
    }

    #[test]
    fn api_keys_go_as_bearer_or_x_api_key_but_not_both() {
        let now = SystemTime::now();
        let check = |pairs: &[(&'static str, &str)]| auth().check("/p", &headers(pairs), b"", now);
        assert_eq!(check(&[("authorization", "Bearer key-1")]), Ok(()));
        assert_eq!(check(&[("x-api-key", "key-1")]), Ok(()));
        assert_eq!(check(&[("x-api-key", "key-2")]).unwrap_err().status, 403);
        assert_eq!(
            check(&[("authorization", "Bearer key-1"), ("x-api-key", "key-1")]).unwrap_err().status,
            400
        );
        assert_eq!(check(&[]).unwrap_err().exception, "MissingAuthenticationTokenException");
    }

    #[test]
    fn amz_dates_read_as_utc() {
        assert_eq!(amz_date("19700101T000001Z"), Some(UNIX_EPOCH + Duration::from_secs(1)));
        assert_eq!(
            amz_date("20000301T000000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert_eq!(amz_date("20001301T000000Z"), None);
        assert_eq!(amz_date("2000-03-01"), None);
    }
}
