//! The requests of one conversation, one after another: [`Assembler`] assembles each next
//! request from the stored history and reuses what the last one shares with it.
//!
//! A conversation's next request repeats every message of the one before and adds one or two.
//! Assembling, writing and hashing it afresh would cost time in proportion to the whole
//! history on every turn; the assembler keeps, from the last request sent, its messages (the
//! next request is assembled over them: moved, not copied again, while they equal the
//! history's), its body's text (the next body copies the text of the messages it shares, the
//! same bytes encoding them would give) and the state of its prefix hash (only the new
//! messages are hashed). What it gives is exactly what [`assemble`](super::assemble) and
//! [`prefix_hash`](super::prefix_hash) give for the same history and configuration; the reuse
//! is invisible but for the time.
//!
//! Reuse needs the messages of both requests to come from one source: both are assembled
//! from the same stored log, which is never rewritten, so equal messages have equal text
//! (two JSON objects holding the same members in another order are equal values but not
//! equal text; see the `body` module).

use bytes::Bytes;
use verbatim_model::{HistoryMessage, Message, Request, SystemPrompt, Tool};

use super::body::Body;
use super::prefix::PrefixHasher;
use super::{Assembly, Policy, TurnConfig, assemble_request, assemble_request_from};

/// Assembles the requests of one conversation, each reusing the last one's work (see the
/// module docs). One per conversation; a fresh one (or [`Assembler::default`]) knows no
/// earlier request and assembles the first from scratch.
///
/// The flow of a turn: [`Assembler::next`] (or [`Assembler::view`] for a shortened request),
/// send the [`Prepared::body`], then [`Assembler::sent`], which gives the prefix hash the reply
/// is produced after and keeps the request for the next one. A prepared request that is not
/// sent is dropped: the next is then assembled with less to reuse, never wrongly.
#[derive(Debug, Default)]
pub struct Assembler {
    last: Option<Last>,
}

/// A request assembled by an [`Assembler`], and its body when no error remains.
#[derive(Debug)]
pub struct Prepared {
    assembly: Assembly,
    body: Option<Body>,
    /// How many messages of the last request this one holds as its first, moved into it
    /// unchanged (not compared again when its prefix hash is carried on).
    moved: Option<usize>,
    /// Whether the next request may copy text from this body: it holds the whole history.
    whole: bool,
}

impl Prepared {
    /// The assembly: the request (after repair), the fixes applied and the diagnostics that
    /// remain. Its `body` is `None`: the body is [`Prepared::body`], written as text.
    pub fn assembly(&self) -> &Assembly {
        &self.assembly
    }

    /// The body to send, when no error remains (a cheap clone: the buffer is shared). When
    /// the request cannot be encoded, the encoding error is the assembly's first diagnostic.
    pub fn body(&self) -> Option<Bytes> {
        self.body.as_ref().map(Body::bytes)
    }

    /// The body's length in bytes, when there is a body.
    pub fn body_len(&self) -> Option<usize> {
        self.body.as_ref().map(Body::len)
    }

    /// The assembly, the prepared request given up.
    pub fn into_assembly(self) -> Assembly {
        self.assembly
    }

    /// How many leading messages of the body were copied from the last request's body.
    pub fn reused(&self) -> usize {
        self.body.as_ref().map_or(0, Body::reused)
    }
}

impl Assembler {
    /// An assembler that knows no earlier request.
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Assembles the next request over the whole history (see [`assemble`](super::assemble)),
    /// and writes its body when no error remains.
    ///
    /// With no recorded fix to replay, the last request's messages are the history's first
    /// messages: the request is assembled over them, and unless a fix changes the history
    /// their text is copied from the last body without comparing them a second time.
    /// Otherwise the history is copied, and the body compared with the last one's messages.
    pub fn next(
        &mut self,
        history: &[HistoryMessage],
        turn: &TurnConfig,
        policy: Policy,
    ) -> Prepared {
        let replays = turn.recorded_fixes.iter().any(|f| f.action.changes_history());
        let over_last = self
            .last
            .as_mut()
            .filter(|l| !replays && l.body.is_some() && l.messages.len() == l.count && l.count > 0);
        let (assembly, body, moved) = match over_last {
            Some(last) => {
                let earlier = std::mem::take(&mut last.messages);
                let (mut assembly, same) = assemble_request_from(history, earlier, turn, policy);
                let unchanged = !assembly.fixes.iter().any(|f| f.action.changes_history());
                let body = match &last.body {
                    Some(previous) if unchanged => assembly.write_body_after(turn, previous, same),
                    _ => assembly.write_body(turn, None),
                };
                (assembly, body, unchanged.then_some(same))
            }
            None => {
                let mut assembly = assemble_request(history, turn, policy);
                let previous =
                    self.last.as_ref().and_then(|l| l.body.as_ref().map(|b| (b, &l.messages[..])));
                let body = assembly.write_body(turn, previous);
                (assembly, body, None)
            }
        };
        Prepared { assembly, body, moved, whole: true }
    }

    /// Assembles a request over part of a history (a view: old turns left out, say), afresh.
    /// Sent, it is the last request for the prefix hash, but the next body copies no text
    /// from it.
    pub fn view(history: &[HistoryMessage], turn: &TurnConfig, policy: Policy) -> Prepared {
        let mut assembly = assemble_request(history, turn, policy);
        let body = assembly.write_body(turn, None);
        Prepared { assembly, body, moved: None, whole: false }
    }

