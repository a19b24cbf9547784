//! The assembler on stored histories: the failure scenarios of the peer survey that need a
//! history (provenance, an unfinished tool loop, recorded fixes), and the rules a raw body
//! cannot show.

use serde_json::json;
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, MediaBlock, MediaSource, Message, Provenance, Role,
    SystemPrompt, TextBlock, ThinkingBlock, ThinkingConfig, ThinkingMode, Tool, ToolResult,
    ToolResultBlock, ToolResultContent, ToolSpec, ToolUse, Unmapped,
};

use super::replay::replay_turn;
use crate::assemble::{
    Action, Assembler, Assembly, Fix, Policy, Prepared, Severity, TurnConfig, assemble,
    assemble_request, assemble_request_from, prefix_hash, validate_body,
};
use crate::rules::Rule;

const SONNET4: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const OPUS55: &str = "global.anthropic.claude-opus-5-5";
const SIGNATURE: &str = "EqQBCkYIBxgCKkD0signature0bytes0for0tests";

fn thinking(text: &str) -> ContentBlock {
    ContentBlock::Thinking(ThinkingBlock {
        text: text.to_owned(),
        signature: Some(SIGNATURE.to_owned()),
        unmapped: Unmapped::default(),
    })
}

fn tool_use(id: &str) -> ContentBlock {
    ContentBlock::ToolUse(ToolUse {
        id: id.into(),
        name: "get_weather".to_owned(),
        input: json!({"city": "Paris"}),
        kind: None,
        unmapped: Unmapped::default(),
    })
}

fn tool_result(id: &str) -> ContentBlock {
    ContentBlock::ToolResult(ToolResult {
        tool_use_id: id.into(),
        content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text {
            text: "18C".to_owned(),
        }])),
        status: None,
        unmapped: Unmapped::default(),
    })
}

fn user(blocks: Vec<ContentBlock>) -> HistoryMessage {
    Message::new(Role::User, blocks).into()
}

fn assistant(model: &str, blocks: Vec<ContentBlock>) -> HistoryMessage {
    HistoryMessage {
        message: Message::new(Role::Assistant, blocks),
        provenance: Some(Provenance::new(model, Api::Converse)),
    }
}

fn weather_tool() -> Tool {
    Tool::Spec(ToolSpec {
        name: "get_weather".to_owned(),
        description: None,
        input_schema: json!({"type": "object"}),
        strict: None,
        unmapped: Unmapped::default(),
    })
}

fn turn(model: &str) -> TurnConfig {
    let mut turn = TurnConfig::new(model, Api::Converse);
    turn.tools = Some(vec![weather_tool()]);
    turn.inference =
        Some(verbatim_model::InferenceConfig { max_tokens: Some(4096), ..Default::default() });
    turn.thinking = Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 2048 }));
    turn
}

fn rules(assembly: &Assembly) -> Vec<Rule> {
    assembly.diagnostics.iter().map(|d| d.rule).collect()
}

fn fixed(assembly: &Assembly) -> Vec<Rule> {
    assembly.fixes.iter().map(|f| f.diagnostic.rule).collect()
}

/// The thinking texts and signatures of a request, in order.
fn thinking_of(messages: &[Message]) -> Vec<(String, Option<String>)> {
    messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            ContentBlock::Thinking(t) => Some((t.text.clone(), t.signature.clone())),
            _ => None,
        })
        .collect()
}

/// Replays the history-changing fixes of `assembly` as recorded fixes: the strict assembly
/// of the same history must give the same request with nothing left to fix.
fn assert_replays(history: &[HistoryMessage], turn: &TurnConfig, assembly: &Assembly) {
    let strict = assemble(history, &replay_turn(turn, assembly), Policy::Strict);
    assert_eq!(strict.request, assembly.request, "replayed fixes give another request");
    assert!(strict.is_valid(), "replayed request invalid: {:?}", strict.diagnostics);
    assert_eq!(strict.body, assembly.body);
}

