//! The records the store keeps and the rules for the identifiers and names in them.
//!
//! Invariants: app names match `[A-Za-z0-9._-]{1,64}`, numbers match `[0-9A-Za-z+*#._-]{1,32}`,
//! ids are a fixed prefix plus 16 lowercase hex digits (so an id is always safe in a file
//! name). Call-record enums serialize to the exact strings of the admin API and the WIT.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A call app: a name, its uploaded versions and the one that is live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// `app_` plus 16 hex digits.
    pub id: String,
    /// Unique, `[A-Za-z0-9._-]{1,64}`.
    pub name: String,
    /// When the app was created.
    pub created_at: DateTime<Utc>,
    /// The deployed version that new calls run; `None` until the first deploy.
    pub active_version: Option<u32>,
}

/// One uploaded component of an app; versions count 1, 2, ... per app and are immutable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The app this version belongs to.
    pub app_id: String,
    /// The version number, from 1.
    pub version: u32,
    /// Lowercase hex SHA-256 of the component bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// A number bound to an app, as listed by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRoute {
    /// The dialled number (the Request-URI user part).
    pub number: String,
    /// The app that answers it.
    pub app_id: String,
    /// When the binding was last set.
    pub updated_at: DateTime<Utc>,
}

/// Where a call to a number goes: the app and its active version at lookup time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The app bound to the number.
    pub app_id: String,
    /// Its deployed version.
    pub version: u32,
}

/// An uploaded audio file; the bytes live on disk, this is what the database knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// `file_` plus 16 hex digits; what apps pass to `play`.
    pub id: String,
    /// An optional display name given at upload.
    pub name: Option<String>,
    /// The content type it was uploaded with.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// What the server learnt from decoding it (format, rate, channels, duration_ms, ...).
    pub meta: serde_json::Value,
}

/// Which way a call was set up, seen from the pbx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A caller reached the pbx.
    Inbound,
    /// The pbx placed the call.
    Outbound,
}

/// Where a call is in its life; `Hangup` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// An outbound call is being placed.
    Dialing,
    /// The call is ringing (180 sent or received).
    Ringing,
    /// The call is answered or in early media.
    Progressing,
    /// A hangup was requested and is under way.
    Terminating,
    /// A CANCEL is under way.
    Canceling,
    /// The call has ended.
    Hangup,
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HangupBy {
    /// The pbx: the app, the admin API, a limit or a failure on our side.
    Local,
    /// The other party.
    Remote,
}

/// Why a call ended (the WIT `hangup-reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HangupReason {
    /// An ordinary hangup after answer.
    Normal,
    /// A signalling or media failure.
    Failed,
    /// Busy (486, 600).
    Busy,
    /// The caller gave up before answer.
    Cancel,
    /// A pbx timer ran out.
    Timeout,
    /// Nobody answered in time.
    Noanswer,
    /// The app trapped, ran out of CPU time or memory.
    AppError,
    /// The app rejected the call with a status other than busy.
    Rejected,
    /// Shutdown or the admin API ended the call.
    Admin,
}

/// One call leg as shown by the admin API and kept in the call history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The host's call id (the WIT `call-id`).
    pub id: String,
    /// The app that handled the call, when one was routed.
    pub app_id: Option<String>,
    /// The app version that handled it.
    pub app_version: Option<u32>,
    /// Which way the call was set up.
    pub direction: Direction,
    /// The caller.
    pub from: String,
    /// The called number.
    pub to: String,
    /// Where the call is in its life.
    pub status: CallStatus,
    /// Who ended it, once ended.
    pub hangup_by: Option<HangupBy>,
    /// Why it ended, once ended.
    pub hangup_reason: Option<HangupReason>,
    /// When the call was created.
    pub tm_create: DateTime<Utc>,
    /// When it started ringing.
    pub tm_ringing: Option<DateTime<Utc>>,
    /// When it was answered or started early media.
    pub tm_progressing: Option<DateTime<Utc>>,
    /// When it ended.
    pub tm_hangup: Option<DateTime<Utc>>,
    /// The SIP Call-ID of the dialog, for matching with packet captures.
    pub sip_call_id: Option<String>,
}

