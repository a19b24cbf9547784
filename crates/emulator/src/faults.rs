//! Fault injection: the errors and breakages Bedrock produces, served on request
//! ([`crate::Emulator::inject`], a script's `faults`) or at random by rate ([`FaultRates`]).

use std::collections::VecDeque;
use std::time::Duration;

use serde::Deserialize;

/// One fault, drawn for one request after it was authenticated and before it is judged. A
/// fault that acts on a successful answer (`stream-exception`, `reset`) is used up by the
/// request it was drawn for even when that request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum Fault {
    /// HTTP 429 `ThrottlingException`: "Too many requests, please wait before trying again."
    Throttle,
    /// HTTP 429 `ThrottlingException`: "Too many tokens, please wait before trying again."
    TooManyTokens,
    /// HTTP 500 `InternalServerException`.
    Internal,
    /// HTTP 503 `ServiceUnavailableException`: "Bedrock is unable to process your request."
    Unavailable,
    /// An exception frame after `after` events of a streamed answer (inside the HTTP 200), then
    /// the end of the stream. A whole (not streamed) answer gets the exception's HTTP error.
    StreamException {
        /// Events sent before the exception.
        after: usize,
        /// Which exception.
        exception: StreamException,
    },
    /// The connection is cut after `after` events of a streamed answer; a whole answer is cut
    /// after its head.
    Reset {
        /// Events sent before the cut.
        after: usize,
    },
    /// The answer starts only after this many milliseconds.
    SlowFirstByte {
        /// The delay.
        millis: u64,
    },
}

/// The exceptions a stream carries as frames (rules R6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamException {
    /// `internalServerException`.
    Internal,
    /// `serviceUnavailableException`.
    Unavailable,
    /// `throttlingException`.
    Throttling,
    /// `modelStreamErrorException`, with `originalStatusCode` and `originalMessage`.
    ModelStreamError,
    /// `validationException`, as a tool-pairing error can arrive on the InvokeModel stream.
    Validation,
}

/// An error answer: HTTP status, exception name, message.
pub(crate) struct ErrorAnswer {
    pub(crate) status: u16,
    pub(crate) exception: &'static str,
    pub(crate) message: &'static str,
}

const INTERNAL: &str =
    "The system encountered an unexpected error during processing. Try your request again.";
const UNAVAILABLE: &str = "Bedrock is unable to process your request.";
const TOO_MANY_REQUESTS: &str = "Too many requests, please wait before trying again.";
const MODEL_STREAM: &str = "Model produced invalid sequence as part of ToolUse. Please refer to the model tool use troubleshooting guide.";

impl StreamException {
    /// The `:exception-type` header value.
    pub(crate) fn frame_name(self) -> &'static str {
        match self {
            StreamException::Internal => "internalServerException",
            StreamException::Unavailable => "serviceUnavailableException",
            StreamException::Throttling => "throttlingException",
            StreamException::ModelStreamError => "modelStreamErrorException",
            StreamException::Validation => "validationException",
        }
    }

    /// The same exception as an HTTP error.
    pub(crate) fn answer(self) -> ErrorAnswer {
        let (status, exception, message) = match self {
            StreamException::Internal => (500, "InternalServerException", INTERNAL),
            StreamException::Unavailable => (503, "ServiceUnavailableException", UNAVAILABLE),
            StreamException::Throttling => (429, "ThrottlingException", TOO_MANY_REQUESTS),
            StreamException::ModelStreamError => (424, "ModelStreamErrorException", MODEL_STREAM),
            StreamException::Validation => (
                400,
                "ValidationException",
                "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            ),
        };
        ErrorAnswer { status, exception, message }
    }
}

impl Fault {
    /// The HTTP error this fault answers with before any model output, if it is one.
    pub(crate) fn error(&self, stream: bool) -> Option<ErrorAnswer> {
        let (status, exception, message) = match self {
            Fault::Throttle => (429, "ThrottlingException", TOO_MANY_REQUESTS),
            Fault::TooManyTokens => {
                (429, "ThrottlingException", "Too many tokens, please wait before trying again.")
            }
            Fault::Internal => (500, "InternalServerException", INTERNAL),
            Fault::Unavailable => (503, "ServiceUnavailableException", UNAVAILABLE),
            Fault::StreamException { exception, .. } if !stream => return Some(exception.answer()),
            _ => return None,
        };
        Some(ErrorAnswer { status, exception, message })
    }

    /// How long the answer waits before its first byte.
    pub(crate) fn delay(&self) -> Duration {
        match self {
            Fault::SlowFirstByte { millis } => Duration::from_millis(*millis),
            _ => Duration::ZERO,
        }
    }
}

/// Faults drawn at random, each kind with its own probability per request (0.0 to 1.0; the
/// sum at most 1: [`FaultRates::check`], which the emulator applies when it starts and when
/// it loads a script). The draw is deterministic for a given `seed`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRates {
    /// Seeds the draw.
    pub seed: u64,
    /// HTTP 429 throttling.
    pub throttle: f64,
    /// HTTP 500.
    pub internal: f64,
    /// HTTP 503.
    pub unavailable: f64,
    /// An `internalServerException` frame after a few events of a stream (HTTP 500 for a
    /// whole answer).
    pub stream_exception: f64,
    /// The connection cut after a few events (or after the head of a whole answer).
    pub reset: f64,
    /// A slow first byte of `slow_millis`.
    pub slow: f64,
    /// The delay of a slow first byte, in milliseconds.
    pub slow_millis: u64,
}

