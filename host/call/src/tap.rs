//! A recording tap: which legs or room a recording captures and how its files are laid out.
//! The shell owns the files; the plane hands it one frame per file per tick.
//!
//! Invariants: every file of a tap gets exactly one frame each tick while the tap runs (silence
//! once its participant left), so all files keep the same length; a tap reports `TapFull`
//! once, when it reaches its maximum length.

use crate::FRAME;

/// The plane's handle of one tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapKey(pub u64);

/// What a tap captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapTarget {
    /// One leg: what it says and what it hears.
    Leg(String),
    /// A leg and whoever it is bridged with now (a transfer changes the peer, not the file).
    Bridge(String),
    /// A conference room.
    Room(String),
}

/// How a tap's files are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapLayout {
    /// One mono file, everything mixed.
    Mixed,
    /// One stereo file: the leg (or the first participant) left, the rest right.
    Stereo,
    /// One mono file per party. For a leg: the leg, then what pbx sends it; for a bridge:
    /// the leg, then its peer; for a room: one file per label (a participant's leg id).
    PerParticipant(Vec<String>),
}

/// A running tap.
#[derive(Debug)]
pub(crate) struct Tap {
    pub(crate) key: TapKey,
    pub(crate) target: TapTarget,
    pub(crate) layout: TapLayout,
    pub(crate) frames: u64,
    pub(crate) max_frames: u64,
    pub(crate) full_reported: bool,
}

impl Tap {
    /// True once the tap reached its maximum length.
    pub(crate) fn is_full(&self) -> bool {
        self.frames >= self.max_frames
    }
}

/// `a + b`, saturating, sample by sample.
pub(crate) fn mix_two(a: &[i16; FRAME], b: &[i16; FRAME]) -> [i16; FRAME] {
    let mut out = [0i16; FRAME];
    for ((o, x), y) in out.iter_mut().zip(a.iter()).zip(b.iter()) {
        *o = x.saturating_add(*y);
    }
    out
}
