//! The server's side of the admin API: what `pbx_api::Backend` needs from live calls, the app
//! runtime and the media decoders.

use std::sync::Arc;

use std::time::Duration;

use pbx_api::{
    Backend, BackendError, BackendErrorKind, ComponentRejection, ConferenceView, EndpointSpec,
    OriginateRequest, RegistrationView, RejectionCode,
};
use pbx_plugin::{Runtime, ValidationError};
use pbx_store::CallRecord;
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::apps::AppCache;
use crate::call::Calls;
use crate::events::EventHub;

/// The runtime's cache key for a component: its sha256, as the store records it per version.
pub fn component_key(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Implements the API's view of the running server.
pub struct ServerBackend {
    calls: Arc<Calls>,
    runtime: Arc<Runtime>,
    apps: Arc<AppCache>,
    events: EventHub,
    net_policy: Arc<pbx_api::net_policy::NetPolicy>,
}

impl ServerBackend {
    /// Creates the backend over the live call registry and the app runtime.
    pub fn new(
        calls: Arc<Calls>,
        runtime: Arc<Runtime>,
        apps: Arc<AppCache>,
        events: EventHub,
    ) -> Self {
        ServerBackend {
            calls,
            runtime,
            apps,
            events,
            net_policy: Arc::default(),
        }
    }

    /// The same backend checking configured targets against `policy` (the server's
    /// `--allow-private-networks`) instead of the default policy.
    pub fn with_net_policy(mut self, policy: Arc<pbx_api::net_policy::NetPolicy>) -> Self {
        self.net_policy = policy;
        self
    }
}

impl Backend for ServerBackend {
    fn net_policy(&self) -> pbx_api::net_policy::NetPolicy {
        (*self.net_policy).clone()
    }

    fn check_component(&self, bytes: &[u8]) -> Result<(), ComponentRejection> {
        // Compiling is the validation; keeping the result under the component's sha256 means
        // the cache warm-up after the version is stored (or the first call) does not compile
        // the same bytes again.
        let checked = self.runtime.compile_cached(&component_key(bytes), bytes);
        checked.map(|_| ()).map_err(|err| {
            let code = match err {
                ValidationError::NotAComponent(_) => RejectionCode::NotAComponent,
                ValidationError::CompileFailed(_) => RejectionCode::CompileFailed,
                ValidationError::MissingExport(_) => RejectionCode::MissingExport,
                ValidationError::WrongWorld(_) => RejectionCode::WrongWorld,
                ValidationError::ImportNotGranted(_) => RejectionCode::ImportNotGranted,
            };
            ComponentRejection::new(code, err.to_string())
        })
    }

    fn version_stored(&self, app_id: &str, version: u32) {
        // Compile now, off the request, so the first call to this version does not wait.
        let apps = self.apps.clone();
        let app_id = app_id.to_string();
        tokio::task::spawn_blocking(move || {
            if let Err(err) = apps.get(&app_id, version) {
                warn!(app_id, version, error = %format!("{err:#}"), "cannot compile stored version");
            }
        });
    }

    fn metrics(&self) -> Option<String> {
        metrics::gauge!(crate::metrics::ACTIVE_CALLS).set(self.calls.count() as f64);
        metrics::gauge!(crate::metrics::SIP_ACTIVE_BANS)
            .set(self.calls.registrar.bans().len() as f64);
        crate::metrics::render()
    }

    fn draining(&self) -> bool {
        self.calls.draining()
    }

    fn subscribe_events(&self) -> Option<tokio::sync::broadcast::Receiver<pbx_store::EventRecord>> {
        Some(self.events.subscribe())
    }

    fn app_deployed(&self, account_id: &str, app_id: &str, version: u32) {
        self.events.emit(pbx_store::NewEvent {
            account_id: account_id.to_owned(),
            kind: pbx_store::EventType::AppDeployed,
            call_id: None,
            conference_id: None,
            app_id: Some(app_id.to_owned()),
            at: chrono::Utc::now(),
            properties: serde_json::json!({ "version": version }),
        });
    }

    fn webhooks_changed(&self) {
        self.events.webhooks_changed();
    }

    fn sip_bans(&self) -> Vec<pbx_api::SipBanView> {
        let (now, wall) = (std::time::Instant::now(), chrono::Utc::now());
        self.calls
            .registrar
            .bans()
            .into_iter()
            .map(|ban| pbx_api::SipBanView {
                address: ban.address.to_string(),
                reason: ban.reason,
                until: wall
                    + chrono::Duration::from_std(ban.until.saturating_duration_since(now))
                        .unwrap_or_default(),
                failures: ban.failures,
                last_user: ban.last_user,
            })
            .collect()
    }

    fn lift_sip_ban(&self, address: std::net::IpAddr) -> bool {
        let lifted = self.calls.registrar.lift_ban(address);
        if lifted {
            tracing::info!(%address, "SIP ban lifted by the admin");
        }
        lifted
    }

    fn version_in_use(&self, app_id: &str, version: u32) -> bool {
        self.calls
            .list()
            .iter()
            .any(|c| c.app_id.as_deref() == Some(app_id) && c.app_version == Some(version))
    }

    fn app_in_use(&self, app_id: &str) -> bool {
        self.calls
            .list()
            .iter()
            .any(|c| c.app_id.as_deref() == Some(app_id))
    }

    fn live_calls(&self) -> Vec<CallRecord> {
        self.calls.list()
    }

    fn live_call(&self, id: &str) -> Option<CallRecord> {
        self.calls.get(id)
    }

    fn hangup_call(&self, id: &str) -> bool {
        self.calls.hangup(id)
    }

    fn originate(&self, req: OriginateRequest) -> Result<String, BackendError> {
        if self.calls.draining() {
            return Err(BackendError::new(
                BackendErrorKind::Unavailable,
                "the server is draining before it stops; no new calls",
            ));
        }
        let target = match req.to {
            EndpointSpec::Sip { uri } => pbx_plugin::Endpoint::SipUri(uri),
            EndpointSpec::User { name } => {
                let own = self
                    .calls
                    .store
                    .sip_user_by_username(&name)
                    .ok()
                    .flatten()
                    .is_some_and(|u| u.account_id == req.account_id);
                if !own || self.calls.registrar.contacts(&name).is_empty() {
                    return Err(BackendError::new(
                        BackendErrorKind::NotFound,
                        format!("SIP user `{name}` is not registered"),
                    ));
                }
                pbx_plugin::Endpoint::User(name)
            }
            EndpointSpec::Phone { number, trunk } => pbx_plugin::Endpoint::Phone { number, trunk },
        };
        let from = req
            .from
            .map(|f| {
                pbx_sip::Uri::parse(&f)
                    .ok()
                    .and_then(|u| u.user().map(str::to_string))
                    .unwrap_or(f)
            })
            .unwrap_or_else(|| "pbx".to_string());
        let timeout = Duration::from_secs(u64::from(req.connect_timeout_secs.max(1)));
        self.calls
            .originate(
                req.account_id,
                req.app_id,
                req.version,
                from,
                target,
                timeout,
            )
            .map_err(|err| BackendError::new(BackendErrorKind::Unavailable, err.to_string()))
    }

    fn conferences(&self) -> Vec<ConferenceView> {
        self.calls.conferences()
    }

    fn conference(&self, id: &str) -> Option<ConferenceView> {
        self.calls.conference(id)
    }

    fn hangup_conference(&self, id: &str) -> bool {
        self.calls.hangup_conference(id)
    }

    fn registrations(&self, username: &str) -> Vec<RegistrationView> {
        self.calls
            .registrar
            .bindings(username)
            .into_iter()
            .map(|b| RegistrationView {
                contact: b.contact,
                expires_at: b.expires_at,
                source: format!(
                    "{}:{}",
                    match b.source.transport {
                        pbx_sip::Transport::Udp => "udp",
                        pbx_sip::Transport::Tcp => "tcp",
                    },
                    b.source.addr
                ),
            })
            .collect()
    }

    fn sip_realm(&self) -> String {
        self.calls.registrar.realm().to_string()
    }

    fn sip_user_changed(&self, username: &str) {
        self.calls.registrar.forget(username);
    }

    fn check_audio(&self, bytes: &[u8]) -> Result<serde_json::Value, String> {
        let info = pbx_media::audiofile::probe(bytes).map_err(|err| err.to_string())?;
        Ok(serde_json::json!({
            "format": info.format.to_string(),
            "rate": info.rate,
            "channels": info.channels,
            "duration_ms": info.duration_ms,
        }))
    }
}
