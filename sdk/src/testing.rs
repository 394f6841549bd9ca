//! Host-side testing for apps: outside WebAssembly, every request an app makes is recorded
//! here instead of reaching a pbx, so an app's state machine can be driven event by event
//! with `cargo test --target <the build machine's triple>` (inside a component the real host
//! answers and nothing is recorded; the module still compiles so `clippy --all-targets` on
//! `wasm32-wasip2` checks app tests).
//!
//! Invariants: state is per thread (each `#[test]` has its own); requests are recorded in
//! the order made, as text like `answer(leg-1)` or `say(leg-1, "Hello")`; ids handed out
//! are predictable (`out-1`, `out-2`, ... for new legs, `conf-1`, `rec-1`, media and timer
//! ids from 1); a request refused with [`fail_next`] is recorded too.
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
//! let mut app = Hello::default();
//! app.on_call_received(Call::from_id("leg-1"), &testing::call_info("leg-1", "alice", "1000"));
//! assert_eq!(testing::take_requests(), ["answer(leg-1)", "say(leg-1, \"Hello\")"]);
//! ```

use std::cell::RefCell;

use crate::Error;
use crate::bindings::pbx::app::types::{
    CallEnded, CallInfo, CollectEnd, CollectedDigits, Direction, Endpoint as WitEndpoint,
    Error as WitError, HandOverInfo, HangupBy, HangupReason, MediaFinished, RecordingInfo,
};

/// What the stand-in host remembers for this thread.
#[derive(Default)]
struct State {
    requests: Vec<String>,
    logs: Vec<String>,
    failures: Vec<(String, Error)>,
    legs: u32,
    conferences: u32,
    recordings: u32,
    media: u64,
    timers: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Forgets every recorded request, log line, planned failure and id counter.
pub fn reset() {
    STATE.with(|s| *s.borrow_mut() = State::default());
}

/// Returns the requests recorded since the last call (oldest first) and forgets them.
pub fn take_requests() -> Vec<String> {
    STATE.with(|s| std::mem::take(&mut s.borrow_mut().requests))
}

/// Returns the log lines written since the last call, as `level: message`, and forgets them.
pub fn take_logs() -> Vec<String> {
    STATE.with(|s| std::mem::take(&mut s.borrow_mut().logs))
}

/// Refuses the next request named `name` (the text before `(`, such as `say`, `dial` or
/// `conference.join`) with `error`, as a pbx would.
pub fn fail_next(name: &str, error: Error) {
    STATE.with(|s| s.borrow_mut().failures.push((name.to_owned(), error)));
}

/// A [`CallInfo`] for an inbound call without configuration.
pub fn call_info(id: &str, from: &str, to: &str) -> CallInfo {
    call_info_with_config(id, from, to, &[])
}

/// A [`CallInfo`] for an inbound call with configuration values (name, value).
pub fn call_info_with_config(id: &str, from: &str, to: &str, config: &[(&str, &str)]) -> CallInfo {
    CallInfo {
        id: id.to_owned(),
        direction: Direction::Inbound,
        from: from.to_owned(),
        to: to.to_owned(),
        caller_name: None,
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        handed_over: None,
    }
}

/// A [`CallInfo`] for an inbound leg that the app `from_app` handed over with `data`.
pub fn handed_over_call_info(
    id: &str,
    from: &str,
    to: &str,
    from_app: &str,
    data: &str,
) -> CallInfo {
    CallInfo {
        handed_over: Some(HandOverInfo {
            from_app: from_app.to_owned(),
            data: data.to_owned(),
        }),
        ..call_info(id, from, to)
    }
}

/// A [`CallEnded`] for a leg that ended remotely with `reason`.
pub fn ended(reason: HangupReason, answered: bool) -> CallEnded {
    CallEnded {
        hangup_by: HangupBy::Remote,
        hangup_reason: reason,
        sip_status: None,
        answered,
    }
}

/// A [`MediaFinished`] for media `id` that played to its end.
pub fn finished(id: u64) -> MediaFinished {
    MediaFinished {
        id,
        played_completely: true,
        digit: None,
    }
}

/// A [`CollectedDigits`] with these digits and end.
pub fn collected(digits: &str, end: CollectEnd) -> CollectedDigits {
    CollectedDigits {
        digits: digits.to_owned(),
        end,
    }
}

/// A [`RecordingInfo`] for recording `id` with one file.
pub fn recording_info(id: &str, duration_ms: u64) -> RecordingInfo {
    RecordingInfo {
        id: id.to_owned(),
        duration_ms,
        files: 1,
    }
}

/// Records `request`; returns the planned failure for its name, if any.
fn record(request: String) -> Result<(), WitError> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let name = request.split('(').next().unwrap_or_default().to_owned();
        s.requests.push(request);
        match s.failures.iter().position(|(n, _)| *n == name) {
            Some(i) => Err(match s.failures.remove(i).1 {
                Error::InvalidState(m) => WitError::InvalidState(m),
                Error::InvalidArgument(m) => WitError::InvalidArgument(m),
                Error::NotFound(m) => WitError::NotFound(m),
                Error::Failed(m) => WitError::Failed(m),
            }),
            None => Ok(()),
        }
    })
}

