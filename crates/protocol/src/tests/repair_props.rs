//! Randomly broken conversations: repair always ends with a request that passes strict
//! validation, keeps every thinking block it sends byte for byte (and never turns reasoning
//! into text), decides the same fixes every time, and its recorded fixes replay to the same
//! request.

use proptest::prelude::*;
use serde_json::{Number, json};
use verbatim_model::{
    Api, CachePoint, ContentBlock, HistoryMessage, InferenceConfig, Message, Provenance,
    RedactedForm, RedactedThinking, Role, ThinkingBlock, ThinkingConfig, ThinkingMode, Tool,
    ToolChoice, ToolChoiceKind, ToolResult, ToolResultBlock, ToolResultContent, ToolSpec, ToolUse,
    Unmapped,
};

use super::replay::replay_turn;
use crate::assemble::{Assembly, Policy, TurnConfig, assemble, encode, prefix_hash, validate_body};

/// Models with different capability rows, and the thinking each takes.
const MODELS: &[(&str, Option<ThinkingMode>)] = &[
    (
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        Some(ThinkingMode::Enabled { budget_tokens: 2048 }),
    ),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", None),
    ("global.anthropic.claude-sonnet-4-6", Some(ThinkingMode::Adaptive { effort: None })),
    ("anthropic.claude-opus-4-7", Some(ThinkingMode::Adaptive { effort: None })),
    ("anthropic.claude-opus-5-5", Some(ThinkingMode::Adaptive { effort: None })),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", None),
    ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/p1", None),
];

/// What can break in a stored conversation. Repair can fix each of them, but two can
/// combine with others into a history no repair may fix: thinking moved behind other blocks
/// or unsigned in the message an unfinished tool loop continues from (its thinking is never
/// changed, and some models cannot turn thinking off).
#[derive(Debug, Clone, Copy)]
enum Break {
    DropResult,
    DuplicateResult,
    TextBeforeResults,
    BlankText,
    EmptyMessage,
    Unsign,
    SplitAssistant,
    LeadingAssistant,
    StrayResult,
    InjectedUserText,
    Temperature,
    SmallBudget,
    CachePoints,
    ThinkingAfterText,
    NoTools,
    ForcedToolChoice,
    ReasoningOnlyTurn,
    EmptyErrorResult,
    JsonArrayResult,
    TrailingWhitespace,
    ThinkingInUserMessage,
}

const BREAKS: &[Break] = &[
    Break::DropResult,
    Break::DuplicateResult,
    Break::TextBeforeResults,
    Break::BlankText,
    Break::EmptyMessage,
    Break::Unsign,
    Break::SplitAssistant,
    Break::LeadingAssistant,
    Break::StrayResult,
    Break::InjectedUserText,
    Break::Temperature,
    Break::SmallBudget,
    Break::CachePoints,
    Break::ThinkingAfterText,
    Break::NoTools,
    Break::ForcedToolChoice,
    Break::ReasoningOnlyTurn,
    Break::EmptyErrorResult,
    Break::JsonArrayResult,
    Break::TrailingWhitespace,
    Break::ThinkingInUserMessage,
];

/// Reads choices off a random tape (proptest shrinks the tape).
struct Tape(Vec<u8>, usize);

impl Tape {
    fn next(&mut self, n: usize) -> usize {
        let byte = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        usize::from(byte) % n.max(1)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.next(100) < percent
    }
}

fn thinking(text: String, n: usize) -> ContentBlock {
    ContentBlock::Thinking(ThinkingBlock {
        text,
        signature: Some(format!("EqQB{n:04}signature")),
        unmapped: Unmapped::default(),
    })
}

/// Redacted thinking in the form the API returned it (Converse wraps Anthropic's data in one
/// more layer of base64).
fn redacted(api: Api, n: usize) -> ContentBlock {
    use base64::Engine as _;
    let data = format!("EuoBCkYIBxgC{n:04}redacted");
    let (data, form) = match api {
        Api::Converse => {
            (base64::engine::general_purpose::STANDARD.encode(data), RedactedForm::ConverseBlob)
        }
        Api::InvokeModel | Api::Messages => (data, RedactedForm::AnthropicData),
    };
    ContentBlock::RedactedThinking(RedactedThinking { data, form, unmapped: Unmapped::default() })
}

