//! attended-transfer: the caller is put through to an agent, who can consult a colleague by
//! extension and then hand the caller over (or go back to the caller).
//!
//! State machine (`State`), one session per caller; only the agent's keys count:
//!
//! ```text
//! Start --call received--> Ringing        dial_and_connect the agent (config `agent`)
//! Ringing --agent answered--> Talking     caller and agent talk
//! Ringing --agent ended--> Done           reject the caller (480)
//! Talking --agent presses `*` `2`--> Dialling
//!                                         collect the extension: up to 16 digits ending
//!                                         with `#`, 5 s between keys
//! Dialling --digits collected--> Consulting
//!                                         consult `user:<extension>`; the caller hears music
//! Dialling --timeout, no digits--> Talking
//! Consulting --agent presses `#`--> Transferred
//!                                         complete_transfer: the caller talks with the
//!                                         consulted party, the agent is hung up
//! Consulting --agent presses `*`--> Talking
//!                                         cancel_transfer: back to the caller
//! Consulting --consulted party ended--> Talking
//!                                         cancel_transfer
//! any --caller ended--> Done              hang up every other leg
//! Talking/Transferred --other party ended--> Done
//!                                         hang up the caller
//! ```
//!
//! Log lines: `agent answered`, `consulting <ext>`, `transfer completed`,
//! `transfer cancelled`, `agent failed: <reason>`, `consult failed: <reason>`.
//! Invariant: every host refusal is logged; nothing unwraps a host result.

use std::time::Duration;

use pbx_sdk::log;
use pbx_sdk::{App, Call, CallEnded, CallInfo, Collect, CollectEnd, Collected, Endpoint};

/// Who takes the calls unless the configuration value `agent` names another endpoint.
const DEFAULT_AGENT: &str = "user:agent";
/// How long the agent may take between keys of the extension.
const DIGIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest extension.
const MAX_EXTENSION: u32 = 16;

/// Where the session is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum State {
    /// Before the call arrived.
    #[default]
    Start,
    /// The agent's phone rings; the caller hears it ringing.
    Ringing,
    /// Caller and agent talk; `star` is true right after the agent pressed `*`.
    Talking {
        /// The agent pressed `*` and the next key may be `2`.
        star: bool,
    },
    /// Collecting the extension from the agent.
    Dialling,
    /// The agent talks with the consulted party (this leg); the caller hears music.
    Consulting(Call),
    /// The caller talks with the consulted party (this leg).
    Transferred(Call),
    /// Hung up.
    Done,
}

/// The session: the caller, the agent, and the state.
#[derive(Default)]
struct AttendedTransfer {
    state: State,
    caller: Option<Call>,
    agent: Option<Call>,
}

