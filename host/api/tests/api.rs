//! Drives the admin API's `Router` in-process (no sockets) with a fake `Backend` and a
//! temporary store: every endpoint's happy path and its documented errors.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

/// The account the admin token acts on without `Pbx-Account`.
const A: &str = pbx_store::DEFAULT_ACCOUNT_ID;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use pbx_api::{ApiState, Backend, ComponentRejection, RejectionCode, router};
use pbx_store::{CallRecord, CallStatus, Direction, HangupBy, HangupReason, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "test-token";

#[derive(Default)]
struct FakeBackend {
    live: Mutex<Vec<CallRecord>>,
    hung_up: Mutex<Vec<String>>,
    stored: Mutex<Vec<(String, u32)>>,
}

impl Backend for FakeBackend {
    fn check_component(&self, bytes: &[u8]) -> Result<(), ComponentRejection> {
        if bytes.starts_with(b"COMPONENT") {
            Ok(())
        } else if bytes.starts_with(b"WRONGWORLD") {
            Err(ComponentRejection::new(
                RejectionCode::WrongWorld,
                "component targets world foo:bar/baz",
            ))
        } else if bytes.starts_with(b"IMPORTS") {
            Err(ComponentRejection::new(
                RejectionCode::ImportNotGranted,
                "imports wasi:sockets/tcp which is not granted",
            ))
        } else {
            Err(ComponentRejection::new(
                RejectionCode::NotAComponent,
                "bytes are not a wasm component",
            ))
        }
    }

    fn version_stored(&self, app_id: &str, version: u32) {
        self.stored
            .lock()
            .unwrap()
            .push((app_id.to_owned(), version));
    }

    fn live_calls(&self) -> Vec<CallRecord> {
        self.live.lock().unwrap().clone()
    }

    fn live_call(&self, id: &str) -> Option<CallRecord> {
        self.live
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.id == id)
            .cloned()
    }

    fn hangup_call(&self, id: &str) -> bool {
        let live = self.live_call(id).is_some();
        if live {
            self.hung_up.lock().unwrap().push(id.to_owned());
        }
        live
    }

    fn check_audio(&self, bytes: &[u8]) -> Result<Value, String> {
        if bytes.starts_with(b"RIFF") {
            Ok(json!({
                "format": "wav", "rate": 8000, "channels": 1, "duration_ms": 1250,
                "id": "must-not-override"
            }))
        } else {
            Err("not a WAV or MP3 file".into())
        }
    }
}

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    backend: Arc<FakeBackend>,
    router: Router,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::at(dir)
    }

    fn at(dir: tempfile::TempDir) -> Self {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let backend = Arc::new(FakeBackend::default());
        let router = router(ApiState {
            store: store.clone(),
            backend: backend.clone(),
            admin_token: TOKEN.into(),
        });
        Harness {
            dir,
            store,
            backend,
            router,
        }
    }

    async fn raw(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let (status, headers, body) = self.raw(req.body(body.into()).unwrap()).await;
        let json = if body.is_empty() {
            Value::Null
        } else {
            assert_eq!(
                headers.get(header::CONTENT_TYPE).unwrap(),
                "application/json",
                "{method_uri}: body {body:?}",
                method_uri = uri,
                body = String::from_utf8_lossy(&body)
            );
            serde_json::from_slice(&body).unwrap()
        };
        (status, json)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, None, Body::empty()).await
    }

    async fn json(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(method, uri, Some("application/json"), body.to_string())
            .await
    }

    async fn create_app(&self, name: &str) -> String {
        let (status, body) = self
            .json(Method::POST, "/v1/apps", json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn upload(&self, app_id: &str, bytes: &'static [u8]) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            &format!("/v1/apps/{app_id}/versions"),
            Some("application/wasm"),
            bytes,
        )
        .await
    }

    fn component_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("components"))
            .unwrap()
            .count()
    }
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn call(id: &str, status: CallStatus, created: i64, hangup: Option<i64>) -> CallRecord {
    let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
    CallRecord {
        id: id.into(),
        account_id: A.into(),
        app_id: None,
        app_version: None,
        direction: Direction::Inbound,
        from: "alice".into(),
        to: "1000".into(),
        status,
        hangup_by: hangup.map(|_| HangupBy::Remote),
        hangup_reason: hangup.map(|_| HangupReason::Normal),
        tm_create: t(created),
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: hangup.map(t),
        sip_call_id: None,
        master_call_id: None,
    }
}

