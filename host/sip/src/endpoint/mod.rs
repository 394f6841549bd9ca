//! `Endpoint`: the SIP user agent core the server shell drives, both UAS (inbound calls,
//! RFC 3261 §8.2, §12-§15) and UAC (outbound calls, §8.1, §12.1.2, §13.2, with digest
//! authentication, §22), plus REGISTER handed to the registrar in the call layer (§10.3).
//!
//! Contract (str0m style): after every `handle_*` call or mutator, drain `poll_output` until
//! `None`, then sleep until `poll_timeout` and call `handle_timeout`. The endpoint never reads
//! the clock, never panics on input, and keeps memory bounded: transactions are removed as
//! soon as they terminate (a completed one holds only its last response until Timer J/K/I/D
//! fires); a REGISTER the call layer never answers is dropped after 64*T1.
//!
//! Load shedding refuses new INVITEs only: past `EndpointConfig::max_calls` live calls a new
//! INVITE (ours or a peer's) is refused, a peer's with 503 and Retry-After. Requests in an
//! existing dialog (BYE, ACK, re-INVITE, INFO, UPDATE) and CANCEL are always served, whatever
//! the number of transactions. Server transactions outside a dialog are bounded by a memory
//! backstop (`EndpointConfig::max_transactions`, by default [`MAX_TRANSACTIONS`], far above
//! what load needs): past it, a new out-of-dialog request (INVITE included: every refused
//! INVITE holds its transaction until Timer H) gets a stateless 503 with Retry-After, and any
//! other out-of-dialog answer (481, 501, a CANCEL that matches nothing, ...) is sent without a
//! transaction. So a flood from spoofed sources costs at most the backstop's worth of
//! transactions: beyond it, only requests in a live dialog (at most `max_calls` of them)
//! and CANCELs of a live INVITE transaction create one.
//! Transaction timers live in one ordered index, so `poll_timeout` is O(1) in the number of
//! transactions and `handle_timeout` touches only those due.
//!
//! Every inbound call ends with exactly one terminal event, `Cancelled` or `Ended`, unless the
//! call layer ended it itself before answering (`respond` with 3xx-6xx, or `hangup` before
//! answer): then no event follows. Every outbound call (`invite`) ends with exactly one
//! terminal event: `Failed` while unanswered (also after `cancel`), or `Ended` after `Answered`.
//! The endpoint ACKs every 2xx itself; of forked 2xx it keeps the first and ACKs and BYEs the
//! rest. In-dialog requests of both roles go where the dialog's first INVITE came from or went
//! to (symmetric signalling), addressed to the remote target through the route set.
//!
//! One module per role of the spec, each concept in one home:
//! - here: the `Endpoint` type and its state, the types every role shares, the entry points
//!   (`handle_input`, `handle_timeout`, `handle_transport_error`, `hangup`, `poll_*`), dispatch of
//!   requests (§8.2.1-§8.2.3 checks, dialog matching §12.2.2, load shedding and the memory
//!   backstop) and responses (§17.1.3), and the timer index;
//! - `uas`: inbound INVITE, `respond`, CANCEL and the ACK for our 2xx;
//! - `uac`: `invite`, `cancel`, the INVITE's responses, digest retry and the ACK for a 2xx;
//! - `in_dialog`: BYE, INFO, OPTIONS, re-INVITE and UPDATE in a dialog, and `reinvite`;
//! - `register`: REGISTER handed up, and `respond_request`;
//! - `transactions`: the transaction tables, draining them, and answering through them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use thiserror::Error;
use tracing::debug;

use crate::builder::{random_tag, response_destination, response_to, stamp_via};
use crate::dialog::{Dialog, DialogId, DialogOutput};
use crate::header::{Method, Via};
use crate::message::{Headers, Request, Response, SipMessage, parse, recover_request};
use crate::transaction::{Timers, TxKey};
use crate::transport::{Peer, Transmit, Transport};
use crate::validate::{self, Rejection};

mod in_dialog;
mod register;
mod transactions;
mod uac;
mod uas;

pub use register::{ContactBinding, RegisterRequest, RequestKey};
pub use uac::OutgoingCall;
pub use uas::IncomingCall;

use register::PendingRequest;
use transactions::{ClientEntry, InviteClient, ServerEntry, ServerTx};
use uac::{CancelState, Outgoing};

