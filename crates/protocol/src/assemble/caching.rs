//! The prompt-caching planner: where a request's cache points go ([`Caching`]).
//!
//! Bedrock caches the prefix of a request up to each cache point, in the order tools, system,
//! messages, and bills a cached read at a tenth of the input price and a write at 1.25 times
//! it (2 times for `1h`; `crate::pricing`). An agent loop resends its whole history on every
//! step, so what matters is that each request reads what the one before wrote, and that the
//! part that never changes (tools and system) is read even when the messages' cache is lost.
//!
//! Under [`Caching::Auto`] the cache points of the history and the configuration are left
//! out and these are placed, within Bedrock's rules (bedrock-rules R1.9, and the emulator's
//! `cache.rs`): at most four in all; a `1h` point never after a `5m` one in the order tools,
//! system, messages (the tools' and system's TTL is [`AutoCaching::prefix_ttl`], the
//! messages' always `5m`); never first in its list, after reasoning or after a document that
//! is not a PDF; and only where the prefix holds the model's minimum
//! ([`Capabilities::cache_min_tokens`], by a local estimate: a JSON byte count over four,
//! which overcounts); no point at all on a model not known to cache, and none in the tools
//! where the model refuses it (Nova). The points, in order of priority:
//!
//! 1. after the system prompt (or after the tools when there is no system prompt): tools and
//!    system, read on every request while they stay the same;
//! 2. at the end of the last message: what the next request reads;
//! 3. at the end of the message three from the end: where the last request's point was (a
//!    tool loop's step and a chat turn both add two messages), so its entry is read even when
//!    more than Bedrock's lookback of about 20 blocks came after it;
//! 4. after the tools, when there is a system prompt too: the tools stay cached when the
//!    system prompt changes (a slot spent only when one is left over).
//!
//! The points are placed on the request as it is sent, never in the history: the prefix hash
//! that binds thinking is taken without them ([`super::prefix_hash`] over the request the
//! checks saw), and the stored messages are unchanged.

use std::borrow::Cow;

pub use verbatim_model::{AutoCaching, CacheTtl, Caching};
use verbatim_model::{
    CachePoint, ContentBlock, Message, Request, SystemBlock, SystemPrompt, TextBlock, Tool,
};

use crate::capability::Capabilities;

/// Where the points go, and whether those already in the request are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    /// Leave out the request's own points.
    strip: bool,
    tools: Option<CachePoint>,
    system: Option<CachePoint>,
    /// `(message, block)`: a point inserted before `block` of `message` (after the block
    /// before it), in message order.
    messages: Vec<(usize, usize)>,
}

/// The local estimate of a value's tokens: its JSON bytes over four, rounded up.
fn estimate<T: serde::Serialize>(value: &T) -> u64 {
    (serde_json::to_vec(value).map_or(0, |v| v.len()) as u64).div_ceil(4)
}

fn is_point(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::CachePoint(_))
}

/// Whether a cache point may follow `block` (R1.9).
fn may_follow(block: &ContentBlock) -> bool {
    match block {
        ContentBlock::Thinking(_)
        | ContentBlock::RedactedThinking(_)
        | ContentBlock::CachePoint(_) => false,
        ContentBlock::Document(document) => document.format.as_deref() == Some("pdf"),
        _ => true,
    }
}

/// Where a point may go at the end of `message` (skipping the points it holds): the index
/// it is inserted at, or `None` when its last block may not be followed by one.
fn end_of(message: &Message) -> Option<usize> {
    let last = message.content.iter().rposition(|b| !is_point(b))?;
    may_follow(&message.content[last]).then_some(last + 1)
}

