//! follow-me: find the person the caller wants by ringing their phones in stages, and take a
//! voicemail when nobody answers.
//!
//! State machine (`State`), one session per caller:
//!
//! ```text
//! Start --call received--> Ringing        answer, say HOLD then music; dial the group:
//!                                         ring-all `ring_all` (20 s), then linear `then`
//!                                         (20 s each)
//! Ringing --group leg answered--> Connected
//!                                         connect the caller with the winner
//! Ringing --group leg ended--> Prompting  stop the music, say NOBODY, then BEEP
//! Prompting --BEEP finished--> Recording  record the caller's leg, at most 20 s
//! Recording --`#` pressed--> Recording    stop the recording
//! Recording --recording ready--> Thanking say THANKS
//! Thanking --THANKS finished--> Done      hang up
//! Connected --either leg ended--> Done    hang up the other
//! any --caller ended--> Done              hang up the group leg
//! ```
//!
//! Configuration: `ring_all` (default `user:alice,user:bob`) and `then` (default
//! `user:carol`), comma-separated endpoints; an empty value skips that stage.
//! Log lines: `connected to <leg>`, `nobody answered: <reason>`,
//! `voicemail recording <rec id>`, `recording ready`.
//! Invariant: every host refusal is logged and leads to a hangup; nothing unwraps a host
//! result.

use std::time::Duration;

use pbx_sdk::log;
use pbx_sdk::{
    App, Call, CallEnded, CallInfo, Endpoint, Group, MediaFinished, MediaId, Recording,
    RecordingInfo,
};

/// Said once the caller was answered.
const HOLD: &str = "Please hold while we find them";
/// Said when nobody answered.
const NOBODY: &str = "Nobody is available. Please leave a message after the tone";
/// The "tone" before the recording (there are no audio assets to play a real one).
const BEEP: &str = "beep";
/// Said once the message is stored.
const THANKS: &str = "Thank you";
/// How long each stage (and each member of a linear stage) rings.
const STAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest message.
const MAX_MESSAGE: Duration = Duration::from_secs(20);
/// Who rings first, all at once, unless `ring_all` says otherwise.
const DEFAULT_RING_ALL: &str = "user:alice,user:bob";
/// Who rings next, one by one, unless `then` says otherwise.
const DEFAULT_THEN: &str = "user:carol";

/// Where the session is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum State {
    /// Before the call arrived.
    #[default]
    Start,
    /// The group rings; the caller hears HOLD and music.
    Ringing {
        /// The leg standing for the group.
        group: Call,
    },
    /// The caller talks with the member who answered.
    Connected {
        /// The winner's leg.
        other: Call,
    },
    /// Saying NOBODY and then BEEP (its media id).
    Prompting(MediaId),
    /// Recording the message.
    Recording(Recording),
    /// Saying THANKS (its media id); hang up when it finished.
    Thanking(MediaId),
    /// Hung up.
    Done,
}

/// The session: the caller and the state.
#[derive(Default)]
struct FollowMe {
    state: State,
    caller: Option<Call>,
    from: String,
}

/// The group from the configuration (or the defaults); `Err` names a bad value.
fn group_from(info: &CallInfo) -> Result<Option<Group>, pbx_sdk::EndpointError> {
    let ring_all = Endpoint::parse_list(info.config_value("ring_all").unwrap_or(DEFAULT_RING_ALL))?;
    let then = Endpoint::parse_list(info.config_value("then").unwrap_or(DEFAULT_THEN))?;
    let group = match (ring_all.is_empty(), then.is_empty()) {
        (true, true) => None,
        (false, true) => Some(Group::ring_all(ring_all).timeout(STAGE_TIMEOUT)),
        (true, false) => Some(Group::linear(then).timeout(STAGE_TIMEOUT)),
        (false, false) => Some(
            Group::ring_all(ring_all)
                .timeout(STAGE_TIMEOUT)
                .then_linear(then)
                .timeout(STAGE_TIMEOUT),
        ),
    };
    Ok(group)
}

impl FollowMe {
    fn caller(&self) -> Option<Call> {
        self.caller.clone()
    }

    /// Nobody answered: stop the music and prompt for a message.
    fn voicemail(&mut self, caller: &Call, reason: &str) {
        log::info!("nobody answered: {reason}");
        if let Err(e) = caller.stop_media() {
            log::warn!("stop music failed: {e}");
        }
        let prompt = caller.say(NOBODY).and_then(|_| caller.say(BEEP));
        match prompt {
            Ok(beep) => self.state = State::Prompting(beep),
            Err(e) => self.fail(caller, "voicemail prompt", &e),
        }
    }

