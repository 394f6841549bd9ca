//! SDP (RFC 4566) parsing into typed structs, and the offer/answer model (RFC 3264) for one
//! G.711 audio stream with RFC 4733 telephone-events.
//!
//! Invariants: parsing never panics and is bounded ([`MAX_SDP_LEN`] bytes, [`MAX_MEDIA`] m=
//! lines); unknown lines and attributes are ignored, as RFC 4566 §5 asks. An answer has
//! exactly as many m= lines as the offer, in the same order; at most one audio stream is
//! accepted and every other stream is rejected with port 0 (RFC 3264 §6). The answer uses the
//! payload type numbers of the offer.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

use crate::g711::Codec;

/// The largest SDP body we parse.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// The most m= lines we parse.
pub const MAX_MEDIA: usize = 32;
/// The payload type we offer for telephone-event.
pub const OFFER_DTMF_PT: u8 = 101;

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// A line that must be well formed is not.
    #[error("malformed SDP line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The body is larger than [`MAX_SDP_LEN`] or has more than [`MAX_MEDIA`] m= lines.
    #[error("SDP too large")]
    TooLarge,
    /// No audio stream offers a codec we support (the call layer answers 488).
    #[error("no common codec")]
    NoCommonCodec,
}

/// Media direction attributes (RFC 4566 §6, RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways (the default).
    #[default]
    SendRecv,
    /// The author of the SDP only sends.
    SendOnly,
    /// The author of the SDP only receives.
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answerer takes for an offered one (RFC 3264 §6.1).
    pub const fn mirror(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// True when the side that wrote this direction sends media.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// True when the side that wrote this direction receives media.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn parse(attr: &str) -> Option<Direction> {
        match attr {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id (digits, kept as text: peers exceed 64 bits).
    pub session_id: String,
    /// Session version.
    pub session_version: String,
    /// Unicast address of the originator.
    pub address: String,
}

/// A `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The address, or `None` for an FQDN we do not resolve.
    pub ip: Option<IpAddr>,
    /// The address as written (without a multicast TTL suffix).
    pub address: String,
}

/// An `a=rtpmap` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count, when given.
    pub channels: Option<u8>,
}

/// An `a=fmtp` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// Payload type.
    pub pt: u8,
    /// The format parameters as written.
    pub params: String,
}

/// One m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type ("audio", "video", ...).
    pub media: String,
    /// Transport port; 0 means the stream is disabled.
    pub port: u16,
    /// Transport protocol ("RTP/AVP", "RTP/SAVP", ...).
    pub protocol: String,
    /// Formats in the offerer's order of preference (payload types for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// `a=rtpmap` attributes.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` attributes.
    pub fmtps: Vec<Fmtp>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
}

