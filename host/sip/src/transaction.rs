//! RFC 3261 §17 transactions as sans-IO state machines, with the RFC 6026 Accepted states.
//!
//! Each transaction is driven with `handle_*(now, ..)` calls and drained with `poll_output`
//! and `poll_timeout`; it never reads the clock. It knows only whether its transport is
//! reliable: retransmissions (Timers A, E, G) run on unreliable transports only, and the
//! wait timers D, I, J, K are zero on reliable ones. States follow the RFC's order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::builder::{MAGIC_COOKIE, ack_for_non2xx};
use crate::header::{HeaderError, Method};
use crate::message::{Request, Response};

/// The protocol timer base values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s by default.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s by default.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: Timers B, F, H, J and L, and the UAS 2xx give-up time (RFC 3261 §13.3.1.4).
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a transaction asks of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutput {
    /// Send these bytes to the transaction's peer.
    Transmit(Vec<u8>),
    /// A response for the transaction user (client transactions only).
    Response(Response),
    /// Timer B, F or H fired: no answer (or no ACK) in time.
    Timeout,
}

/// A response was offered in a state that does not take one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a final response was already sent")]
pub struct TxError;

/// The key that matches a request to its server transaction (RFC 3261 §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxKey {
    /// Branch with the magic cookie, sent-by and method (ACK counts as INVITE).
    Rfc3261 {
        /// The top Via branch.
        branch: String,
        /// The top Via sent-by, lower-cased with default port.
        sent_by: String,
        /// The method, ACK mapped to INVITE.
        method: Method,
    },
    /// RFC 2543 fallback when the branch lacks the cookie or has nothing after it (RFC 4475
    /// `badbranch`): Request-URI, From tag, Call-ID, CSeq number and top Via. The To tag is left
    /// out so that the ACK for a non-2xx (which carries our tag) finds its INVITE.
    Rfc2543 {
        /// The Request-URI as written.
        request_uri: String,
        /// The From tag, empty when absent.
        from_tag: String,
        /// The Call-ID.
        call_id: String,
        /// The CSeq number.
        cseq: u32,
        /// The top Via sent-by and branch.
        via: String,
        /// The method, ACK mapped to INVITE.
        method: Method,
    },
}

impl TxKey {
    /// The server transaction key of a request.
    pub fn for_request(req: &Request) -> Result<TxKey, HeaderError> {
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        Self::with_method(req, method)
    }

    /// The key of the INVITE transaction a CANCEL targets (RFC 3261 §9.2).
    pub fn invite_for_cancel(cancel: &Request) -> Result<TxKey, HeaderError> {
        Self::with_method(cancel, Method::Invite)
    }

    fn with_method(req: &Request, method: Method) -> Result<TxKey, HeaderError> {
        let via = req.headers.top_via()?;
        match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => {
                Ok(TxKey::Rfc3261 {
                    branch: b.to_owned(),
                    sent_by: via.sent_by(),
                    method,
                })
            }
            branch => Ok(TxKey::Rfc2543 {
                request_uri: req.uri.as_str().to_owned(),
                from_tag: req.headers.from()?.tag().unwrap_or("").to_owned(),
                call_id: req
                    .headers
                    .call_id()
                    .ok_or(HeaderError("missing Call-ID"))?
                    .to_owned(),
                cseq: req.headers.cseq()?.seq,
                via: format!("{};{}", via.sent_by(), branch.unwrap_or("")),
                method,
            }),
        }
    }
}

/// Earliest of optional deadlines.
fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    deadlines.iter().flatten().min().copied()
}

fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

/// States of a server INVITE transaction (RFC 3261 §17.2.1, RFC 6026 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// No final response yet; retransmitted INVITEs get the last provisional again.
    Proceeding,
    /// A 2xx was sent: INVITE retransmissions are absorbed until Timer L (RFC 6026).
    Accepted,
    /// A 3xx-6xx was sent: retransmitted with Timer G until the ACK or Timer H.
    Completed,
    /// The ACK arrived; Timer I absorbs ACK retransmissions.
    Confirmed,
    /// Done; the owner removes it.
    Terminated,
}

