//! The endpoint as UAC against a hand-driven peer: digest challenges, Timer B, deferred and
//! unanswered CANCEL, forked 2xx, route sets, transport errors and argument checks. Each test
//! plays the far end by parsing what the endpoint sends and answering with crafted responses.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use pbx_sip::builder::response_to;
use pbx_sip::digest::{self, Algorithm};
use pbx_sip::{
    CallKey, Credentials, EndCause, Endpoint, Method, OutgoingCall, Peer, Request, Response,
    SipError, SipEvent, SipMessage, Transport,
};
use support::{Drained, drain, endpoint, origin, udp_peer};

const FAR: &str = "198.51.100.30:5090";
const OFFER: &[u8] = b"v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const EARLY: &[u8] = b"v=0\r\no=f 1 1 IN IP4 198.51.100.30\r\ns=-\r\nc=IN IP4 198.51.100.30\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

fn call_to(peer: Peer) -> OutgoingCall {
    OutgoingCall {
        request_uri: format!("sip:+15551234@{FAR}"),
        destination: peer,
        from_uri: "sip:1000@192.0.2.1".into(),
        from_display: None,
        to_uri: format!("sip:+15551234@{FAR}"),
        headers: vec![("X-Account".into(), "42".into())],
        sdp: Some(OFFER.to_vec()),
        credentials: None,
    }
}

fn requests(d: &Drained) -> Vec<&Request> {
    d.sent
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) => Some(r),
            SipMessage::Response(_) => None,
        })
        .collect()
}

fn methods(d: &Drained) -> Vec<String> {
    requests(d).iter().map(|r| r.method.to_string()).collect()
}

/// A response from the far end to `req`, with a To tag and Contact.
fn answer(req: &Request, status: u16, tag: &str) -> Response {
    let mut r = response_to(req, status, None, Some(tag));
    if status < 300 {
        r.headers.push("Contact", format!("<sip:far@{FAR}>"));
    }
    r
}

fn feed(ep: &mut Endpoint, now: Instant, resp: &Response) -> Drained {
    ep.handle_input(now, udp_peer(FAR), &resp.to_bytes());
    drain(ep)
}

/// Runs every timer up to `until`, collecting what comes out.
fn run_timers(ep: &mut Endpoint, until: Instant) -> Drained {
    let mut all = Drained::default();
    while let Some(t) = ep.poll_timeout().filter(|t| *t <= until) {
        ep.handle_timeout(t);
        let d = drain(ep);
        all.sent.extend(d.sent);
        all.events.extend(d.events);
    }
    all
}

fn start(ep: &mut Endpoint, now: Instant, call: OutgoingCall) -> (CallKey, Request) {
    let key = ep.invite(now, call).unwrap();
    let out = drain(ep);
    assert!(out.events.is_empty());
    let [(peer, SipMessage::Request(inv))] = out.sent.as_slice() else {
        panic!("{:?}", out.sent)
    };
    assert_eq!(*peer, udp_peer(FAR));
    (key, inv.clone())
}

#[test]
fn the_invite_is_well_formed() {
    let mut ep = endpoint(1);
    let t0 = origin();
    let mut call = call_to(udp_peer(FAR));
    call.from_display = Some("Front \"Desk\"".into());
    let (_, inv) = start(&mut ep, t0, call);
    assert_eq!(inv.method, Method::Invite);
    assert_eq!(inv.uri.as_str(), format!("sip:+15551234@{FAR}"));
    let via = inv.headers.top_via().unwrap();
    assert_eq!(via.transport(), "UDP");
    assert_eq!(via.sent_by(), "192.0.2.1:5060");
    assert!(via.branch().unwrap().starts_with("z9hG4bK"));
    assert!(via.rport().is_some());
    let from = inv.headers.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("Front \"Desk\""));
    assert!(from.tag().is_some());
    assert_eq!(inv.headers.to().unwrap().tag(), None);
    assert_eq!(inv.headers.get("CSeq"), Some("1 INVITE"));
    assert_eq!(inv.headers.get("Max-Forwards"), Some("70"));
    assert_eq!(inv.headers.get("Contact"), Some("<sip:pbx@192.0.2.1:5060>"));
    assert!(inv.headers.get("Allow").unwrap().contains("REGISTER"));
    assert_eq!(inv.headers.get("X-Account"), Some("42"));
    assert_eq!(inv.headers.get("Content-Type"), Some("application/sdp"));
    assert_eq!(inv.body, OFFER);
    assert!(inv.headers.call_id().unwrap().ends_with("@192.0.2.1"));
}

