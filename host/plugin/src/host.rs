//! The host side of the `pbx:app@0.3.0` call-control imports and the session state each
//! store holds (the capability imports are in `capability.rs`).
//!
//! Invariants:
//! - Every import validates at once and answers with a WIT `error`; none traps, none blocks.
//! - Checks run in a fixed order: ids (else `not-found`), the leg's phase (else
//!   `invalid-state`; the rules and their texts are `pbx_app::phase`, shared with the SDK's
//!   stand-in host), then the arguments (else `invalid-argument` / `not-found`), then
//!   session limits and the per-event budget (else `failed`). A refused request changes
//!   nothing.
//! - The session mirror (legs with their phase and direction, live conferences, recordings
//!   and timers) is kept up to date by the call layer through `AppInstance`; accepted requests
//!   move it optimistically (answer → `Answered`, hangup → `Finished`, a dial adds a `Dialing`
//!   leg, hand-over → `HandingOver`, refuse-hand-over → `Finished`, a conference hangup
//!   forgets the conference) so that later requests of the same event are judged correctly.
//! - A leg in `HandingOver` refuses every request naming it (`invalid-state`) until the host
//!   answers; `refuse-hand-over` is accepted only for the handed-over leg of the
//!   `on-call-received` being delivered (`handed_over_call`).
//! - Accepted requests are queued as [`Action`]s in call order. One event queues at most
//!   [`MAX_ACTIONS_PER_EVENT`] actions and writes at most [`MAX_LOG_LINES_PER_EVENT`] log
//!   lines; a session holds at most [`MAX_LIVE_LEGS`] live legs, [`MAX_CONFERENCES`]
//!   conferences, [`MAX_RECORDINGS`] recordings and [`MAX_TIMERS`] timers, so an app cannot
//!   grow host memory or flood the log.
//! - The WASI context grants nothing: no preopened directories, environment, arguments or
//!   network; stdout and stderr go to a bounded capture.
//! - `pbx:app@0.1.0` and `@0.2.0` imports (`legacy.rs`, `legacy_v0_2.rs`) run through these
//!   same functions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::v0_3::{call_control, conference, log, recording, timers, types as wit};
use crate::grants::Capabilities;
use crate::limits::{Deadline, MemoryLimiter};
use crate::stdio::CapturedOutput;
pub(crate) use pbx_app::phase::cut;
use pbx_app::phase::{self, Need};
use pbx_app::{
    Action, CollectOptions, ConferenceOptions, DialOptions, Direction, Endpoint, GroupStage,
    LegPhase, MediaId, PlayOptions, RecordOptions, RecordTarget, RequestId, SayOptions, TimerId,
};

/// Longest text a `say` accepts, in characters.
pub(crate) const MAX_SAY_CHARS: usize = 4000;
/// Longest log line kept, in bytes; longer lines are cut at a character boundary.
pub(crate) const MAX_LOG_BYTES: usize = 4096;
/// Most requests one event may queue.
pub(crate) const MAX_ACTIONS_PER_EVENT: usize = 256;
/// Most log lines one event may write; the rest are dropped with one warning.
pub(crate) const MAX_LOG_LINES_PER_EVENT: u32 = 100;
/// Bytes of stdout/stderr kept per event.
pub(crate) const MAX_CAPTURED_OUTPUT: usize = 8192;
/// Legs of one session that are not finished, at once.
pub(crate) const MAX_LIVE_LEGS: usize = 128;
/// Live conferences of one session at once.
pub(crate) const MAX_CONFERENCES: usize = 8;
/// Live recordings of one session at once.
pub(crate) const MAX_RECORDINGS: usize = 8;
/// Live timers of one session at once.
pub(crate) const MAX_TIMERS: usize = 64;
/// Legs remembered (finished ones included); beyond it finished legs are forgotten.
const MAX_REMEMBERED_LEGS: usize = 256;
/// Longest timer, in milliseconds (one day).
const MAX_TIMER_MS: u32 = 86_400_000;
/// Longest timer tag, in bytes.
const MAX_TAG_BYTES: usize = 256;
/// Longest connect timeout, in milliseconds.
const MAX_CONNECT_TIMEOUT_MS: u32 = 600_000;
/// Connect timeout used for 0.
const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 60_000;
/// Ring time of a group stage used for 0.
const DEFAULT_STAGE_TIMEOUT_MS: u32 = 20_000;
/// Most members of one group stage.
const MAX_STAGE_MEMBERS: usize = 32;
/// Most stages of one group call.
const MAX_STAGES: usize = 16;
/// Most extra SIP headers of one dial.
const MAX_HEADERS: usize = 16;
/// Longest recording, in milliseconds (0 means one hour; at most a day).
const DEFAULT_RECORD_MS: u32 = 3_600_000;
/// Most metadata pairs of one recording.
const MAX_METADATA: usize = 16;
/// Most bytes of the data `hand-over` passes to the other app.
pub(crate) const MAX_HAND_OVER_DATA: usize = 4096;
/// Most bytes of the reason `refuse-hand-over` gives back.
pub(crate) const MAX_REFUSE_REASON: usize = 256;
/// The keys `collect-dtmf` accepts as a terminator (the WIT contract: "#" or "*").
const TERMINATOR_KEYS: &str = "#*";
/// The keys `send-dtmf` sends.
const DTMF_KEYS: &str = "0123456789*#ABCD";

