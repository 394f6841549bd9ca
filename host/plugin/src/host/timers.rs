//! `pbx:app/timers@0.3.0`: setting and cancelling the session's timers. This file owns
//! the timer checks and the session's timer limit.
//!
//! Invariants: a timer lasts 1 ms to a day and carries at most [`MAX_TAG_BYTES`] of tag; a
//! session holds at most [`MAX_TIMERS`] live ones; timer ids count up from 1 per session;
//! cancelling an unknown timer is a no-op, and a cancel the event budget cannot queue is
//! dropped with a warning rather than failing the app.

use super::{HostState, MAX_TIMER_MS, WitResult, failed, invalid_arg};
use crate::bindings::v0_3::timers;
use pbx_app::{Action, TimerId};

/// Live timers of one session at once.
pub(crate) const MAX_TIMERS: usize = 64;
/// Longest timer tag, in bytes.
const MAX_TAG_BYTES: usize = 256;

impl timers::Host for HostState {
    fn set_timer(&mut self, ms: u32, tag: String) -> WitResult<TimerId> {
        if !(1..=MAX_TIMER_MS).contains(&ms) {
            return Err(invalid_arg(format!(
                "ms {ms} is outside 1 to {MAX_TIMER_MS}"
            )));
        }
        if tag.len() > MAX_TAG_BYTES {
            return Err(invalid_arg(format!(
                "tag has {} bytes; the limit is {MAX_TAG_BYTES}",
                tag.len()
            )));
        }
        if self.timers.len() >= MAX_TIMERS {
            return Err(failed(format!(
                "the session has {MAX_TIMERS} live timers, the most it may have"
            )));
        }
        self.need_room()?;
        let id = self.next_timer_id;
        self.next_timer_id += 1;
        self.push(Action::SetTimer { id, ms, tag })?;
        self.timers.insert(id);
        Ok(id)
    }

    fn cancel_timer(&mut self, timer: TimerId) {
        if !self.timers.contains(&timer) {
            return;
        }
        match self.push(Action::CancelTimer { id: timer }) {
            Ok(()) => {
                self.timers.remove(&timer);
            }
            Err(_) => tracing::warn!(
                target: "pbx::app",
                session = %self.session_id,
                app_id = %self.app_id,
                timer,
                "cancel-timer dropped: too many requests in one event"
            ),
        }
    }
}
