//! The turn assembler: builds the request body Bedrock will accept from a stored conversation
//! and a turn configuration, or says precisely why it cannot.
//!
//! - [`assemble`] takes the history ([`HistoryMessage`]s) and a [`TurnConfig`] and gives an
//!   [`Assembly`]: the request, its body for Converse or InvokeModel, the [`Fix`]es applied and
//!   the [`Diagnostic`]s that remain.
//! - [`validate_body`] and [`repair_body`] do the same for a raw request body, as it would be
//!   POSTed (a raw body can hold what the typed model cannot, such as a block with two members).
//!
//! Every diagnostic names a [`Rule`] with a stable id, a [`Severity`], the
//! JSON path of the offending place in the request as it would be sent, and a message that
//! includes the text Bedrock would have answered. Paths follow the body verbatim sends: an
//! Anthropic string `content` is sent as a one-block list, so its text is `content[0]`.
//!
//! Under [`Policy::Strict`] nothing changes. Under [`Policy::Repair`] each fixable violation
//! is fixed in the order of the rule set, one [`Action`] at a time, and the request checked
//! again; signed thinking is never edited and reasoning is never turned into text. A fix is a
//! plain value: the store records the history-changing ones ([`Action::changes_history`]) and
//! passes them back as [`TurnConfig::recorded_fixes`], so a repair decided once is replayed
//! identically on every later request. Repair is deterministic: no clock, no randomness.

mod action;
mod assembler;
pub(crate) mod body;
mod caching;
mod check;
mod families;
mod prefix;
mod wire;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use verbatim_model::{
    Api, HistoryMessage, InferenceConfig, Message, Provenance, Request, SystemPrompt,
    ThinkingConfig, Tool, ToolChoice, ToolSpec,
};

pub use action::{Action, ReplayError};
pub use assembler::{Assembler, Prepared};
pub use caching::{AutoCaching, CacheTtl, Caching, place_cache_points};
pub use prefix::prefix_hash;

use crate::capability::{Capabilities, capabilities};
use crate::rules::Rule;
use crate::{DecodeError, EncodeError, JsonPath, anthropic, converse, messages_api};
use body::Body;
use caching::Plan;

/// How bad a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Bedrock may accept it, but it is fragile (recorded traffic shows both outcomes).
    Warning,
    /// Bedrock rejects it.
    Error,
}

/// One violation of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The rule broken.
    pub rule: Rule,
    /// How bad it is.
    pub severity: Severity,
    /// Where, in the request as it would be sent (`messages[3].content[0]`).
    pub path: JsonPath,
    /// What is wrong, ending with the text Bedrock would have answered.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}] {}: {}", self.rule, self.path, self.message)
    }
}

/// A repair: the violation found and the change made. Paths refer to the request as it was
/// when this fix was applied (fixes apply in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// The violation.
    #[serde(flatten)]
    pub diagnostic: Diagnostic,
    /// The change made.
    pub action: Action,
    /// For a history change: a digest of the messages it read, so replaying it on another
    /// history fails instead of editing the wrong message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

/// Whether to change the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Report every violation; change nothing.
    Strict,
    /// Fix what can be fixed without touching a signed block and report each fix; what cannot
    /// be fixed stays a diagnostic.
    Repair,
}

