//! Assembling and validating a long history: a 1,000-message conversation with thinking and
//! tool loops (about 3 MB of JSON), next to serde_json serialising the same body; and one
//! assistant message with 80,000 tool uses answered by one user message, which shows the
//! checks stay linear in the body.
//!
//! Run with `cargo bench -p verbatim-protocol --bench assemble`. Besides criterion's report it
//! prints one summary line per case: the median of each measurement and, for the long
//! history, the ratio of assembling to serialising (target: within 2x). A filter argument
//! (`-- 80k` or `-- 1000`) runs only the cases whose name holds it.

// The timing the wire crate's benchmarks use, shared rather than copied.
#[path = "../../wire/benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use serde_json::json;
use verbatim_model::{
    Api, ContentBlock, HistoryMessage, InferenceConfig, Message, Provenance, Role, ThinkingBlock,
    ThinkingConfig, ThinkingMode, Tool, ToolResult, ToolResultBlock, ToolResultContent, ToolSpec,
    ToolUse, Unmapped,
};
use verbatim_protocol::assemble::{Policy, TurnConfig, assemble, encode, validate_body};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// 1,000 stored messages and the new user message: user questions, assistant turns that think
/// (2 KB of reasoning and a 500-byte signature) and call a tool, tool results of about 2 KB,
/// and final answers.
fn history() -> Vec<HistoryMessage> {
    let reasoning =
        "Let me work through this step by step, checking each figure twice. ".repeat(75);
    let signature = "EqQBCkYIBxgCKkD".repeat(70);
    let result_text = "row,value\n".repeat(200);
    let mut out: Vec<HistoryMessage> = Vec::with_capacity(1000);
    let mut n = 0;
    while out.len() < 1000 {
        out.push(Message::user_text(format!("Question {n}: what changed in the report?")).into());
        // Rounds of six messages, the last one of four, make 1,000.
        let steps = if out.len() + 5 > 1000 { 1 } else { 2 };
        for step in 0..steps {
            let id = format!("tooluse_{n}_{step}");
            let thinking = ContentBlock::Thinking(ThinkingBlock {
                text: format!("{reasoning}{n}/{step}"),
                signature: Some(signature.clone()),
                unmapped: Unmapped::default(),
            });
            let call = ContentBlock::ToolUse(ToolUse {
                id: id.as_str().into(),
                name: "query_report".to_owned(),
                input: json!({"section": n, "step": step, "filters": ["a", "b"]}),
                kind: None,
                unmapped: Unmapped::default(),
            });
            out.push(HistoryMessage {
                message: Message::new(Role::Assistant, vec![thinking, call]),
                provenance: Some(Provenance::new(MODEL, Api::Converse)),
            });
            let result = ContentBlock::ToolResult(ToolResult {
                tool_use_id: id.as_str().into(),
                content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text {
                    text: result_text.clone(),
                }])),
                status: None,
                unmapped: Unmapped::default(),
            });
            out.push(Message::new(Role::User, vec![result]).into());
        }
        let answer = ContentBlock::text(format!("Section {n} changed in three places."));
        out.push(HistoryMessage {
            message: Message::new(Role::Assistant, vec![answer]),
            provenance: Some(Provenance::new(MODEL, Api::Converse)),
        });
        n += 1;
    }
    assert_eq!(out.len(), 1000);
    out.push(Message::user_text("Summarise everything.").into());
    out
}

fn turn() -> TurnConfig {
    let mut turn = TurnConfig::new(MODEL, Api::Converse);
    turn.inference = Some(InferenceConfig { max_tokens: Some(8192), ..Default::default() });
    turn.thinking = Some(ThinkingConfig::new(ThinkingMode::Enabled { budget_tokens: 4096 }));
    turn.tools = Some(vec![Tool::Spec(ToolSpec {
        name: "query_report".to_owned(),
        description: Some("Queries a section of the report.".to_owned()),
        input_schema: json!({"type": "object", "properties": {"section": {"type": "integer"}}}),
        strict: None,
        unmapped: Unmapped::default(),
    })]);
    turn
}

