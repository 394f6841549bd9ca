//! The local simulator for `cargo test`: runs an [`App`] directly (no wasm) against a
//! scripted caller in virtual time, on the same engine as `pbx simulate` (`pbx-sim`).
//!
//! ```
//! use pbx_sdk::{App, Call, CallInfo, testing};
//!
//! #[derive(Default)]
//! struct Hello;
//! impl App for Hello {
//!     fn on_call_received(&mut self, call: Call, _info: &CallInfo) {
//!         if call.answer().is_ok() {
//!             let _ = call.say("Hello");
//!         }
//!     }
//! }
//!
//! let transcript = testing::simulate::<Hello>(
//!     "call from=alice to=1000\nexpect answer\nexpect say \"Hello\"\nhangup\nexpect finished",
//! );
//! assert!(transcript.passed(), "{transcript}");
//! ```
//!
//! Invariants: while a simulation runs, the stand-in host of [`crate::testing`] keeps a
//! mirror of the session's legs (set from the engine before every event, moved by the app's
//! own answer, reject and hangup) and refuses requests as the pbx would, by the same rules
//! and with the same texts (`pbx_app::phase`: `invalid-state` for a leg that ended or is
//! not answered, `not-found` for an unknown leg); every accepted
//! request is also kept as a [`SimRequest`]. The stand-in's state is reset before and after
//! a simulation, so ids count from 1 and nothing leaks into the rest of the test.

use std::panic::{AssertUnwindSafe, catch_unwind};

pub(crate) use pbx_app::phase::Need;
use pbx_app::phase::{self, Refusal};
use pbx_sim::{AppDriver, LegPhase, LegView, LogLevel};
pub use pbx_sim::{Failure, Scenario, SimEvent, SimRequest, Transcript};

use super::{STATE, reset, set_config};
use crate::bindings::pbx::app::types::{
    CallEnded, CallInfo, CollectEnd, CollectedDigits, Direction, Error as WitError, HangupBy,
    HangupReason, MediaFinished,
};
use crate::{App, Call, http};

/// Runs `scenario` (the text of a `.sim` file, see `host/sim/README.md`) against a fresh
/// `A` and returns the transcript; a scenario that does not parse gives a failed one.
pub fn simulate<A: App>(scenario: &str) -> Transcript {
    simulate_with_config::<A>(scenario, &[])
}

/// [`simulate`] with configuration values (name, value) added to the scenario's own
/// `config` lines, as `pbx simulate --config` does.
pub fn simulate_with_config<A: App>(scenario: &str, config: &[(&str, &str)]) -> Transcript {
    let scenario = match Scenario::parse(scenario) {
        Ok(s) => s.with_config(config.iter().copied()),
        Err(err) => return Transcript::from_parse_error(&err),
    };
    reset();
    for (name, value) in scenario.config() {
        set_config(name, value);
    }
    STATE.with(|s| s.borrow_mut().sim = Some(Mirror::default()));
    let mut driver = Native { app: A::default() };
    let transcript = pbx_sim::run(&scenario, &mut driver);
    reset();
    transcript
}

/// The stand-in host's view of the session while a simulation runs.
#[derive(Debug, Default)]
pub(crate) struct Mirror {
    requests: Vec<SimRequest>,
    legs: Vec<LegView>,
}

impl Mirror {
    fn leg(&self, call: &str) -> Option<&LegView> {
        self.legs.iter().find(|l| l.id == call)
    }

    /// Refuses as the pbx would: by the one definition of the rules, `pbx_app::phase`.
    fn check(&self, call: &str, need: Need, what: &str) -> Result<(), WitError> {
        let leg = self.leg(call).map(|l| (l.phase, l.direction));
        phase::check(call, leg, need, what).map_err(wit_error)
    }

    /// Refuses an unknown leg (`not-found`) without judging its phase.
    fn known(&self, call: &str) -> Result<(), WitError> {
        match self.leg(call) {
            Some(_) => Ok(()),
            None => Err(wit_error(phase::no_leg(call))),
        }
    }

    fn set_phase(&mut self, call: &str, phase: LegPhase) {
        if let Some(leg) = self.legs.iter_mut().find(|l| l.id == call) {
            leg.phase = phase;
        }
    }

