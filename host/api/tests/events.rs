//! The events surface of the admin API: webhook CRUD (overlaps, the secret shown once,
//! rotation, delivery logs), call event history, the polling feed, account scoping, and
//! the live websocket stream over a real socket.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use pbx_api::{ApiState, Backend, ComponentRejection, router};
use pbx_store::{
    CallRecord, CallStatus, DEFAULT_ACCOUNT_ID, DeliveryStatus, DeliveryUpdate, Direction,
    EventRecord, EventType, NewEvent, Quotas, Store,
};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite;
use tower::ServiceExt;

const TOKEN: &str = "test-token";

struct FakeBackend {
    live: Mutex<Vec<CallRecord>>,
    events: Mutex<Option<broadcast::Sender<EventRecord>>>,
    changed: AtomicUsize,
}

impl Backend for FakeBackend {
    fn check_component(&self, _bytes: &[u8]) -> Result<(), ComponentRejection> {
        Ok(())
    }

    fn live_calls(&self) -> Vec<CallRecord> {
        self.live.lock().unwrap().clone()
    }

    fn live_call(&self, id: &str) -> Option<CallRecord> {
        self.live_calls().into_iter().find(|c| c.id == id)
    }

    fn hangup_call(&self, _id: &str) -> bool {
        false
    }

    fn check_audio(&self, _bytes: &[u8]) -> Result<Value, String> {
        Err("no audio here".into())
    }

    fn subscribe_events(&self) -> Option<broadcast::Receiver<EventRecord>> {
        self.events
            .lock()
            .unwrap()
            .as_ref()
            .map(broadcast::Sender::subscribe)
    }

    fn webhooks_changed(&self) {
        self.changed.fetch_add(1, Ordering::SeqCst);
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    backend: Arc<FakeBackend>,
    router: Router,
    /// An API key of a second account.
    other_key: String,
    other_account: String,
}

impl Harness {
    fn new(events: Option<broadcast::Sender<EventRecord>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let other = store.create_account("other", Quotas::default()).unwrap();
        let (_, other_key) = store.create_api_key(&other.id, "test").unwrap();
        let backend = Arc::new(FakeBackend {
            live: Mutex::new(Vec::new()),
            events: Mutex::new(events),
            changed: AtomicUsize::new(0),
        });
        let router = router(ApiState {
            store: store.clone(),
            backend: backend.clone(),
            admin_token: TOKEN.into(),
        });
        Harness {
            _dir: dir,
            store,
            backend,
            router,
            other_key,
            other_account: other.id,
        }
    }

