//! RTP fixed header (RFC 3550 §5.1): a zero-copy parsed view and a writer into caller buffers.
//!
//! Invariants: parsing never panics and never allocates; a successfully parsed [`RtpPacket`]
//! guarantees that its CSRC list, header extension and payload (padding removed) all lie
//! inside the original buffer. Writing never allocates and fails instead of truncating.

use thiserror::Error;

/// Length of the fixed RTP header without CSRCs or extension.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not a well-formed RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the headers announce.
    #[error("packet too short: {len} bytes, need {need}")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes the headers require.
        need: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count is zero or larger than the payload.
    #[error("invalid padding length {0}")]
    BadPadding(u8),
    /// The output buffer cannot hold the packet.
    #[error("output buffer too small: {len} bytes, need {need}")]
    BufferTooSmall {
        /// Bytes available.
        len: usize,
        /// Bytes required.
        need: usize,
    },
}

/// A parsed RTP packet borrowing the datagram it came from.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    csrc_end: usize,
    ext: Option<(u16, &'a [u8])>,
    payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses `buf` as an RTP packet, validating every length against the buffer.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < RTP_HEADER_LEN {
            return Err(RtpError::TooShort {
                len: buf.len(),
                need: RTP_HEADER_LEN,
            });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_count = usize::from(buf[0] & 0x0f);
        let csrc_end = RTP_HEADER_LEN + 4 * csrc_count;
        if buf.len() < csrc_end {
            return Err(RtpError::TooShort {
                len: buf.len(),
                need: csrc_end,
            });
        }
        let mut offset = csrc_end;
        let mut ext = None;
        if buf[0] & 0x10 != 0 {
            // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the data.
            let need = offset + 4;
            if buf.len() < need {
                return Err(RtpError::TooShort {
                    len: buf.len(),
                    need,
                });
            }
            let profile = u16::from_be_bytes([buf[offset], buf[offset + 1]]);
            let words = usize::from(u16::from_be_bytes([buf[offset + 2], buf[offset + 3]]));
            let end = need + 4 * words;
            if buf.len() < end {
                return Err(RtpError::TooShort {
                    len: buf.len(),
                    need: end,
                });
            }
            ext = Some((profile, &buf[need..end]));
            offset = end;
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            // RFC 3550 §5.1: the last octet counts the padding octets, itself included.
            let pad = buf[buf.len() - 1];
            if pad == 0 || usize::from(pad) > end - offset {
                return Err(RtpError::BadPadding(pad));
            }
            end -= usize::from(pad);
        }
        Ok(RtpPacket {
            buf,
            csrc_end,
            ext,
            payload: &buf[offset..end],
        })
    }

    /// The padding flag (the payload returned by [`Self::payload`] already excludes padding).
    pub fn padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// The marker bit: start of a talkspurt for audio, start of an event for RFC 4733.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// The 16-bit sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// The media timestamp in clock-rate units.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// The synchronisation source of the sender.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.buf[RTP_HEADER_LEN..self.csrc_end]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension as (profile-defined id, data), when present.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        self.ext
    }

    /// The payload without headers and padding.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Returns true when the second octet says RTCP (payload types 192..=223, RFC 5761 §4), so
/// that a multiplexed RTCP packet is never mistaken for media.
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

/// The fields of an outgoing RTP header (no CSRCs, no extension, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// 7-bit payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Our synchronisation source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Writes the 12-byte header at the start of `out`; returns [`RTP_HEADER_LEN`].
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtpError> {
        let Some(h) = out.get_mut(..RTP_HEADER_LEN) else {
            return Err(RtpError::BufferTooSmall {
                len: out.len(),
                need: RTP_HEADER_LEN,
            });
        };
        h[0] = 0x80;
        h[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        h[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        h[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Ok(RTP_HEADER_LEN)
    }

    /// Writes the header followed by `payload`; returns the packet length.
    pub fn write_packet(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let need = RTP_HEADER_LEN + payload.len();
        if out.len() < need {
            return Err(RtpError::BufferTooSmall {
                len: out.len(),
                need,
            });
        }
        self.write(out)?;
        out[RTP_HEADER_LEN..need].copy_from_slice(payload);
        Ok(need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: RtpHeader = RtpHeader {
        marker: true,
        payload_type: 8,
        sequence: 0x1234,
        timestamp: 0xdead_beef,
        ssrc: 0x0102_0304,
    };

    #[test]
    fn write_then_parse() {
        let mut buf = [0u8; 64];
        let n = HEADER.write_packet(&[1, 2, 3], &mut buf).unwrap();
        assert_eq!(n, 15);
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert!(p.marker());
        assert!(!p.padding());
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrcs().count(), 0);
        assert_eq!(p.extension(), None);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn csrc_extension_and_padding() {
        let mut pkt = vec![0xb2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 11]); // two CSRCs
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension, one word
        pkt.extend_from_slice(&[7, 7]); // payload
        pkt.extend_from_slice(&[0, 0, 3]); // three octets of padding
        let p = RtpPacket::parse(&pkt).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(p.extension(), Some((0xbede, &[9u8, 9, 9, 9][..])));
        assert_eq!(p.payload(), &[7, 7]);
        assert!(p.padding());
    }

    #[test]
    fn malformed_packets_are_rejected() {
        assert!(matches!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::TooShort { .. })
        ));
        let mut p = [0u8; 12];
        p[0] = 0x40;
        assert_eq!(RtpPacket::parse(&p).unwrap_err(), RtpError::BadVersion(1));
        // CSRC count beyond the buffer.
        p[0] = 0x8f;
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::TooShort { need: 72, .. })
        ));
        // Extension header missing.
        p[0] = 0x90;
        assert!(RtpPacket::parse(&p).is_err());
        // Extension length beyond the buffer.
        let ext = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        assert!(RtpPacket::parse(&ext).is_err());
        // Padding: zero count, and more padding than payload.
        let mut pad = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(RtpPacket::parse(&pad).unwrap_err(), RtpError::BadPadding(0));
        pad[13] = 3;
        assert_eq!(RtpPacket::parse(&pad).unwrap_err(), RtpError::BadPadding(3));
        pad[13] = 2;
        assert_eq!(RtpPacket::parse(&pad).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn parse_never_panics_on_any_short_input() {
        let mut buf = [0u8; 40];
        for first in 0..=255u8 {
            buf[0] = first;
            for len in 0..buf.len() {
                buf[len.saturating_sub(1)] = 0xff;
                let _ = RtpPacket::parse(&buf[..len]);
            }
        }
    }

    #[test]
    fn write_needs_room() {
        let mut small = [0u8; 13];
        assert!(HEADER.write_packet(&[1, 2], &mut small).is_err());
        assert!(HEADER.write(&mut small[..11]).is_err());
    }

    #[test]
    fn rtcp_is_recognised() {
        assert!(looks_like_rtcp(&[0x80, 200, 0, 6]));
        assert!(!looks_like_rtcp(&[0x80, 0, 0, 6]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 8]));
    }
}