impl Plan {
    /// The plan for `request` on a model with `caps`.
    pub(crate) fn new(caching: &Caching, request: &Request, caps: &Capabilities) -> Plan {
        let auto = match caching {
            Caching::Manual => return Plan::default(),
            Caching::Off => return Plan { strip: true, ..Plan::default() },
            Caching::Auto(auto) => auto,
        };
        let mut plan = Plan { strip: true, ..Plan::default() };
        let Some(minimum) = caps.cache_min_tokens.map(u64::from) else { return plan };
        let specs: Vec<&Tool> =
            request.tools.iter().flatten().filter(|t| !matches!(t, Tool::CachePoint(_))).collect();
        let tools_tokens: u64 = specs.iter().map(estimate).sum();
        let tools_cacheable = !specs.is_empty() && caps.cache_point_in_tools;
        let system_blocks = match &request.system {
            Some(SystemPrompt::Text(text)) if !text.is_empty() => 1,
            Some(SystemPrompt::Blocks(blocks)) => {
                blocks.iter().filter(|b| !matches!(b, SystemBlock::CachePoint(_))).count()
            }
            _ => 0,
        };
        let system_tokens = request.system.as_ref().map_or(0, estimate);
        let mut slots = 4usize;
        // 1. Tools and system together.
        let prefix = tools_tokens + system_tokens;
        if system_blocks > 0 && prefix >= minimum {
            plan.system = Some(auto.prefix_ttl.point());
            slots -= 1;
        } else if system_blocks == 0 && tools_cacheable && tools_tokens >= minimum {
            plan.tools = Some(auto.prefix_ttl.point());
            slots -= 1;
        }
        // 2. and 3. The end of the last message and of the one three from the end, when their
        // prefix holds the minimum.
        let n = request.messages.len();
        let mut through = prefix;
        let mut cumulative = Vec::with_capacity(n);
        for message in &request.messages {
            // Past the minimum, the count no longer matters.
            if through < minimum {
                through += estimate(message);
            }
            cumulative.push(through);
        }
        for i in [n.checked_sub(1), n.checked_sub(3)].into_iter().flatten() {
            if slots == 0 || cumulative[i] < minimum {
                continue;
            }
            if let Some(at) = end_of(&request.messages[i]) {
                plan.messages.push((i, at));
                slots -= 1;
            }
        }
        plan.messages.sort_unstable();
        // 4. The tools alone, with a slot to spare.
        if slots > 0
            && plan.system.is_some()
            && tools_cacheable
            && tools_tokens >= minimum
            && plan.tools.is_none()
        {
            plan.tools = Some(auto.prefix_ttl.point());
        }
        plan
    }

    /// Whether the plan changes nothing.
    pub(crate) fn is_manual(&self) -> bool {
        *self == Plan::default()
    }

    /// The first message the plan changes, or `request.messages.len()`.
    pub(crate) fn first_changed(&self, request: &Request) -> usize {
        let planned = self.messages.first().map_or(usize::MAX, |&(i, _)| i);
        let stripped = if self.strip {
            request.messages.iter().position(|m| m.content.iter().any(is_point))
        } else {
            None
        };
        planned.min(stripped.unwrap_or(usize::MAX)).min(request.messages.len())
    }

    /// The tools as sent.
    pub(crate) fn tools<'r>(&self, tools: &'r Option<Vec<Tool>>) -> Cow<'r, Option<Vec<Tool>>> {
        if !self.strip {
            return Cow::Borrowed(tools);
        }
        let Some(tools) = tools else { return Cow::Borrowed(&None) };
        let mut out: Vec<Tool> =
            tools.iter().filter(|t| !matches!(t, Tool::CachePoint(_))).cloned().collect();
        if let Some(point) = &self.tools {
            out.push(Tool::CachePoint(point.clone()));
        }
        Cow::Owned(Some(out))
    }

    /// The system prompt as sent.
    pub(crate) fn system<'r>(
        &self,
        system: &'r Option<SystemPrompt>,
    ) -> Cow<'r, Option<SystemPrompt>> {
        if !self.strip {
            return Cow::Borrowed(system);
        }
        let mut blocks = match system {
            None => return Cow::Borrowed(&None),
            Some(SystemPrompt::Text(text)) if self.system.is_none() => {
                return Cow::Owned(Some(SystemPrompt::Text(text.clone())));
            }
            Some(SystemPrompt::Text(text)) => vec![SystemBlock::Text(TextBlock::new(text))],
            Some(SystemPrompt::Blocks(blocks)) => blocks
                .iter()
                .filter(|b| !matches!(b, SystemBlock::CachePoint(_)))
                .cloned()
                .collect(),
        };
        if let Some(point) = &self.system {
            blocks.push(SystemBlock::CachePoint(point.clone()));
        }
        Cow::Owned(Some(SystemPrompt::Blocks(blocks)))
    }

    /// Message `i` as sent.
    pub(crate) fn message<'m>(&self, i: usize, message: &'m Message) -> Cow<'m, Message> {
        let inserts: Vec<usize> =
            self.messages.iter().filter(|(m, _)| *m == i).map(|&(_, at)| at).collect();
        let has_points = self.strip && message.content.iter().any(is_point);
        if inserts.is_empty() && !has_points {
            return Cow::Borrowed(message);
        }
        let mut content = Vec::with_capacity(message.content.len() + inserts.len());
        for (j, block) in message.content.iter().enumerate() {
            if inserts.contains(&j) {
                content.push(ContentBlock::CachePoint(CachePoint::default()));
            }
            if !(self.strip && is_point(block)) {
                content.push(block.clone());
            }
        }
        if inserts.contains(&message.content.len()) {
            content.push(ContentBlock::CachePoint(CachePoint::default()));
        }
        let mut message = message.clone();
        message.content = content;
        Cow::Owned(message)
    }

    /// `request` as sent.
    pub(crate) fn apply(&self, request: &Request) -> Request {
        let mut out = request.clone();
        out.tools = self.tools(&request.tools).into_owned();
        out.system = self.system(&request.system).into_owned();
        for (i, message) in out.messages.iter_mut().enumerate() {
            if let Cow::Owned(planned) = self.message(i, &request.messages[i]) {
                *message = planned;
            }
        }
        out
    }
}

