//! Session timers: `set_timer` and `cancel_timer`.
//!
//! Invariant: a timer fires at most once, as `on_timer` with the tag it was set with; the
//! host enforces the limits (1 ms to 24 h, tags up to 256 bytes, 64 timers at once).

use std::time::Duration;

use crate::host::timers;
use crate::media::millis;
use crate::{Error, TimerId};

/// Calls [`App::on_timer`](crate::App::on_timer) after `after` (millisecond precision),
/// passing `tag` back so the app knows what the timer was for.
pub fn set_timer(after: Duration, tag: &str) -> Result<TimerId, Error> {
    Ok(timers::set_timer(millis(after), tag)?)
}

/// Cancels a timer that has not fired; cancelling a fired or unknown timer does nothing.
pub fn cancel_timer(timer: TimerId) {
    timers::cancel_timer(timer);
}
