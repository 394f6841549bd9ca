//! Recordings of a leg, a bridge or a conference into WAV files.
//!
//! Invariants: a [`StartRecording`] sends exactly one `recording.start`, only when `send` is
//! called; defaults follow the WIT (one mixed mono file, one hour at most, no metadata).

use std::time::Duration;

use crate::bindings::pbx::app::types::{RecordOptions, RecordTarget as WitTarget};
use crate::host::rec;
use crate::media::millis;
use crate::{Call, Conference, Error};

/// What a recording captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordTarget {
    /// One leg: what its party says and what the pbx sends it.
    Call(Call),
    /// The bridge the leg is in: both parties.
    Bridge(Call),
    /// A conference: every participant.
    Conference(Conference),
}

impl RecordTarget {
    fn to_wit(&self) -> WitTarget {
        match self {
            RecordTarget::Call(c) => WitTarget::Call(c.id().to_owned()),
            RecordTarget::Bridge(c) => WitTarget::Bridge(c.id().to_owned()),
            RecordTarget::Conference(c) => WitTarget::Conference(c.id().to_owned()),
        }
    }
}

/// A handle on a running (or finished) recording; its end is reported to
/// [`App::on_recording_ready`](crate::App::on_recording_ready).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Recording {
    id: String,
}

impl Recording {
    /// Starts building a recording of `target`:
    /// `Recording::start(RecordTarget::Call(call)).max_duration(secs(20)).send()`.
    pub fn start(target: RecordTarget) -> StartRecording {
        StartRecording {
            target,
            per_participant: false,
            stereo: false,
            max_duration_ms: 0,
            metadata: Vec::new(),
        }
    }

    /// A handle for a recording id the host gave out.
    pub fn from_id(id: impl Into<String>) -> Self {
        Recording { id: id.into() }
    }

    /// The host's id of this recording, as shown in `/v1/recordings`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops the recording (it also stops when its target ends).
    pub fn stop(&self) -> Result<(), Error> {
        Ok(rec::stop(&self.id)?)
    }
}

impl std::fmt::Display for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

/// A recording being set up; [`StartRecording::send`] starts it.
#[derive(Debug, Clone)]
#[must_use = "a StartRecording does nothing until `send` is called"]
pub struct StartRecording {
    target: RecordTarget,
    per_participant: bool,
    stereo: bool,
    max_duration_ms: u32,
    metadata: Vec<(String, String)>,
}

impl StartRecording {
    /// One WAV file per participant instead of one mixed file.
    pub fn per_participant(mut self) -> Self {
        self.per_participant = true;
        self
    }

    /// For a mixed recording: stereo, the first party on the left and the others on the
    /// right.
    pub fn stereo(mut self) -> Self {
        self.stereo = true;
        self
    }

    /// Stop by itself after this long (default one hour; millisecond precision).
    pub fn max_duration(mut self, max: Duration) -> Self {
        self.max_duration_ms = millis(max);
        self
    }

    /// Free-form metadata kept with the recording and shown by the API.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }

    pub(crate) fn options(&self) -> RecordOptions {
        RecordOptions {
            per_participant: self.per_participant,
            stereo: self.stereo,
            max_duration_ms: self.max_duration_ms,
            metadata: self.metadata.clone(),
        }
    }

    /// Starts the recording.
    pub fn send(self) -> Result<Recording, Error> {
        Ok(Recording::from_id(rec::start(
            &self.target.to_wit(),
            &self.options(),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_wit() {
        let o = Call::from_id("leg-1").record().options();
        assert!(!o.per_participant && !o.stereo);
        assert_eq!(o.max_duration_ms, 0);
        assert!(o.metadata.is_empty());
    }

    #[test]
    fn options_and_targets() {
        let s = Conference::from_id("conf-1")
            .record()
            .per_participant()
            .stereo()
            .max_duration(Duration::from_secs(20))
            .metadata("case", "42");
        let o = s.options();
        assert!(o.per_participant && o.stereo);
        assert_eq!(o.max_duration_ms, 20_000);
        assert_eq!(o.metadata, vec![("case".to_owned(), "42".to_owned())]);
        assert!(matches!(s.target.to_wit(), WitTarget::Conference(id) if id == "conf-1"));
        let b = Call::from_id("leg-2").record_bridge();
        assert!(matches!(b.target.to_wit(), WitTarget::Bridge(id) if id == "leg-2"));
        let c = Recording::start(RecordTarget::Call(Call::from_id("leg-3")));
        assert!(matches!(c.target.to_wit(), WitTarget::Call(id) if id == "leg-3"));
    }
}