/// Fault rates that cannot be drawn from: one outside 0 to 1, or a sum above 1.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultRatesError {
    /// A rate that is not a probability.
    #[error("fault_rates.{name} is {value}; a rate is a probability from 0 to 1")]
    OutOfRange {
        /// The rate's key (`throttle`, `reset`, ...).
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// Rates whose sum is above 1: one request draws at most one fault.
    #[error(
        "the fault rates add up to {total}; they may add up to 1 at most (a request draws one fault at most)"
    )]
    SumAboveOne {
        /// The sum.
        total: f64,
    },
}

impl FaultRates {
    /// The rates by key, in the order they are drawn.
    fn named(&self) -> [(&'static str, f64); 6] {
        [
            ("throttle", self.throttle),
            ("internal", self.internal),
            ("unavailable", self.unavailable),
            ("stream_exception", self.stream_exception),
            ("reset", self.reset),
            ("slow", self.slow),
        ]
    }

    /// Refuses a rate outside 0 to 1 (or not a number) and rates that add up to more than 1.
    pub fn check(&self) -> Result<(), FaultRatesError> {
        for (name, value) in self.named() {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultRatesError::OutOfRange { name, value });
            }
        }
        let total: f64 = self.named().iter().map(|(_, rate)| rate).sum();
        // A little slack: rates written as decimals (0.7 + 0.2 + 0.1) need not add up exactly.
        if total > 1.0 + 1e-9 {
            return Err(FaultRatesError::SumAboveOne { total });
        }
        Ok(())
    }
}

/// Where faults come from: the queue first, then the rates.
#[derive(Debug)]
pub(crate) struct Faults {
    queue: VecDeque<Fault>,
    rates: FaultRates,
    state: u64,
}

impl Faults {
    pub(crate) fn new(queue: Vec<Fault>, rates: FaultRates) -> Faults {
        let state = rates.seed ^ 0x9e37_79b9_7f4a_7c15;
        Faults { queue: queue.into(), rates, state }
    }

    pub(crate) fn push(&mut self, fault: Fault) {
        self.queue.push_back(fault);
    }

    /// splitmix64: small, fast, and the same sequence for the same seed everywhere.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The fault for the next request, if any.
    pub(crate) fn next(&mut self) -> Option<Fault> {
        if let Some(fault) = self.queue.pop_front() {
            return Some(fault);
        }
        let rates = &self.rates;
        let total = rates.throttle
            + rates.internal
            + rates.unavailable
            + rates.stream_exception
            + rates.reset
            + rates.slow;
        if total <= 0.0 {
            return None;
        }
        let draw = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let after = (self.next_u64() % 4) as usize + 1;
        let rates = &self.rates;
        let choices = [
            (rates.throttle, Fault::Throttle),
            (rates.internal, Fault::Internal),
            (rates.unavailable, Fault::Unavailable),
            (
                rates.stream_exception,
                Fault::StreamException { after, exception: StreamException::Internal },
            ),
            (rates.reset, Fault::Reset { after }),
            (rates.slow, Fault::SlowFirstByte { millis: rates.slow_millis }),
        ];
        let mut edge = 0.0;
        for (rate, fault) in choices {
            edge += rate;
            if draw < edge {
                return Some(fault);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_faults_come_first_then_rates_draw_about_as_often_as_asked() {
        let rates = FaultRates { seed: 1, throttle: 0.2, reset: 0.1, ..FaultRates::default() };
        let mut faults = Faults::new(vec![Fault::Internal], rates.clone());
        assert_eq!(faults.next(), Some(Fault::Internal));
        let drawn: Vec<Option<Fault>> = (0..10_000).map(|_| faults.next()).collect();
        let throttles = drawn.iter().filter(|f| **f == Some(Fault::Throttle)).count();
        let resets = drawn.iter().filter(|f| matches!(f, Some(Fault::Reset { .. }))).count();
        assert!((1_800..2_200).contains(&throttles), "{throttles}");
        assert!((850..1_150).contains(&resets), "{resets}");
        let mut again = Faults::new(Vec::new(), rates);
        let replay: Vec<Option<Fault>> = (0..10_000).map(|_| again.next()).collect();
        assert_eq!(drawn, replay, "the same seed draws the same faults");
        assert_eq!(Faults::new(Vec::new(), FaultRates::default()).next(), None);
    }

    #[test]
    fn faults_read_from_json() {
        let faults: Vec<Fault> = serde_json::from_str(
            r#"[{"kind": "throttle"}, {"kind": "stream-exception", "after": 2, "exception": "model-stream-error"}, {"kind": "slow-first-byte", "millis": 50}]"#,
        )
        .unwrap();
        assert_eq!(
            faults[1],
            Fault::StreamException { after: 2, exception: StreamException::ModelStreamError }
        );
        assert_eq!(faults[2].delay(), Duration::from_millis(50));
    }

    #[test]
    fn rates_outside_zero_to_one_or_adding_up_past_one_are_refused() {
        let rates = |throttle, reset| FaultRates { throttle, reset, ..FaultRates::default() };
        assert_eq!(rates(0.0, 0.0).check(), Ok(()));
        assert_eq!(rates(0.7, 0.3).check(), Ok(()));
        assert_eq!(rates(1.0, 0.0).check(), Ok(()));
        let error = rates(5.0, 0.0).check().unwrap_err();
        assert_eq!(error, FaultRatesError::OutOfRange { name: "throttle", value: 5.0 });
        assert_eq!(
            error.to_string(),
            "fault_rates.throttle is 5; a rate is a probability from 0 to 1"
        );
        assert_eq!(
            rates(0.0, -1.0).check(),
            Err(FaultRatesError::OutOfRange { name: "reset", value: -1.0 })
        );
        assert!(matches!(
            rates(f64::NAN, 0.0).check(),
            Err(FaultRatesError::OutOfRange { name: "throttle", .. })
        ));
        assert!(matches!(rates(0.6, 0.6).check(), Err(FaultRatesError::SumAboveOne { .. })));
    }
}
