//! A party of a call-control test: a named baresip that sends its own sine tone, answers by
//! itself or on demand, optionally REGISTERs with the pbx as a SIP user, and records what it
//! hears, so a test can prove who hears whom with [`crate::audio::ToneReport`].
//!
//! Invariants: every party of a test gets a distinct tone from [`TONES`]; what a party heard
//! is read only after its call closed (baresip finishes the WAV then); every wait is bounded.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::api::expect_status;
use crate::audio::Audio;
use crate::baresip::{AnswerMode, AudioSource, Baresip, BaresipOptions, Event, Registration};
use crate::error::{HarnessError, Result};
use crate::pbx::Pbx;

/// The parties' tones in Hz. Each sits a quarter tone off the equal-tempered scale (so music
/// on hold, a chord of notes and their harmonics, is not mistaken for a party) and at least
/// 34 Hz away from every 2nd and 3rd order intermodulation product of the others (a, a±b,
/// 2a±b, 3a, 3a±b, a+b-c), so a clipping mixer cannot fake a tone that a muted party would
/// have sent. Found by a search over the quarter tones between 350 and 1400 Hz.
pub const TONES: [u32; 5] = [453, 605, 960, 1017, 1281];

/// How long a call may take to ring and be answered in these tests.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a registration may take.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// The tones probed for a report about `hz`: every party tone plus `hz`.
pub fn probe_set(hz: u32) -> Vec<u32> {
    let mut set = TONES.to_vec();
    if !set.contains(&hz) {
        set.push(hz);
    }
    set
}

/// One party: a baresip with a tone.
#[derive(Debug)]
pub struct Party {
    ua: Baresip,
    tone: u32,
    established_at: Option<Instant>,
    /// The wall clock and the monotonic clock read together, to place recording files (whose
    /// modification time is their end) on the test's `Instant` timeline.
    anchor: (SystemTime, Instant),
}

/// The password every SIP user created by [`Party::user`] gets.
pub const USER_PASSWORD: &str = "secret-e2e-pass";

impl Party {
    /// Starts a standalone party (no registration) named `name` sending `tone` Hz.
    pub async fn start(name: &str, tone: u32, answer: AnswerMode) -> Result<Party> {
        Party::with_registration(name, tone, answer, None).await
    }

    /// Starts a party, registering it when `register` is given (without waiting for it).
    pub async fn with_registration(
        name: &str,
        tone: u32,
        answer: AnswerMode,
        register: Option<Registration>,
    ) -> Result<Party> {
        Party::with_options(BaresipOptions {
            name: name.into(),
            source: AudioSource::Sine(tone),
            answer_mode: answer,
            codecs: "pcmu,pcma".into(),
            register,
            ..BaresipOptions::default()
        })
        .await
    }

    /// Starts a party from full baresip options; its tone is the options' sine (0 when the
    /// source is not a sine).
    pub async fn with_options(options: BaresipOptions) -> Result<Party> {
        let tone = match options.source {
            AudioSource::Sine(hz) => hz,
            _ => 0,
        };
        let ua = Baresip::start(options).await?;
        Ok(Party {
            ua,
            tone,
            established_at: None,
            anchor: (SystemTime::now(), Instant::now()),
        })
    }

    /// Creates SIP user `name` (password [`USER_PASSWORD`]) on `pbx`, starts a party that
    /// registers as that user, and waits for the registrar's 200.
    pub async fn user(pbx: &Pbx, name: &str, tone: u32, answer: AnswerMode) -> Result<Party> {
        expect_status(
            &format!("create SIP user {name}"),
            201,
            pbx.api().create_sip_user(name, USER_PASSWORD).await?,
        )?;
        let mut party = Party::with_registration(
            name,
            tone,
            answer,
            Some(Registration {
                registrar: pbx.sip_addr(),
                password: USER_PASSWORD.into(),
            }),
        )
        .await?;
        party.ua.wait_registered(REGISTER_TIMEOUT).await?;
        Ok(party)
    }

    /// The party's tone in Hz.
    pub fn tone(&self) -> u32 {
        self.tone
    }

    /// The party's name.
    pub fn name(&self) -> &str {
        self.ua.name()
    }

    /// The underlying baresip, for anything the helpers do not cover.
    pub fn ua(&mut self) -> &mut Baresip {
        &mut self.ua
    }

    /// Dials `uri`.
    pub async fn call(&mut self, uri: &str) -> Result<()> {
        self.ua.dial(uri).await
    }

    /// Dials `number` at `pbx`.
    pub async fn call_number(&mut self, pbx: &Pbx, number: &str) -> Result<()> {
        self.ua.dial(&pbx.sip_uri(number)).await
    }

    /// Waits for an incoming call to ring here (`CALL_INCOMING`).
    pub async fn wait_incoming(&mut self) -> Result<Event> {
        self.ua.wait_event("CALL_INCOMING", ANSWER_TIMEOUT).await
    }

