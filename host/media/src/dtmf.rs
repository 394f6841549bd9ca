//! RFC 4733 telephone-events: the payload format, a receiver that yields each key press once,
//! and a sender that produces the packet train for one digit.
//!
//! Invariants: a key press is identified by (SSRC, RTP timestamp, event code) and is reported
//! on the first packet that carries it, never again (RFC 4733 §2.5.2.1: all packets of one
//! event share its timestamp, and the end packet is sent three times). Nothing here allocates.

use thiserror::Error;

/// A keypad key carried by a DTMF event: "0"-"9", "*", "#", "A"-"D".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(u8);

const DIGIT_STRS: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "A", "B", "C", "D",
];

impl Digit {
    /// The key for an RFC 4733 event code (0-15), or `None` for other events (flash, tones).
    pub const fn from_event(event: u8) -> Option<Digit> {
        if event < 16 { Some(Digit(event)) } else { None }
    }

    /// The key for a character ("a"-"d" accepted as "A"-"D").
    pub const fn from_char(c: char) -> Option<Digit> {
        match c {
            '0'..='9' => Some(Digit(c as u8 - b'0')),
            '*' => Some(Digit(10)),
            '#' => Some(Digit(11)),
            'A'..='D' => Some(Digit(c as u8 - b'A' + 12)),
            'a'..='d' => Some(Digit(c as u8 - b'a' + 12)),
            _ => None,
        }
    }

    /// The key for a one-character string such as "5" or "#".
    pub fn parse(s: &str) -> Option<Digit> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Digit::from_char(c),
            _ => None,
        }
    }

    /// The RFC 4733 event code.
    pub const fn event(self) -> u8 {
        self.0
    }

    /// The key as a character.
    pub const fn as_char(self) -> char {
        DIGIT_STRS[self.0 as usize].as_bytes()[0] as char
    }

    /// The key as the string the app sees ("0".."9", "*", "#", "A".."D").
    pub const fn as_str(self) -> &'static str {
        DIGIT_STRS[self.0 as usize]
    }
}

impl std::fmt::Display for Digit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a telephone-event payload could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// The payload is shorter than the 4-byte event block.
    #[error("telephone-event payload too short: {0} bytes")]
    TooShort(usize),
}

/// One RFC 4733 §2.3 event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0-15 are DTMF keys).
    pub event: u8,
    /// The E bit: this is (a retransmission of) the final packet of the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Length of one event block on the wire.
    pub const LEN: usize = 4;

    /// Parses the first event block of a payload (extra blocks, RFC 4733 §2.4, are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// Writes the 4-byte block into `out`; returns the bytes written (0 if `out` is too small).
    pub fn write(&self, out: &mut [u8]) -> usize {
        let Some(o) = out.get_mut(..Self::LEN) else {
            return 0;
        };
        o[0] = self.event;
        o[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        o[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Self::LEN
    }

    /// The keypad key, when the event is one.
    pub fn digit(&self) -> Option<Digit> {
        Digit::from_event(self.event)
    }
}

/// How many recent events the receiver remembers, so that late or reordered packets of an
/// earlier key press are not taken for a new one.
const RECENT: usize = 8;

/// Turns a stream of telephone-event packets into key presses, each reported exactly once.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    recent: [Option<(u32, u32, u8)>; RECENT],
    next: usize,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet's (SSRC, RTP timestamp, event); returns the key when this packet is the
    /// first one seen of a new key press.
    pub fn handle_packet(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        ev: &TelephoneEvent,
    ) -> Option<Digit> {
        let digit = ev.digit()?;
        let key = (ssrc, timestamp, ev.event);
        if self.recent.contains(&Some(key)) {
            return None;
        }
        self.recent[self.next] = Some(key);
        self.next = (self.next + 1) % RECENT;
        Some(digit)
    }
}

/// One packet of an outgoing event: the marker bit and the event block. The RTP timestamp of
/// every packet of one event is the timestamp at which the event started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Set on the first packet of the event (RFC 4733 §2.5.1.1).
    pub marker: bool,
    /// The event block.
    pub event: TelephoneEvent,
}

/// Produces the RFC 4733 packet train for one key press: a start packet, an update every
/// packet interval, and the end packet three times (§2.5.1.4).
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    total: u16,
    step: u16,
    elapsed: u16,
    ends_left: u8,
    started: bool,
}

impl DtmfSender {
    /// Volume used when none is given: -10 dBm0.
    pub const DEFAULT_VOLUME: u8 = 10;

    /// A sender for `digit` lasting `duration_ms`, with one packet every `packet_ms` at
    /// `clock_rate`. The duration is clamped to what 16 bits of timestamp units can carry and
    /// to at least one packet interval.
    pub fn new(digit: Digit, duration_ms: u32, packet_ms: u32, clock_rate: u32) -> Self {
        let step = (u64::from(clock_rate) * u64::from(packet_ms.max(1)) / 1000).clamp(1, 0xffff);
        let total = (u64::from(clock_rate) * u64::from(duration_ms) / 1000).clamp(step, 0xffff);
        DtmfSender {
            event: digit.event(),
            volume: Self::DEFAULT_VOLUME,
            total: total as u16,
            step: step as u16,
            elapsed: 0,
            ends_left: 3,
            started: false,
        }
    }