fn tool_use(id: &str) -> ContentBlock {
    ContentBlock::ToolUse(ToolUse {
        id: id.into(),
        name: "lookup".to_owned(),
        input: json!({"q": id}),
        kind: None,
        unmapped: Unmapped::default(),
    })
}

fn result(id: &str, blocks: Vec<ToolResultBlock>) -> ContentBlock {
    ContentBlock::ToolResult(ToolResult {
        tool_use_id: id.into(),
        content: Some(ToolResultContent::Blocks(blocks)),
        status: None,
        unmapped: Unmapped::default(),
    })
}

fn ok_result(id: &str) -> ContentBlock {
    result(id, vec![ToolResultBlock::Text { text: format!("result of {id}") }])
}

/// A valid conversation: user turns, tool loops, thinking first in every assistant message
/// when thinking is on; it may end with an unfinished tool loop.
fn conversation(tape: &mut Tape, model: &str, api: Api, thinks: bool) -> Vec<HistoryMessage> {
    let mut out: Vec<HistoryMessage> = Vec::new();
    let mut ids = 0;
    let mut signatures = 0;
    let mut think = |tape: &mut Tape, blocks: &mut Vec<ContentBlock>| {
        if thinks {
            signatures += 1;
            // Arbitrary reasoning text: whitespace, CRLF and non-ASCII included.
            let texts = ["", " step\r\n", "×✓ plan", "<thinking>\n", "a  b"];
            blocks.push(thinking(texts[tape.next(texts.len())].to_owned(), signatures));
            if tape.chance(20) {
                blocks.push(redacted(api, signatures));
            }
        }
    };
    let assistant = |blocks: Vec<ContentBlock>| HistoryMessage {
        message: Message::new(Role::Assistant, blocks),
        provenance: Some(Provenance::new(model, api)),
    };
    let turns = 1 + tape.next(4);
    for turn in 0..turns {
        out.push(Message::user_text(format!("question {turn}")).into());
        let loops = tape.next(3);
        let open = turn + 1 == turns && tape.chance(30);
        for step in 0..loops + usize::from(open) {
            let mut blocks = Vec::new();
            think(tape, &mut blocks);
            let calls = 1 + tape.next(2);
            let call_ids: Vec<String> = (0..calls)
                .map(|_| {
                    ids += 1;
                    format!("tooluse_{ids}")
                })
                .collect();
            call_ids.iter().for_each(|id| blocks.push(tool_use(id)));
            out.push(assistant(blocks));
            out.push(
                Message::new(Role::User, call_ids.iter().map(|id| ok_result(id)).collect()).into(),
            );
            let _ = step;
        }
        if open {
            break;
        }
        let mut blocks = Vec::new();
        think(tape, &mut blocks);
        blocks.push(ContentBlock::text(format!("answer {turn}")));
        out.push(assistant(blocks));
    }
    if out.last().is_some_and(|m| m.message.role == Role::Assistant) {
        out.push(Message::user_text("next question").into());
    }
    out
}

fn pick(
    tape: &mut Tape,
    history: &[HistoryMessage],
    role: Role,
    pred: impl Fn(&Message) -> bool,
) -> Option<usize> {
    let candidates: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, h)| h.message.role == role && pred(&h.message))
        .map(|(i, _)| i)
        .collect();
    (!candidates.is_empty()).then(|| candidates[tape.next(candidates.len())])
}

fn is_thinking(b: &ContentBlock) -> bool {
    matches!(b, ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_))
}

fn has_results(m: &Message) -> bool {
    m.content.iter().any(|b| matches!(b, ContentBlock::ToolResult(_)))
}

/// The index of the last assistant message, and of the first one of an unfinished loop:
/// thinking there is never changed by repair, so breaks that need such a change avoid them.
fn protected(history: &[HistoryMessage]) -> Vec<usize> {
    let mut out: Vec<usize> =
        history.iter().rposition(|h| h.message.role == Role::Assistant).into_iter().collect();
    if history.last().is_some_and(|h| has_results(&h.message)) {
        let mut i = history.len() - 1;
        while i > 0
            && (history[i - 1].message.role == Role::Assistant
                || has_results(&history[i - 1].message))
        {
            i -= 1;
            if history[i].message.role == Role::Assistant {
                out.push(i);
            }
        }
    }
    out
}