#[test]
fn a_request_assembled_over_an_earlier_ones_messages_is_the_request_assembled_afresh() {
    let history = vec![
        user(vec![ContentBlock::text("Weather in Paris?")]),
        assistant(SONNET4, vec![thinking("Look it up."), tool_use("tooluse_1")]),
        user(vec![tool_result("tooluse_1")]),
        assistant(SONNET4, vec![ContentBlock::text("18C.")]),
        user(vec![ContentBlock::text("And tomorrow?")]),
    ];
    let messages: Vec<Message> = history.iter().map(|h| h.message.clone()).collect();
    let mut edited = messages.clone();
    edited[2] = Message::user_text("Not the stored message.");
    let foreign = "us.anthropic.claude-opus-4-5-20251101-v1:0";
    // The whole history, a shorter request, one whose third message differs, more messages
    // than the history, none; and a model whose repair drops the earlier thinking.
    let cases = [
        (SONNET4, messages.clone(), 5),
        (SONNET4, messages[..3].to_vec(), 3),
        (SONNET4, edited, 2),
        (SONNET4, [&messages[..], &messages[..2]].concat(), 5),
        (SONNET4, Vec::new(), 0),
        (foreign, messages.clone(), 5),
    ];
    for (model, earlier, expected) in cases {
        let afresh = assemble_request(&history, &turn(model), Policy::Repair);
        let (over, same) = assemble_request_from(&history, earlier, &turn(model), Policy::Repair);
        assert_eq!(same, expected, "{model}");
        assert_eq!(over, afresh, "{model}");
        assert!(over.is_valid(), "{:?}", over.diagnostics);
    }
}

/// Checks that `prepared` is what assembling `history` afresh gives, sends it, and checks the
/// prefix hash `sent` gives. Returns how many messages its body copied from the last one.
fn send_checked(
    assembler: &mut Assembler,
    prepared: Prepared,
    history: &[HistoryMessage],
    turn: &TurnConfig,
) -> usize {
    let afresh = assemble(history, turn, Policy::Repair);
    assert_eq!(prepared.assembly().request, afresh.request);
    assert_eq!(prepared.assembly().fixes, afresh.fixes);
    assert_eq!(prepared.assembly().diagnostics, afresh.diagnostics);
    let text = afresh.body.as_ref().map(|body| body.to_string());
    let sent = prepared.body().map(|bytes| String::from_utf8(bytes.to_vec()).unwrap());
    assert_eq!(sent, text);
    assert_eq!(prepared.body_len(), text.as_ref().map(String::len));
    let reused = prepared.reused();
    let hash = assembler.sent(prepared);
    assert_eq!(hash, prefix_hash(&afresh.request, afresh.request.messages.len()));
    reused
}

