//! Golden conversions: every request, response and message array recorded from the live
//! service goes from the surface it was recorded on to each other surface (Converse,
//! InvokeModel, the Messages API) and back without change, or the way out fails with an
//! [`EncodeError`] naming the place the target cannot express. Never a silent change.

use serde_json::Value;
use verbatim_model::{Message, Request, Response};

use super::recordings::{documents, fixtures_dir, recordings};
use super::support::{Kind, Wire, verbatim_strings};
use crate::{DecodeError, EncodeError, anthropic, converse, messages_api};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Converse,
    Invoke,
    Messages,
}

const SURFACES: [Surface; 3] = [Surface::Converse, Surface::Invoke, Surface::Messages];

/// The model a converted request names in a Messages API body.
const MODEL: &str = "anthropic.claude-opus-4-7";

enum Doc {
    Request(Box<Request>),
    Response(Box<Response>),
    Messages(Vec<Message>),
}

fn decode(surface: Surface, kind: Kind, value: Value) -> Result<Doc, DecodeError> {
    Ok(match (surface, kind) {
        (Surface::Converse, Kind::Request) => {
            Doc::Request(Box::new(converse::decode_request_value(value)?))
        }
        (Surface::Converse, Kind::Response) => {
            Doc::Response(Box::new(converse::decode_response_value(value)?))
        }
        (Surface::Converse, Kind::Messages) => {
            Doc::Messages(converse::decode_messages_value(value)?)
        }
        (Surface::Invoke, Kind::Request) => {
            Doc::Request(Box::new(anthropic::decode_request_value(value)?))
        }
        (Surface::Messages, Kind::Request) => {
            // The headers travel beside the body; the test carries none of its own.
            let call =
                messages_api::decode_request_value(value, &messages_api::Headers::default())?;
            assert_eq!(call.model, MODEL);
            Doc::Request(Box::new(call.request))
        }
        (Surface::Invoke, Kind::Response) => {
            Doc::Response(Box::new(anthropic::decode_response_value(value)?))
        }
        (Surface::Messages, Kind::Response) => {
            Doc::Response(Box::new(messages_api::decode_response_value(value)?))
        }
        (Surface::Invoke | Surface::Messages, Kind::Messages) => {
            Doc::Messages(anthropic::decode_messages_value(value)?)
        }
    })
}

/// Encodes for `surface`; a Messages API request's betas come back in its headers, which the
/// way back reads again.
fn encode(surface: Surface, doc: &Doc) -> Result<(Value, messages_api::Headers), EncodeError> {
    let none = messages_api::Headers::default();
    Ok(match (surface, doc) {
        (Surface::Converse, Doc::Request(r)) => (converse::encode_request(r)?, none),
        (Surface::Converse, Doc::Response(r)) => (converse::encode_response(r)?, none),
        (Surface::Converse, Doc::Messages(m)) => (converse::encode_messages(m)?, none),
        (Surface::Invoke, Doc::Request(r)) => (anthropic::encode_request(r)?, none),
        (Surface::Messages, Doc::Request(r)) => {
            let call = messages_api::Call {
                model: MODEL.into(),
                stream: None,
                version: None,
                request: (**r).clone(),
            };
            let encoded = messages_api::encode_request(&call)?;
            (encoded.body, encoded.headers)
        }
        (Surface::Invoke, Doc::Response(r)) => (anthropic::encode_response(r)?, none),
        (Surface::Messages, Doc::Response(r)) => (messages_api::encode_response(r)?, none),
        (Surface::Invoke | Surface::Messages, Doc::Messages(m)) => {
            (anthropic::encode_messages(m)?, none)
        }
    })
}

fn decode_with(
    surface: Surface,
    kind: Kind,
    value: Value,
    headers: &messages_api::Headers,
) -> Result<Doc, DecodeError> {
    if (surface, kind) == (Surface::Messages, Kind::Request) {
        let call = messages_api::decode_request_value(value, headers)?;
        return Ok(Doc::Request(Box::new(call.request)));
    }
    decode(surface, kind, value)
}

