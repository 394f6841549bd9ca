//! What a simulation run produced: the printable timeline, the app's requests and the
//! events it was given, and the expectations that failed.
//!
//! Invariant: a transcript passed exactly when it has no failure (every `expect` held, the
//! scenario parsed, and the app did not fail unless an `expect app-error` said it would).

use std::fmt;

use crate::scenario::ParseError;
use crate::types::{SimEvent, SimRequest};

/// One expectation that did not hold (or a parse error, or an unexpected app failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The scenario line (1-based).
    pub line: usize,
    /// The step as written (empty for an app failure or a parse error).
    pub step: String,
    /// Why it failed.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.step.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.step, self.message)
        }
    }
}

/// The result of a run; `Display` prints the timeline, one line per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    lines: Vec<String>,
    requests: Vec<SimRequest>,
    events: Vec<SimEvent>,
    failures: Vec<Failure>,
}

impl Transcript {
    pub(crate) fn new(
        lines: Vec<String>,
        requests: Vec<SimRequest>,
        events: Vec<SimEvent>,
        failures: Vec<Failure>,
    ) -> Transcript {
        Transcript {
            lines,
            requests,
            events,
            failures,
        }
    }

    /// The transcript of a scenario that did not parse: it failed at the error's line.
    pub fn from_parse_error(error: &ParseError) -> Transcript {
        Transcript {
            lines: vec![format!("bad scenario: {error}")],
            requests: Vec::new(),
            events: Vec::new(),
            failures: vec![Failure {
                line: error.line,
                step: String::new(),
                message: format!("bad scenario: {}", error.message),
            }],
        }
    }

    /// The timeline: `[  0.000] -> call-received leg-1 alice -> 1000` for events given to
    /// the app, `<- answer(leg-1)` for its requests, `::` for scenario steps, `ok`/`FAIL`
    /// for expectations, and a summary last.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Every request the app made, in order.
    pub fn requests(&self) -> &[SimRequest] {
        &self.requests
    }

    /// Every event delivered to the app, in order.
    pub fn events(&self) -> &[SimEvent] {
        &self.events
    }

    /// True when every expectation held and nothing else failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// What failed, in scenario order.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}
