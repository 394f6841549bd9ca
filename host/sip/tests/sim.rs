//! Simulation: a tiny UAC built from the crate's own builders and client transactions talks to
//! the `Endpoint` through a seeded lossy virtual network; the test plays the call layer.
//! Virtual time jumps to the next wake-up, so 40 s of SIP timers run in milliseconds.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_sip::builder::{cancel_for, response_to};
use pbx_sip::transaction::{ClientInviteTx, ClientNonInviteTx, ServerNonInviteTx, TxOutput};
use pbx_sip::{
    CallKey, EndCause, Endpoint, Method, Output, Peer, Request, SipError, SipEvent, SipMessage,
    Timers, Transport, Uri, parse,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{PBX_UDP, endpoint, origin};

const UAC: &str = "198.51.100.10:5070";
const SDP: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const ANSWER: &[u8] = b"v=0\r\no=pbx 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";

/// The caller: sends INVITE/CANCEL/BYE through client transactions, ACKs every 2xx, answers BYE.
struct Uac {
    branch_seq: u32,
    invite: Option<(Request, ClientInviteTx)>,
    others: HashMap<String, ClientNonInviteTx>,
    servers: HashMap<String, ServerNonInviteTx>,
    outbox: Vec<Vec<u8>>,
    /// Final statuses per method, in arrival order (from the transactions, so no duplicates).
    finals: Vec<(Method, u16)>,
    provisionals: Vec<u16>,
    /// 2xx responses to INVITE seen (retransmissions included).
    invite_2xx_seen: usize,
    /// Ignore this many 2xx before ACKing (usize::MAX: never ACK).
    skip_acks: usize,
    to_tag: Option<String>,
    remote_target: Option<Uri>,
    byes_received: usize,
}

impl Uac {
    fn new() -> Uac {
        Uac {
            branch_seq: 0,
            invite: None,
            others: HashMap::new(),
            servers: HashMap::new(),
            outbox: Vec::new(),
            finals: Vec::new(),
            provisionals: Vec::new(),
            invite_2xx_seen: 0,
            skip_acks: 0,
            to_tag: None,
            remote_target: None,
            byes_received: 0,
        }
    }

    fn branch(&mut self) -> String {
        self.branch_seq += 1;
        format!("z9hG4bKuac{}", self.branch_seq)
    }

    fn base(&mut self, method: Method, uri: &str, cseq: u32) -> Request {
        let mut r = Request::new(method.clone(), Uri::parse(uri).unwrap());
        r.headers.push(
            "Via",
            format!("SIP/2.0/UDP {UAC};branch={};rport", self.branch()),
        );
        r.headers.push("Max-Forwards", "70");
        r.headers
            .push("From", "\"Alice\" <sip:alice@198.51.100.10>;tag=a1");
        let to = match &self.to_tag {
            Some(t) if method != Method::Invite => format!("<sip:1000@192.0.2.1>;tag={t}"),
            _ => "<sip:1000@192.0.2.1>".to_owned(),
        };
        r.headers.push("To", to);
        r.headers.push("Call-ID", "sim-call-1@198.51.100.10");
        r.headers.push("CSeq", format!("{cseq} {method}"));
        r
    }

    fn dial(&mut self, now: Instant) {
        let mut inv = self.base(Method::Invite, "sip:1000@192.0.2.1", 1);
        inv.headers.push("Contact", format!("<sip:alice@{UAC}>"));
        inv.set_body("application/sdp", SDP.to_vec());
        let tx = ClientInviteTx::new(now, inv.clone(), false, Timers::default());
        self.invite = Some((inv, tx));
        self.flush();
    }

    fn cancel(&mut self, now: Instant) {
        let (inv, _) = self.invite.as_ref().unwrap();
        let cancel = cancel_for(inv);
        let branch = cancel
            .headers
            .top_via()
            .unwrap()
            .branch()
            .unwrap()
            .to_owned();
        let tx = ClientNonInviteTx::new(now, cancel.to_bytes(), false, Timers::default());
        self.others.insert(format!("{branch}/CANCEL"), tx);
        self.flush();
    }

    fn hangup(&mut self, now: Instant) {
        let target = self.remote_target.clone().unwrap().to_string();
        let bye = self.base(Method::Bye, &target, 2);
        let branch = bye.headers.top_via().unwrap().branch().unwrap().to_owned();
        let tx = ClientNonInviteTx::new(now, bye.to_bytes(), false, Timers::default());
        self.others.insert(format!("{branch}/BYE"), tx);
        self.flush();
    }

    fn receive(&mut self, now: Instant, bytes: &[u8]) {
        match parse(bytes).unwrap() {
            SipMessage::Response(r) => {
                let cseq = r.headers.cseq().unwrap();
                let branch = r.headers.top_via().unwrap().branch().unwrap().to_owned();
                if cseq.method == Method::Invite {
                    if let Some((_, tx)) = self.invite.as_mut() {
                        tx.handle_response(now, r);
                    }
                } else if let Some(tx) = self.others.get_mut(&format!("{branch}/{}", cseq.method)) {
                    tx.handle_response(now, r);
                }
            }
            SipMessage::Request(req) => {
                assert_eq!(req.method, Method::Bye, "the PBX only sends BYE");
                let branch = req.headers.top_via().unwrap().branch().unwrap().to_owned();
                if let Some(tx) = self.servers.get_mut(&branch) {
                    tx.handle_retransmission();
                } else {
                    self.byes_received += 1;
                    let mut tx = ServerNonInviteTx::new(false, Timers::default());
                    tx.send_response(now, 200, response_to(&req, 200, None, None).to_bytes())
                        .unwrap();
                    self.servers.insert(branch, tx);
                }
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        let mut ack_needed = Vec::new();
        if let Some((_, tx)) = self.invite.as_mut() {
            while let Some(o) = tx.poll_output() {
                match o {
                    TxOutput::Transmit(b) => self.outbox.push(b),
                    TxOutput::Response(r) if r.is_provisional() => self.provisionals.push(r.status),
                    TxOutput::Response(r) => {
                        if r.is_success() {
                            self.invite_2xx_seen += 1;
                            if self.invite_2xx_seen == 1 {
                                self.finals.push((Method::Invite, r.status));
                            }
                            ack_needed.push(r);
                        } else {
                            self.finals.push((Method::Invite, r.status));
                        }
                    }
                    TxOutput::Timeout => self.finals.push((Method::Invite, 408)),
                }
            }
        }
        for r in ack_needed {
            self.to_tag = r.headers.to().unwrap().tag().map(str::to_owned);
            self.remote_target = Some(r.headers.contact().unwrap().unwrap().uri);
            if self.invite_2xx_seen > self.skip_acks {
                // RFC 3261 §13.2.2.4: the UAC core ACKs every 2xx, with a new branch.
                let target = self.remote_target.clone().unwrap().to_string();
                let ack = self.base(Method::Ack, &target, 1);
                self.outbox.push(ack.to_bytes());
            }
        }
        for (key, tx) in &mut self.others {
            let method = if key.ends_with("/BYE") {
                Method::Bye
            } else {
                Method::Cancel
            };
            while let Some(o) = tx.poll_output() {
                match o {
                    TxOutput::Transmit(b) => self.outbox.push(b),
                    TxOutput::Response(r) if !r.is_provisional() => {
                        self.finals.push((method.clone(), r.status))
                    }
                    TxOutput::Response(_) => {}
                    TxOutput::Timeout => self.finals.push((method.clone(), 408)),
                }
            }
        }
        for tx in self.servers.values_mut() {
            while let Some(o) = tx.poll_output() {
                if let TxOutput::Transmit(b) = o {
                    self.outbox.push(b);
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let a = self.invite.as_ref().and_then(|(_, t)| t.poll_timeout());
        let b = self
            .others
            .values()
            .filter_map(ClientNonInviteTx::poll_timeout)
            .min();
        let c = self
            .servers
            .values()
            .filter_map(ServerNonInviteTx::poll_timeout)
            .min();
        [a, b, c].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, t)) = self.invite.as_mut() {
            t.handle_timeout(now);
        }
        for t in self.others.values_mut() {
            t.handle_timeout(now);
        }
        for t in self.servers.values_mut() {
            t.handle_timeout(now);
        }
        self.flush();
    }

    fn final_of(&self, method: &Method) -> Option<u16> {
        self.finals
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, s)| *s)
    }
}

/// What the test's call layer does, and when (relative to the event that triggers it).
#[derive(Clone, Copy)]
enum Action {
    Respond(u16),
    Answer,
    Hangup,
    UacCancel,
    UacHangup,
}

struct Sim {
    t0: Instant,
    now: Instant,
    rng: StdRng,
    loss: f64,
    latency: Duration,
    ep: Endpoint,
    uac: Uac,
    /// (deliver at, to the PBX?, bytes)
    wire: Vec<(Instant, bool, Vec<u8>)>,
    scheduled: Vec<(Instant, Action)>,
    events: Vec<SipEvent>,
    key: Option<CallKey>,
    /// Actions to schedule when the call comes in / is confirmed.
    on_incoming: Vec<(Duration, Action)>,
    on_confirmed: Vec<(Duration, Action)>,
    /// 200 OKs to INVITE the PBX put on the wire (before loss).
    pbx_2xx_sent: usize,
    pbx_byes_sent: usize,
    errors: Vec<SipError>,
    /// Packets the network lost.
    dropped: usize,
}

impl Sim {
    fn new(seed: u64, loss: f64) -> Sim {
        let t0 = origin();
        Sim {
            t0,
            now: t0,
            rng: StdRng::seed_from_u64(seed),
            loss,
            latency: Duration::from_millis(20),
            ep: endpoint(seed),
            uac: Uac::new(),
            wire: Vec::new(),
            scheduled: Vec::new(),
            events: Vec::new(),
            key: None,
            on_incoming: vec![
                (Duration::from_millis(100), Action::Respond(180)),
                (Duration::from_secs(1), Action::Answer),
            ],
            on_confirmed: Vec::new(),
            pbx_2xx_sent: 0,
            pbx_byes_sent: 0,
            errors: Vec::new(),
            dropped: 0,
        }
    }

    fn send(&mut self, to_pbx: bool, bytes: Vec<u8>) {
        if self.rng.random_bool(self.loss) {
            self.dropped += 1;
            return;
        }
        let jitter = Duration::from_millis(self.rng.random_range(0..10));
        self.wire
            .push((self.now + self.latency + jitter, to_pbx, bytes));
    }

    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.ep.poll_output() {
                progressed = true;
                match o {
                    Output::Transmit(t) => {
                        assert_eq!(t.peer.addr, UAC.parse::<SocketAddr>().unwrap());
                        if let Ok(SipMessage::Response(r)) = parse(&t.bytes)
                            && r.is_success()
                            && r.headers.cseq().unwrap().method == Method::Invite
                        {
                            self.pbx_2xx_sent += 1;
                        }
                        if let Ok(SipMessage::Request(r)) = parse(&t.bytes)
                            && r.method == Method::Bye
                        {
                            self.pbx_byes_sent += 1;
                        }
                        self.send(false, t.bytes);
                    }
                    Output::Event(e) => self.on_event(e),
                }
            }
            let outbox = std::mem::take(&mut self.uac.outbox);
            for b in outbox {
                progressed = true;
                self.send(true, b);
            }
            if !progressed {
                return;
            }
        }
    }

    fn on_event(&mut self, e: SipEvent) {
        let plan = match &e {
            SipEvent::IncomingCall(c) => {
                assert_eq!(c.to_user.as_deref(), Some("1000"));
                assert_eq!(c.from_user.as_deref(), Some("alice"));
                assert_eq!(c.from_display.as_deref(), Some("Alice"));
                assert_eq!(c.sdp.as_deref(), Some(SDP));
                self.key = Some(c.key);
                self.on_incoming.clone()
            }
            SipEvent::Confirmed { .. } => self.on_confirmed.clone(),
            _ => Vec::new(),
        };
        for (after, action) in plan {
            self.scheduled.push((self.now + after, action));
        }
        self.events.push(e);
    }

    fn act(&mut self, action: Action) {
        let key = self.key.unwrap();
        let result = match action {
            Action::Respond(status) => self.ep.respond(self.now, key, status, None, None),
            Action::Answer => self
                .ep
                .respond(self.now, key, 200, None, Some(ANSWER.to_vec())),
            Action::Hangup => self.ep.hangup(self.now, key),
            Action::UacCancel => {
                self.uac.cancel(self.now);
                Ok(())
            }
            Action::UacHangup => {
                self.uac.hangup(self.now);
                Ok(())
            }
        };
        if let Err(e) = result {
            self.errors.push(e);
        }
    }

    /// Runs virtual time until nothing is scheduled or `limit` has passed.
    fn run_for(&mut self, limit: Duration) {
        let end = self.t0 + limit;
        self.pump();
        loop {
            let next = [
                self.wire.iter().map(|w| w.0).min(),
                self.scheduled.iter().map(|s| s.0).min(),
                self.ep.poll_timeout(),
                self.uac.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|n| *n <= end) else {
                self.now = end;
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|w| w.0 <= now);
            self.wire = rest;
            for (_, to_pbx, bytes) in due {
                if to_pbx {
                    let peer = Peer {
                        transport: Transport::Udp,
                        addr: UAC.parse().unwrap(),
                        conn: None,
                    };
                    self.ep.handle_input(now, peer, &bytes);
                } else {
                    self.uac.receive(now, &bytes);
                }
                self.pump();
            }
            let (due, rest): (Vec<_>, Vec<_>) = self.scheduled.drain(..).partition(|s| s.0 <= now);
            self.scheduled = rest;
            for (_, action) in due {
                self.act(action);
                self.pump();
            }
            if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                self.ep.handle_timeout(now);
            }
            if self.uac.poll_timeout().is_some_and(|t| t <= now) {
                self.uac.handle_timeout(now);
            }
            self.pump();
        }
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.events
            .iter()
            .map(|e| match e {
                SipEvent::IncomingCall(_) => "incoming",
                SipEvent::Confirmed { .. } => "confirmed",
                SipEvent::Cancelled { .. } => "cancelled",
                SipEvent::Ended { .. } => "ended",
                SipEvent::Dtmf { .. } => "dtmf",
                SipEvent::RemoteReinvite { .. } => "remote-reinvite",
                _ => "other",
            })
            .collect()
    }

    fn end_cause(&self) -> Option<EndCause> {
        self.events.iter().find_map(|e| match e {
            SipEvent::Ended { cause, .. } => Some(*cause),
            _ => None,
        })
    }

    fn assert_clean(&self) {
        assert_eq!(self.ep.call_count(), 0, "calls leaked");
        assert_eq!(self.ep.transaction_count(), 0, "transactions leaked");
        assert_eq!(self.ep.poll_timeout(), None);
    }
}

