//! One app instance per call session: delivers events under the CPU deadline, keeps the
//! session mirror the imports judge requests by, and collects the actions the app requested.
//!
//! Invariants:
//! - Each event starts with an empty action queue and a fresh CPU budget; the actions it
//!   returns are exactly the requests the app made during that event, in order.
//! - Before an event enters wasm the mirror is brought in line with it (a finished leg is
//!   `Finished`, an answered dialled leg `Answered`, a finished conference, recording or timer
//!   forgotten), so the app's requests during the event are judged by the new state.
//! - A 0.1 instance receives only the six 0.1 events, a 0.2 instance every event but
//!   `on-http-response`; the others return no actions without entering wasm.
//! - `on-http-response` enters wasm only for a request of this session still in flight, so
//!   each accepted request is answered at most once.
//! - `on-call-received` carries the granted configuration: an empty `CallInfo::config` is
//!   filled from the context's `Capabilities::config`.
//! - `refuse-hand-over` is allowed only while an `on-call-received` with `handed_over` set
//!   runs: the flag naming that leg is set just before it and cleared right after, whatever
//!   the outcome.
//! - After an [`AppError`] the instance is poisoned: every later event returns the same
//!   error without entering wasm (a trapped instance's state is unusable).
//! - The app's stdout/stderr of an event is drained after it: to the debug log, and into the
//!   message of a trap (where a Rust panic message lands).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{debug, warn};
use wasmtime::{Store, Trap};

use crate::bindings::{v0_1, v0_2, v0_3};
use crate::error::{AppError, chain};
use crate::host::{HostState, cut};
use crate::runtime::Inner;
use pbx_app::{
    AbiVersion, Action, CallEnded, CallInfo, CollectedDigits, Direction, Event, HttpError,
    HttpResponse, LegPhase, MediaFinished, RequestId, TimerId,
};

/// Most bytes of a trap message (error chain plus the app's output).
const MAX_TRAP_MESSAGE: usize = 2048;

/// The instantiated component, by contract version.
pub(crate) enum Guest {
    V0_1(v0_1::CallApp),
    V0_2(Box<v0_2::CallApp>),
    V0_3(Box<v0_3::CallApp>),
}

/// The app instance serving one call session. Not shared: the session's task owns it.
pub struct AppInstance {
    runtime: Arc<Inner>,
    store: Store<HostState>,
    guest: Guest,
    failed: Option<AppError>,
}