    /// Says THANKS, then hangs up when it finished.
    fn thank(&mut self, caller: &Call) {
        match caller.say(THANKS) {
            Ok(id) => self.state = State::Thanking(id),
            Err(e) => self.fail(caller, "thanks", &e),
        }
    }

    fn fail(&mut self, caller: &Call, what: &str, e: &pbx_sdk::Error) {
        log::warn!("{what} failed: {e}; hanging up");
        let _ = caller.hangup();
        self.state = State::Done;
    }
}

impl App for FollowMe {
    fn on_call_received(&mut self, call: Call, info: &CallInfo) {
        self.caller = Some(call.clone());
        self.from = info.from.clone();
        if let Err(e) = call.answer() {
            log::warn!("answer failed: {e}");
            self.state = State::Done;
            return;
        }
        if let Err(e) = call.say(HOLD).and_then(|_| call.play_music()) {
            log::warn!("hold prompt failed: {e}");
        }
        let group = match group_from(info) {
            Ok(Some(group)) => group,
            Ok(None) => return self.voicemail(&call, "nobody configured"),
            Err(e) => return self.voicemail(&call, &e.to_string()),
        };
        match group.dial() {
            Ok(leg) => self.state = State::Ringing { group: leg },
            Err(e) => self.voicemail(&call, &e.to_string()),
        }
    }

    fn on_call_answered(&mut self, call: Call) {
        let State::Ringing { group } = &self.state else {
            return;
        };
        if *group != call {
            return;
        }
        let Some(caller) = self.caller() else { return };
        match caller.connect(&call) {
            Ok(()) => {
                log::info!("connected to {call}");
                self.state = State::Connected { other: call };
            }
            Err(e) => {
                let _ = call.hangup();
                self.fail(&caller, "connect", &e);
            }
        }
    }

    fn on_say_finished(&mut self, call: Call, finished: &MediaFinished) {
        match self.state {
            State::Prompting(beep) if beep == finished.id => {
                let recording = call
                    .record()
                    .max_duration(MAX_MESSAGE)
                    .metadata("app", "follow-me")
                    .metadata("from", self.from.as_str())
                    .send();
                match recording {
                    Ok(recording) => {
                        log::info!("voicemail recording {recording}");
                        self.state = State::Recording(recording);
                    }
                    Err(e) => self.fail(&call, "recording", &e),
                }
            }
            State::Thanking(id) if id == finished.id => {
                let _ = call.hangup();
                self.state = State::Done;
            }
            _ => {}
        }
    }

    fn on_dtmf(&mut self, call: Call, digit: &str) {
        if let State::Recording(recording) = &self.state
            && self.caller.as_ref() == Some(&call)
            && digit == "#"
            && let Err(e) = recording.stop()
        {
            log::warn!("stopping the recording failed: {e}");
        }
    }

    fn on_recording_ready(&mut self, info: &RecordingInfo) {
        let State::Recording(recording) = &self.state else {
            return;
        };
        if recording.id() != info.id {
            return;
        }
        log::info!("recording ready");
        match self.caller() {
            Some(caller) => self.thank(&caller),
            None => self.state = State::Done,
        }
    }

    fn on_call_finished(&mut self, call: Call, ended: &CallEnded) {
        if self.caller.as_ref() == Some(&call) {
            match &self.state {
                State::Ringing { group } => {
                    let _ = group.hangup();
                }
                State::Connected { other } => {
                    let _ = other.hangup();
                }
                _ => {}
            }
            // A recording under way still reports `recording ready` once its target ended.
            if !matches!(self.state, State::Recording(_)) {
                self.state = State::Done;
            }
            return;
        }
        match &self.state {
            State::Ringing { group } if *group == call => {
                if let Some(caller) = self.caller() {
                    self.voicemail(&caller, &ended.hangup_reason.to_string());
                }
            }
            State::Connected { other } if *other == call => {
                if let Some(caller) = self.caller() {
                    let _ = caller.hangup();
                }
                self.state = State::Done;
            }
            _ => {}
        }
    }
}

