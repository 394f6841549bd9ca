//! Host-side testing for apps: outside WebAssembly, every request an app makes is recorded
//! here instead of reaching a pbx, so an app's state machine can be driven event by event
//! with `cargo test --target <the build machine's triple>` (inside a component the real host
//! answers and nothing is recorded; the module still compiles so `clippy --all-targets` on
//! `wasm32-wasip2` checks app tests).
//!
//! Invariants: state is per thread (each `#[test]` has its own); requests are recorded in
//! the order made, as text like `answer(leg-1)`, `say(leg-1, "Hello")`,
//! `kv.set("calls", 1 bytes)` or `http.send(GET https://x/y)`; ids handed out are
//! predictable (`out-1`, `out-2`, ... for new legs, `conf-1`, `rec-1`, media, timer and HTTP
//! request ids from 1); a request refused with [`fail_next`] is recorded too. The key-value
//! store is an in-memory map per thread with the host's key and value limits (seed it with
//! [`set_kv`], read it with [`kv_value`]); configuration reads are answered from
//! [`set_config`] and [`set_secret`] and are not recorded.
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
use std::collections::BTreeMap;

pub mod sim;
pub use sim::{simulate, simulate_with_config};

use crate::Error;
use crate::bindings::pbx::app::capability_types::CapabilityError;
use crate::bindings::pbx::app::http::HttpResponse;
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
    http: u64,
    kv: BTreeMap<String, Vec<u8>>,
    config: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
    /// Set while [`simulate`] runs: the session mirror and the structured requests.
    sim: Option<sim::Mirror>,
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

/// Sets the configuration value `name` that `config::get` and `config::all` return
/// (replacing an earlier value of that name).
pub fn set_config(name: &str, value: &str) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.config.retain(|(n, _)| n != name);
        s.config.push((name.to_owned(), value.to_owned()));
    });
}

/// Sets the secret `name` that `config::secret` returns.
pub fn set_secret(name: &str, value: &str) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.secrets.retain(|(n, _)| n != name);
        s.secrets.push((name.to_owned(), value.to_owned()));
    });
}

/// Stores `value` under `key` in the stand-in key-value store, without recording a request.
pub fn set_kv(key: &str, value: &[u8]) {
    STATE.with(|s| s.borrow_mut().kv.insert(key.to_owned(), value.to_vec()));
}

/// The value under `key` in the stand-in key-value store.
pub fn kv_value(key: &str) -> Option<Vec<u8>> {
    STATE.with(|s| s.borrow().kv.get(key).cloned())
}

/// An HTTP response with `status` and a text body, for
/// [`App::on_http_response`](crate::App::on_http_response).
pub fn http_response(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
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
        sim::echo(&mut s.sim, &request);
        s.requests.push(request);
        match s.failures.iter().position(|(n, _)| *n == name) {
            Some(i) => Err(match s.failures.remove(i).1 {
                Error::InvalidState(m) => WitError::InvalidState(m),
                Error::InvalidArgument(m) => WitError::InvalidArgument(m),
                Error::NotFound(m) => WitError::NotFound(m),
                Error::Failed(m) | Error::NotGranted(m) | Error::TooLarge(m) => WitError::Failed(m),
            }),
            None => Ok(()),
        }
    })
}

