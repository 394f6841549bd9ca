//! A leg of a session: which way it was set up, where it is in its life, what the app is
//! told when it starts and how it ended.
//!
//! Invariants: a `Finished` leg is refused every request and a `HandingOver` one every
//! request until the host answers (the rules are in [`crate::phase`]); the WIT names of
//! hang-up reasons (`as_str`) are stable, they are stored in the call history.

/// Where a leg of the session is in its life, as far as the app's requests are concerned.
///
/// The call layer reports changes with `AppInstance::set_leg` (in `pbx-plugin`);
/// the imports also move it optimistically (answer → `Answered`, hangup → `Finished`) so that
/// a second answer in the same event is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegPhase {
    /// An inbound leg, offered and unanswered (180 Ringing sent).
    Ringing,
    /// An inbound leg with early media flowing (183 sent), not yet answered.
    EarlyMedia,
    /// An outbound leg being dialled, not answered yet.
    Dialing,
    /// The leg is answered (200 OK sent or received).
    Answered,
    /// The app asked to hand the leg over to another app and the host has not answered yet:
    /// every request naming the leg gets `invalid-state` until the host calls `set_leg`
    /// (refused: the leg's real phase) or delivers an accepted `HandOverResult`.
    HandingOver,
    /// The leg ended or is ending (rejected, hung up, cancelled, handed over or finished).
    Finished,
}

/// Which way a leg was set up, seen from the pbx. The same type is the app's, the call
/// history's and the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum Direction {
    /// A caller reached the pbx.
    Inbound,
    /// The pbx placed the call (a `dial`, or `POST /v1/calls`).
    Outbound,
}

impl Direction {
    /// The WIT name, `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// Parses a WIT name (the inverse of [`Direction::as_str`]).
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// What the app is told about the call that starts a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// This leg's identifier.
    pub id: String,
    /// Which way the leg was set up.
    pub direction: Direction,
    /// The caller: the user part of the From URI, or the whole URI when it has none.
    pub from: String,
    /// The called number or user (inbound), or the endpoint being dialled (outbound).
    pub to: String,
    /// The caller's display name, when the From header carries one.
    pub caller_name: Option<String>,
    /// The app's configuration values (name, value).
    pub config: Vec<(String, String)>,
    /// Set when another app handed this leg over; `None` for every other call (and always
    /// for 0.1 apps, which cannot be handed a leg).
    pub handed_over: Option<HandOverInfo>,
}

/// Where a handed-over leg comes from, given in [`CallInfo::handed_over`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandOverInfo {
    /// The id of the app whose session handed the leg over.
    pub from_app: String,
    /// What that app passed along (at most 4 KiB).
    pub data: String,
}

/// Who ended a leg. The same type is the app's, the call history's and the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum HangupBy {
    /// The pbx ended it: the app, the admin API, a limit or a failure on our side.
    Local,
    /// The other party ended it (BYE, CANCEL, or an error response).
    Remote,
}

impl HangupBy {
    /// The WIT name, `local` or `remote`.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupBy::Local => "local",
            HangupBy::Remote => "remote",
        }
    }

    /// Parses a WIT name (the inverse of [`HangupBy::as_str`]).
    pub fn parse(s: &str) -> Option<HangupBy> {
        match s {
            "local" => Some(HangupBy::Local),
            "remote" => Some(HangupBy::Remote),
            _ => None,
        }
    }
}

/// A name that is not one of an enum's WIT names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownName {
    /// The type it was meant to be.
    pub kind: &'static str,
    pub value: String,
}

macro_rules! wit_name_traits {
    ($ty:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $ty::parse(s).ok_or_else(|| UnknownName {
                    kind: stringify!($ty),
                    value: s.to_owned(),
                })
            }
        }
    };
}

wit_name_traits!(Direction);
wit_name_traits!(HangupBy);
wit_name_traits!(HangupReason);

/// Why a leg ended. The same type is the app's, the call history's and the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum HangupReason {
    /// An ordinary hangup after the leg was answered.
    Normal,
    /// A signalling or media failure, or a dialled endpoint that could not be reached.
    Failed,
    /// The callee or the app answered busy (486, 600).
    Busy,
    /// The leg was cancelled before it was answered.
    Cancel,
    /// A timer of the pbx ran out.
    Timeout,
    /// Nobody answered within the connect timeout.
    Noanswer,
    /// The app trapped, ran past its CPU deadline or exceeded its memory.
    AppError,
    /// The call was declined (403, 404, 603, ...) by the app or the callee.
    Rejected,
    /// The pbx is shutting down or the admin API ended the call.
    Admin,
}

impl HangupReason {
    /// The WIT name (`app-error`, `noanswer`, ...), used in the call history and the API.
    pub fn as_str(self) -> &'static str {
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

    /// Parses a WIT name (the inverse of [`HangupReason::as_str`]).
    pub fn parse(s: &str) -> Option<HangupReason> {
        Some(match s {
            "normal" => HangupReason::Normal,
            "failed" => HangupReason::Failed,
            "busy" => HangupReason::Busy,
            "cancel" => HangupReason::Cancel,
            "timeout" => HangupReason::Timeout,
            "noanswer" => HangupReason::Noanswer,
            "app-error" => HangupReason::AppError,
            "rejected" => HangupReason::Rejected,
            "admin" => HangupReason::Admin,
            _ => return None,
        })
    }
}

/// How a leg ended, given to `on-call-finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallEnded {
    /// Who ended the leg.
    pub hangup_by: HangupBy,
    /// Why it ended.
    pub hangup_reason: HangupReason,
    /// The SIP status that ended it, where there was one.
    pub sip_status: Option<u16>,
    /// True when the leg was answered before it ended (not seen by 0.1 apps).
    pub answered: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangup_reasons_parse_their_wit_names() {
        let all = [
            HangupReason::Normal,
            HangupReason::Failed,
            HangupReason::Busy,
            HangupReason::Cancel,
            HangupReason::Timeout,
            HangupReason::Noanswer,
            HangupReason::AppError,
            HangupReason::Rejected,
            HangupReason::Admin,
        ];
        for reason in all {
            assert_eq!(HangupReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(HangupReason::parse("Normal"), None);
        assert_eq!(HangupBy::Remote.as_str(), "remote");
    }
}
