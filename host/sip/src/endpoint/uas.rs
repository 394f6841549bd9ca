//! The UAS side of INVITE: inbound calls (RFC 3261 §8.2, §13.3, §9.2).
//!
//! Owns `IncomingCall`; a new INVITE outside a dialog (`on_invite`: 100 Trying at once,
//! §17.2.1, then `IncomingCall`); the call layer's answer to it (`respond`); CANCEL of it (§9.2:
//! 200 to the CANCEL, 487 to the INVITE, `Cancelled`); the ACK for our 2xx (§13.3.1.4, to the
//! first INVITE or a re-INVITE); and the 487 that a BYE on an early dialog owes the pending
//! INVITE (§15.1.2).
//!
//! Invariants: an inbound call enters `Endpoint::calls` as `Ringing`, becomes `Answered` with our
//! 2xx and `Confirmed` only with its ACK (a `hangup` in between waits for the ACK, §15). A
//! dialog-establishing response copies Record-Route and carries Contact (§12.1.1); every 503
//! carries Retry-After (§21.5.4). New INVITEs past `max_calls` get 503 and count as shed. An
//! inbound call ends with exactly one terminal event, `Cancelled` or `Ended`, unless the call
//! layer ended it itself with a 3xx-6xx: then none follows.

use std::time::Instant;

use tracing::debug;

use super::{
    ALLOW, Call, CallKey, Ctx, Endpoint, Output, Phase, SHED_RETRY_AFTER_SECS, SipError, SipEvent,
};
use crate::builder::random_tag;
use crate::dialog::{Dialog, DialogId};
use crate::message::Request;
use crate::transaction::TxKey;
use crate::transport::Peer;
use crate::validate::{self, Checked, Rejection};

/// A new inbound call, reported after 100 Trying was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// The call's key for `respond` and `hangup`.
    pub key: CallKey,
    /// The SIP Call-ID.
    pub call_id: String,
    /// The From URI.
    pub from_uri: String,
    /// The From URI's user part (%-decoded).
    pub from_user: Option<String>,
    /// The From display name.
    pub from_display: Option<String>,
    /// The called number: the Request-URI user part, else the To URI's.
    pub to_user: Option<String>,
    /// The Request-URI.
    pub request_uri: String,
    /// The SDP offer, when the INVITE carries one.
    pub sdp: Option<Vec<u8>>,
    /// Where the INVITE came from.
    pub peer: Peer,
}

impl Endpoint {
    /// Sends a provisional (101-199, optional SDP) or final answer (2xx with SDP, or 3xx-6xx)
    /// to the call's INVITE. A 3xx-6xx ends the call without an event.
    pub fn respond(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: Option<&str>,
        sdp: Option<Vec<u8>>,
    ) -> Result<(), SipError> {
        if !(101..=699).contains(&status) {
            return Err(SipError::InvalidStatus(status));
        }
        let call = self.calls.get(&key).ok_or(SipError::UnknownCall(key))?;
        if call.phase != Phase::Ringing {
            return Err(SipError::InvalidState(
                "the INVITE already has a final response",
            ));
        }
        let mut resp = self.make_response(
            &call.invite,
            status,
            reason,
            Some(&call.dialog.id().local_tag),
        );
        if status < 300 {
            // RFC 3261 §12.1.1: dialog-establishing responses copy Record-Route and carry Contact.
            for rr in call.invite.headers.get_all("Record-Route") {
                resp.headers.push("Record-Route", rr);
            }
            resp.headers
                .push("Contact", self.contact(call.dialog.peer().transport));
            if status >= 200 {
                resp.headers.push("Allow", ALLOW);
                resp.headers.push("Supported", "");
            }
        }
        if status == 503 {
            // RFC 3261 §21.5.4: a busy server says when to come back.
            resp.headers
                .push("Retry-After", SHED_RETRY_AFTER_SECS.to_string());
        }
        let sdp = sdp.filter(|s| !s.is_empty());
        if let Some(body) = &sdp {
            resp.set_body("application/sdp", body.clone());
        }
        let bytes = resp.to_bytes();
        let Some(invite_key) = call.invite_key.clone() else {
            return Err(SipError::InvalidState("respond applies to inbound calls"));
        };
        let cseq = call.invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let sent = self
            .server
            .get_mut(&invite_key)
            .is_some_and(|e| e.tx.send_response(now, status, bytes.clone()));
        if !sent {
            return Err(SipError::InvalidState("the INVITE transaction is over"));
        }
        self.drain_server(&invite_key);
        if status >= 300 {
            self.forget_call(key);
        } else if status >= 200
            && let Some(call) = self.calls.get_mut(&key)
        {
            call.phase = Phase::Answered;
            call.last_sdp = sdp;
            call.retransmit_dest = self
                .server
                .get(&invite_key)
                .map_or(call.dialog.peer(), |e| e.dest);
            call.dialog.start_2xx(now, cseq, bytes);
        }
        Ok(())
    }