    /// The next packet to send, one per packet interval; `None` once the three end packets
    /// have been produced.
    pub fn next_packet(&mut self) -> Option<DtmfPacket> {
        if self.ends_left == 0 {
            return None;
        }
        let marker = !self.started;
        self.started = true;
        let next = self.elapsed.saturating_add(self.step);
        let end = next >= self.total;
        self.elapsed = if end { self.total } else { next };
        if end {
            self.ends_left -= 1;
        }
        Some(DtmfPacket {
            marker,
            event: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                duration: self.elapsed,
            },
        })
    }

    /// True once every packet has been produced.
    pub fn is_done(&self) -> bool {
        self.ends_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn digits_map_both_ways() {
        let all: String = (0..16)
            .map(|e| Digit::from_event(e).unwrap().as_str())
            .collect();
        assert_eq!(all, "0123456789*#ABCD");
        assert_eq!(Digit::from_event(16), None);
        for e in 0..16 {
            let d = Digit::from_event(e).unwrap();
            assert_eq!(Digit::from_char(d.as_char()), Some(d));
            assert_eq!(Digit::parse(d.as_str()), Some(d));
        }
        assert_eq!(Digit::parse("b"), Digit::from_event(13));
        assert_eq!(Digit::parse("12"), None);
        assert_eq!(Digit::parse(""), None);
        assert_eq!(Digit::from_char('x'), None);
    }

    #[test]
    fn payload_round_trip() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 63,
            duration: 1280,
        };
        let mut buf = [0u8; 4];
        assert_eq!(e.write(&mut buf), 4);
        assert_eq!(buf, [11, 0xbf, 0x05, 0x00]);
        assert_eq!(TelephoneEvent::parse(&buf).unwrap(), e);
        assert_eq!(
            TelephoneEvent::parse(&buf[..3]),
            Err(DtmfError::TooShort(3))
        );
        assert_eq!(e.write(&mut [0u8; 3]), 0);
    }

    #[test]
    fn redundant_end_packets_count_once() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(
            rx.handle_packet(1, 160, &ev(5, false, 160)),
            Digit::from_event(5)
        );
        assert_eq!(rx.handle_packet(1, 160, &ev(5, false, 320)), None);
        for _ in 0..3 {
            assert_eq!(rx.handle_packet(1, 160, &ev(5, true, 800)), None);
        }
    }

    #[test]
    fn same_digit_with_a_new_timestamp_is_a_new_press() {
        let mut rx = DtmfReceiver::new();
        assert!(rx.handle_packet(1, 1000, &ev(1, true, 800)).is_some());
        assert!(rx.handle_packet(1, 3000, &ev(1, false, 160)).is_some());
        // A late retransmission of the first press is still recognised.
        assert!(rx.handle_packet(1, 1000, &ev(1, true, 800)).is_none());
    }

    #[test]
    fn lost_end_packets_still_report_once() {
        let mut rx = DtmfReceiver::new();
        assert!(rx.handle_packet(7, 10, &ev(9, false, 160)).is_some());
        assert!(rx.handle_packet(7, 10, &ev(9, false, 320)).is_none());
        // The next event begins without any end packet for the previous one.
        assert_eq!(
            rx.handle_packet(7, 2000, &ev(0, false, 160)),
            Digit::from_event(0)
        );
    }

    #[test]
    fn non_dtmf_events_are_ignored() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.handle_packet(1, 1, &ev(16, false, 160)), None);
    }

    #[test]
    fn sender_produces_start_updates_and_three_ends() {
        let mut tx = DtmfSender::new(Digit::parse("#").unwrap(), 100, 20, 8000);
        let mut pkts = Vec::new();
        while let Some(p) = tx.next_packet() {
            pkts.push(p);
        }
        assert!(tx.is_done());
        let durations: Vec<u16> = pkts.iter().map(|p| p.event.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
        assert!(pkts[0].marker);
        assert!(pkts[1..].iter().all(|p| !p.marker));
        assert_eq!(pkts.iter().filter(|p| p.event.end).count(), 3);
        assert!(pkts.iter().all(|p| p.event.event == 11));
        // What we send, our receiver reads as exactly one key press.
        let mut rx = DtmfReceiver::new();
        let got: Vec<Digit> = pkts
            .iter()
            .filter_map(|p| rx.handle_packet(9, 4242, &p.event))
            .collect();
        assert_eq!(got, vec![Digit::parse("#").unwrap()]);
    }

    #[test]
    fn sender_clamps_durations() {
        let mut tx = DtmfSender::new(Digit::parse("1").unwrap(), 0, 20, 8000);
        assert_eq!(tx.next_packet().unwrap().event.duration, 160);
        let mut long = DtmfSender::new(Digit::parse("1").unwrap(), 60_000, 20, 8000);
        let mut last = None;
        while let Some(p) = long.next_packet() {
            last = Some(p);
        }
        assert_eq!(last.unwrap().event.duration, 0xffff);
    }
}
