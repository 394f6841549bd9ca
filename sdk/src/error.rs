//! The error a call-control request returns when the host refuses it.
//!
//! Invariant: a refusal never ends the call; the app decides what to do next.

use std::fmt;

use crate::bindings::pbx::app::types::Error as WitError;

/// Why the host refused a call-control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The call is not in a state that allows this (for example `answer` twice, or `say`
    /// after hangup).
    InvalidState(String),
    /// An argument is out of range or malformed; the text says which.
    InvalidArgument(String),
    /// The call or file named does not exist.
    NotFound(String),
    /// The host could not do it (for example the speech engine failed).
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::InvalidState(_) => "invalid state",
            Error::InvalidArgument(_) => "invalid argument",
            Error::NotFound(_) => "not found",
            Error::Failed(_) => "failed",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

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