#[test]
fn call_answered_then_caller_hangs_up() {
    let mut sim = Sim::new(1, 0.0);
    sim.on_confirmed = vec![(Duration::from_secs(5), Action::UacHangup)];
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.uac.provisionals, vec![100, 180]);
    assert_eq!(sim.uac.final_of(&Method::Invite), Some(200));
    assert_eq!(sim.uac.final_of(&Method::Bye), Some(200));
    assert_eq!(sim.kinds(), vec!["incoming", "confirmed", "ended"]);
    assert_eq!(sim.end_cause(), Some(EndCause::RemoteBye));
    assert_eq!(sim.pbx_2xx_sent, 1, "the ACK stopped the 2xx at once");
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    sim.assert_clean();
}

#[test]
fn cancel_before_answer_gets_487() {
    let mut sim = Sim::new(2, 0.0);
    sim.on_incoming = vec![
        (Duration::from_millis(100), Action::Respond(180)),
        (Duration::from_secs(2), Action::UacCancel),
        (Duration::from_secs(3), Action::Answer),
    ];
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.uac.final_of(&Method::Cancel), Some(200));
    assert_eq!(sim.uac.final_of(&Method::Invite), Some(487));
    assert_eq!(sim.kinds(), vec!["incoming", "cancelled"]);
    assert_eq!(
        sim.errors,
        vec![SipError::UnknownCall(sim.key.unwrap())],
        "answering too late fails"
    );
    sim.assert_clean();
}

