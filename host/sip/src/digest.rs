//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): challenges,
//! stateless nonces, parsing and checking `Authorization`, and answering a challenge as a UAC.
//!
//! Invariants: pure functions, no clock (time is an argument), no panics on input. Only
//! `qop=auth` (or no qop, RFC 2069 style) is spoken, with MD5 or SHA-256. Responses are
//! compared in constant time. Nonces carry their issue time and an HMAC-SHA-256 over it and
//! over what they are bound to (the client's source IP for a registrar), so issuing keeps no
//! state: a nonce is `hex(secs) || hex(salt) || hex(HMAC(secret, secs || salt ||
//! binding)[..16])` with a random salt from the caller (two clients behind one address never
//! share a nonce), and a nonce answered from another address does not check. Replays are
//! stopped by [`NonceCounts`]: the highest nonce count (`nc`) accepted per nonce, kept while
//! the nonce is valid, so each (nonce, nc) is accepted once and a nonce without qop (no nc)
//! is single-use. That record is bounded (in total and per source) by evicting the oldest
//! entries, never by refusing a correct response.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use md5::Digest as _;
use sha2::Digest as _;
use thiserror::Error;

/// The hash a challenge names (RFC 8760 §2): MD5 for old phones, SHA-256 preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (the default when a challenge names none).
    Md5,
    /// `SHA-256`.
    Sha256,
}

impl Algorithm {
    /// The token used in the `algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses the `algorithm` parameter (case-insensitive); `None` for ones we do not speak.
    pub fn parse(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `data`.
    fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(md5::Md5::digest(data.as_bytes()).as_slice()),
            Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(data.as_bytes())),
        }
    }
}

/// A username and password the UAC answers challenges with (trunks).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The digest username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a digest header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// The value is not `Digest` followed by auth-params.
    #[error("not a Digest header")]
    NotDigest,
    /// The auth-param list is malformed.
    #[error("malformed auth-param list")]
    Malformed,
    /// A required parameter is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An algorithm other than MD5 or SHA-256.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// A qop other than `auth` was required.
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
}

/// RFC 7616 §3.4.2: `H(username:realm:password)` in lower-case hex, what a registrar may store
/// instead of the password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(&format!("{username}:{realm}:{password}"))
}

/// What `NonceSigner::check` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh.
    Valid,
    /// Ours but older than the limit: challenge again with `stale=true` (RFC 7616 §3.3).
    Stale,
    /// Not ours, tampered with, or from the future.
    Invalid,
}

/// Issues and checks stateless nonces: the issue time signed with HMAC-SHA-256.
#[derive(Clone)]
pub struct NonceSigner {
    secret: [u8; 32],
}

impl std::fmt::Debug for NonceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSigner").finish_non_exhaustive()
    }
}

/// Hex digits of the timestamp, the salt and the (truncated) MAC in a nonce.
const TS_HEX: usize = 16;
const SALT_HEX: usize = 16;
const MAC_HEX: usize = 32;
/// How far ahead of `now` a nonce's time may be (clock steps between issue and check).
const FUTURE_SKEW_SECS: u64 = 60;

impl NonceSigner {
    /// A signer with a secret the server draws at start (random; never sent).
    pub fn new(secret: [u8; 32]) -> Self {
        NonceSigner { secret }
    }

    /// A nonce for a challenge issued at `now_unix_secs`, bound to nothing, unsalted.
    pub fn issue(&self, now_unix_secs: u64) -> String {
        self.issue_bound(now_unix_secs, 0, b"")
    }

    /// A fresh nonce issued at `now_unix_secs` with `salt` (random, so nonces differ within
    /// one second) that only checks with the same `binding` (e.g. the client's source IP).
    pub fn issue_bound(&self, now_unix_secs: u64, salt: u64, binding: &[u8]) -> String {
        let mac = self.mac(now_unix_secs, salt, binding);
        format!("{now_unix_secs:016x}{salt:016x}{}", &mac[..MAC_HEX])
    }

    /// Whether `nonce` is one of ours (bound to nothing) and younger than `max_age_secs`.
    pub fn check(&self, nonce: &str, now_unix_secs: u64, max_age_secs: u64) -> NonceCheck {
        self.check_bound(nonce, now_unix_secs, max_age_secs, b"")
    }

