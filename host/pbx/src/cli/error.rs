//! The CLI's one error type: what went wrong, phrased for the person at the terminal.
//!
//! Invariant: `Display` is the whole message after `pbx: `; an API error shows the API's own
//! `code: message`, a connection error names the URL that failed.

/// Why a CLI command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API answered with an error (`{"error":{"code","message"}}`).
    #[error("{code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's stable error code.
        code: String,
        /// The API's message.
        message: String,
    },
    /// The API could not be reached or the exchange broke off.
    #[error("cannot reach the pbx API at {url}: {reason}")]
    Connect {
        /// The URL that failed.
        url: String,
        /// The cause, with its source chain.
        reason: String,
    },
    /// The API answered something that is not what this CLI expects.
    #[error("unexpected answer from {url}: {reason}")]
    Unexpected {
        /// The URL that answered.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A configuration file is unreadable or malformed, or no key is configured.
    #[error("{0}")]
    Config(String),
    /// The command line asks for something impossible (bad name, existing directory).
    #[error("{0}")]
    Invalid(String),
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An external tool (cargo, rustup) failed.
    #[error("{0}")]
    Tool(String),
    /// Anything else, already phrased.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }
}

/// An error and its sources, joined with `: ` (reqwest's own message hides the cause).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The root cause of an error, for connection failures whose outer layers only repeat the URL
/// ("error sending request for url (...)": the last source says "Connection refused").
pub(crate) fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