/// Everything about the next request except the history.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnConfig {
    /// The model id, inference-profile id or ARN.
    pub model_id: String,
    /// The API the request goes to.
    pub api: Api,
    /// The system prompt.
    pub system: Option<SystemPrompt>,
    /// The tools offered.
    pub tools: Option<Vec<Tool>>,
    /// The tool choice.
    pub tool_choice: Option<ToolChoice>,
    /// Inference parameters.
    pub inference: Option<InferenceConfig>,
    /// Anthropic's `top_k`.
    pub top_k: Option<u32>,
    /// The thinking setting asked for.
    pub thinking: Option<ThinkingConfig>,
    /// Anthropic beta flags (sent in the body on Bedrock).
    pub beta: Option<Vec<String>>,
    /// Further model-specific fields (`additionalModelRequestFields` on Converse, top-level
    /// keys on InvokeModel).
    pub model_fields: Option<verbatim_model::JsonMap>,
    /// The tool specs the session declared before, used when the history holds tool blocks
    /// but this turn offers no tools.
    pub recorded_tools: Vec<ToolSpec>,
    /// The thinking setting the unfinished tool loop at the end of the history started with,
    /// when known (`Some(None)`: it started without thinking). A tool loop is one assistant
    /// turn, so the setting may only change at the next user turn.
    pub open_turn_thinking: Option<Option<ThinkingConfig>>,
    /// Where cache points go: as the history and configuration hold them
    /// ([`Caching::Manual`], the default), none, or planned ([`Caching::Auto`]). The points
    /// are placed on the body sent; the request the checks see and the prefix hash are
    /// without planned points.
    pub caching: Caching,
    /// Fixes decided on earlier requests, in order. Those that change the history
    /// ([`Action::changes_history`]) are replayed first, each checked against its guard;
    /// settings fixes are decided again for every request.
    pub recorded_fixes: Vec<Fix>,
    /// Request keys of one dialect sent as they are ([`Request::unmapped`]: Converse
    /// `serviceTier`, `requestMetadata`, `guardrailConfig`, ...).
    pub unmapped: verbatim_model::Unmapped,
}

impl TurnConfig {
    /// A configuration naming only the model and API.
    pub fn new(model_id: impl Into<String>, api: Api) -> TurnConfig {
        TurnConfig {
            model_id: model_id.into(),
            api,
            system: None,
            tools: None,
            tool_choice: None,
            inference: None,
            top_k: None,
            thinking: None,
            beta: None,
            model_fields: None,
            recorded_tools: Vec::new(),
            open_turn_thinking: None,
            caching: Caching::Manual,
            recorded_fixes: Vec::new(),
            unmapped: Default::default(),
        }
    }
}

/// The outcome of assembling or checking a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Assembly {
    /// The request (after the fixes, under [`Policy::Repair`]).
    pub request: Request,
    /// The request body for the API, when no error remains.
    pub body: Option<Value>,
    /// The fixes applied, in order (empty under [`Policy::Strict`]).
    pub fixes: Vec<Fix>,
    /// The violations that remain, errors first.
    pub diagnostics: Vec<Diagnostic>,
}

impl Assembly {
    /// True when no error remains (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.diagnostics.iter().all(|d| d.severity != Severity::Error)
    }

    /// Writes the request's body for `api` as text (see [`Body::write`]: `previous` is an
    /// earlier body and the messages it was written from). `None` when an error remains, or
    /// when the request cannot be encoded, which is then recorded as the first diagnostic,
    /// as [`assemble`] records it.
    pub(crate) fn write_body(
        &mut self,
        turn: &TurnConfig,
        previous: Option<(&Body, &[Message])>,
    ) -> Option<Body> {
        let written = self.is_valid().then(|| {
            let plan = Plan::new(&turn.caching, &self.request, capabilities(Some(&turn.model_id)));
            Body::write_planned(turn.api, &self.request, &plan, previous)
        });
        self.body_written(written)
    }

    /// [`Assembly::write_body`] for a request whose first `same` messages are the first
    /// `same` that `previous` was written from (see [`Body::write_after`]).
    pub(crate) fn write_body_after(
        &mut self,
        turn: &TurnConfig,
        previous: &Body,
        same: usize,
    ) -> Option<Body> {
        let written = self.is_valid().then(|| {
            let plan = Plan::new(&turn.caching, &self.request, capabilities(Some(&turn.model_id)));
            Body::write_after_planned(turn.api, &self.request, &plan, previous, same)
        });
        self.body_written(written)
    }

    fn body_written(&mut self, written: Option<Result<Body, EncodeError>>) -> Option<Body> {
        match written? {
            Ok(body) => Some(body),
            Err(error) => {
                self.diagnostics.insert(0, check::unrepresentable(error));
                None
            }
        }
    }
}