impl std::fmt::Debug for AppInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppInstance")
            .field("session", &self.call_id())
            .field("abi", &self.abi())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl AppInstance {
    pub(crate) fn new(runtime: Arc<Inner>, store: Store<HostState>, guest: Guest) -> Self {
        AppInstance {
            runtime,
            store,
            guest,
            failed: None,
        }
    }

    /// The contract the component was built against.
    pub fn abi(&self) -> AbiVersion {
        match self.guest {
            Guest::V0_1(_) => AbiVersion::V0_1,
            Guest::V0_2(_) => AbiVersion::V0_2,
            Guest::V0_3(_) => AbiVersion::V0_3,
        }
    }

    /// The leg that started the session (the context's `call_id`).
    pub fn call_id(&self) -> &str {
        &self.store.data().session_id
    }

    /// A leg's phase as the instance sees it (including the app's own requests), or `None`
    /// for a leg the session does not know.
    pub fn leg_phase(&self, call: &str) -> Option<LegPhase> {
        self.store.data().legs.get(call).map(|l| l.phase)
    }

    /// The phase of the session's first leg (0.1 apps have only that one).
    pub fn phase(&self) -> LegPhase {
        self.leg_phase(self.call_id()).unwrap_or(LegPhase::Finished)
    }

    /// Adds a leg to the session mirror or updates it, for example `Answered` once the 200 OK
    /// went out or `Finished` when the party hung up, so the imports judge requests correctly.
    pub fn set_leg(&mut self, call: &str, phase: LegPhase, direction: Direction) {
        self.store.data_mut().set_leg(call, phase, direction);
    }

    /// Sets the phase of the session's first leg (kept for the 0.1-era call layer).
    pub fn set_phase(&mut self, phase: LegPhase) {
        let state = self.store.data_mut();
        let first = state.session_id.clone();
        state.set_phase(&first, phase);
    }

    /// The conference is no longer live: later requests naming it get `not-found`.
    pub fn conference_ended(&mut self, id: &str) {
        self.store.data_mut().conferences.remove(id);
    }

    /// The recording stopped: `stop` on it now gets `not-found` and it no longer counts
    /// against the session's limit.
    pub fn recording_stopped(&mut self, id: &str) {
        self.store.data_mut().recordings.remove(id);
    }

    /// The timer fired or was cancelled; it no longer counts against the session's limit.
    pub fn timer_done(&mut self, id: TimerId) {
        self.store.data_mut().timers.remove(&id);
    }

    /// The error that poisoned this instance, if any.
    pub fn failed(&self) -> Option<&AppError> {
        self.failed.as_ref()
    }

    /// Delivers `on-call-received`.
    pub async fn on_call_received(&mut self, info: &CallInfo) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::CallReceived(info.clone())).await
    }

    /// Delivers `on-dtmf` for one key of `call`.
    pub async fn on_dtmf(&mut self, call: &str, digit: &str) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::Dtmf {
            call: call.into(),
            digit: digit.into(),
        })
        .await
    }

    /// Delivers `on-say-finished`.
    pub async fn on_say_finished(
        &mut self,
        call: &str,
        finished: &MediaFinished,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::SayFinished {
            call: call.into(),
            finished: finished.clone(),
        })
        .await
    }

    /// Delivers `on-play-finished`.
    pub async fn on_play_finished(
        &mut self,
        call: &str,
        finished: &MediaFinished,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::PlayFinished {
            call: call.into(),
            finished: finished.clone(),
        })
        .await
    }

    /// Delivers `on-dtmf-collected`.
    pub async fn on_dtmf_collected(
        &mut self,
        call: &str,
        collected: &CollectedDigits,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::Collected {
            call: call.into(),
            collected: collected.clone(),
        })
        .await
    }

    /// Delivers `on-call-finished`, the leg's last event; the leg is `Finished` first, so
    /// every request naming it is refused with `invalid-state`.
    pub async fn on_call_finished(
        &mut self,
        call: &str,
        ended: &CallEnded,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::CallFinished {
            call: call.into(),
            ended: *ended,
        })
        .await
    }

    /// Delivers `on-hand-over-result` for a leg this session asked to hand over. Accepted:
    /// the leg is `Finished` here first. Refused: call [`AppInstance::set_leg`] with its real
    /// phase first (otherwise it returns to the phase it had when the app asked).
    pub async fn on_hand_over_result(
        &mut self,
        call: &str,
        accepted: bool,
        reason: Option<&str>,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::HandOverResult {
            call: call.into(),
            accepted,
            reason: reason.map(str::to_owned),
        })
        .await
    }

    /// Delivers `on-http-response` for a request this session sent (0.3 apps).
    pub async fn on_http_response(
        &mut self,
        id: RequestId,
        result: &Result<HttpResponse, HttpError>,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(&Event::HttpResponse {
            id,
            result: result.clone(),
        })
        .await
    }

    /// HTTP requests of this session sent and not yet answered.
    pub fn http_in_flight(&self) -> usize {
        self.store.data().http_in_flight.len()
    }

    /// Brings the mirror in line with an event before the app sees it; false when the event
    /// must not reach the app (a response to no request in flight).
    fn observe(&mut self, event: &Event) -> bool {
        let state = self.store.data_mut();
        match event {
            Event::HttpResponse { id, .. } => return state.http_in_flight.remove(id),
            Event::CallReceived(info) if !state.legs.contains_key(&info.id) => {
                let phase = match info.direction {
                    Direction::Inbound => LegPhase::Ringing,
                    Direction::Outbound => LegPhase::Dialing,
                };
                state.set_leg(&info.id, phase, info.direction);
            }
            Event::CallAnswered { call }
                if state
                    .legs
                    .get(call)
                    .is_some_and(|l| l.phase == LegPhase::Dialing) =>
            {
                state.set_phase(call, LegPhase::Answered);
            }
            Event::CallFinished { call, .. } => state.set_phase(call, LegPhase::Finished),
            Event::ConferenceFinished { conference } => {
                state.conferences.remove(conference);
            }
            Event::RecordingReady(info) => {
                state.recordings.remove(&info.id);
            }
            Event::Timer { id, .. } => {
                state.timers.remove(id);
            }
            Event::HandOverResult { call, accepted, .. } => {
                let before = state.handing_over.remove(call);
                if *accepted {
                    state.set_phase(call, LegPhase::Finished);
                } else if let Some(before) = before
                    && state
                        .legs
                        .get(call)
                        .is_some_and(|l| l.phase == LegPhase::HandingOver)
                {
                    state.set_phase(call, before);
                }
            }
            _ => {}
        }
        true
    }

    /// Delivers one event and returns the actions the app requested during it, in order.
    ///
    /// An instance skips the events its contract does not have (they return no actions), and
    /// an `HttpResponse` for no request in flight.
    pub async fn deliver(&mut self, event: &Event) -> Result<Vec<Action>, AppError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if !self.observe(event) {
            debug!(session = %self.call_id(), event = event.name(), "event for nothing in flight dropped");
            return Ok(Vec::new());
        }
        let filled;
        let event = match event {
            Event::CallReceived(info)
                if info.config.is_empty() && !self.store.data().caps.config.is_empty() =>
            {
                filled = Event::CallReceived(CallInfo {
                    config: self.store.data().caps.config.clone(),
                    ..info.clone()
                });
                &filled
            }
            _ => event,
        };
        let name = event.name();
        let handed_over_call = match event {
            Event::CallReceived(info) if info.handed_over.is_some() => Some(info.id.clone()),
            _ => None,
        };
        let result = match &self.guest {
            Guest::V0_3(app) => {
                let guest = app.pbx_app_handlers();
                let store = &mut self.store;
                begin(&self.runtime, store);
                store.data_mut().handed_over_call = handed_over_call;
                let result = call_v0_3(guest, store, event).await;
                store.data_mut().handed_over_call = None;
                result
            }
            Guest::V0_2(app) => {
                if matches!(event, Event::HttpResponse { .. }) {
                    return Ok(Vec::new());
                }
                let guest = app.pbx_app_handlers();
                let store = &mut self.store;
                begin(&self.runtime, store);
                store.data_mut().handed_over_call = handed_over_call;
                let result = call_v0_2(guest, store, event).await;
                store.data_mut().handed_over_call = None;
                result
            }
            Guest::V0_1(app) => {
                let guest = app.pbx_app_handlers();
                let store = &mut self.store;
                if !is_v0_1_event(event) {
                    return Ok(Vec::new());
                }
                begin(&self.runtime, store);
                call_v0_1(guest, store, event).await
            }
        };

        match result {
            Ok(()) => {
                let state = self.store.data_mut();
                if let Some(output) = state.output.take() {
                    debug!(session = %state.session_id, app_id = %state.app_id, event = name, "app output: {output}");
                }
                Ok(std::mem::take(&mut state.actions))
            }
            Err(e) => {
                let err = classify(&self.runtime, &self.store, &e);
                let state = self.store.data();
                warn!(
                    session = %state.session_id,
                    app_id = %state.app_id,
                    event = name,
                    kind = err.kind(),
                    "app failed: {err}; detail: {e:?}"
                );
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }
}

