//! Rough parse speed check (target: an ordinary INVITE with SDP in <= 2 µs, release build).
//! Run: `cargo test --release -p pbx-sip --test parse_speed -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Instant;

use pbx_sip::{SipMessage, parse};

const INVITE: &[u8] = b"INVITE sip:1000@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:1000@192.0.2.10>\r\n\
From: \"Alice\" <sip:alice@192.0.2.20>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.20:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n\
User-Agent: baresip\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 153\r\n\
\r\n\
v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

#[test]
#[ignore = "timing; run in release by hand"]
#[allow(
    clippy::disallowed_methods,
    reason = "measuring wall time is the point"
)]
fn parse_speed() {
    const N: u32 = 200_000;
    let start = Instant::now();
    for _ in 0..N {
        std::hint::black_box(parse(std::hint::black_box(INVITE)).unwrap());
    }
    let parse_only = start.elapsed() / N;
    let start = Instant::now();
    for _ in 0..N {
        let SipMessage::Request(r) = parse(std::hint::black_box(INVITE)).unwrap() else {
            panic!()
        };
        // What the endpoint reads from every INVITE.
        std::hint::black_box((
            r.headers.top_via().unwrap(),
            r.headers.from().unwrap(),
            r.headers.to().unwrap(),
            r.headers.cseq().unwrap(),
            r.headers.call_id().unwrap(),
            r.headers.contact().unwrap(),
        ));
    }
    let with_fields = start.elapsed() / N;
    let start = Instant::now();
    for _ in 0..N {
        std::hint::black_box(
            rsipstack::sip::parser::parse_message(std::hint::black_box(INVITE)).unwrap(),
        );
    }
    let rsipstack = start.elapsed() / N;
    println!(
        "parse: {parse_only:?}; parse + Via/From/To/CSeq/Call-ID/Contact: {with_fields:?}; rsipstack parse_message: {rsipstack:?}"
    );
}
