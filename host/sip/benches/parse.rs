//! SIP parse cost per message (target: an ordinary INVITE with SDP in <= 2 µs), against
//! rsipstack's parser for comparison. Run: `cargo bench -p pbx-sip`.

use criterion::{Criterion, criterion_group, criterion_main};
use pbx_sip::{SipMessage, parse};
use std::hint::black_box;

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

fn parse_invite(c: &mut Criterion) {
    c.bench_function("parse INVITE", |b| b.iter(|| parse(black_box(INVITE))));
    c.bench_function("parse INVITE + Via/From/To/CSeq/Call-ID/Contact", |b| {
        b.iter(|| {
            if let Ok(SipMessage::Request(r)) = parse(black_box(INVITE)) {
                black_box((
                    r.headers.top_via().ok(),
                    r.headers.from().ok(),
                    r.headers.to().ok(),
                    r.headers.cseq().ok(),
                    r.headers.call_id(),
                    r.headers.contact().ok(),
                ));
            }
        })
    });
    c.bench_function("rsipstack parse_message INVITE", |b| {
        b.iter(|| rsipstack::sip::parser::parse_message(black_box(INVITE)))
    });
}

criterion_group!(benches, parse_invite);
criterion_main!(benches);