#[test]
fn an_assembler_gives_what_assembling_afresh_gives_turn_after_turn() {
    let mut history = vec![user(vec![ContentBlock::text("Weather in Paris?")])];
    let mut turn = turn(SONNET4);
    let mut assembler = Assembler::new();
    let first = assembler.next(&history, &turn, Policy::Repair);
    assert_eq!(send_checked(&mut assembler, first, &history, &turn), 0);

    // The reply asks for a tool; its result follows: the body copies the first message.
    history.push(assistant(SONNET4, vec![thinking("Look it up."), tool_use("tooluse_1")]));
    history.push(user(vec![tool_result("tooluse_1")]));
    let next = assembler.next(&history, &turn, Policy::Repair);
    assert_eq!(send_checked(&mut assembler, next, &history, &turn), 1);

    // A turn the process died in: the tool's result is missing when new input arrives, and
    // repair inserts it (a history fix: nothing is copied without comparing).
    history.push(assistant(SONNET4, vec![thinking("Again."), tool_use("tooluse_2")]));
    history.push(user(vec![ContentBlock::text("Are you there?")]));
    let repaired = assembler.next(&history, &turn, Policy::Repair);
    assert!(repaired.assembly().fixes.iter().any(|f| f.action.changes_history()));
    let fixes = repaired.assembly().fixes.clone();
    send_checked(&mut assembler, repaired, &history, &turn);

    // The fix, recorded, is replayed on the next request: the history is copied and the
    // body compared with the last one's messages.
    turn.recorded_fixes = fixes;
    history.push(assistant(SONNET4, vec![ContentBlock::text("Yes: 18C.")]));
    history.push(user(vec![ContentBlock::text("And tomorrow?")]));
    let replayed = assembler.next(&history, &turn, Policy::Repair);
    assert!(send_checked(&mut assembler, replayed, &history, &turn) >= 3);

    // A view (old turns left out) is sent; the next whole request is right all the same.
    let view = Assembler::view(&history[5..], &turn, Policy::Repair);
    send_checked(&mut assembler, view, &history[5..], &turn);
    history.push(assistant(SONNET4, vec![ContentBlock::text("19C.")]));
    history.push(user(vec![ContentBlock::text("Thanks.")]));
    let whole = assembler.next(&history, &turn, Policy::Repair);
    send_checked(&mut assembler, whole, &history, &turn);

    // A prepared request dropped unsent, then one for the other API: nothing is reused
    // wrongly.
    drop(assembler.next(&history, &turn, Policy::Repair));
    turn.api = Api::InvokeModel;
    let other = assembler.next(&history, &turn, Policy::Repair);
    assert_eq!(send_checked(&mut assembler, other, &history, &turn), 0);
    // The same history again: every message of the body is copied.
    let again = assembler.next(&history, &turn, Policy::Repair);
    let messages = again.assembly().request.messages.len();
    assert_eq!(send_checked(&mut assembler, again, &history, &turn), messages);
}

#[test]
fn crash_during_a_tool_call_gets_an_interrupted_result_first_and_keeps_thinking() {
    // Scenario 1: U(txt) · A(think(sig), use:t1) persisted, then the process died; the next
    // input arrives.
    let history = vec![
        user(vec![ContentBlock::text("Weather in Paris?")]),
        assistant(SONNET4, vec![thinking("I should call the tool.\r\n "), tool_use("t1")]),
        user(vec![ContentBlock::text("Are you there?")]),
    ];
    let turn = turn(SONNET4);
    let strict = assemble(&history, &turn, Policy::Strict);
    assert!(!strict.is_valid());
    assert_eq!(strict.diagnostics[0].rule, Rule::ResultMissing);
    assert_eq!(strict.diagnostics[0].path.to_string(), "messages[1].content[1]");
    assert!(strict.diagnostics[0].message.contains("`tool_use` ids were found without"));
    assert_eq!(strict.body, None);

    let repaired = assemble(&history, &turn, Policy::Repair);
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    assert_eq!(fixed(&repaired), vec![Rule::ResultMissing]);
    let sent = &repaired.request.messages[2];
    let ContentBlock::ToolResult(result) = &sent.content[0] else {
        panic!("the interrupted result comes first: {sent:?}")
    };
    assert_eq!(result.tool_use_id.as_str(), "t1");
    assert_eq!(result.status, Some(verbatim_model::ToolResultStatus::Error));
    assert_eq!(sent.content[1], ContentBlock::text("Are you there?"));
    assert_eq!(
        thinking_of(&repaired.request.messages),
        vec![("I should call the tool.\r\n ".to_owned(), Some(SIGNATURE.to_owned()))]
    );
    let body = repaired.body.as_ref().unwrap();
    assert_eq!(
        body["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]["text"],
        "I should call the tool.\r\n "
    );
    assert_replays(&history, &turn, &repaired);
    // Deterministic: the same input gives the same fixes.
    assert_eq!(assemble(&history, &turn, Policy::Repair), repaired);
}

#[test]
fn repair_is_replayed_identically_on_a_longer_history() {
    // The repair decided for the request above is recorded; the conversation goes on; the
    // recorded fixes replay on the longer history and nothing new is decided.
    let mut history = vec![
        user(vec![ContentBlock::text("Weather in Paris?")]),
        assistant(SONNET4, vec![thinking("Call it."), tool_use("t1")]),
        user(vec![ContentBlock::text("Are you there?")]),
    ];
    let turn = turn(SONNET4);
    let first = assemble(&history, &turn, Policy::Repair);
    // Stored and read back as JSON, as the store does.
    let recorded: Vec<Fix> =
        serde_json::from_value(serde_json::to_value(&first.fixes).unwrap()).unwrap();
    assert_eq!(recorded, first.fixes);
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].guard.is_some());
    history.push(assistant(SONNET4, vec![thinking("Answer now."), ContentBlock::text("Yes.")]));
    history.push(user(vec![ContentBlock::text("Thanks")]));
    let mut later = turn.clone();
    later.recorded_fixes = recorded.clone();
    let second = assemble(&history, &later, Policy::Repair);
    assert!(second.fixes.is_empty(), "{:?}", second.fixes);
    assert!(second.is_valid());
    assert_eq!(second.request.messages[..3], first.request.messages[..]);

    // A recorded fix that does not fit the history is an error, not a silent edit.
    let mut wrong = turn.clone();
    let mut misplaced = recorded[0].clone();
    misplaced.action = Action::DropBlock { message: 0, block: 0, kind: "toolUse".to_owned() };
    misplaced.guard = None;
    wrong.recorded_fixes = vec![misplaced];
    let refused = assemble(&history, &wrong, Policy::Strict);
    assert!(!refused.is_valid());
    assert!(refused.diagnostics[0].message.contains("recorded fix 0 does not apply"));
}

