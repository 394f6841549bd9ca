//! The DTMF digit collector (`collect-dtmf`) as a sans-IO state machine.
//!
//! Invariants: at most one collection is active; every started collection ends exactly once,
//! through a returned [`Collected`] (max digits, terminator, inter-digit timeout, or cancel,
//! including being replaced by a new `start`). The timeout runs from the start and restarts at
//! every digit; the terminator is never part of the digits. Time is always an argument.

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::dtmf::Digit;

/// The most digits one collection may ask for.
pub const MAX_DIGITS: u32 = 64;

/// Why collection options were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CollectError {
    /// `max_digits` outside 1..=64.
    #[error("max-digits must be between 1 and {MAX_DIGITS}, got {0}")]
    MaxDigits(u32),
    /// A terminator other than "#" or "*".
    #[error("the terminator must be \"#\" or \"*\", got {0}")]
    Terminator(Digit),
    /// A zero timeout.
    #[error("timeout-ms must be greater than zero")]
    Timeout,
}

/// Options of one collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectOpts {
    /// Finish after this many digits (1..=64).
    pub max_digits: u32,
    /// Finish when this key ("#" or "*") is pressed.
    pub terminator: Option<Digit>,
    /// Finish when no digit arrives for this long (also before the first digit).
    pub timeout: Duration,
}

/// Why a collection finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectEnd {
    /// `max_digits` were collected.
    MaxDigits,
    /// The terminator was pressed.
    Terminator,
    /// The inter-digit timeout ran out.
    Timeout,
    /// Cancelled, or replaced by a new collection.
    Cancelled,
}

/// The result of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// The digits in the order pressed, without the terminator.
    pub digits: String,
    /// Why it finished.
    pub end: CollectEnd,
}

#[derive(Debug)]
struct Active {
    opts: CollectOpts,
    digits: String,
    deadline: Instant,
}

/// One leg's digit collector.
#[derive(Debug, Default)]
pub struct Collector {
    active: Option<Active>,
}

impl Collector {
    /// An idle collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a collection is under way.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Starts a collection at `now`. A collection already under way ends as
    /// [`CollectEnd::Cancelled`] and is returned, so the app hears about it.
    pub fn start(
        &mut self,
        now: Instant,
        opts: CollectOpts,
    ) -> Result<Option<Collected>, CollectError> {
        if opts.max_digits == 0 || opts.max_digits > MAX_DIGITS {
            return Err(CollectError::MaxDigits(opts.max_digits));
        }
        if let Some(t) = opts.terminator
            && !matches!(t.as_char(), '#' | '*')
        {
            return Err(CollectError::Terminator(t));
        }
        if opts.timeout.is_zero() {
            return Err(CollectError::Timeout);
        }
        let previous = self.cancel();
        self.active = Some(Active {
            opts,
            digits: String::with_capacity(opts.max_digits as usize),
            deadline: now + opts.timeout,
        });
        Ok(previous)
    }

    /// A key was pressed at `now`; returns the result when this key ends the collection.
    pub fn on_digit(&mut self, now: Instant, digit: Digit) -> Option<Collected> {
        let active = self.active.as_mut()?;
        if now >= active.deadline {
            // The timeout was due before this key; honour it first.
            return self.finish(CollectEnd::Timeout);
        }
        if active.opts.terminator == Some(digit) {
            return self.finish(CollectEnd::Terminator);
        }
        active.digits.push(digit.as_char());
        if active.digits.len() >= active.opts.max_digits as usize {
            return self.finish(CollectEnd::MaxDigits);
        }
        active.deadline = now + active.opts.timeout;
        None
    }

