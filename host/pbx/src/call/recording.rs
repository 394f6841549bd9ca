//! A recording under way: which legs or conference it captures and its WAV writers.
//!
//! Invariants: frames are written on the session's tick, so every file of a recording has
//! the same length; a recording stops once (its `stop`, its target ending, or its maximum
//! duration) and is then written to the store as ready, or failed when a write failed.

use std::fs::File;
use std::io::BufWriter;

use pbx_media::recorder::WavRecorder;
use pbx_plugin::{RecordOptions, RecordTarget};

use super::leg::FRAME;

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
    pub(crate) opts: RecordOptions,
    pub(crate) files: Vec<RecFile>,
    pub(crate) frames: u64,
    pub(crate) max_frames: u64,
    pub(crate) failed: bool,
}

impl Recording {
    pub(crate) fn new(id: String, target: RecordTarget, opts: RecordOptions) -> Self {
        let max_ms = match opts.max_duration_ms {
            0 => 3_600_000,
            ms => u64::from(ms),
        };
        Recording {
            id,
            target,
            opts,
            files: Vec::new(),
            frames: 0,
            max_frames: max_ms / 20,
            failed: false,
        }
    }

    /// How long it has run.
    pub(crate) fn duration_ms(&self) -> u64 {
        self.frames * 20
    }

    /// True once the maximum duration is reached.
    pub(crate) fn is_full(&self) -> bool {
        self.frames >= self.max_frames
    }

    /// Writes one frame to the file labelled `label` (mono) and notes a failure.
    pub(crate) fn write_mono(&mut self, label: &str, frame: &[i16; FRAME]) {
        let mut failed = false;
        if let Some(file) = self.files.iter_mut().find(|f| f.label == label)
            && let Some(writer) = file.writer.as_mut()
            && writer.write_mono(frame).is_err()
        {
            failed = true;
        }
        self.failed |= failed;
    }

    /// Writes one stereo frame to the file labelled `label`.
    pub(crate) fn write_stereo(&mut self, label: &str, left: &[i16], right: &[i16]) {
        let mut failed = false;
        if let Some(file) = self.files.iter_mut().find(|f| f.label == label)
            && let Some(writer) = file.writer.as_mut()
            && writer.write_stereo(left, right).is_err()
        {
            failed = true;
        }
        self.failed |= failed;
    }

    /// Writes one frame to the file at `index` (mono) and notes a failure.
    pub(crate) fn write_mono_at(&mut self, index: usize, frame: &[i16; FRAME]) {
        let failed = self
            .files
            .get_mut(index)
            .and_then(|f| f.writer.as_mut())
            .is_some_and(|w| w.write_mono(frame).is_err());
        self.failed |= failed;
    }
}
