//! What an app is granted for one session: its capabilities ([`Capabilities`]: key-value
//! store, HTTP allow-list, configuration and secrets) and its own resource limits
//! ([`AppLimits`]), plus [`MemoryKv`], the in-memory key-value store for tests and the
//! simulator.
//!
//! Invariants:
//! - The default grants nothing: no key-value store, no HTTP host, no configuration, no
//!   secret, and the runtime's global limits.
//! - The host checks key and value sizes ([`KV_MAX_KEY_BYTES`], [`KV_MAX_VALUE_BYTES`]) and
//!   caps listings at [`KV_MAX_LIST_KEYS`] before a [`KvBackend`] is called; a backend
//!   enforces the app's total size and reports its own failures as [`KvError`].
//! - Secret values never appear in `Debug` output.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest key of the key-value store, in bytes (keys are 1 to 256 bytes).
pub const KV_MAX_KEY_BYTES: usize = 256;
/// Largest value of the key-value store, in bytes.
pub const KV_MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one `list-keys` returns.
pub const KV_MAX_LIST_KEYS: usize = 1000;

/// Why a key-value backend refused or failed a request; the text reaches the app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// A key or value, or the app's total storage, is over its limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The request is malformed (the host checks keys first, so backends rarely say this).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The storage failed; the app gets `failed` and may retry later.
    #[error("failed: {0}")]
    Failed(String),
}

/// The persistent key-value store of one app, shared by all its sessions. Calls are
/// synchronous and small (the host runs them inside an import); keys arrive checked.
pub trait KvBackend: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Stores `value` under `key`; [`KvError::TooLarge`] when the app's total is over its
    /// limit.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes `key`; true when it existed.
    fn delete(&self, key: &str) -> Result<bool, KvError>;
    /// Up to `limit` keys starting with `prefix`, in byte order.
    fn list_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, KvError>;
}

/// An in-memory [`KvBackend`] with the real limits (keys 1 to 256 bytes, values up to
/// 64 KiB, a total of key and value bytes given at construction), for tests and the
/// simulator. Share one `Arc<MemoryKv>` between sessions to share the store.
#[derive(Debug)]
pub struct MemoryKv {
    total_limit: usize,
    inner: Mutex<MemoryKvInner>,
}

#[derive(Debug, Default)]
struct MemoryKvInner {
    map: BTreeMap<String, Vec<u8>>,
    total: usize,
}

impl MemoryKv {
    /// An empty store holding at most `total_limit_bytes` of keys and values together.
    pub fn new(total_limit_bytes: usize) -> Self {
        MemoryKv {
            total_limit: total_limit_bytes,
            inner: Mutex::new(MemoryKvInner::default()),
        }
    }

