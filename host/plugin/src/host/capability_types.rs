//! `pbx:app/capability-types@0.3.0`: the `capability-error` every capability import
//! (`kv.rs`, `http.rs`, `config.rs`) answers with, and the helpers that build it. The
//! interface has no functions of its own.
//!
//! Invariants:
//! - Every capability import answers at once with a WIT `capability-error`; none traps, none
//!   blocks on the network. A refused request changes nothing.
//! - Nothing is reachable without its grant ([`Capabilities`](crate::grants::Capabilities)):
//!   `kv` needs a backend, `http` a host on the allow-list; `config` only ever shows the app
//!   its own values and secrets.

use super::HostState;
use crate::bindings::v0_3::capability_types::{self, CapabilityError};

pub(super) type CapResult<T> = Result<T, CapabilityError>;

pub(super) fn not_granted(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::NotGranted(msg.into())
}
pub(super) fn too_large(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::TooLarge(msg.into())
}
pub(super) fn invalid(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::InvalidArgument(msg.into())
}
pub(super) fn failed(msg: impl Into<String>) -> CapabilityError {
    CapabilityError::Failed(msg.into())
}

impl capability_types::Host for HostState {}