fn next_media() -> u64 {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.media += 1;
        s.media
    })
}

fn next_leg() -> String {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.legs += 1;
        format!("out-{}", s.legs)
    })
}

fn endpoint(e: &WitEndpoint) -> String {
    match e {
        WitEndpoint::SipUri(uri) => uri.clone(),
        WitEndpoint::User(name) => format!("user:{name}"),
        WitEndpoint::Phone(p) => match &p.trunk {
            Some(t) => format!("{};trunk={t}", p.number),
            None => p.number.clone(),
        },
    }
}

/// The stand-in imports, with the generated bindings' signatures.
#[cfg_attr(
    target_arch = "wasm32",
    allow(dead_code, reason = "components call the real imports")
)]
pub(crate) mod stand_in {
    pub(crate) mod cc {
        use super::super::{endpoint, next_leg, next_media, record};
        use crate::bindings::pbx::app::types::{
            CollectOptions, DialOptions, Endpoint, Error, GroupStage, MuteDirection, PlayOptions,
            RingStrategy, SayOptions,
        };

        fn dial_args(options: &DialOptions) -> String {
            let mut args = String::new();
            if options.connect_timeout_ms != 0 {
                args.push_str(&format!(", timeout {}ms", options.connect_timeout_ms));
            }
            if let Some(id) = &options.caller_id {
                args.push_str(&format!(", caller-id {id}"));
            }
            args
        }

