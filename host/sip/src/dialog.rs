//! INVITE dialog state for either role (RFC 3261 §12): identifiers, sequence numbers, remote
//! target and route set; building in-dialog requests and the ACK for a 2xx (§13.2.2.4); and the
//! UAS core's 2xx retransmission (§13.3.1.4).
//!
//! Invariants: the local CSeq only grows; a remote CSeq lower than the last one is refused;
//! the 2xx is retransmitted from T1 doubling to T2 until an ACK with its CSeq arrives or
//! 64*T1 pass, and the owner is told to end the call then. Time is always an argument.

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::header::{HeaderError, Method, NameAddr, Uri, Via};
use crate::message::{Headers, Request, Response};
use crate::transaction::Timers;
use crate::transport::Peer;

/// Identifies a dialog: Call-ID, our tag and the remote tag (empty when the peer sent none,
/// as RFC 2543 peers may).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag (the To tag of requests the peer sends).
    pub local_tag: String,
    /// The peer's tag (their From tag).
    pub remote_tag: String,
}

/// Where a dialog is in its life (RFC 3261 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by the INVITE; no 2xx acknowledged yet.
    Early,
    /// The 2xx was acknowledged (or sent, for the purpose of routing requests).
    Confirmed,
}

/// In-dialog request refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DialogError {
    /// RFC 3261 §12.2.2: a CSeq lower than the last one is out of order (answer 500).
    #[error("CSeq {got} is lower than the last remote CSeq {last}")]
    OutOfOrder {
        /// The request's CSeq.
        got: u32,
        /// The highest CSeq seen.
        last: u32,
    },
}

/// What the dialog's timer asks of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogOutput {
    /// Resend our 2xx (these bytes) to the peer.
    Retransmit(Vec<u8>),
    /// 64*T1 passed without the ACK: end the session (send BYE).
    AckTimeout,
}

#[derive(Debug)]
struct Pending2xx {
    bytes: Vec<u8>,
    cseq: u32,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// One INVITE dialog, created by the UAS on answering or by the UAC on a 2xx.
#[derive(Debug)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    local_seq: u32,
    remote_seq: u32,
    /// Our address as the peer's To header carried it, with our tag: the From of our requests.
    local_uri: String,
    /// The peer's From header value, with its tag: the To of our requests.
    remote_uri: String,
    remote_target: Uri,
    route_set: Vec<NameAddr>,
    peer: Peer,
    timers: Timers,
    pending: Option<Pending2xx>,
}

