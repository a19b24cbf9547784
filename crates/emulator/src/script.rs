//! Scripted behaviour: what the model does, chosen by the model id or by a script file.
//!
//! A model id whose name (after any `us.`-style prefix or ARN) is `emulator.NAME` behaves as
//! [`Behaviour`] `NAME` says: `emulator.parallel`, `emulator.steps-5`, ... Any other id
//! behaves as the script says for it, or as the script's default, which is Claude-like.
//!
//! A script file is JSON:
//!
//! ```json
//! {
//!   "behaviour": "interleaved",
//!   "models": { "us.anthropic.claude-sonnet-4-20250514-v1:0": { "steps": 5 } },
//!   "faults": [ { "kind": "throttle" }, { "kind": "reset", "after": 3 } ],
//!   "fault_rates": { "seed": 7, "throttle": 0.05, "internal": 0.01 },
//!   "pace": { "first_event_millis": 400, "event_millis": 20 }
//! }
//! ```
//!
//! Every key is optional. `faults` are served in order to the first requests; `fault_rates`
//! then draws faults at random (deterministically, from `seed`). `pace` spaces a streamed
//! answer's events in time, as a model's are (default: at once).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::faults::{Fault, FaultRates, FaultRatesError};
use crate::pace::Pace;

/// How the emulated model answers. Thinking blocks appear only when the request turns
/// thinking on, and are always signed.
///
/// In a script a behaviour is its name, as in a model id (`"steps-3"`, `"think-once-2"`,
/// `"max-tokens"`), or an object for the counted ones (`{"steps": 3}`, `{"think-once": 2}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Like Claude: a short text answer; with tools, think (when on) and call the first tool,
    /// then answer in text once its result arrives.
    #[default]
    Claude,
    /// Always a text answer, whatever tools are offered.
    Text,
    /// Call every tool offered in one message (the only one twice, if there is one), then
    /// answer once all results arrived.
    Parallel,
    /// Interleaved thinking: think before the tool call and again before the answer.
    Interleaved,
    /// Like Claude, but the thinking comes as `redacted_thinking` / `redactedContent`.
    Redacted,
    /// A blank text block as Claude sometimes returns: `"\n\n"` before a tool call, `"\n"` as
    /// a whole answer.
    Blank,
    /// A text answer cut off at the request's `max_tokens` (at most 4,096 words), stop reason
    /// `max_tokens`.
    MaxTokens,
    /// A tool loop of this many steps: think (when on) and call a tool at each step, cycling
    /// through the tools offered, then answer. `steps-0` answers at once, like `claude`
    /// without tools (thinking first when it is on).
    Steps(u32),
    /// A tool loop of this many steps that thinks (when on) only before the first call, as
    /// Claude does without interleaved thinking: the later steps start with their tool call.
    ThinkOnce(u32),
}

impl Behaviour {
    /// The behaviour a name gives: `claude`, `text`, `parallel`, `interleaved`, `redacted`,
    /// `blank`, `max-tokens`, `steps-N` or `think-once-N`.
    pub fn from_name(name: &str) -> Option<Behaviour> {
        Some(match name {
            "claude" => Behaviour::Claude,
            "text" => Behaviour::Text,
            "parallel" => Behaviour::Parallel,
            "interleaved" => Behaviour::Interleaved,
            "redacted" => Behaviour::Redacted,
            "blank" => Behaviour::Blank,
            "max-tokens" => Behaviour::MaxTokens,
            _ => match name.strip_prefix("think-once-") {
                Some(n) => Behaviour::ThinkOnce(n.parse().ok()?),
                None => Behaviour::Steps(name.strip_prefix("steps-")?.parse().ok()?),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Behaviour {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Behaviour, D::Error> {
        /// The object form of the counted behaviours.
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        enum Counted {
            Steps(u32),
            ThinkOnce(u32),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Counted(Counted),
        }
        let form = Form::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "a behaviour is a name (claude, text, parallel, interleaved, redacted, blank, max-tokens, steps-N, think-once-N) or {\"steps\": N} or {\"think-once\": N}",
            )
        })?;
        match form {
            Form::Name(name) => Behaviour::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown behaviour `{name}`; expected claude, text, parallel, interleaved, redacted, blank, max-tokens, steps-N or think-once-N"
                ))
            }),
            Form::Counted(Counted::Steps(n)) => Ok(Behaviour::Steps(n)),
            Form::Counted(Counted::ThinkOnce(n)) => Ok(Behaviour::ThinkOnce(n)),
        }
    }
}