/// Starts an event: empty queue, fresh CPU budget, counted.
fn begin(runtime: &Inner, store: &mut Store<HostState>) {
    let state = store.data_mut();
    state.begin_event();
    let ticks = state.deadline_ticks;
    state.deadline.reset(ticks);
    store.set_epoch_deadline(1);
    runtime.counters.events.fetch_add(1, Ordering::Relaxed);
}

fn is_v0_1_event(event: &Event) -> bool {
    matches!(
        event,
        Event::CallReceived(_)
            | Event::Dtmf { .. }
            | Event::SayFinished { .. }
            | Event::PlayFinished { .. }
            | Event::Collected { .. }
            | Event::CallFinished { .. }
    )
}

/// The events 0.2 and 0.3 share, dispatched to a `handlers` guest of either version (their
/// generated types are the same 0.3 `types`); `$rest` handles the events beyond them.
macro_rules! call_session_event {
    ($guest:ident, $store:ident, $event:ident, { $($rest:tt)* }) => {
        match $event {
            Event::CallReceived(info) => $guest.call_on_call_received($store, &info.into()).await,
            Event::CallRinging { call } => $guest.call_on_call_ringing($store, call).await,
            Event::CallEarlyMedia { call } => $guest.call_on_call_early_media($store, call).await,
            Event::CallAnswered { call } => $guest.call_on_call_answered($store, call).await,
            Event::Dtmf { call, digit } => $guest.call_on_dtmf($store, call, digit).await,
            Event::SayFinished { call, finished } => {
                $guest
                    .call_on_say_finished($store, call, &finished.into())
                    .await
            }
            Event::PlayFinished { call, finished } => {
                $guest
                    .call_on_play_finished($store, call, &finished.into())
                    .await
            }
            Event::Collected { call, collected } => {
                $guest
                    .call_on_dtmf_collected($store, call, &collected.into())
                    .await
            }
            Event::CallFinished { call, ended } => {
                $guest
                    .call_on_call_finished($store, call, (*ended).into())
                    .await
            }
            Event::ParticipantJoining { conference, call } => {
                $guest
                    .call_on_participant_joining($store, conference, call)
                    .await
            }
            Event::ParticipantJoined { conference, call } => {
                $guest
                    .call_on_participant_joined($store, conference, call)
                    .await
            }
            Event::ParticipantJoinFailed {
                conference,
                call,
                reason,
            } => {
                $guest
                    .call_on_participant_join_failed($store, conference, call, reason)
                    .await
            }
            Event::ParticipantLeft { conference, call } => {
                $guest
                    .call_on_participant_left($store, conference, call)
                    .await
            }
            Event::ConferenceFinished { conference } => {
                $guest.call_on_conference_finished($store, conference).await
            }
            Event::ConferenceMediaFinished {
                conference,
                finished,
            } => {
                $guest
                    .call_on_conference_media_finished($store, conference, &finished.into())
                    .await
            }
            Event::RecordingReady(info) => $guest.call_on_recording_ready($store, &info.into()).await,
            Event::Timer { id, tag } => $guest.call_on_timer($store, *id, tag).await,
            Event::HandOverResult {
                call,
                accepted,
                reason,
            } => {
                $guest
                    .call_on_hand_over_result($store, call, *accepted, reason.as_deref())
                    .await
            }
            $($rest)*
        }
    };
}

