//! Server compaction and context editing: the first-party `context_management` member, taken
//! on InvokeModel and the Messages API (Converse's schema has no such key and refuses it as
//! any unknown key). The names are the first-party API's (`compact_20260112`,
//! `clear_tool_uses_20250919`, `clear_thinking_20251015`, the reply's
//! `context_management.applied_edits` and its `compaction` block); nothing from Bedrock
//! records them (messages-api F6), so what follows is this emulator's own deterministic
//! reading, written from the first-party documentation:
//!
//! - The input an edit's trigger is compared with is counted from the last `compaction`
//!   block on (the API ignores what precedes one): one token per started four bytes of the
//!   JSON text of the messages from there, the same rule as [`crate::tokens`]. Triggers
//!   default to 150,000 (compaction) and 100,000 (tool-result clearing) tokens, as the
//!   first-party documentation gives them; the first-party minimum (50,000) is not enforced,
//!   so tests can compact small conversations.
//! - Compaction, at or past its trigger, puts a `compaction` block first in the reply: its
//!   `content` a summary of the user's words so far, its `encrypted_content` the emulator's
//!   HMAC of that summary (the thinking signatures' scheme, [`model::sign_after`], bound to
//!   neither model nor prefix: the turns before a compaction may be left out). A compacting
//!   reply carries no thinking (where thinking would sit beside a compaction block is not
//!   recorded). With `pause_after_compaction` the reply is the block alone, stop reason
//!   `compaction`.
//! - A `compaction` block sent back whose `encrypted_content` does not sign its `content` is
//!   refused with `messages.{i}.content.{j}: Invalid `encrypted_content` in `compaction`
//!   block` (the emulator's text, modelled on the thinking signature's; Bedrock's is not
//!   recorded). A block without `encrypted_content` (the first-party SDKs may leave it out
//!   of requests) or with `content: null` (a failed compaction, a no-op) is taken.
//! - Tool-result clearing, at or past its trigger, reports the tool results but the last
//!   `keep` (3 by default) as cleared; thinking clearing reports the assistant turns with
//!   thinking but the last `keep` (1 by default; `"all"` keeps all). Each applied edit is
//!   listed in `applied_edits` with its counts; a request with `context_management` always
//!   gets the member back (`applied_edits: []` when nothing applied).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::checks::{Refusal, validation};
use crate::conversation::Block;
use crate::model::{self, Reply};

const KEY: &str = "context_management";
const COMPACT: &str = "compact_20260112";
const CLEAR_TOOL_USES: &str = "clear_tool_uses_20250919";
const CLEAR_THINKING: &str = "clear_thinking_20251015";
const COMPACT_TRIGGER: u64 = 150_000;
const CLEAR_TRIGGER: u64 = 100_000;
const KEEP_TOOL_USES: u64 = 3;
const KEEP_THINKING_TURNS: u64 = 1;

fn digest() -> [u8; 32] {
    Sha256::digest(b"verbatim-emulator compaction").into()
}

/// The `encrypted_content` of a summary.
pub(crate) fn sign(secret: &[u8], summary: &str) -> String {
    model::sign_after(secret, "", &digest(), summary)
}

