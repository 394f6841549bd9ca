//! `pbx:app/http@0.3.0`: outgoing HTTP requests to the hosts on the app's allow-list,
//! queued as [`Action::HttpRequest`]; the answer comes back as an `HttpResponse` event.
//!
//! Invariants: `send` checks the method, the URL (parsed once with `url`; the action carries
//! that normalised URL, so the host fetches exactly what was checked), the host and port
//! against the allow-list, the headers and the body size, then queues
//! [`Action::HttpRequest`] with a fresh session-unique id; at most [`MAX_HTTP_IN_FLIGHT`]
//! requests of a session are unanswered at once. Headers the host sets itself (`host`, the
//! hop-by-hop ones, `proxy-*`) are refused.

use std::time::Duration;

use super::capability_types::{CapResult, failed, invalid, not_granted, too_large};
use super::{HostState, MAX_ACTIONS_PER_EVENT, cut};
use crate::bindings::v0_3::http;
use crate::grants::AllowEntry;
use pbx_app::{Action, HttpMethod, HttpRequest, RequestId};

/// Most HTTP requests of one session in flight at once.
pub(crate) const MAX_HTTP_IN_FLIGHT: usize = 16;
/// Largest HTTP request body.
pub(crate) const MAX_HTTP_BODY: usize = 1024 * 1024;
/// Longest URL.
const MAX_URL_BYTES: usize = 8192;
/// Most request headers.
const MAX_HTTP_HEADERS: usize = 32;
/// Longest header name.
const MAX_HEADER_NAME: usize = 256;
/// Longest header value.
const MAX_HEADER_VALUE: usize = 8192;
/// Headers the host sets itself: `host` and the hop-by-hop ones.
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

impl http::Host for HostState {
    fn send(&mut self, request: http::HttpRequest) -> CapResult<RequestId> {
        if self.caps.http_allow.is_empty() {
            return Err(not_granted("HTTP is not enabled for this app"));
        }
        let method = HttpMethod::parse(&request.method).ok_or_else(|| {
            invalid(format!(
                "method `{}` is not one of GET, POST, PUT, PATCH, DELETE, HEAD",
                cut(&request.method, 16)
            ))
        })?;
        let url = check_url(&request.url)?;
        let (host, port) = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) if !host.is_empty() => (host.to_owned(), port),
            _ => return Err(invalid("the URL names no host")),
        };
        let allowed = self
            .caps
            .http_allow
            .iter()
            .filter_map(|e| AllowEntry::parse(e))
            .any(|e| e.allows(&host, port));
        if !allowed {
            return Err(not_granted(format!(
                "host {} is not in this app's HTTP allow-list",
                cut(&host, 253)
            )));
        }
        check_headers(&request.headers)?;
        if let Some(body) = &request.body
            && body.len() > MAX_HTTP_BODY
        {
            return Err(too_large(format!(
                "a request body has at most {MAX_HTTP_BODY} bytes, not {}",
                body.len()
            )));
        }
        let max = self.caps.http_timeout;
        let timeout = match request.timeout_ms {
            None => max,
            Some(0) => return Err(invalid("timeout-ms must be at least 1")),
            Some(ms) => Duration::from_millis(u64::from(ms)).min(max),
        };
        if self.http_in_flight.len() >= MAX_HTTP_IN_FLIGHT {
            return Err(failed(format!(
                "{MAX_HTTP_IN_FLIGHT} HTTP requests of this session are in flight, the most \
                 it may have"
            )));
        }
        let id = self.next_request_id;
        let action = Action::HttpRequest {
            id,
            request: HttpRequest {
                method,
                url: url.into(),
                headers: request.headers,
                body: request.body,
                timeout,
                max_response_bytes: self.caps.http_max_response_bytes,
            },
        };
        self.push(action).map_err(|_| {
            failed(format!(
                "too many requests in one event (limit {MAX_ACTIONS_PER_EVENT})"
            ))
        })?;
        self.next_request_id += 1;
        self.http_in_flight.insert(id);
        Ok(id)
    }
}

fn check_url(text: &str) -> CapResult<url::Url> {
    if text.len() > MAX_URL_BYTES {
        return Err(invalid(format!(
            "a URL has at most {MAX_URL_BYTES} bytes, not {}",
            text.len()
        )));
    }
    let url = url::Url::parse(text)
        .map_err(|e| invalid(format!("URL `{}` is not valid: {e}", cut(text, 200))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "URL scheme `{}` is not http or https",
            cut(url.scheme(), 32)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("a URL must not carry a user name or password"));
    }
    Ok(url)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn check_headers(headers: &[(String, String)]) -> CapResult<()> {
    if headers.len() > MAX_HTTP_HEADERS {
        return Err(invalid(format!(
            "a request has at most {MAX_HTTP_HEADERS} headers, not {}",
            headers.len()
        )));
    }
    for (name, value) in headers {
        if name.is_empty() || name.len() > MAX_HEADER_NAME || !name.chars().all(is_token_char) {
            return Err(invalid(format!(
                "header name `{}` must be 1 to {MAX_HEADER_NAME} HTTP token characters",
                cut(name, 64)
            )));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(invalid(format!(
                "header `{}` is set by the host",
                cut(name, 64)
            )));
        }
        if value.len() > MAX_HEADER_VALUE
            || !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c))
        {
            return Err(invalid(format!(
                "the value of header `{}` must be at most {MAX_HEADER_VALUE} printable ASCII \
                 characters",
                cut(name, 64)
            )));
        }
    }
    Ok(())
}
