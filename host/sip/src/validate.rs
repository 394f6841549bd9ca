//! Request checks a UAS makes before acting (RFC 3261 §8.2, RFC 4475 §3.1.2 and §3.3).
//!
//! `check_request` turns a parsed request into the typed fields every later step needs, or
//! into the rejection (status, a reason phrase naming the header, extra headers) to send.
//! A request without any Via cannot be answered and is marked unroutable; one with a malformed
//! Via is answered to its source address.

use crate::header::{CSeq, Method, NameAddr, Scheme, Via, media_type, split_list};
use crate::message::Request;

/// The fields of a request that passed the basic checks.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) call_id: String,
    pub(crate) cseq: CSeq,
    pub(crate) from: NameAddr,
    pub(crate) to: NameAddr,
}

/// Why a request is refused.
#[derive(Debug, Clone)]
pub(crate) struct Rejection {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// False when there is no Via at all, so no valid response can be formed.
    pub(crate) routable: bool,
}

impl Rejection {
    fn bad(reason: impl Into<String>) -> Rejection {
        Rejection {
            status: 400,
            reason: reason.into(),
            headers: Vec::new(),
            routable: true,
        }
    }

    pub(crate) fn new(
        status: u16,
        reason: Option<&str>,
        headers: Vec<(&'static str, String)>,
    ) -> Rejection {
        Rejection {
            status,
            reason: reason.map_or_else(
                || crate::builder::reason_phrase(status).to_owned(),
                str::to_owned,
            ),
            headers,
            routable: true,
        }
    }
}

/// Headers that may appear once only (RFC 4475 `multi01`).
const SINGLE: &[&str] = &[
    "To",
    "From",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
];

/// RFC 3261 §8.1.1 required fields and their syntax; RFC 4475 §3.1.2 and `insuf`/`multi01`.
pub(crate) fn check_request(req: &Request) -> Result<Checked, Rejection> {
    let unroutable = |reason: &str| Rejection {
        routable: false,
        ..Rejection::bad(reason)
    };
    if !req.headers.contains("Via") {
        return Err(unroutable("Missing Via Header"));
    }
    if req.headers.vias().is_err() {
        // Answered to the source address (`response_destination` falls back to it).
        return Err(Rejection::bad("Malformed Via Header"));
    }
    for name in SINGLE {
        if req.headers.count(name) > 1 {
            return Err(Rejection::bad(format!("Multiple {name} Headers")));
        }
    }
    let mut missing: Vec<&str> = ["From", "To", "Call-ID", "CSeq"]
        .into_iter()
        .filter(|n| !req.headers.contains(n))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(Rejection::bad(format!(
            "Missing {} Header",
            missing.join(", ")
        )));
    }
    let from = req
        .headers
        .from()
        .map_err(|e| Rejection::bad(format!("Malformed From Header ({e})")))?;
    let to = req
        .headers
        .to()
        .map_err(|e| Rejection::bad(format!("Malformed To Header ({e})")))?;
    let cseq = req
        .headers
        .cseq()
        .map_err(|e| Rejection::bad(format!("Malformed CSeq Header ({e})")))?;
    let call_id = req.headers.call_id().unwrap_or("");
    if call_id.is_empty() || call_id.contains(char::is_whitespace) {
        return Err(Rejection::bad("Malformed Call-ID Header"));
    }
    if cseq.method != req.method {
        // RFC 4475 `mismatch01`, `mismatch02`.
        return Err(Rejection::bad("CSeq Method Does Not Match Request-Line"));
    }
    if req.headers.max_forwards().is_err() {
        return Err(Rejection::bad("Malformed Max-Forwards Header"));
    }
    if req.headers.get("Contact").is_some_and(|c| c.trim() != "*")
        && req
            .headers
            .get_all("Contact")
            .any(|c| NameAddr::parse_list(c).is_err())
    {
        // RFC 4475 `badinv01`, `regbadct`.
        return Err(Rejection::bad("Malformed Contact Header"));
    }
    if req.headers.record_route().is_err() {
        return Err(Rejection::bad("Malformed Record-Route Header"));
    }
    if req
        .headers
        .get("Date")
        .is_some_and(|d| !d.trim_end().ends_with("GMT"))
    {
        // RFC 3261 §20.17: the Date time zone is always GMT (RFC 4475 `baddate`).
        return Err(Rejection::bad("Malformed Date Header"));
    }
    Ok(Checked {
        call_id: call_id.to_owned(),
        cseq,
        from,
        to,
    })
}

