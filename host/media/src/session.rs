//! One call leg's RTP session: receive (parse, latch, statistics, DTMF, then decode, or hand
//! the encoded payload to a bridge) and send (encode one 20 ms frame, relay an encoded
//! payload, or the RFC 4733 packets of a queued digit).
//!
//! Invariants: sans-IO (time, source address and bytes are arguments; the caller owns the
//! socket); no allocation per packet or per frame: the decode buffer, the jitter buffer and the
//! DTMF queue are sized in [`RtpSession::new`]. The RTP timestamp advances by the frame length
//! on every [`RtpSession::send_frame`] call, whether or not a packet goes out, so it tracks the
//! sampling clock; the sequence number advances once per packet sent (RFC 3550 §5.1).
//!
//! Symmetric RTP (RFC 4961 style): the first valid packet (a negotiated payload type) latches
//! the destination to its source. A different source takes over only when it carries the
//! latched SSRC (a NAT rebinding) or when the latched source has been silent for
//! [`RELATCH_AFTER`]; other packets are counted and ignored, so a stray sender cannot steal the
//! stream of a live call.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::dtmf::{Digit, DtmfReceiver, DtmfSender, TelephoneEvent};
use crate::g711::Codec;
use crate::jitter::{JitterBuffer, Pop};
use crate::pcm::{FRAME_MS, samples_per_frame};
use crate::rtp::{RTP_HEADER_LEN, RtpHeader, RtpPacket, looks_like_rtcp};
use crate::sdp::{Direction, Negotiated};

/// How long the latched source must be silent before another source may take over.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);
/// The largest decoded packet we keep (samples); longer payloads are cut.
pub const MAX_DECODED: usize = 2048;
/// How many digits [`RtpSession::send_dtmf`] can queue.
pub const DTMF_QUEUE: usize = 32;
/// Frames of ordinary audio between two queued digits.
const DTMF_GAP_FRAMES: u8 = 2;
/// RFC 3550 A.1: jumps beyond these are a restart of the peer's sequence, not loss.
const MAX_DROPOUT: i32 = 3000;
const MAX_MISORDER: i32 = 100;

/// Why a session request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SessionError {
    /// The peer did not negotiate telephone-event.
    #[error("the peer does not accept RFC 4733 telephone-events")]
    NoTelephoneEvent,
    /// Too many digits are already waiting.
    #[error("too many DTMF digits queued")]
    DtmfQueueFull,
}

/// What the session needs from negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The negotiated codec.
    pub codec: Codec,
    /// Its payload type.
    pub pt: u8,
    /// The telephone-event payload type, when negotiated.
    pub dtmf_pt: Option<u8>,
    /// The address from the peer's SDP (used until a packet latches another).
    pub remote: Option<SocketAddr>,
    /// Our direction: we send only when it says so.
    pub direction: Direction,
    /// Seed for our SSRC and initial sequence number and timestamp (RFC 3550 wants them
    /// random; the caller supplies the randomness so that tests are repeatable).
    pub seed: u64,
    /// Jitter-buffer depth in frames; `None` disables the buffer (and [`RtpSession::pull_audio`]).
    pub jitter_depth: Option<usize>,
}

impl SessionConfig {
    /// The configuration for a negotiated stream, without a jitter buffer.
    pub fn from_negotiated(n: &Negotiated, seed: u64) -> Self {
        SessionConfig {
            codec: n.codec,
            pt: n.pt,
            dtmf_pt: n.dtmf_pt,
            remote: n.remote_rtp,
            direction: n.direction,
            seed,
            jitter_depth: None,
        }
    }
}

/// What an incoming packet produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// A new key press (reported once per event).
    Dtmf {
        /// The key.
        digit: Digit,
    },
    /// An audio packet was decoded; read it with [`RtpSession::audio`].
    Audio,
}

/// What [`RtpSession::handle_input_raw`] found in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawInput<'a> {
    /// Audio of our codec, still encoded: relay it with [`RtpSession::send_payload`] on the
    /// other leg (or transcode it first, see [`crate::bridge`]).
    Audio {
        /// The encoded payload.
        payload: &'a [u8],
        /// The RTP marker bit (start of a talkspurt).
        marker: bool,
    },
    /// A new key press (reported once per event).
    Dtmf(Digit),
    /// Nothing to act on: ignored, or a repeat of a telephone-event already reported.
    Nothing,
}

/// The receive path's verdict, before audio is decoded or passed on raw.
enum Received<'a> {
    Nothing,
    Dtmf(Digit),
    Audio(RtpPacket<'a>),
}

