//! Two `Endpoint`s wired together in-process through a seeded lossy virtual network: A calls
//! B (UAC against UAS), and the test plays both call layers with scripted reactions to events.
//! Virtual time jumps to the next wake-up, so SIP timers of 32 s run in milliseconds.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_sip::{
    CallKey, EndCause, Endpoint, EndpointConfig, OutgoingCall, Output, Peer, SipError, SipEvent,
    Timers, Transport,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::origin;

const A_ADDR: &str = "192.0.2.1:5060";
const B_ADDR: &str = "198.51.100.20:5080";
const OFFER: &[u8] = b"v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
const ANSWER: &[u8] = b"v=0\r\no=b 1 1 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
const HOLD: &[u8] = b"v=0\r\no=a 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
const B_NEW: &[u8] = b"v=0\r\no=b 1 2 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.21\r\nt=0 0\r\nm=audio 5002 RTP/AVP 0\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// A call-layer command.
#[derive(Debug, Clone)]
enum Cmd {
    Respond(u16),
    Answer,
    Hangup,
    Cancel,
    Reinvite(&'static [u8]),
}

type Reaction = Box<dyn FnMut(Side, &SipEvent) -> Vec<(Duration, Side, CallKey, Cmd)>>;

struct Pair {
    now: Instant,
    t0: Instant,
    rng: StdRng,
    loss: f64,
    jitter: bool,
    a: Endpoint,
    b: Endpoint,
    /// (deliver at, to B?, bytes)
    wire: Vec<(Instant, bool, Vec<u8>)>,
    scheduled: Vec<(Instant, Side, CallKey, Cmd)>,
    events_a: Vec<SipEvent>,
    events_b: Vec<SipEvent>,
    react: Reaction,
    errors: Vec<SipError>,
    dropped: usize,
    /// Every message put on the wire (before loss): sender and a summary such as
    /// `INVITE 1` (method and CSeq) or `200 CANCEL` (status and CSeq method).
    log: Vec<(Side, String)>,
}

fn config(addr: &str, seed: u64) -> EndpointConfig {
    EndpointConfig {
        udp_addr: Some(addr.parse().unwrap()),
        tcp_addr: None,
        user_agent: "pbx-pair".into(),
        timers: Timers::default(),
        seed,
        max_calls: pbx_sip::endpoint::DEFAULT_MAX_CALLS,
        max_transactions: pbx_sip::endpoint::MAX_TRANSACTIONS,
    }
}

fn key_of(e: &SipEvent) -> Option<CallKey> {
    match e {
        SipEvent::IncomingCall(c) => Some(c.key),
        SipEvent::Confirmed { key }
        | SipEvent::Cancelled { key }
        | SipEvent::Ended { key, .. }
        | SipEvent::Dtmf { key, .. }
        | SipEvent::Progress { key, .. }
        | SipEvent::Answered { key, .. }
        | SipEvent::Failed { key, .. }
        | SipEvent::ReinviteDone { key, .. }
        | SipEvent::RemoteReinvite { key, .. } => Some(*key),
        _ => None,
    }
}

fn kind(e: &SipEvent) -> &'static str {
    match e {
        SipEvent::IncomingCall(_) => "incoming",
        SipEvent::Confirmed { .. } => "confirmed",
        SipEvent::Cancelled { .. } => "cancelled",
        SipEvent::Ended { .. } => "ended",
        SipEvent::Dtmf { .. } => "dtmf",
        SipEvent::Progress { .. } => "progress",
        SipEvent::Answered { .. } => "answered",
        SipEvent::Failed { .. } => "failed",
        SipEvent::ReinviteDone { .. } => "reinvite-done",
        SipEvent::RemoteReinvite { .. } => "remote-reinvite",
        SipEvent::Register(_) => "register",
    }
}

fn summary(bytes: &[u8]) -> String {
    match pbx_sip::parse(bytes).unwrap() {
        pbx_sip::SipMessage::Request(r) => {
            format!("{} {}", r.method, r.headers.cseq().unwrap().seq)
        }
        pbx_sip::SipMessage::Response(r) => {
            format!("{} {}", r.status, r.headers.cseq().unwrap().method)
        }
    }
}

