//! REGISTER through the endpoint: the event the registrar in the call layer gets, and
//! `respond_request` answering 401 with a digest challenge and then 200 with the bindings.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::time::Duration;

use pbx_sip::digest::{self, Algorithm, Credentials, NonceCheck};
use pbx_sip::{ContactBinding, RequestKey, SipError, SipEvent};
use support::{drain, endpoint, origin, udp_peer};

const PHONE: &str = "203.0.113.7:40222";

fn register(branch: &str, cseq: u32, extra: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Desk\" <sip:2001@192.0.2.1>;tag=reg1\r\n\
         To: <sip:2001@192.0.2.1>\r\n\
         Call-ID: reg-call-1@10.0.0.7\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn expect_register(events: &[SipEvent]) -> pbx_sip::RegisterRequest {
    let [SipEvent::Register(r)] = events else {
        panic!("{events:?}")
    };
    r.clone()
}

#[test]
fn register_challenge_then_success() {
    let mut ep = endpoint(1);
    let t0 = origin();
    let peer = udp_peer(PHONE);
    let first = register(
        "r1",
        1,
        "Contact: <sip:2001@10.0.0.7:5060;transport=udp>;expires=600, <sip:2001@10.0.0.7:5062>\r\n\
         Expires: 3600\r\n",
    );
    ep.handle_input(t0, peer, &first);
    let out = drain(&mut ep);
    assert!(
        out.sent.is_empty(),
        "the endpoint does not answer REGISTER itself"
    );
    let reg = expect_register(&out.events);
    assert_eq!(reg.from_user.as_deref(), Some("2001"));
    assert_eq!(reg.to_user.as_deref(), Some("2001"));
    assert_eq!(
        reg.contacts,
        vec![
            ContactBinding {
                uri: "sip:2001@10.0.0.7:5060;transport=udp".into(),
                expires: Some(600)
            },
            ContactBinding {
                uri: "sip:2001@10.0.0.7:5062".into(),
                expires: None
            },
        ]
    );
    assert!(!reg.star);
    assert_eq!(reg.expires, Some(3600));
    assert_eq!(reg.authorization, None);
    assert_eq!(reg.call_id, "reg-call-1@10.0.0.7");
    assert_eq!(reg.cseq, 1);
    assert_eq!(reg.peer, peer);
    assert_eq!(reg.request_uri, "sip:192.0.2.1");

    // A retransmission before the answer is absorbed.
    ep.handle_input(t0, peer, &first);
    let out = drain(&mut ep);
    assert!(out.sent.is_empty() && out.events.is_empty());

    let signer = digest::NonceSigner::new([9; 32]);
    let nonce = signer.issue(1_000);
    let challenge = digest::challenge("pbx", &nonce, Algorithm::Sha256, false);
    ep.respond_request(
        t0,
        reg.key,
        401,
        vec![("WWW-Authenticate".into(), challenge.clone())],
    )
    .unwrap();
    let out = drain(&mut ep);
    let [resp] = out.responses()[..] else {
        panic!()
    };
    assert_eq!(
        out.sent[0].0.addr,
        PHONE.parse().unwrap(),
        "rport: back to the source"
    );
    assert_eq!(resp.status, 401);
    assert_eq!(resp.reason, "Unauthorized");
    assert_eq!(
        resp.headers.get("WWW-Authenticate"),
        Some(challenge.as_str())
    );
    assert!(resp.headers.to().unwrap().tag().is_some());
    assert_eq!(resp.headers.get("CSeq"), Some("1 REGISTER"));
    let text = String::from_utf8(out.sent[0].1.to_bytes()).unwrap();
    assert!(
        text.contains(&format!("\r\nWWW-Authenticate: {challenge}\r\n")),
        "{text}"
    );
    // The retransmitted REGISTER now gets the same 401 again.
    ep.handle_input(t0, peer, &first);
    assert_eq!(drain(&mut ep).statuses(), vec![401]);
    assert_eq!(
        ep.respond_request(t0, reg.key, 200, vec![]),
        Err(SipError::UnknownRequest(reg.key))
    );

    // The phone answers the challenge.
    let creds = Credentials {
        username: "2001".into(),
        password: "pw2001".into(),
    };
    let auth = digest::authorization(
        resp.headers.get("WWW-Authenticate").unwrap(),
        "REGISTER",
        "sip:192.0.2.1",
        &creds,
        "0a4f113b",
        1,
    )
    .unwrap();
    let second = register(
        "r2",
        2,
        &format!("Contact: <sip:2001@10.0.0.7:5060>\r\nExpires: 3600\r\nAuthorization: {auth}\r\n"),
    );
    let t1 = t0 + Duration::from_millis(100);
    ep.handle_input(t1, peer, &second);
    let reg2 = expect_register(&drain(&mut ep).events);
    assert_eq!(reg2.cseq, 2);
    let parsed = digest::parse_authorization(reg2.authorization.as_deref().unwrap()).unwrap();
    assert_eq!(signer.check(&parsed.nonce, 1_010, 300), NonceCheck::Valid);
    assert_eq!(parsed.uri, reg2.request_uri);
    let ha1 = digest::ha1(parsed.algorithm, &parsed.username, &parsed.realm, "pw2001");
    assert!(digest::verify(&parsed, "REGISTER", &ha1));

    ep.respond_request(
        t1,
        reg2.key,
        200,
        vec![
            (
                "Contact".into(),
                "<sip:2001@10.0.0.7:5060>;expires=3600".into(),
            ),
            ("Date".into(), "Sat, 13 Nov 2010 23:29:00 GMT".into()),
        ],
    )
    .unwrap();
    let out = drain(&mut ep);
    let [ok] = out.responses()[..] else { panic!() };
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers.get("Contact"),
        Some("<sip:2001@10.0.0.7:5060>;expires=3600")
    );
    // Timer J cleans up.
    ep.handle_timeout(t1 + Duration::from_secs(32));
    assert_eq!(ep.transaction_count(), 0);
}

