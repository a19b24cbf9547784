//! The checks. [`check`] runs them in the order of the rule set's checklist (§9); that order
//! is kept there and nowhere else. Each family of rules has its own file, whose header lists
//! the rules it emits: `settings`, `output_schema`, `request_fields`, `tools`, `system`,
//! `content`, `roles`, `pairing`, `thinking`, `reasoning` (the families that are not Claude)
//! and `cache`. `content` is one pass over the messages and their blocks: it hands thinking,
//! tool and cache point blocks to the block checks of their families in the block's place, so
//! findings keep the order of the blocks. `shape` holds the findings on raw bodies, made
//! outside the checklist.
//!
//! Each finding carries the action repair would take, when there is one. The checks stay
//! linear in the request: the places of blocks come from a [`Places`] table built once, ids
//! and names seen go into sets, and fixes that copy a whole list are built only on demand
//! ([`Proposal::Deferred`]).

use verbatim_model::{Api, ContentBlock, Message, Role, ThinkingMode};

use super::action::{Action, is_thinking};
use super::wire::{self, Field, Places, Setting};
use super::{Context, Diagnostic, Severity, State};
use crate::JsonPath;
use crate::rules::Rule;

mod cache;
mod content;
mod output_schema;
mod pairing;
mod reasoning;
mod request_fields;
mod roles;
mod settings;
mod shape;
mod surface;
mod system;
mod thinking;
mod tools;

pub(crate) use shape::{
    MAX_BODY_BYTES, body_too_large, duplicate_key, shape_errors, unrepresentable,
};

/// A violation and the action repair would take.
pub(crate) struct Finding {
    pub(crate) diagnostic: Diagnostic,
    pub(crate) proposal: Option<Proposal>,
}

/// The action repair would take for a finding.
// Most proposals are ready actions, kept inline as before; boxing them would cost an
// allocation per finding to save space in the rarer deferred case.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Proposal {
    /// The action itself.
    Ready(Action),
    /// An action that copies a whole list of the request (the tools, the system blocks, a
    /// tool result's content) with one item changed, built from the request only when repair
    /// looks at it: built for each of many findings in one list, the copies alone would make
    /// a check cost the square of the list's length.
    Deferred(Box<dyn Fn(&verbatim_model::Request) -> Action>),
}

impl Proposal {
    /// The action, for the request the finding was made on.
    pub(crate) fn action(&self, request: &verbatim_model::Request) -> std::borrow::Cow<'_, Action> {
        match self {
            Proposal::Ready(action) => std::borrow::Cow::Borrowed(action),
            Proposal::Deferred(build) => std::borrow::Cow::Owned(build(request)),
        }
    }

    /// The action, owned.
    pub(crate) fn into_action(self, request: &verbatim_model::Request) -> Action {
        match self {
            Proposal::Ready(action) => action,
            Proposal::Deferred(build) => build(request),
        }
    }
}

/// One pass of the checks over a request: what they read, and the findings they record.
struct CheckPass<'a> {
    state: &'a State<'a>,
    context: &'a Context<'a>,
    places: &'a Places,
    findings: Vec<Finding>,
}

impl CheckPass<'_> {
    fn api(&self) -> Api {
        self.context.api
    }

    fn request(&self) -> &verbatim_model::Request {
        &self.state.request
    }

    /// Records a violation; `at` is the place Bedrock's text names.
    #[allow(clippy::too_many_arguments)]
    fn push_at(
        &mut self,
        rule: Rule,
        severity: Severity,
        path: JsonPath,
        at: &JsonPath,
        what: impl Into<String>,
        detail: &str,
        proposal: Option<Action>,
    ) {
        let what = what.into();
        let bedrock = rule.bedrock_text_for(self.api(), &at.dotted(), detail);
        let message = match severity {
            _ if bedrock.is_empty() => what,
            Severity::Error => format!("{what}. Bedrock answers: {bedrock}"),
            Severity::Warning => format!("{what}. Where Bedrock rejects it, it answers: {bedrock}"),
        };
        let diagnostic = Diagnostic { rule, severity, path, message };
        self.findings.push(Finding { diagnostic, proposal: proposal.map(Proposal::Ready) });
    }

    /// Records an error whose fix is built only when repair asks for it (see
    /// [`Proposal::Deferred`]).
    fn fix_deferred(
        &mut self,
        rule: Rule,
        severity: Severity,
        path: JsonPath,
        what: impl Into<String>,
        detail: &str,
        build: impl Fn(&verbatim_model::Request) -> Action + 'static,
    ) {
        self.push(rule, severity, path, what, detail, None);
        let finding = self.findings.last_mut().expect("just pushed");
        finding.proposal = Some(Proposal::Deferred(Box::new(build)));
    }

    fn push(
        &mut self,
        rule: Rule,
        severity: Severity,
        path: JsonPath,
        what: impl Into<String>,
        detail: &str,
        proposal: Option<Action>,
    ) {
        let at = path.clone();
        self.push_at(rule, severity, path, &at, what, detail, proposal);
    }

    fn error(&mut self, rule: Rule, path: JsonPath, what: impl Into<String>, detail: &str) {
        self.push(rule, Severity::Error, path, what, detail, None);
    }

    fn fix(
        &mut self,
        rule: Rule,
        path: JsonPath,
        what: impl Into<String>,
        detail: &str,
        action: Action,
    ) {
        self.push(rule, Severity::Error, path, what, detail, Some(action));
    }

    /// Records what the capability row does not grant: an error (with `action`, when repair
    /// has one) on a model the table knows; on an unknown model (the conservative row) a
    /// warning without a fix, since whether Bedrock refuses it there is not known and repair
    /// leaves the body alone.
    /// `subject` names what was sent (`toolResult.status`); the error reads "`family` does
    /// not take `subject`".
    fn not_granted(
        &mut self,
        rule: Rule,
        path: JsonPath,
        subject: &str,
        detail: &str,
        action: Option<Action>,
    ) {
        let caps = self.context.caps;
        if caps.known {
            let what = format!("{} does not take {subject}", caps.family);
            self.push(rule, Severity::Error, path, what, detail, action);
        } else {
            let what = if caps.family == crate::capability::CONSERVATIVE.family {
                format!(
                    "{subject} sent to a model the capability table does not know; some models refuse it, whether this one does is not known"
                )
            } else {
                format!(
                    "{subject} sent to {}, which is not recorded taking or refusing it; some models refuse it",
                    caps.family
                )
            };
            self.push(rule, Severity::Warning, path, what, detail, None);
        }
    }

    fn block(&self, i: usize, j: usize) -> JsonPath {
        self.places.block(self.request(), i, j)
    }

    fn field(&self, i: usize, j: usize, field: Field) -> JsonPath {
        self.places.field(self.request(), i, j, field)
    }

    fn setting(&self, setting: Setting) -> JsonPath {
        wire::setting(self.api(), setting)
    }
}

