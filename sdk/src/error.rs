//! The error a request returns when the host refuses it, for call control and for the
//! capabilities (`kv`, `http`, `config`) alike.
//!
//! Invariant: a refusal never ends a leg; the app decides what to do next.

use crate::bindings::pbx::app::capability_types::CapabilityError;
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
    /// The app was not granted this capability, or not for this target (a key-value store
    /// that is not enabled, an HTTP host outside the app's allow-list).
    #[error("not granted: {0}")]
    NotGranted(String),
    /// A key, value or body, or the app's total storage, is over its limit.
    #[error("too large: {0}")]
    TooLarge(String),
}

impl Error {
    /// The host's explanation, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidState(m)
            | Error::InvalidArgument(m)
            | Error::NotFound(m)
            | Error::Failed(m)
            | Error::NotGranted(m)
            | Error::TooLarge(m) => m,
        }
    }
}

impl From<CapabilityError> for Error {
    fn from(e: CapabilityError) -> Self {
        match e {
            CapabilityError::NotGranted(m) => Error::NotGranted(m),
            CapabilityError::TooLarge(m) => Error::TooLarge(m),
            CapabilityError::InvalidArgument(m) => Error::InvalidArgument(m),
            CapabilityError::Failed(m) => Error::Failed(m),
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
        let e = Error::from(CapabilityError::NotGranted("kv is not enabled".into()));
        assert_eq!(e.to_string(), "not granted: kv is not enabled");
        assert_eq!(e.message(), "kv is not enabled");
    }
}
