//! Audio checks on recordings: level in dBFS, "is this speech", and the dominant frequency of
//! a tone (a Hann-windowed DFT on a 10 Hz grid, like `/work/shared/peers/dominant_freq.py`).
//!
//! Invariants: every input is reduced to mono f32 in -1..1 at its own rate; silence has a level
//! of [`SILENCE_DBFS`] rather than -inf, so comparisons never see NaN.

use std::path::Path;
use std::time::Duration;

use crate::error::{HarnessError, Result};

/// The level reported for digital silence.
pub const SILENCE_DBFS: f64 = -120.0;

/// A 20 ms frame counts as "not silent" above this level.
pub const ACTIVE_FRAME_DBFS: f64 = -50.0;

/// Mono audio at some rate.
#[derive(Debug, Clone)]
pub struct Audio {
    /// Samples per second.
    pub rate: u32,
    /// Mono samples in -1..1.
    pub samples: Vec<f32>,
}

/// What [`Audio::speech_report`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechReport {
    /// The length of the audio.
    pub duration: Duration,
    /// RMS over the whole audio.
    pub rms_dbfs: f64,
    /// How much of it is above [`ACTIVE_FRAME_DBFS`] (20 ms frames).
    pub active: Duration,
    /// RMS over the active frames only.
    pub active_rms_dbfs: f64,
    /// Share of the active energy between 250 and 3400 Hz.
    pub band_ratio: f64,
    /// Mean share of each active frame's energy in its strongest spectral peak (±2 bins):
    /// near 1 for a pure tone, well below for speech.
    pub tonality: f64,
    /// Spread (standard deviation, Hz) of the strongest frequency across active frames:
    /// near 0 for a beep, large for speech.
    pub peak_spread_hz: f64,
}

impl SpeechReport {
    /// Speech, by the harness's rule: at least 400 ms of non-silent audio whose RMS is above
    /// -45 dBFS, mostly in the speech band, and neither a steady tone nor a pair of tones
    /// (DTMF): no single spectral peak dominates and the strongest frequency moves.
    pub fn is_speech(&self) -> bool {
        self.active >= Duration::from_millis(400)
            && self.active_rms_dbfs > -45.0
            && self.band_ratio > 0.5
            && self.tonality < 0.6
            && self.peak_spread_hz > 40.0
    }
}

impl std::fmt::Display for SpeechReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "duration {:.2}s, RMS {:.1} dBFS, active {:.2}s at {:.1} dBFS, speech band {:.0}%, tonality {:.2}, peak spread {:.0} Hz",
            self.duration.as_secs_f64(),
            self.rms_dbfs,
            self.active.as_secs_f64(),
            self.active_rms_dbfs,
            self.band_ratio * 100.0,
            self.tonality,
            self.peak_spread_hz
        )
    }
}

