//! Prefix hashes: what a thinking block is bound to on models with preserved thinking.

use sha2::{Digest, Sha256};
use verbatim_model::{Message, Request};

/// The hash of the prefix of `request` that precedes message `upto`: its system prompt, its
/// tools and its first `upto` messages, in their canonical (stored) form. An assistant
/// message records the hash of the prefix it was produced after
/// ([`Provenance::prefix_hash`](verbatim_model::Provenance::prefix_hash)); on models that
/// bind thinking to the prefix, thinking may only be sent back while that hash still matches.
pub fn prefix_hash(request: &Request, upto: usize) -> String {
    let mut hasher = PrefixHasher::new(request);
    for message in request.messages.iter().take(upto) {
        hasher.push(message);
    }
    hasher.hash()
}

/// The prefix hashes before every message: element `i` is `prefix_hash(request, i)`.
pub(crate) fn prefix_hashes(request: &Request) -> Vec<String> {
    let mut hasher = PrefixHasher::new(request);
    let mut out = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        out.push(hasher.hash());
        hasher.push(message);
    }
    out
}

/// [`prefix_hash`] one message at a time, so that a caller whose next request extends the
/// last one (same system prompt and tools, the same messages first) can carry on from a
/// clone of the last state and hash only the new messages. After `new(request)` and a push
/// of `request.messages[..n]`, [`PrefixHasher::hash`] is `prefix_hash(request, n)`.
#[derive(Clone)]
pub(crate) struct PrefixHasher {
    hasher: Sha256,
    messages: usize,
}

impl PrefixHasher {
    /// A hasher that has taken in `request`'s system prompt and tools, and no message.
    pub(crate) fn new(request: &Request) -> PrefixHasher {
        let mut hasher = Sha256::new();
        feed(&mut hasher, &request.system);
        feed(&mut hasher, &request.tools);
        PrefixHasher { hasher, messages: 0 }
    }

    /// Takes in the next message.
    pub(crate) fn push(&mut self, message: &Message) {
        feed(&mut self.hasher, message);
        self.messages += 1;
    }

    /// How many messages it has taken in.
    pub(crate) fn messages(&self) -> usize {
        self.messages
    }

    /// The hash of the prefix taken in so far.
    pub(crate) fn hash(&self) -> String {
        hex(self.hasher.clone().finalize().as_slice())
    }
}

impl std::fmt::Debug for PrefixHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixHasher").field("messages", &self.messages).finish_non_exhaustive()
    }
}

fn feed<T: serde::Serialize>(hasher: &mut Sha256, value: &T) {
    let bytes = serde_json::to_vec(value).expect("model types serialize");
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(&bytes);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short digest of some messages (128 bits of SHA-256 over their canonical form), used to
/// check that a recorded fix is replayed on the messages it was decided on.
pub(crate) fn digest(messages: &[&Message]) -> String {
    let mut hasher = Sha256::new();
    for message in messages {
        feed(&mut hasher, message);
    }
    hex(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use verbatim_model::{
        ContentBlock, Role, SystemPrompt, ThinkingBlock, Tool, ToolSpec, ToolUse, Unmapped,
    };

    use super::*;

    /// A request with a system prompt, a tool, thinking and a tool call whose input keys are
    /// out of alphabetical order.
    fn request() -> Request {
        let call = ToolUse {
            id: "tooluse_1".into(),
            name: "get_weather".into(),
            input: json!({"z": 1, "city": "Paris", "a": [1.5, null]}),
            kind: None,
            unmapped: Unmapped::default(),
        };
        let thinking = ThinkingBlock {
            text: "Let me think…\r\n".into(),
            signature: Some("EqQBCkgIARABGAIiQ==".into()),
            unmapped: Unmapped::default(),
        };
        Request {
            system: Some(SystemPrompt::Text("Be brief.".into())),
            tools: Some(vec![Tool::Spec(ToolSpec {
                name: "get_weather".into(),
                description: Some("The weather".into()),
                input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                strict: None,
                unmapped: Unmapped::default(),
            })]),
            messages: vec![
                Message::user_text("Weather in Paris?"),
                Message::new(
                    Role::Assistant,
                    vec![ContentBlock::Thinking(thinking), ContentBlock::ToolUse(call)],
                ),
                Message::user_text("And tomorrow?"),
            ],
            ..Request::default()
        }
    }

    #[test]
    fn prefix_hashes_keep_their_values() {
        let request = request();
        // The values this algorithm gave before it could be run one message at a time:
        // provenance stored since must stay comparable.
        let expected = [
            "6e5f49c555e1692e6d9542cc89096ee120d303e72f03df67d4775f42759d9dc5",
            "7cd7ad33ca04feaa26879ec90b62eff78d9d7deb7cd5c57391c792abbcdbe332",
            "080e259ae038cf0fdf074bb95713bef17cdb9e55961cd8a1246ef2e98cde816f",
            "faffcacd731f11349d57c09825fa58afae54e24760cee9d569e9acf5ddfdaacb",
        ];
        let hashes: Vec<String> = (0..=3).map(|i| prefix_hash(&request, i)).collect();
        assert_eq!(hashes, expected);
        assert_eq!(prefix_hashes(&request), expected[..3]);
    }

    #[test]
    fn a_hasher_carried_on_from_a_shorter_request_gives_the_longer_ones_hash() {
        let long = request();
        let mut short = long.clone();
        short.messages.truncate(1);
        let mut hasher = PrefixHasher::new(&short);
        hasher.push(&short.messages[0]);
        assert_eq!(hasher.hash(), prefix_hash(&short, 1));
        let mut carried = hasher.clone();
        for message in &long.messages[carried.messages()..] {
            carried.push(message);
        }
        assert_eq!(carried.messages(), 3);
        assert_eq!(carried.hash(), prefix_hash(&long, 3));
        // The state it was cloned from is unchanged.
        assert_eq!(hasher.hash(), prefix_hash(&long, 1));
    }
}
