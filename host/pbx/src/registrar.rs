//! The registrar: REGISTER with digest authentication, and the location table of SIP users.
//!
//! Invariants: a binding is only added after a digest response verified against the user's
//! stored HA1 (SHA-256 or MD5) with a nonce we issued to the same source IP less than
//! [`NONCE_MAX_AGE`] seconds ago, and with a nonce count (`nc`) above every count already
//! accepted for that nonce (a nonce without qop is single-use), so a captured `Authorization`
//! replayed from anywhere gets a fresh challenge; phones that reuse a nonce with increasing
//! `nc`, and re-register after `stale=true`, keep working. An unknown user and a wrong
//! password get the very same answer (401 with a fresh challenge). Every failed
//! authentication is logged with its source address and user and fed to the [`AuthGuard`],
//! which delays the answer and then bans the source (an IPv4 address or an IPv6 /64): a
//! banned source gets 403 before any store lookup. The record of accepted nonce counts is
//! bounded by evicting its oldest entries (past [`MAX_COUNTED_NONCES_PER_SOURCE`] of one
//! source, or `MAX_COUNTED_NONCES` in all), never by refusing a correct password; an evicted
//! nonce loses its replay protection, which matters only for a replay from the very source
//! IP it was issued to, within its lifetime. A user can only register its own address of
//! record; bindings expire by themselves (read-time filtering, no timer).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use pbx_sip::digest::{self, Algorithm, NonceCheck, NonceCounts, NonceSigner};
use pbx_sip::{Peer, RegisterRequest, Transport};
use tracing::{debug, info, warn};

use crate::auth_guard::{AuthGuard, Ban, FailureVerdict, GuardConfig};

/// How long a nonce we issued stays valid (then `stale=true`).
pub const NONCE_MAX_AGE: u64 = 120;
/// Most nonces whose counts are remembered at once (one per successful registration flow);
/// past it the record of the one that expires soonest goes (a correct response is never
/// refused for room).
const MAX_COUNTED_NONCES: usize = 100_000;
/// Most counted nonces of one source (an IPv4 address or an IPv6 /64); past it that source's
/// oldest goes, so one client cannot crowd out the others.
pub const MAX_COUNTED_NONCES_PER_SOURCE: usize = 64;
/// The binding time when the client asks for none.
const DEFAULT_EXPIRES: u32 = 3600;
/// The shortest and longest binding times we grant.
const MIN_EXPIRES: u32 = 60;
const MAX_EXPIRES: u32 = 7200;
/// Most contacts one user may register.
const MAX_CONTACTS: usize = 8;

/// One registered contact of a user.
#[derive(Debug, Clone)]
pub struct Binding {
    pub contact: String,
    pub expires_at: DateTime<Utc>,
    pub source: Peer,
}

/// What the registrar answers: a status and extra headers, sent after `delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering (a source that keeps failing is slowed down).
    pub delay: Duration,
    /// Set when this REGISTER failed authentication (for the metric and the event).
    pub failure: Option<AuthFailure>,
}

impl RegisterAnswer {
    fn status(status: u16, headers: Vec<(String, String)>) -> Self {
        RegisterAnswer {
            status,
            headers,
            delay: Duration::ZERO,
            failure: None,
        }
    }
}

/// One failed authentication, for the metric and the platform event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// The user name the client claimed.
    pub username: String,
    /// `bad_credentials` or `replay`.
    pub reason: &'static str,
    /// The claimed user's account, when the user exists.
    pub account_id: Option<String>,
    /// This failure banned the source.
    pub banned: bool,
}