/// `value` with each string `system` or message `content` written as the one text block it
/// stands for.
fn shorthand_expanded(value: &Value) -> Value {
    let text_block = |text: &Value| serde_json::json!([{"type": "text", "text": text}]);
    let mut value = value.clone();
    if let Some(system) = value.get_mut("system").filter(|s| s.is_string()) {
        *system = text_block(system);
    }
    let messages = match &mut value {
        Value::Array(items) => Some(items),
        Value::Object(map) => map.get_mut("messages").and_then(Value::as_array_mut),
        _ => None,
    };
    for message in messages.into_iter().flatten() {
        if let Some(content) = message.get_mut("content").filter(|c| c.is_string()) {
            *content = text_block(content);
        }
        let blocks = message.get_mut("content").and_then(Value::as_array_mut);
        for block in blocks.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) != Some("tool_result") {
                continue;
            }
            if let Some(content) = block.get_mut("content").filter(|c| c.is_string()) {
                *content = text_block(content);
            }
        }
    }
    value
}

#[test]
fn every_recorded_document_crosses_to_each_surface_and_back_or_is_refused_by_name() {
    let Some(dir) = fixtures_dir() else { return };
    let mut crossed = [0usize; 3];
    let mut refused: std::collections::BTreeMap<String, usize> = Default::default();
    let mut anthropic_documents = 0;
    for file in &recordings(&dir) {
        for doc in documents(file) {
            let from = match doc.wire {
                Wire::Converse => Surface::Converse,
                Wire::Anthropic => Surface::Invoke,
            };
            anthropic_documents += usize::from(from == Surface::Invoke);
            let original = doc.value.clone();
            let mut decoded = decode(from, doc.kind, original.clone())
                .unwrap_or_else(|e| panic!("{}: does not decode: {e}", doc.label));
            // Converse may leave maxTokens out and Anthropic requires it: lend it for the
            // trip and take it back after.
            let mut lent_max_tokens = false;
            if let Doc::Request(request) = &mut decoded {
                let inference = request.inference.get_or_insert_with(Default::default);
                lent_max_tokens = inference.max_tokens.is_none();
                inference.max_tokens.get_or_insert(4096);
            }
            for (slot, to) in SURFACES.into_iter().enumerate() {
                if to == from {
                    continue;
                }
                let (there, headers) = match encode(to, &decoded) {
                    Ok(encoded) => encoded,
                    Err(e) => {
                        assert_ne!(
                            e.path.to_string(),
                            "",
                            "{}: refused for {to:?} without naming a place: {e}",
                            doc.label
                        );
                        // InvokeModel and the Messages API carry the same conversation JSON,
                        // and Converse can say every recorded request InvokeModel sent.
                        assert!(
                            from == Surface::Converse
                                || (to == Surface::Converse && doc.kind != Kind::Request),
                            "{}: refused for {to:?}: {e}",
                            doc.label
                        );
                        *refused.entry(format!("to {to:?}: {e}")).or_default() += 1;
                        continue;
                    }
                };
                let back = decode_with(to, doc.kind, there, &headers).unwrap_or_else(|e| {
                    panic!("{} -> {to:?}: does not decode there: {e}", doc.label)
                });
                let (mut again, _) = encode(from, &back)
                    .unwrap_or_else(|e| panic!("{} -> {to:?}: does not come back: {e}", doc.label));
                if lent_max_tokens {
                    let config = again["inferenceConfig"].as_object_mut().unwrap();
                    config.shift_remove("maxTokens");
                    if config.is_empty() && original.get("inferenceConfig").is_none() {
                        again.as_object_mut().unwrap().shift_remove("inferenceConfig");
                    }
                }
                // Converse has no way to say Anthropic's string shorthand for a lone text
                // (`"system"`, a message's or a tool result's `"content"`): it comes back as the one text
                // block it stands for, the same bytes in the same place.
                let expected = if to == Surface::Converse {
                    shorthand_expanded(&original)
                } else {
                    original.clone()
                };
                assert_eq!(again, expected, "{} -> {to:?} and back: changed", doc.label);
                assert_eq!(
                    verbatim_strings(&again),
                    verbatim_strings(&original),
                    "{} -> {to:?} and back: thinking, signature or tool input changed",
                    doc.label
                );
                crossed[slot] += 1;
            }
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "golden conversions: {} to Converse, {} to InvokeModel, {} to the Messages API and back; {} refused by name",
            crossed[0],
            crossed[1],
            crossed[2],
            refused.values().sum::<usize>()
        );
        for (why, count) in &refused {
            eprintln!("  {count} refused {why}");
        }
    }
    assert!(anthropic_documents >= 10, "only {anthropic_documents} InvokeModel documents");
    assert!(crossed[2] >= anthropic_documents + 20, "only {} reached the Messages API", crossed[2]);
}
