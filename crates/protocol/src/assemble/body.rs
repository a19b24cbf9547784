//! Request bodies written out as text, reusing the text of the messages an earlier body shares
//! (for [`super::Assembler`]).
//!
//! A conversation's next request repeats every message of the one before and adds one or
//! two. [`Body::write`] gives the same bytes as encoding the request and writing the JSON value
//! out ([`super::encode`], then `to_string`), but copies the text of each leading
//! message equal to the earlier body's message at the same place, instead of encoding it again.
//! A message's encoding depends on that message alone, so equal messages have equal text, with
//! one caveat: equality is the model's `PartialEq`, under which two JSON objects holding the
//! same members in another order (or zeros of another sign) are equal, while their text is
//! not. Pass the messages the earlier body was written from as they were, and messages that
//! come from the same source (as the engine does: both requests are assembled from one stored
//! log, which is never rewritten).

use std::ops::Range;

use bytes::Bytes;
use serde_json::Value;
use verbatim_model::{Api, Message, Request};

use super::caching::Plan;
use crate::{EncodeError, anthropic, converse};

/// A request body as sent, and where each message's JSON lies in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    api: Api,
    text: Bytes,
    /// The byte range of each message in `text`.
    messages: Vec<Range<usize>>,
    reused: usize,
    /// How many leading messages are written as the request holds them, no cache point
    /// planned in them or left out of them: only those may be copied into a later body.
    plain: usize,
}

impl Body {
    /// Writes the body of `request` for `api`. When `previous` is given (an earlier body and
    /// the messages it was written from), the text of every leading message of `request`
    /// equal to the message at the same place there is copied from it.
    #[cfg(test)]
    pub(crate) fn write(
        api: Api,
        request: &Request,
        previous: Option<(&Body, &[Message])>,
    ) -> Result<Body, EncodeError> {
        Body::write_planned(api, request, &Plan::default(), previous)
    }

    /// [`Body::write`] with the cache points `plan` places (see [`Plan`]).
    pub(crate) fn write_planned(
        api: Api,
        request: &Request,
        plan: &Plan,
        previous: Option<(&Body, &[Message])>,
    ) -> Result<Body, EncodeError> {
        match previous {
            Some((body, messages)) if body.messages.len() == messages.len() => {
                let same = request.messages.iter().zip(messages).take_while(|(a, b)| a == b);
                Body::write_after_planned(api, request, plan, body, same.count())
            }
            _ => Body::write_reusing(api, request, plan, None, 0),
        }
    }

    /// [`Body::write`] for a request whose first `same` messages are known to be the first
    /// `same` of those `previous` was written from (moved from that request, say, as
    /// [`super::assemble_request_from`] does): their text is copied without
    /// comparing them. Messages that are not would be written as the earlier ones.
    #[cfg(test)]
    pub(crate) fn write_after(
        api: Api,
        request: &Request,
        previous: &Body,
        same: usize,
    ) -> Result<Body, EncodeError> {
        Body::write_after_planned(api, request, &Plan::default(), previous, same)
    }

    /// [`Body::write_after`] with the cache points `plan` places: the messages it changes,
    /// here or in `previous`, are written afresh.
    pub(crate) fn write_after_planned(
        api: Api,
        request: &Request,
        plan: &Plan,
        previous: &Body,
        same: usize,
    ) -> Result<Body, EncodeError> {
        let reused = if previous.api == api {
            same.min(previous.messages.len())
                .min(request.messages.len())
                .min(previous.plain)
                .min(plan.first_changed(request))
        } else {
            0
        };
        Body::write_reusing(api, request, plan, Some(previous), reused)
    }