    /// Waits for an incoming call and answers it (for a manual-answer party).
    pub async fn answer(&mut self) -> Result<()> {
        self.wait_incoming().await?;
        self.ua.accept().await
    }

    /// Waits for the call to be established (either direction); a `CALL_CLOSED` first is an
    /// error naming its reason.
    pub async fn wait_established(&mut self) -> Result<Instant> {
        let event = self
            .ua
            .wait_any(&["CALL_ESTABLISHED", "CALL_CLOSED"], ANSWER_TIMEOUT)
            .await?;
        if event.kind == "CALL_CLOSED" {
            return Err(HarnessError::protocol(
                format!("party {}", self.name()),
                format!("call closed before it was established: {}", event.param),
            ));
        }
        self.established_at = Some(event.at);
        Ok(event.at)
    }

    /// When the last call was established (None before).
    pub fn established_at(&self) -> Option<Instant> {
        self.established_at
    }

    /// Waits (at most `timeout`) for the call to close and returns the event (its param is
    /// the reason, e.g. "Connection reset by peer" for a BYE or "487 ..." for a CANCEL).
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Event> {
        self.ua.wait_event("CALL_CLOSED", timeout).await
    }

    /// Sends DTMF digits (RFC 4733).
    pub async fn send_dtmf(&mut self, digits: &str) -> Result<()> {
        self.ua.send_dtmf(digits).await
    }

    /// Lets the call run for `duration` while collecting events.
    pub async fn talk(&mut self, duration: Duration) -> Result<()> {
        self.ua.pump_events(duration).await
    }

    /// Hangs up the current call.
    pub async fn hangup(&mut self) -> Result<()> {
        self.ua.hangup().await
    }

    /// Hangs up if a call is still up (the number of CALL_CLOSED seen is below the number of
    /// established calls), waits for it to close, and quits baresip.
    pub async fn finish(&mut self) -> Result<()> {
        let established = self.count("CALL_ESTABLISHED");
        let closed = self.count("CALL_CLOSED");
        if established > closed {
            self.ua.hangup().await?;
            // The close may already have been consumed by an earlier wait; do not insist.
            let _ = self
                .ua
                .wait_event("CALL_CLOSED", Duration::from_secs(10))
                .await;
        }
        self.ua.quit().await
    }

    fn count(&self, kind: &str) -> usize {
        self.ua.events().iter().filter(|e| e.kind == kind).count()
    }

    /// What the party heard in its last call (read it after the call closed).
    pub fn heard(&self) -> Result<Audio> {
        Audio::read(&self.ua.last_recording()?)
    }

    /// What the party heard in every call, oldest first.
    pub fn heard_all(&self) -> Result<Vec<Audio>> {
        self.ua
            .recordings()
            .iter()
            .map(|p| Audio::read(p))
            .collect()
    }

    /// What the party heard between `from` and `to` (instants of the test's clock).
    ///
    /// baresip starts a new recording file whenever its audio stream restarts (a re-INVITE
    /// for hold, a transfer), so every file is placed on the timeline by its modification
    /// time (when it was last written, i.e. its end) minus its length, and the window is cut
    /// from the file that overlaps it most. Read it after the call closed.
    pub fn heard_between(&self, from: Instant, to: Instant) -> Result<Audio> {
        let (from_s, to_s) = (self.wall(from), self.wall(to));
        let mut best: Option<(Duration, Audio, SystemTime)> = None;
        for path in self.ua.recordings() {
            let audio = Audio::read(&path)?;
            let end = modified(&path)?;
            let start = end.checked_sub(audio.duration()).unwrap_or(end);
            let overlap_start = start.max(from_s);
            let overlap_end = end.min(to_s);
            let overlap = overlap_end
                .duration_since(overlap_start)
                .unwrap_or(Duration::ZERO);
            if best.as_ref().is_none_or(|(o, _, _)| overlap > *o) {
                best = Some((overlap, audio, start));
            }
        }
        let Some((_, audio, start)) = best else {
            return Err(HarnessError::Missing {
                what: format!("a recording of what {} heard", self.name()),
                path: self.ua.dir().join("rec"),
                hint: format!("events: {}", self.ua.event_summary()),
            });
        };
        let offset = from_s.duration_since(start).unwrap_or(Duration::ZERO);
        Ok(audio.slice(offset, to.saturating_duration_since(from)))
    }

    fn wall(&self, at: Instant) -> SystemTime {
        let (wall, mono) = self.anchor;
        if at >= mono {
            wall + (at - mono)
        } else {
            wall.checked_sub(mono - at).unwrap_or(wall)
        }
    }
}

fn modified(path: &Path) -> Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| HarnessError::io(format!("stat {}", path.display()), e))
}
