//! Unit tests of every capability rule of `kv.rs`, `http.rs` and `config.rs`, driven through
//! the generated host traits (what an app sees), plus the one-line 0.2 delegations of
//! `legacy_v0_2.rs`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::capability_types::CapResult;
use super::http::{MAX_HTTP_BODY, MAX_HTTP_IN_FLIGHT};
use super::kv::MAX_KV_OPS_PER_EVENT;
use super::{Directory, HostState, Leg};
use crate::bindings::v0_3::capability_types::CapabilityError;
use crate::bindings::v0_3::http::HttpRequest as WitRequest;
use crate::bindings::v0_3::{config, http, kv};
use crate::grants::{Capabilities, KvBackend, KvError, MemoryKv};
use pbx_app::{Action, Direction, HttpMethod, HttpRequest, LegPhase};

fn state(caps: Capabilities) -> HostState {
    HostState::new(
        "c1".into(),
        Leg {
            phase: LegPhase::Ringing,
            direction: Direction::Inbound,
        },
        "app".into(),
        Directory {
            files: Arc::new(|_| false),
            users: Arc::new(|_| true),
            trunks: Arc::new(|_| true),
        },
        caps,
        1 << 20,
        200,
    )
}

fn with_kv() -> (HostState, Arc<MemoryKv>) {
    let kv = Arc::new(MemoryKv::new(1 << 20));
    let caps = Capabilities {
        kv: Some(kv.clone()),
        ..Capabilities::default()
    };
    (state(caps), kv)
}

fn with_http() -> HostState {
    state(Capabilities {
        http_allow: vec!["api.example.com".into(), "*.hooks.example.net:8443".into()],
        http_timeout: Duration::from_secs(5),
        http_max_response_bytes: 1000,
        ..Capabilities::default()
    })
}

fn get(url: &str) -> WitRequest {
    WitRequest {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    }
}

fn kind(e: &CapabilityError) -> &'static str {
    match e {
        CapabilityError::NotGranted(_) => "not-granted",
        CapabilityError::TooLarge(_) => "too-large",
        CapabilityError::InvalidArgument(_) => "invalid-argument",
        CapabilityError::Failed(_) => "failed",
    }
}

/// The error's case and text, for comparisons (the generated type has no `PartialEq`).
fn split(e: CapabilityError) -> (&'static str, String) {
    let k = kind(&e);
    match e {
        CapabilityError::NotGranted(m)
        | CapabilityError::TooLarge(m)
        | CapabilityError::InvalidArgument(m)
        | CapabilityError::Failed(m) => (k, m),
    }
}

fn err_kind<T: std::fmt::Debug>(r: CapResult<T>) -> &'static str {
    kind(&r.unwrap_err())
}

#[test]
fn kv_without_a_grant_is_not_granted() {
    let mut s = state(Capabilities::default());
    let e = kv::Host::get(&mut s, "k".into()).unwrap_err();
    assert_eq!(
        split(e),
        ("not-granted", "kv is not enabled for this app".to_string())
    );
    assert_eq!(
        err_kind(kv::Host::set(&mut s, "k".into(), vec![1])),
        "not-granted"
    );
    assert_eq!(
        err_kind(kv::Host::delete(&mut s, "k".into())),
        "not-granted"
    );
    assert_eq!(
        err_kind(kv::Host::list_keys(&mut s, String::new())),
        "not-granted"
    );
}

