//! The endpoint's transactions (RFC 3261 §17): its three tables (server, client non-INVITE,
//! client INVITE), how an entry is started, drained and removed, and answering a request
//! through a server transaction or, past the memory backstop, without one.
//!
//! Invariants: a transaction leaves its table as soon as it terminates, and its timer slot
//! leaves `Endpoint::timers` with it; a live one holds at most one slot, for its next deadline.
//! Draining an entry routes its outputs: transmissions to its peer, responses and timeouts to
//! the UAS, UAC or in-dialog code it serves. Past `EndpointConfig::max_transactions`, an error
//! answer outside a dialog is sent statelessly, so the tables cannot grow under a flood.

use std::collections::HashMap;
use std::time::Instant;

use tracing::debug;

use super::{CallKey, Ctx, EndCause, Endpoint, Output, TimerRef, TimerSlot, reschedule};
use crate::builder::{random_tag, response_destination};
use crate::header::Method;
use crate::message::{Request, Response};
use crate::transaction::{
    ClientInviteState, ClientInviteTx, ClientNonInviteState, ClientNonInviteTx, ServerInviteState,
    ServerInviteTx, ServerNonInviteState, ServerNonInviteTx, Timers, TxKey, TxOutput,
};
use crate::transport::{Peer, Transmit};
use crate::validate::Rejection;

pub(super) enum ServerTx {
    Invite(ServerInviteTx),
    NonInvite(ServerNonInviteTx),
}

impl ServerTx {
    pub(super) fn new(method: &Method, reliable: bool, timers: Timers) -> ServerTx {
        if *method == Method::Invite {
            ServerTx::Invite(ServerInviteTx::new(reliable, timers))
        } else {
            ServerTx::NonInvite(ServerNonInviteTx::new(reliable, timers))
        }
    }

    pub(super) fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        match self {
            ServerTx::Invite(t) => t.send_response(now, status, bytes).is_ok(),
            ServerTx::NonInvite(t) => t.send_response(now, status, bytes).is_ok(),
        }
    }

    pub(super) fn handle_retransmission(&mut self) {
        match self {
            ServerTx::Invite(t) => t.handle_retransmission(),
            ServerTx::NonInvite(t) => t.handle_retransmission(),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match self {
            ServerTx::Invite(t) => t.handle_timeout(now),
            ServerTx::NonInvite(t) => t.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ServerTx::Invite(t) => t.poll_timeout(),
            ServerTx::NonInvite(t) => t.poll_timeout(),
        }
    }

    fn poll_output(&mut self) -> Option<TxOutput> {
        match self {
            ServerTx::Invite(t) => t.poll_output(),
            ServerTx::NonInvite(t) => t.poll_output(),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            ServerTx::Invite(t) => t.state() == ServerInviteState::Terminated,
            ServerTx::NonInvite(t) => t.state() == ServerNonInviteState::Terminated,
        }
    }
}

pub(super) struct ServerEntry {
    pub(super) tx: ServerTx,
    pub(super) dest: Peer,
    pub(super) call: Option<CallKey>,
    /// Its slot in `Endpoint::timers`, if it waits for a timer.
    pub(super) timer: Option<TimerSlot>,
}