impl Audio {
    /// Reads a WAV (integer or float samples, any channel count; channels are averaged).
    pub fn read(path: &Path) -> Result<Audio> {
        let wav_err = |source| HarnessError::Wav {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = hound::WavReader::open(path).map_err(wav_err)?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader
                .samples::<f32>()
                .collect::<std::result::Result<_, _>>()
                .map_err(wav_err)?,
            hound::SampleFormat::Int => {
                let scale = 2f32.powi(i32::from(spec.bits_per_sample.max(1)) - 1);
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| v as f32 / scale))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(wav_err)?
            }
        };
        let samples = interleaved
            .chunks(channels)
            .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
            .collect();
        Ok(Audio {
            rate: spec.sample_rate,
            samples,
        })
    }

    /// Audio from 16-bit samples.
    pub fn from_i16(rate: u32, samples: &[i16]) -> Audio {
        Audio {
            rate,
            samples: samples.iter().map(|&s| f32::from(s) / 32768.0).collect(),
        }
    }

    /// The samples as 16-bit integers (clipped).
    pub fn to_i16(&self) -> Vec<i16> {
        self.samples
            .iter()
            .map(|&s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect()
    }

    /// The length.
    pub fn duration(&self) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate))
    }

    fn index(&self, at: Duration) -> usize {
        ((at.as_secs_f64() * f64::from(self.rate)) as usize).min(self.samples.len())
    }

    /// The part from `start` lasting `len` (clipped to the audio).
    pub fn slice(&self, start: Duration, len: Duration) -> Audio {
        let a = self.index(start);
        let b = self.index(start + len).max(a);
        Audio {
            rate: self.rate,
            samples: self.samples[a..b].to_vec(),
        }
    }

    /// The part from `start` to the end.
    pub fn from(&self, start: Duration) -> Audio {
        let a = self.index(start);
        Audio {
            rate: self.rate,
            samples: self.samples[a..].to_vec(),
        }
    }

    /// Linear-interpolation resampling (good enough for test prompts; no anti-aliasing).
    pub fn resampled(&self, rate: u32) -> Audio {
        if rate == self.rate || self.samples.is_empty() || self.rate == 0 {
            return Audio {
                rate,
                samples: self.samples.clone(),
            };
        }
        let ratio = f64::from(self.rate) / f64::from(rate);
        let n = (self.samples.len() as f64 / ratio) as usize;
        let last = self.samples.len() - 1;
        let samples = (0..n)
            .map(|i| {
                let pos = i as f64 * ratio;
                let k = (pos as usize).min(last);
                let frac = (pos - k as f64) as f32;
                let next = self.samples[(k + 1).min(last)];
                self.samples[k] * (1.0 - frac) + next * frac
            })
            .collect();
        Audio { rate, samples }
    }

    /// RMS level in dBFS (a full-scale square wave is 0 dBFS).
    pub fn rms_dbfs(&self) -> f64 {
        rms_dbfs(&self.samples)
    }

    /// The level of each 20 ms frame in dBFS.
    pub fn frame_levels(&self) -> Vec<f64> {
        self.samples
            .chunks(self.frame_len())
            .map(rms_dbfs)
            .collect()
    }

    fn frame_len(&self) -> usize {
        (self.rate as usize / 50).max(1)
    }

    /// How much of the audio is above [`ACTIVE_FRAME_DBFS`].
    pub fn active_duration(&self) -> Duration {
        let active = self
            .frame_levels()
            .iter()
            .filter(|&&l| l > ACTIVE_FRAME_DBFS)
            .count();
        Duration::from_millis(20 * active as u64)
    }

    /// Speech measures: level, active time, band share, tonality (see [`SpeechReport`]).
    pub fn speech_report(&self) -> SpeechReport {
        let frame = self.frame_len();
        let active: Vec<&[f32]> = self
            .samples
            .chunks(frame)
            .filter(|c| c.len() == frame && rms_dbfs(c) > ACTIVE_FRAME_DBFS)
            .collect();
        let active_samples: Vec<f32> = active.iter().flat_map(|c| c.iter().copied()).collect();
        let band_ratio = if active_samples.is_empty() {
            0.0
        } else {
            band_energy_ratio(&active_samples, self.rate, 250.0, 3400.0)
        };
        let (tonality, peak_spread_hz) = self.tonality(&active_samples);
        SpeechReport {
            duration: self.duration(),
            rms_dbfs: self.rms_dbfs(),
            active: Duration::from_millis(20 * active.len() as u64),
            active_rms_dbfs: rms_dbfs(&active_samples),
            band_ratio,
            tonality,
            peak_spread_hz,
        }
    }

    /// Mean peak share and peak-frequency spread over ~64 ms windows of `active` samples.
    fn tonality(&self, active: &[f32]) -> (f64, f64) {
        // A power of two near 64 ms: 512 at 8 kHz, 4096 at 48 kHz.
        let mut n = 1usize;
        while n * 16 < self.rate as usize {
            n *= 2;
        }
        let window = hann(n);
        let bin_hz = f64::from(self.rate) / n as f64;
        let mut shares = Vec::new();
        let mut peaks = Vec::new();
        for chunk in active.chunks(n).filter(|c| c.len() == n) {
            let mut re: Vec<f64> = chunk
                .iter()
                .zip(&window)
                .map(|(&s, w)| f64::from(s) * w)
                .collect();
            let mut im = vec![0.0; n];
            fft(&mut re, &mut im);
            let power: Vec<f64> = (0..n / 2).map(|k| re[k] * re[k] + im[k] * im[k]).collect();
            // Ignore DC and anything below 80 Hz.
            let lo = ((80.0 / bin_hz) as usize).max(1);
            let total: f64 = power[lo..].iter().sum();
            if total <= 0.0 {
                continue;
            }
            let (peak, _) = power
                .iter()
                .enumerate()
                .skip(lo)
                .fold(
                    (lo, 0.0),
                    |best, (k, &p)| if p > best.1 { (k, p) } else { best },
                );
            let near: f64 = power[peak.saturating_sub(2).max(lo)..(peak + 3).min(power.len())]
                .iter()
                .sum();
            shares.push(near / total);
            peaks.push(peak as f64 * bin_hz);
        }
        if shares.is_empty() {
            return (0.0, 0.0);
        }
        let mean_share = shares.iter().sum::<f64>() / shares.len() as f64;
        let mean_peak = peaks.iter().sum::<f64>() / peaks.len() as f64;
        let var = peaks.iter().map(|p| (p - mean_peak).powi(2)).sum::<f64>() / peaks.len() as f64;
        (mean_share, var.sqrt())
    }

    /// The strongest frequency (Hz, 100..3000 on a 10 Hz grid) in the part from `start`
    /// lasting `len`, summed over Hann-windowed 0.1 s segments; 0 when there is no audio.
    pub fn dominant_freq(&self, start: Duration, len: Duration) -> u32 {
        let part = self.slice(start, len);
        let seg = (self.rate as usize / 10).max(1);
        let window = hann(seg);
        let segments: Vec<Vec<f64>> = part
            .samples
            .chunks(seg)
            .filter(|c| c.len() == seg)
            .map(|c| {
                c.iter()
                    .zip(&window)
                    .map(|(&s, w)| f64::from(s) * w)
                    .collect()
            })
            .collect();
        if segments.is_empty() {
            return 0;
        }
        let mut best = (0u32, 0.0f64);
        for hz in (100..3000).step_by(10) {
            let magnitude: f64 = segments
                .iter()
                .map(|s| goertzel_power(s, self.rate, f64::from(hz)).sqrt())
                .sum();
            if magnitude > best.1 {
                best = (hz, magnitude);
            }
        }
        best.0
    }

    /// The power at `hz` over the whole audio (Goertzel), normalised by length.
    pub fn power_at(&self, hz: f64) -> f64 {
        let samples: Vec<f64> = self.samples.iter().map(|&s| f64::from(s)).collect();
        let n = samples.len().max(1) as f64;
        goertzel_power(&samples, self.rate, hz) / (n * n)
    }
}