/// `request` with its cache points as [`Caching`] places them for `model_id` (the
/// conservative capability row, which caches nothing automatically, when `None`): what the
/// assembler sends.
pub fn place_cache_points(request: &Request, model_id: Option<&str>, caching: &Caching) -> Request {
    let caps = crate::capability::capabilities(model_id);
    Plan::new(caching, request, caps).apply(request)
}

#[cfg(test)]
mod tests {
    use verbatim_model::{
        Api, InferenceConfig, Role, ThinkingBlock, ThinkingConfig, ThinkingMode, ToolResult,
        ToolResultBlock, ToolResultContent, ToolSpec, ToolUse,
    };

    use super::*;
    use crate::assemble::validate_request;

    const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

    fn tool(name: &str) -> Tool {
        Tool::Spec(ToolSpec {
            name: name.into(),
            description: Some("A tool that does a thing. ".repeat(80)),
            input_schema: serde_json::json!({"type": "object"}),
            strict: None,
            unmapped: Default::default(),
        })
    }

    /// A tool loop of `steps` steps with thinking before each call.
    fn request(steps: usize, system: &str) -> Request {
        let mut messages = vec![Message::user_text("Do the task.")];
        for n in 0..steps {
            let id = format!("t{n}");
            messages.push(Message::new(
                Role::Assistant,
                vec![
                    ContentBlock::Thinking(ThinkingBlock {
                        text: "thinking".into(),
                        signature: Some("sig".into()),
                        unmapped: Default::default(),
                    }),
                    ContentBlock::ToolUse(ToolUse {
                        id: id.as_str().into(),
                        name: "a".into(),
                        input: serde_json::json!({}),
                        kind: None,
                        unmapped: Default::default(),
                    }),
                ],
            ));
            messages.push(Message::new(
                Role::User,
                vec![ContentBlock::ToolResult(ToolResult {
                    tool_use_id: id.as_str().into(),
                    content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text {
                        text: "result ".repeat(50),
                    }])),
                    status: None,
                    unmapped: Default::default(),
                })],
            ));
        }
        Request {
            messages,
            system: Some(SystemPrompt::Text(system.into())),
            tools: Some(vec![tool("a"), tool("b"), tool("c")]),
            thinking: Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 2048 })),
            inference: Some(InferenceConfig { max_tokens: Some(4096), ..Default::default() }),
            ..Request::default()
        }
    }

    fn points(request: &Request) -> usize {
        let tools = request.tools.iter().flatten().filter(|t| matches!(t, Tool::CachePoint(_)));
        let system = match &request.system {
            Some(SystemPrompt::Blocks(b)) => {
                b.iter().filter(|b| matches!(b, SystemBlock::CachePoint(_))).count()
            }
            _ => 0,
        };
        let messages = request.messages.iter().flat_map(|m| &m.content).filter(|b| is_point(b));
        tools.count() + system + messages.count()
    }

    fn auto(ttl: CacheTtl) -> Caching {
        Caching::Auto(AutoCaching { prefix_ttl: ttl })
    }

    #[test]
    fn auto_places_four_valid_points_on_tools_system_and_the_moving_ends() {
        let long = "Rules. ".repeat(800);
        for ttl in [CacheTtl::FiveMinutes, CacheTtl::OneHour] {
            let placed = place_cache_points(&request(6, &long), Some(MODEL), &auto(ttl));
            assert_eq!(points(&placed), 4);
            let n = placed.messages.len();
            assert!(is_point(placed.messages[n - 1].content.last().unwrap()));
            assert!(is_point(placed.messages[n - 3].content.last().unwrap()));
            for api in [Api::Converse, Api::InvokeModel] {
                let diagnostics = validate_request(api, Some(MODEL), &placed);
                assert!(diagnostics.is_empty(), "{ttl:?} {api:?}: {diagnostics:?}");
            }
        }
    }

    #[test]
    fn short_prefixes_unknown_models_and_off_get_no_point() {
        let mut short = request(0, "Be brief.");
        short.tools = None;
        let placed = place_cache_points(&short, Some(MODEL), &auto(CacheTtl::FiveMinutes));
        // The system prompt and the one message hold a few tokens: under 1,024, no point.
        assert_eq!(points(&placed), 0);
        let long = "Rules. ".repeat(800);
        let unknown = place_cache_points(
            &request(3, &long),
            Some("meta.llama3-70b"),
            &auto(CacheTtl::FiveMinutes),
        );
        assert_eq!(points(&unknown), 0);
        let manual =
            place_cache_points(&request(3, &long), Some(MODEL), &auto(CacheTtl::FiveMinutes));
        let off = place_cache_points(&manual, Some(MODEL), &Caching::Off);
        assert_eq!(points(&off), 0);
        assert_eq!(place_cache_points(&manual, Some(MODEL), &Caching::Manual), manual);
    }

    #[test]
    fn no_point_follows_reasoning_and_nova_gets_none_in_its_tools() {
        let long = "Rules. ".repeat(800);
        let mut prefill = request(2, &long);
        // A final assistant message ending in thinking: no point at its end.
        prefill.messages.push(Message::new(
            Role::Assistant,
            vec![ContentBlock::Thinking(ThinkingBlock {
                text: "hmm".into(),
                signature: Some("s".into()),
                unmapped: Default::default(),
            })],
        ));
        let placed = place_cache_points(&prefill, Some(MODEL), &auto(CacheTtl::FiveMinutes));
        assert!(!placed.messages.last().unwrap().content.iter().any(is_point));
        let mut no_system = request(2, "");
        no_system.system = None;
        let nova = place_cache_points(
            &no_system,
            Some("amazon.nova-pro-v1:0"),
            &auto(CacheTtl::FiveMinutes),
        );
        assert!(!nova.tools.iter().flatten().any(|t| matches!(t, Tool::CachePoint(_))));
        let claude = place_cache_points(&no_system, Some(MODEL), &auto(CacheTtl::FiveMinutes));
        assert!(claude.tools.iter().flatten().any(|t| matches!(t, Tool::CachePoint(_))));
    }

    #[test]
    fn the_prefix_before_the_moving_points_is_the_same_from_one_step_to_the_next() {
        let long = "Rules. ".repeat(800);
        let caching = auto(CacheTtl::FiveMinutes);
        let earlier = place_cache_points(&request(4, &long), Some(MODEL), &caching);
        let later = place_cache_points(&request(5, &long), Some(MODEL), &caching);
        // The later request's point three from the end is where the earlier one's last was.
        let n = earlier.messages.len();
        assert_eq!(later.messages[n - 1], earlier.messages[n - 1]);
        let compared = crate::cache_diff::compare(&earlier, &later);
        assert!(compared.divergence.is_none(), "{compared:?}");
        // Its point three from the end reads what the earlier request's last point wrote.
        assert!(
            compared.points.iter().any(|p| p.read && p.place.starts_with("messages")),
            "{compared:?}"
        );
    }
}
