//! Decoded mono audio clips and frame arithmetic.
//!
//! Invariants: a [`Pcm`] is mono, 16-bit, at `rate` Hz; a frame is always 20 ms, so a graph
//! at `rate` Hz moves `rate / 50` samples per frame.

/// Length of one media frame in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Samples in one 20 ms frame at `rate` Hz.
pub const fn samples_per_frame(rate: u32) -> usize {
    (rate / (1000 / FRAME_MS)) as usize
}

/// A whole decoded clip (a prompt, an uploaded file, synthesized speech), shared between
/// players through `Arc` so that a prompt played by many calls is held once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pcm {
    /// Sample rate in Hz.
    pub rate: u32,
    /// Mono 16-bit samples.
    pub samples: Vec<i16>,
}

impl Pcm {
    /// A clip from samples at `rate` Hz.
    pub fn new(rate: u32, samples: Vec<i16>) -> Self {
        Pcm { rate, samples }
    }

    /// `ms` milliseconds of silence at `rate` Hz.
    pub fn silence(rate: u32, ms: u32) -> Self {
        Pcm {
            rate,
            samples: vec![0; ms_to_samples(rate, ms)],
        }
    }

    /// The clip's length in milliseconds (rounded down).
    pub fn duration_ms(&self) -> u64 {
        if self.rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / u64::from(self.rate)
    }

    /// True when the clip has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The largest absolute sample value.
    pub fn peak(&self) -> u16 {
        self.samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0)
    }

    /// Root-mean-square level, a cheap loudness measure for tests and diagnostics.
    pub fn rms(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = self.samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / self.samples.len() as f64).sqrt()
    }
}

/// Samples in `ms` milliseconds at `rate` Hz (rounded down).
pub fn ms_to_samples(rate: u32, ms: u32) -> usize {
    (u64::from(rate) * u64::from(ms) / 1000) as usize
}

/// Converts a float sample in [-1, 1] to 16 bits, clamping out-of-range values.
pub fn f32_to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Averages interleaved frames of `channels` float samples into mono 16-bit samples appended
/// to `out`. A trailing partial frame is ignored.
pub fn downmix_f32_into(interleaved: &[f32], channels: usize, out: &mut Vec<i16>) {
    if channels <= 1 {
        out.extend(interleaved.iter().map(|&x| f32_to_i16(x)));
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| f32_to_i16(frame.iter().sum::<f32>() * scale)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes() {
        assert_eq!(samples_per_frame(8000), 160);
        assert_eq!(samples_per_frame(16000), 320);
        assert_eq!(samples_per_frame(48000), 960);
    }

    #[test]
    fn clip_measures() {
        let p = Pcm::new(8000, vec![0, 100, -300, 50]);
        assert_eq!(p.peak(), 300);
        assert_eq!(p.duration_ms(), 0);
        assert_eq!(Pcm::silence(8000, 250).samples.len(), 2000);
        assert_eq!(Pcm::silence(8000, 250).duration_ms(), 250);
        assert_eq!(Pcm::new(0, vec![1]).duration_ms(), 0);
        assert!(Pcm::default().is_empty());
        assert_eq!(Pcm::default().rms(), 0.0);
    }

    #[test]
    fn downmix_averages_channels() {
        let mut out = Vec::new();
        downmix_f32_into(&[1.0, 0.0, -0.5, -0.5, 2.0, 2.0, 0.3], 2, &mut out);
        assert_eq!(out, vec![16384, -16384, 32767]);
        out.clear();
        downmix_f32_into(&[0.5, -2.0], 1, &mut out);
        assert_eq!(out, vec![16384, -32767]);
    }
}
