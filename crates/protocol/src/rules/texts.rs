//! What Bedrock answers when a rule is broken, on each surface, with the place and the
//! specifics filled in.

use super::Rule;

impl Rule {
    /// Bedrock's answer with `{at}` and `{detail}` filled in.
    pub fn bedrock_text(self, at: &str, detail: &str) -> String {
        self.info().bedrock.replace("{at}", at).replace("{detail}", detail)
    }

    /// Bedrock's answer to an Anthropic Messages body (InvokeModel's or the Messages API's),
    /// where the Anthropic layer words the error differently from Converse; `None` when the wording is the same.
    pub fn anthropic_text(self) -> Option<&'static str> {
        match self {
            Rule::Alternation => Some(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{detail}\" roles in a row",
            ),
            Rule::EmptyMessage => Some(
                "{at}: all messages must have non-empty content except for the optional final assistant message",
            ),
            Rule::BlankText => {
                Some("messages: text content blocks must contain non-whitespace text")
            }
            Rule::FirstUser => Some("messages: first message must use the \"user\" role"),
            Rule::ThinkingForeign => Some("{at}: Invalid `signature` in `thinking` block"),
            Rule::ResultsFirst => Some(
                "Did not find {detail} tool_result block(s) at the beginning of this message. Messages following tool_use blocks must begin with a matching number of tool_result blocks.",
            ),
            _ => None,
        }
    }

    /// Bedrock's answer for a request sent on `api`, with `{at}` and `{detail}` filled in.
    pub fn bedrock_text_for(self, api: verbatim_model::Api, at: &str, detail: &str) -> String {
        match (api, self.anthropic_text()) {
            (verbatim_model::Api::InvokeModel | verbatim_model::Api::Messages, Some(text)) => {
                text.replace("{at}", at).replace("{detail}", detail)
            }
            _ => self.bedrock_text(at, detail),
        }
    }
}
