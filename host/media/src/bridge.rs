//! Moving audio between the two legs of a bridge without decoding it: relay when both legs
//! negotiated the same codec, else a byte-to-byte G.711 transcode (PCMU <-> PCMA).
//!
//! Invariants: nothing here allocates or panics; functions work on `min(input, output)`
//! bytes. The shell relays only when the app asked for nothing that needs PCM (no recording,
//! no mute, no playback into the bridge); otherwise it decodes and mixes.
//!
//! The relay loop, for a packet from leg `a` to leg `b` (both [`crate::RtpSession`]s):
//! `a.handle_input_raw(..)` gives [`crate::session::RawInput::Audio`]; when
//! [`relay_possible`] the payload goes straight to `b.send_payload(..)`, otherwise through
//! [`transcode`] into a stack buffer first. Each leg keeps its own SSRC, sequence and
//! timestamp, so a re-INVITE or a codec change on one side never confuses the other. A key
//! press arrives as [`crate::session::RawInput::Dtmf`] (once per press) and is regenerated
//! on the other leg with `send_dtmf`, never relayed packet by packet.

use crate::g711::{Codec, alaw_to_ulaw, ulaw_to_alaw};

/// True when a payload of codec `a` can be sent on a leg of codec `b` unchanged.
pub fn relay_possible(a: Codec, b: Codec) -> bool {
    a == b
}

/// Converts one encoded payload from `from` to `to` into `out` (a copy when the codecs are
/// the same); returns the bytes written. G.711 maps byte to byte through one 256-entry table.
pub fn transcode(from: Codec, to: Codec, payload: &[u8], out: &mut [u8]) -> usize {
    match (from, to) {
        (Codec::Pcmu, Codec::Pcma) => ulaw_to_alaw(payload, out),
        (Codec::Pcma, Codec::Pcmu) => alaw_to_ulaw(payload, out),
        (Codec::Pcmu, Codec::Pcmu) | (Codec::Pcma, Codec::Pcma) => {
            let n = payload.len().min(out.len());
            out[..n].copy_from_slice(&payload[..n]);
            n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_only_for_the_same_codec() {
        assert!(relay_possible(Codec::Pcmu, Codec::Pcmu));
        assert!(relay_possible(Codec::Pcma, Codec::Pcma));
        assert!(!relay_possible(Codec::Pcmu, Codec::Pcma));
        assert!(!relay_possible(Codec::Pcma, Codec::Pcmu));
    }

    #[test]
    fn transcode_keeps_the_audio() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((f64::from(i) * 0.4).sin() * 10000.0) as i16)
            .collect();
        let mut ulaw = [0u8; 160];
        Codec::Pcmu.encode(&pcm, &mut ulaw);
        let mut alaw = [0u8; 160];
        assert_eq!(transcode(Codec::Pcmu, Codec::Pcma, &ulaw, &mut alaw), 160);
        let mut back = [0i16; 160];
        Codec::Pcma.decode(&alaw, &mut back);
        for (x, y) in pcm.iter().zip(back) {
            let (x, y) = (i32::from(*x), i32::from(y));
            assert!((x - y).abs() <= x.abs() / 10 + 40, "{x} -> {y}");
        }
        let mut ulaw2 = [0u8; 160];
        assert_eq!(transcode(Codec::Pcma, Codec::Pcmu, &alaw, &mut ulaw2), 160);
        let mut same = [0u8; 160];
        assert_eq!(transcode(Codec::Pcmu, Codec::Pcmu, &ulaw, &mut same), 160);
        assert_eq!(same, ulaw);
        // Shorter output: no panic, partial conversion.
        assert_eq!(
            transcode(Codec::Pcmu, Codec::Pcma, &ulaw, &mut [0u8; 10]),
            10
        );
        assert_eq!(transcode(Codec::Pcma, Codec::Pcma, &alaw, &mut [0u8; 3]), 3);
    }
}
