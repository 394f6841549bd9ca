//! The registrar: REGISTER with digest authentication, and the location table of SIP users.
//!
//! Invariants: a binding is only added after a digest response verified against the user's
//! stored HA1 (SHA-256 or MD5) with a nonce we issued and that has not expired; an unknown
//! user and a wrong password get the very same answer (401 with a fresh challenge); a user
//! can only register its own address of record; bindings expire by themselves (read-time
//! filtering, no timer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use pbx_sip::digest::{self, Algorithm, NonceCheck, NonceSigner};
use pbx_sip::{Peer, RegisterRequest};
use tracing::{debug, info};

/// How long a nonce we issued stays valid.
const NONCE_MAX_AGE: u64 = 300;
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

/// What the registrar answers: a status and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// REGISTER handling and the location table.
pub struct Registrar {
    realm: String,
    /// Offered in this order, one WWW-Authenticate each (RFC 8760 §2.4).
    algorithms: Vec<Algorithm>,
    nonces: NonceSigner,
    store: Arc<pbx_store::Store>,
    bindings: Mutex<HashMap<String, Vec<Binding>>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Registrar {
    /// A registrar for `realm` over the store's SIP users, offering `algorithms`.
    pub fn new(realm: String, algorithms: Vec<Algorithm>, store: Arc<pbx_store::Store>) -> Self {
        Registrar {
            realm,
            algorithms,
            nonces: NonceSigner::new(rand::random()),
            store,
            bindings: Mutex::new(HashMap::new()),
        }
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

    fn challenge(&self, stale: bool) -> RegisterAnswer {
        let nonce = self.nonces.issue(unix_now());
        RegisterAnswer {
            status: 401,
            headers: self
                .algorithms
                .iter()
                .map(|alg| {
                    (
                        "WWW-Authenticate".to_string(),
                        digest::challenge(&self.realm, &nonce, *alg, stale),
                    )
                })
                .collect(),
        }
    }

    /// Answers one REGISTER. Runs store lookups, so call it off the async threads.
    pub fn handle(&self, req: &RegisterRequest) -> RegisterAnswer {
        let Some(aor) = req.to_user.clone() else {
            return RegisterAnswer {
                status: 400,
                headers: Vec::new(),
            };
        };
        let Some(authorization) = req.authorization.as_deref() else {
            return self.challenge(false);
        };
        let Ok(response) = digest::parse_authorization(authorization) else {
            debug!("unparsable Authorization; challenging again");
            return self.challenge(false);
        };
        match self
            .nonces
            .check(&response.nonce, unix_now(), NONCE_MAX_AGE)
        {
            NonceCheck::Valid => {}
            NonceCheck::Stale => return self.challenge(true),
            NonceCheck::Invalid => return self.challenge(false),
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
            info!(username = %response.username, "REGISTER for an unknown user");
            return self.challenge(false);
        };
        let ha1 = match response.algorithm {
            Algorithm::Md5 => &user.ha1_md5,
            Algorithm::Sha256 => &user.ha1_sha256,
        };
        if response.realm != self.realm
            || user.username != aor
            || !digest::verify(&response, "REGISTER", ha1)
        {
            info!(username = %response.username, "REGISTER with a wrong password or address");
            return self.challenge(false);
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
                return RegisterAnswer {
                    status: 400,
                    headers: Vec::new(),
                };
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
            return RegisterAnswer {
                status: 423,
                headers: vec![("Min-Expires".into(), MIN_EXPIRES.to_string())],
            };
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
        info!(user = aor, contacts = list.len(), "registered");
        RegisterAnswer {
            status: 200,
            headers,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]
mod tests {
    use std::net::SocketAddr;

    use pbx_sip::digest::Credentials;
    use pbx_sip::{ContactBinding, RequestKey, Transport};

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
        (dir, Registrar::new("pbx".into(), algorithms, store))
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

    /// Answers the challenge of `algorithm` in `answer` as `user` with `password`.
    fn respond(answer: &RegisterAnswer, algorithm: &str, user: &str, password: &str) -> String {
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
            1,
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
        for alg in ["SHA-256", "MD5"] {
            let auth = respond(&first, alg, "alice", "correct horse");
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
        let auth = respond(&challenge, "MD5", "alice", "correct horse");
        assert_eq!(
            reg.handle(&register("alice", Some(auth.clone()))).status,
            200
        );
        let mut short = register("alice", Some(auth.clone()));
        short.expires = Some(10);
        assert_eq!(reg.handle(&short).status, 423);
        // A refused refresh leaves the binding as it was.
        assert_eq!(reg.contacts("alice"), vec!["sip:alice@127.0.0.1:5062"]);
        let mut remove = register("alice", Some(auth));
        remove.expires = Some(0);
        assert_eq!(reg.handle(&remove).status, 200);
        assert!(reg.contacts("alice").is_empty());
    }
}
