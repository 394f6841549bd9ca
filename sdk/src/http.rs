//! Outbound HTTP requests. [`Request::send`] returns at once with a [`RequestId`]; the outcome
//! arrives later in [`App::on_http_response`](crate::App::on_http_response), so a slow
//! server never blocks the call. Only hosts in the app's HTTP allow-list can be reached;
//! others give [`Error::NotGranted`].
//!
//! ```no_run
//! use pbx_sdk::http;
//!
//! let id = http::get("https://api.example.com/v1/lookup?number=1000")
//!     .header("accept", "application/json")
//!     .timeout_ms(2000)
//!     .send()?;
//! # Ok::<(), pbx_sdk::Error>(())
//! ```
//!
//! Invariants: a [`Request`] sends exactly one `http.send`, only when `send` is called; the
//! host checks the method, URL, headers (at most 32, no `host` or hop-by-hop ones) and body
//! (at most 1 MiB), and allows 16 requests of a session in flight at once.

use crate::Error;
use crate::bindings::pbx::app::http::HttpRequest;
use crate::host::http as wit;

/// Why a request got no response: `Timeout`, `TooLarge`, `ConnectionFailed(text)` or
/// `InvalidResponse(text)`.
pub use crate::bindings::pbx::app::http::HttpError as ResponseError;
/// A response the server sent: `status`, `headers` (names in lower case) and `body`.
pub use crate::bindings::pbx::app::http::HttpResponse as Response;
/// The host's identifier of one request, given back in `on_http_response`.
pub use crate::bindings::pbx::app::http::RequestId;

impl Response {
    /// The body as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An HTTP request being built; [`Request::send`] sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a request does nothing until `send` is called"]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u32>,
}

impl Request {
    /// A request with any of the methods the host accepts (GET, POST, PUT, PATCH, DELETE,
    /// HEAD; upper case).
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Sets a JSON body (already serialised) and its `content-type`.
    pub fn json(self, json: &str) -> Request {
        self.header("content-type", "application/json").body(json)
    }

    /// How long the whole exchange may take; the host clamps it to the app's maximum.
    pub fn timeout_ms(mut self, ms: u32) -> Request {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sends the request; its outcome arrives in `on_http_response` with the returned id.
    pub fn send(self) -> Result<RequestId, Error> {
        let request = HttpRequest {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        };
        Ok(wit::send(&request)?)
    }
}

/// A GET request.
pub fn get(url: &str) -> Request {
    Request::new("GET", url)
}

/// A POST request.
pub fn post(url: &str) -> Request {
    Request::new("POST", url)
}

/// A PUT request.
pub fn put(url: &str) -> Request {
    Request::new("PUT", url)
}

/// A DELETE request.
pub fn delete(url: &str) -> Request {
    Request::new("DELETE", url)
}