#[test]
fn recorded_fixes_replayed_on_another_history_are_refused() {
    // Fixes decided on one history: a leading assistant message dropped, then the two user
    // messages it separated merged.
    let decided_on = vec![
        user(vec![ContentBlock::text("Hi")]),
        user(vec![ContentBlock::text("Hello?")]),
        assistant(SONNET4, vec![ContentBlock::text("Hello.")]),
        user(vec![ContentBlock::text("Bye")]),
    ];
    let mut turn = turn(SONNET4);
    turn.thinking = None;
    let repaired = assemble(&decided_on, &turn, Policy::Repair);
    assert_eq!(repaired.fixes.len(), 1);
    assert_eq!(repaired.fixes[0].action, Action::MergeWithNext { message: 0 });

    // The same actions on a history whose first messages differ must not apply.
    let other = vec![
        user(vec![ContentBlock::text("Something else")]),
        user(vec![ContentBlock::text("Entirely")]),
        assistant(SONNET4, vec![ContentBlock::text("important answer")]),
        user(vec![ContentBlock::text("Bye")]),
    ];
    let mut replay = turn.clone();
    replay.recorded_fixes = repaired.fixes.clone();
    let refused = assemble(&other, &replay, Policy::Strict);
    assert!(!refused.is_valid());
    assert!(refused.diagnostics[0].message.contains("not the message the fix was decided on"));
    assert_eq!(refused.request.messages.len(), 4, "nothing was merged");
    // Without the guard, structural checks still refuse a merge of different roles.
    let mut unguarded = repaired.fixes[0].clone();
    unguarded.guard = None;
    unguarded.action = Action::MergeWithNext { message: 1 };
    replay.recorded_fixes = vec![unguarded];
    let refused = assemble(&other, &replay, Policy::Strict);
    assert!(refused.diagnostics[0].message.contains("different roles"));
    assert_eq!(refused.request.messages.len(), 4);
}

#[test]
fn thinking_enabled_mid_loop_is_deferred_to_the_next_user_turn() {
    // Scenario 28: U · A(use:t1) without thinking · U(res:t1), thinking now on.
    let history = vec![
        user(vec![ContentBlock::text("Weather?")]),
        assistant(SONNET4, vec![tool_use("t1")]),
        user(vec![tool_result("t1")]),
    ];
    let turn = turn(SONNET4);
    let strict = assemble(&history, &turn, Policy::Strict);
    assert_eq!(rules(&strict), vec![Rule::ThinkingFinalAssistant]);
    assert!(
        strict.diagnostics[0]
            .message
            .contains("Expected `thinking` or `redacted_thinking`, but found `tool_use`")
    );
    let repaired = assemble(&history, &turn, Policy::Repair);
    assert!(repaired.is_valid());
    assert_eq!(repaired.fixes[0].action, Action::SetThinking { thinking: None });
    assert!(!repaired.fixes[0].action.changes_history());
    assert_eq!(
        repaired.request.messages,
        history.iter().map(|h| h.message.clone()).collect::<Vec<_>>()
    );

    // At the next user turn the setting applies.
    let mut next = history.clone();
    next.push(assistant(SONNET4, vec![ContentBlock::text("18C.")]));
    next.push(user(vec![ContentBlock::text("And tomorrow?")]));
    assert!(assemble(&next, &turn, Policy::Strict).is_valid());
}