/// The default `EndpointConfig::max_transactions`, the memory backstop: past this many
/// transactions, new out-of-dialog requests (INVITE, REGISTER, OPTIONS, strays) get a
/// stateless 503 with Retry-After. In-dialog requests and CANCEL never meet it.
pub const MAX_TRANSACTIONS: usize = 262_144;
/// The default `EndpointConfig::max_calls`.
pub const DEFAULT_MAX_CALLS: usize = 20_000;
/// Seconds a shed INVITE is asked to wait (Retry-After).
const SHED_RETRY_AFTER_SECS: u32 = 5;

/// The methods we implement, for Allow (RFC 3261 §20.5).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REGISTER";

/// Header names `OutgoingCall::headers` and `respond_request` may not set: the core writes them.
const CORE_HEADERS: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
];

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
    /// Most calls (inbound and outbound, answered or not) at once; new INVITEs beyond it are
    /// refused (a peer's with 503 and Retry-After).
    pub max_calls: usize,
    /// The memory backstop (normally [`MAX_TRANSACTIONS`]): past this many transactions, new
    /// out-of-dialog requests get a stateless 503 with Retry-After and other out-of-dialog
    /// answers are sent without a transaction. In-dialog requests and CANCEL never meet it.
    pub max_transactions: usize,
}

/// Identifies one call (one INVITE dialog, inbound or outbound) between the endpoint and the
/// call layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

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
    /// An outbound call got a provisional response (180, 183, ...; not 100).
    Progress {
        /// The call.
        key: CallKey,
        /// The status.
        status: u16,
        /// The first SDP any provisional of this call carried (early media); later ones pass `None`.
        sdp: Option<Vec<u8>>,
    },
    /// An outbound call was answered (2xx); the endpoint already sent the ACK.
    Answered {
        /// The call.
        key: CallKey,
        /// The SDP answer.
        sdp: Option<Vec<u8>>,
    },
    /// An unanswered outbound call is over. Terminal.
    Failed {
        /// The call.
        key: CallKey,
        /// Its final 3xx-6xx status (after at most one digest retry), 408 when nothing answered
        /// (Timer B), 503 on a transport error, 487 when our `cancel` took effect (also when a
        /// 2xx raced the CANCEL: the endpoint ACKed and BYEd it).
        status: u16,
    },
    /// Our re-INVITE (`reinvite`) got its final response; a 2xx was ACKed by the endpoint.
    ReinviteDone {
        /// The call.
        key: CallKey,
        /// The final status (408 on timeout; 491 means try again later).
        status: u16,
        /// The SDP answer of a 2xx.
        sdp: Option<Vec<u8>>,
    },
    /// The peer re-INVITEd (or sent UPDATE with SDP); the endpoint already answered 200 with
    /// our last SDP. The call layer updates the media address and direction.
    RemoteReinvite {
        /// The call.
        key: CallKey,
        /// The peer's new offer, when the request carried one.
        sdp: Option<Vec<u8>>,
    },
    /// A REGISTER for the registrar; answer it with `respond_request`.
    Register(RegisterRequest),
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
    /// The endpoint does not know the request (never existed, answered, or given up).
    #[error("no such request {0:?}")]
    UnknownRequest(RequestKey),
    /// An argument (URI, header) is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The call or transaction table is full.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
}

/// A key of `Endpoint::timers`: the deadline and a sequence number that makes it unique.
type TimerSlot = (Instant, u64);

/// Clears a transaction's armed timer when it is the one that fired: a timer re-armed since
/// holds a newer slot, and the old one is stale.
fn take_slot(timer: &mut Option<TimerSlot>, fired: TimerSlot) -> bool {
    if *timer == Some(fired) {
        *timer = None;
        true
    } else {
        false
    }
}

/// The transaction a timer belongs to.
enum TimerRef {
    Server(TxKey),
    Client((String, Method)),
    Invite(String),
}

/// Moves a transaction's timer slot to `next` (its `poll_timeout`): the old slot goes, a new
/// one is added; nothing changes when the deadline is the same.
fn reschedule(
    timers: &mut BTreeMap<TimerSlot, TimerRef>,
    seq: &mut u64,
    slot: &mut Option<TimerSlot>,
    next: Option<Instant>,
    target: impl FnOnce() -> TimerRef,
) {
    if slot.map(|(t, _)| t) == next {
        return;
    }
    if let Some(old) = slot.take() {
        timers.remove(&old);
    }
    if let Some(t) = next {
        *seq += 1;
        let key = (t, *seq);
        timers.insert(key, target());
        *slot = Some(key);
    }
}