/// The context checks read besides the request.
pub(crate) struct Context<'a> {
    pub(crate) api: Api,
    pub(crate) model_id: Option<&'a str>,
    pub(crate) caps: &'static Capabilities,
    pub(crate) open_turn_thinking: Option<&'a Option<ThinkingConfig>>,
    pub(crate) recorded_tools: &'a [ToolSpec],
    /// The Messages API headers sent with the body, when they are given to judge.
    pub(crate) headers: Option<&'a messages_api::Headers>,
}

/// The request under repair with the provenance of each of its messages (borrowed from the
/// history: fixes only move, drop or insert `None`).
#[derive(Debug, Clone)]
pub(crate) struct State<'h> {
    pub(crate) request: Request,
    pub(crate) provenance: Vec<Option<&'h Provenance>>,
}

/// Builds the request for the next turn from the history and the configuration, checks it
/// against every rule and, under [`Policy::Repair`], fixes what can be fixed.
pub fn assemble(history: &[HistoryMessage], turn: &TurnConfig, policy: Policy) -> Assembly {
    let mut assembly = assemble_request(history, turn, policy);
    if assembly.is_valid() {
        let plan = Plan::new(&turn.caching, &assembly.request, capabilities(Some(&turn.model_id)));
        let planned = if plan.is_manual() {
            Cow::Borrowed(&assembly.request)
        } else {
            Cow::Owned(plan.apply(&assembly.request))
        };
        match encode(turn.api, &planned) {
            Ok(body) => assembly.body = Some(body),
            Err(error) => assembly.diagnostics.insert(0, check::unrepresentable(error)),
        }
    }
    assembly
}

/// [`assemble`] without the body (`body` stays `None`), for a caller that writes it with
/// [`Assembly::write_body`], copying the text of the messages an earlier body shares.
pub(crate) fn assemble_request(
    history: &[HistoryMessage],
    turn: &TurnConfig,
    policy: Policy,
) -> Assembly {
    let messages = history.iter().map(|h| h.message.clone()).collect();
    assemble_messages(history, messages, turn, policy)
}

/// [`assemble_request`] over the messages of an earlier request (`earlier`, taken): each of
/// its leading messages equal to the history's message at the same place goes into the new
/// request as it is, instead of a copy of the history's; only the rest of the history is
/// copied. Returns the assembly and how many of `earlier`'s messages it took: when no fix
/// changed the history (none of `turn.recorded_fixes` that change it, which are replayed
/// and not listed in the assembly's `fixes`, and none of those `fixes`), the request's first
/// that many messages are `earlier`'s (for [`Assembly::write_body_after`]).
pub(crate) fn assemble_request_from(
    history: &[HistoryMessage],
    earlier: Vec<Message>,
    turn: &TurnConfig,
    policy: Policy,
) -> (Assembly, usize) {
    let same = earlier.iter().zip(history).take_while(|(e, h)| **e == h.message).count();
    let mut messages = earlier;
    messages.truncate(same);
    messages.extend(history[same..].iter().map(|h| h.message.clone()));
    (assemble_messages(history, messages, turn, policy), same)
}

/// Assembles `messages`, which are the history's messages.
fn assemble_messages(
    history: &[HistoryMessage],
    messages: Vec<Message>,
    turn: &TurnConfig,
    policy: Policy,
) -> Assembly {
    let caps = capabilities(Some(&turn.model_id));
    let (thinking, model_fields, not_sent) = families::family_reasoning(turn, caps);
    // A family that takes no Anthropic thinking has none to keep through a loop.
    let own_setting = turn.thinking.is_some() && thinking.is_none();
    let request = Request {
        messages,
        system: turn.system.clone(),
        tools: turn.tools.clone(),
        tool_choice: turn.tool_choice.clone(),
        inference: turn.inference.clone(),
        top_k: turn.top_k,
        thinking,
        beta: turn.beta.clone(),
        model_fields,
        unmapped: turn.unmapped.clone(),
    };
    let mut state =
        State { request, provenance: history.iter().map(|h| h.provenance.as_ref()).collect() };
    let mut replay_failure = None;
    for (i, fix) in turn.recorded_fixes.iter().enumerate() {
        if !fix.action.changes_history() {
            continue;
        }
        let guarded = match (&fix.guard, fix.action.guard(&state)) {
            (Some(expected), Some(found)) if *expected != found => Err(ReplayError::new(format!(
                "messages[{}] is not the message the fix was decided on",
                fix.action.message_index().unwrap_or(0)
            ))),
            _ => Ok(()),
        };
        if let Err(error) = guarded.and_then(|()| fix.action.apply(&mut state)) {
            replay_failure = Some(Diagnostic {
                rule: Rule::Malformed,
                severity: Severity::Error,
                path: JsonPath::root(),
                message: format!("recorded fix {i} does not apply to this history: {error}"),
            });
            break;
        }
    }
    let context = Context {
        api: turn.api,
        model_id: Some(&turn.model_id),
        caps,
        open_turn_thinking: turn.open_turn_thinking.as_ref().filter(|_| !own_setting),
        recorded_tools: &turn.recorded_tools,
        headers: None,
    };
    let mut assembly = run(state, &context, policy);
    if let Some(failure) = replay_failure {
        assembly.diagnostics.insert(0, failure);
    }
    assembly.diagnostics.extend(not_sent);
    assembly
}