/// The top Via and CSeq of a response, without which it cannot be matched.
pub(crate) fn check_response(headers: &crate::message::Headers) -> Option<(Via, CSeq)> {
    Some((headers.top_via().ok()?, headers.cseq().ok()?))
}

/// RFC 3261 §8.2.2.1: the Request-URI schemes we serve (416 otherwise).
pub(crate) fn scheme_supported(req: &Request) -> bool {
    matches!(req.uri.scheme(), Scheme::Sip | Scheme::Sips | Scheme::Tel)
}

/// RFC 3261 §8.2.2.3: the Require option tags we do not support (we support none). ACK and
/// CANCEL are exempt.
pub(crate) fn unsupported_requires(req: &Request) -> Vec<String> {
    if matches!(req.method, Method::Ack | Method::Cancel) {
        return Vec::new();
    }
    req.headers
        .get_all("Require")
        .flat_map(split_list)
        .map(str::to_owned)
        .collect()
}

/// RFC 3261 §8.2.3: a session body we cannot read (415): anything but SDP on INVITE, UPDATE
/// and ACK, or a content coding other than identity.
pub(crate) fn unsupported_content(req: &Request) -> Option<Rejection> {
    if req.body.is_empty() || !matches!(req.method, Method::Invite | Method::Update | Method::Ack) {
        return None;
    }
    if let Some(enc) = req.headers.get("Content-Encoding")
        && split_list(enc)
            .iter()
            .any(|e| !e.eq_ignore_ascii_case("identity"))
    {
        return Some(Rejection::new(
            415,
            None,
            vec![("Accept-Encoding", "identity".into())],
        ));
    }
    match req.headers.content_type() {
        Some(t) if t != "application/sdp" => Some(Rejection::new(
            415,
            None,
            vec![("Accept", "application/sdp".into())],
        )),
        _ => None,
    }
}

/// RFC 3261 §21.4.7: an Accept that rules out SDP makes an INVITE unanswerable (406, RFC 4475
/// `sdp01`).
pub(crate) fn accepts_sdp(req: &Request) -> bool {
    let mut accept = req
        .headers
        .get_all("Accept")
        .flat_map(split_list)
        .peekable();
    if accept.peek().is_none() {
        return true;
    }
    accept.any(|a| {
        let t = media_type(a);
        t == "application/sdp" || t == "application/*" || t == "*/*"
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::message::{SipMessage, parse};

    fn req(extra: &str) -> Request {
        let text =
            format!("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n{extra}\r\n");
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!(),
        }
    }

    const OK: &str = "From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n";

    #[test]
    fn names_the_missing_or_broken_header() {
        assert!(check_request(&req(OK)).is_ok());
        let r = check_request(&req("CSeq: 1 OPTIONS\r\n")).unwrap_err();
        assert_eq!(
            (r.status, r.reason.as_str()),
            (400, "Missing Call-ID, From, To Header")
        );
        let r = check_request(&req(&OK.replace("1 OPTIONS", "1 INVITE"))).unwrap_err();
        assert_eq!(r.reason, "CSeq Method Does Not Match Request-Line");
        let r = check_request(&req(&format!("{OK}To: <sip:c@d>\r\n"))).unwrap_err();
        assert_eq!(r.reason, "Multiple To Headers");
        let r = check_request(&req(&format!("{OK}Max-Forwards: 256\r\n"))).unwrap_err();
        assert_eq!(r.reason, "Malformed Max-Forwards Header");
        let r = check_request(&req(&format!(
            "{OK}Date: Fri, 01 Jan 2010 16:00:00 EST\r\n"
        )))
        .unwrap_err();
        assert_eq!(r.reason, "Malformed Date Header");
    }

    #[test]
    fn require_and_accept() {
        let r = req(&format!("{OK}Require: foo, bar\r\n"));
        assert_eq!(unsupported_requires(&r), vec!["foo", "bar"]);
        assert!(accepts_sdp(&req(OK)));
        assert!(accepts_sdp(&req(&format!(
            "{OK}Accept: text/plain, application/*\r\n"
        ))));
        assert!(!accepts_sdp(&req(&format!("{OK}Accept: text/plain\r\n"))));
    }
}