    /// Handles the timer; returns the result when the inter-digit timeout has run out.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Collected> {
        let active = self.active.as_ref()?;
        if now >= active.deadline {
            return self.finish(CollectEnd::Timeout);
        }
        None
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.as_ref().map(|a| a.deadline)
    }

    /// Ends the collection under way (the call ended, or the app started another).
    pub fn cancel(&mut self) -> Option<Collected> {
        self.finish(CollectEnd::Cancelled)
    }

    fn finish(&mut self, end: CollectEnd) -> Option<Collected> {
        self.active.take().map(|a| Collected {
            digits: a.digits,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digit {
        Digit::parse(s).unwrap()
    }

    fn opts(max: u32, term: Option<&str>, ms: u64) -> CollectOpts {
        CollectOpts {
            max_digits: max,
            terminator: term.map(d),
            timeout: Duration::from_millis(ms),
        }
    }

    fn press(c: &mut Collector, now: Instant, keys: &str) -> Option<Collected> {
        let mut last = None;
        for k in keys.chars() {
            last = c.on_digit(now, Digit::from_char(k).unwrap());
        }
        last
    }

    #[test]
    fn finishes_at_max_digits() {
        let t0 = crate::test_epoch();
        let mut c = Collector::new();
        assert_eq!(c.start(t0, opts(3, Some("#"), 5000)), Ok(None));
        assert_eq!(press(&mut c, t0, "12"), None);
        assert_eq!(
            c.on_digit(t0, d("3")),
            Some(Collected {
                digits: "123".into(),
                end: CollectEnd::MaxDigits
            })
        );
        assert!(!c.is_active());
        assert_eq!(c.on_digit(t0, d("4")), None);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn terminator_is_not_collected() {
        let t0 = crate::test_epoch();
        let mut c = Collector::new();
        c.start(t0, opts(10, Some("#"), 5000)).unwrap();
        assert_eq!(
            press(&mut c, t0, "42#"),
            Some(Collected {
                digits: "42".into(),
                end: CollectEnd::Terminator
            })
        );
        // A terminator alone gives empty digits.
        c.start(t0, opts(10, Some("*"), 5000)).unwrap();
        assert_eq!(
            press(&mut c, t0, "*"),
            Some(Collected {
                digits: "".into(),
                end: CollectEnd::Terminator
            })
        );
        // Without a terminator, "#" is an ordinary digit.
        c.start(t0, opts(2, None, 5000)).unwrap();
        assert_eq!(press(&mut c, t0, "#1").unwrap().digits, "#1");
    }

    #[test]
    fn inter_digit_timeout_restarts_at_each_digit() {
        let t0 = crate::test_epoch();
        let ms = Duration::from_millis;
        let mut c = Collector::new();
        c.start(t0, opts(10, None, 3000)).unwrap();
        assert_eq!(c.poll_timeout(), Some(t0 + ms(3000)));
        assert_eq!(c.handle_timeout(t0 + ms(2999)), None);
        assert_eq!(c.on_digit(t0 + ms(2000), d("7")), None);
        assert_eq!(c.poll_timeout(), Some(t0 + ms(5000)));
        assert_eq!(c.handle_timeout(t0 + ms(3000)), None);
        assert_eq!(
            c.handle_timeout(t0 + ms(5000)),
            Some(Collected {
                digits: "7".into(),
                end: CollectEnd::Timeout
            })
        );
        assert_eq!(c.handle_timeout(t0 + ms(9000)), None);
    }

    #[test]
    fn timeout_before_first_digit_and_overdue_digit() {
        let t0 = crate::test_epoch();
        let mut c = Collector::new();
        c.start(t0, opts(4, None, 1000)).unwrap();
        assert_eq!(
            c.handle_timeout(t0 + Duration::from_secs(1)).unwrap().end,
            CollectEnd::Timeout
        );
        // A key that arrives after an unhandled deadline ends the collection as a timeout.
        c.start(t0, opts(4, None, 1000)).unwrap();
        let r = c.on_digit(t0 + Duration::from_secs(2), d("1")).unwrap();
        assert_eq!((r.digits.as_str(), r.end), ("", CollectEnd::Timeout));
    }

    #[test]
    fn restart_and_cancel_report_cancelled() {
        let t0 = crate::test_epoch();
        let mut c = Collector::new();
        c.start(t0, opts(4, None, 1000)).unwrap();
        c.on_digit(t0, d("9"));
        let prev = c.start(t0, opts(4, None, 1000)).unwrap();
        assert_eq!(
            prev,
            Some(Collected {
                digits: "9".into(),
                end: CollectEnd::Cancelled
            })
        );
        assert_eq!(c.cancel().unwrap().end, CollectEnd::Cancelled);
        assert_eq!(c.cancel(), None);
    }

    #[test]
    fn rejects_bad_options() {
        let t0 = crate::test_epoch();
        let mut c = Collector::new();
        assert_eq!(
            c.start(t0, opts(0, None, 1000)),
            Err(CollectError::MaxDigits(0))
        );
        assert_eq!(
            c.start(t0, opts(65, None, 1000)),
            Err(CollectError::MaxDigits(65))
        );
        assert_eq!(
            c.start(t0, opts(4, Some("5"), 1000)),
            Err(CollectError::Terminator(d("5")))
        );
        assert_eq!(c.start(t0, opts(4, None, 0)), Err(CollectError::Timeout));
        assert!(!c.is_active());
        assert_eq!(c.start(t0, opts(64, Some("*"), 1)), Ok(None));
    }
}
