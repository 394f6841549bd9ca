//! RTP captured by sipp (`/usr/share/sip-tester/*.pcap`, from the sip-tester package) fed
//! through an [`RtpSession`]: RFC 4733 digits come out exactly once, and G.711 audio decodes.
//! The pcap files are parsed by hand: a 24-byte global header, then 16-byte record headers,
//! each followed by an Ethernet II / IPv4 / UDP frame.
#![allow(clippy::unwrap_used, reason = "test code")]
#![allow(
    clippy::disallowed_methods,
    reason = "one real Instant is the origin of the virtual clock"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use pbx_media::sdp::Direction;
use pbx_media::{Codec, MediaEvent, RtpSession, SessionConfig};

const PCAP_DIR: &str = "/usr/share/sip-tester";

/// One UDP datagram from a capture: capture time, source address, payload.
struct Datagram {
    at: Duration,
    src: SocketAddr,
    payload: Vec<u8>,
}

fn read_pcap(path: &Path) -> Vec<Datagram> {
    let data = std::fs::read(path).unwrap();
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    assert_eq!(magic, 0xa1b2_c3d4, "little-endian microsecond pcap");
    let linktype = u32::from_le_bytes(data[20..24].try_into().unwrap());
    assert_eq!(linktype, 1, "Ethernet");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
        let (sec, usec, incl) = (u32_at(off), u32_at(off + 4), u32_at(off + 8) as usize);
        off += 16;
        let frame = &data[off..off + incl];
        off += incl;
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4 ethertype");
        let ip = &frame[14..];
        assert_eq!(ip[0] >> 4, 4);
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        assert_eq!(ip[9], 17, "UDP");
        let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let udp = &ip[ihl..];
        let src_port = u16::from_be_bytes([udp[0], udp[1]]);
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        out.push(Datagram {
            at: Duration::new(u64::from(sec), usec * 1000),
            src: SocketAddr::new(IpAddr::V4(src_ip), src_port),
            payload: udp[8..udp_len].to_vec(),
        });
    }
    out
}

fn session(codec: Codec, pt: u8) -> RtpSession {
    RtpSession::new(SessionConfig {
        codec,
        pt,
        dtmf_pt: Some(101),
        remote: None,
        direction: Direction::SendRecv,
        seed: 1,
        jitter_depth: Some(3),
    })
}

/// Replays a capture in virtual time; returns the session and the events it produced.
fn replay(path: &Path, mut s: RtpSession) -> (RtpSession, Vec<MediaEvent>) {
    let t0 = Instant::now();
    let packets = read_pcap(path);
    let first = packets[0].at;
    let events = packets
        .iter()
        .filter_map(|d| s.handle_input(t0 + (d.at - first), d.src, &d.payload))
        .collect();
    (s, events)
}

fn digits(events: &[MediaEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit } => Some(digit.as_str()),
            MediaEvent::Audio => None,
        })
        .collect()
}

fn skip_without(path: &Path) -> bool {
    if path.exists() {
        return false;
    }
    eprintln!(
        "SKIPPED: {} not found (install the sip-tester package to run this test)",
        path.display()
    );
    true
}

#[test]
fn dtmf_2833_1_gives_exactly_one_1() {
    let path = Path::new(PCAP_DIR).join("dtmf_2833_1.pcap");
    if skip_without(&path) {
        return;
    }
    let (s, events) = replay(&path, session(Codec::Pcmu, 0));
    assert_eq!(digits(&events), "1");
    let stats = s.stats();
    assert_eq!(stats.packets_received, 10);
    assert_eq!(stats.dtmf_received, 1);
    // The three end packets share one sequence number: duplicates, not loss.
    assert_eq!(stats.packets_lost, 0);
    assert!(s.latched().is_some());
}

#[test]
fn every_sipp_dtmf_capture_gives_its_digit_once() {
    for (file, want) in [
        ("0", "0"),
        ("2", "2"),
        ("3", "3"),
        ("4", "4"),
        ("5", "5"),
        ("6", "6"),
        ("7", "7"),
        ("8", "8"),
        ("9", "9"),
        ("star", "*"),
        ("pound", "#"),
    ] {
        let path = Path::new(PCAP_DIR).join(format!("dtmf_2833_{file}.pcap"));
        if skip_without(&path) {
            continue;
        }
        let (_, events) = replay(&path, session(Codec::Pcmu, 0));
        assert_eq!(digits(&events), want, "{file}");
    }
}

#[test]
fn g711a_capture_decodes_without_loss() {
    let path = Path::new(PCAP_DIR).join("g711a.pcap");
    if skip_without(&path) {
        return;
    }
    let (mut s, events) = replay(&path, session(Codec::Pcma, 8));
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| *e == MediaEvent::Audio));
    let stats = s.stats();
    assert_eq!(stats.packets_received as usize, events.len());
    assert_eq!(stats.packets_lost, 0);
    assert!(stats.jitter_ms < 20.0, "jitter {}", stats.jitter_ms);
    // sipp's capture uses 30 ms packets (240 samples); the decoded frame follows the packet.
    assert_eq!(s.audio().len(), 240);
    // The jitter buffer hands out the (cut to 20 ms) frames in order.
    let mut out = [0i16; 160];
    assert!(matches!(s.pull_audio(&mut out), pbx_media::Pop::Frame(160)));
}
