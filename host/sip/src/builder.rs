//! Builders for the messages the core sends, and symmetric response routing.
//!
//! Each builder follows the RFC section cited on it. Identifiers come from a caller-supplied
//! RNG so tests are deterministic. Response routing honours `received`/`rport` (RFC 3581) and
//! never reads anything but the request and the address it came from.

use std::net::SocketAddr;

use rand::Rng;

use crate::header::{Method, Via};
use crate::message::{Request, Response};
use crate::transport::{Peer, Transport};

/// RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A fresh branch: the cookie plus 64 random bits.
pub fn random_branch<R: Rng>(rng: &mut R) -> String {
    format!("{MAGIC_COOKIE}{:016x}", rng.random::<u64>())
}

/// A fresh tag with 64 random bits (RFC 3261 §19.3 asks for at least 32).
pub fn random_tag<R: Rng>(rng: &mut R) -> String {
    format!("{:016x}", rng.random::<u64>())
}

/// A fresh Call-ID local to `host` (RFC 3261 §8.1.1.4).
pub fn random_call_id<R: Rng>(rng: &mut R, host: &str) -> String {
    format!(
        "{:016x}{:016x}@{host}",
        rng.random::<u64>(),
        rng.random::<u64>()
    )
}

/// The standard reason phrase of a status code (RFC 3261 §21 and common extensions).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Progress",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// A reason phrase safe to put on a Status-Line: printable, no CR/LF.
pub fn sanitize_reason(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// RFC 3261 §8.2.6: a response to `req`. Copies Via (all, in order), From, To, Call-ID and CSeq;
/// adds our To tag unless the To already has one or this is 100 Trying (§8.2.6.2); copies
/// Timestamp into 100 (§8.2.6.1). Callers add Contact, Record-Route, Allow and a body.
pub fn response_to(
    req: &Request,
    status: u16,
    reason: Option<&str>,
    to_tag: Option<&str>,
) -> Response {
    let reason = reason.map_or_else(|| reason_phrase(status).to_owned(), sanitize_reason);
    let mut resp = Response::new(status, &reason);
    for via in req.headers.get_all("Via") {
        resp.headers.push("Via", via);
    }
    if let Some(from) = req.headers.get("From") {
        resp.headers.push("From", from);
    }
    if let Some(to) = req.headers.get("To") {
        let has_tag = req.headers.to().is_ok_and(|t| t.tag().is_some());
        match to_tag {
            Some(tag) if status != 100 && !has_tag => {
                resp.headers.push("To", format!("{to};tag={tag}"));
            }
            _ => resp.headers.push("To", to),
        }
    }
    if let Some(call_id) = req.headers.call_id() {
        resp.headers.push("Call-ID", call_id);
    }
    if let Some(cseq) = req.headers.get("CSeq") {
        resp.headers.push("CSeq", cseq);
    }
    if status == 100
        && let Some(ts) = req.headers.get("Timestamp")
    {
        resp.headers.push("Timestamp", ts);
    }
    resp
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: records where the request really came from in its top
/// Via, adding `received` when the sent-by host differs from the source address (or `rport`
/// was asked for) and filling an empty `rport` with the source port.
pub fn stamp_via(req: &mut Request, source: SocketAddr) {
    let Some(first) = req.headers.get("Via") else {
        return;
    };
    let Ok((mut via, rest)) = Via::parse_first(first) else {
        return;
    };
    let wants_rport = via.rport().is_some();
    if via.host_ip() != Some(source.ip()) || wants_rport {
        via.set_param("received", Some(source.ip().to_string()));
    }
    if wants_rport {
        via.set_param("rport", Some(source.port().to_string()));
    }
    let value = match rest {
        Some(rest) => format!("{via}, {rest}"),
        None => via.to_string(),
    };
    req.headers.replace_first("Via", value);
}

/// RFC 3261 §18.2.2 and RFC 3581 §5: where responses to `req`, received from `peer`, go.
/// Streams answer on the same connection; datagrams go to `received` (the source address)
/// and to the `rport` port when present, else the sent-by port.
pub fn response_destination(req: &Request, peer: &Peer) -> Peer {
    if peer.transport.is_reliable() {
        return *peer;
    }
    let Ok(via) = req.headers.top_via() else {
        return *peer;
    };
    let ip = via.received().or(via.host_ip()).unwrap_or(peer.addr.ip());
    let port = match via.rport() {
        Some(Some(p)) => p,
        Some(None) => peer.addr.port(),
        None => via.port().unwrap_or(5060),
    };
    Peer {
        transport: Transport::Udp,
        addr: SocketAddr::new(ip, port),
        conn: None,
    }
}

/// RFC 3261 §17.1.1.3: the ACK a client INVITE transaction sends for a non-2xx final response:
/// same Request-URI, Call-ID, From, CSeq number and top Via as the INVITE, To from the response,
/// Route headers from the INVITE.
pub fn ack_for_non2xx(invite: &Request, resp: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.get("Via") {
        let top = Via::parse_first(via).map_or_else(|_| via.to_owned(), |(v, _)| v.to_string());
        ack.headers.push("Via", top);
    }
    ack.headers.push("Max-Forwards", "70");
    copy(&invite.headers, &mut ack.headers, "From");
    match resp.headers.get("To") {
        Some(to) => ack.headers.push("To", to),
        None => copy(&invite.headers, &mut ack.headers, "To"),
    }
    copy(&invite.headers, &mut ack.headers, "Call-ID");
    if let Ok(cseq) = invite.headers.cseq() {
        ack.headers.push("CSeq", format!("{} ACK", cseq.seq));
    }
    for route in invite.headers.get_all("Route") {
        ack.headers.push("Route", route);
    }
    ack
}

/// RFC 3261 §9.1: a CANCEL for a pending INVITE: same Request-URI, Call-ID, To, From, CSeq
/// number, top Via (so the same branch) and Route.
pub fn cancel_for(invite: &Request) -> Request {
    let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(via) = invite.headers.get("Via") {
        let top = Via::parse_first(via).map_or_else(|_| via.to_owned(), |(v, _)| v.to_string());
        cancel.headers.push("Via", top);
    }
    cancel.headers.push("Max-Forwards", "70");
    copy(&invite.headers, &mut cancel.headers, "From");
    copy(&invite.headers, &mut cancel.headers, "To");
    copy(&invite.headers, &mut cancel.headers, "Call-ID");
    if let Ok(cseq) = invite.headers.cseq() {
        cancel.headers.push("CSeq", format!("{} CANCEL", cseq.seq));
    }
    for route in invite.headers.get_all("Route") {
        cancel.headers.push("Route", route);
    }
    cancel
}

fn copy(from: &crate::message::Headers, to: &mut crate::message::Headers, name: &str) {
    if let Some(v) = from.get(name) {
        to.push(name, v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::message::{SipMessage, parse};

    fn req(text: &str) -> Request {
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!(),
        }
    }

    const OPTS: &str = "OPTIONS sip:pbx@10.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.168.1.5:5062;branch=z9hG4bKa;rport, SIP/2.0/UDP p;branch=z9hG4bKb\r\n\
        Via: SIP/2.0/TCP q;branch=z9hG4bKc\r\n\
        From: <sip:a@b>;tag=f\r\nTo: <sip:pbx@10.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
        Timestamp: 54\r\nl: 0\r\n\r\n";

    #[test]
    fn symmetric_response_routing() {
        let mut r = req(OPTS);
        let peer = Peer {
            transport: Transport::Udp,
            addr: "203.0.113.9:40000".parse().unwrap(),
            conn: None,
        };
        stamp_via(&mut r, peer.addr);
        let vias: Vec<_> = r.headers.get_all("Via").collect();
        assert_eq!(
            vias[0],
            "SIP/2.0/UDP 192.168.1.5:5062;branch=z9hG4bKa;rport=40000;received=203.0.113.9, SIP/2.0/UDP p;branch=z9hG4bKb"
        );
        assert_eq!(response_destination(&r, &peer).addr, peer.addr);

        let mut r = req(&OPTS.replace(";rport", ""));
        stamp_via(&mut r, peer.addr);
        assert_eq!(
            response_destination(&r, &peer).addr,
            "203.0.113.9:5062".parse().unwrap()
        );
        let tcp = Peer {
            transport: Transport::Tcp,
            conn: Some(4),
            ..peer
        };
        assert_eq!(response_destination(&r, &tcp), tcp);
    }

    #[test]
    fn response_copies_the_right_headers() {
        let r = req(OPTS);
        let resp = response_to(&r, 200, None, Some("xyz"));
        assert_eq!(resp.headers.count("Via"), 2);
        assert_eq!(resp.headers.to().unwrap().tag(), Some("xyz"));
        assert_eq!(resp.headers.get("CSeq"), Some("1 OPTIONS"));
        assert!(!resp.headers.contains("Timestamp"));
        let trying = response_to(&r, 100, None, Some("xyz"));
        assert_eq!(trying.headers.to().unwrap().tag(), None);
        assert_eq!(trying.headers.get("Timestamp"), Some("54"));
        let custom = response_to(&r, 400, Some("Bad\r\nThing"), None);
        assert_eq!(custom.reason, "Bad  Thing");
    }
}
