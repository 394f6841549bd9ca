//! pbx-api: the admin HTTP API (axum) over the store, plus the [`Backend`] trait through
//! which it reaches the running server's live calls and conferences, its registrar, its
//! dialler and its component and audio checks.
//!
//! Invariants:
//! - Only this crate knows HTTP. Every error, including axum's own rejections, unknown
//!   routes and wrong methods, is `{"error": {"code", "message"}}` with a 4xx/5xx status.
//! - Everything under `/v1` needs `Authorization: Bearer <admin token or API key>`. Each
//!   request acts for one account (an API key's own; the admin token's default one or the
//!   one `Pbx-Account` names), and another account's resources answer 404 exactly as if
//!   they did not exist; live calls and conferences from the `Backend` are filtered by
//!   their `account_id`. Account and key routes need the admin token (403 otherwise).
//! - Uploads are validated (content type, size, `Backend` check) before anything is stored:
//!   a rejected upload leaves no trace.
//! - Store access, compiling and decoding run on blocking threads, never on the runtime.
//! - Secrets are write-only: trunk passwords and SIP user passwords (and their HA1) never
//!   appear in an answer.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, reason = "tests unwrap known-good values")
)]

mod accounts;
mod app_settings;
mod apps;
mod backend;
mod calls;
mod conferences;
mod docs;
mod error;
mod events;
mod extract;
mod files;
pub mod net_policy;
mod numbers;
mod openapi;
mod recordings;
mod sip_bans;
mod sip_users;
mod trunks;
mod webhooks;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use pbx_store::DEFAULT_REALM;

pub use backend::{
    BackendError, BackendErrorKind, ConferenceView, EndpointSpec, OriginateRequest,
    ParticipantView, RegistrationView,
};
pub use error::{ApiError, ERROR_CODES, ErrorCodeDoc};
pub use sip_bans::SipBanView;

/// The admin API's OpenAPI 3.1 document as JSON (what `GET /v1/openapi.json` serves), for
/// tools that want it without a running server.
pub fn openapi_json() -> &'static str {
    openapi::document_json()
}

/// Largest component accepted by `POST /v1/apps/{id}/versions`.
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;
/// Largest audio file accepted by `POST /v1/files`.
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;

/// What the handlers share: the store, the live server and the admin token.
#[derive(Clone)]
pub struct ApiState {
    /// Persistent state.
    pub store: Arc<pbx_store::Store>,
    /// The running server.
    pub backend: Arc<dyn Backend>,
    /// The bearer token that administers every account (else an API key is needed);
    /// empty admits nobody with it.
    pub admin_token: String,
}

