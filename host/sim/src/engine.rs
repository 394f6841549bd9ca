//! The simulation engine: a model of the pbx host good enough for IVR logic (legs and their
//! phases, answer, reject, hangup, say and play with virtual durations, stop-on-DTMF, digit
//! collection, timers, dialled legs with scripted outcomes), driven in virtual time.
//!
//! Invariants:
//! - Sans-IO and deterministic: time is a counter of virtual milliseconds, nothing sleeps,
//!   and the same scenario and app always give the same transcript.
//! - Events reach the app one at a time, and the requests an event returned are carried out
//!   in order before the next event is delivered, as in `host/pbx/src/call/session.rs`.
//! - The host's orders are kept: a key gives `on-dtmf`, then the finished event of the media
//!   it stopped, then the collection it ended; a leg that ends reports its stopped media (in
//!   queue order), then its cancelled collection, then `on-call-finished`, exactly once and
//!   last; the end of the first leg ends every other leg after it.
//! - Something scheduled (a media end, a timeout, a timer) fires only if what it belongs to
//!   is still current when its time comes; stale entries are dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::scenario::{Expect, LegRef, Line, Scenario, Step};
use crate::transcript::{Failure, Transcript};
use crate::types::{
    CallInfo, CollectEnd, Direction, Ended, HangupBy, HangupReason, HttpReply, LegPhase, LegView,
    MediaEnd, SimEvent, SimRequest,
};

/// Virtual duration of speech per character.
const SAY_MS_PER_CHAR: u64 = 60;
/// Shortest virtual duration of one spoken text.
const SAY_MIN_MS: u64 = 500;
/// Duration of a file the scenario's `file` table does not list.
const DEFAULT_FILE_MS: u64 = 1000;
/// The ring time of a dial whose options say 0 (the host's default).
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 60_000;

/// An app under test, as the engine sees it: one handler call per event.
pub trait AppDriver {
    /// Delivers one event; returns the requests the app made during it, in order, with the
    /// ids the host returned, or why the app failed (a trap, a panic): the engine then ends
    /// the session as the host does, with `app-error`.
    fn deliver(&mut self, event: &SimEvent) -> Result<Vec<SimRequest>, String>;

    /// Called before every delivery with every leg's phase, so that a driver with its own
    /// mirror of the session (the wasm runtime) judges the app's requests as the host would.
    fn sync_legs(&mut self, legs: &[LegView]) {
        let _ = legs;
    }
}

/// Runs `scenario` against `driver` to the end and returns what happened.
pub fn run(scenario: &Scenario, driver: &mut dyn AppDriver) -> Transcript {
    let mut sim = Simulation::new(scenario);
    while let Some(event) = sim.poll_event() {
        driver.sync_legs(&sim.legs());
        let result = driver.deliver(&event);
        sim.handle_response(result);
    }
    sim.finish()
}

/// A simulation in progress, for drivers that cannot implement the synchronous
/// [`AppDriver`] (an async runtime): pull each event with [`Simulation::poll_event`], hand
/// the app's answer back with [`Simulation::handle_response`], then call
/// [`Simulation::finish`].
#[derive(Debug)]
pub struct Simulation {
    steps: Vec<Line>,
    files: HashMap<String, u64>,
    config: Vec<(String, String)>,
    next_step: usize,
    /// The line of the step being carried out (0 before the first).
    line: usize,
    now: u64,
    advancing_to: Option<u64>,
    seq: u64,
    agenda: BTreeMap<(u64, u64), Happening>,
    deliveries: VecDeque<SimEvent>,
    awaiting: bool,
    legs: Vec<Leg>,
    first_leg: Option<String>,
    dialled: u32,
    outcomes: HashMap<String, Outcome>,
    timers: BTreeMap<u64, String>,
    http: Vec<u64>,
    requests: Vec<SimRequest>,
    events: Vec<SimEvent>,
    cursor: usize,
    log_cursor: usize,
    event_cursor: usize,
    lines: Vec<String>,
    failures: Vec<Failure>,
    expectations: usize,
    app_error: Option<(usize, String)>,
    app_error_expected: bool,
}

/// Something due at a virtual time.
#[derive(Debug, Clone)]
enum Happening {
    MediaEnd { leg: String, id: u64 },
    CollectTimeout { leg: String, generation: u64 },
    Timer { id: u64 },
    Digit { leg: String, digit: char },
    Ringing { leg: String },
    Outcome { leg: String, outcome: Outcome },
    ConnectTimeout { leg: String },
}

/// What a dialled leg's callee does.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Answer { after_ms: u64 },
    Reject { status: u16, after_ms: u64 },
}

