//! The typed call handle and its request builders.
//!
//! Invariants: every method maps to exactly one `pbx:app/call-control` import and returns
//! at once; defaults follow the WIT docs (English, one loop, no stop on DTMF).

use crate::bindings::pbx::app::call_control as cc;
use crate::bindings::pbx::app::types::{CollectOptions, PlayOptions, SayOptions};
use crate::{Error, MediaId};

/// A handle on one call, given to every [`App`](crate::App) event.
///
/// Cloning is cheap enough for keeping it in app state; a handle outliving its call only
/// gets [`Error::InvalidState`] back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    id: String,
}

impl Call {
    #[doc(hidden)]
    pub fn new(id: &str) -> Self {
        Call { id: id.to_owned() }
    }

    /// The host's id of this call, as shown in the admin API.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Answers the call (SIP 200 OK). Media starts flowing.
    pub fn answer(&self) -> Result<(), Error> {
        cc::answer(&self.id).map_err(Error::from)
    }

    /// Starts early media (SIP 183) so that `say` and `play` are heard before answering.
    pub fn early_media(&self) -> Result<(), Error> {
        cc::early_media(&self.id).map_err(Error::from)
    }

    /// Rejects the unanswered call with a SIP final status from 400 to 699, such as 486
    /// (busy here) or 603 (decline).
    pub fn reject(&self, status: u16) -> Result<(), Error> {
        cc::reject(&self.id, status).map_err(Error::from)
    }

    /// Ends the call: BYE when answered, 480 when not yet answered.
    pub fn hangup(&self) -> Result<(), Error> {
        cc::hangup(&self.id).map_err(Error::from)
    }

    /// Speaks `text` in English, once; the end is reported to
    /// [`App::on_say_finished`](crate::App::on_say_finished) with the returned id.
    pub fn say(&self, text: &str) -> Result<MediaId, Error> {
        self.say_with(text).send()
    }

    /// Starts a `say` request with options: `call.say_with("Hallo").language("de").send()`.
    pub fn say_with<'a>(&'a self, text: &'a str) -> Say<'a> {
        Say {
            call: self,
            text,
            language: None,
            voice: None,
            loops: 1,
            stop_on_dtmf: false,
        }
    }

    /// Plays an uploaded audio file once, by its id; the end is reported to
    /// [`App::on_play_finished`](crate::App::on_play_finished).
    pub fn play(&self, file_id: &str) -> Result<MediaId, Error> {
        self.play_with(file_id).send()
    }

    /// Starts a `play` request with options: `call.play_with(id).loops(3).send()`.
    pub fn play_with<'a>(&'a self, file_id: &'a str) -> Play<'a> {
        Play {
            call: self,
            file_id,
            loops: 1,
            offset_ms: 0,
            timeout_ms: None,
            stop_on_dtmf: false,
        }
    }

    /// Stops the media playing now and drops what is queued; each stopped request still
    /// reports its finished event.
    pub fn stop_media(&self) -> Result<(), Error> {
        cc::stop_media(&self.id).map_err(Error::from)
    }

    /// Collects keypad digits; the result arrives as
    /// [`App::on_dtmf_collected`](crate::App::on_dtmf_collected). A new collection cancels
    /// the one under way.
    pub fn collect_dtmf(&self, collect: Collect) -> Result<(), Error> {
        let options = CollectOptions {
            max_digits: collect.max_digits,
            terminator: collect.terminator.map(String::from),
            timeout_ms: collect.timeout_ms,
        };
        cc::collect_dtmf(&self.id, &options).map_err(Error::from)
    }
}

/// A `say` request being built; [`Say::send`] sends it.
#[derive(Debug, Clone)]
#[must_use = "a Say does nothing until `send` is called"]
pub struct Say<'a> {
    call: &'a Call,
    text: &'a str,
    language: Option<&'a str>,
    voice: Option<&'a str>,
    loops: u32,
    stop_on_dtmf: bool,
}

impl<'a> Say<'a> {
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

    /// Stop speaking when the caller presses a key.
    pub fn stop_on_dtmf(mut self) -> Self {
        self.stop_on_dtmf = true;
        self
    }

    /// Sends the request; the returned id comes back in the finished event.
    pub fn send(self) -> Result<MediaId, Error> {
        let options = SayOptions {
            language: self.language.map(String::from),
            voice: self.voice.map(String::from),
            loop_count: self.loops,
            stop_on_dtmf: self.stop_on_dtmf,
        };
        cc::say(&self.call.id, self.text, &options).map_err(Error::from)
    }
}

/// A `play` request being built; [`Play::send`] sends it.
#[derive(Debug, Clone)]
#[must_use = "a Play does nothing until `send` is called"]
pub struct Play<'a> {
    call: &'a Call,
    file_id: &'a str,
    loops: u32,
    offset_ms: u32,
    timeout_ms: Option<u32>,
    stop_on_dtmf: bool,
}

impl Play<'_> {
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

    /// Stop playing when the caller presses a key.
    pub fn stop_on_dtmf(mut self) -> Self {
        self.stop_on_dtmf = true;
        self
    }

    /// Sends the request; the returned id comes back in the finished event.
    pub fn send(self) -> Result<MediaId, Error> {
        let options = PlayOptions {
            loop_count: self.loops,
            offset_ms: self.offset_ms,
            timeout_ms: self.timeout_ms,
            stop_on_dtmf: self.stop_on_dtmf,
        };
        cc::play(&self.call.id, self.file_id, options).map_err(Error::from)
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
        let c = c.terminator('#').timeout_ms(3000);
        assert_eq!((c.terminator, c.timeout_ms), (Some('#'), 3000));
    }

    #[test]
    fn say_builder_defaults_to_english_once_without_stop() {
        let call = Call::new("c1");
        let s = call.say_with("hi");
        assert_eq!(
            (s.language, s.voice, s.loops, s.stop_on_dtmf),
            (None, None, 1, false)
        );
        let s = s.language("de").voice("f3").loops(2).stop_on_dtmf();
        assert_eq!(
            (s.language, s.voice, s.loops, s.stop_on_dtmf),
            (Some("de"), Some("f3"), 2, true)
        );
        assert_eq!(call.id(), "c1");
    }
}
