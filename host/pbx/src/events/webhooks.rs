//! Webhook delivery: the dispatcher that turns recorded events into delivery rows and
//! queues them per webhook, one worker task per webhook that POSTs them in order with
//! retries, and the signature.
//!
//! Invariants: a webhook's deliveries are attempted strictly in event order, one at a time
//! ([`super::retry::DeliveryQueue`]); every attempt is written to the delivery row before
//! the next one starts; a full queue fails the delivery at once ("queue full") instead of
//! waiting; nothing here is awaited by call code (the dispatcher runs in the recorder task
//! and the workers in their own tasks); the secret is never logged; every attempt is held
//! to the outbound address policy (`crate::outbound`), and its log says only "refused by
//! policy" or "unreachable" when no answer came, never why a connection failed; when the
//! policy-bound client cannot be built, no delivery is sent at all (each attempt fails
//! with `outbound::NO_CLIENT`): there is no fallback client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::{Hmac, Mac};
use pbx_api::net_policy::NetPolicy;
use pbx_store::{DeliveryStatus, DeliveryUpdate, EventRecord, Store, Webhook};
use sha2::Sha256;
use tokio::sync::Notify;

use super::retry::{Backoff, DeliveryQueue, Outcome};

/// How webhooks are delivered; the defaults suit production, tests shorten the times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The wait after the first failed attempt; later waits double (default 1 s).
    pub base_delay: Duration,
    /// Attempts per delivery in all (default 5; fewer than 3 is raised to 3).
    pub max_attempts: u32,
    /// How long one attempt may take, connection included (default 5 s).
    pub timeout: Duration,
    /// Deliveries one webhook may have queued; more fail with "queue full" (default 1000).
    pub queue_capacity: usize,
    /// How stale the dispatcher's copy of the webhook list may get when nobody calls
    /// [`super::EventHub::webhooks_changed`] (default 2 s).
    pub refresh_every: Duration,
    /// Which addresses deliveries may go to (default: no loopback, private, link-local or
    /// reserved address).
    pub net_policy: Arc<NetPolicy>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            base_delay: Duration::from_secs(1),
            max_attempts: 5,
            timeout: Duration::from_secs(5),
            queue_capacity: 1000,
            refresh_every: Duration::from_secs(2),
            net_policy: Arc::new(NetPolicy::default()),
        }
    }
}

impl WebhookConfig {
    /// The retry schedule this configuration asks for.
    fn backoff(&self) -> Backoff {
        Backoff {
            base: self.base_delay,
            max_attempts: self.max_attempts.max(3),
        }
    }
}

/// Signs a webhook request: the value of the `Pbx-Signature` header for `body` sent at
/// unix time `timestamp` with `secret`.
///
/// Every webhook request is a `POST` with `Content-Type: application/json`, the event's
/// JSON as body, and the headers `Pbx-Event-Id` (the event id), `Pbx-Event-Type` (e.g.
/// `CALL_RECEIVED`), `Pbx-Timestamp` (unix seconds when this attempt was made) and
/// `Pbx-Signature: t=<timestamp>,v1=<hex>` where `<hex>` is the lowercase hex
/// HMAC-SHA256, keyed with the webhook's whole secret string (`whsec_...`, as UTF-8), of
/// the bytes `<timestamp>` `.` `<body>` (the exact body bytes received). A retry is signed
/// again with its own timestamp. To verify, recompute and compare in constant time, and
/// refuse timestamps too far from now (say 5 minutes) to stop replays:
///
/// ```
/// use hmac::{Hmac, Mac};
///
/// fn verify(secret: &str, signature_header: &str, body: &[u8], now_unix: i64) -> bool {
///     let mut t = None;
///     let mut v1 = None;
///     for part in signature_header.split(',') {
///         match part.split_once('=') {
///             Some(("t", v)) => t = v.parse::<i64>().ok(),
///             Some(("v1", v)) => v1 = hex::decode(v).ok(),
///             _ => {}
///         }
///     }
///     let (Some(t), Some(v1)) = (t, v1) else { return false };
///     if (now_unix - t).abs() > 300 {
///         return false;
///     }
///     let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
///         return false;
///     };
///     mac.update(format!("{t}.").as_bytes());
///     mac.update(body);
///     mac.verify_slice(&v1).is_ok() // constant-time comparison
/// }
///
/// let body = br#"{"id":1,"type":"CALL_RECEIVED"}"#;
/// let header = pbx::events::sign("whsec_0123", 1_700_000_000, body);
/// assert!(verify("whsec_0123", &header, body, 1_700_000_010));
/// assert!(!verify("whsec_other", &header, body, 1_700_000_010));
/// ```
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        signature_hex(secret, timestamp, body)
    )
}