/// The server side of an INVITE.
#[derive(Debug)]
pub struct ServerInviteTx {
    state: ServerInviteState,
    reliable: bool,
    timers: Timers,
    last_response: Option<Vec<u8>>,
    g_interval: Duration,
    timer_g: Option<Instant>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
    out: VecDeque<TxOutput>,
}

impl ServerInviteTx {
    /// A transaction for a new INVITE, in Proceeding. The owner sends 100 Trying through it.
    pub fn new(reliable: bool, timers: Timers) -> ServerInviteTx {
        ServerInviteTx {
            state: ServerInviteState::Proceeding,
            reliable,
            timers,
            last_response: None,
            g_interval: timers.t1,
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
            out: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The INVITE arrived again (RFC 3261 §17.2.1: resend the last response in Proceeding and
    /// Completed; RFC 6026 §7.1: absorb it in Accepted).
    pub fn handle_retransmission(&mut self) {
        if matches!(
            self.state,
            ServerInviteState::Proceeding | ServerInviteState::Completed
        ) && let Some(r) = &self.last_response
        {
            self.out.push_back(TxOutput::Transmit(r.clone()));
        }
    }

    /// An ACK matched this transaction. Returns false when the ACK is for a 2xx and belongs to
    /// the dialog instead (RFC 6026 §7.1: passed to the TU in Accepted).
    pub fn handle_ack(&mut self, now: Instant) -> bool {
        match self.state {
            ServerInviteState::Completed => {
                // RFC 3261 §17.2.1: Confirmed, Timer I = T4 (unreliable) or 0.
                self.timer_g = None;
                self.timer_h = None;
                if self.reliable {
                    self.state = ServerInviteState::Terminated;
                } else {
                    self.state = ServerInviteState::Confirmed;
                    self.timer_i = Some(now + self.timers.t4);
                }
                true
            }
            ServerInviteState::Confirmed => true,
            ServerInviteState::Proceeding
            | ServerInviteState::Accepted
            | ServerInviteState::Terminated => false,
        }
    }

    /// Sends a response from the TU: provisional keeps Proceeding, 2xx moves to Accepted, and
    /// 3xx-6xx to Completed with Timers G and H (RFC 3261 §17.2.1).
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Vec<u8>,
    ) -> Result<(), TxError> {
        if self.state != ServerInviteState::Proceeding {
            return Err(TxError);
        }
        self.out.push_back(TxOutput::Transmit(bytes.clone()));
        if status < 200 {
            self.last_response = Some(bytes);
        } else if status < 300 {
            // RFC 6026 §8.5: Timer L = 64*T1; the UAS core retransmits the 2xx itself.
            self.state = ServerInviteState::Accepted;
            self.last_response = None;
            self.timer_l = Some(now + self.timers.timeout());
        } else {
            self.state = ServerInviteState::Completed;
            self.last_response = Some(bytes);
            if !self.reliable {
                self.g_interval = self.timers.t1;
                self.timer_g = Some(now + self.g_interval);
            }
            self.timer_h = Some(now + self.timers.timeout());
        }
        Ok(())
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ServerInviteState::Completed => {
                if due(self.timer_h, now) {
                    // RFC 3261 §17.2.1: Timer H, the ACK never came.
                    self.state = ServerInviteState::Terminated;
                    self.timer_g = None;
                    self.timer_h = None;
                    self.out.push_back(TxOutput::Timeout);
                } else if due(self.timer_g, now) {
                    // Timer G doubles up to T2.
                    if let Some(r) = &self.last_response {
                        self.out.push_back(TxOutput::Transmit(r.clone()));
                    }
                    self.g_interval = (self.g_interval * 2).min(self.timers.t2);
                    self.timer_g = Some(now + self.g_interval);
                }
            }
            ServerInviteState::Confirmed if due(self.timer_i, now) => {
                self.state = ServerInviteState::Terminated;
                self.timer_i = None;
            }
            ServerInviteState::Accepted if due(self.timer_l, now) => {
                self.state = ServerInviteState::Terminated;
                self.timer_l = None;
            }
            _ => {}
        }
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ServerInviteState::Completed => earliest(&[self.timer_g, self.timer_h]),
            ServerInviteState::Confirmed => self.timer_i,
            ServerInviteState::Accepted => self.timer_l,
            _ => None,
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }
}

/// States of a server non-INVITE transaction (RFC 3261 §17.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// No response yet; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; retransmissions get it again.
    Proceeding,
    /// A final response was sent; retransmissions get it again until Timer J.
    Completed,
    /// Done.
    Terminated,
}

