//! The simulator's own plain event and request types: what the engine delivers to an app and
//! what the app asked for, independent of wasmtime and of the SDK's bindings.
//!
//! The words for legs and their ends (direction, phase, who hung up and why, how a
//! collection ended) are the app contract's own (`pbx-app`, re-exported here), so a driver
//! hands them to the runtime or the SDK's stand-in unconverted.
//!
//! Invariants: leg ids in events and requests are the ids the app sees (the first leg's id
//! from the scenario, dialled legs' ids as the host returned them to the app); the engine
//! never puts a leg in `LegPhase::HandingOver` (it simulates no hand-over); every `Display`
//! form is one line, and is what transcripts print and `expect request` matches.

use std::fmt;

pub use pbx_app::{CollectEnd, Direction, HangupBy, HangupReason, LegPhase};

/// One leg as the engine sees it, for [`crate::AppDriver::sync_legs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegView {
    /// The id the app knows the leg by.
    pub id: String,
    /// Which way it was set up.
    pub direction: Direction,
    /// Its phase.
    pub phase: LegPhase,
}

/// How a leg ended, given with [`SimEvent::Finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ended {
    /// Who ended it.
    pub by: HangupBy,
    /// Why.
    pub reason: HangupReason,
    /// The SIP status that ended it, where there was one.
    pub sip_status: Option<u16>,
    /// True when the leg was answered before it ended.
    pub answered: bool,
}

/// How a `say` or `play` ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaEnd {
    /// The id the host returned for the request.
    pub id: u64,
    /// True when every loop played to its end.
    pub completed: bool,
    /// The key that stopped it (`stop-on-dtmf`).
    pub digit: Option<String>,
}

/// The call that starts the session, as `on-call-received` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The first leg's id.
    pub id: String,
    /// Inbound for a caller, outbound for a call placed through the API.
    pub direction: Direction,
    /// The caller.
    pub from: String,
    /// The called number or user.
    pub to: String,
    /// The caller's display name.
    pub caller_name: Option<String>,
    /// The app's configuration values (name, value).
    pub config: Vec<(String, String)>,
}

/// Something the engine delivers to the app: one handler call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    /// `on-call-received`.
    CallReceived(CallInfo),
    /// `on-call-ringing`: a dialled leg rings.
    Ringing {
        /// The leg.
        call: String,
    },
    /// `on-call-answered`: a dialled leg answered.
    Answered {
        /// The leg.
        call: String,
    },
    /// `on-dtmf`.
    Dtmf {
        /// The leg.
        call: String,
        /// The key.
        digit: String,
    },
    /// `on-say-finished`.
    SayFinished {
        /// The leg.
        call: String,
        /// Which request and how it ended.
        finished: MediaEnd,
    },
    /// `on-play-finished` (also for music).
    PlayFinished {
        /// The leg.
        call: String,
        /// Which request and how it ended.
        finished: MediaEnd,
    },
    /// `on-dtmf-collected`.
    Collected {
        /// The leg.
        call: String,
        /// The digits, without the terminator.
        digits: String,
        /// Why it finished.
        end: CollectEnd,
    },
    /// `on-call-finished`, the last event of a leg.
    Finished {
        /// The leg.
        call: String,
        /// How it ended.
        ended: Ended,
    },
    /// `on-timer`.
    Timer {
        /// The id `set-timer` returned.
        id: u64,
        /// The tag it was set with.
        tag: String,
    },
    /// `on-http-response`: the scenario's answer to an HTTP request.
    HttpResponse {
        /// The id `http.send` returned.
        id: u64,
        /// The response, or why there was none (`timeout`, `too-large`, or a message taken
        /// as a connection failure).
        result: Result<HttpReply, String>,
    },
}

/// A scripted HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::CallReceived(info) => {
                let outbound = match info.direction {
                    Direction::Inbound => "",
                    Direction::Outbound => " (outbound)",
                };
                write!(
                    f,
                    "call-received {} {} -> {}{outbound}",
                    info.id, info.from, info.to
                )
            }
            SimEvent::Ringing { call } => write!(f, "ringing {call}"),
            SimEvent::Answered { call } => write!(f, "answered {call}"),
            SimEvent::Dtmf { call, digit } => write!(f, "dtmf {call} {digit}"),
            SimEvent::SayFinished { call, finished } => {
                write!(f, "say-finished {call} {}", media_end(finished))
            }
            SimEvent::PlayFinished { call, finished } => {
                write!(f, "play-finished {call} {}", media_end(finished))
            }
            SimEvent::Collected { call, digits, end } => {
                write!(f, "dtmf-collected {call} {digits:?} ({})", end.as_str())
            }
            SimEvent::Finished { call, ended } => {
                write!(
                    f,
                    "call-finished {call} by {} ({})",
                    ended.by.as_str(),
                    ended.reason.as_str()
                )?;
                if let Some(status) = ended.sip_status {
                    write!(f, " sip {status}")?;
                }
                if ended.answered {
                    write!(f, " answered")?;
                }
                Ok(())
            }
            SimEvent::Timer { id, tag } => write!(f, "timer {id} {tag:?}"),
            SimEvent::HttpResponse { id, result } => match result {
                Ok(reply) => write!(f, "http-response #{id} {} {:?}", reply.status, reply.body),
                Err(error) => write!(f, "http-response #{id} failed: {error}"),
            },
        }
    }
}