    /// Bytes of keys and values stored now.
    pub fn used_bytes(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryKvInner> {
        // Every operation leaves the map and its total consistent before it can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > KV_MAX_KEY_BYTES {
        return Err(KvError::Invalid(format!(
            "a key has 1 to {KV_MAX_KEY_BYTES} bytes, not {}",
            key.len()
        )));
    }
    Ok(())
}

impl KvBackend for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        Ok(self.lock().map.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > KV_MAX_VALUE_BYTES {
            return Err(KvError::TooLarge(format!(
                "a value has at most {KV_MAX_VALUE_BYTES} bytes, not {}",
                value.len()
            )));
        }
        let mut inner = self.lock();
        let old = inner.map.get(key).map_or(0, |v| key.len() + v.len());
        let total = inner.total - old + key.len() + value.len();
        if total > self.total_limit {
            return Err(KvError::TooLarge(format!(
                "the app's storage would hold {total} bytes, over its limit of {}",
                self.total_limit
            )));
        }
        inner.map.insert(key.to_owned(), value.to_vec());
        inner.total = total;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let mut inner = self.lock();
        match inner.map.remove(key) {
            Some(v) => {
                inner.total -= key.len() + v.len();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn list_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, KvError> {
        let inner = self.lock();
        Ok(inner
            .map
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect())
    }
}

/// What one session of an app may use beyond call control. The default grants nothing.
#[derive(Clone)]
pub struct Capabilities {
    /// The app's key-value store; `None` refuses every `kv` request with `not-granted`.
    pub kv: Option<Arc<dyn KvBackend>>,
    /// Hosts `http.send` may reach: `host`, `host:port`, `*.domain` (any subdomain, not the
    /// domain itself), `[v6-address]`, each optionally with `:port`. An entry without a port
    /// allows every port. Empty: no HTTP at all. See [`is_valid_http_allow_entry`].
    pub http_allow: Vec<String>,
    /// The longest a request may take; an app's `timeout-ms` is clamped to it.
    pub http_timeout: Duration,
    /// The largest response body the host reads; beyond it the app gets `too-large`.
    pub http_max_response_bytes: usize,
    /// Non-secret configuration (name, value), app-wide and version values merged with the
    /// version's winning; when a name repeats, the first wins. Also fills `call-info.config`.
    pub config: Vec<(String, String)>,
    /// Secrets (name, value), readable only through `config.secret`.
    pub secrets: Vec<(String, String)>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            kv: None,
            http_allow: Vec::new(),
            http_timeout: Duration::from_secs(10),
            http_max_response_bytes: 1024 * 1024,
            config: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret_names: Vec<&str> = self.secrets.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Capabilities")
            .field("kv", &self.kv.is_some())
            .field("http_allow", &self.http_allow)
            .field("http_timeout", &self.http_timeout)
            .field("http_max_response_bytes", &self.http_max_response_bytes)
            .field("config", &self.config)
            .field("secrets", &secret_names)
            .finish()
    }
}

/// Limits of one app, tighter than the runtime's global ones; `None` keeps the global value,
/// and a value above it is clamped to it ([`Runtime::instantiate`](crate::Runtime::instantiate)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppLimits {
    /// Cap on the instance's linear memory (rounded up to whole 64 KiB pages).
    pub max_memory_bytes: Option<usize>,
    /// CPU time one event may run.
    pub event_deadline: Option<Duration>,
}

/// One parsed entry of [`Capabilities::http_allow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowEntry {
    /// Lower case; `[..]` kept around IPv6 addresses, as `url` prints them.
    host: String,
    /// True for `*.domain`: `host` is then `.domain`.
    wildcard: bool,
    port: Option<u16>,
}

impl AllowEntry {
    pub(crate) fn parse(entry: &str) -> Option<AllowEntry> {
        let entry = entry.trim().to_ascii_lowercase();
        let (host, port) = if entry.starts_with('[') {
            let end = entry.find(']')?;
            let (host, rest) = entry.split_at(end + 1);
            match rest {
                "" => (host.to_owned(), None),
                _ => (host.to_owned(), Some(rest.strip_prefix(':')?.parse().ok()?)),
            }
        } else {
            match entry.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port.parse::<u16>().ok()?)),
                None => (entry.clone(), None),
            }
        };
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(domain) => (format!(".{domain}"), true),
            None => (host, false),
        };
        let name = host.trim_start_matches('.');
        let valid = if name.starts_with('[') {
            name.ends_with(']')
                && name[1..name.len() - 1]
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok()
                && !wildcard
        } else {
            !name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && !name.starts_with('.')
                && !name.contains("..")
        };
        valid.then_some(AllowEntry {
            host,
            wildcard,
            port,
        })
    }

    /// Whether a URL's host (as `url::Url::host_str` prints it) and port pass this entry.
    pub(crate) fn allows(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len() && host.ends_with(&self.host)
        } else {
            host == self.host
        }
    }
}