#[test]
fn our_bye_is_answered() {
    let mut sim = Sim::new(3, 0.0);
    sim.on_confirmed = vec![(Duration::from_secs(10), Action::Hangup)];
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.uac.byes_received, 1);
    assert_eq!(sim.kinds(), vec!["incoming", "confirmed", "ended"]);
    assert_eq!(
        sim.end_cause(),
        Some(EndCause::LocalByeDone { status: 200 })
    );
    sim.assert_clean();
}

#[test]
fn rejecting_ends_the_call_quietly() {
    let mut sim = Sim::new(4, 0.0);
    sim.on_incoming = vec![(Duration::from_millis(100), Action::Respond(486))];
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.uac.final_of(&Method::Invite), Some(486));
    assert_eq!(sim.kinds(), vec!["incoming"]);
    sim.assert_clean();
}

#[test]
fn hangup_before_answer_sends_480() {
    let mut sim = Sim::new(5, 0.0);
    sim.on_incoming = vec![(Duration::from_millis(100), Action::Hangup)];
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.uac.final_of(&Method::Invite), Some(480));
    sim.assert_clean();
}

#[test]
fn two_xx_is_retransmitted_until_ack() {
    let mut sim = Sim::new(6, 0.0);
    sim.uac.skip_acks = 3;
    sim.on_confirmed = vec![(Duration::from_secs(1), Action::UacHangup)];
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(60));
    // The first three 200s go unacknowledged; the fourth is ACKed and ends the retransmissions.
    assert_eq!(sim.pbx_2xx_sent, 4);
    assert_eq!(sim.uac.invite_2xx_seen, 4);
    assert_eq!(sim.kinds(), vec!["incoming", "confirmed", "ended"]);
    sim.assert_clean();
}