        pub(crate) fn answer(call: &str) -> Result<(), Error> {
            record(format!("answer({call})"))
        }
        pub(crate) fn early_media(call: &str) -> Result<(), Error> {
            record(format!("early-media({call})"))
        }
        pub(crate) fn reject(call: &str, status: u16) -> Result<(), Error> {
            record(format!("reject({call}, {status})"))
        }
        pub(crate) fn hangup(call: &str) -> Result<(), Error> {
            record(format!("hangup({call})"))
        }
        pub(crate) fn say(call: &str, text: &str, _options: &SayOptions) -> Result<u64, Error> {
            record(format!("say({call}, {text:?})")).map(|()| next_media())
        }
        pub(crate) fn play(call: &str, file_id: &str, _options: PlayOptions) -> Result<u64, Error> {
            record(format!("play({call}, {file_id})")).map(|()| next_media())
        }
        pub(crate) fn play_music(call: &str, file_id: Option<&str>) -> Result<u64, Error> {
            let file = file_id.map(|f| format!(", {f}")).unwrap_or_default();
            record(format!("play-music({call}{file})")).map(|()| next_media())
        }
        pub(crate) fn stop_media(call: &str) -> Result<(), Error> {
            record(format!("stop-media({call})"))
        }
        pub(crate) fn collect_dtmf(call: &str, options: &CollectOptions) -> Result<(), Error> {
            let terminator = options
                .terminator
                .as_deref()
                .map(|t| format!(", terminator {t}"))
                .unwrap_or_default();
            record(format!(
                "collect-dtmf({call}, max {}{terminator}, timeout {}ms)",
                options.max_digits, options.timeout_ms
            ))
        }
        pub(crate) fn send_dtmf(call: &str, digits: &str, _duration_ms: u32) -> Result<(), Error> {
            record(format!("send-dtmf({call}, {digits})"))
        }
        pub(crate) fn dial(target: &Endpoint, options: &DialOptions) -> Result<String, Error> {
            record(format!("dial({}{})", endpoint(target), dial_args(options))).map(|()| next_leg())
        }
        pub(crate) fn dial_group(
            stages: &[GroupStage],
            options: &DialOptions,
        ) -> Result<String, Error> {
            let stages: Vec<String> = stages
                .iter()
                .map(|s| {
                    let strategy = match s.strategy {
                        RingStrategy::RingAll => "ring-all",
                        RingStrategy::Linear => "linear",
                    };
                    let members: Vec<String> = s.members.iter().map(endpoint).collect();
                    format!("{strategy} [{}] {}ms", members.join(", "), s.timeout_ms)
                })
                .collect();
            record(format!(
                "dial-group({}{})",
                stages.join("; "),
                dial_args(options)
            ))
            .map(|()| next_leg())
        }
        pub(crate) fn connect(a: &str, b: &str) -> Result<(), Error> {
            record(format!("connect({a}, {b})"))
        }
        pub(crate) fn disconnect(call: &str) -> Result<(), Error> {
            record(format!("disconnect({call})"))
        }
        pub(crate) fn dial_and_connect(
            call: &str,
            target: &Endpoint,
            options: &DialOptions,
        ) -> Result<String, Error> {
            record(format!(
                "dial-and-connect({call}, {}{})",
                endpoint(target),
                dial_args(options)
            ))
            .map(|()| next_leg())
        }
        pub(crate) fn hold(call: &str, music_file: Option<&str>) -> Result<(), Error> {
            let file = music_file.map(|f| format!(", {f}")).unwrap_or_default();
            record(format!("hold({call}{file})"))
        }
        pub(crate) fn resume(call: &str) -> Result<(), Error> {
            record(format!("resume({call})"))
        }
        pub(crate) fn mute(call: &str, direction: MuteDirection) -> Result<(), Error> {
            record(format!("mute({call}, {direction:?})"))
        }
        pub(crate) fn unmute(call: &str, direction: MuteDirection) -> Result<(), Error> {
            record(format!("unmute({call}, {direction:?})"))
        }
        pub(crate) fn transfer(
            call: &str,
            target: &Endpoint,
            options: &DialOptions,
        ) -> Result<String, Error> {
            record(format!(
                "transfer({call}, {}{})",
                endpoint(target),
                dial_args(options)
            ))
            .map(|()| next_leg())
        }
        pub(crate) fn consult(
            call: &str,
            target: &Endpoint,
            options: &DialOptions,
        ) -> Result<String, Error> {
            record(format!(
                "consult({call}, {}{})",
                endpoint(target),
                dial_args(options)
            ))
            .map(|()| next_leg())
        }
        pub(crate) fn complete_transfer(call: &str) -> Result<(), Error> {
            record(format!("complete-transfer({call})"))
        }
        pub(crate) fn cancel_transfer(call: &str) -> Result<(), Error> {
            record(format!("cancel-transfer({call})"))
        }
        pub(crate) fn hand_over(call: &str, app: &str, data: &str) -> Result<(), Error> {
            record(format!("hand-over({call}, {app}, {data:?})"))
        }
        pub(crate) fn refuse_hand_over(call: &str, reason: &str) -> Result<(), Error> {
            record(format!("refuse-hand-over({call}, {reason:?})"))
        }
    }

    pub(crate) mod conf {
        use super::super::{STATE, next_media, record};
        use crate::bindings::pbx::app::types::{
            ConferenceOptions, Error, JoinOptions, PlayOptions, SayOptions,
        };

