//! pbx-media: the sans-IO media core of pbx: SDP offer/answer (and hold re-offers), RTP
//! sessions, G.711 and PCMU/PCMA transcoding, bridge relay, the N-1 conference mixer, RFC 4733
//! DTMF, the jitter buffer, the playback queue, the digit collector, audio file decoding,
//! resampling, text to speech (validation and cache; the engine is the shell's), streaming WAV
//! recording into any writer and the built-in music on hold.
//!
//! Invariants: nothing in this crate touches sockets, tokio or the clock (`now` is always an
//! argument; `clippy.toml` forbids `Instant::now`); the per-packet and per-frame paths (RTP
//! parse/write, G.711, [`RtpSession`] receive/send and relay, [`Player::next_frame`],
//! [`Mixer::push`]/[`Mixer::mix`], [`transcode`]) never allocate.
//! It runs no process and opens no file (`clippy.toml` forbids them): the espeak-ng engine
//! and the recording files are the shell's. Audio inside a graph is mono 16-bit PCM in
//! 20 ms frames.
#![cfg_attr(test, allow(clippy::unwrap_used, reason = "tests may unwrap"))]
#![warn(missing_docs)]

pub mod audiofile;
pub mod bridge;
pub mod collect;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod mixer;
pub mod music;
pub mod pcm;
pub mod player;
pub mod recorder;
pub mod resample;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod tts;

pub use audiofile::{AudioError, AudioFormat, AudioInfo};
pub use bridge::{relay_possible, transcode};
pub use collect::{CollectEnd, CollectError, CollectOpts, Collected, Collector};
pub use dtmf::{Digit, DtmfReceiver, DtmfSender, TelephoneEvent};
pub use g711::Codec;
pub use jitter::{JitterBuffer, Pop};
pub use mixer::Mixer;
pub use music::default_music;
pub use pcm::{FRAME_MS, Pcm, samples_per_frame};
pub use player::{MediaKind, PlayOpts, Player, PlayerEvent};
pub use recorder::{RecordError, WavRecorder};
pub use resample::{ResampleError, resample};
pub use rtp::{RtpError, RtpHeader, RtpPacket};
pub use sdp::{
    Direction, Negotiated, SdpError, SessionDescription, accept_answer, negotiate, offer, reoffer,
};
pub use session::{MediaEvent, RawInput, RtpSession, RtpStats, SessionConfig, SessionError};
pub use tts::{Tts, TtsEngine, TtsError};

/// An arbitrary starting instant for unit tests in virtual time; every later time is derived
/// from it, so this is the only clock read in the crate's tests.
#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests need one real Instant as the origin of virtual time"
)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