/// Checks a typed request as it would be sent to `api` for `model_id` (the conservative
/// capability row when `None`), changing nothing.
pub fn validate_request(api: Api, model_id: Option<&str>, request: &Request) -> Vec<Diagnostic> {
    let state = State { request: request.clone(), provenance: Vec::new() };
    let context = context(api, model_id);
    run(state, &context, Policy::Strict).diagnostics
}

/// A raw body that cannot be checked at all: not JSON, or not a JSON object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unusable request body: {0}")]
pub struct Unusable(pub DecodeError);

/// The result of checking or repairing a raw body.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyReport {
    /// The request decoded from the body (repaired under [`Policy::Repair`]); `None` when its
    /// shape is broken.
    pub request: Option<Request>,
    /// The fixes applied.
    pub fixes: Vec<Fix>,
    /// The violations that remain, errors first.
    pub diagnostics: Vec<Diagnostic>,
    /// A Messages API body's `model`.
    pub model: Option<String>,
    /// A Messages API body's `stream`, when it gave one.
    pub stream: Option<bool>,
    /// The `anthropic-version` header the body was judged with, on the Messages API.
    pub version: Option<String>,
}

impl BodyReport {
    /// True when no error remains.
    pub fn is_valid(&self) -> bool {
        self.diagnostics.iter().all(|d| d.severity != Severity::Error)
    }

    /// The request (after repair) as a body for `api`, with the Messages API headers it goes
    /// with (empty on the other surfaces); `None` when the body's shape was broken.
    pub fn encoded(&self, api: Api) -> Option<Result<(Value, messages_api::Headers), EncodeError>> {
        let request = self.request.as_ref()?;
        Some(match (api, &self.model) {
            (Api::Messages, Some(model)) => {
                let call = messages_api::Call {
                    model: model.clone(),
                    stream: self.stream,
                    version: self.version.clone(),
                    request: request.clone(),
                };
                messages_api::encode_request(&call).map(|e| (e.body, e.headers))
            }
            _ => encode(api, request).map(|body| (body, messages_api::Headers::default())),
        })
    }
}

/// Checks a raw request body as it would be POSTed to `api` for `model_id`. On the Messages
/// API the body names its model (`model_id`, when given, overrides it) and no headers are
/// judged; [`validate_call`] takes them.
pub fn validate_body(
    api: Api,
    model_id: Option<&str>,
    body: &[u8],
) -> Result<BodyReport, Unusable> {
    check_body(api, model_id, &messages_api::Headers::default(), body, Policy::Strict)
}

/// Repairs a raw request body; see [`Policy::Repair`]. Shape errors (a block with two
/// members, wrong types) are not repaired.
pub fn repair_body(api: Api, model_id: Option<&str>, body: &[u8]) -> Result<BodyReport, Unusable> {
    check_body(api, model_id, &messages_api::Headers::default(), body, Policy::Repair)
}

/// Checks a raw request body with the headers sent beside it: on the Messages API the
/// `anthropic-version` and `anthropic-beta` headers are judged too (other surfaces carry
/// neither, and ignore `headers`).
pub fn validate_call(
    api: Api,
    model_id: Option<&str>,
    headers: &messages_api::Headers,
    body: &[u8],
) -> Result<BodyReport, Unusable> {
    check_body(api, model_id, headers, body, Policy::Strict)
}