/// B rings at 100 ms and answers at 1 s.
fn ring_then_answer() -> Reaction {
    Box::new(|side, e| match (side, e) {
        (Side::B, SipEvent::IncomingCall(c)) => vec![
            (
                Duration::from_millis(100),
                Side::B,
                c.key,
                Cmd::Respond(180),
            ),
            (Duration::from_secs(1), Side::B, c.key, Cmd::Answer),
        ],
        _ => Vec::new(),
    })
}

impl Pair {
    fn new(seed: u64, loss: f64, react: Reaction) -> Pair {
        let t0 = origin();
        Pair {
            now: t0,
            t0,
            rng: StdRng::seed_from_u64(seed),
            loss,
            jitter: true,
            a: Endpoint::new(config(A_ADDR, seed)),
            b: Endpoint::new(config(B_ADDR, seed ^ 0xb)),
            wire: Vec::new(),
            scheduled: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            react,
            errors: Vec::new(),
            dropped: 0,
            log: Vec::new(),
        }
    }

    fn call(&mut self) -> CallKey {
        let call = OutgoingCall {
            request_uri: format!("sip:bob@{B_ADDR}"),
            destination: Peer {
                transport: Transport::Udp,
                addr: B_ADDR.parse().unwrap(),
                conn: None,
            },
            from_uri: "sip:1000@192.0.2.1".into(),
            from_display: Some("Front Desk".into()),
            to_uri: format!("sip:bob@{B_ADDR}"),
            headers: vec![("X-Leg".into(), "1".into())],
            sdp: Some(OFFER.to_vec()),
            credentials: None,
        };
        let key = self.a.invite(self.now, call).unwrap();
        self.pump();
        key
    }

    fn at(&mut self, after: Duration, side: Side, key: CallKey, cmd: Cmd) {
        self.scheduled.push((self.now + after, side, key, cmd));
    }

