//! The app's persistent key-value store: one store per app, shared by every call of it and
//! kept across calls and restarts. Needs the `kv` grant; without it every function returns
//! [`Error::NotGranted`].
//!
//! ```no_run
//! use pbx_sdk::kv;
//!
//! let calls: u64 = kv::get_string("calls")?
//!     .and_then(|s| s.parse().ok())
//!     .unwrap_or(0);
//! kv::set_string("calls", &(calls + 1).to_string())?;
//! # Ok::<(), pbx_sdk::Error>(())
//! ```
//!
//! Invariants: keys are 1 to 256 bytes, values at most 64 KiB (64 * 1024 bytes), listings at
//! most 1000 keys; the host refuses anything beyond with [`Error::InvalidArgument`] or
//! [`Error::TooLarge`], never by trapping.

use crate::Error;
use crate::host::kv as wit;

/// The value stored under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    Ok(wit::get(key)?)
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    Ok(wit::set(key, value)?)
}

/// Removes `key`; `true` when it existed.
pub fn delete(key: &str) -> Result<bool, Error> {
    Ok(wit::delete(key)?)
}

/// The keys that start with `prefix` (`""`: every key), in byte order, at most 1000.
pub fn list_keys(prefix: &str) -> Result<Vec<String>, Error> {
    Ok(wit::list_keys(prefix)?)
}

/// The value under `key` as text; [`Error::InvalidArgument`] when it is not UTF-8.
pub fn get_string(key: &str) -> Result<Option<String>, Error> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::InvalidArgument(format!("the value of `{key}` is not UTF-8"))),
    }
}

/// Stores text under `key`.
pub fn set_string(key: &str, value: &str) -> Result<(), Error> {
    set(key, value.as_bytes())
}
