//! How fast the emulated model answers: the time to its first event and between events, so
//! that streams stay open as a real model's do (a client's timeouts, or what a proxy in front
//! adds, can then be measured at a model's pace rather than at loopback speed).

use std::time::Duration;

use serde::Deserialize;

/// The model's pace. The default answers at once, as fast as the connection goes.
///
/// In a script: `"pace": {"first_event_millis": 400, "event_millis": 20}`. Both keys are
/// optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pace {
    /// Milliseconds before a streamed answer's first event (the model's time to first token).
    pub first_event_millis: u64,
    /// Milliseconds between a streamed answer's events.
    pub event_millis: u64,
}

impl Pace {
    /// Whether it answers at once.
    pub(crate) fn is_immediate(&self) -> bool {
        self.first_event_millis == 0 && self.event_millis == 0
    }

    /// The wait before a streamed answer's event `index` (0 is the first).
    pub(crate) fn before_event(&self, index: usize) -> Duration {
        Duration::from_millis(if index == 0 { self.first_event_millis } else { self.event_millis })
    }

    /// The wait before a whole answer goes out: as long as its stream of `events` events
    /// would have taken.
    pub(crate) fn whole(&self, events: usize) -> Duration {
        let later = u64::try_from(events.saturating_sub(1)).unwrap_or(u64::MAX);
        Duration::from_millis(
            self.first_event_millis.saturating_add(self.event_millis.saturating_mul(later)),
        )
    }
}

/// A response extension: how long a whole answer waits before it goes out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait(pub(crate) Duration);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pace_spaces_events_and_holds_a_whole_answer_as_long_as_its_stream() {
        let pace: Pace =
            serde_json::from_str(r#"{"first_event_millis": 400, "event_millis": 20}"#).unwrap();
        assert_eq!(pace.before_event(0), Duration::from_millis(400));
        assert_eq!(pace.before_event(1), Duration::from_millis(20));
        assert_eq!(pace.before_event(7), Duration::from_millis(20));
        assert_eq!(pace.whole(6), Duration::from_millis(500));
        assert_eq!(pace.whole(0), Duration::from_millis(400));
        assert!(!pace.is_immediate());
        assert!(Pace::default().is_immediate());
        let only_first: Pace = serde_json::from_str(r#"{"first_event_millis": 5}"#).unwrap();
        assert_eq!(only_first.whole(10), Duration::from_millis(5));
        assert!(serde_json::from_str::<Pace>(r#"{"first_millis": 5}"#).is_err());
    }
}
