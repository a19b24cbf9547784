//! Context limits: when a request would exceed a budget, whole old turns are left out of the
//! request (never out of the store). Pure: no I/O.

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
/// budget, or `None` when no cut does.
///
/// A cut only falls where a user turn starts (a user message with no tool results), so no
/// tool_use is separated from its result and the request still starts with a user message;
/// the turn in progress is always kept. The shortened request is assembled afresh: recorded
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
) -> Option<Trimmed> {
    let last_start = (0..history.len()).rev().find(|&i| is_plain_user(&history[i].message))?;
    let mut turn = turn.clone();
    turn.recorded_fixes.clear();
    (1..=last_start).filter(|&cut| is_plain_user(&history[cut].message)).find_map(|cut| {
        let prepared = Assembler::view(&history[cut..], &turn, policy);
        let body = prepared.body()?;
        (estimate_tokens(body.len()) <= context.budget_tokens).then_some(Trimmed {
            prepared,
            body,
            left_out: cut,
        })
    })
}
