//! `pbx:app/config@0.3.0`: the app's configuration values and secrets, as granted in the
//! session's [`Capabilities`](crate::grants::Capabilities).
//!
//! Invariants: `config` only ever shows the app its own values and secrets; `get` and `all`
//! never show a secret, `secret` never shows a value; with a name given twice the first
//! wins.

use super::capability_types::{CapResult, invalid};
use super::{HostState, cut};
use crate::bindings::v0_3::config;

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