#[test]
fn hangup_while_waiting_for_ack_waits_for_it() {
    let mut sim = Sim::new(7, 0.0);
    sim.uac.skip_acks = 2;
    sim.on_incoming = vec![
        (Duration::from_secs(1), Action::Answer),
        (Duration::from_millis(1100), Action::Hangup),
    ];
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.kinds(), vec!["incoming", "confirmed", "ended"]);
    assert_eq!(
        sim.end_cause(),
        Some(EndCause::LocalByeDone { status: 200 })
    );
    assert_eq!(sim.uac.byes_received, 1);
    sim.assert_clean();
}

#[test]
fn ack_never_arrives_so_we_send_bye() {
    let mut sim = Sim::new(8, 0.0);
    sim.uac.skip_acks = usize::MAX;
    sim.uac.dial(sim.now);
    sim.run_for(Duration::from_secs(90));
    assert_eq!(sim.kinds(), vec!["incoming", "ended"]);
    assert_eq!(sim.end_cause(), Some(EndCause::AckTimeout));
    assert_eq!(sim.uac.byes_received, 1);
    // 200 at 0 then retransmissions at 0.5, 1.5, 3.5, 7.5, 11.5, ... 31.5 s.
    assert_eq!(sim.pbx_2xx_sent, 11);
    sim.assert_clean();
}

