//! The host side of the `pbx:app@0.3.0` capability imports: `kv`, `http` and `config`.
//!
//! Invariants:
//! - Every import answers at once with a WIT `capability-error`; none traps, none blocks on
//!   the network. A refused request changes nothing.
//! - Nothing is reachable without its grant ([`Capabilities`]): `kv` needs a backend, `http`
//!   a host on the allow-list; `config` only ever shows the app its own values and secrets.
//! - `kv` checks keys (1 to 256 bytes) and values (at most 64 KiB) before the backend sees
//!   them, caps listings at 1000 keys and one event at [`MAX_KV_OPS_PER_EVENT`] requests.
//! - `http.send` checks the method, the URL (parsed once with `url`; the action carries that
//!   normalised URL, so the host fetches exactly what was checked), the host and port
//!   against the allow-list, the headers and the body size, then queues
//!   [`Action::HttpRequest`] with a fresh session-unique id; at most
//!   [`MAX_HTTP_IN_FLIGHT`] requests of a session are unanswered at once.

use std::time::Duration;

use crate::bindings::v0_3::{
    capability_types::{self, CapabilityError},
    config, http, kv,
};
use crate::grants::{AllowEntry, KV_MAX_KEY_BYTES, KV_MAX_LIST_KEYS, KV_MAX_VALUE_BYTES, KvError};
use crate::host::{HostState, MAX_ACTIONS_PER_EVENT, cut};
use pbx_app::{Action, HttpMethod, HttpRequest, RequestId};

/// Most `kv` requests one event may make. Each is a synchronous store statement on the
/// session's task, so the cap bounds how long one event can hold its call's media tick.
pub(crate) const MAX_KV_OPS_PER_EVENT: u32 = 100;
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

type CapResult<T> = Result<T, CapabilityError>;

fn not_granted(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::NotGranted(msg.into())
}
fn too_large(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::TooLarge(msg.into())
}
fn invalid(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::InvalidArgument(msg.into())
}
fn failed(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::Failed(msg.into())
}

impl From<KvError> for CapabilityError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::TooLarge(m) => too_large(m),
            KvError::Invalid(m) => invalid(m),
            KvError::Failed(m) => failed(m),
        }
    }
}

impl HostState {
    /// The key-value backend, after counting the request against the event's budget.
    fn kv_backend(&mut self) -> CapResult<std::sync::Arc<dyn crate::grants::KvBackend>> {
        let Some(kv) = self.caps.kv.clone() else {
            return Err(not_granted("kv is not enabled for this app"));
        };
        if self.kv_ops >= MAX_KV_OPS_PER_EVENT {
            return Err(failed(format!(
                "too many kv requests in one event (limit {MAX_KV_OPS_PER_EVENT})"
            )));
        }
        self.kv_ops += 1;
        Ok(kv)
    }
}

fn check_key(key: &str) -> CapResult<()> {
    if key.is_empty() || key.len() > KV_MAX_KEY_BYTES {
        return Err(invalid(format!(
            "a key has 1 to {KV_MAX_KEY_BYTES} bytes, not {}",
            key.len()
        )));
    }
    Ok(())
}

impl capability_types::Host for HostState {}

impl kv::Host for HostState {
    fn get(&mut self, key: String) -> CapResult<Option<Vec<u8>>> {
        let kv = self.kv_backend()?;
        check_key(&key)?;
        Ok(kv.get(&key)?)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> CapResult<()> {
        let kv = self.kv_backend()?;
        check_key(&key)?;
        if value.len() > KV_MAX_VALUE_BYTES {
            return Err(too_large(format!(
                "a value has at most {KV_MAX_VALUE_BYTES} bytes, not {}",
                value.len()
            )));
        }
        Ok(kv.set(&key, &value)?)
    }

    fn delete(&mut self, key: String) -> CapResult<bool> {
        let kv = self.kv_backend()?;
        check_key(&key)?;
        Ok(kv.delete(&key)?)
    }

    fn list_keys(&mut self, prefix: String) -> CapResult<Vec<String>> {
        let kv = self.kv_backend()?;
        if prefix.len() > KV_MAX_KEY_BYTES {
            return Err(invalid(format!(
                "a prefix has at most {KV_MAX_KEY_BYTES} bytes, not {}",
                prefix.len()
            )));
        }
        let mut keys = kv.list_keys(&prefix, KV_MAX_LIST_KEYS)?;
        keys.truncate(KV_MAX_LIST_KEYS);
        Ok(keys)
    }
}

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

impl config::Host for HostState {
    fn get(&mut self, name: String) -> Option<String> {
        self.caps
            .config
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    fn secret(&mut self, name: String) -> CapResult<String> {
        self.caps
            .secrets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                invalid(format!(
                    "no secret `{}` is set for this app",
                    cut(&name, 64)
                ))
            })
    }

    fn all(&mut self) -> Vec<(String, String)> {
        self.caps.config.clone()
    }
}

#[cfg(test)]
#[path = "capability_tests.rs"]
mod tests;