impl Outcome {
    fn after_ms(self) -> u64 {
        match self {
            Outcome::Answer { after_ms } | Outcome::Reject { after_ms, .. } => after_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Say,
    Play,
}

#[derive(Debug, Clone)]
struct Item {
    id: u64,
    kind: Kind,
    /// `None` plays until stopped (music).
    duration_ms: Option<u64>,
    stop_on_dtmf: bool,
    /// False when a `timeout-ms` cuts it short.
    completes: bool,
}

#[derive(Debug, Clone)]
struct Collecting {
    max_digits: u32,
    terminator: Option<char>,
    timeout_ms: u64,
    digits: String,
    deadline: u64,
}

#[derive(Debug)]
struct Leg {
    id: String,
    alias: String,
    direction: Direction,
    phase: LegPhase,
    answered: bool,
    current: Option<Item>,
    queue: VecDeque<Item>,
    collecting: Option<Collecting>,
    collect_generation: u64,
    /// The inbound leg answered and bridged when this dialled leg answers.
    answer_on_answer: Option<String>,
    bridge: Option<String>,
    ended: Option<Ended>,
}

impl Leg {
    fn new(id: String, alias: String, direction: Direction) -> Leg {
        Leg {
            id,
            alias,
            phase: match direction {
                Direction::Inbound => LegPhase::Ringing,
                Direction::Outbound => LegPhase::Dialing,
            },
            direction,
            answered: false,
            current: None,
            queue: VecDeque::new(),
            collecting: None,
            collect_generation: 0,
            answer_on_answer: None,
            bridge: None,
            ended: None,
        }
    }

    fn live(&self) -> bool {
        self.ended.is_none()
    }

    fn has_media(&self) -> bool {
        self.live() && matches!(self.phase, LegPhase::EarlyMedia | LegPhase::Answered)
    }
}

impl Simulation {
    /// A simulation of `scenario` at virtual time 0, before its first step.
    pub fn new(scenario: &Scenario) -> Simulation {
        Simulation {
            steps: scenario.steps.clone(),
            files: scenario.files.iter().cloned().collect(),
            config: scenario.config.clone(),
            next_step: 0,
            line: 0,
            now: 0,
            advancing_to: None,
            seq: 0,
            agenda: BTreeMap::new(),
            deliveries: VecDeque::new(),
            awaiting: false,
            legs: Vec::new(),
            first_leg: None,
            dialled: 0,
            outcomes: HashMap::new(),
            timers: BTreeMap::new(),
            http: Vec::new(),
            requests: Vec::new(),
            events: Vec::new(),
            cursor: 0,
            log_cursor: 0,
            event_cursor: 0,
            lines: Vec::new(),
            failures: Vec::new(),
            expectations: 0,
            app_error: None,
            app_error_expected: false,
        }
    }

    /// The virtual time, in milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Every leg the session has had, with its phase as the host's mirror would hold it.
    pub fn legs(&self) -> Vec<LegView> {
        self.legs
            .iter()
            .map(|l| LegView {
                id: l.id.clone(),
                direction: l.direction,
                phase: if l.live() {
                    l.phase
                } else {
                    LegPhase::Finished
                },
            })
            .collect()
    }

    /// Runs the scenario up to the next event for the app and returns it, or `None` when the
    /// scenario has ended. Answer each event with [`Simulation::handle_response`] before
    /// polling again (an unanswered event counts as answered with no requests).
    pub fn poll_event(&mut self) -> Option<SimEvent> {
        if self.awaiting {
            self.handle_response(Ok(Vec::new()));
        }
        loop {
            if let Some(event) = self.deliveries.pop_front() {
                self.say_line(format!("-> {}", self.show(&event.to_string())));
                self.events.push(event.clone());
                self.awaiting = true;
                return Some(event);
            }
            if let Some(entry) = self.agenda.first_entry()
                && entry.key().0 <= self.now
            {
                let happening = entry.remove();
                self.happen(happening);
                continue;
            }
            if let Some(target) = self.advancing_to {
                match self.agenda.keys().next() {
                    Some(&(at, _)) if at <= target => self.now = at,
                    _ => {
                        self.now = target;
                        self.advancing_to = None;
                    }
                }
                continue;
            }
            if let Some(line) = self.steps.get(self.next_step).cloned() {
                self.next_step += 1;
                self.run_step(&line);
                continue;
            }
            return None;
        }
    }

    /// The app's answer to the event last returned by [`Simulation::poll_event`]: the
    /// requests it made (carried out now, in order) or why it failed.
    pub fn handle_response(&mut self, result: Result<Vec<SimRequest>, String>) {
        self.awaiting = false;
        match result {
            Ok(requests) => {
                for request in requests {
                    self.say_line(format!("<- {}", self.show(&request.to_string())));
                    self.requests.push(request.clone());
                    self.apply(request);
                }
            }
            Err(message) => self.app_failed(message),
        }
    }

    /// Ends the run and returns the transcript.
    pub fn finish(mut self) -> Transcript {
        if let Some((line, message)) = self.app_error.clone()
            && !self.app_error_expected
        {
            self.failures.push(Failure {
                line,
                step: String::new(),
                message: format!("the app failed: {message}"),
            });
        }
        let summary = if self.failures.is_empty() {
            format!("passed ({} expectations)", self.expectations)
        } else {
            format!(
                "FAILED ({} of {} expectations failed{})",
                self.failures.iter().filter(|f| !f.step.is_empty()).count(),
                self.expectations,
                if self.app_error.is_some() && !self.app_error_expected {
                    "; the app failed"
                } else {
                    ""
                }
            )
        };
        self.say_line(summary);
        Transcript::new(self.lines, self.requests, self.events, self.failures)
    }

    // ----- steps --------------------------------------------------------------------------

    fn run_step(&mut self, line: &Line) {
        self.line = line.number;
        if !matches!(line.step, Step::Expect(_)) {
            self.say_line(format!(":: line {}: {}", line.number, line.source));
        }
        match &line.step {
            Step::Call {
                id,
                from,
                to,
                name,
                direction,
            } => {
                let leg = Leg::new(id.clone(), id.clone(), *direction);
                self.legs.push(leg);
                self.first_leg = Some(id.clone());
                self.deliver(SimEvent::CallReceived(CallInfo {
                    id: id.clone(),
                    direction: *direction,
                    from: from.clone(),
                    to: to.clone(),
                    caller_name: name.clone(),
                    config: self.config.clone(),
                }));
                if *direction == Direction::Outbound {
                    self.start_ringing(id, 0);
                }
            }
            Step::Wait(ms) => self.advancing_to = Some(self.now + ms),
            Step::Press {
                digits,
                gap_ms,
                leg,
            } => {
                let Some(call) = self.resolve_step_leg(leg.as_ref()) else {
                    return;
                };
                for (i, digit) in digits.iter().enumerate() {
                    let at = self.now + i as u64 * gap_ms;
                    self.schedule(
                        at,
                        Happening::Digit {
                            leg: call.clone(),
                            digit: *digit,
                        },
                    );
                }
                let last = self.now + (digits.len() as u64).saturating_sub(1) * gap_ms;
                self.advancing_to = Some(last);
            }
            Step::Hangup(leg) => {
                let Some(call) = self.resolve_step_leg(leg.as_ref()) else {
                    return;
                };
                self.remote_hangup(&call);
            }
            Step::Answer { leg, after_ms } => {
                self.script(
                    leg,
                    Outcome::Answer {
                        after_ms: *after_ms,
                    },
                );
            }
            Step::Reject {
                leg,
                status,
                after_ms,
            } => {
                self.script(
                    leg,
                    Outcome::Reject {
                        status: *status,
                        after_ms: *after_ms,
                    },
                );
            }
            Step::HttpResponse { id, result } => {
                if let Some(pos) = self.http.iter().position(|h| h == id) {
                    self.http.remove(pos);
                    let result = result
                        .clone()
                        .map(|(status, body)| HttpReply { status, body });
                    self.deliver(SimEvent::HttpResponse { id: *id, result });
                } else {
                    self.note(&format!("ignored: no HTTP request #{id} in flight"));
                }
            }
            Step::Expect(expect) => {
                self.expectations += 1;
                match self.check(expect) {
                    Ok(()) => self.say_line(format!("ok   line {}: {}", line.number, line.source)),
                    Err(message) => {
                        self.say_line(format!(
                            "FAIL line {}: {}: {message}",
                            line.number, line.source
                        ));
                        self.failures.push(Failure {
                            line: line.number,
                            step: line.source.clone(),
                            message,
                        });
                    }
                }
            }
        }
    }

    /// The leg a caller-side step acts on: the named one, or the first leg.
    fn resolve_step_leg(&mut self, leg: Option<&String>) -> Option<String> {
        let name = match leg {
            Some(name) => name.clone(),
            None => match &self.first_leg {
                Some(first) => first.clone(),
                None => {
                    self.note("ignored: no call yet");
                    return None;
                }
            },
        };
        match self.find(&name) {
            Some(idx) => Some(self.legs[idx].id.clone()),
            None => {
                self.note(&format!("ignored: no leg `{name}`"));
                None
            }
        }
    }

    /// Scripts what the callee of a dialled leg does, now or once it is dialled.
    fn script(&mut self, leg: &str, outcome: Outcome) {
        match self.find(leg) {
            Some(idx) if self.legs[idx].live() && self.legs[idx].phase == LegPhase::Dialing => {
                let id = self.legs[idx].id.clone();
                self.schedule(
                    self.now + outcome.after_ms(),
                    Happening::Outcome { leg: id, outcome },
                );
            }
            Some(_) => self.note(&format!("ignored: `{leg}` is not ringing")),
            None => {
                self.outcomes.insert(leg.to_owned(), outcome);
            }
        }
    }

    // ----- the app's requests ---------------------------------------------------------------

    fn apply(&mut self, request: SimRequest) {
        match request {
            SimRequest::Answer { call } => {
                let Some(idx) = self.live_leg(&call) else {
                    return;
                };
                let leg = &mut self.legs[idx];
                if leg.direction == Direction::Inbound && !leg.answered {
                    leg.phase = LegPhase::Answered;
                    leg.answered = true;
                } else {
                    self.note(&format!("ignored: `{call}` cannot be answered"));
                }
            }
            SimRequest::EarlyMedia { call } => {
                if let Some(idx) = self.live_leg(&call)
                    && self.legs[idx].phase == LegPhase::Ringing
                {
                    self.legs[idx].phase = LegPhase::EarlyMedia;
                }
            }
            SimRequest::Reject { call, status } => {
                let Some(idx) = self.live_leg(&call) else {
                    return;
                };
                let reason = match status {
                    486 | 600 => HangupReason::Busy,
                    408 | 480 => HangupReason::Noanswer,
                    _ => HangupReason::Rejected,
                };
                self.finish_leg(idx, HangupBy::Local, reason, Some(status));
            }
            SimRequest::Hangup { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.end_leg(idx);
                }
            }
            SimRequest::Say {
                call,
                id,
                text,
                opts,
            } => {
                let per_loop = (text.chars().count() as u64 * SAY_MS_PER_CHAR).max(SAY_MIN_MS);
                let item = Item {
                    id,
                    kind: Kind::Say,
                    duration_ms: Some(per_loop * u64::from(opts.loops.max(1))),
                    stop_on_dtmf: opts.stop_on_dtmf,
                    completes: true,
                };
                self.enqueue(&call, item);
            }
            SimRequest::Play {
                call,
                id,
                file,
                opts,
            } => {
                let length = self.files.get(&file).copied().unwrap_or(DEFAULT_FILE_MS);
                let total = (length * u64::from(opts.loops.max(1)))
                    .saturating_sub(u64::from(opts.offset_ms).min(length));
                let (duration, completes) = match opts.timeout_ms.map(u64::from) {
                    Some(t) if t < total => (t, false),
                    _ => (total, true),
                };
                let item = Item {
                    id,
                    kind: Kind::Play,
                    duration_ms: Some(duration),
                    stop_on_dtmf: opts.stop_on_dtmf,
                    completes,
                };
                self.enqueue(&call, item);
            }
            SimRequest::PlayMusic { call, id, .. } => {
                let item = Item {
                    id,
                    kind: Kind::Play,
                    duration_ms: None,
                    stop_on_dtmf: false,
                    completes: false,
                };
                self.enqueue(&call, item);
            }
            SimRequest::StopMedia { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.stop_media(idx);
                }
            }
            SimRequest::Collect {
                call,
                max_digits,
                terminator,
                timeout_ms,
            } => {
                let Some(idx) = self.live_leg(&call) else {
                    return;
                };
                self.cancel_collect(idx);
                let timeout_ms = u64::from(timeout_ms.max(1));
                let leg = &mut self.legs[idx];
                leg.collect_generation += 1;
                leg.collecting = Some(Collecting {
                    max_digits: max_digits.max(1),
                    terminator,
                    timeout_ms,
                    digits: String::new(),
                    deadline: self.now + timeout_ms,
                });
                let generation = leg.collect_generation;
                self.schedule(
                    self.now + timeout_ms,
                    Happening::CollectTimeout {
                        leg: call,
                        generation,
                    },
                );
            }
            SimRequest::SetTimer { id, ms, tag } => {
                self.timers.insert(id, tag);
                self.schedule(self.now + u64::from(ms), Happening::Timer { id });
            }
            SimRequest::CancelTimer { id } => {
                self.timers.remove(&id);
            }
            SimRequest::Dial {
                new_leg,
                timeout_ms,
                ..
            } => self.dial(new_leg, timeout_ms, None),
            SimRequest::DialAndConnect {
                call,
                new_leg,
                timeout_ms,
                ..
            } => self.dial(new_leg, timeout_ms, Some(call)),
            SimRequest::Connect { a, b } => {
                if let (Some(ia), Some(ib)) = (self.live_leg(&a), self.live_leg(&b)) {
                    self.stop_media(ia);
                    self.stop_media(ib);
                    self.unbridge(ia);
                    self.unbridge(ib);
                    self.legs[ia].bridge = Some(b);
                    self.legs[ib].bridge = Some(a);
                }
            }
            SimRequest::Disconnect { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.unbridge(idx);
                }
            }
            SimRequest::Http { id, .. } => self.http.push(id),
            SimRequest::SendDtmf { .. } | SimRequest::Log { .. } | SimRequest::Other(_) => {}
        }
    }

    fn dial(&mut self, id: String, timeout_ms: u32, answer_on_answer: Option<String>) {
        self.dialled += 1;
        let alias = format!("out-{}", self.dialled);
        let mut leg = Leg::new(id.clone(), alias.clone(), Direction::Outbound);
        leg.answer_on_answer = answer_on_answer;
        self.legs.push(leg);
        let idx = self.legs.len() - 1;
        if self.master_over() {
            // Every leg ends with the session's first one, including legs dialled after it.
            self.finish_leg(idx, HangupBy::Local, HangupReason::Cancel, None);
            return;
        }
        let timeout = match timeout_ms {
            0 => DEFAULT_CONNECT_TIMEOUT_MS,
            ms => u64::from(ms),
        };
        self.start_ringing(&id, timeout);
    }

    /// A dialled leg starts ringing: 180 at once (unless its callee rejects at once), its
    /// scripted outcome, and its connect timeout (`0` is the host's default).
    fn start_ringing(&mut self, id: &str, timeout_ms: u64) {
        let Some(idx) = self.find(id) else { return };
        let alias = self.legs[idx].alias.clone();
        let outcome = self
            .outcomes
            .remove(&alias)
            .or_else(|| self.outcomes.remove(id));
        if !matches!(outcome, Some(Outcome::Reject { after_ms: 0, .. })) {
            self.schedule(self.now, Happening::Ringing { leg: id.to_owned() });
        }
        if let Some(outcome) = outcome {
            self.schedule(
                self.now + outcome.after_ms(),
                Happening::Outcome {
                    leg: id.to_owned(),
                    outcome,
                },
            );
        }
        let timeout = if timeout_ms == 0 {
            DEFAULT_CONNECT_TIMEOUT_MS
        } else {
            timeout_ms
        };
        self.schedule(
            self.now + timeout,
            Happening::ConnectTimeout { leg: id.to_owned() },
        );
    }

    fn enqueue(&mut self, call: &str, item: Item) {
        let Some(idx) = self.live_leg(call) else {
            return;
        };
        self.legs[idx].queue.push_back(item);
        self.start_next(idx);
    }

    fn start_next(&mut self, idx: usize) {
        let leg = &mut self.legs[idx];
        if leg.current.is_some() {
            return;
        }
        let Some(item) = leg.queue.pop_front() else {
            return;
        };
        let end = item.duration_ms.map(|d| (self.now + d, item.id));
        leg.current = Some(item);
        let call = leg.id.clone();
        if let Some((at, id)) = end {
            self.schedule(at, Happening::MediaEnd { leg: call, id });
        }
    }

    /// Ends the item playing on a leg and reports it.
    fn end_current(&mut self, idx: usize, completed: bool, digit: Option<char>) {
        let Some(item) = self.legs[idx].current.take() else {
            return;
        };
        self.report_media(idx, &item, completed, digit);
    }

    fn report_media(&mut self, idx: usize, item: &Item, completed: bool, digit: Option<char>) {
        let finished = MediaEnd {
            id: item.id,
            completed,
            digit: digit.map(String::from),
        };
        let call = self.legs[idx].id.clone();
        self.deliver(match item.kind {
            Kind::Say => SimEvent::SayFinished { call, finished },
            Kind::Play => SimEvent::PlayFinished { call, finished },
        });
    }

    fn stop_media(&mut self, idx: usize) {
        self.end_current(idx, false, None);
        let queued: Vec<Item> = self.legs[idx].queue.drain(..).collect();
        for item in &queued {
            self.report_media(idx, item, false, None);
        }
    }

    fn cancel_collect(&mut self, idx: usize) {
        if let Some(c) = self.legs[idx].collecting.take() {
            let call = self.legs[idx].id.clone();
            self.deliver(SimEvent::Collected {
                call,
                digits: c.digits,
                end: CollectEnd::Cancelled,
            });
        }
    }

    fn finish_collect(&mut self, idx: usize, end: CollectEnd) {
        if let Some(c) = self.legs[idx].collecting.take() {
            let call = self.legs[idx].id.clone();
            self.deliver(SimEvent::Collected {
                call,
                digits: c.digits,
                end,
            });
        }
    }

    fn unbridge(&mut self, idx: usize) {
        if let Some(peer) = self.legs[idx].bridge.take()
            && let Some(p) = self.find(&peer)
        {
            self.legs[p].bridge = None;
        }
    }

    // ----- ends of legs -------------------------------------------------------------------

    fn master_over(&self) -> bool {
        self.first_leg
            .as_deref()
            .and_then(|f| self.find(f))
            .is_none_or(|i| !self.legs[i].live())
    }

    /// The app (or the session) ends a leg: BYE when answered, CANCEL while dialling, 480
    /// for an unanswered inbound leg. The BYE's answer is instant in virtual time.
    fn end_leg(&mut self, idx: usize) {
        let leg = &self.legs[idx];
        if leg.answered {
            self.finish_leg(idx, HangupBy::Local, HangupReason::Normal, None);
        } else if leg.direction == Direction::Outbound {
            self.finish_leg(idx, HangupBy::Local, HangupReason::Cancel, None);
        } else {
            self.finish_leg(idx, HangupBy::Local, HangupReason::Normal, Some(480));
        }
    }

    /// The caller (or a callee) hangs up.
    fn remote_hangup(&mut self, call: &str) {
        let Some(idx) = self.find(call) else { return };
        let leg = &self.legs[idx];
        if !leg.live() {
            self.note(&format!("ignored: `{}` has already ended", leg.alias));
        } else if leg.answered {
            self.finish_leg(idx, HangupBy::Remote, HangupReason::Normal, None);
        } else if leg.direction == Direction::Inbound {
            // The caller's CANCEL.
            self.finish_leg(idx, HangupBy::Remote, HangupReason::Cancel, Some(487));
        } else {
            self.note(&format!(
                "ignored: `{}` is still ringing; script its callee with `reject`",
                leg.alias
            ));
        }
    }

    fn finish_leg(
        &mut self,
        idx: usize,
        by: HangupBy,
        reason: HangupReason,
        sip_status: Option<u16>,
    ) {
        if !self.legs[idx].live() {
            return;
        }
        let ended = Ended {
            by,
            reason,
            sip_status,
            answered: self.legs[idx].answered,
        };
        self.legs[idx].ended = Some(ended);
        self.legs[idx].phase = LegPhase::Finished;
        self.stop_media(idx);
        self.cancel_collect(idx);
        self.unbridge(idx);
        let call = self.legs[idx].id.clone();
        self.deliver(SimEvent::Finished {
            call: call.clone(),
            ended,
        });
        if self.first_leg.as_deref() == Some(call.as_str()) {
            for other in 0..self.legs.len() {
                if other != idx && self.legs[other].live() {
                    if reason == HangupReason::AppError {
                        self.finish_leg(other, HangupBy::Local, HangupReason::AppError, None);
                    } else {
                        self.end_leg(other);
                    }
                }
            }
        }
    }

    fn app_failed(&mut self, message: String) {
        self.say_line(format!("!! the app failed: {message}"));
        if self.app_error.is_none() {
            self.app_error = Some((self.line, message));
        }
        self.deliveries.clear();
        // Others first, so each gets app-error rather than the first leg's cascade.
        let mut order: Vec<usize> = (0..self.legs.len()).collect();
        order.sort_by_key(|&i| Some(self.legs[i].id.as_str()) == self.first_leg.as_deref());
        for idx in order {
            self.finish_leg(idx, HangupBy::Local, HangupReason::AppError, None);
        }
        self.timers.clear();
        self.http.clear();
    }

    // ----- what happens in time -------------------------------------------------------------

    fn happen(&mut self, happening: Happening) {
        match happening {
            Happening::MediaEnd { leg, id } => {
                let Some(idx) = self.live_leg_quiet(&leg) else {
                    return;
                };
                if self.legs[idx].current.as_ref().is_some_and(|c| c.id == id) {
                    let completes = self.legs[idx].current.as_ref().is_some_and(|c| c.completes);
                    self.end_current(idx, completes, None);
                    self.start_next(idx);
                }
            }
            Happening::CollectTimeout { leg, generation } => {
                let Some(idx) = self.live_leg_quiet(&leg) else {
                    return;
                };
                if self.legs[idx].collect_generation == generation {
                    self.finish_collect(idx, CollectEnd::Timeout);
                }
            }
            Happening::Timer { id } => {
                if let Some(tag) = self.timers.remove(&id) {
                    self.deliver(SimEvent::Timer { id, tag });
                }
            }
            Happening::Digit { leg, digit } => self.digit(&leg, digit),
            Happening::Ringing { leg } => {
                if let Some(idx) = self.live_leg_quiet(&leg)
                    && self.legs[idx].phase == LegPhase::Dialing
                {
                    self.deliver(SimEvent::Ringing { call: leg });
                }
            }
            Happening::Outcome { leg, outcome } => {
                let Some(idx) = self.live_leg_quiet(&leg) else {
                    return;
                };
                if self.legs[idx].phase != LegPhase::Dialing {
                    return;
                }
                match outcome {
                    Outcome::Answer { .. } => self.callee_answers(idx),
                    Outcome::Reject { status, .. } => {
                        let reason = reason_for_status(status);
                        let by = if reason == HangupReason::Noanswer {
                            HangupBy::Local
                        } else {
                            HangupBy::Remote
                        };
                        self.finish_leg(idx, by, reason, Some(status));
                    }
                }
            }
            Happening::ConnectTimeout { leg } => {
                if let Some(idx) = self.live_leg_quiet(&leg)
                    && self.legs[idx].phase == LegPhase::Dialing
                {
                    self.finish_leg(idx, HangupBy::Local, HangupReason::Noanswer, Some(408));
                }
            }
        }
    }

    fn callee_answers(&mut self, idx: usize) {
        let leg = &mut self.legs[idx];
        leg.phase = LegPhase::Answered;
        leg.answered = true;
        let call = leg.id.clone();
        if let Some(inbound) = leg.answer_on_answer.take()
            && let Some(i) = self.live_leg_quiet(&inbound)
        {
            let other = &mut self.legs[i];
            if !other.answered {
                other.phase = LegPhase::Answered;
                other.answered = true;
            }
            self.unbridge(i);
            self.legs[i].bridge = Some(call.clone());
            self.legs[idx].bridge = Some(inbound);
        }
        self.deliver(SimEvent::Answered { call });
    }

    /// A key press on a leg: `on-dtmf`, then the media it stopped, then the collection it
    /// ended (`host/pbx/src/call/session.rs`, `digit`).
    fn digit(&mut self, call: &str, digit: char) {
        let Some(idx) = self.find(call) else { return };
        if !self.legs[idx].has_media() {
            let alias = self.legs[idx].alias.clone();
            self.note(&format!(
                "key {digit} not heard: `{alias}` is not answered or has ended"
            ));
            return;
        }
        self.deliver(SimEvent::Dtmf {
            call: call.to_owned(),
            digit: digit.to_string(),
        });
        if self.legs[idx]
            .current
            .as_ref()
            .is_some_and(|c| c.stop_on_dtmf)
        {
            self.end_current(idx, false, Some(digit));
            self.start_next(idx);
        }
        let now = self.now;
        let Some(c) = self.legs[idx].collecting.as_mut() else {
            return;
        };
        if now >= c.deadline {
            self.finish_collect(idx, CollectEnd::Timeout);
            return;
        }
        if c.terminator == Some(digit) {
            self.finish_collect(idx, CollectEnd::Terminator);
            return;
        }
        c.digits.push(digit);
        if c.digits.chars().count() >= c.max_digits as usize {
            self.finish_collect(idx, CollectEnd::MaxDigits);
            return;
        }
        c.deadline = now + c.timeout_ms;
        let deadline = c.deadline;
        let leg = &mut self.legs[idx];
        leg.collect_generation += 1;
        let generation = leg.collect_generation;
        self.schedule(
            deadline,
            Happening::CollectTimeout {
                leg: call.to_owned(),
                generation,
            },
        );
    }

    // ----- expectations -------------------------------------------------------------------

    fn check(&mut self, expect: &Expect) -> Result<(), String> {
        match expect {
            Expect::Log(text) => {
                let found = self.requests[self.log_cursor..]
                    .iter()
                    .position(|r| matches!(r, SimRequest::Log { message, .. } if message.contains(text.as_str())));
                match found {
                    Some(i) => {
                        self.log_cursor += i + 1;
                        Ok(())
                    }
                    None => Err("no such log line since the last one matched".into()),
                }
            }
            Expect::Event(text) => {
                let found = self.events[self.event_cursor..]
                    .iter()
                    .position(|e| self.show(&e.to_string()).contains(text.as_str()));
                match found {
                    Some(i) => {
                        self.event_cursor += i + 1;
                        Ok(())
                    }
                    None => Err("no such event since the last one matched".into()),
                }
            }
            Expect::NoMore => {
                let rest: Vec<String> = self
                    .unmatched()
                    .map(|r| self.show(&r.to_string()))
                    .collect();
                self.cursor = self.requests.len();
                if rest.is_empty() {
                    Ok(())
                } else {
                    Err(format!("more requests: {}", rest.join("; ")))
                }
            }
            Expect::Idle => {
                let mut busy = Vec::new();
                for leg in self.legs.iter().filter(|l| l.live()) {
                    if leg.current.is_some() || !leg.queue.is_empty() {
                        busy.push(format!("media playing on {}", leg.alias));
                    }
                    if leg.collecting.is_some() {
                        busy.push(format!("collecting digits on {}", leg.alias));
                    }
                }
                if !self.timers.is_empty() {
                    busy.push(format!("{} timer(s) set", self.timers.len()));
                }
                if busy.is_empty() {
                    Ok(())
                } else {
                    Err(busy.join(", "))
                }
            }
            Expect::AppError => match &self.app_error {
                Some(_) => {
                    self.app_error_expected = true;
                    Ok(())
                }
                None => Err("the app has not failed".into()),
            },
            Expect::Finished {
                leg,
                by,
                reason,
                status,
            } => {
                let name = leg
                    .clone()
                    .or_else(|| self.first_leg.clone())
                    .unwrap_or_default();
                let Some(idx) = self.find(&name) else {
                    return Err(format!("no leg `{name}`"));
                };
                let Some(ended) = self.legs[idx].ended else {
                    return Err(format!("`{name}` has not ended"));
                };
                let actual = format!(
                    "it ended by {} ({}{})",
                    ended.by.as_str(),
                    ended.reason.as_str(),
                    ended
                        .sip_status
                        .map(|s| format!(", sip {s}"))
                        .unwrap_or_default()
                );
                if by.is_some_and(|b| b != ended.by)
                    || reason.is_some_and(|r| r != ended.reason)
                    || status.is_some_and(|s| Some(s) != ended.sip_status)
                {
                    return Err(actual);
                }
                Ok(())
            }
            _ => {
                let found = self.requests[self.cursor..]
                    .iter()
                    .position(|r| !matches!(r, SimRequest::Log { .. }) && self.matches(expect, r));
                match found {
                    Some(i) => {
                        self.cursor += i + 1;
                        Ok(())
                    }
                    None => {
                        let rest: Vec<String> = self
                            .unmatched()
                            .map(|r| self.show(&r.to_string()))
                            .collect();
                        if rest.is_empty() {
                            Err("no request since the last match".into())
                        } else {
                            Err(format!(
                                "no matching request; since the last match: {}",
                                rest.join("; ")
                            ))
                        }
                    }
                }
            }
        }
    }

    fn unmatched(&self) -> impl Iterator<Item = &SimRequest> {
        self.requests[self.cursor..]
            .iter()
            .filter(|r| !matches!(r, SimRequest::Log { .. }))
    }

    /// True when `leg` (a step's leg name) is `call` (an id the app used); no name matches
    /// every leg.
    fn is_leg(&self, leg: &LegRef, call: &str) -> bool {
        match leg {
            None => true,
            Some(name) => match self.find(name) {
                Some(idx) => self.legs[idx].id == call,
                None => name == call,
            },
        }
    }

    fn matches(&self, expect: &Expect, r: &SimRequest) -> bool {
        match (expect, r) {
            (Expect::Answer(leg), SimRequest::Answer { call })
            | (Expect::EarlyMedia(leg), SimRequest::EarlyMedia { call })
            | (Expect::Hangup(leg), SimRequest::Hangup { call })
            | (Expect::Music(leg), SimRequest::PlayMusic { call, .. })
            | (Expect::StopMedia(leg), SimRequest::StopMedia { call }) => self.is_leg(leg, call),
            (Expect::Reject { status, leg }, SimRequest::Reject { call, status: s }) => {
                self.is_leg(leg, call) && status.is_none_or(|x| x == *s)
            }
            (Expect::Say { text, leg }, SimRequest::Say { call, text: t, .. }) => {
                self.is_leg(leg, call) && t.contains(text.as_str())
            }
            (Expect::Play { file, leg }, SimRequest::Play { call, file: f, .. }) => {
                self.is_leg(leg, call) && f == file
            }
            (
                Expect::Collect { max, leg },
                SimRequest::Collect {
                    call, max_digits, ..
                },
            ) => self.is_leg(leg, call) && max.is_none_or(|m| m == *max_digits),
            (Expect::Dial(target), SimRequest::Dial { endpoint, .. })
            | (Expect::Dial(target), SimRequest::DialAndConnect { endpoint, .. }) => {
                endpoint.contains(target.as_str())
            }
            (Expect::Connect(legs), SimRequest::Connect { a, b }) => match legs {
                None => true,
                Some((x, y)) => {
                    let x = Some(x.clone());
                    let y = Some(y.clone());
                    (self.is_leg(&x, a) && self.is_leg(&y, b))
                        || (self.is_leg(&x, b) && self.is_leg(&y, a))
                }
            },
            (Expect::Timer(ms), SimRequest::SetTimer { ms: m, .. }) => {
                ms.is_none_or(|x| x == u64::from(*m))
            }
            (Expect::Http(text), SimRequest::Http { method, url, .. }) => {
                format!("{method} {url}").contains(text.as_str())
            }
            (Expect::Request(text), r) => self.show(&r.to_string()).contains(text.as_str()),
            _ => false,
        }
    }

    // ----- helpers --------------------------------------------------------------------------

    fn schedule(&mut self, at: u64, happening: Happening) {
        self.seq += 1;
        self.agenda.insert((at, self.seq), happening);
    }

    fn deliver(&mut self, event: SimEvent) {
        if self.app_error.is_some() {
            self.say_line(format!(
                "   (not delivered, the app failed) {}",
                self.show(&event.to_string())
            ));
            return;
        }
        self.deliveries.push_back(event);
    }

    /// A leg by its alias (`out-1`) or the id the app knows.
    fn find(&self, name: &str) -> Option<usize> {
        self.legs
            .iter()
            .position(|l| l.id == name)
            .or_else(|| self.legs.iter().position(|l| l.alias == name))
    }

    /// A live leg named by a request, or a note saying why the request is ignored.
    fn live_leg(&mut self, call: &str) -> Option<usize> {
        match self.find(call) {
            Some(idx) if self.legs[idx].live() => Some(idx),
            Some(_) => {
                self.note(&format!("ignored: `{call}` has ended"));
                None
            }
            None => {
                self.note(&format!("ignored: no leg `{call}`"));
                None
            }
        }
    }

    fn live_leg_quiet(&self, call: &str) -> Option<usize> {
        self.find(call).filter(|&i| self.legs[i].live())
    }

    /// Shows dialled legs by their scenario names (`out-1`) rather than host ids.
    fn show(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for leg in &self.legs {
            if leg.id != leg.alias && !leg.id.is_empty() {
                text = text.replace(&leg.id, &leg.alias);
            }
        }
        text
    }

    fn note(&mut self, text: &str) {
        self.say_line(format!("   {text}"));
    }

    fn say_line(&mut self, text: String) {
        self.lines.push(format!(
            "[{:>3}.{:03}] {text}",
            self.now / 1000,
            self.now % 1000
        ));
    }
}

/// The reason for a callee's final status, as the host maps it.
fn reason_for_status(status: u16) -> HangupReason {
    match status {
        486 | 600 => HangupReason::Busy,
        408 | 480 => HangupReason::Noanswer,
        403 | 404 | 410 | 484 | 603 | 604 => HangupReason::Rejected,
        _ => HangupReason::Failed,
    }
}