fn apply(tape: &mut Tape, history: &mut Vec<HistoryMessage>, turn: &mut TurnConfig, broken: Break) {
    let protected = protected(history);
    match broken {
        Break::DropResult => {
            if let Some(i) = pick(tape, history, Role::User, has_results) {
                let j = tape.next(history[i].message.content.len());
                if matches!(history[i].message.content[j], ContentBlock::ToolResult(_)) {
                    history[i].message.content.remove(j);
                }
            }
        }
        Break::DuplicateResult => {
            if let Some(i) = pick(tape, history, Role::User, has_results) {
                let copy = history[i].message.content[0].clone();
                history[i].message.content.push(copy);
            }
        }
        Break::TextBeforeResults => {
            if let Some(i) = pick(tape, history, Role::User, has_results) {
                history[i].message.content.insert(0, ContentBlock::text("note"));
            }
        }
        Break::BlankText => {
            let i = tape.next(history.len());
            let blank = ["", " ", "\n"][tape.next(3)];
            let assistant = history[i].message.role == Role::Assistant;
            let content = &mut history[i].message.content;
            let at = if assistant { content.len().saturating_sub(1) } else { content.len() };
            // Never in front of thinking, which must stay first.
            let at = if content.first().is_some_and(is_thinking) { at.max(1) } else { at };
            content.insert(at.min(content.len()), ContentBlock::text(blank));
        }
        Break::EmptyMessage => {
            let i = tape.next(history.len() + 1);
            let role = if tape.chance(50) { Role::User } else { Role::Assistant };
            history.insert(i, Message::new(role, Vec::new()).into());
        }
        Break::Unsign => {
            if let Some(i) =
                pick(tape, history, Role::Assistant, |m| m.content.first().is_some_and(is_thinking))
            {
                if protected.contains(&i) && history.last().is_some_and(|h| has_results(&h.message))
                {
                    return;
                }
                if let ContentBlock::Thinking(t) = &mut history[i].message.content[0] {
                    t.signature = if tape.chance(50) { None } else { Some(String::new()) };
                }
            }
        }
        Break::SplitAssistant => {
            // Stored the way some clients store a turn: its reasoning in one message, the
            // rest in the next (recorded traffic shows Bedrock accepting it). All of it: a
            // cache point between two reasoning blocks stays with them, or the second part
            // would carry reasoning, which no repair can merge back (rule alternation).
            let leading =
                |m: &Message| m.content.iter().rposition(is_thinking).map_or(1, |p| p + 1);
            if let Some(i) = pick(tape, history, Role::Assistant, |m| m.content.len() > leading(m))
            {
                let at = leading(&history[i].message);
                let rest = history[i].message.content.split_off(at);
                let mut second = history[i].clone();
                second.message.content = rest;
                history.insert(i + 1, second);
            }
        }
        Break::LeadingAssistant => {
            let first = HistoryMessage::from(Message::assistant_text("Hello, how can I help?"));
            history.insert(0, first);
        }
        Break::StrayResult => {
            if let Some(i) = pick(tape, history, Role::User, |_| true) {
                history[i].message.content.insert(0, ok_result("tooluse_stale"));
            }
        }
        Break::InjectedUserText => {
            if let Some(i) = pick(tape, history, Role::User, has_results) {
                history.insert(i + 1, Message::user_text("<system-notice>").into());
            }
        }
        Break::Temperature => {
            let inference = turn.inference.get_or_insert_with(Default::default);
            inference.temperature = Some(Number::from_f64(0.3).unwrap());
            inference.top_p = Some(Number::from_f64(0.9).unwrap());
            turn.top_k = Some(40);
        }
        Break::SmallBudget => {
            if let Some(ThinkingConfig { mode: ThinkingMode::Enabled { budget_tokens }, .. }) =
                &mut turn.thinking
            {
                *budget_tokens = [100, 4096, 9000][tape.next(3)];
            }
        }
        Break::CachePoints => {
            for _ in 0..1 + tape.next(6) {
                let i = tape.next(history.len());
                let j = tape.next(history[i].message.content.len() + 1);
                let ttl =
                    [None, Some("5m"), Some("1h"), Some("2h")][tape.next(4)].map(str::to_owned);
                history[i].message.content.insert(j, ContentBlock::CachePoint(CachePoint { ttl }));
            }
        }
        Break::ThinkingAfterText => {
            let candidates: Vec<usize> = (0..history.len())
                .filter(|i| !protected.contains(i) && history[*i].message.role == Role::Assistant)
                .filter(|i| history[*i].message.content.first().is_some_and(is_thinking))
                .collect();
            if !candidates.is_empty() {
                let i = candidates[tape.next(candidates.len())];
                history[i].message.content.rotate_left(1);
            }
        }
        Break::NoTools => turn.tools = None,
        Break::ForcedToolChoice => turn.tool_choice = Some(ToolChoice::new(ToolChoiceKind::Any)),
        Break::ReasoningOnlyTurn => {
            if turn.thinking.is_some() && history.last().is_some_and(|h| !has_results(&h.message)) {
                let n = 9000 + tape.next(100);
                let model = turn.model_id.clone();
                history.push(HistoryMessage {
                    message: Message::new(Role::Assistant, vec![thinking("cut off".to_owned(), n)]),
                    provenance: Some(Provenance::new(model, Api::Converse)),
                });
            }
        }
        Break::EmptyErrorResult => {
            if let Some(i) = pick(tape, history, Role::User, has_results)
                && let ContentBlock::ToolResult(r) = &mut history[i].message.content[0]
            {
                r.content = Some(ToolResultContent::Blocks(Vec::new()));
                r.status = Some(verbatim_model::ToolResultStatus::Error);
            }
        }
        Break::JsonArrayResult => {
            if let Some(i) = pick(tape, history, Role::User, has_results)
                && let ContentBlock::ToolResult(r) = &mut history[i].message.content[0]
            {
                r.content = Some(ToolResultContent::Blocks(vec![ToolResultBlock::Json {
                    json: json!([1, "two"]),
                }]));
            }
        }
        Break::TrailingWhitespace => {
            let prefill = crate::capability::capabilities(Some(&turn.model_id)).prefill;
            if prefill
                && turn.thinking.is_none()
                && history
                    .last()
                    .is_some_and(|h| h.message.role == Role::User && !has_results(&h.message))
            {
                history.push(Message::assistant_text("The answer is ").into());
            }
        }
        Break::ThinkingInUserMessage => {
            if let Some(i) = pick(tape, history, Role::User, |_| true) {
                history[i].message.content.push(thinking("user-side".to_owned(), 7777));
            }
        }
    }
}

