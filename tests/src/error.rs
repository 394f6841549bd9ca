//! The harness's one error type: every failure names what was being done, so that a failing
//! test says which step broke before anyone opens a log.

use std::path::PathBuf;
use std::time::Duration;

/// Why a harness step failed. `Debug` prints the same text as `Display`, so that a test's
/// `unwrap()` shows a readable message (with log tails) instead of a struct dump.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// A file or socket operation failed; `what` says which one.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed, e.g. "spawn sipp" or "read /tmp/x.wav".
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A required program or file is missing (the pbx binary, a plugin, sipp).
    #[error("missing {what} at {path}: {hint}")]
    Missing {
        /// What is missing.
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the harness waited.
        after: Duration,
    },
    /// A child process ended when it should have kept running.
    #[error("{what} exited early with {status}; log tail:\n{log_tail}")]
    Exited {
        /// Which process.
        what: String,
        /// Its exit status as text.
        status: String,
        /// The last lines of its output.
        log_tail: String,
    },
    /// An HTTP request to the admin API failed below the HTTP level.
    #[error("HTTP {method} {url}: {source}")]
    Http {
        /// The request method.
        method: String,
        /// The full URL.
        url: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// A peer (baresip ctrl_tcp, a raw SIP socket, the API) sent something the harness cannot read.
    #[error("protocol error talking to {peer}: {message}")]
    Protocol {
        /// Which peer.
        peer: String,
        /// What was wrong.
        message: String,
    },
    /// A WAV file could not be read or written.
    #[error("WAV {path}: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: hound::Error,
    },
    /// The admin API answered with an unexpected status during a convenience step.
    #[error("{what}: expected HTTP {expected}, got {status} with body {body}")]
    Api {
        /// The step, e.g. "create app hello".
        what: String,
        /// The status the step needs.
        expected: u16,
        /// The status received.
        status: u16,
        /// The response body.
        body: String,
    },
}

impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)?;
        if let Some(source) = std::error::Error::source(self) {
            write!(f, " ({source:?})")?;
        }
        Ok(())
    }
}

impl HarnessError {
    /// Wraps an I/O error with the step that failed.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }

    /// A bounded wait that ran out.
    pub fn timeout(what: impl Into<String>, after: Duration) -> Self {
        HarnessError::Timeout {
            what: what.into(),
            after,
        }
    }

    /// A peer that said something unreadable.
    pub fn protocol(peer: impl Into<String>, message: impl Into<String>) -> Self {
        HarnessError::Protocol {
            peer: peer.into(),
            message: message.into(),
        }
    }
}

/// The harness's result type.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