/// One assistant message calling a tool `count` times in parallel and the user message with
/// every result, as a raw Converse body.
fn wide_body(count: usize) -> Vec<u8> {
    let uses: Vec<serde_json::Value> = (0..count)
        .map(|k| json!({"toolUse": {"toolUseId": format!("tooluse_{k}"), "name": "lookup", "input": {"k": k}}}))
        .collect();
    let results: Vec<serde_json::Value> = (0..count)
        .map(|k| json!({"toolResult": {"toolUseId": format!("tooluse_{k}"), "content": [{"text": "ok"}]}}))
        .collect();
    let body = json!({
        "messages": [
            {"role": "user", "content": [{"text": "Look everything up."}]},
            {"role": "assistant", "content": uses},
            {"role": "user", "content": results},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]},
    });
    serde_json::to_vec(&body).unwrap()
}

/// The 80,000-tool-use case: the median of three validations of the raw body.
fn wide() {
    const COUNT: usize = 80_000;
    let bytes = wide_body(COUNT);
    let report = validate_body(Api::Converse, Some(MODEL), &bytes).unwrap();
    assert!(report.is_valid(), "{:?}", report.diagnostics.first());
    let times = support::medians(
        &mut [&mut || drop(black_box(validate_body(Api::Converse, Some(MODEL), &bytes).unwrap()))],
        3,
    );
    #[allow(clippy::print_stdout)]
    {
        println!(
            "summary: one message with {COUNT} tool uses and one with their results, {:.2} MB body; validate raw body {:.2} ms",
            bytes.len() as f64 / 1e6,
            ms(times[0]),
        );
    }
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

fn benches(c: &mut Criterion) {
    let history = history();
    let turn = turn();
    let assembled = assemble(&history, &turn, Policy::Strict);
    assert!(assembled.is_valid(), "{:?}", assembled.diagnostics);
    let body = assembled.body.expect("a valid body");
    let bytes = serde_json::to_vec(&body).unwrap();

    let mut group = c.benchmark_group("1000_messages");
    group.sample_size(20);
    group.bench_function("assemble_and_validate", |b| {
        b.iter(|| black_box(assemble(black_box(&history), &turn, Policy::Strict)))
    });
    group.bench_function("serde_json_serialise_body", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&body)).unwrap()))
    });
    group.bench_function("validate_raw_body", |b| {
        b.iter(|| black_box(validate_body(Api::Converse, Some(MODEL), black_box(&bytes)).unwrap()))
    });
    group.finish();

    // Where assembling spends its time: copying the history, checking, encoding the body.
    let request = assembled.request.clone();
    let times = support::medians(
        &mut [
            &mut || drop(black_box(assemble(&history, &turn, Policy::Strict))),
            &mut || drop(black_box(serde_json::to_vec(&body).unwrap())),
            &mut || drop(black_box(validate_body(Api::Converse, Some(MODEL), &bytes).unwrap())),
            &mut || drop(black_box(history.clone())),
            &mut || drop(black_box(encode(Api::Converse, &request).unwrap())),
        ],
        101,
    );
    let [assemble_time, serialise_time, raw_time, copy_time, encode_time] = times[..] else {
        unreachable!("five jobs")
    };
    #[allow(clippy::print_stdout)]
    {
        println!(
            "summary: {} messages, {:.2} MB body; assemble+validate {:.2} ms (history copy {:.2} ms, body encode {:.2} ms), serde_json serialise {:.2} ms, ratio {:.2}x (target <= 2x); validate raw body {:.2} ms",
            history.len(),
            bytes.len() as f64 / 1e6,
            ms(assemble_time),
            ms(copy_time),
            ms(encode_time),
            ms(serialise_time),
            assemble_time.as_secs_f64() / serialise_time.as_secs_f64(),
            ms(raw_time),
        );
    }
}

fn main() {
    // The first free argument is a filter, as criterion reads it.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runs = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if runs("80k_tool_uses") {
        wide();
    }
    if runs("1000_messages") {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion);
        criterion.final_summary();
    }
}
