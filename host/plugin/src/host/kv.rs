//! `pbx:app/kv@0.3.0`: the app's persistent key-value store, through the session's
//! [`KvBackend`](crate::grants::KvBackend) grant.
//!
//! Invariants: without a backend every request is `not-granted`; keys (1 to 256 bytes) and
//! values (at most 64 KiB) are checked before the backend sees them, listings are capped at
//! 1000 keys and one event at [`MAX_KV_OPS_PER_EVENT`] requests; backend errors map onto
//! `capability-error` ([`KvError`] → `too-large`, `invalid-argument`, `failed`). `kv` queues
//! no actions.

use super::HostState;
use super::capability_types::{CapResult, failed, invalid, not_granted, too_large};
use crate::bindings::v0_3::{capability_types::CapabilityError, kv};
use crate::grants::{KV_MAX_KEY_BYTES, KV_MAX_LIST_KEYS, KV_MAX_VALUE_BYTES, KvError};

/// Most `kv` requests one event may make. Each is a synchronous store statement on the
/// session's task, so the cap bounds how long one event can hold its call's media tick.
pub(crate) const MAX_KV_OPS_PER_EVENT: u32 = 100;

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