/// Breaks that never combine into an unfixable history.
fn always_fixable(broken: Break) -> bool {
    !matches!(broken, Break::ThinkingAfterText | Break::Unsign)
}

fn case(tape: Vec<u8>, fixable_only: bool) -> (Vec<HistoryMessage>, TurnConfig) {
    let mut tape = Tape(tape, 0);
    let (model, mode) = &MODELS[tape.next(MODELS.len())];
    let api = if tape.chance(50) { Api::Converse } else { Api::InvokeModel };
    let mut turn = TurnConfig::new(*model, api);
    turn.inference = Some(InferenceConfig { max_tokens: Some(8192), ..Default::default() });
    turn.thinking = mode.clone().map(ThinkingConfig::new);
    turn.tools = Some(vec![Tool::Spec(ToolSpec {
        name: "lookup".to_owned(),
        description: Some("Looks things up.".to_owned()),
        input_schema: json!({"type": "object"}),
        strict: None,
        unmapped: Unmapped::default(),
    })]);
    let thinks =
        turn.thinking.is_some() || crate::capability::capabilities(Some(model)).thinking.always_on;
    let mut history = conversation(&mut tape, model, api, thinks);
    if !fixable_only {
        // What a store records beside the history, and what can make a repair impossible:
        // the prefix each thinking turn was produced after, another model's turns, and the
        // setting an unfinished tool loop started with.
        if tape.chance(40) {
            let sent = assemble(&history, &turn, Policy::Strict).request;
            for (i, item) in history.iter_mut().enumerate() {
                if let Some(provenance) = &mut item.provenance {
                    provenance.prefix_hash = Some(prefix_hash(&sent, i));
                }
            }
        }
        if tape.chance(25)
            && let Some(i) = pick(&mut tape, &history, Role::Assistant, |_| true)
        {
            let other = "us.anthropic.claude-3-7-sonnet-20250219-v1:0";
            history[i].provenance = Some(Provenance::new(other, api));
        }
        if tape.chance(30) {
            let options = [
                None,
                turn.thinking.clone(),
                Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 9000 })),
                Some(ThinkingConfig::new(ThinkingMode::Adaptive { effort: None })),
            ];
            turn.open_turn_thinking = Some(options[tape.next(options.len())].clone());
        }
    }
    for _ in 0..1 + tape.next(4) {
        let breaks: Vec<Break> =
            BREAKS.iter().copied().filter(|b| !fixable_only || always_fixable(*b)).collect();
        let broken = breaks[tape.next(breaks.len())];
        apply(&mut tape, &mut history, &mut turn, broken);
    }
    (history, turn)
}

