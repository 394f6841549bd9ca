//! The UAC side of INVITE: outbound calls (RFC 3261 §8.1, §13.2, §9.1, with digest
//! authentication, §22).
//!
//! Owns `OutgoingCall`; an outbound call until its final response (`Outgoing`, in
//! `Endpoint::outgoing`); `invite` and `cancel`; the INVITE's responses (provisional:
//! `Progress`, 2xx: ACK and `Answered`, 3xx-6xx: `Failed`); the one digest retry on 401/407
//! (§22.2, SHA-256 preferred, RFC 8760 §2.4); CANCEL (§9.1); and the ACK for a 2xx
//! (§13.2.2.4), which our re-INVITE uses too.
//!
//! Invariants: every outbound call ends with exactly one terminal event: `Failed` while
//! unanswered (its final 3xx-6xx, 408 on Timer B, 503 on a transport error, 487 after
//! `cancel`), or `Ended` after `Answered`. CANCEL goes out only after a provisional (until then
//! it is deferred), and the INVITE is given up 64*T1 after it. The endpoint ACKs every 2xx
//! itself and sends the same ACK again for a retransmitted 2xx; of forked 2xx it keeps the first
//! and ACKs and BYEs the rest, as it does a 2xx that crossed our CANCEL. A call moves into
//! `Endpoint::calls` (as `Confirmed`) only with the 2xx that answers it.

use std::time::Instant;

use rand::Rng;
use tracing::debug;

use super::transactions::InvitePurpose;
use super::{
    ALLOW, Call, CallKey, Endpoint, EndpointConfig, Output, Phase, SipError, SipEvent,
    check_headers, host_of, local_addr, our_via, sdp_body,
};
use crate::builder::{cancel_for, random_branch, random_call_id, random_tag};
use crate::dialog::Dialog;
use crate::digest::{self, Credentials};
use crate::header::{Method, NameAddr, Param, Scheme, Uri};
use crate::message::{Request, Response};
use crate::transaction::ClientInviteState;
use crate::transport::Peer;

/// An outbound call for [`Endpoint::invite`]: the shell has already resolved where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    /// The Request-URI, e.g. `sip:bob@127.0.0.1:5080` (sip or sips).
    pub request_uri: String,
    /// Where the INVITE (and every later request of the call) is sent.
    pub destination: Peer,
    /// The From URI, e.g. `sip:1000@127.0.0.1`.
    pub from_uri: String,
    /// The From display name.
    pub from_display: Option<String>,
    /// The To URI.
    pub to_uri: String,
    /// Extra headers (`X-...`, `P-Asserted-Identity`, `Route`), printed as given. Names the core
    /// writes itself (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-*) are refused.
    pub headers: Vec<(String, String)>,
    /// Our SDP offer.
    pub sdp: Option<Vec<u8>>,
    /// Answer one 401/407 with digest authentication (trunks).
    pub credentials: Option<Credentials>,
}

/// Whether a CANCEL was asked for an unanswered outbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CancelState {
    None,
    /// Asked before any provisional arrived (RFC 3261 §9.1: sent when one does).
    Deferred,
    /// Sent; if no final response arrives by `give_up` (64*T1), the call fails with 487.
    Sent {
        give_up: Instant,
    },
}

/// An outbound call before its final response.
pub(super) struct Outgoing {
    /// The INVITE now in flight (after a digest retry, the second one).
    pub(super) invite: Request,
    pub(super) branch: String,
    pub(super) dest: Peer,
    pub(super) sdp: Option<Vec<u8>>,
    pub(super) credentials: Option<Credentials>,
    pub(super) auth_retried: bool,
    pub(super) provisional: bool,
    pub(super) early_sdp_sent: bool,
    pub(super) cancel: CancelState,
}