pub(super) struct ClientEntry {
    pub(super) tx: ClientNonInviteTx,
    pub(super) dest: Peer,
    pub(super) call: Option<CallKey>,
    /// Whether the result ends the call with `LocalByeDone`/`TransactionTimeout`.
    pub(super) report: bool,
    pub(super) timer: Option<TimerSlot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InvitePurpose {
    /// The INVITE that sets up an outbound call.
    Initial,
    /// Our re-INVITE in an established dialog.
    Reinvite,
}

/// A client INVITE transaction and what the UAC core needs to ACK its 2xx responses.
pub(super) struct InviteClient {
    pub(super) tx: ClientInviteTx,
    pub(super) invite: Request,
    pub(super) dest: Peer,
    pub(super) call: CallKey,
    pub(super) purpose: InvitePurpose,
    /// The ACK sent for each 2xx, by To tag, resent when that 2xx is retransmitted (§13.2.2.4).
    pub(super) acks: HashMap<String, Vec<u8>>,
    pub(super) timer: Option<TimerSlot>,
}

impl Endpoint {
    /// Starts a client INVITE transaction (initial or re-INVITE) and sends the request.
    pub(super) fn start_invite(
        &mut self,
        now: Instant,
        key: CallKey,
        branch: String,
        req: Request,
        dest: Peer,
        purpose: InvitePurpose,
    ) {
        let tx = ClientInviteTx::new(
            now,
            req.clone(),
            dest.transport.is_reliable(),
            self.config.timers,
        );
        self.client_invites.insert(
            branch.clone(),
            InviteClient {
                tx,
                invite: req,
                dest,
                call: key,
                purpose,
                acks: HashMap::new(),
                timer: None,
            },
        );
        self.drain_client_invite(now, &branch);
    }

    pub(super) fn drain_client_invite(&mut self, now: Instant, branch: &str) {
        let Some(e) = self.client_invites.get_mut(branch) else {
            return;
        };
        let outputs: Vec<TxOutput> = std::iter::from_fn(|| e.tx.poll_output()).collect();
        let (dest, key, purpose) = (e.dest, e.call, e.purpose);
        for o in outputs {
            match (o, purpose) {
                (TxOutput::Transmit(bytes), _) => self.transmit(dest, bytes),
                (TxOutput::Response(r), InvitePurpose::Initial) => {
                    self.on_invite_response(now, branch, key, r);
                }
                (TxOutput::Response(r), InvitePurpose::Reinvite) => {
                    self.on_reinvite_response(branch, key, r);
                }
                (TxOutput::Timeout, InvitePurpose::Initial) => {
                    // RFC 3261 §17.1.1.2: Timer B.
                    if self.outgoing.get(&key).is_some_and(|o| o.branch == branch) {
                        self.fail_outgoing(key, 408);
                    }
                }
                (TxOutput::Timeout, InvitePurpose::Reinvite) => {
                    self.finish_reinvite(key, 408, None)
                }
            }
        }
        let Some(e) = self.client_invites.get_mut(branch) else {
            return;
        };
        if e.tx.state() == ClientInviteState::Terminated {
            self.remove_client_invite(branch);
        } else {
            let next = e.tx.poll_timeout();
            reschedule(
                &mut self.timers,
                &mut self.timer_seq,
                &mut e.timer,
                next,
                || TimerRef::Invite(branch.to_owned()),
            );
        }
    }

    pub(super) fn drain_server(&mut self, key: &TxKey) {
        let Some(e) = self.server.get_mut(key) else {
            return;
        };
        while let Some(o) = e.tx.poll_output() {
            match o {
                TxOutput::Transmit(bytes) => self.out.push_back(Output::Transmit(Transmit {
                    peer: e.dest,
                    bytes,
                })),
                TxOutput::Timeout => {
                    debug!(call = ?e.call, "no ACK for a final response (Timer H)")
                }
                TxOutput::Response(_) => {}
            }
        }
        if e.tx.is_terminated() {
            self.remove_server(key);
        } else {
            let next = e.tx.poll_timeout();
            reschedule(
                &mut self.timers,
                &mut self.timer_seq,
                &mut e.timer,
                next,
                || TimerRef::Server(key.clone()),
            );
        }
    }

    pub(super) fn remove_server(&mut self, key: &TxKey) {
        if let Some(slot) = self.server.remove(key).and_then(|e| e.timer) {
            self.timers.remove(&slot);
        }
    }

    fn remove_client(&mut self, key: &(String, Method)) {
        if let Some(slot) = self.client.remove(key).and_then(|e| e.timer) {
            self.timers.remove(&slot);
        }
    }

    pub(super) fn remove_client_invite(&mut self, branch: &str) {
        if let Some(slot) = self.client_invites.remove(branch).and_then(|e| e.timer) {
            self.timers.remove(&slot);
        }
    }