impl MediaDescription {
    /// The rtpmap for a payload type.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.pt == pt)
    }

    /// The fmtp parameters for a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|f| f.pt == pt)
            .map(|f| f.params.as_str())
    }

    /// The formats that are RTP payload type numbers, in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// The `o=` line, when present.
    pub origin: Option<Origin>,
    /// The `s=` line.
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// The first `t=` line as (start, stop) NTP seconds; `(0, 0)` is a permanent session.
    pub timing: Option<(u64, u64)>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// The m= sections in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body (CRLF or LF line ends).
    pub fn parse(sdp: &str) -> Result<Self, SdpError> {
        if sdp.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge);
        }
        let mut desc = SessionDescription::default();
        let mut saw_version = false;
        for (idx, raw) in sdp.lines().enumerate() {
            let line_no = idx + 1;
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let malformed = |reason| SdpError::Malformed {
                line: line_no,
                reason,
            };
            let Some((kind, value)) = line.split_once('=') else {
                return Err(malformed("expected <type>=<value>"));
            };
            if kind.len() != 1 {
                return Err(malformed("type must be one letter"));
            }
            match kind {
                "v" => {
                    if value.trim() != "0" {
                        return Err(malformed("unsupported version"));
                    }
                    saw_version = true;
                }
                "o" => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    let [username, session_id, session_version, _, _, address] = f[..] else {
                        return Err(malformed("o= needs six fields"));
                    };
                    desc.origin = Some(Origin {
                        username: username.to_string(),
                        session_id: session_id.to_string(),
                        session_version: session_version.to_string(),
                        address: address.to_string(),
                    });
                }
                "s" => desc.session_name = value.to_string(),
                "t" => {
                    let mut f = value.split_whitespace().map(str::parse::<u64>);
                    let (Some(Ok(start)), Some(Ok(stop))) = (f.next(), f.next()) else {
                        return Err(malformed("t= needs two numbers"));
                    };
                    desc.timing.get_or_insert((start, stop));
                }
                "c" => {
                    let conn = parse_connection(value).ok_or(malformed("bad c= line"))?;
                    match desc.media.last_mut() {
                        Some(m) => m.connection = Some(conn),
                        None => desc.connection = Some(conn),
                    }
                }
                "m" => {
                    if desc.media.len() >= MAX_MEDIA {
                        return Err(SdpError::TooLarge);
                    }
                    desc.media
                        .push(parse_media(value).ok_or(malformed("bad m= line"))?);
                }
                "a" => {
                    let (name, arg) = match value.split_once(':') {
                        Some((n, a)) => (n, Some(a)),
                        None => (value, None),
                    };
                    if let Some(dir) = Direction::parse(name) {
                        match desc.media.last_mut() {
                            Some(m) => m.direction = Some(dir),
                            None => desc.direction = Some(dir),
                        }
                        continue;
                    }
                    let (Some(m), Some(arg)) = (desc.media.last_mut(), arg) else {
                        continue;
                    };
                    match name {
                        "rtpmap" => {
                            // A bad rtpmap only disables that payload type.
                            if let Some(map) = parse_rtpmap(arg) {
                                m.rtpmaps.push(map);
                            }
                        }
                        "fmtp" => {
                            if let Some((pt, params)) = arg.split_once(' ')
                                && let Ok(pt) = pt.parse()
                            {
                                m.fmtps.push(Fmtp {
                                    pt,
                                    params: params.trim().to_string(),
                                });
                            }
                        }
                        "ptime" => m.ptime = arg.trim().parse().ok(),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(SdpError::Malformed {
                line: 1,
                reason: "missing v= line",
            });
        }
        Ok(desc)
    }

    /// The effective direction of a stream: media level, else session level, else sendrecv.
    pub fn direction_of(&self, m: &MediaDescription) -> Direction {
        m.direction.or(self.direction).unwrap_or_default()
    }

    /// The effective connection of a stream: media level, else session level.
    pub fn connection_of<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a Connection> {
        m.connection.as_ref().or(self.connection.as_ref())
    }
}

fn parse_connection(value: &str) -> Option<Connection> {
    let mut f = value.split_whitespace();
    let (net, addr_type, addr) = (f.next()?, f.next()?, f.next()?);
    if net != "IN" {
        return None;
    }
    // Multicast addresses may carry /ttl and /count suffixes.
    let address = addr.split('/').next()?.to_string();
    let ip = match addr_type {
        "IP4" => address.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        "IP6" => address.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => return None,
    };
    Some(Connection { ip, address })
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut f = value.split_whitespace();
    let media = f.next()?.to_string();
    // "<port>/<number of ports>" is allowed; we use the first port.
    let port = f.next()?.split('/').next()?.parse().ok()?;
    let protocol = f.next()?.to_string();
    let formats: Vec<String> = f.map(str::to_string).collect();
    Some(MediaDescription {
        media,
        port,
        protocol,
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        direction: None,
    })
}

fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.trim().split_once(' ')?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.to_string();
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        pt: pt.parse().ok()?,
        encoding,
        clock_rate,
        channels,
    })
}