#[tokio::test]
async fn healthz_needs_no_token() {
    let h = Harness::new();
    let req = Request::get("/healthz").body(Body::empty()).unwrap();
    let (status, _, body) = h.raw(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let h = Harness::new();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic dGVzdA=="),
        Some("Bearer"),
    ] {
        let mut req = Request::get("/v1/apps");
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let (status, headers, body) = h.raw(req.body(Body::empty()).unwrap()).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    }
    // Also for mutations: nothing happens without the token.
    let req = Request::post("/v1/apps")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"x"}"#))
        .unwrap();
    assert_eq!(h.raw(req).await.0, StatusCode::UNAUTHORIZED);
    assert!(h.store.list_apps(A).unwrap().is_empty());
    // The scheme is case-insensitive.
    let req = Request::get("/v1/apps")
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.raw(req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn empty_admin_token_admits_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(ApiState {
        store: Arc::new(Store::open(dir.path()).unwrap()),
        backend: Arc::new(FakeBackend::default()),
        admin_token: String::new(),
    });
    let req = Request::get("/v1/apps")
        .header(header::AUTHORIZATION, "Bearer ")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_shape() {
    let h = Harness::new();
    let (status, body) = h.get("/v1/nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = h.get("/").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = h
        .send(Method::DELETE, "/v1/apps", None, Body::empty())
        .await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn create_list_and_show_apps() {
    let h = Harness::new();
    let (status, body) = h
        .json(Method::POST, "/v1/apps", json!({"name": "hello"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("app_"));
    assert_eq!(body["name"], "hello");
    assert_eq!(body["active_version"], Value::Null);
    assert!(body["created_at"].is_string());

    let (status, body) = h.get("/v1/apps").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apps"].as_array().unwrap().len(), 1);
    assert_eq!(body["apps"][0]["id"], id.as_str());

    let (status, body) = h.get(&format!("/v1/apps/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "hello");
    assert_eq!(body["versions"], json!([]));

    let (status, body) = h.get("/v1/apps/app_0000000000000000").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = h.get("/v1/apps/whatever").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn create_app_errors() {
    let h = Harness::new();
    h.create_app("hello").await;
    let (status, body) = h
        .json(Method::POST, "/v1/apps", json!({"name": "hello"}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    for bad in [
        json!({"name": "has space"}),
        json!({"name": ""}),
        json!({"name": "x".repeat(65)}),
    ] {
        let (status, body) = h.json(Method::POST, "/v1/apps", bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(body["error"]["field"], "name");
        assert!(body["error"]["message"].as_str().unwrap().contains("name"));
    }
    for bad in [json!({}), json!({"name": 5}), json!({"nme": "x"})] {
        let (status, body) = h.json(Method::POST, "/v1/apps", bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("name"),
            "{body}"
        );
    }
    for bad in ["{", "[1]", "", "null"] {
        let (status, body) = h
            .send(Method::POST, "/v1/apps", Some("application/json"), bad)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (status, body) = h
        .send(
            Method::POST,
            "/v1/apps",
            Some("text/plain"),
            r#"{"name":"x"}"#,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // A missing content type is tolerated for JSON bodies.
    let (status, _) = h
        .send(Method::POST, "/v1/apps", None, r#"{"name":"loose"}"#)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(h.store.list_apps(A).unwrap().len(), 2);
}

#[tokio::test]
async fn upload_versions_and_deploy() {
    let h = Harness::new();
    let id = h.create_app("hello").await;
    let (status, body) = h.upload(&id, b"COMPONENT one").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(body["size"], 13);
    let (status, body) = h.upload(&id, b"COMPONENT two").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["version"], 2);
    assert_eq!(h.store.version_bytes(&id, 2).unwrap(), b"COMPONENT two");

    let (status, body) = h.get(&format!("/v1/apps/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let versions = body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["version"], 2);
    for key in ["sha256", "size", "created_at"] {
        assert!(!versions[0][key].is_null(), "{key} in {body}");
    }
    let (status, body) = h.get(&format!("/v1/apps/{id}/versions")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["versions"].as_array().unwrap().len(), 2);

    // Download the stored component back.
    let req = Request::get(format!("/v1/apps/{id}/versions/1"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, bytes) = h.raw(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/wasm"
    );
    assert_eq!(bytes, b"COMPONENT one");

    let (status, body) = h
        .json(
            Method::POST,
            &format!("/v1/apps/{id}/deploy"),
            json!({"version": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["active_version"], 2);
    // Rollback.
    let (status, body) = h
        .json(
            Method::POST,
            &format!("/v1/apps/{id}/deploy"),
            json!({"version": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active_version"], 1);
    assert_eq!(
        h.store.app(A, &id).unwrap().unwrap().active_version,
        Some(1)
    );

    // The backend heard about both uploads and both deploys (asynchronously).
    for _ in 0..200 {
        if h.backend.stored.lock().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut stored = h.backend.stored.lock().unwrap().clone();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            (id.clone(), 1),
            (id.clone(), 1),
            (id.clone(), 2),
            (id.clone(), 2)
        ]
    );
}

#[tokio::test]
async fn deploy_errors() {
    let h = Harness::new();
    let id = h.create_app("hello").await;
    h.upload(&id, b"COMPONENT").await;
    let uri = format!("/v1/apps/{id}/deploy");
    let (status, body) = h.json(Method::POST, &uri, json!({"version": 7})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains('7'));
    for bad in [
        json!({}),
        json!({"version": "1"}),
        json!({"version": -1}),
        json!({"version": 1.5}),
    ] {
        let (status, body) = h.json(Method::POST, &uri, bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(body["error"]["field"], "version");
    }
    let (status, body) = h
        .send(Method::POST, &uri, Some("application/json"), "{nope")
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = h
        .json(
            Method::POST,
            "/v1/apps/app_0000000000000000/deploy",
            json!({"version": 1}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(h.store.app(A, &id).unwrap().unwrap().active_version, None);
}

#[tokio::test]
async fn upload_errors_store_nothing() {
    let h = Harness::new();
    let id = h.create_app("hello").await;
    let uri = format!("/v1/apps/{id}/versions");

    let (status, body) = h
        .send(
            Method::POST,
            &uri,
            Some("application/octet-stream"),
            &b"COMPONENT"[..],
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (status, body) = h.send(Method::POST, &uri, None, &b"COMPONENT"[..]).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let (status, body) = h.upload(&id, b"").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

    let (status, body) = h.upload(&id, b"\0asm\x01\0\0\0 core module").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "not_a_component");

    let (status, body) = h.upload(&id, b"WRONGWORLD").await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "wrong_world",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("foo:bar/baz")
    );

    let (status, body) = h.upload(&id, b"IMPORTS").await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "import_not_granted",
    );

    // Too large, streamed without a Content-Length...
    let big = vec![b'C'; pbx_api::MAX_COMPONENT_BYTES + 1];
    let (status, body) = h
        .send(Method::POST, &uri, Some("application/wasm"), big)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // ...and announced by Content-Length.
    let req = Request::post(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/wasm")
        .header(
            header::CONTENT_LENGTH,
            (pbx_api::MAX_COMPONENT_BYTES + 1).to_string(),
        )
        .body(Body::from("COMPONENT"))
        .unwrap();
    let (status, _, _) = h.raw(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = h.upload("app_0000000000000000", b"COMPONENT").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    assert!(h.store.versions(A, &id).unwrap().is_empty());
    assert_eq!(h.component_files(), 0, "no blob, not even a temp file");
    assert!(h.backend.stored.lock().unwrap().is_empty());

    // A content type with parameters is fine.
    let (status, body) = h
        .send(
            Method::POST,
            &uri,
            Some("Application/Wasm; charset=binary"),
            &b"COMPONENT"[..],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 1);
}

#[tokio::test]
async fn numbers_bind_list_and_delete() {
    let h = Harness::new();
    let id = h.create_app("hello").await;
    let (status, body) = h
        .json(Method::PUT, "/v1/numbers/1000", json!({"app_id": id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["number"], "1000");
    assert_eq!(body["app_id"], id.as_str());
    // '+' stays literal in a path; '#' must be percent-encoded.
    let (status, body) = h
        .json(Method::PUT, "/v1/numbers/+4930%2312", json!({"app_id": id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["number"], "+4930#12");

    let (status, body) = h.get("/v1/numbers").await;
    assert_eq!(status, StatusCode::OK);
    let numbers: Vec<_> = body["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(numbers, ["+4930#12", "1000"]);
    let (status, body) = h.get("/v1/numbers/1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["app_id"], id.as_str());

    let (status, body) = h
        .send(Method::DELETE, "/v1/numbers/1000", None, Body::empty())
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = h
        .send(Method::DELETE, "/v1/numbers/1000", None, Body::empty())
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = h.get("/v1/numbers/1000").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(h.store.list_numbers(A).unwrap().len(), 1);
}

#[tokio::test]
async fn number_errors() {
    let h = Harness::new();
    let id = h.create_app("hello").await;
    for bad in ["12%2034", "abc%2Fdef", "123456789012345678901234567890123"] {
        let (status, body) = h
            .json(
                Method::PUT,
                &format!("/v1/numbers/{bad}"),
                json!({"app_id": id}),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(body["error"]["field"], "number", "{bad}");
    }
    let (status, body) = h
        .json(
            Method::PUT,
            "/v1/numbers/1000",
            json!({"app_id": "app_0000000000000000"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("app_0000000000000000")
    );
    let (status, body) = h.json(Method::PUT, "/v1/numbers/1000", json!({})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["field"], "app_id");
    let (status, body) = h
        .send(
            Method::PUT,
            "/v1/numbers/1000",
            Some("application/json"),
            "nope",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(h.store.list_numbers(A).unwrap().is_empty());
}

#[tokio::test]
async fn files_upload_list_and_show() {
    let h = Harness::new();
    let (status, body) = h
        .send(
            Method::POST,
            "/v1/files?name=greeting.wav",
            Some("audio/wav"),
            &b"RIFF1234"[..],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("file_"), "{body}");
    assert_eq!(body["name"], "greeting.wav");
    assert_eq!(body["content_type"], "audio/wav");
    assert_eq!(body["size"], 8);
    assert_eq!(body["duration_ms"], 1250);
    assert_eq!(body["rate"], 8000);
    assert!(h.store.file_exists(A, &id).unwrap());

    for ct in ["audio/x-wav", "audio/wave", "audio/mpeg", "audio/mp3"] {
        let (status, body) = h
            .send(Method::POST, "/v1/files", Some(ct), &b"RIFFxx"[..])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ct}: {body}");
        assert_eq!(body["name"], Value::Null);
    }

    let (status, body) = h.get("/v1/files").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["files"].as_array().unwrap().len(), 5);
    assert_eq!(body["files"][0]["id"], id.as_str());

    let (status, body) = h.get(&format!("/v1/files/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["channels"], 1);

    let req = Request::get(format!("/v1/files/{id}/content"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, bytes) = h.raw(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "audio/wav");
    assert_eq!(bytes, b"RIFF1234");

    let (status, body) = h.get("/v1/files/file_0000000000000000").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn file_errors_store_nothing() {
    let h = Harness::new();
    let (status, body) = h
        .send(Method::POST, "/v1/files", Some("text/plain"), &b"RIFF"[..])
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (status, body) = h.send(Method::POST, "/v1/files", None, &b"RIFF"[..]).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (status, body) = h
        .send(
            Method::POST,
            "/v1/files",
            Some("audio/wav"),
            &b"OggS garbage"[..],
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_audio");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a WAV")
    );
    let (status, body) = h
        .send(Method::POST, "/v1/files", Some("audio/wav"), Body::empty())
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = h
        .send(
            Method::POST,
            "/v1/files",
            Some("audio/wav"),
            vec![b'R'; pbx_api::MAX_FILE_BYTES + 1],
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert!(h.store.list_files(A).unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(h.dir.path().join("files"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn calls_live_history_show_and_hangup() {
    let h = Harness::new();
    h.backend
        .live
        .lock()
        .unwrap()
        .push(call("live-1", CallStatus::Progressing, 100, None));
    // A stale stored copy of the live call must not win over the live one.
    h.store
        .upsert_call(&call("live-1", CallStatus::Ringing, 100, None))
        .unwrap();
    for (id, created, ended) in [("old", 0, 10), ("mid", 20, 30), ("new", 40, 50)] {
        h.store
            .upsert_call(&call(id, CallStatus::Hangup, created, Some(ended)))
            .unwrap();
    }

    let (status, body) = h.get("/v1/calls").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["calls"].as_array().unwrap().len(), 1);
    assert_eq!(body["calls"][0]["id"], "live-1");
    assert_eq!(body["calls"][0]["status"], "progressing");
    for key in [
        "id",
        "app_id",
        "direction",
        "from",
        "to",
        "status",
        "hangup_by",
        "hangup_reason",
        "tm_create",
        "tm_ringing",
        "tm_progressing",
        "tm_hangup",
        "master_call_id",
        "chained_call_ids",
    ] {
        assert!(body["calls"][0].get(key).is_some(), "{key} missing: {body}");
    }

    let (status, body) = h.get("/v1/calls/history").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<_> = body["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(ids, [json!("new"), json!("mid"), json!("old")]);
    assert_eq!(body["next_before"], Value::Null);
    assert_eq!(body["calls"][0]["hangup_reason"], "normal");
    assert_eq!(body["calls"][0]["tm_hangup"], "2023-11-14T22:14:10Z");

    let (status, body) = h.get("/v1/calls/history?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["calls"].as_array().unwrap().len(), 2);
    assert_eq!(body["next_before"], "mid");
    let (status, body) = h.get("/v1/calls/history?limit=2&before=mid").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["calls"][0]["id"], "old");
    let (status, body) = h.get("/v1/calls/history?limit=abc").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["field"], "limit");
    let (status, body) = h.get("/v1/calls/history?before=unknown").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

    let (status, body) = h.get("/v1/calls/live-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "progressing");
    let (status, body) = h.get("/v1/calls/old").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "hangup");
    let (status, body) = h.get("/v1/calls/nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, body) = h
        .send(Method::POST, "/v1/calls/live-1/hangup", None, Body::empty())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"id": "live-1", "status": "terminating"}));
    assert_eq!(
        *h.backend.hung_up.lock().unwrap(),
        vec!["live-1".to_owned()]
    );
    let (status, body) = h
        .send(Method::POST, "/v1/calls/old/hangup", None, Body::empty())
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn data_survives_reopening_the_store() {
    let h = Harness::new();
    let id = h.create_app("hello").await;
    h.upload(&id, b"COMPONENT").await;
    h.json(
        Method::POST,
        &format!("/v1/apps/{id}/deploy"),
        json!({"version": 1}),
    )
    .await;
    h.json(Method::PUT, "/v1/numbers/1000", json!({"app_id": id}))
        .await;
    let (_, file) = h
        .send(Method::POST, "/v1/files", Some("audio/wav"), &b"RIFF"[..])
        .await;
    h.store
        .upsert_call(&call("c1", CallStatus::Hangup, 0, Some(5)))
        .unwrap();

    let Harness {
        dir, router, store, ..
    } = h;
    drop(router);
    drop(store);
    let h = Harness::at(dir);

    let (status, body) = h.get(&format!("/v1/apps/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active_version"], 1);
    assert_eq!(body["versions"].as_array().unwrap().len(), 1);
    let (_, body) = h.get("/v1/numbers").await;
    assert_eq!(body["numbers"][0]["app_id"], id.as_str());
    let (status, body) = h
        .get(&format!("/v1/files/{}", file["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["duration_ms"], 1250);
    let (_, body) = h.get("/v1/calls/history").await;
    assert_eq!(body["calls"][0]["id"], "c1");
    assert_eq!(
        h.store
            .route("1000")
            .unwrap()
            .map(|r| (r.app_id, r.version)),
        Some((id, 1))
    );
}