    fn send(&mut self, to_b: bool, bytes: Vec<u8>) {
        if self.rng.random_bool(self.loss) {
            self.dropped += 1;
            return;
        }
        let jitter = if self.jitter {
            Duration::from_millis(self.rng.random_range(0..10))
        } else {
            Duration::ZERO
        };
        self.wire
            .push((self.now + Duration::from_millis(20) + jitter, to_b, bytes));
    }

    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for side in [Side::A, Side::B] {
                loop {
                    let ep = match side {
                        Side::A => &mut self.a,
                        Side::B => &mut self.b,
                    };
                    let Some(o) = ep.poll_output() else { break };
                    progressed = true;
                    match o {
                        Output::Transmit(t) => {
                            let to_b = t.peer.addr == B_ADDR.parse::<SocketAddr>().unwrap();
                            let to_a = t.peer.addr == A_ADDR.parse::<SocketAddr>().unwrap();
                            assert!(to_a || to_b, "sent to {}", t.peer.addr);
                            assert_eq!(to_b, side == Side::A, "each side sends to the other");
                            self.log.push((side, summary(&t.bytes)));
                            self.send(to_b, t.bytes);
                        }
                        Output::Event(e) => {
                            let plan = (self.react)(side, &e);
                            for (after, s, k, cmd) in plan {
                                self.scheduled.push((self.now + after, s, k, cmd));
                            }
                            match side {
                                Side::A => self.events_a.push(e),
                                Side::B => self.events_b.push(e),
                            }
                        }
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn act(&mut self, side: Side, key: CallKey, cmd: Cmd) {
        let now = self.now;
        let ep = match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        };
        let r = match cmd {
            Cmd::Respond(s) => ep.respond(now, key, s, None, None),
            Cmd::Answer => ep.respond(now, key, 200, None, Some(ANSWER.to_vec())),
            Cmd::Hangup => ep.hangup(now, key),
            Cmd::Cancel => ep.cancel(now, key),
            Cmd::Reinvite(sdp) => ep.reinvite(now, key, sdp.to_vec()),
        };
        if let Err(e) = r {
            self.errors.push(e);
        }
    }

    fn run_for(&mut self, limit: Duration) {
        let end = self.t0 + limit;
        self.pump();
        loop {
            let next = [
                self.wire.iter().map(|w| w.0).min(),
                self.scheduled.iter().map(|s| s.0).min(),
                self.a.poll_timeout(),
                self.b.poll_timeout(),
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
            for (_, to_b, bytes) in due {
                if to_b {
                    let from = support::udp_peer(A_ADDR);
                    self.b.handle_input(now, from, &bytes);
                } else {
                    let from = support::udp_peer(B_ADDR);
                    self.a.handle_input(now, from, &bytes);
                }
                self.pump();
            }
            let (due, rest): (Vec<_>, Vec<_>) = self.scheduled.drain(..).partition(|s| s.0 <= now);
            self.scheduled = rest;
            for (_, side, key, cmd) in due {
                self.act(side, key, cmd);
                self.pump();
            }
            if self.a.poll_timeout().is_some_and(|t| t <= now) {
                self.a.handle_timeout(now);
            }
            if self.b.poll_timeout().is_some_and(|t| t <= now) {
                self.b.handle_timeout(now);
            }
            self.pump();
        }
    }

    fn kinds(events: &[SipEvent]) -> Vec<&'static str> {
        events.iter().map(kind).collect()
    }

    fn events_of(events: &[SipEvent], key: CallKey) -> Vec<SipEvent> {
        events
            .iter()
            .filter(|e| key_of(e) == Some(key))
            .cloned()
            .collect()
    }

    fn assert_clean(&self) {
        for (name, ep) in [("A", &self.a), ("B", &self.b)] {
            assert_eq!(ep.call_count(), 0, "{name}: calls leaked");
            assert_eq!(ep.transaction_count(), 0, "{name}: transactions leaked");
            assert_eq!(ep.poll_timeout(), None, "{name}: timers left");
        }
    }
}

#[test]
fn outbound_call_rings_is_answered_and_callee_hangs_up() {
    let mut p = Pair::new(
        1,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => vec![
                (
                    Duration::from_millis(100),
                    Side::B,
                    c.key,
                    Cmd::Respond(180),
                ),
                (Duration::from_secs(1), Side::B, c.key, Cmd::Answer),
            ],
            (Side::B, SipEvent::Confirmed { key }) => {
                vec![(Duration::from_secs(5), Side::B, *key, Cmd::Hangup)]
            }
            _ => Vec::new(),
        }),
    );
    let key = p.call();
    p.run_for(Duration::from_secs(60));
    assert_eq!(
        p.events_a,
        vec![
            SipEvent::Progress {
                key,
                status: 180,
                sdp: None
            },
            SipEvent::Answered {
                key,
                sdp: Some(ANSWER.to_vec())
            },
            SipEvent::Ended {
                key,
                cause: EndCause::RemoteBye
            },
        ]
    );
    let SipEvent::IncomingCall(incoming) = &p.events_b[0] else {
        panic!()
    };
    assert_eq!(incoming.sdp.as_deref(), Some(OFFER));
    assert_eq!(incoming.from_display.as_deref(), Some("Front Desk"));
    assert_eq!(incoming.from_user.as_deref(), Some("1000"));
    assert_eq!(incoming.to_user.as_deref(), Some("bob"));
    assert_eq!(
        Pair::kinds(&p.events_b),
        vec!["incoming", "confirmed", "ended"]
    );
    assert!(matches!(
        p.events_b[2],
        SipEvent::Ended {
            cause: EndCause::LocalByeDone { status: 200 },
            ..
        }
    ));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p.assert_clean();
}

#[test]
fn outbound_call_caller_hangs_up() {
    let mut p = Pair::new(
        2,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => {
                vec![(Duration::from_millis(500), Side::B, c.key, Cmd::Answer)]
            }
            (Side::A, SipEvent::Answered { key, .. }) => {
                vec![(Duration::from_secs(3), Side::A, *key, Cmd::Hangup)]
            }
            _ => Vec::new(),
        }),
    );
    let key = p.call();
    p.run_for(Duration::from_secs(60));
    assert_eq!(Pair::kinds(&p.events_a), vec!["answered", "ended"]);
    assert_eq!(
        p.events_a[1],
        SipEvent::Ended {
            key,
            cause: EndCause::LocalByeDone { status: 200 }
        }
    );
    assert_eq!(
        Pair::kinds(&p.events_b),
        vec!["incoming", "confirmed", "ended"]
    );
    assert!(matches!(
        p.events_b[2],
        SipEvent::Ended {
            cause: EndCause::RemoteBye,
            ..
        }
    ));
    p.assert_clean();
}

