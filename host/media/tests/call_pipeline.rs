//! One call's media path end to end, in virtual time: SDP negotiation, the pbx's session and
//! player speaking to a simulated peer, symmetric-RTP latching behind a NAT, and the peer's
//! RFC 4733 key presses reaching stop-on-DTMF and the digit collector.
#![allow(clippy::unwrap_used, reason = "test code")]
#![allow(
    clippy::disallowed_methods,
    reason = "one real Instant is the origin of the virtual clock"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbx_media::sdp::Direction;
use pbx_media::tts::ToneTts;
use pbx_media::{
    Codec, CollectEnd, CollectOpts, Collector, Digit, MediaEvent, MediaKind, PlayOpts, Player,
    PlayerEvent, RtpSession, SessionConfig, Tts, negotiate,
};

const OFFER: &str = include_str!("fixtures/sdp/sipp_uac_pcap.sdp");
const TICK: Duration = Duration::from_millis(20);

#[test]
fn prompt_then_digits_with_nat() {
    let pbx_addr: SocketAddr = "192.0.2.1:30000".parse().unwrap();
    // The peer's SDP says 127.0.0.1:6000, but behind a NAT its packets come from here.
    let peer_public: SocketAddr = "198.51.100.7:41000".parse().unwrap();

    let n = negotiate(OFFER, pbx_addr, 77).unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    let mut pbx = RtpSession::new(SessionConfig::from_negotiated(&n, 1234));
    let mut peer = RtpSession::new(SessionConfig {
        codec: Codec::Pcma,
        pt: 8,
        dtmf_pt: Some(101),
        remote: Some(pbx_addr),
        direction: Direction::SendRecv,
        seed: 99,
        jitter_depth: None,
    });

    let tts = Tts::new(Arc::new(ToneTts {
        rate: 16000,
        ms_per_char: 200,
    }));
    let prompt = tts.speak("Press 1 2 and hash", None, None, 8000).unwrap();
    assert_eq!(prompt.samples.len(), 18 * 1600); // 3.6 s
    let mut player = Player::new(8000);
    let opts = PlayOpts {
        stop_on_dtmf: true,
        ..PlayOpts::once(MediaKind::Say)
    };
    player.enqueue(1, prompt.clone(), opts);
    let mut collector = Collector::new();

    let t0 = Instant::now();
    let mut now = t0;
    let mut frame = [0i16; 160];
    let mut wire = [0u8; 1500];
    let mut heard: Vec<i16> = Vec::new();
    let mut digits_seen = Vec::new();
    let mut finished = Vec::new();
    let mut collected = None;

    for tick in 0..200u32 {
        // pbx -> peer: one frame of the prompt (or silence).
        player.next_frame(&mut frame);
        let sdp_addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        if let Some((dest, len)) = pbx.send_frame(&frame, &mut wire)
            && (dest == peer_public || dest == sdp_addr)
            && let Some(MediaEvent::Audio) = peer.handle_input(now, pbx_addr, &wire[..len])
        {
            heard.extend_from_slice(peer.audio());
        }
        while let Some(ev) = player.poll_event() {
            finished.push(ev);
        }

        // peer -> pbx: silence, and key presses from tick 50 on.
        match tick {
            10 => {
                collector
                    .start(
                        now,
                        CollectOpts {
                            max_digits: 4,
                            terminator: Digit::parse("#"),
                            timeout: Duration::from_secs(5),
                        },
                    )
                    .unwrap();
            }
            50 => {
                for k in ["1", "2", "#"] {
                    peer.send_dtmf(Digit::parse(k).unwrap(), 100).unwrap();
                }
            }
            _ => {}
        }
        if let Some((dest, len)) = peer.send_frame(&[0i16; 160], &mut wire) {
            assert_eq!(dest, pbx_addr);
            match pbx.handle_input(now, peer_public, &wire[..len]) {
                Some(MediaEvent::Dtmf { digit }) => {
                    digits_seen.push(digit);
                    player.on_dtmf(digit);
                    if let Some(c) = collector.on_digit(now, digit) {
                        collected = Some(c);
                    }
                }
                Some(MediaEvent::Audio) | None => {}
            }
        }
        if let Some(c) = collector.handle_timeout(now) {
            collected = Some(c);
        }
        now += TICK;
    }

    // Symmetric RTP: after the first packet, the pbx sends to where the peer really is.
    assert_eq!(pbx.destination(), Some(peer_public));
    // The peer heard the prompt (G.711 error aside) from its first sample: the first frame
    // went to the SDP address before latching, which this simulation also delivers.
    assert!(heard.len() >= 7000);
    for (h, p) in heard.iter().zip(&prompt.samples).take(7000) {
        assert!((i32::from(*h) - i32::from(*p)).abs() <= 300, "{h} vs {p}");
    }
    // Keys: "1", "2", "#", each once.
    let keys: String = digits_seen.iter().map(|d| d.as_str()).collect();
    assert_eq!(keys, "12#");
    // The first key stopped the prompt (50 ticks = 1 s into a 3.6 s prompt).
    assert_eq!(
        finished,
        vec![PlayerEvent::Finished {
            id: 1,
            kind: MediaKind::Say,
            played_completely: false,
            digit: Digit::parse("1"),
        }]
    );
    let c = collected.unwrap();
    assert_eq!((c.digits.as_str(), c.end), ("12", CollectEnd::Terminator));
    // Both directions counted everything without loss.
    assert_eq!(pbx.stats().packets_lost, 0);
    assert_eq!(peer.stats().packets_lost, 0);
    assert_eq!(pbx.stats().dtmf_received, 3);
    assert_eq!(peer.stats().packets_sent, 200);
}