/// Whether `entry` is a usable [`Capabilities::http_allow`] entry (`api.example.com`,
/// `api.example.com:8443`, `*.example.com`, `127.0.0.1:8080`, `[::1]:8080`), so that the
/// admin API can refuse a bad one when it is configured; unusable entries never match.
pub fn is_valid_http_allow_entry(entry: &str) -> bool {
    AllowEntry::parse(entry).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn memory_kv_keeps_its_limits_and_total() {
        let kv = MemoryKv::new(20);
        kv.set("a", b"12345").unwrap();
        assert_eq!(kv.used_bytes(), 6);
        kv.set("a", b"123").unwrap();
        assert_eq!(kv.used_bytes(), 4);
        assert!(matches!(
            kv.set("b", &[0; 16]),
            Err(KvError::TooLarge(m)) if m.contains("limit of 20")
        ));
        kv.set("b", &[0; 15]).unwrap();
        assert_eq!(kv.used_bytes(), 20);
        assert!(matches!(kv.set("", b"x"), Err(KvError::Invalid(_))));
        assert!(matches!(
            kv.set(&"k".repeat(257), b"x"),
            Err(KvError::Invalid(_))
        ));
        let big = MemoryKv::new(1 << 20);
        assert!(matches!(
            big.set("k", &vec![0; KV_MAX_VALUE_BYTES + 1]),
            Err(KvError::TooLarge(_))
        ));
        big.set("k", &vec![0; KV_MAX_VALUE_BYTES]).unwrap();
        assert!(kv.delete("a").unwrap());
        assert!(!kv.delete("a").unwrap());
        assert_eq!(kv.used_bytes(), 16);
        assert_eq!(kv.get("b").unwrap().map(|v| v.len()), Some(15));
        assert_eq!(kv.get("a").unwrap(), None);
    }

    #[test]
    fn memory_kv_lists_by_prefix_in_order_up_to_the_limit() {
        let kv = MemoryKv::new(1 << 20);
        for k in ["user:b", "user:a", "other", "user:c", "usex"] {
            kv.set(k, b"1").unwrap();
        }
        assert_eq!(
            kv.list_keys("user:", 10).unwrap(),
            ["user:a", "user:b", "user:c"]
        );
        assert_eq!(kv.list_keys("user:", 2).unwrap(), ["user:a", "user:b"]);
        assert_eq!(kv.list_keys("", 100).unwrap().len(), 5);
        assert!(kv.list_keys("zzz", 100).unwrap().is_empty());
    }

    #[test]
    fn allow_entries_match_host_port_and_wildcards() {
        let e = AllowEntry::parse("API.example.com").unwrap();
        assert!(e.allows("api.example.com", 443));
        assert!(e.allows("api.example.com", 8080));
        assert!(!e.allows("example.com", 443));
        assert!(!e.allows("api.example.com.evil.net", 443));
        let e = AllowEntry::parse("api.example.com:8443").unwrap();
        assert!(e.allows("api.example.com", 8443));
        assert!(!e.allows("api.example.com", 443));
        let e = AllowEntry::parse("*.example.com").unwrap();
        assert!(e.allows("a.example.com", 80));
        assert!(e.allows("b.a.example.com", 80));
        assert!(!e.allows("example.com", 80));
        assert!(!e.allows("evilexample.com", 80));
        let e = AllowEntry::parse("[::1]:8080").unwrap();
        assert!(e.allows("[::1]", 8080));
        assert!(!e.allows("[::1]", 8081));
        let e = AllowEntry::parse("127.0.0.1").unwrap();
        assert!(e.allows("127.0.0.1", 9));
        for bad in [
            "", ":80", "a b", "x:99999", "*.", "[zz]", "*.[::1]", "http://x", "a..b",
        ] {
            assert!(!is_valid_http_allow_entry(bad), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_secret_values() {
        let caps = Capabilities {
            secrets: vec![("token".into(), "s3cr3t".into())],
            ..Capabilities::default()
        };
        let text = format!("{caps:?}");
        assert!(text.contains("token") && !text.contains("s3cr3t"), "{text}");
    }
}
