//! RFC 4475 torture messages through the parser and the endpoint.
//!
//! Files are read from `shared/sip-torture/rfc4475` beside the repository (CI clones it there).
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::path::PathBuf;

use pbx_sip::header::{Scheme, Via};
use pbx_sip::{Method, Request, Response, SipEvent, SipMessage, parse};
use support::{drain, endpoint, origin, udp_peer};

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/sip-torture/rfc4475")
        .join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn request(name: &str) -> Request {
    match parse(&corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}")) {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("{name} is a response"),
    }
}

fn response(name: &str) -> Response {
    match parse(&corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}")) {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("{name} is a request"),
    }
}

/// Feeds one file to a fresh endpoint over UDP and returns what came out.
fn through_endpoint(name: &str) -> support::Drained {
    let mut ep = endpoint(7);
    ep.handle_input(origin(), udp_peer("198.51.100.7:5060"), &corpus(name));
    drain(&mut ep)
}

const VALID: &[&str] = &[
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
];

const INVALID: &[&str] = &[
    "badinv01",
    "clerr",
    "ncl",
    "scalar02",
    "scalarlg",
    "quotbal",
    "ltgtruri",
    "lwsruri",
    "lwsstart",
    "trws",
    "escruri",
    "baddate",
    "regbadct",
    "badaspec",
    "baddn",
    "badvers",
    "mismatch01",
    "mismatch02",
    "bigcode",
];

#[test]
fn every_valid_message_parses() {
    for name in VALID {
        assert!(parse(&corpus(name)).is_ok(), "{name}");
    }
}

