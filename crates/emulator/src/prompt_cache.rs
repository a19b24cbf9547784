//! The prompt cache: what a request's cache points write, what they read, and the usage that
//! follows (`cacheReadInputTokens` / `cacheWriteInputTokens` on Converse,
//! `cache_read_input_tokens` / `cache_creation_input_tokens` on Anthropic bodies).
//!
//! As the service does (bedrock-rules R1.9; Anthropic's prompt-caching page for what the
//! rules file does not say):
//!
//! - an entry is keyed by the digest of the prefix through a cache point (model, tools,
//!   system, the thinking setting and tool choice before the messages, then the messages:
//!   [`crate::tokens`]), and lives for the point's TTL (`5m` unless `1h`) from its last use;
//! - a request reads the longest live entry found at one of its cache points or at any of the
//!   [`LOOKBACK`] block boundaries before a point (Anthropic's documented lookback, assumed on
//!   Bedrock: what lets one point moved to the end of each request read what the last
//!   request wrote);
//! - every point past what was read whose prefix holds at least the model's minimum
//!   ([`minimum_tokens`]) writes an entry; a shorter one writes nothing, silently (R1.9:
//!   "believed silent");
//! - usage: read = the prefix read, write = from there to the last point written, input = the
//!   rest, so input + read + write is always the request's whole count ([`crate::tokens`]).
//!
//! Time comes from a [`Clock`] the emulator is given ([`crate::EmulatorConfig::clock`]), so a
//! test can let an entry expire without waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::tokens::Prompt;

/// How many block boundaries before a cache point are looked at for an earlier entry.
pub const LOOKBACK: usize = 20;

/// The emulator's clock: how much time has passed since some fixed start.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time since the clock's start.
    fn now(&self) -> Duration;
}

/// Real time, from when it was made.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// The fewest tokens a cache point's prefix must hold for the point to write, by model
/// (bedrock-rules R1.9): Claude 3.5 Haiku 2,048; other Claude Haiku models 4,096 (the Strands
/// documentation's figure); other Claude models 1,024 (3.7 Sonnet, Sonnet 4 and Opus 4 are
/// documented; later ones are taken to be the same); Nova 1,000; the emulator's own
/// `emulator.NAME` models behave like Claude. `None`: the model caches nothing.
pub(crate) fn minimum_tokens(model_key: &str) -> Option<u64> {
    let key = model_key.to_ascii_lowercase();
    if key.contains("claude-3-5-haiku") {
        Some(2048)
    } else if key.contains("claude") && key.contains("haiku") {
        Some(4096)
    } else if key.contains("claude") || key.starts_with("emulator.") {
        Some(1024)
    } else if key.contains("nova") {
        Some(1000)
    } else {
        None
    }
}

/// What a request's cache points did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheUsage {
    /// Input tokens neither read nor written.
    pub(crate) input: u64,
    /// Tokens read from the cache.
    pub(crate) read: u64,
    /// Tokens written to the cache.
    pub(crate) write: u64,
}

struct Entry {
    expires: Duration,
    ttl: Duration,
}

