//! pbx-sim: runs a call app against a scripted caller in virtual time, with no phone, no
//! network and no sleeping, and reports what the app did.
//!
//! A [`Scenario`] (the small text language of `README.md`) says what the caller and the
//! callees do and what the app is expected to have done by then. [`run`] plays it against
//! an [`AppDriver`]: `pbx simulate` drives a real component through the wasm runtime, and
//! `pbx_sdk::testing::simulate` drives an `App` natively, so both run the same engine.
//!
//! ```
//! use pbx_sim::{AppDriver, Scenario, SimEvent, SimRequest, SayOpts, run};
//!
//! struct Greeter;
//! impl AppDriver for Greeter {
//!     fn deliver(&mut self, event: &SimEvent) -> Result<Vec<SimRequest>, String> {
//!         Ok(match event {
//!             SimEvent::CallReceived(info) => vec![
//!                 SimRequest::Answer { call: info.id.clone() },
//!                 SimRequest::Say {
//!                     call: info.id.clone(),
//!                     id: 1,
//!                     text: "Hello".into(),
//!                     opts: SayOpts { loops: 1, stop_on_dtmf: false, language: None },
//!                 },
//!             ],
//!             _ => Vec::new(),
//!         })
//!     }
//! }
//!
//! let scenario = Scenario::parse("call from=alice to=1000\nexpect answer\nexpect say \"Hello\"")
//!     .unwrap();
//! let transcript = run(&scenario, &mut Greeter);
//! assert!(transcript.passed(), "{transcript}");
//! ```
//!
//! Invariants: pure Rust, no clock, no I/O, no async runtime (it builds for
//! `wasm32-wasip2`, because `pbx-sdk` depends on it); the same scenario and app always give
//! the same transcript.
#![deny(missing_docs)]

mod engine;
mod scenario;
mod transcript;
mod types;

pub use engine::{AppDriver, Simulation, run};
pub use scenario::{ParseError, Scenario};
pub use transcript::{Failure, Transcript};
pub use types::{
    CallInfo, CollectEnd, Direction, Ended, HangupBy, HangupReason, HttpReply, LegPhase, LegView,
    LogLevel, MediaEnd, PlayOpts, SayOpts, SimEvent, SimRequest,
};

/// Parses `text` and runs it against `driver`; a scenario that does not parse gives a failed
/// transcript naming the line.
pub fn run_text(text: &str, driver: &mut dyn AppDriver) -> Transcript {
    match Scenario::parse(text) {
        Ok(scenario) => run(&scenario, driver),
        Err(err) => Transcript::from_parse_error(&err),
    }
}

#[cfg(test)]
mod tests;
