//! What an app version is granted beyond call control, read from the store when a session
//! starts: its key-value state, HTTP allow-list, configuration, secrets and limits.
//!
//! Invariants: grants are read once per session, so a settings change applies to new calls
//! (like a deploy); the key-value backend is per app (all versions and calls of the app share
//! it) and enforces the app's byte quota in the store, inside one transaction.

use std::sync::Arc;
use std::time::Duration;

use pbx_plugin::{AppLimits, Capabilities, KvBackend, KvError};
use pbx_store::{Store, StoreError};

/// The app's key-value state in SQLite. Calls are short synchronous statements made from
/// the session task; the values are small (at most 64 KiB), so this stays off the media
/// budget in practice.
struct StoreKv {
    store: Arc<Store>,
    app_id: String,
    max_total_bytes: u64,
}

fn kv_error(err: StoreError) -> KvError {
    match err {
        StoreError::QuotaExceeded { message, .. } => KvError::TooLarge(message),
        StoreError::Invalid { field, message } => KvError::Invalid(format!("{field}: {message}")),
        other => {
            tracing::warn!(error = %other, "key-value store failure");
            KvError::Failed("the key-value store is unavailable".into())
        }
    }
}

impl KvBackend for StoreKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.store.kv_get(&self.app_id, key).map_err(kv_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.store
            .kv_set(&self.app_id, key, value, self.max_total_bytes)
            .map_err(kv_error)
    }

    fn delete(&self, key: &str) -> Result<bool, KvError> {
        self.store.kv_delete(&self.app_id, key).map_err(kv_error)
    }

    fn list_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, KvError> {
        self.store
            .kv_list(&self.app_id, prefix, limit)
            .map(|entries| entries.into_iter().map(|e| e.key).collect())
            .map_err(kv_error)
    }
}

/// The grants and limits of `app_id` at `version`; on a store failure, nothing is granted
/// (the app still runs, and its requests get `not-granted`).
pub(crate) fn for_app(store: &Arc<Store>, app_id: &str, version: u32) -> (Capabilities, AppLimits) {
    let settings = match store.app_settings(app_id) {
        Ok(settings) => settings,
        Err(err) => {
            tracing::warn!(app_id, error = %err, "cannot read app settings; granting nothing");
            return (Capabilities::default(), AppLimits::default());
        }
    };
    let mut caps = Capabilities {
        http_allow: settings.http_allow.clone(),
        http_timeout: Duration::from_millis(u64::from(settings.http_timeout_ms)),
        http_max_response_bytes: usize::try_from(settings.http_max_response_bytes)
            .unwrap_or(usize::MAX),
        ..Capabilities::default()
    };
    if settings.kv_enabled {
        caps.kv = Some(Arc::new(StoreKv {
            store: store.clone(),
            app_id: app_id.to_owned(),
            max_total_bytes: settings.kv_max_bytes,
        }));
    }
    match store.app_config_for(app_id, version) {
        Ok(entries) => {
            for entry in entries {
                if entry.secret {
                    caps.secrets.push((entry.name, entry.value));
                } else {
                    caps.config.push((entry.name, entry.value));
                }
            }
        }
        Err(err) => tracing::warn!(app_id, error = %err, "cannot read app configuration"),
    }
    let limits = AppLimits {
        max_memory_bytes: settings
            .max_memory_bytes
            .and_then(|b| usize::try_from(b).ok()),
        event_deadline: settings
            .event_deadline_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
    };
    (caps, limits)
}

#[cfg(test)]
mod tests {
    use pbx_store::AppSettings;

    fn stored(entry: &str) -> bool {
        AppSettings {
            http_allow: vec![entry.to_owned()],
            ..AppSettings::default()
        }
        .validate()
        .is_ok()
    }

    /// The store validates allow-list entries when an admin sets them and the runtime
    /// matches requests against them: every entry the store accepts must be one the runtime
    /// reads, or it would silently never match. (The store is stricter: lowercase only.)
    #[test]
    fn every_stored_allow_list_entry_is_one_the_runtime_reads() {
        for entry in [
            "api.example.com",
            "api.example.com:8443",
            "*.example.com",
            "*.example.com:443",
            "localhost",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:80",
        ] {
            assert!(stored(entry), "the store refuses {entry}");
            assert!(
                pbx_plugin::is_valid_http_allow_entry(entry),
                "the runtime cannot read {entry}"
            );
        }
        for entry in [
            "::1",
            "API.example.com",
            "a..b",
            "a.com:0",
            "http://a.com",
            "*.",
            "a.*.com",
        ] {
            assert!(!stored(entry), "the store accepts {entry}");
        }
    }
}