/// The lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`.
fn signature_hex(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// One queued delivery: its row and the event it carries, serialised once.
#[derive(Debug, Clone)]
struct Job {
    delivery_id: String,
    event_id: i64,
    event_type: &'static str,
    body: bytes::Bytes,
}

/// Where a worker sends and what it signs with; replaced when the webhook changes.
#[derive(Clone, PartialEq, Eq)]
struct Target {
    url: String,
    secret: String,
}

/// A webhook's worker: its queue, its target and the task's wake-up.
struct Worker {
    queue: Mutex<DeliveryQueue<Job>>,
    target: Mutex<Target>,
    wake: Notify,
    closed: AtomicBool,
}

impl Worker {
    fn queue(&self) -> MutexGuard<'_, DeliveryQueue<Job>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn target(&self) -> Target {
        self.target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_target(&self, target: Target) {
        *self
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = target;
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// The answer to one attempt.
struct AttemptResult {
    delivered: bool,
    http_status: Option<u16>,
    error: Option<String>,
}

/// Word from the API that the webhook list changed: a flag the dispatcher checks before
/// each batch (so an event emitted after the change sees it) and a wake-up for the
/// recorder when it is idle.
#[derive(Debug, Default)]
pub(crate) struct WebhookChanges {
    dirty: AtomicBool,
    pub(crate) wake: Notify,
}

impl WebhookChanges {
    /// Marks the list stale and wakes the recorder.
    pub(crate) fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Reads the webhook list, matches events against it and feeds the workers.
pub(crate) struct Dispatcher {
    store: Arc<Store>,
    /// `None` when it could not be built: every attempt then fails unsent.
    client: Option<reqwest::Client>,
    config: WebhookConfig,
    changes: Arc<WebhookChanges>,
    /// Enabled webhooks by account, as last loaded.
    hooks: HashMap<String, Vec<Webhook>>,
    loaded_at: Option<Instant>,
    workers: HashMap<String, Arc<Worker>>,
}

impl Dispatcher {
    /// A dispatcher with no workers yet; the list is loaded on the first event.
    pub(crate) fn new(
        store: Arc<Store>,
        config: WebhookConfig,
        changes: Arc<WebhookChanges>,
    ) -> Self {
        // The policy's resolver, no redirects (a 3xx is a failed attempt), no proxy; the
        // error, if any, is logged when the server starts.
        let client = crate::outbound::client(
            config.net_policy.clone(),
            concat!("pbx-webhooks/", env!("CARGO_PKG_VERSION")),
            Some(config.timeout),
        );
        Dispatcher {
            store,
            client,
            config,
            changes,
            hooks: HashMap::new(),
            loaded_at: None,
            workers: HashMap::new(),
        }
    }

    /// Queues a delivery of each record to every enabled webhook of its account that
    /// wants its type.
    pub(crate) async fn dispatch(&mut self, records: &[EventRecord]) {
        self.refresh_if_stale().await;
        let mut pairs = Vec::new();
        let mut jobs = Vec::new();
        for record in records {
            let Some(hooks) = self.hooks.get(&record.account_id) else {
                continue;
            };
            let mut body = None;
            for hook in hooks.iter().filter(|h| h.wants(record.kind)) {
                let body = body
                    .get_or_insert_with(|| match serde_json::to_vec(record) {
                        Ok(b) => bytes::Bytes::from(b),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot serialise an event");
                            bytes::Bytes::new()
                        }
                    })
                    .clone();
                pairs.push((hook.id.clone(), record.id));
                jobs.push((
                    hook.id.clone(),
                    Job {
                        delivery_id: String::new(),
                        event_id: record.id,
                        event_type: record.kind.as_str(),
                        body,
                    },
                ));
            }
        }
        if pairs.is_empty() {
            return;
        }
        let store = self.store.clone();
        let ids = match tokio::task::spawn_blocking(move || store.create_deliveries(&pairs)).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot record webhook deliveries; dropping them");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "webhook delivery task failed");
                return;
            }
        };
        let now = Instant::now();
        let mut overflow = Vec::new();
        for ((hook_id, mut job), id) in jobs.into_iter().zip(ids) {
            let Some(id) = id else { continue };
            job.delivery_id = id;
            let Some(worker) = self.workers.get(&hook_id) else {
                continue;
            };
            if let Err(job) = worker.queue().push(now, job) {
                metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "outcome" => "failed")
                    .increment(1);
                overflow.push((job.delivery_id, failed_update(0, "queue full")));
            } else {
                worker.wake.notify_one();
            }
        }
        if !overflow.is_empty() {
            tracing::warn!(
                deliveries = overflow.len(),
                "webhook queue full: deliveries failed without an attempt"
            );
            write_updates(&self.store, overflow).await;
        }
    }

    /// Closes every worker; what they still hold is failed as they stop.
    pub(crate) fn shutdown(&mut self) {
        for worker in self.workers.values() {
            worker.close();
        }
        self.workers.clear();
    }

    async fn refresh_if_stale(&mut self) {
        let stale = self
            .loaded_at
            .is_none_or(|at| at.elapsed() >= self.config.refresh_every);
        if stale || self.changes.dirty.load(Ordering::Acquire) {
            self.reload().await;
        }
    }

    /// Re-reads the enabled webhooks: starts workers for new ones, retargets changed ones
    /// and stops those that went away.
    pub(crate) async fn reload(&mut self) {
        // Cleared before reading, so a change during the read is seen next time.
        self.changes.dirty.store(false, Ordering::Release);
        let store = self.store.clone();
        let hooks = match tokio::task::spawn_blocking(move || store.enabled_webhooks()).await {
            Ok(Ok(hooks)) => hooks,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read webhooks; keeping the last list");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "webhook list task failed");
                return;
            }
        };
        self.loaded_at = Some(Instant::now());
        let mut by_account: HashMap<String, Vec<Webhook>> = HashMap::new();
        for hook in hooks {
            let target = Target {
                url: hook.url.clone(),
                secret: hook.secret.clone(),
            };
            match self.workers.get(&hook.id) {
                Some(worker) => worker.set_target(target),
                None => {
                    let worker = Arc::new(Worker {
                        queue: Mutex::new(DeliveryQueue::new(
                            self.config.backoff(),
                            self.config.queue_capacity,
                        )),
                        target: Mutex::new(target),
                        wake: Notify::new(),
                        closed: AtomicBool::new(false),
                    });
                    tokio::spawn(run_worker(
                        hook.id.clone(),
                        worker.clone(),
                        self.store.clone(),
                        self.client.clone(),
                        self.config.net_policy.clone(),
                    ));
                    self.workers.insert(hook.id.clone(), worker);
                }
            }
            by_account
                .entry(hook.account_id.clone())
                .or_default()
                .push(hook);
        }
        let live: Vec<&str> = by_account
            .values()
            .flatten()
            .map(|h| h.id.as_str())
            .collect();
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|id| !live.contains(&id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(worker) = self.workers.remove(&id) {
                tracing::debug!(
                    webhook_id = %id,
                    "webhook disabled or deleted; stopping its worker"
                );
                worker.close();
            }
        }
        self.hooks = by_account;
    }
}