#[test]
fn busy_and_not_found_fail_with_their_status() {
    for status in [486, 404, 603] {
        let mut p = Pair::new(
            3,
            0.0,
            Box::new(move |side, e| match (side, e) {
                (Side::B, SipEvent::IncomingCall(c)) => {
                    vec![(
                        Duration::from_millis(200),
                        Side::B,
                        c.key,
                        Cmd::Respond(status),
                    )]
                }
                _ => Vec::new(),
            }),
        );
        let key = p.call();
        p.run_for(Duration::from_secs(60));
        assert_eq!(p.events_a, vec![SipEvent::Failed { key, status }]);
        assert_eq!(Pair::kinds(&p.events_b), vec!["incoming"]);
        p.assert_clean();
    }
}

#[test]
fn cancel_after_ringing_fails_with_487() {
    let mut p = Pair::new(
        4,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => {
                vec![(
                    Duration::from_millis(100),
                    Side::B,
                    c.key,
                    Cmd::Respond(180),
                )]
            }
            (Side::A, SipEvent::Progress { key, .. }) => {
                vec![(Duration::from_secs(2), Side::A, *key, Cmd::Cancel)]
            }
            _ => Vec::new(),
        }),
    );
    let key = p.call();
    p.run_for(Duration::from_secs(60));
    assert_eq!(Pair::kinds(&p.events_a), vec!["progress", "failed"]);
    assert_eq!(p.events_a[1], SipEvent::Failed { key, status: 487 });
    assert_eq!(Pair::kinds(&p.events_b), vec!["incoming", "cancelled"]);
    p.assert_clean();
}

#[test]
fn hangup_of_an_unanswered_outbound_call_cancels_it() {
    let mut p = Pair::new(
        5,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => {
                vec![(
                    Duration::from_millis(100),
                    Side::B,
                    c.key,
                    Cmd::Respond(183),
                )]
            }
            _ => Vec::new(),
        }),
    );
    let key = p.call();
    p.at(Duration::from_secs(1), Side::A, key, Cmd::Hangup);
    p.run_for(Duration::from_secs(60));
    assert_eq!(Pair::kinds(&p.events_a), vec!["progress", "failed"]);
    assert_eq!(Pair::kinds(&p.events_b), vec!["incoming", "cancelled"]);
    p.assert_clean();
}

#[test]
fn cancel_racing_the_200_acks_and_byes_it() {
    let mut p = Pair::new(
        6,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => vec![
                (
                    Duration::from_millis(100),
                    Side::B,
                    c.key,
                    Cmd::Respond(180),
                ),
                (Duration::from_millis(980), Side::B, c.key, Cmd::Answer),
            ],
            _ => Vec::new(),
        }),
    );
    p.jitter = false;
    let key = p.call();
    // The INVITE reaches B at 20 ms, so B answers at 1000 ms; A cancels at 1000 ms too: the
    // CANCEL and the 200 cross on the wire.
    p.at(Duration::from_millis(1000), Side::A, key, Cmd::Cancel);
    p.run_for(Duration::from_secs(60));
    assert_eq!(
        p.events_a,
        vec![
            SipEvent::Progress {
                key,
                status: 180,
                sdp: None
            },
            SipEvent::Failed { key, status: 487 },
        ]
    );
    let sent = |side: Side| -> Vec<&str> {
        p.log
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, m)| m.as_str())
            .collect()
    };
    assert_eq!(
        sent(Side::A),
        vec!["INVITE 1", "CANCEL 1", "ACK 1", "BYE 2"],
        "the CANCEL crossed the 200"
    );
    assert_eq!(
        sent(Side::B),
        vec![
            "100 INVITE",
            "180 INVITE",
            "200 INVITE",
            "200 CANCEL",
            "200 BYE"
        ],
        "no 487: B had answered"
    );
    // B saw its call answered, then ended by A's BYE.
    assert_eq!(
        Pair::kinds(&p.events_b),
        vec!["incoming", "confirmed", "ended"]
    );
    assert!(matches!(
        p.events_b[2],
        SipEvent::Ended {
            cause: EndCause::RemoteBye,
            ..
        }
    ));
    p.assert_clean();
}

