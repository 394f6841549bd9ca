//! Helpers shared by the integration tests: an endpoint with fixed addresses, a virtual-time
//! origin, and draining outputs into parsed responses and events.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, reason = "tests")]

use std::net::SocketAddr;
use std::time::Instant;

use pbx_sip::{
    Endpoint, EndpointConfig, Output, Peer, Response, SipEvent, SipMessage, Timers, Transport,
};

pub(crate) const PBX_UDP: &str = "192.0.2.1:5060";
pub(crate) const PBX_TCP: &str = "192.0.2.1:5060";

#[allow(
    clippy::disallowed_methods,
    reason = "tests need an arbitrary origin for virtual time"
)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}

/// The call cap of [`endpoint`]: small enough for tests to reach.
pub(crate) const MAX_CALLS: usize = 4_096;

pub(crate) fn endpoint(seed: u64) -> Endpoint {
    endpoint_with_max_calls(seed, MAX_CALLS)
}

pub(crate) fn endpoint_with_max_calls(seed: u64, max_calls: usize) -> Endpoint {
    endpoint_with_limits(seed, max_calls, pbx_sip::endpoint::MAX_TRANSACTIONS)
}

/// An endpoint with a call cap and a transaction backstop small enough to reach.
pub(crate) fn endpoint_with_limits(
    seed: u64,
    max_calls: usize,
    max_transactions: usize,
) -> Endpoint {
    Endpoint::new(EndpointConfig {
        udp_addr: Some(PBX_UDP.parse().unwrap()),
        tcp_addr: Some(PBX_TCP.parse().unwrap()),
        user_agent: "pbx-test".into(),
        timers: Timers::default(),
        seed,
        max_calls,
        max_transactions,
    })
}

pub(crate) fn udp_peer(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse::<SocketAddr>().unwrap(),
        conn: None,
    }
}

/// Everything the endpoint produced, split into (destination, parsed message) and events.
#[derive(Default, Debug)]
pub(crate) struct Drained {
    pub(crate) sent: Vec<(Peer, SipMessage)>,
    pub(crate) events: Vec<SipEvent>,
}

impl Drained {
    pub(crate) fn responses(&self) -> Vec<&Response> {
        self.sent
            .iter()
            .filter_map(|(_, m)| match m {
                SipMessage::Response(r) => Some(r),
                SipMessage::Request(_) => None,
            })
            .collect()
    }

    pub(crate) fn statuses(&self) -> Vec<u16> {
        self.responses().iter().map(|r| r.status).collect()
    }
}

pub(crate) fn drain(ep: &mut Endpoint) -> Drained {
    let mut d = Drained::default();
    while let Some(o) = ep.poll_output() {
        match o {
            Output::Transmit(t) => {
                let msg = pbx_sip::parse(&t.bytes).expect("the endpoint sends parseable messages");
                d.sent.push((t.peer, msg));
            }
            Output::Event(e) => d.events.push(e),
        }
    }
    d
}