    /// The app's own requests move the mirror at once, as the host's imports do.
    fn follow(&mut self, request: &SimRequest) {
        match request {
            SimRequest::Answer { call } => self.set_phase(call, LegPhase::Answered),
            SimRequest::EarlyMedia { call } => self.set_phase(call, LegPhase::EarlyMedia),
            SimRequest::Reject { call, .. } => self.set_phase(call, LegPhase::Finished),
            SimRequest::Hangup { call } => {
                if self.legs.first().is_some_and(|first| first.id == *call) {
                    for leg in &mut self.legs {
                        leg.phase = LegPhase::Finished;
                    }
                } else {
                    self.set_phase(call, LegPhase::Finished);
                }
            }
            SimRequest::Dial { new_leg, .. } | SimRequest::DialAndConnect { new_leg, .. } => {
                self.legs.push(LegView {
                    id: new_leg.clone(),
                    direction: pbx_sim::Direction::Outbound,
                    phase: LegPhase::Dialing,
                });
            }
            _ => {}
        }
    }
}

/// During a simulation: refuses a request on `call` that the pbx would refuse.
pub(crate) fn check(call: &str, need: Need, what: &str) -> Result<(), WitError> {
    STATE.with(|s| match &s.borrow().sim {
        Some(mirror) => mirror.check(call, need, what),
        None => Ok(()),
    })
}

/// During a simulation: refuses a request naming `call` when the session has no such leg.
pub(crate) fn known(call: &str) -> Result<(), WitError> {
    STATE.with(|s| match &s.borrow().sim {
        Some(mirror) => mirror.known(call),
        None => Ok(()),
    })
}

fn wit_error(refusal: Refusal) -> WitError {
    match refusal {
        Refusal::NotFound(m) => WitError::NotFound(m),
        Refusal::InvalidState(m) => WitError::InvalidState(m),
    }
}

/// During a simulation: keeps an accepted request, in its recorded text form, until the
/// stand-in that made it gives its structured form with [`refine`].
pub(crate) fn echo(mirror: &mut Option<Mirror>, text: &str) {
    if let Some(m) = mirror {
        m.requests.push(SimRequest::Other(text.to_owned()));
    }
}

/// During a simulation: replaces the request just echoed with its structured form.
pub(crate) fn refine(request: SimRequest) {
    STATE.with(|s| {
        if let Some(m) = s.borrow_mut().sim.as_mut() {
            m.follow(&request);
            match m.requests.last_mut() {
                Some(last @ SimRequest::Other(_)) => *last = request,
                _ => m.requests.push(request),
            }
        }
    });
}

/// During a simulation: keeps a log line.
pub(crate) fn log(level: &str, message: &str) {
    let level = match level {
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    };
    STATE.with(|s| {
        if let Some(m) = s.borrow_mut().sim.as_mut() {
            m.requests.push(SimRequest::Log {
                level,
                message: message.to_owned(),
            });
        }
    });
}

/// Runs an [`App`] in this thread against the stand-in host.
struct Native<A> {
    app: A,
}

impl<A: App> AppDriver for Native<A> {
    fn sync_legs(&mut self, legs: &[LegView]) {
        STATE.with(|s| {
            if let Some(m) = s.borrow_mut().sim.as_mut() {
                m.legs = legs.to_vec();
            }
        });
    }

    fn deliver(&mut self, event: &SimEvent) -> Result<Vec<SimRequest>, String> {
        STATE.with(|s| {
            if let Some(m) = s.borrow_mut().sim.as_mut() {
                m.requests.clear();
            }
        });
        let app = &mut self.app;
        // A panicking app traps in a component; here it fails the session the same way.
        catch_unwind(AssertUnwindSafe(|| dispatch(app, event))).map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the app panicked".to_owned());
            format!("panic: {message}")
        })?;
        Ok(STATE.with(|s| {
            s.borrow_mut()
                .sim
                .as_mut()
                .map(|m| std::mem::take(&mut m.requests))
                .unwrap_or_default()
        }))
    }
}