#[test]
fn hold_by_reinvite_and_remote_reinvite_both_ways() {
    let mut p = Pair::new(
        7,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => {
                vec![(Duration::from_millis(100), Side::B, c.key, Cmd::Answer)]
            }
            (Side::A, SipEvent::Answered { key, .. }) => {
                vec![(Duration::from_secs(1), Side::A, *key, Cmd::Reinvite(HOLD))]
            }
            // B, the UAS of the dialog, re-INVITEs in turn once A's re-INVITE is done.
            (Side::B, SipEvent::RemoteReinvite { key, .. }) => {
                vec![(Duration::from_secs(1), Side::B, *key, Cmd::Reinvite(B_NEW))]
            }
            (Side::A, SipEvent::RemoteReinvite { key, .. }) => {
                vec![(Duration::from_secs(1), Side::A, *key, Cmd::Hangup)]
            }
            _ => Vec::new(),
        }),
    );
    let key = p.call();
    p.run_for(Duration::from_secs(60));
    assert_eq!(
        p.events_a,
        vec![
            SipEvent::Answered {
                key,
                sdp: Some(ANSWER.to_vec())
            },
            SipEvent::ReinviteDone {
                key,
                status: 200,
                sdp: Some(ANSWER.to_vec())
            },
            SipEvent::RemoteReinvite {
                key,
                sdp: Some(B_NEW.to_vec())
            },
            SipEvent::Ended {
                key,
                cause: EndCause::LocalByeDone { status: 200 }
            },
        ]
    );
    let bkey = key_of(&p.events_b[0]).unwrap();
    assert_eq!(
        p.events_b,
        vec![
            p.events_b[0].clone(),
            SipEvent::Confirmed { key: bkey },
            SipEvent::RemoteReinvite {
                key: bkey,
                sdp: Some(HOLD.to_vec())
            },
            // A answers B's re-INVITE with its current SDP: the hold offer.
            SipEvent::ReinviteDone {
                key: bkey,
                status: 200,
                sdp: Some(HOLD.to_vec())
            },
            SipEvent::Ended {
                key: bkey,
                cause: EndCause::RemoteBye
            },
        ]
    );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p.assert_clean();
}

#[test]
fn reinvite_glare_gets_491_on_both_sides() {
    let mut p = Pair::new(
        8,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => {
                vec![(Duration::from_millis(100), Side::B, c.key, Cmd::Answer)]
            }
            (Side::B, SipEvent::Confirmed { key }) => {
                vec![(Duration::from_secs(1), Side::B, *key, Cmd::Reinvite(B_NEW))]
            }
            _ => Vec::new(),
        }),
    );
    p.jitter = false;
    let key = p.call();
    // B is confirmed at 160 ms (INVITE 20, answer 120, 200 at A 140, ACK at B 160) and
    // re-INVITEs at 1160 ms; A re-INVITEs at the same moment.
    p.at(
        Duration::from_millis(1160),
        Side::A,
        key,
        Cmd::Reinvite(HOLD),
    );
    p.run_for(Duration::from_secs(5));
    assert_eq!(
        p.events_a.last(),
        Some(&SipEvent::ReinviteDone {
            key,
            status: 491,
            sdp: None
        })
    );
    assert!(matches!(
        p.events_b.last(),
        Some(SipEvent::ReinviteDone {
            status: 491,
            sdp: None,
            ..
        })
    ));
    // A second try from A now succeeds.
    p.at(Duration::ZERO, Side::A, key, Cmd::Reinvite(HOLD));
    p.run_for(Duration::from_secs(10));
    assert!(matches!(
        p.events_a.last(),
        Some(SipEvent::ReinviteDone { status: 200, .. })
    ));
}

#[test]
fn reinvite_is_refused_before_answer_or_while_one_is_pending() {
    let mut p = Pair::new(9, 0.0, ring_then_answer());
    let key = p.call();
    assert_eq!(
        p.a.reinvite(p.now, key, HOLD.to_vec()),
        Err(SipError::UnknownCall(key)),
        "not answered yet"
    );
    p.run_for(Duration::from_secs(2));
    p.a.reinvite(p.now, key, HOLD.to_vec()).unwrap();
    assert_eq!(
        p.a.reinvite(p.now, key, HOLD.to_vec()),
        Err(SipError::InvalidState(
            "an INVITE transaction is in progress in the dialog"
        ))
    );
    assert_eq!(
        p.a.respond(p.now, key, 200, None, None),
        Err(SipError::InvalidState(
            "the INVITE already has a final response"
        ))
    );
}