/// Answers whether a name exists: an uploaded file id, a SIP user, a trunk.
pub type NameExists = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Answers `play` requests: whether a file id names an uploaded file.
pub type FileExists = NameExists;

pub(crate) type WitResult<T> = Result<T, wit::Error>;

fn invalid_state(msg: impl Into<String>) -> wit::Error {
    wit::Error::InvalidState(msg.into())
}
fn invalid_arg(msg: impl Into<String>) -> wit::Error {
    wit::Error::InvalidArgument(msg.into())
}
fn not_found(msg: impl Into<String>) -> wit::Error {
    wit::Error::NotFound(msg.into())
}
fn failed(msg: impl Into<String>) -> wit::Error {
    wit::Error::Failed(msg.into())
}

/// One leg as the session mirror knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leg {
    pub(crate) phase: LegPhase,
    pub(crate) direction: Direction,
}

/// Who the session asks whether files, users and trunks exist.
#[derive(Clone)]
pub(crate) struct Directory {
    pub(crate) files: NameExists,
    pub(crate) users: NameExists,
    pub(crate) trunks: NameExists,
}

/// Everything one session's store holds.
pub(crate) struct HostState {
    /// The leg that started the session; hanging it up hangs up every leg.
    pub(crate) session_id: String,
    pub(crate) app_id: String,
    pub(crate) legs: HashMap<String, Leg>,
    pub(crate) conferences: HashSet<String>,
    pub(crate) recordings: HashSet<String>,
    pub(crate) timers: HashSet<TimerId>,
    /// The phase each leg in `HandingOver` had when the app asked, restored when a refused
    /// `HandOverResult` arrives and the host did not `set_leg` first.
    pub(crate) handing_over: HashMap<String, LegPhase>,
    /// The handed-over leg of the `on-call-received` being delivered right now: the only
    /// leg `refuse-hand-over` accepts. Set and cleared by the instance around that event.
    pub(crate) handed_over_call: Option<String>,
    pub(crate) actions: Vec<Action>,
    /// What the app was granted beyond call control.
    pub(crate) caps: Capabilities,
    /// HTTP requests sent and not yet answered by an `HttpResponse` event.
    pub(crate) http_in_flight: HashSet<RequestId>,
    pub(crate) next_request_id: RequestId,
    /// Key-value requests made during the event in progress.
    pub(crate) kv_ops: u32,
    /// The CPU budget of one event, in epoch ticks (the app's limit within the global one).
    pub(crate) deadline_ticks: u64,
    next_media_id: MediaId,
    next_timer_id: TimerId,
    log_lines: u32,
    directory: Directory,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Deadline,
    pub(crate) output: CapturedOutput,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// A session whose first leg is `session_id`, in the phase and direction of `first`.
    pub(crate) fn new(
        session_id: String,
        first: Leg,
        app_id: String,
        directory: Directory,
        caps: Capabilities,
        max_memory_bytes: usize,
        deadline_ticks: u64,
    ) -> Self {
        let output = CapturedOutput::new(MAX_CAPTURED_OUTPUT);
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut legs = HashMap::new();
        legs.insert(session_id.clone(), first);
        HostState {
            session_id,
            app_id,
            legs,
            conferences: HashSet::new(),
            recordings: HashSet::new(),
            timers: HashSet::new(),
            handing_over: HashMap::new(),
            handed_over_call: None,
            actions: Vec::new(),
            caps,
            http_in_flight: HashSet::new(),
            next_request_id: 1,
            kv_ops: 0,
            deadline_ticks,
            next_media_id: 1,
            next_timer_id: 1,
            log_lines: 0,
            directory,
            limiter: MemoryLimiter::new(max_memory_bytes),
            deadline: Deadline::default(),
            output,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Starts a new event: empties the action queue and the per-event log budget.
    pub(crate) fn begin_event(&mut self) {
        self.actions.clear();
        self.log_lines = 0;
        self.kv_ops = 0;
    }

    /// Adds or updates a leg of the mirror; this also ends a hand-over the leg was in.
    pub(crate) fn set_leg(&mut self, call: &str, phase: LegPhase, direction: Direction) {
        self.handing_over.remove(call);
        match self.legs.get_mut(call) {
            Some(leg) => *leg = Leg { phase, direction },
            None => {
                self.forget_finished_legs();
                self.legs.insert(call.to_owned(), Leg { phase, direction });
            }
        }
    }

    /// Moves a known leg to `phase`; unknown legs are left alone.
    pub(crate) fn set_phase(&mut self, call: &str, phase: LegPhase) {
        if let Some(leg) = self.legs.get_mut(call) {
            leg.phase = phase;
        }
    }

    fn forget_finished_legs(&mut self) {
        if self.legs.len() >= MAX_REMEMBERED_LEGS {
            let first = &self.session_id;
            self.legs
                .retain(|id, leg| id == first || leg.phase != LegPhase::Finished);
        }
    }

    fn live_legs(&self) -> usize {
        self.legs
            .values()
            .filter(|l| l.phase != LegPhase::Finished)
            .count()
    }

    // ---- checks ----

    fn leg(&self, call: &str) -> WitResult<Leg> {
        self.legs
            .get(call)
            .copied()
            .ok_or_else(|| phase::no_leg(call).into())
    }

    /// The leg `call`, if it may `what` by the rules of [`phase::check`].
    fn need(&self, call: &str, need: Need, what: &str) -> WitResult<Leg> {
        let leg = self.leg(call)?;
        phase::check(call, Some((leg.phase, leg.direction)), need, what)?;
        Ok(leg)
    }

    fn need_live(&self, call: &str) -> WitResult<Leg> {
        self.need(call, Need::Live, "use it")
    }

    fn need_answered(&self, call: &str, what: &str) -> WitResult<()> {
        self.need(call, Need::Answered, what).map(drop)
    }

    fn need_media(&self, call: &str, what: &str) -> WitResult<()> {
        self.need(call, Need::Media, what).map(drop)
    }

    fn need_inbound_unanswered(&self, call: &str, what: &str) -> WitResult<Leg> {
        self.need(call, Need::InboundUnanswered, what)
    }

    fn need_conference(&self, conference: &str) -> WitResult<()> {
        if self.conferences.contains(conference) {
            Ok(())
        } else {
            Err(not_found(format!(
                "no live conference `{}` in this session",
                cut(conference, 64)
            )))
        }
    }

    fn need_room(&self) -> WitResult<()> {
        if self.actions.len() >= MAX_ACTIONS_PER_EVENT {
            return Err(failed(format!(
                "too many requests in one event (limit {MAX_ACTIONS_PER_EVENT})"
            )));
        }
        Ok(())
    }

    pub(crate) fn push(&mut self, action: Action) -> WitResult<()> {
        self.need_room()?;
        self.actions.push(action);
        Ok(())
    }

    fn check_file(&self, what: &str, file_id: &str) -> WitResult<()> {
        if file_id.is_empty() || file_id.len() > 256 || file_id.chars().any(char::is_control) {
            return Err(invalid_arg(format!(
                "{what} must be 1 to 256 printable characters"
            )));
        }
        if !(self.directory.files)(file_id) {
            return Err(not_found(format!("no file `{}`", cut(file_id, 64))));
        }
        Ok(())
    }

    fn check_endpoint(&self, target: wit::Endpoint) -> WitResult<Endpoint> {
        match target {
            wit::Endpoint::SipUri(uri) => {
                check_sip_uri(&uri)?;
                Ok(Endpoint::SipUri(uri))
            }
            wit::Endpoint::User(user) => {
                if !is_name(&user) {
                    return Err(invalid_arg(format!(
                        "user `{}` must be 1 to 64 of A-Z a-z 0-9 . _ -",
                        cut(&user, 64)
                    )));
                }
                if !(self.directory.users)(&user) {
                    return Err(not_found(format!("no SIP user `{user}`")));
                }
                Ok(Endpoint::User(user))
            }
            wit::Endpoint::Phone(phone) => {
                let digits = phone.number.strip_prefix('+').unwrap_or(&phone.number);
                if digits.is_empty()
                    || digits.len() > 32
                    || !digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
                {
                    return Err(invalid_arg(format!(
                        "phone number `{}` must be an optional + and 1 to 32 of 0-9 * #",
                        cut(&phone.number, 40)
                    )));
                }
                if let Some(trunk) = &phone.trunk {
                    if !is_name(trunk) {
                        return Err(invalid_arg(format!(
                            "trunk `{}` must be 1 to 64 of A-Z a-z 0-9 . _ -",
                            cut(trunk, 64)
                        )));
                    }
                    if !(self.directory.trunks)(trunk) {
                        return Err(not_found(format!("no trunk `{trunk}`")));
                    }
                }
                Ok(Endpoint::Phone {
                    number: phone.number,
                    trunk: phone.trunk,
                })
            }
        }
    }

    fn next_media_id(&mut self) -> MediaId {
        let id = self.next_media_id;
        self.next_media_id += 1;
        id
    }

    /// Checks the session's leg limit and the event budget, then enters a new outbound leg
    /// as `Dialing` and returns its id. Call only once every argument was checked.
    fn new_leg(&mut self) -> WitResult<String> {
        if self.live_legs() >= MAX_LIVE_LEGS {
            return Err(failed(format!(
                "the session has {MAX_LIVE_LEGS} live legs, the most it may have"
            )));
        }
        self.need_room()?;
        let id = loop {
            let id = new_leg_id();
            if !self.legs.contains_key(&id) {
                break id;
            }
        };
        self.set_leg(&id, LegPhase::Dialing, Direction::Outbound);
        Ok(id)
    }

    /// Writes one app log line, within the per-event budget.
    pub(crate) fn write_log(&mut self, level: tracing::Level, message: &str) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES_PER_EVENT {
            if self.log_lines == MAX_LOG_LINES_PER_EVENT + 1 {
                tracing::warn!(
                    target: "pbx::app",
                    session = %self.session_id,
                    app_id = %self.app_id,
                    "app log limit reached ({MAX_LOG_LINES_PER_EVENT} lines per event); dropping the rest"
                );
            }
            return;
        }
        let message = cut(message, MAX_LOG_BYTES);
        let (session, app_id) = (&self.session_id, &self.app_id);
        match level {
            tracing::Level::ERROR => {
                tracing::error!(target: "pbx::app", %session, %app_id, "{message}")
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "pbx::app", %session, %app_id, "{message}")
            }
            tracing::Level::INFO => {
                tracing::info!(target: "pbx::app", %session, %app_id, "{message}")
            }
            _ => tracing::debug!(target: "pbx::app", %session, %app_id, "{message}"),
        }
    }

