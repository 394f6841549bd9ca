//! Text to speech: a swappable [`TtsEngine`] and [`Tts`], the validating, caching front the
//! shell calls. The engine that runs a process (espeak-ng) lives in the shell
//! (`host/pbx/src/espeak.rs`); this crate runs none.
//!
//! Invariants: engines are blocking (the shell calls them from `spawn_blocking`). Nothing
//! reaches an engine's command line unchecked:
//! language and voice are `[A-Za-z0-9_+-]`, at most [`MAX_NAME_LEN`] characters and never start
//! with `-`; the text has its control characters removed, is at most [`MAX_TEXT_CHARS`]
//! characters, is passed as a single argument after `--` (never through a shell). The cache
//! holds at most `max_entries` clips and `max_samples` samples, evicting the least recently used.

use std::sync::{Arc, Mutex};

use thiserror::Error;

use crate::audiofile::AudioError;
use crate::pcm::Pcm;
use crate::resample::{ResampleError, resample};

/// The longest text we speak, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// The longest language or voice name.
pub const MAX_NAME_LEN: usize = 40;
/// Default number of cached clips.
pub const DEFAULT_CACHE_ENTRIES: usize = 64;
/// Default cache budget in samples (about 30 minutes of 8 kHz audio, 28 MiB).
pub const DEFAULT_CACHE_SAMPLES: usize = 8000 * 60 * 30;

/// Why speech could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TtsError {
    /// The engine's program is not installed.
    #[error("text to speech is unavailable: {0} is not installed")]
    NotInstalled(String),
    /// Nothing to say once control characters are removed.
    #[error("the text is empty")]
    EmptyText,
    /// Longer than [`MAX_TEXT_CHARS`].
    #[error("the text has {chars} characters; the limit is {MAX_TEXT_CHARS}")]
    TextTooLong {
        /// Characters given.
        chars: usize,
    },
    /// A language tag with characters or length we do not accept.
    #[error("invalid language {0:?}")]
    InvalidLanguage(String),
    /// A voice name with characters or length we do not accept.
    #[error("invalid voice {0:?}")]
    InvalidVoice(String),
    /// The engine does not know this language/voice.
    #[error("unknown language or voice {0:?}")]
    UnknownVoice(String),
    /// The engine failed.
    #[error("speech synthesis failed: {0}")]
    Failed(String),
    /// The engine's output could not be read.
    #[error("unreadable speech output: {0}")]
    BadOutput(AudioError),
    /// The speech could not be resampled.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// A speech synthesizer. Implementations receive text and names already validated by
/// [`Tts`] and return mono audio at whatever rate they produce.
pub trait TtsEngine: Send + Sync {
    /// Speaks `text` in `language` (a BCP 47 tag; `None` means English) with an optional
    /// voice variant; blocking.
    fn synthesize(
        &self,
        text: &str,
        language: Option<&str>,
        voice: Option<&str>,
    ) -> Result<Pcm, TtsError>;
}

/// Removes control characters (newlines and tabs become spaces) and enforces the length
/// limits; the result is what is spoken and cached.
pub fn clean_text(text: &str) -> Result<String, TtsError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(TtsError::TextTooLong { chars });
    }
    let cleaned: String = text
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        return Err(TtsError::EmptyText);
    }
    Ok(trimmed.to_string())
}

/// True for a language or voice name we let near a command line.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'_'))
}

/// A deterministic stand-in engine for tests and the simulator: a 440 Hz tone of
/// `ms_per_char` milliseconds per character at `rate` Hz.
#[derive(Debug, Clone, Copy)]
pub struct ToneTts {
    /// Output rate in Hz.
    pub rate: u32,
    /// Milliseconds of tone per character of text.
    pub ms_per_char: u32,
}

