//! CountTokens: the request bodies of Bedrock's two token-count routes, built from the body a
//! call would send, and the count they answer.
//!
//! - `POST /model/{id}/count-tokens` on bedrock-runtime (rules file R6.1) takes a union:
//!   `{"input":{"converse":{...}}}` with a Converse body's `messages`, `system`, `toolConfig`
//!   and `additionalModelRequestFields` (the members the operation's input has; the others,
//!   such as `inferenceConfig`, are left out), or `{"input":{"invokeModel":{"body":"..."}}}`
//!   with an InvokeModel body as base64 (a blob in JSON). It answers `{"inputTokens":N}`.
//! - `POST /anthropic/v1/messages/count_tokens` on bedrock-mantle takes the Messages API body
//!   as sent (with `model`, without `stream`) and answers `{"input_tokens":N}`.
//!
//! The members of the call's body are moved as their bytes: nothing in them is re-encoded.

use base64::Engine as _;
use serde_json::value::RawValue;

use crate::{DecodeError, DecodeErrorKind, JsonPath};

/// The members of a Converse body that `count-tokens` takes, in the order written.
const CONVERSE_MEMBERS: &[&str] =
    &["messages", "system", "toolConfig", "additionalModelRequestFields"];

/// The `count-tokens` body for a Converse request body: its members the operation takes,
/// each as its bytes, under `input.converse`.
pub fn converse_request(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let members = raw_members(body)?;
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(b"{\"input\":{\"converse\":{");
    let mut first = true;
    for name in CONVERSE_MEMBERS {
        if let Some((_, raw)) = members.iter().find(|(key, _)| key == name) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(serde_json::to_string(name).expect("a string").as_bytes());
            out.push(b':');
            out.extend_from_slice(raw.get().as_bytes());
        }
    }
    out.extend_from_slice(b"}}}");
    Ok(out)
}

/// The `count-tokens` body for an InvokeModel request body: the body as base64 under
/// `input.invokeModel.body`.
pub fn invoke_request(body: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    format!("{{\"input\":{{\"invokeModel\":{{\"body\":\"{encoded}\"}}}}}}").into_bytes()
}

/// The count a token-count route answered: `inputTokens` (bedrock-runtime) or
/// `input_tokens` (the Messages API).
pub fn read_count(answer: &[u8]) -> Result<u64, DecodeError> {
    let value: serde_json::Value =
        serde_json::from_slice(answer).map_err(|e| DecodeError::syntax(answer, &e))?;
    for key in ["inputTokens", "input_tokens"] {
        if let Some(count) = value.get(key) {
            return count.as_u64().ok_or_else(|| {
                DecodeError::new(
                    JsonPath::root().key(key),
                    DecodeErrorKind::InvalidValue {
                        message: format!("expected a token count, found {count}"),
                    },
                )
            });
        }
    }
    Err(DecodeError::new(
        JsonPath::root(),
        DecodeErrorKind::InvalidValue {
            message: "no `inputTokens` or `input_tokens` in the answer".into(),
        },
    ))
}

/// The top-level members of a JSON object, each as its bytes.
fn raw_members(body: &[u8]) -> Result<Vec<(String, &RawValue)>, DecodeError> {
    struct Members<'a>(Vec<(String, &'a RawValue)>);
    impl<'de> serde::Deserialize<'de> for Members<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Members<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Members<'de>, A::Error> {
                    let mut members = Vec::new();
                    while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                        members.push((key, value));
                    }
                    Ok(Members(members))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    serde_json::from_slice::<Members<'_>>(body)
        .map(|m| m.0)
        .map_err(|e| DecodeError::syntax(body, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_converse_body_keeps_the_members_count_tokens_takes_as_their_bytes() {
        let body = br#"{"inferenceConfig":{"maxTokens":10},"system":[{"text":"S \u00e9"}],
            "messages":[{"role":"user","content":[{"text":"1.50"}]}],"toolConfig":{"tools":[]}}"#;
        let request = converse_request(body).unwrap();
        let text = String::from_utf8(request).unwrap();
        assert_eq!(
            text,
            r#"{"input":{"converse":{"messages":[{"role":"user","content":[{"text":"1.50"}]}],"system":[{"text":"S \u00e9"}],"toolConfig":{"tools":[]}}}}"#
        );
        assert!(converse_request(b"[1]").is_err());
        assert!(converse_request(b"{\"messages\":").is_err());
    }

    #[test]
    fn an_invoke_body_goes_as_base64_and_counts_are_read_from_either_route() {
        assert_eq!(invoke_request(b"{}"), br#"{"input":{"invokeModel":{"body":"e30="}}}"#);
        assert_eq!(read_count(br#"{"inputTokens": 42}"#).unwrap(), 42);
        assert_eq!(read_count(br#"{"input_tokens": 7}"#).unwrap(), 7);
        let wrong = read_count(br#"{"inputTokens": "x"}"#).unwrap_err();
        assert!(wrong.to_string().contains("inputTokens"), "{wrong}");
        assert!(read_count(br#"{}"#).is_err());
    }
}
