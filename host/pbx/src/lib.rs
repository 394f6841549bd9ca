//! The pbx server: the tokio shell around the sans-IO SIP and media cores, the call model that
//! joins them to the app runtime, and the wiring of storage and the admin API.
//!
//! Only this crate reads the clock and owns sockets; see ARCHITECTURE.md for the map.

pub mod app_http;
pub mod apps;
pub mod auth_guard;
pub mod backend;
pub mod call;
pub(crate) mod capabilities;
pub mod cli;
pub mod config;
pub mod espeak;
pub mod events;
pub mod examples;
pub mod history;
pub(crate) mod log_limit;
pub mod logging;
pub mod media_cache;
pub mod metrics;
mod outbound;
pub mod registrar;
pub mod server;
pub mod sip_shell;
