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
        for contact in &req.contacts {
            let asked = contact.expires.or(req.expires).unwrap_or(DEFAULT_EXPIRES);
            list.retain(|b| b.contact != contact.uri);
            if asked == 0 {
                continue;
            }
            if asked < MIN_EXPIRES {
                return RegisterAnswer {
                    status: 423,
                    headers: vec![("Min-Expires".into(), MIN_EXPIRES.to_string())],
                };
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