        pub(crate) fn create(options: &ConferenceOptions) -> Result<String, Error> {
            record(format!(
                "conference.create(music-when-alone {})",
                options.music_when_alone
            ))?;
            Ok(STATE.with(|s| {
                let mut s = s.borrow_mut();
                s.conferences += 1;
                format!("conf-{}", s.conferences)
            }))
        }
        pub(crate) fn join(
            conference: &str,
            call: &str,
            options: JoinOptions,
        ) -> Result<(), Error> {
            let mut flags = String::new();
            if options.muted {
                flags.push_str(", muted");
            }
            if options.deafened {
                flags.push_str(", deafened");
            }
            record(format!("conference.join({conference}, {call}{flags})"))
        }
        pub(crate) fn leave(conference: &str, call: &str) -> Result<(), Error> {
            record(format!("conference.leave({conference}, {call})"))
        }
        pub(crate) fn kick(conference: &str, call: &str) -> Result<(), Error> {
            record(format!("conference.kick({conference}, {call})"))
        }
        pub(crate) fn mute(conference: &str, call: &str) -> Result<(), Error> {
            record(format!("conference.mute({conference}, {call})"))
        }
        pub(crate) fn unmute(conference: &str, call: &str) -> Result<(), Error> {
            record(format!("conference.unmute({conference}, {call})"))
        }
        pub(crate) fn deafen(conference: &str, call: &str) -> Result<(), Error> {
            record(format!("conference.deafen({conference}, {call})"))
        }
        pub(crate) fn undeafen(conference: &str, call: &str) -> Result<(), Error> {
            record(format!("conference.undeafen({conference}, {call})"))
        }
        pub(crate) fn say(
            conference: &str,
            text: &str,
            _options: &SayOptions,
        ) -> Result<u64, Error> {
            record(format!("conference.say({conference}, {text:?})")).map(|()| next_media())
        }
        pub(crate) fn play(
            conference: &str,
            file_id: &str,
            _options: PlayOptions,
        ) -> Result<u64, Error> {
            record(format!("conference.play({conference}, {file_id})")).map(|()| next_media())
        }
        pub(crate) fn stop_media(conference: &str) -> Result<(), Error> {
            record(format!("conference.stop-media({conference})"))
        }
        pub(crate) fn hangup(conference: &str) -> Result<(), Error> {
            record(format!("conference.hangup({conference})"))
        }
    }

    pub(crate) mod rec {
        use super::super::{STATE, record};
        use crate::bindings::pbx::app::types::{Error, RecordOptions, RecordTarget};

        pub(crate) fn start(
            target: &RecordTarget,
            options: &RecordOptions,
        ) -> Result<String, Error> {
            let target = match target {
                RecordTarget::Call(c) => format!("call {c}"),
                RecordTarget::Bridge(c) => format!("bridge {c}"),
                RecordTarget::Conference(c) => format!("conference {c}"),
            };
            let max = match options.max_duration_ms {
                0 => String::new(),
                ms => format!(", max {ms}ms"),
            };
            record(format!("record({target}{max})"))?;
            Ok(STATE.with(|s| {
                let mut s = s.borrow_mut();
                s.recordings += 1;
                format!("rec-{}", s.recordings)
            }))
        }
        pub(crate) fn stop(recording: &str) -> Result<(), Error> {
            record(format!("record.stop({recording})"))
        }
    }

    pub(crate) mod timers {
        use super::super::{STATE, record};
        use crate::bindings::pbx::app::types::Error;

        pub(crate) fn set_timer(ms: u32, tag: &str) -> Result<u64, Error> {
            record(format!("set-timer({ms}ms, {tag:?})"))?;
            Ok(STATE.with(|s| {
                let mut s = s.borrow_mut();
                s.timers += 1;
                s.timers
            }))
        }
        pub(crate) fn cancel_timer(timer: u64) {
            let _ = record(format!("cancel-timer({timer})"));
        }
    }

    pub(crate) mod log {
        use super::super::STATE;
        pub(crate) use crate::bindings::pbx::app::log::Level;