/// Every thinking and redacted thinking block sent, with its text and signature (or data), in
/// order.
fn thinking_blocks(messages: &[Message]) -> Vec<(String, String)> {
    messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            ContentBlock::Thinking(t) => {
                Some((t.text.clone(), t.signature.clone().unwrap_or_default()))
            }
            ContentBlock::RedactedThinking(r) => Some((String::new(), r.data.clone())),
            _ => None,
        })
        .collect()
}

/// The properties every repair has, whether or not it could fix everything: what it sends
/// passes strict validation exactly as reported, thinking is sent unchanged or not at all and
/// never as text, and the same input gives the same fixes, which replay to the same request.
fn check_repair(history: &[HistoryMessage], turn: &TurnConfig) -> Result<Assembly, TestCaseError> {
    let repaired = assemble(history, turn, Policy::Repair);

    // The recorded fixes replay to the same request, strict validation finds exactly what
    // repair reports, and repairing again finds nothing left to fix.
    let replay = replay_turn(turn, &repaired);
    let replayed = assemble(history, &replay, Policy::Strict);
    prop_assert_eq!(&replayed.request, &repaired.request);
    prop_assert_eq!(&replayed.diagnostics, &repaired.diagnostics);
    let again = assemble(history, &replay, Policy::Repair);
    prop_assert!(again.fixes.is_empty(), "repair is not idempotent: {:#?}", again.fixes);

    if let Some(body) = &repaired.body {
        prop_assert_eq!(&encode(turn.api, &repaired.request).unwrap(), body);
        let bytes = serde_json::to_vec(body).unwrap();
        let raw = validate_body(turn.api, Some(&turn.model_id), &bytes).unwrap();
        prop_assert!(
            raw.is_valid(),
            "the repaired body fails strict validation: {:#?}",
            raw.diagnostics
        );
    }

    // Thinking is sent unchanged or not at all, in its order, and never as text.
    let original = thinking_blocks(&history.iter().map(|h| h.message.clone()).collect::<Vec<_>>());
    let sent = thinking_blocks(&repaired.request.messages);
    let mut rest = original.iter();
    for block in &sent {
        prop_assert!(rest.any(|o| o == block), "thinking changed or reordered: {:?}", block);
    }
    let texts: Vec<&str> = repaired
        .request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    for (text, _) in &original {
        if !text.trim().is_empty() {
            prop_assert!(!texts.contains(&text.as_str()), "reasoning became text: {:?}", text);
        }
    }

    prop_assert_eq!(&assemble(history, turn, Policy::Repair), &repaired, "not deterministic");
    Ok(repaired)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn repaired_requests_pass_strict_validation(tape in prop::collection::vec(any::<u8>(), 8..96)) {
        let (history, turn) = case(tape, true);
        let repaired = check_repair(&history, &turn)?;
        prop_assert!(
            repaired.is_valid(),
            "repair left errors: {:#?}\nfixes: {:#?}\nhistory: {:#?}",
            repaired.diagnostics,
            repaired.fixes,
            history
        );
        prop_assert!(repaired.body.is_some());
    }

    #[test]
    fn any_repair_is_consistent_and_keeps_thinking(tape in prop::collection::vec(any::<u8>(), 8..96)) {
        let (history, turn) = case(tape, false);
        check_repair(&history, &turn)?;
    }
}