/// A tone counts as heard at or above this level (dBFS, RMS of the tone's component alone).
///
/// Why: the peers' ausine tones arrive at about -10 dBFS through G.711 (measured by the
/// harness self-test); a conference mixer that scales N-1 sums down to stay clear of clipping
/// (at most 1/N for 15 parties, about -24 dB) still leaves them above -40 dBFS.
pub const HEARD_DBFS: f64 = -40.0;

/// A tone counts as not heard at or below this level (dBFS).
///
/// Why: G.711's quantisation noise is about 38 dB below the signal spread over 4 kHz; in the
/// ~6 Hz noise bandwidth of a 250 ms Hann window that is more than 60 dB below the loudest
/// tone, i.e. under -70 dBFS, so -55 dBFS leaves margin for noise, mixing and resampling
/// products while staying 15 dB clear of [`HEARD_DBFS`]. The test tones are chosen off the
/// equal-tempered notes (music on hold) and off each other's 2nd and 3rd order
/// intermodulation products (a clipping mixer), see [`crate::party::TONES`].
pub const NOT_HEARD_DBFS: f64 = -55.0;

/// The level of each probed tone in a stretch of audio, in dBFS.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneReport {
    /// The overall RMS of the analysed audio.
    pub rms_dbfs: f64,
    /// How long the analysed audio is.
    pub duration: Duration,
    /// (frequency in Hz, level of that tone's component in dBFS), in probe order.
    pub levels: Vec<(u32, f64)>,
}

