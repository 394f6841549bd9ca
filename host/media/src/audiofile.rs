//! Decoding uploaded audio (WAV, MP3) into mono [`Pcm`], and validating uploads.
//!
//! Invariants: WAV goes through `hound` (integer PCM of 8/16/24/32 bits, 32-bit float); WAV
//! encodings hound refuses (G.711 µ-law/A-law, 64-bit float) fall back to symphonia's PCM
//! decoder; MP3 goes through symphonia. Any channel count is averaged down to mono. Decoding
//! stops as soon as the audio exceeds [`MAX_DURATION_MS`], so a hostile upload cannot make us
//! hold more than ten minutes of samples. Malformed input is an error, never a panic.

use std::io::Cursor;

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use thiserror::Error;

use crate::pcm::{Pcm, downmix_f32_into, f32_to_i16};
use crate::resample::{ResampleError, resample};

/// The longest audio we accept: ten minutes.
pub const MAX_DURATION_MS: u64 = 10 * 60 * 1000;

/// The most channels a file may have (they are averaged to mono).
pub const MAX_CHANNELS: u16 = 8;

/// A container/codec this module can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// RIFF WAVE.
    Wav,
    /// MPEG-1/2 Layer III.
    Mp3,
}

impl AudioFormat {
    /// The usual file extension, without a dot.
    pub const fn extension(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
        }
    }

    /// The media type to store and serve the file with.
    pub const fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Mp3 => "audio/mpeg",
        }
    }
}

impl std::fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AudioFormat::Wav => "WAV",
            AudioFormat::Mp3 => "MP3",
        })
    }
}

/// What an upload contains, as reported to the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioInfo {
    /// The container/codec.
    pub format: AudioFormat,
    /// The native sample rate in Hz.
    pub rate: u32,
    /// The native channel count.
    pub channels: u16,
    /// The length in milliseconds.
    pub duration_ms: u64,
}

/// Why audio bytes were refused. `UnknownFormat` and `UnsupportedSampleFormat` mean "we do not
/// handle this kind of file"; the others mean the file itself is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AudioError {
    /// No bytes at all.
    #[error("the file is empty")]
    Empty,
    /// Neither a WAV nor an MP3 file.
    #[error("not a WAV or MP3 file")]
    UnknownFormat,
    /// A WAV/MP3 whose encoding we cannot decode.
    #[error("unsupported sample format: {0}")]
    UnsupportedSampleFormat(String),
    /// More channels than [`MAX_CHANNELS`].
    #[error("unsupported channel count {0} (at most {MAX_CHANNELS})")]
    UnsupportedChannels(u16),
    /// The file decodes to no samples.
    #[error("the file contains no audio")]
    NoAudio,
    /// Longer than [`MAX_DURATION_MS`].
    #[error("the audio is longer than {} minutes", MAX_DURATION_MS / 60_000)]
    TooLong,
    /// The file is damaged or not what its header says.
    #[error("malformed {format} file: {reason}")]
    Malformed {
        /// The detected format.
        format: AudioFormat,
        /// What was wrong.
        reason: String,
    },
    /// The decoded audio could not be resampled.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// Detects the format from the first bytes.
pub fn detect(bytes: &[u8]) -> Option<AudioFormat> {
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        return Some(AudioFormat::Wav);
    }
    let body = skip_id3v2(bytes);
    if body.len() < bytes.len() || is_mpeg_layer3_sync(body) {
        return Some(AudioFormat::Mp3);
    }
    None
}

/// Validates an upload by decoding it completely, and describes it.
pub fn probe(bytes: &[u8]) -> Result<AudioInfo, AudioError> {
    decode_with_info(bytes).map(|(info, _)| info)
}

/// Decodes to mono at the file's native rate.
pub fn decode(bytes: &[u8]) -> Result<Pcm, AudioError> {
    decode_with_info(bytes).map(|(_, pcm)| pcm)
}

/// Decodes to mono at `rate` Hz (the rate of the call's media graph).
pub fn decode_at(bytes: &[u8], rate: u32) -> Result<Pcm, AudioError> {
    let pcm = decode(bytes)?;
    Ok(resample(&pcm, rate)?)
}

