//! One leg of a session: its SIP side, its RTP socket and session, and what it hears.
//!
//! Invariants: a leg is owned by exactly one session actor; it is in at most one bridge or
//! conference (`attach`); its player only plays what the app asked for, and the host's own
//! music (hold, transfer) loops beside it in `music`, never reported to the app.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use pbx_media::collect::Collector;
use pbx_media::pcm::Pcm;
use pbx_media::player::{PlayOpts, Player};
use pbx_media::sdp::Negotiated;
use pbx_media::session::RtpSession;
use pbx_sip::CallKey;
use pbx_store::CallRecord;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::dialer::{AttemptId, Dialer};
use super::state::CallState;

/// The rate of the session's audio graph: G.711 is 8 kHz.
pub(crate) const RATE: u32 = 8000;
/// Samples in one 20 ms frame at `RATE`.
pub(crate) const FRAME: usize = (RATE / 50) as usize;

/// Which way the leg was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegDirection {
    Inbound,
    Outbound,
}

/// What a leg is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Attach {
    #[default]
    None,
    /// Bridged with another leg of the session.
    Bridge(String),
    /// A participant of a conference of the session.
    Conference(String),
}

/// A `say` or `play` waiting for its audio, kept in request order.
pub(crate) struct PendingMedia {
    pub(crate) id: u64,
    pub(crate) opts: PlayOpts,
    pub(crate) clip: Option<Result<Arc<Pcm>, String>>,
}

/// The RTP side of a leg.
pub(crate) struct LegMedia {
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    /// Present once the far end's SDP is known (at once for inbound legs).
    pub(crate) session: Option<RtpSession>,
    pub(crate) negotiated: Option<Negotiated>,
    /// Our SDP offer (outbound legs) or answer (inbound legs).
    pub(crate) local_sdp: String,
    /// Bumped for every re-INVITE we send.
    pub(crate) sdp_version: u64,
    pub(crate) session_id: u64,
}

/// What the leg does for a transfer under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransferRole {
    /// This agent leg consults `consult` while `held` waits with music.
    Consulting { held: String, consult: String },
}

/// One leg of the session.
pub(crate) struct Leg {
    pub(crate) id: String,
    pub(crate) direction: LegDirection,
    pub(crate) record: CallRecord,
    pub(crate) state: CallState,
    /// The SIP dialog: the inbound INVITE, or the winning attempt of an outbound leg.
    pub(crate) key: Option<CallKey>,
    /// Outbound legs while dialing: each SIP attempt and its key.
    pub(crate) attempts: Vec<(AttemptId, CallKey)>,
    pub(crate) dialer: Option<Dialer>,
    /// The dial options' caller and headers, kept for attempts started later.
    pub(crate) dial: Option<DialParams>,
    pub(crate) media: Option<LegMedia>,
    /// True once RTP flows (answered, or early media either way).
    pub(crate) flowing: bool,
    pub(crate) player: Player,
    pub(crate) collector: Collector,
    pub(crate) pending: VecDeque<PendingMedia>,
    pub(crate) attach: Attach,
    /// The mixer key of this leg in its conference, while `attach` is a conference.
    pub(crate) conf_key: Option<u64>,
    pub(crate) held: bool,
    pub(crate) mute_in: bool,
    pub(crate) mute_out: bool,
    /// When our BYE is out: the time after which we stop waiting for its outcome.
    pub(crate) bye_deadline: Option<Instant>,
    /// For dial-and-connect and transfers: the leg to bridge with once this one answers.
    pub(crate) connect_on_answer: Option<String>,
    /// For dial-and-connect: the inbound leg that hears this one's progress and is answered
    /// when it answers.
    pub(crate) answer_on_answer: Option<String>,
    pub(crate) transfer: Option<TransferRole>,
    /// Whether the app heard `on-call-ringing` / `on-call-early-media` already.
    pub(crate) told_ringing: bool,
    pub(crate) told_early: bool,
    /// This tick's input (what the party said), after `mute_in`.
    pub(crate) input: [i16; FRAME],
    /// This tick's output (what we send), for recordings.
    pub(crate) output: [i16; FRAME],
    /// The bridged leg this leg's packets are forwarded to, and whose packets are forwarded
    /// to this leg, without decoding (decided each tick; relay is always both ways).
    pub(crate) relay_peer: Option<usize>,
    /// The host's own music (hold, transfer), mixed with the app's media.
    pub(crate) music: Option<MusicLoop>,
    /// Whether the leg is written to call history: false for an inbound leg until its number
    /// is routed to an app, so INVITEs that reach no app never become history rows.
    pub(crate) in_history: bool,
    /// When the leg last received a datagram on its RTP socket (or started to expect media):
    /// the RTP inactivity timeout counts from here.
    pub(crate) media_seen: Option<Instant>,
    /// When an answered leg is ended regardless of media (the server's maximum call length).
    pub(crate) max_end: Option<Instant>,
}