/// The server side of a non-INVITE request.
#[derive(Debug)]
pub struct ServerNonInviteTx {
    state: ServerNonInviteState,
    reliable: bool,
    timers: Timers,
    last_response: Option<Vec<u8>>,
    timer_j: Option<Instant>,
    out: VecDeque<TxOutput>,
}

impl ServerNonInviteTx {
    /// A transaction for a new request, in Trying.
    pub fn new(reliable: bool, timers: Timers) -> ServerNonInviteTx {
        ServerNonInviteTx {
            state: ServerNonInviteState::Trying,
            reliable,
            timers,
            last_response: None,
            timer_j: None,
            out: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The request arrived again: resend the last response, if any (RFC 3261 §17.2.2).
    pub fn handle_retransmission(&mut self) {
        if let Some(r) = &self.last_response
            && self.state != ServerNonInviteState::Terminated
        {
            self.out.push_back(TxOutput::Transmit(r.clone()));
        }
    }

    /// Sends a response; a final one starts Timer J (64*T1 unreliable, 0 reliable).
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Vec<u8>,
    ) -> Result<(), TxError> {
        if !matches!(
            self.state,
            ServerNonInviteState::Trying | ServerNonInviteState::Proceeding
        ) {
            return Err(TxError);
        }
        self.out.push_back(TxOutput::Transmit(bytes.clone()));
        self.last_response = Some(bytes);
        if status < 200 {
            self.state = ServerNonInviteState::Proceeding;
        } else if self.reliable {
            self.state = ServerNonInviteState::Terminated;
        } else {
            self.state = ServerNonInviteState::Completed;
            self.timer_j = Some(now + self.timers.timeout());
        }
        Ok(())
    }

    /// Fires Timer J.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ServerNonInviteState::Completed && due(self.timer_j, now) {
            self.state = ServerNonInviteState::Terminated;
            self.timer_j = None;
        }
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state == ServerNonInviteState::Completed)
            .then_some(self.timer_j)
            .flatten()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }
}

/// States of a client non-INVITE transaction (RFC 3261 §17.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Sent, no response yet.
    Trying,
    /// A provisional arrived.
    Proceeding,
    /// A final response arrived; Timer K absorbs its retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// The client side of a non-INVITE request, such as our BYE.
#[derive(Debug)]
pub struct ClientNonInviteTx {
    state: ClientNonInviteState,
    reliable: bool,
    timers: Timers,
    request: Vec<u8>,
    e_interval: Duration,
    timer_e: Option<Instant>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    out: VecDeque<TxOutput>,
}

impl ClientNonInviteTx {
    /// Starts the transaction: the request is queued for sending, Timers E and F start.
    pub fn new(
        now: Instant,
        request: Vec<u8>,
        reliable: bool,
        timers: Timers,
    ) -> ClientNonInviteTx {
        let mut out = VecDeque::new();
        out.push_back(TxOutput::Transmit(request.clone()));
        ClientNonInviteTx {
            state: ClientNonInviteState::Trying,
            reliable,
            timers,
            request,
            e_interval: timers.t1,
            timer_e: (!reliable).then(|| now + timers.t1),
            timer_f: Some(now + timers.timeout()),
            timer_k: None,
            out,
        }
    }

