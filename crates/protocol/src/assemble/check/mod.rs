//! The checks, in the order of the rule set's checklist (§9): settings, message content,
//! roles, tool pairing, thinking structure, cache points. Each finding carries the action
//! repair would take, when there is one.

use std::collections::{HashMap, HashSet};

use verbatim_model::{
    Api, ContentBlock, DocumentSource, MediaSource, Message, RedactedForm, Role, ThinkingMode,
};

use super::action::{Action, is_thinking};
use super::wire::{self, Field, Places, Setting};
use super::{Context, Diagnostic, Severity, State};
use crate::JsonPath;
use crate::rules::Rule;
use cache::cache_point;
use thinking::{first_thinking, foreign_producer, other_surface};
use tools::{tool_result, valid_tool_name, valid_tool_use_id};

mod cache;
mod pairing;
mod roles;
mod settings;
mod shape;
mod system;
mod thinking;
mod tools;

pub(crate) use shape::{
    MAX_BODY_BYTES, body_too_large, duplicate_key, shape_errors, unrepresentable,
};

/// Largest image, counted on its base64 text as the service does.
const MAX_IMAGE_BASE64: usize = 5_242_880;
/// Largest document: 4.5 MB raw, as base64 text.
const MAX_DOCUMENT_BASE64: usize = 6_291_456;
const MAX_IMAGES: usize = 20;
const MAX_DOCUMENTS: usize = 5;
const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];
const DOCUMENT_FORMATS: &[&str] =
    &["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"];

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

struct Out<'a> {
    state: &'a State<'a>,
    context: &'a Context<'a>,
    places: &'a Places,
    findings: Vec<Finding>,
}

impl Out<'_> {
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
    let mut out = Out { state, context, places: &places, findings: Vec::new() };
    let shape = Shape::of(&state.request, context);
    settings::settings(&mut out, &shape);
    tools::tools(&mut out);
    system::system(&mut out);
    messages(&mut out);
    roles::roles(&mut out);
    pairing::pairing(&mut out);
    // Decided after the history is settled: whether the request continues a tool loop
    // decides how a forced tool choice is resolved.
    tools::tool_choice(&mut out, &state.request, &shape);
    thinking::thinking_structure(&mut out, &shape);
    thinking::prefix_binding(&mut out);
    cache::cache_points(&mut out);
    out.findings
}

/// Facts about the request several checks need.
struct Shape {
    /// Thinking is on for this request (asked for, or always on for the model).
    thinking_on: bool,
    /// Index of the first assistant message of the unfinished tool loop the request ends
    /// with, if it ends with one.
    open_turn: Option<usize>,
    /// The request ends with an assistant message.
    prefill: bool,
}

impl Shape {
    fn of(request: &verbatim_model::Request, context: &Context<'_>) -> Shape {
        let asked =
            request.thinking.as_ref().is_some_and(|t| !matches!(t.mode, ThinkingMode::Disabled));
        let thinking_on = asked || context.caps.thinking.always_on;
        let messages = &request.messages;
        let prefill = messages.last().is_some_and(|m| m.role == Role::Assistant);
        let open_turn = open_turn(messages);
        Shape { thinking_on, open_turn, prefill }
    }
}

