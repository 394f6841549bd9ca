//! Requests inside an established dialog, in both directions (RFC 3261 §12.2, §14, §15).
//!
//! Owns what the peer sends in a dialog (BYE: 200 and `Ended`; INFO: 200 and `Dtmf`; OPTIONS;
//! re-INVITE and UPDATE, answered as a session refresh: `RemoteReinvite`; anything else: 501)
//! and what we send in one: `reinvite` (§14.1) with its outcome `ReinviteDone`, and BYE
//! (§15.1.1).
//!
//! Invariants: an out-of-order CSeq gets 500 (§12.2.2). The endpoint answers a refresh itself,
//! with the SDP we last sent, and refreshes the remote target. One INVITE transaction at a time
//! per dialog: ours is refused while another is in progress; the peer's gets 500 with
//! Retry-After before our final response and 491 while our re-INVITE is pending (§14.2).
//! `ReinviteDone` is reported once, and not once our BYE is in flight. Sending BYE unhooks the
//! dialog at once. In-dialog requests are always served, whatever the load.

use std::time::Instant;

use rand::Rng;
use tracing::debug;

use super::transactions::InvitePurpose;
use super::uac::ack_for_2xx;
use super::{
    ALLOW, CallKey, Ctx, EndCause, Endpoint, Output, Phase, SipError, SipEvent, our_via, sdp_body,
};
use crate::builder::random_branch;
use crate::header::Method;
use crate::message::{Request, Response};
use crate::validate::{Checked, Rejection};