    /// Starts a client non-INVITE transaction (BYE, CANCEL) for `bytes` and sends it; `call`
    /// and `report` say whose outcome it is and whether the call layer hears it.
    pub(super) fn start_client(
        &mut self,
        now: Instant,
        bytes: Vec<u8>,
        dest: Peer,
        key: (String, Method),
        call: Option<CallKey>,
        report: bool,
    ) {
        let tx =
            ClientNonInviteTx::new(now, bytes, dest.transport.is_reliable(), self.config.timers);
        self.client.insert(
            key.clone(),
            ClientEntry {
                tx,
                dest,
                call,
                report,
                timer: None,
            },
        );
        self.drain_client(&key);
    }

    pub(super) fn drain_client(&mut self, key: &(String, Method)) {
        let Some(e) = self.client.get_mut(key) else {
            return;
        };
        let mut ended = None;
        while let Some(o) = e.tx.poll_output() {
            match o {
                TxOutput::Transmit(bytes) => self.out.push_back(Output::Transmit(Transmit {
                    peer: e.dest,
                    bytes,
                })),
                TxOutput::Response(r) if r.status >= 200 => {
                    ended = Some(EndCause::LocalByeDone { status: r.status });
                }
                TxOutput::Response(_) => {}
                TxOutput::Timeout => ended = Some(EndCause::TransactionTimeout),
            }
        }
        let (call, report) = (e.call, e.report);
        if e.tx.state() == ClientNonInviteState::Terminated {
            self.remove_client(key);
        } else {
            let next = e.tx.poll_timeout();
            reschedule(
                &mut self.timers,
                &mut self.timer_seq,
                &mut e.timer,
                next,
                || TimerRef::Client(key.clone()),
            );
        }
        if let (Some(cause), Some(call)) = (ended, call) {
            if report {
                self.end_call(call, cause);
            } else {
                self.forget_call(call);
            }
        }
    }

    /// Answers `req` through a new server transaction.
    pub(super) fn reply(
        &mut self,
        ctx: &Ctx,
        req: &Request,
        call: Option<CallKey>,
        resp: Response,
    ) {
        let mut tx = ServerTx::new(
            &req.method,
            ctx.peer.transport.is_reliable(),
            self.config.timers,
        );
        tx.send_response(ctx.now, resp.status, resp.to_bytes());
        self.server.insert(
            ctx.key.clone(),
            ServerEntry {
                tx,
                dest: ctx.dest,
                call,
                timer: None,
            },
        );
        self.drain_server(&ctx.key);
    }

    /// Whether the transaction table is at the memory backstop.
    pub(super) fn over_backstop(&self) -> bool {
        self.transaction_count() >= self.config.max_transactions
    }

    /// Answers `req` with an error status through a new server transaction, or, outside a
    /// dialog past the memory backstop, without one (a retransmission is answered again).
    pub(super) fn reply_status(
        &mut self,
        ctx: &Ctx,
        req: &Request,
        call: Option<CallKey>,
        rej: Rejection,
    ) {
        if call.is_none() && self.over_backstop() {
            return self.reject_stateless(req, &ctx.peer, rej);
        }
        let tag = random_tag(&mut self.rng);
        let mut resp = self.make_response(req, rej.status, Some(&rej.reason), Some(&tag));
        for (name, value) in rej.headers {
            resp.headers.push(name, value);
        }
        self.reply(ctx, req, call, resp);
    }

    /// Answers without a transaction (the request is invalid, or we are overloaded).
    pub(super) fn reject_stateless(&mut self, req: &Request, peer: &Peer, rej: Rejection) {
        let tag = random_tag(&mut self.rng);
        let mut resp = self.make_response(req, rej.status, Some(&rej.reason), Some(&tag));
        for (name, value) in rej.headers {
            resp.headers.push(name, value);
        }
        let dest = response_destination(req, peer);
        self.transmit(dest, resp.to_bytes());
    }
}
