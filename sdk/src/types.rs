//! Helpers on the WIT types the SDK re-exports: configuration look-up and readable names.
//!
//! Invariant: `HangupReason`'s `Display` is the WIT case name, so log lines and configuration
//! use the same words as the contract ("busy", "noanswer", "app-error").

use std::fmt;

use crate::{CallInfo, HangupReason};

impl CallInfo {
    /// The app's configuration value for `key`, if set (the first one when repeated).
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl HangupReason {
    /// The WIT case name: "normal", "failed", "busy", "cancel", "timeout", "noanswer",
    /// "app-error", "rejected" or "admin".
    pub fn as_str(&self) -> &'static str {
        match self {
            HangupReason::Normal => "normal",
            HangupReason::Failed => "failed",
            HangupReason::Busy => "busy",
            HangupReason::Cancel => "cancel",
            HangupReason::Timeout => "timeout",
            HangupReason::Noanswer => "noanswer",
            HangupReason::AppError => "app-error",
            HangupReason::Rejected => "rejected",
            HangupReason::Admin => "admin",
        }
    }
}

impl fmt::Display for HangupReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;

    #[test]
    fn config_value_finds_the_first_match() {
        let info = CallInfo {
            id: "leg-1".into(),
            direction: Direction::Inbound,
            from: "alice".into(),
            to: "1000".into(),
            caller_name: None,
            config: vec![
                ("callee".into(), "user:bob".into()),
                ("callee".into(), "user:carol".into()),
            ],
            handed_over: None,
        };
        assert_eq!(info.config_value("callee"), Some("user:bob"));
        assert_eq!(info.config_value("missing"), None);
    }

    #[test]
    fn hangup_reason_displays_the_wit_name() {
        assert_eq!(HangupReason::Noanswer.to_string(), "noanswer");
        assert_eq!(HangupReason::AppError.to_string(), "app-error");
        assert_eq!(
            format!("{:?}", HangupReason::Cancel),
            "HangupReason::Cancel"
        );
    }
}
