//! From an error message to what causes it: the rules of the rule set it points to, and the
//! errors that are not about the request's shape (throttling, access, credentials, model ids
//! and routing), each with Bedrock's own text per surface and what verbatim does about it.
//!
//! Where one message has several causes, they come in the order they are met in practice.
//! "Invalid signature in thinking block" is the case in point: a block altered or rebuilt on
//! its way back (a store, a proxy or a translation layer that re-serialises it; deltas joined
//! wrongly) is the common cause, then a prefix-bound block whose conversation changed, then a
//! block another model produced (bedrock-rules R4.8, R4.9; peers.md's failure scenarios).

use verbatim_model::Api;

use crate::rules::Rule;

/// One cause of an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The rule's id, or the id of an error that is not a rule of the request's shape
    /// (`service.throttling`, `thinking.altered`, ...).
    pub id: &'static str,
    /// The rule, when the cause is one.
    pub rule: Option<Rule>,
    /// The section of the rule set it comes from.
    pub spec: &'static str,
    /// What Bedrock answers, per surface: `(surfaces, text)`, with `<path>` and `<detail>`
    /// standing for the specifics.
    pub bedrock: Vec<(&'static str, String)>,
    /// Why it happens.
    pub cause: &'static str,
    /// What verbatim does about it.
    pub action: &'static str,
}

/// An error that is not a rule of the request's shape.
struct Known {
    id: &'static str,
    spec: &'static str,
    /// Bedrock's text (its exception name first where it sends one).
    bedrock: &'static str,
    cause: &'static str,
    action: &'static str,
    patterns: &'static [&'static str],
}

const ALTERED: Known = Known {
    id: "thinking.altered",
    spec: "R4.9",
    bedrock: "",
    cause: "The block is not byte for byte what the model produced: its text trimmed, normalised or re-encoded, streamed deltas joined in the wrong order, the signature taken from the wrong block, or the message rebuilt by a store, proxy or SDK translation layer. The signature covers the block's content.",
    action: "verbatim keeps thinking, signatures and redacted data byte for byte from the wire to the store and back, and never rebuilds a block; a block altered before it reached verbatim cannot be told apart without the service. Send the assistant turn back as it was returned, or drop the turn's thinking (`verbatim repair` does for blocks it can tell are unusable).",
    patterns: &[],
};