#[test]
fn star_contact_and_bad_star() {
    let mut ep = endpoint(2);
    let t0 = origin();
    let peer = udp_peer(PHONE);
    ep.handle_input(t0, peer, &register("s1", 5, "Contact: *\r\nExpires: 0\r\n"));
    let reg = expect_register(&drain(&mut ep).events);
    assert!(reg.star);
    assert!(reg.contacts.is_empty());
    assert_eq!(reg.expires, Some(0));

    ep.handle_input(
        t0,
        peer,
        &register("s2", 6, "Contact: *\r\nExpires: 60\r\n"),
    );
    let out = drain(&mut ep);
    assert!(out.events.is_empty());
    assert_eq!(out.statuses(), vec![400]);

    // A fetch (no Contact) and an enormous expires (clamped).
    ep.handle_input(t0, peer, &register("s3", 7, "Expires: 99999999999\r\n"));
    let reg = expect_register(&drain(&mut ep).events);
    assert!(reg.contacts.is_empty() && !reg.star);
    assert_eq!(reg.expires, Some(u32::MAX));
}

#[test]
fn respond_request_checks_its_arguments_and_unanswered_registers_expire() {
    let mut ep = endpoint(3);
    let t0 = origin();
    ep.handle_input(t0, udp_peer(PHONE), &register("e1", 1, ""));
    let reg = expect_register(&drain(&mut ep).events);
    assert_eq!(
        ep.respond_request(t0, reg.key, 100, vec![]),
        Err(SipError::InvalidStatus(100))
    );
    assert!(matches!(
        ep.respond_request(t0, reg.key, 200, vec![("X-A".into(), "a\r\nb".into())]),
        Err(SipError::InvalidArgument(_))
    ));
    assert!(matches!(
        ep.respond_request(t0, reg.key, 200, vec![("CSeq".into(), "9 REGISTER".into())]),
        Err(SipError::InvalidArgument(_))
    ));
    assert_eq!(
        ep.respond_request(t0, RequestKey(999), 200, vec![]),
        Err(SipError::UnknownRequest(RequestKey(999)))
    );
    assert_eq!(ep.transaction_count(), 1);
    assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    ep.handle_timeout(t0 + Duration::from_secs(32));
    assert!(drain(&mut ep).sent.is_empty());
    assert_eq!(ep.transaction_count(), 0);
    assert_eq!(ep.poll_timeout(), None);
    assert_eq!(
        ep.respond_request(t0, reg.key, 200, vec![]),
        Err(SipError::UnknownRequest(reg.key))
    );
}

#[test]
fn options_allow_lists_register() {
    let mut ep = endpoint(4);
    let opts = "OPTIONS sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7;branch=z9hG4bKo\r\n\
        From: <sip:a@b>;tag=1\r\nTo: <sip:192.0.2.1>\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
    ep.handle_input(origin(), udp_peer(PHONE), opts.as_bytes());
    let out = drain(&mut ep);
    assert!(
        out.responses()[0]
            .headers
            .get("Allow")
            .unwrap()
            .contains("REGISTER")
    );
}