    pub(super) fn on_invite(&mut self, ctx: &Ctx, req: Request, checked: &Checked) {
        if !validate::accepts_sdp(&req) {
            let rej = Rejection::new(406, None, vec![("Accept", "application/sdp".into())]);
            return self.reply_status(ctx, &req, None, rej);
        }
        if self.call_count() >= self.config.max_calls {
            // Load shedding: only new calls are refused; live ones are always served.
            self.shed_invites += 1;
            debug!(calls = self.call_count(), "call cap reached; answering 503");
            let retry = SHED_RETRY_AFTER_SECS.to_string();
            let rej = Rejection::new(503, None, vec![("Retry-After", retry)]);
            return self.reply_status(ctx, &req, None, rej);
        }
        let local_tag = random_tag(&mut self.rng);
        let dialog = match Dialog::new_uas(&req, &local_tag, ctx.peer, self.config.timers) {
            Ok(d) => d,
            Err(e) => {
                let rej = Rejection::new(400, Some(&format!("Bad Request ({e})")), vec![]);
                return self.reply_status(ctx, &req, None, rej);
            }
        };
        let key = CallKey(self.next_key);
        self.next_key += 1;
        // RFC 3261 §17.2.1: the TU answers 100 Trying at once (we are not sure to answer within 200 ms).
        let trying = self.make_response(&req, 100, None, None);
        self.reply(ctx, &req, Some(key), trying);
        self.dialogs.insert(dialog.id().clone(), key);
        let sdp = (!req.body.is_empty()
            && req
                .headers
                .content_type()
                .is_none_or(|t| t == "application/sdp"))
        .then(|| req.body.clone());
        let event = IncomingCall {
            key,
            call_id: checked.call_id.clone(),
            from_uri: checked.from.uri.as_str().to_owned(),
            from_user: checked.from.uri.user().map(str::to_owned),
            from_display: checked.from.display.clone(),
            to_user: req.uri.user().or(checked.to.uri.user()).map(str::to_owned),
            request_uri: req.uri.as_str().to_owned(),
            sdp,
            peer: ctx.peer,
        };
        debug!(?key, call_id = %checked.call_id, "incoming call");
        self.calls.insert(
            key,
            Call {
                invite: req,
                invite_key: Some(ctx.key.clone()),
                dialog,
                phase: Phase::Ringing,
                last_sdp: None,
                hangup_pending: false,
                retransmit_dest: ctx.dest,
                reinvite: None,
            },
        );
        self.out
            .push_back(Output::Event(SipEvent::IncomingCall(event)));
    }

    /// RFC 3261 §9.2: CANCEL matches the INVITE's server transaction; 200 to the CANCEL, and
    /// 487 to the INVITE when it has no final response yet.
    pub(super) fn on_cancel(&mut self, ctx: &Ctx, req: &Request) {
        let target = TxKey::invite_for_cancel(req)
            .ok()
            .and_then(|k| self.server.get(&k).map(|e| (k.clone(), e.call)));
        let Some((invite_key, call)) = target else {
            return self.reply_status(ctx, req, None, Rejection::new(481, None, vec![]));
        };
        let ringing = call
            .and_then(|k| self.calls.get(&k).map(|c| (k, c)))
            .filter(|(_, c)| c.phase == Phase::Ringing)
            .map(|(k, c)| {
                let tag = c.dialog.id().local_tag.clone();
                let terminated = self.make_response(&c.invite, 487, None, Some(&tag));
                (k, tag, terminated)
            });
        let tag = ringing.as_ref().map(|(_, t, _)| t.as_str());
        let ok = self.make_response(req, 200, None, tag);
        self.reply(ctx, req, None, ok);
        let Some((key, _, terminated)) = ringing else {
            return;
        };
        if let Some(e) = self.server.get_mut(&invite_key) {
            e.tx.send_response(ctx.now, 487, terminated.to_bytes());
        }
        self.drain_server(&invite_key);
        self.forget_call(key);
        self.out
            .push_back(Output::Event(SipEvent::Cancelled { key }));
    }

    /// An ACK that matched no server transaction: the ACK for a 2xx (RFC 3261 §13.3.1.4).
    pub(super) fn on_dialog_ack(&mut self, now: Instant, checked: &Checked) {
        let Some(local_tag) = checked.to.tag() else {
            return;
        };
        let id = DialogId {
            call_id: checked.call_id.clone(),
            local_tag: local_tag.to_owned(),
            remote_tag: checked.from.tag().unwrap_or("").to_owned(),
        };
        let Some(&key) = self.dialogs.get(&id) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !call.dialog.handle_ack(checked.cseq.seq) || call.phase != Phase::Answered {
            return;
        }
        call.phase = Phase::Confirmed;
        call.dialog.confirm();
        let hangup = call.hangup_pending;
        self.out
            .push_back(Output::Event(SipEvent::Confirmed { key }));
        if hangup {
            self.send_bye(now, key, true);
        }
    }

    /// RFC 3261 §15.1.2: a BYE on an early dialog also ends the pending INVITE with 487.
    pub(super) fn terminate_pending_invite(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.phase != Phase::Ringing {
            return;
        }
        let resp = self.make_response(&call.invite, 487, None, Some(&call.dialog.id().local_tag));
        let Some(invite_key) = call.invite_key.clone() else {
            return;
        };
        if let Some(e) = self.server.get_mut(&invite_key) {
            e.tx.send_response(now, 487, resp.to_bytes());
        }
        self.drain_server(&invite_key);
    }
}