const KNOWN: &[Known] = &[
    Known {
        id: "service.throttling",
        spec: "R7.1",
        bedrock: "ThrottlingException (429): Too many requests, please wait before trying again.",
        cause: "Requests or tokens per minute above the account's quota for the model in the region (or tokens per day: \"Too many tokens per day\").",
        action: "Retried by the transport in AWS standard mode: full-jitter backoff, a retry budget, `x-amz-retry-after` and `retry-after`; a stream only before its first event. Ask for a quota increase, or use a cross-region inference profile.",
        patterns: &["too many requests", "too many tokens", "throttlingexception", "rate exceeded"],
    },
    Known {
        id: "service.access_denied",
        spec: "R7.1",
        bedrock: "AccessDeniedException (403): You don't have access to the model with the specified model ID.",
        cause: "Model access not enabled in this region, an IAM policy without bedrock:InvokeModel (or bedrock-mantle:CreateInference and bedrock-mantle:CallWithBearerToken on mantle) for the model and its inference profile, or an SCP denying the region a cross-region profile routes to.",
        action: "Not retried. Enable the model in the Bedrock console for every region the profile uses, and grant the actions on the model and the profile ARNs.",
        patterns: &[
            "don't have access to the model",
            "accessdeniedexception",
            "not authorized to perform",
        ],
    },
    Known {
        id: "service.invalid_token",
        spec: "R7.1",
        bedrock: "UnrecognizedClientException (403): The security token included in the request is invalid.",
        cause: "Credentials from another partition or account, a mistyped key, a session token left out (or left over), an expired session (\"The security token included in the request is expired\"), or a Bedrock API key sent as SigV4 credentials.",
        action: "Not retried. Refresh the credentials (aws sso login, a new session) or send the API key as a bearer token (--api-key, AWS_BEARER_TOKEN_BEDROCK).",
        patterns: &[
            "security token included in the request is invalid",
            "security token included in the request is expired",
            "unrecognizedclientexception",
            "expiredtokenexception",
        ],
    },
    Known {
        id: "service.on_demand",
        spec: "R5.2",
        bedrock: "ValidationException (400): Invocation of model ID <detail> with on-demand throughput isn’t supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
        cause: "The model is served only through cross-region inference profiles, and the request named its bare foundation-model id.",
        action: "Not retried. Name the inference profile instead: the same id with a `us.`, `eu.`, `apac.` or `global.` prefix.",
        patterns: &["on-demand throughput isn", "with on-demand throughput"],
    },
    Known {
        id: "service.unknown_operation",
        spec: "R6.2",
        bedrock: "HTTP 200: {\"Output\":{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"},\"Version\":\"1.0\"}",
        cause: "The URL named no operation Bedrock serves: a model ARN whose `/` was not percent-encoded in the path, a route the host does not serve (runtime `/anthropic/v1/models`, `/v1/messages/count_tokens`), or a proxy that rewrote the path. The answer is HTTP 200, so a client that checks only the status reads it as a reply.",
        action: "The transport encodes the model id as one path segment and turns this body into an error whatever its status.",
        patterns: &["unknownoperationexception"],
    },
    Known {
        id: "service.unavailable",
        spec: "R7.1",
        bedrock: "ServiceUnavailableException (503): Bedrock is unable to process your request.",
        cause: "A transient failure on the service's side (or, on the Messages API, 529 overloaded_error).",
        action: "Retried by the transport, as throttling is; a stream only before its first event.",
        patterns: &[
            "unable to process your request",
            "serviceunavailableexception",
            "overloaded_error",
            "overloaded",
        ],
    },
];

/// The messages whose causes come in a known order, and that order.
const ORDERED: &[(&[&str], &[&str])] = &[(
    &["invalid signature in thinking block", "invalid `signature` in `thinking` block"],
    &["thinking.altered", "thinking.prefix_changed", "thinking.foreign_model"],
)];