impl Endpoint {
    /// Places an outbound call (RFC 3261 §8.1.1, §13.2.1): sends the INVITE to
    /// `call.destination` through a client transaction. Its progress arrives as `Progress`,
    /// then `Answered` (then `Ended`) or `Failed`.
    pub fn invite(&mut self, now: Instant, call: OutgoingCall) -> Result<CallKey, SipError> {
        if self.call_count() >= self.config.max_calls {
            self.shed_invites += 1;
            return Err(SipError::Overloaded("too many calls"));
        }
        let uri = parse_uri("Request-URI", &call.request_uri)?;
        if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) || uri.has_headers() {
            return Err(SipError::InvalidArgument(
                "the Request-URI must be a sip or sips URI without headers".into(),
            ));
        }
        let from_uri = parse_uri("From URI", &call.from_uri)?;
        let to_uri = parse_uri("To URI", &call.to_uri)?;
        check_headers(&call.headers)?;
        let dest = call.destination;
        let local = local_addr(&self.config, dest.transport);
        let branch = random_branch(&mut self.rng);
        let tag = random_tag(&mut self.rng);
        let call_id = random_call_id(&mut self.rng, &host_of(local.ip()));
        let from = NameAddr {
            display: call
                .from_display
                .as_deref()
                .map(|d| d.chars().filter(|c| !c.is_control()).collect::<String>())
                .filter(|d| !d.is_empty()),
            uri: from_uri,
            params: vec![Param {
                name: "tag".into(),
                value: Some(tag),
            }],
        };
        let to = NameAddr {
            display: None,
            uri: to_uri,
            params: Vec::new(),
        };
        let mut req = Request::new(Method::Invite, uri);
        req.headers.push(
            "Via",
            our_via(&self.config, dest.transport, &branch).to_string(),
        );
        req.headers.push("Max-Forwards", "70");
        req.headers.push("From", from.to_string());
        req.headers.push("To", to.to_string());
        req.headers.push("Call-ID", call_id.as_str());
        req.headers.push("CSeq", "1 INVITE");
        req.headers.push("Contact", self.contact(dest.transport));
        req.headers.push("Allow", ALLOW);
        if !self.config.user_agent.is_empty() {
            req.headers
                .push("User-Agent", self.config.user_agent.as_str());
        }
        for (name, value) in &call.headers {
            req.headers.push(name, value);
        }
        let sdp = call.sdp.filter(|s| !s.is_empty());
        if let Some(body) = &sdp {
            req.set_body("application/sdp", body.clone());
        }
        let key = CallKey(self.next_key);
        self.next_key += 1;
        debug!(?key, %call_id, "outgoing call");
        self.outgoing.insert(
            key,
            Outgoing {
                invite: req.clone(),
                branch: branch.clone(),
                dest,
                sdp,
                credentials: call.credentials,
                auth_retried: false,
                provisional: false,
                early_sdp_sent: false,
                cancel: CancelState::None,
            },
        );
        self.start_invite(now, key, branch, req, dest, InvitePurpose::Initial);
        Ok(key)
    }

    /// Ends an outbound call: CANCEL while unanswered (RFC 3261 §9.1: only after a provisional
    /// arrived; if none has yet, it is sent when one does; if a 2xx races it, the endpoint ACKs
    /// and BYEs that 2xx), BYE once answered. The outcome is `Failed` (487, or the final status
    /// that crossed the CANCEL) or `Ended`. For an inbound call this is `hangup`.
    pub fn cancel(&mut self, now: Instant, key: CallKey) -> Result<(), SipError> {
        let Some(out) = self.outgoing.get_mut(&key) else {
            return self.hangup(now, key);
        };
        match out.cancel {
            CancelState::None if out.provisional => self.send_cancel(now, key),
            CancelState::None => out.cancel = CancelState::Deferred,
            CancelState::Deferred | CancelState::Sent { .. } => {}
        }
        Ok(())
    }

    /// A response to an outbound call's INVITE (RFC 3261 §13.2.2).
    pub(super) fn on_invite_response(
        &mut self,
        now: Instant,
        branch: &str,
        key: CallKey,
        resp: Response,
    ) {
        if resp.is_provisional() {
            let Some(out) = self.outgoing.get_mut(&key) else {
                return;
            };
            out.provisional = true;
            let sdp = sdp_body(&resp.headers, &resp.body).filter(|_| !out.early_sdp_sent);
            out.early_sdp_sent |= sdp.is_some();
            let deferred = out.cancel == CancelState::Deferred;
            if resp.status > 100 {
                self.out.push_back(Output::Event(SipEvent::Progress {
                    key,
                    status: resp.status,
                    sdp,
                }));
            }
            if deferred {
                self.send_cancel(now, key);
            }
            return;
        }
        if resp.is_success() {
            return self.on_invite_2xx(now, branch, key, resp);
        }
        let Some(out) = self.outgoing.get_mut(&key) else {
            return;
        };
        if out.branch != branch {
            return;
        }
        if matches!(resp.status, 401 | 407)
            && !out.auth_retried
            && out.cancel == CancelState::None
            && let Some(creds) = out.credentials.clone()
        {
            let (invite, dest) = (out.invite.clone(), out.dest);
            if let Some(retry) = self.authorized_retry(&invite, dest, &resp, &creds) {
                return self.resend_invite(now, key, retry);
            }
        }
        self.fail_outgoing(key, resp.status);
    }

    /// RFC 3261 §22.2: the INVITE again with CSeq+1, a new branch, the same Call-ID and From
    /// tag, and credentials for the challenge (401: Authorization, 407: Proxy-Authorization).
    fn authorized_retry(
        &mut self,
        invite: &Request,
        dest: Peer,
        resp: &Response,
        creds: &Credentials,
    ) -> Option<(String, Request)> {
        let (challenge_name, answer_name) = if resp.status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        // Prefer SHA-256 when the server offers both (RFC 8760 §2.4).
        let challenges: Vec<(&str, digest::Challenge)> = resp
            .headers
            .get_all(challenge_name)
            .filter_map(|v| digest::parse_challenge(v).ok().map(|c| (v, c)))
            .collect();
        let value = challenges
            .iter()
            .find(|(_, c)| c.algorithm == digest::Algorithm::Sha256)
            .or(challenges.first())
            .map(|(v, _)| *v);
        let Some(value) = value else {
            debug!(status = resp.status, "no usable digest challenge");
            return None;
        };
        let cnonce = format!("{:016x}", self.rng.random::<u64>());
        let uri = invite.uri.as_str();
        let answer = match digest::authorization(value, "INVITE", uri, creds, &cnonce, 1) {
            Ok(a) => a,
            Err(e) => {
                debug!(%e, "cannot answer the digest challenge");
                return None;
            }
        };
        let seq = invite.headers.cseq().ok()?.seq.checked_add(1)?;
        let branch = random_branch(&mut self.rng);
        let mut retry = invite.clone();
        retry.headers.replace_first(
            "Via",
            our_via(&self.config, dest.transport, &branch).to_string(),
        );
        retry.headers.set("CSeq", format!("{seq} INVITE"));
        retry.headers.push(answer_name, answer);
        Some((branch, retry))
    }

    fn resend_invite(&mut self, now: Instant, key: CallKey, (branch, req): (String, Request)) {
        let Some(out) = self.outgoing.get_mut(&key) else {
            return;
        };
        out.auth_retried = true;
        out.provisional = false;
        out.invite = req.clone();
        out.branch = branch.clone();
        let dest = out.dest;
        self.start_invite(now, key, branch, req, dest, InvitePurpose::Initial);
    }

    /// A 2xx to an outbound INVITE: the first one answers the call; retransmissions get the
    /// ACK again; 2xx from other forks, or after the call ended or was cancelled, are ACKed and
    /// BYEd (RFC 3261 §13.2.2.4).
    fn on_invite_2xx(&mut self, now: Instant, branch: &str, key: CallKey, resp: Response) {
        let Some(e) = self.client_invites.get(branch) else {
            return;
        };
        let tag = resp
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default();
        if let Some(ack) = e.acks.get(&tag) {
            let (dest, ack) = (e.dest, ack.clone());
            return self.transmit(dest, ack);
        }
        let (invite, dest) = (e.invite.clone(), e.dest);
        let mut dialog = match Dialog::new_uac(&invite, &resp, dest, self.config.timers) {
            Ok(d) => d,
            Err(err) => {
                debug!(%err, "unusable 2xx to our INVITE");
                if self.outgoing.contains_key(&key) {
                    self.fail_outgoing(key, 502);
                }
                return;
            }
        };
        let ack_branch = random_branch(&mut self.rng);
        let ack = ack_for_2xx(&self.config, &dialog, &invite, &ack_branch);
        self.transmit(dest, ack.clone());
        if let Some(e) = self.client_invites.get_mut(branch) {
            e.acks.insert(tag, ack);
        }
        let answering = self.outgoing.get(&key).is_some_and(|o| o.branch == branch);
        if !answering {
            debug!(?key, "2xx from another fork or after the end; ACK and BYE");
            return self.bye_dialog(now, &mut dialog);
        }
        let Some(out) = self.outgoing.remove(&key) else {
            return;
        };
        if out.cancel != CancelState::None {
            // The 2xx raced our CANCEL: the call layer wanted it gone.
            debug!(?key, "2xx crossed our CANCEL; ACK and BYE");
            self.bye_dialog(now, &mut dialog);
            self.out
                .push_back(Output::Event(SipEvent::Failed { key, status: 487 }));
            return;
        }
        dialog.confirm();
        self.dialogs.insert(dialog.id().clone(), key);
        self.calls.insert(
            key,
            Call {
                invite,
                invite_key: None,
                dialog,
                phase: Phase::Confirmed,
                last_sdp: out.sdp,
                hangup_pending: false,
                retransmit_dest: dest,
                reinvite: None,
            },
        );
        debug!(?key, "outgoing call answered");
        let sdp = sdp_body(&resp.headers, &resp.body);
        self.out
            .push_back(Output::Event(SipEvent::Answered { key, sdp }));
    }

    /// Ends an unanswered outbound call with `Failed`, dropping its INVITE transaction unless
    /// that still has work to do (absorbing retransmissions, ACKing late 2xx).
    pub(super) fn fail_outgoing(&mut self, key: CallKey, status: u16) {
        let Some(out) = self.outgoing.remove(&key) else {
            return;
        };
        if self.client_invites.get(&out.branch).is_some_and(|e| {
            matches!(
                e.tx.state(),
                ClientInviteState::Calling | ClientInviteState::Proceeding
            )
        }) {
            self.remove_client_invite(&out.branch);
        }
        debug!(?key, status, "outgoing call failed");
        self.out
            .push_back(Output::Event(SipEvent::Failed { key, status }));
    }

    /// RFC 3261 §9.1: CANCEL the outbound call's pending INVITE.
    fn send_cancel(&mut self, now: Instant, key: CallKey) {
        let Some(out) = self.outgoing.get_mut(&key) else {
            return;
        };
        let mut cancel = cancel_for(&out.invite);
        if !self.config.user_agent.is_empty() {
            cancel
                .headers
                .push("User-Agent", self.config.user_agent.as_str());
        }
        out.cancel = CancelState::Sent {
            give_up: now + self.config.timers.timeout(),
        };
        let (dest, branch) = (out.dest, out.branch.clone());
        self.start_client(
            now,
            cancel.to_bytes(),
            dest,
            (branch, Method::Cancel),
            None,
            false,
        );
    }

    /// Sends BYE in a dialog the endpoint does not keep (a losing fork, a 2xx after CANCEL).
    fn bye_dialog(&mut self, now: Instant, dialog: &mut Dialog) {
        let branch = random_branch(&mut self.rng);
        let dest = dialog.peer();
        let via = our_via(&self.config, dest.transport, &branch);
        let mut bye = dialog.build_request(Method::Bye, &via);
        if !self.config.user_agent.is_empty() {
            bye.headers
                .push("User-Agent", self.config.user_agent.as_str());
        }
        self.start_client(
            now,
            bye.to_bytes(),
            dest,
            (branch, Method::Bye),
            None,
            false,
        );
    }
}

/// RFC 3261 §13.2.2.4: the ACK for a 2xx to `invite`, with the INVITE's CSeq number and
/// credentials.
pub(super) fn ack_for_2xx(
    config: &EndpointConfig,
    dialog: &Dialog,
    invite: &Request,
    branch: &str,
) -> Vec<u8> {
    let via = our_via(config, dialog.peer().transport, branch);
    let seq = invite.headers.cseq().map_or(dialog.local_seq(), |c| c.seq);
    let mut ack = dialog.build_ack(seq, &via);
    for name in ["Authorization", "Proxy-Authorization"] {
        for v in invite.headers.get_all(name) {
            ack.headers.push(name, v);
        }
    }
    if !config.user_agent.is_empty() {
        ack.headers.push("User-Agent", config.user_agent.as_str());
    }
    ack.to_bytes()
}

fn parse_uri(what: &str, text: &str) -> Result<Uri, SipError> {
    Uri::parse(text.trim()).map_err(|e| SipError::InvalidArgument(format!("{what}: {e}")))
}