/// The audio parameters chosen for a call leg, from our answer or the peer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The SDP we send (our answer); empty in [`accept_answer`] results.
    pub answer_sdp: String,
    /// The codec.
    pub codec: Codec,
    /// Its payload type on the wire.
    pub pt: u8,
    /// The telephone-event payload type, when the peer supports RFC 4733.
    pub dtmf_pt: Option<u8>,
    /// Where the peer wants our RTP, when it gave a usable address (not 0.0.0.0 / ::).
    pub remote_rtp: Option<SocketAddr>,
    /// Our direction for this stream: whether we send and/or receive.
    pub direction: Direction,
    /// The peer's direction as it wrote it, except that an RFC 2543 hold (`c=0.0.0.0`) counts
    /// as not receiving. [`Negotiated::peer_holds`] reads it to tell hold from resume.
    pub remote_direction: Direction,
}

impl Negotiated {
    /// True when the peer's SDP puts the stream on hold: it does not want our media
    /// (`a=sendonly`, `a=inactive`, or the old `c=0.0.0.0`).
    pub fn peer_holds(&self) -> bool {
        !self.remote_direction.receives()
    }
}

/// The codec and telephone-event payload types chosen from one offered stream.
struct Choice {
    codec: Codec,
    pt: u8,
    dtmf_pt: Option<u8>,
}

/// Picks the first supported codec in the offerer's order, and telephone-event/8000.
fn choose(m: &MediaDescription) -> Option<Choice> {
    if m.media != "audio" || m.port == 0 || !is_plain_rtp(&m.protocol) {
        return None;
    }
    let codec_of = |pt: u8| match m.rtpmap(pt) {
        Some(map) => Codec::from_name(&map.encoding)
            .filter(|c| map.clock_rate == c.clock_rate() && map.channels.is_none_or(|ch| ch == 1)),
        None => Codec::from_static_pt(pt),
    };
    let (pt, codec) = m
        .payload_types()
        .find_map(|pt| codec_of(pt).map(|c| (pt, c)))?;
    let dtmf_pt = m.payload_types().find(|&pt| {
        m.rtpmap(pt).is_some_and(|map| {
            map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == 8000
        })
    });
    Some(Choice { codec, pt, dtmf_pt })
}

/// Plain RTP profiles we can answer without SRTP or DTLS (RFC 3551 AVP and RFC 4585 AVPF).
fn is_plain_rtp(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/AVP") || protocol.eq_ignore_ascii_case("RTP/AVPF")
}

fn remote_addr(desc: &SessionDescription, m: &MediaDescription) -> Option<SocketAddr> {
    let ip = desc.connection_of(m)?.ip?;
    if ip.is_unspecified() || m.port == 0 {
        return None;
    }
    Some(SocketAddr::new(ip, m.port))
}

/// The peer's effective direction: what it wrote, minus receiving when its address is the
/// RFC 2543 hold address 0.0.0.0 (or ::).
fn peer_direction(desc: &SessionDescription, m: &MediaDescription) -> Direction {
    let written = desc.direction_of(m);
    let hold_address = desc
        .connection_of(m)
        .and_then(|c| c.ip)
        .is_some_and(|ip| ip.is_unspecified());
    match (hold_address, written) {
        (true, Direction::SendRecv) => Direction::SendOnly,
        (true, Direction::RecvOnly) => Direction::Inactive,
        (_, d) => d,
    }
}

fn write_session_header(out: &mut String, local: SocketAddr, session_id: u64, version: u64) {
    let (family, ip) = match local.ip() {
        IpAddr::V4(ip) => ("IP4", ip.to_string()),
        IpAddr::V6(ip) => ("IP6", ip.to_string()),
    };
    // Infallible: writing to a String.
    let _ = write!(
        out,
        "v=0\r\no=pbx {session_id} {version} IN {family} {ip}\r\ns=pbx\r\nc=IN {family} {ip}\r\nt=0 0\r\n"
    );
}

