//! A recording under way: its WAV writers, fed with the frames the media plane's tap of it
//! hands out each tick (`pbx_call::MediaOutput::Record`).
//!
//! Invariants: every file of a recording gets a frame on every tick, so all have the same
//! length; a recording stops once (its `stop`, its target ending, or its maximum duration)
//! and is then written to the store as ready, or failed when a write failed.

use std::fs::File;
use std::io::BufWriter;

use pbx_call::{TapFrame, TapKey};
use pbx_media::recorder::WavRecorder;
use pbx_plugin::{RecordOptions, RecordTarget};

/// One WAV file of a recording.
pub(crate) struct RecFile {
    /// "mixed", or the call id of the participant it holds.
    pub(crate) label: String,
    pub(crate) channels: u16,
    /// Its index in the store (`recording_path`).
    pub(crate) index: u32,
    pub(crate) writer: Option<WavRecorder<BufWriter<File>>>,
}

/// A live recording.
pub(crate) struct Recording {
    pub(crate) id: String,
    pub(crate) target: RecordTarget,
    /// The plane's tap that feeds it.
    pub(crate) tap: TapKey,
    pub(crate) files: Vec<RecFile>,
    pub(crate) failed: bool,
}

impl Recording {
    /// The most frames a recording of `opts` holds (its maximum duration, 1 h by default).
    pub(crate) fn max_frames(opts: &RecordOptions) -> u64 {
        let max_ms = match opts.max_duration_ms {
            0 => 3_600_000,
            ms => u64::from(ms),
        };
        max_ms / 20
    }

    /// Writes one tick of the file at `index`, noting a failure.
    pub(crate) fn write(&mut self, index: usize, frame: &TapFrame) {
        let Some(writer) = self.files.get_mut(index).and_then(|f| f.writer.as_mut()) else {
            return;
        };
        let written = match frame {
            TapFrame::Mono(samples) => writer.write_mono(samples),
            TapFrame::Stereo(left, right) => writer.write_stereo(left, right),
        };
        self.failed |= written.is_err();
    }
}
