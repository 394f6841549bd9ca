//! The per-webhook delivery queue as a sans-IO state machine: ordering, the retry schedule
//! and the bound, with time as an argument.
//!
//! Invariants: only the head of the queue is ever attempted, and it leaves the queue only
//! when it is delivered or has failed for good, so item N+1 is never sent before item N is
//! settled; at most one attempt is in flight; the delay before attempt `k + 1` is
//! `base · 2^(k - 1)` (attempts at 0, base, 2·base, 4·base, ...) capped at
//! [`MAX_BACKOFF`]; after `max_attempts` failed attempts an item fails for good; the queue
//! never holds more than its capacity (the in-flight head included).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The longest wait between two attempts, however many have failed.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The retry schedule: exponential backoff from `base`, at most `max_attempts` attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt; each later wait doubles.
    pub base: Duration,
    /// How many attempts an item gets in all (at least 1).
    pub max_attempts: u32,
}

impl Backoff {
    /// The wait after `failed` attempts have failed before the next one, or `None` when
    /// `failed` attempts are all the item gets.
    pub fn delay_after(&self, failed: u32) -> Option<Duration> {
        if failed >= self.max_attempts.max(1) {
            return None;
        }
        let doublings = failed.saturating_sub(1).min(31);
        Some(
            self.base
                .checked_mul(1u32 << doublings)
                .unwrap_or(MAX_BACKOFF)
                .min(MAX_BACKOFF),
        )
    }
}

/// An attempt the caller should make now: send `item`, then report with
/// [`DeliveryQueue::handle_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<T> {
    /// The item to send (a clone of the queue's head).
    pub item: T,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub number: u32,
}

/// What became of the head after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// It was accepted; it left the queue.
    Delivered {
        /// The item.
        item: T,
        /// Attempts it took.
        attempts: u32,
    },
    /// It failed and will be tried again at `at`; it stays at the head.
    Retry {
        /// The item.
        item: T,
        /// Attempts made so far.
        attempts: u32,
        /// When the next attempt is due.
        at: Instant,
    },
    /// It failed its last attempt; it left the queue.
    Failed {
        /// The item.
        item: T,
        /// Attempts made.
        attempts: u32,
    },
}

/// One webhook's ordered, bounded queue of deliveries.
#[derive(Debug)]
pub struct DeliveryQueue<T> {
    backoff: Backoff,
    capacity: usize,
    items: VecDeque<T>,
    /// Attempts made on the head so far.
    head_attempts: u32,
    /// When the head may be attempted.
    head_due: Option<Instant>,
    /// An attempt on the head is under way.
    in_flight: bool,
}

impl<T: Clone> DeliveryQueue<T> {
    /// An empty queue holding at most `capacity` items (at least 1).
    pub fn new(backoff: Backoff, capacity: usize) -> Self {
        DeliveryQueue {
            backoff,
            capacity: capacity.max(1),
            items: VecDeque::new(),
            head_attempts: 0,
            head_due: None,
            in_flight: false,
        }
    }

    /// Items waiting, the in-flight head included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends `item`; a full queue hands it back.
    pub fn push(&mut self, now: Instant, item: T) -> Result<(), T> {
        if self.items.len() >= self.capacity {
            return Err(item);
        }
        if self.items.is_empty() {
            self.start_head(now);
        }
        self.items.push_back(item);
        Ok(())
    }

    /// The attempt to make now, if the head is due and none is in flight.
    pub fn poll_attempt(&mut self, now: Instant) -> Option<Attempt<T>> {
        if self.in_flight {
            return None;
        }
        let due = self.head_due?;
        if due > now {
            return None;
        }
        let item = self.items.front()?.clone();
        self.in_flight = true;
        self.head_attempts += 1;
        Some(Attempt {
            item,
            number: self.head_attempts,
        })
    }