    /// Whether `nonce` is one of ours, issued for `binding`, and younger than `max_age_secs`.
    pub fn check_bound(
        &self,
        nonce: &str,
        now_unix_secs: u64,
        max_age_secs: u64,
        binding: &[u8],
    ) -> NonceCheck {
        if nonce.len() != TS_HEX + SALT_HEX + MAC_HEX || !nonce.is_ascii() {
            return NonceCheck::Invalid;
        }
        let (ts_hex, rest) = nonce.split_at(TS_HEX);
        let (salt_hex, mac_hex) = rest.split_at(SALT_HEX);
        let (Ok(ts), Ok(salt)) = (
            u64::from_str_radix(ts_hex, 16),
            u64::from_str_radix(salt_hex, 16),
        ) else {
            return NonceCheck::Invalid;
        };
        // Only the canonical (lower-case, zero-padded) form is ours.
        if format!("{ts:016x}{salt:016x}") != nonce[..TS_HEX + SALT_HEX] {
            return NonceCheck::Invalid;
        }
        let expected = self.mac(ts, salt, binding);
        if !ct_eq(&expected.as_bytes()[..MAC_HEX], mac_hex.as_bytes()) {
            return NonceCheck::Invalid;
        }
        if ts > now_unix_secs.saturating_add(FUTURE_SKEW_SECS) {
            return NonceCheck::Invalid;
        }
        if now_unix_secs.saturating_sub(ts) > max_age_secs {
            NonceCheck::Stale
        } else {
            NonceCheck::Valid
        }
    }

    fn mac(&self, ts: u64, salt: u64, binding: &[u8]) -> String {
        let mut msg = Vec::with_capacity(16 + binding.len());
        msg.extend_from_slice(&ts.to_be_bytes());
        msg.extend_from_slice(&salt.to_be_bytes());
        msg.extend_from_slice(binding);
        hex::encode(hmac_sha256(&self.secret, &msg))
    }

    /// The issue time of a nonce of ours (unchecked: call after `check_bound`).
    pub fn issued_at(nonce: &str) -> Option<u64> {
        u64::from_str_radix(nonce.get(..TS_HEX)?, 16).ok()
    }
}

/// The highest nonce count accepted per nonce (RFC 7616 §3.4: the server may reject a
/// request whose nc it has seen), so a captured `Authorization` cannot be replayed.
///
/// Bounded without ever refusing a correct response: entries go when their nonce expires;
/// past `per_source` nonces of one source the source's oldest entry goes, so one client
/// cannot crowd out the others; past `capacity` the entry that expires soonest goes. An
/// evicted nonce only loses its replay record (a replay of it needs the same source IP, as
/// the nonce is bound to it). Every operation is O(log n).
#[derive(Debug)]
pub struct NonceCounts {
    /// nonce → its record.
    seen: HashMap<String, Counted>,
    /// Every entry by (expiry, insertion sequence): the soonest to expire first.
    by_expiry: BTreeMap<(u64, u64), String>,
    /// Each source's entries by (expiry, insertion sequence).
    by_source: HashMap<IpAddr, BTreeSet<(u64, u64)>>,
    capacity: usize,
    per_source: usize,
    seq: u64,
}

#[derive(Debug)]
struct Counted {
    /// The highest nc accepted (`u64::MAX` once a nonce without qop was used).
    highest: u64,
    /// Its source, whose set in `by_source` holds its `by_expiry` key.
    source: IpAddr,
}

impl NonceCounts {
    /// An empty record of at most `capacity` nonces, at most `per_source` of them from one
    /// source (both at least 1).
    pub fn new(capacity: usize, per_source: usize) -> Self {
        NonceCounts {
            seen: HashMap::new(),
            by_expiry: BTreeMap::new(),
            by_source: HashMap::new(),
            capacity: capacity.max(1),
            per_source: per_source.max(1),
            seq: 0,
        }
    }

