//! Context limits: when a request would exceed a budget, whole old turns are left out of the
//! request (never out of the store). Pure: no I/O.
//!
//! Leaving out the fewest turns that fit moves the start of the request at every turn once
//! the budget is reached, and with it the prompt cache's prefix: every message is written to
//! the cache again on every call. So turns are left out in chunks
//! ([`ContextPolicy::chunk_tokens`]): the tokens left out are rounded up to a multiple of the
//! chunk, counted over the stored messages (which never change), so the cut is a function of
//! the history that stays where it is while the conversation grows by up to a chunk, and
//! the cached prefix with it. A larger chunk keeps the prefix for more turns and sends less
//! of the past; a quarter of the budget ([`ContextPolicy::trimming`]) keeps it for a quarter
//! of the budget's worth of turns.
//!
//! With server compaction, the turn holding the latest `compaction` block is never left out:
//! the API reads nothing before it, and the summary would go with what it replaced.

use bytes::Bytes;
use verbatim_model::HistoryMessage;
use verbatim_protocol::assemble::{Assembler, Policy, Prepared, TurnConfig};

use crate::log::is_plain_user;

/// What to do when a request would exceed the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextPolicy {
    /// The most tokens a request may hold, by [`estimate_tokens`].
    pub budget_tokens: u64,
    /// Leave whole old turns out of the request until it fits (true), or fail (false).
    pub trim: bool,
    /// Leave out old turns in chunks of at least this many tokens (by [`estimate_tokens`]
    /// over the stored messages), so the cut stays put while the conversation grows by up to
    /// this much (see the module docs); 0 leaves out the fewest turns that fit, which moves
    /// the cut, and the cached prefix, at every turn.
    pub chunk_tokens: u64,
    /// The room a turn's first request leaves under the budget for the tool loop that
    /// follows it: turns are left out when that request exceeds `budget_tokens -
    /// headroom_tokens`, so the loop's later requests fit with the same cut. A cut made in
    /// the middle of a tool loop moves the prefix that loop's thinking was produced after
    /// (refused on models that bind thinking to it); 0 leaves no room.
    pub headroom_tokens: u64,
    /// When the estimate says a request is over the budget, ask the model's own count first
    /// (Bedrock's CountTokens through the transport, [`verbatim_transport::Transport::count_tokens`]):
    /// a request the count finds within the budget goes whole, and otherwise the turns left
    /// out are chosen by estimates scaled to the count. A count that fails falls back to the
    /// estimate. Costs one count call per request the estimate finds too long.
    pub count_tokens: bool,
}

impl ContextPolicy {
    /// A budget of `budget_tokens` that leaves old turns out in chunks of a quarter of it and
    /// keeps a quarter of it free at the start of each turn for its tool loop.
    pub fn trimming(budget_tokens: u64) -> ContextPolicy {
        ContextPolicy {
            budget_tokens,
            trim: true,
            chunk_tokens: budget_tokens / 4,
            headroom_tokens: budget_tokens / 4,
            count_tokens: false,
        }
    }

    /// The budget a request is held to: less the headroom at the start of a turn.
    pub(crate) fn limit(&self, turn_start: bool) -> u64 {
        if turn_start {
            self.budget_tokens.saturating_sub(self.headroom_tokens)
        } else {
            self.budget_tokens
        }
    }
}

/// A request body's size in tokens, estimated as one token per four bytes of its JSON. A
/// rough, conservative measure (signatures and JSON syntax count too); set the budget with
/// room to spare.
pub fn estimate_tokens(body_len: usize) -> u64 {
    (body_len as u64).div_ceil(4)
}

/// A request with the oldest whole turns left out, that fits the budget.
#[derive(Debug)]
pub(crate) struct Trimmed {
    pub(crate) prepared: Prepared,
    pub(crate) body: Bytes,
    /// How many of the oldest stored messages it leaves out.
    pub(crate) left_out: usize,
}

