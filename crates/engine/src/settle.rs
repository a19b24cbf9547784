//! Settling a tool loop's calls: each call's lifecycle recorded around it, a call a crash
//! interrupted answered from the log (or as interrupted, when its tool is not idempotent), the
//! rest run concurrently within the tool timeout.

use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::Instrument as _;
use verbatim_model::{
    ContentBlock, ToolResult, ToolResultBlock, ToolResultContent, ToolResultStatus, ToolUse,
};
use verbatim_store::{Entry, ToolCallEvent, ToolCallState};

use crate::tool::{Tool, ToolOutput};
use crate::turn::Turn;
use crate::{EngineError, Event, Settled};

/// What the model reads for a call that started before a crash and never finished, when its
/// tool is not idempotent.
pub const INTERRUPTED: &str = "interrupted: the call started but the session stopped before it finished; it was not run again";

impl Turn<'_> {
    /// Settles every call of an unfinished tool loop and returns their results, in the
    /// order the model asked for them. Each call's start and end are recorded around it.
    pub(crate) async fn settle(
        &mut self,
        calls: Vec<ToolUse>,
    ) -> Result<Vec<ContentBlock>, EngineError> {
        let mut results: Vec<Option<ToolResult>> = vec![None; calls.len()];
        let mut marks = Vec::new();
        let mut settled = Vec::new();
        let mut to_run: Vec<(usize, Arc<dyn Tool>)> = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let tool = self.engine.tool(&call.name);
            let state = self.log.call_state(&call.id).cloned();
            let (result, how) = match (state, tool) {
                (Some(ToolCallState::Completed { content }), _) => {
                    (ok_result(call, content), Settled::FromLog)
                }
                (Some(ToolCallState::Failed { message }), _) => {
                    (error_result(call, message), Settled::FromLog)
                }
                (Some(ToolCallState::Unknown), _) => {
                    (error_result(call, INTERRUPTED.into()), Settled::Interrupted)
                }
                (_, None) => {
                    let message = format!("no tool named {} is available", call.name);
                    marks.push(lifecycle(call, ToolCallState::Failed { message: message.clone() }));
                    (error_result(call, message), Settled::Unknown)
                }
                (Some(ToolCallState::Started), Some(tool)) if !tool.idempotent() => {
                    marks.push(lifecycle(call, ToolCallState::Unknown));
                    (error_result(call, INTERRUPTED.into()), Settled::Interrupted)
                }
                (_, Some(tool)) => {
                    marks.push(lifecycle(call, ToolCallState::Started));
                    to_run.push((i, tool));
                    continue;
                }
            };
            results[i] = Some(result);
            settled.push((i, how));
        }
        if !marks.is_empty() {
            self.append(marks).await?;
        }
        for (i, how) in settled {
            self.report(&calls[i], results[i].as_ref(), how);
        }

        let timeout = self.engine.inner.defaults.tool_timeout;
        let mut running = JoinSet::new();
        let mut tasks = std::collections::HashMap::new();
        for (i, tool) in to_run {
            let input = calls[i].input.clone();
            let run = async move {
                match tokio::time::timeout(timeout, tool.call(input)).await {
                    Ok(Ok(output)) => {
                        ToolCallState::Completed { content: Some(output.into_content()) }
                    }
                    Ok(Err(error)) => ToolCallState::Failed { message: error.0 },
                    Err(_) => ToolCallState::Failed {
                        message: format!(
                            "the tool did not finish within {} s",
                            timeout.as_secs_f64()
                        ),
                    },
                }
            };
            let handle = running.spawn(run.in_current_span());
            tasks.insert(handle.id(), i);
        }
        while let Some(joined) = running.join_next_with_id().await {
            let (task, state) = match joined {
                Ok((task, state)) => (task, state),
                Err(error) => {
                    (error.id(), ToolCallState::Failed { message: "the tool panicked".to_owned() })
                }
            };
            let i = tasks[&task];
            let call = &calls[i];
            self.append(vec![lifecycle(call, state.clone())]).await?;
            let result = match state {
                ToolCallState::Completed { content } => ok_result(call, content),
                ToolCallState::Failed { message } => error_result(call, message),
                _ => unreachable!("a run ends completed or failed"),
            };
            self.report(call, Some(&result), Settled::Ran);
            results[i] = Some(result);
        }
        Ok(results
            .into_iter()
            .map(|r| ContentBlock::ToolResult(r.expect("every call settled")))
            .collect())
    }

    fn report(&mut self, call: &ToolUse, result: Option<&ToolResult>, settled: Settled) {
        let is_error = result.is_some_and(|r| r.status == Some(ToolResultStatus::Error));
        (self.on_event)(Event::ToolResult {
            id: call.id.clone(),
            name: call.name.clone(),
            is_error,
            settled,
        });
    }
}

pub(crate) fn lifecycle(call: &ToolUse, state: ToolCallState) -> Entry {
    Entry::ToolCall(ToolCallEvent { tool_use_id: call.id.clone(), name: call.name.clone(), state })
}

fn ok_result(call: &ToolUse, content: Option<ToolResultContent>) -> ToolResult {
    ToolResult {
        tool_use_id: call.id.clone(),
        content: Some(content.unwrap_or_else(|| ToolOutput::Text(String::new()).into_content())),
        status: None,
        unmapped: Default::default(),
    }
}

fn error_result(call: &ToolUse, message: String) -> ToolResult {
    let text = if message.trim().is_empty() { "the tool failed".to_owned() } else { message };
    ToolResult {
        tool_use_id: call.id.clone(),
        content: Some(ToolResultContent::Blocks(vec![ToolResultBlock::Text { text }])),
        status: Some(ToolResultStatus::Error),
        unmapped: Default::default(),
    }
}