/// Counters for call statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RtpStats {
    /// Valid packets accepted from the peer (audio and telephone-event).
    pub packets_received: u64,
    /// Payload bytes of those packets.
    pub bytes_received: u64,
    /// Packets expected but never received (RFC 3550 A.3; duplicates can offset losses).
    pub packets_lost: u64,
    /// Interarrival jitter in milliseconds (RFC 3550 A.8), over audio packets.
    pub jitter_ms: f64,
    /// Packets we sent.
    pub packets_sent: u64,
    /// Payload bytes we sent.
    pub bytes_sent: u64,
    /// Key presses received.
    pub dtmf_received: u64,
    /// Datagrams ignored: malformed, RTCP, unknown payload type, or from a foreign source.
    pub ignored: u64,
}

/// Receive-side sequence and jitter tracking for the current remote SSRC.
#[derive(Debug, Clone, Copy)]
struct RxState {
    ssrc: u32,
    base_ext: u64,
    max_seq: u16,
    cycles: u64,
    received: u64,
    lost_before: u64,
    epoch: Instant,
    last_transit: Option<u32>,
    jitter: f64,
}

impl RxState {
    fn new(ssrc: u32, seq: u16, now: Instant, lost_before: u64) -> Self {
        RxState {
            ssrc,
            base_ext: u64::from(seq),
            max_seq: seq,
            cycles: 0,
            received: 0,
            lost_before,
            epoch: now,
            last_transit: None,
            jitter: 0.0,
        }
    }

    fn lost(&self) -> u64 {
        let expected = (self.cycles + u64::from(self.max_seq)) + 1 - self.base_ext;
        self.lost_before + expected.saturating_sub(self.received)
    }

    /// RFC 3550 A.1, simplified: advance the highest sequence, count wraps, and treat large
    /// jumps as a restart of the sequence.
    fn update_seq(&mut self, seq: u16) {
        let delta = i32::from(seq.wrapping_sub(self.max_seq) as i16);
        if delta > 0 && delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
        } else if delta <= 0 && delta > -MAX_MISORDER {
            // Duplicate or reordered: counted as received below.
        } else {
            let lost = self.lost();
            *self = RxState {
                last_transit: self.last_transit,
                jitter: self.jitter,
                ..RxState::new(self.ssrc, seq, self.epoch, lost)
            };
        }
        self.received += 1;
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, in timestamp units.
    fn update_jitter(&mut self, now: Instant, timestamp: u32, clock_rate: u32) {
        let elapsed = now.saturating_duration_since(self.epoch);
        let arrival = (elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(last) = self.last_transit {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }
}

/// An outgoing digit in progress.
#[derive(Debug, Clone)]
struct DtmfTx {
    sender: DtmfSender,
    start_ts: u32,
}

/// splitmix64: spreads a seed into well-mixed independent values.
fn mix(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RTP state of one call leg.
#[derive(Debug)]
pub struct RtpSession {
    cfg: SessionConfig,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    sent_any: bool,
    latched: Option<SocketAddr>,
    last_from_latched: Option<Instant>,
    rx: Option<RxState>,
    dtmf_rx: DtmfReceiver,
    dtmf_tx: Option<DtmfTx>,
    dtmf_queue: VecDeque<(Digit, u32)>,
    dtmf_gap: u8,
    decoded: Box<[i16]>,
    decoded_len: usize,
    jitter: Option<JitterBuffer>,
    audio_ssrc: Option<u32>,
    stats: RtpStats,
}

impl RtpSession {
    /// A session with all buffers allocated up front.
    pub fn new(cfg: SessionConfig) -> Self {
        let mut seed = cfg.seed;
        let ssrc = mix(&mut seed) as u32;
        let seq = mix(&mut seed) as u16;
        let timestamp = mix(&mut seed) as u32;
        let frame = samples_per_frame(cfg.codec.clock_rate());
        let jitter = cfg.jitter_depth.map(|d| JitterBuffer::new(d, frame));
        RtpSession {
            cfg,
            ssrc,
            seq,
            timestamp,
            sent_any: false,
            latched: None,
            last_from_latched: None,
            rx: None,
            dtmf_rx: DtmfReceiver::new(),
            dtmf_tx: None,
            dtmf_queue: VecDeque::with_capacity(DTMF_QUEUE),
            dtmf_gap: 0,
            decoded: vec![0; MAX_DECODED].into_boxed_slice(),
            decoded_len: 0,
            jitter,
            audio_ssrc: None,
            stats: RtpStats::default(),
        }
    }

    // ----- getters -----

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The negotiated codec.
    pub fn codec(&self) -> Codec {
        self.cfg.codec
    }

    /// Samples in one 20 ms frame of this session's codec.
    pub fn samples_per_frame(&self) -> usize {
        samples_per_frame(self.cfg.codec.clock_rate())
    }

    /// Where packets go now: the latched source, else the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.cfg.remote)
    }

    /// The source we latched to, once a packet arrived.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// When the latched source last sent a valid packet (for a no-media timeout).
    pub fn last_received(&self) -> Option<Instant> {
        self.last_from_latched
    }

    /// The samples of the last decoded audio packet.
    pub fn audio(&self) -> &[i16] {
        &self.decoded[..self.decoded_len]
    }

    /// Statistics so far.
    pub fn stats(&self) -> RtpStats {
        let mut s = self.stats;
        if let Some(rx) = &self.rx {
            s.packets_lost = rx.lost();
            s.jitter_ms = rx.jitter * 1000.0 / f64::from(self.cfg.codec.clock_rate());
        }
        s
    }

    /// True while a digit is being sent or waits to be.
    pub fn dtmf_pending(&self) -> bool {
        self.dtmf_tx.is_some() || !self.dtmf_queue.is_empty()
    }

    // ----- handlers -----

    /// Handles one datagram from `src` received at `now`; returns a key press or a decoded
    /// audio frame, or `None` for anything ignored (see [`RtpStats::ignored`]).
    pub fn handle_input(
        &mut self,
        now: Instant,
        src: SocketAddr,
        packet: &[u8],
    ) -> Option<MediaEvent> {
        match self.receive(now, src, packet) {
            Received::Nothing => None,
            Received::Dtmf(digit) => Some(MediaEvent::Dtmf { digit }),
            Received::Audio(pkt) => {
                self.decoded_len = self.cfg.codec.decode(pkt.payload(), &mut self.decoded);
                if let Some(jb) = &mut self.jitter {
                    // A new audio SSRC restarts the sequence space (DTMF on its own SSRC does not).
                    if self.audio_ssrc != Some(pkt.ssrc()) {
                        self.audio_ssrc = Some(pkt.ssrc());
                        jb.reset();
                    }
                    jb.push(pkt.sequence(), &self.decoded[..self.decoded_len]);
                }
                Some(MediaEvent::Audio)
            }
        }
    }

    /// Handles one datagram like [`Self::handle_input`] (latching, statistics, DTMF) but does
    /// not decode audio or feed the jitter buffer: it returns the encoded payload of our codec,
    /// for a bridge that relays (or transcodes) without touching PCM.
    pub fn handle_input_raw<'a>(
        &mut self,
        now: Instant,
        src: SocketAddr,
        packet: &'a [u8],
    ) -> RawInput<'a> {
        match self.receive(now, src, packet) {
            Received::Nothing => RawInput::Nothing,
            Received::Dtmf(digit) => RawInput::Dtmf(digit),
            Received::Audio(pkt) => RawInput::Audio {
                payload: pkt.payload(),
                marker: pkt.marker(),
            },
        }
    }

