//! A small client for pbx's admin HTTP API: JSON in and out, bearer token, and every reply
//! returned as `(status, json)` so that tests can assert on error statuses and bodies.
//!
//! Invariant: every request has a timeout; a body that is not JSON comes back as a JSON string
//! and an empty body as `null`, so a reply never fails to parse.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::error::{HarnessError, Result};
use crate::pbx::DeployedApp;

/// One API reply: the HTTP status and the body as JSON.
pub type Reply = (u16, Value);

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client bound to one pbx instance and its admin token.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:8080`) with `token`.
    pub fn new(base: &str, token: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| HarnessError::Http {
                method: "BUILD".into(),
                url: base.into(),
                source,
            })?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The token it sends.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A copy of this client that sends another token (for 401 tests).
    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: token.to_string(),
            ..self.clone()
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
        auth: bool,
    ) -> Result<Reply> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.client.request(method.clone(), &url);
        if auth {
            request = request.bearer_auth(&self.token);
        }
        if let Some((bytes, content_type)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let http_err = |source| HarnessError::Http {
            method: method.to_string(),
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(http_err)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(http_err)?;
        Ok((status, parse_body(&bytes)))
    }

    /// `GET path` with the token.
    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None, true).await
    }

    /// `GET path` without any Authorization header.
    pub async fn get_unauthenticated(&self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None, false).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Reply> {
        let bytes = body.to_string().into_bytes();
        self.send(Method::POST, path, Some((bytes, "application/json")), true)
            .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value) -> Result<Reply> {
        let bytes = body.to_string().into_bytes();
        self.send(Method::PUT, path, Some((bytes, "application/json")), true)
            .await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch_json(&self, path: &str, body: &Value) -> Result<Reply> {
        let bytes = body.to_string().into_bytes();
        self.send(Method::PATCH, path, Some((bytes, "application/json")), true)
            .await
    }

    /// `PUT path` with raw bytes and a content type.
    pub async fn put_bytes(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> Result<Reply> {
        self.send(Method::PUT, path, Some((bytes, content_type)), true)
            .await
    }

    /// `POST path` with raw bytes and a content type.
    pub async fn post_bytes(
        &self,
        path: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<Reply> {
        self.send(Method::POST, path, Some((bytes, content_type)), true)
            .await
    }

    /// `POST path` with no body.
    pub async fn post_empty(&self, path: &str) -> Result<Reply> {
        self.send(Method::POST, path, None, true).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Reply> {
        self.send(Method::DELETE, path, None, true).await
    }

    /// `GET path` without a token, returning the status and the body as text (`/metrics`).
    pub async fn get_text_unauthenticated(&self, path: &str) -> Result<(u16, String)> {
        let url = format!("{}{}", self.base, path);
        let http_err = |source| HarnessError::Http {
            method: "GET".into(),
            url: url.clone(),
            source,
        };
        let response = self.client.get(&url).send().await.map_err(http_err)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(http_err)?;
        Ok((status, text))
    }

    /// `GET /healthz` (no token).
    pub async fn healthz(&self) -> Result<Reply> {
        self.get_unauthenticated("/healthz").await
    }

    /// `POST /v1/apps {"name"}`: 201 with `{"id","name",...}`.
    pub async fn create_app(&self, name: &str) -> Result<Reply> {
        self.post_json("/v1/apps", &json!({ "name": name })).await
    }

    /// `GET /v1/apps`.
    pub async fn apps(&self) -> Result<Reply> {
        self.get("/v1/apps").await
    }

    /// `GET /v1/apps/{id}`: the app with its `versions`.
    pub async fn app(&self, app_id: &str) -> Result<Reply> {
        self.get(&format!("/v1/apps/{app_id}")).await
    }

    /// `POST /v1/apps/{id}/versions` with the component bytes: 201 `{"version","sha256"}`.
    pub async fn upload_version(
        &self,
        app_id: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<Reply> {
        self.post_bytes(&format!("/v1/apps/{app_id}/versions"), bytes, content_type)
            .await
    }

    /// `POST /v1/apps/{id}/deploy {"version"}`: 200.
    pub async fn deploy(&self, app_id: &str, version: u64) -> Result<Reply> {
        self.post_json(
            &format!("/v1/apps/{app_id}/deploy"),
            &json!({ "version": version }),
        )
        .await
    }

    /// Creates app `name` with this client's token (so in its account), uploads the component
    /// at `wasm_path`, deploys that version and binds `number` to it; every step must succeed
    /// with the contract's status.
    pub async fn deploy_app(
        &self,
        name: &str,
        wasm_path: &Path,
        number: &str,
    ) -> Result<DeployedApp> {
        let app = expect_status(
            &format!("create app {name}"),
            201,
            self.create_app(name).await?,
        )?;
        let app_id = str_field(&app, "id").to_string();
        if app_id.is_empty() {
            return Err(HarnessError::protocol(
                "pbx api",
                format!("app without id: {app}"),
            ));
        }
        let version = self.upload_file_version(&app_id, wasm_path).await?;
        expect_status(
            &format!("deploy {name} v{version}"),
            200,
            self.deploy(&app_id, version).await?,
        )?;
        expect_status(
            &format!("bind number {number} to {name}"),
            200,
            self.set_number(number, &app_id).await?,
        )?;
        Ok(DeployedApp {
            app_id,
            version,
            number: number.to_string(),
        })
    }

    /// Uploads the component at `wasm_path` as a new version of `app_id` (201) and returns
    /// the version number.
    pub async fn upload_file_version(&self, app_id: &str, wasm_path: &Path) -> Result<u64> {
        let bytes = std::fs::read(wasm_path)
            .map_err(|e| HarnessError::io(format!("read {}", wasm_path.display()), e))?;
        let uploaded = expect_status(
            &format!("upload {}", wasm_path.display()),
            201,
            self.upload_version(app_id, bytes, "application/wasm")
                .await?,
        )?;
        uploaded
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                HarnessError::protocol(
                    "pbx api",
                    format!("upload reply without version: {uploaded}"),
                )
            })
    }

    /// `PUT /v1/numbers/{number} {"app_id"}`: 200.
    pub async fn set_number(&self, number: &str, app_id: &str) -> Result<Reply> {
        self.put_json(
            &format!("/v1/numbers/{number}"),
            &json!({ "app_id": app_id }),
        )
        .await
    }

    /// `GET /v1/numbers`.
    pub async fn numbers(&self) -> Result<Reply> {
        self.get("/v1/numbers").await
    }

    /// `POST /v1/files` with audio bytes: 201 `{"id"}`.
    pub async fn upload_file(&self, bytes: Vec<u8>, content_type: &str) -> Result<Reply> {
        self.post_bytes("/v1/files", bytes, content_type).await
    }

    /// `GET /v1/calls`: the live calls.
    pub async fn calls(&self) -> Result<Reply> {
        self.get("/v1/calls").await
    }

    /// `GET /v1/calls/history`: finished calls, newest first.
    pub async fn history(&self) -> Result<Reply> {
        self.get("/v1/calls/history").await
    }

    /// `GET /v1/calls/{id}`.
    pub async fn call(&self, call_id: &str) -> Result<Reply> {
        self.get(&format!("/v1/calls/{call_id}")).await
    }

    /// `POST /v1/calls/{id}/hangup`.
    pub async fn hangup(&self, call_id: &str) -> Result<Reply> {
        self.post_empty(&format!("/v1/calls/{call_id}/hangup"))
            .await
    }

    /// `GET path` returning the raw body bytes (for WAV downloads).
    pub async fn get_bytes(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        let url = format!("{}{}", self.base, path);
        let http_err = |source| HarnessError::Http {
            method: "GET".into(),
            url: url.clone(),
            source,
        };
        let response = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(http_err)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(http_err)?;
        Ok((status, bytes.to_vec()))
    }

    /// `POST /v1/sip-users {"username","password"}`: 201 `{"id","username",...}`.
    pub async fn create_sip_user(&self, username: &str, password: &str) -> Result<Reply> {
        self.post_json(
            "/v1/sip-users",
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    /// `POST /v1/trunks` with `body` (`name`, `proxy`, and optionally `username`, `password`,
    /// `caller_id`, `number_prefix`, `priority`): 201.
    pub async fn create_trunk(&self, body: &Value) -> Result<Reply> {
        self.post_json("/v1/trunks", body).await
    }

    /// `POST /v1/calls {"from"?, "to", "app_id"}`: 201 with the new live call. `to` is an
    /// endpoint from [`sip_endpoint`], [`user_endpoint`] or [`phone_endpoint`].
    pub async fn originate(&self, from: Option<&str>, to: Value, app_id: &str) -> Result<Reply> {
        let mut body = json!({ "to": to, "app_id": app_id });
        if let Some(from) = from {
            body["from"] = Value::String(from.into());
        }
        self.post_json("/v1/calls", &body).await
    }

    /// `GET /v1/conferences`: the live conferences.
    pub async fn conferences(&self) -> Result<Reply> {
        self.get("/v1/conferences").await
    }

    /// `GET /v1/conferences/{id}`: live with `participants`, or finished.
    pub async fn conference(&self, id: &str) -> Result<Reply> {
        self.get(&format!("/v1/conferences/{id}")).await
    }

    /// `POST /v1/conferences/{id}/hangup`.
    pub async fn hangup_conference(&self, id: &str) -> Result<Reply> {
        self.post_empty(&format!("/v1/conferences/{id}/hangup"))
            .await
    }

    /// `GET /v1/recordings`, filtered by `call_id` and/or `conference_id`.
    pub async fn recordings(
        &self,
        call_id: Option<&str>,
        conference_id: Option<&str>,
    ) -> Result<Reply> {
        let mut query = Vec::new();
        if let Some(id) = call_id {
            query.push(format!("call_id={id}"));
        }
        if let Some(id) = conference_id {
            query.push(format!("conference_id={id}"));
        }
        let path = if query.is_empty() {
            "/v1/recordings".to_string()
        } else {
            format!("/v1/recordings?{}", query.join("&"))
        };
        self.get(&path).await
    }

    /// `GET /v1/recordings/{id}`.
    pub async fn recording(&self, id: &str) -> Result<Reply> {
        self.get(&format!("/v1/recordings/{id}")).await
    }

    /// `GET /v1/recordings/{id}/file`: the (first or mixed) WAV; fails unless 200.
    pub async fn recording_file(&self, id: &str) -> Result<Vec<u8>> {
        let path = format!("/v1/recordings/{id}/file");
        let (status, bytes) = self.get_bytes(&path).await?;
        if status == 200 {
            Ok(bytes)
        } else {
            Err(HarnessError::Api {
                what: format!("download {path}"),
                expected: 200,
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        }
    }

    /// Polls `/v1/recordings` until one is `ready`, at most `timeout`; returns it.
    pub async fn wait_recording_ready(&self, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            if let Ok((200, body)) = self.recordings(None, None).await {
                if let Some(found) = list_of(&body, "recordings")
                    .into_iter()
                    .find(|r| str_field(r, "status") == "ready")
                {
                    return Ok(found);
                }
                last = body;
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::timeout(
                    format!("a ready recording in /v1/recordings (last seen: {last})"),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls `/v1/conferences` until `pred` holds for the list, at most `timeout`; returns
    /// the list.
    pub async fn wait_conferences(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            if let Ok((200, body)) = self.conferences().await {
                let list = list_of(&body, "conferences");
                if pred(&list) {
                    return Ok(list);
                }
                last = body;
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::timeout(
                    format!("/v1/conferences to match (last seen: {last})"),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the live calls until `pred` holds for the list, at most `timeout`; returns it.
    pub async fn wait_live_calls(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            if let Ok((200, body)) = self.calls().await {
                let list = calls_of(&body);
                if pred(&list) {
                    return Ok(list);
                }
                last = body;
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::timeout(
                    format!("/v1/calls to match (last seen: {last})"),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the call history until a record satisfies `pred`, at most `timeout`; returns it.
    /// The error names the last history seen, which is what a failing test needs to show.
    pub async fn wait_history(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            if let Ok((200, body)) = self.history().await {
                if let Some(found) = calls_of(&body).into_iter().find(|c| pred(c)) {
                    return Ok(found);
                }
                last = body;
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::timeout(
                    format!("a matching call in /v1/calls/history (last seen: {last})"),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the live calls until none is left, at most `timeout`.
    pub async fn wait_no_live_calls(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            if let Ok((200, body)) = self.calls().await {
                if calls_of(&body).is_empty() {
                    return Ok(());
                }
                last = body;
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::timeout(
                    format!("no live calls in /v1/calls (last seen: {last})"),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The `calls` array of a `{"calls":[...]}` reply (empty when absent).
pub fn calls_of(body: &Value) -> Vec<Value> {
    body.get("calls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The array `key` of a list reply such as `{"conferences":[...]}`; a bare array is accepted
/// too (empty when neither).
pub fn list_of(body: &Value, key: &str) -> Vec<Value> {
    body.get(key)
        .or(Some(body))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The endpoint JSON of a SIP URI for `POST /v1/calls`.
pub fn sip_endpoint(uri: &str) -> Value {
    json!({ "type": "sip", "uri": uri })
}

/// The endpoint JSON of a registered SIP user.
pub fn user_endpoint(name: &str) -> Value {
    json!({ "type": "user", "name": name })
}

/// The endpoint JSON of a phone number through `trunk` (None: every trunk by priority).
pub fn phone_endpoint(number: &str, trunk: Option<&str>) -> Value {
    json!({ "type": "phone", "number": number, "trunk": trunk })
}

/// The `error.code` of an error reply, if any.
pub fn error_code(body: &Value) -> Option<&str> {
    body.pointer("/error/code").and_then(Value::as_str)
}

/// A string field of a JSON object, or "" (for terse assertions).
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Fails with the reply when its status is not `expected`; returns the body otherwise.
pub fn expect_status(what: &str, expected: u16, reply: Reply) -> Result<Value> {
    let (status, body) = reply;
    if status == expected {
        Ok(body)
    } else {
        Err(HarnessError::Api {
            what: what.to_string(),
            expected,
            status,
            body: body.to_string(),
        })
    }
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
