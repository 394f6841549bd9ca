//! pbx-call: the sans-IO call core, in the shape of `pbx-sip` and of str0m and quinn-proto.
//!
//! [`MediaPlane`] holds the media half of every leg it is given (a leg splits into its
//! signalling, which stays with the SIP side of the shell, and its media, which lives here)
//! and everything that connects legs: bridges (decoded, or relayed packet by packet when
//! nothing needs the audio), conference rooms (an N-1 mixer with announcements and music
//! while someone is alone), the host's own music (hold, transfer) and recording taps.
//!
//! The contract, as str0m states its own: time, bytes and randomness are inputs
//! (`handle_rtp(now, ..)`, `handle_tick(now)`, `handle_clip(..)`, `handle_timeout(now)`);
//! every call that changes the plane is followed by a complete drain of
//! [`MediaPlane::poll_transmit`] (datagrams to send, by leg) and [`MediaPlane::poll_output`]
//! (digits, finished media, collected digits, recording frames), in that order of
//! importance, and the shell sleeps until [`MediaPlane::poll_timeout`] or the next 20 ms tick.
//! The crate never touches tokio, sockets, files, processes or the clock (`clippy.toml`
//! forbids them), so a bridge, a conference, a hold or a hand-over is a unit test that runs a
//! minute of calls in milliseconds (`tests/`).

pub mod dialer;
mod leg_media;
mod music;
mod output;
mod plane;
mod room;
mod tap;

pub use leg_media::{Attach, LegMedia};
pub use music::MusicLoop;
pub use output::{ClipOwner, MediaOutput, TapFrame, Transmit};
pub use plane::MediaPlane;
pub use tap::{TapKey, TapLayout, TapTarget};

/// The rate of the call audio graph: G.711 is 8 kHz.
pub const RATE: u32 = 8000;
/// Samples in one 20 ms frame at [`RATE`].
pub const FRAME: usize = (RATE / 50) as usize;
/// The length of one tick of the graph.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(20);

/// One 20 ms frame of 16-bit audio at [`RATE`].
pub type Frame = [i16; FRAME];
