//! Raw SIP requests from Rust over UDP or TCP, for checks that need no dialog (OPTIONS) and for
//! exact assertions on a response's status and headers.
//!
//! Invariants: one request per call, a bounded wait, provisional responses skipped; the reply
//! is parsed leniently (status line, headers, body by Content-Length) and never panics.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::error::{HarnessError, Result};
use crate::net::loopback;

/// A parsed SIP response.
#[derive(Debug, Clone)]
pub struct SipResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Headers in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// The whole message as text.
    pub raw: String,
}

impl SipResponse {
    /// The first header named `name` (case-insensitive; compact forms are not expanded).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses a response; `None` when it is not one.
    pub fn parse(text: &str) -> Option<SipResponse> {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let rest = status_line.strip_prefix("SIP/2.0 ")?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = code.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Some(SipResponse {
            status,
            reason: reason.to_string(),
            headers,
            body: body.to_string(),
            raw: text.to_string(),
        })
    }
}

/// The transport of a raw request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawTransport {
    /// One datagram each way.
    Udp,
    /// One connection.
    Tcp,
}

/// An OPTIONS request from `local` to `target` over `transport`.
pub fn options_request(local: SocketAddr, target: SocketAddr, transport: RawTransport) -> String {
    let tp = match transport {
        RawTransport::Udp => "UDP",
        RawTransport::Tcp => "TCP",
    };
    let tag: u32 = rand::random();
    let branch: u64 = rand::random();
    let call_id: u64 = rand::random();
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/{tp} {local};branch=z9hG4bK{branch:x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:e2e@{local}>;tag={tag:x}\r\n\
         To: <sip:{target}>\r\n\
         Call-ID: {call_id:x}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:e2e@{local}>\r\n\
         Accept: application/sdp\r\n\
         User-Agent: pbx-e2e\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends OPTIONS to `target` and returns the first final response, waiting at most `timeout`.
pub async fn options(
    target: SocketAddr,
    transport: RawTransport,
    timeout: Duration,
) -> Result<SipResponse> {
    request(target, transport, timeout, |local| {
        options_request(local, target, transport)
    })
    .await
}

/// Sends the request built by `build(local_addr)` and returns the first final response.
pub async fn request(
    target: SocketAddr,
    transport: RawTransport,
    timeout: Duration,
    build: impl FnOnce(SocketAddr) -> String,
) -> Result<SipResponse> {
    let deadline = Instant::now() + timeout;
    match transport {
        RawTransport::Udp => {
            let socket = UdpSocket::bind(loopback(0))
                .await
                .map_err(|e| HarnessError::io("bind udp", e))?;
            let local = socket
                .local_addr()
                .map_err(|e| HarnessError::io("udp local_addr", e))?;
            let req = build(local);
            let mut retransmit = Duration::from_millis(500);
            let mut next_send = Instant::now();
            let mut buf = vec![0u8; 65536];
            loop {
                let now = Instant::now();
                if now >= deadline {
                    return Err(HarnessError::timeout(
                        format!("a final SIP response from {target} (UDP)"),
                        timeout,
                    ));
                }
                if now >= next_send {
                    // RFC 3261 §17.1.2.2: Timer E retransmits a non-INVITE request over UDP.
                    socket
                        .send_to(req.as_bytes(), target)
                        .await
                        .map_err(|e| HarnessError::io("send udp", e))?;
                    next_send = now + retransmit;
                    retransmit = (retransmit * 2).min(Duration::from_secs(4));
                }
                let wait = next_send
                    .min(deadline)
                    .saturating_duration_since(Instant::now());
                if let Ok(recv) = tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
                    let (n, _) = recv.map_err(|e| HarnessError::io("recv udp", e))?;
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if let Some(resp) = SipResponse::parse(&text)
                        && resp.status >= 200
                    {
                        return Ok(resp);
                    }
                }
            }
        }
        RawTransport::Tcp => {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut stream = tokio::time::timeout(left, TcpStream::connect(target))
                .await
                .map_err(|_| HarnessError::timeout(format!("TCP connect to {target}"), timeout))?
                .map_err(|e| HarnessError::io(format!("TCP connect to {target}"), e))?;
            let local = stream
                .local_addr()
                .map_err(|e| HarnessError::io("tcp local_addr", e))?;
            stream
                .write_all(build(local).as_bytes())
                .await
                .map_err(|e| HarnessError::io("send tcp", e))?;
            let mut buf = Vec::new();
            loop {
                while let Some((msg, used)) = take_stream_message(&buf) {
                    buf.drain(..used);
                    if let Some(resp) = SipResponse::parse(&msg)
                        && resp.status >= 200
                    {
                        return Ok(resp);
                    }
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let mut chunk = [0u8; 8192];
                match tokio::time::timeout(left, stream.read(&mut chunk)).await {
                    Err(_) => {
                        return Err(HarnessError::timeout(
                            format!("a final SIP response from {target} (TCP)"),
                            timeout,
                        ));
                    }
                    Ok(Ok(0)) => {
                        return Err(HarnessError::protocol(
                            format!("{target} (TCP)"),
                            "connection closed before a final response",
                        ));
                    }
                    Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                    Ok(Err(e)) => return Err(HarnessError::io("read tcp", e)),
                }
            }
        }
    }
}

/// Splits one message off a TCP byte stream by Content-Length (RFC 3261 §18.3).
fn take_stream_message(buf: &[u8]) -> Option<(String, usize)> {
    // Keep-alive CRLFs between messages.
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let rest = &buf[start..];
    let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&rest[..head_end]);
    let len = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length") || n.trim() == "l")
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if rest.len() < head_end + len {
        return None;
    }
    let msg = String::from_utf8_lossy(&rest[..head_end + len]).into_owned();
    Some((msg, start + head_end + len))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let r =
            SipResponse::parse("SIP/2.0 200 OK\r\nAllow: INVITE, BYE\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.reason, "OK");
        assert_eq!(r.header("allow"), Some("INVITE, BYE"));
        assert!(SipResponse::parse("INVITE sip:x SIP/2.0\r\n\r\n").is_none());
    }

    #[test]
    fn splits_a_stream() {
        let two = b"\r\nSIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\nSIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcSIP";
        let (first, used) = take_stream_message(two).unwrap();
        assert!(first.starts_with("SIP/2.0 100"));
        let (second, used2) = take_stream_message(&two[used..]).unwrap();
        assert!(second.ends_with("abc"));
        assert!(take_stream_message(&two[used + used2..]).is_none());
    }
}