fn messages(body: &Value) -> &[Value] {
    body.get("messages").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn blocks(message: &Value) -> &[Value] {
    message.get("content").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn is_compaction(block: &Value) -> bool {
    block.get("type").and_then(Value::as_str) == Some("compaction")
}

/// Refuses a body that sends a `compaction` block back edited.
pub(crate) fn check_blocks(body: &Value, secret: &[u8]) -> Result<(), Refusal> {
    for (i, message) in messages(body).iter().enumerate() {
        for (j, block) in blocks(message).iter().enumerate() {
            if !is_compaction(block) {
                continue;
            }
            let valid = match (block.get("content"), block.get("encrypted_content")) {
                (_, None | Some(Value::Null)) | (None | Some(Value::Null), _) => true,
                (Some(Value::String(summary)), Some(Value::String(signed))) => {
                    sign(secret, summary) == *signed
                }
                _ => false,
            };
            if !valid {
                return Err(validation(format!(
                    "messages.{i}.content.{j}: Invalid `encrypted_content` in `compaction` block"
                )));
            }
        }
    }
    Ok(())
}

/// The messages the API reads: from the last `compaction` block with a summary on (that
/// message's later blocks, then the messages after it).
fn active(body: &Value) -> Vec<Value> {
    let messages = messages(body);
    for (i, message) in messages.iter().enumerate().rev() {
        let blocks = blocks(message);
        let last = blocks.iter().rposition(|b| is_compaction(b) && b["content"].is_string());
        if let Some(j) = last {
            let mut rest = vec![json!({"role": message["role"], "content": &blocks[j..]})];
            rest.extend(messages[i + 1..].iter().cloned());
            return rest;
        }
    }
    messages.to_vec()
}

fn tokens(value: &Value) -> u64 {
    (value.to_string().len() as u64).div_ceil(4)
}

fn threshold(edit: &Value, key: &str) -> Option<u64> {
    edit.get(key)?.get("value")?.as_u64()
}

/// Applies the body's edits to `reply`: the compaction block and `applied_edits`.
pub(crate) fn apply(body: &Value, secret: &[u8], reply: &mut Reply) {
    let Some(member) = body.get(KEY) else { return };
    let edits = member.get("edits").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let active = active(body);
    let input = active.iter().map(tokens).sum::<u64>();
    let mut applied = Vec::new();
    for edit in edits {
        match edit.get("type").and_then(Value::as_str) {
            Some(COMPACT) if input >= threshold(edit, "trigger").unwrap_or(COMPACT_TRIGGER) => {
                compact(secret, &active, edit, reply);
                applied.push(json!({"type": COMPACT}));
            }
            Some(CLEAR_TOOL_USES)
                if input >= threshold(edit, "trigger").unwrap_or(CLEAR_TRIGGER) =>
            {
                let keep = threshold(edit, "keep").unwrap_or(KEEP_TOOL_USES) as usize;
                let results: Vec<&Value> = active
                    .iter()
                    .flat_map(blocks)
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                    .collect();
                let cleared = &results[..results.len().saturating_sub(keep)];
                if !cleared.is_empty() {
                    applied
                        .push(json!({"type": CLEAR_TOOL_USES, "cleared_tool_uses": cleared.len(),
                        "cleared_input_tokens": cleared.iter().map(|b| tokens(b)).sum::<u64>()}));
                }
            }
            Some(CLEAR_THINKING) => {
                let keep = match edit.get("keep") {
                    Some(Value::String(all)) if all == "all" => usize::MAX,
                    Some(keep) => keep.get("value").and_then(Value::as_u64).unwrap_or(1) as usize,
                    None => KEEP_THINKING_TURNS as usize,
                };
                let thinking = |b: &&Value| {
                    matches!(
                        b.get("type").and_then(Value::as_str),
                        Some("thinking" | "redacted_thinking")
                    )
                };
                let turns: Vec<Vec<&Value>> = active
                    .iter()
                    .filter(|m| m["role"] == "assistant")
                    .map(|m| blocks(m).iter().filter(thinking).collect::<Vec<_>>())
                    .filter(|t| !t.is_empty())
                    .collect();
                let cleared = &turns[..turns.len().saturating_sub(keep)];
                if !cleared.is_empty() {
                    let tokens = cleared.iter().flatten().map(|b| tokens(b)).sum::<u64>();
                    applied.push(
                        json!({"type": CLEAR_THINKING, "cleared_thinking_turns": cleared.len(),
                        "cleared_input_tokens": tokens}),
                    );
                }
            }
            _ => {}
        }
    }
    reply.context_management = Some(json!({"applied_edits": applied}));
}

/// Puts a signed summary of `active` first in the reply.
fn compact(secret: &[u8], active: &[Value], edit: &Value, reply: &mut Reply) {
    let said: Vec<&str> = active
        .iter()
        .filter(|m| m["role"] == "user")
        .flat_map(|m| match &m["content"] {
            Value::String(text) => vec![text.as_str()],
            _ => blocks(m).iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect(),
        })
        .collect();
    let words: String = said.join(" / ").chars().take(300).collect();
    let summary = format!("Summary of {} earlier messages. The user said: {words}", active.len());
    let signed = sign(secret, &summary);
    let block = json!({"type": "compaction", "content": summary, "encrypted_content": signed});
    reply.compaction = Some(block);
    reply.blocks.retain(|b| !matches!(b, Block::Thinking { .. } | Block::Redacted(_)));
    if edit.get("pause_after_compaction") == Some(&Value::Bool(true)) {
        reply.blocks.clear();
        reply.stop_reason = "compaction";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"secret";

    fn reply() -> Reply {
        Reply {
            blocks: vec![Block::Text("Answer.".into())],
            stop_reason: "end_turn",
            input_tokens: 0,
            output_tokens: 1,
            cache: None,
            compaction: None,
            context_management: None,
        }
    }

    fn body(edits: Value, messages: Value) -> Value {
        json!({"max_tokens": 9, "messages": messages, "context_management": {"edits": edits}})
    }

    fn long_history() -> Value {
        let long = "word ".repeat(200);
        json!([{"role": "user", "content": "first"}, {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": long}])
    }

    #[test]
    fn compaction_past_its_trigger_opens_the_reply_with_a_signed_summary() {
        let edits = json!([{"type": COMPACT, "trigger": {"type": "input_tokens", "value": 100}}]);
        let mut compacted = reply();
        apply(&body(edits.clone(), long_history()), SECRET, &mut compacted);
        let block = compacted.compaction.clone().unwrap();
        assert_eq!(block["type"], "compaction");
        let summary = block["content"].as_str().unwrap();
        assert!(summary.contains("first"), "{summary}");
        assert_eq!(block["encrypted_content"], json!(sign(SECRET, summary)));
        assert_eq!(
            compacted.context_management,
            Some(json!({"applied_edits": [{"type": COMPACT}]}))
        );
        // Under the trigger: nothing applied, the member still answered.
        let short = json!([{"role": "user", "content": "hi"}]);
        let mut plain = reply();
        apply(&body(edits, short), SECRET, &mut plain);
        assert_eq!(plain.compaction, None);
        assert_eq!(plain.context_management, Some(json!({"applied_edits": []})));
        // Paused: the block alone.
        let paused = json!([{"type": COMPACT, "trigger": {"type": "input_tokens", "value": 1},
            "pause_after_compaction": true}]);
        let mut stopped = reply();
        apply(&body(paused, long_history()), SECRET, &mut stopped);
        assert!(stopped.blocks.is_empty() && stopped.stop_reason == "compaction");
    }

    #[test]
    fn a_compaction_block_sent_back_edited_is_refused_and_the_input_counts_from_it() {
        let summary = "Summary of earlier turns.";
        let block = |content: &str| json!({"type": "compaction", "content": content, "encrypted_content": sign(SECRET, summary)});
        let history = |compaction: Value| {
            json!({"messages": [{"role": "user", "content": "word ".repeat(400)},
                {"role": "assistant", "content": [compaction, {"type": "text", "text": "ok"}]},
                {"role": "user", "content": "next"}]})
        };
        assert!(check_blocks(&history(block(summary)), SECRET).is_ok());
        let edited = check_blocks(&history(block("Summary of earlier turns!")), SECRET);
        assert_eq!(
            edited.unwrap_err().message,
            "messages.1.content.0: Invalid `encrypted_content` in `compaction` block"
        );
        // Without the opaque part, or a failed compaction (null): nothing to verify.
        assert!(
            check_blocks(&history(json!({"type": "compaction", "content": "x"})), SECRET).is_ok()
        );
        let failed = json!({"type": "compaction", "content": null, "encrypted_content": "e"});
        assert!(check_blocks(&history(failed), SECRET).is_ok());
        // What precedes the block is not read: 400 words before it do not reach a trigger of
        // 200 tokens, which they alone pass.
        let mut body = history(block(summary));
        body["context_management"] = json!({"edits": [{"type": COMPACT, "trigger": {"type": "input_tokens", "value": 200}}]});
        let mut again = reply();
        apply(&body, SECRET, &mut again);
        assert_eq!(again.compaction, None);
    }

    #[test]
    fn clearing_edits_report_what_they_cleared_past_their_triggers() {
        let result = |id: &str| json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "sunny"}]});
        let call = |id: &str| {
            json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm", "signature": "s"},
            {"type": "tool_use", "id": id, "name": "w", "input": {}}]})
        };
        let messages = json!([{"role": "user", "content": "go"}, call("a"), result("a"), call("b"),
            result("b"), call("c"), result("c")]);
        let edits = json!([{"type": CLEAR_THINKING},
            {"type": CLEAR_TOOL_USES, "trigger": {"type": "input_tokens", "value": 10},
             "keep": {"type": "tool_uses", "value": 1}}]);
        let mut cleared = reply();
        apply(&body(edits, messages), SECRET, &mut cleared);
        let applied = &cleared.context_management.unwrap()["applied_edits"];
        assert_eq!(applied[0]["type"], CLEAR_THINKING);
        assert_eq!(applied[0]["cleared_thinking_turns"], 2);
        assert_eq!(applied[1]["type"], CLEAR_TOOL_USES);
        assert_eq!(applied[1]["cleared_tool_uses"], 2);
        assert!(applied[1]["cleared_input_tokens"].as_u64().unwrap() > 0);
    }
}