fn write_audio_section(
    out: &mut String,
    port: u16,
    protocol: &str,
    choice: &Choice,
    dir: Direction,
) {
    let _ = write!(out, "m=audio {port} {protocol} {}", choice.pt);
    if let Some(dtmf) = choice.dtmf_pt {
        let _ = write!(out, " {dtmf}");
    }
    let _ = write!(
        out,
        "\r\na=rtpmap:{} {}/{}\r\n",
        choice.pt,
        choice.codec.name(),
        choice.codec.clock_rate()
    );
    if let Some(dtmf) = choice.dtmf_pt {
        let _ = write!(
            out,
            "a=rtpmap:{dtmf} telephone-event/8000\r\na=fmtp:{dtmf} 0-16\r\n"
        );
    }
    let _ = write!(out, "a=ptime:20\r\na={}\r\n", dir.as_str());
}

/// Answers an SDP offer: our RTP address is `local`, `session_id` names our o= line.
///
/// The first audio stream that offers PCMU or PCMA (static or dynamic payload type) over
/// plain RTP is accepted with the first of those codecs in the offerer's order; every other
/// stream is rejected with port 0. No acceptable stream gives [`SdpError::NoCommonCodec`].
pub fn negotiate(offer: &str, local: SocketAddr, session_id: u64) -> Result<Negotiated, SdpError> {
    let desc = SessionDescription::parse(offer)?;
    let mut answer = String::with_capacity(512);
    write_session_header(&mut answer, local, session_id, session_id);
    let mut accepted: Option<Negotiated> = None;
    for m in &desc.media {
        let choice = if accepted.is_none() { choose(m) } else { None };
        match choice {
            Some(choice) => {
                let direction = desc.direction_of(m).mirror();
                write_audio_section(&mut answer, local.port(), &m.protocol, &choice, direction);
                accepted = Some(Negotiated {
                    answer_sdp: String::new(),
                    codec: choice.codec,
                    pt: choice.pt,
                    dtmf_pt: choice.dtmf_pt,
                    remote_rtp: remote_addr(&desc, m),
                    direction,
                    remote_direction: peer_direction(&desc, m),
                });
            }
            None => {
                // RFC 3264 §6: a rejected stream keeps its formats and gets port 0.
                let _ = write!(answer, "m={} 0 {}", m.media, m.protocol);
                if m.formats.is_empty() {
                    answer.push_str(" 0");
                }
                for f in &m.formats {
                    let _ = write!(answer, " {f}");
                }
                answer.push_str("\r\n");
            }
        }
    }
    let mut negotiated = accepted.ok_or(SdpError::NoCommonCodec)?;
    negotiated.answer_sdp = answer;
    Ok(negotiated)
}

/// An SDP offer for one sendrecv audio stream at `local` with PCMU, PCMA and
/// telephone-event (for outbound calls and for INVITEs that arrive without SDP).
pub fn offer(local: SocketAddr, session_id: u64) -> String {
    let mut out = String::with_capacity(384);
    write_session_header(&mut out, local, session_id, session_id);
    let _ = write!(
        out,
        "m=audio {port} RTP/AVP 0 8 {dtmf}\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{dtmf} telephone-event/8000\r\n\
         a=fmtp:{dtmf} 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n",
        port = local.port(),
        dtmf = OFFER_DTMF_PT,
    );
    out
}

/// A re-offer for an established stream (hold, resume, or a session refresh): the negotiated
/// codec and telephone-event only, with their payload types, at `local`, with `direction`
/// (`SendOnly` to hold with music, `Inactive` to hold silently, `SendRecv` to resume).
///
/// RFC 3264 §8: the o= line keeps `session_id` and must carry a higher `version` than the
/// last SDP we sent; our first offer or answer used `version == session_id`, so count up from
/// `session_id + 1`. Read the answer with [`accept_answer`]; its
/// [`Negotiated::remote_direction`] tells whether the peer agreed.
pub fn reoffer(
    negotiated: &Negotiated,
    local: SocketAddr,
    session_id: u64,
    version: u64,
    direction: Direction,
) -> String {
    let mut out = String::with_capacity(384);
    write_session_header(&mut out, local, session_id, version);
    let choice = Choice {
        codec: negotiated.codec,
        pt: negotiated.pt,
        dtmf_pt: negotiated.dtmf_pt,
    };
    write_audio_section(&mut out, local.port(), "RTP/AVP", &choice, direction);
    out
}

