//! Prefix hashes: what a thinking block is bound to on models with preserved thinking.

use sha2::{Digest, Sha256};
use verbatim_model::{Message, Request};

/// The hash of the prefix of `request` that precedes message `upto`: its system prompt, its
/// tools and its first `upto` messages, in their canonical (stored) form. An assistant
/// message records the hash of the prefix it was produced after
/// ([`Provenance::prefix_hash`](verbatim_model::Provenance::prefix_hash)); on models that
/// bind thinking to the prefix, thinking may only be sent back while that hash still matches.
pub fn prefix_hash(request: &Request, upto: usize) -> String {
    let mut hasher = start(request);
    for message in request.messages.iter().take(upto) {
        feed(&mut hasher, message);
    }
    hex(hasher.finalize().as_slice())
}

/// The prefix hashes before every message: element `i` is `prefix_hash(request, i)`.
pub(crate) fn prefix_hashes(request: &Request) -> Vec<String> {
    let mut hasher = start(request);
    let mut out = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        out.push(hex(hasher.clone().finalize().as_slice()));
        feed(&mut hasher, message);
    }
    out
}

fn start(request: &Request) -> Sha256 {
    let mut hasher = Sha256::new();
    feed(&mut hasher, &request.system);
    feed(&mut hasher, &request.tools);
    hasher
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