impl fmt::Debug for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("admin_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What the API needs from the running server; the binary implements it.
///
/// Methods are synchronous; the API calls the heavy ones (`check_component`, `check_audio`,
/// `version_stored`) from a blocking thread.
pub trait Backend: Send + Sync + 'static {
    /// Validates an uploaded component (a wasm component targeting world `pbx:app/call-app`,
    /// importing nothing else) and compiles it; the rejection names the problem.
    fn check_component(&self, bytes: &[u8]) -> Result<(), ComponentRejection>;

    /// Called after a version is stored or deployed, so the server can warm its compile
    /// cache. Runs on a blocking thread; the HTTP answer does not wait for it.
    fn version_stored(&self, app_id: &str, version: u32) {
        let _ = (app_id, version);
    }

    /// The calls that are live now.
    fn live_calls(&self) -> Vec<pbx_store::CallRecord>;

    /// One live call, if it is live.
    fn live_call(&self, id: &str) -> Option<pbx_store::CallRecord>;

    /// Asks a live call to hang up (reason `admin`); false when there is no such live call.
    fn hangup_call(&self, id: &str) -> bool;

    /// Validates uploaded audio and returns what was learnt about it (format, rate,
    /// channels, duration_ms, ...); `Err` names the problem and the API answers 400.
    fn check_audio(&self, bytes: &[u8]) -> Result<serde_json::Value, String>;

    /// Places an outbound call handled by `req.app_id` at `req.version` and returns the
    /// new call's id at once (it is live, `dialing`, when this returns). Runs on a
    /// blocking thread. The default refuses with `Unavailable`.
    fn originate(&self, req: OriginateRequest) -> Result<String, BackendError> {
        let _ = req;
        Err(BackendError::new(
            BackendErrorKind::Unavailable,
            "this server cannot place calls",
        ))
    }

    /// The conferences that are live now.
    fn conferences(&self) -> Vec<ConferenceView> {
        Vec::new()
    }

    /// One live conference with its participants, if it is live.
    fn conference(&self, id: &str) -> Option<ConferenceView> {
        self.conferences().into_iter().find(|c| c.id == id)
    }

    /// Ends a live conference, hanging up every participant; false when it is not live.
    fn hangup_conference(&self, id: &str) -> bool {
        let _ = id;
        false
    }

    /// The current registrations of SIP user `username`.
    fn registrations(&self, username: &str) -> Vec<RegistrationView> {
        let _ = username;
        Vec::new()
    }

    /// The digest realm new SIP user passwords are hashed for (what the registrar
    /// challenges with).
    fn sip_realm(&self) -> String {
        DEFAULT_REALM.to_owned()
    }

    /// The Prometheus text exposition for `GET /metrics`, with live gauges refreshed;
    /// `None` answers 503.
    fn metrics(&self) -> Option<String> {
        None
    }

    /// Whether the server is draining (refusing new calls before it stops); `GET /healthz`
    /// then answers 503 so load balancers move new traffic away.
    fn draining(&self) -> bool {
        false
    }

    /// Called after a SIP user's password changed or the user was deleted, so the
    /// registrar can drop the user's bindings. Runs on a blocking thread.
    fn sip_user_changed(&self, username: &str) {
        let _ = username;
    }

    /// Whether a live call still runs `version` of `app_id`; such a version cannot be
    /// deleted (409) until those calls end.
    fn version_in_use(&self, app_id: &str, version: u32) -> bool {
        let _ = (app_id, version);
        false
    }

    /// Whether a live call runs any version of `app_id`; such an app cannot be deleted
    /// (409) until those calls end.
    fn app_in_use(&self, app_id: &str) -> bool {
        let _ = app_id;
        false
    }

    /// A live stream of the server's recorded events (every account; the API filters by
    /// account) for `GET /v1/events/ws`; `None` answers 503.
    fn subscribe_events(&self) -> Option<tokio::sync::broadcast::Receiver<pbx_store::EventRecord>> {
        None
    }

    /// Called after `POST /v1/apps/{id}/deploy` made `version` the one new calls run, so the
    /// server can record an `APP_DEPLOYED` event. Must not block.
    fn app_deployed(&self, account_id: &str, app_id: &str, version: u32) {
        let _ = (account_id, app_id, version);
    }

    /// Called after a webhook was created, changed, re-keyed or deleted, so the event
    /// dispatcher reloads the list at once. Runs on a blocking thread.
    fn webhooks_changed(&self) {}

    /// The source addresses banned now for failed SIP authentications. Must not block.
    fn sip_bans(&self) -> Vec<SipBanView> {
        Vec::new()
    }

    /// Lifts the ban on `address`; false when it was not banned. Must not block.
    fn lift_sip_ban(&self, address: std::net::IpAddr) -> bool {
        let _ = address;
        false
    }

    /// The outbound address policy webhook URLs and apps' HTTP allow-list entries are
    /// checked against when they are configured. The default denies every private address.
    fn net_policy(&self) -> net_policy::NetPolicy {
        net_policy::NetPolicy::default()
    }
}

/// Why an uploaded component was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ComponentRejection {
    /// The stable code the API answers with.
    pub code: RejectionCode,
    /// What exactly is wrong, for the uploader.
    pub message: String,
}

impl ComponentRejection {
    /// A rejection with `code` and `message`.
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Self {
        ComponentRejection {
            code,
            message: message.into(),
        }
    }
}

/// The stable reasons a component is refused; the API answers 400 for `NotAComponent`
/// and 422 for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionCode {
    /// The bytes are not a WebAssembly component (a core module, or not wasm at all).
    NotAComponent,
    /// The component is well-formed but does not compile.
    CompileFailed,
    /// An export of `pbx:app/handlers` is missing.
    MissingExport,
    /// The component targets another world or an incompatible `pbx:app` version.
    WrongWorld,
    /// The component imports something the host does not grant.
    ImportNotGranted,
}

