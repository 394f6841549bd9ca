//! Decoding real MP3 files (made with libmp3lame, see fixtures/README.md) and WAV files made
//! by sox, through probe, decode and resampling to the 8 kHz graph rate.
#![allow(
    clippy::disallowed_types,
    reason = "the test makes its fixture files with sox and reads them back"
)]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::process::Command;

use pbx_media::audiofile::{self, AudioError, AudioFormat, AudioInfo, decode_at, probe};

const MONO_16K: &[u8] = include_bytes!("fixtures/tone_440hz_16k_mono.mp3");
const STEREO_44K1: &[u8] = include_bytes!("fixtures/tone_44k1_stereo.mp3");

/// Dominant frequency by counting rising zero crossings (skipping the encoder's lead-in).
fn frequency(samples: &[i16], rate: u32) -> f64 {
    let s = &samples[samples.len() / 10..samples.len() * 9 / 10];
    let crossings = s.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    crossings as f64 * f64::from(rate) / s.len() as f64
}

#[test]
fn mp3_mono_16k() {
    let info = probe(MONO_16K).unwrap();
    assert_eq!(info.format, AudioFormat::Mp3);
    assert_eq!((info.rate, info.channels), (16000, 1));
    // One second, give or take the encoder delay/padding symphonia trims.
    assert!((950..=1100).contains(&info.duration_ms), "{info:?}");
    let pcm = decode_at(MONO_16K, 8000).unwrap();
    assert_eq!(pcm.rate, 8000);
    assert!((7600..=8800).contains(&pcm.samples.len()));
    let f = frequency(&pcm.samples, 8000);
    assert!((f - 440.0).abs() < 10.0, "{f} Hz");
    assert!(pcm.peak() > 8000, "peak {}", pcm.peak());
}

#[test]
fn mp3_stereo_44k1_is_downmixed() {
    let info = probe(STEREO_44K1).unwrap();
    assert_eq!((info.rate, info.channels), (44100, 2));
    assert!((450..=600).contains(&info.duration_ms), "{info:?}");
    let native = audiofile::decode(STEREO_44K1).unwrap();
    assert_eq!(native.rate, 44100);
    let pcm = decode_at(STEREO_44K1, 8000).unwrap();
    assert!((3800..=4800).contains(&pcm.samples.len()));
    assert!(pcm.rms() > 1000.0);
}

#[test]
fn mp3_behind_an_id3v2_tag() {
    let mut tagged = b"ID3\x03\x00\x00\x00\x00\x00\x15".to_vec();
    tagged.extend_from_slice(b"TIT2\x00\x00\x00\x0b\x00\x00\x00pbx prompt");
    assert_eq!(tagged.len(), 10 + 0x15);
    tagged.extend_from_slice(MONO_16K);
    assert_eq!(probe(&tagged).unwrap().rate, 16000);
}

#[test]
fn truncated_mp3_keeps_what_decodes() {
    let half = &MONO_16K[..MONO_16K.len() / 2];
    let info = probe(half).unwrap();
    assert!((300..=700).contains(&info.duration_ms), "{info:?}");
}

#[test]
fn upload_errors_are_typed() {
    assert_eq!(probe(b""), Err(AudioError::Empty));
    assert_eq!(probe(b"%PDF-1.7 not audio"), Err(AudioError::UnknownFormat));
    assert_eq!(probe(b"OggS\0\x02"), Err(AudioError::UnknownFormat));
    // Human-readable messages for the API's 400/415 bodies.
    assert_eq!(
        AudioError::UnknownFormat.to_string(),
        "not a WAV or MP3 file"
    );
    assert_eq!(
        AudioError::TooLong.to_string(),
        "the audio is longer than 10 minutes"
    );
}

fn sox_available() -> bool {
    Command::new("sox")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sox_wav(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    let status = Command::new("sox")
        .args(["-n", "-r"])
        .args(args)
        .arg(&path)
        .args(["synth", "0.5", "sine", "440", "vol", "0.5"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}

#[test]
fn wav_files_from_sox() {
    if !sox_available() {
        eprintln!("SKIPPED: sox is not installed");
        return;
    }
    for (args, rate, channels) in [
        (&["44100", "-c", "2", "-b", "24"][..], 44100, 2),
        (&["22050", "-c", "1", "-b", "8"][..], 22050, 1),
        (
            &["48000", "-c", "1", "-b", "32", "-e", "floating-point"][..],
            48000,
            1,
        ),
        (&["8000", "-c", "1", "-e", "u-law"][..], 8000, 1),
        (&["8000", "-c", "1", "-e", "a-law"][..], 8000, 1),
    ] {
        let bytes = sox_wav(args);
        let info = probe(&bytes).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(
            info,
            AudioInfo {
                format: AudioFormat::Wav,
                rate,
                channels,
                duration_ms: 500
            },
            "{args:?}"
        );
        let pcm = decode_at(&bytes, 8000).unwrap();
        assert_eq!(pcm.samples.len(), 4000, "{args:?}");
        let f = frequency(&pcm.samples, 8000);
        assert!((f - 440.0).abs() < 10.0, "{args:?}: {f} Hz");
        // sox "vol 0.5": peak near half scale.
        assert!(
            (14000..=17500).contains(&pcm.peak()),
            "{args:?}: {}",
            pcm.peak()
        );
    }
}