/// An endless loop over a clip: the host's music, apart from the app's player.
pub(crate) struct MusicLoop {
    clip: Arc<Pcm>,
    pos: usize,
}

impl MusicLoop {
    /// A loop from the start of `clip`.
    pub(crate) fn new(clip: Arc<Pcm>) -> Self {
        MusicLoop { clip, pos: 0 }
    }

    /// Adds the next frame of the loop into `out`, saturating.
    pub(crate) fn mix_into(&mut self, out: &mut [i16]) {
        let samples = &self.clip.samples;
        if samples.is_empty() {
            return;
        }
        for sample in out.iter_mut() {
            if self.pos >= samples.len() {
                self.pos = 0;
            }
            *sample = sample.saturating_add(samples[self.pos]);
            self.pos += 1;
        }
    }
}

/// What a dial needs beyond its targets.
#[derive(Debug, Clone)]
pub(crate) struct DialParams {
    pub(crate) from_user: String,
    pub(crate) from_display: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Leg {
    pub(crate) fn new(
        id: String,
        direction: LegDirection,
        record: CallRecord,
        state: CallState,
    ) -> Self {
        Leg {
            id,
            direction,
            record,
            state,
            key: None,
            attempts: Vec::new(),
            dialer: None,
            dial: None,
            media: None,
            flowing: false,
            player: Player::new(RATE),
            collector: Collector::new(),
            pending: VecDeque::new(),
            attach: Attach::None,
            conf_key: None,
            held: false,
            mute_in: false,
            mute_out: false,
            bye_deadline: None,
            connect_on_answer: None,
            answer_on_answer: None,
            transfer: None,
            told_ringing: false,
            told_early: false,
            input: [0; FRAME],
            output: [0; FRAME],
            relay_peer: None,
            music: None,
            in_history: true,
            media_seen: None,
            max_end: None,
        }
    }

    /// True once the leg reached hangup.
    pub(crate) fn is_over(&self) -> bool {
        self.state.is_over()
    }

    pub(crate) fn is_answered(&self) -> bool {
        self.state.is_answered()
    }

    /// The RTP session, once media is negotiated.
    pub(crate) fn rtp(&mut self) -> Option<&mut RtpSession> {
        self.media.as_mut().and_then(|m| m.session.as_mut())
    }

    /// True when the leg has audio to exchange this tick.
    pub(crate) fn has_media(&self) -> bool {
        self.flowing && !self.is_over() && self.media.as_ref().is_some_and(|m| m.session.is_some())
    }

    /// Forgets everything that ties the leg to its session (relay indices, bridge, conference,
    /// host music, pending transfer wiring) before it moves to another session.
    pub(crate) fn reset_for_move(&mut self) {
        self.relay_peer = None;
        self.attach = Attach::None;
        self.conf_key = None;
        self.music = None;
        self.connect_on_answer = None;
        self.answer_on_answer = None;
        self.transfer = None;
    }

    /// Starts the host's own music (hold, transfer), beside whatever the app plays.
    pub(crate) fn start_music(&mut self, clip: Arc<Pcm>) {
        self.music = Some(MusicLoop { clip, pos: 0 });
    }
}
