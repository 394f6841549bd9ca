//! The plain identifiers the host hands out to an app within one session.
//!
//! Invariants: every id is a number the host chose, counted from 1 per session and never
//! reused within it (0 is never handed out); an app only ever echoes them back.

/// The host's identifier of one `say` or `play` request, echoed in its finished event.
pub type MediaId = u64;

/// The host's identifier of a timer set with `set-timer`.
pub type TimerId = u64;

/// The host's identifier of one HTTP request, unique within a session.
pub type RequestId = u64;
