//! The HTTP capability: a checked outbound request and its response or failure.
//!
//! Invariants: a request's URL is absolute `http`/`https`, normalised and without user info,
//! and its host passed the app's allow-list; its headers and body are within the stated
//! limits; a response body never exceeds the request's `max_response_bytes`.

use std::time::Duration;

/// An HTTP method `http.send` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
}

impl HttpMethod {
    /// The method as it goes on the wire (`GET`, `POST`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
        }
    }

    /// Parses an upper-case method name; `None` for any other method.
    pub fn parse(method: &str) -> Option<HttpMethod> {
        Some(match method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            "HEAD" => HttpMethod::Head,
            _ => return None,
        })
    }
}

/// A checked outbound HTTP request, in [`Action::HttpRequest`](crate::Action::HttpRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: HttpMethod,
    /// An absolute `http`/`https` URL, normalised (as `url::Url` serialises it), without
    /// user info; its host passed the allow-list.
    pub url: String,
    /// Headers (name, value): token names, printable values, no hop-by-hop or `host`
    /// headers; at most 32.
    pub headers: Vec<(String, String)>,
    /// The body, at most 1 MiB.
    pub body: Option<Vec<u8>>,
    /// How long the whole exchange may take: the app's `timeout-ms` clamped to
    /// `Capabilities::http_timeout` (in `pbx-plugin`).
    pub timeout: Duration,
    /// Read at most this many body bytes; a longer body ends the request with
    /// [`HttpError::TooLarge`].
    pub max_response_bytes: usize,
}

/// A response to deliver in [`Event::HttpResponse`](crate::Event::HttpResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers (name in lower case, value); values that are not UTF-8 are best
    /// dropped.
    pub headers: Vec<(String, String)>,
    /// The body (at most the request's `max_response_bytes`).
    pub body: Vec<u8>,
}

/// Why an HTTP request got no response, in [`Event::HttpResponse`](crate::Event::HttpResponse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No complete response within the request's timeout.
    #[error("timed out")]
    Timeout,
    /// The response body was over the request's `max_response_bytes`.
    #[error("response too large")]
    TooLarge,
    /// The server could not be reached (DNS, TCP or TLS).
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    /// The server's answer was not a valid HTTP response.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}