#[test]
fn ring_all_first_answer_wins_and_the_rest_are_cancelled() {
    let mut p = Pair::new(
        10,
        0.0,
        Box::new(|side, e| match (side, e) {
            (Side::B, SipEvent::IncomingCall(c)) => {
                let mut plan = vec![(
                    Duration::from_millis(100),
                    Side::B,
                    c.key,
                    Cmd::Respond(180),
                )];
                // The second leg to ring answers.
                if c.key == CallKey(2) {
                    plan.push((Duration::from_secs(2), Side::B, c.key, Cmd::Answer));
                }
                plan
            }
            _ => Vec::new(),
        }),
    );
    let keys = [p.call(), p.call(), p.call()];
    p.run_for(Duration::from_millis(1500));
    // Nothing answered yet: every leg rings.
    for k in keys {
        assert_eq!(
            Pair::kinds(&Pair::events_of(&p.events_a, k)),
            vec!["progress"]
        );
    }
    p.run_for(Duration::from_secs(3));
    let winner = *keys
        .iter()
        .find(|k| {
            Pair::events_of(&p.events_a, **k)
                .iter()
                .any(|e| matches!(e, SipEvent::Answered { .. }))
        })
        .unwrap();
    for k in keys.into_iter().filter(|k| *k != winner) {
        p.at(Duration::ZERO, Side::A, k, Cmd::Cancel);
    }
    p.at(Duration::from_secs(2), Side::A, winner, Cmd::Hangup);
    p.run_for(Duration::from_secs(60));
    for k in keys {
        let kinds = Pair::kinds(&Pair::events_of(&p.events_a, k));
        if k == winner {
            assert_eq!(kinds, vec!["progress", "answered", "ended"]);
        } else {
            assert_eq!(kinds, vec!["progress", "failed"]);
            assert!(Pair::events_of(&p.events_a, k).contains(&SipEvent::Failed {
                key: k,
                status: 487
            }));
        }
    }
    let mut b = Pair::kinds(&p.events_b);
    b.sort_unstable();
    assert_eq!(
        b,
        vec![
            "cancelled",
            "cancelled",
            "confirmed",
            "ended",
            "incoming",
            "incoming",
            "incoming"
        ]
    );
    p.assert_clean();
}

#[test]
fn whole_outbound_call_survives_30_percent_loss() {
    let mut dropped = 0;
    for seed in 200..240 {
        let mut p = Pair::new(
            seed,
            0.3,
            Box::new(|side, e| match (side, e) {
                (Side::B, SipEvent::IncomingCall(c)) => vec![
                    (
                        Duration::from_millis(100),
                        Side::B,
                        c.key,
                        Cmd::Respond(180),
                    ),
                    (Duration::from_secs(1), Side::B, c.key, Cmd::Answer),
                ],
                (Side::A, SipEvent::Answered { key, .. }) => vec![
                    (Duration::from_secs(2), Side::A, *key, Cmd::Reinvite(HOLD)),
                    (Duration::from_secs(10), Side::A, *key, Cmd::Hangup),
                ],
                _ => Vec::new(),
            }),
        );
        let key = p.call();
        p.run_for(Duration::from_secs(120));
        let kinds: Vec<_> = Pair::kinds(&p.events_a)
            .into_iter()
            .filter(|k| *k != "progress")
            .collect();
        assert_eq!(
            kinds,
            vec!["answered", "reinvite-done", "ended"],
            "seed {seed}: {:?}",
            p.events_a
        );
        assert!(
            p.events_a.contains(&SipEvent::ReinviteDone {
                key,
                status: 200,
                sdp: Some(ANSWER.to_vec())
            }),
            "seed {seed}"
        );
        assert_eq!(
            p.events_a.last(),
            Some(&SipEvent::Ended {
                key,
                cause: EndCause::LocalByeDone { status: 200 }
            }),
            "seed {seed}"
        );
        assert_eq!(Pair::kinds(&p.events_b).first(), Some(&"incoming"));
        assert!(
            matches!(
                p.events_b.last(),
                Some(SipEvent::Ended {
                    cause: EndCause::RemoteBye,
                    ..
                })
            ),
            "seed {seed}: {:?}",
            p.events_b
        );
        assert!(p.errors.is_empty(), "seed {seed}: {:?}", p.errors);
        p.assert_clean();
        dropped += p.dropped;
    }
    assert!(dropped > 100, "the network really lost packets ({dropped})");
}
