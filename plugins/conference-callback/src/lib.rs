//! conference-callback: the caller waits in a new conference, hearing music, while the app
//! calls the other party and joins them when they answer (Infobip's conference tutorial).
//!
//! State machine (`State`), one session per caller:
//!
//! ```text
//! Start --call received--> Waiting        answer, create the conference (no music when
//!                                         alone), join the caller, say GREETING, then
//!                                         play_music; dial the callee (30 s)
//! Waiting --callee answered--> Talking    stop the caller's music, join the callee, say
//!                                         JOINING into the conference once it joined
//! Waiting --callee ended unanswered--> Apologising
//!                                         stop the music, say SORRY to the caller
//! Apologising --SORRY finished--> Done    hang up the conference (and so the caller)
//! Talking --either party left--> Done     hang up the conference
//! any --caller ended--> Done              hang up the callee and the conference
//! ```
//!
//! The callee is the configuration value `callee` (an endpoint such as `user:bob`,
//! `sip:bob@10.0.0.2` or `+4930123`) or else the SIP user named by the dialled number
//! (`user:<to>`). Log lines: `callee answered`, `callee failed: <reason>` (a hangup reason
//! such as `busy`, `noanswer` or `failed`, or the error that stopped the dial).
//! Invariant: every host refusal is logged and leads to a state where the session ends;
//! nothing unwraps a host result.

use std::time::Duration;

use pbx_sdk::log;
use pbx_sdk::{
    App, Call, CallEnded, CallInfo, Conference, Endpoint, MediaFinished, MediaId, dial_with,
};

/// Said to the caller once the conference was created.
const GREETING: &str = "Hello, we are trying to connect another caller";
/// Said into the conference when the callee joined.
const JOINING: &str = "Another caller is joining the call now";
/// Said to the caller when the callee could not be reached.
const SORRY: &str = "Sorry, the other party could not join the call";
/// How long the callee may ring.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the session is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum State {
    /// Before the call arrived.
    #[default]
    Start,
    /// The caller hears music while the callee rings.
    Waiting {
        /// The leg dialled to the callee.
        callee: Call,
    },
    /// The callee answered and is joining or in the conference.
    Talking {
        /// The callee's leg.
        callee: Call,
    },
    /// Saying SORRY (media id) to the caller; the conference ends when it finished.
    Apologising(MediaId),
    /// Ending or ended.
    Done,
}

/// The session: the caller, the conference, and the state.
#[derive(Default)]
struct ConferenceCallback {
    state: State,
    caller: Option<Call>,
    conference: Option<Conference>,
}

impl ConferenceCallback {
    /// Sets up the conference and dials the callee; any refusal ends the call.
    fn start(&mut self, caller: &Call, info: &CallInfo) -> Result<(), pbx_sdk::Error> {
        caller.answer()?;
        let conference = Conference::create_with()
            .name("conference-callback")
            .music_when_alone(false)
            .send()?;
        conference.join(caller)?;
        self.conference = Some(conference);
        caller.say(GREETING)?;
        caller.play_music()?;
        let callee = match info.config_value("callee") {
            Some(text) => match Endpoint::parse(text) {
                Ok(endpoint) => endpoint,
                Err(e) => {
                    self.fail(caller, &e.to_string());
                    return Ok(());
                }
            },
            None => Endpoint::user(info.to.as_str()),
        };
        match dial_with(&callee).timeout(CONNECT_TIMEOUT).send() {
            Ok(leg) => {
                log::info!("dialling the callee: leg {leg}");
                self.state = State::Waiting { callee: leg };
            }
            Err(e) => self.fail(caller, &e.to_string()),
        }
        Ok(())
    }

    /// The callee could not join: stop the music and apologise to the caller.
    fn fail(&mut self, caller: &Call, reason: &str) {
        log::info!("callee failed: {reason}");
        if let Err(e) = caller.stop_media() {
            log::warn!("stop music failed: {e}");
        }
        match caller.say(SORRY) {
            Ok(id) => self.state = State::Apologising(id),
            Err(e) => {
                log::warn!("apology failed: {e}");
                self.finish();
            }
        }
    }