#[test]
fn bad_arguments_are_refused() {
    let mut ep = endpoint(2);
    let t0 = origin();
    let bad = [
        OutgoingCall {
            request_uri: "not a uri".into(),
            ..call_to(udp_peer(FAR))
        },
        OutgoingCall {
            request_uri: "tel:+15551234".into(),
            ..call_to(udp_peer(FAR))
        },
        OutgoingCall {
            headers: vec![("Via".into(), "SIP/2.0/UDP evil".into())],
            ..call_to(udp_peer(FAR))
        },
        OutgoingCall {
            headers: vec![("i".into(), "compact Call-ID".into())],
            ..call_to(udp_peer(FAR))
        },
        OutgoingCall {
            headers: vec![("X-Ok".into(), "a\r\nBYE sip:x SIP/2.0".into())],
            ..call_to(udp_peer(FAR))
        },
        OutgoingCall {
            headers: vec![("X Bad".into(), "v".into())],
            ..call_to(udp_peer(FAR))
        },
    ];
    for call in bad {
        assert!(
            matches!(
                ep.invite(t0, call.clone()),
                Err(SipError::InvalidArgument(_))
            ),
            "{call:?}"
        );
    }
    assert!(drain(&mut ep).sent.is_empty());
    assert_eq!(ep.call_count(), 0);
}

#[test]
fn digest_401_is_answered_once_and_the_call_proceeds() {
    let mut ep = endpoint(3);
    let t0 = origin();
    let mut call = call_to(udp_peer(FAR));
    call.credentials = Some(Credentials {
        username: "trunkuser".into(),
        password: "s3cret".into(),
    });
    let (key, inv) = start(&mut ep, t0, call);
    let signer = digest::NonceSigner::new([1; 32]);
    let nonce = signer.issue(1_700_000_000);
    let mut chal = answer(&inv, 401, "t401");
    chal.headers.push(
        "WWW-Authenticate",
        digest::challenge("trunk.example", &nonce, Algorithm::Md5, false),
    );
    chal.headers.push(
        "WWW-Authenticate",
        digest::challenge("trunk.example", &nonce, Algorithm::Sha256, false),
    );
    let out = feed(&mut ep, t0, &chal);
    assert!(
        out.events.is_empty(),
        "a challenge answered is not an event"
    );
    assert_eq!(methods(&out), vec!["ACK", "INVITE"]);
    let (ack, inv2) = (requests(&out)[0].clone(), requests(&out)[1].clone());
    assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
    assert_eq!(ack.headers.to().unwrap().tag(), Some("t401"));
    assert_eq!(inv2.headers.get("CSeq"), Some("2 INVITE"));
    assert_eq!(inv2.headers.call_id(), inv.headers.call_id());
    assert_eq!(
        inv2.headers.from().unwrap().tag(),
        inv.headers.from().unwrap().tag()
    );
    assert_eq!(inv2.headers.to().unwrap().tag(), None);
    assert_ne!(
        inv2.headers.top_via().unwrap().branch(),
        inv.headers.top_via().unwrap().branch()
    );
    assert_eq!(inv2.body, OFFER);
    let auth = digest::parse_authorization(inv2.headers.get("Authorization").unwrap()).unwrap();
    assert_eq!(auth.algorithm, Algorithm::Sha256, "SHA-256 preferred");
    assert_eq!(auth.username, "trunkuser");
    assert_eq!(auth.uri, inv2.uri.as_str());
    assert_eq!(auth.nonce, nonce);
    let ha1 = digest::ha1(Algorithm::Sha256, "trunkuser", "trunk.example", "s3cret");
    assert!(digest::verify(&auth, "INVITE", &ha1));
    assert!(!digest::verify(
        &auth,
        "INVITE",
        &digest::ha1(Algorithm::Sha256, "trunkuser", "trunk.example", "wrong")
    ));

    // The 401 retransmitted: the old transaction ACKs it again, nothing else.
    let out = feed(&mut ep, t0, &chal);
    assert_eq!(methods(&out), vec!["ACK"]);
    assert!(out.events.is_empty());

    let mut ok = answer(&inv2, 200, "far1");
    ok.set_body("application/sdp", EARLY.to_vec());
    let out = feed(&mut ep, t0, &ok);
    assert_eq!(
        out.events,
        vec![SipEvent::Answered {
            key,
            sdp: Some(EARLY.to_vec())
        }]
    );
    let [ack] = requests(&out)[..] else { panic!() };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.get("CSeq"), Some("2 ACK"));
    assert_eq!(ack.uri.as_str(), format!("sip:far@{FAR}"));
    assert!(
        ack.headers.contains("Authorization"),
        "RFC 3261 §13.2.2.4: the ACK carries the INVITE's credentials"
    );
    ep.hangup(t0, key).unwrap();
    let out = drain(&mut ep);
    let [bye] = requests(&out)[..] else { panic!() };
    assert_eq!(bye.headers.get("CSeq"), Some("3 BYE"));
    let out = feed(&mut ep, t0, &answer(bye, 200, "far1"));
    assert_eq!(
        out.events,
        vec![SipEvent::Ended {
            key,
            cause: EndCause::LocalByeDone { status: 200 }
        }]
    );
    run_timers(&mut ep, t0 + Duration::from_secs(60));
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.call_count(), 0);
}

