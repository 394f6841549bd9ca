//! pbx-app: the contract between the host and call apps, written once.
//!
//! Plain Rust mirrors of the `pbx:app` WIT types: the [`Event`]s the host delivers, the
//! [`Action`]s an app asks for with their validated options, and the HTTP capability's
//! request and response; and the rules ([`phase`]) that decide which requests a leg accepts
//! in each of its phases, with the one refusal text for each case. The runtime
//! (`pbx-plugin`, which converts these to and from its generated bindings and re-exports
//! them) and the SDK's stand-in host (`pbx_sdk::testing`) both refuse through [`phase`], so
//! an app's tests see the texts the pbx sends.
//!
//! Invariants: pure: no wasmtime, no async runtime, no I/O, no clock; nothing here depends
//! on generated bindings, so any crate (including one built for `wasm32-wasip2`) may depend
//! on it.

mod abi;
mod action;
mod event;
mod http;
mod ids;
mod leg;
mod options;
pub mod phase;

pub use abi::AbiVersion;
pub use action::Action;
pub use event::{CollectEnd, CollectedDigits, Event, MediaFinished, RecordingInfo};
pub use http::{HttpError, HttpMethod, HttpRequest, HttpResponse};
pub use ids::{MediaId, RequestId, TimerId};
pub use leg::{
    CallEnded, CallInfo, Direction, HandOverInfo, HangupBy, HangupReason, LegPhase, UnknownName,
};
pub use options::{
    CollectOptions, ConferenceOptions, DialOptions, Endpoint, GroupStage, JoinOptions,
    MuteDirection, ParticipantRole, PlayOptions, RecordOptions, RecordTarget, RingStrategy,
    SayOptions,
};
