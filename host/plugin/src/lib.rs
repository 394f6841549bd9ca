//! pbx-plugin: the wasmtime runtime for call apps, the only crate that names wasmtime.
//!
//! It validates uploads ([`Runtime::validate`]), compiles each app version once
//! ([`Runtime::compile_cached`], [`CompiledApp::serialize`], [`Runtime::load_serialized`]),
//! and creates one [`AppInstance`] per call session ([`Runtime::instantiate`]). Events go in
//! through [`AppInstance::deliver`]; what the app asked for comes back as [`Action`]s. Apps
//! built against `pbx:app@0.3.0` and against the frozen `pbx:app@0.2.0` and `@0.1.0` all
//! load ([`AbiVersion`]). What an app may use beyond call control (key-value store, HTTP
//! hosts, configuration, secrets) and its own tighter limits are granted per session in the
//! [`CallContext`] ([`Capabilities`], [`AppLimits`]).
//!
//! Invariants: an app can never harm the host or another session. Each event runs under a
//! CPU deadline (epoch interruption, `limits.rs`), each instance has a memory cap, WASI
//! grants no files, environment or network (`host/mod.rs`), capabilities reach only what was
//! granted (`host/http.rs`: no HTTP host off the allow-list), every import validates its input
//! against the session mirror and answers with a WIT error rather than trapping, and an app
//! failure ([`AppError`]) poisons only its own instance. No generated binding type is part
//! of the public API.

mod bindings;
mod convert;
mod error;
mod grants;
mod host;
mod instance;
mod legacy;
mod legacy_v0_2;
mod limits;
mod runtime;
mod stdio;
mod validate;

pub use error::{AppError, PluginError};
pub use grants::{
    AppLimits, Capabilities, KV_MAX_KEY_BYTES, KV_MAX_LIST_KEYS, KV_MAX_VALUE_BYTES, KvBackend,
    KvError, MemoryKv, is_valid_http_allow_entry,
};
pub use host::{FileExists, NameExists, new_leg_id};
pub use instance::AppInstance;
pub use limits::RuntimeStats;
pub use pbx_app::{
    AbiVersion, Action, CallEnded, CallInfo, CollectEnd, CollectOptions, CollectedDigits,
    ConferenceOptions, DialOptions, Direction, Endpoint, Event, GroupStage, HandOverInfo, HangupBy,
    HangupReason, HttpError, HttpMethod, HttpRequest, HttpResponse, JoinOptions, LegPhase,
    MediaFinished, MediaId, MuteDirection, ParticipantRole, PlayOptions, RecordOptions,
    RecordTarget, RecordingInfo, RequestId, RingStrategy, SayOptions, TimerId,
};
pub use runtime::{CallContext, CompiledApp, Runtime, RuntimeConfig};
pub use validate::{ValidationError, check_header as check_component_header};
