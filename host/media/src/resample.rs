//! Sample-rate conversion of whole mono clips with rubato's synchronous FFT resampler.
//!
//! Invariants: the output has the target rate and exactly `ceil(len * target / source)` samples, with
//! the resampler's start-up delay trimmed; a clip already at the target rate is copied as is.
//! This runs once per clip (prompt load, upload), never per frame.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use thiserror::Error;

use crate::pcm::{Pcm, f32_to_i16};

/// Chunk size handed to rubato; a trade-off between FFT size and per-chunk overhead.
const CHUNK: usize = 1024;

/// Why a clip could not be resampled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResampleError {
    /// A rate of zero, or one rubato refuses.
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    BadRate {
        /// Source rate.
        from: u32,
        /// Target rate.
        to: u32,
        /// rubato's explanation.
        reason: String,
    },
    /// rubato failed while processing.
    #[error("resampling failed: {0}")]
    Failed(String),
}

/// Returns `pcm` converted to `target_rate` Hz.
pub fn resample(pcm: &Pcm, target_rate: u32) -> Result<Pcm, ResampleError> {
    if pcm.rate == target_rate {
        return Ok(pcm.clone());
    }
    let bad_rate = |reason: String| ResampleError::BadRate {
        from: pcm.rate,
        to: target_rate,
        reason,
    };
    if pcm.rate == 0 || target_rate == 0 {
        return Err(bad_rate("rate is zero".into()));
    }
    if pcm.samples.is_empty() {
        return Ok(Pcm::new(target_rate, Vec::new()));
    }
    let mut resampler = Fft::<f32>::new(
        pcm.rate as usize,
        target_rate as usize,
        CHUNK,
        1,
        FixedSync::Input,
    )
    .map_err(|e| bad_rate(e.to_string()))?;
    let input: Vec<f32> = pcm
        .samples
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let adapter = InterleavedSlice::new(&input, 1, input.len())
        .map_err(|e| ResampleError::Failed(e.to_string()))?;
    let out = resampler
        .process_all(&adapter, input.len(), None)
        .map_err(|e| ResampleError::Failed(e.to_string()))?;
    // rubato computes the length in floating point (44100 -> 48000 can give one extra
    // sample); the exact length is ceil(len * to / from).
    let expected =
        (pcm.samples.len() as u64 * u64::from(target_rate)).div_ceil(u64::from(pcm.rate)) as usize;
    let mut samples: Vec<i16> = out.take_data().into_iter().map(f32_to_i16).collect();
    samples.resize(expected, 0);
    Ok(Pcm::new(target_rate, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, ms: u32, amp: f64) -> Pcm {
        let n = (rate as u64 * ms as u64 / 1000) as usize;
        let samples = (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16
            })
            .collect();
        Pcm::new(rate, samples)
    }

    /// Dominant frequency by counting rising zero crossings.
    fn frequency(p: &Pcm) -> f64 {
        let crossings = p
            .samples
            .windows(2)
            .filter(|w| w[0] < 0 && w[1] >= 0)
            .count();
        crossings as f64 * p.rate as f64 / p.samples.len() as f64
    }

    #[test]
    fn down_and_up_keep_length_and_pitch() {
        for (from, to) in [(22050, 8000), (48000, 8000), (8000, 16000), (44100, 48000)] {
            let src = sine(from, 440.0, 1000, 12000.0);
            let out = resample(&src, to).unwrap();
            assert_eq!(out.rate, to);
            let expected = (src.samples.len() as u64 * to as u64).div_ceil(from as u64) as usize;
            assert_eq!(out.samples.len(), expected, "{from}->{to}");
            let f = frequency(&out);
            assert!((f - 440.0).abs() < 5.0, "{from}->{to}: {f} Hz");
            // The level survives: RMS of a 12000 sine is ~8485.
            let rms = out.rms();
            assert!((rms - 8485.0).abs() < 500.0, "{from}->{to}: rms {rms}");
        }
    }

    #[test]
    fn same_rate_and_empty_and_zero() {
        let p = sine(8000, 440.0, 100, 1000.0);
        assert_eq!(resample(&p, 8000).unwrap(), p);
        assert!(resample(&Pcm::new(16000, vec![]), 8000).unwrap().is_empty());
        assert!(matches!(
            resample(&Pcm::new(0, vec![1, 2]), 8000),
            Err(ResampleError::BadRate { .. })
        ));
    }

    #[test]
    fn very_short_clip() {
        let out = resample(&Pcm::new(16000, vec![1000; 3]), 8000).unwrap();
        assert_eq!(out.samples.len(), 2);
    }
}