/// Where a call in `Endpoint::calls` is; outbound calls enter as `Confirmed` (the endpoint
/// sent the ACK) and never pass through the first two.
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
    /// The dialog's first INVITE: the peer's (inbound) or ours (outbound).
    invite: Request,
    /// The inbound INVITE's server transaction; `None` for outbound calls.
    invite_key: Option<TxKey>,
    dialog: Dialog,
    phase: Phase,
    /// The SDP of our last 2xx, offered again on session refresh.
    last_sdp: Option<Vec<u8>>,
    /// `hangup` came while the 2xx waited for its ACK (RFC 3261 §15: BYE only after the ACK).
    hangup_pending: bool,
    /// Where the pending 2xx is retransmitted to.
    retransmit_dest: Peer,
    /// The SDP of our re-INVITE in progress (RFC 3261 §14.1: one INVITE at a time).
    reinvite: Option<Option<Vec<u8>>>,
}

/// The SIP user agent server the shell drives.
pub struct Endpoint {
    config: EndpointConfig,
    rng: StdRng,
    server: HashMap<TxKey, ServerEntry>,
    client: HashMap<(String, Method), ClientEntry>,
    /// Client INVITE transactions by branch.
    client_invites: HashMap<String, InviteClient>,
    calls: HashMap<CallKey, Call>,
    /// Outbound calls without a final response.
    outgoing: HashMap<CallKey, Outgoing>,
    requests: HashMap<RequestKey, PendingRequest>,
    dialogs: HashMap<DialogId, CallKey>,
    out: VecDeque<Output>,
    next_key: u64,
    /// Every transaction deadline, earliest first; a slot whose transaction is gone or has
    /// moved on is skipped when it comes up.
    timers: BTreeMap<TimerSlot, TimerRef>,
    timer_seq: u64,
    /// New INVITEs refused for the call cap or the memory backstop since `take_shed_invites`.
    shed_invites: u64,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("calls", &self.call_count())
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
            client_invites: HashMap::new(),
            calls: HashMap::new(),
            outgoing: HashMap::new(),
            requests: HashMap::new(),
            dialogs: HashMap::new(),
            out: VecDeque::new(),
            next_key: 1,
            timers: BTreeMap::new(),
            timer_seq: 0,
            shed_invites: 0,
        }
    }

    /// How many new INVITEs were refused for the call cap or the memory backstop since the
    /// last call (for metrics).
    pub fn take_shed_invites(&mut self) -> u64 {
        std::mem::take(&mut self.shed_invites)
    }

    /// Whether a call (answered or not) uses the transport path `peer` (for TCP, that
    /// connection), so the shell does not close it as idle.
    pub fn has_calls_on(&self, peer: Peer) -> bool {
        self.calls
            .values()
            .any(|c| same_path(c.dialog.peer(), peer))
            || self.outgoing.values().any(|o| same_path(o.dest, peer))
    }

    /// Live calls, inbound and outbound, answered or not (for diagnostics and leak tests).
    pub fn call_count(&self) -> usize {
        self.calls.len() + self.outgoing.len()
    }

    /// Live transactions, server and client.
    pub fn transaction_count(&self) -> usize {
        self.server.len() + self.client.len() + self.client_invites.len()
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
        // Take every due slot first: timers set while handling these wait for the next call.
        let mut fired = Vec::new();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            fired.push(entry.remove_entry());
        }
        for (slot, target) in fired {
            match target {
                TimerRef::Server(key) => {
                    if let Some(e) = self.server.get_mut(&key)
                        && take_slot(&mut e.timer, slot)
                    {
                        e.tx.handle_timeout(now);
                        self.drain_server(&key);
                    }
                }
                TimerRef::Client(key) => {
                    if let Some(e) = self.client.get_mut(&key)
                        && take_slot(&mut e.timer, slot)
                    {
                        e.tx.handle_timeout(now);
                        self.drain_client(&key);
                    }
                }
                TimerRef::Invite(branch) => {
                    if let Some(e) = self.client_invites.get_mut(&branch)
                        && take_slot(&mut e.timer, slot)
                    {
                        e.tx.handle_timeout(now);
                        self.drain_client_invite(now, &branch);
                    }
                }
            }
        }
        let given_up: Vec<CallKey> = self
            .outgoing
            .iter()
            .filter(|(_, o)| matches!(o.cancel, CancelState::Sent { give_up } if give_up <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in given_up {
            // RFC 3261 §9.1: no final response 64*T1 after our CANCEL: give the INVITE up.
            debug!(?key, "no final response after CANCEL; giving up");
            self.fail_outgoing(key, 487);
        }
        let stale: Vec<RequestKey> = self
            .requests
            .iter()
            .filter(|(_, r)| r.give_up <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            if let Some(r) = self.requests.remove(&key) {
                debug!(
                    ?key,
                    "the call layer never answered a REGISTER; dropping it"
                );
                self.remove_server(&r.tx_key);
            }
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
            .filter(|(_, c)| same_path(c.dialog.peer(), peer))
            .map(|(k, _)| *k)
            .collect();
        for key in lost {
            self.end_call(key, EndCause::TransportError);
        }
        let unanswered: Vec<CallKey> = self
            .outgoing
            .iter()
            .filter(|(_, o)| same_path(o.dest, peer))
            .map(|(k, _)| *k)
            .collect();
        for key in unanswered {
            self.fail_outgoing(key, 503);
        }
    }

    /// Ends the call from our side: BYE once answered (after the ACK, RFC 3261 §15), otherwise
    /// 480 to an inbound INVITE (which ends it without an event) or CANCEL for an outbound one
    /// (see `cancel`).
    pub fn hangup(&mut self, now: Instant, key: CallKey) -> Result<(), SipError> {
        if self.outgoing.contains_key(&key) {
            return self.cancel(now, key);
        }
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
        let t = self.timers.first_key_value().map(|((t, _), _)| *t);
        let d = self.calls.values().filter_map(|c| c.dialog.poll_timeout());
        let o = self.outgoing.values().filter_map(|o| match o.cancel {
            CancelState::Sent { give_up } => Some(give_up),
            _ => None,
        });
        let r = self.requests.values().map(|r| r.give_up);
        t.into_iter().chain(d).chain(o).chain(r).min()
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
            | Method::Update
            | Method::Register => {}
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
        // RFC 3261 §8.2.2.2 and §12.2.2: a To tag means an existing dialog, or 481 (REGISTER
        // never belongs to a dialog).
        let call = match checked.to.tag().filter(|_| req.method != Method::Register) {
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
        if call.is_none() && self.over_backstop() {
            // Memory backstop: a new out-of-dialog request (a new call too) is shed without a
            // transaction, so a flood from spoofed sources cannot grow the table.
            if req.method == Method::Invite {
                self.shed_invites += 1;
            }
            debug!(
                transactions = self.transaction_count(),
                method = %req.method,
                "transaction backstop reached; answering 503 statelessly"
            );
            let retry = SHED_RETRY_AFTER_SECS.to_string();
            let rej = Rejection::new(503, None, vec![("Retry-After", retry)]);
            self.reject_stateless(&req, &peer, rej);
            return;
        }
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
                Method::Register => self.on_register(&ctx, req, &checked),
                // BYE, INFO, UPDATE outside a dialog.
                _ => self.reply_status(&ctx, &req, None, Rejection::new(481, None, vec![])),
            },
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
        if cseq.method == Method::Invite {
            let branch = branch.to_owned();
            let Some(e) = self.client_invites.get_mut(&branch) else {
                debug!(
                    status = resp.status,
                    "dropping INVITE response that matches no transaction"
                );
                return;
            };
            e.tx.handle_response(now, resp);
            self.drain_client_invite(now, &branch);
            return;
        }
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

/// Our Via for a request over `transport`, asking for rport (RFC 3581).
fn our_via(config: &EndpointConfig, transport: Transport, branch: &str) -> Via {
    let local = local_addr(config, transport);
    let mut via = Via::new(
        transport.as_str(),
        &host_of(local.ip()),
        Some(local.port()),
        branch,
    );
    via.set_param("rport", None);
    via
}

/// Whether two peers name the same transport path (for TCP, the same connection).
fn same_path(a: Peer, b: Peer) -> bool {
    match b.transport {
        Transport::Tcp => a.transport == Transport::Tcp && a.conn == b.conn,
        Transport::Udp => a.transport == Transport::Udp && a.addr == b.addr,
    }
}

/// Extra headers from the call layer: token names the core does not write itself, values
/// without line breaks.
fn check_headers(headers: &[(String, String)]) -> Result<(), SipError> {
    for (name, value) in headers {
        let token = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                    )
            });
        if !token {
            return Err(SipError::InvalidArgument(format!("header name {name:?}")));
        }
        let canonical = crate::message::canonical_name(name).unwrap_or(name);
        if CORE_HEADERS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(canonical))
        {
            return Err(SipError::InvalidArgument(format!(
                "header {name} is written by the endpoint"
            )));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(SipError::InvalidArgument(format!(
                "header {name} has a line break"
            )));
        }
    }
    Ok(())
}

/// The body when it is SDP (Content-Type application/sdp, or none) and not empty.
fn sdp_body(headers: &Headers, body: &[u8]) -> Option<Vec<u8>> {
    (!body.is_empty()
        && headers
            .content_type()
            .is_none_or(|t| t == "application/sdp"))
    .then(|| body.to_vec())
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}
