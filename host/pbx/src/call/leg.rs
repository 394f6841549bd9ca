//! One leg of a session: its signalling (SIP dialog, dialer, lifecycle) and its RTP socket
//! and SDP. Its media (RTP session, player, collector, bridge or room, hold, mute) lives in
//! the session's `pbx_call::MediaPlane` under the same id.
//!
//! Invariants: a leg is owned by exactly one session actor; while it travels to another
//! session (hand-over) its media travels with it in `media_in_transit`, and nowhere else.

use std::net::SocketAddr;

use pbx_plugin::Direction;
use pbx_sip::CallKey;
use pbx_store::CallRecord;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::state::CallState;
use pbx_call::dialer::{AttemptId, Dialer};

/// The leg's RTP socket and our side of its SDP (the media itself is in the plane).
pub(crate) struct LegRtp {
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
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
    pub(crate) direction: Direction,
    pub(crate) record: CallRecord,
    pub(crate) state: CallState,
    /// The SIP dialog: the inbound INVITE, or the winning attempt of an outbound leg.
    pub(crate) key: Option<CallKey>,
    /// Outbound legs while dialing: each SIP attempt and its key.
    pub(crate) attempts: Vec<(AttemptId, CallKey)>,
    pub(crate) dialer: Option<Dialer>,
    /// The dial options' caller and headers, kept for attempts started later.
    pub(crate) dial: Option<DialParams>,
    /// The RTP socket and our SDP, once the leg has media.
    pub(crate) rtp: Option<LegRtp>,
    /// The leg's media while it travels to another session (hand-over).
    pub(crate) media_in_transit: Option<pbx_call::LegMedia>,
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
    /// Whether the leg is written to call history: false for an inbound leg until its number
    /// is routed to an app, so INVITEs that reach no app never become history rows.
    pub(crate) in_history: bool,
    /// When an answered leg is ended regardless of media (the server's maximum call length).
    pub(crate) max_end: Option<Instant>,
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
        direction: Direction,
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
            rtp: None,
            media_in_transit: None,
            bye_deadline: None,
            connect_on_answer: None,
            answer_on_answer: None,
            transfer: None,
            told_ringing: false,
            told_early: false,
            in_history: true,
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

    /// Forgets the pending transfer wiring that ties the leg to its session before it moves
    /// to another session (the plane forgets its bridge, room and music).
    pub(crate) fn reset_for_move(&mut self) {
        self.connect_on_answer = None;
        self.answer_on_answer = None;
        self.transfer = None;
    }
}
