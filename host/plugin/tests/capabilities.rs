//! App capabilities of `pbx:app@0.3.0` end to end through the `capabilities` fixture: granted
//! kv persists across instances sharing one backend, denials are WIT errors the app handles
//! (never traps), the HTTP allow-list, body size and response delivery, configuration and
//! secrets; and the per-app memory and deadline limits (`big_alloc`, `spin`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CALL, call_info, compile, ctx, runtime};
use pbx_plugin::{
    Action, AppError, AppInstance, AppLimits, CallContext, CallInfo, Capabilities, Event,
    HttpError, HttpMethod, HttpRequest, HttpResponse, KvBackend, MemoryKv, Runtime, RuntimeConfig,
};

async fn instance(rt: &Runtime, ctx: CallContext) -> AppInstance {
    let app = compile(rt, "capabilities");
    rt.instantiate(&app, ctx).await.expect("instantiate")
}

/// The texts of the `say` actions, in order.
fn said(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn http_requests(actions: &[Action]) -> Vec<(u64, HttpRequest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::HttpRequest { id, request } => Some((*id, request.clone())),
            _ => None,
        })
        .collect()
}

/// A call without configuration in its `CallInfo`, as the call layer sends it.
fn bare_call_info() -> CallInfo {
    CallInfo {
        config: Vec::new(),
        ..call_info()
    }
}

fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn granted(kv: Arc<MemoryKv>) -> Capabilities {
    Capabilities {
        kv: Some(kv),
        http_allow: vec!["api.example.com".into(), "127.0.0.1:8080".into()],
        http_timeout: Duration::from_secs(5),
        http_max_response_bytes: 4096,
        config: config(&[
            ("greeting", "hi"),
            ("url", "https://api.example.com/v1/lookup?n=1000"),
        ]),
        secrets: config(&[("token", "s3cr3t")]),
    }
}

#[tokio::test]
async fn granted_capabilities_work_and_kv_persists_across_instances() {
    let rt = runtime();
    let kv = Arc::new(MemoryKv::new(1 << 20));
    for n in 1..=3 {
        let mut app = instance(&rt, ctx().with_capabilities(granted(kv.clone()))).await;
        let actions = app.on_call_received(&bare_call_info()).await.unwrap();
        assert_eq!(actions.first(), Some(&Action::Answer { call: CALL.into() }));
        assert_eq!(
            said(&actions),
            [
                format!("kv: call {n}"),
                "http: request 1".to_string(),
                "greeting: hi".to_string(),
                "token: 6 characters".to_string(),
                "config: greeting,url".to_string(),
            ]
        );
        let requests = http_requests(&actions);
        assert_eq!(requests.len(), 1);
        let (id, request) = &requests[0];
        assert_eq!(*id, 1);
        assert_eq!(
            request,
            &HttpRequest {
                method: HttpMethod::Get,
                url: "https://api.example.com/v1/lookup?n=1000".into(),
                headers: vec![("accept".into(), "text/plain".into())],
                body: None,
                timeout: Duration::from_secs(5),
                max_response_bytes: 4096,
            }
        );
        assert_eq!(app.http_in_flight(), 1);
    }
    assert_eq!(kv.get("calls").unwrap(), Some(b"3".to_vec()));
    // Nothing a secret: the value never appears in what the app was told or said.
    let caps = format!("{:?}", granted(kv.clone()));
    assert!(!caps.contains("s3cr3t"));
}

#[tokio::test]
async fn denied_capabilities_are_errors_and_the_call_goes_on() {
    let rt = runtime();
    let caps = Capabilities {
        config: config(&[("url", "https://elsewhere.example.org/x")]),
        ..Capabilities::default()
    };
    let mut app = instance(&rt, ctx().with_capabilities(caps)).await;
    let actions = app.on_call_received(&bare_call_info()).await.unwrap();
    assert_eq!(
        said(&actions),
        [
            "kv error: not granted: kv is not enabled for this app",
            "http error: not granted: HTTP is not enabled for this app",
            "greeting: none",
            "token error: invalid argument: no secret `token` is set for this app",
            "config: url",
        ]
    );
    assert!(http_requests(&actions).is_empty());
    assert!(app.failed().is_none());
    // The instance is healthy: the next event runs.
    assert!(app.on_dtmf(CALL, "1").await.is_ok());
}

