//! The error a request returns when the host refuses it.
//!
//! Invariant: a refusal never ends a leg; the app decides what to do next.

use crate::bindings::pbx::app::types::Error as WitError;

/// Why the host refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The leg or conference is not in a state that allows this (for example `answer` twice,
    /// `connect` on an unanswered leg, or `say` after hangup).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// An argument is out of range or malformed; the text says which.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The leg, conference, recording, file or user named does not exist in this session.
    #[error("not found: {0}")]
    NotFound(String),
    /// The host could not do it (for example the speech engine failed, or a limit).
    #[error("failed: {0}")]
    Failed(String),
}

impl Error {
    /// The host's explanation, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidState(m)
            | Error::InvalidArgument(m)
            | Error::NotFound(m)
            | Error::Failed(m) => m,
        }
    }
}

impl From<WitError> for Error {
    fn from(e: WitError) -> Self {
        match e {
            WitError::InvalidState(m) => Error::InvalidState(m),
            WitError::InvalidArgument(m) => Error::InvalidArgument(m),
            WitError::NotFound(m) => Error::NotFound(m),
            WitError::Failed(m) => Error::Failed(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind_and_the_message() {
        let e = Error::from(WitError::InvalidState(
            "the call is already answered".into(),
        ));
        assert_eq!(e.to_string(), "invalid state: the call is already answered");
        assert_eq!(e.message(), "the call is already answered");
        assert_eq!(
            Error::NotFound("no file `x`".into()).to_string(),
            "not found: no file `x`"
        );
    }
}