#[test]
fn proxy_407_twice_is_final() {
    let mut ep = endpoint(4);
    let t0 = origin();
    let mut call = call_to(udp_peer(FAR));
    call.credentials = Some(Credentials {
        username: "u".into(),
        password: "p".into(),
    });
    let (key, inv) = start(&mut ep, t0, call);
    let mut chal = answer(&inv, 407, "p1");
    chal.headers.push(
        "Proxy-Authenticate",
        "Digest realm=\"proxy\", nonce=\"abc\", qop=\"auth\", opaque=\"xyz\"",
    );
    let out = feed(&mut ep, t0, &chal);
    assert_eq!(methods(&out), vec!["ACK", "INVITE"]);
    let inv2 = requests(&out)[1].clone();
    let auth =
        digest::parse_authorization(inv2.headers.get("Proxy-Authorization").unwrap()).unwrap();
    assert_eq!(auth.opaque.as_deref(), Some("xyz"));
    assert!(digest::verify(
        &auth,
        "INVITE",
        &digest::ha1(Algorithm::Md5, "u", "proxy", "p")
    ));
    assert!(!inv2.headers.contains("Authorization"));

    let mut chal2 = answer(&inv2, 407, "p2");
    chal2.headers.push(
        "Proxy-Authenticate",
        "Digest realm=\"proxy\", nonce=\"def\", qop=\"auth\"",
    );
    let out = feed(&mut ep, t0, &chal2);
    assert_eq!(methods(&out), vec!["ACK"]);
    assert_eq!(out.events, vec![SipEvent::Failed { key, status: 407 }]);
    run_timers(&mut ep, t0 + Duration::from_secs(60));
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.call_count(), 0);
}

#[test]
fn a_401_without_credentials_fails() {
    let mut ep = endpoint(5);
    let t0 = origin();
    let (key, inv) = start(&mut ep, t0, call_to(udp_peer(FAR)));
    let mut chal = answer(&inv, 401, "x");
    chal.headers
        .push("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\"");
    let out = feed(&mut ep, t0, &chal);
    assert_eq!(methods(&out), vec!["ACK"]);
    assert_eq!(out.events, vec![SipEvent::Failed { key, status: 401 }]);
}

