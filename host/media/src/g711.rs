//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA), table-driven, slice to slice.
//!
//! Invariants: every table is built at compile time by `const fn`s that follow the reference
//! implementation of G.711 (Sun Microsystems' public-domain `g711.c`); encode and decode never
//! allocate and never panic, whatever the input; they process `min(input, output)` samples.

/// A narrowband codec this crate can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, RTP static payload type 0.
    Pcmu,
    /// G.711 A-law, RTP static payload type 8.
    Pcma,
}

impl Codec {
    /// The RTP clock rate in Hz, which is also the audio sample rate for G.711.
    pub const fn clock_rate(self) -> u32 {
        8000
    }

    /// The static RTP payload type (RFC 3551 §6).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in SDP `a=rtpmap` lines.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec with this static payload type, if it is one of ours.
    pub const fn from_static_pt(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec with this SDP encoding name (case-insensitive), if it is one of ours.
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// Encoded bytes per 20 ms frame (G.711: one byte per sample).
    pub const fn bytes_per_frame(self) -> usize {
        (self.clock_rate() / 50) as usize
    }

    /// Encodes `pcm` into `out`; returns the number of bytes written.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self {
            Codec::Pcmu => ulaw_encode(pcm, out),
            Codec::Pcma => alaw_encode(pcm, out),
        }
    }

    /// Decodes `payload` into `out`; returns the number of samples written.
    pub fn decode(self, payload: &[u8], out: &mut [i16]) -> usize {
        match self {
            Codec::Pcmu => ulaw_decode(payload, out),
            Codec::Pcma => alaw_decode(payload, out),
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const SIGN_BIT: u8 = 0x80;
const QUANT_MASK: u8 = 0x0f;
const SEG_SHIFT: u32 = 4;
const SEG_MASK: u8 = 0x70;
const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

const fn search(val: i32, table: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if val <= table[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// µ-law of a 14-bit sample (the 16-bit sample shifted right by 2).
const fn linear14_to_ulaw(sample14: i32) -> u8 {
    let (mut v, mask) = if sample14 < 0 {
        (-sample14, 0x7F_u8)
    } else {
        (sample14, 0xFF_u8)
    };
    if v > ULAW_CLIP {
        v = ULAW_CLIP;
    }
    v += ULAW_BIAS >> 2;
    let seg = search(v, &SEG_UEND);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let uval = ((seg as u8) << 4) | (((v >> (seg + 1)) as u8) & QUANT_MASK);
    uval ^ mask
}

/// A-law of a 13-bit sample (the 16-bit sample shifted right by 3).
const fn linear13_to_alaw(sample13: i32) -> u8 {
    let (v, mask) = if sample13 >= 0 {
        (sample13, 0xD5_u8)
    } else {
        (-sample13 - 1, 0x55_u8)
    };
    let seg = search(v, &SEG_AEND);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mut aval = (seg as u8) << SEG_SHIFT;
    if seg < 2 {
        aval |= ((v >> 1) as u8) & QUANT_MASK;
    } else {
        aval |= ((v >> seg) as u8) & QUANT_MASK;
    }
    aval ^ mask
}

const fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let mut t = (((u & QUANT_MASK) as i32) << 3) + ULAW_BIAS;
    t <<= ((u & SEG_MASK) >> SEG_SHIFT) as u32;
    if u & SIGN_BIT != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & QUANT_MASK) as i32) << 4;
    let seg = ((a & SEG_MASK) >> SEG_SHIFT) as u32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & SIGN_BIT != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    table
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    table
}

/// Indexed by the top 14 bits of the sample as unsigned (`(s as u16) >> 2`).
const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut table = [0u8; 1 << 14];
    let mut i = 0;
    while i < (1 << 14) {
        let sample14 = (((i << 2) as u16 as i16) >> 2) as i32;
        table[i] = linear14_to_ulaw(sample14);
        i += 1;
    }
    table
}

/// Indexed by the top 13 bits of the sample as unsigned (`(s as u16) >> 3`).
const fn build_alaw_encode() -> [u8; 1 << 13] {
    let mut table = [0u8; 1 << 13];
    let mut i = 0;
    while i < (1 << 13) {
        let sample13 = (((i << 3) as u16 as i16) >> 3) as i32;
        table[i] = linear13_to_alaw(sample13);
        i += 1;
    }
    table
}