        pub(crate) fn write(level: Level, message: &str) {
            let level = match level {
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            };
            STATE.with(|s| s.borrow_mut().logs.push(format!("{level}: {message}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Call, Conference, Endpoint, Group, MuteDirection, dial_with, set_timer};

    #[test]
    fn records_requests_with_ids_in_order() {
        let call = Call::from_id("leg-1");
        call.answer().unwrap();
        assert_eq!(call.say("Hi").unwrap(), 1);
        assert_eq!(call.play_music().unwrap(), 2);
        let bob = dial_with(&Endpoint::user("bob"))
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap();
        assert_eq!(bob.id(), "out-1");
        call.connect(&bob).unwrap();
        call.mute(MuteDirection::Both).unwrap();
        let conf = Conference::create().unwrap();
        conf.join_with(&call).muted().send().unwrap();
        let group = Group::ring_all([Endpoint::user("a"), Endpoint::user("b")])
            .timeout(Duration::from_secs(20))
            .then_linear([Endpoint::phone("+1")]);
        assert_eq!(group.dial().unwrap().id(), "out-2");
        let rec = call
            .record()
            .max_duration(Duration::from_secs(20))
            .send()
            .unwrap();
        assert_eq!(rec.id(), "rec-1");
        assert_eq!(set_timer(Duration::from_millis(1500), "t").unwrap(), 1);
        crate::log::info!("done {}", 1);
        assert_eq!(
            take_requests(),
            [
                "answer(leg-1)",
                "say(leg-1, \"Hi\")",
                "play-music(leg-1)",
                "dial(user:bob, timeout 30000ms)",
                "connect(leg-1, out-1)",
                "mute(leg-1, MuteDirection::Both)",
                "conference.create(music-when-alone true)",
                "conference.join(conf-1, leg-1, muted)",
                "dial-group(ring-all [user:a, user:b] 20000ms; linear [+1] 0ms)",
                "record(call leg-1, max 20000ms)",
                "set-timer(1500ms, \"t\")",
            ]
        );
        assert_eq!(take_logs(), ["info: done 1"]);
        assert!(take_requests().is_empty());
    }

    #[test]
    fn records_hand_over_requests() {
        let call = Call::from_id("leg-1");
        call.hand_over("hello", "from handover").unwrap();
        fail_next("hand-over", Error::InvalidState("being handed over".into()));
        assert_eq!(
            call.hand_over("hello", ""),
            Err(Error::InvalidState("being handed over".into()))
        );
        call.refuse_hand_over("busy here").unwrap();
        assert_eq!(
            take_requests(),
            [
                "hand-over(leg-1, hello, \"from handover\")",
                "hand-over(leg-1, hello, \"\")",
                "refuse-hand-over(leg-1, \"busy here\")",
            ]
        );
        let info = handed_over_call_info("leg-2", "alice", "ho-x", "app_1", "data");
        let from = info.handed_over.as_ref().map(|h| (&*h.from_app, &*h.data));
        assert_eq!(from, Some(("app_1", "data")));
        assert_eq!(info.to, "ho-x");
        assert!(call_info("leg-3", "a", "b").handed_over.is_none());
    }

    #[test]
    fn planned_failures_refuse_the_next_request_of_that_name() {
        fail_next("say", Error::Failed("no speech engine".into()));
        let call = Call::from_id("leg-1");
        call.answer().unwrap();
        assert_eq!(
            call.say("Hi"),
            Err(Error::Failed("no speech engine".into()))
        );
        assert_eq!(call.say("Hi"), Ok(1));
        reset();
        assert!(take_requests().is_empty());
    }

    /// The app of `sdk/README.md`, with the test the README shows.
    mod readme {
        use crate::testing::{self, call_info, collected, finished};
        use crate::{App, Call, CallInfo, Collect, CollectEnd, Collected, MediaFinished, MediaId};

        #[derive(Default)]
        struct MyApp {
            goodbye: Option<MediaId>,
        }

        impl App for MyApp {
            fn on_call_received(&mut self, call: Call, info: &CallInfo) {
                crate::log::info!("call from {}", info.from);
                if call.answer().is_err() {
                    return;
                }
                let _ = call
                    .say_with("Enter your PIN, then hash.")
                    .stop_on_dtmf()
                    .send();
                let _ = call.collect_dtmf(Collect::max(4).terminator('#').timeout_ms(5000));
            }

            fn on_dtmf_collected(&mut self, call: Call, collected: &Collected) {
                let text = format!("You entered {}. Goodbye.", collected.digits);
                self.goodbye = call.say_with(&text).language("en").send().ok();
            }

            fn on_say_finished(&mut self, call: Call, finished: &MediaFinished) {
                if self.goodbye == Some(finished.id) {
                    let _ = call.hangup();
                }
            }
        }

        #[test]
        fn reads_the_pin_back_and_hangs_up() {
            let mut app = MyApp::default();
            let call = Call::from_id("leg-1");
            app.on_call_received(call.clone(), &call_info("leg-1", "alice", "1000"));
            assert_eq!(
                testing::take_requests(),
                [
                    "answer(leg-1)",
                    "say(leg-1, \"Enter your PIN, then hash.\")",
                    "collect-dtmf(leg-1, max 4, terminator #, timeout 5000ms)",
                ]
            );
            assert_eq!(testing::take_logs(), ["info: call from alice"]);
            app.on_dtmf_collected(call.clone(), &collected("1234", CollectEnd::Terminator));
            app.on_say_finished(call, &finished(2)); // media ids count from 1
            assert_eq!(
                testing::take_requests(),
                [
                    "say(leg-1, \"You entered 1234. Goodbye.\")",
                    "hangup(leg-1)"
                ]
            );
        }
    }
}
