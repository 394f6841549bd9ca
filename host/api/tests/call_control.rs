//! Drives the call-control endpoints of the admin API in-process with a fake `Backend`:
//! trunks, SIP users, outbound calls, chained calls, conferences and recordings.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

/// The account the admin token acts on without `Pbx-Account`.
const A: &str = pbx_store::DEFAULT_ACCOUNT_ID;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use pbx_api::{
    ApiState, Backend, BackendError, BackendErrorKind, ComponentRejection, ConferenceView,
    EndpointSpec, OriginateRequest, ParticipantView, RegistrationView, router,
};
use pbx_store::{
    CONFERENCE_PREFIX, CallRecord, CallStatus, ConferenceRecord, Direction, NewRecording,
    RecordedFile, RecordingTarget, Store, new_id,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";

#[derive(Default)]
struct Fake {
    live: Mutex<Vec<CallRecord>>,
    originated: Mutex<Vec<OriginateRequest>>,
    refuse: Mutex<Option<BackendError>>,
    conferences: Mutex<Vec<ConferenceView>>,
    conference_hangups: Mutex<Vec<String>>,
    changed_users: Mutex<Vec<String>>,
}

fn t(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn leg(id: &str, master: Option<&str>, status: CallStatus) -> CallRecord {
    CallRecord {
        id: id.into(),
        account_id: A.into(),
        app_id: Some("app_0123456789abcdef".into()),
        app_version: Some(1),
        direction: Direction::Outbound,
        from: "pbx".into(),
        to: "bob".into(),
        status,
        hangup_by: None,
        hangup_reason: None,
        tm_create: t(0),
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: None,
        sip_call_id: None,
        master_call_id: master.map(str::to_owned),
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
    fn hangup_call(&self, _id: &str) -> bool {
        false
    }
    fn check_audio(&self, _bytes: &[u8]) -> Result<Value, String> {
        Err("no audio here".into())
    }
    fn originate(&self, req: OriginateRequest) -> Result<String, BackendError> {
        if let Some(err) = self.refuse.lock().unwrap().clone() {
            return Err(err);
        }
        self.originated.lock().unwrap().push(req);
        let id = format!("out-{}", self.originated.lock().unwrap().len());
        self.live
            .lock()
            .unwrap()
            .push(leg(&id, None, CallStatus::Dialing));
        Ok(id)
    }
    fn conferences(&self) -> Vec<ConferenceView> {
        self.conferences.lock().unwrap().clone()
    }
    fn hangup_conference(&self, id: &str) -> bool {
        let live = self.conference(id).is_some();
        if live {
            self.conference_hangups.lock().unwrap().push(id.into());
        }
        live
    }
    fn registrations(&self, username: &str) -> Vec<RegistrationView> {
        if username == "alice" {
            vec![RegistrationView {
                contact: "sip:alice@192.0.2.7:5062".into(),
                expires_at: t(3600),
                source: "udp:192.0.2.7:5062".into(),
            }]
        } else {
            Vec::new()
        }
    }
    fn sip_realm(&self) -> String {
        "example.com".into()
    }
    fn sip_user_changed(&self, username: &str) {
        self.changed_users.lock().unwrap().push(username.into());
    }
}

struct H {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    fake: Arc<Fake>,
    router: Router,
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

    async fn raw(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
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
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, bytes)
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, bytes) = self.raw(method, uri, body).await;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(body)).await
    }

    /// An app with version 1 deployed; its id.
    fn deployed_app(&self, name: &str) -> String {
        let app = self.store.create_app(A, name).unwrap();
        self.store.add_version(A, &app.id, b"\0asm").unwrap();
        self.store.deploy(A, &app.id, 1).unwrap();
        app.id
    }
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

#[tokio::test]
async fn trunks_crud_keeps_the_password_write_only() {
    let h = H::new();
    let (status, a) = h
        .post(
            "/v1/trunks",
            json!({"name": "carrier", "proxy": "sip:gw.example.com:5060;transport=tcp",
                   "username": "acct", "password": "hunter22", "priority": 10,
                   "strip_plus": true, "number_prefix": "00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert!(a["id"].as_str().unwrap().starts_with("trk_"));
    assert_eq!(a["has_password"], true);
    assert!(a.get("password").is_none());
    assert!(!a.to_string().contains("hunter22"));
    assert_eq!(a["enabled"], true);
    let id = a["id"].as_str().unwrap().to_owned();

    let (status, b) = h
        .post(
            "/v1/trunks",
            json!({"name": "backup", "proxy": "sip:10.0.0.9", "priority": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(b["has_password"], false);
    assert_eq!(b["caller_id"], Value::Null);

    let (status, list) = h.get("/v1/trunks").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = list["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("backup"), json!("carrier")]);
    assert!(!list.to_string().contains("hunter22"));

    let (status, patched) = h
        .call(
            Method::PATCH,
            &format!("/v1/trunks/{id}"),
            Some(json!({"password": null, "enabled": false, "caller_id": "+4930123"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["has_password"], false);
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["caller_id"], "+4930123");
    assert_eq!(patched["username"], "acct");
    let (status, shown) = h.get(&format!("/v1/trunks/{id}")).await;
    assert_eq!((status, &shown), (StatusCode::OK, &patched));

    for (body, field) in [
        (json!({"name": "x", "proxy": "http://gw"}), "proxy"),
        (json!({"name": "x", "proxy": "sip:"}), "proxy"),
        (json!({"name": "bad name", "proxy": "sip:gw"}), "name"),
        (
            json!({"name": "x", "proxy": "sip:gw", "priority": 1001}),
            "priority",
        ),
        (
            json!({"name": "x", "proxy": "sip:gw", "priority": -1}),
            "priority",
        ),
        (
            json!({"name": "x", "proxy": "sip:gw", "enabled": "yes"}),
            "enabled",
        ),
        (json!({"proxy": "sip:gw"}), "name"),
    ] {
        let (status, err) = h.post("/v1/trunks", body.clone()).await;
        assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(err["error"]["field"], field, "{body} → {err}");
    }
    let (status, err) = h
        .post(
            "/v1/trunks",
            json!({"name": "x", "proxy": "sip:gw", "pasword": "typo"}),
        )
        .await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, err) = h
        .post("/v1/trunks", json!({"name": "carrier", "proxy": "sip:gw"}))
        .await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");
    let (status, err) = h
        .call(
            Method::PATCH,
            &format!("/v1/trunks/{id}"),
            Some(json!({"name": "backup"})),
        )
        .await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");

    let (status, _) = h
        .call(Method::DELETE, &format!("/v1/trunks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = h.get(&format!("/v1/trunks/{id}")).await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    let (status, err) = h
        .call(Method::DELETE, &format!("/v1/trunks/{id}"), None)
        .await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn sip_users_hide_secrets_and_show_registrations() {
    let h = H::new();
    let (status, alice) = h
        .post(
            "/v1/sip-users",
            json!({"username": "alice", "password": "correct horse", "display_name": "Alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    assert!(alice["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(alice["realm"], "example.com");
    let text = alice.to_string();
    assert!(!text.contains("horse") && !text.contains("ha1"), "{text}");
    let stored = h.store.sip_user_by_username("alice").unwrap().unwrap();
    assert_eq!(
        stored.ha1_md5,
        pbx_store::digest_ha1("alice", "example.com", "correct horse").0
    );

    let id = alice["id"].as_str().unwrap().to_owned();
    let (status, shown) = h.get(&format!("/v1/sip-users/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        shown["registrations"][0]["contact"],
        "sip:alice@192.0.2.7:5062"
    );
    assert_eq!(shown["registrations"][0]["source"], "udp:192.0.2.7:5062");
    assert!(shown["registrations"][0]["expires_at"].is_string());

    let (status, list) = h.get("/v1/sip-users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["sip_users"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("ha1"));

    for (body, code, field) in [
        (
            json!({"username": "bob", "password": "short"}),
            StatusCode::BAD_REQUEST,
            Some("password"),
        ),
        (
            json!({"username": "bob", "password": "x".repeat(129)}),
            StatusCode::BAD_REQUEST,
            Some("password"),
        ),
        (
            json!({"username": "b b", "password": "long enough"}),
            StatusCode::BAD_REQUEST,
            Some("username"),
        ),
        (
            json!({"username": "bob"}),
            StatusCode::BAD_REQUEST,
            Some("password"),
        ),
        (
            json!({"username": "alice", "password": "long enough"}),
            StatusCode::CONFLICT,
            None,
        ),
    ] {
        let (status, err) = h.post("/v1/sip-users", body.clone()).await;
        assert_eq!(status, code, "{body} → {err}");
        if let Some(field) = field {
            assert_eq!(err["error"]["field"], field, "{err}");
        }
    }

    let (status, _) = h
        .call(
            Method::PUT,
            &format!("/v1/sip-users/{id}/password"),
            Some(json!({"password": "battery staple"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stored = h.store.sip_user(A, &id).unwrap().unwrap();
    assert_eq!(
        stored.ha1_sha256,
        pbx_store::digest_ha1("alice", "example.com", "battery staple").1
    );
    let (status, err) = h
        .call(
            Method::PUT,
            &format!("/v1/sip-users/{id}/password"),
            Some(json!({"password": "short"})),
        )
        .await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, err) = h
        .call(
            Method::PUT,
            "/v1/sip-users/usr_0000000000000000/password",
            Some(json!({"password": "long enough"})),
        )
        .await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");

    let (status, _) = h
        .call(Method::DELETE, &format!("/v1/sip-users/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(*h.fake.changed_users.lock().unwrap(), ["alice", "alice"]);
    let (status, err) = h.get(&format!("/v1/sip-users/{id}")).await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn originate_checks_then_dials() {
    let h = H::new();
    let app_id = h.deployed_app("dialer");
    let (status, call) = h
        .post(
            "/v1/calls",
            json!({"from": "+4930111", "to": {"type": "sip", "uri": "sip:bob@127.0.0.1:5080"},
                   "app_id": app_id, "connect_timeout": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    assert_eq!(call["id"], "out-1");
    assert_eq!(call["status"], "dialing");
    assert_eq!(call["chained_call_ids"], json!([]));
    assert_eq!(
        h.fake.originated.lock().unwrap()[0],
        OriginateRequest {
            account_id: A.into(),
            from: Some("+4930111".into()),
            to: EndpointSpec::Sip {
                uri: "sip:bob@127.0.0.1:5080".into()
            },
            app_id: app_id.clone(),
            version: 1,
            connect_timeout_secs: 30,
        }
    );

    // Defaults, users and trunks.
    h.store
        .create_sip_user(A, "alice", "password1", None, "pbx")
        .unwrap();
    let (status, _) = h
        .post(
            "/v1/calls",
            json!({"to": {"type": "user", "name": "alice"}, "app_id": app_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let req = h.fake.originated.lock().unwrap()[1].clone();
    assert_eq!((req.from, req.connect_timeout_secs), (None, 60));

    let phone = json!({"to": {"type": "phone", "number": "+4930123"}, "app_id": app_id});
    let (status, err) = h.post("/v1/calls", phone.clone()).await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");
    h.store
        .create_trunk(A, pbx_store::NewTrunk::new("carrier", "sip:gw.example.com"))
        .unwrap();
    let (status, _) = h.post("/v1/calls", phone).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        h.fake.originated.lock().unwrap()[2].to,
        EndpointSpec::Phone {
            number: "+4930123".into(),
            trunk: None
        }
    );

    let undeployed = h.store.create_app(A, "idle").unwrap().id;
    let sip = json!({"type": "sip", "uri": "sip:bob@example.com"});
    let cases = [
        (
            json!({"to": sip, "app_id": "app_0000000000000000"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"to": sip, "app_id": undeployed}),
            StatusCode::CONFLICT,
            "no_active_version",
        ),
        (
            json!({"to": {"type": "user", "name": "carol"}, "app_id": app_id}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"to": {"type": "phone", "number": "+1", "trunk": "nope"}, "app_id": app_id}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"to": {"type": "fax", "number": "1"}, "app_id": app_id}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": {"type": "sip", "uri": "http://x"}, "app_id": app_id}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": {"type": "phone", "number": "12a"}, "app_id": app_id}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": {"type": "sip", "uri": "sip:x", "extra": 1}, "app_id": app_id}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": "sip:x", "app_id": app_id}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"app_id": app_id}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": sip}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": sip, "app_id": app_id, "connect_timeout": 0}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": sip, "app_id": app_id, "connect_timeout": 601}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"to": sip, "app_id": app_id, "from": "a b"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (body, want, code) in cases {
        let (status, err) = h.post("/v1/calls", body.clone()).await;
        assert_eq!(status, want, "{body} → {err}");
        assert_eq!(err["error"]["code"], code, "{body} → {err}");
    }
    assert_eq!(h.fake.originated.lock().unwrap().len(), 3);

    *h.fake.refuse.lock().unwrap() = Some(BackendError::new(
        BackendErrorKind::Unavailable,
        "shutting down",
    ));
    let (status, err) = h
        .post("/v1/calls", json!({"to": sip, "app_id": app_id}))
        .await;
    assert_error(status, &err, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    *h.fake.refuse.lock().unwrap() = Some(BackendError::new(
        BackendErrorKind::Internal,
        "secret detail",
    ));
    let (status, err) = h
        .post("/v1/calls", json!({"to": sip, "app_id": app_id}))
        .await;
    assert_error(status, &err, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(!err.to_string().contains("secret detail"));
}

#[tokio::test]
async fn calls_show_master_and_chained_legs() {
    let h = H::new();
    h.fake.live.lock().unwrap().extend([
        leg("master", None, CallStatus::Progressing),
        leg("live-leg", Some("master"), CallStatus::Ringing),
    ]);
    let mut done = leg("done-leg", Some("master"), CallStatus::Hangup);
    done.tm_hangup = Some(t(5));
    h.store.upsert_call(&done).unwrap();
    // A live leg already written to the store is listed once.
    h.store
        .upsert_call(&leg("live-leg", Some("master"), CallStatus::Ringing))
        .unwrap();

    let (status, body) = h.get("/v1/calls/master").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["master_call_id"], Value::Null);
    assert_eq!(body["chained_call_ids"], json!(["done-leg", "live-leg"]));
    let (_, body) = h.get("/v1/calls/live-leg").await;
    assert_eq!(body["master_call_id"], "master");
    assert_eq!(body["chained_call_ids"], json!([]));
    let (_, body) = h.get("/v1/calls").await;
    assert_eq!(
        body["calls"][0]["chained_call_ids"],
        json!(["done-leg", "live-leg"])
    );
    let (_, body) = h.get("/v1/calls/history").await;
    assert_eq!(body["calls"][0]["id"], "done-leg");
    assert_eq!(body["calls"][0]["master_call_id"], "master");
}

#[tokio::test]
async fn conferences_live_finished_and_hangup() {
    let h = H::new();
    let live_id = new_id(CONFERENCE_PREFIX);
    h.fake.conferences.lock().unwrap().push(ConferenceView {
        id: live_id.clone(),
        account_id: A.into(),
        name: Some("standup".into()),
        app_id: "app_0123456789abcdef".into(),
        created_at: t(0),
        participants: vec![ParticipantView {
            call_id: "c1".into(),
            muted: true,
            deafened: false,
            role: "moderator".into(),
            joined_at: t(1),
        }],
    });
    let done_id = new_id(CONFERENCE_PREFIX);
    h.store
        .upsert_conference(&ConferenceRecord {
            id: done_id.clone(),
            account_id: A.into(),
            app_id: Some("app_0123456789abcdef".into()),
            name: None,
            created_at: t(-100),
            ended_at: Some(t(-50)),
        })
        .unwrap();

    let (status, body) = h.get("/v1/conferences").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["conferences"].as_array().unwrap().len(), 1);
    let conf = &body["conferences"][0];
    assert_eq!(conf["status"], "active");
    assert_eq!(conf["participants"][0]["call_id"], "c1");
    assert_eq!(conf["participants"][0]["muted"], true);
    assert_eq!(conf["participants"][0]["role"], "moderator");

    let (status, body) = h.get(&format!("/v1/conferences/{live_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "standup");
    let (status, body) = h.get(&format!("/v1/conferences/{done_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "finished");
    assert_eq!(body["participants"], json!([]));
    assert!(body["ended_at"].is_string());
    let (status, body) = h.get("/v1/conferences/cnf_0000000000000000").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = h.get("/v1/conferences/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["conferences"][0]["id"], json!(done_id));

    let (status, body) = h
        .call(
            Method::POST,
            &format!("/v1/conferences/{live_id}/hangup"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "terminating");
    assert_eq!(*h.fake.conference_hangups.lock().unwrap(), [live_id]);
    let (status, body) = h
        .call(
            Method::POST,
            &format!("/v1/conferences/{done_id}/hangup"),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn recordings_list_download_and_delete() {
    let h = H::new();
    let start = |call: &str| NewRecording {
        id: None,
        account_id: A.into(),
        app_id: "app_0123456789abcdef".into(),
        call_id: Some(call.into()),
        conference_id: None,
        target: RecordingTarget::Bridge,
        per_participant: true,
        stereo: false,
        metadata: BTreeMap::from([("topic".to_owned(), "support".to_owned())]),
    };
    let rec = h.store.start_recording(start("c1")).unwrap();
    let wav: Vec<u8> = b"RIFF\x24\x00\x00\x00WAVE"
        .iter()
        .copied()
        .chain((0..200_000u32).map(|i| (i % 251) as u8))
        .collect();
    std::fs::write(h.store.recording_path(&rec.id, 0).unwrap(), &wav).unwrap();
    std::fs::write(h.store.recording_path(&rec.id, 1).unwrap(), b"RIFFsecond").unwrap();
    h.store
        .finish_recording(
            &rec.id,
            2500,
            vec![
                RecordedFile {
                    index: 0,
                    label: "c1".into(),
                    channels: 1,
                },
                RecordedFile {
                    index: 1,
                    label: "c2".into(),
                    channels: 1,
                },
            ],
        )
        .unwrap();
    let busy = h.store.start_recording(start("c2")).unwrap();

    let (status, body) = h.get("/v1/recordings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recordings"].as_array().unwrap().len(), 2);
    let (_, body) = h.get("/v1/recordings?call_id=c1").await;
    assert_eq!(body["recordings"].as_array().unwrap().len(), 1);
    let shown = &body["recordings"][0];
    assert_eq!(shown["id"], json!(rec.id));
    assert_eq!(shown["status"], "ready");
    assert_eq!(shown["target"], "bridge");
    assert_eq!(shown["duration_ms"], 2500);
    assert_eq!(shown["metadata"]["topic"], "support");
    assert_eq!(shown["files"][1]["label"], "c2");
    assert_eq!(shown["files"][1]["size"], 10);
    assert_eq!(
        shown["files"][1]["url"],
        format!("/v1/recordings/{}/files/1", rec.id)
    );
    assert_eq!(shown["file_url"], format!("/v1/recordings/{}/file", rec.id));
    let (_, body) = h
        .get("/v1/recordings?conference_id=cnf_0123456789abcdef")
        .await;
    assert_eq!(body["recordings"], json!([]));

    let (status, headers, bytes) = h
        .raw(
            Method::GET,
            &format!("/v1/recordings/{}/file", rec.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(headers[header::CONTENT_LENGTH], wav.len().to_string());
    assert_eq!(bytes, wav);
    let (status, _, bytes) = h
        .raw(
            Method::GET,
            &format!("/v1/recordings/{}/files/1", rec.id),
            None,
        )
        .await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::OK, &b"RIFFsecond"[..])
    );
    let (status, body) = h.get(&format!("/v1/recordings/{}/files/7", rec.id)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = h.get(&format!("/v1/recordings/{}/files/x", rec.id)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = h.get(&format!("/v1/recordings/{}/file", busy.id)).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = h.get(&format!("/v1/recordings/{}", busy.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "recording");
    assert_eq!(body["file_url"], Value::Null);

    let (status, body) = h
        .call(Method::DELETE, &format!("/v1/recordings/{}", busy.id), None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, _) = h
        .call(Method::DELETE, &format!("/v1/recordings/{}", rec.id), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!h.store.recording_path(&rec.id, 0).unwrap().exists());
    let (status, body) = h.get(&format!("/v1/recordings/{}", rec.id)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = h.get("/v1/recordings/rec_0000000000000000/file").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn backend_defaults_keep_small_fakes_working() {
    struct Minimal;
    impl Backend for Minimal {
        fn check_component(&self, _bytes: &[u8]) -> Result<(), ComponentRejection> {
            Ok(())
        }
        fn live_calls(&self) -> Vec<CallRecord> {
            Vec::new()
        }
        fn live_call(&self, _id: &str) -> Option<CallRecord> {
            None
        }
        fn hangup_call(&self, _id: &str) -> bool {
            false
        }
        fn check_audio(&self, _bytes: &[u8]) -> Result<Value, String> {
            Err(String::new())
        }
    }
    let m = Minimal;
    assert!(m.conferences().is_empty());
    assert!(m.conference("cnf_0000000000000000").is_none());
    assert!(!m.hangup_conference("x"));
    assert!(m.registrations("alice").is_empty());
    assert_eq!(m.sip_realm(), "pbx");
    let err = m
        .originate(OriginateRequest {
            account_id: A.into(),
            from: None,
            to: EndpointSpec::User { name: "a".into() },
            app_id: "app".into(),
            version: 1,
            connect_timeout_secs: 60,
        })
        .unwrap_err();
    assert_eq!(err.kind, BackendErrorKind::Unavailable);
    assert_eq!(
        serde_json::to_value(EndpointSpec::Phone {
            number: "+1".into(),
            trunk: None
        })
        .unwrap(),
        json!({"type": "phone", "number": "+1", "trunk": null})
    );
}
