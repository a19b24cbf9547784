//! `verbatim explain`: from an error message to the rule behind it.

use std::process::ExitCode;

use serde_json::json;
use verbatim_protocol::rules::{self, Rule};

/// Arguments of `verbatim explain`.
#[derive(Debug, clap::Args)]
pub(super) struct ExplainArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The error message, as Bedrock or Anthropic returned it.
    message: String,
}

fn template(rule: Rule) -> String {
    rule.info().bedrock.replace("{at}", "<path>").replace("{detail}", "<detail>")
}

pub(super) fn explain(args: &ExplainArgs) -> ExitCode {
    let found = rules::explain(&args.message);
    if args.json {
        let items: Vec<_> = found
            .iter()
            .map(|&rule| {
                let info = rule.info();
                json!({
                    "rule": info.id,
                    "spec": info.spec,
                    "bedrock": template(rule),
                    "cause": info.cause,
                    "action": info.action,
                })
            })
            .collect();
        say!("{}", json!({ "rules": items }));
    } else if found.is_empty() {
        say!("No known rule matches this message.");
    } else {
        for (n, &rule) in found.iter().enumerate() {
            let info = rule.info();
            if n > 0 {
                say!("");
            }
            say!("rule:     {} ({} in the Bedrock rule set)", info.id, info.spec);
            say!("bedrock:  {}", template(rule));
            say!("cause:    {}", info.cause);
            say!("verbatim: {}", info.action);
        }
    }
    if found.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