    /// Ends the conference (every participant is hung up) and the caller's leg.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conference) = &self.conference
            && let Err(e) = conference.hangup()
        {
            log::debug!("conference hangup: {e}");
        }
        if let Some(caller) = &self.caller
            && let Err(e) = caller.hangup()
        {
            log::debug!("caller hangup: {e}");
        }
    }
}

impl App for ConferenceCallback {
    fn on_call_received(&mut self, call: Call, info: &CallInfo) {
        self.caller = Some(call.clone());
        if let Err(e) = self.start(&call, info) {
            log::warn!("setting up the conference failed: {e}");
            self.finish();
        }
    }

    fn on_call_answered(&mut self, call: Call) {
        let State::Waiting { callee } = &self.state else {
            return;
        };
        if *callee != call {
            return;
        }
        log::info!("callee answered");
        self.state = State::Talking {
            callee: call.clone(),
        };
        if let Some(caller) = &self.caller
            && let Err(e) = caller.stop_media()
        {
            log::warn!("stop music failed: {e}");
        }
        let joined = match &self.conference {
            Some(conference) => conference.join(&call),
            None => Ok(()),
        };
        if let Err(e) = joined {
            log::warn!("joining the callee failed: {e}");
            let _ = call.hangup();
            self.finish();
        }
    }

    fn on_participant_joined(&mut self, conference: Conference, call: Call) {
        if matches!(&self.state, State::Talking { callee } if *callee == call)
            && let Err(e) = conference.say(JOINING)
        {
            log::warn!("announcement failed: {e}");
        }
    }

    fn on_participant_join_failed(&mut self, _conference: Conference, call: Call, reason: &str) {
        log::warn!("leg {call} could not join: {reason}");
        if self.state != State::Done {
            let _ = call.hangup();
            self.finish();
        }
    }

    fn on_participant_left(&mut self, _conference: Conference, call: Call) {
        if let State::Talking { .. } = &self.state {
            log::info!("leg {call} left; ending the conference");
            self.finish();
        }
    }

    fn on_say_finished(&mut self, _call: Call, finished: &MediaFinished) {
        if self.state == State::Apologising(finished.id) {
            self.finish();
        }
    }

    fn on_call_finished(&mut self, call: Call, ended: &CallEnded) {
        if self.caller.as_ref() == Some(&call) {
            if let State::Waiting { callee } | State::Talking { callee } = &self.state {
                let _ = callee.hangup();
            }
            if self.state != State::Done {
                self.finish();
            }
            return;
        }
        match &self.state {
            State::Waiting { callee } if *callee == call => {
                if let Some(caller) = self.caller.clone() {
                    self.fail(&caller, &ended.hangup_reason.to_string());
                }
            }
            State::Talking { callee } if *callee == call => self.finish(),
            _ => {}
        }
    }
}

