//! The admin API client the CLI commands share: JSON requests with the bearer key, the API's
//! error shape turned into [`CliError::Api`], and the component upload with a progress bar.
//!
//! Invariants: every URL is built from the base URL by appending path segments (each one
//! percent-encoded) and query pairs, never by string concatenation; a failed exchange names
//! the URL; a success with no body (204) is `Value::Null`.

use std::time::Duration;

use bytes::Bytes;
use indicatif::ProgressBar;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::Value;

use super::CliError;
use super::config::{ConnArgs, Connection};
use super::error::{chain, root_cause};

/// How long connecting to the API may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a component upload may take (it is validated and compiled before the answer).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// The header with which the admin token names the account it acts on.
pub(crate) const ACCOUNT_HEADER: &str = "pbx-account";
/// Size of the pieces an upload is streamed in; the progress bar advances per piece.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// A connection to the admin API.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    base: Url,
    key: String,
    account: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// Resolves the connection (flag, env, file) and checks that a key is configured.
    pub(crate) fn connect(args: &ConnArgs) -> Result<Self, CliError> {
        let conn = Connection::from_env(args)?;
        Self::new(&conn)
    }

    /// A client for `conn`.
    pub(crate) fn new(conn: &Connection) -> Result<Self, CliError> {
        let key = conn.require_key()?.to_string();
        let base = Url::parse(&conn.url)
            .map_err(|err| CliError::Config(format!("invalid API URL {:?}: {err}", conn.url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(CliError::Config(format!(
                "invalid API URL {:?}: expected http://HOST:PORT",
                conn.url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("pbx-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| CliError::Other(format!("cannot set up HTTP: {}", chain(&err))))?;
        Ok(Api {
            base,
            key,
            account: conn.account.clone(),
            http,
        })
    }

    /// The bearer key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The account the admin token acts on, sent as [`ACCOUNT_HEADER`].
    pub(crate) fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// A request with the key and the account header.
    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url).bearer_auth(&self.key);
        match &self.account {
            Some(account) => request.header(ACCOUNT_HEADER, account),
            None => request,
        }
    }

    /// The URL of `segments` (each percent-encoded) under the base URL, with `query`.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `GET` → the answer's JSON.
    pub(crate) async fn get(&self, url: Url) -> Result<Value, CliError> {
        self.send(Method::GET, url, None).await
    }

    /// A request with an optional JSON body → the answer's JSON (`Null` when empty).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let mut request = self.request(method, url.clone()).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(&url, request.send().await).await
    }

    /// `POST`s `bytes` as `application/wasm`, streamed in pieces that advance `bar`.
    pub(crate) async fn upload_wasm(
        &self,
        url: Url,
        bytes: Bytes,
        bar: &ProgressBar,
    ) -> Result<Value, CliError> {
        let total = bytes.len();
        let chunks: Vec<Bytes> = (0..total)
            .step_by(UPLOAD_CHUNK)
            .map(|start| bytes.slice(start..total.min(start + UPLOAD_CHUNK)))
            .collect();
        let progress = bar.clone();
        let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
            progress.inc(chunk.len() as u64);
            if progress.position() >= total as u64 {
                progress.set_message("sent; the pbx is checking the component");
            }
            Ok::<Bytes, std::io::Error>(chunk)
        }));
        let request = self
            .request(Method::POST, url.clone())
            .timeout(UPLOAD_TIMEOUT)
            .header(CONTENT_TYPE, "application/wasm")
            .header(CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(stream));
        answer(&url, request.send().await).await
    }
}

/// Turns a response (or a failure to get one) into JSON or a [`CliError`].
async fn answer(
    url: &Url,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Value, CliError> {
    let connect_error = |err: reqwest::Error| CliError::Connect {
        url: url.to_string(),
        reason: if err.is_timeout() {
            "timed out".to_string()
        } else {
            root_cause(&err)
        },
    };
    let response = sent.map_err(connect_error)?;
    let status = response.status();
    let body = response.bytes().await.map_err(connect_error)?;
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(&body).map_err(|err| CliError::Unexpected {
            url: url.to_string(),
            reason: format!("HTTP {status} with a body that is not JSON: {err}"),
        });
    }
    Err(api_error(status.as_u16(), &body))
}

/// The API's `{"error":{"code","message"}}`, or a stand-in built from the status and body.
pub(crate) fn api_error(status: u16, body: &[u8]) -> CliError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (field("code"), field("message")) {
        (Some(code), Some(message)) => CliError::Api {
            status,
            code,
            message,
        },
        (code, _) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                format!("HTTP status {status}")
            } else {
                text.chars().take(300).collect()
            };
            CliError::Api {
                status,
                code: code.unwrap_or_else(|| format!("http_{status}")),
                message,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    fn api(url: &str) -> Api {
        Api::new(&Connection {
            url: url.into(),
            key: Some("k".into()),
            account: None,
            file: None,
        })
        .unwrap()
    }

    #[test]
    fn urls_encode_segments_and_keep_a_base_path() {
        let a = api("http://127.0.0.1:8080");
        assert_eq!(
            a.url(&["v1", "numbers", "+1 555/0"], &[]).as_str(),
            "http://127.0.0.1:8080/v1/numbers/+1%20555%2F0"
        );
        let b = api("http://h:1/pbx/");
        assert_eq!(
            b.url(&["v1", "events"], &[("limit", "5"), ("types", "A,B")])
                .as_str(),
            "http://h:1/pbx/v1/events?limit=5&types=A%2CB"
        );
    }

    #[test]
    fn bad_urls_and_missing_keys_are_refused() {
        let conn = |url: &str, key: Option<&str>| Connection {
            url: url.into(),
            key: key.map(Into::into),
            account: None,
            file: None,
        };
        assert!(Api::new(&conn("ftp://x", Some("k"))).is_err());
        assert!(Api::new(&conn("not a url", Some("k"))).is_err());
        assert!(Api::new(&conn("http://x", None)).is_err());
    }

    #[test]
    fn api_errors_are_read_from_the_body() {
        let err = api_error(404, br#"{"error":{"code":"not_found","message":"app x"}}"#);
        assert_eq!(err.to_string(), "not_found: app x");
        let err = api_error(502, b"Bad gateway");
        assert_eq!(err.to_string(), "http_502: Bad gateway");
        let err = api_error(500, b"");
        assert_eq!(err.to_string(), "http_500: HTTP status 500");
    }
}
