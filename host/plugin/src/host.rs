//! The host side of the WIT imports (`call-control`, `log`) and the per-call store state.
//!
//! Invariants:
//! - Every import validates at once and answers with a WIT `error`; none traps, none blocks.
//! - Checks run in a fixed order: the call id (else `not-found`), the phase (else
//!   `invalid-state`), then the arguments (else `invalid-argument` / `not-found`).
//! - Accepted requests are queued as [`Action`]s in call order and move the phase
//!   optimistically (answer → `Answered`, reject/hangup → `Finished`), so a second answer in
//!   the same event is refused.
//! - One event queues at most [`MAX_ACTIONS_PER_EVENT`] actions and writes at most
//!   [`MAX_LOG_LINES_PER_EVENT`] log lines; an app cannot grow host memory or flood the log.
//! - The WASI context grants nothing: no preopened directories, environment, arguments or
//!   network; stdout and stderr go to a bounded capture.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{wit_call_control, wit_log, wit_types};
use crate::limits::{Deadline, MemoryLimiter};
use crate::stdio::CapturedOutput;
use crate::types::{Action, CollectOptions, MediaId, Phase, PlayOptions, SayOptions};

/// Longest text a `say` accepts, in characters.
pub(crate) const MAX_SAY_CHARS: usize = 4000;
/// Longest log line kept, in bytes; longer lines are cut at a character boundary.
pub(crate) const MAX_LOG_BYTES: usize = 4096;
/// Most call-control requests one event may queue.
pub(crate) const MAX_ACTIONS_PER_EVENT: usize = 100;
/// Most log lines one event may write; the rest are dropped with one warning.
pub(crate) const MAX_LOG_LINES_PER_EVENT: u32 = 100;
/// Bytes of stdout/stderr kept per event.
pub(crate) const MAX_CAPTURED_OUTPUT: usize = 8192;
/// The keys `collect-dtmf` accepts as a terminator (the WIT contract: "#" or "*").
const TERMINATOR_KEYS: &str = "#*";

/// Answers `play` requests: whether a file id names an uploaded file.
pub type FileExists = Arc<dyn Fn(&str) -> bool + Send + Sync>;

type WitResult<T> = Result<T, wit_types::Error>;

/// Everything one call's store holds.
pub(crate) struct HostState {
    pub(crate) call_id: String,
    pub(crate) app_id: String,
    pub(crate) phase: Phase,
    pub(crate) actions: Vec<Action>,
    next_media_id: MediaId,
    log_lines: u32,
    file_exists: FileExists,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Deadline,
    pub(crate) output: CapturedOutput,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    pub(crate) fn new(
        call_id: String,
        app_id: String,
        file_exists: FileExists,
        max_memory_bytes: usize,
    ) -> Self {
        let output = CapturedOutput::new(MAX_CAPTURED_OUTPUT);
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            call_id,
            app_id,
            phase: Phase::Ringing,
            actions: Vec::new(),
            next_media_id: 1,
            log_lines: 0,
            file_exists,
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
    }

    fn check_call(&self, call: &str) -> WitResult<()> {
        if call == self.call_id {
            Ok(())
        } else {
            Err(wit_types::Error::NotFound(format!(
                "no call `{}` in this instance",
                cut(call, 64)
            )))
        }
    }

    fn check_not_finished(&self) -> WitResult<()> {
        if self.phase == Phase::Finished {
            Err(wit_types::Error::InvalidState("the call has ended".into()))
        } else {
            Ok(())
        }
    }

    fn check_media_phase(&self, what: &str) -> WitResult<()> {
        match self.phase {
            Phase::EarlyMedia | Phase::Answered => Ok(()),
            Phase::Ringing => Err(wit_types::Error::InvalidState(format!(
                "cannot {what} before the call is answered or early media started"
            ))),
            Phase::Finished => Err(wit_types::Error::InvalidState("the call has ended".into())),
        }
    }

    fn push(&mut self, action: Action) -> WitResult<()> {
        if self.actions.len() >= MAX_ACTIONS_PER_EVENT {
            return Err(wit_types::Error::Failed(format!(
                "too many requests in one event (limit {MAX_ACTIONS_PER_EVENT})"
            )));
        }
        self.actions.push(action);
        Ok(())
    }

