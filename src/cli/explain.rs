//! `verbatim explain`: from an error message to the causes behind it, most likely first.

use std::process::ExitCode;

use serde_json::json;
use verbatim_protocol::explain;

/// Arguments of `verbatim explain`.
#[derive(Debug, clap::Args)]
pub(super) struct ExplainArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The error message, as Bedrock or Anthropic returned it.
    message: String,
}

pub(super) fn explain(args: &ExplainArgs) -> ExitCode {
    let found = explain::explain(&args.message);
    if args.json {
        let items: Vec<_> = found
            .iter()
            .map(|cause| {
                let bedrock: Vec<_> = cause
                    .bedrock
                    .iter()
                    .map(|(surfaces, text)| json!({"surfaces": surfaces, "text": text}))
                    .collect();
                json!({
                    "id": cause.id,
                    "rule": cause.rule.map(|r| r.id()),
                    "spec": cause.spec,
                    "bedrock": bedrock,
                    "cause": cause.cause,
                    "action": cause.action,
                })
            })
            .collect();
        say!("{}", json!({ "causes": items }));
    } else if found.is_empty() {
        say!("No known rule or error matches this message.");
    } else {
        for (n, cause) in found.iter().enumerate() {
            if n > 0 {
                say!("");
            }
            let kind = if cause.rule.is_some() { "rule" } else { "error" };
            say!("{}. {kind} {} ({} in the Bedrock rule set)", n + 1, cause.id, cause.spec);
            for (surfaces, text) in &cause.bedrock {
                say!("   bedrock ({surfaces}): {text}");
            }
            say!("   cause:    {}", cause.cause);
            say!("   verbatim: {}", cause.action);
        }
    }
    if found.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
