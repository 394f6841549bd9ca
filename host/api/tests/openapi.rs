//! The documentation of the admin API stays true to the code: the OpenAPI document is 3.1,
//! covers every route the router serves (read from the crate's sources, so a new route
//! without an annotation fails here) and nothing else, its schemas have the same fields as
//! real answers, `/docs` lists every path and every error code the sources can answer and
//! loads nothing from another host, and `/docs/wit` renders the app contract.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use pbx_api::{ApiState, Backend, ComponentRejection, ERROR_CODES, RejectionCode, router};
use pbx_store::{CallRecord, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "test-token";

struct FakeBackend;

impl Backend for FakeBackend {
    fn check_component(&self, bytes: &[u8]) -> Result<(), ComponentRejection> {
        if bytes.starts_with(b"COMPONENT") {
            Ok(())
        } else {
            Err(ComponentRejection::new(
                RejectionCode::NotAComponent,
                "not a component",
            ))
        }
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

    fn check_audio(&self, bytes: &[u8]) -> Result<Value, String> {
        if bytes.starts_with(b"RIFF") {
            Ok(json!({ "format": "wav", "rate": 8000, "channels": 1, "duration_ms": 1250 }))
        } else {
            Err("not audio".into())
        }
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    router: Router,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let router = router(ApiState {
            store,
            backend: Arc::new(FakeBackend),
            admin_token: TOKEN.into(),
        });
        Harness { _dir: dir, router }
    }

    async fn raw(
        &self,
        method: Method,
        uri: &str,
        auth: bool,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if auth {
            req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
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

    async fn text(&self, uri: &str) -> String {
        let (status, headers, body) = self.raw(Method::GET, uri, false, None, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{uri}"
        );
        String::from_utf8(body).unwrap()
    }

    /// An authenticated JSON request; asserts `expect` and returns the body.
    async fn json(&self, method: Method, uri: &str, body: Option<Value>, expect: u16) -> Value {
        let (ct, bytes) = match body {
            Some(b) => (Some("application/json"), b.to_string().into_bytes()),
            None => (None, Vec::new()),
        };
        let (status, _, out) = self.raw(method.clone(), uri, true, ct, bytes).await;
        assert_eq!(
            status.as_u16(),
            expect,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&out)
        );
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }
}

async fn document(h: &Harness) -> Value {
    let (status, headers, body) = h
        .raw(Method::GET, "/v1/openapi.json", false, None, Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    serde_json::from_slice(&body).expect("the document is JSON")
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// (METHOD, path) of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(*method).is_some() {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    out
}

fn crate_sources() -> Vec<(String, String)> {
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// The text between the `(` at `open` and its matching `)`.
fn balanced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in text[open..].char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
        prev = c;
    }
    panic!("unbalanced parenthesis");
}

/// Splits call arguments at top-level commas.
fn arguments(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut in_str = false;
    let mut prev = ' ';
    let mut current = String::new();
    for c in args.chars() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(std::mem::take(&mut current).trim().to_owned());
                prev = c;
                continue;
            }
            _ => {}
        }
        current.push(c);
        prev = c;
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// The words directly followed by `(` in `text` that are HTTP method routers.
fn method_calls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for method in METHODS {
        let needle = format!("{method}(");
        let mut from = 0;
        while let Some(at) = text[from..].find(&needle) {
            let at = from + at;
            let before = text[..at].chars().next_back().unwrap_or(' ');
            if !(before.is_ascii_alphanumeric() || before == '_') {
                out.push(method.to_ascii_uppercase());
            }
            from = at + needle.len();
        }
    }
    out
}

/// (METHOD, path) of every `.route("path", method(handler)...)` in the crate's sources.
fn routed_in_sources() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (file, text) in crate_sources() {
        let mut from = 0;
        while let Some(at) = text[from..].find(".route(") {
            let open = from + at + ".route".len();
            let inner = balanced(&text, open);
            let args = arguments(inner);
            if !args[0].starts_with('"') {
                from = open + inner.len();
                continue;
            }
            let path = args[0].trim_matches('"').to_owned();
            let methods = method_calls(&args[1..].join(","));
            assert!(!methods.is_empty(), "{file}: no method for route {path}");
            for method in methods {
                out.insert((method, path.clone()));
            }
            from = open + inner.len();
        }
    }
    out
}