impl TtsEngine for ToneTts {
    fn synthesize(&self, text: &str, _: Option<&str>, _: Option<&str>) -> Result<Pcm, TtsError> {
        let ms = self.ms_per_char.saturating_mul(text.chars().count() as u32);
        let n = crate::pcm::ms_to_samples(self.rate, ms);
        let step = 2.0 * std::f64::consts::PI * 440.0 / f64::from(self.rate.max(1));
        let samples = (0..n)
            .map(|i| (8000.0 * (step * i as f64).sin()) as i16)
            .collect();
        Ok(Pcm::new(self.rate, samples))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    text: String,
    language: Option<String>,
    voice: Option<String>,
    rate: u32,
}

#[derive(Debug)]
struct Entry {
    key: CacheKey,
    pcm: Arc<Pcm>,
    last_used: u64,
}

#[derive(Debug)]
struct Lru {
    entries: Vec<Entry>,
    tick: u64,
    samples: usize,
    max_entries: usize,
    max_samples: usize,
}

impl Lru {
    fn get(&mut self, key: &CacheKey) -> Option<Arc<Pcm>> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.iter_mut().find(|e| &e.key == key)?;
        e.last_used = tick;
        Some(e.pcm.clone())
    }

    fn insert(&mut self, key: CacheKey, pcm: Arc<Pcm>) {
        if self.entries.iter().any(|e| e.key == key) || pcm.samples.len() > self.max_samples {
            return;
        }
        self.tick += 1;
        self.samples += pcm.samples.len();
        self.entries.push(Entry {
            key,
            pcm,
            last_used: self.tick,
        });
        while self.entries.len() > self.max_entries || self.samples > self.max_samples {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            else {
                break;
            };
            let e = self.entries.swap_remove(oldest);
            self.samples -= e.pcm.samples.len();
        }
    }
}

/// The speech service: validates requests, runs the engine, resamples to the call's rate
/// and caches the result, because IVR prompts repeat. Shared by all calls (`Arc<Tts>`).
pub struct Tts {
    engine: Arc<dyn TtsEngine>,
    cache: Mutex<Lru>,
}

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts")
            .field("cached", &self.cached())
            .finish()
    }
}

impl Tts {
    /// A service over `engine` with the default cache limits.
    pub fn new(engine: Arc<dyn TtsEngine>) -> Self {
        Self::with_cache(engine, DEFAULT_CACHE_ENTRIES, DEFAULT_CACHE_SAMPLES)
    }

