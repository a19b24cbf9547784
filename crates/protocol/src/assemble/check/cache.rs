//! Cache points: where one may stand, its TTL, and the count and TTL order across tools,
//! system and messages.
//!
//! Emits [`Rule::CachePlacement`] (`cache.placement`, in messages), [`Rule::CacheTtl`]
//! (`cache.ttl`) and [`Rule::CacheCount`] (`cache.count`). The tools and system checks use
//! the TTL helpers here for their own cache points.

use verbatim_model::{CachePoint, ContentBlock, Message, SystemBlock, SystemPrompt, Tool};

use super::CheckPass;
use super::system::system_blocks;
use crate::assemble::Severity;
use crate::assemble::action::{Action, is_thinking};
use crate::rules::Rule;

const MAX_CACHE_POINTS: usize = 4;

/// The placement and TTL of cache point block `j` of message `i`.
pub(super) fn cache_point(
    out: &mut CheckPass<'_>,
    message: &Message,
    i: usize,
    j: usize,
    point: &CachePoint,
) {
    let path = out.block(i, j);
    let drop = Action::DropBlock { message: i, block: j, kind: "cachePoint".to_owned() };
    let previous = j.checked_sub(1).map(|p| &message.content[p]);
    match previous {
        None => out.fix(Rule::CachePlacement, path, "a cache point first in its message, with nothing before it", "There is nothing available to cache", drop),
        Some(b) if is_thinking(b) => out.fix(Rule::CachePlacement, path, "a cache point right after a reasoning block", "Cache point cannot be inserted after reasoning block. Please remove the invalid cache point and try again.", drop),
        Some(ContentBlock::CachePoint(_)) => out.fix(Rule::CachePlacement, path, "two cache points in a row", "A maximum of one cache point per block", drop),
        Some(ContentBlock::Document(doc)) if doc.format.as_deref() != Some("pdf") => {
            let detail = format!("{}.type: Field required", path.dotted());
            out.fix(Rule::CachePlacement, path, "a cache point right after a non-PDF document", &detail, drop);
        }
        Some(_) => {
            if let Some(ttl) = bad_ttl(point) {
                let action = Action::ReplaceBlock { message: i, block: j, kind: "cachePoint".to_owned(), content: ContentBlock::CachePoint(CachePoint { ttl: None }) };
                out.fix(Rule::CacheTtl, path, ttl_what(ttl), &ttl_detail(ttl), action);
            }
        }
    }
}

/// The cache points of the whole request: their count, and TTLs that never grow from tools to
/// system to messages.
pub(super) fn cache_points(out: &mut CheckPass<'_>) {
    let state = out.state;
    let request = &state.request;
    // (path, ttl, location) in the order Bedrock reads them: tools, system, messages.
    enum Where {
        Tool(usize),
        System(usize),
        Block(usize, usize),
    }
    let mut points: Vec<(Where, Option<&str>)> = Vec::new();
    for (k, tool) in request.tools.iter().flatten().enumerate() {
        if let Tool::CachePoint(p) = tool {
            points.push((Where::Tool(k), p.ttl.as_deref()));
        }
    }
    if let Some(SystemPrompt::Blocks(blocks)) = &request.system {
        for (k, block) in blocks.iter().enumerate() {
            if let SystemBlock::CachePoint(p) = block {
                points.push((Where::System(k), p.ttl.as_deref()));
            }
        }
    }
    for (i, message) in request.messages.iter().enumerate() {
        for (j, block) in message.content.iter().enumerate() {
            if let ContentBlock::CachePoint(p) = block {
                points.push((Where::Block(i, j), p.ttl.as_deref()));
            }
        }
    }
    let path_of = |out: &CheckPass<'_>, at: &Where| match *at {
        Where::Tool(k) => out.places.tool(out.request(), k),
        Where::System(k) => out.places.system_block(out.request(), k),
        Where::Block(i, j) => out.block(i, j),
    };
    if points.len() > MAX_CACHE_POINTS {
        let found = points.len().to_string();
        let what = format!(
            "{found} cache points; at most {MAX_CACHE_POINTS} across tools, system and messages"
        );
        let first_in_messages = points.iter().find(|(w, _)| matches!(w, Where::Block(..)));
        let (path, proposal) = match first_in_messages {
            Some((at @ Where::Block(i, j), _)) => (
                path_of(out, at),
                Some(Action::DropBlock { message: *i, block: *j, kind: "cachePoint".to_owned() }),
            ),
            _ => (path_of(out, &points[MAX_CACHE_POINTS].0), None),
        };
        out.push(Rule::CacheCount, Severity::Error, path, what, &found, proposal);
    }
    let mut seen_short = false;
    for (at, ttl) in &points {
        let long = *ttl == Some("1h");
        if long && seen_short {
            let what = "a 1h cache point after a 5m one; TTLs may not grow from tools to system to messages";
            let detail = "cachePoint.ttl: a 1h cache point may not follow a 5m cache point";
            let short = || CachePoint { ttl: Some("5m".to_owned()) };
            let path = path_of(out, at);
            // The system and tools fixes copy their list: built only when repair asks.
            match *at {
                Where::Block(i, j) => {
                    let action = Action::ReplaceBlock {
                        message: i,
                        block: j,
                        kind: "cachePoint".to_owned(),
                        content: ContentBlock::CachePoint(short()),
                    };
                    out.push(Rule::CacheTtl, Severity::Error, path, what, detail, Some(action));
                }
                Where::System(k) => {
                    let action = move |request: &verbatim_model::Request| {
                        let mut blocks = system_blocks(request);
                        blocks[k] = SystemBlock::CachePoint(short());
                        Action::SetSystem { system: Some(SystemPrompt::Blocks(blocks)) }
                    };
                    out.fix_deferred(Rule::CacheTtl, Severity::Error, path, what, detail, action);
                }
                Where::Tool(k) => {
                    let action = move |request: &verbatim_model::Request| {
                        let mut tools = request.tools.clone().unwrap_or_default();
                        tools[k] = Tool::CachePoint(short());
                        Action::SetTools { tools: Some(tools) }
                    };
                    out.fix_deferred(Rule::CacheTtl, Severity::Error, path, what, detail, action);
                }
            }
        }
        seen_short |= !long;
    }
}

/// The TTL of a cache point when it is neither `5m` nor `1h`.
pub(super) fn bad_ttl(point: &CachePoint) -> Option<&str> {
    point.ttl.as_deref().filter(|ttl| !matches!(*ttl, "5m" | "1h"))
}

/// What a finding on a bad TTL says.
pub(super) fn ttl_what(ttl: &str) -> String {
    format!("cache point ttl `{ttl}`; it must be 5m or 1h")
}

/// What Bedrock says of a bad TTL.
pub(super) fn ttl_detail(ttl: &str) -> String {
    format!("cachePoint.ttl: Input should be '5m' or '1h' (got '{ttl}')")
}
