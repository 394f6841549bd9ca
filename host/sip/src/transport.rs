//! Where bytes come from and go to: the only transport facts the sans-IO core knows.
//!
//! The shell owns sockets and connections; the core names a peer by transport, address and,
//! for TCP, the shell's connection id, so a response can go back on the connection its request
//! came in on (RFC 3261 §18.2.2).

use std::fmt;
use std::net::SocketAddr;

/// The transport protocols the shell serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: unreliable, so transactions retransmit.
    Udp,
    /// A stream: reliable, framed by Content-Length.
    Tcp,
}

impl Transport {
    /// Reliable transports get no retransmissions and zero-length wait timers (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The token used in Via and in the `transport` URI parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where bytes came from or go to. For TCP, `conn` names the connection the shell keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport the bytes travel over.
    pub transport: Transport,
    /// The remote address.
    pub addr: SocketAddr,
    /// The shell's connection id for stream transports.
    pub conn: Option<u64>,
}

/// Bytes the shell must send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub peer: Peer,
    /// One complete SIP message.
    pub bytes: Vec<u8>,
}