#[test]
fn a_thinking_less_step_inside_a_thinking_loop_is_accepted() {
    // Scenario 29: A(think, use:t1) · U(res) · A(use:t2) [no thinking] · U(res).
    let history = vec![
        user(vec![ContentBlock::text("Weather in two cities?")]),
        assistant(SONNET4, vec![thinking("Two calls."), tool_use("t1")]),
        user(vec![tool_result("t1")]),
        assistant(SONNET4, vec![tool_use("t2")]),
        user(vec![tool_result("t2")]),
    ];
    let strict = assemble(&history, &turn(SONNET4), Policy::Strict);
    assert!(strict.diagnostics.is_empty(), "{:?}", strict.diagnostics);
}

#[test]
fn toggling_thinking_off_mid_loop_restores_the_loops_setting_when_known() {
    let history = vec![
        user(vec![ContentBlock::text("Weather?")]),
        assistant(SONNET4, vec![thinking("Call it."), tool_use("t1")]),
        user(vec![tool_result("t1")]),
    ];
    let mut turn = turn(SONNET4);
    let loop_setting = turn.thinking.clone();
    turn.thinking = None;
    let strict = assemble(&history, &turn, Policy::Strict);
    assert_eq!(rules(&strict), vec![Rule::ThinkingToggle]);
    assert!(!assemble(&history, &turn, Policy::Repair).is_valid(), "unknown setting: not fixable");
    turn.open_turn_thinking = Some(loop_setting.clone());
    let repaired = assemble(&history, &turn, Policy::Repair);
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    assert_eq!(repaired.request.thinking, loop_setting);
}

#[test]
fn thinking_from_another_model_is_dropped_never_turned_into_text() {
    // Scenario 31: history produced by Sonnet 4 with thinking, next request to Opus 4.5.
    let history = vec![
        user(vec![ContentBlock::text("Hi")]),
        assistant(SONNET4, vec![thinking("Private reasoning."), ContentBlock::text("Hello.")]),
        user(vec![ContentBlock::text("More")]),
    ];
    let target = "us.anthropic.claude-opus-4-5-20251101-v1:0";
    let strict = assemble(&history, &turn(target), Policy::Strict);
    assert_eq!(rules(&strict), vec![Rule::ThinkingForeign]);
    assert_eq!(strict.diagnostics[0].path.to_string(), "messages[1].content[0]");
    let repaired = assemble(&history, &turn(target), Policy::Repair);
    assert!(repaired.is_valid());
    assert!(thinking_of(&repaired.request.messages).is_empty());
    let text = serde_json::to_string(repaired.body.as_ref().unwrap()).unwrap();
    assert!(!text.contains("Private reasoning."), "reasoning leaked into the body: {text}");
    // The same model behind another inference profile is not foreign.
    let same = assemble(&history, &turn("anthropic.claude-sonnet-4-20250514-v1:0"), Policy::Strict);
    assert!(same.is_valid(), "{:?}", same.diagnostics);
}

