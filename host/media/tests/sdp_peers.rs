//! Offer/answer against SDP captured from (or modelled on) real peers: sipp, baresip,
//! baresip-studio and linphone.
#![allow(clippy::unwrap_used, reason = "test code")]

use std::net::SocketAddr;

use pbx_media::sdp::{Direction, SessionDescription, accept_answer, negotiate};
use pbx_media::{Codec, SdpError};

const SIPP: &str = include_str!("fixtures/sdp/sipp_uac_pcap.sdp");
const BARESIP: &str = include_str!("fixtures/sdp/baresip_1_0.sdp");
const BARESIP_STUDIO: &str = include_str!("fixtures/sdp/baresip_studio_pt10.sdp");
const LINPHONE: &str = include_str!("fixtures/sdp/linphone_ipv6.sdp");

fn local4() -> SocketAddr {
    "203.0.113.5:20000".parse().unwrap()
}

fn m_lines(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("m=")).collect()
}

#[test]
fn sipp_uac_pcap() {
    let n = negotiate(SIPP, local4(), 1).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(101)));
    assert_eq!(n.remote_rtp, Some("127.0.0.1:6000".parse().unwrap()));
    assert_eq!(m_lines(&n.answer_sdp), vec!["m=audio 20000 RTP/AVP 8 101"]);
    assert!(n.answer_sdp.contains("a=fmtp:101 0-16\r\n"));
    assert!(n.answer_sdp.contains("a=ptime:20\r\n"));
}

#[test]
fn baresip_prefers_opus_we_take_pcmu() {
    let d = SessionDescription::parse(BARESIP).unwrap();
    assert_eq!(d.media.len(), 1);
    assert_eq!(d.media[0].ptime, Some(20));
    let n = negotiate(BARESIP, local4(), 2).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, Some(101)));
    assert_eq!(n.remote_rtp, Some("192.168.43.99:30244".parse().unwrap()));
    assert_eq!(n.direction, Direction::SendRecv);
    assert!(n.answer_sdp.contains("a=rtpmap:0 PCMU/8000\r\n"));
    assert!(!n.answer_sdp.contains("opus"));
}

#[test]
fn baresip_studio_telephone_event_on_pt_10() {
    let n = negotiate(BARESIP_STUDIO, local4(), 3).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(10)));
    assert_eq!(m_lines(&n.answer_sdp), vec!["m=audio 20000 RTP/AVP 8 10"]);
    assert!(
        n.answer_sdp
            .contains("a=rtpmap:10 telephone-event/8000\r\na=fmtp:10 0-16\r\n")
    );
}

#[test]
fn linphone_ipv6_with_video() {
    let local6: SocketAddr = "[2001:db8::1]:20000".parse().unwrap();
    let n = negotiate(LINPHONE, local6, 4).unwrap();
    // PCMU is the first G.711 codec; telephone-event/8000 is PT 100, not 101 (48 kHz).
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, Some(100)));
    assert_eq!(n.remote_rtp, Some("[2001:db8::10]:7078".parse().unwrap()));
    assert_eq!(
        m_lines(&n.answer_sdp),
        vec!["m=audio 20000 RTP/AVP 0 100", "m=video 0 RTP/AVP 96 97"]
    );
    assert!(n.answer_sdp.contains("c=IN IP6 2001:db8::1\r\n"));
    // The answer is itself valid SDP that a peer would read back the same way.
    let back = accept_answer(&n.answer_sdp).unwrap();
    assert_eq!(
        (back.codec, back.pt, back.dtmf_pt),
        (Codec::Pcmu, 0, Some(100))
    );
    assert_eq!(back.remote_rtp, Some(local6));
}

#[test]
fn every_fixture_survives_hostile_edits() {
    // Truncating a real offer anywhere must give an answer or a typed error, never a panic.
    for sdp in [SIPP, BARESIP, BARESIP_STUDIO, LINPHONE] {
        for cut in 0..sdp.len() {
            if !sdp.is_char_boundary(cut) {
                continue;
            }
            match negotiate(&sdp[..cut], local4(), 9) {
                Ok(n) => assert!(n.answer_sdp.starts_with("v=0\r\n")),
                Err(SdpError::Malformed { .. } | SdpError::NoCommonCodec) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}
