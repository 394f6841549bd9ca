//! Free loopback ports for the processes under test.
//!
//! Invariant: only 127.0.0.1 is ever used, so the harness behaves the same inside a
//! loopback-only network namespace and outside one. A port is found by binding and then
//! released, so another process may take it before ours binds it; callers that start a
//! server retry with fresh ports when it reports the port taken.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};

use rand::Rng;

use crate::error::{HarnessError, Result};

/// The only address the harness uses.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A loopback socket address with the given port.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(LOOPBACK, port))
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(loopback(port)).is_ok()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(loopback(port)).is_ok()
}

/// A port that is free for both UDP and TCP (SIP listens on both with one number).
pub fn free_udp_tcp_port() -> Result<u16> {
    for _ in 0..64 {
        let udp = UdpSocket::bind(loopback(0)).map_err(|e| HarnessError::io("bind udp :0", e))?;
        let port = udp
            .local_addr()
            .map_err(|e| HarnessError::io("udp local_addr", e))?
            .port();
        if TcpListener::bind(loopback(port)).is_ok() {
            return Ok(port);
        }
    }
    Err(HarnessError::protocol(
        "kernel",
        "no port free for both UDP and TCP after 64 tries",
    ))
}

/// A free TCP port (the HTTP API, baresip's ctrl_tcp).
pub fn free_tcp_port() -> Result<u16> {
    let listener =
        TcpListener::bind(loopback(0)).map_err(|e| HarnessError::io("bind tcp :0", e))?;
    Ok(listener
        .local_addr()
        .map_err(|e| HarnessError::io("tcp local_addr", e))?
        .port())
}

/// A free UDP port.
pub fn free_udp_port() -> Result<u16> {
    let socket = UdpSocket::bind(loopback(0)).map_err(|e| HarnessError::io("bind udp :0", e))?;
    Ok(socket
        .local_addr()
        .map_err(|e| HarnessError::io("udp local_addr", e))?
        .port())
}

/// The first port of `len` consecutive ports, free for UDP and TCP, starting at an even
/// number, below the kernel's ephemeral range so that `:0` binds of other tests rarely land
/// in it. Used for peers that take several ports from one number (baresip: SIP and SIP+1 for
/// TLS; sipp: media port, +1 RTCP, +2 video; RTP ranges).
pub fn free_port_block(len: u16) -> Result<u16> {
    let len = len.max(1);
    let mut rng = rand::rng();
    for _ in 0..256 {
        let base: u16 = rng.random_range(10_000u16..30_000) & !1;
        let all_free = (base..base + len).all(|port| udp_free(port) && tcp_free(port));
        if all_free {
            return Ok(base);
        }
    }
    Err(HarnessError::protocol(
        "kernel",
        format!("no block of {len} free ports found in 10000..30000"),
    ))
}
