//! The call's lifecycle as the admin API and the app see it: status, timestamps and how it ended.
//!
//! Invariants: status only moves forward (dialing → ringing → progressing → terminating /
//! canceling → hangup); the hangup fields are set exactly once, when the call reaches `hangup`;
//! every timestamp is set at most once. Time is an argument, so the rules are unit-tested.

use chrono::{DateTime, Utc};

pub use pbx_store::{CallStatus, HangupBy, HangupReason};

/// Status order: a call's status only ever moves to a later one.
fn rank(status: CallStatus) -> u8 {
    match status {
        CallStatus::Dialing => 0,
        CallStatus::Ringing => 1,
        CallStatus::Progressing => 2,
        CallStatus::Canceling | CallStatus::Terminating => 3,
        CallStatus::Hangup => 4,
    }
}

/// The reason for a call that the app (or a callee) rejected with `status`.
pub fn reason_for_reject_status(status: u16) -> HangupReason {
    match status {
        486 | 600 => HangupReason::Busy,
        408 | 480 => HangupReason::Noanswer,
        _ => HangupReason::Rejected,
    }
}

/// How the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub by: HangupBy,
    pub reason: HangupReason,
    pub sip_status: Option<u16>,
}

/// A call's lifecycle record, owned by its call actor and copied out to the registry and store.
#[derive(Debug, Clone)]
pub struct CallState {
    pub status: CallStatus,
    pub tm_create: DateTime<Utc>,
    pub tm_ringing: Option<DateTime<Utc>>,
    pub tm_progressing: Option<DateTime<Utc>>,
    pub tm_hangup: Option<DateTime<Utc>>,
    pub ending: Option<Ending>,
    /// The ending decided when we started to end the call (our BYE, a reject), applied when the
    /// SIP side confirms it is over.
    pending_ending: Option<Ending>,
}

impl CallState {
    /// A new inbound call, created when its INVITE arrived.
    pub fn inbound(now: DateTime<Utc>) -> Self {
        CallState {
            status: CallStatus::Ringing,
            tm_create: now,
            tm_ringing: None,
            tm_progressing: None,
            tm_hangup: None,
            ending: None,
            pending_ending: None,
        }
    }

    /// A new outbound leg, created when we start dialing it.
    pub fn outbound(now: DateTime<Utc>) -> Self {
        CallState {
            status: CallStatus::Dialing,
            ..CallState::inbound(now)
        }
    }

    /// True once the call reached `hangup`.
    pub fn is_over(&self) -> bool {
        self.status == CallStatus::Hangup
    }

    /// True while the call is answered and not ending.
    pub fn is_answered(&self) -> bool {
        self.tm_progressing.is_some()
    }

    /// We told the caller it is ringing (180) or gave early media (183).
    pub fn ringing(&mut self, now: DateTime<Utc>) {
        if rank(self.status) <= rank(CallStatus::Ringing) {
            self.status = CallStatus::Ringing;
            self.tm_ringing.get_or_insert(now);
        }
    }

    /// We answered (200 OK).
    pub fn answered(&mut self, now: DateTime<Utc>) {
        if rank(self.status) < rank(CallStatus::Progressing) {
            self.status = CallStatus::Progressing;
            self.tm_progressing.get_or_insert(now);
        }
    }

    /// We started to end the call; the ending applies once SIP confirms.
    pub fn terminating(&mut self, ending: Ending) {
        if self.is_over() {
            return;
        }
        if rank(self.status) < rank(CallStatus::Terminating) {
            self.status = CallStatus::Terminating;
        }
        self.pending_ending.get_or_insert(ending);
    }

    /// The caller cancelled before answer.
    pub fn canceling(&mut self) {
        if rank(self.status) < rank(CallStatus::Terminating) {
            self.status = CallStatus::Canceling;
        }
    }

    /// The call is over. A pending ending we chose earlier wins over `ending`, so that our own
    /// hangup is not reported as the BYE transaction's outcome.
    pub fn hangup(&mut self, now: DateTime<Utc>, ending: Ending) -> Ending {
        if let Some(done) = self.ending {
            return done;
        }
        let ending = self.pending_ending.take().unwrap_or(ending);
        self.status = CallStatus::Hangup;
        self.tm_hangup = Some(now);
        self.ending = Some(ending);
        ending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn an_answered_call_that_we_end_reports_local_normal() {
        let mut call = CallState::inbound(t(0));
        call.ringing(t(1));
        call.answered(t(2));
        assert_eq!(call.status, CallStatus::Progressing);
        let ours = Ending {
            by: HangupBy::Local,
            reason: HangupReason::Normal,
            sip_status: None,
        };
        call.terminating(ours);
        assert_eq!(call.status, CallStatus::Terminating);
        // The BYE's transaction finishing must not overwrite who ended it.
        let theirs = Ending {
            by: HangupBy::Remote,
            reason: HangupReason::Failed,
            sip_status: Some(408),
        };
        assert_eq!(call.hangup(t(5), theirs), ours);
        assert_eq!(call.status, CallStatus::Hangup);
        assert_eq!(call.tm_ringing, Some(t(1)));
        assert_eq!(call.tm_progressing, Some(t(2)));
        assert_eq!(call.tm_hangup, Some(t(5)));
    }

    #[test]
    fn status_never_moves_backwards_and_hangup_is_final() {
        let mut call = CallState::inbound(t(0));
        call.answered(t(1));
        call.ringing(t(2));
        assert_eq!(call.status, CallStatus::Progressing);
        assert_eq!(call.tm_ringing, None);
        let remote = Ending {
            by: HangupBy::Remote,
            reason: HangupReason::Normal,
            sip_status: None,
        };
        call.hangup(t(3), remote);
        call.answered(t(4));
        let later = Ending {
            by: HangupBy::Local,
            reason: HangupReason::Admin,
            sip_status: None,
        };
        assert_eq!(call.hangup(t(5), later), remote);
        assert_eq!(call.status, CallStatus::Hangup);
        assert_eq!(call.tm_hangup, Some(t(3)));
    }

    #[test]
    fn reject_statuses_map_to_reasons() {
        assert_eq!(reason_for_reject_status(486), HangupReason::Busy);
        assert_eq!(reason_for_reject_status(600), HangupReason::Busy);
        assert_eq!(reason_for_reject_status(603), HangupReason::Rejected);
        assert_eq!(reason_for_reject_status(480), HangupReason::Noanswer);
    }
}
