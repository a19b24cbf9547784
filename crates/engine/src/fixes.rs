//! Between the assembler's fixes and the store's records of them: the engine records the
//! history fixes the assembler decided ([`record`]) and hands them back to it for replay
//! ([`replay`]). The store keeps its own shape ([`FixRecord`]), so a rule or an action renamed
//! or reshaped in the protocol changes this mapping, never the records already written.

use verbatim_protocol::JsonPath;
use verbatim_protocol::assemble::{Action, Diagnostic, Fix, Severity};
use verbatim_protocol::rules::Rule;
use verbatim_store::{ActionRecord, FixRecord};

/// The store's record of `fix`.
pub(crate) fn record(fix: &Fix) -> FixRecord {
    let diagnostic = &fix.diagnostic;
    FixRecord {
        rule: diagnostic.rule.id().to_owned(),
        severity: match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
        .to_owned(),
        path: diagnostic.path.to_string(),
        message: diagnostic.message.clone(),
        action: action_record(fix.action.clone()),
        guard: fix.guard.clone(),
    }
}

/// The fix `record` stands for, to replay. Replay needs only the action and its guard; a rule
/// id or a path this build does not know (a rule renamed since) reads as
/// [`Rule::Malformed`] at the root, the stored text kept in the message.
pub(crate) fn replay(record: FixRecord) -> Fix {
    let FixRecord { rule, severity, path, message, action, guard } = record;
    let (rule, path, message) = match (Rule::from_id(&rule), JsonPath::parse(&path)) {
        (Some(rule), Some(path)) => (rule, path, message),
        _ => {
            (Rule::Malformed, JsonPath::root(), format!("recorded as {rule} at {path}: {message}"))
        }
    };
    let severity = if severity == "warning" { Severity::Warning } else { Severity::Error };
    Fix {
        diagnostic: Diagnostic { rule, severity, path, message },
        action: replayed_action(action),
        guard,
    }
}

fn action_record(action: Action) -> ActionRecord {
    match action {
        Action::DropBlock { message, block, kind } => {
            ActionRecord::DropBlock { message, block, kind }
        }
        Action::DropThinking { message } => ActionRecord::DropThinking { message },
        Action::DropMessage { message } => ActionRecord::DropMessage { message },
        Action::MergeWithNext { message } => ActionRecord::MergeWithNext { message },
        Action::ResultsFirst { message } => ActionRecord::ResultsFirst { message },
        Action::InsertBlock { message, block, content } => {
            ActionRecord::InsertBlock { message, block, content }
        }
        Action::InsertMessage { message, content } => {
            ActionRecord::InsertMessage { message, content }
        }
        Action::ReplaceBlock { message, block, kind, content } => {
            ActionRecord::ReplaceBlock { message, block, kind, content }
        }
        Action::DropMessageUnmapped { message } => ActionRecord::DropMessageUnmapped { message },
        Action::SetThinking { thinking } => ActionRecord::SetThinking { thinking },
        Action::SetInference { inference } => ActionRecord::SetInference { inference },
        Action::SetTopK { top_k } => ActionRecord::SetTopK { top_k },
        Action::SetTools { tools } => ActionRecord::SetTools { tools },
        Action::SetToolChoice { tool_choice } => ActionRecord::SetToolChoice { tool_choice },
        Action::SetSystem { system } => ActionRecord::SetSystem { system },
        Action::SetBeta { beta } => ActionRecord::SetBeta { beta },
    }
}

fn replayed_action(record: ActionRecord) -> Action {
    match record {
        ActionRecord::DropBlock { message, block, kind } => {
            Action::DropBlock { message, block, kind }
        }
        ActionRecord::DropThinking { message } => Action::DropThinking { message },
        ActionRecord::DropMessage { message } => Action::DropMessage { message },
        ActionRecord::MergeWithNext { message } => Action::MergeWithNext { message },
        ActionRecord::ResultsFirst { message } => Action::ResultsFirst { message },
        ActionRecord::InsertBlock { message, block, content } => {
            Action::InsertBlock { message, block, content }
        }
        ActionRecord::InsertMessage { message, content } => {
            Action::InsertMessage { message, content }
        }
        ActionRecord::ReplaceBlock { message, block, kind, content } => {
            Action::ReplaceBlock { message, block, kind, content }
        }
        ActionRecord::DropMessageUnmapped { message } => Action::DropMessageUnmapped { message },
        ActionRecord::SetThinking { thinking } => Action::SetThinking { thinking },
        ActionRecord::SetInference { inference } => Action::SetInference { inference },
        ActionRecord::SetTopK { top_k } => Action::SetTopK { top_k },
        ActionRecord::SetTools { tools } => Action::SetTools { tools },
        ActionRecord::SetToolChoice { tool_choice } => Action::SetToolChoice { tool_choice },
        ActionRecord::SetSystem { system } => Action::SetSystem { system },
        ActionRecord::SetBeta { beta } => Action::SetBeta { beta },
    }
}
