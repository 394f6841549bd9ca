//! The event hub and webhook delivery against real local HTTP servers: retries with
//! backoff (500, then a hang past the timeout, then 200), signatures over the exact body,
//! per-webhook ordering, a dead endpoint, queue overflow, `emit` never waiting, the
//! shutdown flush, and the outbound address policy (loopback refused unless allowed; the
//! log says only "refused by policy" or "unreachable").

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use pbx::events::{EventHub, WebhookConfig};
use pbx_api::net_policy::NetPolicy;
use pbx_store::{
    DEFAULT_ACCOUNT_ID, Delivery, DeliveryFilter, DeliveryStatus, EventRecord, EventType, NewEvent,
    NewWebhook, Store, Webhook,
};
use serde_json::json;
use sha2::Sha256;

/// One request the test server saw, recorded as it arrived.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    /// The answer it gets; `None` when the server hangs past the client's timeout.
    answer: Option<StatusCode>,
}

/// How the test server answers the n-th request (from 0).
#[derive(Clone, Copy)]
enum Script {
    /// 500, then a hang past the client's timeout, then 200 for everything.
    FailTwice,
    /// Never answers within the test.
    Hang,
}

#[derive(Clone)]
struct Server {
    seen: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
    script: Script,
}

async fn hook(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = server.count.fetch_add(1, Ordering::SeqCst);
    let answer = match (server.script, n) {
        (Script::FailTwice, 0) => Some(StatusCode::INTERNAL_SERVER_ERROR),
        (Script::FailTwice, 1) | (Script::Hang, _) => None,
        (Script::FailTwice, _) => Some(StatusCode::OK),
    };
    server.seen.lock().unwrap().push(Received {
        headers,
        body,
        answer,
    });
    match answer {
        Some(status) => status,
        None => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
    }
}

/// Starts a test server; returns its URL and what it saw.
async fn start_server(script: Script) -> (String, Server) {
    let server = Server {
        seen: Arc::default(),
        count: Arc::default(),
        script,
    };
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/hook"), server)
}

fn test_config() -> WebhookConfig {
    WebhookConfig {
        base_delay: Duration::from_millis(50),
        max_attempts: 5,
        timeout: Duration::from_millis(300),
        queue_capacity: 1000,
        refresh_every: Duration::from_secs(2),
        // The test servers listen on loopback.
        net_policy: Arc::new(NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()])),
    }
}

fn open_store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    (dir, store)
}

fn create_hook(store: &Store, url: &str) -> Webhook {
    store
        .create_webhook(NewWebhook {
            account_id: DEFAULT_ACCOUNT_ID.into(),
            url: url.into(),
            event_types: vec!["*".into()],
            enabled: true,
        })
        .unwrap()
}

fn event(seq: u32) -> NewEvent {
    let mut e = NewEvent::new(DEFAULT_ACCOUNT_ID, EventType::DtmfReceived);
    e.call_id = Some("call-1".into());
    e.properties = json!({ "seq": seq, "digit": "5" });
    e
}

/// Polls `check` every 20 ms until it is true or `limit` passes.
async fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

fn deliveries(store: &Store, hook: &Webhook) -> Vec<Delivery> {
    store
        .deliveries(
            DEFAULT_ACCOUNT_ID,
            &hook.id,
            DeliveryFilter {
                status: None,
                limit: 1000,
            },
        )
        .unwrap()
}