/// Reads the peer's answer to our [`offer`]: the first accepted audio stream gives the codec,
/// payload types and address. `answer_sdp` of the result is empty.
pub fn accept_answer(answer: &str) -> Result<Negotiated, SdpError> {
    let desc = SessionDescription::parse(answer)?;
    desc.media
        .iter()
        .find_map(|m| {
            let choice = choose(m)?;
            Some(Negotiated {
                answer_sdp: String::new(),
                codec: choice.codec,
                pt: choice.pt,
                dtmf_pt: choice.dtmf_pt,
                remote_rtp: remote_addr(&desc, m),
                direction: desc.direction_of(m).mirror(),
                remote_direction: peer_direction(&desc, m),
            })
        })
        .ok_or(SdpError::NoCommonCodec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        "192.0.2.10:40000".parse().unwrap()
    }

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n";

    #[test]
    fn parses_sipp_offer() {
        let d = SessionDescription::parse(SIPP).unwrap();
        assert_eq!(d.origin.as_ref().unwrap().session_id, "53655765");
        assert_eq!(d.session_name, "-");
        assert_eq!(d.timing, Some((0, 0)));
        assert_eq!(
            d.connection.as_ref().unwrap().ip,
            Some("127.0.0.1".parse().unwrap())
        );
        let m = &d.media[0];
        assert_eq!(
            (m.media.as_str(), m.port, m.protocol.as_str()),
            ("audio", 6000, "RTP/AVP")
        );
        assert_eq!(m.formats, vec!["8", "101"]);
        assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
        assert_eq!(m.fmtp(101), Some("0-11,16"));
        assert_eq!(d.direction_of(m), Direction::SendRecv);
    }

    #[test]
    fn answers_sipp_offer() {
        let n = negotiate(SIPP, local(), 42).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.pt, 8);
        assert_eq!(n.dtmf_pt, Some(101));
        assert_eq!(n.remote_rtp, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(n.direction, Direction::SendRecv);
        assert_eq!(
            n.answer_sdp,
            "v=0\r\no=pbx 42 42 IN IP4 192.0.2.10\r\ns=pbx\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        // Our answer parses back to the same choice.
        let back = accept_answer(&n.answer_sdp).unwrap();
        assert_eq!(
            (back.codec, back.pt, back.dtmf_pt),
            (Codec::Pcma, 8, Some(101))
        );
        assert_eq!(back.remote_rtp, Some(local()));
    }

    #[test]
    fn static_pts_without_rtpmap_and_offerer_order() {
        let o = "v=0\nc=IN IP4 10.0.0.1\nm=audio 5004 RTP/AVP 18 8 0\n";
        let n = negotiate(o, local(), 1).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, None));
        assert!(n.answer_sdp.contains("m=audio 40000 RTP/AVP 8\r\n"));
        assert!(!n.answer_sdp.contains("telephone-event"));
    }

    #[test]
    fn dynamic_pt_named_by_rtpmap() {
        let o = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 96 97\r\n\
                 a=rtpmap:96 opus/48000/2\r\na=rtpmap:97 pcmu/8000\r\n";
        let n = negotiate(o, local(), 1).unwrap();
        assert_eq!((n.codec, n.pt), (Codec::Pcmu, 97));
        assert!(n.answer_sdp.contains("a=rtpmap:97 PCMU/8000"));
    }

    #[test]
    fn rtpmap_overrides_a_static_number() {
        // PT 0 remapped to something else by rtpmap is not PCMU.
        let o = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:0 G722/8000\r\n";
        assert_eq!(negotiate(o, local(), 1), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn no_common_codec() {
        let o = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 9 18\r\n";
        assert_eq!(negotiate(o, local(), 1), Err(SdpError::NoCommonCodec));
        let srtp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/SAVP 0\r\n";
        assert_eq!(negotiate(srtp, local(), 1), Err(SdpError::NoCommonCodec));
        assert_eq!(
            negotiate("v=0\r\n", local(), 1),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn directions_are_mirrored() {
        for (offered, ours) in [
            ("sendonly", Direction::RecvOnly),
            ("recvonly", Direction::SendOnly),
            ("inactive", Direction::Inactive),
            ("sendrecv", Direction::SendRecv),
        ] {
            let o =
                format!("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\na={offered}\r\n");
            let n = negotiate(&o, local(), 1).unwrap();
            assert_eq!(n.direction, ours);
            assert!(n.answer_sdp.contains(&format!("a={}\r\n", ours.as_str())));
        }
        // Session-level direction applies when the stream has none.
        let o = "v=0\r\nc=IN IP4 10.0.0.1\r\na=sendonly\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(
            negotiate(o, local(), 1).unwrap().direction,
            Direction::RecvOnly
        );
    }

    #[test]
    fn second_audio_and_video_are_rejected_with_port_zero() {
        let o = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                 m=audio 5004 RTP/AVP 0\r\nm=audio 5008 RTP/AVP 8\r\n";
        let n = negotiate(o, local(), 1).unwrap();
        assert_eq!(n.remote_rtp, Some("10.0.0.1:5004".parse().unwrap()));
        let m_lines: Vec<&str> = n
            .answer_sdp
            .lines()
            .filter(|l| l.starts_with("m="))
            .collect();
        assert_eq!(
            m_lines,
            vec![
                "m=video 0 RTP/AVP 96",
                "m=audio 40000 RTP/AVP 0",
                "m=audio 0 RTP/AVP 8"
            ]
        );
    }

    #[test]
    fn media_level_connection_and_hold_address() {
        let o = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 10.9.9.9\r\n";
        let n = negotiate(o, local(), 1).unwrap();
        assert_eq!(n.remote_rtp, Some("10.9.9.9:5004".parse().unwrap()));
        let hold = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(negotiate(hold, local(), 1).unwrap().remote_rtp, None);
        let fqdn = "v=0\r\nc=IN IP4 pbx.example.com\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(negotiate(fqdn, local(), 1).unwrap().remote_rtp, None);
    }

    #[test]
    fn ipv6_local_address() {
        let local6: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let n = negotiate(SIPP, local6, 7).unwrap();
        assert!(n.answer_sdp.contains("c=IN IP6 2001:db8::1\r\n"));
        assert!(n.answer_sdp.contains("o=pbx 7 7 IN IP6 2001:db8::1\r\n"));
    }

    #[test]
    fn malformed_and_oversized() {
        assert!(matches!(
            SessionDescription::parse("v=0\r\nthis is not sdp\r\n"),
            Err(SdpError::Malformed { line: 2, .. })
        ));
        assert!(matches!(
            SessionDescription::parse("v=0\r\nm=audio notaport RTP/AVP 0\r\n"),
            Err(SdpError::Malformed { line: 2, .. })
        ));
        assert!(matches!(
            SessionDescription::parse("v=0\r\nt=now\r\n"),
            Err(SdpError::Malformed { line: 2, .. })
        ));
        assert!(matches!(
            SessionDescription::parse("v=1\r\n"),
            Err(SdpError::Malformed { .. })
        ));
        assert!(matches!(
            SessionDescription::parse("s=x\r\n"),
            Err(SdpError::Malformed { .. })
        ));
        assert_eq!(
            SessionDescription::parse(&"a".repeat(MAX_SDP_LEN + 1)),
            Err(SdpError::TooLarge)
        );
        let many = format!("v=0\r\n{}", "m=audio 1 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
        assert_eq!(SessionDescription::parse(&many), Err(SdpError::TooLarge));
        // A broken rtpmap disables that payload type but not the description.
        let d =
            SessionDescription::parse("v=0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 x\r\n").unwrap();
        assert!(d.media[0].rtpmaps.is_empty());
    }

    #[test]
    fn our_offer_round_trips() {
        let o = offer(local(), 99);
        let d = SessionDescription::parse(&o).unwrap();
        assert_eq!(d.media[0].formats, vec!["0", "8", "101"]);
        assert_eq!(d.media[0].ptime, Some(20));
        // A peer answering our offer with its own SDP picks PCMU and telephone-event.
        let n = negotiate(&o, "198.51.100.1:5000".parse().unwrap(), 5).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, Some(101)));
        assert_eq!(n.remote_rtp, Some(local()));
        assert_eq!(
            accept_answer("v=0\r\nm=audio 0 RTP/AVP 0\r\n"),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn reoffer_for_hold_and_resume() {
        let answer = "v=0\r\no=peer 1 1 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\nt=0 0\r\n\
                      m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
                      a=rtpmap:101 telephone-event/8000\r\n";
        let n = accept_answer(answer).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(101)));
        assert!(!n.peer_holds());
        let hold = reoffer(&n, local(), 99, 100, Direction::SendOnly);
        assert_eq!(
            hold,
            "v=0\r\no=pbx 99 100 IN IP4 192.0.2.10\r\ns=pbx\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendonly\r\n"
        );
        // The peer answering our hold with recvonly: we send only.
        let peer = negotiate(&hold, "10.0.0.7:7000".parse().unwrap(), 1).unwrap();
        assert_eq!(peer.direction, Direction::RecvOnly);
        assert!(peer.peer_holds(), "from the peer's side we hold it");
        let back = accept_answer(&peer.answer_sdp).unwrap();
        assert_eq!(back.direction, Direction::SendOnly);
        assert_eq!(back.remote_direction, Direction::RecvOnly);
        assert!(!back.peer_holds());
        let inactive = reoffer(&n, local(), 99, 101, Direction::Inactive);
        assert!(inactive.contains("o=pbx 99 101 ") && inactive.ends_with("a=inactive\r\n"));
        let resume = reoffer(&n, local(), 99, 102, Direction::SendRecv);
        assert!(resume.ends_with("a=sendrecv\r\n"));
        // Without telephone-event the re-offer has the codec alone.
        let plain = Negotiated { dtmf_pt: None, ..n };
        let o = reoffer(&plain, local(), 1, 2, Direction::SendRecv);
        assert!(o.contains("m=audio 40000 RTP/AVP 8\r\n") && !o.contains("telephone-event"));
    }

    #[test]
    fn peer_hold_is_detected_in_offers_and_answers() {
        for (sdp_dir, holds) in [
            ("a=sendonly\r\n", true),
            ("a=inactive\r\n", true),
            ("a=recvonly\r\n", false),
            ("a=sendrecv\r\n", false),
            ("", false),
        ] {
            let o = format!("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\n{sdp_dir}");
            assert_eq!(
                negotiate(&o, local(), 1).unwrap().peer_holds(),
                holds,
                "{sdp_dir}"
            );
            assert_eq!(accept_answer(&o).unwrap().peer_holds(), holds, "{sdp_dir}");
        }
        // RFC 2543 hold: c=0.0.0.0.
        let old = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 5004 RTP/AVP 0\r\n";
        let n = negotiate(old, local(), 1).unwrap();
        assert!(n.peer_holds());
        assert_eq!(n.remote_direction, Direction::SendOnly);
        // Our own offer serves an outbound leg and is not a hold.
        let ours = accept_answer(&offer(local(), 5)).unwrap();
        assert!(!ours.peer_holds());
        assert_eq!(ours.direction, Direction::SendRecv);
    }
}