fn has_results(message: &Message) -> bool {
    message.content.iter().any(|b| matches!(b, ContentBlock::ToolResult(_)))
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

// ---------------------------------------------------------------------------------------
// Messages and their blocks

fn messages(out: &mut Out<'_>) {
    let state = out.state;
    let request = &state.request;
    let api = out.api();
    let caps = out.context.caps;
    let places = out.places;
    let mut tool_use_ids: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut images = 0;
    let mut documents = 0;
    let mut document_names: HashSet<&str> = HashSet::new();
    for (i, message) in request.messages.iter().enumerate() {
        let mpath = wire::message(i);
        if message.role == Role::System {
            let what =
                "a system message inside messages; put instructions in the top-level system field";
            out.error(Rule::Role, mpath.clone().key("role"), what, "unknown role `system`");
        }
        if !message.unmapped.is_empty() {
            let keys = unmapped_keys(&message.unmapped);
            let what = format!("message keys the API does not define: {keys}");
            out.fix(
                Rule::UnknownKey,
                mpath.clone(),
                what,
                &keys,
                Action::DropMessageUnmapped { message: i },
            );
        }
        if message.content.is_empty() {
            out.fix(
                Rule::EmptyMessage,
                mpath.clone(),
                "a message with no content",
                "",
                Action::DropMessage { message: i },
            );
            continue;
        }
        let has_text = message
            .content
            .iter()
            .any(|b| matches!(b, ContentBlock::Text(t) if !t.text.trim().is_empty()));
        let first_thinking = first_thinking(message);
        for (j, block) in message.content.iter().enumerate() {
            // Built only when a finding needs them (most blocks have none).
            let path = || places.block(request, i, j);
            let drop =
                || Action::DropBlock { message: i, block: j, kind: block.kind_name().to_owned() };
            if let Some(keys) = block_unmapped(block) {
                let what = format!("block keys the API does not define: {keys}");
                let proposal = (!is_thinking(block)).then(|| {
                    let mut clean = block.clone();
                    clear_unmapped(&mut clean);
                    Action::ReplaceBlock {
                        message: i,
                        block: j,
                        kind: block.kind_name().to_owned(),
                        content: clean,
                    }
                });
                out.push(Rule::UnknownKey, Severity::Error, path(), what, &keys, proposal);
            }
            match block {
                ContentBlock::Text(text)
                    if text.text.is_empty()
                        || (text.text.trim().is_empty() && message.role == Role::Assistant) =>
                {
                    let what = if text.text.is_empty() {
                        "an empty text block"
                    } else {
                        "a whitespace-only text block in an assistant message"
                    };
                    out.fix(Rule::BlankText, path(), what, "", drop());
                }
                ContentBlock::Text(text) if text.text.trim().is_empty() => {
                    // Recorded traffic shows Bedrock accepting "\n" in a user message; reports
                    // show it rejecting whitespace-only assistant text.
                    let what = "a whitespace-only text block in a user message (accepted in recorded traffic, rejected in some reports)";
                    out.push(Rule::BlankText, Severity::Warning, path(), what, "", None);
                }
                ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_)
                    if message.role != Role::Assistant =>
                {
                    let detail = "User messages cannot contain reasoning content. Please remove the reasoning content and try again.";
                    out.fix(Rule::BlockRole, path(), "reasoning in a user message", detail, drop());
                }
                ContentBlock::Thinking(thinking) => {
                    if thinking.signature.as_deref().is_none_or(str::is_empty) {
                        let what = "thinking without a signature cannot be sent back";
                        let at = path();
                        out.push_at(
                            Rule::ThinkingUnsigned,
                            Severity::Error,
                            out.field(i, j, Field::Signature),
                            &at,
                            what,
                            "",
                            Some(Action::DropThinking { message: i }),
                        );
                    } else if let Some(producer) = foreign_producer(out, i) {
                        let what = format!(
                            "thinking produced by `{producer}` cannot be sent to another model"
                        );
                        out.push_at(
                            Rule::ThinkingForeign,
                            Severity::Error,
                            path(),
                            &path(),
                            what,
                            "",
                            Some(Action::DropThinking { message: i }),
                        );
                    } else if first_thinking == Some(j) {
                        other_surface(out, i, path());
                    }
                }
                ContentBlock::RedactedThinking(redacted) => {
                    // Checked in the form it is sent in; the other form is converted on the
                    // way (base64-encoded, or decoded, which fails if it is not base64).
                    let sent_as_is = matches!(
                        (api, redacted.form),
                        (Api::Converse, RedactedForm::ConverseBlob)
                            | (Api::InvokeModel, RedactedForm::AnthropicData)
                    );
                    if sent_as_is {
                        let at = out.field(i, j, Field::RedactedData);
                        base64(out, &redacted.data, at, "redacted thinking");
                    }
                    if let Some(producer) = foreign_producer(out, i) {
                        let what = format!(
                            "redacted thinking produced by `{producer}` cannot be sent to another model"
                        );
                        out.fix(
                            Rule::ThinkingForeign,
                            path(),
                            what,
                            "",
                            Action::DropThinking { message: i },
                        );
                    } else if first_thinking == Some(j) {
                        other_surface(out, i, path());
                    }
                }
                ContentBlock::Image(image) => {
                    images += 1;
                    if message.role != Role::User {
                        out.error(
                            Rule::BlockRole,
                            path(),
                            "an image in an assistant message",
                            "You can only include images and documents if the role is user.",
                        );
                    }
                    if let Some(format) = &image.format
                        && !IMAGE_FORMATS.contains(&format.as_str())
                    {
                        let what = format!("image format `{format}`; use png, jpeg, gif or webp");
                        out.error(
                            Rule::Image,
                            out.field(i, j, Field::ImageFormat),
                            what.clone(),
                            &what,
                        );
                    }
                    if let MediaSource::Bytes(data) = &image.source {
                        base64(out, data, out.field(i, j, Field::ImageBytes), "image bytes");
                    }
                    if let MediaSource::Bytes(data) = &image.source
                        && data.len() > MAX_IMAGE_BASE64
                    {
                        let what = format!("image of {} base64 bytes", data.len());
                        let detail = format!(
                            "The model returned the following errors: {}: image exceeds 5 MB maximum: {} bytes > {MAX_IMAGE_BASE64} bytes",
                            out.field(i, j, Field::ImageSource).dotted(),
                            data.len()
                        );
                        out.error(Rule::Image, out.field(i, j, Field::ImageSource), what, &detail);
                    }
                }
                ContentBlock::Document(doc) => {
                    documents += 1;
                    if message.role != Role::User {
                        out.error(
                            Rule::BlockRole,
                            path(),
                            "a document in an assistant message",
                            "You can only include images and documents if the role is user.",
                        );
                    }
                    if !has_text {
                        out.error(
                            Rule::Document,
                            path(),
                            "a document needs a text block in the same message",
                            "A text block must be included when using documents.",
                        );
                    }
                    if let Some(name) = &doc.name {
                        if !valid_document_name(name) {
                            let what = format!(
                                "document name `{name}` (a dot, slash or other character outside letters, digits, single spaces, hyphens, underscores, parentheses and brackets)"
                            );
                            let detail = "The document file name can only contain alphanumeric characters, whitespace characters, hyphens, parentheses, and square brackets. The name can't contain more than one consecutive whitespace character. Check that the file name conforms to these restrictions and retry your request.";
                            out.error(
                                Rule::Document,
                                out.field(i, j, Field::DocumentName),
                                what,
                                detail,
                            );
                        } else if !document_names.insert(name) {
                            let what = format!("document name `{name}` is used twice");
                            out.error(Rule::Document, out.field(i, j, Field::DocumentName), what, "Messages can't contain duplicate document names. Rename the document and retry your request.");
                        }
                    }
                    match &doc.format {
                        Some(format) if !DOCUMENT_FORMATS.contains(&format.as_str()) => {
                            let what = format!(
                                "document format `{format}`; use one of {}",
                                DOCUMENT_FORMATS.join(", ")
                            );
                            out.error(
                                Rule::Document,
                                out.field(i, j, Field::DocumentFormat),
                                what.clone(),
                                &what,
                            );
                        }
                        None if api == Api::Converse => {
                            let what =
                                "a document without a format (older service versions require it)";
                            out.push(
                                Rule::Document,
                                Severity::Warning,
                                out.field(i, j, Field::DocumentFormat),
                                what,
                                "format is required",
                                None,
                            );
                        }
                        _ => {}
                    }
                    if let DocumentSource::Bytes(data) = &doc.source {
                        base64(out, data, out.field(i, j, Field::DocumentBytes), "document bytes");
                    }
                    if let DocumentSource::Bytes(data) = &doc.source
                        && data.len() > MAX_DOCUMENT_BASE64
                    {
                        let what =
                            format!("document of {} base64 bytes; the limit is 4.5 MB", data.len());
                        out.error(Rule::Document, path(), what.clone(), &what);
                    }
                }
                ContentBlock::Video(_) | ContentBlock::Audio(_) => {
                    let (kind, ok) = match block {
                        ContentBlock::Video(_) => ("video", caps.video),
                        _ => ("audio", caps.audio),
                    };
                    if !ok {
                        let what = format!("{} does not take {kind}", caps.family);
                        out.error(Rule::Media, path(), what, kind);
                    }
                }
                ContentBlock::ToolUse(tool_use) => {
                    if message.role != Role::Assistant {
                        out.error(
                            Rule::BlockRole,
                            path(),
                            "tool use in a user message",
                            "toolUse blocks are only allowed in assistant messages",
                        );
                    }
                    let id = tool_use.id.as_str();
                    if !valid_tool_use_id(api, id) {
                        let pattern = match api {
                            Api::Converse => "[a-zA-Z0-9_.:-]",
                            Api::InvokeModel => "[a-zA-Z0-9_-]",
                        };
                        let what = format!("tool use id `{id}` must be 1-64 of {pattern}");
                        out.error(Rule::ToolUseId, out.field(i, j, Field::ToolUseId), what, id);
                    }
                    if !valid_tool_name(&tool_use.name) {
                        let what =
                            format!("tool name `{}` must be 1-64 of [a-zA-Z0-9_-]", tool_use.name);
                        out.error(
                            Rule::ToolName,
                            out.field(i, j, Field::ToolName),
                            what,
                            &tool_use.name,
                        );
                    }
                    if !tool_use.input.is_object() {
                        let what = format!(
                            "tool input is a JSON {}, not an object",
                            crate::json::type_name(&tool_use.input)
                        );
                        out.error(Rule::ToolInput, out.field(i, j, Field::ToolInput), what, "");
                    }
                    if let Some(&(first_i, first_j)) = tool_use_ids.get(id) {
                        let what = format!(
                            "tool use id `{id}` is also used at {}",
                            out.block(first_i, first_j)
                        );
                        let at = wire::message(i).key("content");
                        out.push_at(
                            Rule::DuplicateToolUseId,
                            Severity::Error,
                            path(),
                            &at,
                            what,
                            id,
                            None,
                        );
                    } else {
                        tool_use_ids.insert(id, (i, j));
                    }
                }
                ContentBlock::ToolResult(result) => {
                    if message.role != Role::User {
                        out.error(
                            Rule::BlockRole,
                            path(),
                            "a tool result in an assistant message",
                            "toolResult blocks are only allowed in user messages",
                        );
                    }
                    tool_result(out, i, j, result);
                }
                ContentBlock::CachePoint(point) => cache_point(out, message, i, j, point),
                _ => {}
            }
        }
    }
    if images > MAX_IMAGES || documents > MAX_DOCUMENTS {
        let what = format!(
            "{images} images and {documents} documents; at most {MAX_IMAGES} images and {MAX_DOCUMENTS} documents"
        );
        let detail = format!("{images} + {documents} > {MAX_IMAGES}");
        out.error(Rule::MediaCount, JsonPath::root().key("messages"), what, &detail);
    }
}

