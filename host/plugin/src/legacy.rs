//! `pbx:app@0.1.0` on top of the 0.3 host: its imports run through the 0.3 checks, and the
//! six 0.1 events are converted from the plain event types.
//!
//! Invariants: a 0.1 app gets exactly the answers a 0.3 app would get for the same request
//! (the same checks, the same error case and text); 0.1 has no dialing, so its session is the
//! one leg it was created for. Nothing here keeps state of its own.

use crate::bindings::v0_1::{call_control, log, types as wit};
use crate::bindings::v0_3::{call_control as call_control_v3, types as wit3};
use crate::host::HostState;
use pbx_app::{
    CallEnded, CallInfo, CollectEnd, CollectedDigits, Direction, HangupBy, HangupReason,
    MediaFinished, MediaId,
};

type Legacy<T> = Result<T, wit::Error>;

fn legacy(e: wit3::Error) -> wit::Error {
    match e {
        wit3::Error::InvalidState(m) => wit::Error::InvalidState(m),
        wit3::Error::InvalidArgument(m) => wit::Error::InvalidArgument(m),
        wit3::Error::NotFound(m) => wit::Error::NotFound(m),
        wit3::Error::Failed(m) => wit::Error::Failed(m),
    }
}

impl wit::Host for HostState {}

impl call_control::Host for HostState {
    fn answer(&mut self, call: String) -> Legacy<()> {
        call_control_v3::Host::answer(self, call).map_err(legacy)
    }

    fn early_media(&mut self, call: String) -> Legacy<()> {
        call_control_v3::Host::early_media(self, call).map_err(legacy)
    }

    fn reject(&mut self, call: String, status: u16) -> Legacy<()> {
        call_control_v3::Host::reject(self, call, status).map_err(legacy)
    }

    fn hangup(&mut self, call: String) -> Legacy<()> {
        call_control_v3::Host::hangup(self, call).map_err(legacy)
    }

    fn say(&mut self, call: String, text: String, o: wit::SayOptions) -> Legacy<MediaId> {
        let o = wit3::SayOptions {
            language: o.language,
            voice: o.voice,
            loop_count: o.loop_count,
            stop_on_dtmf: o.stop_on_dtmf,
        };
        call_control_v3::Host::say(self, call, text, o).map_err(legacy)
    }

    fn play(&mut self, call: String, file_id: String, o: wit::PlayOptions) -> Legacy<MediaId> {
        let o = wit3::PlayOptions {
            loop_count: o.loop_count,
            offset_ms: o.offset_ms,
            timeout_ms: o.timeout_ms,
            stop_on_dtmf: o.stop_on_dtmf,
        };
        call_control_v3::Host::play(self, call, file_id, o).map_err(legacy)
    }

    fn stop_media(&mut self, call: String) -> Legacy<()> {
        call_control_v3::Host::stop_media(self, call).map_err(legacy)
    }

    fn collect_dtmf(&mut self, call: String, o: wit::CollectOptions) -> Legacy<()> {
        let o = wit3::CollectOptions {
            max_digits: o.max_digits,
            terminator: o.terminator,
            timeout_ms: o.timeout_ms,
        };
        call_control_v3::Host::collect_dtmf(self, call, o).map_err(legacy)
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.write_log(level, &message);
    }
}

/// 0.1 has no hand-over: `handed_over` is dropped (the host never hands a leg to a 0.1 app).
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