/// Decodes to mono at the native rate and describes the file.
pub fn decode_with_info(bytes: &[u8]) -> Result<(AudioInfo, Pcm), AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    let format = detect(bytes).ok_or(AudioError::UnknownFormat)?;
    let (info, pcm) = match format {
        AudioFormat::Wav => match decode_wav_hound(bytes)? {
            Some(decoded) => decoded,
            None => decode_symphonia(bytes, AudioFormat::Wav)?,
        },
        AudioFormat::Mp3 => decode_symphonia(skip_id3v2(bytes), AudioFormat::Mp3)?,
    };
    if pcm.samples.is_empty() {
        return Err(AudioError::NoAudio);
    }
    Ok((info, pcm))
}

/// The most mono samples ten minutes at `rate` may hold.
fn max_samples(rate: u32) -> usize {
    (u64::from(rate) * MAX_DURATION_MS / 1000) as usize
}

fn info(format: AudioFormat, rate: u32, channels: u16, samples: usize) -> AudioInfo {
    AudioInfo {
        format,
        rate,
        channels,
        duration_ms: if rate == 0 {
            0
        } else {
            samples as u64 * 1000 / u64::from(rate)
        },
    }
}

/// Decodes with hound; `Ok(None)` when hound does not support the encoding (the caller then
/// tries symphonia).
fn decode_wav_hound(bytes: &[u8]) -> Result<Option<(AudioInfo, Pcm)>, AudioError> {
    let malformed = |reason: String| AudioError::Malformed {
        format: AudioFormat::Wav,
        reason,
    };
    let mut reader = match hound::WavReader::new(Cursor::new(bytes)) {
        Ok(r) => r,
        Err(hound::Error::Unsupported) => return Ok(None),
        Err(e) => return Err(malformed(e.to_string())),
    };
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(malformed("zero channels or sample rate".into()));
    }
    if spec.channels > MAX_CHANNELS {
        return Err(AudioError::UnsupportedChannels(spec.channels));
    }
    let channels = usize::from(spec.channels);
    let limit = max_samples(spec.sample_rate);
    // The header's length, bounded by what the bytes can hold (streamed WAVs such as
    // espeak-ng's claim a data chunk of nearly 2 GiB).
    let bytes_per_frame = usize::from(spec.bits_per_sample).div_ceil(8).max(1) * channels;
    let frames = (reader.duration() as usize).min(bytes.len() / bytes_per_frame);
    if frames > limit {
        return Err(AudioError::TooLong);
    }
    let mut mono: Vec<i16> = Vec::with_capacity(frames);
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let mut acc: i64 = 0;
            let mut n = 0usize;
            for s in reader.samples::<i32>() {
                let Some(s) = wav_sample(s)? else { break };
                let s16 = if bits > 16 {
                    i64::from(s >> (bits - 16))
                } else {
                    i64::from(s) << (16 - bits)
                };
                acc += s16;
                n += 1;
                if n == channels {
                    mono.push((acc / channels as i64).clamp(-32768, 32767) as i16);
                    acc = 0;
                    n = 0;
                }
            }
        }
        (hound::SampleFormat::Float, 32) => {
            let mut acc = 0.0f32;
            let mut n = 0usize;
            for s in reader.samples::<f32>() {
                let Some(s) = wav_sample(s)? else { break };
                acc += if s.is_finite() { s } else { 0.0 };
                n += 1;
                if n == channels {
                    mono.push(f32_to_i16(acc / channels as f32));
                    acc = 0.0;
                    n = 0;
                }
            }
        }
        _ => return Ok(None),
    }
    let info = info(
        AudioFormat::Wav,
        spec.sample_rate,
        spec.channels,
        mono.len(),
    );
    Ok(Some((info, Pcm::new(spec.sample_rate, mono))))
}

