//! `pbx:app/log@0.3.0`: the app's log lines, written to `tracing` under the target
//! `pbx::app` with the session and app id. This file owns the per-event log budget, which
//! the 0.1 and 0.2 `log` imports share (`legacy.rs`, `legacy_v0_2.rs`).
//!
//! Invariants: one event writes at most [`MAX_LOG_LINES_PER_EVENT`] lines (the rest are
//! dropped with one warning) and a line keeps at most [`MAX_LOG_BYTES`], so an app cannot
//! flood the host's log.

use super::{HostState, cut};
use crate::bindings::v0_3::log;

/// Longest log line kept, in bytes; longer lines are cut at a character boundary.
pub(crate) const MAX_LOG_BYTES: usize = 4096;
/// Most log lines one event may write; the rest are dropped with one warning.
pub(crate) const MAX_LOG_LINES_PER_EVENT: u32 = 100;

impl HostState {
    /// Writes one app log line, within the per-event budget.
    pub(crate) fn write_log(&mut self, level: tracing::Level, message: &str) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES_PER_EVENT {
            if self.log_lines == MAX_LOG_LINES_PER_EVENT + 1 {
                tracing::warn!(
                    target: "pbx::app",
                    session = %self.session_id,
                    app_id = %self.app_id,
                    "app log limit reached ({MAX_LOG_LINES_PER_EVENT} lines per event); dropping the rest"
                );
            }
            return;
        }
        let message = cut(message, MAX_LOG_BYTES);
        let (session, app_id) = (&self.session_id, &self.app_id);
        match level {
            tracing::Level::ERROR => {
                tracing::error!(target: "pbx::app", %session, %app_id, "{message}")
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "pbx::app", %session, %app_id, "{message}")
            }
            tracing::Level::INFO => {
                tracing::info!(target: "pbx::app", %session, %app_id, "{message}")
            }
            _ => tracing::debug!(target: "pbx::app", %session, %app_id, "{message}"),
        }
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.write_log(level, &message);
    }
}
