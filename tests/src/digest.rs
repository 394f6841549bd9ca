//! Raw REGISTER requests with HTTP digest (RFC 2617/7616, MD5, qop=auth), for registrar
//! checks that must see the exact responses: status, reason and challenge headers.
//!
//! Invariant: the request is fully determined by its arguments (Call-ID, CSeq, cnonce), so
//! two requests that differ only in the username or password differ only in those fields.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use md5::{Digest, Md5};

use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::error::{HarnessError, Result};
use crate::net::loopback;
use crate::sip_raw::SipResponse;

/// Hex MD5 of `text`.
pub fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// The parameters of one `Digest ...` challenge (lower-case names, unquoted values).
pub fn parse_challenge(value: &str) -> BTreeMap<String, String> {
    let rest = value.trim();
    let rest = rest
        .strip_prefix("Digest")
        .or_else(|| rest.strip_prefix("digest"))
        .unwrap_or(rest);
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    params
}

/// Every `WWW-Authenticate` challenge of a response, parsed.
pub fn challenges(resp: &SipResponse) -> Vec<BTreeMap<String, String>> {
    resp.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| parse_challenge(v))
        .collect()
}

/// The MD5 challenge of a response (`algorithm=MD5` or none), if any.
pub fn md5_challenge(resp: &SipResponse) -> Option<BTreeMap<String, String>> {
    challenges(resp).into_iter().find(|c| {
        c.get("algorithm")
            .is_none_or(|a| a.eq_ignore_ascii_case("md5"))
    })
}

/// An `Authorization` value answering `challenge` for `method` `uri` with `user`/`password`
/// (qop=auth when offered, nc=00000001).
pub fn authorization(
    challenge: &BTreeMap<String, String>,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> String {
    let realm = challenge.get("realm").map_or("", String::as_str);
    let nonce = challenge.get("nonce").map_or("", String::as_str);
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let qop_auth = challenge
        .get("qop")
        .is_some_and(|q| q.split(',').any(|v| v.trim() == "auth"));
    let mut value = if qop_auth {
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5, cnonce=\"{cnonce}\", qop=auth, nc=00000001"
        )
    } else {
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5"
        )
    };
    if let Some(opaque) = challenge.get("opaque") {
        value.push_str(&format!(", opaque=\"{opaque}\""));
    }
    value
}

/// A REGISTER for `user` at `registrar` from `local` (UDP), binding `local` as Contact for
/// 60 s, optionally with an `Authorization` value.
pub fn register_request(
    local: SocketAddr,
    registrar: SocketAddr,
    user: &str,
    call_id: &str,
    cseq: u32,
    authorization: Option<&str>,
) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let branch = format!("z9hG4bK-reg-{call_id}-{cseq}");
    format!(
        "REGISTER sip:{registrar} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{registrar}>;tag=reg{cseq}\r\n\
         To: <sip:{user}@{registrar}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{local}>;expires=60\r\n\
         {auth}\
         User-Agent: pbx-e2e\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends REGISTER for `user` to `registrar` over UDP from one socket (as a phone does),
/// answers its MD5 challenge with `password`, and returns both final responses (the
/// challenge and the verdict).
pub async fn register_with_digest(
    registrar: SocketAddr,
    user: &str,
    password: &str,
) -> Result<(SipResponse, SipResponse)> {
    let socket = UdpSocket::bind(loopback(0))
        .await
        .map_err(|e| HarnessError::io("bind udp", e))?;
    let local = socket
        .local_addr()
        .map_err(|e| HarnessError::io("udp local_addr", e))?;
    let call_id = format!("e2e-reg-{user}-{:08x}", rand::random::<u32>());
    let request = register_request(local, registrar, user, &call_id, 1, None);
    let first = exchange(&socket, registrar, &request, Duration::from_secs(5)).await?;
    let challenge = md5_challenge(&first).ok_or_else(|| {
        HarnessError::protocol(
            format!("registrar {registrar}"),
            format!("no MD5 challenge for {user}: {}", first.raw),
        )
    })?;
    let uri = format!("sip:{registrar}");
    let auth = authorization(&challenge, "REGISTER", &uri, user, password, "0a4f113b");
    let request = register_request(local, registrar, user, &call_id, 2, Some(&auth));
    let second = exchange(&socket, registrar, &request, Duration::from_secs(5)).await?;
    Ok((first, second))
}

/// Sends `request` (retransmitting like Timer E) and returns the first final response whose
/// CSeq matches, at most `timeout`.
pub async fn exchange(
    socket: &UdpSocket,
    target: SocketAddr,
    request: &str,
    timeout: Duration,
) -> Result<SipResponse> {
    let deadline = Instant::now() + timeout;
    let cseq = request
        .lines()
        .find_map(|l| l.strip_prefix("CSeq: "))
        .unwrap_or("")
        .trim()
        .to_string();
    let mut next_send = Instant::now();
    let mut retransmit = Duration::from_millis(500);
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(HarnessError::timeout(
                format!("a final response ({cseq}) from {target}"),
                timeout,
            ));
        }
        if now >= next_send {
            socket
                .send_to(request.as_bytes(), target)
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
                && resp.header("CSeq").is_some_and(|c| c.trim() == cseq)
            {
                return Ok(resp);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example (qop=auth, MD5).
    #[test]
    fn rfc2617_example() {
        let challenge = parse_challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        );
        assert_eq!(challenge["realm"], "testrealm@host.com");
        let value = authorization(
            &challenge,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
        );
        assert!(
            value.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{value}"
        );
        assert!(value.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
    }

    #[test]
    fn unquoted_params() {
        let c =
            parse_challenge("Digest realm=\"pbx\", nonce=\"a,b\", algorithm=SHA-256, stale=FALSE");
        assert_eq!(c["nonce"], "a,b");
        assert_eq!(c["algorithm"], "SHA-256");
        assert_eq!(c["stale"], "FALSE");
    }
}