    fn say_action(
        &mut self,
        text: String,
        options: wit::SayOptions,
    ) -> WitResult<(String, SayOptions)> {
        check_text(&text)?;
        let opts = check_say_options(options)?;
        Ok((text, opts))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for HostState {}

impl call_control::Host for HostState {
    fn answer(&mut self, call: String) -> WitResult<()> {
        self.need_inbound_unanswered(&call, "answer")?;
        self.push(Action::Answer { call: call.clone() })?;
        self.set_phase(&call, LegPhase::Answered);
        Ok(())
    }

    fn early_media(&mut self, call: String) -> WitResult<()> {
        let leg = self.need_inbound_unanswered(&call, "start early media")?;
        if leg.phase == LegPhase::EarlyMedia {
            return Err(invalid_state("early media has already started"));
        }
        self.push(Action::EarlyMedia { call: call.clone() })?;
        self.set_phase(&call, LegPhase::EarlyMedia);
        Ok(())
    }

    fn reject(&mut self, call: String, status: u16) -> WitResult<()> {
        self.need_inbound_unanswered(&call, "reject; use hangup")?;
        if !(400..=699).contains(&status) {
            return Err(invalid_arg(format!(
                "status {status} is not a final error status (400 to 699)"
            )));
        }
        self.push(Action::Reject {
            call: call.clone(),
            status,
        })?;
        self.set_phase(&call, LegPhase::Finished);
        Ok(())
    }

    fn hangup(&mut self, call: String) -> WitResult<()> {
        self.need_live(&call)?;
        self.push(Action::Hangup { call: call.clone() })?;
        if call == self.session_id {
            for leg in self.legs.values_mut() {
                leg.phase = LegPhase::Finished;
            }
        } else {
            self.set_phase(&call, LegPhase::Finished);
        }
        Ok(())
    }

    fn say(&mut self, call: String, text: String, options: wit::SayOptions) -> WitResult<MediaId> {
        self.need_media(&call, "say")?;
        let (text, opts) = self.say_action(text, options)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::Say {
            call,
            id,
            text,
            opts,
        })?;
        Ok(id)
    }

    fn play(
        &mut self,
        call: String,
        file_id: String,
        options: wit::PlayOptions,
    ) -> WitResult<MediaId> {
        self.need_media(&call, "play")?;
        self.check_file("file id", &file_id)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::Play {
            call,
            id,
            file_id,
            opts: play_options(options),
        })?;
        Ok(id)
    }

