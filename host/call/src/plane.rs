//! The media plane: every leg's media, the bridges and rooms between them, host music and
//! recording taps, driven by RTP as it arrives and by one 20 ms tick for all of them.
//!
//! Invariants: a tick reads every leg's input once, mixes every room once, sends every leg one
//! frame and writes every tap one frame, in that order, so what a recording holds is exactly
//! what the parties heard; two bridged legs with the same codec and nothing that needs their
//! audio relay packets as they arrive (decided at the end of each tick, cancelled at once by
//! any change to either leg); nothing here reads the clock, and a leg or room that is gone
//! is ignored, never an error, because the shell may learn of an end later than the plane.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbx_media::collect::{CollectError, CollectOpts};
use pbx_media::dtmf::Digit;
use pbx_media::pcm::Pcm;
use pbx_media::player::{PlayOpts, Player, PlayerEvent};
use pbx_media::sdp::Negotiated;
use pbx_media::session::{MediaEvent, RawInput, RtpSession, SessionError};

use crate::leg_media::{Attach, LegMedia, PendingClip};
use crate::music::MusicLoop;
use crate::output::{ClipOwner, MediaOutput, TapFrame, Transmit};
use crate::room::Room;
use crate::tap::{Tap, TapKey, TapLayout, TapTarget, mix_two};
use crate::{FRAME, Frame};

/// The largest datagram a leg sends.
const MAX_DATAGRAM: usize = 1500;

/// Datagrams queued for the shell: their bytes in one buffer, reused between drains.
#[derive(Debug, Default)]
struct SendQueue {
    bytes: Vec<u8>,
    /// Leg slot, destination, and the datagram's range in `bytes`.
    queue: VecDeque<(usize, SocketAddr, usize, usize)>,
}

/// The media of a set of legs and what connects them. See the module header.
pub struct MediaPlane {
    legs: Vec<LegMedia>,
    rooms: Vec<Room>,
    taps: Vec<Tap>,
    next_tap: u64,
    /// The built-in music: hold, transfer, a participant alone.
    music: Arc<Pcm>,
    outputs: VecDeque<MediaOutput>,
    send: SendQueue,
    /// A copy of the payload being relayed: the receiving leg's session lends it while the
    /// sending leg's session writes.
    scratch: [u8; MAX_DATAGRAM],
}

impl std::fmt::Debug for MediaPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPlane")
            .field("legs", &self.legs.len())
            .field("rooms", &self.rooms.len())
            .field("taps", &self.taps.len())
            .finish_non_exhaustive()
    }
}

impl MediaPlane {
    /// An empty plane whose built-in music is `music`.
    pub fn new(music: Arc<Pcm>) -> Self {
        MediaPlane {
            legs: Vec::new(),
            rooms: Vec::new(),
            taps: Vec::new(),
            next_tap: 1,
            music,
            outputs: VecDeque::new(),
            send: SendQueue::default(),
            scratch: [0; MAX_DATAGRAM],
        }
    }

    // ----- getters ------------------------------------------------------------------------

    /// A leg's media, if the plane holds it.
    pub fn leg(&self, id: &str) -> Option<&LegMedia> {
        self.legs.iter().find(|l| l.id == id)
    }

    fn slot(&self, id: &str) -> Option<usize> {
        self.legs.iter().position(|l| l.id == id)
    }

    fn leg_mut(&mut self, id: &str) -> Option<&mut LegMedia> {
        self.legs.iter_mut().find(|l| l.id == id)
    }

    /// What the leg is connected to.
    pub fn attach(&self, id: &str) -> Attach {
        self.leg(id).map(|l| l.attach.clone()).unwrap_or_default()
    }

    /// The leg it is bridged with.
    pub fn bridge_peer(&self, id: &str) -> Option<String> {
        match self.leg(id)?.attach {
            Attach::Bridge(ref peer) => Some(peer.clone()),
            _ => None,
        }
    }

    /// True while the leg is held.
    pub fn is_held(&self, id: &str) -> bool {
        self.leg(id).is_some_and(|l| l.held)
    }

    /// True while some leg exchanges audio: the shell ticks only then.
    pub fn needs_tick(&self) -> bool {
        self.legs.iter().any(LegMedia::has_media)
    }

