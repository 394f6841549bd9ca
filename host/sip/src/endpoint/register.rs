//! REGISTER, handed up to the registrar in the call layer (RFC 3261 §10.3).
//!
//! Owns `RegisterRequest` (with `ContactBinding` and `RequestKey`), the syntax check of its
//! Contact and Expires headers, the REGISTERs waiting for an answer (`PendingRequest`) and
//! `respond_request`, the call layer's answer.
//!
//! Invariants: the endpoint checks the syntax only (a `*` Contact comes alone and with
//! Expires: 0, §10.3 step 6, else 400); bindings, authentication and expiry are the call
//! layer's. Each REGISTER holds a server transaction that absorbs retransmissions until
//! `respond_request`; one the call layer never answers is dropped after 64*T1 (by
//! `Endpoint::handle_timeout`). A REGISTER never belongs to a dialog.

use std::time::Instant;

use super::transactions::{ServerEntry, ServerTx};
use super::{Ctx, Endpoint, Output, SipError, SipEvent, check_headers};
use crate::builder::random_tag;
use crate::header::NameAddr;
use crate::message::Request;
use crate::transaction::TxKey;
use crate::transport::Peer;
use crate::validate::{Checked, Rejection};

/// Identifies one non-INVITE request (REGISTER) waiting for [`Endpoint::respond_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey(pub u64);

/// One Contact of a REGISTER (RFC 3261 §10.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactBinding {
    /// The contact URI, without the enclosing `<>`.
    pub uri: String,
    /// Its `expires` parameter, when present and numeric (clamped to u32).
    pub expires: Option<u32>,
}

/// A REGISTER for the registrar in the call layer, which answers it with `respond_request`.
/// The endpoint checked the syntax only (a `*` Contact comes alone with Expires: 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// The key for `respond_request`.
    pub key: RequestKey,
    /// The From URI's user part.
    pub from_user: Option<String>,
    /// The To URI's user part: the address of record being registered.
    pub to_user: Option<String>,
    /// The Contact bindings, in order (empty for a fetch or for `*`).
    pub contacts: Vec<ContactBinding>,
    /// `Contact: *` (remove every binding; RFC 3261 §10.2.2).
    pub star: bool,
    /// The Expires header, when present and numeric (clamped to u32).
    pub expires: Option<u32>,
    /// The Authorization header, as received (parse it with `digest::parse_authorization`).
    pub authorization: Option<String>,
    /// The Call-ID (RFC 3261 §10.3 orders bindings by Call-ID and CSeq).
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// Where the REGISTER came from (its source address: the binding to use behind NAT).
    pub peer: Peer,
    /// The Request-URI (the digest-uri must match it).
    pub request_uri: String,
}

/// A REGISTER waiting for the call layer's answer.
pub(super) struct PendingRequest {
    pub(super) req: Request,
    pub(super) tx_key: TxKey,
    pub(super) give_up: Instant,
}

impl Endpoint {
    /// Answers a non-INVITE request the endpoint handed over (REGISTER) with a final status and
    /// extra headers printed as given (`WWW-Authenticate`, `Contact: <..>;expires=N`, ...).
    pub fn respond_request(
        &mut self,
        now: Instant,
        key: RequestKey,
        status: u16,
        headers: Vec<(String, String)>,
    ) -> Result<(), SipError> {
        if !(200..=699).contains(&status) {
            return Err(SipError::InvalidStatus(status));
        }
        check_headers(&headers)?;
        let pending = self
            .requests
            .remove(&key)
            .ok_or(SipError::UnknownRequest(key))?;
        let tag = random_tag(&mut self.rng);
        let mut resp = self.make_response(&pending.req, status, None, Some(&tag));
        for (name, value) in &headers {
            resp.headers.push(name, value);
        }
        let sent = self
            .server
            .get_mut(&pending.tx_key)
            .is_some_and(|e| e.tx.send_response(now, status, resp.to_bytes()));
        if !sent {
            return Err(SipError::InvalidState("the request's transaction is over"));
        }
        self.drain_server(&pending.tx_key);
        Ok(())
    }

    /// RFC 3261 §10.3: a REGISTER goes to the registrar in the call layer, through a server
    /// transaction that absorbs retransmissions until `respond_request`.
    pub(super) fn on_register(&mut self, ctx: &Ctx, req: Request, checked: &Checked) {
        let mut contacts = Vec::new();
        let mut star = false;
        for value in req.headers.get_all("Contact") {
            if value.trim() == "*" {
                star = true;
                continue;
            }
            // check_request already refused unparseable Contact values.
            for na in NameAddr::parse_list(value).unwrap_or_default() {
                contacts.push(ContactBinding {
                    uri: na.uri.as_str().to_owned(),
                    expires: na.param("expires").flatten().and_then(parse_delta),
                });
            }
        }
        let expires = req.headers.get("Expires").and_then(parse_delta);
        // RFC 3261 §10.3 step 6: `*` only alone and with Expires: 0.
        if star && (!contacts.is_empty() || expires != Some(0)) {
            let rej = Rejection::new(400, Some("Invalid Contact *"), vec![]);
            return self.reply_status(ctx, &req, None, rej);
        }
        let key = RequestKey(self.next_key);
        self.next_key += 1;
        let tx = ServerTx::new(
            &req.method,
            ctx.peer.transport.is_reliable(),
            self.config.timers,
        );
        self.server.insert(
            ctx.key.clone(),
            ServerEntry {
                tx,
                dest: ctx.dest,
                call: None,
                timer: None,
            },
        );
        let event = RegisterRequest {
            key,
            from_user: checked.from.uri.user().map(str::to_owned),
            to_user: checked.to.uri.user().map(str::to_owned),
            contacts,
            star,
            expires,
            authorization: req.headers.get("Authorization").map(str::to_owned),
            call_id: checked.call_id.clone(),
            cseq: checked.cseq.seq,
            peer: ctx.peer,
            request_uri: req.uri.as_str().to_owned(),
        };
        self.requests.insert(
            key,
            PendingRequest {
                req,
                tx_key: ctx.key.clone(),
                give_up: ctx.now + self.config.timers.timeout(),
            },
        );
        self.out.push_back(Output::Event(SipEvent::Register(event)));
    }
}

/// A delta-seconds value (Expires), clamped to u32 (RFC 3261 §25.1: at least 2^32-1 accepted).
fn parse_delta(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        t.parse::<u64>()
            .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX)),
    )
}
