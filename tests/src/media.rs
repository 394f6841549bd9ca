//! Audio files the peers send: silence, tones and speech (espeak-ng) as 16-bit mono WAVs, padded
//! so that baresip's aufile source outlasts the call (it ends the call at end of file).
//!
//! Invariant: every file written here is 16-bit signed mono at the requested rate, the format
//! aufile needs for `ausrc_srate`/`ausrc_channels` 1.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use crate::audio::Audio;
use crate::error::{HarnessError, Result};
use crate::paths::program;

/// Writes `samples` (mono, 16-bit) at `rate` Hz.
pub fn write_samples(path: &Path, rate: u32, samples: &[i16]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let wav_err = |source| HarnessError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(wav_err)?;
    for &s in samples {
        writer.write_sample(s).map_err(wav_err)?;
    }
    writer.finalize().map_err(wav_err)
}

fn sample_count(rate: u32, duration: Duration) -> usize {
    (f64::from(rate) * duration.as_secs_f64()).round() as usize
}

/// Writes `duration` of digital silence.
pub fn write_silence(path: &Path, rate: u32, duration: Duration) -> Result<()> {
    write_samples(path, rate, &vec![0; sample_count(rate, duration)])
}

/// A sine of `hz` at `amplitude` (0..1 of full scale) lasting `duration`.
pub fn tone_samples(rate: u32, hz: f64, duration: Duration, amplitude: f64) -> Vec<i16> {
    let n = sample_count(rate, duration);
    let step = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    (0..n)
        .map(|i| (amplitude.clamp(0.0, 1.0) * 32767.0 * (step * i as f64).sin()) as i16)
        .collect()
}

/// Writes a sine of `hz` at `amplitude` (0..1) lasting `duration`.
pub fn write_tone(
    path: &Path,
    rate: u32,
    hz: f64,
    duration: Duration,
    amplitude: f64,
) -> Result<()> {
    write_samples(path, rate, &tone_samples(rate, hz, duration, amplitude))
}

/// Speaks `text` with espeak-ng (en-us, 150 wpm) and returns it resampled to `rate`.
pub async fn speech_samples(text: &str, rate: u32) -> Result<Vec<i16>> {
    let espeak = program("espeak-ng")?;
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("create temp dir", e))?;
    let raw = dir.path().join("speech.wav");
    let output = Command::new(espeak)
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .map_err(|_| HarnessError::timeout("espeak-ng", Duration::from_secs(30)))?
        .map_err(|e| HarnessError::io("run espeak-ng", e))?;
    if !output.status.success() {
        return Err(HarnessError::protocol(
            "espeak-ng",
            format!(
                "exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
        ));
    }
    let audio = Audio::read(&raw)?.resampled(rate);
    Ok(audio.to_i16())
}

/// Writes `text` spoken by espeak-ng at `rate`, followed by `pad` of silence.
pub async fn write_speech(path: &Path, text: &str, rate: u32, pad: Duration) -> Result<()> {
    let mut samples = speech_samples(text, rate).await?;
    samples.extend(std::iter::repeat_n(0, sample_count(rate, pad)));
    write_samples(path, rate, &samples)
}