    /// Records one verified use of `nonce` with count `nc` (`None` without qop, which makes
    /// the nonce single-use) by `source` (the client's address, or the network the caller
    /// counts as one source); false only for a replay (an nc not above the highest seen) or
    /// an nc that is not 8 hex digits. `expires` is the unix second after which the nonce no
    /// longer checks, so its entry can go.
    pub fn accept(
        &mut self,
        nonce: &str,
        nc: Option<&str>,
        source: IpAddr,
        now_unix_secs: u64,
        expires: u64,
    ) -> bool {
        let count = match nc {
            // RFC 7616 §3.4: 8 hex digits; anything else is not a count we can order.
            Some(nc) => match u64::from_str_radix(nc, 16) {
                Ok(n) if nc.len() == 8 && n > 0 => n,
                _ => return false,
            },
            None => u64::MAX,
        };
        if let Some(entry) = self.seen.get_mut(nonce) {
            if count <= entry.highest {
                return false;
            }
            entry.highest = count;
            return true;
        }
        self.expire(now_unix_secs);
        let oldest_of_source = self
            .by_source
            .get(&source)
            .filter(|set| set.len() >= self.per_source)
            .and_then(|set| set.first().copied());
        if let Some(slot) = oldest_of_source {
            self.remove(slot);
        }
        if self.seen.len() >= self.capacity
            && let Some((&slot, _)) = self.by_expiry.first_key_value()
        {
            self.remove(slot);
        }
        self.seq += 1;
        let slot = (expires, self.seq);
        self.by_expiry.insert(slot, nonce.to_owned());
        self.by_source.entry(source).or_default().insert(slot);
        self.seen.insert(
            nonce.to_owned(),
            Counted {
                highest: count,
                source,
            },
        );
        true
    }

    /// Drops every entry whose nonce expired before `now_unix_secs`.
    fn expire(&mut self, now_unix_secs: u64) {
        while let Some((&slot, _)) = self.by_expiry.first_key_value() {
            if slot.0 >= now_unix_secs {
                break;
            }
            self.remove(slot);
        }
    }

    /// Removes the entry at `slot` from every index.
    fn remove(&mut self, slot: (u64, u64)) {
        let Some(nonce) = self.by_expiry.remove(&slot) else {
            return;
        };
        let Some(entry) = self.seen.remove(&nonce) else {
            return;
        };
        if let Some(set) = self.by_source.get_mut(&entry.source) {
            set.remove(&slot);
            if set.is_empty() {
                self.by_source.remove(&entry.source);
            }
        }
    }

    /// Nonces recorded now (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is recorded.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// RFC 2104 HMAC with SHA-256 (block size 64).
fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = sha2::Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    sha2::Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Compares two byte strings in time that depends only on their lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A `WWW-Authenticate` (or `Proxy-Authenticate`) value for a 401/407 (RFC 7616 §3.3).
pub fn challenge(realm: &str, nonce: &str, alg: Algorithm, stale: bool) -> String {
    let mut v = format!(
        "Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\"",
        escape(realm),
        escape(nonce),
        alg.as_str()
    );
    if stale {
        v.push_str(", stale=true");
    }
    v
}

/// The parameters of a client's `Authorization` header (RFC 7616 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestResponse {
    /// The username the client claims.
    pub username: String,
    /// The realm it answers.
    pub realm: String,
    /// The nonce it answers (check it with `NonceSigner::check`).
    pub nonce: String,
    /// The digest-uri; a registrar should compare it with the Request-URI.
    pub uri: String,
    /// The response hash, lower-cased hex.
    pub response: String,
    /// The algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// The client nonce (required with qop).
    pub cnonce: Option<String>,
    /// The nonce count, 8 hex digits (required with qop).
    pub nc: Option<String>,
    /// `auth`, or `None` for RFC 2069 clients.
    pub qop: Option<String>,
    /// Echoed opaque value.
    pub opaque: Option<String>,
}

/// Parses an `Authorization` or `Proxy-Authorization` value.
pub fn parse_authorization(value: &str) -> Result<DigestResponse, DigestError> {
    let params = parse_digest(value)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let algorithm = match get("algorithm") {
        None => Algorithm::Md5,
        Some(a) => Algorithm::parse(&a).ok_or(DigestError::UnsupportedAlgorithm(a))?,
    };
    let qop = get("qop");
    if let Some(q) = &qop
        && !q.eq_ignore_ascii_case("auth")
    {
        return Err(DigestError::UnsupportedQop(q.clone()));
    }
    let (cnonce, nc) = (get("cnonce"), get("nc"));
    if qop.is_some() {
        if cnonce.is_none() {
            return Err(DigestError::Missing("cnonce"));
        }
        if nc.is_none() {
            return Err(DigestError::Missing("nc"));
        }
    }
    Ok(DigestResponse {
        username: get("username").ok_or(DigestError::Missing("username"))?,
        realm: get("realm").ok_or(DigestError::Missing("realm"))?,
        nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
        uri: get("uri").ok_or(DigestError::Missing("uri"))?,
        response: get("response")
            .ok_or(DigestError::Missing("response"))?
            .to_ascii_lowercase(),
        algorithm,
        cnonce,
        nc,
        qop,
        opaque: get("opaque"),
    })
}

