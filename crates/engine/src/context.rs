//! Context limits: when a request would exceed a budget, whole old turns are left out of the
//! request (never out of the store). Pure: no I/O.

use verbatim_model::HistoryMessage;
use verbatim_protocol::assemble::{Assembly, Policy, TurnConfig, assemble};

use crate::EngineError;
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

/// An assembled request that fits the budget, and the number of old messages left out.
#[derive(Debug)]
pub(crate) struct Fitted {
    pub(crate) assembly: Assembly,
    pub(crate) left_out: usize,
}

/// Makes `full` (the request over the whole history) fit `policy`: as it is, or assembled
/// again from the history with the oldest whole turns left out.
///
/// A cut only falls where a user turn starts (a user message with no tool results), so no
/// tool_use is separated from its result and the request still starts with a user message;
/// the turn in progress is always kept. The shortened request is assembled afresh: recorded
/// fixes name places in the whole history, and on models that bind thinking to the
/// conversation prefix the assembler leaves out the thinking whose prefix the cut changed
/// (or refuses when that is the turn in progress). The history in the store is untouched.
pub(crate) fn fit(
    history: &[HistoryMessage],
    turn: &TurnConfig,
    policy: Policy,
    context: &ContextPolicy,
    full: Assembly,
) -> Result<Fitted, EngineError> {
    let size = |assembly: &Assembly| {
        assembly.body.as_ref().map_or(u64::MAX, |body| estimate_tokens(body.to_string().len()))
    };
    let estimate = size(&full);
    if estimate <= context.budget_tokens {
        return Ok(Fitted { assembly: full, left_out: 0 });
    }
    let over = |estimate, trimmed| EngineError::ContextBudget {
        estimate,
        budget: context.budget_tokens,
        trimmed,
    };
    if !context.trim {
        return Err(over(estimate, false));
    }
    let last_start = (0..history.len()).rev().find(|&i| is_plain_user(&history[i].message));
    let mut smallest = estimate;
    let mut turn = turn.clone();
    turn.recorded_fixes.clear();
    for cut in 1..=last_start.unwrap_or(0) {
        if !is_plain_user(&history[cut].message) {
            continue;
        }
        let assembly = assemble(&history[cut..], &turn, policy);
        if !assembly.is_valid() {
            continue;
        }
        let estimate = size(&assembly);
        smallest = smallest.min(estimate);
        if estimate <= context.budget_tokens {
            return Ok(Fitted { assembly, left_out: cut });
        }
    }
    Err(over(smallest, true))
}
