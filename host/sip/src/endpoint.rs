//! `Endpoint`: the UAS core the server shell drives (RFC 3261 §8.2, §12-§15, §17-§18).
//!
//! Contract (str0m style): after every `handle_*` call or mutator, drain `poll_output` until
//! `None`, then sleep until `poll_timeout` and call `handle_timeout`. The endpoint never reads
//! the clock, never panics on input, and keeps memory bounded: transactions and calls are
//! capped ([`MAX_TRANSACTIONS`], [`MAX_CALLS`]) and removed as soon as they terminate.
//!
//! Every inbound call ends with exactly one terminal event, `Cancelled` or `Ended`, unless the
//! call layer ended it itself before answering (`respond` with 3xx-6xx, or `hangup` before
//! answer): then no event follows.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;
use tracing::{debug, warn};

use crate::builder::{random_branch, random_tag, response_destination, response_to, stamp_via};
use crate::dialog::{Dialog, DialogId, DialogOutput};
use crate::header::{Method, Via};
use crate::message::{Request, Response, SipMessage, parse, recover_request};
use crate::transaction::{
    ClientNonInviteState, ClientNonInviteTx, ServerInviteState, ServerInviteTx,
    ServerNonInviteState, ServerNonInviteTx, Timers, TxKey, TxOutput,
};
use crate::transport::{Peer, Transmit, Transport};
use crate::validate::{self, Checked, Rejection};

/// Most server plus client transactions held at once; past it new requests get a stateless 503.
pub const MAX_TRANSACTIONS: usize = 16_384;
/// Most calls held at once; past it new INVITEs get 503.
pub const MAX_CALLS: usize = 4_096;

/// The methods we implement, for Allow (RFC 3261 §20.5).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// How the endpoint presents itself and times its transactions.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The UDP address we advertise in Via and Contact (the shell binds it).
    pub udp_addr: Option<SocketAddr>,
    /// The TCP address we advertise in Via and Contact.
    pub tcp_addr: Option<SocketAddr>,
    /// Sent as Server in responses and User-Agent in requests.
    pub user_agent: String,
    /// T1, T2, T4.
    pub timers: Timers,
    /// Seeds the RNG for tags and branches, so tests are deterministic.
    pub seed: u64,
}

/// Identifies one inbound call (one INVITE dialog) between the endpoint and the call layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

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

/// Why a call ended on the SIP side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The caller sent BYE (answered 200).
    RemoteBye,
    /// Our BYE got this final response (after `hangup`).
    LocalByeDone {
        /// The BYE's final status.
        status: u16,
    },
    /// Our 2xx was never acknowledged within 64*T1; we sent BYE (RFC 3261 §13.3.1.4).
    AckTimeout,
    /// Our BYE got no response within 64*T1 (Timer F).
    TransactionTimeout,
    /// The shell reported the call's connection lost.
    TransportError,
}

/// What the call layer hears about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipEvent {
    /// A new call; answer with `respond`.
    IncomingCall(IncomingCall),
    /// The ACK for our 2xx arrived: the call is confirmed.
    Confirmed {
        /// The call.
        key: CallKey,
    },
    /// CANCEL arrived before our final response; the endpoint already answered 200 to the
    /// CANCEL and 487 to the INVITE. Terminal.
    Cancelled {
        /// The call.
        key: CallKey,
    },
    /// The call is over on the SIP side. Terminal.
    Ended {
        /// The call.
        key: CallKey,
        /// Why.
        cause: EndCause,
    },
    /// A digit arrived in SIP INFO (application/dtmf-relay or application/dtmf).
    Dtmf {
        /// The call.
        key: CallKey,
        /// One of `0-9`, `*`, `#`, `A-D`.
        digit: String,
    },
}

/// Everything the shell must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes to send.
    Transmit(Transmit),
    /// An event for the call layer.
    Event(SipEvent),
}

/// Why a call-layer command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipError {
    /// The endpoint does not know the call (never existed, or over).
    #[error("no such call {0:?}")]
    UnknownCall(CallKey),
    /// The status is not one `respond` can send (100 is sent by the endpoint).
    #[error("status {0} cannot be sent")]
    InvalidStatus(u16),
    /// The call is past the point where this command applies.
    #[error("{0}")]
    InvalidState(&'static str),
}

enum ServerTx {
    Invite(ServerInviteTx),
    NonInvite(ServerNonInviteTx),
}

