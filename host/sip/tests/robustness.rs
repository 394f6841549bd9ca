//! Fuzz-like robustness: truncated and byte-flipped variants of a valid INVITE through the
//! parser, the stream decoder and the endpoint (seeded, so failures repeat), plus the caps.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::time::Duration;

use pbx_sip::framing::StreamDecoder;
use pbx_sip::{Peer, SipEvent, Transport, parse};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{MAX_CALLS, drain, endpoint, origin, udp_peer};

const INVITE: &[u8] = b"INVITE sip:1000@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.10:5070;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: \"PBX\" <sip:1000@192.0.2.1>\r\n\
From: \"Alice\" <sip:alice@198.51.100.10>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@198.51.100.10:5070>\r\n\
Record-Route: <sip:p1.example.com;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 71\r\n\
\r\n\
v=0\r\no=a 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\n";

const INTERESTING: &[u8] = b"\r\n:;,<>\"\\ \t%@=/0z\x00\xff";

/// A copy of the INVITE with its own branch and Call-ID, so each case is a new transaction.
fn fresh(i: usize) -> Vec<u8> {
    String::from_utf8(INVITE.to_vec())
        .unwrap()
        .replace("776asdhds", &format!("{i:09}"))
        .replace("a84b4c76e66710", &format!("{i:014}"))
        .into_bytes()
}

fn mutate(rng: &mut StdRng, i: usize) -> Vec<u8> {
    let mut m = fresh(i);
    for _ in 0..rng.random_range(1..=4) {
        let i = rng.random_range(0..m.len());
        match rng.random_range(0..4) {
            0 => m[i] = rng.random(),
            1 => m[i] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            2 => {
                m.remove(i);
            }
            _ => m.insert(i, INTERESTING[rng.random_range(0..INTERESTING.len())]),
        }
    }
    m
}

#[test]
fn truncated_and_flipped_invites_never_panic() {
    assert!(parse(INVITE).is_ok());
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut ep = endpoint(1);
    let t0 = origin();
    let peer = udp_peer("198.51.100.10:5070");
    let mut cases: Vec<Vec<u8>> = (0..=INVITE.len()).map(|n| fresh(n)[..n].to_vec()).collect();
    cases.extend((0..4000).map(|i| mutate(&mut rng, 1000 + i)));
    let (mut calls, mut answered) = (0usize, 0usize);
    for (i, case) in cases.iter().enumerate() {
        let _ = parse(case);
        let mut dec = StreamDecoder::new();
        dec.push(case);
        while let Ok(Some(_)) = dec.next_message() {}
        let now = t0 + Duration::from_millis(i as u64);
        ep.handle_input(now, peer, case);
        let out = drain(&mut ep);
        answered += usize::from(!out.sent.is_empty());
        for e in out.events {
            if let SipEvent::IncomingCall(c) = e {
                calls += 1;
                // Play a call layer that answers and hangs up, to exercise the rest.
                ep.respond(now, c.key, 200, None, Some(b"v=0\r\n".to_vec()))
                    .unwrap();
                ep.hangup(now, c.key).unwrap();
            }
        }
        drain(&mut ep);
    }
    assert!(
        calls > 100,
        "some mutants are still valid INVITEs ({calls})"
    );
    assert!(answered > 1000, "most mutants get an answer ({answered})");
    // Everything is reaped once the timers run out.
    let mut now = t0 + Duration::from_secs(10);
    while let Some(t) = ep.poll_timeout() {
        now = now.max(t);
        ep.handle_timeout(now);
        drain(&mut ep);
        if now > t0 + Duration::from_secs(600) {
            panic!("timers never settle");
        }
    }
    assert_eq!(ep.call_count(), 0);
    assert_eq!(ep.transaction_count(), 0);
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut ep = endpoint(2);
    let t0 = origin();
    for i in 0..2000 {
        let len = rng.random_range(0..600);
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| INTERESTING[rng.random_range(0..INTERESTING.len())])
            .collect();
        if i % 2 == 0 {
            bytes.splice(0..0, b"OPTIONS sip:a@b SIP/2.0\r\n".iter().copied());
        }
        let _ = parse(&bytes);
        ep.handle_input(t0, udp_peer("203.0.113.1:5060"), &bytes);
        drain(&mut ep);
    }
}

#[test]
fn call_table_is_capped() {
    let mut ep = endpoint(3);
    let t0 = origin();
    let peer = Peer {
        transport: Transport::Tcp,
        addr: "198.51.100.10:40000".parse().unwrap(),
        conn: Some(1),
    };
    let text = String::from_utf8(INVITE.to_vec()).unwrap();
    for i in 0..=MAX_CALLS {
        let msg = text
            .replace("z9hG4bK776asdhds", &format!("z9hG4bKflood{i}"))
            .replace("a84b4c76e66710", &format!("flood{i}"));
        ep.handle_input(t0, peer, msg.as_bytes());
        let out = drain(&mut ep);
        let expected = if i < MAX_CALLS { 100 } else { 503 };
        assert_eq!(out.statuses(), vec![expected], "INVITE {i}");
    }
    assert_eq!(ep.call_count(), MAX_CALLS);
}