pbx_sdk::export_app!(ConferenceCallback);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use pbx_sdk::testing::{self, call_info_with_config, ended, finished};
    use pbx_sdk::{App, Call, Conference, HangupReason};

    use super::*;

    fn started(config: &[(&str, &str)]) -> ConferenceCallback {
        let mut app = ConferenceCallback::default();
        let info = call_info_with_config("leg-1", "alice", "2000", config);
        app.on_call_received(Call::from_id("leg-1"), &info);
        app
    }

    #[test]
    fn caller_waits_with_music_while_the_dialled_user_rings() {
        let _app = started(&[]);
        assert_eq!(
            testing::take_requests(),
            [
                "answer(leg-1)",
                "conference.create(music-when-alone false)",
                "conference.join(conf-1, leg-1)",
                "say(leg-1, \"Hello, we are trying to connect another caller\")",
                "play-music(leg-1)",
                "dial(user:2000, timeout 30000ms)",
            ]
        );
    }

    #[test]
    fn configured_callee_is_dialled() {
        let _app = started(&[("callee", "sip:bob@127.0.0.1:5080")]);
        let requests = testing::take_requests();
        assert_eq!(
            requests.last().map(String::as_str),
            Some("dial(sip:bob@127.0.0.1:5080, timeout 30000ms)")
        );
    }

    #[test]
    fn answered_callee_joins_and_is_announced_and_either_leaving_ends_it() {
        let mut app = started(&[]);
        testing::take_requests();
        testing::take_logs();
        app.on_call_answered(Call::from_id("out-1"));
        app.on_participant_joined(Conference::from_id("conf-1"), Call::from_id("out-1"));
        assert_eq!(testing::take_logs(), ["info: callee answered"]);
        assert_eq!(
            testing::take_requests(),
            [
                "stop-media(leg-1)",
                "conference.join(conf-1, out-1)",
                "conference.say(conf-1, \"Another caller is joining the call now\")",
            ]
        );
        app.on_participant_left(Conference::from_id("conf-1"), Call::from_id("out-1"));
        assert_eq!(
            testing::take_requests(),
            ["conference.hangup(conf-1)", "hangup(leg-1)"]
        );
        app.on_participant_left(Conference::from_id("conf-1"), Call::from_id("leg-1"));
        app.on_call_finished(Call::from_id("leg-1"), &ended(HangupReason::Normal, true));
        assert!(testing::take_requests().is_empty());
    }

    #[test]
    fn failed_callee_gets_an_apology_then_the_conference_ends() {
        let mut app = started(&[]);
        testing::take_requests();
        testing::take_logs();
        app.on_call_finished(
            Call::from_id("out-1"),
            &ended(HangupReason::Noanswer, false),
        );
        assert_eq!(testing::take_logs(), ["info: callee failed: noanswer"]);
        assert_eq!(
            testing::take_requests(),
            [
                "stop-media(leg-1)",
                "say(leg-1, \"Sorry, the other party could not join the call\")",
            ]
        );
        // Media ids: greeting 1, music 2, apology 3.
        app.on_say_finished(Call::from_id("leg-1"), &finished(1));
        assert!(testing::take_requests().is_empty());
        app.on_say_finished(Call::from_id("leg-1"), &finished(3));
        assert_eq!(
            testing::take_requests(),
            ["conference.hangup(conf-1)", "hangup(leg-1)"]
        );
    }

    #[test]
    fn refused_dial_is_a_failed_callee() {
        testing::fail_next("dial", pbx_sdk::Error::NotFound("no user `2000`".into()));
        let _app = started(&[]);
        let logs = testing::take_logs();
        assert!(logs.contains(&"info: callee failed: not found: no user `2000`".to_owned()));
        assert_eq!(
            testing::take_requests().last().map(String::as_str),
            Some("say(leg-1, \"Sorry, the other party could not join the call\")")
        );
    }

    #[test]
    fn caller_hanging_up_while_waiting_ends_everything() {
        let mut app = started(&[]);
        testing::take_requests();
        app.on_call_finished(Call::from_id("leg-1"), &ended(HangupReason::Normal, true));
        assert_eq!(
            testing::take_requests(),
            [
                "hangup(out-1)",
                "conference.hangup(conf-1)",
                "hangup(leg-1)"
            ]
        );
        app.on_call_finished(Call::from_id("out-1"), &ended(HangupReason::Cancel, false));
        assert!(testing::take_requests().is_empty());
        assert!(
            testing::take_logs()
                .iter()
                .all(|l| !l.contains("callee failed"))
        );
    }

    #[test]
    fn unusable_callee_config_is_a_failed_callee() {
        let _app = started(&[("callee", "bob")]);
        assert!(
            testing::take_logs()
                .iter()
                .any(|l| l.starts_with("info: callee failed: invalid endpoint `bob`"))
        );
    }

    #[test]
    fn refused_setup_hangs_up() {
        testing::fail_next("conference.create", pbx_sdk::Error::Failed("limit".into()));
        let _app = started(&[]);
        assert_eq!(
            testing::take_requests(),
            [
                "answer(leg-1)",
                "conference.create(music-when-alone false)",
                "hangup(leg-1)"
            ]
        );
    }
}