/// Records a capability request; returns the planned failure for its name, if any.
fn record_capability(request: String) -> Result<(), CapabilityError> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let name = request.split('(').next().unwrap_or_default().to_owned();
        sim::echo(&mut s.sim, &request);
        s.requests.push(request);
        match s.failures.iter().position(|(n, _)| *n == name) {
            Some(i) => Err(match s.failures.remove(i).1 {
                Error::NotGranted(m) => CapabilityError::NotGranted(m),
                Error::TooLarge(m) => CapabilityError::TooLarge(m),
                Error::InvalidArgument(m) => CapabilityError::InvalidArgument(m),
                Error::InvalidState(m) | Error::NotFound(m) | Error::Failed(m) => {
                    CapabilityError::Failed(m)
                }
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
        use super::super::sim::{Need, check, known, refine};
        use super::super::{endpoint, next_leg, next_media, record};
        use crate::bindings::pbx::app::types::{
            CollectOptions, DialOptions, Endpoint, Error, GroupStage, MuteDirection, PlayOptions,
            RingStrategy, SayOptions,
        };
        use pbx_sim::{PlayOpts, SayOpts, SimRequest};

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
            check(call, Need::InboundUnanswered, "answer")?;
            record(format!("answer({call})"))?;
            refine(SimRequest::Answer { call: call.into() });
            Ok(())
        }
        pub(crate) fn early_media(call: &str) -> Result<(), Error> {
            check(call, Need::InboundUnanswered, "start early media")?;
            record(format!("early-media({call})"))?;
            refine(SimRequest::EarlyMedia { call: call.into() });
            Ok(())
        }
        pub(crate) fn reject(call: &str, status: u16) -> Result<(), Error> {
            check(call, Need::InboundUnanswered, "reject; use hangup")?;
            record(format!("reject({call}, {status})"))?;
            refine(SimRequest::Reject {
                call: call.into(),
                status,
            });
            Ok(())
        }
        pub(crate) fn hangup(call: &str) -> Result<(), Error> {
            check(call, Need::Live, "hang up")?;
            record(format!("hangup({call})"))?;
            refine(SimRequest::Hangup { call: call.into() });
            Ok(())
        }
        pub(crate) fn say(call: &str, text: &str, options: &SayOptions) -> Result<u64, Error> {
            check(call, Need::Media, "say")?;
            record(format!("say({call}, {text:?})"))?;
            let id = next_media();
            refine(SimRequest::Say {
                call: call.into(),
                id,
                text: text.into(),
                opts: SayOpts {
                    loops: options.loop_count,
                    stop_on_dtmf: options.stop_on_dtmf,
                    language: options.language.clone(),
                },
            });
            Ok(id)
        }
        pub(crate) fn play(call: &str, file_id: &str, options: PlayOptions) -> Result<u64, Error> {
            check(call, Need::Media, "play")?;
            record(format!("play({call}, {file_id})"))?;
            let id = next_media();
            refine(SimRequest::Play {
                call: call.into(),
                id,
                file: file_id.into(),
                opts: PlayOpts {
                    loops: options.loop_count,
                    offset_ms: options.offset_ms,
                    timeout_ms: options.timeout_ms,
                    stop_on_dtmf: options.stop_on_dtmf,
                },
            });
            Ok(id)
        }
        pub(crate) fn play_music(call: &str, file_id: Option<&str>) -> Result<u64, Error> {
            check(call, Need::Media, "play music")?;
            let file = file_id.map(|f| format!(", {f}")).unwrap_or_default();
            record(format!("play-music({call}{file})"))?;
            let id = next_media();
            refine(SimRequest::PlayMusic {
                call: call.into(),
                id,
                file: file_id.map(String::from),
            });
            Ok(id)
        }
        pub(crate) fn stop_media(call: &str) -> Result<(), Error> {
            check(call, Need::Media, "stop media")?;
            record(format!("stop-media({call})"))?;
            refine(SimRequest::StopMedia { call: call.into() });
            Ok(())
        }
        pub(crate) fn collect_dtmf(call: &str, options: &CollectOptions) -> Result<(), Error> {
            check(call, Need::Media, "collect digits")?;
            let terminator = options
                .terminator
                .as_deref()
                .map(|t| format!(", terminator {t}"))
                .unwrap_or_default();
            record(format!(
                "collect-dtmf({call}, max {}{terminator}, timeout {}ms)",
                options.max_digits, options.timeout_ms
            ))?;
            refine(SimRequest::Collect {
                call: call.into(),
                max_digits: options.max_digits,
                terminator: options.terminator.as_deref().and_then(|t| t.chars().next()),
                timeout_ms: options.timeout_ms,
            });
            Ok(())
        }
        pub(crate) fn send_dtmf(call: &str, digits: &str, _duration_ms: u32) -> Result<(), Error> {
            check(call, Need::Answered, "send digits")?;
            record(format!("send-dtmf({call}, {digits})"))?;
            refine(SimRequest::SendDtmf {
                call: call.into(),
                digits: digits.into(),
            });
            Ok(())
        }
        pub(crate) fn dial(target: &Endpoint, options: &DialOptions) -> Result<String, Error> {
            record(format!("dial({}{})", endpoint(target), dial_args(options)))?;
            let new_leg = next_leg();
            refine(SimRequest::Dial {
                new_leg: new_leg.clone(),
                endpoint: endpoint(target),
                timeout_ms: options.connect_timeout_ms,
            });
            Ok(new_leg)
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
            known(a)?;
            known(b)?;
            check(a, Need::Answered, "connect")?;
            check(b, Need::Answered, "connect")?;
            record(format!("connect({a}, {b})"))?;
            refine(SimRequest::Connect {
                a: a.into(),
                b: b.into(),
            });
            Ok(())
        }
        pub(crate) fn disconnect(call: &str) -> Result<(), Error> {
            check(call, Need::Answered, "disconnect")?;
            record(format!("disconnect({call})"))?;
            refine(SimRequest::Disconnect { call: call.into() });
            Ok(())
        }
        pub(crate) fn dial_and_connect(
            call: &str,
            target: &Endpoint,
            options: &DialOptions,
        ) -> Result<String, Error> {
            check(call, Need::InboundUnanswered, "dial and connect")?;
            record(format!(
                "dial-and-connect({call}, {}{})",
                endpoint(target),
                dial_args(options)
            ))?;
            let new_leg = next_leg();
            refine(SimRequest::DialAndConnect {
                call: call.into(),
                new_leg: new_leg.clone(),
                endpoint: endpoint(target),
                timeout_ms: options.connect_timeout_ms,
            });
            Ok(new_leg)
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
        use super::super::sim::refine;
        use super::super::{STATE, record};
        use crate::bindings::pbx::app::types::Error;
        use pbx_sim::SimRequest;

        pub(crate) fn set_timer(ms: u32, tag: &str) -> Result<u64, Error> {
            record(format!("set-timer({ms}ms, {tag:?})"))?;
            let id = STATE.with(|s| {
                let mut s = s.borrow_mut();
                s.timers += 1;
                s.timers
            });
            refine(SimRequest::SetTimer {
                id,
                ms,
                tag: tag.into(),
            });
            Ok(id)
        }
        pub(crate) fn cancel_timer(timer: u64) {
            if record(format!("cancel-timer({timer})")).is_ok() {
                refine(SimRequest::CancelTimer { id: timer });
            }
        }
    }

    pub(crate) mod kv {
        use super::super::{STATE, record_capability};
        use crate::bindings::pbx::app::capability_types::CapabilityError;

        /// The host's limits, so that app tests meet the refusals a pbx would give.
        fn check_key(key: &str) -> Result<(), CapabilityError> {
            if key.is_empty() || key.len() > 256 {
                return Err(CapabilityError::InvalidArgument(format!(
                    "a key has 1 to 256 bytes, not {}",
                    key.len()
                )));
            }
            Ok(())
        }

        pub(crate) fn get(key: &str) -> Result<Option<Vec<u8>>, CapabilityError> {
            record_capability(format!("kv.get({key:?})"))?;
            check_key(key)?;
            Ok(STATE.with(|s| s.borrow().kv.get(key).cloned()))
        }
        pub(crate) fn set(key: &str, value: &[u8]) -> Result<(), CapabilityError> {
            record_capability(format!("kv.set({key:?}, {} bytes)", value.len()))?;
            check_key(key)?;
            if value.len() > 64 * 1024 {
                return Err(CapabilityError::TooLarge(format!(
                    "a value has at most 65536 bytes, not {}",
                    value.len()
                )));
            }
            STATE.with(|s| s.borrow_mut().kv.insert(key.to_owned(), value.to_vec()));
            Ok(())
        }
        pub(crate) fn delete(key: &str) -> Result<bool, CapabilityError> {
            record_capability(format!("kv.delete({key:?})"))?;
            check_key(key)?;
            Ok(STATE.with(|s| s.borrow_mut().kv.remove(key).is_some()))
        }
        pub(crate) fn list_keys(prefix: &str) -> Result<Vec<String>, CapabilityError> {
            record_capability(format!("kv.list-keys({prefix:?})"))?;
            Ok(STATE.with(|s| {
                s.borrow()
                    .kv
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .take(1000)
                    .cloned()
                    .collect()
            }))
        }
    }

    pub(crate) mod http {
        use super::super::{STATE, record_capability};
        use crate::bindings::pbx::app::capability_types::CapabilityError;
        use crate::bindings::pbx::app::http::HttpRequest;

        pub(crate) fn send(request: &HttpRequest) -> Result<u64, CapabilityError> {
            let body = match &request.body {
                Some(b) => format!(", {} bytes", b.len()),
                None => String::new(),
            };
            record_capability(format!(
                "http.send({} {}{body})",
                request.method, request.url
            ))?;
            let id = STATE.with(|s| {
                let mut s = s.borrow_mut();
                s.http += 1;
                s.http
            });
            super::super::sim::refine(pbx_sim::SimRequest::Http {
                id,
                method: request.method.clone(),
                url: request.url.clone(),
            });
            Ok(id)
        }
    }

    pub(crate) mod config {
        use super::super::STATE;
        use crate::bindings::pbx::app::capability_types::CapabilityError;

        pub(crate) fn get(name: &str) -> Option<String> {
            STATE.with(|s| {
                s.borrow()
                    .config
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
        }
        pub(crate) fn secret(name: &str) -> Result<String, CapabilityError> {
            STATE.with(|s| {
                s.borrow()
                    .secrets
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        CapabilityError::InvalidArgument(format!(
                            "no secret `{name}` is set for this app"
                        ))
                    })
            })
        }
        pub(crate) fn all() -> Vec<(String, String)> {
            STATE.with(|s| s.borrow().config.clone())
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
            super::super::sim::log(level, message);
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

    #[test]
    fn records_capability_requests_and_keeps_kv_per_thread() {
        use crate::{config, http, kv};
        set_config("greeting", "hi");
        set_secret("token", "t0k");
        set_kv("seed", b"1");
        assert_eq!(kv::get_string("seed").unwrap().as_deref(), Some("1"));
        kv::set("calls", b"3").unwrap();
        assert_eq!(kv::get("calls").unwrap(), Some(b"3".to_vec()));
        assert_eq!(kv::list_keys("").unwrap(), ["calls", "seed"]);
        assert!(kv::delete("calls").unwrap());
        assert_eq!(kv_value("calls"), None);
        assert!(matches!(kv::set("", b"x"), Err(Error::InvalidArgument(_))));
        fail_next("kv.set", Error::NotGranted("kv is not enabled".into()));
        assert_eq!(
            kv::set("k", b"v"),
            Err(Error::NotGranted("kv is not enabled".into()))
        );
        assert_eq!(http::get("https://x/y").send().unwrap(), 1);
        assert_eq!(http::post("https://x/z").json("{}").send().unwrap(), 2);
        assert_eq!(config::get("greeting").as_deref(), Some("hi"));
        assert_eq!(config::get("token"), None);
        assert_eq!(config::secret("token").unwrap(), "t0k");
        assert!(matches!(
            config::secret("nope"),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(config::all(), [("greeting".to_string(), "hi".to_string())]);
        assert_eq!(
            take_requests(),
            [
                "kv.get(\"seed\")",
                "kv.set(\"calls\", 1 bytes)",
                "kv.get(\"calls\")",
                "kv.list-keys(\"\")",
                "kv.delete(\"calls\")",
                "kv.set(\"\", 1 bytes)",
                "kv.set(\"k\", 1 bytes)",
                "http.send(GET https://x/y)",
                "http.send(POST https://x/z, 2 bytes)",
            ]
        );
        let response = http_response(200, "ok");
        assert!(response.is_success());
        assert_eq!(response.text(), Some("ok"));
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