#[test]
fn whole_call_survives_30_percent_loss() {
    let mut dropped = 0;
    for seed in 100..130 {
        let mut sim = Sim::new(seed, 0.3);
        sim.on_confirmed = vec![(Duration::from_secs(5), Action::UacHangup)];
        // If every ACK is lost the PBX never sees Confirmed; hang up from the UAC anyway.
        sim.on_incoming
            .push((Duration::from_secs(20), Action::UacHangup));
        sim.uac.dial(sim.now);
        sim.run_for(Duration::from_secs(120));
        assert_eq!(sim.uac.final_of(&Method::Invite), Some(200), "seed {seed}");
        assert_eq!(sim.uac.final_of(&Method::Bye), Some(200), "seed {seed}");
        assert_eq!(sim.end_cause(), Some(EndCause::RemoteBye), "seed {seed}");
        assert_eq!(sim.kinds().first(), Some(&"incoming"), "seed {seed}");
        assert_eq!(sim.kinds().last(), Some(&"ended"), "seed {seed}");
        sim.assert_clean();
        dropped += sim.dropped;
    }
    assert!(dropped > 60, "the network really lost packets ({dropped})");
}

#[test]
fn tcp_answers_on_the_same_connection_without_retransmissions() {
    let mut ep = endpoint(9);
    let t0 = origin();
    let peer = Peer {
        transport: Transport::Tcp,
        addr: "198.51.100.20:40001".parse().unwrap(),
        conn: Some(17),
    };
    let invite = "INVITE sip:1000@192.0.2.1;transport=tcp SIP/2.0\r\n\
        Via: SIP/2.0/TCP 198.51.100.20:40001;branch=z9hG4bKtcp1\r\nMax-Forwards: 70\r\n\
        From: <sip:bob@example.com>;tag=b1\r\nTo: <sip:1000@192.0.2.1>\r\nCall-ID: tcp-1\r\n\
        CSeq: 1 INVITE\r\nContact: <sip:bob@198.51.100.20:40001;transport=tcp>\r\nl: 0\r\n\r\n";
    ep.handle_input(t0, peer, invite.as_bytes());
    let out = support::drain(&mut ep);
    assert_eq!(out.statuses(), vec![100]);
    assert!(out.sent.iter().all(|(p, _)| *p == peer));
    let SipEvent::IncomingCall(call) = &out.events[0] else {
        panic!()
    };
    ep.respond(t0, call.key, 486, None, None).unwrap();
    let out = support::drain(&mut ep);
    assert_eq!(out.statuses(), vec![486]);
    // No Timer G over TCP: nothing is due before Timer H.
    assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    ep.handle_timeout(t0 + Duration::from_secs(32));
    assert!(support::drain(&mut ep).sent.is_empty());
    assert_eq!(ep.transaction_count(), 0);

    ep.handle_input(
        t0,
        peer,
        invite
            .replace("tcp1", "tcp2")
            .replace("tcp-1", "tcp-2")
            .as_bytes(),
    );
    let out = support::drain(&mut ep);
    let SipEvent::IncomingCall(call) = &out.events[0] else {
        panic!()
    };
    ep.respond(t0, call.key, 200, None, Some(ANSWER.to_vec()))
        .unwrap();
    let out = support::drain(&mut ep);
    let ok = out.responses()[0];
    assert_eq!(
        ok.headers.get("Contact"),
        Some(&*format!("<sip:pbx@{PBX_UDP};transport=tcp>"))
    );
    assert_eq!(ok.body, ANSWER);
    assert!(ok.headers.get("Allow").unwrap().contains("BYE"));
}