/// The update that fails a delivery for good.
fn failed_update(attempts: u32, error: &str) -> DeliveryUpdate {
    DeliveryUpdate {
        status: DeliveryStatus::Failed,
        attempts,
        http_status: None,
        last_error: Some(error.to_owned()),
        next_attempt_at: None,
    }
}

/// Writes delivery updates on a blocking thread, logging a failure.
async fn write_updates(store: &Arc<Store>, updates: Vec<(String, DeliveryUpdate)>) {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.update_deliveries(&updates)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot record a webhook delivery attempt"),
        Err(e) => tracing::error!(error = %e, "webhook delivery update task failed"),
    }
}

/// A webhook's worker task: attempts the head of its queue whenever it is due, records
/// each attempt, and on close fails what is left.
async fn run_worker(
    webhook_id: String,
    worker: Arc<Worker>,
    store: Arc<Store>,
    client: Option<reqwest::Client>,
    policy: Arc<NetPolicy>,
) {
    loop {
        if worker.closed.load(Ordering::Acquire) {
            let left: Vec<(String, DeliveryUpdate)> = worker
                .queue()
                .drain()
                .into_iter()
                .map(|job| {
                    (
                        job.delivery_id,
                        failed_update(
                            0,
                            "the webhook was disabled or deleted, or the server stopped",
                        ),
                    )
                })
                .collect();
            if !left.is_empty() {
                write_updates(&store, left).await;
            }
            return;
        }
        let now = Instant::now();
        let (attempt, due) = {
            let mut queue = worker.queue();
            (queue.poll_attempt(now), queue.poll_timeout())
        };
        let Some(attempt) = attempt else {
            match due {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                        () = worker.wake.notified() => {}
                    }
                }
                None => worker.wake.notified().await,
            }
            continue;
        };
        let target = worker.target();
        let result = send(client.as_ref(), &policy, &target, &attempt.item).await;
        let outcome = worker
            .queue()
            .handle_result(Instant::now(), result.delivered);
        let label = match &outcome {
            Some(Outcome::Delivered { .. }) => "delivered",
            Some(Outcome::Retry { .. }) => "retry",
            Some(Outcome::Failed { .. }) | None => "failed",
        };
        metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "outcome" => label).increment(1);
        let update = match outcome {
            Some(Outcome::Delivered { item, attempts }) => (
                item.delivery_id,
                DeliveryUpdate {
                    status: DeliveryStatus::Delivered,
                    attempts,
                    http_status: result.http_status,
                    last_error: None,
                    next_attempt_at: None,
                },
            ),
            Some(Outcome::Retry { item, attempts, at }) => {
                let wait = at.saturating_duration_since(Instant::now());
                let next = chrono::Duration::from_std(wait)
                    .ok()
                    .map(|d| Utc::now() + d);
                tracing::debug!(
                    webhook_id = %webhook_id, delivery_id = %item.delivery_id, attempts,
                    error = result.error.as_deref().unwrap_or(""),
                    "webhook attempt failed; will retry"
                );
                (
                    item.delivery_id,
                    DeliveryUpdate {
                        status: DeliveryStatus::Pending,
                        attempts,
                        http_status: result.http_status,
                        last_error: result.error,
                        next_attempt_at: next,
                    },
                )
            }
            Some(Outcome::Failed { item, attempts }) => {
                tracing::warn!(
                    webhook_id = %webhook_id, delivery_id = %item.delivery_id, attempts,
                    error = result.error.as_deref().unwrap_or(""),
                    "webhook delivery failed for good"
                );
                (
                    item.delivery_id,
                    DeliveryUpdate {
                        status: DeliveryStatus::Failed,
                        attempts,
                        http_status: result.http_status,
                        last_error: result.error,
                        next_attempt_at: None,
                    },
                )
            }
            // Drained while in flight: the close path fails it.
            None => continue,
        };
        write_updates(&store, vec![update]).await;
    }
}

