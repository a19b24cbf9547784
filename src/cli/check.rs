//! `verbatim validate` and `verbatim repair`.

use std::io::Read;
use std::process::ExitCode;

use serde_json::{Value, json};
use verbatim_model::Api;
use verbatim_protocol::assemble::{self, BodyReport, Diagnostic, Severity};
use verbatim_protocol::messages_api;

use super::CheckArgs;

const INVALID: u8 = 1;
const UNUSABLE: u8 = 2;

/// Reads the body named by `file` (`-` for standard input).
fn read(file: &str) -> Result<Vec<u8>, String> {
    if file == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| format!("reading standard input: {e}"))?;
        return Ok(body);
    }
    std::fs::read(file).map_err(|e| format!("reading {file}: {e}"))
}

fn report(args: &CheckArgs, repair: bool) -> Result<BodyReport, ExitCode> {
    let body = read(&args.file).map_err(|e| {
        eprintln!("verbatim: {e}");
        ExitCode::from(UNUSABLE)
    })?;
    let api = Api::from(args.api);
    if api != Api::Messages && (args.anthropic_version.is_some() || !args.betas.is_empty()) {
        eprintln!(
            "verbatim: --anthropic-version and --beta are Messages API headers; use them with --api messages"
        );
        return Err(ExitCode::from(UNUSABLE));
    }
    let model = args.model.as_deref();
    let pairs = args
        .anthropic_version
        .iter()
        .map(|v| (messages_api::VERSION_HEADER, v.as_str()))
        .chain(args.betas.iter().map(|b| (messages_api::BETA_HEADER, b.as_str())));
    let headers = messages_api::Headers::from_pairs(pairs);
    let checked = if repair {
        assemble::repair_call(api, model, &headers, &body)
    } else {
        assemble::validate_call(api, model, &headers, &body)
    };
    checked.map_err(|e| {
        eprintln!("verbatim: {}: {e}", args.file);
        ExitCode::from(UNUSABLE)
    })
}

fn diagnostics_json(diagnostics: &[Diagnostic]) -> Value {
    serde_json::to_value(diagnostics).expect("diagnostics serialize")
}

fn status(valid: bool) -> ExitCode {
    if valid { ExitCode::SUCCESS } else { ExitCode::from(INVALID) }
}

pub(super) fn validate(args: &CheckArgs) -> ExitCode {
    let report = match report(args, false) {
        Ok(report) => report,
        Err(code) => return code,
    };
    if args.json {
        let out = json!({"valid": report.is_valid(), "diagnostics": diagnostics_json(&report.diagnostics)});
        say!("{out}");
    } else {
        for diagnostic in &report.diagnostics {
            say!("{diagnostic}");
        }
        let errors = report.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        let warnings = report.diagnostics.len() - errors;
        say!("{}: {errors} error(s), {warnings} warning(s)", args.file);
    }
    status(report.is_valid())
}

pub(super) fn repair(args: &CheckArgs) -> ExitCode {
    let report = match report(args, true) {
        Ok(report) => report,
        Err(code) => return code,
    };
    let api = Api::from(args.api);
    let (request, headers) = match report.encoded(api) {
        Some(Ok(encoded)) => encoded,
        Some(Err(e)) => {
            eprintln!("verbatim: {}: {e}", args.file);
            return ExitCode::from(INVALID);
        }
        None => (Value::Null, messages_api::Headers::default()),
    };
    let fixes = serde_json::to_value(&report.fixes).expect("fixes serialize");
    let mut out = json!({
        "request": request,
        "fixes": fixes,
        "diagnostics": diagnostics_json(&report.diagnostics),
    });
    // On the Messages API the version and betas travel as headers beside the body.
    if api == Api::Messages {
        let pairs: serde_json::Map<String, Value> = headers
            .to_pairs()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into()))
            .collect();
        out["headers"] = Value::Object(pairs);
    }
    say!("{out}");
    status(report.is_valid())
}

/// Arguments of `verbatim explain-cache`.
#[derive(Debug, clap::Args)]
pub(super) struct ExplainCacheArgs {
    /// The API both bodies are for.
    #[arg(long, value_enum, default_value_t = super::ApiArg::Converse)]
    api: super::ApiArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The request sent first.
    earlier: String,
    /// The request sent next.
    later: String,
}

fn decode_for_cache(api: Api, file: &str) -> Result<verbatim_model::Request, String> {
    let body = read(file)?;
    let decoded = match api {
        Api::Converse => verbatim_protocol::converse::decode_request(&body),
        Api::InvokeModel => verbatim_protocol::anthropic::decode_request(&body),
        Api::Messages => messages_api::decode_request(&body, &messages_api::Headers::default())
            .map(|c| c.request),
    };
    decoded.map_err(|e| format!("{file}: {e}"))
}

pub(super) fn explain_cache(args: &ExplainCacheArgs) -> ExitCode {
    let api = Api::from(args.api);
    let (earlier, later) =
        match (decode_for_cache(api, &args.earlier), decode_for_cache(api, &args.later)) {
            (Ok(earlier), Ok(later)) => (earlier, later),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("verbatim: {e}");
                return ExitCode::from(UNUSABLE);
            }
        };
    let compared = verbatim_protocol::cache_diff::compare(&earlier, &later);
    if args.json {
        let points: Vec<Value> =
            compared.points.iter().map(|p| json!({"place": p.place, "read": p.read})).collect();
        let divergence = compared.divergence.as_ref().map(|d| {
            json!({"place": d.place, "cause": format!("{:?}", d.cause), "explanation": d.cause.explain()})
        });
        say!("{}", json!({"divergence": divergence, "cache_points": points}));
    } else {
        match &compared.divergence {
            None => say!("The later request continues the earlier one's prefix unchanged."),
            Some(d) => say!("The prefixes part at {}: {}.", d.place, d.cause.explain()),
        }
        if compared.points.is_empty() {
            say!(
                "The later request has no cache point: nothing is read from the cache or written to it."
            );
        }
        for point in &compared.points {
            let what = if point.read { "read from the cache" } else { "written (again)" };
            say!("cache point {}: {what}", point.place);
        }
    }
    status(compared.divergence.is_none())
}