/// Lets an enum of fixed strings be written to and read from SQL text columns.
macro_rules! string_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The wire and database spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(StoreError::invalid(
                        stringify!($ty),
                        format!("unknown value {other:?}"),
                    )),
                }
            }
        }
    };
}

string_enum!(Direction { Inbound => "inbound", Outbound => "outbound" });
string_enum!(CallStatus {
    Dialing => "dialing",
    Ringing => "ringing",
    Progressing => "progressing",
    Terminating => "terminating",
    Canceling => "canceling",
    Hangup => "hangup",
});
string_enum!(HangupBy { Local => "local", Remote => "remote" });
string_enum!(HangupReason {
    Normal => "normal",
    Failed => "failed",
    Busy => "busy",
    Cancel => "cancel",
    Timeout => "timeout",
    Noanswer => "noanswer",
    AppError => "app-error",
    Rejected => "rejected",
    Admin => "admin",
});

/// Checks an app name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
pub fn validate_app_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "name",
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// Checks a routable number: 1 to 32 characters of `0-9 A-Z a-z + * # . _ -`.
pub fn validate_number(number: &str) -> Result<(), StoreError> {
    let ok = (1..=32).contains(&number.len())
        && number.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'*' | b'#' | b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "number",
            "must be 1 to 32 characters of 0-9 A-Z a-z + * # . _ -",
        ))
    }
}

/// Checks an uploaded file's display name: 1 to 255 characters, no control characters.
pub(crate) fn validate_file_name(name: &str) -> Result<(), StoreError> {
    let count = name.chars().count();
    if (1..=255).contains(&count) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "name",
            "must be 1 to 255 characters without control characters",
        ))
    }
}

/// Checks a content type: 1 to 127 printable ASCII characters.
pub(crate) fn validate_content_type(content_type: &str) -> Result<(), StoreError> {
    if (1..=127).contains(&content_type.len())
        && content_type
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ')
    {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "content_type",
            "must be 1 to 127 printable ASCII characters",
        ))
    }
}

/// Prefix of app ids.
pub(crate) const APP_PREFIX: &str = "app_";
/// Prefix of file ids.
pub(crate) const FILE_PREFIX: &str = "file_";

/// A new random id: `prefix` plus 16 lowercase hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

/// True when `id` is `prefix` plus exactly 16 lowercase hex digits (and so safe in a path).
pub(crate) fn is_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert!(validate_app_name("hello-1.0_x").is_ok());
        assert!(validate_app_name("").is_err());
        assert!(validate_app_name(&"a".repeat(65)).is_err());
        assert!(validate_app_name("a b").is_err());
        assert!(validate_app_name("é").is_err());
        assert!(validate_number("+49*30#1.2_3-x").is_ok());
        assert!(validate_number("").is_err());
        assert!(validate_number(&"1".repeat(33)).is_err());
        assert!(validate_number("12 3").is_err());
        assert!(validate_number("1/2").is_err());
    }

    #[test]
    fn ids() {
        let id = new_id(APP_PREFIX);
        assert!(is_id(APP_PREFIX, &id), "{id}");
        assert!(!is_id(FILE_PREFIX, &id));
        assert!(!is_id(APP_PREFIX, "app_../../etc/pass"));
        assert!(!is_id(APP_PREFIX, "app_0123456789ABCDEF"));
    }

    #[test]
    fn enum_spellings() {
        assert_eq!(HangupReason::AppError.as_str(), "app-error");
        assert_eq!(
            serde_json::to_value(HangupReason::AppError).ok(),
            Some(serde_json::json!("app-error"))
        );
        assert_eq!(
            "noanswer".parse::<HangupReason>().ok(),
            Some(HangupReason::Noanswer)
        );
        assert!("bogus".parse::<CallStatus>().is_err());
        assert_eq!(
            serde_json::to_value(CallStatus::Canceling).ok(),
            Some(serde_json::json!("canceling"))
        );
    }
}
