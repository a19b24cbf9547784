//! The system prompt: blank text and cache points among its blocks.
//!
//! Emits [`Rule::BlankText`] (`text.blank`), [`Rule::CachePlacement`] (`cache.placement`) and
//! [`Rule::CacheTtl`] (`cache.ttl`).

use verbatim_model::{CachePoint, SystemBlock, SystemPrompt};

use super::CheckPass;
use super::cache::{bad_ttl, ttl_detail, ttl_what};
use crate::JsonPath;
use crate::assemble::Severity;
use crate::assemble::action::Action;
use crate::rules::Rule;

/// The system prompt and each of its blocks.
pub(super) fn system(out: &mut CheckPass<'_>) {
    let Some(system) = out.request().system.clone() else { return };
    let blocks = match system {
        SystemPrompt::Text(text) => {
            if text.trim().is_empty() {
                let action = Action::SetSystem { system: None };
                let detail =
                    "Invalid length for parameter system[0].text, value: 0, valid min length: 1";
                out.fix(
                    Rule::BlankText,
                    JsonPath::root().key("system"),
                    "a blank system prompt",
                    detail,
                    action,
                );
            }
            return;
        }
        SystemPrompt::Blocks(blocks) => blocks,
    };
    // The system blocks without block `k`, or with it changed: fixes built only when repair
    // asks for them.
    let without = |k: usize| {
        move |request: &verbatim_model::Request| {
            let mut rest = system_blocks(request);
            rest.remove(k);
            Action::SetSystem { system: (!rest.is_empty()).then_some(SystemPrompt::Blocks(rest)) }
        }
    };
    for (k, block) in blocks.iter().enumerate() {
        let path = out.places.system_block(out.request(), k);
        match block {
            SystemBlock::Text(text) if text.text.trim().is_empty() => {
                let detail = format!(
                    "Invalid length for parameter system[{k}].text, value: 0, valid min length: 1"
                );
                let what = "a blank system text block";
                out.fix_deferred(Rule::BlankText, Severity::Error, path, what, &detail, without(k));
            }
            SystemBlock::CachePoint(_) if k == 0 => {
                out.fix_deferred(
                    Rule::CachePlacement,
                    Severity::Error,
                    path,
                    "a cache point first in the system prompt, with nothing before it",
                    "There is nothing available to cache",
                    without(k),
                );
            }
            SystemBlock::CachePoint(point) => {
                if let Some(ttl) = bad_ttl(point) {
                    let action = move |request: &verbatim_model::Request| {
                        let mut fixed = system_blocks(request);
                        fixed[k] = SystemBlock::CachePoint(CachePoint { ttl: None });
                        Action::SetSystem { system: Some(SystemPrompt::Blocks(fixed)) }
                    };
                    let (what, detail) = (ttl_what(ttl), ttl_detail(ttl));
                    out.fix_deferred(Rule::CacheTtl, Severity::Error, path, what, &detail, action);
                }
            }
            _ => {}
        }
    }
}

/// A copy of the request's system blocks (none for a plain text prompt).
pub(super) fn system_blocks(request: &verbatim_model::Request) -> Vec<SystemBlock> {
    match &request.system {
        Some(SystemPrompt::Blocks(blocks)) => blocks.clone(),
        _ => Vec::new(),
    }
}
