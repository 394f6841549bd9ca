//! The end-to-end harness: the real `pbx` binary against real SIP peers (sipp, baresip) on
//! 127.0.0.1, plus audio checks on what the peers recorded.
//!
//! Invariants: async on tokio; every wait is bounded by a timeout; every child process is
//! killed when its owner is dropped; only 127.0.0.1 is used, so the same tests run inside a
//! loopback-only network namespace (`unshare -n`) and outside one; every test gets its own pbx,
//! ports and temp dirs, so tests may run in parallel. When a test panics, each live `Pbx` and
//! `Baresip` prints its log tail.

pub mod api;
pub mod audio;
pub mod baresip;
pub mod digest;
pub mod error;
pub mod event_stream;
pub mod http_server;
pub mod media;
pub mod net;
pub mod party;
pub mod paths;
pub mod pbx;
pub mod process;
pub mod scenarios;
pub mod sip_raw;
pub mod sipp;

pub use api::{
    Api, Reply, calls_of, error_code, expect_status, list_of, phone_endpoint, sip_endpoint,
    str_field, user_endpoint,
};
pub use audio::{Audio, SpeechReport, ToneReport, assert_hears, assert_not_hears, tone_report};
pub use baresip::{AnswerMode, AudioSource, Baresip, BaresipOptions, Event, Registration};
pub use error::{HarnessError, Result};
pub use event_stream::EventStream;
pub use http_server::{HttpRecorder, ReceivedRequest, verify_signature};
pub use party::{Party, TONES};
pub use pbx::{DeployedApp, Pbx, PbxOptions};
pub use sip_raw::{RawTransport, SipResponse};
pub use sipp::{Sipp, SippRun, Transport};