impl Endpoint {
    /// Sends a re-INVITE with a new SDP offer in an established dialog of either direction
    /// (RFC 3261 §14.1), e.g. hold (`a=sendonly`) and resume. Refused while another INVITE
    /// transaction of the dialog is in progress. Outcome: `ReinviteDone`.
    pub fn reinvite(&mut self, now: Instant, key: CallKey, sdp: Vec<u8>) -> Result<(), SipError> {
        let call = self.calls.get(&key).ok_or(SipError::UnknownCall(key))?;
        if call.phase != Phase::Confirmed {
            return Err(SipError::InvalidState("the call is not established"));
        }
        if call.reinvite.is_some() || call.dialog.awaiting_ack() {
            return Err(SipError::InvalidState(
                "an INVITE transaction is in progress in the dialog",
            ));
        }
        let dest = call.dialog.peer();
        let branch = random_branch(&mut self.rng);
        let via = our_via(&self.config, dest.transport, &branch);
        let contact = self.contact(dest.transport);
        let user_agent = self.config.user_agent.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(SipError::UnknownCall(key));
        };
        let mut req = call.dialog.build_request(Method::Invite, &via);
        req.headers.push("Contact", contact);
        req.headers.push("Allow", ALLOW);
        if !user_agent.is_empty() {
            req.headers.push("User-Agent", user_agent);
        }
        let sdp = (!sdp.is_empty()).then_some(sdp);
        if let Some(body) = &sdp {
            req.set_body("application/sdp", body.clone());
        }
        call.reinvite = Some(sdp);
        self.start_invite(now, key, branch, req, dest, InvitePurpose::Reinvite);
        Ok(())
    }

    pub(super) fn on_in_dialog(
        &mut self,
        ctx: &Ctx,
        req: Request,
        checked: &Checked,
        key: CallKey,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // RFC 3261 §12.2.2: out-of-order requests get 500.
        if let Err(e) = call.dialog.check_remote_cseq(checked.cseq.seq) {
            debug!(?key, %e, "out-of-order in-dialog request");
            let rej = Rejection::new(500, Some("CSeq Out of Order"), vec![]);
            return self.reply_status(ctx, &req, Some(key), rej);
        }
        match req.method {
            Method::Bye => {
                let ok = self.make_response(&req, 200, None, None);
                self.reply(ctx, &req, Some(key), ok);
                self.terminate_pending_invite(ctx.now, key);
                self.end_call(key, EndCause::RemoteBye);
            }
            Method::Info => {
                let ok = self.make_response(&req, 200, None, None);
                self.reply(ctx, &req, Some(key), ok);
                if let Some(digit) = dtmf_digit(&req) {
                    self.out
                        .push_back(Output::Event(SipEvent::Dtmf { key, digit }));
                }
            }
            Method::Options => {
                let resp = self.options_response(&req, ctx.peer.transport, None);
                self.reply(ctx, &req, Some(key), resp);
            }
            Method::Invite | Method::Update => self.on_refresh(ctx, req, key),
            _ => self.reply_status(ctx, &req, Some(key), Rejection::new(501, None, vec![])),
        }
    }

    /// A re-INVITE or UPDATE: a session refresh. We answer 200 with the SDP we last sent
    /// (the call layer is not involved), and refresh the remote target (RFC 3261 §12.2.2).
    fn on_refresh(&mut self, ctx: &Ctx, req: Request, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if req.method == Method::Invite && call.phase == Phase::Ringing {
            // RFC 3261 §14.2: a second INVITE before our final response to the first.
            let secs = self.rng.random_range(0..=10u32);
            let rej = Rejection::new(500, None, vec![("Retry-After", secs.to_string())]);
            return self.reply_status(ctx, &req, Some(key), rej);
        }
        if req.method == Method::Invite && call.reinvite.is_some() {
            // RFC 3261 §14.2: our own re-INVITE is in progress.
            return self.reply_status(ctx, &req, Some(key), Rejection::new(491, None, vec![]));
        }
        call.dialog.refresh_target(&req);
        let transport = call.dialog.peer().transport;
        let sdp = if req.method == Method::Invite || !req.body.is_empty() {
            call.last_sdp.clone()
        } else {
            None
        };
        let mut resp = self.make_response(&req, 200, None, None);
        resp.headers.push("Contact", self.contact(transport));
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Supported", "");
        if let Some(sdp) = sdp {
            resp.set_body("application/sdp", sdp);
        }
        let bytes = resp.to_bytes();
        self.reply(ctx, &req, Some(key), resp);
        if req.method == Method::Invite
            && let Some(call) = self.calls.get_mut(&key)
        {
            call.retransmit_dest = ctx.dest;
            call.dialog.start_2xx(
                ctx.now,
                req.headers.cseq().map(|c| c.seq).unwrap_or(0),
                bytes,
            );
        }
        let offer = sdp_body(&req.headers, &req.body);
        if req.method == Method::Invite || offer.is_some() {
            self.out
                .push_back(Output::Event(SipEvent::RemoteReinvite { key, sdp: offer }));
        }
    }

    /// Sends BYE in the call's dialog (RFC 3261 §15.1.1) through a client transaction.
    pub(super) fn send_bye(&mut self, now: Instant, key: CallKey, report: bool) {
        let branch = random_branch(&mut self.rng);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let dest = call.dialog.peer();
        let via = our_via(&self.config, dest.transport, &branch);
        let mut bye = call.dialog.build_request(Method::Bye, &via);
        if !self.config.user_agent.is_empty() {
            bye.headers
                .push("User-Agent", self.config.user_agent.as_str());
        }
        call.phase = Phase::Ending;
        call.dialog.stop_2xx();
        let id = call.dialog.id().clone();
        self.dialogs.remove(&id);
        self.start_client(
            now,
            bye.to_bytes(),
            dest,
            (branch, Method::Bye),
            Some(key),
            report,
        );
    }

    /// A response to our re-INVITE.
    pub(super) fn on_reinvite_response(&mut self, branch: &str, key: CallKey, resp: Response) {
        if resp.is_provisional() {
            return;
        }
        if !resp.is_success() {
            return self.finish_reinvite(key, resp.status, None);
        }
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
        let invite = e.invite.clone();
        let ack_branch = random_branch(&mut self.rng);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.dialog.refresh_target_from(&resp.headers);
        let ack = ack_for_2xx(&self.config, &call.dialog, &invite, &ack_branch);
        let dest = call.dialog.peer();
        self.transmit(dest, ack.clone());
        if let Some(e) = self.client_invites.get_mut(branch) {
            e.acks.insert(tag, ack);
        }
        let sdp = sdp_body(&resp.headers, &resp.body);
        self.finish_reinvite(key, resp.status, sdp);
    }

    /// Reports our re-INVITE's outcome once; a 2xx makes its offer our current SDP.
    pub(super) fn finish_reinvite(&mut self, key: CallKey, status: u16, sdp: Option<Vec<u8>>) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(offer) = call.reinvite.take() else {
            return;
        };
        if (200..300).contains(&status) {
            call.last_sdp = offer;
        }
        if call.phase == Phase::Ending {
            return;
        }
        self.out
            .push_back(Output::Event(SipEvent::ReinviteDone { key, status, sdp }));
    }
}

/// The digit of a SIP INFO (application/dtmf-relay `Signal=`, or application/dtmf).
fn dtmf_digit(req: &Request) -> Option<String> {
    let body = std::str::from_utf8(&req.body).ok()?;
    let raw = match req.headers.content_type()?.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then_some(v.trim())
        })?,
        "application/dtmf" => body.trim(),
        _ => return None,
    };
    let digit = match raw {
        "10" => "*",
        "11" => "#",
        s => s,
    };
    let valid = digit.len() == 1
        && digit
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'A'..=b'D' | b'a'..=b'd'));
    valid.then(|| digit.to_ascii_uppercase())
}
