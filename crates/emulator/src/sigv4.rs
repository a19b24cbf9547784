//! Checking a SigV4 `Authorization` header the way the service does: rebuild the canonical
//! request from what arrived (the headers the client says it signed, the path encoded once
//! more, the body's SHA-256), derive the key from the secret, compare signatures.
//!
//! Written from the SigV4 specification, independently of any client's signer, so a client
//! that signs the singly-encoded path or leaves a header out is caught.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub(crate) access_key_id: String,
    pub(crate) date: String,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
}

/// Why a SigV4 header is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The header lacks `Credential=`, `SignedHeaders=` or `Signature=`, or is malformed.
    Malformed,
    /// The access key is not the emulator's.
    UnknownKey,
    /// The signature does not match.
    Mismatch,
}

pub(crate) fn parse(header: &str) -> Result<Authorization, Refusal> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ").ok_or(Refusal::Malformed)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(Refusal::Malformed)?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return Err(Refusal::Malformed),
        }
    }
    let (credential, signed, signature) = match (credential, signed, signature) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err(Refusal::Malformed),
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return Err(Refusal::Malformed);
    };
    Ok(Authorization {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature: signature.to_owned(),
    })
}

/// What arrived, as the verifier needs it.
pub(crate) struct Received<'a> {
    pub(crate) method: &'a str,
    /// The path as it arrived (percent-encoded once by the client).
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    /// Header names lower-cased.
    pub(crate) headers: &'a [(String, String)],
    pub(crate) body: &'a [u8],
}

/// Checks the signature of `received` against `secret` for the emulator's access key.
pub(crate) fn verify(
    auth: &Authorization,
    received: &Received<'_>,
    access_key_id: &str,
    secret: &str,
) -> Result<(), Refusal> {
    if auth.access_key_id != access_key_id {
        return Err(Refusal::UnknownKey);
    }
    let header = |name: &str| {
        received
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let amz_date = header("x-amz-date").first().copied().ok_or(Refusal::Mismatch)?.to_owned();
    let mut canonical = String::new();
    canonical.push_str(received.method);
    canonical.push('\n');
    canonical.push_str(&canonical_uri(received.path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(received.query));
    canonical.push('\n');
    for name in &auth.signed_headers {
        let values = header(name);
        if values.is_empty() {
            return Err(Refusal::Mismatch);
        }
        let joined: Vec<String> = values.iter().map(|v| collapse(v)).collect();
        canonical.push_str(&format!("{name}:{}\n", joined.join(",")));
    }
    canonical.push('\n');
    canonical.push_str(&auth.signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&hex::encode(Sha256::digest(received.body)));
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region.as_str(), auth.service.as_str(), "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex::encode(hmac(&key, to_sign.as_bytes()));
    if expected == auth.signature { Ok(()) } else { Err(Refusal::Mismatch) }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Each segment of the already-encoded path encoded again (non-S3 services).
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (uri_encode(k), uri_encode(v))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// botocore's signature for a Converse call (crates/transport/test_data/sigv4, first case).
    #[test]
    fn a_botocore_signature_verifies_and_any_change_breaks_it() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=b30ed4ef227cf15df34d22b039b6ce0aba4406a64b1d9e9dfe3ac30fabcf8984";
        let auth = parse(header).unwrap();
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), "bedrock-runtime.us-east-1.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), "20261122T123456Z".to_owned()),
        ];
        let body = br#"{"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}"#;
        let path = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
        let received = Received { method: "POST", path, query: "", headers: &headers, body };
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(verify(&auth, &received, "AKIDEXAMPLE", secret), Ok(()));
        assert_eq!(verify(&auth, &received, "AKIDOTHER", secret), Err(Refusal::UnknownKey));
        assert_eq!(verify(&auth, &received, "AKIDEXAMPLE", "wrong"), Err(Refusal::Mismatch));
        let decoded = "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/converse";
        let changed = Received { path: decoded, ..received };
        assert_eq!(verify(&auth, &changed, "AKIDEXAMPLE", secret), Err(Refusal::Mismatch));
        let changed = Received { body: b"{}", ..received };
        assert_eq!(verify(&auth, &changed, "AKIDEXAMPLE", secret), Err(Refusal::Mismatch));
        assert_eq!(parse("AWS4-HMAC-SHA256 Signature=abc"), Err(Refusal::Malformed));
        assert_eq!(parse("Bearer x"), Err(Refusal::Malformed));
    }
}