    fn play_music(&mut self, call: String, file_id: Option<String>) -> WitResult<MediaId> {
        self.need_media(&call, "play music")?;
        if let Some(file_id) = &file_id {
            self.check_file("file id", file_id)?;
        }
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::PlayMusic { call, id, file_id })?;
        Ok(id)
    }

    fn stop_media(&mut self, call: String) -> WitResult<()> {
        self.need_media(&call, "stop media")?;
        self.push(Action::StopMedia { call })
    }

    fn collect_dtmf(&mut self, call: String, options: wit::CollectOptions) -> WitResult<()> {
        self.need_media(&call, "collect digits")?;
        let opts = check_collect_options(options)?;
        self.push(Action::CollectDtmf { call, opts })
    }

    fn send_dtmf(&mut self, call: String, digits: String, duration_ms: u32) -> WitResult<()> {
        self.need_answered(&call, "send digits")?;
        if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| DTMF_KEYS.contains(c))
        {
            return Err(invalid_arg(format!(
                "digits `{}` must be 1 to 32 of 0-9 * # A-D",
                cut(&digits, 40)
            )));
        }
        let duration_ms = match duration_ms {
            0 => 100,
            40..=2000 => duration_ms,
            _ => {
                return Err(invalid_arg(format!(
                    "duration-ms {duration_ms} is outside 40 to 2000"
                )));
            }
        };
        self.push(Action::SendDtmf {
            call,
            digits,
            duration_ms,
        })
    }

    fn dial(&mut self, target: wit::Endpoint, options: wit::DialOptions) -> WitResult<String> {
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let call = self.new_leg()?;
        self.push(Action::Dial {
            call: call.clone(),
            target,
            opts,
        })?;
        Ok(call)
    }

    fn dial_group(
        &mut self,
        stages: Vec<wit::GroupStage>,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        if stages.is_empty() || stages.len() > MAX_STAGES {
            return Err(invalid_arg(format!(
                "a group call has 1 to {MAX_STAGES} stages, not {}",
                stages.len()
            )));
        }
        let mut checked = Vec::with_capacity(stages.len());
        for (n, stage) in stages.into_iter().enumerate() {
            if stage.members.is_empty() || stage.members.len() > MAX_STAGE_MEMBERS {
                return Err(invalid_arg(format!(
                    "stage {} has {} members; a stage has 1 to {MAX_STAGE_MEMBERS}",
                    n + 1,
                    stage.members.len()
                )));
            }
            let timeout_ms = match stage.timeout_ms {
                0 => DEFAULT_STAGE_TIMEOUT_MS,
                t if t <= MAX_CONNECT_TIMEOUT_MS => t,
                t => {
                    return Err(invalid_arg(format!(
                        "stage {} timeout-ms {t} is above {MAX_CONNECT_TIMEOUT_MS}",
                        n + 1
                    )));
                }
            };
            let members = stage
                .members
                .into_iter()
                .map(|m| self.check_endpoint(m))
                .collect::<WitResult<Vec<_>>>()?;
            checked.push(GroupStage {
                members,
                strategy: stage.strategy.into(),
                timeout_ms,
            });
        }
        let opts = check_dial_options(options)?;
        let call = self.new_leg()?;
        self.push(Action::DialGroup {
            call: call.clone(),
            stages: checked,
            opts,
        })?;
        Ok(call)
    }

    fn connect(&mut self, a: String, b: String) -> WitResult<()> {
        self.leg(&a)?;
        self.leg(&b)?;
        self.need_answered(&a, "connect")?;
        self.need_answered(&b, "connect")?;
        if a == b {
            return Err(invalid_arg("cannot connect a leg with itself"));
        }
        self.push(Action::Connect { a, b })
    }

    fn disconnect(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "disconnect")?;
        self.push(Action::Disconnect { call })
    }

    fn dial_and_connect(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        self.need_inbound_unanswered(&call, "dial and connect")?;
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let new_call = self.new_leg()?;
        self.push(Action::DialAndConnect {
            call,
            new_call: new_call.clone(),
            target,
            opts,
        })?;
        Ok(new_call)
    }

    fn hold(&mut self, call: String, music_file: Option<String>) -> WitResult<()> {
        self.need_answered(&call, "hold")?;
        if let Some(file) = &music_file {
            self.check_file("music-file", file)?;
        }
        self.push(Action::Hold { call, music_file })
    }

    fn resume(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "resume")?;
        self.push(Action::Resume { call })
    }

    fn mute(&mut self, call: String, direction: wit::MuteDirection) -> WitResult<()> {
        self.need_answered(&call, "mute")?;
        self.push(Action::Mute {
            call,
            direction: direction.into(),
        })
    }

    fn unmute(&mut self, call: String, direction: wit::MuteDirection) -> WitResult<()> {
        self.need_answered(&call, "unmute")?;
        self.push(Action::Unmute {
            call,
            direction: direction.into(),
        })
    }

    fn transfer(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        self.need_answered(&call, "transfer")?;
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let new_call = self.new_leg()?;
        self.push(Action::Transfer {
            call,
            new_call: new_call.clone(),
            target,
            opts,
        })?;
        Ok(new_call)
    }

    fn consult(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        self.need_answered(&call, "consult")?;
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let new_call = self.new_leg()?;
        self.push(Action::Consult {
            call,
            new_call: new_call.clone(),
            target,
            opts,
        })?;
        Ok(new_call)
    }

    fn complete_transfer(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "complete a transfer")?;
        self.push(Action::CompleteTransfer { call })
    }

    fn cancel_transfer(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "cancel a transfer")?;
        self.push(Action::CancelTransfer { call })
    }

    fn hand_over(&mut self, call: String, app: String, data: String) -> WitResult<()> {
        let leg = self.need_live(&call)?;
        if leg.phase == LegPhase::Dialing {
            return Err(invalid_state(format!(
                "cannot hand over leg `{}` while it is being dialled",
                cut(&call, 64)
            )));
        }
        if !is_app_ref(&app) {
            return Err(invalid_arg(format!(
                "app `{}` must be an app id (app_ and 16 hex digits) or a name of 1 to 64 of \
                 A-Z a-z 0-9 . _ -",
                cut(&app, 64)
            )));
        }
        if data.len() > MAX_HAND_OVER_DATA {
            return Err(invalid_arg(format!(
                "data has {} bytes; the limit is {MAX_HAND_OVER_DATA}",
                data.len()
            )));
        }
        self.push(Action::HandOver {
            call: call.clone(),
            app,
            data,
        })?;
        self.set_phase(&call, LegPhase::HandingOver);
        self.handing_over.insert(call, leg.phase);
        Ok(())
    }

    fn refuse_hand_over(&mut self, call: String, reason: String) -> WitResult<()> {
        self.need_live(&call)?;
        if self.handed_over_call.as_deref() != Some(call.as_str()) {
            return Err(invalid_state(format!(
                "leg `{}` was not handed over in this on-call-received; refuse-hand-over is \
                 only allowed during the event that delivers a handed-over leg",
                cut(&call, 64)
            )));
        }
        if reason.len() > MAX_REFUSE_REASON {
            return Err(invalid_arg(format!(
                "reason has {} bytes; the limit is {MAX_REFUSE_REASON}",
                reason.len()
            )));
        }
        self.push(Action::RefuseHandOver {
            call: call.clone(),
            reason,
        })?;
        self.set_phase(&call, LegPhase::Finished);
        Ok(())
    }
}