fn dispatch<A: App>(app: &mut A, event: &SimEvent) {
    match event {
        SimEvent::CallReceived(info) => {
            let info = CallInfo {
                id: info.id.clone(),
                direction: match info.direction {
                    pbx_sim::Direction::Inbound => Direction::Inbound,
                    pbx_sim::Direction::Outbound => Direction::Outbound,
                },
                from: info.from.clone(),
                to: info.to.clone(),
                caller_name: info.caller_name.clone(),
                config: info.config.clone(),
                handed_over: None,
            };
            app.on_call_received(Call::from_id(&*info.id), &info);
        }
        SimEvent::Ringing { call } => app.on_call_ringing(Call::from_id(call)),
        SimEvent::Answered { call } => app.on_call_answered(Call::from_id(call)),
        SimEvent::Dtmf { call, digit } => app.on_dtmf(Call::from_id(call), digit),
        SimEvent::SayFinished { call, finished } => {
            app.on_say_finished(Call::from_id(call), &media(finished));
        }
        SimEvent::PlayFinished { call, finished } => {
            app.on_play_finished(Call::from_id(call), &media(finished));
        }
        SimEvent::Collected { call, digits, end } => {
            let collected = CollectedDigits {
                digits: digits.clone(),
                end: match end {
                    pbx_sim::CollectEnd::MaxDigits => CollectEnd::MaxDigits,
                    pbx_sim::CollectEnd::Terminator => CollectEnd::Terminator,
                    pbx_sim::CollectEnd::Timeout => CollectEnd::Timeout,
                    pbx_sim::CollectEnd::Cancelled => CollectEnd::Cancelled,
                },
            };
            app.on_dtmf_collected(Call::from_id(call), &collected);
        }
        SimEvent::Finished { call, ended } => {
            app.on_call_finished(Call::from_id(call), &call_ended(*ended));
        }
        SimEvent::Timer { id, tag } => app.on_timer(*id, tag),
        SimEvent::HttpResponse { id, result } => {
            let result = match result {
                Ok(reply) => Ok(http::Response {
                    status: reply.status,
                    headers: Vec::new(),
                    body: reply.body.as_bytes().to_vec(),
                }),
                Err(e) if e == "timeout" => Err(http::ResponseError::Timeout),
                Err(e) if e == "too-large" => Err(http::ResponseError::TooLarge),
                Err(e) => Err(http::ResponseError::ConnectionFailed(e.clone())),
            };
            app.on_http_response(*id, result);
        }
    }
}

fn media(m: &pbx_sim::MediaEnd) -> MediaFinished {
    MediaFinished {
        id: m.id,
        played_completely: m.completed,
        digit: m.digit.clone(),
    }
}

