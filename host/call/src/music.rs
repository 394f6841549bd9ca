//! The host's own music (hold, transfer, a conference participant alone): an endless loop
//! over a clip, kept apart from the app's player so it is never reported to the app.
//!
//! Invariant: a loop over an empty clip adds nothing; the position always wraps.

use std::sync::Arc;

use pbx_media::pcm::Pcm;

/// An endless loop over a clip.
#[derive(Debug, Clone)]
pub struct MusicLoop {
    clip: Arc<Pcm>,
    pos: usize,
}

impl MusicLoop {
    /// A loop from the start of `clip`.
    pub fn new(clip: Arc<Pcm>) -> Self {
        MusicLoop { clip, pos: 0 }
    }

    /// Adds the next frame of the loop into `out`, saturating.
    pub fn mix_into(&mut self, out: &mut [i16]) {
        let samples = &self.clip.samples;
        if samples.is_empty() {
            return;
        }
        for sample in out.iter_mut() {
            if self.pos >= samples.len() {
                self.pos = 0;
            }
            *sample = sample.saturating_add(samples[self.pos]);
            self.pos += 1;
        }
    }
}
