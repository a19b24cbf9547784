//! Why a prompt cache would miss: where two consecutive requests of a conversation stop
//! sharing their prefix, and what each cache point of the later one gets (a read of what the
//! earlier one wrote, or a new write).
//!
//! Bedrock (as Anthropic) builds the cached prefix from the tools, then the system prompt, then
//! the messages, in that order; a cache point caches everything before it, and a later request
//! reads it only when that whole prefix is unchanged. Changing the thinking setting or the tool
//! choice keeps the tools' and the system's cache but not the messages' (Anthropic's "what
//! invalidates the cache" table). Cache points themselves are not part of what is compared.

use verbatim_model::{ContentBlock, Request, SystemBlock, SystemPrompt, Tool};

/// Where a cache point sits: after how many prefix items, and its place in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    after: usize,
    place: String,
}

/// Why the later request's prefix differs from the earlier one's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The same tools in another order.
    ToolsReordered,
    /// A tool added, removed or changed.
    ToolsChanged,
    /// The system prompt changed.
    SystemChanged,
    /// The thinking setting changed: the messages' cache is invalidated.
    ThinkingChanged,
    /// The tool choice changed: the messages' cache is invalidated.
    ToolChoiceChanged,
    /// Messages were left out at the front (a sliding context window): every message moved.
    TrimmedAtTheFront {
        /// How many messages were left out.
        left_out: usize,
    },
    /// A message the earlier request held is not the same in the later one.
    MessageChanged,
}

impl Cause {
    /// What the cause means for the cache, in a sentence.
    pub fn explain(&self) -> String {
        match self {
            Cause::ToolsReordered => "the same tools in another order: everything after the first moved tool is written again; keep the tool list in one order".into(),
            Cause::ToolsChanged => "a tool was added, removed or changed: the whole prefix is written again; fix the tool list for the session".into(),
            Cause::SystemChanged => "the system prompt changed (a date or other value rendered into it?): the system and the messages are written again".into(),
            Cause::ThinkingChanged => "the thinking setting changed: the messages' cache is invalidated (tools and system stay cached)".into(),
            Cause::ToolChoiceChanged => "the tool choice changed: the messages' cache is invalidated (tools and system stay cached)".into(),
            Cause::TrimmedAtTheFront { left_out } => format!("{left_out} message(s) were left out at the front: every message moved, so the messages are written again; leave turns out in larger, rarer chunks"),
            Cause::MessageChanged => "an earlier message is not as it was sent before (edited, re-serialized or rebuilt): everything after it is written again".into(),
        }
    }
}

/// Where the two requests stop sharing their prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The place in the later request (`tools[2]`, `system[0]`, `messages[4]`).
    pub place: String,
    /// Why.
    pub cause: Cause,
}

/// What one cache point of the later request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointOutcome {
    /// Where the cache point is in the later request (`tools[3]`, `messages[5].content[2]`).
    pub place: String,
    /// True when the earlier request cached exactly this prefix and it is unchanged: a read.
    /// False: the prefix (or the part of it past an earlier, shorter cache point) is written
    /// again.
    pub read: bool,
}

/// Two consecutive requests compared for the prompt cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheComparison {
    /// Where the prefixes part, `None` when the earlier request's prefix continues unchanged.
    pub divergence: Option<Divergence>,
    /// Each cache point of the later request, in order.
    pub points: Vec<PointOutcome>,
}

/// The system prompt as blocks (a plain-text prompt is one block without a cache point).
fn system_blocks(request: &Request) -> Vec<SystemBlock> {
    match &request.system {
        Some(SystemPrompt::Blocks(blocks)) => blocks.clone(),
        Some(SystemPrompt::Text(text)) => {
            vec![SystemBlock::Text(verbatim_model::TextBlock::new(text.clone()))]
        }
        None => Vec::new(),
    }
}

/// The request's prefix as comparable items (cache points left out), where its system and
/// its messages start, and its cache points.
struct Prefix {
    items: Vec<Item>,
    system_start: usize,
    messages_start: usize,
    points: Vec<Point>,
}

/// One item of the cached prefix: a tool, a system block or a message, as JSON to compare.
#[derive(Debug, Clone, PartialEq)]
struct Item(serde_json::Value);