/// The rules an error message from Bedrock or Anthropic points to, best match first. Matching
/// ignores case; a rule matches when its known fragments occur in the message, and the rule
/// whose fragments cover more of the message ranks higher.
pub fn rules(message: &str) -> Vec<Rule> {
    let text = message.to_lowercase();
    let mut found: Vec<(usize, Rule)> = Rule::ALL
        .iter()
        .filter_map(|&rule| {
            let best = rule
                .info()
                .patterns()
                .iter()
                .filter(|pattern| text.contains(*pattern))
                .map(|pattern| pattern.len())
                .sum::<usize>();
            (best > 0).then_some((best, rule))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().map(|(_, rule)| rule).collect()
}

/// The surfaces a rule's text is quoted for.
fn quotes(rule: Rule) -> Vec<(&'static str, String)> {
    let converse = rule.bedrock_text_for(Api::Converse, "<path>", "<detail>");
    let anthropic = rule.bedrock_text_for(Api::InvokeModel, "<path>", "<detail>");
    if converse == anthropic {
        vec![("every surface", converse)]
    } else {
        vec![("Converse", converse), ("InvokeModel and the Messages API", anthropic)]
    }
}

fn from_rule(rule: Rule) -> Cause {
    let info = rule.info();
    Cause {
        id: info.id,
        rule: Some(rule),
        spec: info.spec,
        bedrock: quotes(rule),
        cause: info.cause,
        action: info.action,
    }
}

fn from_known(known: &Known) -> Cause {
    let bedrock = if known.bedrock.is_empty() {
        // The altered block has no text of its own: it is the signature error itself.
        quotes(Rule::ThinkingForeign)
    } else {
        vec![("every surface", known.bedrock.to_owned())]
    };
    Cause {
        id: known.id,
        rule: None,
        spec: known.spec,
        bedrock,
        cause: known.cause,
        action: known.action,
    }
}

/// The causes of an error message from Bedrock or Anthropic, most likely first; empty when
/// nothing known matches. Matching ignores case.
pub fn explain(message: &str) -> Vec<Cause> {
    let text = message.to_lowercase();
    let score = |patterns: &[&str]| -> usize {
        patterns.iter().filter(|p| text.contains(*p)).map(|p| p.len()).sum()
    };
    let mut scored: Vec<(usize, Cause)> = rules(message)
        .into_iter()
        .map(|rule| (score(rule_patterns(rule)), from_rule(rule)))
        .collect();
    scored.extend(KNOWN.iter().filter_map(|k| {
        let best = score(k.patterns);
        (best > 0).then(|| (best, from_known(k)))
    }));
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    let mut causes: Vec<Cause> = scored.into_iter().map(|(_, cause)| cause).collect();
    // A message that names a more specific cause ("bound to a different conversation") keeps
    // the order its patterns gave; a bare signature error takes the order of frequency.
    let specific = text.contains("bound to a different conversation");
    if let Some((_, order)) = ORDERED.iter().find(|(p, _)| p.iter().any(|p| text.contains(p)))
        && !specific
    {
        let mut ordered: Vec<Cause> = order
            .iter()
            .map(|id| match Rule::from_id(id) {
                Some(rule) => from_rule(rule),
                None => from_known(&ALTERED),
            })
            .collect();
        causes.retain(|c| !order.contains(&c.id));
        ordered.append(&mut causes);
        causes = ordered;
    }
    causes
}

fn rule_patterns(rule: Rule) -> &'static [&'static str] {
    rule.info().patterns()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(message: &str) -> Vec<&'static str> {
        explain(message).iter().map(|c| c.id).collect()
    }

    #[test]
    fn a_signature_error_gives_its_causes_in_order_of_frequency() {
        for message in [
            "The model returned the following errors: messages.39.content.0: Invalid signature in thinking block",
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ] {
            assert_eq!(
                ids(message)[..3],
                ["thinking.altered", "thinking.prefix_changed", "thinking.foreign_model"],
                "{message}"
            );
        }
        // The newest text names its cause: the prefix first.
        let bound = "messages.1.content.0: Invalid `signature` in `thinking` block. The block is bound to a different conversation. Remove the block, or set `thinking.block_binding.prefix_mismatch_behavior` to \"drop_block\".";
        assert_eq!(ids(bound)[0], "thinking.prefix_changed");
    }

    #[test]
    fn errors_that_are_not_about_the_shape_are_known_with_bedrocks_text() {
        let cases = [
            (
                "ThrottlingException: Too many tokens, please wait before trying again.",
                "service.throttling",
            ),
            (
                "You don't have access to the model with the specified model ID.",
                "service.access_denied",
            ),
            ("The security token included in the request is expired", "service.invalid_token"),
            (
                "Invocation of model ID anthropic.claude-opus-4-7 with on-demand throughput isn’t supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
                "service.on_demand",
            ),
            ("The provided model identifier is invalid.", "model.id"),
            (
                "{\"Output\":{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"},\"Version\":\"1.0\"}",
                "service.unknown_operation",
            ),
            (
                "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"invalid beta flag\"}}",
                "beta.flag",
            ),
        ];
        for (message, id) in cases {
            let found = explain(message);
            assert_eq!(found.first().map(|c| c.id), Some(id), "{message}");
            assert!(!found[0].bedrock.is_empty() && !found[0].action.is_empty());
        }
        // The coral body is quoted as Bedrock sends it.
        let coral = &explain("UnknownOperationException")[0];
        assert!(coral.bedrock[0].1.contains("com.amazon.coral.service#UnknownOperationException"));
        assert!(explain("something else entirely").is_empty());
    }

    #[test]
    fn a_rule_worded_differently_per_surface_quotes_each() {
        let found = explain("messages: roles must alternate between \"user\" and \"assistant\"");
        let alternation = found.iter().find(|c| c.rule == Some(Rule::Alternation)).unwrap();
        assert_eq!(alternation.bedrock.len(), 2, "{:?}", alternation.bedrock);
        assert!(alternation.bedrock[1].1.starts_with("messages: roles must alternate"));
    }
}
