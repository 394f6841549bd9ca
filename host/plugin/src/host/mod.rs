//! The host side of `pbx:app@0.3.0`: the state each store holds ([`HostState`]: the
//! session's leg mirror, queued actions, limits, grants and WASI), the checks every import
//! shares, and one file per WIT interface (`call_control.rs`, `conference.rs`,
//! `recording.rs`, `timers.rs`, `log.rs`; the capability imports in `capability_types.rs`,
//! `kv.rs`, `http.rs` and `config.rs`). The empty `types` interface is implemented here.
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
//!   [`MAX_ACTIONS_PER_EVENT`] actions and writes at most
//!   [`MAX_LOG_LINES_PER_EVENT`](log::MAX_LOG_LINES_PER_EVENT) log lines; a session holds at
//!   most [`MAX_LIVE_LEGS`](call_control::MAX_LIVE_LEGS) live legs,
//!   [`MAX_CONFERENCES`](conference::MAX_CONFERENCES) conferences,
//!   [`MAX_RECORDINGS`](recording::MAX_RECORDINGS) recordings and
//!   [`MAX_TIMERS`](timers::MAX_TIMERS) timers, so an app cannot grow host memory or flood
//!   the log.
//! - The WASI context grants nothing: no preopened directories, environment, arguments or
//!   network; stdout and stderr go to a bounded capture.
//! - `pbx:app@0.1.0` and `@0.2.0` imports (`legacy.rs`, `legacy_v0_2.rs`) run through these
//!   same functions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::v0_3::types as wit;
use crate::grants::Capabilities;
use crate::limits::{Deadline, MemoryLimiter};
use crate::stdio::CapturedOutput;
pub(crate) use pbx_app::phase::cut;
use pbx_app::phase::{self, Need};
use pbx_app::{Action, Direction, LegPhase, MediaId, PlayOptions, RequestId, SayOptions, TimerId};

mod call_control;
mod capability_types;
mod conference;
mod config;
mod http;
mod kv;
mod log;
mod recording;
mod timers;

/// Longest text a `say` accepts, in characters.
pub(crate) const MAX_SAY_CHARS: usize = 4000;
/// Most requests one event may queue.
pub(crate) const MAX_ACTIONS_PER_EVENT: usize = 256;
/// Bytes of stdout/stderr kept per event.
pub(crate) const MAX_CAPTURED_OUTPUT: usize = 8192;
/// Legs remembered (finished ones included); beyond it finished legs are forgotten.
const MAX_REMEMBERED_LEGS: usize = 256;
/// Longest timer, in milliseconds (one day).
const MAX_TIMER_MS: u32 = 86_400_000;

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

    fn next_media_id(&mut self) -> MediaId {
        let id = self.next_media_id;
        self.next_media_id += 1;
        id
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
mod tests;

#[cfg(test)]
mod capability_tests;