impl ToneReport {
    /// The level of `hz` ([`SILENCE_DBFS`] when it was not probed).
    pub fn level(&self, hz: u32) -> f64 {
        self.levels
            .iter()
            .find(|(f, _)| *f == hz)
            .map_or(SILENCE_DBFS, |(_, l)| *l)
    }

    /// Whether `hz` is at or above [`HEARD_DBFS`].
    pub fn hears(&self, hz: u32) -> bool {
        self.level(hz) >= HEARD_DBFS
    }

    /// Whether `hz` is at or below [`NOT_HEARD_DBFS`].
    pub fn silent_at(&self, hz: u32) -> bool {
        self.level(hz) <= NOT_HEARD_DBFS
    }
}

impl std::fmt::Display for ToneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}s at {:.1} dBFS; tones:",
            self.duration.as_secs_f64(),
            self.rms_dbfs
        )?;
        for (hz, level) in &self.levels {
            write!(f, " {hz} Hz {level:.1} dBFS,")?;
        }
        Ok(())
    }
}

/// Where the steady part of a call recording starts: after set-up, jitter-buffer fill and
/// any mixer ramp.
pub const STEADY_SKIP_START: Duration = Duration::from_millis(1500);

/// How much of the end of a call recording the steady part leaves out (hang-up).
pub const STEADY_SKIP_END: Duration = Duration::from_millis(500);

impl Audio {
    /// Reads a WAV and returns each channel separately (the recording API's stereo files:
    /// left is the first party, right the others).
    pub fn read_channels(path: &Path) -> Result<Vec<Audio>> {
        let wav_err = |source| HarnessError::Wav {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path)
            .map_err(|e| HarnessError::io(format!("read {}", path.display()), e))?;
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(wav_err)?;
        Self::channels_of(reader).map_err(wav_err)
    }

    /// Reads WAV bytes (a download) as one [`Audio`] per channel.
    pub fn channels_from_bytes(bytes: &[u8]) -> Result<Vec<Audio>> {
        let wav_err = |source| HarnessError::Wav {
            path: "<downloaded WAV>".into(),
            source,
        };
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(wav_err)?;
        Self::channels_of(reader).map_err(wav_err)
    }