impl RejectionCode {
    /// The code as it appears in the API's error body.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::NotAComponent => "not_a_component",
            RejectionCode::CompileFailed => "compile_failed",
            RejectionCode::MissingExport => "missing_export",
            RejectionCode::WrongWorld => "wrong_world",
            RejectionCode::ImportNotGranted => "import_not_granted",
        }
    }
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The admin API as an axum router, ready to serve.
pub fn router(state: ApiState) -> Router {
    if state.admin_token.is_empty() {
        tracing::warn!("the admin token is empty: every /v1 request will be refused");
    }
    Router::new()
        .route("/v1/apps", post(apps::create).get(apps::list))
        .route("/v1/apps/{id}", get(apps::show).delete(apps::delete))
        .route(
            "/v1/apps/{id}/versions",
            post(apps::upload_version).get(apps::list_versions),
        )
        .route(
            "/v1/apps/{id}/versions/{version}",
            get(apps::download_version).delete(apps::delete_version),
        )
        .route("/v1/apps/{id}/deploy", post(apps::deploy))
        .route(
            "/v1/apps/{id}/settings",
            get(app_settings::show).put(app_settings::update),
        )
        .route("/v1/apps/{id}/config", get(app_settings::config))
        .route(
            "/v1/apps/{id}/config/{name}",
            put(app_settings::set_config).delete(app_settings::delete_config),
        )
        .route("/v1/apps/{id}/kv", get(app_settings::kv_list))
        .route(
            "/v1/apps/{id}/kv/{key}",
            get(app_settings::kv_get)
                .put(app_settings::kv_put)
                .delete(app_settings::kv_delete),
        )
        .route("/v1/account", get(accounts::own))
        .route("/v1/accounts", post(accounts::create).get(accounts::list))
        .route(
            "/v1/accounts/{id}",
            get(accounts::show)
                .patch(accounts::update)
                .delete(accounts::delete),
        )
        .route(
            "/v1/accounts/{id}/keys",
            post(accounts::create_key).get(accounts::list_keys),
        )
        .route(
            "/v1/accounts/{id}/keys/{key_id}",
            axum::routing::delete(accounts::revoke_key),
        )
        .route("/v1/numbers", get(numbers::list))
        .route(
            "/v1/numbers/{number}",
            put(numbers::set).get(numbers::show).delete(numbers::delete),
        )
        .route("/v1/files", post(files::upload).get(files::list))
        .route("/v1/files/{id}", get(files::show))
        .route("/v1/files/{id}/content", get(files::content))
        .route("/v1/calls", get(calls::live).post(calls::originate))
        .route("/v1/calls/history", get(calls::history))
        .route("/v1/calls/{id}", get(calls::show))
        .route("/v1/calls/{id}/hangup", post(calls::hangup))
        .route("/v1/calls/{id}/events", get(events::call_events))
        .route("/v1/events", get(events::list))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/trunks", get(trunks::list).post(trunks::create))
        .route(
            "/v1/trunks/{id}",
            get(trunks::show)
                .patch(trunks::update)
                .delete(trunks::delete),
        )
        .route(
            "/v1/sip-users",
            get(sip_users::list).post(sip_users::create),
        )
        .route(
            "/v1/sip-users/{id}",
            get(sip_users::show).delete(sip_users::delete),
        )
        .route("/v1/sip-users/{id}/password", put(sip_users::set_password))
        .route("/v1/sip-bans", get(sip_bans::list))
        .route(
            "/v1/sip-bans/{address}",
            axum::routing::delete(sip_bans::lift),
        )
        .route("/v1/conferences", get(conferences::live))
        .route("/v1/conferences/history", get(conferences::history))
        .route("/v1/conferences/{id}", get(conferences::show))
        .route("/v1/conferences/{id}/hangup", post(conferences::hangup))
        .route("/v1/recordings", get(recordings::list))
        .route(
            "/v1/recordings/{id}",
            get(recordings::show).delete(recordings::delete),
        )
        .route("/v1/recordings/{id}/file", get(recordings::first_file))
        .route("/v1/recordings/{id}/files/{index}", get(recordings::file))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            extract::authenticate,
        ))
        .merge(events::ws_routes(state.clone()))
        .merge(docs::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::map_response(error::json_errors))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// `GET /healthz`: liveness, without authentication; 503 `draining` while the server
/// refuses new calls before stopping.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "service",
    summary = "Liveness",
    description = "Whether the server is up and taking calls; no authentication. 503 \
                   `draining` while it refuses new calls before stopping.",
    security(()),
    responses(
        (status = 200, description = "Up and taking calls", body = openapi::schemas::Health),
        (status = 503, description = "Draining: refusing new calls before it stops", body = openapi::schemas::Health,
            example = json!({"status": "draining"})),
    )
)]
async fn healthz(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    if state.backend.draining() {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "draining" })),
        )
    } else {
        (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ok" })),
        )
    }
}

/// `GET /metrics`: Prometheus text exposition, without authentication (aggregates only, no
/// account's data; keep the admin port private).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "service",
    summary = "Prometheus metrics",
    description = "The Prometheus text exposition (active calls, call outcomes, event \
                   dispatch latency, app traps, RTP, webhook deliveries); no \
                   authentication, aggregates only: keep the admin port private.",
    security(()),
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 503, description = "`unavailable`: metrics are not enabled", body = openapi::schemas::ErrorBody),
    )
)]
async fn metrics(axum::extract::State(state): axum::extract::State<ApiState>) -> Response {
    use axum::response::IntoResponse;
    match state.backend.metrics() {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "metrics are not enabled on this server",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not support this method",
    )
}

/// Logs each request by its route template (paths can hold phone numbers).
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_millis();
    if response.status().is_server_error() {
        tracing::warn!(%method, route, status, elapsed_ms, "admin request failed");
    } else {
        tracing::debug!(%method, route, status, elapsed_ms, "admin request");
    }
    response
}