/// The request over `history` with the fewest oldest whole turns left out that fits the
/// budget and leaves out at least the chunked amount (the request over the whole history is
/// estimated at `full_tokens`), or `None` when no cut does. A cut `kept` from the turn's
/// earlier request is taken again when it still fits: within a turn the cut moves only when
/// it must.
///
/// A cut only falls where a user turn starts (a user message with no tool results), so no
/// tool_use is separated from its result and the request still starts with a user message;
/// the turn in progress is always kept, and so is the turn holding the latest server
/// `compaction` block. The shortened request is assembled afresh: recorded
/// fixes name places in the whole history, and the assembler decides the same ones again for
/// the messages kept (repair is deterministic). On models that bind thinking to the
/// conversation prefix it leaves out the thinking whose prefix the cut changed, or refuses
/// when that is the turn in progress; an assistant message produced after a cut records the
/// hash of the shortened prefix, so it stays valid while the cut stays. The history in the
/// store is untouched.
pub(crate) fn trim(
    history: &[HistoryMessage],
    turn: &TurnConfig,
    policy: Policy,
    context: &ContextPolicy,
    full: Size,
    kept: Option<usize>,
    limit: u64,
) -> Option<Trimmed> {
    let Size { tokens: full_tokens, scale } = full;
    let mut last_start = (0..history.len()).rev().find(|&i| is_plain_user(&history[i].message))?;
    // Server compaction: the API reads nothing before the latest `compaction` block, whose
    // summary stands for it. A cut may leave out what precedes that block's turn, never the
    // block itself, or the summary would go with what it replaced.
    if let Some(compacted) = history
        .iter()
        .rposition(|m| m.message.content.iter().any(verbatim_model::ContentBlock::is_compaction))
    {
        let turn_start = (0..=compacted).rev().find(|&i| is_plain_user(&history[i].message))?;
        last_start = last_start.min(turn_start);
    }
    let mut turn = turn.clone();
    turn.recorded_fixes.clear();
    let first = first_cut(history, context.chunk_tokens, full_tokens.saturating_sub(limit), scale);
    let kept = kept.filter(|&cut| cut >= 1 && cut <= last_start);
    let cuts = (first.max(1)..=last_start).filter(|&cut| is_plain_user(&history[cut].message));
    kept.into_iter().chain(cuts).find_map(|cut| {
        let prepared = Assembler::view(&history[cut..], &turn, policy);
        let body = prepared.body()?;
        (scaled(body.len(), scale) <= limit).then_some(Trimmed { prepared, body, left_out: cut })
    })
}

/// The first message a cut may fall at: where the stored messages before it hold at least
/// the tokens to leave out rounded up to a whole number of chunks (1 when chunks are off).
fn first_cut(history: &[HistoryMessage], chunk: u64, over: u64, scale: f64) -> usize {
    if chunk == 0 {
        return 1;
    }
    let target = over.div_ceil(chunk).max(1) * chunk;
    let mut before = 0u64;
    for (i, message) in history.iter().enumerate() {
        if before >= target {
            return i;
        }
        let size = serde_json::to_vec(&message.message).map_or(0, |v| v.len());
        before += scaled(size, scale);
    }
    history.len()
}

/// The size of the request over the whole history: its tokens, and the ratio of tokens to
/// [`estimate_tokens`] by which the sizes of shorter requests are judged (1.0 unless the
/// model counted it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Size {
    pub(crate) tokens: u64,
    pub(crate) scale: f64,
}

/// [`estimate_tokens`] times `scale` (the ratio of a counted request to its estimate; 1.0
/// without a count), rounded up.
pub(crate) fn scaled(body_len: usize, scale: f64) -> u64 {
    let estimate = estimate_tokens(body_len);
    if scale == 1.0 { estimate } else { (estimate as f64 * scale).ceil() as u64 }
}

#[cfg(test)]
mod tests {
    use verbatim_model::{Api, Message};

    use super::*;

    fn history(turns: usize) -> Vec<HistoryMessage> {
        (0..turns)
            .flat_map(|n| {
                [
                    Message::user_text(format!("question {n} {}", "words ".repeat(30))),
                    Message::assistant_text(format!("answer {n} {}", "words ".repeat(30))),
                ]
            })
            .map(HistoryMessage::from)
            .collect()
    }

