//! What the media plane asks of the shell: datagrams to send and events to deliver.
//!
//! Invariants: outputs come out in the order their causes happened (a key press is reported
//! before the media it stopped, and that before the digits it completed); a transmit borrows
//! the plane's send buffer, so it is sent before the next call into the plane.

use std::net::SocketAddr;

use pbx_media::collect::Collected;
use pbx_media::dtmf::Digit;
use pbx_media::player::MediaKind;

use crate::Frame;
use crate::tap::TapKey;

/// Who a clip (a `say` or `play`) is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipOwner {
    /// A leg's own player.
    Leg(String),
    /// A conference room's announcements.
    Room(String),
}

/// One datagram to send from a leg's RTP socket.
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// The leg whose socket sends it.
    pub leg: &'a str,
    pub to: SocketAddr,
    pub bytes: &'a [u8],
}

/// The samples of one recording file for one tick.
#[allow(
    clippy::large_enum_variant,
    reason = "moved once per tick and file; boxing would allocate each frame"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapFrame {
    Mono(Frame),
    Stereo(Frame, Frame),
}

/// An event of the plane, for the app or the shell.
#[allow(
    clippy::large_enum_variant,
    reason = "recording frames are the common output; boxing would allocate each frame"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOutput {
    /// A key press on a leg (RFC 4733 or SIP INFO), one per press.
    Digit { leg: String, digit: Digit },
    /// A clip finished, was stopped, or could never play (`error`).
    Finished {
        owner: ClipOwner,
        id: u64,
        kind: MediaKind,
        played_completely: bool,
        digit: Option<Digit>,
        /// Why the clip never played (its audio could not be produced).
        error: Option<String>,
    },
    /// A digit collection on a leg ended.
    Collected { leg: String, collected: Collected },
    /// One tick of one recording file, for the shell's writer.
    Record {
        tap: TapKey,
        file: usize,
        frame: TapFrame,
    },
    /// A recording reached its maximum duration: the shell stops it.
    TapFull { tap: TapKey },
}
