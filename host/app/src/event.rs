//! The events the host delivers to an app, one handler call each, and the reports they carry.
//!
//! Invariants: every leg, conference, recording, timer or request an event names belongs to
//! the session it is delivered to; `on-call-finished` is the last event of a leg; the
//! mirror of the session is updated before the event that changes it is delivered.

use crate::{CallEnded, CallInfo, HttpError, HttpResponse, MediaId, RequestId, TimerId};

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
    /// The leg ended or the app started another collection.
    Cancelled,
}

impl CollectEnd {
    /// The WIT name (`max-digits`, `terminator`, `timeout`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            CollectEnd::MaxDigits => "max-digits",
            CollectEnd::Terminator => "terminator",
            CollectEnd::Timeout => "timeout",
            CollectEnd::Cancelled => "cancelled",
        }
    }
}

/// The result of a `collect-dtmf`, given to `on-dtmf-collected`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectedDigits {
    /// The digits in the order pressed, without the terminator.
    pub digits: String,
    /// Why the collection finished.
    pub end: CollectEnd,
}

/// A finished recording, given to `on-recording-ready`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordingInfo {
    /// The id `start-recording` returned.
    pub id: String,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// How many WAV files it produced.
    pub files: u32,
}

/// Something that happened in the session, delivered to the app with `AppInstance::deliver`
/// (in `pbx-plugin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `on-call-received`: the call that starts the session.
    CallReceived(CallInfo),
    /// `on-call-ringing`: a dialled leg is ringing (180).
    CallRinging {
        /// The leg.
        call: String,
    },
    /// `on-call-early-media`: a dialled leg sent early media (183 with SDP).
    CallEarlyMedia {
        /// The leg.
        call: String,
    },
    /// `on-call-answered`: a dialled leg answered; the mirror moves it to `Answered`.
    CallAnswered {
        /// The leg.
        call: String,
    },
    /// `on-dtmf`: a party pressed a key.
    Dtmf {
        /// The leg.
        call: String,
        /// "0"-"9", "*", "#", "A"-"D".
        digit: String,
    },
    /// `on-say-finished`.
    SayFinished {
        /// The leg.
        call: String,
        /// Which request and how it ended.
        finished: MediaFinished,
    },
    /// `on-play-finished` (also for `play-music`).
    PlayFinished {
        /// The leg.
        call: String,
        /// Which request and how it ended.
        finished: MediaFinished,
    },
    /// `on-dtmf-collected`.
    Collected {
        /// The leg.
        call: String,
        /// The digits.
        collected: CollectedDigits,
    },
    /// `on-call-finished`, the last event of a leg; the mirror moves it to `Finished` first.
    CallFinished {
        /// The leg.
        call: String,
        /// How it ended.
        ended: CallEnded,
    },
    /// `on-participant-joining`.
    ParticipantJoining {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// `on-participant-joined`.
    ParticipantJoined {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// `on-participant-join-failed`.
    ParticipantJoinFailed {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
        /// Why it could not join.
        reason: String,
    },
    /// `on-participant-left`.
    ParticipantLeft {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// `on-conference-finished`; the mirror forgets the conference first.
    ConferenceFinished {
        /// The conference.
        conference: String,
    },
    /// `on-conference-media-finished`.
    ConferenceMediaFinished {
        /// The conference.
        conference: String,
        /// Which request and how it ended.
        finished: MediaFinished,
    },
    /// `on-recording-ready`; the mirror forgets the recording first.
    RecordingReady(RecordingInfo),
    /// `on-timer`; the mirror forgets the timer first.
    Timer {
        /// The id `set-timer` returned.
        id: TimerId,
        /// The tag given to `set-timer`.
        tag: String,
    },
    /// `on-hand-over-result`, the outcome of [`Action::HandOver`](crate::Action::HandOver) (skipped for 0.1 apps).
    /// Accepted: the mirror marks the leg `Finished` first, as for `CallFinished`. Refused:
    /// the host calls `set_leg` with the leg's real phase before delivering it (a leg still
    /// `HandingOver` then goes back to the phase it had when the app asked).
    HandOverResult {
        /// The leg.
        call: String,
        /// True when the other app took the leg; it has left this session.
        accepted: bool,
        /// Why it was refused or failed (the other app's reason, no such app, ...).
        reason: Option<String>,
    },
    /// `on-http-response`, the outcome of [`Action::HttpRequest`](crate::Action::HttpRequest) (0.3 apps only). Delivered
    /// only for a request of this session still in flight; the request then no longer counts
    /// against the session's limit.
    HttpResponse {
        /// The id the request was queued with.
        id: RequestId,
        /// The response, or why there was none.
        result: Result<HttpResponse, HttpError>,
    },
}

impl Event {
    /// The WIT export this event calls, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::CallReceived(_) => "on-call-received",
            Event::CallRinging { .. } => "on-call-ringing",
            Event::CallEarlyMedia { .. } => "on-call-early-media",
            Event::CallAnswered { .. } => "on-call-answered",
            Event::Dtmf { .. } => "on-dtmf",
            Event::SayFinished { .. } => "on-say-finished",
            Event::PlayFinished { .. } => "on-play-finished",
            Event::Collected { .. } => "on-dtmf-collected",
            Event::CallFinished { .. } => "on-call-finished",
            Event::ParticipantJoining { .. } => "on-participant-joining",
            Event::ParticipantJoined { .. } => "on-participant-joined",
            Event::ParticipantJoinFailed { .. } => "on-participant-join-failed",
            Event::ParticipantLeft { .. } => "on-participant-left",
            Event::ConferenceFinished { .. } => "on-conference-finished",
            Event::ConferenceMediaFinished { .. } => "on-conference-media-finished",
            Event::RecordingReady(_) => "on-recording-ready",
            Event::Timer { .. } => "on-timer",
            Event::HandOverResult { .. } => "on-hand-over-result",
            Event::HttpResponse { .. } => "on-http-response",
        }
    }
}