/// One signed POST of `job` to `target`; success is a 2xx answer within the timeout.
/// Without a `client` (it could not be built) nothing is sent.
async fn send(
    client: Option<&reqwest::Client>,
    policy: &NetPolicy,
    target: &Target,
    job: &Job,
) -> AttemptResult {
    let unsent = |why: &str| AttemptResult {
        delivered: false,
        http_status: None,
        error: Some(why.to_owned()),
    };
    // A literal address never reaches the client's resolver: check it here.
    if crate::outbound::check_url(policy, &target.url).is_err() {
        return unsent(crate::outbound::REFUSED_BY_POLICY);
    }
    let Some(client) = client else {
        return unsent(crate::outbound::NO_CLIENT);
    };
    let timestamp = Utc::now().timestamp();
    let signature = sign(&target.secret, timestamp, &job.body);
    let request = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Pbx-Event-Id", job.event_id.to_string())
        .header("Pbx-Event-Type", job.event_type)
        .header("Pbx-Timestamp", timestamp.to_string())
        .header("Pbx-Signature", signature)
        .body(job.body.clone());
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            AttemptResult {
                delivered: status.is_success(),
                http_status: Some(status.as_u16()),
                error: (!status.is_success()).then(|| format!("HTTP {}", status.as_u16())),
            }
        }
        Err(e) => {
            // The cause stays in the server's debug log; the delivery log gets one word.
            tracing::debug!(error = ?e, "webhook attempt got no answer");
            AttemptResult {
                delivered: false,
                http_status: None,
                error: Some(crate::outbound::describe(&e).to_owned()),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") from RFC 4231's
        // commonly quoted example: here the message is "<t>.<body>".
        let header = sign("key", 1, b"x");
        assert!(header.starts_with("t=1,v1="));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1.x");
        assert_eq!(
            header,
            format!("t=1,v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        let fox = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
            mac.update(b"The quick brown fox jumps over the lazy dog");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(
            fox,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[tokio::test]
    async fn without_a_client_nothing_is_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        let open = NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let target = Target {
            url,
            secret: "whsec_test".into(),
        };
        let job = Job {
            delivery_id: "dlv_1".into(),
            event_id: 1,
            event_type: "CALL_RECEIVED",
            body: bytes::Bytes::from_static(b"{}"),
        };
        let result = send(None, &open, &target, &job).await;
        assert!(!result.delivered);
        assert_eq!(result.error.as_deref(), Some(crate::outbound::NO_CLIENT));
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(
            accepted.is_err(),
            "a request was sent without the policy's client"
        );
        // The policy still answers first for a denied target.
        let denied = send(None, &NetPolicy::default(), &target, &job).await;
        assert_eq!(
            denied.error.as_deref(),
            Some(crate::outbound::REFUSED_BY_POLICY)
        );
    }

    #[test]
    fn config_floors_attempts_at_three() {
        let config = WebhookConfig {
            max_attempts: 1,
            ..WebhookConfig::default()
        };
        assert_eq!(config.backoff().max_attempts, 3);
    }
}