    /// True once audio flows on the leg.
    pub fn is_flowing(&self, id: &str) -> bool {
        self.leg(id).is_some_and(|l| l.flowing)
    }

    /// The media terms negotiated for the leg.
    pub fn negotiated(&self, id: &str) -> Option<&Negotiated> {
        self.leg(id)?.negotiated.as_ref()
    }

    /// The leg's RTP session, for its statistics.
    pub fn rtp(&self, id: &str) -> Option<&RtpSession> {
        self.leg(id)?.rtp.as_ref()
    }

    /// When the leg last received a datagram or its media terms last changed.
    pub fn media_seen(&self, id: &str) -> Option<Instant> {
        self.leg(id)?.media_seen
    }

    /// When the next leg runs out of media (see [`MediaPlane::inactive_legs`]).
    pub fn inactivity_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.legs
            .iter()
            .filter_map(|l| l.inactivity_deadline(timeout))
            .min()
    }

    /// The legs that have run out of media at `now`: answered, expecting media from their
    /// peer (neither side holds them, not ending), and silent for `timeout` since their last
    /// datagram or their last change of media terms.
    pub fn inactive_legs(&self, now: Instant, timeout: Duration) -> Vec<String> {
        self.legs
            .iter()
            .filter(|l| l.inactivity_deadline(timeout).is_some_and(|t| t <= now))
            .map(|l| l.id.clone())
            .collect()
    }

    /// True when a relay between the two legs is in force this tick (packets pass without
    /// being decoded).
    pub fn is_relaying(&self, id: &str) -> bool {
        self.leg(id).is_some_and(|l| l.relay_peer.is_some())
    }

    /// The members of a room, in the order they joined.
    pub fn room_members(&self, room: &str) -> Vec<String> {
        self.rooms
            .iter()
            .find(|r| r.id == room)
            .map(|r| r.members.iter().map(|(id, _)| id.clone()).collect())
            .unwrap_or_default()
    }

    // ----- handlers -----------------------------------------------------------------------

    /// A datagram arrived on the leg's RTP socket from `from`.
    pub fn handle_rtp(&mut self, now: Instant, leg: &str, from: SocketAddr, packet: &[u8]) {
        let Some(slot) = self.slot(leg) else {
            return;
        };
        self.legs[slot].media_seen = Some(now);
        if let Some(peer) = self.legs[slot].relay_peer {
            let Some(rtp) = self.legs[slot].rtp.as_mut() else {
                return;
            };
            match rtp.handle_input_raw(now, from, packet) {
                RawInput::Audio { payload, .. } => {
                    let len = payload.len().min(MAX_DATAGRAM);
                    self.scratch[..len].copy_from_slice(&payload[..len]);
                    let payload = &self.scratch[..len];
                    let mut out = [0u8; MAX_DATAGRAM];
                    if let Some(dst) = self.legs.get_mut(peer)
                        && let Some(rtp) = dst.rtp.as_mut()
                        && let Some((to, n)) = rtp.send_payload(payload, &mut out)
                    {
                        queue_send(&mut self.send, peer, to, &out[..n]);
                    }
                }
                RawInput::Dtmf(digit) => self.digit_at(now, slot, digit),
                RawInput::Nothing => {}
            }
            return;
        }
        let Some(rtp) = self.legs[slot].rtp.as_mut() else {
            return;
        };
        if let Some(MediaEvent::Dtmf { digit }) = rtp.handle_input(now, from, packet) {
            self.digit_at(now, slot, digit);
        }
    }

    /// A key press that came by signalling (SIP INFO): handled as one from RTP.
    pub fn handle_digit(&mut self, now: Instant, leg: &str, digit: Digit) {
        if let Some(slot) = self.slot(leg) {
            self.digit_at(now, slot, digit);
        }
    }

    /// A clip finished synthesising or decoding (or failed to): every ready clip at the head
    /// of its owner's queue goes to the player, keeping request order.
    pub fn handle_clip(&mut self, owner: &ClipOwner, id: u64, result: Result<Arc<Pcm>, String>) {
        let Some((pending, player)) = clip_queue(&mut self.legs, &mut self.rooms, owner) else {
            return;
        };
        if let Some(p) = pending.iter_mut().find(|p| p.id == id) {
            p.clip = Some(result);
        }
        while pending.front().is_some_and(|p| p.clip.is_some()) {
            let Some(p) = pending.pop_front() else { break };
            match p.clip {
                Some(Ok(clip)) => player.enqueue(p.id, clip, p.opts),
                Some(Err(error)) => self.outputs.push_back(MediaOutput::Finished {
                    owner: owner.clone(),
                    id: p.id,
                    kind: p.opts.kind,
                    played_completely: false,
                    digit: None,
                    error: Some(error),
                }),
                None => {}
            }
        }
    }

    /// Digit collections whose time ran out end now.
    pub fn handle_timeout(&mut self, now: Instant) {
        for leg in &mut self.legs {
            if let Some(collected) = leg.collector.handle_timeout(now) {
                self.outputs.push_back(MediaOutput::Collected {
                    leg: leg.id.clone(),
                    collected,
                });
            }
        }
    }

    /// The 20 ms tick: read every leg's input, mix every room, send every leg its output,
    /// write every tap, and decide which bridges relay without decoding until the next tick.
    pub fn handle_tick(&mut self, _now: Instant) {
        self.read_inputs();
        self.mix_rooms();
        self.send_outputs();
        self.write_taps();
        self.plan_relays();
    }

    // ----- mutators -----------------------------------------------------------------------

    /// Adds a leg with no media yet (does nothing if the plane holds it already).
    pub fn add_leg(&mut self, id: &str) {
        if self.slot(id).is_none() {
            self.legs.push(LegMedia::new(id));
        }
    }

    /// Takes the far end's media terms for the leg (an answer, an offer we answered, or a
    /// re-INVITE): the RTP session is kept if the codec stays, else a new one starts with
    /// `session`. The inactivity clock restarts; audio flows once `start_flowing` says so.
    pub fn set_remote(
        &mut self,
        now: Instant,
        leg: &str,
        negotiated: Negotiated,
        session: impl FnOnce(&Negotiated) -> RtpSession,
    ) {
        let Some(slot) = self.slot(leg) else {
            return;
        };
        let l = &mut self.legs[slot];
        match l.rtp.as_mut() {
            Some(rtp)
                if l.negotiated
                    .as_ref()
                    .is_some_and(|n| n.codec == negotiated.codec) =>
            {
                rtp.set_remote(negotiated.remote_rtp, negotiated.direction);
            }
            _ => l.rtp = Some(session(&negotiated)),
        }
        l.negotiated = Some(negotiated);
        l.media_seen = Some(now);
        self.forget_relays();
    }

    /// Audio starts to flow on the leg (answered, or early media): only when it has an RTP
    /// session. Returns whether it flows.
    pub fn start_flowing(&mut self, leg: &str) -> bool {
        let Some(l) = self.leg_mut(leg) else {
            return false;
        };
        l.flowing = l.rtp.is_some();
        l.flowing
    }

    /// The shell started to end the leg (our BYE is out): it no longer times out, and its
    /// bridge is decoded again until it is removed.
    pub fn set_ending(&mut self, leg: &str) {
        self.forget_relays();
        if let Some(l) = self.leg_mut(leg) {
            l.ending = true;
        }
    }

    /// The leg is answered: from now on it may relay.
    pub fn set_answered(&mut self, leg: &str) {
        if let Some(l) = self.leg_mut(leg) {
            l.answered = true;
        }
    }

    /// The inactivity clock of the leg restarts now (answered, held, resumed).
    pub fn restart_media_clock(&mut self, now: Instant, leg: &str) {
        if let Some(l) = self.leg_mut(leg) {
            l.media_seen = Some(now);
        }
    }

    /// Removes a leg (it ended): its media is stopped and reported, its collection cancelled,
    /// it leaves its bridge (the peer is detached) and its room. The taps that follow it stay
    /// until the shell stops them.
    pub fn remove_leg(&mut self, leg: &str) {
        if self.slot(leg).is_none() {
            return;
        }
        self.stop_media(&ClipOwner::Leg(leg.to_owned()));
        self.cancel_collect(leg);
        self.leave_room(leg);
        self.detach(leg);
        self.forget_relays();
        self.legs.retain(|l| l.id != leg);
    }

    /// Takes a leg out to move it to another plane (hand-over): it leaves its bridge and room
    /// and loses the host's music; its RTP session, player state and collector go with it.
    pub fn take_leg(&mut self, leg: &str) -> Option<LegMedia> {
        self.leave_room(leg);
        self.detach(leg);
        self.forget_relays();
        let slot = self.slot(leg)?;
        let mut media = self.legs.remove(slot);
        media.reset_for_move();
        Some(media)
    }

    /// Puts a leg taken from another plane into this one.
    pub fn insert_leg(&mut self, media: LegMedia) {
        self.legs.retain(|l| l.id != media.id);
        self.legs.push(media);
    }

    /// Queues a clip for an owner, in request order; its audio arrives with `handle_clip`.
    /// Returns false when the owner is gone.
    pub fn queue_clip(&mut self, owner: &ClipOwner, id: u64, opts: PlayOpts) -> bool {
        let pending = PendingClip {
            id,
            opts,
            clip: None,
        };
        match clip_queue(&mut self.legs, &mut self.rooms, owner) {
            Some((q, _)) => {
                q.push_back(pending);
                self.forget_relays();
                true
            }
            None => false,
        }
    }

    /// Stops what plays to an owner and drops what waits: each is reported not completed.
    pub fn stop_media(&mut self, owner: &ClipOwner) {
        let Some((pending, player)) = clip_queue(&mut self.legs, &mut self.rooms, owner) else {
            return;
        };
        player.stop_all();
        let waiting: Vec<PendingClip> = pending.drain(..).collect();
        drain_player(&mut self.outputs, || owner.clone(), player);
        for p in waiting {
            self.outputs.push_back(MediaOutput::Finished {
                owner: owner.clone(),
                id: p.id,
                kind: p.opts.kind,
                played_completely: false,
                digit: None,
                error: None,
            });
        }
    }

    /// Starts collecting digits on the leg (a running collection is replaced and reported).
    pub fn start_collect(
        &mut self,
        now: Instant,
        leg: &str,
        opts: CollectOpts,
    ) -> Result<(), CollectError> {
        let Some(l) = self.leg_mut(leg) else {
            return Ok(());
        };
        let previous = l.collector.start(now, opts)?;
        if let Some(collected) = previous {
            self.outputs.push_back(MediaOutput::Collected {
                leg: leg.to_owned(),
                collected,
            });
        }
        Ok(())
    }

    /// Cancels the leg's digit collection, reporting it if one ran.
    pub fn cancel_collect(&mut self, leg: &str) {
        if let Some(l) = self.leg_mut(leg)
            && let Some(collected) = l.collector.cancel()
        {
            self.outputs.push_back(MediaOutput::Collected {
                leg: leg.to_owned(),
                collected,
            });
        }
    }

    /// Sends RFC 4733 digits on the leg.
    pub fn send_digits(
        &mut self,
        leg: &str,
        digits: &[Digit],
        duration_ms: u32,
    ) -> Result<(), SessionError> {
        self.forget_relays();
        match self.leg_mut(leg).and_then(|l| l.rtp.as_mut()) {
            Some(rtp) => rtp.send_digits(digits, duration_ms),
            None => Ok(()),
        }
    }

    /// Bridges two legs: each hears the other. Each leaves the bridge it was in; the host's
    /// music ends unless the leg is held. The shell takes legs out of rooms first.
    pub fn bridge(&mut self, a: &str, b: &str) {
        if a == b || self.slot(a).is_none() || self.slot(b).is_none() {
            return;
        }
        self.detach(a);
        self.detach(b);
        for id in [a, b] {
            if let Some(l) = self.leg_mut(id)
                && !l.held
            {
                l.music = None;
            }
        }
        if let Some(l) = self.leg_mut(a) {
            l.attach = Attach::Bridge(b.to_owned());
        }
        if let Some(l) = self.leg_mut(b) {
            l.attach = Attach::Bridge(a.to_owned());
        }
    }

    /// Takes a leg out of its bridge (both sides). Rooms are left with `leave_room`.
    pub fn detach(&mut self, leg: &str) {
        self.forget_relays();
        let Some(l) = self.leg_mut(leg) else {
            return;
        };
        let Attach::Bridge(peer) = l.attach.clone() else {
            return;
        };
        l.attach = Attach::None;
        if let Some(p) = self.leg_mut(&peer)
            && p.attach == Attach::Bridge(leg.to_owned())
        {
            p.attach = Attach::None;
        }
    }

    /// Holds or resumes the leg. A held leg's voice reaches nobody and it hears `music` (the
    /// built-in music when `None`) instead of its peers; the inactivity clock restarts.
    pub fn hold(&mut self, now: Instant, leg: &str, hold: bool, music: Option<Arc<Pcm>>) {
        let default = self.music.clone();
        self.forget_relays();
        let Some(l) = self.leg_mut(leg) else {
            return;
        };
        if l.held == hold {
            return;
        }
        l.held = hold;
        l.media_seen = Some(now);
        l.music = hold.then(|| MusicLoop::new(music.unwrap_or(default)));
    }

    /// Starts the host's music on the leg (a transfer, a consultation), beside the app's media.
    pub fn start_music(&mut self, leg: &str, music: Option<Arc<Pcm>>) {
        let clip = music.unwrap_or_else(|| self.music.clone());
        self.forget_relays();
        if let Some(l) = self.leg_mut(leg) {
            l.music = Some(MusicLoop::new(clip));
        }
    }

    /// Stops the host's music on the leg.
    pub fn stop_music(&mut self, leg: &str) {
        if let Some(l) = self.leg_mut(leg) {
            l.music = None;
        }
    }

    /// Mutes or unmutes what the leg says (`inbound`) and what it hears (`outbound`).
    pub fn set_mute(&mut self, leg: &str, inbound: Option<bool>, outbound: Option<bool>) {
        self.forget_relays();
        if let Some(l) = self.leg_mut(leg) {
            if let Some(on) = inbound {
                l.mute_in = on;
            }
            if let Some(on) = outbound {
                l.mute_out = on;
            }
        }
    }

    /// Opens a room (does nothing if it is open).
    pub fn add_room(&mut self, room: &str, music_when_alone: bool) {
        if !self.rooms.iter().any(|r| r.id == room) {
            self.rooms.push(Room::new(room, music_when_alone));
        }
    }

    /// Closes a room: its members are detached, its announcements stopped and reported.
    pub fn remove_room(&mut self, room: &str) {
        self.stop_media(&ClipOwner::Room(room.to_owned()));
        for l in &mut self.legs {
            if l.attach == Attach::Room(room.to_owned()) {
                l.attach = Attach::None;
                l.room_key = None;
            }
        }
        self.rooms.retain(|r| r.id != room);
    }

    /// Puts a leg into a room (out of its bridge first; the host's music ends unless held).
    /// Returns false when the room or the leg is gone.
    pub fn join_room(&mut self, room: &str, leg: &str, muted: bool, deafened: bool) -> bool {
        if self.slot(leg).is_none() || !self.rooms.iter().any(|r| r.id == room) {
            return false;
        }
        self.detach(leg);
        self.leave_room(leg);
        let Some(r) = self.rooms.iter_mut().find(|r| r.id == room) else {
            return false;
        };
        let key = r.add(leg, muted, deafened);
        if let Some(l) = self.leg_mut(leg) {
            if !l.held {
                l.music = None;
            }
            l.attach = Attach::Room(room.to_owned());
            l.room_key = Some(key);
        }
        true
    }

    /// Takes the leg out of its room; returns the room it left.
    pub fn leave_room(&mut self, leg: &str) -> Option<String> {
        let l = self.leg_mut(leg)?;
        let Attach::Room(room) = l.attach.clone() else {
            return None;
        };
        l.attach = Attach::None;
        l.room_key = None;
        if let Some(r) = self.rooms.iter_mut().find(|r| r.id == room) {
            r.remove(leg);
        }
        Some(room)
    }

    /// Mutes a room member for everyone else.
    pub fn set_room_muted(&mut self, room: &str, leg: &str, muted: bool) {
        if let Some(r) = self.rooms.iter_mut().find(|r| r.id == room)
            && let Some(key) = r.key_of(leg)
        {
            r.mixer.set_muted(key, muted);
        }
    }

    /// Deafens a room member: it hears nobody.
    pub fn set_room_deafened(&mut self, room: &str, leg: &str, deafened: bool) {
        if let Some(r) = self.rooms.iter_mut().find(|r| r.id == room)
            && let Some(key) = r.key_of(leg)
        {
            r.mixer.set_deafened(key, deafened);
        }
    }

    /// Starts a tap of at most `max_frames` frames.
    pub fn start_tap(&mut self, target: TapTarget, layout: TapLayout, max_frames: u64) -> TapKey {
        let key = TapKey(self.next_tap);
        self.next_tap += 1;
        self.forget_relays();
        self.taps.push(Tap {
            key,
            target,
            layout,
            frames: 0,
            max_frames,
            full_reported: false,
        });
        key
    }

    /// Stops a tap; returns how many frames it wrote.
    pub fn stop_tap(&mut self, tap: TapKey) -> Option<u64> {
        let pos = self.taps.iter().position(|t| t.key == tap)?;
        Some(self.taps.remove(pos).frames)
    }

    // ----- polls --------------------------------------------------------------------------

    /// The next datagram to send. The shell sends it before calling into the plane again, and
    /// drains every transmit after every call (a queued transmit names its leg by slot).
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let Some((slot, to, start, len)) = self.send.queue.pop_front() else {
            self.send.bytes.clear();
            return None;
        };
        let leg = self.legs.get(slot).map_or("", |l| l.id.as_str());
        Some(Transmit {
            leg,
            to,
            bytes: &self.send.bytes[start..start + len],
        })
    }

    /// The next event.
    pub fn poll_output(&mut self) -> Option<MediaOutput> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` is next due (digit collections), besides the tick.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.legs
            .iter()
            .filter_map(|l| l.collector.poll_timeout())
            .min()
    }

    // ----- the tick -----------------------------------------------------------------------

    fn read_inputs(&mut self) {
        for leg in &mut self.legs {
            leg.input = [0; FRAME];
            if !leg.has_media() || leg.relay_peer.is_some() {
                continue;
            }
            if let Some(rtp) = leg.rtp.as_mut() {
                rtp.pull_audio(&mut leg.input);
            }
            if leg.mute_in || leg.held {
                leg.input = [0; FRAME];
            }
        }
    }

    fn mix_rooms(&mut self) {
        // Each member's input goes to its room under the key kept on the leg, so a tick
        // costs O(legs x rooms), not a search per member.
        for leg in &self.legs {
            if let (Attach::Room(room), Some(key)) = (&leg.attach, leg.room_key)
                && let Some(r) = self.rooms.iter_mut().find(|r| &r.id == room)
            {
                r.mixer.push(key, &leg.input);
            }
        }
        for r in &mut self.rooms {
            r.announcement = [0; FRAME];
            if r.player.next_frame(&mut r.announcement) {
                r.mixer.push_announcement(&r.announcement);
            }
            r.mixer.mix();
            drain_player(
                &mut self.outputs,
                || ClipOwner::Room(r.id.clone()),
                &mut r.player,
            );
            if !(r.music_when_alone && r.members.len() == 1) {
                r.music = None;
            }
        }
    }

    fn send_outputs(&mut self) {
        let mut frame: Frame = [0; FRAME];
        let mut app: Frame = [0; FRAME];
        let mut out = [0u8; MAX_DATAGRAM];
        for i in 0..self.legs.len() {
            if !self.legs[i].has_media() || self.legs[i].relay_peer.is_some() {
                continue;
            }
            frame.fill(0);
            let leg = &self.legs[i];
            if !leg.held && !leg.mute_out {
                match &leg.attach {
                    Attach::Bridge(peer) => {
                        if let Some(p) = self.legs.iter().find(|l| &l.id == peer)
                            && p.has_media()
                        {
                            frame.copy_from_slice(&p.input);
                        }
                    }
                    Attach::Room(room) => {
                        if let Some(r) = self.rooms.iter_mut().find(|r| &r.id == room)
                            && let Some(key) = leg.room_key
                        {
                            frame.copy_from_slice(r.mixer.output(key));
                            if r.music_when_alone && r.members.len() == 1 {
                                let music = &self.music;
                                r.music
                                    .get_or_insert_with(|| MusicLoop::new(music.clone()))
                                    .mix_into(&mut frame);
                            }
                        }
                    }
                    Attach::None => {}
                }
            }
            let leg = &mut self.legs[i];
            app.fill(0);
            if leg.player.next_frame(&mut app) {
                for (o, a) in frame.iter_mut().zip(app.iter()) {
                    *o = o.saturating_add(*a);
                }
            }
            if let Some(music) = leg.music.as_mut() {
                music.mix_into(&mut frame);
            }
            leg.output = frame;
            if let Some(rtp) = leg.rtp.as_mut()
                && let Some((to, len)) = rtp.send_frame(&frame, &mut out)
            {
                queue_send(&mut self.send, i, to, &out[..len]);
            }
            drain_player(
                &mut self.outputs,
                || ClipOwner::Leg(leg.id.clone()),
                &mut leg.player,
            );
        }
    }

    fn write_taps(&mut self) {
        for t in 0..self.taps.len() {
            let key = self.taps[t].key;
            let frames = match &self.taps[t].target {
                TapTarget::Leg(leg) => self.leg_tap_frames(leg, &self.taps[t].layout),
                TapTarget::Bridge(leg) => self.bridge_tap_frames(leg, &self.taps[t].layout),
                TapTarget::Room(room) => self.room_tap_frames(room, &self.taps[t].layout),
            };
            let Some(frames) = frames else {
                continue;
            };
            for (file, frame) in frames.into_iter().enumerate() {
                self.outputs.push_back(MediaOutput::Record {
                    tap: key,
                    file,
                    frame,
                });
            }
            let tap = &mut self.taps[t];
            tap.frames += 1;
            if tap.is_full() && !tap.full_reported {
                tap.full_reported = true;
                self.outputs.push_back(MediaOutput::TapFull { tap: key });
            }
        }
    }

    fn leg_tap_frames(&self, leg: &str, layout: &TapLayout) -> Option<Vec<TapFrame>> {
        let l = self.leg(leg)?;
        Some(match layout {
            TapLayout::PerParticipant(_) => {
                vec![TapFrame::Mono(l.input), TapFrame::Mono(l.output)]
            }
            TapLayout::Stereo => vec![TapFrame::Stereo(l.input, l.output)],
            TapLayout::Mixed => vec![TapFrame::Mono(mix_two(&l.input, &l.output))],
        })
    }

    fn bridge_tap_frames(&self, leg: &str, layout: &TapLayout) -> Option<Vec<TapFrame>> {
        let a = self.leg(leg)?;
        let b_input = match &a.attach {
            Attach::Bridge(peer) => self.leg(peer).map_or([0; FRAME], |l| l.input),
            _ => [0; FRAME],
        };
        Some(match layout {
            // By position: file 0 is the leg, file 1 whoever it is bridged with now.
            TapLayout::PerParticipant(_) => {
                vec![TapFrame::Mono(a.input), TapFrame::Mono(b_input)]
            }
            TapLayout::Stereo => vec![TapFrame::Stereo(a.input, b_input)],
            TapLayout::Mixed => vec![TapFrame::Mono(mix_two(&a.input, &b_input))],
        })
    }

    fn room_tap_frames(&self, room: &str, layout: &TapLayout) -> Option<Vec<TapFrame>> {
        let r = self.rooms.iter().find(|r| r.id == room)?;
        let input = |leg: &str| -> Frame {
            let mut f = [0i16; FRAME];
            if let Some(key) = r.key_of(leg) {
                f.copy_from_slice(r.mixer.input(key));
            }
            f
        };
        let mut all = [0i16; FRAME];
        all.copy_from_slice(r.mixer.mixed());
        Some(match layout {
            // Every file gets a frame each tick (silence once its participant left).
            TapLayout::PerParticipant(labels) => labels
                .iter()
                .map(|label| TapFrame::Mono(input(label)))
                .collect(),
            TapLayout::Stereo => {
                let first = r.members.first().map_or([0; FRAME], |(leg, _)| input(leg));
                let mut rest = [0i16; FRAME];
                for ((o, a), f) in rest.iter_mut().zip(all.iter()).zip(first.iter()) {
                    *o = a.saturating_sub(*f);
                }
                vec![TapFrame::Stereo(first, rest)]
            }
            TapLayout::Mixed => vec![TapFrame::Mono(all)],
        })
    }

    /// Bridged legs with the same codec and nothing that needs their audio forward RTP
    /// without decoding.
    fn plan_relays(&mut self) {
        self.forget_relays();
        for a in 0..self.legs.len() {
            let Attach::Bridge(peer) = &self.legs[a].attach else {
                continue;
            };
            let Some(b) = self.legs.iter().position(|l| &l.id == peer) else {
                continue;
            };
            if b <= a || !self.relay_ok(a) || !self.relay_ok(b) {
                continue;
            }
            let codec = |i: usize| self.legs[i].negotiated.as_ref().map(|n| n.codec);
            let (Some(ca), Some(cb)) = (codec(a), codec(b)) else {
                continue;
            };
            if !pbx_media::bridge::relay_possible(ca, cb) {
                continue;
            }
            self.legs[a].relay_peer = Some(b);
            self.legs[b].relay_peer = Some(a);
        }
    }

    fn relay_ok(&self, i: usize) -> bool {
        let leg = &self.legs[i];
        let tapped = self.taps.iter().any(|t| match &t.target {
            TapTarget::Leg(c) | TapTarget::Bridge(c) => {
                *c == leg.id || matches!(&leg.attach, Attach::Bridge(p) if p == c)
            }
            TapTarget::Room(_) => false,
        });
        leg.has_media()
            && leg.answered
            && !leg.ending
            && !leg.held
            && !leg.mute_in
            && !leg.mute_out
            && leg.player.is_idle()
            && leg.pending.is_empty()
            && leg.music.is_none()
            && !leg.rtp.as_ref().is_some_and(RtpSession::dtmf_pending)
            && !tapped
    }

    /// Every relay stops at once (a change to a leg may need its audio); the next tick
    /// decides again.
    fn forget_relays(&mut self) {
        for leg in &mut self.legs {
            leg.relay_peer = None;
        }
    }

    /// A key press: reported, it may stop the leg's media and feed its collector.
    fn digit_at(&mut self, now: Instant, slot: usize, digit: Digit) {
        let leg = &mut self.legs[slot];
        self.outputs.push_back(MediaOutput::Digit {
            leg: leg.id.clone(),
            digit,
        });
        leg.player.on_dtmf(digit);
        drain_player(
            &mut self.outputs,
            || ClipOwner::Leg(leg.id.clone()),
            &mut leg.player,
        );
        if let Some(collected) = leg.collector.on_digit(now, digit) {
            self.outputs.push_back(MediaOutput::Collected {
                leg: leg.id.clone(),
                collected,
            });
        }
    }
}

/// The clips waiting for an owner and the player they go to.
fn clip_queue<'a>(
    legs: &'a mut [LegMedia],
    rooms: &'a mut [Room],
    owner: &ClipOwner,
) -> Option<(&'a mut VecDeque<PendingClip>, &'a mut Player)> {
    match owner {
        ClipOwner::Leg(leg) => legs
            .iter_mut()
            .find(|l| &l.id == leg)
            .map(|l| (&mut l.pending, &mut l.player)),
        ClipOwner::Room(room) => rooms
            .iter_mut()
            .find(|r| &r.id == room)
            .map(|r| (&mut r.pending, &mut r.player)),
    }
}

/// Reports what a player finished.
fn drain_player(
    outputs: &mut VecDeque<MediaOutput>,
    owner: impl Fn() -> ClipOwner,
    player: &mut Player,
) {
    while let Some(PlayerEvent::Finished {
        id,
        kind,
        played_completely,
        digit,
    }) = player.poll_event()
    {
        outputs.push_back(MediaOutput::Finished {
            owner: owner(),
            id,
            kind,
            played_completely,
            digit,
            error: None,
        });
    }
}

fn queue_send(send: &mut SendQueue, slot: usize, to: SocketAddr, bytes: &[u8]) {
    let start = send.bytes.len();
    send.bytes.extend_from_slice(bytes);
    send.queue.push_back((slot, to, start, bytes.len()));
}
