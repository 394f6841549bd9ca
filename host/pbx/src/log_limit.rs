//! `RateLimit`: at most one log line per interval about something that can repeat without
//! bound (refused TCP connections, accept errors, INVITEs that reach no app, dropped
//! events), reporting how many were held back in between. Sans-IO: time is an argument.
//!
//! Invariants: the first occurrence is always allowed; after an allowed one, the next is
//! allowed only `every` later; each allowed one reports how many were suppressed since the
//! previous allowed one, and that count starts again from zero.

use std::time::{Duration, Instant};

/// One rate-limited log message's state.
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// At most one allowed occurrence per `every`.
    pub(crate) const fn new(every: Duration) -> Self {
        RateLimit {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// One occurrence at `now`: `Some(suppressed)` when it should be logged (with how many
    /// were held back since the last logged one), `None` when it is held back.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_with_the_suppressed_count() {
        let mut limit = RateLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(limit.allow(at(0)), Some(0), "the first is logged");
        assert_eq!(limit.allow(at(1)), None);
        assert_eq!(limit.allow(at(9_999)), None);
        assert_eq!(limit.allow(at(10_000)), Some(2));
        assert_eq!(limit.allow(at(10_001)), None);
        assert_eq!(limit.allow(at(30_000)), Some(1));
        assert_eq!(limit.allow(at(40_000)), Some(0));
        // A clock that steps back does not panic; it just holds back.
        assert_eq!(limit.allow(at(5)), None);
    }
}