#[test]
fn in_dialog_requests() {
    let mut ep = endpoint(10);
    let t0 = origin();
    let peer = support::udp_peer(UAC);
    let head = |method: &str, branch: &str, cseq: u32, to_tag: &str| {
        format!(
            "{method} sip:pbx@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP {UAC};branch=z9hG4bK{branch}\r\n\
             From: <sip:alice@x>;tag=a1\r\nTo: <sip:1000@192.0.2.1>{to_tag}\r\nCall-ID: d-1\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:alice@{UAC}>\r\nMax-Forwards: 70\r\n"
        )
    };
    let invite = format!(
        "{}Content-Type: application/sdp\r\nl: {}\r\n\r\n",
        head("INVITE", "i1", 1, ""),
        SDP.len()
    );
    let mut bytes = invite.into_bytes();
    bytes.extend_from_slice(SDP);
    ep.handle_input(t0, peer, &bytes);
    let out = support::drain(&mut ep);
    let SipEvent::IncomingCall(call) = &out.events[0] else {
        panic!()
    };
    let key = call.key;
    ep.respond(t0, key, 200, None, Some(ANSWER.to_vec()))
        .unwrap();
    let out = support::drain(&mut ep);
    let tag = format!(
        ";tag={}",
        out.responses()[0].headers.to().unwrap().tag().unwrap()
    );
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("ACK", "a1", 1, &tag)).as_bytes(),
    );
    assert_eq!(
        support::drain(&mut ep).events,
        vec![SipEvent::Confirmed { key }]
    );

    // INFO with DTMF.
    let info = format!(
        "{}Content-Type: application/dtmf-relay\r\nl: 24\r\n\r\nSignal=5\r\nDuration=160\r\n",
        head("INFO", "n1", 2, &tag)
    );
    ep.handle_input(t0, peer, info.as_bytes());
    let out = support::drain(&mut ep);
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(
        out.events,
        vec![SipEvent::Dtmf {
            key,
            digit: "5".into()
        }]
    );

    // Session refresh: re-INVITE gets 200 with the SDP we sent and is reported; its ACK stops
    // the 2xx.
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("INVITE", "r1", 3, &tag)).as_bytes(),
    );
    let out = support::drain(&mut ep);
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(out.responses()[0].body, ANSWER);
    assert_eq!(
        out.events,
        vec![SipEvent::RemoteReinvite { key, sdp: None }]
    );
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("ACK", "a3", 3, &tag)).as_bytes(),
    );
    assert!(support::drain(&mut ep).sent.is_empty());

    // Out of order CSeq: 500.
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("INFO", "n0", 1, &tag)).as_bytes(),
    );
    assert_eq!(support::drain(&mut ep).statuses(), vec![500]);

    // Unknown dialog: 481; ACK to unknown dialog: nothing.
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("BYE", "x1", 9, ";tag=nope")).as_bytes(),
    );
    assert_eq!(support::drain(&mut ep).statuses(), vec![481]);
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("ACK", "x2", 9, ";tag=nope")).as_bytes(),
    );
    assert!(support::drain(&mut ep).sent.is_empty());

    // OPTIONS outside a dialog: 200 with Allow, Accept, Supported.
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("OPTIONS", "o1", 1, "")).as_bytes(),
    );
    let out = support::drain(&mut ep);
    let ok = out.responses()[0];
    assert_eq!(ok.status, 200);
    assert!(
        ok.headers.contains("Allow")
            && ok.headers.contains("Accept")
            && ok.headers.contains("Supported")
    );

    // BYE: 200 and Ended{RemoteBye}.
    ep.handle_input(
        t0,
        peer,
        format!("{}l: 0\r\n\r\n", head("BYE", "b1", 4, &tag)).as_bytes(),
    );
    let out = support::drain(&mut ep);
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(
        out.events,
        vec![SipEvent::Ended {
            key,
            cause: EndCause::RemoteBye
        }]
    );
    assert_eq!(ep.hangup(t0, key), Err(SipError::UnknownCall(key)));
}