    /// When the next attempt is due, if one is waiting (none while one is in flight).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight { None } else { self.head_due }
    }

    /// Settles the in-flight attempt: `delivered` or not. `None` when none was in flight.
    pub fn handle_result(&mut self, now: Instant, delivered: bool) -> Option<Outcome<T>> {
        if !self.in_flight {
            return None;
        }
        self.in_flight = false;
        let attempts = self.head_attempts;
        if delivered {
            let item = self.pop_head(now)?;
            return Some(Outcome::Delivered { item, attempts });
        }
        match self.backoff.delay_after(attempts) {
            Some(delay) => {
                let at = now + delay;
                self.head_due = Some(at);
                let item = self.items.front()?.clone();
                Some(Outcome::Retry { item, attempts, at })
            }
            None => {
                let item = self.pop_head(now)?;
                Some(Outcome::Failed { item, attempts })
            }
        }
    }

    /// Empties the queue (the webhook went away); an in-flight attempt's later result is
    /// ignored.
    pub fn drain(&mut self) -> Vec<T> {
        self.in_flight = false;
        self.head_due = None;
        self.head_attempts = 0;
        self.items.drain(..).collect()
    }

    fn start_head(&mut self, now: Instant) {
        self.head_attempts = 0;
        self.head_due = Some(now);
    }

    fn pop_head(&mut self, now: Instant) -> Option<T> {
        let item = self.items.pop_front();
        if self.items.is_empty() {
            self.head_due = None;
            self.head_attempts = 0;
        } else {
            self.start_head(now);
        }
        item
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);

    fn queue(max_attempts: u32, capacity: usize) -> DeliveryQueue<u32> {
        DeliveryQueue::new(
            Backoff {
                base: BASE,
                max_attempts,
            },
            capacity,
        )
    }

    #[test]
    fn backoff_schedule_doubles_and_caps() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max_attempts: 5,
        };
        let delays: Vec<_> = (1..=5).map(|n| b.delay_after(n)).collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(8)),
                None
            ]
        );
        let long = Backoff {
            base: Duration::from_secs(1),
            max_attempts: 100,
        };
        assert_eq!(long.delay_after(60), Some(MAX_BACKOFF));
    }

    #[test]
    fn retries_in_virtual_time_then_delivers() {
        let t0 = Instant::now();
        let mut q = queue(5, 10);
        q.push(t0, 1).unwrap();
        q.push(t0, 2).unwrap();
        let a = q.poll_attempt(t0).unwrap();
        assert_eq!((a.item, a.number), (1, 1));
        assert!(q.poll_attempt(t0).is_none(), "one attempt in flight");
        assert_eq!(q.poll_timeout(), None);

        let t1 = t0 + Duration::from_millis(5);
        let Some(Outcome::Retry { item: 1, at, .. }) = q.handle_result(t1, false) else {
            panic!("expected a retry")
        };
        assert_eq!(at, t1 + BASE);
        assert_eq!(q.poll_timeout(), Some(at));
        assert!(q.poll_attempt(at - Duration::from_millis(1)).is_none());
        assert!(
            q.poll_attempt(at)
                .is_some_and(|a| a.item == 1 && a.number == 2)
        );

        let t2 = at + Duration::from_millis(5);
        let Some(Outcome::Retry { at: at2, .. }) = q.handle_result(t2, false) else {
            panic!("expected a retry")
        };
        assert_eq!(at2, t2 + 2 * BASE);
        // Item 2 is never attempted while item 1 is unsettled.
        assert!(q.poll_attempt(at2 - Duration::from_millis(1)).is_none());
        let a = q.poll_attempt(at2).unwrap();
        assert_eq!((a.item, a.number), (1, 3));
        assert_eq!(
            q.handle_result(at2, true),
            Some(Outcome::Delivered {
                item: 1,
                attempts: 3
            })
        );
        let a = q.poll_attempt(at2).unwrap();
        assert_eq!((a.item, a.number), (2, 1));
        assert!(matches!(
            q.handle_result(at2, true),
            Some(Outcome::Delivered { item: 2, .. })
        ));
        assert!(q.is_empty());
        assert_eq!(q.poll_timeout(), None);
    }

    #[test]
    fn fails_for_good_after_max_attempts_and_moves_on() {
        let mut now = Instant::now();
        let mut q = queue(3, 10);
        q.push(now, 7).unwrap();
        q.push(now, 8).unwrap();
        let mut outcomes = Vec::new();
        while let Some(at) = q.poll_timeout() {
            now = at;
            let a = q.poll_attempt(now).unwrap();
            if a.item == 8 {
                outcomes.push(q.handle_result(now, true).unwrap());
                break;
            }
            outcomes.push(q.handle_result(now, false).unwrap());
        }
        assert!(matches!(outcomes[0], Outcome::Retry { attempts: 1, .. }));
        assert!(matches!(outcomes[1], Outcome::Retry { attempts: 2, .. }));
        assert_eq!(
            outcomes[2],
            Outcome::Failed {
                item: 7,
                attempts: 3
            }
        );
        assert_eq!(
            outcomes[3],
            Outcome::Delivered {
                item: 8,
                attempts: 1
            }
        );
    }

    #[test]
    fn bounded_and_drainable() {
        let now = Instant::now();
        let mut q = queue(5, 2);
        q.push(now, 1).unwrap();
        q.push(now, 2).unwrap();
        assert_eq!(q.push(now, 3), Err(3));
        assert_eq!(q.len(), 2);
        let _ = q.poll_attempt(now).unwrap();
        assert_eq!(q.drain(), [1, 2]);
        assert_eq!(q.handle_result(now, true), None, "stale result ignored");
        q.push(now, 4).unwrap();
        let a = q.poll_attempt(now).unwrap();
        assert_eq!((a.item, a.number), (4, 1));
    }

    #[test]
    fn a_result_without_an_attempt_is_ignored() {
        let mut q = queue(5, 2);
        assert_eq!(q.handle_result(Instant::now(), false), None);
    }
}
