//! Tenancy through the admin API, in-process with a fake `Backend`: account A's key
//! creates one of every resource, then every route that names one is tried with account
//! B's key and must answer 404 (lists must not show A's resources), and nothing of A's
//! may change. Also: quotas (429/413), API keys shown once and never listed, revoked keys
//! (401), API keys on admin routes (403), `Pbx-Account`, `/v1/account`, version deletion,
//! settings, configuration and key-value routes.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use http_body_util::BodyExt;
use pbx_api::{
    ApiState, Backend, BackendError, ComponentRejection, ConferenceView, OriginateRequest, router,
};
use pbx_store::{
    CallRecord, CallStatus, ConferenceRecord, Direction, NewRecording, RecordedFile,
    RecordingTarget, Store,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "admin-t0ken";
const WASM: &[u8] = b"\0asm\x0d\0\x01\0component";

#[derive(Default)]
struct Fake {
    live: Mutex<Vec<CallRecord>>,
    conferences: Mutex<Vec<ConferenceView>>,
    hangups: Mutex<Vec<String>>,
    in_use: Mutex<Vec<(String, u32)>>,
    /// A call that starts while an app is being deleted: `app_in_use` answers no this many
    /// more times, then yes.
    busy_after_checks: Mutex<Option<usize>>,
}

fn record(id: &str, account: &str, status: CallStatus) -> CallRecord {
    CallRecord {
        id: id.into(),
        account_id: account.into(),
        app_id: None,
        app_version: None,
        direction: Direction::Outbound,
        from: "pbx".into(),
        to: "bob".into(),
        status,
        hangup_by: None,
        hangup_reason: None,
        tm_create: Utc::now(),
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: (status == CallStatus::Hangup).then(Utc::now),
        sip_call_id: None,
        master_call_id: None,
    }
}

impl Backend for Fake {
    fn check_component(&self, _bytes: &[u8]) -> Result<(), ComponentRejection> {
        Ok(())
    }
    fn live_calls(&self) -> Vec<CallRecord> {
        self.live.lock().unwrap().clone()
    }
    fn live_call(&self, id: &str) -> Option<CallRecord> {
        self.live_calls().into_iter().find(|c| c.id == id)
    }
    fn hangup_call(&self, id: &str) -> bool {
        self.hangups.lock().unwrap().push(id.into());
        self.live_call(id).is_some()
    }
    fn check_audio(&self, _bytes: &[u8]) -> Result<Value, String> {
        Ok(json!({ "format": "wav" }))
    }
    fn originate(&self, req: OriginateRequest) -> Result<String, BackendError> {
        let id = format!("out-{}", self.live.lock().unwrap().len());
        self.live
            .lock()
            .unwrap()
            .push(record(&id, &req.account_id, CallStatus::Dialing));
        Ok(id)
    }
    fn conferences(&self) -> Vec<ConferenceView> {
        self.conferences.lock().unwrap().clone()
    }
    fn hangup_conference(&self, id: &str) -> bool {
        self.hangups.lock().unwrap().push(id.into());
        self.conference(id).is_some()
    }
    fn version_in_use(&self, app_id: &str, version: u32) -> bool {
        self.in_use
            .lock()
            .unwrap()
            .contains(&(app_id.to_owned(), version))
    }
    fn app_in_use(&self, app_id: &str) -> bool {
        if let Some(left) = self.busy_after_checks.lock().unwrap().as_mut() {
            let busy = *left == 0;
            *left = left.saturating_sub(1);
            return busy;
        }
        self.in_use.lock().unwrap().iter().any(|(a, _)| a == app_id)
    }
}

struct H {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    fake: Arc<Fake>,
    router: Router,
}

/// A request body: none, JSON, or raw bytes with a content type.
enum B {
    None,
    Json(Value),
    Bytes(&'static str, Vec<u8>),
}

impl H {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let fake = Arc::new(Fake::default());
        let router = router(ApiState {
            store: store.clone(),
            backend: fake.clone(),
            admin_token: TOKEN.into(),
        });
        H {
            _dir: dir,
            store,
            fake,
            router,
        }
    }

    async fn send(
        &self,
        token: &str,
        account: Option<&str>,
        method: Method,
        uri: &str,
        body: B,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(account) = account {
            req = req.header("Pbx-Account", account);
        }
        let body = match body {
            B::None => Body::empty(),
            B::Json(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            B::Bytes(ct, bytes) => {
                req = req.header(header::CONTENT_TYPE, ct);
                Body::from(bytes)
            }
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn admin(&self, method: Method, uri: &str, body: B) -> (StatusCode, Value) {
        self.send(TOKEN, None, method, uri, body).await
    }

    /// An account and one API key for it: `(account id, key)`.
    async fn account(&self, name: &str, quotas: Value) -> (String, String) {
        let mut body = quotas;
        body["name"] = json!(name);
        let (status, account) = self
            .admin(Method::POST, "/v1/accounts", B::Json(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
        let id = account["id"].as_str().unwrap().to_owned();
        let (status, key) = self
            .admin(
                Method::POST,
                &format!("/v1/accounts/{id}/keys"),
                B::Json(json!({ "name": "main" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        (id, key["key"].as_str().unwrap().to_owned())
    }
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str, ctx: &str) {
    assert_eq!(status, want, "{ctx}: {body}");
    assert_eq!(body["error"]["code"], code, "{ctx}: {body}");
}

/// A's resources, by id.
struct Owned {
    app: String,
    number: &'static str,
    file: String,
    trunk: String,
    user: String,
    hook: String,
    call: &'static str,
    live_call: &'static str,
    conference: &'static str,
    live_conference: &'static str,
    recording: String,
}

impl Owned {
    fn ids(&self) -> Vec<&str> {
        vec![
            &self.app,
            self.number,
            &self.file,
            &self.trunk,
            &self.user,
            &self.hook,
            self.call,
            self.live_call,
            self.conference,
            self.live_conference,
            &self.recording,
        ]
    }
}

/// Creates one of every resource with account A's key (and seeds history rows and
/// live state that only the server makes).
async fn populate(h: &H, a: &str, key: &str) -> Owned {
    let create = async |method: Method, uri: &str, body: B| -> Value {
        let (status, value) = h.send(key, None, method, uri, body).await;
        assert!(status.is_success(), "{uri}: {status} {value}");
        value
    };
    let app = create(
        Method::POST,
        "/v1/apps",
        B::Json(json!({ "name": "hello" })),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        create(
            Method::POST,
            &format!("/v1/apps/{app}/versions"),
            B::Bytes("application/wasm", WASM.to_vec()),
        )
        .await;
    }
    create(
        Method::POST,
        &format!("/v1/apps/{app}/deploy"),
        B::Json(json!({ "version": 1 })),
    )
    .await;
    let number = "5550001";
    create(
        Method::PUT,
        &format!("/v1/numbers/{number}"),
        B::Json(json!({ "app_id": app })),
    )
    .await;
    let file = create(
        Method::POST,
        "/v1/files?name=greeting",
        B::Bytes("audio/wav", b"RIFF....WAVE".to_vec()),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trunk = create(
        Method::POST,
        "/v1/trunks",
        B::Json(json!({ "name": "gw", "proxy": "sip:gw.example.com", "priority": 7 })),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = create(
        Method::POST,
        "/v1/sip-users",
        B::Json(json!({ "username": "alice", "password": "correct horse" })),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = create(
        Method::POST,
        "/v1/webhooks",
        B::Json(json!({ "url": "https://hooks.invalid/a", "event_types": ["CALL_RECEIVED"] })),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Grants are the admin's to give (an account key gets 403).
    let (status, value) = h
        .send(
            TOKEN,
            Some(a),
            Method::PUT,
            &format!("/v1/apps/{app}/settings"),
            B::Json(json!({ "kv_enabled": true })),
        )
        .await;
    assert!(status.is_success(), "settings: {status} {value}");
    let (status, value) = h
        .send(
            key,
            None,
            Method::PUT,
            &format!("/v1/apps/{app}/settings"),
            B::Json(json!({ "kv_enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{value}");
    create(
        Method::PUT,
        &format!("/v1/apps/{app}/config/greeting"),
        B::Json(json!({ "value": "hello" })),
    )
    .await;
    create(
        Method::PUT,
        &format!("/v1/apps/{app}/kv/k"),
        B::Bytes("application/octet-stream", b"v".to_vec()),
    )
    .await;

    // What only the server writes: history, a recording, live state.
    let call = "call-a";
    let mut finished = record(call, a, CallStatus::Hangup);
    finished.app_id = Some(app.clone());
    h.store.upsert_call(&finished).unwrap();
    let conference = "cnf_00000000000000a1";
    h.store
        .upsert_conference(&ConferenceRecord {
            id: conference.into(),
            account_id: a.into(),
            app_id: Some(app.clone()),
            name: Some("standup".into()),
            created_at: Utc::now(),
            ended_at: Some(Utc::now()),
        })
        .unwrap();
    let recording = h
        .store
        .start_recording(NewRecording {
            id: None,
            account_id: a.into(),
            app_id: app.clone(),
            call_id: Some(call.into()),
            conference_id: None,
            target: RecordingTarget::Call,
            per_participant: false,
            stereo: false,
            metadata: BTreeMap::new(),
        })
        .unwrap()
        .id;
    std::fs::write(h.store.recording_path(&recording, 0).unwrap(), b"RIFFwav").unwrap();
    h.store
        .finish_recording(
            &recording,
            1000,
            vec![RecordedFile {
                index: 0,
                label: "mixed".into(),
                channels: 1,
            }],
        )
        .unwrap();
    let live_call = "live-a";
    h.fake
        .live
        .lock()
        .unwrap()
        .push(record(live_call, a, CallStatus::Progressing));
    let live_conference = "cnf_00000000000000a2";
    h.fake.conferences.lock().unwrap().push(ConferenceView {
        id: live_conference.into(),
        account_id: a.into(),
        name: None,
        app_id: app.clone(),
        created_at: Utc::now(),
        participants: Vec::new(),
    });
    Owned {
        app,
        number,
        file,
        trunk,
        user,
        hook,
        call,
        live_call,
        conference,
        live_conference,
        recording,
    }
}

/// Every route that names one of A's resources, as `(method, path, body)`.
fn named_routes(o: &Owned) -> Vec<(Method, String, B)> {
    let app = &o.app;
    let json = |v: Value| B::Json(v);
    vec![
        (Method::GET, format!("/v1/apps/{app}"), B::None),
        (Method::GET, format!("/v1/apps/{app}/versions"), B::None),
        (
            Method::POST,
            format!("/v1/apps/{app}/versions"),
            B::Bytes("application/wasm", WASM.to_vec()),
        ),
        (Method::GET, format!("/v1/apps/{app}/versions/1"), B::None),
        (
            Method::DELETE,
            format!("/v1/apps/{app}/versions/2"),
            B::None,
        ),
        (
            Method::POST,
            format!("/v1/apps/{app}/deploy"),
            json(json!({ "version": 2 })),
        ),
        (Method::GET, format!("/v1/apps/{app}/settings"), B::None),
        (
            Method::PUT,
            format!("/v1/apps/{app}/settings"),
            json(json!({ "kv_enabled": false })),
        ),
        (Method::GET, format!("/v1/apps/{app}/config"), B::None),
        (
            Method::PUT,
            format!("/v1/apps/{app}/config/greeting"),
            json(json!({ "value": "pwned" })),
        ),
        (
            Method::DELETE,
            format!("/v1/apps/{app}/config/greeting"),
            B::None,
        ),
        (Method::GET, format!("/v1/apps/{app}/kv"), B::None),
        (Method::GET, format!("/v1/apps/{app}/kv/k"), B::None),
        (
            Method::PUT,
            format!("/v1/apps/{app}/kv/k"),
            B::Bytes("application/octet-stream", b"pwned".to_vec()),
        ),
        (Method::DELETE, format!("/v1/apps/{app}/kv/k"), B::None),
        (
            Method::POST,
            "/v1/calls".into(),
            json(json!({ "to": { "type": "sip", "uri": "sip:bob@example.com" }, "app_id": app })),
        ),
        (Method::GET, format!("/v1/numbers/{}", o.number), B::None),
        (
            Method::PUT,
            format!("/v1/numbers/{}", o.number),
            json(json!({ "app_id": app })),
        ),
        (Method::DELETE, format!("/v1/numbers/{}", o.number), B::None),
        (Method::GET, format!("/v1/files/{}", o.file), B::None),
        (
            Method::GET,
            format!("/v1/files/{}/content", o.file),
            B::None,
        ),
        (Method::GET, format!("/v1/calls/{}", o.call), B::None),
        (Method::GET, format!("/v1/calls/{}", o.live_call), B::None),
        (Method::GET, format!("/v1/calls/{}/events", o.call), B::None),
        (
            Method::POST,
            format!("/v1/calls/{}/hangup", o.live_call),
            B::None,
        ),
        (Method::GET, format!("/v1/trunks/{}", o.trunk), B::None),
        (
            Method::PATCH,
            format!("/v1/trunks/{}", o.trunk),
            json(json!({ "priority": 1 })),
        ),
        (Method::DELETE, format!("/v1/trunks/{}", o.trunk), B::None),
        (Method::GET, format!("/v1/sip-users/{}", o.user), B::None),
        (
            Method::PUT,
            format!("/v1/sip-users/{}/password", o.user),
            json(json!({ "password": "another horse" })),
        ),
        (Method::DELETE, format!("/v1/sip-users/{}", o.user), B::None),
        (
            Method::GET,
            format!("/v1/conferences/{}", o.conference),
            B::None,
        ),
        (
            Method::GET,
            format!("/v1/conferences/{}", o.live_conference),
            B::None,
        ),
        (
            Method::POST,
            format!("/v1/conferences/{}/hangup", o.live_conference),
            B::None,
        ),
        (
            Method::GET,
            format!("/v1/recordings/{}", o.recording),
            B::None,
        ),
        (
            Method::GET,
            format!("/v1/recordings/{}/file", o.recording),
            B::None,
        ),
        (
            Method::GET,
            format!("/v1/recordings/{}/files/0", o.recording),
            B::None,
        ),
        (
            Method::DELETE,
            format!("/v1/recordings/{}", o.recording),
            B::None,
        ),
        (Method::GET, format!("/v1/webhooks/{}", o.hook), B::None),
        (
            Method::PATCH,
            format!("/v1/webhooks/{}", o.hook),
            json(json!({ "enabled": false })),
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{}/rotate-secret", o.hook),
            B::None,
        ),
        (
            Method::GET,
            format!("/v1/webhooks/{}/deliveries", o.hook),
            B::None,
        ),
        (Method::DELETE, format!("/v1/webhooks/{}", o.hook), B::None),
    ]
}

/// Every list route.
const LISTS: &[&str] = &[
    "/v1/apps",
    "/v1/numbers",
    "/v1/files",
    "/v1/calls",
    "/v1/calls/history",
    "/v1/trunks",
    "/v1/sip-users",
    "/v1/conferences",
    "/v1/conferences/history",
    "/v1/recordings",
    "/v1/webhooks",
    "/v1/events",
];

#[tokio::test]
async fn another_accounts_key_finds_nothing() {
    let h = H::new();
    let (a, key_a) = h.account("alpha", json!({})).await;
    let (_b, key_b) = h.account("beta", json!({})).await;
    let owned = populate(&h, &a, &key_a).await;

    // The owner reaches every one of them (so a 404 below is the scoping, not a typo).
    for (method, path, _) in named_routes(&owned) {
        if method == Method::GET {
            let (status, body) = h.send(&key_a, None, method, &path, B::None).await;
            assert!(status.is_success(), "A GET {path}: {status} {body}");
        }
    }

    for (method, path, body) in named_routes(&owned) {
        let ctx = format!("B {method} {path}");
        let (status, answer) = h.send(&key_b, None, method, &path, body).await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found", &ctx);
    }
    for path in LISTS {
        let (status, body) = h.send(&key_b, None, Method::GET, path, B::None).await;
        assert_eq!(status, StatusCode::OK, "B GET {path}: {body}");
        let text = body.to_string();
        for id in owned.ids() {
            assert!(!text.contains(id), "B GET {path} shows {id}: {text}");
        }
    }
    // B's key cannot borrow A's account with the header either.
    let (status, body) = h
        .send(&key_b, Some(&a), Method::GET, "/v1/apps", B::None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "header");

    // Nothing of A's changed: every resource is still there as it was.
    for (method, path, _) in named_routes(&owned) {
        if method == Method::GET {
            let (status, body) = h.send(&key_a, None, method, &path, B::None).await;
            assert!(
                status.is_success(),
                "A GET {path} afterwards: {status} {body}"
            );
        }
    }
    let (_, trunk) = h
        .send(
            &key_a,
            None,
            Method::GET,
            &format!("/v1/trunks/{}", owned.trunk),
            B::None,
        )
        .await;
    assert_eq!(trunk["priority"], 7);
    let (_, settings) = h
        .send(
            &key_a,
            None,
            Method::GET,
            &format!("/v1/apps/{}/settings", owned.app),
            B::None,
        )
        .await;
    assert_eq!(settings["kv_enabled"], true);
    let app_id = owned.app.clone();
    assert_eq!(
        h.store.kv_get(&app_id, "k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(
        h.store.app_config_for(&app_id, 1).unwrap()[0].value,
        "hello"
    );
    let (_, app) = h
        .send(
            &key_a,
            None,
            Method::GET,
            &format!("/v1/apps/{app_id}"),
            B::None,
        )
        .await;
    assert_eq!(app["active_version"], 1);
    assert_eq!(app["versions"].as_array().unwrap().len(), 2);
    assert!(h.fake.hangups.lock().unwrap().is_empty());
    let (_, hook) = h
        .send(
            &key_a,
            None,
            Method::GET,
            &format!("/v1/webhooks/{}", owned.hook),
            B::None,
        )
        .await;
    assert_eq!(hook["enabled"], true);

    // Globally unique names: B binding A's number or SIP user name is 409, saying only
    // that it is taken.
    let (_, b_app) = h
        .send(
            &key_b,
            None,
            Method::POST,
            "/v1/apps",
            B::Json(json!({ "name": "hello" })),
        )
        .await;
    let (status, body) = h
        .send(
            &key_b,
            None,
            Method::PUT,
            &format!("/v1/numbers/{}", owned.number),
            B::Json(json!({ "app_id": b_app["id"] })),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "number");
    assert_eq!(body["error"]["message"], "number is taken");
    let (status, body) = h
        .send(
            &key_b,
            None,
            Method::POST,
            "/v1/sip-users",
            B::Json(json!({ "username": "alice", "password": "correct horse" })),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "username");
    assert_eq!(body["error"]["message"], "username is taken");
    // Dialling A's SIP user or A's trunk from B's account is 404.
    let (status, body) = h
        .send(
            &key_b,
            None,
            Method::POST,
            &format!("/v1/apps/{}/versions", b_app["id"].as_str().unwrap()),
            B::Bytes("application/wasm", WASM.to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    h.send(
        &key_b,
        None,
        Method::POST,
        &format!("/v1/apps/{}/deploy", b_app["id"].as_str().unwrap()),
        B::Json(json!({ "version": 1 })),
    )
    .await;
    for to in [
        json!({ "type": "user", "name": "alice" }),
        json!({ "type": "phone", "number": "+4930123", "trunk": "gw" }),
    ] {
        let (status, body) = h
            .send(
                &key_b,
                None,
                Method::POST,
                "/v1/calls",
                B::Json(json!({ "to": to, "app_id": b_app["id"] })),
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "dial");
    }
}

#[tokio::test]
async fn the_admin_token_picks_an_account_with_the_header() {
    let h = H::new();
    let (a, key_a) = h.account("alpha", json!({})).await;
    let owned = populate(&h, &a, &key_a).await;
    // Without the header: the default account, which has none of A's.
    let (_, apps) = h.admin(Method::GET, "/v1/apps", B::None).await;
    assert!(apps["apps"].as_array().unwrap().is_empty());
    // With it: A's.
    let (status, app) = h
        .send(
            TOKEN,
            Some(&a),
            Method::GET,
            &format!("/v1/apps/{}", owned.app),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["account_id"], a.as_str());
    let (status, body) = h
        .send(
            TOKEN,
            Some("acc_ffffffffffffffff"),
            Method::GET,
            "/v1/apps",
            B::None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "no such account",
    );
    // A key may name its own account.
    let (status, _) = h
        .send(&key_a, Some(&a), Method::GET, "/v1/apps", B::None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn keys_are_shown_once_revocable_and_not_admins() {
    let h = H::new();
    let (a, key) = h.account("alpha", json!({})).await;
    assert!(key.starts_with("pbx_") && key.len() == 44, "{key}");
    let (status, keys) = h
        .admin(Method::GET, &format!("/v1/accounts/{a}/keys"), B::None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = keys.to_string();
    assert!(!text.contains(&key), "{text}");
    assert!(!text.contains("sha256"), "{text}");
    let listed = &keys["keys"][0];
    assert_eq!(listed["prefix"], &key[..12]);
    assert!(listed.get("key").is_none());
    let key_id = listed["id"].as_str().unwrap().to_owned();

    // The key works, and only for the routes any caller may use.
    let (status, own) = h
        .send(&key, None, Method::GET, "/v1/account", B::None)
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["id"], a.as_str());
    let admin_routes: Vec<(Method, String, B)> = vec![
        (Method::GET, "/v1/accounts".into(), B::None),
        (
            Method::POST,
            "/v1/accounts".into(),
            B::Json(json!({ "name": "evil" })),
        ),
        (Method::GET, format!("/v1/accounts/{a}"), B::None),
        (
            Method::PATCH,
            format!("/v1/accounts/{a}"),
            B::Json(json!({ "max_apps": null })),
        ),
        (Method::DELETE, format!("/v1/accounts/{a}"), B::None),
        (Method::GET, format!("/v1/accounts/{a}/keys"), B::None),
        (
            Method::POST,
            format!("/v1/accounts/{a}/keys"),
            B::Json(json!({ "name": "more" })),
        ),
        (
            Method::DELETE,
            format!("/v1/accounts/{a}/keys/{key_id}"),
            B::None,
        ),
    ];
    for (method, path, body) in admin_routes {
        let ctx = format!("key {method} {path}");
        let (status, answer) = h.send(&key, None, method, &path, body).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden", &ctx);
    }

    // Unknown keys and revoked keys are 401.
    let (status, body) = h
        .send(
            "pbx_0000000000000000000000000000000000000000",
            None,
            Method::GET,
            "/v1/apps",
            B::None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "unknown",
    );
    let (status, _) = h
        .admin(
            Method::DELETE,
            &format!("/v1/accounts/{a}/keys/{key_id}"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.send(&key, None, Method::GET, "/v1/apps", B::None).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "revoked",
    );
    let (_, keys) = h
        .admin(Method::GET, &format!("/v1/accounts/{a}/keys"), B::None)
        .await;
    assert!(keys["keys"][0]["revoked_at"].is_string(), "{keys}");
    assert!(keys["keys"][0]["last_used_at"].is_string(), "{keys}");
}

#[tokio::test]
async fn accounts_admin_routes() {
    let h = H::new();
    let (status, list) = h.admin(Method::GET, "/v1/accounts", B::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["accounts"][0]["id"], pbx_store::DEFAULT_ACCOUNT_ID);
    let (a, _) = h
        .account("alpha", json!({ "max_apps": 2, "max_storage_bytes": 1000 }))
        .await;
    let (status, body) = h
        .admin(
            Method::POST,
            "/v1/accounts",
            B::Json(json!({ "name": "alpha" })),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "dup");
    let (status, body) = h
        .admin(
            Method::POST,
            "/v1/accounts",
            B::Json(json!({ "name": "x", "max_apps": -1 })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "neg",
    );
    assert_eq!(body["error"]["field"], "max_apps");
    let (status, shown) = h
        .admin(Method::GET, &format!("/v1/accounts/{a}"), B::None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["quotas"]["max_apps"], 2);
    assert_eq!(shown["quotas"]["max_concurrent_calls"], Value::Null);
    assert_eq!(
        shown["usage"],
        json!({ "apps": 0, "storage_bytes": 0, "live_calls": 0 })
    );
    let (status, patched) = h
        .admin(
            Method::PATCH,
            &format!("/v1/accounts/{a}"),
            B::Json(json!({ "max_apps": null, "max_concurrent_calls": 3 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["quotas"],
        json!({ "max_concurrent_calls": 3, "max_apps": null, "max_storage_bytes": 1000 })
    );
    // An account that owns something cannot be deleted; an empty one can.
    h.send(
        TOKEN,
        Some(&a),
        Method::POST,
        "/v1/apps",
        B::Json(json!({ "name": "x" })),
    )
    .await;
    let (status, body) = h
        .admin(Method::DELETE, &format!("/v1/accounts/{a}"), B::None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "owns");
    let (b, key_b) = h.account("beta", json!({})).await;
    let (status, _) = h
        .admin(Method::DELETE, &format!("/v1/accounts/{b}"), B::None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h.send(&key_b, None, Method::GET, "/v1/apps", B::None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = h
        .admin(
            Method::DELETE,
            &format!("/v1/accounts/{}", pbx_store::DEFAULT_ACCOUNT_ID),
            B::None,
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "default");
    let (status, body) = h
        .admin(Method::GET, &format!("/v1/accounts/{b}"), B::None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "gone");
}

#[tokio::test]
async fn quotas_answer_429_and_413() {
    let h = H::new();
    let (a, key) = h
        .account(
            "small",
            json!({ "max_apps": 1, "max_storage_bytes": 40, "max_concurrent_calls": 1 }),
        )
        .await;
    let (status, app) = h
        .send(
            &key,
            None,
            Method::POST,
            "/v1/apps",
            B::Json(json!({ "name": "one" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let app = app["id"].as_str().unwrap().to_owned();
    let (status, body) = h
        .send(
            &key,
            None,
            Method::POST,
            "/v1/apps",
            B::Json(json!({ "name": "two" })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        "apps",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_apps = 1"),
        "{body}"
    );

    let upload = async |bytes: Vec<u8>| {
        h.send(
            &key,
            None,
            Method::POST,
            &format!("/v1/apps/{app}/versions"),
            B::Bytes("application/wasm", bytes),
        )
        .await
    };
    assert_eq!(upload(WASM.to_vec()).await.0, StatusCode::CREATED);
    let (status, body) = upload(vec![1u8; 30]).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        "version",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_storage_bytes = 40"),
        "{body}"
    );
    let (status, body) = h
        .send(
            &key,
            None,
            Method::POST,
            "/v1/files",
            B::Bytes("audio/wav", vec![0u8; 30]),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        "file",
    );
    let (status, _) = h
        .send(
            &key,
            None,
            Method::POST,
            "/v1/files",
            B::Bytes("audio/wav", vec![0u8; 10]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    h.send(
        &key,
        None,
        Method::POST,
        &format!("/v1/apps/{app}/deploy"),
        B::Json(json!({ "version": 1 })),
    )
    .await;
    let dial = json!({ "to": { "type": "sip", "uri": "sip:bob@example.com" }, "app_id": app });
    let (status, body) = h
        .send(&key, None, Method::POST, "/v1/calls", B::Json(dial.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["account_id"], a.as_str());
    // Another account's live calls do not count against this one.
    h.fake.live.lock().unwrap().push(record(
        "other",
        pbx_store::DEFAULT_ACCOUNT_ID,
        CallStatus::Progressing,
    ));
    let (status, body) = h
        .send(&key, None, Method::POST, "/v1/calls", B::Json(dial))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        "calls",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_concurrent_calls = 1"),
        "{body}"
    );

    let (_, own) = h
        .send(&key, None, Method::GET, "/v1/account", B::None)
        .await;
    assert_eq!(
        own["usage"],
        json!({ "apps": 1, "storage_bytes": WASM.len() + 10, "live_calls": 1 })
    );
    assert_eq!(own["quotas"]["max_storage_bytes"], 40);
}

#[tokio::test]
async fn versions_can_be_deleted_unless_active_or_in_use() {
    let h = H::new();
    let (_a, key) = h.account("alpha", json!({})).await;
    let (_, app) = h
        .send(
            &key,
            None,
            Method::POST,
            "/v1/apps",
            B::Json(json!({ "name": "hot" })),
        )
        .await;
    let app = app["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        h.send(
            &key,
            None,
            Method::POST,
            &format!("/v1/apps/{app}/versions"),
            B::Bytes("application/wasm", WASM.to_vec()),
        )
        .await;
    }
    h.send(
        &key,
        None,
        Method::POST,
        &format!("/v1/apps/{app}/deploy"),
        B::Json(json!({ "version": 3 })),
    )
    .await;
    let delete = async |v: u32| {
        h.send(
            &key,
            None,
            Method::DELETE,
            &format!("/v1/apps/{app}/versions/{v}"),
            B::None,
        )
        .await
    };
    let (status, body) = delete(3).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "active");
    h.fake.in_use.lock().unwrap().push((app.clone(), 2));
    let (status, body) = delete(2).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "in use");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("live call")
    );
    assert_eq!(delete(1).await.0, StatusCode::NO_CONTENT);
    let (status, body) = delete(1).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "gone");
    // Rolling back to an older stored version works.
    let (status, body) = h
        .send(
            &key,
            None,
            Method::POST,
            &format!("/v1/apps/{app}/deploy"),
            B::Json(json!({ "version": 2 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active_version"], 2);
    let (status, _) = h
        .send(
            &key,
            None,
            Method::GET,
            &format!("/v1/apps/{app}/versions/1"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn settings_config_and_kv_routes() {
    let h = H::new();
    let (a, key) = h.account("alpha", json!({})).await;
    let (_, app) = h
        .send(
            &key,
            None,
            Method::POST,
            "/v1/apps",
            B::Json(json!({ "name": "caps" })),
        )
        .await;
    let app = app["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/apps/{app}");
    let (status, settings) = h
        .send(
            &key,
            None,
            Method::GET,
            &format!("{base}/settings"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        settings,
        json!({
            "kv_enabled": false, "kv_max_bytes": 1_048_576, "http_allow": [],
            "http_timeout_ms": 5000, "http_max_response_bytes": 1_048_576,
            "max_memory_bytes": null, "event_deadline_ms": null,
        })
    );
    let (status, settings) = h
        .send(
            TOKEN,
            Some(&a),
            Method::PUT,
            &format!("{base}/settings"),
            B::Json(json!({
                "kv_enabled": true, "kv_max_bytes": 2048,
                "http_allow": ["api.example.com:443"], "event_deadline_ms": 100,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["http_allow"], json!(["api.example.com:443"]));
    assert_eq!(settings["http_timeout_ms"], 5000);
    for (body, field) in [
        (json!({ "max_memory_bytes": 1 }), "max_memory_bytes"),
        (json!({ "event_deadline_ms": 9 }), "event_deadline_ms"),
        (json!({ "http_allow": ["http://x"] }), "http_allow"),
        (json!({ "http_allow": "x" }), "http_allow"),
        (json!({ "http_timeout_ms": 40000 }), "http_timeout_ms"),
        (json!({ "kv_enabled": null }), "kv_enabled"),
    ] {
        let (status, answer) = h
            .send(
                TOKEN,
                Some(&a),
                Method::PUT,
                &format!("{base}/settings"),
                B::Json(body),
            )
            .await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            field,
        );
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) = h
        .send(
            TOKEN,
            Some(&a),
            Method::PUT,
            &format!("{base}/settings"),
            B::Json(json!({ "nope": 1 })),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "unknown",
    );

    // Configuration: secrets are write-only.
    for (name, body) in [
        ("greeting", json!({ "value": "hello" })),
        ("token", json!({ "value": "s3cret", "secret": true })),
    ] {
        let (status, answer) = h
            .send(
                &key,
                None,
                Method::PUT,
                &format!("{base}/config/{name}"),
                B::Json(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (_, config) = h
        .send(&key, None, Method::GET, &format!("{base}/config"), B::None)
        .await;
    assert_eq!(
        config["config"],
        json!([
            { "name": "greeting", "version": null, "value": "hello", "secret": false },
            { "name": "token", "version": null, "value": null, "secret": true },
        ])
    );
    assert!(!config.to_string().contains("s3cret"));
    let (status, answer) = h
        .send(
            &key,
            None,
            Method::PUT,
            &format!("{base}/config/greeting"),
            B::Json(json!({ "value": "v9", "version": 9 })),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::NOT_FOUND,
        "not_found",
        "no version",
    );
    let (status, _) = h
        .send(
            &key,
            None,
            Method::DELETE,
            &format!("{base}/config/token"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h
        .send(
            &key,
            None,
            Method::DELETE,
            &format!("{base}/config/token"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Key-value state: seed, read, list, limit, delete.
    let put = async |k: &str, v: Vec<u8>| {
        h.send(
            &key,
            None,
            Method::PUT,
            &format!("{base}/kv/{k}"),
            B::Bytes("application/octet-stream", v),
        )
        .await
    };
    assert_eq!(
        put("user:1", b"alice".to_vec()).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put("user%3A2", b"bob".to_vec()).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, value) = h
        .send(
            &key,
            None,
            Method::GET,
            &format!("{base}/kv/user:1"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value, Value::String("alice".into()));
    let (_, list) = h
        .send(
            &key,
            None,
            Method::GET,
            &format!("{base}/kv?prefix=user:"),
            B::None,
        )
        .await;
    let keys: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["user:1", "user:2"]);
    assert_eq!(list["bytes_used"], 6 + 5 + 6 + 3);
    assert_eq!(list["kv_max_bytes"], 2048);
    let (status, body) = put("big", vec![0u8; 2100]).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        "kv",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kv_max_bytes = 2048")
    );
    let (status, body) = put("huge", vec![0u8; 64 * 1024 + 1]).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "64k",
    );
    let (status, _) = h
        .send(
            &key,
            None,
            Method::DELETE,
            &format!("{base}/kv/user:1"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h
        .send(
            &key,
            None,
            Method::GET,
            &format!("{base}/kv/user:1"),
            B::None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn apps_can_be_deleted_unless_in_use_and_only_by_their_account() {
    let h = H::new();
    let (_a, key) = h.account("alpha", json!({})).await;
    let (_b, other) = h.account("beta", json!({})).await;
    let (_, app) = h
        .send(
            &key,
            None,
            Method::POST,
            "/v1/apps",
            B::Json(json!({ "name": "doomed" })),
        )
        .await;
    let app = app["id"].as_str().unwrap().to_owned();
    h.send(
        &key,
        None,
        Method::POST,
        &format!("/v1/apps/{app}/versions"),
        B::Bytes("application/wasm", WASM.to_vec()),
    )
    .await;
    let (status, _) = h
        .send(
            &key,
            None,
            Method::POST,
            &format!("/v1/apps/{app}/deploy"),
            B::Json(json!({ "version": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .send(
            &key,
            None,
            Method::PUT,
            "/v1/numbers/7000",
            B::Json(json!({ "app_id": app })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let delete = async |key: &str| {
        h.send(
            key,
            None,
            Method::DELETE,
            &format!("/v1/apps/{app}"),
            B::None,
        )
        .await
    };

    // Another account's key sees no such app, and deleting it changes nothing.
    let (status, body) = delete(&other).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "other account",
    );
    // While a live call runs one of its versions: 409.
    h.fake.in_use.lock().unwrap().push((app.clone(), 1));
    let (status, body) = delete(&key).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", "in use");
    h.fake.in_use.lock().unwrap().clear();
    // A call that starts after the first check: 409, and the app keeps its deployed
    // version and its number.
    *h.fake.busy_after_checks.lock().unwrap() = Some(1);
    let (status, body) = delete(&key).await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "conflict",
        "started meanwhile",
    );
    *h.fake.busy_after_checks.lock().unwrap() = None;
    let (status, shown) = h
        .send(&key, None, Method::GET, &format!("/v1/apps/{app}"), B::None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["active_version"], 1, "{shown}");
    assert_eq!(h.store.route("7000").unwrap().unwrap().app_id, app);

    let (status, body) = delete(&key).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = h
        .send(&key, None, Method::GET, &format!("/v1/apps/{app}"), B::None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "gone");
    let (status, body) = h
        .send(&key, None, Method::GET, "/v1/numbers/7000", B::None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "unbound");
    let (status, body) = delete(&key).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "twice");
}

#[tokio::test]
async fn an_empty_account_header_is_a_bad_request_naming_it() {
    let h = H::new();
    for account in ["", "  "] {
        let (status, body) = h
            .send(TOKEN, Some(account), Method::GET, "/v1/apps", B::None)
            .await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "empty",
        );
        assert_eq!(body["error"]["field"], "Pbx-Account", "{body}");
    }
    let (status, body) = h
        .send(
            TOKEN,
            Some("acc_ffffffffffffffff"),
            Method::GET,
            "/v1/apps",
            B::None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "unknown");
}
