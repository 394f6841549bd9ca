//! Which UDP ports RTP sockets bind: the kernel's ephemeral ports, or a configured range
//! (`--rtp-ports 20000-29999`) so that a firewall can be opened for exactly those.
//!
//! Invariants: within a range only even ports are used (RFC 3550 §11 leaves the odd one above
//! each for RTCP); ports are handed out round robin from a shared cursor, so a port just
//! released is the last to be tried again; a port another process holds is skipped; when
//! every port of the range is taken, `bind` says so and the call is refused (503), never
//! given a port outside the range.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::UdpSocket;
use tracing::warn;

/// An inclusive range of UDP ports for RTP, or none (ephemeral ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpPortRange {
    pub first: u16,
    pub last: u16,
}

impl std::str::FromStr for RtpPortRange {
    type Err = String;

    /// `FIRST-LAST`, both inclusive, with at least one even port between them.
    fn from_str(text: &str) -> Result<Self, String> {
        let (first, last) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not a port range like 20000-29999"))?;
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{p}` in `{text}` is not a port number"))
        };
        let (first, last) = (port(first)?, port(last)?);
        if first == 0 || first > last {
            return Err(format!(
                "`{text}`: the range must start above 0 and not end before it starts"
            ));
        }
        let range = RtpPortRange { first, last };
        if range.even_ports() == 0 {
            return Err(format!("`{text}` holds no even port for RTP"));
        }
        Ok(range)
    }
}

impl RtpPortRange {
    /// The first even port of the range.
    fn first_even(self) -> u32 {
        u32::from(self.first).next_multiple_of(2)
    }

    /// How many even ports the range holds.
    fn even_ports(self) -> u32 {
        let first = self.first_even();
        let last = u32::from(self.last);
        if first > last {
            0
        } else {
            (last - first) / 2 + 1
        }
    }
}

/// Hands out RTP sockets.
#[derive(Debug, Default)]
pub struct RtpPorts {
    range: Option<RtpPortRange>,
    next: AtomicU32,
}

impl RtpPorts {
    /// Sockets on `range`'s even ports, or on ephemeral ports when `None`.
    pub fn new(range: Option<RtpPortRange>) -> Self {
        RtpPorts {
            range,
            next: AtomicU32::new(0),
        }
    }

    /// The port to try for the `n`th attempt overall, within the range.
    fn port(range: RtpPortRange, n: u32) -> u16 {
        let port = range.first_even() + 2 * (n % range.even_ports());
        u16::try_from(port).unwrap_or(range.last)
    }

    /// A socket on `ip` and its address; `None` when no port could be bound (logged).
    pub async fn bind(&self, ip: IpAddr) -> Option<(UdpSocket, SocketAddr)> {
        let Some(range) = self.range else {
            return bound(UdpSocket::bind((ip, 0)).await);
        };
        for _ in 0..range.even_ports() {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if let Ok(socket) = UdpSocket::bind((ip, Self::port(range, n))).await {
                return bound(Ok(socket));
            }
        }
        warn!(
            first = range.first,
            last = range.last,
            "every RTP port of the range is in use"
        );
        None
    }
}

fn bound(socket: std::io::Result<UdpSocket>) -> Option<(UdpSocket, SocketAddr)> {
    let socket = match socket {
        Ok(socket) => socket,
        Err(err) => {
            warn!(%err, "cannot bind an RTP socket");
            return None;
        }
    };
    match socket.local_addr() {
        Ok(local) => Some((socket, local)),
        Err(err) => {
            warn!(%err, "RTP socket has no address");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_name_their_problem() {
        let range: RtpPortRange = "20000-29999".parse().unwrap();
        assert_eq!((range.first, range.last), (20000, 29999));
        assert_eq!(range.even_ports(), 5000);
        assert_eq!("7001-7002".parse::<RtpPortRange>().unwrap().even_ports(), 1);
        for bad in [
            "",
            "20000",
            "a-b",
            "0-10",
            "30000-20000",
            "7001-7001",
            "1-70000",
        ] {
            assert!(bad.parse::<RtpPortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_go_round_the_even_ports_of_the_range() {
        let range: RtpPortRange = "7001-7006".parse().unwrap();
        let ports: Vec<u16> = (0..5).map(|n| RtpPorts::port(range, n)).collect();
        assert_eq!(ports, vec![7002, 7004, 7006, 7002, 7004]);
    }

    #[tokio::test]
    async fn a_full_range_binds_nothing_and_a_freed_port_is_used_again() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        // Find two adjacent free even ports by letting the kernel pick a base.
        let probe = std::net::UdpSocket::bind((ip, 0)).unwrap();
        let base = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        let base = base.clamp(1024, 60000);
        let range = RtpPortRange {
            first: base,
            last: base + 3,
        };
        let ports = RtpPorts::new(Some(range));
        let Some((a, a_addr)) = ports.bind(ip).await else {
            return; // another process took the probed ports: nothing to learn here
        };
        let Some((_b, b_addr)) = ports.bind(ip).await else {
            return;
        };
        assert_ne!(a_addr.port(), b_addr.port());
        for addr in [a_addr, b_addr] {
            assert!(addr.port() % 2 == 0 && (range.first..=range.last).contains(&addr.port()));
        }
        assert!(ports.bind(ip).await.is_none(), "the range is full");
        drop(a);
        let (_, again) = ports.bind(ip).await.unwrap();
        assert_eq!(again.port(), a_addr.port());
    }
}