#[tokio::test]
async fn the_http_allow_list_is_matched_by_host_and_port() {
    let rt = runtime();
    let kv = Arc::new(MemoryKv::new(1 << 20));
    let denied = "http error: not granted: host ";
    for (url, expected) in [
        ("https://api.example.com/a", "http: request 1"),
        ("http://API.EXAMPLE.COM:9000/a", "http: request 1"),
        ("http://127.0.0.1:8080/hook", "http: request 1"),
        ("http://127.0.0.1:8081/hook", denied),
        ("https://evil.example.net/a", denied),
        ("https://api.example.com.evil.net/a", denied),
        // The host is evil.net; user info is refused before the allow-list is consulted.
        (
            "https://api.example.com@evil.net/a",
            "http error: invalid argument: a URL must not carry a user name or password",
        ),
    ] {
        let caps = Capabilities {
            config: config(&[("url", url)]),
            ..granted(kv.clone())
        };
        let mut app = instance(&rt, ctx().with_capabilities(caps)).await;
        let actions = app.on_call_received(&bare_call_info()).await.unwrap();
        let http = said(&actions)[1].clone();
        assert!(http.starts_with(expected), "{url}: {http}");
        let sent = expected == "http: request 1";
        assert_eq!(http_requests(&actions).len(), usize::from(sent), "{url}");
        if expected == denied {
            assert!(
                http.ends_with("is not in this app's HTTP allow-list"),
                "{http}"
            );
        }
    }
}

#[tokio::test]
async fn a_body_over_1_mib_is_too_large() {
    let rt = runtime();
    let kv = Arc::new(MemoryKv::new(1 << 20));
    for (bytes, ok) in [(1024 * 1024, true), (1024 * 1024 + 1, false)] {
        let caps = Capabilities {
            config: config(&[
                ("url", "https://api.example.com/upload"),
                ("post-bytes", &bytes.to_string()),
            ]),
            ..granted(kv.clone())
        };
        let mut app = instance(&rt, ctx().with_capabilities(caps)).await;
        let actions = app.on_call_received(&bare_call_info()).await.unwrap();
        let http = said(&actions)[1].clone();
        if ok {
            assert_eq!(http, "http: request 1");
            let (_, request) = &http_requests(&actions)[0];
            assert_eq!(request.method, HttpMethod::Post);
            assert_eq!(request.body.as_ref().map(Vec::len), Some(bytes));
        } else {
            assert!(http.starts_with("http error: too large: "), "{http}");
            assert!(http_requests(&actions).is_empty());
        }
    }
}

#[tokio::test]
async fn http_responses_reach_the_app_once() {
    let rt = runtime();
    let kv = Arc::new(MemoryKv::new(1 << 20));
    let mut app = instance(&rt, ctx().with_capabilities(granted(kv))).await;
    let actions = app.on_call_received(&bare_call_info()).await.unwrap();
    let (id, _) = http_requests(&actions)[0].clone();
    let response = Ok(HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: b"Alice".to_vec(),
    });
    let actions = app.on_http_response(id, &response).await.unwrap();
    assert_eq!(said(&actions), [format!("http response {id} 200: Alice")]);
    assert_eq!(app.http_in_flight(), 0);
    // A second answer for the same request (or one never sent) does not reach the app.
    let events = rt.stats().events;
    assert!(
        app.on_http_response(id, &response)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.on_http_response(99, &Err(HttpError::Timeout))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(rt.stats().events, events);

    // Errors arrive as the WIT variant.
    let mut app = instance(
        &rt,
        ctx().with_capabilities(granted(Arc::new(MemoryKv::new(1 << 20)))),
    )
    .await;
    app.on_call_received(&bare_call_info()).await.unwrap();
    let actions = app
        .deliver(&Event::HttpResponse {
            id: 1,
            result: Err(HttpError::ConnectionFailed("refused".into())),
        })
        .await
        .unwrap();
    assert_eq!(
        said(&actions),
        ["http failed 1: HttpError::ConnectionFailed(\"refused\")"]
    );
}