    fn channels_of<R: std::io::Read>(
        mut reader: hound::WavReader<R>,
    ) -> std::result::Result<Vec<Audio>, hound::Error> {
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader
                .samples::<f32>()
                .collect::<std::result::Result<_, _>>()?,
            hound::SampleFormat::Int => {
                let scale = 2f32.powi(i32::from(spec.bits_per_sample.max(1)) - 1);
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| v as f32 / scale))
                    .collect::<std::result::Result<_, _>>()?
            }
        };
        Ok((0..channels)
            .map(|c| Audio {
                rate: spec.sample_rate,
                samples: interleaved
                    .iter()
                    .skip(c)
                    .step_by(channels)
                    .copied()
                    .collect(),
            })
            .collect())
    }

    /// The steady part of a call recording: without the first [`STEADY_SKIP_START`] and the
    /// last [`STEADY_SKIP_END`].
    pub fn steady(&self) -> Audio {
        let len = self
            .duration()
            .saturating_sub(STEADY_SKIP_START + STEADY_SKIP_END);
        self.slice(STEADY_SKIP_START, len)
    }

    /// The level in dBFS of the sine component at `hz` (±2 Hz): the RMS the audio would have
    /// if it held only that tone. Measured with Goertzel over 250 ms Hann-windowed segments
    /// (about 6 Hz noise bandwidth), taking the median power over the segments, so tones 40 Hz
    /// apart are told apart, broadband noise barely counts, and the odd click (a jitter buffer
    /// dropping or repeating a frame splashes energy across the band) cannot make a tone that
    /// is absent look present.
    pub fn tone_level(&self, hz: u32) -> f64 {
        let seg = (self.rate as usize / 4).max(1);
        let window = hann(seg);
        let segments: Vec<Vec<f64>> = self
            .samples
            .chunks(seg)
            .filter(|c| c.len() == seg)
            .map(|c| {
                c.iter()
                    .zip(&window)
                    .map(|(&s, w)| f64::from(s) * w)
                    .collect()
            })
            .collect();
        if segments.is_empty() {
            return SILENCE_DBFS;
        }
        let best = [-2.0, -1.0, 0.0, 1.0, 2.0]
            .iter()
            .map(|d| {
                let mut powers: Vec<f64> = segments
                    .iter()
                    .map(|s| goertzel_power(s, self.rate, f64::from(hz) + d))
                    .collect();
                powers.sort_by(f64::total_cmp);
                powers[powers.len() / 2]
            })
            .fold(0.0f64, f64::max);
        // A Hann-windowed sine of amplitude A gives |X| = A·N/4 at its frequency.
        let amplitude = 4.0 * best.sqrt() / seg as f64;
        let rms = amplitude / std::f64::consts::SQRT_2;
        if rms <= 0.0 {
            return SILENCE_DBFS;
        }
        (20.0 * rms.log10()).max(SILENCE_DBFS)
    }

    /// The level of each of `freqs` in this audio (see [`Audio::tone_level`]).
    pub fn tone_report(&self, freqs: &[u32]) -> ToneReport {
        ToneReport {
            rms_dbfs: self.rms_dbfs(),
            duration: self.duration(),
            levels: freqs.iter().map(|&hz| (hz, self.tone_level(hz))).collect(),
        }
    }

    /// Panics with the tone report unless `hz` is heard ([`HEARD_DBFS`]); `what` names the
    /// recording in the message.
    pub fn assert_hears(&self, what: &str, hz: u32) -> ToneReport {
        let report = self.tone_report(&crate::party::probe_set(hz));
        assert!(
            report.hears(hz),
            "{what} should hear {hz} Hz (>= {HEARD_DBFS} dBFS) but does not: {report}"
        );
        report
    }

    /// Panics with the tone report unless `hz` is absent ([`NOT_HEARD_DBFS`]).
    pub fn assert_not_hears(&self, what: &str, hz: u32) -> ToneReport {
        let report = self.tone_report(&crate::party::probe_set(hz));
        assert!(
            report.silent_at(hz),
            "{what} should not hear {hz} Hz (<= {NOT_HEARD_DBFS} dBFS) but does: {report}"
        );
        report
    }
}

/// The tone levels of the steady part of the WAV at `path`, for each of `freqs`.
pub fn tone_report(path: &Path, freqs: &[u32]) -> Result<ToneReport> {
    Ok(Audio::read(path)?.steady().tone_report(freqs))
}

/// Panics unless the steady part of the WAV at `path` holds `hz` (see [`HEARD_DBFS`]).
pub fn assert_hears(path: &Path, hz: u32) -> Result<ToneReport> {
    let audio = Audio::read(path)?.steady();
    Ok(audio.assert_hears(&path.display().to_string(), hz))
}