    /// The current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// A response matched this transaction (RFC 3261 §17.1.3).
    pub fn handle_response(&mut self, now: Instant, resp: Response) {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                if resp.is_provisional() {
                    self.state = ClientNonInviteState::Proceeding;
                } else {
                    self.timer_e = None;
                    self.timer_f = None;
                    if self.reliable {
                        self.state = ClientNonInviteState::Terminated;
                    } else {
                        // Timer K = T4 absorbs retransmitted final responses.
                        self.state = ClientNonInviteState::Completed;
                        self.timer_k = Some(now + self.timers.t4);
                    }
                }
                self.out.push_back(TxOutput::Response(resp));
            }
            ClientNonInviteState::Completed | ClientNonInviteState::Terminated => {}
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                if due(self.timer_f, now) {
                    // RFC 3261 §17.1.2.2: Timer F, the request timed out.
                    self.state = ClientNonInviteState::Terminated;
                    self.timer_e = None;
                    self.timer_f = None;
                    self.out.push_back(TxOutput::Timeout);
                } else if due(self.timer_e, now) {
                    // Timer E doubles up to T2 in Trying and is T2 in Proceeding.
                    self.out.push_back(TxOutput::Transmit(self.request.clone()));
                    self.e_interval = if self.state == ClientNonInviteState::Trying {
                        (self.e_interval * 2).min(self.timers.t2)
                    } else {
                        self.timers.t2
                    };
                    self.timer_e = Some(now + self.e_interval);
                }
            }
            ClientNonInviteState::Completed if due(self.timer_k, now) => {
                self.state = ClientNonInviteState::Terminated;
                self.timer_k = None;
            }
            _ => {}
        }
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                earliest(&[self.timer_e, self.timer_f])
            }
            ClientNonInviteState::Completed => self.timer_k,
            ClientNonInviteState::Terminated => None,
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }
}

/// States of a client INVITE transaction (RFC 3261 §17.1.1, RFC 6026 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// Sent, no response yet: Timer A retransmits, Timer B gives up.
    Calling,
    /// A provisional arrived.
    Proceeding,
    /// A 2xx arrived: further 2xx are passed up until Timer M (RFC 6026).
    Accepted,
    /// A 3xx-6xx arrived and was ACKed; Timer D absorbs its retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// The client side of an INVITE (for outbound calls).
#[derive(Debug)]
pub struct ClientInviteTx {
    state: ClientInviteState,
    reliable: bool,
    timers: Timers,
    request: Request,
    ack: Option<Vec<u8>>,
    a_interval: Duration,
    timer_a: Option<Instant>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    out: VecDeque<TxOutput>,
}

/// RFC 3261 §17.1.1.2: Timer D is at least 32 s on unreliable transports.
const TIMER_D: Duration = Duration::from_secs(32);

impl ClientInviteTx {
    /// Starts the transaction: the INVITE is queued for sending, Timers A and B start.
    pub fn new(now: Instant, request: Request, reliable: bool, timers: Timers) -> ClientInviteTx {
        let mut out = VecDeque::new();
        out.push_back(TxOutput::Transmit(request.to_bytes()));
        ClientInviteTx {
            state: ClientInviteState::Calling,
            reliable,
            timers,
            request,
            ack: None,
            a_interval: timers.t1,
            timer_a: (!reliable).then(|| now + timers.t1),
            timer_b: Some(now + timers.timeout()),
            timer_d: None,
            timer_m: None,
            out,
        }
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// A response matched this transaction.
    pub fn handle_response(&mut self, now: Instant, resp: Response) {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.timer_a = None;
                self.timer_b = None;
                if resp.is_provisional() {
                    self.state = ClientInviteState::Proceeding;
                } else if resp.is_success() {
                    // RFC 6026 §7.2: Accepted; the TU ACKs each 2xx.
                    self.state = ClientInviteState::Accepted;
                    self.timer_m = Some(now + self.timers.timeout());
                } else {
                    // RFC 3261 §17.1.1.3: the transaction ACKs a non-2xx itself.
                    let ack = ack_for_non2xx(&self.request, &resp).to_bytes();
                    self.out.push_back(TxOutput::Transmit(ack.clone()));
                    self.ack = Some(ack);
                    if self.reliable {
                        self.state = ClientInviteState::Terminated;
                    } else {
                        self.state = ClientInviteState::Completed;
                        self.timer_d = Some(now + TIMER_D);
                    }
                }
                self.out.push_back(TxOutput::Response(resp));
            }
            ClientInviteState::Accepted => {
                if resp.is_success() {
                    self.out.push_back(TxOutput::Response(resp));
                }
            }
            ClientInviteState::Completed => {
                if !resp.is_provisional()
                    && !resp.is_success()
                    && let Some(ack) = &self.ack
                {
                    self.out.push_back(TxOutput::Transmit(ack.clone()));
                }
            }
            ClientInviteState::Terminated => {}
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ClientInviteState::Calling => {
                if due(self.timer_b, now) {
                    // RFC 3261 §17.1.1.2: Timer B, no response at all.
                    self.state = ClientInviteState::Terminated;
                    self.timer_a = None;
                    self.timer_b = None;
                    self.out.push_back(TxOutput::Timeout);
                } else if due(self.timer_a, now) {
                    // Timer A doubles without a cap.
                    self.out
                        .push_back(TxOutput::Transmit(self.request.to_bytes()));
                    self.a_interval *= 2;
                    self.timer_a = Some(now + self.a_interval);
                }
            }
            ClientInviteState::Completed if due(self.timer_d, now) => {
                self.state = ClientInviteState::Terminated;
                self.timer_d = None;
            }
            ClientInviteState::Accepted if due(self.timer_m, now) => {
                self.state = ClientInviteState::Terminated;
                self.timer_m = None;
            }
            _ => {}
        }
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ClientInviteState::Calling => earliest(&[self.timer_a, self.timer_b]),
            ClientInviteState::Completed => self.timer_d,
            ClientInviteState::Accepted => self.timer_m,
            _ => None,
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::message::{SipMessage, parse};

