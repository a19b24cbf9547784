//! AWS SDK "standard" retry mode (rules §7.2): which errors are retried, how long to wait,
//! and the retry budget shared by all calls of one transport.
//!
//! Retried: throttling (`ThrottlingException`, a bare 429, `rate_limit_error` and the other
//! throttling codes), transient errors (500, 502, 503, 504, 529, `ModelNotReadyException`,
//! `overloaded_error`, `api_error`, connection errors, a stream whose body broke off inside a
//! frame or an event before its first event) and timeouts. Never retried: validation and every
//! other 4xx, which are deterministic. A response's `x-should-retry: true|false` header (the
//! Anthropic API's) overrides that judgement, except that `invalid beta flag` is never
//! retried: the flag will not become valid. The delay before retry `i` (from 0) is full
//! jitter, `rand(0,1) * min(base * 2^i, max)`; a wait the server asked for (`retry-after-ms`,
//! `x-amz-retry-after`, `retry-after`) replaces it, clamped to that bound plus five seconds.
//! Each retry takes tokens from a bucket (5, or 10 after a timeout); an empty bucket stops
//! retrying. A success gives one token back, a successful retry its cost.

use std::sync::Mutex;
use std::time::Duration;

use crate::{Exception, TransportError};
use verbatim_protocol::eventstream::FrameError;
use verbatim_protocol::sse::SseError;

/// How a call is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, the first included (standard mode: 3). 1 (or 0) disables retries.
    pub max_attempts: u32,
    /// The backoff base (standard mode: 1 s).
    pub base_delay: Duration,
    /// The cap on one backoff (standard mode: 20 s).
    pub max_delay: Duration,
    /// The retry budget's size (standard mode: 500).
    pub initial_tokens: u32,
    /// Tokens one retry costs (standard mode: 5).
    pub retry_cost: u32,
    /// Tokens a retry after a timeout costs (standard mode: 10).
    pub timeout_retry_cost: u32,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(20),
            initial_tokens: 500,
            retry_cost: 5,
            timeout_retry_cost: 10,
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn disabled() -> RetryConfig {
        RetryConfig { max_attempts: 1, ..RetryConfig::default() }
    }

    /// With `max_attempts` attempts in all.
    pub fn with_max_attempts(mut self, attempts: u32) -> RetryConfig {
        self.max_attempts = attempts.max(1);
        self
    }

    /// With another backoff base and cap.
    pub fn with_delays(mut self, base: Duration, max: Duration) -> RetryConfig {
        self.base_delay = base;
        self.max_delay = max;
        self
    }

    /// The wait before retry number `retry` (0 for the first retry), given a random number
    /// in `[0, 1)` and the server's `x-amz-retry-after`, if any.
    pub fn delay(&self, retry: u32, random: f64, retry_after: Option<Duration>) -> Duration {
        let bound = self.base_delay.saturating_mul(1u32 << retry.min(20)).min(self.max_delay);
        match retry_after {
            Some(after) => after.min(bound + Duration::from_secs(5)),
            None => bound.mul_f64(random.clamp(0.0, 1.0)),
        }
    }
}

/// Why an error may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// The service asked us to slow down.
    Throttling,
    /// A failure that may not happen again.
    Transient,
    /// No answer in time.
    Timeout,
}

/// Whether an error is retried, given the response's `x-should-retry` header when it had
/// one: `false` never, `true` always (as transient, unless the error is throttling or a
/// timeout), except for `invalid beta flag`; without the header, [`classify`] decides.
pub fn decide(error: &TransportError, should_retry: Option<bool>) -> Option<RetryClass> {
    if error.api().is_some_and(|api| api.message.contains(INVALID_BETA)) {
        return None;
    }
    match should_retry {
        Some(false) => None,
        Some(true) => Some(classify(error).unwrap_or(RetryClass::Transient)),
        None => classify(error),
    }
}

/// Bedrock's answer to a beta it does not accept (400, in either body shape).
const INVALID_BETA: &str = "invalid beta flag";

/// The one place that decides whether an error is retried, from the error alone.
pub fn classify(error: &TransportError) -> Option<RetryClass> {
    match error {
        TransportError::Api(api) => match &api.exception {
            Exception::Throttling => Some(RetryClass::Throttling),
            Exception::ModelNotReady
            | Exception::InternalServer
            | Exception::ServiceUnavailable => Some(RetryClass::Transient),
            Exception::Other(code) if THROTTLING_CODES.contains(&code.as_str()) => {
                Some(RetryClass::Throttling)
            }
            Exception::Other(code) if TRANSIENT_CODES.contains(&code.as_str()) => {
                Some(RetryClass::Transient)
            }
            Exception::Other(_) if api.status == 429 => Some(RetryClass::Throttling),
            Exception::Other(_) if matches!(api.status, 500 | 502 | 503 | 504 | 529) => {
                Some(RetryClass::Transient)
            }
            _ => None,
        },
        TransportError::Timeout { .. } => Some(RetryClass::Timeout),
        TransportError::Connection { .. } => Some(RetryClass::Transient),
        TransportError::Frame(FrameError::Truncated { .. })
        | TransportError::Sse(SseError::Truncated { .. }) => Some(RetryClass::Transient),
        TransportError::Frame(_)
        | TransportError::Sse(_)
        | TransportError::UnexpectedResponse { .. }
        | TransportError::Credentials { .. }
        | TransportError::Request { .. }
        | TransportError::Config { .. } => None,
    }
}

/// Throttling error codes of the standard mode, and the Anthropic API's `rate_limit_error`
/// (sent with 429, and inside a stream with 200).
const THROTTLING_CODES: &[&str] = &[
    "rate_limit_error",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
];

/// Transient error codes of the standard mode, and the Anthropic API's (`overloaded_error`
/// with 529, `api_error` with 500; inside a stream both come with 200).
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "overloaded_error",
    "api_error",
];

/// The retry budget shared by the calls of one transport.
#[derive(Debug)]
pub struct TokenBucket {
    tokens: Mutex<u32>,
    capacity: u32,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32) -> TokenBucket {
        TokenBucket { tokens: Mutex::new(capacity), capacity }
    }

    /// Takes `cost` tokens for a retry; `false` (and nothing taken) when too few are left.
    pub fn acquire(&self, cost: u32) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if *tokens < cost {
            return false;
        }
        *tokens -= cost;
        true
    }

    /// Gives tokens back after a success (1, or the cost of the retry that succeeded).
    pub fn refund(&self, amount: u32) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        *tokens = tokens.saturating_add(amount).min(self.capacity);
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        *self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The retry cost of an error's class.
pub(crate) fn cost(config: &RetryConfig, class: RetryClass) -> u32 {
    match class {
        RetryClass::Timeout => config.timeout_retry_cost,
        RetryClass::Throttling | RetryClass::Transient => config.retry_cost,
    }
}

/// A random number in `[0, 1)` for jitter.
pub(crate) fn jitter() -> f64 {
    // 53 random bits give every double in [0, 1) with an equal step.
    let bits = getrandom::u64().unwrap_or(u64::MAX / 2) >> 11;
    bits as f64 / (1u64 << 53) as f64
}