/// An extension is one or more digits.
fn valid_extension(digits: &str) -> bool {
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl AttendedTransfer {
    fn is_agent(&self, call: &Call) -> bool {
        self.agent.as_ref() == Some(call)
    }

    fn is_caller(&self, call: &Call) -> bool {
        self.caller.as_ref() == Some(call)
    }

    /// Hangs up every leg of the session.
    fn hang_up_all(&mut self) {
        let consulted = match &self.state {
            State::Consulting(leg) | State::Transferred(leg) => Some(leg.clone()),
            _ => None,
        };
        for leg in [
            self.caller.as_ref(),
            self.agent.as_ref(),
            consulted.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = leg.hangup();
        }
        self.state = State::Done;
    }

    /// Back to the caller: hang up the consult leg and bridge the agent with the caller.
    fn cancel(&mut self, agent: &Call) {
        if let Err(e) = agent.cancel_transfer() {
            log::warn!("cancel transfer failed: {e}; reconnecting by hand");
            if let Some(caller) = &self.caller
                && let Err(e) = agent.connect(caller)
            {
                log::warn!("reconnecting failed: {e}");
            }
        }
        log::info!("transfer cancelled");
        self.state = State::Talking { star: false };
    }

    /// The agent pressed a key while talking with the caller.
    fn talking_key(&mut self, agent: &Call, star: bool, digit: &str) {
        match (star, digit) {
            (true, "2") => match agent.collect_dtmf(
                Collect::max(MAX_EXTENSION)
                    .terminator('#')
                    .timeout(DIGIT_TIMEOUT),
            ) {
                Ok(()) => self.state = State::Dialling,
                Err(e) => {
                    log::warn!("collecting the extension failed: {e}");
                    self.state = State::Talking { star: false };
                }
            },
            (_, "*") => self.state = State::Talking { star: true },
            _ => self.state = State::Talking { star: false },
        }
    }
}

impl App for AttendedTransfer {
    fn on_call_received(&mut self, call: Call, info: &CallInfo) {
        self.caller = Some(call.clone());
        let text = info.config_value("agent").unwrap_or(DEFAULT_AGENT);
        let agent = match Endpoint::parse(text) {
            Ok(agent) => agent,
            Err(e) => {
                log::warn!("agent failed: {e}");
                let _ = call.reject(480);
                self.state = State::Done;
                return;
            }
        };
        match call.dial_and_connect(&agent) {
            Ok(leg) => {
                self.agent = Some(leg);
                self.state = State::Ringing;
            }
            Err(e) => {
                log::warn!("agent failed: {e}");
                let _ = call.reject(480);
                self.state = State::Done;
            }
        }
    }

    fn on_call_answered(&mut self, call: Call) {
        if self.is_agent(&call) && self.state == State::Ringing {
            log::info!("agent answered");
            self.state = State::Talking { star: false };
        } else if let State::Consulting(consulted) = &self.state
            && *consulted == call
        {
            log::info!("consulted party answered");
        }
    }

    fn on_dtmf(&mut self, call: Call, digit: &str) {
        if !self.is_agent(&call) {
            return;
        }
        match self.state.clone() {
            State::Talking { star } => self.talking_key(&call, star, digit),
            State::Consulting(_) if digit == "#" => match call.complete_transfer() {
                Ok(()) => {
                    log::info!("transfer completed");
                    if let State::Consulting(consulted) = &self.state {
                        self.state = State::Transferred(consulted.clone());
                    }
                }
                Err(e) => log::warn!("complete transfer failed: {e}"),
            },
            State::Consulting(_) if digit == "*" => self.cancel(&call),
            _ => {}
        }
    }

    fn on_dtmf_collected(&mut self, call: Call, collected: &Collected) {
        if !self.is_agent(&call) || self.state != State::Dialling {
            return;
        }
        let extension = collected.digits.as_str();
        let finished = matches!(
            collected.end,
            CollectEnd::Terminator | CollectEnd::MaxDigits
        );
        if !finished || !valid_extension(extension) {
            log::info!("no extension entered");
            self.state = State::Talking { star: false };
            return;
        }
        match call.consult(&Endpoint::user(extension)) {
            Ok(leg) => {
                log::info!("consulting {extension}");
                self.state = State::Consulting(leg);
            }
            Err(e) => {
                log::warn!("consult failed: {e}");
                self.state = State::Talking { star: false };
            }
        }
    }

    fn on_call_finished(&mut self, call: Call, ended: &CallEnded) {
        if self.is_caller(&call) {
            self.hang_up_all();
            return;
        }
        match self.state.clone() {
            State::Ringing if self.is_agent(&call) => {
                log::info!("agent failed: {}", ended.hangup_reason);
                if let Some(caller) = &self.caller {
                    let _ = caller.reject(480);
                }
                self.state = State::Done;
            }
            State::Talking { .. } | State::Dialling if self.is_agent(&call) => self.hang_up_all(),
            State::Consulting(consulted) if consulted == call => {
                log::info!("consult failed: {}", ended.hangup_reason);
                if let Some(agent) = self.agent.clone() {
                    self.cancel(&agent);
                }
            }
            State::Consulting(consulted) if self.is_agent(&call) => {
                // The agent left mid-consultation: hand the caller over if possible.
                match self
                    .caller
                    .as_ref()
                    .map(|caller| caller.connect(&consulted))
                {
                    Some(Ok(())) => {
                        log::info!("transfer completed");
                        self.state = State::Transferred(consulted);
                    }
                    _ => self.hang_up_all(),
                }
            }
            State::Transferred(consulted) if consulted == call => self.hang_up_all(),
            _ => {}
        }
    }
}

pbx_sdk::export_app!(AttendedTransfer);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use pbx_sdk::testing::{self, call_info_with_config, collected, ended};
    use pbx_sdk::{App, Call, CollectEnd, HangupReason};

    use super::*;

    const AGENT: &str = "out-1";

    /// A session where the caller and the agent talk.
    fn talking() -> AttendedTransfer {
        let mut app = AttendedTransfer::default();
        let info = call_info_with_config("leg-1", "dave", "4000", &[]);
        app.on_call_received(Call::from_id("leg-1"), &info);
        assert_eq!(
            testing::take_requests(),
            ["dial-and-connect(leg-1, user:agent)"]
        );
        app.on_call_answered(Call::from_id(AGENT));
        assert_eq!(testing::take_logs(), ["info: agent answered"]);
        app
    }

    fn keys(app: &mut AttendedTransfer, leg: &str, keys: &str) {
        for key in keys.chars() {
            app.on_dtmf(Call::from_id(leg), &key.to_string());
        }
    }

    /// A session where the agent consults extension 201 (leg out-2).
    fn consulting() -> AttendedTransfer {
        let mut app = talking();
        keys(&mut app, AGENT, "*2");
        assert_eq!(
            testing::take_requests(),
            ["collect-dtmf(out-1, max 16, terminator #, timeout 5000ms)"]
        );
        keys(&mut app, AGENT, "201#");
        app.on_dtmf_collected(
            Call::from_id(AGENT),
            &collected("201", CollectEnd::Terminator),
        );
        assert_eq!(testing::take_requests(), ["consult(out-1, user:201)"]);
        assert_eq!(testing::take_logs(), ["info: consulting 201"]);
        app
    }

    #[test]
    fn configured_agent_is_dialled() {
        let mut app = AttendedTransfer::default();
        let info = call_info_with_config("leg-1", "dave", "4000", &[("agent", "sip:a@10.0.0.9")]);
        app.on_call_received(Call::from_id("leg-1"), &info);
        assert_eq!(
            testing::take_requests(),
            ["dial-and-connect(leg-1, sip:a@10.0.0.9)"]
        );
    }

    #[test]
    fn hash_completes_the_transfer() {
        let mut app = consulting();
        keys(&mut app, "out-2", "#");
        assert!(testing::take_requests().is_empty());
        keys(&mut app, AGENT, "#");
        assert_eq!(testing::take_requests(), ["complete-transfer(out-1)"]);
        assert_eq!(testing::take_logs(), ["info: transfer completed"]);
        app.on_call_finished(Call::from_id(AGENT), &ended(HangupReason::Normal, true));
        assert!(testing::take_requests().is_empty());
        app.on_call_finished(Call::from_id("out-2"), &ended(HangupReason::Normal, true));
        assert_eq!(
            testing::take_requests().first().map(String::as_str),
            Some("hangup(leg-1)")
        );
    }

    #[test]
    fn star_cancels_the_transfer() {
        let mut app = consulting();
        keys(&mut app, AGENT, "*");
        assert_eq!(testing::take_requests(), ["cancel-transfer(out-1)"]);
        assert_eq!(testing::take_logs(), ["info: transfer cancelled"]);
        // Back to talking: `*2` consults again.
        keys(&mut app, AGENT, "*2");
        assert_eq!(testing::take_requests().len(), 1);
    }

    #[test]
    fn other_keys_and_the_callers_keys_do_nothing() {
        let mut app = talking();
        keys(&mut app, AGENT, "2*32");
        keys(&mut app, "leg-1", "*2");
        assert!(testing::take_requests().is_empty());
    }

    #[test]
    fn no_extension_goes_back_to_talking() {
        let mut app = talking();
        keys(&mut app, AGENT, "*2");
        testing::take_requests();
        app.on_dtmf_collected(Call::from_id(AGENT), &collected("", CollectEnd::Timeout));
        assert!(testing::take_requests().is_empty());
        keys(&mut app, AGENT, "*2");
        assert_eq!(testing::take_requests().len(), 1);
    }

    #[test]
    fn a_failed_consultation_returns_to_the_caller() {
        let mut app = consulting();
        app.on_call_finished(Call::from_id("out-2"), &ended(HangupReason::Busy, false));
        assert_eq!(testing::take_requests(), ["cancel-transfer(out-1)"]);
        assert_eq!(
            testing::take_logs(),
            ["info: consult failed: busy", "info: transfer cancelled"]
        );
    }

    #[test]
    fn caller_hanging_up_hangs_up_everyone() {
        let mut app = consulting();
        app.on_call_finished(Call::from_id("leg-1"), &ended(HangupReason::Normal, true));
        assert_eq!(
            testing::take_requests(),
            ["hangup(leg-1)", "hangup(out-1)", "hangup(out-2)"]
        );
    }

    #[test]
    fn an_agent_who_does_not_answer_means_480_for_the_caller() {
        let mut app = AttendedTransfer::default();
        let info = call_info_with_config("leg-1", "dave", "4000", &[]);
        app.on_call_received(Call::from_id("leg-1"), &info);
        testing::take_requests();
        app.on_call_finished(Call::from_id(AGENT), &ended(HangupReason::Noanswer, false));
        assert_eq!(testing::take_requests(), ["reject(leg-1, 480)"]);
        assert_eq!(testing::take_logs(), ["info: agent failed: noanswer"]);
    }

    #[test]
    fn extensions_are_digits() {
        assert!(valid_extension("201"));
        assert!(!valid_extension(""));
        assert!(!valid_extension("2A"));
    }
}