impl conference::Host for HostState {
    fn create(&mut self, options: wit::ConferenceOptions) -> WitResult<String> {
        if let Some(name) = &options.name
            && (name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control))
        {
            return Err(invalid_arg("name must be 1 to 128 printable characters"));
        }
        if let Some(file) = &options.music_file {
            self.check_file("music-file", file)?;
        }
        let max_participants = match options.max_participants {
            0 => 100,
            n @ 2..=100 => n,
            n => {
                return Err(invalid_arg(format!(
                    "max-participants {n} is outside 2 to 100 (0 means 100)"
                )));
            }
        };
        if self.conferences.len() >= MAX_CONFERENCES {
            return Err(failed(format!(
                "the session has {MAX_CONFERENCES} live conferences, the most it may have"
            )));
        }
        self.need_room()?;
        let id = loop {
            let id = format!("cnf_{:016x}", rand::random::<u64>());
            if !self.conferences.contains(&id) {
                break id;
            }
        };
        self.push(Action::ConferenceCreate {
            id: id.clone(),
            opts: ConferenceOptions {
                name: options.name,
                music_file: options.music_file,
                music_when_alone: options.music_when_alone,
                end_when_moderator_leaves: options.end_when_moderator_leaves,
                max_participants,
            },
        })?;
        self.conferences.insert(id.clone());
        Ok(id)
    }

    fn join(
        &mut self,
        conference: String,
        call: String,
        options: wit::JoinOptions,
    ) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_answered(&call, "join a conference")?;
        self.push(Action::ConferenceJoin {
            conference,
            call,
            opts: options.into(),
        })
    }

    fn leave(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceLeave { conference, call })
    }

    fn kick(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceKick { conference, call })
    }

    fn mute(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceMute { conference, call })
    }

    fn unmute(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceUnmute { conference, call })
    }

    fn deafen(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceDeafen { conference, call })
    }

    fn undeafen(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceUndeafen { conference, call })
    }

    fn say(
        &mut self,
        conference: String,
        text: String,
        options: wit::SayOptions,
    ) -> WitResult<MediaId> {
        self.need_conference(&conference)?;
        let (text, opts) = self.say_action(text, options)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::ConferenceSay {
            conference,
            id,
            text,
            opts,
        })?;
        Ok(id)
    }

    fn play(
        &mut self,
        conference: String,
        file_id: String,
        options: wit::PlayOptions,
    ) -> WitResult<MediaId> {
        self.need_conference(&conference)?;
        self.check_file("file id", &file_id)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::ConferencePlay {
            conference,
            id,
            file_id,
            opts: play_options(options),
        })?;
        Ok(id)
    }

    fn stop_media(&mut self, conference: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.push(Action::ConferenceStopMedia { conference })
    }

    fn hangup(&mut self, conference: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.push(Action::ConferenceHangup {
            conference: conference.clone(),
        })?;
        self.conferences.remove(&conference);
        Ok(())
    }
}