#[test]
fn wsinv_short_tortuous_invite() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.user(), Some("vivekg"));
    assert_eq!(r.uri.host(), "chair-dnrc.example.com");
    assert_eq!(r.uri.param("unknownparam"), Some(None));
    assert_eq!(r.headers.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    let to = r.headers.to().unwrap();
    assert_eq!(to.uri.as_str(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = r.headers.from().unwrap();
    assert_eq!(from.display.as_deref(), Some(r#"J Rosenberg \""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.headers.max_forwards().unwrap(), Some(68));
    let cseq = r.headers.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!((vias[0].transport(), vias[0].host()), ("UDP", "192.0.2.2"));
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(
        (vias[1].transport(), vias[1].branch()),
        ("TCP", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(r.headers.get("Subject"), Some(""));
    assert_eq!(
        r.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        r.headers.get("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let contact = r.headers.contact().unwrap().unwrap();
    assert_eq!(contact.display.as_deref(), Some(r#"Quoted string """#));
    assert_eq!(contact.param("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.param("secondparam"), Some(None));
    assert_eq!(contact.param("q"), Some(Some("0.33")));
    assert_eq!(r.headers.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn intmeth_wide_range_of_characters() {
    let r = request("intmeth");
    let m = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(r.method, Method::Other(m.into()));
    assert_eq!(r.headers.cseq().unwrap().method, Method::Other(m.into()));
    assert_eq!(
        r.uri.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(r.uri.host(), "example.com");
    assert_eq!(
        r.headers.to().unwrap().display.as_deref(),
        Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}")
    );
    let from = r.headers.from().unwrap();
    assert_eq!(
        from.display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        r.headers.top_via().unwrap().branch(),
        Some("z9hG4bK-.!%66*_+`'~")
    );
    assert_eq!(
        r.headers.call_id(),
        Some(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#)
    );
    assert_eq!(r.headers.max_forwards().unwrap(), Some(255));
    assert!(r.headers.get("extensionHeader-!.%*+_`'~").is_some());
}

#[test]
fn esc01_escaped_user_parts() {
    let r = request("esc01");
    assert_eq!(r.uri.user(), Some("sips:user@example.com"));
    assert_eq!(r.uri.host(), "example.net");
    assert_eq!(r.headers.to().unwrap().uri.user(), Some("user"));
    assert_eq!(r.headers.from().unwrap().uri.user(), Some("I have spaces"));
    assert_eq!(
        r.headers.call_id(),
        Some("esc01.239409asdfakjkn23onasd0-3234")
    );
    assert_eq!(r.headers.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(
        r.headers.contact().unwrap().unwrap().uri.user(),
        Some("caller")
    );
    assert_eq!(r.body.len(), 150);
}

#[test]
fn escnull_and_esc02() {
    let r = request("escnull");
    assert_eq!(r.headers.to().unwrap().uri.user(), Some("null-\u{0}-null"));
    assert_eq!(r.headers.count("Contact"), 2);
    let r = request("esc02");
    assert_eq!(r.method, Method::Other("RE%47IST%45R".into()));
    assert_eq!(r.headers.to().unwrap().display.as_deref(), Some("%Z%45"));
    assert_eq!(r.headers.count("Contact"), 2, "C%6Fntact is not Contact");
    assert_eq!(
        r.headers.get("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
}

#[test]
fn lwsdisp_semiuri_transports() {
    let from = request("lwsdisp").headers.from().unwrap();
    assert_eq!(
        (from.display.as_deref(), from.tag()),
        (Some("caller"), Some("323"))
    );
    let r = request("semiuri");
    assert_eq!(r.uri.user(), Some("user;par=u@example.net"));
    assert_eq!(r.uri.host(), "example.com");
    assert_eq!(
        r.headers.get("Accept"),
        Some(
            "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
        )
    );
    let vias = request("transports").headers.vias().unwrap();
    let t: Vec<&str> = vias.iter().map(Via::transport).collect();
    assert_eq!(t, vec!["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn longreq_long_values() {
    let r = request("longreq");
    let to = r.headers.to().unwrap();
    assert!(
        to.display
            .as_deref()
            .unwrap()
            .ends_with("extremeextreme proportion")
    );
    assert_eq!(to.uri.port(), Some(6000));
    let from = r.headers.from().unwrap();
    assert!(
        from.uri
            .user()
            .unwrap()
            .starts_with("amazinglylongcallername")
    );
    assert!(from.tag().unwrap().len() > 100);
    assert!(r.headers.call_id().unwrap().ends_with("reallylongcallid"));
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0].host(), "sip33.example.com");
    assert_eq!(vias[0].branch(), None);
    assert_eq!(r.body.len(), 150);
}

#[test]
fn dblreq_only_the_first_message() {
    let r = request("dblreq");
    assert_eq!(r.method, Method::Register);
    assert_eq!(
        r.headers.call_id(),
        Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    );
    assert!(r.body.is_empty());
}

#[test]
fn mpart01_binary_body() {
    let r = request("mpart01");
    assert_eq!(r.method, Method::Message);
    assert_eq!(r.headers.content_type().as_deref(), Some("multipart/mixed"));
    assert_eq!(r.body.len(), 553);
    assert!(r.body.starts_with(b"--7a9cbec02ceef655\r\n"));
}

#[test]
fn reason_phrases() {
    let r = response("unreason");
    assert_eq!(r.status, 200);
    assert!(r.reason.starts_with("= 2**3 * 5**2 "));
    assert!(r.reason.len() > 40);
    assert_eq!(r.body.len(), 154);
    let r = response("noreason");
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
}

/// RFC 4475 §3.1.2: rejected by the parser, or answered 400 (505 for `badvers`), or dropped.
#[test]
fn every_invalid_message_is_rejected_or_dropped() {
    for name in INVALID {
        let parsed = parse(&corpus(name));
        let out = through_endpoint(name);
        assert!(out.events.is_empty(), "{name} raised an event");
        for s in out.statuses() {
            assert!(s == 400 || s == 505, "{name} got {s}");
        }
        if parsed.is_ok() {
            let answered = !out.statuses().is_empty();
            let is_response = matches!(parsed, Ok(SipMessage::Response(_)));
            assert!(answered || is_response, "{name} was accepted silently");
        }
    }
}

#[test]
fn invalid_messages_get_specific_answers() {
    let expect = [
        ("clerr", Some(400)),
        ("ncl", Some(400)),
        ("scalar02", Some(400)),
        ("quotbal", Some(400)),
        ("ltgtruri", Some(400)),
        ("lwsruri", Some(400)),
        ("lwsstart", Some(400)),
        ("trws", Some(400)),
        ("escruri", Some(400)),
        ("baddate", Some(400)),
        ("regbadct", Some(400)),
        ("badaspec", Some(400)),
        ("baddn", Some(400)),
        ("badvers", Some(505)),
        ("mismatch01", Some(400)),
        ("mismatch02", Some(400)),
        // A malformed Via is answered to the source address.
        ("badinv01", Some(400)),
        // Responses: dropped.
        ("scalarlg", None),
        ("bigcode", None),
    ];
    for (name, status) in expect {
        let out = through_endpoint(name);
        assert_eq!(out.statuses().first().copied(), status, "{name}");
        if let Some(r) = out.responses().first()
            && let Ok(to) = r.headers.to()
        {
            assert!(to.tag().is_some(), "{name}: error responses carry a To tag");
        }
    }
}

/// RFC 4475 §3.3 and the valid messages: what a UAS answers.
#[test]
fn application_layer_answers() {
    let expect: &[(&str, u16)] = &[
        ("insuf", 400),
        ("unkscm", 416),
        ("novelsc", 416),
        ("bext01", 420),
        ("invut", 415),
        ("multi01", 400),
        ("mcl01", 400),
        ("zeromf", 200),
        ("sdp01", 406),
        ("badbranch", 200),
        ("intmeth", 501),
        ("esc02", 501),
        ("lwsdisp", 200),
        ("semiuri", 200),
        ("transports", 200),
        ("mpart01", 405),
        // wsinv carries a To tag for a dialog we do not have.
        ("wsinv", 481),
    ];
    for (name, status) in expect {
        let out = through_endpoint(name);
        assert_eq!(out.statuses(), vec![*status], "{name}");
        assert!(out.events.is_empty(), "{name}");
    }
    // REGISTERs go to the registrar in the call layer, unanswered by the endpoint.
    for name in [
        "unksm2", "regaut01", "cparam01", "cparam02", "regescrt", "escnull", "dblreq",
    ] {
        let out = through_endpoint(name);
        assert!(out.sent.is_empty(), "{name}");
        let [SipEvent::Register(reg)] = out.events.as_slice() else {
            panic!("{name}: {:?}", out.events)
        };
        match name {
            "cparam01" => {
                assert_eq!(reg.contacts.len(), 1);
                assert_eq!(reg.contacts[0].uri, "sip:+19725552222@gw1.example.net");
            }
            "cparam02" => {
                assert_eq!(
                    reg.contacts[0].uri,
                    "sip:+19725552222@gw1.example.net;unknownparam"
                );
                assert_eq!(reg.to_user.as_deref(), Some("watson"));
                assert_eq!(reg.cseq, 3);
            }
            "escnull" => assert_eq!(reg.contacts.len(), 2),
            "regaut01" => assert_eq!(
                reg.authorization.as_deref(),
                Some("NoOneKnowsThisScheme opaque-data=here")
            ),
            _ => {}
        }
    }
    let insuf = through_endpoint("insuf");
    assert_eq!(
        insuf.responses()[0].reason,
        "Missing Call-ID, From, To Header"
    );
    let bext = through_endpoint("bext01");
    assert_eq!(
        bext.responses()[0].headers.get("Unsupported"),
        Some("nothingSupportsThis, nothingSupportsThisEither")
    );
    let invut = through_endpoint("invut");
    assert_eq!(
        invut.responses()[0].headers.get("Accept"),
        Some("application/sdp")
    );
    let multi = through_endpoint("multi01");
    assert_eq!(multi.responses()[0].reason, "Multiple To Headers");
    let mcl = through_endpoint("mcl01");
    assert_eq!(mcl.responses()[0].reason, "Multiple Content-Length Headers");
    assert!(
        through_endpoint("bcast").sent.is_empty(),
        "a stray response is dropped"
    );
    assert!(through_endpoint("noreason").sent.is_empty());
}

#[test]
fn invites_become_calls() {
    for name in ["esc01", "longreq", "inv2543"] {
        let out = through_endpoint(name);
        assert_eq!(out.statuses(), vec![100], "{name}");
        let [SipEvent::IncomingCall(call)] = out.events.as_slice() else {
            panic!("{name}: {:?}", out.events)
        };
        if name == "esc01" {
            assert_eq!(call.to_user.as_deref(), Some("sips:user@example.com"));
            assert_eq!(call.from_user.as_deref(), Some("I have spaces"));
            assert_eq!(call.sdp.as_ref().map(Vec::len), Some(150));
        }
        if name == "inv2543" {
            // No Content-Length over UDP: the body is the rest of the datagram.
            assert_eq!(call.sdp.as_ref().map(Vec::len), Some(105));
            assert_eq!(call.to_user.as_deref(), Some("UserB"));
        }
    }
}

/// RFC 4475 §3.2: `badbranch` has only the magic cookie; RFC 2543 matching still finds its
/// transaction, so a retransmission gets the same response and creates nothing new.
#[test]
fn badbranch_retransmission_is_matched() {
    let mut ep = endpoint(3);
    let peer = udp_peer("192.0.2.77:5060");
    let t0 = origin();
    ep.handle_input(t0, peer, &corpus("badbranch"));
    let first = drain(&mut ep);
    let count = ep.transaction_count();
    ep.handle_input(t0, peer, &corpus("badbranch"));
    let second = drain(&mut ep);
    assert_eq!(first.statuses(), vec![200]);
    assert_eq!(second.sent, first.sent, "the same 200, byte for byte");
    assert_eq!(ep.transaction_count(), count);
}

#[test]
fn pre_3261_invite_retransmission_is_matched() {
    let mut ep = endpoint(3);
    let peer = udp_peer("192.0.2.77:5060");
    let t0 = origin();
    ep.handle_input(t0, peer, &corpus("inv2543"));
    let first = drain(&mut ep);
    ep.handle_input(t0, peer, &corpus("inv2543"));
    let second = drain(&mut ep);
    assert_eq!(first.events.len(), 1);
    assert!(second.events.is_empty(), "no second call");
    assert_eq!(second.statuses(), vec![100]);
}

/// rsipstack's parser as an oracle: where it accepts a valid message, header values agree.
#[test]
fn header_values_agree_with_rsipstack() {
    for name in VALID {
        let bytes = corpus(name);
        let Ok(theirs) = rsipstack::sip::parser::parse_message(&bytes) else {
            continue; // it rejects extension methods (intmeth, esc02)
        };
        let their_headers = match &theirs {
            rsipstack::sip::SipMessage::Request(r) => &r.headers,
            rsipstack::sip::SipMessage::Response(r) => &r.headers,
        };
        let theirs: Vec<String> = their_headers
            .iter()
            .map(|h| h.value().trim().to_owned())
            .collect();
        let ours: Vec<String> = parse(&bytes)
            .unwrap()
            .headers()
            .iter()
            .map(|(_, v)| v.to_owned())
            .collect();
        assert_eq!(ours, theirs, "{name}");
    }
    let _ = Scheme::Sip;
}
