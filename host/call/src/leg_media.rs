//! The media half of one leg: its RTP session, what the app plays to it, its digit
//! collector, the host's music, hold and mute, and what it is connected to.
//!
//! Invariants: a leg is in at most one bridge or room (`attach`); its player only plays what
//! the app asked for, and the host's music loops beside it in `music`, never reported to the
//! app; a held leg neither sends audio to its peers nor hears them (it hears its music).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbx_media::collect::Collector;
use pbx_media::pcm::Pcm;
use pbx_media::player::{PlayOpts, Player};
use pbx_media::sdp::Negotiated;
use pbx_media::session::RtpSession;

use crate::music::MusicLoop;
use crate::{FRAME, Frame, RATE};

/// What a leg is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Attach {
    #[default]
    None,
    /// Bridged with another leg: each hears the other.
    Bridge(String),
    /// A participant of a conference room.
    Room(String),
}

/// A `say` or `play` waiting for its audio, kept in request order.
#[derive(Debug)]
pub(crate) struct PendingClip {
    pub(crate) id: u64,
    pub(crate) opts: PlayOpts,
    pub(crate) clip: Option<Result<Arc<Pcm>, String>>,
}

/// The media half of one leg. It travels whole when a leg is handed over to another plane.
pub struct LegMedia {
    pub(crate) id: String,
    /// Present once the far end's SDP is known (at once for inbound legs).
    pub(crate) rtp: Option<RtpSession>,
    pub(crate) negotiated: Option<Negotiated>,
    /// True once audio flows (answered, or early media either way).
    pub(crate) flowing: bool,
    /// True once answered: only answered legs relay without decoding, and only they can
    /// time out for want of media.
    pub(crate) answered: bool,
    /// True once the shell started to end the leg (our BYE is out): it no longer times out
    /// or relays.
    pub(crate) ending: bool,
    pub(crate) player: Player,
    pub(crate) collector: Collector,
    pub(crate) pending: VecDeque<PendingClip>,
    pub(crate) attach: Attach,
    /// The mixer key of this leg in its room, while `attach` is a room.
    pub(crate) room_key: Option<u64>,
    pub(crate) held: bool,
    pub(crate) mute_in: bool,
    pub(crate) mute_out: bool,
    /// This tick's input (what the party said), after mute and hold.
    pub(crate) input: Frame,
    /// This tick's output (what we sent), for recordings.
    pub(crate) output: Frame,
    /// The bridged leg's slot while packets are relayed without decoding (decided each tick;
    /// relay is always both ways).
    pub(crate) relay_peer: Option<usize>,
    pub(crate) music: Option<MusicLoop>,
    /// When the leg last received a datagram, or its media terms last changed: the shell's
    /// RTP inactivity timeout counts from here.
    pub(crate) media_seen: Option<Instant>,
}

impl std::fmt::Debug for LegMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegMedia")
            .field("id", &self.id)
            .field("attach", &self.attach)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl LegMedia {
    pub(crate) fn new(id: &str) -> Self {
        LegMedia {
            id: id.to_owned(),
            rtp: None,
            negotiated: None,
            flowing: false,
            answered: false,
            ending: false,
            player: Player::new(RATE),
            collector: Collector::new(),
            pending: VecDeque::new(),
            attach: Attach::None,
            room_key: None,
            held: false,
            mute_in: false,
            mute_out: false,
            input: [0; FRAME],
            output: [0; FRAME],
            relay_peer: None,
            music: None,
            media_seen: None,
        }
    }

    /// When the leg ends for want of media: an answered leg that expects media from its
    /// peer (neither side holds it, not ending), `timeout` after it last received a datagram
    /// or its media terms last changed.
    pub(crate) fn inactivity_deadline(&self, timeout: Duration) -> Option<Instant> {
        if !self.answered || self.held || self.ending {
            return None;
        }
        if !self.negotiated.as_ref()?.remote_direction.sends() {
            return None;
        }
        Some(self.media_seen? + timeout)
    }

    /// True when the leg has audio to exchange this tick.
    pub(crate) fn has_media(&self) -> bool {
        self.flowing && self.rtp.is_some()
    }

    /// Forgets everything that ties the leg to its plane (relay slot, bridge, room, host
    /// music, a digit collection the app there started) before it moves to another plane.
    pub(crate) fn reset_for_move(&mut self) {
        self.relay_peer = None;
        self.attach = Attach::None;
        self.room_key = None;
        self.music = None;
        self.collector = Collector::new();
    }
}
