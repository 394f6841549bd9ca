//! Load shedding in virtual time: only new INVITEs are refused (503 with Retry-After) past the
//! call cap; requests in a dialog are served however many completed transactions are held,
//! and completed transactions expire on their own timers. Past the transaction backstop new
//! out-of-dialog requests are shed statelessly, while dialogs and CANCELs are still served.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use pbx_sip::{CallKey, Endpoint, SipEvent};
use support::{drain, endpoint_with_limits, endpoint_with_max_calls, origin, udp_peer};

const CALLER: &str = "198.51.100.10:5070";

/// A new INVITE numbered `i`: its own branch, Call-ID and From tag.
fn invite(i: usize) -> Vec<u8> {
    format!(
        "INVITE sip:1000@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {CALLER};branch=z9hG4bKinv{i}\r\n\
Max-Forwards: 70\r\n\
To: <sip:1000@192.0.2.1>\r\n\
From: <sip:alice@198.51.100.10>;tag=from{i}\r\n\
Call-ID: call{i}@198.51.100.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@{CALLER}>\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// An in-dialog request of call `i` whose To tag is `tag`.
fn in_dialog(method: &str, i: usize, tag: &str, cseq: u32, branch: &str) -> Vec<u8> {
    format!(
        "{method} sip:1000@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\r\n\
Max-Forwards: 70\r\n\
To: <sip:1000@192.0.2.1>;tag={tag}\r\n\
From: <sip:alice@198.51.100.10>;tag=from{i}\r\n\
Call-ID: call{i}@198.51.100.10\r\n\
CSeq: {cseq} {method}\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// An out-of-dialog OPTIONS numbered `i`: answered 200, then held as a completed transaction
/// for Timer J (64*T1 over UDP).
fn options(i: usize) -> Vec<u8> {
    format!(
        "OPTIONS sip:192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {CALLER};branch=z9hG4bKopt{i}\r\n\
Max-Forwards: 70\r\n\
To: <sip:192.0.2.1>\r\n\
From: <sip:probe@198.51.100.10>;tag=opt{i}\r\n\
Call-ID: opt{i}@198.51.100.10\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Call `i` answered and ACKed; returns its key and our To tag.
fn establish(ep: &mut Endpoint, now: Instant, i: usize) -> (CallKey, String) {
    ep.handle_input(now, udp_peer(CALLER), &invite(i));
    let out = drain(ep);
    let Some(SipEvent::IncomingCall(call)) = out.events.first() else {
        panic!("no call: {:?}", out.statuses());
    };
    let key = call.key;
    ep.respond(now, key, 200, None, Some(b"v=0\r\n".to_vec()))
        .unwrap();
    let ok = drain(ep);
    let tag = ok.responses()[0]
        .headers
        .to()
        .unwrap()
        .tag()
        .unwrap()
        .to_owned();
    ep.handle_input(now, udp_peer(CALLER), &in_dialog("ACK", i, &tag, 1, "ack"));
    drain(ep);
    (key, tag)
}

#[test]
fn a_bye_is_answered_beside_20000_completed_transactions() {
    let mut ep = endpoint_with_max_calls(21, 100);
    let t0 = origin();
    let (key, tag) = establish(&mut ep, t0, 0);
    for i in 0..20_000 {
        ep.handle_input(t0, udp_peer(CALLER), &options(i));
        assert_eq!(drain(&mut ep).statuses(), vec![200], "OPTIONS {i}");
    }
    assert!(ep.transaction_count() >= 20_000);
    let t1 = t0 + Duration::from_millis(10);
    ep.handle_input(t1, udp_peer(CALLER), &in_dialog("BYE", 0, &tag, 2, "bye"));
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![200]);
    assert!(matches!(out.events[..], [SipEvent::Ended { key: k, .. }] if k == key));
    // The completed transactions go on Timer J (32 s), all of them, and nothing is left.
    let t2 = t0 + Duration::from_secs(33);
    assert!(ep.poll_timeout().is_some_and(|t| t <= t2));
    ep.handle_timeout(t2);
    drain(&mut ep);
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn past_the_call_cap_only_new_invites_are_shed() {
    let mut ep = endpoint_with_max_calls(22, 2);
    let t0 = origin();
    let (_, tag0) = establish(&mut ep, t0, 0);
    let (key1, tag1) = establish(&mut ep, t0, 1);
    // A third call: 503 with Retry-After, and no call is created.
    ep.handle_input(t0, udp_peer(CALLER), &invite(2));
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![503]);
    assert!(out.responses()[0].headers.get("Retry-After").is_some());
    assert!(out.events.is_empty());
    assert_eq!(ep.take_shed_invites(), 1);
    assert_eq!(ep.take_shed_invites(), 0);
    // In-dialog requests of the live calls are served: INFO, a re-INVITE, a BYE.
    ep.handle_input(
        t0,
        udp_peer(CALLER),
        &in_dialog("INFO", 0, &tag0, 2, "info"),
    );
    assert_eq!(drain(&mut ep).statuses(), vec![200]);
    ep.handle_input(
        t0,
        udp_peer(CALLER),
        &in_dialog("INVITE", 0, &tag0, 3, "reinv"),
    );
    assert_eq!(drain(&mut ep).statuses(), vec![200]);
    ep.handle_input(t0, udp_peer(CALLER), &in_dialog("BYE", 1, &tag1, 2, "bye1"));
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![200]);
    assert!(matches!(out.events[..], [SipEvent::Ended { key, .. }] if key == key1));
    // Room again: a new call gets through.
    ep.handle_input(t0, udp_peer(CALLER), &invite(3));
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![100]);
    assert!(matches!(out.events[..], [SipEvent::IncomingCall(_)]));
}

/// The CANCEL of call `i`'s INVITE (same branch, RFC 3261 §9.1).
fn cancel(i: usize) -> Vec<u8> {
    format!(
        "CANCEL sip:1000@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {CALLER};branch=z9hG4bKinv{i}\r\n\
Max-Forwards: 70\r\n\
To: <sip:1000@192.0.2.1>\r\n\
From: <sip:alice@198.51.100.10>;tag=from{i}\r\n\
Call-ID: call{i}@198.51.100.10\r\n\
CSeq: 1 CANCEL\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn past_the_transaction_backstop_new_invites_are_shed_statelessly() {
    const BACKSTOP: usize = 64;
    let mut ep = endpoint_with_limits(23, 1_000, BACKSTOP);
    let t0 = origin();
    let (key0, tag0) = establish(&mut ep, t0, 0);
    // Call 1 rings: its CANCEL must get through later.
    ep.handle_input(t0, udp_peer(CALLER), &invite(1));
    let out = drain(&mut ep);
    let Some(SipEvent::IncomingCall(ringing)) = out.events.first() else {
        panic!("no call: {:?}", out.statuses());
    };
    let key1 = ringing.key;
    // A flood of INVITEs to unknown numbers from spoofed sources: the call layer refuses each
    // (404), and each completed transaction waits for an ACK that never comes (Timer H).
    let mut i = 2;
    while ep.transaction_count() < BACKSTOP {
        ep.handle_input(t0, udp_peer(CALLER), &invite(i));
        let out = drain(&mut ep);
        let Some(SipEvent::IncomingCall(call)) = out.events.first() else {
            panic!("INVITE {i} below the backstop: {:?}", out.statuses());
        };
        ep.respond(t0, call.key, 404, None, None).unwrap();
        assert_eq!(drain(&mut ep).statuses(), vec![404]);
        i += 1;
    }
    assert_eq!(ep.take_shed_invites(), 0);
    // Past the backstop a new INVITE gets 503 with Retry-After, and no transaction or call.
    let held = ep.transaction_count();
    for j in i..i + 1_000 {
        ep.handle_input(t0, udp_peer(CALLER), &invite(j));
        let out = drain(&mut ep);
        assert_eq!(out.statuses(), vec![503], "INVITE {j}");
        assert!(out.responses()[0].headers.get("Retry-After").is_some());
        assert!(out.events.is_empty());
    }
    assert_eq!(ep.take_shed_invites(), 1_000);
    // Other out-of-dialog traffic is answered without a transaction too.
    ep.handle_input(t0, udp_peer(CALLER), &options(0));
    assert_eq!(drain(&mut ep).statuses(), vec![503]);
    ep.handle_input(
        t0,
        udp_peer(CALLER),
        &in_dialog("BYE", 9_999, "nope", 2, "stray"),
    );
    assert_eq!(drain(&mut ep).statuses(), vec![481]);
    ep.handle_input(t0, udp_peer(CALLER), &cancel(9_999));
    assert_eq!(drain(&mut ep).statuses(), vec![481]);
    assert_eq!(ep.transaction_count(), held);
    // The ringing call's CANCEL is served: 200 to the CANCEL, 487 to its INVITE.
    ep.handle_input(t0, udp_peer(CALLER), &cancel(1));
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![200, 487]);
    assert!(matches!(out.events[..], [SipEvent::Cancelled { key }] if key == key1));
    // The live call's BYE is served.
    ep.handle_input(t0, udp_peer(CALLER), &in_dialog("BYE", 0, &tag0, 2, "bye"));
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![200]);
    assert!(matches!(out.events[..], [SipEvent::Ended { key, .. }] if key == key0));
    // Once the refused INVITEs' transactions expire (Timer H, 32 s), new calls get through.
    let t1 = t0 + Duration::from_secs(33);
    ep.handle_timeout(t1);
    drain(&mut ep);
    assert_eq!(ep.transaction_count(), 0);
    ep.handle_input(t1, udp_peer(CALLER), &invite(i + 1_000));
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![100]);
    assert!(matches!(out.events[..], [SipEvent::IncomingCall(_)]));
}