/// RFC 7616 §3.4.1: the expected response for `method` given H(A1).
fn expected_response(
    alg: Algorithm,
    ha1_hex: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha2 = alg.hash_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash_hex(&format!("{ha1_hex}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash_hex(&format!("{ha1_hex}:{nonce}:{ha2}")),
    }
}

/// Whether `resp` proves knowledge of the password behind `ha1_hex` for a request with
/// `method` (the caller checks the nonce, username, realm and uri). Constant-time compare.
pub fn verify(resp: &DigestResponse, method: &str, ha1_hex: &str) -> bool {
    let qop = match (&resp.qop, &resp.nc, &resp.cnonce) {
        (Some(_), Some(nc), Some(cnonce)) => Some((nc.as_str(), cnonce.as_str())),
        (Some(_), _, _) => return false,
        (None, _, _) => None,
    };
    let expected = expected_response(
        resp.algorithm,
        &ha1_hex.to_ascii_lowercase(),
        method,
        &resp.uri,
        &resp.nonce,
        qop,
    );
    ct_eq(expected.as_bytes(), resp.response.as_bytes())
}

/// A server's challenge, parsed (what the UAC needs of a `WWW-Authenticate` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The realm.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// The algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// Whether the server offers `qop=auth` (else RFC 2069 style).
    pub qop_auth: bool,
    /// The opaque value to echo.
    pub opaque: Option<String>,
    /// The previous nonce was stale.
    pub stale: bool,
}