/// The cache's entries, shared by every request the emulator serves.
#[derive(Default)]
pub(crate) struct PromptCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl PromptCache {
    /// Reads and writes what `prompt`'s cache points say at time `now`, for a model whose
    /// minimum is `minimum` (`None`: nothing is cached).
    pub(crate) fn serve(&self, prompt: &Prompt, minimum: Option<u64>, now: Duration) -> CacheUsage {
        let total = prompt.total();
        let Some(minimum) = minimum.filter(|_| !prompt.points.is_empty()) else {
            return CacheUsage { input: total, read: 0, write: 0 };
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, entry| entry.expires > now);
        // The longest live prefix at a point or within the lookback before one.
        let hit = prompt
            .points
            .iter()
            .filter_map(|point| {
                (point.after.saturating_sub(LOOKBACK - 1)..=point.after)
                    .rev()
                    .find(|&i| entries.contains_key(&prompt.items[i].digest))
            })
            .max();
        let read = hit.map_or(0, |i| prompt.items[i].through);
        if let Some(i) = hit
            && let Some(entry) = entries.get_mut(&prompt.items[i].digest)
        {
            entry.expires = now + entry.ttl;
        }
        let mut written_through = read;
        for point in &prompt.points {
            let item = &prompt.items[point.after];
            if hit.is_some_and(|i| point.after <= i) || item.through < minimum {
                continue;
            }
            let ttl = Duration::from_secs(point.ttl_seconds);
            entries.insert(item.digest, Entry { expires: now + ttl, ttl });
            written_through = written_through.max(item.through);
        }
        CacheUsage { input: total - written_through, read, write: written_through - read }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::conversation::Dialect;
    use crate::tokens;

    /// A Converse body: a long system prompt with a point, then `turns` user/assistant pairs
    /// and a final user message with a point at its end.
    fn body(system: &str, turns: usize) -> Value {
        let mut messages = Vec::new();
        for n in 0..turns {
            messages.push(json!({"role": "user", "content": [{"text": format!("question {n}")}]}));
            messages
                .push(json!({"role": "assistant", "content": [{"text": format!("answer {n}")}]}));
        }
        messages.push(json!({"role": "user", "content": [
            {"text": format!("question {turns}")}, {"cachePoint": {"type": "default"}}]}));
        json!({
            "system": [{"text": system}, {"cachePoint": {"type": "default"}}],
            "messages": messages,
        })
    }

    fn serve(cache: &PromptCache, body: &Value, now: Duration) -> (CacheUsage, u64) {
        let prompt = tokens::read(Dialect::Converse, body, "anthropic.claude-sonnet-4");
        (cache.serve(&prompt, Some(1024), now), prompt.total())
    }

    #[test]
    fn a_prefix_written_once_is_read_while_it_lives() {
        let cache = PromptCache::default();
        let system = "x".repeat(8000);
        let (first, total) = serve(&cache, &body(&system, 0), Duration::ZERO);
        assert_eq!(first.read, 0);
        assert_eq!(first.input + first.write, total);
        assert!(first.write > 2000, "{first:?}");
        // The same request again: all read.
        let (again, total) = serve(&cache, &body(&system, 0), Duration::from_secs(60));
        assert_eq!((again.read, again.write, again.input), (total, 0, 0));
        // One more turn: the old end is within the lookback; the new part is written.
        let (next, total) = serve(&cache, &body(&system, 1), Duration::from_secs(120));
        assert_eq!(next.read, first.write);
        assert_eq!(next.read + next.write + next.input, total);
        assert!(next.write > 0);
        // Past the TTL from the last use, everything is written again.
        let (late, _) = serve(&cache, &body(&system, 1), Duration::from_secs(120 + 301));
        assert_eq!(late.read, 0);
        // A changed system prompt reads nothing.
        let (other, _) = serve(&cache, &body(&"y".repeat(8000), 1), Duration::from_secs(120 + 302));
        assert_eq!(other.read, 0);
    }

    #[test]
    fn a_prefix_under_the_minimum_is_not_written() {
        let cache = PromptCache::default();
        let (usage, total) = serve(&cache, &body("short", 0), Duration::ZERO);
        assert_eq!((usage.read, usage.write, usage.input), (0, 0, total));
        assert_eq!(minimum_tokens("anthropic.claude-3-5-haiku-20241022-v1:0"), Some(2048));
        assert_eq!(minimum_tokens("anthropic.claude-haiku-4-5-20251001-v1:0"), Some(4096));
        assert_eq!(minimum_tokens("anthropic.claude-sonnet-4-20250514-v1:0"), Some(1024));
        assert_eq!(minimum_tokens("amazon.nova-pro-v1:0"), Some(1000));
        assert_eq!(minimum_tokens("meta.llama3-70b"), None);
    }

    #[test]
    fn an_hour_point_outlives_a_five_minute_one() {
        let cache = PromptCache::default();
        let mut body = body(&"x".repeat(8000), 0);
        body["system"][1]["cachePoint"]["ttl"] = json!("1h");
        serve(&cache, &body, Duration::ZERO);
        let (later, _) = serve(&cache, &body, Duration::from_secs(1800));
        assert!(later.read > 2000, "the system's hour entry is read: {later:?}");
        assert!(later.write > 0, "the message point's five-minute entry had expired");
    }
}
