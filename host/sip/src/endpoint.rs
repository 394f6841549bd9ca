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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;
use tracing::debug;

use crate::builder::{
    cancel_for, random_branch, random_call_id, random_tag, response_destination, response_to,
    stamp_via,
};
use crate::dialog::{Dialog, DialogId, DialogOutput};
use crate::digest::{self, Credentials};
use crate::header::{Method, NameAddr, Param, Scheme, Uri, Via};
use crate::message::{Headers, Request, Response, SipMessage, parse, recover_request};
use crate::transaction::{
    ClientInviteState, ClientInviteTx, ClientNonInviteState, ClientNonInviteTx, ServerInviteState,
    ServerInviteTx, ServerNonInviteState, ServerNonInviteTx, Timers, TxKey, TxOutput,
};
use crate::transport::{Peer, Transmit, Transport};
use crate::validate::{self, Checked, Rejection};

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
    /// Its slot in `Endpoint::timers`, if it waits for a timer.
    timer: Option<TimerSlot>,
}

struct ClientEntry {
    tx: ClientNonInviteTx,
    dest: Peer,
    call: Option<CallKey>,
    /// Whether the result ends the call with `LocalByeDone`/`TransactionTimeout`.
    report: bool,
    timer: Option<TimerSlot>,
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

/// Whether a CANCEL was asked for an unanswered outbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelState {
    None,
    /// Asked before any provisional arrived (RFC 3261 §9.1: sent when one does).
    Deferred,
    /// Sent; if no final response arrives by `give_up` (64*T1), the call fails with 487.
    Sent {
        give_up: Instant,
    },
}

/// An outbound call before its final response.
struct Outgoing {
    /// The INVITE now in flight (after a digest retry, the second one).
    invite: Request,
    branch: String,
    dest: Peer,
    sdp: Option<Vec<u8>>,
    credentials: Option<Credentials>,
    auth_retried: bool,
    provisional: bool,
    early_sdp_sent: bool,
    cancel: CancelState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvitePurpose {
    /// The INVITE that sets up an outbound call.
    Initial,
    /// Our re-INVITE in an established dialog.
    Reinvite,
}

/// A client INVITE transaction and what the UAC core needs to ACK its 2xx responses.
struct InviteClient {
    tx: ClientInviteTx,
    invite: Request,
    dest: Peer,
    call: CallKey,
    purpose: InvitePurpose,
    /// The ACK sent for each 2xx, by To tag, resent when that 2xx is retransmitted (§13.2.2.4).
    acks: HashMap<String, Vec<u8>>,
    timer: Option<TimerSlot>,
}

/// A REGISTER waiting for the call layer's answer.
struct PendingRequest {
    req: Request,
    tx_key: TxKey,
    give_up: Instant,
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

    fn on_invite(&mut self, ctx: &Ctx, req: Request, checked: &Checked) {
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

    /// RFC 3261 §10.3: a REGISTER goes to the registrar in the call layer, through a server
    /// transaction that absorbs retransmissions until `respond_request`.
    fn on_register(&mut self, ctx: &Ctx, req: Request, checked: &Checked) {
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

    /// Sends BYE in the call's dialog (RFC 3261 §15.1.1) through a client transaction.
    fn send_bye(&mut self, now: Instant, key: CallKey, report: bool) {
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

    /// Starts a client INVITE transaction (initial or re-INVITE) and sends the request.
    fn start_invite(
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

    fn drain_client_invite(&mut self, now: Instant, branch: &str) {
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

    /// A response to an outbound call's INVITE (RFC 3261 §13.2.2).
    fn on_invite_response(&mut self, now: Instant, branch: &str, key: CallKey, resp: Response) {
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

    /// A response to our re-INVITE.
    fn on_reinvite_response(&mut self, branch: &str, key: CallKey, resp: Response) {
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
    fn finish_reinvite(&mut self, key: CallKey, status: u16, sdp: Option<Vec<u8>>) {
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

    /// Ends an unanswered outbound call with `Failed`, dropping its INVITE transaction unless
    /// that still has work to do (absorbing retransmissions, ACKing late 2xx).
    fn fail_outgoing(&mut self, key: CallKey, status: u16) {
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

    /// RFC 3261 §15.1.2: a BYE on an early dialog also ends the pending INVITE with 487.
    fn terminate_pending_invite(&mut self, now: Instant, key: CallKey) {
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

    fn remove_server(&mut self, key: &TxKey) {
        if let Some(slot) = self.server.remove(key).and_then(|e| e.timer) {
            self.timers.remove(&slot);
        }
    }

    fn remove_client(&mut self, key: &(String, Method)) {
        if let Some(slot) = self.client.remove(key).and_then(|e| e.timer) {
            self.timers.remove(&slot);
        }
    }

    fn remove_client_invite(&mut self, branch: &str) {
        if let Some(slot) = self.client_invites.remove(branch).and_then(|e| e.timer) {
            self.timers.remove(&slot);
        }
    }

    /// Starts a client non-INVITE transaction (BYE, CANCEL) for `bytes` and sends it; `call`
    /// and `report` say whose outcome it is and whether the call layer hears it.
    fn start_client(
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
                timer: None,
            },
        );
        self.drain_server(&ctx.key);
    }

    /// Whether the transaction table is at the memory backstop.
    fn over_backstop(&self) -> bool {
        self.transaction_count() >= self.config.max_transactions
    }

    /// Answers `req` with an error status through a new server transaction, or, outside a
    /// dialog past the memory backstop, without one (a retransmission is answered again).
    fn reply_status(&mut self, ctx: &Ctx, req: &Request, call: Option<CallKey>, rej: Rejection) {
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

/// RFC 3261 §13.2.2.4: the ACK for a 2xx to `invite`, with the INVITE's CSeq number and
/// credentials.
fn ack_for_2xx(
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

/// Whether two peers name the same transport path (for TCP, the same connection).
fn same_path(a: Peer, b: Peer) -> bool {
    match b.transport {
        Transport::Tcp => a.transport == Transport::Tcp && a.conn == b.conn,
        Transport::Udp => a.transport == Transport::Udp && a.addr == b.addr,
    }
}

fn parse_uri(what: &str, text: &str) -> Result<Uri, SipError> {
    Uri::parse(text.trim()).map_err(|e| SipError::InvalidArgument(format!("{what}: {e}")))
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
