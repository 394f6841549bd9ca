//! Media request builders shared by legs and conferences: `say`, `play` and digit collection.
//!
//! Invariants: a builder sends exactly one `say` or `play` import, to the leg or conference it
//! was made for, and only when `send` is called; defaults follow the WIT docs (English, the
//! default voice, one loop, no stop on DTMF, play from the start to the end).

use std::time::Duration;

use crate::bindings::pbx::app::types::{CollectOptions, PlayOptions, SayOptions};
use crate::host::cc;
use crate::host::conf;
use crate::{Error, MediaId};

/// Where a `say` or `play` is heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// One leg, by its call id.
    Call(&'a str),
    /// Every participant of a conference who is not deafened.
    Conference(&'a str),
}

/// Milliseconds of a duration for the WIT's `u32` fields, saturating instead of wrapping.
pub(crate) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// A `say` request being built; [`Say::send`] sends it.
#[derive(Debug, Clone)]
#[must_use = "a Say does nothing until `send` is called"]
pub struct Say<'a> {
    target: Target<'a>,
    text: &'a str,
    language: Option<&'a str>,
    voice: Option<&'a str>,
    loops: u32,
    stop_on_dtmf: bool,
}

impl<'a> Say<'a> {
    pub(crate) fn new(target: Target<'a>, text: &'a str) -> Self {
        Say {
            target,
            text,
            language: None,
            voice: None,
            loops: 1,
            stop_on_dtmf: false,
        }
    }

    /// A BCP 47 language tag such as "en", "en-us" or "de".
    pub fn language(mut self, language: &'a str) -> Self {
        self.language = Some(language);
        self
    }

    /// A voice variant of the host's engine, such as "f3".
    pub fn voice(mut self, voice: &'a str) -> Self {
        self.voice = Some(voice);
        self
    }

    /// How many times to speak the text (0 counts as 1).
    pub fn loops(mut self, loops: u32) -> Self {
        self.loops = loops;
        self
    }

    /// Stop speaking when the caller presses a key (legs only).
    pub fn stop_on_dtmf(mut self) -> Self {
        self.stop_on_dtmf = true;
        self
    }

    pub(crate) fn options(&self) -> SayOptions {
        SayOptions {
            language: self.language.map(String::from),
            voice: self.voice.map(String::from),
            loop_count: self.loops,
            stop_on_dtmf: self.stop_on_dtmf,
        }
    }

    /// Sends the request; the returned id comes back in the finished event.
    pub fn send(self) -> Result<MediaId, Error> {
        let options = self.options();
        match self.target {
            Target::Call(id) => cc::say(id, self.text, &options),
            Target::Conference(id) => conf::say(id, self.text, &options),
        }
        .map_err(Error::from)
    }
}

/// A `play` request being built; [`Play::send`] sends it.
#[derive(Debug, Clone)]
#[must_use = "a Play does nothing until `send` is called"]
pub struct Play<'a> {
    target: Target<'a>,
    file_id: &'a str,
    loops: u32,
    offset_ms: u32,
    timeout_ms: Option<u32>,
    stop_on_dtmf: bool,
}

impl<'a> Play<'a> {
    pub(crate) fn new(target: Target<'a>, file_id: &'a str) -> Self {
        Play {
            target,
            file_id,
            loops: 1,
            offset_ms: 0,
            timeout_ms: None,
            stop_on_dtmf: false,
        }
    }

    /// How many times to play the file (0 counts as 1).
    pub fn loops(mut self, loops: u32) -> Self {
        self.loops = loops;
        self
    }

    /// Where to start within the file, in milliseconds (first loop only).
    pub fn offset_ms(mut self, offset_ms: u32) -> Self {
        self.offset_ms = offset_ms;
        self
    }