#[test]
fn changed_prefix_invalidates_bound_thinking_on_preserved_thinking_models() {
    // Scenario 33: the system prompt is re-rendered after thinking was produced.
    let mut turn = turn(OPUS55);
    turn.thinking = Some(ThinkingConfig::new(ThinkingMode::Adaptive { effort: None }));
    turn.system = Some(SystemPrompt::Text("Today is Monday.".to_owned()));
    let mut history = vec![
        user(vec![ContentBlock::text("Plan my week")]),
        assistant(OPUS55, vec![thinking("Monday first."), ContentBlock::text("Start Monday.")]),
        user(vec![ContentBlock::text("And then?")]),
        assistant(OPUS55, vec![thinking("Then Tuesday."), ContentBlock::text("Tuesday.")]),
        user(vec![ContentBlock::text("Thanks")]),
    ];
    // Record the prefix each assistant message was produced after.
    let sent = assemble(&history, &turn, Policy::Strict).request;
    for i in [1, 3] {
        history[i].provenance.as_mut().unwrap().prefix_hash = Some(prefix_hash(&sent, i));
    }
    assert!(assemble(&history, &turn, Policy::Strict).diagnostics.is_empty());

    turn.system = Some(SystemPrompt::Text("Today is Tuesday.".to_owned()));
    let strict = assemble(&history, &turn, Policy::Strict);
    assert_eq!(rules(&strict), vec![Rule::ThinkingPrefix]);
    assert_eq!(strict.diagnostics[0].path.to_string(), "messages[1].content[0]");
    let repaired = assemble(&history, &turn, Policy::Repair);
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    // Every thinking block produced after the change goes, the visible text stays.
    assert!(thinking_of(&repaired.request.messages).is_empty());
    assert_eq!(repaired.request.messages[3].content, vec![ContentBlock::text("Tuesday.")]);
}

#[test]
fn on_the_messages_api_a_changed_prefix_is_repaired_by_the_binding_control_not_by_dropping() {
    // The same history as above, sent on the Messages API: the model takes the binding
    // control, so repair asks the API to drop only what no longer binds (with the control's
    // beta) and keeps every block in the request.
    let mut turn = turn(OPUS55);
    turn.api = Api::Messages;
    turn.thinking = Some(ThinkingConfig::new(ThinkingMode::Adaptive { effort: None }));
    turn.system = Some(SystemPrompt::Text("Today is Monday.".to_owned()));
    let mut history = vec![
        user(vec![ContentBlock::text("Plan my week")]),
        assistant(OPUS55, vec![thinking("Monday first."), ContentBlock::text("Start Monday.")]),
        user(vec![ContentBlock::text("Thanks")]),
    ];
    let sent = assemble(&history, &turn, Policy::Strict).request;
    let provenance = history[1].provenance.as_mut().unwrap();
    provenance.prefix_hash = Some(prefix_hash(&sent, 1));
    provenance.api = Api::Messages;
    turn.system = Some(SystemPrompt::Text("Today is Tuesday.".to_owned()));

    let strict = assemble(&history, &turn, Policy::Strict);
    assert_eq!(rules(&strict), vec![Rule::ThinkingPrefix]);
    let repaired = assemble(&history, &turn, Policy::Repair);
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    assert_eq!(fixed(&repaired), vec![Rule::ThinkingPrefix, Rule::BindingControl]);
    assert_eq!(thinking_of(&repaired.request.messages).len(), 1, "the block is kept");
    let body = serde_json::to_value(repaired.body.as_ref().unwrap()).unwrap();
    assert_eq!(body["thinking"]["block_binding"]["prefix_mismatch_behavior"], "drop_block");
    assert!(body.get("anthropic_beta").is_none(), "betas are headers here: {body}");
    assert_eq!(
        repaired.request.beta.as_deref(),
        Some(&["thinking-binding-controls-2026-08-01".to_owned()][..])
    );
    // What remains is said as a warning: the API will drop the block.
    let left: Vec<Rule> = repaired.diagnostics.iter().map(|d| d.rule).collect();
    assert_eq!(left, vec![Rule::ThinkingPrefix]);
    assert!(repaired.diagnostics.iter().all(|d| d.severity == Severity::Warning));

    // On InvokeModel the control is not documented: the thinking is dropped as before.
    turn.api = Api::InvokeModel;
    let repaired = assemble(&history, &turn, Policy::Repair);
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    assert!(thinking_of(&repaired.request.messages).is_empty());
}