/// A sample, `None` at a truncated end of data (a header may claim more than the file holds,
/// as streamed WAVs such as espeak-ng's do; the bytes are in memory, so an I/O error can only
/// mean that they ran out), or an error for damaged data.
fn wav_sample<S>(s: hound::Result<S>) -> Result<Option<S>, AudioError> {
    match s {
        Ok(s) => Ok(Some(s)),
        Err(hound::Error::IoError(_)) => Ok(None),
        Err(e) => Err(AudioError::Malformed {
            format: AudioFormat::Wav,
            reason: e.to_string(),
        }),
    }
}

fn symphonia_error(format: AudioFormat, e: SymError) -> AudioError {
    match e {
        SymError::Unsupported(what) => AudioError::UnsupportedSampleFormat(what.to_string()),
        other => AudioError::Malformed {
            format,
            reason: other.to_string(),
        },
    }
}

fn decode_symphonia(bytes: &[u8], format: AudioFormat) -> Result<(AudioInfo, Pcm), AudioError> {
    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(bytes)),
        MediaSourceStreamOptions::default(),
    );
    let mut hint = Hint::new();
    hint.with_extension(format.extension());
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| symphonia_error(format, e))?;
    let (track_id, params) = {
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or(AudioError::NoAudio)?;
        match &track.codec_params {
            Some(CodecParameters::Audio(p)) => (track.id, p.clone()),
            _ => return Err(AudioError::NoAudio),
        }
    };
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| symphonia_error(format, e))?;

    let mut rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count());
    let mut mono: Vec<i16> = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
    let mut bad_packets = 0usize;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A truncated last frame or trailing garbage ends the stream.
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(symphonia_error(format, e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            // RFC-style robustness: skip a damaged frame, keep the rest.
            Err(SymError::DecodeError(reason)) => {
                bad_packets += 1;
                tracing::debug!(%format, reason, "skipping undecodable audio packet");
                continue;
            }
            Err(e) => return Err(symphonia_error(format, e)),
        };
        let spec = buf.spec();
        rate = spec.rate();
        channels = spec.channels().count();
        if channels == 0 || channels > usize::from(MAX_CHANNELS) {
            return Err(AudioError::UnsupportedChannels(
                u16::try_from(channels).unwrap_or(u16::MAX),
            ));
        }
        buf.copy_to_vec_interleaved::<f32>(&mut scratch);
        downmix_f32_into(&scratch, channels, &mut mono);
        if mono.len() > max_samples(rate) {
            return Err(AudioError::TooLong);
        }
    }
    if mono.is_empty() && bad_packets > 0 {
        return Err(AudioError::Malformed {
            format,
            reason: format!("none of {bad_packets} audio frames could be decoded"),
        });
    }
    if rate == 0 {
        return Err(AudioError::NoAudio);
    }
    let channels = u16::try_from(channels).unwrap_or(u16::MAX);
    Ok((
        info(format, rate, channels, mono.len()),
        Pcm::new(rate, mono),
    ))
}

/// The bytes after an ID3v2 tag (ID3v2.4 §3.1: 10-byte header, syncsafe size, optional
/// 10-byte footer), or all bytes when there is none.
fn skip_id3v2(bytes: &[u8]) -> &[u8] {
    if bytes.len() < 10 || &bytes[..3] != b"ID3" {
        return bytes;
    }
    let size = bytes[6..10]
        .iter()
        .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7f));
    let footer = if bytes[5] & 0x10 != 0 { 10 } else { 0 };
    let end = 10 + size + footer;
    bytes.get(end..).unwrap_or(&[])
}

