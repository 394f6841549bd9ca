//! Plain Rust mirrors of the WIT types and the actions an app requests.
//!
//! Invariants: these are the only event and action types the rest of pbx sees (no generated
//! binding type leaves the crate); option structs hold normalised values (a loop count of 0
//! becomes 1) because the host validated them before queuing the action.

use crate::bindings::wit_types as wit;

/// The host's identifier of one `say` or `play` request, echoed in its finished event.
pub type MediaId = u64;

/// Where a call is in its life, as far as the app's requests are concerned.
///
/// The call layer reports changes with [`AppInstance::set_phase`](crate::AppInstance::set_phase);
/// the imports also move it optimistically (answer → `Answered`) so that a second answer in
/// the same event is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The call is offered and unanswered (180 Ringing sent).
    Ringing,
    /// Early media is flowing (183 sent), not yet answered.
    EarlyMedia,
    /// The call is answered (200 OK sent).
    Answered,
    /// The call ended or is ending (rejected, hung up, or finished).
    Finished,
}

/// Which way a call was set up, seen from the pbx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A caller reached the pbx.
    Inbound,
    /// The pbx placed the call.
    Outbound,
}

/// What the app is told about a new call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// This call's identifier.
    pub id: String,
    /// Which way the call was set up.
    pub direction: Direction,
    /// The caller: the user part of the From URI, or the whole URI when it has none.
    pub from: String,
    /// The called number: the user part of the Request-URI.
    pub to: String,
    /// The caller's display name, when the From header carries one.
    pub caller_name: Option<String>,
    /// The app's configuration values (name, value).
    pub config: Vec<(String, String)>,
}

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HangupBy {
    /// The pbx ended it: the app, the admin API, a limit or a failure on our side.
    Local,
    /// The other party ended it (BYE, CANCEL, or an error response).
    Remote,
}

/// Why the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HangupReason {
    /// An ordinary hangup after the call was answered.
    Normal,
    /// A signalling or media failure.
    Failed,
    /// The app (or the callee) rejected the call as busy (486, 600).
    Busy,
    /// The caller gave up before the call was answered (CANCEL).
    Cancel,
    /// A timer of the pbx ran out.
    Timeout,
    /// Nobody answered in time.
    Noanswer,
    /// The app trapped, ran past its CPU deadline or exceeded its memory.
    AppError,
    /// The app rejected the call with a status other than busy.
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
}

/// How a call ended, given to `on-call-finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallEnded {
    /// Who ended the call.
    pub hangup_by: HangupBy,
    /// Why it ended.
    pub hangup_reason: HangupReason,
    /// The SIP status that ended it, where there was one.
    pub sip_status: Option<u16>,
}

/// What a finished `say` or `play` reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaFinished {
    /// The id that `say` or `play` returned.
    pub id: MediaId,
    /// True when every loop played to its end.
    pub played_completely: bool,
    /// The key that stopped it, when `stop-on-dtmf` did.
    pub digit: Option<String>,
}

/// Why a digit collection finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectEnd {
    /// `max-digits` digits were collected.
    MaxDigits,
    /// The terminator key was pressed.
    Terminator,
    /// The inter-digit timeout ran out.
    Timeout,
    /// The call ended or the app started another collection.
    Cancelled,
}

/// The result of a `collect-dtmf`, given to `on-dtmf-collected`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectedDigits {
    /// The digits in the order pressed, without the terminator.
    pub digits: String,
    /// Why the collection finished.
    pub end: CollectEnd,
}

/// Validated options of a `say` request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SayOptions {
    /// A BCP 47 language tag; `None` means English.
    pub language: Option<String>,
    /// A voice variant of the engine; `None` means the default voice.
    pub voice: Option<String>,
    /// How many times to speak the text, at least 1.
    pub loop_count: u32,
    /// Stop speaking when the caller presses a key.
    pub stop_on_dtmf: bool,
}