impl recording::Host for HostState {
    fn start(
        &mut self,
        target: wit::RecordTarget,
        options: wit::RecordOptions,
    ) -> WitResult<String> {
        let target = match target {
            wit::RecordTarget::Call(call) => {
                self.need_answered(&call, "record")?;
                RecordTarget::Call(call)
            }
            wit::RecordTarget::Bridge(call) => {
                self.need_answered(&call, "record")?;
                RecordTarget::Bridge(call)
            }
            wit::RecordTarget::Conference(conference) => {
                self.need_conference(&conference)?;
                RecordTarget::Conference(conference)
            }
        };
        let opts = check_record_options(options)?;
        if self.recordings.len() >= MAX_RECORDINGS {
            return Err(failed(format!(
                "the session has {MAX_RECORDINGS} live recordings, the most it may have"
            )));
        }
        self.need_room()?;
        let id = loop {
            let id = format!("rec_{:016x}", rand::random::<u64>());
            if !self.recordings.contains(&id) {
                break id;
            }
        };
        self.push(Action::RecordStart {
            id: id.clone(),
            target,
            opts,
        })?;
        self.recordings.insert(id.clone());
        Ok(id)
    }

    fn stop(&mut self, recording: String) -> WitResult<()> {
        if !self.recordings.contains(&recording) {
            return Err(not_found(format!(
                "no live recording `{}` in this session",
                cut(&recording, 64)
            )));
        }
        self.push(Action::RecordStop {
            id: recording.clone(),
        })?;
        self.recordings.remove(&recording);
        Ok(())
    }
}