    /// The common receive path: RTCP and garbage filtering, payload type check, source
    /// latching, sequence and jitter statistics, and RFC 4733 events.
    fn receive<'a>(&mut self, now: Instant, src: SocketAddr, packet: &'a [u8]) -> Received<'a> {
        if looks_like_rtcp(packet) {
            self.stats.ignored += 1;
            return Received::Nothing;
        }
        let pkt = match RtpPacket::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                tracing::trace!(error = %e, "ignoring malformed RTP");
                self.stats.ignored += 1;
                return Received::Nothing;
            }
        };
        let pt = pkt.payload_type();
        let is_dtmf = self.cfg.dtmf_pt == Some(pt);
        if pt != self.cfg.pt && !is_dtmf {
            self.stats.ignored += 1;
            return Received::Nothing;
        }
        if !self.accept_source(now, src, pkt.ssrc()) {
            self.stats.ignored += 1;
            return Received::Nothing;
        }
        let rx = match &mut self.rx {
            Some(rx) if rx.ssrc == pkt.ssrc() => rx,
            other => {
                let lost_before = other.as_ref().map_or(0, RxState::lost);
                other.insert(RxState::new(pkt.ssrc(), pkt.sequence(), now, lost_before))
            }
        };
        rx.update_seq(pkt.sequence());
        self.stats.packets_received += 1;
        self.stats.bytes_received += pkt.payload().len() as u64;

        if is_dtmf {
            let Ok(ev) = TelephoneEvent::parse(pkt.payload()) else {
                return Received::Nothing;
            };
            let Some(digit) = self.dtmf_rx.handle_packet(pkt.ssrc(), pkt.timestamp(), &ev) else {
                return Received::Nothing;
            };
            self.stats.dtmf_received += 1;
            return Received::Dtmf(digit);
        }
        rx.update_jitter(now, pkt.timestamp(), self.cfg.codec.clock_rate());
        Received::Audio(pkt)
    }

    /// Symmetric RTP latching; returns whether packets from `src` are accepted.
    fn accept_source(&mut self, now: Instant, src: SocketAddr, ssrc: u32) -> bool {
        match self.latched {
            Some(addr) if addr == src => {}
            Some(addr) => {
                let same_stream = self.rx.as_ref().is_some_and(|rx| rx.ssrc == ssrc);
                let silent = self
                    .last_from_latched
                    .is_none_or(|t| now.saturating_duration_since(t) >= RELATCH_AFTER);
                if !same_stream && !silent {
                    tracing::debug!(%src, latched = %addr, "ignoring RTP from a foreign source");
                    return false;
                }
                tracing::debug!(from = %addr, to = %src, "RTP source moved; re-latching");
                self.latched = Some(src);
            }
            None => {
                tracing::debug!(%src, "latched RTP destination to the first packet's source");
                self.latched = Some(src);
            }
        }
        self.last_from_latched = Some(now);
        true
    }

    // ----- mutators -----

    /// Replaces the SDP address (after a re-INVITE); the latch is kept.
    pub fn set_remote(&mut self, remote: Option<SocketAddr>, direction: Direction) {
        self.cfg.remote = remote;
        self.cfg.direction = direction;
    }

    /// Queues a key press to send as RFC 4733 events of `duration_ms` (typically 100-250).
    /// The packets replace audio in the following [`Self::send_frame`] / [`Self::send_payload`]
    /// calls (one packet per call, so the shell must keep calling one of them every 20 ms while
    /// [`Self::dtmf_pending`], sending silence when it has nothing to relay). Queued digits go
    /// out one after another with two frames of audio between them.
    pub fn send_dtmf(&mut self, digit: Digit, duration_ms: u32) -> Result<(), SessionError> {
        if self.cfg.dtmf_pt.is_none() {
            return Err(SessionError::NoTelephoneEvent);
        }
        if self.dtmf_queue.len() >= DTMF_QUEUE {
            return Err(SessionError::DtmfQueueFull);
        }
        self.dtmf_queue.push_back((digit, duration_ms));
        Ok(())
    }

    /// Queues a digit string (the `send-dtmf` import) as one unit: either every digit is
    /// queued, in order, or none is (the queue would overflow, or no telephone-event).
    pub fn send_digits(&mut self, digits: &[Digit], duration_ms: u32) -> Result<(), SessionError> {
        if self.cfg.dtmf_pt.is_none() {
            return Err(SessionError::NoTelephoneEvent);
        }
        if self.dtmf_queue.len() + digits.len() > DTMF_QUEUE {
            return Err(SessionError::DtmfQueueFull);
        }
        self.dtmf_queue
            .extend(digits.iter().map(|&d| (d, duration_ms)));
        Ok(())
    }

    /// Writes the next packet into `out`: one 20 ms frame of `pcm` encoded with the session's
    /// codec, or a telephone-event packet while a digit is being sent. Returns the destination
    /// and packet length, or `None` when there is nowhere (or no permission) to send, or `out`
    /// is too small.
    pub fn send_frame(&mut self, pcm: &[i16], out: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let ts = self.timestamp;
        self.timestamp = ts.wrapping_add(pcm.len() as u32);

        if let Some(sent) = self.send_due_dtmf(ts, out) {
            return sent;
        }

        let dest = self.sendable()?;
        let need = RTP_HEADER_LEN + pcm.len();
        if out.len() < need {
            tracing::warn!(len = out.len(), need, "RTP output buffer too small");
            return None;
        }
        let marker = !self.sent_any;
        let header = self.next_header(marker, self.cfg.pt, ts);
        let n = header.write(out).ok()?;
        let m = self.cfg.codec.encode(pcm, &mut out[n..need]);
        self.sent(dest, m, n + m)
    }

    /// Sends an already-encoded payload of our codec (a relayed or transcoded packet) with our
    /// own SSRC, sequence number and timestamp; the timestamp advances by the payload's sample
    /// count (one byte per sample for G.711). A queued digit takes this packet's place exactly
    /// as in [`Self::send_frame`]. Returns the destination and packet length, or `None` when
    /// there is nowhere (or no permission) to send, or `out` is too small.
    pub fn send_payload(&mut self, payload: &[u8], out: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let ts = self.timestamp;
        self.timestamp = ts.wrapping_add(payload.len() as u32);

        if let Some(sent) = self.send_due_dtmf(ts, out) {
            return sent;
        }
        let dest = self.sendable()?;
        let need = RTP_HEADER_LEN + payload.len();
        if out.len() < need {
            tracing::warn!(len = out.len(), need, "RTP output buffer too small");
            return None;
        }
        let marker = !self.sent_any;
        let header = self.next_header(marker, self.cfg.pt, ts);
        let n = header.write_packet(payload, out).ok()?;
        self.sent(dest, payload.len(), n)
    }

    /// Writes the telephone-event packet due at timestamp `ts`, if a digit is being sent:
    /// `Some(result)` means the tick was used for DTMF.
    fn send_due_dtmf(&mut self, ts: u32, out: &mut [u8]) -> Option<Option<(SocketAddr, usize)>> {
        let (pt, header_ts, marker, ev) = self.next_dtmf_packet(ts)?;
        let Some(dest) = self.sendable() else {
            return Some(None);
        };
        let header = self.next_header(marker, pt, header_ts);
        let Ok(n) = header.write(out) else {
            return Some(None);
        };
        let m = ev.write(&mut out[n..]);
        if m == 0 {
            return Some(None);
        }
        Some(self.sent(dest, m, n + m))
    }

    fn sendable(&self) -> Option<SocketAddr> {
        if !self.cfg.direction.sends() {
            return None;
        }
        self.destination()
    }

    fn next_header(&mut self, marker: bool, payload_type: u8, timestamp: u32) -> RtpHeader {
        let header = RtpHeader {
            marker,
            payload_type,
            sequence: self.seq,
            timestamp,
            ssrc: self.ssrc,
        };
        self.seq = self.seq.wrapping_add(1);
        header
    }

    fn sent(
        &mut self,
        dest: SocketAddr,
        payload: usize,
        total: usize,
    ) -> Option<(SocketAddr, usize)> {
        self.sent_any = true;
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += payload as u64;
        Some((dest, total))
    }

    /// The telephone-event packet due at this tick, as (pt, timestamp, marker, event).
    fn next_dtmf_packet(&mut self, now_ts: u32) -> Option<(u8, u32, bool, TelephoneEvent)> {
        let pt = self.cfg.dtmf_pt?;
        if self.dtmf_tx.is_none() {
            if self.dtmf_gap > 0 {
                self.dtmf_gap -= 1;
                return None;
            }
            let (digit, ms) = self.dtmf_queue.pop_front()?;
            self.dtmf_tx = Some(DtmfTx {
                sender: DtmfSender::new(digit, ms, FRAME_MS, self.cfg.codec.clock_rate()),
                start_ts: now_ts,
            });
        }
        let tx = self.dtmf_tx.as_mut()?;
        let pkt = tx.sender.next_packet();
        let start_ts = tx.start_ts;
        if tx.sender.is_done() {
            self.dtmf_tx = None;
            self.dtmf_gap = DTMF_GAP_FRAMES;
        }
        let pkt = pkt?;
        Some((pt, start_ts, pkt.marker, pkt.event))
    }

    // ----- polls -----

    /// Pulls the next frame from the jitter buffer into `out` (silence when none is due);
    /// returns [`Pop::Buffering`] when the session has no jitter buffer.
    pub fn pull_audio(&mut self, out: &mut [i16]) -> Pop {
        match &mut self.jitter {
            Some(jb) => jb.pop(out),
            None => {
                out.fill(0);
                Pop::Buffering
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "10.0.0.2:5004";

    fn cfg() -> SessionConfig {
        SessionConfig {
            codec: Codec::Pcmu,
            pt: 0,
            dtmf_pt: Some(101),
            remote: Some("10.0.0.1:4000".parse().unwrap()),
            direction: Direction::SendRecv,
            seed: 7,
            jitter_depth: None,
        }
    }

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 12 + payload.len()];
        let h = RtpHeader {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc,
        };
        h.write_packet(payload, &mut buf).unwrap();
        buf
    }

    fn peer() -> SocketAddr {
        PEER.parse().unwrap()
    }

    #[test]
    fn seeds_are_deterministic_and_distinct() {
        let a = RtpSession::new(cfg());
        let b = RtpSession::new(cfg());
        let c = RtpSession::new(SessionConfig { seed: 8, ..cfg() });
        assert_eq!(a.ssrc(), b.ssrc());
        assert_ne!(a.ssrc(), c.ssrc());
    }

    #[test]
    fn decodes_audio_and_counts() {
        let t0 = crate::test_epoch();
        let mut s = RtpSession::new(cfg());
        let payload = [0x80u8; 160];
        let ev = s.handle_input(t0, peer(), &rtp(0, 10, 1600, 5, &payload));
        assert_eq!(ev, Some(MediaEvent::Audio));
        assert_eq!(s.audio().len(), 160);
        assert!(s.audio().iter().all(|&x| x == 32124));
        let st = s.stats();
        assert_eq!(
            (st.packets_received, st.bytes_received, st.packets_lost),
            (1, 160, 0)
        );
    }

    #[test]
    fn ignores_garbage_rtcp_and_unknown_payload_types() {
        let t0 = crate::test_epoch();
        let mut s = RtpSession::new(cfg());
        assert_eq!(s.handle_input(t0, peer(), &[1, 2, 3]), None);
        assert_eq!(
            s.handle_input(t0, peer(), &[0x80, 200, 0, 1, 0, 0, 0, 0]),
            None
        );
        assert_eq!(
            s.handle_input(t0, peer(), &rtp(8, 1, 1, 1, &[0; 160])),
            None
        );
        assert_eq!(s.stats().ignored, 3);
        assert_eq!(s.latched(), None, "only a valid packet latches");
    }

    #[test]
    fn latches_to_first_source_and_resists_foreign_packets() {
        let t0 = crate::test_epoch();
        let mut s = RtpSession::new(cfg());
        let mut out = [0u8; 200];
        let pcm = [0i16; 160];
        // Before any packet: the SDP address.
        assert_eq!(
            s.send_frame(&pcm, &mut out).unwrap().0,
            "10.0.0.1:4000".parse().unwrap()
        );
        s.handle_input(t0, peer(), &rtp(0, 1, 160, 5, &[0xff; 160]));
        assert_eq!(s.send_frame(&pcm, &mut out).unwrap().0, peer());
        // A stranger with another SSRC is ignored while the peer is active.
        let stranger: SocketAddr = "203.0.113.9:6666".parse().unwrap();
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(
            s.handle_input(t1, stranger, &rtp(0, 900, 1, 99, &[0xff; 160])),
            None
        );
        assert_eq!(s.destination(), Some(peer()));
        // The same SSRC from a new port (NAT rebinding) moves the latch at once.
        let rebound: SocketAddr = "10.0.0.2:5010".parse().unwrap();
        let t2 = t1 + Duration::from_millis(20);
        assert!(
            s.handle_input(t2, rebound, &rtp(0, 2, 320, 5, &[0xff; 160]))
                .is_some()
        );
        assert_eq!(s.destination(), Some(rebound));
        // After the latched source is silent for RELATCH_AFTER, a new source may take over.
        let t3 = t2 + RELATCH_AFTER;
        assert!(
            s.handle_input(t3, stranger, &rtp(0, 901, 161, 99, &[0xff; 160]))
                .is_some()
        );
        assert_eq!(s.destination(), Some(stranger));
        assert_eq!(s.last_received(), Some(t3));
    }

    #[test]
    fn counts_losses_across_wrap() {
        let t0 = crate::test_epoch();
        let mut s = RtpSession::new(cfg());
        for (i, seq) in [65533u16, 65534, 0, 1, 4].iter().enumerate() {
            let t = t0 + Duration::from_millis(20 * i as u64);
            s.handle_input(t, peer(), &rtp(0, *seq, 160 * i as u32, 5, &[0xff; 160]));
        }
        // 65535, 2 and 3 never arrived.
        assert_eq!(s.stats().packets_lost, 3);
        assert_eq!(s.stats().packets_received, 5);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let t0 = crate::test_epoch();
        let mut s = RtpSession::new(cfg());
        // Perfectly paced packets: zero jitter.
        for i in 0..10u32 {
            let t = t0 + Duration::from_millis(20 * u64::from(i));
            s.handle_input(t, peer(), &rtp(0, i as u16, 160 * i, 5, &[0xff; 160]));
        }
        assert!(s.stats().jitter_ms < 0.01);
        // Every other packet 10 ms late: |D| = 10 ms at each step, so J converges to 10 ms.
        for i in 10..200u32 {
            let wobble = if i % 2 == 0 { 10 } else { 0 };
            let t = t0 + Duration::from_millis(20 * u64::from(i) + wobble);
            s.handle_input(t, peer(), &rtp(0, i as u16, 160 * i, 5, &[0xff; 160]));
        }
        let j = s.stats().jitter_ms;
        assert!((j - 10.0).abs() < 1.0, "jitter {j}");
    }

    #[test]
    fn dtmf_bypasses_audio_and_is_reported_once() {
        let t0 = crate::test_epoch();
        let mut s = RtpSession::new(cfg());
        let mut digits = Vec::new();
        for (seq, payload) in [
            (1u16, [1u8, 0x0a, 0x00, 0xa0]),
            (2, [1, 0x0a, 0x01, 0x40]),
            (3, [1, 0x8a, 0x03, 0x20]),
            (3, [1, 0x8a, 0x03, 0x20]),
            (3, [1, 0x8a, 0x03, 0x20]),
        ] {
            if let Some(MediaEvent::Dtmf { digit }) =
                s.handle_input(t0, peer(), &rtp(101, seq, 8000, 5, &payload))
            {
                digits.push(digit);
            }
        }
        assert_eq!(digits, vec![Digit::parse("1").unwrap()]);
        assert_eq!(s.stats().dtmf_received, 1);
        // A truncated event payload is ignored without panicking.
        assert_eq!(
            s.handle_input(t0, peer(), &rtp(101, 4, 9000, 5, &[1, 2])),
            None
        );
    }

    #[test]
    fn send_frame_advances_timestamp_even_without_destination() {
        let mut s = RtpSession::new(SessionConfig {
            remote: None,
            ..cfg()
        });
        let mut out = [0u8; 200];
        let pcm = [0i16; 160];
        assert_eq!(s.send_frame(&pcm, &mut out), None);
        assert_eq!(s.send_frame(&pcm, &mut out), None);
        s.set_remote(Some(peer()), Direction::SendRecv);
        let (dest, n) = s.send_frame(&pcm, &mut out).unwrap();
        assert_eq!((dest, n), (peer(), 172));
        let first_bytes = out[..n].to_vec();
        let first = RtpPacket::parse(&first_bytes).unwrap();
        assert!(first.marker());
        assert_eq!(first.ssrc(), s.ssrc());
        assert!(first.payload().iter().all(|&b| b == 0xff));
        let (_, n) = s.send_frame(&pcm, &mut out).unwrap();
        let second = RtpPacket::parse(&out[..n]).unwrap();
        assert!(!second.marker());
        assert_eq!(second.sequence(), first.sequence().wrapping_add(1));
        assert_eq!(second.timestamp(), first.timestamp().wrapping_add(160));
        // The two unsent frames still moved the clock.
        let mut fresh = RtpSession::new(SessionConfig {
            remote: None,
            ..cfg()
        });
        fresh.set_remote(Some(peer()), Direction::SendRecv);
        let (_, n0) = fresh.send_frame(&pcm, &mut out).unwrap();
        let ts0 = RtpPacket::parse(&out[..n0]).unwrap().timestamp();
        assert_eq!(first.timestamp(), ts0.wrapping_add(320));
        assert_eq!(s.stats().packets_sent, 2);
        assert_eq!(s.stats().bytes_sent, 320);
    }

    #[test]
    fn send_respects_direction_and_buffer_size() {
        let mut s = RtpSession::new(SessionConfig {
            direction: Direction::RecvOnly,
            ..cfg()
        });
        let pcm = [0i16; 160];
        assert_eq!(s.send_frame(&pcm, &mut [0u8; 200]), None);
        let mut s = RtpSession::new(cfg());
        assert_eq!(s.send_frame(&pcm, &mut [0u8; 100]), None);
    }

    #[test]
    fn sends_dtmf_in_place_of_audio() {
        let mut s = RtpSession::new(cfg());
        let mut out = [0u8; 200];
        let pcm = [0i16; 160];
        let (_, n) = s.send_frame(&pcm, &mut out).unwrap();
        let audio_ts = RtpPacket::parse(&out[..n]).unwrap().timestamp();
        s.send_dtmf(Digit::parse("5").unwrap(), 60).unwrap();
        assert!(s.dtmf_pending());
        let mut events = Vec::new();
        for _ in 0..8 {
            let (_, n) = s.send_frame(&pcm, &mut out).unwrap();
            let p = RtpPacket::parse(&out[..n]).unwrap();
            events.push((
                p.payload_type(),
                p.marker(),
                p.timestamp(),
                p.payload().to_vec(),
            ));
        }
        let start = audio_ts.wrapping_add(160);
        // 60 ms: updates at 160 and 320, then three end packets at 480, then audio again.
        assert_eq!(events[0], (101, true, start, vec![5, 10, 0, 160]));
        assert_eq!(events[1], (101, false, start, vec![5, 10, 1, 64]));
        assert_eq!(events[2], (101, false, start, vec![5, 0x8a, 1, 224]));
        assert_eq!(events[4], (101, false, start, vec![5, 0x8a, 1, 224]));
        assert_eq!(events[5].0, 0);
        assert_eq!(events[5].2, start.wrapping_add(5 * 160));
        assert!(!s.dtmf_pending());
        // Without negotiated telephone-event the request is refused.
        let mut plain = RtpSession::new(SessionConfig {
            dtmf_pt: None,
            ..cfg()
        });
        assert_eq!(
            plain.send_dtmf(Digit::parse("1").unwrap(), 100),
            Err(SessionError::NoTelephoneEvent)
        );
    }

    #[test]
    fn jitter_buffer_path_reorders_audio() {
        let t0 = crate::test_epoch();
        let mut s = RtpSession::new(SessionConfig {
            jitter_depth: Some(2),
            ..cfg()
        });
        let mut out = [0i16; 160];
        for seq in [2u16, 1, 3] {
            let payload = [crate::g711::ulaw_from_linear(seq as i16 * 1000); 160];
            s.handle_input(t0, peer(), &rtp(0, seq, 160 * u32::from(seq), 5, &payload));
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            assert!(matches!(s.pull_audio(&mut out), Pop::Frame(160)));
            got.push((out[0] as f64 / 1000.0).round() as i16);
        }
        assert_eq!(got, vec![1, 2, 3]);
        let mut plain = RtpSession::new(cfg());
        assert_eq!(plain.pull_audio(&mut out), Pop::Buffering);
    }

    #[test]
    fn raw_input_relays_payload_with_our_own_header() {
        let t0 = crate::test_epoch();
        let mut a = RtpSession::new(cfg());
        let mut b = RtpSession::new(SessionConfig {
            seed: 99,
            remote: Some("10.0.0.9:7000".parse().unwrap()),
            ..cfg()
        });
        let payload: Vec<u8> = (0..160).map(|i| i as u8).collect();
        let mut out = [0u8; 200];
        let mut seqs = Vec::new();
        for i in 0..3u16 {
            let t = t0 + Duration::from_millis(20 * u64::from(i));
            let pkt = rtp(0, 500 + i, 1000 + 160 * u32::from(i), 5, &payload);
            let RawInput::Audio { payload: p, marker } = a.handle_input_raw(t, peer(), &pkt) else {
                panic!("audio expected");
            };
            assert!(!marker);
            assert_eq!(p, payload.as_slice());
            let (dest, n) = b.send_payload(p, &mut out).unwrap();
            assert_eq!(dest, "10.0.0.9:7000".parse().unwrap());
            let sent = RtpPacket::parse(&out[..n]).unwrap();
            assert_eq!(sent.ssrc(), b.ssrc());
            assert_eq!(sent.payload(), payload.as_slice());
            assert_eq!(sent.marker(), i == 0);
            seqs.push((sent.sequence(), sent.timestamp()));
        }
        assert_eq!(seqs[1].0, seqs[0].0.wrapping_add(1));
        assert_eq!(seqs[2].1, seqs[0].1.wrapping_add(320));
        // Receive statistics and latching work as for decoded input; nothing was decoded.
        assert_eq!(a.stats().packets_received, 3);
        assert_eq!(a.latched(), Some(peer()));
        assert!(a.audio().is_empty());
        assert_eq!(b.stats().packets_sent, 3);
        assert_eq!(b.stats().bytes_sent, 480);
        // DTMF comes out once; garbage and foreign payload types are nothing.
        let ev = rtp(101, 600, 9000, 5, &[3, 0x0a, 0, 160]);
        assert_eq!(
            a.handle_input_raw(t0, peer(), &ev),
            RawInput::Dtmf(Digit::parse("3").unwrap())
        );
        assert_eq!(a.handle_input_raw(t0, peer(), &ev), RawInput::Nothing);
        assert_eq!(a.handle_input_raw(t0, peer(), &[0x80]), RawInput::Nothing);
        assert_eq!(
            a.handle_input_raw(t0, peer(), &rtp(8, 601, 1, 5, &payload)),
            RawInput::Nothing
        );
        // Too small a buffer or no permission to send: nothing goes out.
        assert_eq!(b.send_payload(&payload, &mut [0u8; 100]), None);
        b.set_remote(Some(peer()), Direction::RecvOnly);
        assert_eq!(b.send_payload(&payload, &mut out), None);
    }

    #[test]
    fn queued_digit_string_replaces_relayed_packets_one_after_another() {
        let mut s = RtpSession::new(cfg());
        let digits: Vec<Digit> = "12#".chars().filter_map(Digit::from_char).collect();
        s.send_digits(&digits, 40).unwrap();
        let mut out = [0u8; 200];
        let payload = [0xffu8; 160];
        let mut seen = Vec::new();
        for tick in 0..30 {
            // Alternate the two send paths: both advance the same queue.
            let (_, n) = if tick % 2 == 0 {
                s.send_payload(&payload, &mut out).unwrap()
            } else {
                s.send_frame(&[0i16; 160], &mut out).unwrap()
            };
            let p = RtpPacket::parse(&out[..n]).unwrap();
            if p.payload_type() == 101 && p.marker() {
                seen.push(p.payload()[0]);
            }
        }
        assert_eq!(seen, vec![1, 2, 11]);
        assert!(!s.dtmf_pending());
        // All or nothing when the queue would overflow.
        let many = vec![Digit::parse("9").unwrap(); DTMF_QUEUE + 1];
        assert_eq!(s.send_digits(&many, 40), Err(SessionError::DtmfQueueFull));
        assert!(!s.dtmf_pending());
    }
}