pbx_sdk::export_app!(FollowMe);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use pbx_sdk::testing::{self, call_info_with_config, ended, finished, recording_info};
    use pbx_sdk::{App, Call, HangupReason};

    use super::*;

    fn started(config: &[(&str, &str)]) -> FollowMe {
        let mut app = FollowMe::default();
        let info = call_info_with_config("leg-1", "dave", "3000", config);
        app.on_call_received(Call::from_id("leg-1"), &info);
        app
    }

    #[test]
    fn rings_two_users_at_once_then_a_third() {
        let _app = started(&[]);
        assert_eq!(
            testing::take_requests(),
            [
                "answer(leg-1)",
                "say(leg-1, \"Please hold while we find them\")",
                "play-music(leg-1)",
                "dial-group(ring-all [user:alice, user:bob] 20000ms; linear [user:carol] 20000ms)",
            ]
        );
    }

    #[test]
    fn configuration_overrides_the_members() {
        let _app = started(&[("ring_all", "user:x, sip:y@10.0.0.1"), ("then", "")]);
        assert_eq!(
            testing::take_requests().last().map(String::as_str),
            Some("dial-group(ring-all [user:x, sip:y@10.0.0.1] 20000ms)")
        );
    }

    #[test]
    fn the_winner_is_connected_and_either_hangup_ends_both() {
        let mut app = started(&[]);
        testing::take_requests();
        app.on_call_answered(Call::from_id("out-1"));
        assert_eq!(testing::take_logs(), ["info: connected to out-1"]);
        assert_eq!(testing::take_requests(), ["connect(leg-1, out-1)"]);
        app.on_call_finished(Call::from_id("out-1"), &ended(HangupReason::Normal, true));
        assert_eq!(testing::take_requests(), ["hangup(leg-1)"]);
    }

    #[test]
    fn nobody_answering_takes_a_message() {
        let mut app = started(&[]);
        testing::take_requests();
        app.on_call_finished(
            Call::from_id("out-1"),
            &ended(HangupReason::Noanswer, false),
        );
        assert_eq!(testing::take_logs(), ["info: nobody answered: noanswer"]);
        assert_eq!(
            testing::take_requests(),
            [
                "stop-media(leg-1)",
                "say(leg-1, \"Nobody is available. Please leave a message after the tone\")",
                "say(leg-1, \"beep\")",
            ]
        );
        // Media ids: hold 1, music 2, prompt 3, beep 4.
        app.on_say_finished(Call::from_id("leg-1"), &finished(3));
        assert!(testing::take_requests().is_empty());
        app.on_say_finished(Call::from_id("leg-1"), &finished(4));
        assert_eq!(
            testing::take_requests(),
            ["record(call leg-1, max 20000ms)"]
        );
        assert_eq!(testing::take_logs(), ["info: voicemail recording rec-1"]);
        app.on_dtmf(Call::from_id("leg-1"), "5");
        assert!(testing::take_requests().is_empty());
        app.on_dtmf(Call::from_id("leg-1"), "#");
        assert_eq!(testing::take_requests(), ["record.stop(rec-1)"]);
        app.on_recording_ready(&recording_info("rec-1", 4000));
        assert_eq!(testing::take_logs(), ["info: recording ready"]);
        assert_eq!(testing::take_requests(), ["say(leg-1, \"Thank you\")"]);
        app.on_say_finished(Call::from_id("leg-1"), &finished(5));
        assert_eq!(testing::take_requests(), ["hangup(leg-1)"]);
    }

    #[test]
    fn caller_hanging_up_while_ringing_cancels_the_group() {
        let mut app = started(&[]);
        testing::take_requests();
        app.on_call_finished(Call::from_id("leg-1"), &ended(HangupReason::Normal, true));
        assert_eq!(testing::take_requests(), ["hangup(out-1)"]);
        app.on_call_finished(Call::from_id("out-1"), &ended(HangupReason::Cancel, false));
        assert!(testing::take_requests().is_empty());
        assert!(testing::take_logs().is_empty());
    }

    #[test]
    fn caller_hanging_up_while_recording_still_reports_the_recording() {
        let mut app = started(&[("ring_all", ""), ("then", "")]);
        assert_eq!(
            testing::take_logs(),
            ["info: nobody answered: nobody configured"]
        );
        app.on_say_finished(Call::from_id("leg-1"), &finished(4));
        app.on_call_finished(Call::from_id("leg-1"), &ended(HangupReason::Normal, true));
        testing::take_requests();
        app.on_recording_ready(&recording_info("rec-1", 2000));
        assert!(testing::take_logs().contains(&"info: recording ready".to_owned()));
    }

    #[test]
    fn a_bad_member_list_goes_to_voicemail() {
        let _app = started(&[("ring_all", "alice")]);
        assert!(
            testing::take_logs()[0].starts_with("info: nobody answered: invalid endpoint `alice`")
        );
    }
}