/// Every violation in the request, in checklist order.
pub(crate) fn check(state: &State<'_>, context: &Context<'_>) -> Vec<Finding> {
    let places = Places::of(context.api, &state.request);
    let mut out = CheckPass { state, context, places: &places, findings: Vec::new() };
    let shape = RequestFacts::of(&state.request, context);
    settings::settings(&mut out, &shape);
    reasoning::settings(&mut out);
    surface::surface(&mut out);
    output_schema::output_schema(&mut out);
    request_fields::request_fields(&mut out);
    tools::tools(&mut out);
    system::system(&mut out);
    content::messages(&mut out);
    roles::roles(&mut out);
    pairing::pairing(&mut out);
    pairing::results_alone(&mut out);
    // Decided after the history is settled: whether the request continues a tool loop
    // decides how a forced tool choice is resolved.
    tools::tool_choice(&mut out, &state.request, &shape);
    thinking::thinking_structure(&mut out, &shape);
    thinking::prefix_binding(&mut out);
    cache::cache_points(&mut out);
    out.findings
}

/// Facts about the request several checks need.
struct RequestFacts {
    /// Thinking is on for this request (asked for, or always on for the model).
    thinking_on: bool,
    /// Index of the first assistant message of the unfinished tool loop the request ends
    /// with, if it ends with one.
    open_turn: Option<usize>,
    /// The request ends with an assistant message.
    prefill: bool,
}

impl RequestFacts {
    fn of(request: &verbatim_model::Request, context: &Context<'_>) -> RequestFacts {
        let asked =
            request.thinking.as_ref().is_some_and(|t| !matches!(t.mode, ThinkingMode::Disabled));
        let thinking_on = asked || context.caps.thinking.always_on;
        let messages = &request.messages;
        let prefill = messages.last().is_some_and(|m| m.role == Role::Assistant);
        let open_turn = open_turn(messages);
        RequestFacts { thinking_on, open_turn, prefill }
    }
}

fn has_results(message: &Message) -> bool {
    message.content.iter().any(|b| matches!(b, ContentBlock::ToolResult(_)))
}

/// The Converse `type` of a tool result (`nova_code_interpreter_result` for the result of a
/// Nova built-in tool), kept among its unmapped keys.
pub(crate) fn tool_result_kind(result: &verbatim_model::ToolResult) -> Option<&str> {
    result.unmapped.converse.get("type").and_then(serde_json::Value::as_str)
}

/// The ids of the server tool uses of an assistant message that a tool result in the same
/// message answers: the server ran the tool inside the turn (Nova's built-in tools, recorded:
/// pydantic-ai `test_bedrock_model_multi_turn_code_execution`, Nova 2 Lite, HTTP 200), so no
/// user tool result follows them.
fn answered_in_message(message: &Message) -> std::collections::HashSet<&str> {
    let server: std::collections::HashSet<&str> = message
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse(u) if u.kind.as_deref() == Some("server_tool_use") => {
                Some(u.id.as_str())
            }
            _ => None,
        })
        .collect();
    message
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolResult(r) if server.contains(r.tool_use_id.as_str()) => {
                Some(r.tool_use_id.as_str())
            }
            _ => None,
        })
        .collect()
}

/// The first assistant message of the tool loop the request ends with: walking back from a
/// final user message that carries tool results, through assistant tool-use messages and the
/// user result messages between them, to the user message that started the turn.
///
/// The rule set (§4.6) names the assistant message holding the lastmost tool_use set. Claude
/// may skip thinking in later steps of one loop (peers scenario 29), and a history the API
/// itself produced must stay sendable, so the thinking-first requirement is applied to the
/// message that opened the loop: the turn's thinking setting is the one it was opened with.
fn open_turn(messages: &[Message]) -> Option<usize> {
    let last = messages.last()?;
    if last.role != Role::User || !has_results(last) {
        return None;
    }
    let mut first = None;
    let mut i = messages.len() - 1;
    while i > 0 {
        let previous = &messages[i - 1];
        match previous.role {
            Role::Assistant => first = Some(i - 1),
            Role::User if has_results(previous) => {}
            _ => break,
        }
        i -= 1;
    }
    first
}

/// The Anthropic name of the first block of a message (`nothing` when it is empty).
fn first_kind(message: &Message) -> &'static str {
    message.content.first().map_or("nothing", wire::anthropic_kind)
}

fn starts_with_thinking(message: &Message) -> bool {
    message.content.first().is_some_and(is_thinking)
}

fn has_thinking(message: &Message) -> bool {
    message.content.iter().any(is_thinking)
}
