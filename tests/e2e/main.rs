//! The `e2e` test binary: the real pbx binary against real SIP peers (sipp, baresip) on
//! 127.0.0.1. `harness_*` tests prove the harness against the peers alone (no pbx needed):
//! `cargo test -p pbx-tests --test e2e harness`. Every other test needs `target/debug/pbx`
//! (or `PBX_BIN`) and the app components from `scripts/build-plugins.sh`. Issue 4's tests:
//! `events`, `hot_deploy`, `tenancy`, `capabilities`, `drain`, `metrics`, `cli`.
#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed step panics with its message"
)]

mod api_fuzz;
mod app_errors;
mod bridge;
mod calls;
mod cancel;
mod capabilities;
mod cli;
mod common;
mod conference;
mod control;
mod drain;
mod events;
mod examples;
mod group;
mod handover;
mod harness;
mod harness_parties;
mod hot_deploy;
mod metrics;
mod options;
mod originate;
mod register;
mod restart;
mod sessions_end;
mod sip_abuse;
mod ssrf;
mod startup;
mod tenancy;
mod transfer;
mod uploads;
