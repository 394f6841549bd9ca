//! The app's configuration and secrets, as set for the app and its version in the admin API
//! (the version's value wins). Always available.
//!
//! Invariant: [`get`] and [`all`] never return secrets; [`secret`] returns only this app's
//! own secrets.

use crate::Error;
use crate::host::config as wit;

/// The configuration value `name`, or `None` when it is not set.
pub fn get(name: &str) -> Option<String> {
    wit::get(name)
}

/// The secret `name` (an API token, a password); [`Error::InvalidArgument`] when no secret
/// of that name is set.
pub fn secret(name: &str) -> Result<String, Error> {
    Ok(wit::secret(name)?)
}

/// Every configuration value (name, value), secrets excluded; the same list as
/// [`CallInfo::config`](crate::CallInfo::config).
pub fn all() -> Vec<(String, String)> {
    wit::all()
}