/// What the emulator does beyond checking: the model's behaviour per model id, and faults.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Script {
    /// The behaviour of model ids not named in `models`.
    pub behaviour: Behaviour,
    /// Behaviours by model id (as in the path, or without its `us.`-style prefix).
    pub models: BTreeMap<String, Behaviour>,
    /// Faults served in order, one per request, before `fault_rates` applies.
    pub faults: Vec<Fault>,
    /// Faults drawn at random for the other requests.
    pub fault_rates: FaultRates,
    /// How fast the model answers.
    pub pace: Pace,
}

/// A script file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read the script {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid script.
    #[error("invalid script {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        source: serde_json::Error,
    },
    /// The script's fault rates cannot be drawn from.
    #[error("invalid script {path}: {source}")]
    FaultRates {
        /// The file.
        path: String,
        /// Which rate, and why.
        source: FaultRatesError,
    },
}

impl Script {
    /// Reads a script file.
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScriptError::Read { path: shown.clone(), source })?;
        let script: Script = serde_json::from_str(&text)
            .map_err(|source| ScriptError::Invalid { path: shown.clone(), source })?;
        script
            .fault_rates
            .check()
            .map_err(|source| ScriptError::FaultRates { path: shown, source })?;
        Ok(script)
    }

    /// The behaviour of `model_id`.
    pub(crate) fn behaviour(&self, model_id: &str, model_key: &str) -> Behaviour {
        if let Some(behaviour) = model_key.strip_prefix("emulator.").and_then(Behaviour::from_name)
        {
            return behaviour;
        }
        self.models
            .get(model_id)
            .or_else(|| self.models.get(model_key))
            .cloned()
            .unwrap_or_else(|| self.behaviour.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviour_comes_from_the_model_id_then_the_script() {
        let script: Script = serde_json::from_str(
            r#"{"behaviour": "text", "models": {"anthropic.claude-x": {"steps": 3}}}"#,
        )
        .unwrap();
        assert_eq!(
            script.behaviour("us.emulator.parallel", "emulator.parallel"),
            Behaviour::Parallel
        );
        assert_eq!(script.behaviour("x", "emulator.steps-5"), Behaviour::Steps(5));
        assert_eq!(
            script.behaviour("us.anthropic.claude-x", "anthropic.claude-x"),
            Behaviour::Steps(3)
        );
        assert_eq!(script.behaviour("other", "other"), Behaviour::Text);
        assert_eq!(Script::default().behaviour("other", "other"), Behaviour::Claude);
        assert!(serde_json::from_str::<Script>(r#"{"behavior": "text"}"#).is_err());
    }

    #[test]
    fn a_script_names_behaviours_as_model_ids_do() {
        let behaviour = |json: &str| serde_json::from_str::<Behaviour>(json);
        assert_eq!(behaviour(r#""steps-0""#).unwrap(), Behaviour::Steps(0));
        assert_eq!(behaviour(r#""steps-5""#).unwrap(), Behaviour::Steps(5));
        assert_eq!(behaviour(r#""think-once-2""#).unwrap(), Behaviour::ThinkOnce(2));
        assert_eq!(behaviour(r#""max-tokens""#).unwrap(), Behaviour::MaxTokens);
        assert_eq!(behaviour(r#"{"steps": 0}"#).unwrap(), Behaviour::Steps(0));
        assert_eq!(behaviour(r#"{"think-once": 3}"#).unwrap(), Behaviour::ThinkOnce(3));
        let error = behaviour(r#""steps-x""#).unwrap_err().to_string();
        assert!(error.starts_with("unknown behaviour `steps-x`"), "{error}");
        assert!(behaviour(r#"{"steps": -1}"#).is_err());
        assert!(behaviour(r#"{"walk": 1}"#).is_err());
        let script: Script =
            serde_json::from_str(r#"{"behaviour": "steps-0", "models": {"m": "think-once-1"}}"#)
                .unwrap();
        assert_eq!(script.behaviour, Behaviour::Steps(0));
        assert_eq!(script.models["m"], Behaviour::ThinkOnce(1));
    }
}
