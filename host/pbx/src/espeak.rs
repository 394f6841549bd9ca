//! espeak-ng, the text-to-speech engine `pbx serve` uses: a process per request, run from a
//! blocking thread (`media_cache.rs`). The media core validates and caches (`pbx_media::tts`);
//! running the program is the shell's, because the cores run no processes.
//!
//! Invariants: the text reaches espeak-ng as one argument after `--`, never through a shell,
//! already cleaned and limited by `pbx_media::tts::Tts`; language and voice names were checked
//! by the same front before they reach `-v`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use pbx_media::audiofile;
use pbx_media::pcm::Pcm;
use pbx_media::tts::{TtsEngine, TtsError};

/// The espeak-ng program (`espeak-ng -v <voice> -s <speed> --stdout -- <text>`).
#[derive(Debug, Clone)]
pub struct EspeakNg {
    program: PathBuf,
    speed_wpm: u32,
}

impl Default for EspeakNg {
    fn default() -> Self {
        EspeakNg {
            program: PathBuf::from("espeak-ng"),
            speed_wpm: 150,
        }
    }
}

impl EspeakNg {
    /// `espeak-ng` from `PATH` at 150 words per minute.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses another program path (for tests, or a non-standard install).
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// Sets the speaking rate in words per minute (clamped to espeak-ng's 80-450).
    pub fn with_speed(mut self, wpm: u32) -> Self {
        self.speed_wpm = wpm.clamp(80, 450);
        self
    }

    /// The espeak-ng voice for a language and variant: `en`/`en-us`/none → `en-us`, other
    /// tags lower-cased (`de`, `fr`, `en-gb`), a variant appended with `+` (`en-us+f3`).
    pub fn voice_name(language: Option<&str>, voice: Option<&str>) -> String {
        let lang = match language.map(str::to_ascii_lowercase) {
            None => "en-us".to_string(),
            Some(l) if l == "en" || l == "en-us" => "en-us".to_string(),
            Some(l) => l,
        };
        match voice {
            Some(v) => format!("{lang}+{v}"),
            None => lang,
        }
    }
}

impl TtsEngine for EspeakNg {
    fn synthesize(
        &self,
        text: &str,
        language: Option<&str>,
        voice: Option<&str>,
    ) -> Result<Pcm, TtsError> {
        let voice_name = Self::voice_name(language, voice);
        let output = Command::new(&self.program)
            .arg("-v")
            .arg(&voice_name)
            .arg("-s")
            .arg(self.speed_wpm.to_string())
            .arg("--stdout")
            .arg("--")
            .arg(text)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    TtsError::NotInstalled(self.program.display().to_string())
                }
                _ => TtsError::Failed(format!("cannot run {}: {e}", self.program.display())),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("voice does not exist") {
                return Err(TtsError::UnknownVoice(voice_name));
            }
            let msg: String = stderr.trim().chars().take(200).collect();
            return Err(TtsError::Failed(format!("{} ({msg})", output.status)));
        }
        audiofile::decode(&output.stdout).map_err(TtsError::BadOutput)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_names_map_to_espeak() {
        assert_eq!(EspeakNg::voice_name(None, None), "en-us");
        assert_eq!(EspeakNg::voice_name(Some("en"), None), "en-us");
        assert_eq!(EspeakNg::voice_name(Some("EN-US"), Some("f3")), "en-us+f3");
        assert_eq!(EspeakNg::voice_name(None, Some("f3")), "en-us+f3");
        assert_eq!(EspeakNg::voice_name(Some("de"), None), "de");
        assert_eq!(EspeakNg::voice_name(Some("en-GB"), None), "en-gb");
    }

    #[test]
    fn missing_program_is_reported_clearly() {
        let e = EspeakNg::new().with_program("/nonexistent/espeak-ng");
        let err = e.synthesize("hi", None, None).expect_err("no such program");
        assert_eq!(err, TtsError::NotInstalled("/nonexistent/espeak-ng".into()));
        assert!(err.to_string().contains("not installed"));
    }
}
