//! The modes: what the proxy does with a request that breaks one of Bedrock's rules, judged by
//! the protocol's validator (`validate_call`) and repaired by its repair (`repair_call`).

use bytes::Bytes;
use verbatim_model::{Api, Request};
use verbatim_protocol::assemble::{self, BodyReport, Diagnostic, Severity};
use verbatim_protocol::messages_api;

use crate::Mode;
use crate::reply::Refusal;

/// What goes upstream.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// The body to send (the one received unless restored or repaired).
    pub(crate) body: Bytes,
    /// The request as sent, for the record (`None` when the body's shape is broken).
    pub(crate) request: Option<Request>,
    /// What was noted: rules broken (observe) or fixes applied (repair).
    pub(crate) notes: Vec<String>,
}

/// Bedrock's text within a diagnostic's message (`... Bedrock answers: TEXT`).
fn bedrock_text(diagnostic: &Diagnostic) -> &str {
    let message = diagnostic.message.as_str();
    message.split_once("Bedrock answers: ").map_or(message, |(_, text)| text)
}

/// The refusal of a request whose first error is `diagnostic`.
pub(crate) fn refusal(diagnostic: &Diagnostic) -> Refusal {
    let mut refusal = Refusal::invalid_request(bedrock_text(diagnostic));
    refusal.rule = Some((diagnostic.rule.id().to_owned(), diagnostic.path.to_string()));
    refusal
}

/// The refusal of a body that is not a JSON object, in the words Bedrock uses for it.
pub(crate) fn unreadable(api: Api) -> Refusal {
    Refusal::invalid_request(match api {
        Api::Converse => "The request body is not valid JSON.",
        Api::InvokeModel | Api::Messages => {
            "Malformed input request, please reformat your input and try again."
        }
    })
}

fn errors(report: &BodyReport) -> impl Iterator<Item = &Diagnostic> {
    report.diagnostics.iter().filter(|d| d.severity == Severity::Error)
}

/// The body `report`'s request encodes to.
pub(crate) fn encoded(api: Api, report: &BodyReport) -> Option<Bytes> {
    let (value, _headers) = report.encoded(api)?.ok()?;
    Some(Bytes::from(serde_json::to_vec(&value).ok()?))
}

/// Judges `body` (already restored) under `mode`. `report` is its strict validation.
pub(crate) fn judge(
    mode: Mode,
    api: Api,
    model_id: Option<&str>,
    headers: &messages_api::Headers,
    body: Bytes,
    report: BodyReport,
) -> Result<Verdict, Refusal> {
    let first_error = errors(&report).next().cloned();
    let Some(first_error) = first_error else {
        return Ok(Verdict { body, request: report.request, notes: Vec::new() });
    };
    match mode {
        Mode::Guard => Err(refusal(&first_error)),
        Mode::Observe => {
            let notes = errors(&report).map(|d| format!("proxy observed: {d}")).collect();
            Ok(Verdict { body, request: report.request, notes })
        }
        Mode::Repair => {
            let repaired = match assemble::repair_call(api, model_id, headers, &body) {
                Ok(repaired) => repaired,
                Err(_) => return Err(unreadable(api)),
            };
            let notes: Vec<String> = repaired
                .fixes
                .iter()
                .map(|fix| {
                    // The action as `verbatim repair` prints it in its fixes.
                    let action = serde_json::to_string(&fix.action).unwrap_or_default();
                    format!("proxy repaired: {}: {action}", fix.diagnostic)
                })
                .collect();
            match (encoded(api, &repaired), repaired.request) {
                (Some(body), Some(request)) if !notes.is_empty() => {
                    Ok(Verdict { body, request: Some(request), notes })
                }
                // Nothing the repair can fix (a shape error): sent as it came, as observe does.
                (_, request) => {
                    let notes = errors(&report).map(|d| format!("proxy observed: {d}")).collect();
                    Ok(Verdict { body, request, notes })
                }
            }
        }
    }
}