static ULAW_DECODE: [i16; 256] = build_ulaw_decode();
static ALAW_DECODE: [i16; 256] = build_alaw_decode();
static ULAW_ENCODE: [u8; 1 << 14] = build_ulaw_encode();
static ALAW_ENCODE: [u8; 1 << 13] = build_alaw_encode();

/// Encodes one sample to µ-law.
#[inline]
pub fn ulaw_from_linear(sample: i16) -> u8 {
    ULAW_ENCODE[usize::from(sample as u16 >> 2)]
}

/// Encodes one sample to A-law.
#[inline]
pub fn alaw_from_linear(sample: i16) -> u8 {
    ALAW_ENCODE[usize::from(sample as u16 >> 3)]
}

/// Decodes one µ-law byte.
#[inline]
pub fn ulaw_to_linear_sample(byte: u8) -> i16 {
    ULAW_DECODE[usize::from(byte)]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_to_linear_sample(byte: u8) -> i16 {
    ALAW_DECODE[usize::from(byte)]
}

/// Encodes PCM to µ-law; returns how many samples were encoded (`min` of the lengths).
pub fn ulaw_encode(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = ulaw_from_linear(s);
    }
    n
}

/// Encodes PCM to A-law; returns how many samples were encoded (`min` of the lengths).
pub fn alaw_encode(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = alaw_from_linear(s);
    }
    n
}

/// Decodes µ-law to PCM; returns how many samples were decoded (`min` of the lengths).
pub fn ulaw_decode(payload: &[u8], out: &mut [i16]) -> usize {
    let n = payload.len().min(out.len());
    for (o, &b) in out[..n].iter_mut().zip(&payload[..n]) {
        *o = ulaw_to_linear_sample(b);
    }
    n
}

/// Decodes A-law to PCM; returns how many samples were decoded (`min` of the lengths).
pub fn alaw_decode(payload: &[u8], out: &mut [i16]) -> usize {
    let n = payload.len().min(out.len());
    for (o, &b) in out[..n].iter_mut().zip(&payload[..n]) {
        *o = alaw_to_linear_sample(b);
    }
    n
}

/// G.711 µ-law to A-law magnitude mapping, 1-based A-law codes (ITU-T G.711 Table 3, as in
/// Sun's public-domain `g711.c`): index is the µ-law magnitude code 0..=127.
const U2A: [u8; 128] = [
    1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    21, 22, 23, 24, 25, 27, 29, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 48, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75,
    76, 77, 78, 79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99,
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118,
    119, 120, 121, 122, 123, 124, 125, 126, 127, 128,
];

/// G.711 A-law to µ-law magnitude mapping (ITU-T G.711 Table 4, as in Sun's `g711.c`): index
/// is the A-law magnitude code 0..=127, the value the µ-law magnitude code.
const A2U: [u8; 128] = [
    1, 3, 5, 7, 9, 11, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
    32, 33, 33, 34, 34, 35, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 48, 49, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73,
    74, 75, 76, 77, 78, 79, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96,
    97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115,
    116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
];

const fn build_ulaw_to_alaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let u = i as u8;
        table[i] = if u & 0x80 != 0 {
            0xD5 ^ (U2A[(0xFF ^ u) as usize] - 1)
        } else {
            0x55 ^ (U2A[(0x7F ^ u) as usize] - 1)
        };
        i += 1;
    }
    table
}

const fn build_alaw_to_ulaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let a = i as u8;
        table[i] = if a & 0x80 != 0 {
            0xFF ^ A2U[(a ^ 0xD5) as usize]
        } else {
            0x7F ^ A2U[(a ^ 0x55) as usize]
        };
        i += 1;
    }
    table
}

static ULAW_TO_ALAW: [u8; 256] = build_ulaw_to_alaw();
static ALAW_TO_ULAW: [u8; 256] = build_alaw_to_ulaw();