    fn next_media_id(&mut self) -> MediaId {
        let id = self.next_media_id;
        self.next_media_id += 1;
        id
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

impl wit_types::Host for HostState {}

impl wit_call_control::Host for HostState {
    fn answer(&mut self, call: String) -> WitResult<()> {
        self.check_call(&call)?;
        match self.phase {
            Phase::Ringing | Phase::EarlyMedia => {
                self.push(Action::Answer)?;
                self.phase = Phase::Answered;
                Ok(())
            }
            Phase::Answered => Err(wit_types::Error::InvalidState(
                "the call is already answered".into(),
            )),
            Phase::Finished => Err(wit_types::Error::InvalidState("the call has ended".into())),
        }
    }

    fn early_media(&mut self, call: String) -> WitResult<()> {
        self.check_call(&call)?;
        match self.phase {
            Phase::Ringing => {
                self.push(Action::EarlyMedia)?;
                self.phase = Phase::EarlyMedia;
                Ok(())
            }
            Phase::EarlyMedia => Err(wit_types::Error::InvalidState(
                "early media has already started".into(),
            )),
            Phase::Answered => Err(wit_types::Error::InvalidState(
                "the call is already answered".into(),
            )),
            Phase::Finished => Err(wit_types::Error::InvalidState("the call has ended".into())),
        }
    }

    fn reject(&mut self, call: String, status: u16) -> WitResult<()> {
        self.check_call(&call)?;
        self.check_not_finished()?;
        if self.phase == Phase::Answered {
            return Err(wit_types::Error::InvalidState(
                "the call is already answered; use hangup".into(),
            ));
        }
        if !(400..=699).contains(&status) {
            return Err(wit_types::Error::InvalidArgument(format!(
                "status {status} is not a final error status (400 to 699)"
            )));
        }
        self.push(Action::Reject { status })?;
        self.phase = Phase::Finished;
        Ok(())
    }

    fn hangup(&mut self, call: String) -> WitResult<()> {
        self.check_call(&call)?;
        self.check_not_finished()?;
        self.push(Action::Hangup)?;
        self.phase = Phase::Finished;
        Ok(())
    }

    fn say(
        &mut self,
        call: String,
        text: String,
        options: wit_types::SayOptions,
    ) -> WitResult<MediaId> {
        self.check_call(&call)?;
        self.check_media_phase("say")?;
        if text.trim().is_empty() {
            return Err(wit_types::Error::InvalidArgument("text is empty".into()));
        }
        let chars = text.chars().count();
        if chars > MAX_SAY_CHARS {
            return Err(wit_types::Error::InvalidArgument(format!(
                "text has {chars} characters; the limit is {MAX_SAY_CHARS}"
            )));
        }
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
        let id = self.next_media_id();
        self.push(Action::Say {
            id,
            text,
            opts: SayOptions {
                language: options.language,
                voice: options.voice,
                loop_count: options.loop_count.max(1),
                stop_on_dtmf: options.stop_on_dtmf,
            },
        })?;
        Ok(id)
    }

    fn play(
        &mut self,
        call: String,
        file_id: String,
        options: wit_types::PlayOptions,
    ) -> WitResult<MediaId> {
        self.check_call(&call)?;
        self.check_media_phase("play")?;
        if file_id.is_empty() || file_id.len() > 256 || file_id.chars().any(char::is_control) {
            return Err(wit_types::Error::InvalidArgument(
                "file id must be 1 to 256 printable characters".into(),
            ));
        }
        if !(self.file_exists)(&file_id) {
            return Err(wit_types::Error::NotFound(format!(
                "no file `{}`",
                cut(&file_id, 64)
            )));
        }
        let id = self.next_media_id();
        self.push(Action::Play {
            id,
            file_id,
            opts: PlayOptions {
                loop_count: options.loop_count.max(1),
                offset_ms: options.offset_ms,
                timeout_ms: options.timeout_ms,
                stop_on_dtmf: options.stop_on_dtmf,
            },
        })?;
        Ok(id)
    }

    fn stop_media(&mut self, call: String) -> WitResult<()> {
        self.check_call(&call)?;
        self.check_media_phase("stop media")?;
        self.push(Action::StopMedia)
    }

    fn collect_dtmf(&mut self, call: String, options: wit_types::CollectOptions) -> WitResult<()> {
        self.check_call(&call)?;
        self.check_media_phase("collect digits")?;
        if !(1..=64).contains(&options.max_digits) {
            return Err(wit_types::Error::InvalidArgument(format!(
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
                        return Err(wit_types::Error::InvalidArgument(format!(
                            "terminator `{}` must be \"#\" or \"*\"",
                            cut(t, 16)
                        )));
                    }
                }
            }
        };
        if options.timeout_ms == 0 {
            return Err(wit_types::Error::InvalidArgument(
                "timeout-ms must be at least 1".into(),
            ));
        }
        self.push(Action::CollectDtmf {
            opts: CollectOptions {
                max_digits: options.max_digits,
                terminator,
                timeout_ms: options.timeout_ms,
            },
        })
    }
}

impl wit_log::Host for HostState {
    fn write(&mut self, level: wit_log::Level, message: String) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES_PER_EVENT {
            if self.log_lines == MAX_LOG_LINES_PER_EVENT + 1 {
                tracing::warn!(
                    target: "pbx::app",
                    call_id = %self.call_id,
                    app_id = %self.app_id,
                    "app log limit reached ({MAX_LOG_LINES_PER_EVENT} lines per event); dropping the rest"
                );
            }
            return;
        }
        let message = cut(&message, MAX_LOG_BYTES);
        let (call_id, app_id) = (&self.call_id, &self.app_id);
        match level {
            wit_log::Level::Debug => {
                tracing::debug!(target: "pbx::app", %call_id, %app_id, "{message}")
            }
            wit_log::Level::Info => {
                tracing::info!(target: "pbx::app", %call_id, %app_id, "{message}")
            }
            wit_log::Level::Warn => {
                tracing::warn!(target: "pbx::app", %call_id, %app_id, "{message}")
            }
            wit_log::Level::Error => {
                tracing::error!(target: "pbx::app", %call_id, %app_id, "{message}")
            }
        }
    }
}

/// Checks an option token (language tag, voice name) for length and characters.
fn check_token(what: &str, value: &str, max: usize, ok: impl Fn(char) -> bool) -> WitResult<()> {
    if value.is_empty() || value.len() > max || !value.chars().all(ok) {
        return Err(wit_types::Error::InvalidArgument(format!(
            "{what} `{}` is not valid",
            cut(value, 40)
        )));
    }
    Ok(())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::bindings::wit_call_control::Host as _;

    fn state() -> HostState {
        HostState::new(
            "c1".into(),
            "app".into(),
            Arc::new(|f| f == "known"),
            1 << 20,
        )
    }

    fn say_opts() -> wit_types::SayOptions {
        wit_types::SayOptions {
            language: None,
            voice: None,
            loop_count: 0,
            stop_on_dtmf: false,
        }
    }

    fn is_state(r: WitResult<impl Sized>) -> bool {
        matches!(r, Err(wit_types::Error::InvalidState(_)))
    }
    fn is_arg(r: WitResult<impl Sized>) -> bool {
        matches!(r, Err(wit_types::Error::InvalidArgument(_)))
    }
    fn is_not_found(r: WitResult<impl Sized>) -> bool {
        matches!(r, Err(wit_types::Error::NotFound(_)))
    }

    #[test]
    fn answer_twice_is_invalid_state() {
        let mut s = state();
        s.answer("c1".into()).unwrap();
        assert!(is_state(s.answer("c1".into())));
        assert_eq!(s.actions, vec![Action::Answer]);
    }

    #[test]
    fn reject_checks_status_and_phase() {
        let mut s = state();
        assert!(is_arg(s.reject("c1".into(), 399)));
        assert!(is_arg(s.reject("c1".into(), 700)));
        s.reject("c1".into(), 486).unwrap();
        assert!(is_state(s.answer("c1".into())));
        let mut s = state();
        s.answer("c1".into()).unwrap();
        assert!(is_state(s.reject("c1".into(), 486)));
    }

    #[test]
    fn other_call_ids_are_not_found() {
        let mut s = state();
        assert!(is_not_found(s.answer("c2".into())));
        assert!(is_not_found(s.hangup("c2".into())));
        assert!(s.actions.is_empty());
    }

    #[test]
    fn say_needs_media_and_sane_text() {
        let mut s = state();
        assert!(is_state(s.say("c1".into(), "hi".into(), say_opts())));
        s.answer("c1".into()).unwrap();
        assert!(is_arg(s.say("c1".into(), "".into(), say_opts())));
        assert!(is_arg(s.say("c1".into(), "x".repeat(4001), say_opts())));
        assert_eq!(s.say("c1".into(), "x".repeat(4000), say_opts()).unwrap(), 1);
        let mut bad_lang = say_opts();
        bad_lang.language = Some("en; rm -rf".into());
        assert!(is_arg(s.say("c1".into(), "hi".into(), bad_lang)));
        assert_eq!(s.say("c1".into(), "hi".into(), say_opts()).unwrap(), 2);
        match &s.actions[2] {
            Action::Say { id, opts, .. } => {
                assert_eq!(*id, 2);
                assert_eq!(opts.loop_count, 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn play_of_unknown_file_is_not_found() {
        let mut s = state();
        s.early_media("c1".into()).unwrap();
        let opts = wit_types::PlayOptions {
            loop_count: 1,
            offset_ms: 0,
            timeout_ms: None,
            stop_on_dtmf: false,
        };
        assert!(is_not_found(s.play("c1".into(), "nope".into(), opts)));
        assert_eq!(s.play("c1".into(), "known".into(), opts).unwrap(), 1);
    }

    #[test]
    fn collect_checks_its_options() {
        let mut s = state();
        s.answer("c1".into()).unwrap();
        let opts = |max, term: Option<&str>, timeout| wit_types::CollectOptions {
            max_digits: max,
            terminator: term.map(String::from),
            timeout_ms: timeout,
        };
        assert!(is_arg(s.collect_dtmf("c1".into(), opts(0, None, 5000))));
        assert!(is_arg(s.collect_dtmf("c1".into(), opts(65, None, 5000))));
        assert!(is_arg(
            s.collect_dtmf("c1".into(), opts(4, Some("##"), 5000))
        ));
        assert!(is_arg(
            s.collect_dtmf("c1".into(), opts(4, Some("x"), 5000))
        ));
        assert!(is_arg(
            s.collect_dtmf("c1".into(), opts(4, Some("5"), 5000))
        ));
        assert!(is_arg(s.collect_dtmf("c1".into(), opts(4, None, 0))));
        s.collect_dtmf("c1".into(), opts(4, Some("#"), 5000))
            .unwrap();
        assert_eq!(
            s.actions.last(),
            Some(&Action::CollectDtmf {
                opts: CollectOptions {
                    max_digits: 4,
                    terminator: Some('#'),
                    timeout_ms: 5000
                }
            })
        );
    }

    #[test]
    fn everything_after_finished_is_invalid_state() {
        let mut s = state();
        s.answer("c1".into()).unwrap();
        s.hangup("c1".into()).unwrap();
        assert!(is_state(s.hangup("c1".into())));
        assert!(is_state(s.say("c1".into(), "hi".into(), say_opts())));
        assert!(is_state(s.stop_media("c1".into())));
    }

    #[test]
    fn an_event_queues_a_bounded_number_of_actions() {
        let mut s = state();
        s.answer("c1".into()).unwrap();
        for _ in 1..MAX_ACTIONS_PER_EVENT {
            s.stop_media("c1".into()).unwrap();
        }
        assert!(matches!(
            s.stop_media("c1".into()),
            Err(wit_types::Error::Failed(_))
        ));
        s.begin_event();
        s.stop_media("c1".into()).unwrap();
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }
}