/// Validated options of a `play` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayOptions {
    /// How many times to play the file, at least 1.
    pub loop_count: u32,
    /// Where to start within the file, in milliseconds (first loop only).
    pub offset_ms: u32,
    /// Stop playing after this many milliseconds; `None` plays to the end.
    pub timeout_ms: Option<u32>,
    /// Stop playing when the caller presses a key.
    pub stop_on_dtmf: bool,
}

/// Validated options of a `collect-dtmf` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CollectOptions {
    /// Finish once this many digits are collected (1 to 64).
    pub max_digits: u32,
    /// Finish when this key is pressed; it is not included in the digits.
    pub terminator: Option<char>,
    /// Finish when no digit arrives for this long, in milliseconds.
    pub timeout_ms: u32,
}

/// One thing the app asked the call to do, in the order it asked; the call layer carries
/// them out after the event returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the call (200 OK with our SDP).
    Answer,
    /// Start early media (183 with our SDP).
    EarlyMedia,
    /// Reject the unanswered call with this final status (400..=699).
    Reject {
        /// The SIP final status.
        status: u16,
    },
    /// End the call (BYE when answered, 480 when not).
    Hangup,
    /// Speak text; report the end as `on-say-finished` with `id`.
    Say {
        /// The id returned to the app.
        id: MediaId,
        /// The text to speak (1 to 4000 characters).
        text: String,
        /// How to speak it.
        opts: SayOptions,
    },
    /// Play an uploaded file; report the end as `on-play-finished` with `id`.
    Play {
        /// The id returned to the app.
        id: MediaId,
        /// The file's id (known to exist when the request was made).
        file_id: String,
        /// How to play it.
        opts: PlayOptions,
    },
    /// Stop the media playing and drop what is queued.
    StopMedia,
    /// Collect digits; report the result as `on-dtmf-collected`.
    CollectDtmf {
        /// How to collect.
        opts: CollectOptions,
    },
}

impl From<&CallInfo> for wit::CallInfo {
    fn from(c: &CallInfo) -> Self {
        wit::CallInfo {
            id: c.id.clone(),
            direction: match c.direction {
                Direction::Inbound => wit::Direction::Inbound,
                Direction::Outbound => wit::Direction::Outbound,
            },
            from: c.from.clone(),
            to: c.to.clone(),
            caller_name: c.caller_name.clone(),
            config: c.config.clone(),
        }
    }
}

impl From<CallEnded> for wit::CallEnded {
    fn from(e: CallEnded) -> Self {
        wit::CallEnded {
            hangup_by: match e.hangup_by {
                HangupBy::Local => wit::HangupBy::Local,
                HangupBy::Remote => wit::HangupBy::Remote,
            },
            hangup_reason: match e.hangup_reason {
                HangupReason::Normal => wit::HangupReason::Normal,
                HangupReason::Failed => wit::HangupReason::Failed,
                HangupReason::Busy => wit::HangupReason::Busy,
                HangupReason::Cancel => wit::HangupReason::Cancel,
                HangupReason::Timeout => wit::HangupReason::Timeout,
                HangupReason::Noanswer => wit::HangupReason::Noanswer,
                HangupReason::AppError => wit::HangupReason::AppError,
                HangupReason::Rejected => wit::HangupReason::Rejected,
                HangupReason::Admin => wit::HangupReason::Admin,
            },
            sip_status: e.sip_status,
        }
    }
}

impl From<&MediaFinished> for wit::MediaFinished {
    fn from(m: &MediaFinished) -> Self {
        wit::MediaFinished {
            id: m.id,
            played_completely: m.played_completely,
            digit: m.digit.clone(),
        }
    }
}

impl From<&CollectedDigits> for wit::CollectedDigits {
    fn from(c: &CollectedDigits) -> Self {
        wit::CollectedDigits {
            digits: c.digits.clone(),
            end: match c.end {
                CollectEnd::MaxDigits => wit::CollectEnd::MaxDigits,
                CollectEnd::Terminator => wit::CollectEnd::Terminator,
                CollectEnd::Timeout => wit::CollectEnd::Timeout,
                CollectEnd::Cancelled => wit::CollectEnd::Cancelled,
            },
        }
    }
}