    #[allow(
        clippy::disallowed_methods,
        reason = "tests need an arbitrary origin for virtual time"
    )]
    fn origin() -> Instant {
        Instant::now()
    }

    const INVITE: &str = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx\r\n\
        From: <sip:a@a>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";

    fn invite() -> Request {
        match parse(INVITE.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!(),
        }
    }

    fn response(status: u16) -> Response {
        crate::builder::response_to(&invite(), status, None, Some("t"))
    }

    /// Runs a transaction in virtual time and records when it transmits.
    fn transmit_times<T>(
        t0: Instant,
        until: Duration,
        tx: &mut T,
        poll_timeout: impl Fn(&T) -> Option<Instant>,
        handle: impl Fn(&mut T, Instant),
        poll: impl Fn(&mut T) -> Option<TxOutput>,
    ) -> (Vec<Duration>, Option<Duration>) {
        let mut sent = Vec::new();
        let mut timeout = None;
        while let Some(o) = poll(tx) {
            if matches!(o, TxOutput::Transmit(_)) {
                sent.push(Duration::ZERO);
            }
        }
        while let Some(at) = poll_timeout(tx) {
            if at - t0 > until {
                break;
            }
            handle(tx, at);
            while let Some(o) = poll(tx) {
                match o {
                    TxOutput::Transmit(_) => sent.push(at - t0),
                    TxOutput::Timeout => timeout = Some(at - t0),
                    TxOutput::Response(_) => {}
                }
            }
        }
        (sent, timeout)
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn timer_e_doubles_to_t2_and_f_fires_at_32s() {
        let t0 = origin();
        let mut tx = ClientNonInviteTx::new(t0, b"BYE".to_vec(), false, Timers::default());
        let (sent, timeout) = transmit_times(
            t0,
            Duration::from_secs(60),
            &mut tx,
            ClientNonInviteTx::poll_timeout,
            ClientNonInviteTx::handle_timeout,
            ClientNonInviteTx::poll_output,
        );
        // Sends at 0, then after 0.5, 1, 2, 4, 4, 4, ... seconds.
        let mut expected = ms(&[0, 500, 1500, 3500, 7500]);
        let mut t = 7500;
        while t + 4000 < 32_000 {
            t += 4000;
            expected.push(Duration::from_millis(t));
        }
        assert_eq!(sent, expected);
        assert_eq!(timeout, Some(Duration::from_secs(32)));
        assert_eq!(tx.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn timer_e_is_t2_in_proceeding_and_k_absorbs() {
        let t0 = origin();
        let mut tx = ClientNonInviteTx::new(t0, b"BYE".to_vec(), false, Timers::default());
        tx.handle_response(t0, response(100));
        assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
        tx.handle_timeout(t0 + Duration::from_millis(500));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(4500)));
        let t = t0 + Duration::from_secs(1);
        tx.handle_response(t, response(200));
        tx.handle_response(t, response(200));
        let responses = std::iter::from_fn(|| tx.poll_output())
            .filter(|o| matches!(o, TxOutput::Response(_)))
            .count();
        assert_eq!(responses, 2, "the 100 and the first 200 only");
        assert_eq!(tx.state(), ClientNonInviteState::Completed);
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(5)));
        tx.handle_timeout(t + Duration::from_secs(5));
        assert_eq!(tx.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn no_retransmissions_over_tcp() {
        let t0 = origin();
        let mut tx = ClientNonInviteTx::new(t0, b"BYE".to_vec(), true, Timers::default());
        let (sent, timeout) = transmit_times(
            t0,
            Duration::from_secs(60),
            &mut tx,
            ClientNonInviteTx::poll_timeout,
            ClientNonInviteTx::handle_timeout,
            ClientNonInviteTx::poll_output,
        );
        assert_eq!(sent, vec![Duration::ZERO]);
        assert_eq!(timeout, Some(Duration::from_secs(32)));

        let mut inv = ClientInviteTx::new(t0, invite(), true, Timers::default());
        let (sent, _) = transmit_times(
            t0,
            Duration::from_secs(60),
            &mut inv,
            ClientInviteTx::poll_timeout,
            ClientInviteTx::handle_timeout,
            ClientInviteTx::poll_output,
        );
        assert_eq!(sent, vec![Duration::ZERO]);

        let mut srv = ServerInviteTx::new(true, Timers::default());
        srv.send_response(t0, 486, b"486".to_vec()).unwrap();
        let (sent, timeout) = transmit_times(
            t0,
            Duration::from_secs(60),
            &mut srv,
            ServerInviteTx::poll_timeout,
            ServerInviteTx::handle_timeout,
            ServerInviteTx::poll_output,
        );
        assert_eq!(sent, vec![Duration::ZERO]);
        assert_eq!(timeout, Some(Duration::from_secs(32)), "Timer H still runs");

        let mut srv = ServerNonInviteTx::new(true, Timers::default());
        srv.send_response(t0, 200, b"200".to_vec()).unwrap();
        assert_eq!(
            srv.state(),
            ServerNonInviteState::Terminated,
            "Timer J is 0"
        );
    }

    #[test]
    fn timer_a_doubles_without_cap_and_b_fires_at_32s() {
        let t0 = origin();
        let mut tx = ClientInviteTx::new(t0, invite(), false, Timers::default());
        let (sent, timeout) = transmit_times(
            t0,
            Duration::from_secs(60),
            &mut tx,
            ClientInviteTx::poll_timeout,
            ClientInviteTx::handle_timeout,
            ClientInviteTx::poll_output,
        );
        assert_eq!(sent, ms(&[0, 500, 1500, 3500, 7500, 15_500, 31_500]));
        assert_eq!(timeout, Some(Duration::from_secs(32)));
    }

    #[test]
    fn client_invite_acks_non_2xx_and_passes_2xx() {
        let t0 = origin();
        let mut tx = ClientInviteTx::new(t0, invite(), false, Timers::default());
        tx.poll_output();
        tx.handle_response(t0, response(180));
        assert!(matches!(tx.poll_output(), Some(TxOutput::Response(r)) if r.status == 180));
        assert_eq!(
            tx.poll_timeout(),
            None,
            "no Timer A or B after a provisional"
        );
        tx.handle_response(t0, response(486));
        let TxOutput::Transmit(ack) = tx.poll_output().unwrap() else {
            panic!("expected the ACK")
        };
        let SipMessage::Request(ack) = parse(&ack).unwrap() else {
            panic!()
        };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
        assert_eq!(ack.headers.to().unwrap().tag(), Some("t"));
        assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKx"));
        assert!(matches!(tx.poll_output(), Some(TxOutput::Response(r)) if r.status == 486));
        tx.handle_response(t0, response(486));
        assert!(
            matches!(tx.poll_output(), Some(TxOutput::Transmit(_))),
            "ACK resent"
        );
        tx.handle_timeout(t0 + TIMER_D);
        assert_eq!(tx.state(), ClientInviteState::Terminated);

        let mut tx = ClientInviteTx::new(t0, invite(), false, Timers::default());
        tx.poll_output();
        tx.handle_response(t0, response(200));
        tx.handle_response(t0, response(200));
        let passed = std::iter::from_fn(|| tx.poll_output()).count();
        assert_eq!(passed, 2, "every 2xx reaches the TU");
        assert_eq!(tx.state(), ClientInviteState::Accepted);
    }

    #[test]
    fn timer_g_and_h_without_ack() {
        let t0 = origin();
        let mut tx = ServerInviteTx::new(false, Timers::default());
        tx.send_response(t0, 100, b"100".to_vec()).unwrap();
        tx.handle_retransmission();
        tx.send_response(t0, 486, b"486".to_vec()).unwrap();
        assert!(tx.send_response(t0, 200, b"200".to_vec()).is_err());
        let (sent, timeout) = transmit_times(
            t0,
            Duration::from_secs(60),
            &mut tx,
            ServerInviteTx::poll_timeout,
            ServerInviteTx::handle_timeout,
            ServerInviteTx::poll_output,
        );
        // 100, resent 100, 486 at 0; then Timer G: 0.5, 1, 2, 4, 4, ... until H at 32 s.
        let mut expected = ms(&[0, 0, 0, 500, 1500, 3500, 7500]);
        let mut t = 7500;
        while t + 4000 < 32_000 {
            t += 4000;
            expected.push(Duration::from_millis(t));
        }
        assert_eq!(sent, expected);
        assert_eq!(timeout, Some(Duration::from_secs(32)));
        assert_eq!(tx.state(), ServerInviteState::Terminated);
    }

    #[test]
    fn ack_confirms_and_timer_i_terminates() {
        let t0 = origin();
        let mut tx = ServerInviteTx::new(false, Timers::default());
        tx.send_response(t0, 404, b"404".to_vec()).unwrap();
        let t = t0 + Duration::from_secs(1);
        assert!(tx.handle_ack(t));
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        assert!(tx.handle_ack(t), "retransmitted ACK absorbed");
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(5)));
        tx.handle_timeout(t + Duration::from_secs(5));
        assert_eq!(tx.state(), ServerInviteState::Terminated);
    }

    #[test]
    fn accepted_absorbs_invites_and_passes_acks() {
        let t0 = origin();
        let mut tx = ServerInviteTx::new(false, Timers::default());
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        tx.poll_output();
        tx.handle_retransmission();
        assert_eq!(tx.poll_output(), None);
        assert!(!tx.handle_ack(t0));
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), ServerInviteState::Terminated);
    }

    #[test]
    fn timer_j_absorbs_retransmissions() {
        let t0 = origin();
        let mut tx = ServerNonInviteTx::new(false, Timers::default());
        tx.handle_retransmission();
        assert_eq!(tx.poll_output(), None, "nothing to resend in Trying");
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        tx.poll_output();
        for _ in 0..3 {
            tx.handle_retransmission();
            assert_eq!(tx.poll_output(), Some(TxOutput::Transmit(b"200".to_vec())));
        }
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(tx.state(), ServerNonInviteState::Completed);
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), ServerNonInviteState::Terminated);
    }

    #[test]
    fn keys_follow_17_2_3() {
        let r = invite();
        let k = TxKey::for_request(&r).unwrap();
        let mut ack = r.clone();
        ack.method = Method::Ack;
        ack.headers.set("CSeq", "1 ACK");
        ack.headers.set("To", "<sip:b@h>;tag=t");
        assert_eq!(TxKey::for_request(&ack).unwrap(), k);
        let mut cancel = r.clone();
        cancel.method = Method::Cancel;
        assert_ne!(TxKey::for_request(&cancel).unwrap(), k);
        assert_eq!(TxKey::invite_for_cancel(&cancel).unwrap(), k);
        let mut old = r.clone();
        old.headers.set("Via", "SIP/2.0/UDP a:5060;branch=z9hG4bK");
        assert!(matches!(
            TxKey::for_request(&old).unwrap(),
            TxKey::Rfc2543 { .. }
        ));
    }
}