#[test]
fn timer_b_fails_with_408_after_seven_sends() {
    let mut ep = endpoint(6);
    let t0 = origin();
    let (key, _) = start(&mut ep, t0, call_to(udp_peer(FAR)));
    let out = run_timers(&mut ep, t0 + Duration::from_secs(60));
    assert_eq!(
        methods(&out),
        vec!["INVITE"; 6],
        "retransmissions by Timer A"
    );
    assert_eq!(out.events, vec![SipEvent::Failed { key, status: 408 }]);
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.call_count(), 0);
    assert_eq!(ep.poll_timeout(), None);
    assert_eq!(ep.hangup(t0, key), Err(SipError::UnknownCall(key)));
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut ep = endpoint(7);
    let t0 = origin();
    let (key, inv) = start(&mut ep, t0, call_to(udp_peer(FAR)));
    ep.cancel(t0, key).unwrap();
    assert!(
        drain(&mut ep).sent.is_empty(),
        "RFC 3261 §9.1: no CANCEL yet"
    );
    ep.cancel(t0, key).unwrap();

    let mut ringing = answer(&inv, 183, "f1");
    ringing.set_body("application/sdp", EARLY.to_vec());
    let t1 = t0 + Duration::from_millis(300);
    let out = feed(&mut ep, t1, &ringing);
    assert_eq!(
        out.events,
        vec![SipEvent::Progress {
            key,
            status: 183,
            sdp: Some(EARLY.to_vec())
        }]
    );
    let [cancel] = requests(&out)[..] else {
        panic!("{:?}", out.sent)
    };
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.headers.get("CSeq"), Some("1 CANCEL"));
    assert_eq!(
        cancel.headers.top_via().unwrap().branch(),
        inv.headers.top_via().unwrap().branch()
    );
    assert_eq!(cancel.headers.to().unwrap().tag(), None);

    // A second provisional with SDP is not passed again; no second CANCEL.
    let out = feed(&mut ep, t1, &ringing);
    assert_eq!(
        out.events,
        vec![SipEvent::Progress {
            key,
            status: 183,
            sdp: None
        }]
    );
    assert!(out.sent.is_empty());

    let out = feed(&mut ep, t1, &answer(cancel, 200, "f1"));
    assert!(out.sent.is_empty() && out.events.is_empty());
    let out = feed(&mut ep, t1, &answer(&inv, 487, "f1"));
    assert_eq!(methods(&out), vec!["ACK"]);
    assert_eq!(out.events, vec![SipEvent::Failed { key, status: 487 }]);
    run_timers(&mut ep, t0 + Duration::from_secs(60));
    assert_eq!(ep.transaction_count(), 0);
}

#[test]
fn cancel_without_any_answer_gives_up_after_64_t1() {
    let mut ep = endpoint(8);
    let t0 = origin();
    let (key, inv) = start(&mut ep, t0, call_to(udp_peer(FAR)));
    feed(&mut ep, t0, &answer(&inv, 100, "x"));
    ep.cancel(t0, key).unwrap();
    assert_eq!(methods(&drain(&mut ep)), vec!["CANCEL"]);
    let out = run_timers(&mut ep, t0 + Duration::from_secs(60));
    assert!(methods(&out).iter().all(|m| m == "CANCEL"));
    assert_eq!(out.events, vec![SipEvent::Failed { key, status: 487 }]);
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.call_count(), 0);
}

