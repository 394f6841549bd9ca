//! A tiny HTTP server on 127.0.0.1 for the tests (axum): it records every request it gets
//! (method, path with query, headers, body) and answers with whatever the test's responder
//! says, so it can stand in for a webhook receiver or a site an app fetches.
//!
//! Invariants: it listens on an ephemeral loopback port; requests are recorded before the
//! responder runs, in arrival order; every wait on it is bounded; the server task is aborted
//! when the `HttpRecorder` is dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::error::{HarnessError, Result};
use crate::net::loopback;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// The method, e.g. "POST".
    pub method: String,
    /// The path with its query, e.g. "/hook?x=1".
    pub path: String,
    /// Every header, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl ReceivedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the responder answers: status and body text.
pub type Answer = (u16, String);

type Responder = dyn Fn(&ReceivedRequest, usize) -> Answer + Send + Sync;

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<ReceivedRequest>>>,
    responder: Arc<Responder>,
}

/// A running recording HTTP server.
pub struct HttpRecorder {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<ReceivedRequest>>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for HttpRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRecorder")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpRecorder {
    /// Starts a server that answers 200 "ok" to everything.
    pub async fn start_ok() -> Result<HttpRecorder> {
        HttpRecorder::start(|_, _| (200, "ok".into())).await
    }

    /// Starts a server whose answer to the `n`th request (0-based, all paths counted) is
    /// `responder(request, n)`.
    pub async fn start(
        responder: impl Fn(&ReceivedRequest, usize) -> Answer + Send + Sync + 'static,
    ) -> Result<HttpRecorder> {
        let listener = tokio::net::TcpListener::bind(loopback(0))
            .await
            .map_err(|e| HarnessError::io("bind the test HTTP server", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("test HTTP server local_addr", e))?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            requests: requests.clone(),
            responder: Arc::new(responder),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("harness: test HTTP server stopped: {e}");
            }
        });
        Ok(HttpRecorder {
            addr,
            requests,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Waits until `pred` holds for the requests so far, at most `timeout`; returns them.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&[ReceivedRequest]) -> bool,
    ) -> Result<Vec<ReceivedRequest>> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if pred(&requests) {
                return Ok(requests);
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = requests
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {}",
                            r.method,
                            r.path,
                            String::from_utf8_lossy(&r.body)
                        )
                    })
                    .collect();
                return Err(HarnessError::timeout(
                    format!(
                        "requests to the test HTTP server {} (got {}: {seen:#?})",
                        self.addr,
                        requests.len()
                    ),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = ReceivedRequest {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| uri.path().to_string()),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at: Instant::now(),
    };
    let index = match shared.requests.lock() {
        Ok(mut requests) => {
            requests.push(request.clone());
            requests.len() - 1
        }
        Err(poisoned) => {
            let mut requests = poisoned.into_inner();
            requests.push(request.clone());
            requests.len() - 1
        }
    };
    let (status, body) = (shared.responder)(&request, index);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, body).into_response()
}

/// Checks a webhook's `Pbx-Signature: t=<ts>,v1=<hex>` against `secret` and the exact body:
/// the hex must be HMAC-SHA256(secret, "<ts>.<body>"). Returns the timestamp, or why not.
pub fn verify_signature(secret: &str, header: &str, body: &[u8]) -> Result<i64, String> {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value.to_string()),
            Some(("v1", value)) => v1 = Some(value.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| format!("no t= in {header:?}"))?;
    let ts: i64 = t.parse().map_err(|_| format!("t={t} is not a unix time"))?;
    let v1 = v1.ok_or_else(|| format!("no v1= in {header:?}"))?;
    let expected = hex::decode(&v1).map_err(|e| format!("v1 is not hex: {e}"))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| format!("hmac key: {e}"))?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| format!("signature {v1} does not match the body and t={t}"))?;
    Ok(ts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let header = sign("whsec_abc", 1_700_000_000, b"{\"id\":1}");
        assert_eq!(
            verify_signature("whsec_abc", &header, b"{\"id\":1}"),
            Ok(1_700_000_000)
        );
        assert!(verify_signature("whsec_other", &header, b"{\"id\":1}").is_err());
        assert!(verify_signature("whsec_abc", &header, b"{\"id\":2}").is_err());
        assert!(verify_signature("whsec_abc", "v1=00", b"").is_err());
    }

    #[tokio::test]
    async fn records_requests_and_answers_per_index() {
        let server = HttpRecorder::start(|_, n| {
            if n == 0 {
                (500, "no".into())
            } else {
                (200, "yes".into())
            }
        })
        .await
        .unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let first = client
            .post(server.url("/a?x=1"))
            .body("one")
            .send()
            .await
            .unwrap();
        assert_eq!(first.status().as_u16(), 500);
        let second = client.get(server.url("/b")).send().await.unwrap();
        assert_eq!(second.status().as_u16(), 200);
        assert_eq!(second.text().await.unwrap(), "yes");
        let requests = server
            .wait_until(Duration::from_secs(1), |r| r.len() == 2)
            .await
            .unwrap();
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path, "/a?x=1");
        assert_eq!(requests[0].body, b"one");
        assert_eq!(requests[1].path, "/b");
    }
}
