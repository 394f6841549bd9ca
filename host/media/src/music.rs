//! The built-in music on hold: an 8 s loop synthesised from sine tones, so pbx ships no audio
//! file.
//!
//! Invariants: the loop is exactly [`LOOP_MS`] long at the requested rate, peaks at
//! [`PEAK_DBFS`], and starts and ends at silence (every note has a soft attack and a release
//! that ends inside the loop; the pad swells in and out with each chord), so playing it in a
//! loop never clicks. Every partial stays below 0.45 × the rate, so nothing aliases.
//!
//! The music: a I-vi-IV-V progression in C (C, Am, F, G), two seconds a chord, arpeggiated in
//! eighth notes (250 ms) in the telephone band (349-1047 Hz), each note a sine with two soft
//! harmonics and an exponential decay, over a quiet sustained pad of root and fifth.

use std::f64::consts::PI;

use crate::pcm::Pcm;

/// Length of the loop.
pub const LOOP_MS: u32 = 8000;
/// The loop's peak level.
pub const PEAK_DBFS: f64 = -12.0;

/// The arpeggio notes (Hz) of each chord, low to high.
const CHORDS: [[f64; 4]; 4] = [
    [523.25, 659.25, 783.99, 1046.50], // C
    [440.00, 523.25, 659.25, 880.00],  // Am
    [349.23, 440.00, 523.25, 698.46],  // F
    [392.00, 493.88, 587.33, 783.99],  // G
];
/// Pad notes (root and fifth, an octave below the arpeggio).
const PADS: [[f64; 2]; 4] = [
    [261.63, 392.00],
    [220.00, 329.63],
    [174.61, 261.63],
    [196.00, 293.66],
];
/// Which chord tone each eighth note plays.
const PATTERN: [usize; 8] = [0, 1, 2, 3, 2, 1, 2, 1];
const NOTE_S: f64 = 0.25;
const CHORD_S: f64 = 2.0;
const RING_S: f64 = 0.9;
const ATTACK_S: f64 = 0.015;
const RELEASE_S: f64 = 0.06;
const DECAY_S: f64 = 0.32;
/// (harmonic, relative amplitude) of each note.
const PARTIALS: [(f64, f64); 3] = [(1.0, 1.0), (2.0, 0.22), (3.0, 0.06)];
const PAD_LEVEL: f64 = 0.22;

/// The built-in music on hold at `rate` Hz (8000 for the call graph): an 8 s loop, -12 dBFS
/// peak, silent at both ends. A zero rate gives an empty clip.
pub fn default_music(rate: u32) -> Pcm {
    if rate == 0 {
        return Pcm::new(0, Vec::new());
    }
    let fs = f64::from(rate);
    let len = (u64::from(rate) * u64::from(LOOP_MS) / 1000) as usize;
    let mut acc = vec![0.0f64; len];
    let nyquist_guard = 0.45 * fs;

    for (c, (chord, pad)) in CHORDS.iter().zip(PADS).enumerate() {
        let chord_start = c as f64 * CHORD_S;
        // Arpeggio.
        for (k, &tone) in PATTERN.iter().enumerate() {
            let start = chord_start + k as f64 * NOTE_S;
            let freq = chord[tone];
            let first = (start * fs).round() as usize;
            let ring = (RING_S * fs) as usize;
            let last = (first + ring).min(len);
            let dur = (last - first) as f64 / fs;
            for (i, a) in acc[first..last].iter_mut().enumerate() {
                let t = i as f64 / fs;
                let env = envelope(t, dur);
                let mut v = 0.0;
                for (h, amp) in PARTIALS {
                    if freq * h < nyquist_guard {
                        v += amp * (2.0 * PI * freq * h * t).sin();
                    }
                }
                *a += env * v;
            }
        }
        // Pad: a sin² swell over the whole chord, so it starts and ends at zero.
        let first = (chord_start * fs).round() as usize;
        let last = (((chord_start + CHORD_S) * fs).round() as usize).min(len);
        let dur = (last - first) as f64 / fs;
        for (i, a) in acc[first..last].iter_mut().enumerate() {
            let t = i as f64 / fs;
            let swell = (PI * t / dur).sin().powi(2);
            let v: f64 = pad
                .iter()
                .filter(|&&f| f < nyquist_guard)
                .map(|&f| (2.0 * PI * f * t).sin())
                .sum();
            *a += PAD_LEVEL * swell * v;
        }
    }

    let peak = acc.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
    let target = f64::from(i16::MAX) * 10f64.powf(PEAK_DBFS / 20.0);
    let scale = if peak > 0.0 { target / peak } else { 0.0 };
    let samples = acc.iter().map(|&x| (x * scale).round() as i16).collect();
    Pcm::new(rate, samples)
}

/// A note's envelope at `t` seconds of a note lasting `dur`: a raised-cosine attack, an
/// exponential decay and a raised-cosine release that reaches zero at `dur`.
fn envelope(t: f64, dur: f64) -> f64 {
    let attack = if t < ATTACK_S {
        0.5 - 0.5 * (PI * t / ATTACK_S).cos()
    } else {
        1.0
    };
    let release_start = (dur - RELEASE_S).max(0.0);
    let release = if t > release_start {
        let r = ((t - release_start) / RELEASE_S).min(1.0);
        0.5 + 0.5 * (PI * r).cos()
    } else {
        1.0
    };
    attack * release * (-t / DECAY_S).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eight_second_loop_at_minus_12_dbfs() {
        let m = default_music(8000);
        assert_eq!(m.rate, 8000);
        assert_eq!(m.duration_ms(), u64::from(LOOP_MS));
        let target = (32767.0 * 10f64.powf(-0.6)).round() as i32;
        assert!(
            (i32::from(m.peak()) - target).abs() <= 1,
            "peak {}",
            m.peak()
        );
        // Non-silent throughout: every 250 ms window has sound.
        for w in m.samples.chunks(2000) {
            let rms =
                (w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
            assert!(rms > 300.0, "quiet window: {rms}");
        }
    }

    #[test]
    fn loops_without_a_click() {
        let m = default_music(8000);
        let (first, last) = (m.samples[0], m.samples[m.samples.len() - 1]);
        assert!(first.abs() <= 2, "first {first}");
        assert!(last.abs() <= 40, "last {last}");
        // Around the seam the signal is quiet and continuous.
        let seam: Vec<i16> = m.samples[m.samples.len() - 8..]
            .iter()
            .chain(&m.samples[..8])
            .copied()
            .collect();
        for pair in seam.windows(2) {
            assert!((i32::from(pair[0]) - i32::from(pair[1])).abs() < 200);
        }
    }

    #[test]
    fn other_rates_and_zero() {
        let m = default_music(16000);
        assert_eq!(m.samples.len(), 128_000);
        assert!(m.peak() > 8000);
        assert!(default_music(0).is_empty());
    }
}