    /// A service with explicit cache limits (0 entries disables caching).
    pub fn with_cache(engine: Arc<dyn TtsEngine>, max_entries: usize, max_samples: usize) -> Self {
        Tts {
            engine,
            cache: Mutex::new(Lru {
                entries: Vec::with_capacity(max_entries),
                tick: 0,
                samples: 0,
                max_entries,
                max_samples,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock cannot leave the cache inconsistent in a way that
        // matters (worst case a wrong sample count), so poisoning is ignored.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clips in the cache.
    pub fn cached(&self) -> usize {
        self.lock().entries.len()
    }

    /// Speaks `text` and returns it as mono audio at `rate` Hz; blocking.
    pub fn speak(
        &self,
        text: &str,
        language: Option<&str>,
        voice: Option<&str>,
        rate: u32,
    ) -> Result<Arc<Pcm>, TtsError> {
        let text = clean_text(text)?;
        if let Some(l) = language
            && !is_valid_name(l)
        {
            return Err(TtsError::InvalidLanguage(
                l.chars().take(MAX_NAME_LEN).collect(),
            ));
        }
        if let Some(v) = voice
            && (!is_valid_name(v) || v.contains('+'))
        {
            return Err(TtsError::InvalidVoice(
                v.chars().take(MAX_NAME_LEN).collect(),
            ));
        }
        let key = CacheKey {
            text,
            language: language.map(str::to_ascii_lowercase),
            voice: voice.map(str::to_string),
            rate,
        };
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit);
        }
        // Synthesize without holding the lock: other calls keep using the cache meanwhile.
        let native =
            self.engine
                .synthesize(&key.text, key.language.as_deref(), key.voice.as_deref())?;
        let pcm = Arc::new(resample(&native, rate)?);
        self.lock().insert(key, pcm.clone());
        Ok(pcm)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts calls, so that cache hits are visible.
    struct Counting {
        calls: AtomicUsize,
        inner: ToneTts,
    }

    impl TtsEngine for Counting {
        fn synthesize(&self, t: &str, l: Option<&str>, v: Option<&str>) -> Result<Pcm, TtsError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.synthesize(t, l, v)
        }
    }

    fn counting() -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            inner: ToneTts {
                rate: 16000,
                ms_per_char: 10,
            },
        })
    }

    #[test]
    fn text_is_cleaned_and_limited() {
        assert_eq!(clean_text("  hi\nthere\u{7}\t! ").unwrap(), "hi there !");
        assert_eq!(clean_text("\u{1b}\u{0}  "), Err(TtsError::EmptyText));
        assert_eq!(
            clean_text(&"é".repeat(MAX_TEXT_CHARS))
                .unwrap()
                .chars()
                .count(),
            4000
        );
        assert_eq!(
            clean_text(&"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(TtsError::TextTooLong { chars: 4001 })
        );
    }

    #[test]
    fn names_are_validated() {
        for ok in ["en", "en-us", "de", "f3", "en-us+f3", "zh_yue"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-w",
            "en us",
            "en;rm",
            "../x",
            "en/x",
            "ä",
            &"a".repeat(41),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn speak_resamples_and_caches() {
        let engine = counting();
        let tts = Tts::new(engine.clone());
        let a = tts.speak("hello", None, None, 8000).unwrap();
        assert_eq!(a.rate, 8000);
        assert_eq!(a.samples.len(), 400); // 50 ms
        let b = tts.speak("hello", None, None, 8000).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(engine.calls.load(Ordering::SeqCst), 1);
        // A different rate, language or voice is a different entry.
        tts.speak("hello", None, None, 16000).unwrap();
        tts.speak("hello", Some("de"), None, 8000).unwrap();
        tts.speak("hello", None, Some("f3"), 8000).unwrap();
        assert_eq!(engine.calls.load(Ordering::SeqCst), 4);
        assert_eq!(tts.cached(), 4);
    }

    #[test]
    fn bad_requests_never_reach_the_engine() {
        let engine = counting();
        let tts = Tts::new(engine.clone());
        assert!(matches!(
            tts.speak("hi", Some("-x"), None, 8000),
            Err(TtsError::InvalidLanguage(_))
        ));
        assert!(matches!(
            tts.speak("hi", None, Some("f3+evil"), 8000),
            Err(TtsError::InvalidVoice(_))
        ));
        assert_eq!(tts.speak(" \n", None, None, 8000), Err(TtsError::EmptyText));
        assert_eq!(engine.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn lru_evicts_least_recently_used_and_respects_the_sample_budget() {
        let engine = counting();
        let tts = Tts::with_cache(engine.clone(), 2, 10_000);
        tts.speak("a", None, None, 8000).unwrap(); // 80 samples
        tts.speak("b", None, None, 8000).unwrap();
        tts.speak("a", None, None, 8000).unwrap(); // hit: "b" is now the oldest
        tts.speak("c", None, None, 8000).unwrap(); // evicts "b"
        assert_eq!(engine.calls.load(Ordering::SeqCst), 3);
        tts.speak("a", None, None, 8000).unwrap();
        assert_eq!(engine.calls.load(Ordering::SeqCst), 3);
        tts.speak("b", None, None, 8000).unwrap();
        assert_eq!(engine.calls.load(Ordering::SeqCst), 4);
        // A clip larger than the whole budget is returned but not cached.
        let long = "x".repeat(2000); // 20 s = 160 000 samples
        tts.speak(&long, None, None, 8000).unwrap();
        assert!(tts.cached() <= 2);
        let tiny = Tts::with_cache(engine.clone(), 0, 0);
        tiny.speak("a", None, None, 8000).unwrap();
        assert_eq!(tiny.cached(), 0);
    }
}