/// [`repair_body`] with the headers sent beside the body, as [`validate_call`] takes them.
pub fn repair_call(
    api: Api,
    model_id: Option<&str>,
    headers: &messages_api::Headers,
    body: &[u8],
) -> Result<BodyReport, Unusable> {
    check_body(api, model_id, headers, body, Policy::Repair)
}

fn check_body(
    api: Api,
    model_id: Option<&str>,
    headers: &messages_api::Headers,
    body: &[u8],
    policy: Policy,
) -> Result<BodyReport, Unusable> {
    let value = verbatim_wire::json::parse(body).map_err(Unusable)?;
    if !value.is_object() {
        let found = verbatim_wire::json::type_name(&value);
        let kind = crate::DecodeErrorKind::WrongType { expected: "object", found };
        return Err(Unusable(DecodeError { path: JsonPath::root(), kind }));
    }
    let mut size = Vec::new();
    if body.len() > check::MAX_BODY_BYTES {
        size.push(check::body_too_large(body.len()));
    }
    // Warnings, after the errors.
    let duplicates: Vec<Diagnostic> =
        crate::json_input::duplicate_keys(body).into_iter().map(check::duplicate_key).collect();
    let decoded = match api {
        Api::Converse => converse::decode_request_value(value.clone()).map(|r| (r, None)),
        Api::InvokeModel => anthropic::decode_request_value(value.clone()).map(|r| (r, None)),
        Api::Messages => messages_api::decode_request_value(value.clone(), headers)
            .map(|call| (call.request, Some((call.model, call.stream)))),
    };
    match decoded {
        Ok((request, envelope)) => {
            let state = State { request, provenance: Vec::new() };
            // On the Messages API the body names its model; a model given beside it wins.
            let model_id = model_id.or(envelope.as_ref().map(|(model, _)| model.as_str()));
            let judged = (api == Api::Messages)
                .then_some(headers)
                .filter(|h| **h != messages_api::Headers::default());
            let context = Context { headers: judged, ..context(api, model_id) };
            let assembly = run(state, &context, policy);
            let mut diagnostics = size;
            diagnostics.extend(assembly.diagnostics);
            diagnostics.extend(duplicates);
            let (model, stream) = envelope.map_or((None, None), |(m, s)| (Some(m), s));
            Ok(BodyReport {
                request: Some(assembly.request),
                fixes: assembly.fixes,
                diagnostics,
                model,
                stream,
                version: headers.version.clone(),
            })
        }
        Err(error) => {
            let mut diagnostics = size;
            diagnostics.extend(check::shape_errors(api, value, error));
            diagnostics.extend(duplicates);
            Ok(BodyReport {
                request: None,
                fixes: Vec::new(),
                diagnostics,
                model: None,
                stream: None,
                version: None,
            })
        }
    }
}

fn context(api: Api, model_id: Option<&str>) -> Context<'_> {
    Context {
        api,
        model_id,
        caps: capabilities(model_id),
        open_turn_thinking: None,
        recorded_tools: &[],
        headers: None,
    }
}

/// Encodes a request in the dialect of `api`. On the Messages API that is the body without
/// `model` and `stream`, which the transport writes around it (`messages_api::encode_body`).
pub fn encode(api: Api, request: &Request) -> Result<Value, EncodeError> {
    match api {
        Api::Converse => converse::encode_request(request),
        Api::InvokeModel => anthropic::encode_request(request),
        Api::Messages => messages_api::encode_body(request),
    }
}

/// The most fixes one repair applies: a few per message and block, plus the settings. Each
/// fix removes or settles one violation, so a repair that reaches the bound has fixes undoing
/// each other; it stops there and reports what remains instead of running on.
fn max_fixes(request: &Request) -> usize {
    let blocks: usize = request.messages.iter().map(|m| m.content.len()).sum();
    64 + 4 * (request.messages.len() + blocks)
}

