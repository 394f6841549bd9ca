//! The one place the SDK reaches the host's imports: the real WIT imports in a component,
//! the recording stand-in of [`crate::testing`] everywhere else (host-side tests).
//!
//! Invariant: both sides expose the same module paths and signatures, so no other file
//! knows which one it is calling.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::pbx::app::{
    call_control as cc, conference as conf, config, http, kv, log, recording as rec, timers,
};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::stand_in::{cc, conf, config, http, kv, log, rec, timers};