#[tokio::test]
async fn call_info_carries_the_granted_config_unless_the_caller_set_one() {
    let rt = runtime();
    let caps = Capabilities {
        config: config(&[("greeting", "hello"), ("lang", "en")]),
        ..Capabilities::default()
    };
    let mut app = instance(&rt, ctx().with_capabilities(caps.clone())).await;
    let actions = app.on_call_received(&bare_call_info()).await.unwrap();
    assert_eq!(said(&actions).last().unwrap(), "config: greeting,lang");
    assert_eq!(said(&actions)[2], "greeting: hello");

    let mut app = instance(&rt, ctx().with_capabilities(caps)).await;
    let actions = app.on_call_received(&call_info()).await.unwrap();
    assert_eq!(said(&actions).last().unwrap(), "config: greeting");
}

#[tokio::test]
async fn kv_over_the_apps_total_is_too_large_and_nothing_traps() {
    let rt = runtime();
    // Room for nothing: "calls" plus one digit is 6 bytes.
    let kv = Arc::new(MemoryKv::new(5));
    let mut app = instance(&rt, ctx().with_capabilities(granted(kv.clone()))).await;
    let actions = app.on_call_received(&bare_call_info()).await.unwrap();
    let first = &said(&actions)[0];
    assert!(first.starts_with("kv error: too large: "), "{first}");
    assert_eq!(kv.used_bytes(), 0);
    assert!(app.failed().is_none());
}

async fn big_alloc(rt: &Runtime, limits: AppLimits) -> Result<Vec<Action>, AppError> {
    let app = compile(rt, "big_alloc");
    let mut instance = rt
        .instantiate(&app, ctx().with_limits(limits))
        .await
        .expect("instantiate");
    instance.on_call_received(&call_info()).await
}

#[tokio::test]
async fn an_apps_memory_limit_fails_only_its_own_call() {
    let rt = runtime();
    let small = AppLimits {
        max_memory_bytes: Some(2 * 1024 * 1024),
        event_deadline: None,
    };
    assert_eq!(big_alloc(&rt, small).await, Err(AppError::OutOfMemory));
    let actions = big_alloc(&rt, AppLimits::default()).await.unwrap();
    assert_eq!(said(&actions), ["allocated 4 MiB"]);
    // A limit above the runtime's is clamped to it: the hog still stops at 16 MiB.
    let app = compile(&rt, "hog");
    let huge = AppLimits {
        max_memory_bytes: Some(usize::MAX),
        event_deadline: None,
    };
    let mut hog = rt.instantiate(&app, ctx().with_limits(huge)).await.unwrap();
    assert_eq!(
        hog.on_call_received(&call_info()).await,
        Err(AppError::OutOfMemory)
    );
}

#[tokio::test]
async fn an_apps_deadline_is_its_own_within_the_runtimes() {
    let rt = Runtime::new(RuntimeConfig {
        max_instances: 4,
        max_memory_bytes: 16 * 1024 * 1024,
        event_deadline: Duration::from_millis(1500),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let app = compile(&rt, "spin");
    let short = AppLimits {
        max_memory_bytes: None,
        event_deadline: Some(Duration::from_millis(50)),
    };
    let mut spin = rt
        .instantiate(&app, ctx().with_limits(short))
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(
        spin.on_call_received(&call_info()).await,
        Err(AppError::Deadline)
    );
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1000), "took {took:?}");

    // A longer limit than the runtime's is clamped to the runtime's.
    let rt = runtime();
    let app = compile(&rt, "spin");
    let long = AppLimits {
        max_memory_bytes: None,
        event_deadline: Some(Duration::from_secs(30)),
    };
    let mut spin = rt.instantiate(&app, ctx().with_limits(long)).await.unwrap();
    let started = Instant::now();
    assert_eq!(
        spin.on_call_received(&call_info()).await,
        Err(AppError::Deadline)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