#[test]
fn tool_result_then_injected_text_become_one_user_message_results_first() {
    // Scenario 21: A(use:t1) · U(res:t1) · U(txt).
    let history = vec![
        user(vec![ContentBlock::text("Weather?")]),
        assistant(SONNET4, vec![thinking("Call."), tool_use("t1")]),
        user(vec![tool_result("t1")]),
        user(vec![ContentBlock::text("<notice>")]),
    ];
    let repaired = assemble(&history, &turn(SONNET4), Policy::Repair);
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    assert_eq!(fixed(&repaired), vec![Rule::Alternation]);
    assert_eq!(repaired.request.messages.len(), 3);
    assert_eq!(
        repaired.request.messages[2].content,
        vec![tool_result("t1"), ContentBlock::text("<notice>")]
    );
}

/// The same history for Llama 4, which refuses tool results beside text in one turn
/// (`tool.results_alone`) and is not recorded refusing two user messages in a row (a warning):
/// repair leaves the two user messages apart, and the request draws no error.
#[test]
fn for_llama_4_tool_results_and_injected_text_stay_in_their_own_messages() {
    const LLAMA_4: &str = "us.meta.llama4-maverick-17b-instruct-v1:0";
    let history = vec![
        user(vec![ContentBlock::text("Weather?")]),
        assistant(LLAMA_4, vec![tool_use("t1")]),
        user(vec![tool_result("t1")]),
        user(vec![ContentBlock::text("<notice>")]),
    ];
    let repaired = assemble(&history, &turn(LLAMA_4), Policy::Repair);
    assert!(repaired.is_valid(), "{:?}", repaired.diagnostics);
    assert_eq!(repaired.request.messages.len(), 4);
    assert!(!rules(&repaired).contains(&Rule::ResultsAlone), "{:?}", repaired.diagnostics);
    // Merged by hand, the same turn is an error.
    let merged = vec![
        history[0].clone(),
        history[1].clone(),
        user(vec![tool_result("t1"), ContentBlock::text("<notice>")]),
    ];
    let refused = assemble(&merged, &turn(LLAMA_4), Policy::Repair);
    assert!(!refused.is_valid());
    assert!(rules(&refused).contains(&Rule::ResultsAlone), "{:?}", refused.diagnostics);
    // A cache point after the results is a marker, not content beside them.
    let mut cached = history[..3].to_vec();
    cached[2].message.content.push(ContentBlock::CachePoint(Default::default()));
    let assembly = assemble(&cached, &turn(LLAMA_4), Policy::Strict);
    assert!(!rules(&assembly).contains(&Rule::ResultsAlone), "{:?}", assembly.diagnostics);
}

#[test]
fn invoke_model_bodies_carry_the_bedrock_version_and_no_model_or_stream() {
    let history = vec![user(vec![ContentBlock::text("Hi")])];
    let mut turn = turn(SONNET4);
    turn.api = Api::InvokeModel;
    let assembly = assemble(&history, &turn, Policy::Strict);
    let body = assembly.body.expect("a valid body");
    assert_eq!(body["anthropic_version"], "bedrock-2023-05-31");
    assert!(body.get("model").is_none() && body.get("stream").is_none());
    assert_eq!(body["max_tokens"], 4096);
}

#[test]
fn history_the_api_cannot_express_is_reported_not_dropped() {
    let video = ContentBlock::Video(MediaBlock {
        format: "mp4".to_owned(),
        source: MediaSource::Bytes("AAAA".to_owned()),
        unmapped: Unmapped::default(),
    });
    let history = vec![user(vec![ContentBlock::text("Look"), video])];
    let mut turn = TurnConfig::new("amazon.nova-pro-v1:0", Api::InvokeModel);
    turn.inference =
        Some(verbatim_model::InferenceConfig { max_tokens: Some(512), ..Default::default() });
    let assembly = assemble(&history, &turn, Policy::Repair);
    assert_eq!(rules(&assembly), vec![Rule::Unrepresentable]);
    assert_eq!(assembly.diagnostics[0].path.to_string(), "messages[0].content[1]");
    assert_eq!(assembly.body, None);
}