#[test]
fn kv_checks_keys_and_values_before_the_backend() {
    let (mut s, kv) = with_kv();
    kv::Host::set(&mut s, "calls".into(), b"1".to_vec()).unwrap();
    assert_eq!(
        kv::Host::get(&mut s, "calls".into()).unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(kv::Host::get(&mut s, "none".into()).unwrap(), None);
    assert_eq!(
        err_kind(kv::Host::get(&mut s, String::new())),
        "invalid-argument"
    );
    assert_eq!(
        err_kind(kv::Host::set(&mut s, "k".repeat(257), vec![])),
        "invalid-argument"
    );
    kv::Host::set(&mut s, "k".repeat(256), vec![]).unwrap();
    assert_eq!(
        err_kind(kv::Host::set(&mut s, "big".into(), vec![0; 64 * 1024 + 1])),
        "too-large"
    );
    kv::Host::set(&mut s, "big".into(), vec![0; 64 * 1024]).unwrap();
    assert!(kv::Host::delete(&mut s, "big".into()).unwrap());
    assert!(!kv::Host::delete(&mut s, "big".into()).unwrap());
    assert_eq!(kv::Host::list_keys(&mut s, "ca".into()).unwrap(), ["calls"]);
    assert_eq!(
        err_kind(kv::Host::list_keys(&mut s, "p".repeat(257))),
        "invalid-argument"
    );
    assert_eq!(kv.get("calls").unwrap(), Some(b"1".to_vec()));
    assert!(s.actions.is_empty(), "kv queues no actions");
}

#[test]
fn kv_listing_is_capped_at_1000_keys() {
    let (mut s, kv) = with_kv();
    for i in 0..1005 {
        kv.set(&format!("k{i:05}"), b"").unwrap();
    }
    assert_eq!(kv::Host::list_keys(&mut s, "k".into()).unwrap().len(), 1000);
}

#[test]
fn kv_requests_per_event_are_limited() {
    let (mut s, _) = with_kv();
    for _ in 0..MAX_KV_OPS_PER_EVENT {
        kv::Host::get(&mut s, "k".into()).unwrap();
    }
    assert_eq!(err_kind(kv::Host::get(&mut s, "k".into())), "failed");
    s.begin_event();
    assert!(kv::Host::get(&mut s, "k".into()).is_ok());
}

/// A backend that always fails, as a broken database would.
struct Broken;

impl crate::grants::KvBackend for Broken {
    fn get(&self, _: &str) -> Result<Option<Vec<u8>>, KvError> {
        Err(KvError::Failed("disk I/O error".into()))
    }
    fn set(&self, _: &str, _: &[u8]) -> Result<(), KvError> {
        Err(KvError::TooLarge("quota".into()))
    }
    fn delete(&self, _: &str) -> Result<bool, KvError> {
        Err(KvError::Invalid("bad".into()))
    }
    fn list_keys(&self, _: &str, limit: usize) -> Result<Vec<String>, KvError> {
        Ok((0..limit + 5).map(|i| i.to_string()).collect())
    }
}

#[test]
fn backend_errors_map_to_capability_errors() {
    let mut s = state(Capabilities {
        kv: Some(Arc::new(Broken)),
        ..Capabilities::default()
    });
    assert_eq!(
        split(kv::Host::get(&mut s, "k".into()).unwrap_err()),
        ("failed", "disk I/O error".to_string())
    );
    assert_eq!(
        err_kind(kv::Host::set(&mut s, "k".into(), vec![])),
        "too-large"
    );
    assert_eq!(
        err_kind(kv::Host::delete(&mut s, "k".into())),
        "invalid-argument"
    );
    // A backend that returns too many keys is cut to the contract's 1000.
    assert_eq!(
        kv::Host::list_keys(&mut s, String::new()).unwrap().len(),
        1000
    );
}

#[test]
fn http_without_a_grant_is_not_granted() {
    let mut s = state(Capabilities::default());
    assert_eq!(
        split(http::Host::send(&mut s, get("https://api.example.com/")).unwrap_err()),
        (
            "not-granted",
            "HTTP is not enabled for this app".to_string()
        )
    );
}

#[test]
fn http_queues_a_checked_request_with_fresh_ids() {
    let mut s = with_http();
    let mut request = get("https://API.example.com/a b?x=1#frag");
    request.headers = vec![("Authorization".into(), "Bearer t".into())];
    request.timeout_ms = Some(60_000);
    assert_eq!(http::Host::send(&mut s, request).unwrap(), 1);
    let mut short = get("https://x.hooks.example.net:8443/");
    short.method = "POST".into();
    short.body = Some(vec![1, 2, 3]);
    short.timeout_ms = Some(250);
    assert_eq!(http::Host::send(&mut s, short).unwrap(), 2);
    assert_eq!(
        s.actions,
        [
            Action::HttpRequest {
                id: 1,
                request: HttpRequest {
                    method: HttpMethod::Get,
                    url: "https://api.example.com/a%20b?x=1#frag".into(),
                    headers: vec![("Authorization".into(), "Bearer t".into())],
                    body: None,
                    timeout: Duration::from_secs(5),
                    max_response_bytes: 1000,
                },
            },
            Action::HttpRequest {
                id: 2,
                request: HttpRequest {
                    method: HttpMethod::Post,
                    url: "https://x.hooks.example.net:8443/".into(),
                    headers: Vec::new(),
                    body: Some(vec![1, 2, 3]),
                    timeout: Duration::from_millis(250),
                    max_response_bytes: 1000,
                },
            },
        ]
    );
    assert_eq!(s.http_in_flight.len(), 2);
}

#[test]
fn http_refuses_bad_requests_with_the_right_error() {
    let mut s = with_http();
    let cases: Vec<(WitRequest, &str)> = vec![
        (get("https://evil.example.org/"), "not-granted"),
        (get("https://hooks.example.net:8443/"), "not-granted"),
        (get("https://x.hooks.example.net/"), "not-granted"),
        (get("ftp://api.example.com/"), "invalid-argument"),
        (get("not a url"), "invalid-argument"),
        (get("https://user:pw@api.example.com/"), "invalid-argument"),
        (
            get(&format!("https://api.example.com/{}", "a".repeat(9000))),
            "invalid-argument",
        ),
        (
            WitRequest {
                method: "get".into(),
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                method: "CONNECT".into(),
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                headers: vec![("Host".into(), "evil.example.org".into())],
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                headers: vec![("Proxy-Authorization".into(), "x".into())],
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                headers: vec![("X-A".into(), "a\r\nInjected: 1".into())],
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                headers: vec![("bad name".into(), "v".into())],
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                headers: (0..33).map(|i| (format!("x-{i}"), "v".into())).collect(),
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                timeout_ms: Some(0),
                ..get("https://api.example.com/")
            },
            "invalid-argument",
        ),
        (
            WitRequest {
                body: Some(vec![0; MAX_HTTP_BODY + 1]),
                ..get("https://api.example.com/")
            },
            "too-large",
        ),
    ];
    for (request, expected) in cases {
        let url = request.url.chars().take(60).collect::<String>();
        assert_eq!(
            err_kind(http::Host::send(&mut s, request)),
            expected,
            "{url}"
        );
    }
    assert!(s.actions.is_empty());
    assert!(s.http_in_flight.is_empty());
    let e = http::Host::send(&mut s, get("https://evil.example.org/x")).unwrap_err();
    assert_eq!(
        split(e),
        (
            "not-granted",
            "host evil.example.org is not in this app's HTTP allow-list".to_string()
        )
    );
}

#[test]
fn http_requests_in_flight_are_limited_per_session() {
    let mut s = with_http();
    for _ in 0..MAX_HTTP_IN_FLIGHT {
        http::Host::send(&mut s, get("https://api.example.com/")).unwrap();
    }
    assert_eq!(
        err_kind(http::Host::send(&mut s, get("https://api.example.com/"))),
        "failed"
    );
    // A response frees its slot (the instance removes it when delivering the event).
    s.http_in_flight.remove(&3);
    assert_eq!(
        http::Host::send(&mut s, get("https://api.example.com/")).unwrap(),
        17
    );
}

#[test]
fn config_shows_values_and_own_secrets_only() {
    let mut s = state(Capabilities {
        config: vec![
            ("greeting".into(), "hi".into()),
            ("greeting".into(), "shadowed".into()),
        ],
        secrets: vec![("token".into(), "t0k".into())],
        ..Capabilities::default()
    });
    assert_eq!(
        config::Host::get(&mut s, "greeting".into()).as_deref(),
        Some("hi")
    );
    assert_eq!(config::Host::get(&mut s, "token".into()), None);
    assert_eq!(config::Host::secret(&mut s, "token".into()).unwrap(), "t0k");
    assert_eq!(
        split(config::Host::secret(&mut s, "greeting".into()).unwrap_err()),
        (
            "invalid-argument",
            "no secret `greeting` is set for this app".to_string()
        )
    );
    let all: HashMap<String, String> = config::Host::all(&mut s).into_iter().collect();
    assert!(!all.contains_key("token"));
    assert_eq!(config::Host::all(&mut s).len(), 2);
}

#[test]
fn v0_2_imports_delegate_to_the_0_3_checks() {
    use crate::bindings::v0_2::{call_control as cc2, timers as tm2};
    use crate::bindings::v0_3::types as wit;
    let mut s = state(Capabilities::default());
    assert!(matches!(
        cc2::Host::answer(&mut s, "nope".into()),
        Err(wit::Error::NotFound(_))
    ));
    cc2::Host::answer(&mut s, "c1".into()).unwrap();
    assert!(matches!(
        cc2::Host::answer(&mut s, "c1".into()),
        Err(wit::Error::InvalidState(_))
    ));
    assert_eq!(tm2::Host::set_timer(&mut s, 10, "t".into()).unwrap(), 1);
    assert_eq!(s.actions.len(), 2);
}