fn media_end(m: &MediaEnd) -> String {
    let how = if m.completed {
        "completed".to_owned()
    } else {
        match &m.digit {
            Some(d) => format!("interrupted by {d}"),
            None => "interrupted".to_owned(),
        }
    };
    format!("#{} {how}", m.id)
}

/// Options of a `say` that change how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SayOpts {
    /// Times to speak the text (0 counts as 1).
    pub loops: u32,
    /// Stop at the caller's first key.
    pub stop_on_dtmf: bool,
    /// The language tag, if any.
    pub language: Option<String>,
}

/// Options of a `play`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayOpts {
    /// Times to play the file (0 counts as 1).
    pub loops: u32,
    /// Where the first loop starts, in milliseconds.
    pub offset_ms: u32,
    /// Stop after this many milliseconds.
    pub timeout_ms: Option<u32>,
    /// Stop at the caller's first key.
    pub stop_on_dtmf: bool,
}

/// A log line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

impl LogLevel {
    /// The WIT name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One thing the app asked the host to do during an event, with the ids the host returned
/// to it (media, timer and new-leg ids), so the engine can report their ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimRequest {
    /// Answer an inbound leg.
    Answer {
        /// The leg.
        call: String,
    },
    /// Start early media on an inbound leg.
    EarlyMedia {
        /// The leg.
        call: String,
    },
    /// Reject an unanswered inbound leg.
    Reject {
        /// The leg.
        call: String,
        /// The SIP final status.
        status: u16,
    },
    /// End a leg.
    Hangup {
        /// The leg.
        call: String,
    },
    /// Speak text.
    Say {
        /// The leg.
        call: String,
        /// The media id returned.
        id: u64,
        /// The text.
        text: String,
        /// Options.
        opts: SayOpts,
    },
    /// Play an uploaded file.
    Play {
        /// The leg.
        call: String,
        /// The media id returned.
        id: u64,
        /// The file id.
        file: String,
        /// Options.
        opts: PlayOpts,
    },
    /// Play music until stopped.
    PlayMusic {
        /// The leg.
        call: String,
        /// The media id returned.
        id: u64,
        /// A file, or the built-in music.
        file: Option<String>,
    },
    /// Stop the leg's media and drop what is queued.
    StopMedia {
        /// The leg.
        call: String,
    },
    /// Collect digits.
    Collect {
        /// The leg.
        call: String,
        /// Finish after this many digits.
        max_digits: u32,
        /// Finish at this key.
        terminator: Option<char>,
        /// The inter-digit timeout (also before the first digit), in milliseconds.
        timeout_ms: u32,
    },
    /// Send digits to a leg.
    SendDtmf {
        /// The leg.
        call: String,
        /// The keys.
        digits: String,
    },
    /// Set a timer.
    SetTimer {
        /// The timer id returned.
        id: u64,
        /// After this many milliseconds.
        ms: u32,
        /// The tag.
        tag: String,
    },
    /// Cancel a timer.
    CancelTimer {
        /// The timer.
        id: u64,
    },
    /// Dial a new leg (`dial`, `dial-group`, or the new leg of `transfer` and `consult`).
    Dial {
        /// The new leg's id returned.
        new_leg: String,
        /// Where it goes, printed as `user:bob`, `sip:...`, `+1555` or a group.
        endpoint: String,
        /// How long it may ring before it ends with `noanswer`, in milliseconds; 0 means
        /// the host's default of 60 000.
        timeout_ms: u32,
    },
    /// Dial a new leg for the unanswered inbound `call`, answering and bridging `call` when
    /// it answers.
    DialAndConnect {
        /// The inbound leg.
        call: String,
        /// The new leg's id returned.
        new_leg: String,
        /// Where it goes.
        endpoint: String,
        /// How long it may ring, as for `Dial`.
        timeout_ms: u32,
    },
    /// Bridge two legs.
    Connect {
        /// One leg.
        a: String,
        /// The other.
        b: String,
    },
    /// Take a leg out of its bridge.
    Disconnect {
        /// The leg.
        call: String,
    },
    /// An outbound HTTP request (`http.send`); the scenario answers it with
    /// `http-response`.
    Http {
        /// The request id returned.
        id: u64,
        /// The method, such as `GET`.
        method: String,
        /// The URL.
        url: String,
    },
    /// A log line.
    Log {
        /// Its level.
        level: LogLevel,
        /// The text.
        message: String,
    },
    /// Anything else, recorded and echoed as given.
    Other(String),
}