/// Whether `text` is standard base64 (RFC 4648 alphabet, padded), as a blob member takes it.
fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return false;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    padding <= 2
        && bytes[..bytes.len() - padding]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// A warning when inline bytes are not standard base64 (see the rule: Bedrock's answer to
/// them is not recorded).
fn base64(out: &mut Out<'_>, data: &str, path: JsonPath, what: &str) {
    if is_base64(data) {
        return;
    }
    let shown: String = data.chars().take(16).flat_map(char::escape_debug).collect();
    let what = format!(
        "{what} are not standard base64 (A-Z, a-z, 0-9, + and /, padded with = to a multiple of 4 characters; starting `{shown}`)"
    );
    out.push(Rule::Base64, Severity::Warning, path, what, "", None);
}

fn valid_document_name(name: &str) -> bool {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '(' | ')' | '[' | ']');
    (1..=200).contains(&name.chars().count())
        && name.chars().all(|c| allowed(c) || c == ' ')
        && !name.contains("  ")
        && name.chars().any(allowed)
}

fn unmapped_keys(unmapped: &verbatim_model::Unmapped) -> String {
    let keys: Vec<&str> =
        unmapped.converse.keys().chain(unmapped.anthropic.keys()).map(String::as_str).collect();
    keys.join(", ")
}