#[test]
fn forked_2xx_keeps_the_first_and_byes_the_others() {
    let mut ep = endpoint(9);
    let t0 = origin();
    let (key, inv) = start(&mut ep, t0, call_to(udp_peer(FAR)));
    let first = answer(&inv, 200, "fork1");
    let out = feed(&mut ep, t0, &first);
    assert_eq!(methods(&out), vec!["ACK"]);
    assert_eq!(out.events, vec![SipEvent::Answered { key, sdp: None }]);
    let ack1 = requests(&out)[0].clone();

    let second = answer(&inv, 200, "fork2");
    let out = feed(&mut ep, t0, &second);
    assert_eq!(methods(&out), vec!["ACK", "BYE"]);
    assert!(out.events.is_empty());
    for r in requests(&out) {
        assert_eq!(r.headers.to().unwrap().tag(), Some("fork2"));
    }
    let bye2 = requests(&out)[1].clone();

    // Retransmissions of either 2xx get their own ACK again, byte for byte; no new BYE.
    let out = feed(&mut ep, t0, &first);
    assert_eq!(requests(&out), vec![&ack1]);
    let out = feed(&mut ep, t0, &second);
    assert_eq!(methods(&out), vec!["ACK"]);
    assert!(out.events.is_empty());

    let out = feed(&mut ep, t0, &answer(&bye2, 200, "fork2"));
    assert!(out.events.is_empty(), "the losing fork ends quietly");
    assert_eq!(ep.call_count(), 1, "the first fork's call lives on");

    // The kept dialog: the far end hangs up.
    let mut bye = Request::new(
        Method::Bye,
        pbx_sip::Uri::parse("sip:pbx@192.0.2.1").unwrap(),
    );
    bye.headers
        .push("Via", format!("SIP/2.0/UDP {FAR};branch=z9hG4bKfarbye"));
    bye.headers.push("From", "<sip:+15551234@x>;tag=fork1");
    bye.headers.push("To", inv.headers.get("From").unwrap());
    bye.headers.push("Call-ID", inv.headers.call_id().unwrap());
    bye.headers.push("CSeq", "1 BYE");
    bye.headers.push("Max-Forwards", "70");
    ep.handle_input(t0, udp_peer(FAR), &bye.to_bytes());
    let out = drain(&mut ep);
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(
        out.events,
        vec![SipEvent::Ended {
            key,
            cause: EndCause::RemoteBye
        }]
    );
    // The same BYE to the dead dialog, as a new transaction: 481.
    let again = String::from_utf8(bye.to_bytes())
        .unwrap()
        .replace("z9hG4bKfarbye", "z9hG4bKfarbye2");
    ep.handle_input(t0, udp_peer(FAR), again.as_bytes());
    assert_eq!(drain(&mut ep).statuses(), vec![481]);
    run_timers(&mut ep, t0 + Duration::from_secs(60));
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.call_count(), 0);
}

#[test]
fn route_set_is_the_record_route_reversed() {
    let mut ep = endpoint(10);
    let t0 = origin();
    let (key, inv) = start(&mut ep, t0, call_to(udp_peer(FAR)));
    let mut ok = response_to(&inv, 200, None, Some("rr"));
    ok.headers
        .push("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>");
    ok.headers.push("Contact", "<sip:bob@203.0.113.5:5999>");
    let out = feed(&mut ep, t0, &ok);
    let [(peer, SipMessage::Request(ack))] = out.sent.as_slice() else {
        panic!()
    };
    assert_eq!(*peer, udp_peer(FAR), "symmetric: where the INVITE went");
    assert_eq!(ack.uri.as_str(), "sip:bob@203.0.113.5:5999");
    let routes: Vec<_> = ack.headers.get_all("Route").collect();
    assert_eq!(routes, vec!["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
    ep.hangup(t0, key).unwrap();
    let out = drain(&mut ep);
    let [bye] = requests(&out)[..] else { panic!() };
    assert_eq!(bye.uri.as_str(), "sip:bob@203.0.113.5:5999");
    assert_eq!(bye.headers.get_all("Route").count(), 2);
    assert_eq!(bye.headers.get("CSeq"), Some("2 BYE"));
}

#[test]
fn transport_error_fails_unanswered_calls_with_503() {
    let mut ep = endpoint(11);
    let t0 = origin();
    let tcp = Peer {
        transport: Transport::Tcp,
        addr: FAR.parse().unwrap(),
        conn: Some(3),
    };
    let key = ep.invite(t0, call_to(tcp)).unwrap();
    let out = drain(&mut ep);
    let [(peer, SipMessage::Request(inv))] = out.sent.as_slice() else {
        panic!()
    };
    assert_eq!(*peer, tcp);
    assert_eq!(inv.headers.top_via().unwrap().transport(), "TCP");
    assert_eq!(
        inv.headers.get("Contact"),
        Some("<sip:pbx@192.0.2.1:5060;transport=tcp>")
    );
    assert_eq!(
        ep.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "no Timer A over TCP"
    );
    ep.handle_transport_error(tcp);
    assert_eq!(
        drain(&mut ep).events,
        vec![SipEvent::Failed { key, status: 503 }]
    );
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.call_count(), 0);
}

#[test]
fn the_call_table_is_capped() {
    let mut ep = endpoint(12);
    let t0 = origin();
    for _ in 0..support::MAX_CALLS {
        ep.invite(t0, call_to(udp_peer(FAR))).unwrap();
    }
    assert_eq!(
        ep.invite(t0, call_to(udp_peer(FAR))),
        Err(SipError::Overloaded("too many calls"))
    );
}