async fn call_v0_3(
    guest: &v0_3::exports::pbx::app::handlers::Guest,
    store: &mut Store<HostState>,
    event: &Event,
) -> wasmtime::Result<()> {
    call_session_event!(guest, store, event, {
        Event::HttpResponse { id, result } => {
            let response: v0_3::http::HttpResponse;
            let error: v0_3::http::HttpError;
            let outcome = match result {
                Ok(r) => {
                    response = r.into();
                    Ok(&response)
                }
                Err(e) => {
                    error = e.into();
                    Err(&error)
                }
            };
            guest.call_on_http_response(store, *id, outcome).await
        }
    })
}

async fn call_v0_2(
    guest: &v0_2::exports::pbx::app::handlers::Guest,
    store: &mut Store<HostState>,
    event: &Event,
) -> wasmtime::Result<()> {
    call_session_event!(guest, store, event, {
        // Filtered out by `deliver` before wasm is entered.
        Event::HttpResponse { .. } => Ok(()),
    })
}

async fn call_v0_1(
    guest: &v0_1::exports::pbx::app::handlers::Guest,
    store: &mut Store<HostState>,
    event: &Event,
) -> wasmtime::Result<()> {
    match event {
        Event::CallReceived(info) => guest.call_on_call_received(store, &info.into()).await,
        Event::Dtmf { call, digit } => guest.call_on_dtmf(store, call, digit).await,
        Event::SayFinished { call, finished } => {
            guest
                .call_on_say_finished(store, call, &finished.into())
                .await
        }
        Event::PlayFinished { call, finished } => {
            guest
                .call_on_play_finished(store, call, &finished.into())
                .await
        }
        Event::Collected { call, collected } => {
            guest
                .call_on_dtmf_collected(store, call, &collected.into())
                .await
        }
        Event::CallFinished { call, ended } => {
            guest
                .call_on_call_finished(store, call, (*ended).into())
                .await
        }
        // Filtered out by `is_v0_1_event` before wasm is entered.
        _ => Ok(()),
    }
}

/// Turns a wasmtime error into an [`AppError`] and counts it.
pub(crate) fn classify(
    runtime: &Inner,
    store: &Store<HostState>,
    err: &wasmtime::Error,
) -> AppError {
    let state = store.data();
    let counters = &runtime.counters;
    if state.limiter.exceeded() {
        counters.out_of_memory.fetch_add(1, Ordering::Relaxed);
        let _ = state.output.take();
        return AppError::OutOfMemory;
    }
    if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        counters.deadlines.fetch_add(1, Ordering::Relaxed);
        let _ = state.output.take();
        return AppError::Deadline;
    }
    counters.traps.fetch_add(1, Ordering::Relaxed);
    let mut message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => chain(err),
    };
    if let Some(output) = state.output.take() {
        let output: Vec<&str> = output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        if !output.is_empty() {
            message.push_str("; app output: ");
            message.push_str(&output.join(" / "));
        }
    }
    AppError::Trap(cut(&message, MAX_TRAP_MESSAGE).to_owned())
}