impl timers::Host for HostState {
    fn set_timer(&mut self, ms: u32, tag: String) -> WitResult<TimerId> {
        if !(1..=MAX_TIMER_MS).contains(&ms) {
            return Err(invalid_arg(format!(
                "ms {ms} is outside 1 to {MAX_TIMER_MS}"
            )));
        }
        if tag.len() > MAX_TAG_BYTES {
            return Err(invalid_arg(format!(
                "tag has {} bytes; the limit is {MAX_TAG_BYTES}",
                tag.len()
            )));
        }
        if self.timers.len() >= MAX_TIMERS {
            return Err(failed(format!(
                "the session has {MAX_TIMERS} live timers, the most it may have"
            )));
        }
        self.need_room()?;
        let id = self.next_timer_id;
        self.next_timer_id += 1;
        self.push(Action::SetTimer { id, ms, tag })?;
        self.timers.insert(id);
        Ok(id)
    }

    fn cancel_timer(&mut self, timer: TimerId) {
        if !self.timers.contains(&timer) {
            return;
        }
        match self.push(Action::CancelTimer { id: timer }) {
            Ok(()) => {
                self.timers.remove(&timer);
            }
            Err(_) => tracing::warn!(
                target: "pbx::app",
                session = %self.session_id,
                app_id = %self.app_id,
                timer,
                "cancel-timer dropped: too many requests in one event"
            ),
        }
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

/// A new leg id: a random UUID (version 4) in lowercase hex. The call layer uses it for the
/// legs it creates itself, so every leg id has one shape.
pub fn new_leg_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `[A-Za-z0-9._-]{1,64}`: SIP user names and trunk names (the app-name rule).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An app reference for `hand-over`: an app id (`app_` + 16 lowercase hex digits) or an app
/// name (`[A-Za-z0-9._-]{1,64}`); every app id is also a valid name, so the name rule decides.
fn is_app_ref(s: &str) -> bool {
    is_name(s)
}

/// A `sip:`/`sips:` URI of printable ASCII with a non-empty host.
fn check_sip_uri(uri: &str) -> WitResult<()> {
    let bad = |why: &str| invalid_arg(format!("sip-uri `{}` {why}", cut(uri, 80)));
    if uri.len() > 512 || !uri.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad(
            "must be at most 512 printable ASCII characters without spaces",
        ));
    }
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .ok_or_else(|| bad("must start with \"sip:\" or \"sips:\""))?;
    let hostport = rest.split([';', '?']).next().unwrap_or("");
    let host_part = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let host = if let Some(v6) = host_part.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_part.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// Printable ASCII without CR or LF (header names and values).
fn is_printable_ascii(s: &str) -> bool {
    s.chars()
        .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
}

fn check_dial_options(o: wit::DialOptions) -> WitResult<DialOptions> {
    if let Some(id) = &o.caller_id
        && (id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+*#._-".contains(c)))
    {
        return Err(invalid_arg(format!(
            "caller-id `{}` must be 1 to 64 of A-Z a-z 0-9 + * # . _ -",
            cut(id, 64)
        )));
    }
    if let Some(name) = &o.caller_name
        && (name.is_empty()
            || name.chars().count() > 64
            || name
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\'))
    {
        return Err(invalid_arg(
            "caller-name must be 1 to 64 printable characters without '\"' or '\\'",
        ));
    }
    let connect_timeout_ms = match o.connect_timeout_ms {
        0 => DEFAULT_CONNECT_TIMEOUT_MS,
        t if t <= MAX_CONNECT_TIMEOUT_MS => t,
        t => {
            return Err(invalid_arg(format!(
                "connect-timeout-ms {t} is above {MAX_CONNECT_TIMEOUT_MS}"
            )));
        }
    };
    if o.headers.len() > MAX_HEADERS {
        return Err(invalid_arg(format!(
            "{} headers; at most {MAX_HEADERS}",
            o.headers.len()
        )));
    }
    for (name, value) in &o.headers {
        let token = name.len() <= 64
            && name.len() > 2
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c));
        if !token || !(name.starts_with("X-") || name.starts_with("x-")) {
            return Err(invalid_arg(format!(
                "header name `{}` must be an X- token of at most 64 characters",
                cut(name, 64)
            )));
        }
        if value.len() > 1024 || !is_printable_ascii(value) {
            return Err(invalid_arg(format!(
                "header `{name}` value must be at most 1024 printable ASCII characters"
            )));
        }
    }
    Ok(DialOptions {
        caller_id: o.caller_id,
        caller_name: o.caller_name,
        connect_timeout_ms,
        headers: o.headers,
    })
}

fn check_record_options(o: wit::RecordOptions) -> WitResult<RecordOptions> {
    if o.per_participant && o.stereo {
        return Err(invalid_arg(
            "stereo applies to a mixed recording, not per-participant files",
        ));
    }
    let max_duration_ms = match o.max_duration_ms {
        0 => DEFAULT_RECORD_MS,
        t if t <= MAX_TIMER_MS => t,
        t => {
            return Err(invalid_arg(format!(
                "max-duration-ms {t} is above {MAX_TIMER_MS}"
            )));
        }
    };
    if o.metadata.len() > MAX_METADATA {
        return Err(invalid_arg(format!(
            "{} metadata pairs; at most {MAX_METADATA}",
            o.metadata.len()
        )));
    }
    for (name, value) in &o.metadata {
        if !is_name(name) {
            return Err(invalid_arg(format!(
                "metadata name `{}` must be 1 to 64 of A-Z a-z 0-9 . _ -",
                cut(name, 64)
            )));
        }
        if value.chars().count() > 1024 || value.chars().any(char::is_control) {
            return Err(invalid_arg(format!(
                "metadata `{name}` value must be at most 1024 printable characters"
            )));
        }
    }
    Ok(RecordOptions {
        per_participant: o.per_participant,
        stereo: o.stereo,
        max_duration_ms,
        metadata: o.metadata,
    })
}

fn check_text(text: &str) -> WitResult<()> {
    if text.trim().is_empty() {
        return Err(invalid_arg("text is empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_SAY_CHARS {
        return Err(invalid_arg(format!(
            "text has {chars} characters; the limit is {MAX_SAY_CHARS}"
        )));
    }
    Ok(())
}

fn check_say_options(options: wit::SayOptions) -> WitResult<SayOptions> {
    if let Some(language) = &options.language {
        check_token("language", language, 35, |c| {
            c.is_ascii_alphanumeric() || c == '-'
        })?;
    }
    if let Some(voice) = &options.voice {
        check_token("voice", voice, 32, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+')
        })?;
    }
    Ok(SayOptions {
        language: options.language,
        voice: options.voice,
        loop_count: options.loop_count.max(1),
        stop_on_dtmf: options.stop_on_dtmf,
    })
}

fn play_options(options: wit::PlayOptions) -> PlayOptions {
    PlayOptions {
        loop_count: options.loop_count.max(1),
        offset_ms: options.offset_ms,
        timeout_ms: options.timeout_ms,
        stop_on_dtmf: options.stop_on_dtmf,
    }
}

fn check_collect_options(options: wit::CollectOptions) -> WitResult<CollectOptions> {
    if !(1..=64).contains(&options.max_digits) {
        return Err(invalid_arg(format!(
            "max-digits {} is outside 1 to 64",
            options.max_digits
        )));
    }
    let terminator = match options.terminator.as_deref() {
        None => None,
        Some(t) => {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if TERMINATOR_KEYS.contains(c) => Some(c),
                _ => {
                    return Err(invalid_arg(format!(
                        "terminator `{}` must be \"#\" or \"*\"",
                        cut(t, 16)
                    )));
                }
            }
        }
    };
    if options.timeout_ms == 0 {
        return Err(invalid_arg("timeout-ms must be at least 1"));
    }
    Ok(CollectOptions {
        max_digits: options.max_digits,
        terminator,
        timeout_ms: options.timeout_ms,
    })
}

/// Checks an option token (language tag, voice name) for length and characters.
fn check_token(what: &str, value: &str, max: usize, ok: impl Fn(char) -> bool) -> WitResult<()> {
    if value.is_empty() || value.len() > max || !value.chars().all(ok) {
        return Err(invalid_arg(format!(
            "{what} `{}` is not valid",
            cut(value, 40)
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