#[test]
fn more_than_100000_messages_are_refused() {
    let history: Vec<HistoryMessage> = (0..100_001)
        .map(|i| {
            let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
            Message::new(role, vec![ContentBlock::Text(TextBlock::new("x"))]).into()
        })
        .collect();
    let mut turn = TurnConfig::new(SONNET4, Api::Converse);
    turn.inference =
        Some(verbatim_model::InferenceConfig { max_tokens: Some(512), ..Default::default() });
    let assembly = assemble(&history, &turn, Policy::Strict);
    assert!(rules(&assembly).contains(&Rule::TooManyMessages), "{:?}", rules(&assembly));
    let under = assemble(&history[..99_999], &turn, Policy::Strict);
    assert!(!rules(&under).contains(&Rule::TooManyMessages));
}

#[test]
fn a_body_over_25_mb_is_refused() {
    let text = "a".repeat(25_000_000);
    let body =
        serde_json::to_vec(&json!({"messages": [{"role": "user", "content": [{"text": text}]}]}))
            .unwrap();
    let report = validate_body(Api::Converse, Some(SONNET4), &body).unwrap();
    assert_eq!(report.diagnostics[0].rule, Rule::BodySize);
    assert_eq!(report.diagnostics[0].severity, Severity::Error);
    let small =
        serde_json::to_vec(&json!({"messages": [{"role": "user", "content": [{"text": "a"}]}]}))
            .unwrap();
    assert!(validate_body(Api::Converse, Some(SONNET4), &small).unwrap().diagnostics.is_empty());
}

#[test]
fn images_over_5_mb_of_base64_are_refused() {
    let body = |len: usize| {
        let data = "A".repeat(len);
        let image = json!({"image": {"format": "png", "source": {"bytes": data}}});
        serde_json::to_vec(
            &json!({"messages": [{"role": "user", "content": [{"text": "see"}, image]}]}),
        )
        .unwrap()
    };
    let over = validate_body(Api::Converse, Some(SONNET4), &body(5_242_884)).unwrap();
    assert_eq!(over.diagnostics[0].rule, Rule::Image);
    assert_eq!(over.diagnostics[0].path.to_string(), "messages[0].content[1].image.source");
    assert!(
        over.diagnostics[0]
            .message
            .contains("image exceeds 5 MB maximum: 5242884 bytes > 5242880 bytes")
    );
    let at_limit = validate_body(Api::Converse, Some(SONNET4), &body(5_242_880)).unwrap();
    assert!(at_limit.diagnostics.is_empty(), "{:?}", at_limit.diagnostics);
}

#[test]
fn thinking_produced_on_the_other_api_is_reported_not_switched_silently() {
    // Scenario 36: a turn with thinking recorded from InvokeModel, the next request on Converse.
    let mut produced = assistant(SONNET4, vec![thinking("Plan."), ContentBlock::text("Done.")]);
    produced.provenance.as_mut().unwrap().api = Api::InvokeModel;
    let history = vec![
        user(vec![ContentBlock::text("Hi")]),
        produced,
        user(vec![ContentBlock::text("More")]),
    ];
    let assembly = assemble(&history, &turn(SONNET4), Policy::Repair);
    assert!(assembly.is_valid(), "a warning, not an error: {:?}", assembly.diagnostics);
    assert!(assembly.fixes.is_empty(), "nothing is changed: {:?}", assembly.fixes);
    let warning = &assembly.diagnostics[0];
    assert_eq!((warning.rule, warning.severity), (Rule::ThinkingForeign, Severity::Warning));
    assert_eq!(warning.path.to_string(), "messages[1].content[0]");
    assert!(warning.message.contains("produced on invoke is sent on converse"));
    // The same turn sent on the API that produced it draws nothing.
    let mut same = turn(SONNET4);
    same.api = Api::InvokeModel;
    assert!(assemble(&history, &same, Policy::Strict).diagnostics.is_empty());
}