/// Checks `Pbx-Signature` against the secret over the exact body received.
fn verify(secret: &str, received: &Received) {
    let header = |name: &str| received.headers[name].to_str().unwrap().to_owned();
    let signature = header("pbx-signature");
    let timestamp = header("pbx-timestamp");
    let (t, v1) = signature.split_once(',').unwrap();
    assert_eq!(t, format!("t={timestamp}"));
    let v1 = hex::decode(v1.strip_prefix("v1=").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&received.body);
    mac.verify_slice(&v1).expect("signature verifies");
    let now = chrono::Utc::now().timestamp();
    assert!((now - timestamp.parse::<i64>().unwrap()).abs() < 60);
    assert_eq!(header("content-type"), "application/json");
    let record: EventRecord = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(header("pbx-event-id"), record.id.to_string());
    assert_eq!(header("pbx-event-type"), record.kind.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_sign_and_keep_order() {
    let (_dir, store) = open_store();
    let (url, server) = start_server(Script::FailTwice).await;
    let hook = create_hook(&store, &url);
    let (hub, task) = EventHub::spawn(store.clone(), test_config());
    let mut live = hub.subscribe();

    for seq in 1..=20 {
        hub.emit(event(seq));
    }
    // Subscribers get every stored event, in order, with its id.
    let mut ids = Vec::new();
    for seq in 1..=20 {
        let record = tokio::time::timeout(Duration::from_secs(5), live.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.properties["seq"], seq);
        ids.push(record.id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let delivered = wait_for(Duration::from_secs(10), || {
        let log = deliveries(&store, &hook);
        log.len() == 20 && log.iter().all(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    assert!(delivered, "{:#?}", deliveries(&store, &hook));

    // The first event took three attempts: 500, a timeout, 200.
    let log = deliveries(&store, &hook);
    let first = log.iter().find(|d| d.event_id == ids[0]).unwrap();
    assert_eq!(
        (first.status, first.attempts, first.http_status),
        (DeliveryStatus::Delivered, 3, Some(200))
    );
    assert_eq!(first.last_error, None);
    assert!(
        log.iter()
            .filter(|d| d.event_id != ids[0])
            .all(|d| d.attempts == 1 && d.http_status == Some(200))
    );

    // Accepted requests arrive in event order, and none before event 1 was accepted.
    let seen = server.seen.lock().unwrap().clone();
    let arrivals: Vec<(i64, Option<StatusCode>)> = seen
        .iter()
        .map(|r| {
            let id = serde_json::from_slice::<EventRecord>(&r.body).unwrap().id;
            (id, r.answer)
        })
        .collect();
    assert_eq!(arrivals.len(), 22, "20 events + 2 failed attempts");
    assert_eq!(
        arrivals[0],
        (ids[0], Some(StatusCode::INTERNAL_SERVER_ERROR))
    );
    assert_eq!(arrivals[1], (ids[0], None));
    let accepted: Vec<i64> = arrivals[2..].iter().map(|(id, _)| *id).collect();
    assert_eq!(accepted, ids, "in order");
    for received in &seen {
        verify(&hook.secret, received);
    }
    drop(hub);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_fails_after_max_attempts() {
    let (_dir, store) = open_store();
    // A port with nobody listening: connection refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = WebhookConfig {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        ..test_config()
    };
    let (hub, _task) = EventHub::spawn(store.clone(), config);
    // An event before the webhook exists loads the (empty) list...
    hub.emit(event(0));
    assert!(
        wait_for(Duration::from_secs(5), || {
            store
                .call_events(DEFAULT_ACCOUNT_ID, "call-1")
                .unwrap()
                .len()
                == 1
        })
        .await
    );
    // ...and `webhooks_changed` makes the next one see the new webhook at once (the
    // periodic refresh is 2 s away).
    let hook = create_hook(&store, &format!("http://127.0.0.1:{port}/hook"));
    hub.webhooks_changed();
    hub.emit(event(1));

    // Event 0 may still be on its way to the dispatcher when the list reloads, so it can
    // be delivered too: every delivery must end failed, each after all its attempts.
    let failed = wait_for(Duration::from_secs(10), || {
        let log = deliveries(&store, &hook);
        !log.is_empty() && log.iter().all(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    let log = deliveries(&store, &hook);
    assert!(failed, "{log:#?}");
    assert!((1..=2).contains(&log.len()), "{log:#?}");
    for delivery in &log {
        assert_eq!(delivery.attempts, 3);
        assert_eq!(delivery.http_status, None);
        assert_eq!(delivery.next_attempt_at, None);
        // Never the OS's reason ("connection refused"): that would map the host's ports.
        assert_eq!(delivery.last_error.as_deref(), Some("unreachable"));
    }
}

/// With the default policy, a webhook to a loopback listener, written as an address or as
/// a name, is never connected to, and its log says "refused by policy".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_targets_are_refused_by_the_default_policy() {
    let (_dir, store) = open_store();
    let (url, server) = start_server(Script::FailTwice).await;
    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/hook");
    let config = WebhookConfig {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        net_policy: Arc::new(NetPolicy::default()),
        ..test_config()
    };
    let hooks: Vec<Webhook> = [
        url.clone(),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
    ]
    .iter()
    .enumerate()
    .map(|(n, url)| {
        store
            .create_webhook(NewWebhook {
                account_id: DEFAULT_ACCOUNT_ID.into(),
                url: url.clone(),
                event_types: vec![EventType::ALL[n].as_str().into()],
                enabled: true,
            })
            .unwrap()
    })
    .collect();
    let (hub, _task) = EventHub::spawn(store.clone(), config);
    for n in 0..hooks.len() {
        let mut e = NewEvent::new(DEFAULT_ACCOUNT_ID, EventType::ALL[n]);
        e.call_id = Some("call-1".into());
        hub.emit(e);
    }
    let failed = wait_for(Duration::from_secs(10), || {
        hooks.iter().all(|hook| {
            let log = deliveries(&store, hook);
            log.len() == 1 && log[0].status == DeliveryStatus::Failed
        })
    })
    .await;
    assert!(
        failed,
        "{:#?}",
        hooks
            .iter()
            .map(|h| deliveries(&store, h))
            .collect::<Vec<_>>()
    );
    for hook in &hooks {
        let log = deliveries(&store, hook);
        assert_eq!(
            log[0].last_error.as_deref(),
            Some("refused by policy"),
            "{}",
            hook.url
        );
    }
    assert_eq!(
        server.count.load(Ordering::SeqCst),
        0,
        "the listener was reached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_never_waits_for_a_hanging_webhook() {
    let (_dir, store) = open_store();
    let (url, _server) = start_server(Script::Hang).await;
    let hook = create_hook(&store, &url);
    let config = WebhookConfig {
        queue_capacity: 100,
        timeout: Duration::from_secs(30),
        ..test_config()
    };
    let (hub, task) = EventHub::spawn(store.clone(), config);

    let start = Instant::now();
    for seq in 0..10_000 {
        hub.emit(event(seq));
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(500),
        "emit took {elapsed:?}"
    );
    assert_eq!(hub.dropped(), 0);

    // Everything is recorded, the webhook's queue holds at most 100 (the rest failed at
    // once with "queue full"), and the first delivery is still hanging.
    let recorded = wait_for(Duration::from_secs(20), || {
        store
            .call_events(DEFAULT_ACCOUNT_ID, "call-1")
            .unwrap()
            .len()
            == 10_000
    })
    .await;
    assert!(recorded);
    let overflowed = wait_for(Duration::from_secs(10), || {
        store
            .deliveries(
                DEFAULT_ACCOUNT_ID,
                &hook.id,
                DeliveryFilter {
                    status: Some(DeliveryStatus::Pending),
                    limit: 1000,
                },
            )
            .unwrap()
            .len()
            == 100
    })
    .await;
    assert!(overflowed);
    let failed = store
        .deliveries(
            DEFAULT_ACCOUNT_ID,
            &hook.id,
            DeliveryFilter {
                status: Some(DeliveryStatus::Failed),
                limit: 1000,
            },
        )
        .unwrap();
    assert_eq!(failed.len(), 1000, "a full page of failed deliveries");
    assert!(
        failed
            .iter()
            .all(|d| d.last_error.as_deref() == Some("queue full") && d.attempts == 0)
    );

    // Shutdown does not wait for the hanging request.
    drop(hub);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_hub_flushes_the_queue() {
    let (_dir, store) = open_store();
    let (hub, task) = EventHub::spawn(store.clone(), test_config());
    let clone = hub.clone();
    for seq in 0..600 {
        clone.emit(event(seq));
    }
    drop(clone);
    drop(hub);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let events = store.call_events(DEFAULT_ACCOUNT_ID, "call-1").unwrap();
    assert_eq!(events.len(), 600);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.properties["seq"] == i)
    );
}