    fn cut(turns: usize, context: &ContextPolicy) -> usize {
        let history = &history(turns)[..turns * 2 - 1];
        let turn = TurnConfig::new("us.anthropic.claude-sonnet-4-20250514-v1:0", Api::Converse);
        let full = Assembler::view(history, &turn, Policy::Repair).body().unwrap().len();
        let size = Size { tokens: estimate_tokens(full), scale: 1.0 };
        let trimmed =
            trim(history, &turn, Policy::Repair, context, size, None, context.budget_tokens);
        trimmed.expect("a cut fits").left_out
    }

    /// The cut a budget of `budget` tokens makes over `turns` turns whose answer `compacted`
    /// (a turn number), if any, opens with a server compaction block.
    fn cut_with_compaction(turns: usize, budget: u64, compacted: Option<usize>) -> Option<usize> {
        let mut history = history(turns);
        history.truncate(turns * 2 - 1);
        if let Some(n) = compacted {
            let block = serde_json::json!({"type": "compaction", "content": "summary", "encrypted_content": "sig"});
            let unknown = verbatim_model::UnknownBlock {
                dialect: verbatim_model::Dialect::Anthropic,
                json: block,
            };
            history[2 * n + 1]
                .message
                .content
                .insert(0, verbatim_model::ContentBlock::Unknown(unknown));
        }
        let mut turn =
            TurnConfig::new("us.anthropic.claude-sonnet-4-20250514-v1:0", Api::InvokeModel);
        turn.inference =
            Some(verbatim_model::InferenceConfig { max_tokens: Some(512), ..Default::default() });
        let full = Assembler::view(&history, &turn, Policy::Repair).body().unwrap().len();
        let size = Size { tokens: estimate_tokens(full), scale: 1.0 };
        let context = ContextPolicy { chunk_tokens: 0, ..ContextPolicy::trimming(budget) };
        trim(&history, &turn, Policy::Repair, &context, size, None, budget).map(|t| t.left_out)
    }

    #[test]
    fn a_cut_never_leaves_out_the_latest_compaction_block() {
        let (turns, budget) = (30, 1500);
        let free = cut_with_compaction(turns, budget, None).expect("a cut fits");
        // A compaction block after the free cut: the cut stays where it was.
        assert_eq!(cut_with_compaction(turns, budget, Some(free / 2 + 2)), Some(free));
        // In the turn the free cut starts at: it is kept (the cut falls at its start).
        assert_eq!(cut_with_compaction(turns, budget, Some(free / 2)), Some(free));
        // In the turn before, which the free cut would leave out: the cut may fall at that
        // turn's start at the latest, where the budget does not hold (the free cut is the
        // first that fits), so no cut is made rather than the summary lost.
        assert_eq!(cut_with_compaction(turns, budget, Some(free / 2 - 1)), None);
        // Any earlier one likewise: what follows the latest block is what the API reads.
        assert_eq!(cut_with_compaction(turns, budget, Some(2)), None);
    }

    #[test]
    fn chunked_cuts_stay_put_for_several_turns_where_single_ones_move_every_turn() {
        let single = ContextPolicy {
            budget_tokens: 2400,
            trim: true,
            chunk_tokens: 0,
            headroom_tokens: 0,
            count_tokens: false,
        };
        let chunked = ContextPolicy::trimming(2400);
        let singles: Vec<usize> = (30..42).map(|turns| cut(turns, &single)).collect();
        let chunks: Vec<usize> = (30..42).map(|turns| cut(turns, &chunked)).collect();
        let moves = |cuts: &[usize]| cuts.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(moves(&singles), singles.len() - 1, "{singles:?}");
        assert!(moves(&chunks) <= singles.len() / 3, "{chunks:?}");
        // Every cut falls at a user turn's start and leaves out at least as much.
        for (single, chunk) in singles.iter().zip(&chunks) {
            assert_eq!(chunk % 2, 0);
            assert!(chunk >= single);
        }
    }
}