impl Dialog {
    /// RFC 3261 §12.1.1: the UAS dialog an INVITE creates once we answer it with our tag.
    /// The remote target is the Contact (the From URI for RFC 2543 peers that send none); the
    /// route set is the Record-Route list in order.
    pub fn new_uas(
        invite: &Request,
        local_tag: &str,
        peer: Peer,
        timers: Timers,
    ) -> Result<Dialog, HeaderError> {
        let call_id = invite
            .headers
            .call_id()
            .ok_or(HeaderError("missing Call-ID"))?
            .to_owned();
        let from = invite.headers.from()?;
        let to_value = invite.headers.get("To").ok_or(HeaderError("missing To"))?;
        let remote_target = match invite.headers.contact()? {
            Some(c) => c.uri,
            None => from.uri.clone(),
        };
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: local_tag.to_owned(),
                remote_tag: from.tag().unwrap_or("").to_owned(),
            },
            state: DialogState::Early,
            local_seq: 0,
            remote_seq: invite.headers.cseq()?.seq,
            local_uri: format!("{to_value};tag={local_tag}"),
            remote_uri: invite
                .headers
                .get("From")
                .ok_or(HeaderError("missing From"))?
                .to_owned(),
            remote_target,
            route_set: invite.headers.record_route()?,
            peer,
            timers,
            pending: None,
        })
    }

    /// RFC 3261 §12.1.2: the UAC dialog a 2xx (or a tagged 1xx) to our INVITE creates. The
    /// remote target is the response's Contact (the Request-URI when it has none); the route set
    /// is its Record-Route list reversed; the local CSeq continues from the INVITE's. `peer` is
    /// where in-dialog requests go: where the INVITE went (symmetric signalling, as for the UAS).
    pub fn new_uac(
        invite: &Request,
        resp: &Response,
        peer: Peer,
        timers: Timers,
    ) -> Result<Dialog, HeaderError> {
        let call_id = invite
            .headers
            .call_id()
            .ok_or(HeaderError("missing Call-ID"))?
            .to_owned();
        let from = invite.headers.from()?;
        let to = resp.headers.to()?;
        let remote_target = match resp.headers.contact()? {
            Some(c) => c.uri,
            None => invite.uri.clone(),
        };
        let mut route_set = resp.headers.record_route()?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: from.tag().unwrap_or("").to_owned(),
                remote_tag: to.tag().unwrap_or("").to_owned(),
            },
            state: DialogState::Early,
            local_seq: invite.headers.cseq()?.seq,
            remote_seq: 0,
            local_uri: invite
                .headers
                .get("From")
                .ok_or(HeaderError("missing From"))?
                .to_owned(),
            remote_uri: resp
                .headers
                .get("To")
                .ok_or(HeaderError("missing To"))?
                .to_owned(),
            remote_target,
            route_set,
            peer,
            timers,
            pending: None,
        })
    }

    /// The dialog's identifier.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Marks the dialog confirmed.
    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    /// Where in-dialog requests go: the address the dialog's INVITE came from (symmetric
    /// signalling, which also holds when the remote target is behind NAT).
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The URI our in-dialog requests are addressed to.
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    /// RFC 3261 §12.2.2: accepts a remote request's CSeq, refusing one lower than the last.
    pub fn check_remote_cseq(&mut self, seq: u32) -> Result<(), DialogError> {
        if seq < self.remote_seq {
            return Err(DialogError::OutOfOrder {
                got: seq,
                last: self.remote_seq,
            });
        }
        self.remote_seq = seq;
        Ok(())
    }

    /// RFC 3261 §12.2.2: a target refresh request (re-INVITE, UPDATE) may replace the remote target.
    pub fn refresh_target(&mut self, req: &Request) {
        self.refresh_target_from(&req.headers);
    }

    /// RFC 3261 §12.2.1.2: a 2xx to our target refresh (re-INVITE) may replace the remote target.
    pub fn refresh_target_from(&mut self, headers: &Headers) {
        if let Ok(Some(contact)) = headers.contact() {
            self.remote_target = contact.uri;
        }
    }

    /// The last CSeq number we used.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// RFC 3261 §12.2.1.1: a request inside the dialog with the next local CSeq, our From, the
    /// peer's To, and Route/Request-URI from the route set (loose or strict routing).
    pub fn build_request(&mut self, method: Method, via: &Via) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.build_with_seq(method, via, self.local_seq)
    }

    /// RFC 3261 §13.2.2.4: the ACK for a 2xx to the INVITE with CSeq `seq`: built like any
    /// in-dialog request but with the INVITE's sequence number (the local CSeq does not move).
    /// The caller copies the INVITE's credentials.
    pub fn build_ack(&self, seq: u32, via: &Via) -> Request {
        self.build_with_seq(Method::Ack, via, seq)
    }

    fn build_with_seq(&self, method: Method, via: &Via, seq: u32) -> Request {
        let (uri, routes): (Uri, Vec<String>) = match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if first.uri.param("lr").is_some() => (
                self.remote_target.clone(),
                self.route_set.iter().map(ToString::to_string).collect(),
            ),
            Some(first) => {
                // Strict routing: the first route becomes the Request-URI, the remote target the last Route.
                let mut routes: Vec<String> = self.route_set[1..]
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                routes.push(format!("<{}>", self.remote_target));
                (first.uri.without_params(), routes)
            }
        };
        let mut req = Request::new(method.clone(), uri);
        req.headers.push("Via", via.to_string());
        req.headers.push("Max-Forwards", "70");
        req.headers.push("From", self.local_uri.as_str());
        req.headers.push("To", self.remote_uri.as_str());
        req.headers.push("Call-ID", self.id.call_id.as_str());
        req.headers.push("CSeq", format!("{seq} {method}"));
        for r in routes {
            req.headers.push("Route", r);
        }
        req
    }

    /// RFC 3261 §13.3.1.4: starts retransmitting our 2xx to the INVITE with this CSeq.
    pub fn start_2xx(&mut self, now: Instant, cseq: u32, bytes: Vec<u8>) {
        self.pending = Some(Pending2xx {
            bytes,
            cseq,
            next: now + self.timers.t1,
            interval: self.timers.t1,
            give_up: now + self.timers.timeout(),
        });
    }

    /// Whether a 2xx is waiting for its ACK.
    pub fn awaiting_ack(&self) -> bool {
        self.pending.is_some()
    }

    /// An ACK arrived in the dialog; returns true when it acknowledged the pending 2xx.
    pub fn handle_ack(&mut self, cseq: u32) -> bool {
        if self.pending.as_ref().is_some_and(|p| p.cseq == cseq) {
            self.pending = None;
            true
        } else {
            false
        }
    }

    /// Stops retransmitting (the dialog is ending).
    pub fn stop_2xx(&mut self) {
        self.pending = None;
    }

    /// Fires the 2xx timer.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<DialogOutput> {
        let p = self.pending.as_mut()?;
        if now >= p.give_up {
            self.pending = None;
            return Some(DialogOutput::AckTimeout);
        }
        if now >= p.next {
            p.interval = (p.interval * 2).min(self.timers.t2);
            p.next = (now + p.interval).min(p.give_up);
            return Some(DialogOutput::Retransmit(p.bytes.clone()));
        }
        None
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.next.min(p.give_up))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::message::{SipMessage, parse};
    use crate::transport::Transport;

    #[allow(
        clippy::disallowed_methods,
        reason = "tests need an arbitrary origin for virtual time"
    )]
    fn origin() -> Instant {
        Instant::now()
    }

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:1000@pbx SIP/2.0\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx\r\n\
             From: \"A\" <sip:a@a>;tag=ft\r\nTo: <sip:1000@pbx>\r\nCall-ID: cid\r\nCSeq: 7 INVITE\r\n\
             Contact: <sip:a@192.0.2.1:5070>\r\n{extra}l: 0\r\n\r\n"
        );
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!(),
        }
    }

    fn peer() -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: "192.0.2.1:5070".parse().unwrap(),
            conn: None,
        }
    }

    fn via() -> Via {
        Via::new("UDP", "10.0.0.1", Some(5060), "z9hG4bKb")
    }

    #[test]
    fn bye_without_route_set() {
        let mut d = Dialog::new_uas(&invite(""), "lt", peer(), Timers::default()).unwrap();
        assert_eq!(d.id().remote_tag, "ft");
        let bye = d.build_request(Method::Bye, &via());
        assert_eq!(bye.uri.as_str(), "sip:a@192.0.2.1:5070");
        assert_eq!(bye.headers.from().unwrap().tag(), Some("lt"));
        assert_eq!(bye.headers.to().unwrap().tag(), Some("ft"));
        assert_eq!(bye.headers.get("CSeq"), Some("1 BYE"));
        assert!(!bye.headers.contains("Route"));
        let again = d.build_request(Method::Bye, &via());
        assert_eq!(again.headers.get("CSeq"), Some("2 BYE"));
    }

    #[test]
    fn loose_and_strict_routes() {
        let loose = invite("Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n");
        let mut d = Dialog::new_uas(&loose, "lt", peer(), Timers::default()).unwrap();
        let bye = d.build_request(Method::Bye, &via());
        assert_eq!(bye.uri.as_str(), "sip:a@192.0.2.1:5070");
        let routes: Vec<_> = bye.headers.get_all("Route").collect();
        assert_eq!(routes, vec!["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);

        let strict = invite(
            "Record-Route: <sip:p1.example;maddr=x>\r\nRecord-Route: <sip:p2.example;lr>\r\n",
        );
        let mut d = Dialog::new_uas(&strict, "lt", peer(), Timers::default()).unwrap();
        let bye = d.build_request(Method::Bye, &via());
        assert_eq!(bye.uri.as_str(), "sip:p1.example");
        let routes: Vec<_> = bye.headers.get_all("Route").collect();
        assert_eq!(
            routes,
            vec!["<sip:p2.example;lr>", "<sip:a@192.0.2.1:5070>"]
        );
    }

    #[test]
    fn cseq_order_and_target_refresh() {
        let mut d = Dialog::new_uas(&invite(""), "lt", peer(), Timers::default()).unwrap();
        assert!(d.check_remote_cseq(8).is_ok());
        assert!(d.check_remote_cseq(8).is_ok());
        assert_eq!(
            d.check_remote_cseq(6),
            Err(DialogError::OutOfOrder { got: 6, last: 8 })
        );
        d.refresh_target(&invite("").clone_with_contact("<sip:a@198.51.100.7>"));
        assert_eq!(d.remote_target().as_str(), "sip:a@198.51.100.7");
    }

    trait WithContact {
        fn clone_with_contact(&self, c: &str) -> Request;
    }
    impl WithContact for Request {
        fn clone_with_contact(&self, c: &str) -> Request {
            let mut r = self.clone();
            r.headers.set("Contact", c);
            r
        }
    }

    #[test]
    fn uac_dialog_from_2xx() {
        let inv = invite("");
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx\r\n\
            From: \"A\" <sip:a@a>;tag=ft\r\nTo: <sip:1000@pbx>;tag=tt\r\nCall-ID: cid\r\n\
            CSeq: 7 INVITE\r\nContact: <sip:b@198.51.100.9:5080>\r\n\
            Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\nl: 0\r\n\r\n";
        let SipMessage::Response(ok) = parse(text.as_bytes()).unwrap() else {
            panic!()
        };
        let mut d = Dialog::new_uac(&inv, &ok, peer(), Timers::default()).unwrap();
        assert_eq!(d.id().local_tag, "ft");
        assert_eq!(d.id().remote_tag, "tt");
        let ack = d.build_ack(7, &via());
        assert_eq!(ack.headers.get("CSeq"), Some("7 ACK"));
        assert_eq!(ack.uri.as_str(), "sip:b@198.51.100.9:5080");
        let routes: Vec<_> = ack.headers.get_all("Route").collect();
        assert_eq!(routes, vec!["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
        let bye = d.build_request(Method::Bye, &via());
        assert_eq!(bye.headers.get("CSeq"), Some("8 BYE"));
        assert_eq!(bye.headers.from().unwrap().tag(), Some("ft"));
        assert_eq!(bye.headers.to().unwrap().tag(), Some("tt"));
        assert!(
            d.check_remote_cseq(1).is_ok(),
            "any first remote CSeq is in order"
        );
    }

    #[test]
    fn retransmits_2xx_until_ack_or_gives_up() {
        let t0 = origin();
        let mut d = Dialog::new_uas(&invite(""), "lt", peer(), Timers::default()).unwrap();
        d.start_2xx(t0, 7, b"200".to_vec());
        let mut sent = Vec::new();
        let mut gave_up = None;
        while let Some(at) = d.poll_timeout() {
            match d.handle_timeout(at) {
                Some(DialogOutput::Retransmit(_)) => sent.push((at - t0).as_millis()),
                Some(DialogOutput::AckTimeout) => gave_up = Some((at - t0).as_millis()),
                None => {}
            }
        }
        assert_eq!(&sent[..5], &[500, 1500, 3500, 7500, 11_500]);
        assert_eq!(gave_up, Some(32_000));

        d.start_2xx(t0, 7, b"200".to_vec());
        assert!(!d.handle_ack(6));
        assert!(d.handle_ack(7));
        assert_eq!(d.poll_timeout(), None);
    }
}