fn prefix(request: &Request) -> Prefix {
    let mut items = Vec::new();
    let mut points = Vec::new();
    for (k, tool) in request.tools.iter().flatten().enumerate() {
        match tool {
            Tool::CachePoint(_) => {
                points.push(Point { after: items.len(), place: format!("tools[{k}]") })
            }
            tool => items.push(item(tool)),
        }
    }
    let system_start = items.len();
    for (j, block) in system_blocks(request).iter().enumerate() {
        match block {
            SystemBlock::CachePoint(_) => {
                points.push(Point { after: items.len(), place: format!("system[{j}]") })
            }
            block => items.push(item(block)),
        }
    }
    let messages_start = items.len();
    for (i, message) in request.messages.iter().enumerate() {
        let mut kept = message.clone();
        kept.content.retain(|b| !matches!(b, ContentBlock::CachePoint(_)));
        items.push(item(&kept));
        for (j, block) in message.content.iter().enumerate() {
            if matches!(block, ContentBlock::CachePoint(_)) {
                points.push(Point {
                    after: items.len(),
                    place: format!("messages[{i}].content[{j}]"),
                });
            }
        }
    }
    Prefix { items, system_start, messages_start, points }
}

/// A model value as an item to compare.
fn item(value: &impl serde::Serialize) -> Item {
    Item(serde_json::to_value(value).expect("model values serialize"))
}

/// Compares the request sent before (`earlier`) with the one sent next (`later`).
pub fn compare(earlier: &Request, later: &Request) -> CacheComparison {
    let (before, after) = (prefix(earlier), prefix(later));
    // How many items the later prefix shares with the earlier one, from the start; a changed
    // thinking setting or tool choice shares nothing past the system.
    let mut shared = before.items.iter().zip(&after.items).take_while(|(a, b)| a == b).count();
    let settings = earlier.thinking != later.thinking || earlier.tool_choice != later.tool_choice;
    if settings {
        shared = shared.min(after.messages_start);
    }
    let whole = shared == before.items.len() && !settings;
    let divergence = (!whole).then(|| divergence(earlier, later, &before, &after));
    let points = after
        .points
        .into_iter()
        .map(|p| PointOutcome {
            read: p.after <= shared && before.points.iter().any(|e| e.after == p.after),
            place: p.place,
        })
        .collect();
    CacheComparison { divergence, points }
}