/// REGISTER handling and the location table.
pub struct Registrar {
    realm: String,
    /// Offered in this order, one WWW-Authenticate each (RFC 8760 §2.4).
    algorithms: Vec<Algorithm>,
    nonces: NonceSigner,
    store: Arc<pbx_store::Store>,
    bindings: Mutex<HashMap<String, Vec<Binding>>>,
    counts: Mutex<NonceCounts>,
    guard: Mutex<AuthGuard>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Registrar {
    /// A registrar for `realm` over the store's SIP users, offering `algorithms`, throttling
    /// failed authentications as `guard` says.
    pub fn new(
        realm: String,
        algorithms: Vec<Algorithm>,
        store: Arc<pbx_store::Store>,
        guard: GuardConfig,
    ) -> Self {
        Registrar {
            realm,
            algorithms,
            nonces: NonceSigner::new(rand::random()),
            store,
            bindings: Mutex::new(HashMap::new()),
            counts: Mutex::new(NonceCounts::new(
                MAX_COUNTED_NONCES,
                MAX_COUNTED_NONCES_PER_SOURCE,
            )),
            guard: Mutex::new(AuthGuard::new(guard)),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, AuthGuard> {
        self.guard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether requests from `ip` are refused (403) for too many failed authentications.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.guard().is_banned(ip.to_canonical(), Instant::now())
    }

    /// The bans in force now.
    pub fn bans(&self) -> Vec<Ban> {
        self.guard().bans(Instant::now())
    }

    /// Lifts the ban on `ip`; false when it was not banned.
    pub fn lift_ban(&self, ip: IpAddr) -> bool {
        self.guard().lift(ip.to_canonical(), Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Binding>>> {
        self.bindings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The realm users register in.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Drops every binding of a user (its password changed or it was deleted).
    pub fn forget(&self, user: &str) {
        self.lock().remove(user);
    }

    /// Whether a live binding (of any user) was registered over TCP connection `conn`: the
    /// shell keeps such a connection open however quiet it is, since a phone behind NAT gets
    /// its calls over it.
    pub fn has_binding_on(&self, conn: u64) -> bool {
        let now = Utc::now();
        self.lock().values().flatten().any(|b| {
            b.source.transport == Transport::Tcp
                && b.source.conn == Some(conn)
                && b.expires_at > now
        })
    }

    /// The live contact URIs of a user, newest first.
    pub fn contacts(&self, user: &str) -> Vec<String> {
        self.bindings(user).into_iter().map(|b| b.contact).collect()
    }

    /// The live bindings of a user, newest first.
    pub fn bindings(&self, user: &str) -> Vec<Binding> {
        let now = Utc::now();
        let mut map = self.lock();
        let Some(list) = map.get_mut(user) else {
            return Vec::new();
        };
        list.retain(|b| b.expires_at > now);
        list.clone()
    }

    fn challenge(&self, ip: IpAddr, stale: bool) -> RegisterAnswer {
        let nonce = self
            .nonces
            .issue_bound(unix_now(), rand::random(), &ip_bytes(ip));
        RegisterAnswer::status(
            401,
            self.algorithms
                .iter()
                .map(|alg| {
                    (
                        "WWW-Authenticate".to_string(),
                        digest::challenge(&self.realm, &nonce, *alg, stale),
                    )
                })
                .collect(),
        )
    }

    /// Logs and counts a failed authentication from `peer`, and answers it: a fresh
    /// challenge (maybe delayed), or 403 when this failure banned the source.
    fn fail(
        &self,
        peer: Peer,
        username: &str,
        reason: &'static str,
        account_id: Option<String>,
    ) -> RegisterAnswer {
        let ip = peer.addr.ip().to_canonical();
        let verdict = self.guard().record_failure(ip, username, Instant::now());
        let banned = verdict == FailureVerdict::Banned;
        // The user name is the client's: Debug quotes and escapes it, so it cannot forge
        // another field (`source=...`) for log scanners such as fail2ban.
        warn!(
            source = %peer.addr,
            user = ?username,
            reason,
            banned,
            "SIP authentication failed"
        );
        let mut answer = match verdict {
            FailureVerdict::Banned => RegisterAnswer::status(403, Vec::new()),
            FailureVerdict::Delay(delay) => RegisterAnswer {
                delay,
                ..self.challenge(ip, false)
            },
        };
        answer.failure = Some(AuthFailure {
            username: username.to_owned(),
            reason,
            account_id,
            banned,
        });
        answer
    }

    /// Answers one REGISTER. Runs store lookups, so call it off the async threads.
    pub fn handle(&self, req: &RegisterRequest) -> RegisterAnswer {
        let ip = req.peer.addr.ip().to_canonical();
        if self.is_banned(ip) {
            debug!(source = %req.peer.addr, "REGISTER from a banned source");
            return RegisterAnswer::status(403, Vec::new());
        }
        let Some(aor) = req.to_user.clone() else {
            return RegisterAnswer::status(400, Vec::new());
        };
        let Some(authorization) = req.authorization.as_deref() else {
            return self.challenge(ip, false);
        };
        let Ok(response) = digest::parse_authorization(authorization) else {
            debug!("unparsable Authorization; challenging again");
            return self.challenge(ip, false);
        };
        let now = unix_now();
        match self
            .nonces
            .check_bound(&response.nonce, now, NONCE_MAX_AGE, &ip_bytes(ip))
        {
            NonceCheck::Valid => {}
            NonceCheck::Stale => return self.challenge(ip, true),
            NonceCheck::Invalid => {
                debug!(source = %req.peer.addr, "nonce not issued to this source; challenging again");
                return self.challenge(ip, false);
            }
        }
        let user = match self.store.sip_user_by_username(&response.username) {
            Ok(user) => user,
            Err(err) => {
                debug!(%err, "SIP user lookup failed");
                None
            }
        };
        // Unknown users and wrong passwords look the same from outside: a fresh challenge.
        let Some(user) = user else {
            info!(source = %req.peer.addr, username = ?response.username, "REGISTER for an unknown user");
            return self.fail(req.peer, &response.username, "bad_credentials", None);
        };
        let ha1 = match response.algorithm {
            Algorithm::Md5 => &user.ha1_md5,
            Algorithm::Sha256 => &user.ha1_sha256,
        };
        if response.realm != self.realm
            || user.username != aor
            || !digest::verify(&response, "REGISTER", ha1)
        {
            return self.fail(
                req.peer,
                &response.username,
                "bad_credentials",
                Some(user.account_id.clone()),
            );
        }
        // RFC 7616 §3.4: each (nonce, nc) is accepted once; the record lives as long as the
        // nonce, so a replay is refused for as long as the nonce would check.
        let issued = NonceSigner::issued_at(&response.nonce).unwrap_or(now);
        let fresh = self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .accept(
                &response.nonce,
                response.nc.as_deref(),
                crate::auth_guard::source_key(ip),
                now,
                issued.saturating_add(NONCE_MAX_AGE),
            );
        if !fresh {
            return self.fail(
                req.peer,
                &response.username,
                "replay",
                Some(user.account_id.clone()),
            );
        }
        self.bind(&aor, req)
    }

    fn bind(&self, aor: &str, req: &RegisterRequest) -> RegisterAnswer {
        let now = Utc::now();
        let mut map = self.lock();
        let list = map.entry(aor.to_string()).or_default();
        list.retain(|b| b.expires_at > now);
        if req.star {
            if req.expires == Some(0) {
                list.clear();
            } else {
                return RegisterAnswer::status(400, Vec::new());
            }
        }
        // All or nothing (RFC 3261 §10.3): refuse before changing any binding.
        let asked =
            |c: &pbx_sip::ContactBinding| c.expires.or(req.expires).unwrap_or(DEFAULT_EXPIRES);
        if req
            .contacts
            .iter()
            .any(|c| asked(c) != 0 && asked(c) < MIN_EXPIRES)
        {
            return RegisterAnswer::status(
                423,
                vec![("Min-Expires".into(), MIN_EXPIRES.to_string())],
            );
        }
        for contact in &req.contacts {
            let asked = asked(contact);
            list.retain(|b| b.contact != contact.uri);
            if asked == 0 {
                continue;
            }
            let expires = asked.min(MAX_EXPIRES);
            list.insert(
                0,
                Binding {
                    contact: contact.uri.clone(),
                    expires_at: now + Duration::from_secs(u64::from(expires)),
                    source: req.peer,
                },
            );
        }
        list.truncate(MAX_CONTACTS);
        let headers = list
            .iter()
            .map(|b| {
                let left = (b.expires_at - now).num_seconds().max(0);
                (
                    "Contact".to_string(),
                    format!("<{}>;expires={left}", b.contact),
                )
            })
            .collect();
        info!(user = aor, source = %req.peer.addr, contacts = list.len(), "registered");
        RegisterAnswer::status(200, headers)
    }
}

/// What a nonce is bound to: the source IP's bytes (the port may change between REGISTERs
/// behind NAT or over a new TCP connection).
fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]
mod tests {
    use std::net::SocketAddr;

    use pbx_sip::digest::Credentials;
    use pbx_sip::{ContactBinding, RequestKey};

    use super::*;

    fn registrar(algorithms: Vec<Algorithm>) -> (tempfile::TempDir, Registrar) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(pbx_store::Store::open(dir.path()).unwrap());
        store
            .create_sip_user(
                pbx_store::DEFAULT_ACCOUNT_ID,
                "alice",
                "correct horse",
                None,
                "pbx",
            )
            .unwrap();
        let guard = GuardConfig {
            max_failures: 4,
            ..GuardConfig::default()
        };
        (dir, Registrar::new("pbx".into(), algorithms, store, guard))
    }

    fn register(user: &str, authorization: Option<String>) -> RegisterRequest {
        RegisterRequest {
            key: RequestKey(1),
            from_user: Some(user.into()),
            to_user: Some(user.into()),
            contacts: vec![ContactBinding {
                uri: format!("sip:{user}@127.0.0.1:5062"),
                expires: None,
            }],
            star: false,
            expires: Some(600),
            authorization,
            call_id: "reg-1".into(),
            cseq: 1,
            peer: Peer {
                transport: Transport::Udp,
                addr: SocketAddr::from(([127, 0, 0, 1], 5062)),
                conn: None,
            },
            request_uri: "sip:127.0.0.1:5060".into(),
        }
    }

    /// Answers the challenge of `algorithm` in `answer` as `user` with `password` (nc 1).
    fn respond(answer: &RegisterAnswer, algorithm: &str, user: &str, password: &str) -> String {
        respond_nc(answer, algorithm, user, password, 1)
    }

    /// Answers the challenge with nonce count `nc`.
    fn respond_nc(
        answer: &RegisterAnswer,
        algorithm: &str,
        user: &str,
        password: &str,
        nc: u32,
    ) -> String {
        let challenge = answer
            .headers
            .iter()
            .map(|(_, v)| v)
            .find(|v| v.contains(algorithm))
            .unwrap();
        let creds = Credentials {
            username: user.into(),
            password: password.into(),
        };
        digest::authorization(
            challenge,
            "REGISTER",
            "sip:127.0.0.1:5060",
            &creds,
            "c0ffee",
            nc,
        )
        .unwrap()
    }

    #[test]
    fn sha256_and_md5_responses_register_when_offered() {
        let (_dir, reg) = registrar(vec![Algorithm::Sha256, Algorithm::Md5]);
        let first = reg.handle(&register("alice", None));
        assert_eq!(first.status, 401);
        let offered: Vec<&str> = first.headers.iter().map(|(_, v)| v.as_str()).collect();
        assert!(
            offered[0].contains("SHA-256") && offered[1].contains("MD5"),
            "{offered:?}"
        );
        for (nc, alg) in [(1, "SHA-256"), (2, "MD5")] {
            let auth = respond_nc(&first, alg, "alice", "correct horse", nc);
            let ok = reg.handle(&register("alice", Some(auth)));
            assert_eq!(ok.status, 200, "{alg}: {ok:?}");
            assert!(
                ok.headers[0]
                    .1
                    .starts_with("<sip:alice@127.0.0.1:5062>;expires=")
            );
        }
        assert_eq!(reg.contacts("alice"), vec!["sip:alice@127.0.0.1:5062"]);
    }

    #[test]
    fn unknown_users_and_wrong_passwords_get_the_same_answer() {
        let (_dir, reg) = registrar(vec![Algorithm::Md5]);
        let challenge = reg.handle(&register("alice", None));
        let wrong = reg.handle(&register(
            "alice",
            Some(respond(&challenge, "MD5", "alice", "wrong password")),
        ));
        let unknown = reg.handle(&register(
            "mallory",
            Some(respond(&challenge, "MD5", "mallory", "correct horse")),
        ));
        let shape = |a: &RegisterAnswer| {
            (
                a.status,
                a.headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.clone(),
                            v.split("nonce=").next().unwrap_or("").to_string(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(wrong.status, 401);
        assert_eq!(shape(&wrong), shape(&unknown));
        assert!(reg.contacts("alice").is_empty());
    }

    #[test]
    fn a_user_cannot_register_another_users_address() {
        let (_dir, reg) = registrar(vec![Algorithm::Md5]);
        let challenge = reg.handle(&register("bob", None));
        // alice's valid credentials, but for bob's address of record.
        let auth = respond(&challenge, "MD5", "alice", "correct horse");
        let answer = reg.handle(&register("bob", Some(auth)));
        assert_eq!(answer.status, 401);
        assert!(reg.contacts("bob").is_empty());
    }

    #[test]
    fn expires_zero_removes_a_binding_and_short_times_are_refused() {
        let (_dir, reg) = registrar(vec![Algorithm::Md5]);
        let challenge = reg.handle(&register("alice", None));
        let auth = |nc| respond_nc(&challenge, "MD5", "alice", "correct horse", nc);
        assert_eq!(reg.handle(&register("alice", Some(auth(1)))).status, 200);
        let mut short = register("alice", Some(auth(2)));
        short.expires = Some(10);
        assert_eq!(reg.handle(&short).status, 423);
        // A refused refresh leaves the binding as it was.
        assert_eq!(reg.contacts("alice"), vec!["sip:alice@127.0.0.1:5062"]);
        let mut remove = register("alice", Some(auth(3)));
        remove.expires = Some(0);
        assert_eq!(reg.handle(&remove).status, 200);
        assert!(reg.contacts("alice").is_empty());
    }

    fn from(mut req: RegisterRequest, addr: [u8; 4], port: u16, contact: &str) -> RegisterRequest {
        req.peer.addr = SocketAddr::from((addr, port));
        req.contacts[0].uri = contact.into();
        req
    }

    #[test]
    fn a_replayed_authorization_gets_a_fresh_challenge() {
        let (_dir, reg) = registrar(vec![Algorithm::Md5]);
        let challenge = reg.handle(&register("alice", None));
        let auth = respond(&challenge, "MD5", "alice", "correct horse");
        assert_eq!(
            reg.handle(&register("alice", Some(auth.clone()))).status,
            200
        );
        // The same header from another port (same IP) with another Contact: a replay.
        let replay = from(
            register("alice", Some(auth.clone())),
            [127, 0, 0, 1],
            6666,
            "sip:evil@127.0.0.1:6666",
        );
        let answer = reg.handle(&replay);
        assert_eq!(answer.status, 401);
        assert_eq!(answer.failure.as_ref().map(|f| f.reason), Some("replay"));
        // From another IP the nonce itself does not check.
        let elsewhere = from(
            register("alice", Some(auth)),
            [127, 0, 0, 2],
            6666,
            "sip:evil@127.0.0.2:6666",
        );
        let answer = reg.handle(&elsewhere);
        assert_eq!(answer.status, 401);
        assert!(answer.failure.is_none(), "an unknown nonce is not a guess");
        assert_eq!(reg.contacts("alice"), vec!["sip:alice@127.0.0.1:5062"]);
        // The phone itself goes on with the next nonce count.
        let next = respond_nc(&challenge, "MD5", "alice", "correct horse", 2);
        assert_eq!(reg.handle(&register("alice", Some(next))).status, 200);
    }

    #[test]
    fn guessing_bans_the_source_but_not_another_address() {
        let (_dir, reg) = registrar(vec![Algorithm::Md5]);
        let challenge = reg.handle(&register("alice", None));
        let statuses: Vec<u16> = (0..4)
            .map(|_| {
                let wrong = respond(&challenge, "MD5", "alice", "guess");
                reg.handle(&register("alice", Some(wrong))).status
            })
            .collect();
        assert_eq!(statuses, vec![401, 401, 401, 403]);
        assert_eq!(reg.bans().len(), 1);
        // Banned: even the right password gets 403 from there.
        let right = respond(&challenge, "MD5", "alice", "correct horse");
        assert_eq!(reg.handle(&register("alice", Some(right))).status, 403);
        // The phone at another address registers.
        let other = |req| from(req, [127, 0, 0, 2], 5062, "sip:alice@127.0.0.2:5062");
        let challenge2 = reg.handle(&other(register("alice", None)));
        assert_eq!(challenge2.status, 401);
        let right = respond(&challenge2, "MD5", "alice", "correct horse");
        assert_eq!(
            reg.handle(&other(register("alice", Some(right)))).status,
            200
        );
        assert!(reg.lift_ban(IpAddr::from([127, 0, 0, 1])));
        assert!(reg.bans().is_empty());
    }

    #[test]
    fn a_tcp_connection_with_a_live_binding_is_known() {
        let (_dir, reg) = registrar(vec![Algorithm::Md5]);
        let over_tcp = |req: RegisterRequest| RegisterRequest {
            peer: Peer {
                transport: Transport::Tcp,
                addr: SocketAddr::from(([127, 0, 0, 1], 40_000)),
                conn: Some(7),
            },
            ..req
        };
        assert!(!reg.has_binding_on(7));
        let challenge = reg.handle(&over_tcp(register("alice", None)));
        let auth = |nc| respond_nc(&challenge, "MD5", "alice", "correct horse", nc);
        assert_eq!(
            reg.handle(&over_tcp(register("alice", Some(auth(1)))))
                .status,
            200
        );
        assert!(reg.has_binding_on(7));
        assert!(!reg.has_binding_on(8), "another connection");
        // Unregistered: the connection carries nothing any more.
        let mut remove = over_tcp(register("alice", Some(auth(2))));
        remove.expires = Some(0);
        assert_eq!(reg.handle(&remove).status, 200);
        assert!(!reg.has_binding_on(7));
        // A UDP binding never counts for a connection.
        let challenge = reg.handle(&register("alice", None));
        let auth = respond(&challenge, "MD5", "alice", "correct horse");
        assert_eq!(reg.handle(&register("alice", Some(auth))).status, 200);
        assert!(!reg.has_binding_on(7));
    }

    #[test]
    fn many_registrations_from_one_phone_never_fill_the_nonce_record() {
        let (_dir, reg) = registrar(vec![Algorithm::Md5]);
        // Far more fresh nonces than one source may hold: every correct answer is accepted,
        // and the record keeps only this source's newest.
        for i in 0..(MAX_COUNTED_NONCES_PER_SOURCE * 3) {
            let challenge = reg.handle(&register("alice", None));
            let auth = respond(&challenge, "MD5", "alice", "correct horse");
            let ok = reg.handle(&register("alice", Some(auth)));
            assert_eq!(ok.status, 200, "registration {i}: {ok:?}");
            assert!(ok.failure.is_none());
        }
        let counts = reg.counts.lock().unwrap();
        assert_eq!(counts.len(), MAX_COUNTED_NONCES_PER_SOURCE);
        drop(counts);
        assert!(reg.bans().is_empty());
    }
}