    /// Takes `prepared` as sent and keeps it for the next request. Returns the hash of its
    /// prefix before the reply: its system prompt, tools and every message, as
    /// [`prefix_hash`](super::prefix_hash)`(request, request.messages.len())` gives it (what
    /// the reply's thinking is bound to), hashing only the messages the last request did
    /// not hold when this one extends it.
    pub fn sent(&mut self, prepared: Prepared) -> String {
        let Prepared { assembly, body, moved, whole } = prepared;
        let body = body.filter(|_| whole);
        let (hash, last) = Last::carry_on(self.last.take(), assembly.request, body, moved);
        self.last = Some(last);
        hash
    }
}

/// The last request sent: what the next one may reuse.
struct Last {
    /// The prefix hashing state after the request's messages.
    hasher: PrefixHasher,
    system: Option<SystemPrompt>,
    tools: Option<Vec<Tool>>,
    /// The request's messages, until the next request is assembled over them (they move
    /// into it: see [`Assembler::next`]).
    messages: Vec<Message>,
    /// How many messages the request had.
    count: usize,
    /// The request's body, when it was written from these messages and holds the whole
    /// history.
    body: Option<Body>,
}

impl std::fmt::Debug for Last {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Last")
            .field("count", &self.count)
            .field("messages_kept", &self.messages.len())
            .field("body_len", &self.body.as_ref().map(Body::len))
            .finish_non_exhaustive()
    }
}

impl Last {
    /// The hash of the prefix before message `request.messages.len()`, hashing only the
    /// messages `last` did not take in when `request` extends `last`'s request: the same
    /// system prompt and tools, the same messages first. Equal values have the same
    /// canonical form (key order included: both requests are assembled from the same
    /// messages the same way), so the hash is the one [`super::prefix_hash`] gives. `moved`
    /// is how many of `last`'s messages `request` holds as its first, when they were moved
    /// into it unchanged (they are not compared again).
    fn carry_on(
        last: Option<Last>,
        request: Request,
        body: Option<Body>,
        moved: Option<usize>,
    ) -> (String, Last) {
        let extends = |last: &Last| {
            let n = last.count;
            last.system == request.system
                && last.tools == request.tools
                && match moved {
                    Some(moved) => moved == n && request.messages.len() >= n,
                    None => {
                        last.messages.len() == n
                            && request.messages.get(..n) == Some(&last.messages[..])
                    }
                }
        };
        let mut hasher = match last {
            Some(last) if extends(&last) => last.hasher,
            _ => PrefixHasher::new(&request),
        };
        for message in &request.messages[hasher.messages()..] {
            hasher.push(message);
        }
        let Request { system, tools, messages, .. } = request;
        let count = messages.len();
        (hasher.hash(), Last { hasher, system, tools, messages, count, body })
    }
}

#[cfg(test)]
mod tests {
    use verbatim_model::{ContentBlock, Role};

    use super::*;
    use crate::assemble::prefix_hash;

    #[test]
    fn a_prefix_hash_carried_on_is_the_hash_from_scratch() {
        let messages: Vec<Message> = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
                Message::new(role, vec![ContentBlock::text(*text)])
            })
            .collect();
        let request = |n: usize| Request { messages: messages[..n].to_vec(), ..Request::default() };
        let scratch = |request: &Request| prefix_hash(request, request.messages.len());
        let (hash, first) = Last::carry_on(None, request(3), None, None);
        assert_eq!(hash, scratch(&request(3)));
        // A request that extends the last one: only its new messages are hashed.
        let (hash, second) = Last::carry_on(Some(first), request(5), None, None);
        assert_eq!(hash, scratch(&request(5)));
        assert_eq!(second.messages, messages);
        // One that does not (an earlier message changed, another system prompt, fewer
        // messages) is hashed from scratch.
        let mut edited = request(5);
        edited.messages[1] = Message::assistant_text("B");
        let (hash, third) = Last::carry_on(Some(second), edited.clone(), None, None);
        assert_eq!(hash, scratch(&edited));
        let mut system = edited.clone();
        system.system = Some(SystemPrompt::Text("Be brief.".into()));
        let (hash, fourth) = Last::carry_on(Some(third), system.clone(), None, None);
        assert_eq!(hash, scratch(&system));
        let (hash, _) = Last::carry_on(Some(fourth), request(2), None, None);
        assert_eq!(hash, scratch(&request(2)));

        // Messages moved in from the last request are taken as they are, not compared: all
        // of them carry the state on (here wrongly, to show it), fewer do not.
        let edited = |n: usize| {
            let mut edited = request(n);
            edited.messages[1] = Message::assistant_text("B");
            edited
        };
        let (_, last) = Last::carry_on(None, request(3), None, None);
        let (hash, _) = Last::carry_on(Some(last), edited(5), None, Some(3));
        assert_ne!(hash, scratch(&edited(5)), "three moved: the last state, carried on");
        let (_, last) = Last::carry_on(None, request(3), None, None);
        let (hash, _) = Last::carry_on(Some(last), edited(5), None, Some(2));
        assert_eq!(hash, scratch(&edited(5)));
        // Once its messages were taken, a prefix is compared with nothing: from scratch.
        let (_, mut last) = Last::carry_on(None, request(3), None, None);
        last.messages.clear();
        let (hash, _) = Last::carry_on(Some(last), edited(5), None, None);
        assert_eq!(hash, scratch(&edited(5)));
    }
}