/// True when the bytes start with an MPEG audio Layer III frame header.
fn is_mpeg_layer3_sync(bytes: &[u8]) -> bool {
    match bytes {
        [0xff, b1, b2, ..] => {
            let sync = b1 & 0xe0 == 0xe0;
            let version_ok = (b1 >> 3) & 0x03 != 0x01;
            let layer3 = (b1 >> 1) & 0x03 == 0x01;
            let bitrate_ok = (b2 >> 4) != 0x0f;
            let rate_ok = (b2 >> 2) & 0x03 != 0x03;
            sync && version_ok && layer3 && bitrate_ok && rate_ok
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(
        spec: hound::WavSpec,
        write: impl FnOnce(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>),
    ) -> Vec<u8> {
        let mut cur = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
            write(&mut w);
            w.finalize().unwrap();
        }
        cur.into_inner()
    }

    fn spec(channels: u16, rate: u32, bits: u16, fmt: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: fmt,
        }
    }

    #[test]
    fn wav_16_bit_mono() {
        let bytes = wav(spec(1, 8000, 16, hound::SampleFormat::Int), |w| {
            for i in 0..8000 {
                w.write_sample((i % 100) as i16 * 100).unwrap();
            }
        });
        let (info, pcm) = decode_with_info(&bytes).unwrap();
        assert_eq!(
            info,
            AudioInfo {
                format: AudioFormat::Wav,
                rate: 8000,
                channels: 1,
                duration_ms: 1000
            }
        );
        assert_eq!(pcm.samples[..3], [0, 100, 200]);
        assert_eq!(pcm.samples.len(), 8000);
    }

    #[test]
    fn wav_stereo_is_averaged() {
        let bytes = wav(spec(2, 16000, 16, hound::SampleFormat::Int), |w| {
            for _ in 0..160 {
                w.write_sample(1000i16).unwrap();
                w.write_sample(3000i16).unwrap();
            }
        });
        let (info, pcm) = decode_with_info(&bytes).unwrap();
        assert_eq!(info.channels, 2);
        assert_eq!(info.duration_ms, 10);
        assert!(pcm.samples.iter().all(|&s| s == 2000));
    }

    #[test]
    fn wav_bit_depths_scale_to_16_bits() {
        let b8 = wav(spec(1, 8000, 8, hound::SampleFormat::Int), |w| {
            w.write_sample(64i8).unwrap();
            w.write_sample(-128i8).unwrap();
        });
        assert_eq!(decode(&b8).unwrap().samples, vec![16384, -32768]);
        let b24 = wav(spec(1, 8000, 24, hound::SampleFormat::Int), |w| {
            w.write_sample(0x40_0000i32).unwrap();
            w.write_sample(-0x80_0000i32).unwrap();
        });
        assert_eq!(decode(&b24).unwrap().samples, vec![16384, -32768]);
        let b32 = wav(spec(1, 8000, 32, hound::SampleFormat::Int), |w| {
            w.write_sample(0x4000_0000i32).unwrap();
            w.write_sample(i32::MIN).unwrap();
        });
        assert_eq!(decode(&b32).unwrap().samples, vec![16384, -32768]);
        let f32b = wav(spec(1, 8000, 32, hound::SampleFormat::Float), |w| {
            w.write_sample(0.5f32).unwrap();
            w.write_sample(-1.5f32).unwrap();
            w.write_sample(f32::NAN).unwrap();
        });
        assert_eq!(decode(&f32b).unwrap().samples, vec![16384, -32767, 0]);
    }

    #[test]
    fn wav_resampled_to_the_graph_rate() {
        let bytes = wav(spec(1, 16000, 16, hound::SampleFormat::Int), |w| {
            for i in 0..16000 {
                let x = (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16000.0).sin();
                w.write_sample((x * 10000.0) as i16).unwrap();
            }
        });
        let pcm = decode_at(&bytes, 8000).unwrap();
        assert_eq!(pcm.rate, 8000);
        assert_eq!(pcm.samples.len(), 8000);
        assert!(pcm.peak() > 9000);
    }

    /// A µ-law WAV (format tag 7), which hound refuses, decodes through symphonia.
    #[test]
    fn wav_ulaw_falls_back_to_symphonia() {
        let data: Vec<u8> = (0..800)
            .map(|i| crate::g711::ulaw_from_linear(if i % 2 == 0 { 8000 } else { -8000 }))
            .collect();
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(4 + 8 + 18 + 8 + 4 + 8 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&18u32.to_le_bytes());
        b.extend_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(b"fact");
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&data);
        let (info, pcm) = decode_with_info(&b).unwrap();
        assert_eq!(info.rate, 8000);
        assert_eq!(info.duration_ms, 100);
        assert_eq!(pcm.samples.len(), 800);
        assert!((pcm.samples[0] - 8000).abs() < 300, "{}", pcm.samples[0]);
        assert!((pcm.samples[1] + 8000).abs() < 300);
    }

    #[test]
    fn rejects_empty_unknown_and_silent_files() {
        assert_eq!(probe(&[]), Err(AudioError::Empty));
        assert_eq!(
            probe(b"hello world, not audio"),
            Err(AudioError::UnknownFormat)
        );
        let empty = wav(spec(1, 8000, 16, hound::SampleFormat::Int), |_| {});
        assert_eq!(probe(&empty), Err(AudioError::NoAudio));
        let mut truncated = wav(spec(1, 8000, 16, hound::SampleFormat::Int), |w| {
            w.write_sample(1i16).unwrap();
        });
        truncated.truncate(20);
        assert!(matches!(
            probe(&truncated),
            Err(AudioError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_too_long() {
        // 601 samples at 1 Hz: ten minutes and one second, in a few hundred bytes.
        let b = wav(spec(1, 1, 16, hound::SampleFormat::Int), |w| {
            for _ in 0..601 {
                w.write_sample(1i16).unwrap();
            }
        });
        assert_eq!(probe(&b), Err(AudioError::TooLong));
        let ok = wav(spec(1, 1, 16, hound::SampleFormat::Int), |w| {
            for _ in 0..600 {
                w.write_sample(1i16).unwrap();
            }
        });
        assert_eq!(probe(&ok).unwrap().duration_ms, MAX_DURATION_MS);
        // A header that claims more than the bytes hold is judged by the bytes.
        let mut lying = wav(spec(1, 1, 16, hound::SampleFormat::Int), |w| {
            for _ in 0..500 {
                w.write_sample(1i16).unwrap();
            }
        });
        let data_at = lying.windows(4).position(|w| w == b"data").unwrap();
        lying[data_at + 4..data_at + 8].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        assert_eq!(probe(&lying).unwrap().duration_ms, 500_000);
    }

    #[test]
    fn truncated_data_chunk_is_read_to_the_end() {
        // Streamed WAVs (espeak-ng --stdout) claim a huge data chunk; we keep what is there.
        let mut b = wav(spec(1, 22050, 16, hound::SampleFormat::Int), |w| {
            for _ in 0..441 {
                w.write_sample(500i16).unwrap();
            }
        });
        let data_at = b.windows(4).position(|w| w == b"data").unwrap();
        b[data_at + 4..data_at + 8].copy_from_slice(&0x00ff_0000u32.to_le_bytes());
        let (info, pcm) = decode_with_info(&b).unwrap();
        assert_eq!(pcm.samples.len(), 441);
        assert_eq!(info.duration_ms, 20);
    }

    #[test]
    fn detects_formats() {
        assert_eq!(detect(b"RIFF\0\0\0\0WAVEfmt "), Some(AudioFormat::Wav));
        assert_eq!(detect(&[0xff, 0xfb, 0x90, 0x64]), Some(AudioFormat::Mp3));
        assert_eq!(detect(b"ID3\x04\0\0\0\0\0\x01x"), Some(AudioFormat::Mp3));
        assert_eq!(detect(&[0xff, 0xfd, 0x90, 0x64]), None); // layer II
        assert_eq!(detect(b"OggS"), None);
    }

    #[test]
    fn id3v2_is_skipped() {
        assert_eq!(skip_id3v2(b"ID3\x04\0\0\0\0\0\x02abcd"), b"cd");
        assert_eq!(skip_id3v2(b"ID3\x04\0\0\0\0\x7f\x7f"), b"");
        assert_eq!(skip_id3v2(b"abc"), b"abc");
    }

    #[test]
    fn garbage_after_mp3_sync_is_an_error_not_a_panic() {
        let mut b = vec![0xff, 0xfb, 0x90, 0x64];
        b.extend((0..2000u32).map(|i| (i * 7919 % 251) as u8));
        assert!(probe(&b).is_err());
    }
}