fn block_unmapped(block: &ContentBlock) -> Option<String> {
    let unmapped = match block {
        ContentBlock::Text(b) => &b.unmapped,
        ContentBlock::Image(b) => &b.unmapped,
        ContentBlock::Document(b) => &b.unmapped,
        ContentBlock::Video(b) | ContentBlock::Audio(b) => &b.unmapped,
        ContentBlock::ToolUse(b) => &b.unmapped,
        ContentBlock::ToolResult(b) => &b.unmapped,
        ContentBlock::Thinking(b) => &b.unmapped,
        ContentBlock::RedactedThinking(b) => &b.unmapped,
        _ => return None,
    };
    (!unmapped.is_empty()).then(|| unmapped_keys(unmapped))
}

fn clear_unmapped(block: &mut ContentBlock) {
    let unmapped = match block {
        ContentBlock::Text(b) => &mut b.unmapped,
        ContentBlock::Image(b) => &mut b.unmapped,
        ContentBlock::Document(b) => &mut b.unmapped,
        ContentBlock::Video(b) | ContentBlock::Audio(b) => &mut b.unmapped,
        ContentBlock::ToolUse(b) => &mut b.unmapped,
        ContentBlock::ToolResult(b) => &mut b.unmapped,
        _ => return,
    };
    *unmapped = Default::default();
}
