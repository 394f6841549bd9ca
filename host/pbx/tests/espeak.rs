//! Text to speech through the real espeak-ng program. Skipped, with a message, when espeak-ng
//! is not installed.
#![allow(clippy::unwrap_used, reason = "test code")]

use std::process::Command;
use std::sync::Arc;

use pbx::espeak::EspeakNg;
use pbx_media::tts::{Tts, TtsEngine, TtsError};

fn espeak_available() -> bool {
    let ok = Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: espeak-ng is not installed (apt-get install espeak-ng)");
    }
    ok
}

#[test]
fn speaks_english_at_8k() {
    if !espeak_available() {
        return;
    }
    let tts = Tts::new(Arc::new(EspeakNg::new()));
    let pcm = tts
        .speak("Welcome to the pbx. Press one for sales.", None, None, 8000)
        .unwrap();
    assert_eq!(pcm.rate, 8000);
    // A couple of seconds of speech, clearly not silence.
    assert!(pcm.duration_ms() > 1000, "{} ms", pcm.duration_ms());
    assert!(pcm.peak() > 3000, "peak {}", pcm.peak());
    assert!(pcm.rms() > 300.0, "rms {}", pcm.rms());
    // Cached: the second request is the same clip.
    let again = tts
        .speak("Welcome to the pbx. Press one for sales.", None, None, 8000)
        .unwrap();
    assert!(Arc::ptr_eq(&pcm, &again));
}

#[test]
fn german_and_a_voice_variant() {
    if !espeak_available() {
        return;
    }
    let tts = Tts::new(Arc::new(EspeakNg::new()));
    let de = tts.speak("Guten Tag", Some("de"), None, 16000).unwrap();
    assert_eq!(de.rate, 16000);
    assert!(de.peak() > 3000);
    let f3 = tts.speak("hello", Some("en"), Some("f3"), 8000).unwrap();
    assert!(f3.peak() > 3000);
}

#[test]
fn unknown_voice_is_an_error() {
    if !espeak_available() {
        return;
    }
    let err = EspeakNg::new()
        .synthesize("hello", Some("xx-nope"), None)
        .unwrap_err();
    assert_eq!(err, TtsError::UnknownVoice("xx-nope".into()));
}

#[test]
fn text_that_looks_like_options_is_spoken_not_obeyed() {
    if !espeak_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("written.wav");
    let text = format!("-w {}", target.display());
    let pcm = Tts::new(Arc::new(EspeakNg::new()))
        .speak(&text, None, None, 8000)
        .unwrap();
    assert!(pcm.peak() > 1000);
    assert!(!target.exists(), "espeak-ng treated the text as an option");
}