/// Converts µ-law bytes to A-law without going through linear PCM (one table lookup per
/// byte, G.711 Table 3); returns how many bytes were converted (`min` of the lengths).
pub fn ulaw_to_alaw(ulaw: &[u8], out: &mut [u8]) -> usize {
    let n = ulaw.len().min(out.len());
    for (o, &b) in out[..n].iter_mut().zip(&ulaw[..n]) {
        *o = ULAW_TO_ALAW[usize::from(b)];
    }
    n
}

/// Converts A-law bytes to µ-law (G.711 Table 4); returns how many bytes were converted.
pub fn alaw_to_ulaw(alaw: &[u8], out: &mut [u8]) -> usize {
    let n = alaw.len().min(out.len());
    for (o, &b) in out[..n].iter_mut().zip(&alaw[..n]) {
        *o = ALAW_TO_ULAW[usize::from(b)];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_vectors() {
        // Silence is 0xFF; the extremes decode to ±32124 (G.711 Table 2a).
        assert_eq!(ulaw_from_linear(0), 0xFF);
        assert_eq!(ulaw_to_linear_sample(0xFF), 0);
        assert_eq!(ulaw_to_linear_sample(0x7F), 0);
        assert_eq!(ulaw_to_linear_sample(0x80), 32124);
        assert_eq!(ulaw_to_linear_sample(0x00), -32124);
        assert_eq!(ulaw_from_linear(i16::MAX), 0x80);
        assert_eq!(ulaw_from_linear(i16::MIN), 0x00);
        assert_eq!(ulaw_from_linear(-1), 0x7E);
        // First codeword of segments 1 and 2: ((0 << 3) + 132) << seg, minus the bias.
        assert_eq!(ulaw_to_linear_sample(0xEF), 132);
        assert_eq!(ulaw_to_linear_sample(0xDF), 396);
    }

    #[test]
    fn alaw_known_vectors() {
        // Silence is 0xD5 / 0x55 (±8); the extremes decode to ±32256.
        assert_eq!(alaw_from_linear(0), 0xD5);
        assert_eq!(alaw_to_linear_sample(0xD5), 8);
        assert_eq!(alaw_to_linear_sample(0x55), -8);
        assert_eq!(alaw_to_linear_sample(0xAA), 32256);
        assert_eq!(alaw_to_linear_sample(0x2A), -32256);
        assert_eq!(alaw_from_linear(i16::MAX), 0xAA);
        assert_eq!(alaw_from_linear(i16::MIN), 0x2A);
    }

    /// Vectors produced by CPython's `audioop.lin2ulaw` / `lin2alaw` (the same reference code).
    #[test]
    fn matches_reference_vectors() {
        let xs: [i16; 13] = [
            -32768, -10000, -1000, -100, -8, -1, 0, 1, 7, 100, 1000, 10000, 32767,
        ];
        let ulaw = [
            0x00, 0x1c, 0x4e, 0x72, 0x7e, 0x7e, 0xff, 0xff, 0xfe, 0xf2, 0xce, 0x9c, 0x80,
        ];
        let alaw = [
            0x2a, 0x36, 0x7a, 0x53, 0x55, 0x55, 0xd5, 0xd5, 0xd5, 0xd3, 0xfa, 0xb6, 0xaa,
        ];
        let ulaw_back: [i16; 13] = [
            -32124, -9852, -988, -104, -8, -8, 0, 0, 8, 104, 988, 9852, 32124,
        ];
        let alaw_back: [i16; 13] = [
            -32256, -9984, -1008, -104, -8, -8, 8, 8, 8, 104, 1008, 9984, 32256,
        ];
        let mut enc = [0u8; 13];
        let mut dec = [0i16; 13];
        Codec::Pcmu.encode(&xs, &mut enc);
        assert_eq!(enc, ulaw);
        Codec::Pcmu.decode(&enc, &mut dec);
        assert_eq!(dec, ulaw_back);
        Codec::Pcma.encode(&xs, &mut enc);
        assert_eq!(enc, alaw);
        Codec::Pcma.decode(&enc, &mut dec);
        assert_eq!(dec, alaw_back);
    }

    #[test]
    fn decode_then_encode_is_identity_on_codewords() {
        for b in 0..=255u8 {
            // µ-law has two zero codewords (0x7F, 0xFF); both decode to 0, which encodes as 0xFF.
            let u = ulaw_from_linear(ulaw_to_linear_sample(b));
            if b == 0x7F {
                assert_eq!(u, 0xFF);
            } else {
                assert_eq!(u, b, "µ-law codeword {b:#04x}");
            }
            assert_eq!(
                alaw_from_linear(alaw_to_linear_sample(b)),
                b,
                "A-law codeword {b:#04x}"
            );
        }
    }

    #[test]
    fn round_trip_error_is_bounded_by_the_segment_step() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let x = i32::from(s);
            let u = i32::from(ulaw_to_linear_sample(ulaw_from_linear(s)));
            let a = i32::from(alaw_to_linear_sample(alaw_from_linear(s)));
            // The quantisation step doubles per segment; the largest step is 1024 (µ) / 1024 (A),
            // and the relative error stays under ~3.2 % above the first segments.
            let mag = x.abs().min(32124);
            let bound_u = (mag / 16).max(8) + 1;
            let bound_a = (mag / 16).max(16) + 1;
            assert!(
                (u - x.clamp(-32124, 32124)).abs() <= bound_u,
                "µ {s} -> {u}"
            );
            assert!(
                (a - x.clamp(-32256, 32256)).abs() <= bound_a,
                "A {s} -> {a}"
            );
        }
    }

    #[test]
    fn slice_functions_process_the_shorter_length() {
        let pcm = [0i16, 1000, -1000, 32000];
        let mut enc = [0u8; 3];
        assert_eq!(Codec::Pcmu.encode(&pcm, &mut enc), 3);
        let mut dec = [0i16; 8];
        assert_eq!(Codec::Pcmu.decode(&enc, &mut dec), 3);
        assert!((dec[1] - 1000).abs() < 40);
        assert!((dec[2] + 1000).abs() < 40);
        assert_eq!(Codec::Pcma.encode(&pcm, &mut [0u8; 4]), 4);
    }

    #[test]
    fn codec_metadata() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_name("pcma"), Some(Codec::Pcma));
        assert_eq!(Codec::from_static_pt(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_static_pt(18), None);
        assert_eq!(Codec::Pcmu.bytes_per_frame(), 160);
        assert_eq!(Codec::Pcma.to_string(), "PCMA");
    }

    #[test]
    fn direct_conversion_tables_match_the_standard() {
        // Silence and the extremes map onto each other.
        let mut a = [0u8; 4];
        assert_eq!(ulaw_to_alaw(&[0xFF, 0x7F, 0x80, 0x00], &mut a), 4);
        assert_eq!(a, [0xD5, 0x55, 0xAA, 0x2A]);
        let mut u = [0u8; 3];
        assert_eq!(alaw_to_ulaw(&[0xD5, 0xAA, 0x2A, 0x00], &mut u), 3);
        assert_eq!(u, [0xFF ^ 1, 0x80, 0x00]);
        // Every code converts to one whose decoded value is within one step of the source's.
        for b in 0..=255u8 {
            let x = i32::from(ulaw_to_linear_sample(b));
            let y = i32::from(alaw_to_linear_sample(ULAW_TO_ALAW[usize::from(b)]));
            assert!(
                (x - y).abs() <= (x.abs() / 16).max(16) + 8,
                "µ {b:#04x}: {x} -> {y}"
            );
            let x = i32::from(alaw_to_linear_sample(b));
            let y = i32::from(ulaw_to_linear_sample(ALAW_TO_ULAW[usize::from(b)]));
            assert!(
                (x - y).abs() <= (x.abs() / 16).max(8) + 8,
                "A {b:#04x}: {x} -> {y}"
            );
            // The sign is kept.
            assert_eq!(x >= 0, y >= 0, "A {b:#04x} sign");
        }
        // µ -> A -> µ is transparent for every µ-law code above the first segments (G.711).
        let mut back = [0u8; 1];
        let mut mid = [0u8; 1];
        for b in 0..=255u8 {
            ulaw_to_alaw(&[b], &mut mid);
            alaw_to_ulaw(&mid, &mut back);
            let (x, y) = (ulaw_to_linear_sample(b), ulaw_to_linear_sample(back[0]));
            assert!((i32::from(x) - i32::from(y)).abs() <= (i32::from(x).abs() / 16).max(16));
        }
    }
}