/// Parses a `WWW-Authenticate` or `Proxy-Authenticate` value.
pub fn parse_challenge(value: &str) -> Result<Challenge, DigestError> {
    let params = parse_digest(value)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let algorithm = match get("algorithm") {
        None => Algorithm::Md5,
        Some(a) => Algorithm::parse(&a).ok_or(DigestError::UnsupportedAlgorithm(a))?,
    };
    let qop_auth = match get("qop") {
        None => false,
        Some(q) => {
            if !q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                return Err(DigestError::UnsupportedQop(q));
            }
            true
        }
    };
    Ok(Challenge {
        realm: get("realm").ok_or(DigestError::Missing("realm"))?,
        nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
        algorithm,
        qop_auth,
        opaque: get("opaque"),
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// The UAC side (RFC 3261 §22.2): the `Authorization`/`Proxy-Authorization` value answering
/// `challenge_value` for a request with `method` and Request-URI `uri`. `cnonce` should be
/// random; `nc` counts uses of this nonce (1 for the first).
pub fn authorization(
    challenge_value: &str,
    method: &str,
    uri: &str,
    creds: &Credentials,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    let ch = parse_challenge(challenge_value)?;
    let h1 = ha1(ch.algorithm, &creds.username, &ch.realm, &creds.password);
    let nc = format!("{nc:08x}");
    let qop = ch.qop_auth.then_some((nc.as_str(), cnonce));
    let response = expected_response(ch.algorithm, &h1, method, uri, &ch.nonce, qop);
    let mut v = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\", algorithm={}",
        escape(&creds.username),
        escape(&ch.realm),
        escape(&ch.nonce),
        escape(uri),
        ch.algorithm.as_str()
    );
    if ch.qop_auth {
        v.push_str(&format!(
            ", qop=auth, nc={nc}, cnonce=\"{}\"",
            escape(cnonce)
        ));
    }
    if let Some(o) = &ch.opaque {
        v.push_str(&format!(", opaque=\"{}\"", escape(o)));
    }
    Ok(v)
}

/// Escapes `"` and `\` for a quoted-string.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// Splits `Digest k=v, k="v", ...` into (name, unquoted value) pairs.
fn parse_digest(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim_start();
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or(DigestError::NotDigest)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let b = rest.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = rest.get(start..i).ok_or(DigestError::Malformed)?;
        if name.is_empty() {
            return Err(DigestError::Malformed);
        }
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(DigestError::Malformed);
        }
        i += 1;
        skip_ws(&mut i);
        let val = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i) {
                    None => return Err(DigestError::Malformed),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let c = *b.get(i + 1).ok_or(DigestError::Malformed)?;
                        v.push(c);
                        i += 2;
                    }
                    Some(c) => {
                        v.push(*c);
                        i += 1;
                    }
                }
            }
            String::from_utf8(v).map_err(|_| DigestError::Malformed)?
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            rest.get(start..i).ok_or(DigestError::Malformed)?.to_owned()
        };
        out.push((name.to_owned(), val));
        skip_ws(&mut i);
        if i < b.len() {
            if b[i] != b',' {
                return Err(DigestError::Malformed);
            }
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const REALM: &str = "http-auth@example.org";

    fn mufasa() -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            password: "Circle of Life".into(),
        }
    }

    #[test]
    fn rfc7616_sha256_and_md5_examples() {
        for (alg, expected) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let ch = format!(
                "Digest realm=\"{REALM}\", qop=\"auth, auth-int\", algorithm={alg}, nonce=\"{NONCE}\", opaque=\"{OPAQUE}\""
            );
            let auth = authorization(&ch, "GET", "/dir/index.html", &mufasa(), CNONCE, 1).unwrap();
            let resp = parse_authorization(&auth).unwrap();
            assert_eq!(resp.response, expected, "{alg}");
            assert_eq!(resp.nc.as_deref(), Some("00000001"));
            assert_eq!(resp.opaque.as_deref(), Some(OPAQUE));
            let alg = Algorithm::parse(alg).unwrap();
            let h1 = ha1(alg, "Mufasa", REALM, "Circle of Life");
            assert!(verify(&resp, "GET", &h1));
            assert!(!verify(&resp, "POST", &h1));
            let wrong = ha1(alg, "Mufasa", REALM, "circle of life");
            assert!(!verify(&resp, "GET", &wrong));
        }
    }

    #[test]
    fn rfc2617_example() {
        let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
            nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
            opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let resp = parse_authorization(header).unwrap();
        assert_eq!(resp.algorithm, Algorithm::Md5);
        assert_eq!(resp.uri, "/dir/index.html");
        let h1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert!(verify(&resp, "GET", &h1));
        let ch = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let ours = authorization(ch, "GET", "/dir/index.html", &creds, "0a4f113b", 1).unwrap();
        assert_eq!(parse_authorization(&ours).unwrap().response, resp.response);
    }

    #[test]
    fn rfc2069_style_without_qop() {
        let creds = mufasa();
        let ch = "Digest realm=\"r\", nonce=\"n\"";
        let auth = authorization(ch, "REGISTER", "sip:pbx", &creds, "c", 1).unwrap();
        assert!(!auth.contains("qop"));
        let resp = parse_authorization(&auth).unwrap();
        assert!(verify(
            &resp,
            "REGISTER",
            &ha1(Algorithm::Md5, "Mufasa", "r", "Circle of Life")
        ));
    }

    #[test]
    fn challenge_round_trips() {
        let v = challenge("pbx", "abc", Algorithm::Sha256, true);
        assert_eq!(
            v,
            "Digest realm=\"pbx\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
        let ch = parse_challenge(&v).unwrap();
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        assert!(ch.stale && ch.qop_auth);
        assert_eq!(ch.realm, "pbx");
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(
            parse_authorization("Basic abc"),
            Err(DigestError::NotDigest)
        );
        assert_eq!(parse_authorization(""), Err(DigestError::NotDigest));
        assert_eq!(
            parse_authorization("Digest username=\"x"),
            Err(DigestError::Malformed)
        );
        assert_eq!(
            parse_authorization("Digest username=\"x\" realm=\"y\""),
            Err(DigestError::Malformed)
        );
        assert_eq!(
            parse_authorization("Digest username=x, realm=r, nonce=n, uri=u"),
            Err(DigestError::Missing("response"))
        );
        assert!(matches!(
            parse_authorization(
                "Digest username=x, realm=r, nonce=n, uri=u, response=r, algorithm=SHA-512-256"
            ),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert_eq!(
            parse_authorization("Digest username=x, realm=r, nonce=n, uri=u, response=r, qop=auth"),
            Err(DigestError::Missing("cnonce"))
        );
        let escaped =
            parse_authorization("Digest username=\"a\\\"b\", realm=r, nonce=n, uri=u, response=AB")
                .unwrap();
        assert_eq!(escaped.username, "a\"b");
        assert_eq!(escaped.response, "ab");
    }

    #[test]
    fn nonces_expire_and_resist_tampering() {
        let s = NonceSigner::new([7; 32]);
        let n = s.issue(1_000_000);
        assert_eq!(n.len(), 64);
        assert_eq!(s.check(&n, 1_000_000, 300), NonceCheck::Valid);
        assert_eq!(s.check(&n, 1_000_300, 300), NonceCheck::Valid);
        assert_eq!(s.check(&n, 1_000_301, 300), NonceCheck::Stale);
        assert_eq!(
            s.check(&n, 999_000, 300),
            NonceCheck::Invalid,
            "from the future"
        );
        assert_eq!(
            NonceSigner::new([8; 32]).check(&n, 1_000_000, 300),
            NonceCheck::Invalid
        );
        let mut forged = s.issue(1_000_100).into_bytes();
        forged[..16].copy_from_slice(format!("{:016x}", 1_000_200u64).as_bytes());
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(s.check(&forged, 1_000_300, 300), NonceCheck::Invalid);
        assert_eq!(s.check("", 0, 300), NonceCheck::Invalid);
        assert_eq!(s.check(&"é".repeat(32), 0, 300), NonceCheck::Invalid);
        assert_eq!(
            s.check(&n.to_uppercase(), 1_000_000, 300),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn bound_nonces_only_check_for_their_binding() {
        let s = NonceSigner::new([7; 32]);
        let n = s.issue_bound(1_000_000, 42, &[127, 0, 0, 1]);
        assert_ne!(n, s.issue_bound(1_000_000, 43, &[127, 0, 0, 1]), "salted");
        assert_eq!(
            s.check_bound(&n, 1_000_010, 300, &[127, 0, 0, 1]),
            NonceCheck::Valid
        );
        assert_eq!(
            s.check_bound(&n, 1_000_010, 300, &[127, 0, 0, 2]),
            NonceCheck::Invalid
        );
        assert_eq!(s.check(&n, 1_000_010, 300), NonceCheck::Invalid);
        assert_eq!(NonceSigner::issued_at(&n), Some(1_000_000));
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn nonce_counts_accept_each_count_once() {
        let mut c = NonceCounts::new(8, 8);
        assert!(c.accept("n1", Some("00000001"), A, 0, 100));
        assert!(!c.accept("n1", Some("00000001"), A, 1, 100), "replay");
        assert!(c.accept("n1", Some("00000002"), A, 2, 100));
        assert!(!c.accept("n1", Some("00000001"), A, 3, 100), "older count");
        assert!(!c.accept("n1", Some("2"), A, 3, 100), "not 8 hex digits");
        assert!(c.accept("n2", None, A, 4, 100));
        assert!(!c.accept("n2", None, A, 5, 100), "no qop: single use");
        assert!(c.accept("n3", None, B, 101, 200), "expired entries go");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_full_nonce_table_evicts_the_soonest_to_expire_and_never_refuses() {
        let mut c = NonceCounts::new(3, 3);
        let sources = [
            A,
            B,
            IpAddr::from([192, 0, 2, 3]),
            IpAddr::from([192, 0, 2, 4]),
        ];
        for (i, source) in sources.iter().enumerate() {
            let exp = 100 + i as u64;
            assert!(c.accept(&format!("n{i}"), None, *source, 0, exp), "n{i}");
            assert!(c.len() <= 3);
        }
        assert_eq!(c.len(), 3);
        // n0 expired soonest, so it went: it is a new nonce again; the others are replays.
        assert!(!c.accept("n1", None, B, 0, 101));
        assert!(!c.accept("n3", None, sources[3], 0, 103));
        assert!(c.accept("n0", None, A, 0, 100));
        assert_eq!(c.len(), 3);
        // Many more: still bounded, each new nonce accepted once.
        for i in 10..1_000 {
            assert!(c.accept(&format!("n{i}"), None, A, 0, 200 + i));
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.by_expiry.len(), 3);
    }

    #[test]
    fn one_source_cannot_crowd_out_the_others() {
        let mut c = NonceCounts::new(100, 4);
        assert!(c.accept("b", Some("00000001"), B, 0, 100));
        for i in 0..50 {
            assert!(c.accept(&format!("a{i}"), Some("00000001"), A, 0, 101 + i));
        }
        // A holds its last four, oldest first out; B's entry is still there.
        assert_eq!(c.len(), 5);
        assert!(
            !c.accept("b", Some("00000001"), B, 0, 100),
            "B's record kept"
        );
        assert!(!c.accept("a49", Some("00000001"), A, 0, 150));
        assert!(!c.accept("a46", Some("00000001"), A, 0, 147));
        assert!(c.accept("a45", Some("00000001"), A, 0, 146), "evicted");
        assert_eq!(c.by_source[&A].len(), 4);
    }

    #[test]
    fn hmac_matches_rfc4231_case_1() {
        // RFC 4231 test case 1 uses a 20-byte key; pad it to our 32-byte key with zeros, which
        // HMAC does itself for short keys, so the result must match.
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