fn run(mut state: State<'_>, context: &Context<'_>, policy: Policy) -> Assembly {
    let mut fixes: Vec<Fix> = Vec::new();
    let limit = max_fixes(&state.request);
    loop {
        let mut findings = check::check(&state, context);
        let last_thinking = last_thinking(&state);
        let acceptable = |f: &check::Finding, action: &Action| {
            (f.diagnostic.severity == Severity::Error || harmless(last_thinking, context, action))
                && !repeats_setting(&fixes, action)
        };
        let next = match policy {
            Policy::Repair if fixes.len() < limit => findings.iter().position(|f| {
                f.proposal.as_ref().is_some_and(|p| acceptable(f, &p.action(&state.request)))
            }),
            _ => None,
        };
        let Some(next) = next else {
            let mut diagnostics: Vec<Diagnostic> =
                findings.into_iter().map(|f| f.diagnostic).collect();
            diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
            return Assembly { request: state.request, body: None, fixes, diagnostics };
        };
        let rule = findings[next].diagnostic.rule;
        let batchable = LOCAL_RULES.contains(&rule)
            && findings[next].proposal.as_ref().is_some_and(|p| local(&p.action(&state.request)));
        // Every action of the batch is taken from the request as checked, before any applies.
        let mut batch: Vec<(Diagnostic, Action)> = if batchable {
            // Fixes of a local rule touch only their own block or message and do not depend
            // on each other: apply them all, last place first so earlier indexes hold.
            findings
                .into_iter()
                .filter(|f| f.diagnostic.rule == rule)
                .filter_map(|f| {
                    let action = f.proposal?.into_action(&state.request);
                    let taken = local(&action)
                        && (f.diagnostic.severity == Severity::Error
                            || harmless(last_thinking, context, &action));
                    taken.then_some((f.diagnostic, action))
                })
                .collect()
        } else {
            let finding = findings.swap_remove(next);
            let action =
                finding.proposal.expect("found by its proposal").into_action(&state.request);
            vec![(finding.diagnostic, action)]
        };
        batch.sort_by_key(|(_, action)| std::cmp::Reverse(action.place()));
        for (diagnostic, action) in batch {
            let guard = action.guard(&state);
            action.apply(&mut state).expect("a proposed fix applies to the state it was made for");
            fixes.push(Fix { diagnostic, action, guard });
        }
    }
}

/// Rules whose violations sit in one block or message each and are fixed there, independently
/// of one another; repair fixes all of them in one round (otherwise a history with thousands
/// of blank blocks would be checked thousands of times).
const LOCAL_RULES: &[Rule] = &[
    Rule::BlankText,
    Rule::EmptyMessage,
    Rule::UnknownKey,
    Rule::ToolResultContent,
    Rule::ToolResultStatus,
    Rule::BlockRole,
    Rule::CacheTtl,
    Rule::CachePlacement,
];

/// Actions that change one block or remove one message.
fn local(action: &Action) -> bool {
    matches!(
        action,
        Action::DropBlock { .. }
            | Action::ReplaceBlock { .. }
            | Action::DropMessage { .. }
            | Action::DropMessageUnmapped { .. }
    )
}

/// The index of the last message that carries thinking, if any.
fn last_thinking(state: &State<'_>) -> Option<usize> {
    state.request.messages.iter().rposition(|m| m.content.iter().any(action::is_thinking))
}

/// Whether repair may apply the fix of a warning. Bedrock may accept what a warning names, so
/// its fix must cost nothing: on models that bind thinking to the conversation prefix, an edit
/// to the history before a message that carries thinking (the last one is `last_thinking`)
/// would invalidate that thinking.
fn harmless(last_thinking: Option<usize>, context: &Context<'_>, action: &Action) -> bool {
    if !action.changes_history() || !context.caps.prefix_binding {
        return true;
    }
    let from = action.message_index().unwrap_or(0);
    last_thinking.is_none_or(|last| last < from)
}

/// A settings fix applied before and proposed again means two rules undo each other; repair
/// stops there and reports what remains.
fn repeats_setting(fixes: &[Fix], action: &Action) -> bool {
    !action.changes_history() && fixes.iter().any(|fix| &fix.action == action)
}