/// The first of `a` and `b` that differ, or the length of the shorter when one continues the
/// other.
fn first_difference(a: &[Item], b: &[Item]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn divergence(earlier: &Request, later: &Request, before: &Prefix, after: &Prefix) -> Divergence {
    let (old_tools, new_tools) =
        (&before.items[..before.system_start], &after.items[..after.system_start]);
    if old_tools != new_tools {
        let sorted = |items: &[Item]| {
            let mut texts: Vec<String> = items.iter().map(|i| i.0.to_string()).collect();
            texts.sort();
            texts
        };
        let cause = if sorted(old_tools) == sorted(new_tools) {
            Cause::ToolsReordered
        } else {
            Cause::ToolsChanged
        };
        return Divergence {
            place: format!("tools[{}]", first_difference(old_tools, new_tools)),
            cause,
        };
    }
    let (old_system, new_system) = (
        &before.items[before.system_start..before.messages_start],
        &after.items[after.system_start..after.messages_start],
    );
    if old_system != new_system {
        let place = format!("system[{}]", first_difference(old_system, new_system));
        return Divergence { place, cause: Cause::SystemChanged };
    }
    if earlier.thinking != later.thinking {
        return Divergence { place: "thinking".to_owned(), cause: Cause::ThinkingChanged };
    }
    if earlier.tool_choice != later.tool_choice {
        return Divergence { place: "tool_choice".to_owned(), cause: Cause::ToolChoiceChanged };
    }
    let (old, new) = (&before.items[before.messages_start..], &after.items[after.messages_start..]);
    let i = first_difference(old, new);
    let left_out = (1..old.len()).find(|&d| {
        let rest = &old[d..];
        !new.is_empty() && new.len() >= rest.len() && new[..rest.len()] == *rest
    });
    match left_out {
        Some(d) if i == 0 => Divergence {
            place: "messages[0]".to_owned(),
            cause: Cause::TrimmedAtTheFront { left_out: d },
        },
        _ => Divergence { place: format!("messages[{i}]"), cause: Cause::MessageChanged },
    }
}

#[cfg(test)]
mod tests {
    use verbatim_model::{CachePoint, Message, ThinkingConfig, ThinkingMode, ToolSpec};

    use super::*;

    fn tool(name: &str) -> Tool {
        Tool::Spec(ToolSpec {
            name: name.into(),
            description: Some(format!("{name} tool")),
            input_schema: serde_json::json!({"type": "object"}),
            strict: None,
            unmapped: Default::default(),
        })
    }

    fn point() -> CachePoint {
        CachePoint { ttl: None }
    }

    /// A request as an agent loop sends it: tools and system cached, then `turns` messages
    /// with a moving cache point after the last.
    fn request(system: &str, tools: &[&str], turns: usize) -> Request {
        let mut tools: Vec<Tool> = tools.iter().map(|t| tool(t)).collect();
        tools.push(Tool::CachePoint(point()));
        let mut messages: Vec<Message> = (0..turns)
            .map(|n| {
                let text = format!("turn {n}");
                if n % 2 == 0 { Message::user_text(&text) } else { Message::assistant_text(&text) }
            })
            .collect();
        if let Some(last) = messages.last_mut() {
            last.content.push(ContentBlock::CachePoint(point()));
        }
        Request {
            messages,
            system: Some(SystemPrompt::Blocks(vec![
                SystemBlock::Text(verbatim_model::TextBlock::new(system)),
                SystemBlock::CachePoint(point()),
            ])),
            tools: Some(tools),
            ..Request::default()
        }
    }

    #[test]
    fn a_conversation_that_grows_at_the_end_reads_what_it_cached() {
        let first = request("Be brief.", &["a", "b"], 3);
        let next = request("Be brief.", &["a", "b"], 5);
        let compared = compare(&first, &next);
        assert_eq!(compared.divergence, None);
        let reads: Vec<(&str, bool)> =
            compared.points.iter().map(|p| (p.place.as_str(), p.read)).collect();
        // Tools and system read; the moving point after the last message is a new write.
        assert_eq!(
            reads,
            [("tools[2]", true), ("system[1]", true), ("messages[4].content[1]", false)]
        );
    }

    #[test]
    fn each_cause_of_a_miss_is_named_where_it_happens() {
        let first = request("Today is Monday.", &["a", "b"], 5);
        let reordered = request("Today is Monday.", &["b", "a"], 7);
        let found = compare(&first, &reordered).divergence.unwrap();
        assert_eq!((found.place.as_str(), &found.cause), ("tools[0]", &Cause::ToolsReordered));
        assert!(compare(&first, &reordered).points.iter().all(|p| !p.read));

        let other_tool = request("Today is Monday.", &["a", "c"], 7);
        assert_eq!(compare(&first, &other_tool).divergence.unwrap().cause, Cause::ToolsChanged);

        let dated = request("Today is Tuesday.", &["a", "b"], 7);
        let found = compare(&first, &dated);
        assert_eq!(found.divergence.as_ref().unwrap().cause, Cause::SystemChanged);
        assert_eq!(found.divergence.unwrap().place, "system[0]");
        assert_eq!(found.points[0], PointOutcome { place: "tools[2]".into(), read: true });
        assert!(!found.points[1].read);

        // A sliding window: the first two messages left out.
        let mut slid = request("Today is Monday.", &["a", "b"], 7);
        slid.messages.drain(..2);
        let found = compare(&first, &slid).divergence.unwrap();
        assert_eq!(found.cause, Cause::TrimmedAtTheFront { left_out: 2 });

        let mut edited = request("Today is Monday.", &["a", "b"], 7);
        edited.messages[1] = Message::assistant_text("rewritten");
        let found = compare(&first, &edited).divergence.unwrap();
        assert_eq!((found.place.as_str(), &found.cause), ("messages[1]", &Cause::MessageChanged));

        let mut thinking = request("Today is Monday.", &["a", "b"], 7);
        thinking.thinking = Some(ThinkingConfig::new(ThinkingMode::Adaptive { effort: None }));
        let found = compare(&first, &thinking);
        assert_eq!(found.divergence.unwrap().cause, Cause::ThinkingChanged);
        // Tools and system stay cached.
        assert!(found.points[0].read && found.points[1].read);
    }
}