#[tokio::test]
async fn document_is_openapi_3_1_with_security_and_unique_operations() {
    let h = Harness::new();
    let doc = document(&h).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["info"]["title"], "pbx");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(pbx_api::openapi_json()).unwrap()
    );

    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} is used twice");
            assert_eq!(op["tags"].as_array().unwrap().len(), 1, "{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{id}"
            );
            let secured = op["security"][0].get("bearerAuth").is_some();
            assert_eq!(
                secured,
                path.starts_with("/v1/") && path != "/v1/openapi.json",
                "{id}: only /v1 routes (not the document) need the bearer token"
            );
            if secured {
                assert!(op["responses"].get("401").is_some(), "{id}");
                let names: Vec<&str> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert!(names.contains(&"Pbx-Account"), "{id}");
            }
            // Every path parameter is declared.
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        op["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == name && p["in"] == "path"),
                        "{id}: path parameter {name} is not declared"
                    );
                }
            }
            // Every error answer uses the error shape.
            for (status, response) in op["responses"].as_object().unwrap() {
                // `/healthz` answers its own shape while draining.
                if (status.starts_with('4') || status.starts_with('5')) && path != "/healthz" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{id} {status}"
                    );
                }
            }
        }
    }
    // Every reference resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
}

#[tokio::test]
async fn every_route_in_the_sources_is_documented_and_nothing_else() {
    let doc = document(&Harness::new()).await;
    let routed = routed_in_sources();
    let documented = documented(&doc);
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes without #[utoipa::path] (add one and list it in openapi.rs): {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    assert!(
        routed.len() > 60,
        "the source scan found only {} routes",
        routed.len()
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_its_route() {
    let h = Harness::new();
    let doc = document(&h).await;
    for (method, path) in documented(&doc) {
        let uri = path
            .replace("{version}", "1")
            .replace("{index}", "0")
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, _, body) = h.raw(method.clone(), &uri, false, None, Vec::new()).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_ne!(body["error"]["message"], "no such route", "{method} {uri}");
        if path.starts_with("/v1/") && path != "/v1/openapi.json" {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        }
    }
}

/// Every error code the crate's sources can answer: the code argument of each
/// `ApiError::new`/`Self::new` in error construction, the codes `from_status` maps bare
/// statuses to, and the component rejection codes.
fn codes_in_sources() -> BTreeSet<String> {
    let snake = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut codes = BTreeSet::new();
    for (file, text) in crate_sources() {
        let mut constructors = vec!["ApiError::new("];
        if file.ends_with("error.rs") {
            constructors.push("Self::new(");
        }
        for constructor in constructors {
            let mut from = 0;
            while let Some(at) = text[from..].find(constructor) {
                let open = from + at + constructor.len() - 1;
                let inner = balanced(&text, open);
                let args = arguments(inner);
                if let Some(code) = args.get(1).and_then(|a| a.strip_prefix('"')) {
                    let code = code.trim_end_matches('"');
                    assert!(snake(code), "{file}: odd error code {code:?}");
                    codes.insert(code.to_owned());
                }
                from = open + inner.len();
            }
        }
        // `=> "code"` arms of `from_status` and of `RejectionCode::as_str`.
        for marker in ["fn from_status(", "impl RejectionCode {"] {
            if let Some(at) = text.find(marker) {
                let rest = &text[at..];
                let end = rest
                    .find("\n}\n")
                    .or_else(|| rest.find("\n    }\n"))
                    .unwrap();
                for arm in rest[..end].split("=> \"").skip(1) {
                    let code = &arm[..arm.find('"').unwrap()];
                    if snake(code) {
                        codes.insert(code.to_owned());
                    }
                }
            }
        }
    }
    codes
}