fn call_ended(e: pbx_sim::Ended) -> CallEnded {
    CallEnded {
        hangup_by: match e.by {
            pbx_sim::HangupBy::Local => HangupBy::Local,
            pbx_sim::HangupBy::Remote => HangupBy::Remote,
        },
        hangup_reason: match e.reason {
            pbx_sim::HangupReason::Normal => HangupReason::Normal,
            pbx_sim::HangupReason::Failed => HangupReason::Failed,
            pbx_sim::HangupReason::Busy => HangupReason::Busy,
            pbx_sim::HangupReason::Cancel => HangupReason::Cancel,
            pbx_sim::HangupReason::Timeout => HangupReason::Timeout,
            pbx_sim::HangupReason::Noanswer => HangupReason::Noanswer,
            pbx_sim::HangupReason::AppError => HangupReason::AppError,
            pbx_sim::HangupReason::Rejected => HangupReason::Rejected,
            pbx_sim::HangupReason::Admin => HangupReason::Admin,
        },
        sip_status: e.sip_status,
        answered: e.answered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Collect, Collected, MediaFinished as Finished, MediaId};

    /// Answers, says a menu that a key stops, collects one digit, says the choice and hangs
    /// up once it was said; logs every leg's end.
    #[derive(Default)]
    struct Menu {
        menu: Option<MediaId>,
        bye: Option<MediaId>,
    }

    impl App for Menu {
        fn on_call_received(&mut self, call: Call, info: &CallInfo) {
            crate::log::info!("call from {}", info.from);
            if call.answer().is_ok() {
                let greeting = info
                    .config
                    .iter()
                    .find(|(n, _)| n == "greeting")
                    .map_or("Press a key.", |(_, v)| v.as_str());
                self.menu = call.say_with(greeting).stop_on_dtmf().send().ok();
            }
            // A second answer is refused by the mirror, as the pbx would.
            if let Err(e) = call.answer() {
                crate::log::warn!("{e}");
            }
        }

        fn on_say_finished(&mut self, call: Call, finished: &Finished) {
            if Some(finished.id) == self.menu {
                match &finished.digit {
                    Some(d) => self.bye = call.say(&format!("You chose {d}")).ok(),
                    None => {
                        let _ = call.collect_dtmf(Collect::max(1).timeout_ms(2000));
                    }
                }
            } else if Some(finished.id) == self.bye {
                let _ = call.hangup();
            }
        }

        fn on_dtmf_collected(&mut self, call: Call, collected: &Collected) {
            self.bye = call.say(&format!("You chose {}", collected.digits)).ok();
        }

        fn on_call_finished(&mut self, call: Call, _ended: &CallEnded) {
            // Refused: the leg has ended.
            if let Err(e) = call.say("too late") {
                crate::log::warn!("{e}");
            }
        }
    }

    #[test]
    fn runs_an_app_natively_through_the_engine() {
        let t = simulate_with_config::<Menu>(
            "call from=alice\nexpect answer\nexpect say \"Welcome\"\nexpect log \"alice\"\nexpect log \"already answered\"\npress 4\nexpect say \"You chose 4\"\nwait 2s\nexpect hangup\nexpect finished by=local reason=normal\nexpect log \"has ended\"\nexpect no-more",
            &[("greeting", "Welcome")],
        );
        assert!(t.passed(), "{t}");
        assert!(crate::testing::take_requests().is_empty());
    }

    #[test]
    fn silence_collects_then_times_out() {
        let t = simulate::<Menu>(
            "call\nwait 1s\nexpect collect max=1\nwait 2s\nexpect say \"You chose \"\nhangup\nexpect finished by=remote",
        );
        assert!(t.passed(), "{t}");
        let ends: Vec<String> = t
            .events()
            .iter()
            .filter(|e| matches!(e, SimEvent::Collected { .. }))
            .map(ToString::to_string)
            .collect();
        assert_eq!(ends, ["dtmf-collected leg-1 \"\" (timeout)"]);
    }

    /// Makes requests the pbx refuses, and logs each refusal.
    #[derive(Default)]
    struct Refused;

    impl App for Refused {
        fn on_call_received(&mut self, call: Call, _info: &CallInfo) {
            let report = |r: Result<(), crate::Error>| {
                if let Err(e) = r {
                    crate::log::warn!("{e}");
                }
            };
            report(call.say("too early").map(drop));
            report(call.send_dtmf("1"));
            report(Call::from_id("nope").hangup());
            report(call.answer());
            report(call.answer());
            report(call.disconnect());
            report(call.hangup());
            report(call.say("too late").map(drop));
        }
    }

    #[test]
    fn refusals_have_the_runtimes_texts() {
        let t = simulate::<Refused>(
            "call
wait 1s",
        );
        let logs: Vec<&str> = t
            .requests()
            .iter()
            .filter_map(|r| match r {
                SimRequest::Log { message, .. } => Some(message.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            logs,
            [
                "invalid state: cannot say before leg `leg-1` is answered or early media started",
                "invalid state: cannot send digits: leg `leg-1` is not answered",
                "not found: no leg `nope` in this session",
                "invalid state: cannot answer: leg `leg-1` is already answered",
                "invalid state: leg `leg-1` has ended",
            ],
            "{t}"
        );
    }

    #[derive(Default)]
    struct Panics;
    impl App for Panics {
        fn on_dtmf(&mut self, _call: Call, _digit: &str) {
            panic!("boom");
        }
        fn on_call_received(&mut self, call: Call, _info: &CallInfo) {
            let _ = call.answer();
        }
    }

    #[test]
    fn a_panic_is_an_app_error() {
        let t = simulate::<Panics>("call\npress 1\nexpect finished reason=app-error");
        assert_eq!(t.failures().len(), 1, "{t}");
        assert!(t.failures()[0].message.contains("boom"), "{t}");
        let t = simulate::<Panics>("call\nbogus");
        assert_eq!(t.failures()[0].line, 2);
    }
}