impl SimRequest {
    /// The leg the request acts on, if it names one.
    pub fn call(&self) -> Option<&str> {
        match self {
            SimRequest::Answer { call }
            | SimRequest::EarlyMedia { call }
            | SimRequest::Reject { call, .. }
            | SimRequest::Hangup { call }
            | SimRequest::Say { call, .. }
            | SimRequest::Play { call, .. }
            | SimRequest::PlayMusic { call, .. }
            | SimRequest::StopMedia { call }
            | SimRequest::Collect { call, .. }
            | SimRequest::SendDtmf { call, .. }
            | SimRequest::DialAndConnect { call, .. }
            | SimRequest::Disconnect { call } => Some(call),
            SimRequest::Connect { a, .. } => Some(a),
            SimRequest::Dial { new_leg, .. } => Some(new_leg),
            SimRequest::SetTimer { .. }
            | SimRequest::CancelTimer { .. }
            | SimRequest::Http { .. }
            | SimRequest::Log { .. }
            | SimRequest::Other(_) => None,
        }
    }
}

impl fmt::Display for SimRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimRequest::Answer { call } => write!(f, "answer({call})"),
            SimRequest::EarlyMedia { call } => write!(f, "early-media({call})"),
            SimRequest::Reject { call, status } => write!(f, "reject({call}, {status})"),
            SimRequest::Hangup { call } => write!(f, "hangup({call})"),
            SimRequest::Say {
                call,
                id,
                text,
                opts,
            } => {
                write!(f, "say({call}, {text:?}) #{id}")?;
                if opts.loops > 1 {
                    write!(f, " x{}", opts.loops)?;
                }
                if opts.stop_on_dtmf {
                    write!(f, " stop-on-dtmf")?;
                }
                Ok(())
            }
            SimRequest::Play {
                call,
                id,
                file,
                opts,
            } => {
                write!(f, "play({call}, {file}) #{id}")?;
                if opts.loops > 1 {
                    write!(f, " x{}", opts.loops)?;
                }
                if opts.stop_on_dtmf {
                    write!(f, " stop-on-dtmf")?;
                }
                Ok(())
            }
            SimRequest::PlayMusic { call, id, file } => match file {
                Some(file) => write!(f, "play-music({call}, {file}) #{id}"),
                None => write!(f, "play-music({call}) #{id}"),
            },
            SimRequest::StopMedia { call } => write!(f, "stop-media({call})"),
            SimRequest::Collect {
                call,
                max_digits,
                terminator,
                timeout_ms,
            } => {
                write!(f, "collect-dtmf({call}, max {max_digits}")?;
                if let Some(t) = terminator {
                    write!(f, ", terminator {t}")?;
                }
                write!(f, ", timeout {timeout_ms}ms)")
            }
            SimRequest::SendDtmf { call, digits } => write!(f, "send-dtmf({call}, {digits})"),
            SimRequest::SetTimer { id, ms, tag } => write!(f, "set-timer({ms}ms, {tag:?}) #{id}"),
            SimRequest::CancelTimer { id } => write!(f, "cancel-timer({id})"),
            SimRequest::Dial {
                new_leg, endpoint, ..
            } => write!(f, "dial({endpoint}) -> {new_leg}"),
            SimRequest::DialAndConnect {
                call,
                new_leg,
                endpoint,
                ..
            } => write!(f, "dial-and-connect({call}, {endpoint}) -> {new_leg}"),
            SimRequest::Connect { a, b } => write!(f, "connect({a}, {b})"),
            SimRequest::Disconnect { call } => write!(f, "disconnect({call})"),
            SimRequest::Http { id, method, url } => write!(f, "http.send({method} {url}) #{id}"),
            SimRequest::Log { level, message } => write!(f, "log {}: {message}", level.as_str()),
            SimRequest::Other(text) => f.write_str(text),
        }
    }
}
