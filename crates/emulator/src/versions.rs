//! Which Anthropic API version each model takes, per surface, read from the rules
//! (bedrock-rules R5.1, messages-api V1–V3) on its own, apart from the validator's capability
//! table, so that the two readings check each other.
//!
//! InvokeModel (the body's `anthropic_version`):
//! - `bedrock-2023-05-31`, the version the AWS documentation gives, is taken by every model.
//! - `2026-10-21`, the version anthropic-python 2.x writes into every InvokeModel body, is
//!   taken by Opus 4.7 and later. Anthropic says the legacy, ARN-versioned models (Opus 4.6
//!   and earlier) do not support it; no recording shows a newer model taking it on InvokeModel,
//!   so that part follows the SDK, which would not send it otherwise.
//!
//! The Messages API (`/anthropic/v1/messages`, the `anthropic-version` header):
//! - `2023-06-01`, the first-party version AWS's examples send (V1), by every Claude model.
//! - `2026-10-21`, what anthropic-python 2.x sends there (V1), by Opus 4.7 and later (V2).
//! - `bedrock-2023-05-31` as a header is reported taken once (V4, unverified) and is refused.
//!
//! On either surface a model named in neither list takes any version: whether it takes one is
//! not known, and the validator only warns there.

/// The version every model takes.
const BEDROCK: &str = "bedrock-2023-05-31";

/// anthropic-python 2.x's version.
const SDK_2026: &str = "2026-10-21";

/// The first-party version, the Messages API's documented one.
const FIRST_PARTY_2023: &str = "2023-06-01";

/// Where the version travels, which decides the versions taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    /// InvokeModel's body field `anthropic_version`.
    Invoke,
    /// The Messages API's `anthropic-version` header.
    Messages,
}

/// Names (after the region prefix) of Opus 4.7 and later. Looked up before [`LEGACY`], whose
/// `claude-opus-4` also names Opus 4.7.
const CURRENT: &[&str] = &[
    "claude-opus-4-7",
    "claude-opus-4-8",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-haiku-5",
    "claude-fable-5",
    "claude-mythos",
];

/// Names of the Claude models before Opus 4.7.
const LEGACY: &[&str] = &["claude-opus-4", "claude-sonnet-4", "claude-haiku-4-5", "claude-3"];

/// Whether the model `model_key` names (a model id without its region prefix or ARN path)
/// takes `version` on `surface`.
pub(crate) fn accepts(surface: Surface, model_key: &str, version: &str) -> bool {
    let key = model_key.to_ascii_lowercase();
    let named = |names: &[&str]| names.iter().any(|name| key.contains(name));
    let documented = match surface {
        Surface::Invoke => BEDROCK,
        Surface::Messages => FIRST_PARTY_2023,
    };
    if named(CURRENT) {
        version == documented || version == SDK_2026
    } else if named(LEGACY) {
        version == documented
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::model_key;

    fn takes(model_id: &str, version: &str) -> bool {
        accepts(Surface::Invoke, &model_key(model_id), version)
    }

    fn header_takes(model_id: &str, version: &str) -> bool {
        accepts(Surface::Messages, &model_key(model_id), version)
    }

    #[test]
    fn the_messages_header_takes_2023_06_01_everywhere_and_2026_10_21_from_opus_4_7() {
        for id in ["anthropic.claude-opus-4-7", "us.anthropic.claude-sonnet-5"] {
            assert!(header_takes(id, FIRST_PARTY_2023) && header_takes(id, SDK_2026), "{id}");
            assert!(!header_takes(id, BEDROCK), "{id}");
        }
        for id in ["anthropic.claude-sonnet-4-6-v1", "us.anthropic.claude-opus-4-6-v1"] {
            assert!(header_takes(id, FIRST_PARTY_2023), "{id}");
            assert!(!header_takes(id, SDK_2026) && !header_takes(id, BEDROCK), "{id}");
        }
        assert!(header_takes("emulator.echo", "any"));
    }

    #[test]
    fn opus_4_7_and_later_take_the_sdk_version_and_earlier_models_do_not() {
        for id in [
            "global.anthropic.claude-opus-4-7",
            "us.anthropic.claude-sonnet-5",
            "anthropic.claude-opus-5-5",
            "anthropic.claude-fable-5-1",
        ] {
            assert!(takes(id, SDK_2026) && takes(id, BEDROCK), "{id}");
            assert!(!takes(id, "2023-06-01"), "{id}");
        }
        for id in [
            "global.anthropic.claude-opus-4-6-v1",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-sonnet-20240229-v1:0",
        ] {
            assert!(takes(id, BEDROCK), "{id}");
            assert!(!takes(id, SDK_2026), "{id}");
        }
        // Unknown models: not refused.
        assert!(takes("emulator.echo", SDK_2026));
        assert!(takes(
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1",
            SDK_2026
        ));
    }

    #[test]
    fn a_body_with_the_sdk_version_is_refused_with_bedrocks_text_only_on_earlier_models() {
        use crate::checks::{check, validation};
        use crate::conversation::Dialect;
        let body = serde_json::json!({"anthropic_version": SDK_2026, "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]});
        let refused = check(Dialect::Anthropic, &body, "us.anthropic.claude-opus-4-6-v1", b"s");
        assert_eq!(refused.err(), Some(validation("Invalid API version: 2026-10-21")));
        let accepted = check(Dialect::Anthropic, &body, "global.anthropic.claude-opus-4-7", b"s");
        assert_eq!(accepted.map(|c| c.messages.len()).ok(), Some(1));
    }
}