#[tokio::test]
async fn error_code_table_matches_the_sources_and_the_document() {
    let from_sources = codes_in_sources();
    let table: BTreeSet<String> = ERROR_CODES.iter().map(|c| c.code.to_owned()).collect();
    assert_eq!(table.len(), ERROR_CODES.len(), "a code is listed twice");
    for code in [
        "invalid_request",
        "not_found",
        "conflict",
        "quota_exceeded",
        "not_a_component",
        "wrong_world",
        "method_not_allowed",
    ] {
        assert!(from_sources.contains(code), "the source scan missed {code}");
    }
    let missing: Vec<_> = from_sources.difference(&table).collect();
    let stale: Vec<_> = table.difference(&from_sources).collect();
    assert!(
        missing.is_empty(),
        "error codes used in the sources but not in ERROR_CODES (error.rs): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "ERROR_CODES lists codes nothing answers: {stale:?}"
    );

    let doc = document(&Harness::new()).await;
    let in_doc: BTreeSet<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(in_doc, table);
}

#[tokio::test]
async fn event_types_come_from_the_store() {
    let doc = document(&Harness::new()).await;
    let in_doc: Vec<&str> = doc["components"]["schemas"]["EventType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let all: Vec<&str> = pbx_store::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(in_doc, all);
}

#[tokio::test]
async fn docs_page_lists_every_path_and_error_code_and_works_offline() {
    let h = Harness::new();
    let doc = document(&h).await;
    let page = h.text("/docs").await;
    assert!(page.starts_with("<!doctype html>"));
    for (_, path) in documented(&doc) {
        assert!(page.contains(&format!("<code>{path}</code>")), "{path}");
    }
    assert!(page.contains("id=\"error-codes\""));
    for code in ERROR_CODES {
        assert!(
            page.contains(&format!("<tr id=\"error-{}\">", code.code)),
            "{}",
            code.code
        );
    }
    for code in codes_in_sources() {
        assert!(page.contains(&format!("<code>{code}</code>")), "{code}");
    }
    for schema in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            page.contains(&format!("id=\"schema-{schema}\"")),
            "{schema}"
        );
    }
    // Self-contained: nothing is loaded from anywhere.
    let lower = page.to_ascii_lowercase();
    for forbidden in ["<script src", " src=", "<link", "@import", "url("] {
        assert!(!lower.contains(forbidden), "/docs contains {forbidden:?}");
    }
    for tag in lower.split("<script").skip(1) {
        let head = &tag[..tag.find('>').unwrap()];
        assert!(!head.contains("http"), "an external script: {head}");
    }
    assert!(
        lower.matches("<script").count() <= 1,
        "one small inline script at most"
    );
}

#[tokio::test]
async fn wit_page_renders_the_app_contract() {
    let h = Harness::new();
    let page = h.text("/docs/wit").await;
    assert!(page.contains("on-call-received"));
    assert!(page.contains("interface"));
    // Doc comments are carried over, and `<`/`>` of WIT types are escaped.
    assert!(page.contains("The contract between the pbx host and a call app."));
    assert!(page.contains("result&lt;_, error&gt;"));
    assert!(!page.contains("result<_"));
    let lower = page.to_ascii_lowercase();
    for forbidden in ["<script src", " src=", "<link", "@import", "url("] {
        assert!(
            !lower.contains(forbidden),
            "/docs/wit contains {forbidden:?}"
        );
    }
}

/// The property names of schema `name`.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect()
}

