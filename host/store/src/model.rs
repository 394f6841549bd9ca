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
    /// The account that owns it.
    pub account_id: String,
    /// Unique within its account, `[A-Za-z0-9._-]{1,64}`.
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
    /// The dialled number (the Request-URI user part); unique across the server.
    pub number: String,
    /// The app that answers it.
    pub app_id: String,
    /// The account that owns the number (and the app).
    pub account_id: String,
    /// When the binding was last set.
    pub updated_at: DateTime<Utc>,
}

/// Where a call to a number goes: the app and its active version at lookup time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The app bound to the number.
    pub app_id: String,
    /// The account that owns the app: the call belongs to it.
    pub account_id: String,
    /// Its deployed version.
    pub version: u32,
}

/// An uploaded audio file; the bytes live on disk, this is what the database knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// `file_` plus 16 hex digits; what apps pass to `play`.
    pub id: String,
    /// The account that owns it.
    pub account_id: String,
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

pub use pbx_app::{Direction, HangupBy, HangupReason};

/// One call leg as shown by the admin API and kept in the call history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The host's call id (the WIT `call-id`).
    pub id: String,
    /// The account the call belongs to (its app's account).
    #[serde(default = "default_account")]
    pub account_id: String,
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
    /// The call whose session dialled this leg (VoIPBIN's master call); when the master
    /// hangs up, its chained legs hang up. `None` for a session's first call.
    #[serde(default)]
    pub master_call_id: Option<String>,
}

/// The account of records written before accounts existed.
fn default_account() -> String {
    crate::DEFAULT_ACCOUNT_ID.to_owned()
}

/// What a recording captures (the WIT `record-target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingTarget {
    /// One leg.
    Call,
    /// The bridge a leg is in: both parties.
    Bridge,
    /// A conference: every participant.
    Conference,
}

/// Where a recording is in its life; `Ready` and `Failed` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    /// The recorder is still writing.
    Recording,
    /// Finished; its files can be downloaded.
    Ready,
    /// The recorder failed or the server stopped under it; there are no files.
    Failed,
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

string_enum!(CallStatus {
    Dialing => "dialing",
    Ringing => "ringing",
    Progressing => "progressing",
    Terminating => "terminating",
    Canceling => "canceling",
    Hangup => "hangup",
});
string_enum!(RecordingTarget {
    Call => "call",
    Bridge => "bridge",
    Conference => "conference",
});
string_enum!(RecordingStatus {
    Recording => "recording",
    Ready => "ready",
    Failed => "failed",
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

/// Checks a SIP or SIPS URI with a host (`sip:[user@]host[:port][;params][?headers]`,
/// at most 256 printable ASCII characters); `field` names the argument in the error.
pub fn validate_sip_uri(field: &'static str, uri: &str) -> Result<(), StoreError> {
    sip_uri_problem(uri).map_or(Ok(()), |problem| Err(StoreError::invalid(field, problem)))
}

/// What is wrong with `uri` as a SIP URI, if anything.
fn sip_uri_problem(uri: &str) -> Option<&'static str> {
    if uri.is_empty() || uri.len() > 256 || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("must be 1 to 256 printable ASCII characters without spaces");
    }
    let lower = uri.to_ascii_lowercase();
    let rest = if lower.starts_with("sips:") {
        &uri[5..]
    } else if lower.starts_with("sip:") {
        &uri[4..]
    } else {
        return Some("must start with sip: or sips:");
    };
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    let user_host = &rest[..end];
    let host_port = match user_host.rsplit_once('@') {
        Some(("", _)) => return Some("has an empty user part before @"),
        Some((_, host_port)) => host_port,
        None => user_host,
    };
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Some("has an unclosed [ in its host");
        };
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Some("has a malformed IPv6 host");
        }
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return Some("has text after its IPv6 host"),
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Some("must name a host");
    }
    if !host_port.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Some("has a host that is not a domain name or an IP address");
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Some("has a port that is not 1 to 65535");
    }
    None
}

/// Checks a SIP user name (`/v1/sip-users`, endpoint `user`): 1 to 64 characters of
/// `A-Z a-z 0-9 . _ -`.
pub fn validate_sip_username(username: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "username",
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// Checks a dialled phone number: an optional leading `+` and 1 to 32 digits.
pub fn validate_phone_number(number: &str) -> Result<(), StoreError> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if (1..=32).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "number",
            "must be 1 to 32 digits with an optional leading +",
        ))
    }
}

/// Checks a display name that goes into a quoted SIP header value: 1 to 64 characters,
/// no control characters, no `"` or `\`.
pub(crate) fn validate_display_name(name: &str) -> Result<(), StoreError> {
    let count = name.chars().count();
    if (1..=64).contains(&count)
        && !name
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "display_name",
            "must be 1 to 64 characters without control characters, \" or \\",
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
pub const APP_PREFIX: &str = "app_";
/// Prefix of file ids.
pub const FILE_PREFIX: &str = "file_";
/// Prefix of trunk ids.
pub const TRUNK_PREFIX: &str = "trk_";
/// Prefix of SIP user ids.
pub const SIP_USER_PREFIX: &str = "usr_";
/// Prefix of recording ids.
pub const RECORDING_PREFIX: &str = "rec_";
/// Prefix of conference ids; the server names new conferences with `new_id(CONFERENCE_PREFIX)`.
pub const CONFERENCE_PREFIX: &str = "cnf_";

/// A new random id: `prefix` plus 16 lowercase hex digits, so every id has one shape.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

/// True when `id` is `prefix` plus exactly 16 lowercase hex digits (and so safe in a path).
pub fn is_id(prefix: &str, id: &str) -> bool {
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