    /// Writes the body, copying the text of the first `reused` messages from `previous`.
    fn write_reusing(
        api: Api,
        request: &Request,
        plan: &Plan,
        previous: Option<&Body>,
        reused: usize,
    ) -> Result<Body, EncodeError> {
        // Everything but the messages, encoded as usual, in the usual key order.
        let shell = Request {
            messages: Vec::new(),
            system: plan.system(&request.system).into_owned(),
            tools: plan.tools(&request.tools).into_owned(),
            tool_choice: request.tool_choice.clone(),
            inference: request.inference.clone(),
            top_k: request.top_k,
            thinking: request.thinking.clone(),
            beta: request.beta.clone(),
            model_fields: request.model_fields.clone(),
            unmapped: request.unmapped.clone(),
        };
        // On an error, the error encoding the whole request gives (the dialects encode the
        // parts in different orders, so the first error found may differ).
        let whole_error = |error| match super::encode(api, &plan.apply(request)) {
            Err(whole) => whole,
            Ok(_) => error,
        };
        let Value::Object(map) = super::encode(api, &shell).map_err(whole_error)? else {
            unreachable!("a request encodes to a JSON object")
        };
        let previous_text = previous.map_or(&[][..], |body| &body.text[..]);
        let previous_ranges = previous.map_or(&[][..], |body| &body.messages[..]);
        // Room for the new messages too, so the copied text is not moved again.
        let estimate = previous_text.len() + (64 << 10);
        let mut out = Vec::with_capacity(estimate);
        let mut ranges = Vec::with_capacity(request.messages.len());
        let mut wrote_messages = false;
        out.push(b'{');
        for (n, (key, value)) in map.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key).expect("writing to a Vec");
            out.push(b':');
            if key != "messages" {
                serde_json::to_writer(&mut out, value).expect("writing to a Vec");
                continue;
            }
            out.push(b'[');
            for (i, message) in request.messages.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let start = out.len();
                if i < reused {
                    out.extend_from_slice(&previous_text[previous_ranges[i].clone()]);
                } else {
                    // A message that does not encode fails the whole request too, whose
                    // error (with the message's path in the body) is the one returned.
                    let message = plan.message(i, message);
                    let value = match api {
                        Api::Converse => converse::encode_message(&message),
                        Api::InvokeModel | Api::Messages => anthropic::encode_message(&message),
                    }
                    .map_err(whole_error)?;
                    serde_json::to_writer(&mut out, &value).expect("writing to a Vec");
                }
                ranges.push(start..out.len());
            }
            out.push(b']');
            wrote_messages = true;
        }
        assert!(wrote_messages, "every request body has its messages");
        out.push(b'}');
        let plain = plan.first_changed(request);
        Ok(Body { api, text: Bytes::from(out), messages: ranges, reused, plain })
    }

    /// The body's bytes (a cheap clone: the buffer is shared).
    pub(crate) fn bytes(&self) -> Bytes {
        self.text.clone()
    }

    /// The body's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }

    /// The body as text.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).expect("serde_json writes UTF-8")
    }

    /// How many leading messages were copied from the earlier body.
    pub(crate) fn reused(&self) -> usize {
        self.reused
    }
}

#[cfg(test)]
mod tests {
    use verbatim_model::{ContentBlock, Dialect, Role, UnknownBlock};

    use super::*;

    fn request(messages: Vec<Message>) -> Request {
        let mut request = Request {
            messages,
            system: Some(verbatim_model::SystemPrompt::Text("Be \"brief\".\n".into())),
            ..Request::default()
        };
        request.inference =
            Some(verbatim_model::InferenceConfig { max_tokens: Some(1024), ..Default::default() });
        request
    }

    fn conversation(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| match i % 2 {
                0 => Message::user_text(format!("question {i}: \"quoted\", \\ and \u{e9}")),
                _ => Message::new(Role::Assistant, vec![ContentBlock::text(format!("answer {i}"))]),
            })
            .collect()
    }

    fn fresh(api: Api, request: &Request) -> String {
        crate::assemble::encode(api, request).unwrap().to_string()
    }

    #[test]
    fn a_body_is_the_encoded_request_written_out_and_reuses_what_it_shares() {
        for api in [Api::Converse, Api::InvokeModel] {
            let first = request(conversation(5));
            let body = Body::write(api, &first, None).unwrap();
            assert_eq!(body.as_str(), fresh(api, &first));
            assert_eq!(body.reused(), 0);

            // The next request: the same messages and two more.
            let second = request(conversation(7));
            let next = Body::write(api, &second, Some((&body, &first.messages))).unwrap();
            assert_eq!(next.as_str(), fresh(api, &second));
            assert_eq!(next.reused(), 5);

            // A changed message stops the reuse there; the rest is encoded afresh.
            let mut edited = second.clone();
            edited.messages[2] = Message::user_text("changed");
            let after = Body::write(api, &edited, Some((&next, &second.messages))).unwrap();
            assert_eq!(after.as_str(), fresh(api, &edited));
            assert_eq!(after.reused(), 2);

            // A body written for the other API is not reused.
            let other = match api {
                Api::Converse => Api::InvokeModel,
                Api::InvokeModel | Api::Messages => Api::Converse,
            };
            let crossed = Body::write(other, &second, Some((&body, &first.messages))).unwrap();
            assert_eq!(crossed.as_str(), fresh(other, &second));
            assert_eq!(crossed.reused(), 0);
        }
    }

    #[test]
    fn an_encoding_error_is_the_one_encoding_gives() {
        // A block kept in the Anthropic dialect cannot be sent to Converse.
        let mut messages = conversation(3);
        messages.push(Message::new(
            Role::Assistant,
            vec![ContentBlock::Unknown(UnknownBlock {
                dialect: Dialect::Anthropic,
                json: serde_json::json!({ "type": "mystery" }),
            })],
        ));
        let request = request(messages);
        let expected = crate::assemble::encode(Api::Converse, &request).unwrap_err();
        let written = Body::write(Api::Converse, &request, None).unwrap_err();
        assert_eq!(written, expected);
        assert!(written.to_string().contains("messages[3].content[0]"), "{written}");
    }
}
