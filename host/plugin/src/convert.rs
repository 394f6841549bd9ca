//! Conversions between the plain contract types of `pbx-app` and the `pbx:app@0.3.0`
//! bindings (0.2.0 shares its `types` with 0.3.0, so they serve both); those of `0.1.0` live
//! in `legacy.rs`.
//!
//! Invariants: these are the only places the plain types meet the generated ones, so no
//! binding type leaves the crate; every conversion is total (a variant for a variant, a field
//! for a field), with nothing to check: import arguments that need checks go through
//! `host/` instead.

use pbx_app::phase::Refusal;
use pbx_app::{
    CallEnded, CallInfo, CollectEnd, CollectedDigits, Direction, HangupBy, HangupReason, HttpError,
    HttpResponse, JoinOptions, MediaFinished, MuteDirection, ParticipantRole, RecordingInfo,
    RingStrategy,
};

use crate::bindings::v0_3::{http as wit_http, types as wit};

impl From<&HttpResponse> for wit_http::HttpResponse {
    fn from(r: &HttpResponse) -> Self {
        wit_http::HttpResponse {
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.clone(),
        }
    }
}

impl From<&HttpError> for wit_http::HttpError {
    fn from(e: &HttpError) -> Self {
        match e {
            HttpError::Timeout => wit_http::HttpError::Timeout,
            HttpError::TooLarge => wit_http::HttpError::TooLarge,
            HttpError::ConnectionFailed(m) => wit_http::HttpError::ConnectionFailed(m.clone()),
            HttpError::InvalidResponse(m) => wit_http::HttpError::InvalidResponse(m.clone()),
        }
    }
}

// ---- plain → 0.3 (and 0.2) bindings (events) ----

impl From<Direction> for wit::Direction {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Inbound => wit::Direction::Inbound,
            Direction::Outbound => wit::Direction::Outbound,
        }
    }
}

impl From<&CallInfo> for wit::CallInfo {
    fn from(c: &CallInfo) -> Self {
        wit::CallInfo {
            id: c.id.clone(),
            direction: c.direction.into(),
            from: c.from.clone(),
            to: c.to.clone(),
            caller_name: c.caller_name.clone(),
            config: c.config.clone(),
            handed_over: c.handed_over.as_ref().map(|h| wit::HandOverInfo {
                from_app: h.from_app.clone(),
                data: h.data.clone(),
            }),
        }
    }
}

impl From<HangupBy> for wit::HangupBy {
    fn from(h: HangupBy) -> Self {
        match h {
            HangupBy::Local => wit::HangupBy::Local,
            HangupBy::Remote => wit::HangupBy::Remote,
        }
    }
}

impl From<HangupReason> for wit::HangupReason {
    fn from(r: HangupReason) -> Self {
        match r {
            HangupReason::Normal => wit::HangupReason::Normal,
            HangupReason::Failed => wit::HangupReason::Failed,
            HangupReason::Busy => wit::HangupReason::Busy,
            HangupReason::Cancel => wit::HangupReason::Cancel,
            HangupReason::Timeout => wit::HangupReason::Timeout,
            HangupReason::Noanswer => wit::HangupReason::Noanswer,
            HangupReason::AppError => wit::HangupReason::AppError,
            HangupReason::Rejected => wit::HangupReason::Rejected,
            HangupReason::Admin => wit::HangupReason::Admin,
        }
    }
}

impl From<CallEnded> for wit::CallEnded {
    fn from(e: CallEnded) -> Self {
        wit::CallEnded {
            hangup_by: e.hangup_by.into(),
            hangup_reason: e.hangup_reason.into(),
            sip_status: e.sip_status,
            answered: e.answered,
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

impl From<CollectEnd> for wit::CollectEnd {
    fn from(e: CollectEnd) -> Self {
        match e {
            CollectEnd::MaxDigits => wit::CollectEnd::MaxDigits,
            CollectEnd::Terminator => wit::CollectEnd::Terminator,
            CollectEnd::Timeout => wit::CollectEnd::Timeout,
            CollectEnd::Cancelled => wit::CollectEnd::Cancelled,
        }
    }
}

impl From<&CollectedDigits> for wit::CollectedDigits {
    fn from(c: &CollectedDigits) -> Self {
        wit::CollectedDigits {
            digits: c.digits.clone(),
            end: c.end.into(),
        }
    }
}

impl From<&RecordingInfo> for wit::RecordingInfo {
    fn from(r: &RecordingInfo) -> Self {
        wit::RecordingInfo {
            id: r.id.clone(),
            duration_ms: r.duration_ms,
            files: r.files,
        }
    }
}

// ---- 0.3 (and 0.2) bindings → plain (import arguments with no checks of their own) ----

impl From<wit::Direction> for Direction {
    fn from(d: wit::Direction) -> Self {
        match d {
            wit::Direction::Inbound => Direction::Inbound,
            wit::Direction::Outbound => Direction::Outbound,
        }
    }
}

impl From<wit::RingStrategy> for RingStrategy {
    fn from(s: wit::RingStrategy) -> Self {
        match s {
            wit::RingStrategy::RingAll => RingStrategy::RingAll,
            wit::RingStrategy::Linear => RingStrategy::Linear,
        }
    }
}

impl From<wit::ParticipantRole> for ParticipantRole {
    fn from(r: wit::ParticipantRole) -> Self {
        match r {
            wit::ParticipantRole::Participant => ParticipantRole::Participant,
            wit::ParticipantRole::Moderator => ParticipantRole::Moderator,
        }
    }
}

impl From<wit::JoinOptions> for JoinOptions {
    fn from(o: wit::JoinOptions) -> Self {
        JoinOptions {
            muted: o.muted,
            deafened: o.deafened,
            role: o.role.into(),
        }
    }
}

impl From<wit::MuteDirection> for MuteDirection {
    fn from(d: wit::MuteDirection) -> Self {
        match d {
            wit::MuteDirection::Inbound => MuteDirection::Inbound,
            wit::MuteDirection::Outbound => MuteDirection::Outbound,
            wit::MuteDirection::Both => MuteDirection::Both,
        }
    }
}

// ---- refusals of the phase rules → WIT errors ----

impl From<Refusal> for wit::Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound(m) => wit::Error::NotFound(m),
            Refusal::InvalidState(m) => wit::Error::InvalidState(m),
        }
    }
}
