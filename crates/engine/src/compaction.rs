//! Server compaction and context editing (Anthropic `context_management`) in a turn's
//! request, and what the reply says it applied.
//!
//! The setting is [`Settings::context_management`](verbatim_model::Settings), or a
//! `context_management` member an imported body carried (kept among the model fields). On
//! InvokeModel and the Messages API it goes out as the top-level member, exactly as
//! configured, with the beta flags its edits take added to the request's
//! ([`ContextManagement::betas`]: `compact-2026-01-12`, `context-management-2025-06-27`). On
//! Converse it is refused before any call ([`EngineError::Unsupported`]): Converse has no such
//! field (its schema answers `extraneous key [context_management] is not permitted`), and no
//! member for the `compaction` block the reply would carry.
//!
//! The reply's `compaction` block is stored as it arrived (an unknown block, raw JSON: the
//! summary and `encrypted_content` untouched) and sent back unchanged with the rest of the
//! history: verbatim sends the whole stored history, and the API ignores what precedes the
//! block (the first-party compaction documentation: append the whole `content`, the block
//! included, and the API drops the content before it). The turns it replaced stay in the
//! log, so a fork or a rewind to before the compaction gives the history without it. The
//! reply's `context_management` (its `applied_edits`) is recorded in the message's
//! provenance ([`Provenance::context_management`](verbatim_model::Provenance)).

use serde_json::Value;
use verbatim_model::{Api, CONTEXT_MANAGEMENT_KEY, ContextManagement, Response};
use verbatim_protocol::assemble::TurnConfig;

use crate::EngineError;

/// Puts the session's context management on `turn`, or refuses it on Converse.
pub(crate) fn configure(
    turn: &mut TurnConfig,
    configured: Option<&ContextManagement>,
) -> Result<(), EngineError> {
    let kept = turn.model_fields.as_ref().and_then(|f| f.get(CONTEXT_MANAGEMENT_KEY)).cloned();
    if configured.is_none() && kept.is_none() {
        return Ok(());
    }
    if turn.api == Api::Converse {
        return Err(EngineError::Unsupported(format!(
            "server compaction and context editing (`{CONTEXT_MANAGEMENT_KEY}`) are not sent on Converse: it has no such field (Bedrock answers `Malformed input request: #: extraneous key [{CONTEXT_MANAGEMENT_KEY}] is not permitted, please reformat your input and try again.`) and no content member for a `compaction` block; use InvokeModel or the Messages API, or clear the setting"
        )));
    }
    let member = match (configured, kept) {
        (Some(configured), _) => configured.clone(),
        (None, Some(Value::Object(kept))) => ContextManagement(kept),
        // Not an object: sent as kept, for the API to judge; no beta is derived from it.
        (None, Some(_)) => return Ok(()),
        (None, None) => return Ok(()),
    };
    let fields = turn.model_fields.get_or_insert_with(Default::default);
    fields.insert(CONTEXT_MANAGEMENT_KEY.to_owned(), member.to_value());
    let beta = turn.beta.get_or_insert_with(Vec::new);
    for flag in member.betas() {
        if !beta.iter().any(|b| b == flag) {
            beta.push(flag.to_owned());
        }
    }
    Ok(())
}

/// The reply's `context_management` as received, when it carried one.
pub(crate) fn applied(response: &Response) -> Option<Value> {
    let from_fields = response.model_fields.as_ref().and_then(|f| f.get(CONTEXT_MANAGEMENT_KEY));
    from_fields.or_else(|| response.unmapped.anthropic.get(CONTEXT_MANAGEMENT_KEY)).cloned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use verbatim_model::{COMPACT_BETA, CONTEXT_MANAGEMENT_BETA, JsonMap};

    use super::*;

    const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

    #[test]
    fn the_member_goes_out_as_configured_with_its_betas_once() {
        let member = ContextManagement::new().compact(Some(1000), None).clear_thinking(None);
        let mut turn = TurnConfig::new(MODEL, Api::InvokeModel);
        turn.beta = Some(vec![COMPACT_BETA.to_owned()]);
        configure(&mut turn, Some(&member)).unwrap();
        assert_eq!(turn.model_fields.unwrap()[CONTEXT_MANAGEMENT_KEY], member.to_value());
        assert_eq!(turn.beta.unwrap(), [COMPACT_BETA, CONTEXT_MANAGEMENT_BETA]);
        // An imported body's member is sent as it came, with the betas it needs.
        let kept = json!({"edits": [{"type": "clear_tool_uses_20250919"}], "future": 1});
        let mut turn = TurnConfig::new(MODEL, Api::Messages);
        turn.model_fields =
            Some(JsonMap::from_iter([(CONTEXT_MANAGEMENT_KEY.into(), kept.clone())]));
        configure(&mut turn, None).unwrap();
        assert_eq!(turn.model_fields.unwrap()[CONTEXT_MANAGEMENT_KEY], kept);
        assert_eq!(turn.beta.unwrap(), [CONTEXT_MANAGEMENT_BETA]);
        // Nothing configured: nothing added.
        let mut turn = TurnConfig::new(MODEL, Api::InvokeModel);
        configure(&mut turn, None).unwrap();
        assert!(turn.model_fields.is_none() && turn.beta.is_none());
    }

    #[test]
    fn converse_refuses_the_member_by_name_configured_or_kept() {
        let member = ContextManagement::new().compact(None, None);
        let mut turn = TurnConfig::new(MODEL, Api::Converse);
        let error = configure(&mut turn, Some(&member)).unwrap_err().to_string();
        assert!(error.contains("`context_management`") && error.contains("Converse"), "{error}");
        let mut turn = TurnConfig::new(MODEL, Api::Converse);
        turn.model_fields =
            Some(JsonMap::from_iter([(CONTEXT_MANAGEMENT_KEY.into(), member.to_value())]));
        assert!(matches!(configure(&mut turn, None), Err(EngineError::Unsupported(_))));
    }
}
