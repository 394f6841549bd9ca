//! The event hub: the one door through which call code reports events, and the recorder
//! task behind it that stores them in batches, publishes them to live subscribers and
//! hands them to the webhook dispatcher.
//!
//! Invariants: [`EventHub::emit`] never blocks, awaits or touches the database (a full
//! queue drops the event, counts it and warns at most once a second); events are stored,
//! published and dispatched in emit order; a subscriber only sees events that are stored
//! (they carry their id); when the last hub is dropped the recorder stores what is still
//! queued, stops the webhook workers and ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pbx_store::{EventRecord, NewEvent, Store};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::webhooks::{Dispatcher, WebhookChanges, WebhookConfig};
use crate::log_limit::RateLimit;

/// Events that may wait for the recorder; beyond this `emit` drops.
pub const EVENT_QUEUE: usize = 16_384;
/// Most events stored in one transaction.
pub const MAX_BATCH: usize = 256;
/// Stored events a slow live subscriber may fall behind by before it misses some.
pub const BROADCAST_CAPACITY: usize = 4096;

/// The cheap, cloneable handle call code emits events through; see [`EventHub::spawn`].
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<NewEvent>,
    live: broadcast::Sender<EventRecord>,
    webhooks_changed: Arc<WebhookChanges>,
    /// Signalled by [`EventHub::close`]: store what is queued, then stop.
    closing: Arc<tokio::sync::Notify>,
    dropped: AtomicU64,
    /// The drop warning, at most once a second (taken with `try_lock` only, so `emit`
    /// never waits for it).
    drop_warning: Mutex<RateLimit>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("queued", &(EVENT_QUEUE - self.inner.tx.capacity()))
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl EventHub {
    /// Starts the recorder task on the current tokio runtime (call it from within one) and
    /// returns the hub and the task. The task ends after every hub clone is dropped and the queue is stored.
    /// At start it fails webhook deliveries a previous run left pending.
    pub fn spawn(store: Arc<Store>, config: WebhookConfig) -> (EventHub, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let (live, _) = broadcast::channel(BROADCAST_CAPACITY);
        let webhooks_changed = Arc::new(WebhookChanges::default());
        let dispatcher = Dispatcher::new(store.clone(), config, webhooks_changed.clone());
        let closing = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(record(
            store,
            rx,
            live.clone(),
            dispatcher,
            webhooks_changed.clone(),
            closing.clone(),
        ));
        let hub = EventHub {
            inner: Arc::new(Inner {
                tx,
                live,
                webhooks_changed,
                closing,
                dropped: AtomicU64::new(0),
                drop_warning: Mutex::new(RateLimit::new(Duration::from_secs(1))),
            }),
        };
        (hub, task)
    }

    /// Queues `event` for recording; never blocks or awaits. Safe from any thread.
    pub fn emit(&self, event: NewEvent) {
        if self.inner.tx.try_send(event).is_err() {
            metrics::counter!(crate::metrics::EVENTS_DROPPED).increment(1);
            let dropped = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.warn_rate_limited(dropped);
        }
    }

    /// A live stream of stored events from now on (every account: filter by
    /// `account_id`). A receiver that falls more than [`BROADCAST_CAPACITY`] behind gets
    /// `RecvError::Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.inner.live.subscribe()
    }

    /// Tells the dispatcher a webhook was created, changed, re-keyed or deleted: it
    /// re-reads the list at once (new workers start, removed ones stop and fail what they
    /// hold). Without it the list is re-read every `refresh_every` while events flow.
    pub fn webhooks_changed(&self) {
        self.inner.webhooks_changed.mark();
    }

    /// Stops the recorder at shutdown even while clones of the hub live on: what is queued
    /// is stored, published and handed to the webhook workers, then the task ends (await
    /// the handle [`EventHub::spawn`] returned). Later `emit`s are dropped.
    pub fn close(&self) {
        self.inner.closing.notify_one();
    }

    /// Events dropped because the queue was full (or the recorder had stopped).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    fn warn_rate_limited(&self, dropped: u64) {
        // Another thread holding the limiter is warning (or about to): skip, never wait.
        let mut limit = match self.inner.drop_warning.try_lock() {
            Ok(limit) => limit,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        if limit.allow(Instant::now()).is_some() {
            drop(limit);
            tracing::warn!(dropped, "event queue full: events are being dropped");
        }
    }
}

/// The recorder task: takes what is queued (up to [`MAX_BATCH`]), stores it in one
/// transaction, publishes it and dispatches it, until every hub is gone.
async fn record(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<NewEvent>,
    live: broadcast::Sender<EventRecord>,
    mut dispatcher: Dispatcher,
    webhooks_changed: Arc<WebhookChanges>,
    closing: Arc<tokio::sync::Notify>,
) {
    let cleanup = store.clone();
    match tokio::task::spawn_blocking(move || cleanup.fail_interrupted_deliveries()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot fail interrupted webhook deliveries"),
        Err(e) => tracing::error!(error = %e, "webhook cleanup task failed"),
    }
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            received = rx.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
            }
            () = webhooks_changed.wake.notified() => {
                dispatcher.reload().await;
                continue;
            }
            () = closing.notified() => {
                // No more events are accepted; the ones already queued still come out.
                rx.close();
                continue;
            }
        }
        let events = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let count = events.len();
        let writer = store.clone();
        let stored = match tokio::task::spawn_blocking(move || writer.insert_events(&events)).await
        {
            Ok(Ok(stored)) => stored,
            Ok(Err(e)) => {
                tracing::error!(error = %e, count, "cannot store events; dropping them");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, count, "event store task failed");
                continue;
            }
        };
        metrics::counter!(crate::metrics::EVENTS_RECORDED).increment(stored.len() as u64);
        for record in &stored {
            // No subscriber is not an error.
            let _ = live.send(record.clone());
        }
        dispatcher.dispatch(&stored).await;
    }
    dispatcher.shutdown();
    tracing::debug!("event recorder stopped");
}
