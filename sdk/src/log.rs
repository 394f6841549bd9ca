//! Logging into the host's log, tagged by the host with the app and the call.
//!
//! Invariant: lines longer than 4 KiB are cut by the host; logging never fails.

use crate::host::log as wit;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging an app.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the app handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one line to the host's log at `level`.
pub fn write(level: Level, message: &str) {
    let level = match level {
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    wit::write(level, message);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes an info line.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes a warning line.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes an error line.
pub fn error(message: &str) {
    write(Level::Error, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __pbx_log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at debug level: `pbx_sdk::log::debug!("state {}", s)`.
#[doc(inline)]
pub use crate::__pbx_log_debug as debug;
/// Logs a formatted line at error level.
#[doc(inline)]
pub use crate::__pbx_log_error as error;
/// Logs a formatted line at info level: `pbx_sdk::log::info!("received digit {d}")`.
#[doc(inline)]
pub use crate::__pbx_log_info as info;
/// Logs a formatted line at warn level.
#[doc(inline)]
pub use crate::__pbx_log_warn as warn;

#[doc(hidden)]
#[macro_export]
macro_rules! __pbx_log_debug {
    ($($arg:tt)+) => { $crate::__pbx_log!($crate::log::Level::Debug, $($arg)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __pbx_log_info {
    ($($arg:tt)+) => { $crate::__pbx_log!($crate::log::Level::Info, $($arg)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __pbx_log_warn {
    ($($arg:tt)+) => { $crate::__pbx_log!($crate::log::Level::Warn, $($arg)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __pbx_log_error {
    ($($arg:tt)+) => { $crate::__pbx_log!($crate::log::Level::Error, $($arg)+) };
}