    async fn call_as(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(TOKEN, method, uri, body).await
    }
}

fn call_record(id: &str, account: &str, status: CallStatus) -> CallRecord {
    CallRecord {
        id: id.into(),
        account_id: account.into(),
        app_id: None,
        app_version: None,
        direction: Direction::Inbound,
        from: "alice".into(),
        to: "1000".into(),
        status,
        hangup_by: None,
        hangup_reason: None,
        tm_create: Utc::now(),
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: None,
        sip_call_id: None,
        master_call_id: None,
    }
}

fn event(account: &str, kind: EventType, call: &str) -> NewEvent {
    let mut e = NewEvent::new(account, kind);
    e.call_id = Some(call.into());
    e.app_id = Some("app_00000000000000aa".into());
    e
}

#[tokio::test]
async fn webhook_crud_overlaps_and_secret_shown_once() {
    let h = Harness::new(None);
    let (status, created) = h
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(json!({
                "url": "https://hooks.invalid/hooks",
                "event_types": ["CALL_RECEIVED", "CALL_FINISHED"]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("whk_") && secret.starts_with("whsec_"));
    assert_eq!(created["enabled"], true);
    assert_eq!(created["account_id"], DEFAULT_ACCOUNT_ID);
    assert_eq!(h.backend.changed.load(Ordering::SeqCst), 1);

    // The secret never shows again, in a show or a list.
    let (status, shown) = h
        .call(Method::GET, &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown.get("secret").is_none(), "{shown}");
    assert_eq!(
        shown["event_types"],
        json!(["CALL_RECEIVED", "CALL_FINISHED"])
    );
    let (_, list) = h.call(Method::GET, "/v1/webhooks", None).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&secret));

    // Overlaps are 409 naming the type and the webhook; "*" overlaps everything.
    for types in [json!(["APP_ERROR", "CALL_FINISHED"]), json!(["*"])] {
        let (status, err) = h
            .call(
                Method::POST,
                "/v1/webhooks",
                Some(json!({ "url": "https://hooks.invalid/b", "event_types": types })),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{err}");
        assert_eq!(err["error"]["code"], "conflict");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(&id), "{message}");
    }

    // Bad input names the field.
    for (body, field) in [
        (json!({ "url": "ftp://x", "event_types": ["*"] }), "url"),
        (
            json!({ "url": "https://x.invalid", "event_types": [] }),
            "event_types",
        ),
        (
            json!({ "url": "https://x.invalid", "event_types": ["NOT_A_TYPE"] }),
            "event_types",
        ),
        (
            json!({ "url": "https://x.invalid", "event_types": "*" }),
            "event_types",
        ),
        (json!({ "url": "https://x.invalid" }), "event_types"),
    ] {
        let (status, err) = h.call(Method::POST, "/v1/webhooks", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let (status, _) = h
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://x.invalid", "event_types": ["*"], "secret": "mine" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // PATCH, then rotate: a new secret, shown in that answer only.
    let (status, patched) = h
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(json!({ "enabled": false, "event_types": ["APP_ERROR"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["event_types"], json!(["APP_ERROR"]));
    assert!(patched.get("secret").is_none());
    let (status, rotated) = h
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(
        h.store
            .webhook(DEFAULT_ACCOUNT_ID, &id)
            .unwrap()
            .unwrap()
            .secret,
        new_secret
    );

    // Now CALL_FINISHED is free again.
    let (status, second) = h
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://other.invalid/x", "event_types": ["CALL_FINISHED"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");

    let (status, _) = h
        .call(Method::DELETE, &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = h
        .call(Method::GET, &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");
    assert_eq!(h.backend.changed.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_and_filtered() {
    let h = Harness::new(None);
    let (_, hook) = h
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://hooks.invalid/h", "event_types": ["*"] })),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let events = h
        .store
        .insert_events(&[
            event(DEFAULT_ACCOUNT_ID, EventType::CallReceived, "c1"),
            event(DEFAULT_ACCOUNT_ID, EventType::CallFinished, "c1"),
        ])
        .unwrap();
    let ids = h
        .store
        .create_deliveries(&[(id.to_owned(), events[0].id), (id.to_owned(), events[1].id)])
        .unwrap();
    h.store
        .update_delivery(
            ids[0].as_ref().unwrap(),
            &DeliveryUpdate {
                status: DeliveryStatus::Delivered,
                attempts: 3,
                http_status: Some(200),
                last_error: None,
                next_attempt_at: None,
            },
        )
        .unwrap();

    let (status, log) = h
        .call(Method::GET, &format!("/v1/webhooks/{id}/deliveries"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let rows = log["deliveries"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "pending");
    assert_eq!(rows[0]["event_type"], "CALL_FINISHED");
    assert_eq!(rows[1]["status"], "delivered");
    assert_eq!(rows[1]["attempts"], 3);
    assert_eq!(rows[1]["http_status"], 200);
    assert_eq!(rows[1]["event_id"], events[0].id);

    let (_, delivered) = h
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}/deliveries?status=delivered&limit=5"),
            None,
        )
        .await;
    assert_eq!(delivered["deliveries"].as_array().unwrap().len(), 1);
    let (_, one) = h
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}/deliveries?limit=1"),
            None,
        )
        .await;
    assert_eq!(one["deliveries"][0]["id"], rows[0]["id"]);
    for bad in ["status=done", "limit=0", "limit=x"] {
        let (status, _) = h
            .call(
                Method::GET,
                &format!("/v1/webhooks/{id}/deliveries?{bad}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn another_accounts_webhooks_and_events_are_404() {
    let h = Harness::new(None);
    let (_, hook) = h
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://hooks.invalid/h", "event_types": ["*"] })),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    h.store
        .upsert_call(&call_record(
            "c-default",
            DEFAULT_ACCOUNT_ID,
            CallStatus::Hangup,
        ))
        .unwrap();
    h.store
        .insert_events(&[event(
            DEFAULT_ACCOUNT_ID,
            EventType::CallReceived,
            "c-default",
        )])
        .unwrap();

    let key = h.other_key.clone();
    for (method, uri, body) in [
        (Method::GET, format!("/v1/webhooks/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            Some(json!({ "enabled": false })),
        ),
        (Method::DELETE, format!("/v1/webhooks/{id}"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/rotate-secret"),
            None,
        ),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries"), None),
        (Method::GET, "/v1/calls/c-default/events".to_owned(), None),
    ] {
        let (status, err) = h.call_as(&key, method.clone(), &uri, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {err}");
        assert_eq!(err["error"]["code"], "not_found");
    }
    let (status, list) = h.call_as(&key, Method::GET, "/v1/webhooks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list["webhooks"].as_array().unwrap().is_empty());
    let (_, events) = h.call_as(&key, Method::GET, "/v1/events", None).await;
    assert!(events["events"].as_array().unwrap().is_empty());

    // The other account may use "*" too: overlaps are per account.
    let (status, _) = h
        .call_as(
            &key,
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://hooks.invalid/o", "event_types": ["*"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The admin token acting for the other account sees it.
    let req = Request::builder()
        .uri("/v1/webhooks")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header("Pbx-Account", &h.other_account)
        .body(Body::empty())
        .unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn call_events_of_live_and_finished_calls() {
    let h = Harness::new(None);
    h.store
        .upsert_call(&call_record(
            "c-done",
            DEFAULT_ACCOUNT_ID,
            CallStatus::Hangup,
        ))
        .unwrap();
    h.backend.live.lock().unwrap().push(call_record(
        "c-live",
        DEFAULT_ACCOUNT_ID,
        CallStatus::Ringing,
    ));
    h.backend.live.lock().unwrap().push(call_record(
        "c-theirs",
        &h.other_account,
        CallStatus::Ringing,
    ));
    h.store
        .insert_events(&[
            event(DEFAULT_ACCOUNT_ID, EventType::CallReceived, "c-done"),
            event(DEFAULT_ACCOUNT_ID, EventType::CallReceived, "c-live"),
            event(DEFAULT_ACCOUNT_ID, EventType::CallEstablished, "c-done"),
            event(DEFAULT_ACCOUNT_ID, EventType::CallFinished, "c-done"),
        ])
        .unwrap();

    let (status, done) = h.call(Method::GET, "/v1/calls/c-done/events", None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let types: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED"]
    );
    let first = &done["events"][0];
    for key in [
        "id",
        "account_id",
        "call_id",
        "conference_id",
        "app_id",
        "timestamp",
        "properties",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }

    let (status, live) = h.call(Method::GET, "/v1/calls/c-live/events", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live["events"].as_array().unwrap().len(), 1);
    for missing in ["nope", "c-theirs"] {
        let (status, _) = h
            .call(Method::GET, &format!("/v1/calls/{missing}/events"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}

#[tokio::test]
async fn polling_feed_pages_and_filters() {
    let h = Harness::new(None);
    let batch: Vec<NewEvent> = (0..5)
        .map(|i| {
            let kind = if i % 2 == 0 {
                EventType::DtmfReceived
            } else {
                EventType::TimerFired
            };
            event(DEFAULT_ACCOUNT_ID, kind, if i < 3 { "c1" } else { "c2" })
        })
        .collect();
    h.store.insert_events(&batch).unwrap();
    h.store
        .insert_events(&[event(&h.other_account, EventType::TimerFired, "c9")])
        .unwrap();

    let (status, all) = h.call(Method::GET, "/v1/events", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["events"].as_array().unwrap().len(), 5);
    let (_, page) = h.call(Method::GET, "/v1/events?limit=2", None).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let last = page["last_id"].as_i64().unwrap();
    let (_, rest) = h
        .call(Method::GET, &format!("/v1/events?after={last}"), None)
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 3);
    let (_, timers) = h
        .call(
            Method::GET,
            "/v1/events?types=TIMER_FIRED&call_id=c2&app_id=app_00000000000000aa",
            None,
        )
        .await;
    assert_eq!(timers["events"].as_array().unwrap().len(), 1);
    let (_, none) = h
        .call(Method::GET, &format!("/v1/events?after={}", i64::MAX), None)
        .await;
    assert_eq!(none["last_id"], Value::Null);
    for bad in ["types=NOPE", "after=-1", "limit=0", "limit=5000"] {
        let (status, _) = h
            .call(Method::GET, &format!("/v1/events?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Serves the router on a loopback port.
async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

fn record(id: i64, account: &str, kind: EventType, call: &str) -> EventRecord {
    EventRecord {
        id,
        kind,
        account_id: account.into(),
        call_id: Some(call.into()),
        conference_id: None,
        app_id: None,
        at: Utc::now(),
        properties: json!({ "n": id }),
    }
}

/// The next text message, skipping pings.
async fn next_text(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .unwrap();
        if let tungstenite::Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn websocket_streams_the_accounts_matching_events() {
    let (tx, _) = broadcast::channel(8);
    let h = Harness::new(Some(tx.clone()));
    let addr = serve(h.router.clone()).await;

    // Bearer header, with filters.
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{addr}/v1/events/ws?types=CALL_RECEIVED,CALL_FINISHED&call_id=c1"
    ))
    .unwrap();
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    let (mut filtered, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    // The token as a query parameter (browsers), no filter.
    let (mut all, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/events/ws?token={TOKEN}"))
            .await
            .unwrap();
    // The other account's key.
    let (mut theirs, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/events/ws?token={}", h.other_key))
            .await
            .unwrap();

    tx.send(record(1, &h.other_account, EventType::CallReceived, "c1"))
        .unwrap();
    tx.send(record(2, DEFAULT_ACCOUNT_ID, EventType::DtmfReceived, "c1"))
        .unwrap();
    tx.send(record(3, DEFAULT_ACCOUNT_ID, EventType::CallReceived, "c2"))
        .unwrap();
    tx.send(record(4, DEFAULT_ACCOUNT_ID, EventType::CallFinished, "c1"))
        .unwrap();

    let got = next_text(&mut filtered).await;
    assert_eq!(
        (got["id"].as_i64(), got["type"].as_str()),
        (Some(4), Some("CALL_FINISHED"))
    );
    assert_eq!(got["properties"]["n"], 4);
    for want in [2, 3, 4] {
        assert_eq!(next_text(&mut all).await["id"], want);
    }
    assert_eq!(next_text(&mut theirs).await["id"], 1);

    // A lagging client is told how much it missed and goes on.
    for id in 10..30 {
        tx.send(record(id, DEFAULT_ACCOUNT_ID, EventType::TimerFired, "c3"))
            .unwrap();
    }
    let lagged = next_text(&mut all).await;
    assert_eq!(lagged["type"], "STREAM_LAGGED", "{lagged}");
    assert!(lagged["missed"].as_u64().unwrap() > 0);
    assert_eq!(next_text(&mut all).await["type"], "TIMER_FIRED");

    // A client close is clean.
    all.close(None).await.unwrap();
    // The server's stream ending closes the others with 1001.
    drop(tx);
    h.backend.events.lock().unwrap().take();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match filtered.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(u16::from(end.unwrap().code), 1001);
    let _ = theirs.send(tungstenite::Message::Close(None)).await;
}

#[tokio::test]
async fn websocket_refusals() {
    let h = Harness::new(None);
    let addr = serve(h.router.clone()).await;
    let status_of = |result: Result<_, tungstenite::Error>| match result {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => 101,
    };
    // No server stream: 503.
    let r = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/events/ws?token={TOKEN}"))
        .await
        .map(|_| ());
    assert_eq!(status_of(r), 503);
    // No or a wrong token: 401.
    let r = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/events/ws"))
        .await
        .map(|_| ());
    assert_eq!(status_of(r), 401);
    let r = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/events/ws?token=nope"))
        .await
        .map(|_| ());
    assert_eq!(status_of(r), 401);

    let (tx, _) = broadcast::channel(8);
    let h = Harness::new(Some(tx));
    let addr = serve(h.router.clone()).await;
    let r = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/v1/events/ws?token={TOKEN}&types=NOPE"
    ))
    .await
    .map(|_| ());
    assert_eq!(status_of(r), 400);
    // A plain GET (no upgrade) is a 4xx in the API's error shape.
    let (status, err) = h.call(Method::GET, "/v1/events/ws", None).await;
    assert!(status.is_client_error(), "{status}");
    assert!(err["error"]["code"].is_string(), "{err}");
}

/// Issue 9: an account key tries to point a webhook inside the host's network, in every
/// spelling the URL parser accepts; each is 400 `target_not_allowed` naming `url`, on
/// create and on PATCH, and nothing is stored. An app's `http_allow` entry naming such an
/// address literally is refused the same way.
#[tokio::test]
async fn webhooks_and_allow_lists_cannot_point_inside() {
    let h = Harness::new(None);
    let inside = [
        "http://127.0.0.1:9/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1:8080/",
        "http://127.1/",
        "https://[fd00::1]/x",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://user@192.168.1.1/",
        "http://localhost:9/",
    ];
    let (status, created) = h
        .call_as(
            &h.other_key,
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://hooks.invalid/h", "event_types": ["CALL_RECEIVED"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    for url in inside {
        for (method, uri) in [
            (Method::POST, "/v1/webhooks".to_owned()),
            (Method::PATCH, format!("/v1/webhooks/{id}")),
        ] {
            let (status, err) = h
                .call_as(
                    &h.other_key,
                    method.clone(),
                    &uri,
                    Some(json!({ "url": url, "event_types": ["CALL_FINISHED"] })),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {url}: {err}");
            assert_eq!(err["error"]["code"], "target_not_allowed", "{url}: {err}");
            assert_eq!(err["error"]["field"], "url", "{url}: {err}");
        }
    }
    let hooks = h.store.webhooks(&h.other_account).unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].url, "https://hooks.invalid/h");

    // A name that resolves only inside does not say where it resolved to.
    let (_, err) = h
        .call_as(
            &h.other_key,
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "http://localhost:9/", "event_types": ["*"] })),
        )
        .await;
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("127.0.0.1") && !message.contains("::1"),
        "{message}"
    );

    // App settings are the admin's; a literal inside address is refused for them too.
    let (status, app) = h
        .call(Method::POST, "/v1/apps", Some(json!({ "name": "fetcher" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let settings = format!("/v1/apps/{}/settings", app["id"].as_str().unwrap());
    for entry in [
        "127.0.0.1:8080",
        "[::1]:80",
        "169.254.169.254",
        "10.1.2.3:443",
    ] {
        let (status, err) = h
            .call(
                Method::PUT,
                &settings,
                Some(json!({ "http_allow": ["api.example.com", entry] })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{entry}: {err}");
        assert_eq!(err["error"]["code"], "target_not_allowed", "{entry}: {err}");
        assert_eq!(err["error"]["field"], "http_allow", "{entry}: {err}");
    }
    let (status, stored) = h.call(Method::GET, &settings, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["http_allow"], json!([]), "{stored}");
}
