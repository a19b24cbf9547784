//! Forwarding a request that arrived elsewhere (a proxy's client) to Bedrock as it came: the
//! body's bytes and the headers the operation reads go on unchanged, the credentials are this
//! transport's own, signed afresh; the answer comes back as its status, headers and body
//! chunks as they arrive, uninterpreted. No retries: the client that sent the request retries
//! as it would against Bedrock.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::response::without_canonical_request;
use crate::{Api, HttpTransport, TransportError};

/// One request to pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The surface, which says the host (and signing name) it goes to.
    pub api: Api,
    /// The path as it arrived, percent-encoded (`/model/us.anthropic...%3A0/converse`), with
    /// its query when it had one.
    pub path: String,
    /// The headers to pass on (`content-type`, `accept`, `anthropic-version`, ...). Never the
    /// client's credentials: the transport writes its own.
    pub headers: Vec<(String, String)>,
    /// The body, sent as is.
    pub body: Bytes,
}

/// The answer, its body still arriving. Dropping it cancels the request.
#[derive(Debug)]
pub struct Forwarded {
    /// The HTTP status.
    pub status: u16,
    /// The response's headers, in order (names lower-case).
    pub headers: Vec<(String, String)>,
    response: reqwest::Response,
}

impl Forwarded {
    /// The next piece of the body as it arrived; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        self.response.chunk().await.map_err(TransportError::connection)
    }

    /// The whole body of a failed answer, at most `limit` bytes (more is cut), with an echoed
    /// canonical request (which holds the session token a signature used) left out.
    pub async fn error_body(mut self, limit: usize) -> Bytes {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = self.chunk().await {
            let room = limit.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= limit {
                break;
            }
        }
        without_secrets(&body)
    }
}

/// Headers the transport writes itself, never passed on from the request forwarded.
const OWN: &[&str] = &[
    "authorization",
    "x-api-key",
    "host",
    "content-length",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// `body` with a signature mismatch's echoed canonical request left out of its message.
fn without_secrets(body: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(body);
    if !["Canonical String", "x-amz-security-token", "X-Amz-Security-Token"]
        .iter()
        .any(|marker| text.contains(marker))
    {
        return Bytes::copy_from_slice(body);
    }
    let message = without_canonical_request(text.into_owned());
    Bytes::from(serde_json::json!({ "message": message }).to_string())
}

impl HttpTransport {
    /// Sends `forward` once to the host its surface goes to, signed with this transport's
    /// credentials, and returns the answer whatever its status, once its headers are in.
    pub async fn forward(&self, forward: &Forward) -> Result<Forwarded, TransportError> {
        let (base, service) = self.target(forward.api);
        let url = format!("{base}{}", forward.path);
        let mut headers = HeaderMap::new();
        for (name, value) in &forward.headers {
            if OWN.iter().any(|own| name.eq_ignore_ascii_case(own)) {
                continue;
            }
            let bad = || TransportError::Request {
                message: format!("header {name:?}: not a valid header name and value"),
            };
            let name = HeaderName::try_from(name.as_str()).map_err(|_| bad())?;
            headers.append(name, HeaderValue::try_from(value.as_str()).map_err(|_| bad())?);
        }
        self.authorize(&url, service, &mut headers, &forward.body).await?;
        let send = self.inner.client.post(&url).headers(headers).body(forward.body.clone()).send();
        let timeout = self.inner.config.timeouts.first_event;
        let response = tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| TransportError::Timeout { waiting_for: "the response" })?
            .map_err(TransportError::connection)?;
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        Ok(Forwarded { status: response.status().as_u16(), headers, response })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_canonical_request_is_left_out_and_other_bodies_pass_unchanged() {
        let body = br#"{"message":"The request signature we calculated does not match. The Canonical String for this request should have been 'POST\n/model\nx-amz-security-token:SECRETTOKEN\n'"}"#;
        let cleaned = without_secrets(body);
        let text = std::str::from_utf8(&cleaned).unwrap();
        assert!(!text.contains("SECRETTOKEN"), "{text}");
        assert!(text.contains("does not match"), "{text}");
        let plain = br#"{"message":"Too many tokens"}"#;
        assert_eq!(&without_secrets(plain)[..], &plain[..]);
    }
}