/// Panics unless the steady part of the WAV at `path` lacks `hz` (see [`NOT_HEARD_DBFS`]).
pub fn assert_not_hears(path: &Path, hz: u32) -> Result<ToneReport> {
    let audio = Audio::read(path)?.steady();
    Ok(audio.assert_not_hears(&path.display().to_string(), hz))
}

/// RMS level of samples in dBFS, [`SILENCE_DBFS`] for silence or no samples.
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    let mean_sq = samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64;
    if mean_sq <= 0.0 {
        return SILENCE_DBFS;
    }
    (10.0 * mean_sq.log10()).max(SILENCE_DBFS)
}

/// The squared magnitude of the DFT of `samples` at `hz` (Goertzel's recurrence).
pub fn goertzel_power(samples: &[f64], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

fn hann(n: usize) -> Vec<f64> {
    if n < 2 {
        return vec![1.0; n];
    }
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos())
        .collect()
}

/// Share of energy between `lo` and `hi` Hz, over ~64 ms FFT windows.
fn band_energy_ratio(samples: &[f32], rate: u32, lo: f64, hi: f64) -> f64 {
    let mut n = 1usize;
    while n * 16 < rate as usize {
        n *= 2;
    }
    let bin_hz = f64::from(rate) / n as f64;
    let (mut band, mut total) = (0.0, 0.0);
    for chunk in samples.chunks(n) {
        let mut re: Vec<f64> = chunk.iter().map(|&s| f64::from(s)).collect();
        re.resize(n, 0.0);
        let mut im = vec![0.0; n];
        fft(&mut re, &mut im);
        for k in 1..n / 2 {
            let p = re[k] * re[k] + im[k] * im[k];
            let f = k as f64 * bin_hz;
            total += p;
            if (lo..=hi).contains(&f) {
                band += p;
            }
        }
    }
    if total > 0.0 { band / total } else { 0.0 }
}

