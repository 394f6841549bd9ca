//! One app instance per call: delivers events under the CPU deadline and collects the
//! actions the app requested.
//!
//! Invariants:
//! - Each event starts with an empty action queue and a fresh CPU budget; the actions it
//!   returns are exactly the requests the app made during that event, in order.
//! - After an [`AppError`] the instance is poisoned: every later event returns the same
//!   error without entering wasm (a trapped instance's state is unusable).
//! - The app's stdout/stderr of an event is drained after it: to the debug log, and into the
//!   message of a trap (where a Rust panic message lands).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{debug, warn};
use wasmtime::{Store, Trap};

use crate::bindings::{CallApp, wit_types};
use crate::error::{AppError, chain};
use crate::host::{HostState, cut};
use crate::runtime::Inner;
use crate::types::{Action, CallEnded, CallInfo, CollectedDigits, MediaFinished, Phase};

/// Most bytes of a trap message (error chain plus the app's output).
const MAX_TRAP_MESSAGE: usize = 2048;

/// The app instance serving one call. Not shared: the call's task owns it.
pub struct AppInstance {
    runtime: Arc<Inner>,
    store: Store<HostState>,
    app: CallApp,
    failed: Option<AppError>,
}

impl std::fmt::Debug for AppInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppInstance")
            .field("call_id", &self.call_id())
            .field("phase", &self.phase())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

enum Event<'a> {
    CallReceived(wit_types::CallInfo),
    Dtmf(&'a str, &'a str),
    SayFinished(&'a str, wit_types::MediaFinished),
    PlayFinished(&'a str, wit_types::MediaFinished),
    DtmfCollected(&'a str, wit_types::CollectedDigits),
    CallFinished(&'a str, wit_types::CallEnded),
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::CallReceived(_) => "on-call-received",
            Event::Dtmf(..) => "on-dtmf",
            Event::SayFinished(..) => "on-say-finished",
            Event::PlayFinished(..) => "on-play-finished",
            Event::DtmfCollected(..) => "on-dtmf-collected",
            Event::CallFinished(..) => "on-call-finished",
        }
    }
}

impl AppInstance {
    pub(crate) fn new(runtime: Arc<Inner>, store: Store<HostState>, app: CallApp) -> Self {
        AppInstance {
            runtime,
            store,
            app,
            failed: None,
        }
    }

    /// The call this instance serves.
    pub fn call_id(&self) -> &str {
        &self.store.data().call_id
    }

    /// The call's phase as the instance sees it (including the app's own requests).
    pub fn phase(&self) -> Phase {
        self.store.data().phase
    }

    /// Tells the instance the call's phase, for example `Answered` once the 200 OK went out
    /// or `Finished` when the caller hung up, so the imports judge requests correctly.
    pub fn set_phase(&mut self, phase: Phase) {
        self.store.data_mut().phase = phase;
    }

    /// The error that poisoned this instance, if any.
    pub fn failed(&self) -> Option<&AppError> {
        self.failed.as_ref()
    }

    /// Delivers `on-call-received`.
    pub async fn on_call_received(&mut self, info: &CallInfo) -> Result<Vec<Action>, AppError> {
        self.deliver(Event::CallReceived(info.into())).await
    }

    /// Delivers `on-dtmf` for one key of `call`.
    pub async fn on_dtmf(&mut self, call: &str, digit: &str) -> Result<Vec<Action>, AppError> {
        self.deliver(Event::Dtmf(call, digit)).await
    }

    /// Delivers `on-say-finished`.
    pub async fn on_say_finished(
        &mut self,
        call: &str,
        finished: &MediaFinished,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(Event::SayFinished(call, finished.into()))
            .await
    }

    /// Delivers `on-play-finished`.
    pub async fn on_play_finished(
        &mut self,
        call: &str,
        finished: &MediaFinished,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(Event::PlayFinished(call, finished.into()))
            .await
    }

    /// Delivers `on-dtmf-collected`.
    pub async fn on_dtmf_collected(
        &mut self,
        call: &str,
        collected: &CollectedDigits,
    ) -> Result<Vec<Action>, AppError> {
        self.deliver(Event::DtmfCollected(call, collected.into()))
            .await
    }

    /// Delivers `on-call-finished`, the last event. The phase becomes `Finished` first, so
    /// every call-control request the app makes now is refused with `invalid-state`.
    pub async fn on_call_finished(
        &mut self,
        call: &str,
        ended: &CallEnded,
    ) -> Result<Vec<Action>, AppError> {
        self.set_phase(Phase::Finished);
        self.deliver(Event::CallFinished(call, (*ended).into()))
            .await
    }

    async fn deliver(&mut self, event: Event<'_>) -> Result<Vec<Action>, AppError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let name = event.name();
        let state = self.store.data_mut();
        state.begin_event();
        state.deadline.reset(self.runtime.deadline_ticks);
        self.store.set_epoch_deadline(1);
        self.runtime.counters.events.fetch_add(1, Ordering::Relaxed);

        let guest = self.app.pbx_app_handlers();
        let store = &mut self.store;
        let result = match &event {
            Event::CallReceived(info) => guest.call_on_call_received(store, info).await,
            Event::Dtmf(call, digit) => guest.call_on_dtmf(store, &call.to_string(), digit).await,
            Event::SayFinished(call, f) => {
                guest
                    .call_on_say_finished(store, &call.to_string(), f)
                    .await
            }
            Event::PlayFinished(call, f) => {
                guest
                    .call_on_play_finished(store, &call.to_string(), f)
                    .await
            }
            Event::DtmfCollected(call, c) => {
                guest
                    .call_on_dtmf_collected(store, &call.to_string(), c)
                    .await
            }
            Event::CallFinished(call, e) => {
                guest
                    .call_on_call_finished(store, &call.to_string(), *e)
                    .await
            }
        };

        match result {
            Ok(()) => {
                let state = self.store.data_mut();
                if let Some(output) = state.output.take() {
                    debug!(call_id = %state.call_id, app_id = %state.app_id, event = name, "app output: {output}");
                }
                Ok(std::mem::take(&mut state.actions))
            }
            Err(e) => {
                let err = classify(&self.runtime, &self.store, &e);
                let state = self.store.data();
                warn!(
                    call_id = %state.call_id,
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