    /// Stop after this many milliseconds of playback.
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }

    /// Stop after this much playback (millisecond precision).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.timeout_ms(millis(timeout))
    }

    /// Stop playing when the caller presses a key (legs only).
    pub fn stop_on_dtmf(mut self) -> Self {
        self.stop_on_dtmf = true;
        self
    }

    pub(crate) fn options(&self) -> PlayOptions {
        PlayOptions {
            loop_count: self.loops,
            offset_ms: self.offset_ms,
            timeout_ms: self.timeout_ms,
            stop_on_dtmf: self.stop_on_dtmf,
        }
    }

    /// Sends the request; the returned id comes back in the finished event.
    pub fn send(self) -> Result<MediaId, Error> {
        let options = self.options();
        match self.target {
            Target::Call(id) => cc::play(id, self.file_id, options),
            Target::Conference(id) => conf::play(id, self.file_id, options),
        }
        .map_err(Error::from)
    }
}

/// How to collect digits: `Collect::max(4).terminator('#').timeout_ms(5000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collect {
    max_digits: u32,
    terminator: Option<char>,
    timeout_ms: u32,
}

impl Collect {
    /// The inter-digit timeout used unless [`Collect::timeout_ms`] sets another.
    pub const DEFAULT_TIMEOUT_MS: u32 = 5000;

    /// Finish once `max_digits` digits are collected (the host accepts 1 to 64).
    pub fn max(max_digits: u32) -> Self {
        Collect {
            max_digits,
            terminator: None,
            timeout_ms: Self::DEFAULT_TIMEOUT_MS,
        }
    }

    /// Finish when this key ('#' or '*') is pressed; it is not included in the digits.
    pub fn terminator(mut self, key: char) -> Self {
        self.terminator = Some(key);
        self
    }

    /// Finish when no digit arrives for this long, including before the first digit.
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// [`Collect::timeout_ms`] with a [`Duration`] (millisecond precision).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.timeout_ms(millis(timeout))
    }

    pub(crate) fn options(&self) -> CollectOptions {
        CollectOptions {
            max_digits: self.max_digits,
            terminator: self.terminator.map(String::from),
            timeout_ms: self.timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_builder_defaults_and_overrides() {
        let c = Collect::max(4);
        assert_eq!(c.max_digits, 4);
        assert_eq!(c.terminator, None);
        assert_eq!(c.timeout_ms, Collect::DEFAULT_TIMEOUT_MS);
        let c = c.terminator('#').timeout(Duration::from_secs(3));
        assert_eq!((c.terminator, c.timeout_ms), (Some('#'), 3000));
        let o = c.options();
        assert_eq!(
            (o.max_digits, o.terminator.as_deref(), o.timeout_ms),
            (4, Some("#"), 3000)
        );
    }

    #[test]
    fn say_builder_defaults_to_english_once_without_stop() {
        let s = Say::new(Target::Call("c1"), "hi");
        let o = s.options();
        assert_eq!(
            (o.language, o.voice, o.loop_count, o.stop_on_dtmf),
            (None, None, 1, false)
        );
        let o = s
            .language("de")
            .voice("f3")
            .loops(2)
            .stop_on_dtmf()
            .options();
        assert_eq!(
            (
                o.language.as_deref(),
                o.voice.as_deref(),
                o.loop_count,
                o.stop_on_dtmf
            ),
            (Some("de"), Some("f3"), 2, true)
        );
    }

    #[test]
    fn play_builder_defaults_to_once_from_the_start() {
        let p = Play::new(Target::Conference("conf-1"), "file-1");
        assert_eq!(p.target, Target::Conference("conf-1"));
        let o = p.options();
        assert_eq!(
            (o.loop_count, o.offset_ms, o.timeout_ms, o.stop_on_dtmf),
            (1, 0, None, false)
        );
        let o = p
            .loops(3)
            .offset_ms(500)
            .timeout(Duration::from_secs(10))
            .stop_on_dtmf()
            .options();
        assert_eq!(
            (o.loop_count, o.offset_ms, o.timeout_ms, o.stop_on_dtmf),
            (3, 500, Some(10_000), true)
        );
    }

    #[test]
    fn millis_saturates() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u32::MAX);
    }
}