/// In-place iterative radix-2 FFT; `re.len()` must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    if n < 2 || !n.is_power_of_two() || im.len() != n {
        return;
    }
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let angle = -2.0 * std::f64::consts::PI / len as f64;
        let (w_re, w_im) = (angle.cos(), angle.sin());
        for start in (0..n).step_by(len) {
            let (mut cur_re, mut cur_im) = (1.0f64, 0.0f64);
            for k in 0..len / 2 {
                let a = start + k;
                let b = a + len / 2;
                let t_re = re[b] * cur_re - im[b] * cur_im;
                let t_im = re[b] * cur_im + im[b] * cur_re;
                re[b] = re[a] - t_re;
                im[b] = im[a] - t_im;
                re[a] += t_re;
                im[a] += t_im;
                let next_re = cur_re * w_re - cur_im * w_im;
                cur_im = cur_re * w_im + cur_im * w_re;
                cur_re = next_re;
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::media::tone_samples;

    #[test]
    fn full_scale_sine_is_minus_three_dbfs() {
        let audio = Audio::from_i16(
            8000,
            &tone_samples(8000, 440.0, Duration::from_secs(1), 1.0),
        );
        assert!(
            (audio.rms_dbfs() + 3.01).abs() < 0.1,
            "{}",
            audio.rms_dbfs()
        );
    }

    #[test]
    fn silence_is_floor() {
        let audio = Audio::from_i16(8000, &[0; 8000]);
        assert_eq!(audio.rms_dbfs(), SILENCE_DBFS);
        assert!(!audio.speech_report().is_speech());
        assert_eq!(
            audio.dominant_freq(Duration::ZERO, Duration::from_secs(1)),
            0
        );
    }

    #[test]
    fn dominant_frequency_of_tones() {
        for (rate, hz) in [
            (8000, 440.0),
            (8000, 1000.0),
            (48000, 697.0),
            (16000, 2500.0),
        ] {
            let audio = Audio::from_i16(rate, &tone_samples(rate, hz, Duration::from_secs(2), 0.3));
            let found = audio.dominant_freq(Duration::from_millis(500), Duration::from_secs(1));
            assert!(
                (f64::from(found) - hz).abs() <= 10.0,
                "{hz} Hz at {rate}: {found}"
            );
        }
    }

    #[test]
    fn a_steady_tone_is_not_speech() {
        let audio = Audio::from_i16(
            8000,
            &tone_samples(8000, 440.0, Duration::from_secs(3), 0.3),
        );
        let report = audio.speech_report();
        assert!(!report.is_speech(), "{report}");
        assert!(report.tonality > 0.8, "{report}");
    }

    #[test]
    fn a_dtmf_pair_is_not_speech() {
        let low = tone_samples(8000, 770.0, Duration::from_secs(2), 0.2);
        let high = tone_samples(8000, 1336.0, Duration::from_secs(2), 0.2);
        let dtmf: Vec<i16> = low.iter().zip(&high).map(|(a, b)| a + b).collect();
        let report = Audio::from_i16(8000, &dtmf).speech_report();
        assert!(!report.is_speech(), "{report}");
    }

    #[test]
    fn goertzel_finds_the_tone() {
        let audio = Audio::from_i16(
            8000,
            &tone_samples(8000, 1000.0, Duration::from_secs(1), 0.5),
        );
        assert!(audio.power_at(1000.0) > 100.0 * audio.power_at(1500.0));
    }

    #[test]
    fn tone_levels_tell_close_tones_apart() {
        let a = tone_samples(8000, 960.0, Duration::from_secs(3), 0.3);
        let b = tone_samples(8000, 1017.0, Duration::from_secs(3), 0.03);
        let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let audio = Audio::from_i16(8000, &mix);
        let report = audio.tone_report(&[960, 1017, 605]);
        // 0.3 of full scale is -13.5 dBFS RMS; 0.03 is -33.5.
        assert!((report.level(960) + 13.5).abs() < 0.5, "{report}");
        assert!((report.level(1017) + 33.5).abs() < 0.5, "{report}");
        assert!(report.silent_at(605), "{report}");
        assert!(report.hears(960) && report.hears(1017), "{report}");
    }

    #[test]
    fn g711_noise_stays_below_the_not_heard_threshold() {
        // Quantise a loud tone to 8 bits of mantissa-like resolution: broadband noise.
        let tone = tone_samples(8000, 453.0, Duration::from_secs(3), 0.5);
        let noisy: Vec<i16> = tone.iter().map(|&s| (s / 256) * 256).collect();
        let report = Audio::from_i16(8000, &noisy).tone_report(&[453, 605, 960, 1017, 1281]);
        assert!(report.hears(453), "{report}");
        for hz in [605, 960, 1017, 1281] {
            assert!(report.silent_at(hz), "{report}");
        }
    }

    #[test]
    fn stereo_channels_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let left = tone_samples(8000, 453.0, Duration::from_secs(2), 0.3);
        let right = tone_samples(8000, 1281.0, Duration::from_secs(2), 0.3);
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for (l, r) in left.iter().zip(&right) {
            w.write_sample(*l).unwrap();
            w.write_sample(*r).unwrap();
        }
        w.finalize().unwrap();
        let ch = Audio::read_channels(&path).unwrap();
        assert_eq!(ch.len(), 2);
        ch[0].assert_hears("left", 453);
        ch[0].assert_not_hears("left", 1281);
        ch[1].assert_hears("right", 1281);
        ch[1].assert_not_hears("right", 453);
    }

    #[test]
    fn resampling_keeps_frequency_and_length() {
        let audio = Audio::from_i16(
            22050,
            &tone_samples(22050, 500.0, Duration::from_secs(2), 0.5),
        );
        let down = audio.resampled(8000);
        assert!((down.duration().as_secs_f64() - 2.0).abs() < 0.01);
        let f = down.dominant_freq(Duration::from_millis(200), Duration::from_secs(1));
        assert!((f64::from(f) - 500.0).abs() <= 10.0, "{f}");
    }
}
