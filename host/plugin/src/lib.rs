//! pbx-plugin: the wasmtime runtime for call apps, the only crate that names wasmtime.
//!
//! It validates uploads ([`Runtime::validate`]), compiles each app version once
//! ([`Runtime::compile_cached`], [`CompiledApp::serialize`], [`Runtime::load_serialized`]),
//! and creates one [`AppInstance`] per call ([`Runtime::instantiate`]). Events go in through
//! the instance's `on_*` methods; what the app asked for comes back as [`Action`]s.
//!
//! Invariants: an app can never harm the host or another call. Each event runs under a CPU
//! deadline (epoch interruption, `limits.rs`), each instance has a memory cap, WASI grants no
//! files, environment or network (`host.rs`), every import validates its input and answers
//! with a WIT error rather than trapping, and an app failure ([`AppError`]) poisons only its
//! own instance. No generated binding type is part of the public API.

mod bindings;
mod error;
mod host;
mod instance;
mod limits;
mod runtime;
mod stdio;
mod types;
mod validate;

pub use error::{AppError, PluginError};
pub use host::FileExists;
pub use instance::AppInstance;
pub use limits::RuntimeStats;
pub use runtime::{CallContext, CompiledApp, Runtime, RuntimeConfig};
pub use types::{
    Action, CallEnded, CallInfo, CollectEnd, CollectOptions, CollectedDigits, Direction, HangupBy,
    HangupReason, MediaFinished, MediaId, Phase, PlayOptions, SayOptions,
};
pub use validate::ValidationError;