/// Asserts that `answer` has exactly the fields schema `name` documents (or at least them,
/// when the schema allows more).
fn assert_shape(doc: &Value, name: &str, answer: &Value) {
    let keys: BTreeSet<String> = answer
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object: {answer}"))
        .keys()
        .cloned()
        .collect();
    let documented = properties(doc, name);
    let open = doc["components"]["schemas"][name]
        .get("additionalProperties")
        .is_some_and(|v| *v != Value::Bool(false));
    let undocumented: Vec<_> = keys.difference(&documented).collect();
    let absent: Vec<_> = documented.difference(&keys).collect();
    if !open {
        assert!(
            undocumented.is_empty(),
            "{name}: undocumented fields {undocumented:?}"
        );
    }
    assert!(
        absent.is_empty(),
        "{name}: documented fields not answered {absent:?}"
    );
}

#[tokio::test]
async fn schemas_match_real_answers() {
    let h = Harness::new();
    let doc = document(&h).await;
    let post = Method::POST;
    let get = Method::GET;

    let app = h
        .json(post.clone(), "/v1/apps", Some(json!({"name": "ivr"})), 201)
        .await;
    assert_shape(&doc, "App", &app);
    let app_id = app["id"].as_str().unwrap().to_owned();
    let (status, _, body) = h
        .raw(
            post.clone(),
            &format!("/v1/apps/{app_id}/versions"),
            true,
            Some("application/wasm"),
            b"COMPONENT".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_shape(&doc, "Version", &serde_json::from_slice(&body).unwrap());
    let detail = h
        .json(
            post.clone(),
            &format!("/v1/apps/{app_id}/deploy"),
            Some(json!({"version": 1})),
            200,
        )
        .await;
    assert_shape(&doc, "AppDetail", &detail);
    let list = h.json(get.clone(), "/v1/apps", None, 200).await;
    assert_shape(&doc, "AppList", &list);
    let versions = h
        .json(
            get.clone(),
            &format!("/v1/apps/{app_id}/versions"),
            None,
            200,
        )
        .await;
    assert_shape(&doc, "VersionList", &versions);

    let settings = h
        .json(
            get.clone(),
            &format!("/v1/apps/{app_id}/settings"),
            None,
            200,
        )
        .await;
    assert_shape(&doc, "AppSettings", &settings);
    let entry = h
        .json(
            Method::PUT,
            &format!("/v1/apps/{app_id}/config/greeting"),
            Some(json!({"value": "hi"})),
            200,
        )
        .await;
    assert_shape(&doc, "ConfigEntry", &entry);
    let config = h
        .json(get.clone(), &format!("/v1/apps/{app_id}/config"), None, 200)
        .await;
    assert_shape(&doc, "ConfigList", &config);
    let (status, _, _) = h
        .raw(
            Method::PUT,
            &format!("/v1/apps/{app_id}/kv/k"),
            true,
            Some("application/octet-stream"),
            b"v".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let kv = h
        .json(get.clone(), &format!("/v1/apps/{app_id}/kv"), None, 200)
        .await;
    assert_shape(&doc, "KvList", &kv);
    assert_shape(&doc, "KvEntry", &kv["keys"][0]);

    let account = h
        .json(
            post.clone(),
            "/v1/accounts",
            Some(json!({"name": "acme"})),
            201,
        )
        .await;
    assert_shape(&doc, "Account", &account);
    assert_shape(&doc, "Quotas", &account["quotas"]);
    let account_id = account["id"].as_str().unwrap().to_owned();
    let own = h.json(get.clone(), "/v1/account", None, 200).await;
    assert_shape(&doc, "AccountWithUsage", &own);
    assert_shape(&doc, "Usage", &own["usage"]);
    let accounts = h.json(get.clone(), "/v1/accounts", None, 200).await;
    assert_shape(&doc, "AccountList", &accounts);
    let key = h
        .json(
            post.clone(),
            &format!("/v1/accounts/{account_id}/keys"),
            Some(json!({"name": "ci"})),
            201,
        )
        .await;
    assert_shape(&doc, "NewApiKey", &key);
    let keys = h
        .json(
            get.clone(),
            &format!("/v1/accounts/{account_id}/keys"),
            None,
            200,
        )
        .await;
    assert_shape(&doc, "ApiKeyList", &keys);
    assert_shape(&doc, "ApiKey", &keys["keys"][0]);

    let number = h
        .json(
            Method::PUT,
            "/v1/numbers/1000",
            Some(json!({"app_id": app_id})),
            200,
        )
        .await;
    assert_shape(&doc, "NumberRoute", &number);
    assert_shape(
        &doc,
        "NumberList",
        &h.json(get.clone(), "/v1/numbers", None, 200).await,
    );

    let (status, _, body) = h
        .raw(
            post.clone(),
            "/v1/files?name=x",
            true,
            Some("audio/wav"),
            b"RIFF....".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_shape(&doc, "File", &serde_json::from_slice(&body).unwrap());
    assert_shape(
        &doc,
        "FileList",
        &h.json(get.clone(), "/v1/files", None, 200).await,
    );

    let trunk = h
        .json(
            post.clone(),
            "/v1/trunks",
            Some(json!({"name": "carrier", "proxy": "sip:sip.example.com", "password": "p"})),
            201,
        )
        .await;
    assert_shape(&doc, "Trunk", &trunk);
    assert_shape(
        &doc,
        "TrunkList",
        &h.json(get.clone(), "/v1/trunks", None, 200).await,
    );

    let user = h
        .json(
            post.clone(),
            "/v1/sip-users",
            Some(json!({"username": "alice", "password": "pw-alice-1"})),
            201,
        )
        .await;
    assert_shape(&doc, "SipUser", &user);
    let user_id = user["id"].as_str().unwrap();
    let detail = h
        .json(get.clone(), &format!("/v1/sip-users/{user_id}"), None, 200)
        .await;
    assert_shape(&doc, "SipUserDetail", &detail);
    assert_shape(
        &doc,
        "SipUserList",
        &h.json(get.clone(), "/v1/sip-users", None, 200).await,
    );

    let hook = h
        .json(
            post.clone(),
            "/v1/webhooks",
            Some(json!({"url": "https://hooks.invalid/hook", "event_types": ["CALL_FINISHED"]})),
            201,
        )
        .await;
    assert_shape(&doc, "WebhookWithSecret", &hook);
    let hook_id = hook["id"].as_str().unwrap();
    let shown = h
        .json(get.clone(), &format!("/v1/webhooks/{hook_id}"), None, 200)
        .await;
    assert_shape(&doc, "Webhook", &shown);
    assert_shape(
        &doc,
        "WebhookList",
        &h.json(get.clone(), "/v1/webhooks", None, 200).await,
    );
    let deliveries = h
        .json(
            get.clone(),
            &format!("/v1/webhooks/{hook_id}/deliveries"),
            None,
            200,
        )
        .await;
    assert_shape(&doc, "DeliveryList", &deliveries);

    assert_shape(
        &doc,
        "CallList",
        &h.json(get.clone(), "/v1/calls", None, 200).await,
    );
    assert_shape(
        &doc,
        "CallHistory",
        &h.json(get.clone(), "/v1/calls/history", None, 200).await,
    );
    assert_shape(
        &doc,
        "EventPage",
        &h.json(get.clone(), "/v1/events", None, 200).await,
    );
    let events = h
        .json(get.clone(), "/v1/events?types=APP_DEPLOYED", None, 200)
        .await;
    if let Some(event) = events["events"].get(0) {
        assert_shape(&doc, "Event", event);
    }
    assert_shape(
        &doc,
        "ConferenceList",
        &h.json(get.clone(), "/v1/conferences", None, 200).await,
    );
    assert_shape(
        &doc,
        "RecordingList",
        &h.json(get.clone(), "/v1/recordings", None, 200).await,
    );

    // The error shape itself.
    let error = h.json(get.clone(), "/v1/apps/app_nope", None, 404).await;
    assert_shape(&doc, "ErrorBody", &error);
    let mut detail = error["error"].clone();
    detail["field"] = json!(null);
    assert_shape(&doc, "ErrorDetail", &detail);

    // Health is documented too.
    let (status, _, body) = h
        .raw(get.clone(), "/healthz", false, None, Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_shape(&doc, "Health", &serde_json::from_slice(&body).unwrap());
}

/// Every operation with a JSON body, read from the document: `(method, path)`.
fn json_body_operations(doc: &Value) -> Vec<(Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                ops.push((
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    path.clone(),
                ));
            }
        }
    }
    ops
}

/// A concrete URI for a documented path: each `{param}` becomes a well-formed value.
fn concrete(path: &str) -> String {
    path.replace("{number}", "7000")
        .replace("{version}", "1")
        .replace("{name}", "greeting")
        .replace("{key}", "k")
        .replace("{key_id}", "key_0123456789abcdef")
        .replace("{id}", "x_0123456789abcdef")
}

#[tokio::test]
async fn every_json_route_refuses_an_unknown_field_naming_it() {
    let h = Harness::new();
    let doc = document(&h).await;
    let ops = json_body_operations(&doc);
    assert!(ops.len() >= 14, "too few JSON operations found: {ops:?}");
    for (method, path) in ops {
        let uri = concrete(&path);
        let out = h
            .json(method.clone(), &uri, Some(json!({ "zz_misspelt": 1 })), 400)
            .await;
        assert_eq!(
            out["error"]["code"], "invalid_request",
            "{method} {path}: {out}"
        );
        assert_eq!(
            out["error"]["field"], "zz_misspelt",
            "{method} {path}: {out}"
        );
        // The document says so too: the body's schema allows no other properties.
        let schema = &doc["paths"][&path][method.as_str().to_lowercase()]["requestBody"]["content"]
            ["application/json"]["schema"];
        let name = schema["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_else(|| panic!("{method} {path}: body schema is not a $ref: {schema}"));
        assert_eq!(
            doc["components"]["schemas"][name]["additionalProperties"], false,
            "{method} {path}: schema {name} allows unknown properties"
        );
    }
}

#[tokio::test]
async fn misspelt_fields_on_app_create_deploy_and_number_bind_are_named() {
    let h = Harness::new();
    let out = h
        .json(
            Method::POST,
            "/v1/apps",
            Some(json!({ "name": "ivr", "descripton": "typo" })),
            400,
        )
        .await;
    assert_eq!(out["error"]["field"], "descripton", "{out}");
    let apps = h.json(Method::GET, "/v1/apps", None, 200).await;
    assert_eq!(apps["apps"], json!([]), "nothing was created");

    let app = h
        .json(
            Method::POST,
            "/v1/apps",
            Some(json!({ "name": "ivr" })),
            201,
        )
        .await;
    let id = app["id"].as_str().unwrap();
    let out = h
        .json(
            Method::POST,
            &format!("/v1/apps/{id}/deploy"),
            Some(json!({ "version": 1, "verison": 2 })),
            400,
        )
        .await;
    assert_eq!(out["error"]["field"], "verison", "{out}");
    let out = h
        .json(
            Method::PUT,
            "/v1/numbers/7000",
            Some(json!({ "app_id": id, "appid": id })),
            400,
        )
        .await;
    assert_eq!(out["error"]["field"], "appid", "{out}");
    h.json(Method::GET, "/v1/numbers/7000", None, 404).await;

    // A missing or ill-typed field is named too.
    let out = h
        .json(Method::POST, "/v1/apps", Some(json!({ "name": 7 })), 400)
        .await;
    assert_eq!(out["error"]["field"], "name", "{out}");
    let out = h
        .json(
            Method::POST,
            &format!("/v1/apps/{id}/deploy"),
            Some(json!({})),
            400,
        )
        .await;
    assert_eq!(out["error"]["field"], "version", "{out}");
}

#[tokio::test]
async fn every_authenticated_operation_documents_the_common_answers() {
    let h = Harness::new();
    let doc = document(&h).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            if op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearerAuth").is_some()))
            {
                for status in ["400", "401", "404", "500"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                for status in ["413", "415"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}