impl ServerTx {
    fn new(method: &Method, reliable: bool, timers: Timers) -> ServerTx {
        if *method == Method::Invite {
            ServerTx::Invite(ServerInviteTx::new(reliable, timers))
        } else {
            ServerTx::NonInvite(ServerNonInviteTx::new(reliable, timers))
        }
    }

    fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        match self {
            ServerTx::Invite(t) => t.send_response(now, status, bytes).is_ok(),
            ServerTx::NonInvite(t) => t.send_response(now, status, bytes).is_ok(),
        }
    }

    fn handle_retransmission(&mut self) {
        match self {
            ServerTx::Invite(t) => t.handle_retransmission(),
            ServerTx::NonInvite(t) => t.handle_retransmission(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
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

struct ServerEntry {
    tx: ServerTx,
    dest: Peer,
    call: Option<CallKey>,
}

struct ClientEntry {
    tx: ClientNonInviteTx,
    dest: Peer,
    call: Option<CallKey>,
    /// Whether the result ends the call with `LocalByeDone`/`TransactionTimeout`.
    report: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No final response yet.
    Ringing,
    /// 2xx sent, waiting for the ACK.
    Answered,
    /// ACK received.
    Confirmed,
    /// Our BYE is in flight.
    Ending,
}

struct Call {
    invite: Request,
    invite_key: TxKey,
    dialog: Dialog,
    phase: Phase,
    /// The SDP of our last 2xx, offered again on session refresh.
    last_sdp: Option<Vec<u8>>,
    /// `hangup` came while the 2xx waited for its ACK (RFC 3261 §15: BYE only after the ACK).
    hangup_pending: bool,
    /// Where the pending 2xx is retransmitted to.
    retransmit_dest: Peer,
}

/// The SIP user agent server the shell drives.
pub struct Endpoint {
    config: EndpointConfig,
    rng: StdRng,
    server: HashMap<TxKey, ServerEntry>,
    client: HashMap<(String, Method), ClientEntry>,
    calls: HashMap<CallKey, Call>,
    dialogs: HashMap<DialogId, CallKey>,
    out: VecDeque<Output>,
    next_key: u64,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("calls", &self.calls.len())
            .field("server_transactions", &self.server.len())
            .field("client_transactions", &self.client.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with no calls.
    pub fn new(config: EndpointConfig) -> Endpoint {
        Endpoint {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            server: HashMap::new(),
            client: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            out: VecDeque::new(),
            next_key: 1,
        }
    }

    /// Live calls (for diagnostics and leak tests).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Live transactions, server and client.
    pub fn transaction_count(&self) -> usize {
        self.server.len() + self.client.len()
    }

    /// Feeds one received message (a UDP datagram or a framed TCP message).
    pub fn handle_input(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        if bytes
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            return; // keep-alive (RFC 5626 §4.4.1)
        }
        match parse(bytes) {
            Ok(SipMessage::Request(req)) => self.on_request(now, peer, req),
            Ok(SipMessage::Response(resp)) => self.on_response(now, resp),
            Err(err) => self.on_malformed(peer, bytes, &err),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        let servers: Vec<TxKey> = self
            .server
            .iter()
            .filter(|(_, e)| due(e.tx.poll_timeout()))
            .map(|(k, _)| k.clone())
            .collect();
        for key in servers {
            if let Some(e) = self.server.get_mut(&key) {
                e.tx.handle_timeout(now);
            }
            self.drain_server(&key);
        }
        let clients: Vec<(String, Method)> = self
            .client
            .iter()
            .filter(|(_, e)| due(e.tx.poll_timeout()))
            .map(|(k, _)| k.clone())
            .collect();
        for key in clients {
            if let Some(e) = self.client.get_mut(&key) {
                e.tx.handle_timeout(now);
            }
            self.drain_client(&key);
        }
        let calls: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, c)| due(c.dialog.poll_timeout()))
            .map(|(k, _)| *k)
            .collect();
        for key in calls {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            match call.dialog.handle_timeout(now) {
                Some(DialogOutput::Retransmit(bytes)) => {
                    let peer = call.retransmit_dest;
                    self.transmit(peer, bytes);
                }
                Some(DialogOutput::AckTimeout) => {
                    // RFC 3261 §13.3.1.4: confirmed but never ACKed: end the session with BYE.
                    debug!(?key, "no ACK for our 2xx; sending BYE");
                    self.send_bye(now, key, false);
                    self.end_call(key, EndCause::AckTimeout);
                }
                None => {}
            }
        }
    }

    /// The shell lost the transport to `peer` (for TCP, its connection): calls that use it end
    /// with `TransportError`.
    pub fn handle_transport_error(&mut self, peer: Peer) {
        let lost: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                let p = c.dialog.peer();
                match peer.transport {
                    Transport::Tcp => p.transport == Transport::Tcp && p.conn == peer.conn,
                    Transport::Udp => p.transport == Transport::Udp && p.addr == peer.addr,
                }
            })
            .map(|(k, _)| *k)
            .collect();
        for key in lost {
            self.end_call(key, EndCause::TransportError);
        }
    }

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
        let sdp = sdp.filter(|s| !s.is_empty());
        if let Some(body) = &sdp {
            resp.set_body("application/sdp", body.clone());
        }
        let bytes = resp.to_bytes();
        let invite_key = call.invite_key.clone();
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

    /// Ends the call from our side: BYE once answered (after the ACK, RFC 3261 §15), otherwise
    /// 480 to the INVITE (which ends it without an event).
    pub fn hangup(&mut self, now: Instant, key: CallKey) -> Result<(), SipError> {
        let call = self.calls.get_mut(&key).ok_or(SipError::UnknownCall(key))?;
        match call.phase {
            Phase::Ringing => self.respond(now, key, 480, None, None),
            Phase::Answered => {
                call.hangup_pending = true;
                Ok(())
            }
            Phase::Confirmed => {
                self.send_bye(now, key, true);
                Ok(())
            }
            Phase::Ending => Ok(()),
        }
    }

    /// The next transmission or event.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = self.server.values().filter_map(|e| e.tx.poll_timeout());
        let c = self.client.values().filter_map(|e| e.tx.poll_timeout());
        let d = self.calls.values().filter_map(|c| c.dialog.poll_timeout());
        s.chain(c).chain(d).min()
    }

    fn on_malformed(&mut self, peer: Peer, bytes: &[u8], err: &crate::message::ParseError) {
        let Some(mut req) = recover_request(bytes) else {
            debug!(%err, from = %peer.addr, "dropping unparseable message");
            return;
        };
        if req.method == Method::Ack || !req.headers.contains("Via") {
            debug!(%err, from = %peer.addr, "dropping malformed request that cannot be answered");
            return;
        }
        debug!(%err, from = %peer.addr, "answering malformed request");
        stamp_via(&mut req, peer.addr);
        let tag = random_tag(&mut self.rng);
        let resp = self.make_response(&req, err.status(), Some(err.reason()), Some(&tag));
        let dest = response_destination(&req, &peer);
        self.transmit(dest, resp.to_bytes());
    }

    fn on_request(&mut self, now: Instant, peer: Peer, mut req: Request) {
        stamp_via(&mut req, peer.addr);
        let checked = match validate::check_request(&req) {
            Ok(c) => c,
            Err(rej) => {
                if rej.routable && req.method != Method::Ack {
                    debug!(reason = %rej.reason, "rejecting invalid request");
                    self.reject_stateless(&req, &peer, rej);
                }
                return;
            }
        };
        let Ok(key) = TxKey::for_request(&req) else {
            return;
        };
        if req.method == Method::Ack {
            let absorbed = match self.server.get_mut(&key) {
                Some(ServerEntry {
                    tx: ServerTx::Invite(tx),
                    ..
                }) => tx.handle_ack(now),
                _ => false,
            };
            if absorbed {
                self.drain_server(&key);
            } else {
                self.on_dialog_ack(now, &checked);
            }
            return;
        }
        if let Some(e) = self.server.get_mut(&key) {
            e.tx.handle_retransmission();
            self.drain_server(&key);
            return;
        }
        if self.transaction_count() >= MAX_TRANSACTIONS {
            warn!("transaction table full; answering 503");
            let rej = Rejection::new(503, None, vec![("Retry-After", "5".into())]);
            self.reject_stateless(&req, &peer, rej);
            return;
        }
        let dest = response_destination(&req, &peer);
        let ctx = Ctx {
            now,
            peer,
            key,
            dest,
        };
        // RFC 3261 §8.2.1: method inspection.
        match req.method {
            Method::Invite
            | Method::Cancel
            | Method::Bye
            | Method::Options
            | Method::Info
            | Method::Update => {}
            Method::Other(_) => {
                return self.reply_status(&ctx, &req, None, Rejection::new(501, None, vec![]));
            }
            _ => {
                let rej = Rejection::new(405, None, vec![("Allow", ALLOW.into())]);
                return self.reply_status(&ctx, &req, None, rej);
            }
        }
        // RFC 3261 §8.2.2.1: Request-URI scheme.
        if !validate::scheme_supported(&req) {
            return self.reply_status(&ctx, &req, None, Rejection::new(416, None, vec![]));
        }
        if req.method == Method::Cancel {
            return self.on_cancel(&ctx, &req);
        }
        // RFC 3261 §8.2.2.2 and §12.2.2: a To tag means an existing dialog, or 481.
        let call = match checked.to.tag() {
            Some(local_tag) => {
                let id = DialogId {
                    call_id: checked.call_id.clone(),
                    local_tag: local_tag.to_owned(),
                    remote_tag: checked.from.tag().unwrap_or("").to_owned(),
                };
                match self.dialogs.get(&id) {
                    Some(k) => Some(*k),
                    None => {
                        return self.reply_status(
                            &ctx,
                            &req,
                            None,
                            Rejection::new(481, None, vec![]),
                        );
                    }
                }
            }
            None => None,
        };
        // RFC 3261 §8.2.2.3: Require.
        let unsupported = validate::unsupported_requires(&req);
        if !unsupported.is_empty() {
            let rej = Rejection::new(420, None, vec![("Unsupported", unsupported.join(", "))]);
            return self.reply_status(&ctx, &req, call, rej);
        }
        // RFC 3261 §8.2.3: content processing.
        if let Some(rej) = validate::unsupported_content(&req) {
            return self.reply_status(&ctx, &req, call, rej);
        }
        match call {
            Some(call) => self.on_in_dialog(&ctx, req, &checked, call),
            None => match req.method {
                Method::Invite => self.on_invite(&ctx, req, &checked),
                Method::Options => {
                    let resp = self.options_response(&req, peer.transport, None);
                    self.reply(&ctx, &req, None, resp);
                }
                // BYE, INFO, UPDATE outside a dialog.
                _ => self.reply_status(&ctx, &req, None, Rejection::new(481, None, vec![])),
            },
        }
    }

    fn on_invite(&mut self, ctx: &Ctx, req: Request, checked: &Checked) {
        if !validate::accepts_sdp(&req) {
            let rej = Rejection::new(406, None, vec![("Accept", "application/sdp".into())]);
            return self.reply_status(ctx, &req, None, rej);
        }
        if self.calls.len() >= MAX_CALLS {
            warn!("call table full; answering 503");
            let rej = Rejection::new(503, None, vec![("Retry-After", "5".into())]);
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
                invite_key: ctx.key.clone(),
                dialog,
                phase: Phase::Ringing,
                last_sdp: None,
                hangup_pending: false,
                retransmit_dest: ctx.dest,
            },
        );
        self.out
            .push_back(Output::Event(SipEvent::IncomingCall(event)));
    }

    /// RFC 3261 §9.2: CANCEL matches the INVITE's server transaction; 200 to the CANCEL, and
    /// 487 to the INVITE when it has no final response yet.
    fn on_cancel(&mut self, ctx: &Ctx, req: &Request) {
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
    fn on_dialog_ack(&mut self, now: Instant, checked: &Checked) {
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

    fn on_in_dialog(&mut self, ctx: &Ctx, req: Request, checked: &Checked, key: CallKey) {
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
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let Some((via, cseq)) = validate::check_response(&resp.headers) else {
            debug!("dropping response without a usable Via or CSeq");
            return;
        };
        let Some(branch) = via.branch() else {
            return;
        };
        // RFC 3261 §17.1.3: branch plus CSeq method.
        let key = (branch.to_owned(), cseq.method);
        let Some(e) = self.client.get_mut(&key) else {
            debug!(
                status = resp.status,
                "dropping response that matches no transaction"
            );
            return;
        };
        e.tx.handle_response(now, resp);
        self.drain_client(&key);
    }

    /// Sends BYE in the call's dialog (RFC 3261 §15.1.1) through a client transaction.
    fn send_bye(&mut self, now: Instant, key: CallKey, report: bool) {
        let branch = random_branch(&mut self.rng);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let dest = call.dialog.peer();
        let local = local_addr(&self.config, dest.transport);
        let mut via = Via::new(
            dest.transport.as_str(),
            &host_of(local.ip()),
            Some(local.port()),
            &branch,
        );
        via.set_param("rport", None);
        let mut bye = call.dialog.build_request(Method::Bye, &via);
        if !self.config.user_agent.is_empty() {
            bye.headers
                .push("User-Agent", self.config.user_agent.as_str());
        }
        call.phase = Phase::Ending;
        call.dialog.stop_2xx();
        let id = call.dialog.id().clone();
        self.dialogs.remove(&id);
        let tx = ClientNonInviteTx::new(
            now,
            bye.to_bytes(),
            dest.transport.is_reliable(),
            self.config.timers,
        );
        let ckey = (branch, Method::Bye);
        self.client.insert(
            ckey.clone(),
            ClientEntry {
                tx,
                dest,
                call: Some(key),
                report,
            },
        );
        self.drain_client(&ckey);
    }

    /// RFC 3261 §15.1.2: a BYE on an early dialog also ends the pending INVITE with 487.
    fn terminate_pending_invite(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.phase != Phase::Ringing {
            return;
        }
        let resp = self.make_response(&call.invite, 487, None, Some(&call.dialog.id().local_tag));
        let invite_key = call.invite_key.clone();
        if let Some(e) = self.server.get_mut(&invite_key) {
            e.tx.send_response(now, 487, resp.to_bytes());
        }
        self.drain_server(&invite_key);
    }

    /// Removes a call and reports its end.
    fn end_call(&mut self, key: CallKey, cause: EndCause) {
        if self.forget_call(key) {
            self.out
                .push_back(Output::Event(SipEvent::Ended { key, cause }));
        }
    }

    /// Removes a call without an event; returns whether it existed.
    fn forget_call(&mut self, key: CallKey) -> bool {
        match self.calls.remove(&key) {
            Some(call) => {
                self.dialogs.remove(call.dialog.id());
                true
            }
            None => false,
        }
    }

    fn drain_server(&mut self, key: &TxKey) {
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
            self.server.remove(key);
        }
    }

    fn drain_client(&mut self, key: &(String, Method)) {
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
            self.client.remove(key);
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
    fn reply(&mut self, ctx: &Ctx, req: &Request, call: Option<CallKey>, resp: Response) {
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
            },
        );
        self.drain_server(&ctx.key);
    }

    /// Answers `req` with an error status through a new server transaction.
    fn reply_status(&mut self, ctx: &Ctx, req: &Request, call: Option<CallKey>, rej: Rejection) {
        let tag = random_tag(&mut self.rng);
        let mut resp = self.make_response(req, rej.status, Some(&rej.reason), Some(&tag));
        for (name, value) in rej.headers {
            resp.headers.push(name, value);
        }
        self.reply(ctx, req, call, resp);
    }

    /// Answers without a transaction (the request is invalid, or we are overloaded).
    fn reject_stateless(&mut self, req: &Request, peer: &Peer, rej: Rejection) {
        let tag = random_tag(&mut self.rng);
        let mut resp = self.make_response(req, rej.status, Some(&rej.reason), Some(&tag));
        for (name, value) in rej.headers {
            resp.headers.push(name, value);
        }
        let dest = response_destination(req, peer);
        self.transmit(dest, resp.to_bytes());
    }

    fn options_response(
        &mut self,
        req: &Request,
        transport: Transport,
        tag: Option<&str>,
    ) -> Response {
        let tag = tag.map_or_else(|| random_tag(&mut self.rng), str::to_owned);
        let mut resp = self.make_response(req, 200, None, Some(&tag));
        resp.headers.push("Contact", self.contact(transport));
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Accept", "application/sdp");
        resp.headers.push("Supported", "");
        resp
    }

    fn make_response(
        &self,
        req: &Request,
        status: u16,
        reason: Option<&str>,
        tag: Option<&str>,
    ) -> Response {
        let mut resp = response_to(req, status, reason, tag);
        if !self.config.user_agent.is_empty() {
            resp.headers.push("Server", self.config.user_agent.as_str());
        }
        resp
    }

    /// Our Contact for a transport: `<sip:pbx@HOST:PORT>` (with `;transport=tcp` for TCP).
    fn contact(&self, transport: Transport) -> String {
        let addr = local_addr(&self.config, transport);
        match transport {
            Transport::Udp => format!("<sip:pbx@{addr}>"),
            Transport::Tcp => format!("<sip:pbx@{addr};transport=tcp>"),
        }
    }

    fn transmit(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.out
            .push_back(Output::Transmit(Transmit { peer, bytes }));
    }
}

/// One request's routing facts, passed to the handlers.
struct Ctx {
    now: Instant,
    peer: Peer,
    key: TxKey,
    dest: Peer,
}

/// The configured address of a transport, else the other one, else loopback.
fn local_addr(config: &EndpointConfig, transport: Transport) -> SocketAddr {
    let (first, second) = match transport {
        Transport::Udp => (config.udp_addr, config.tcp_addr),
        Transport::Tcp => (config.tcp_addr, config.udp_addr),
    };
    first
        .or(second)
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060))
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
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
