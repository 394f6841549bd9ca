//! The OpenAPI schemas of the admin API's JSON: request bodies and answers, as the wire
//! shows them.
//!
//! Invariants: these types exist only for documentation (nothing is serialised through
//! them); most answers are `pbx_store` types or `serde_json::json!` values built by the
//! handlers, so each mirror here names the same fields with the same spelling, and
//! `tests/openapi.rs` compares the keys of real answers with these schemas so a field
//! added on one side and not the other fails a test. Enumerations whose values live in
//! code (`EventType`, the error codes) are generated from that code, never copied. Every
//! request body type is `deny_unknown_fields` (`additionalProperties: false`), as the
//! handlers refuse an unknown field with 400 naming it.

#![expect(
    dead_code,
    reason = "documentation-only types: utoipa reads their shape, nothing builds them"
)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ERROR_CODES;

/// The one error shape of the API: every 4xx and 5xx answer has this body.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "app app_1 not found"}}))]
pub(crate) struct ErrorBody {
    /// What went wrong.
    error: ErrorDetail,
}

/// The code, a message for humans and, for a bad request field, the field's name.
#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable machine-readable code; see the error code table in `/docs`.
    code: ErrorCode,
    /// A sentence naming the problem (never internal details for a 5xx).
    message: String,
    /// The request field at fault, when there is one.
    field: Option<String>,
}

/// Every error code the API answers, generated from [`ERROR_CODES`].
pub(crate) struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let mut description = String::from("Stable error codes:");
        for code in ERROR_CODES {
            description.push_str(&format!(
                "\n- `{}` ({}): {}",
                code.code, code.statuses, code.meaning
            ));
        }
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .enum_values(Some(ERROR_CODES.iter().map(|c| c.code)))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// The type of a recorded event, generated from `pbx_store::EventType::ALL`.
pub(crate) struct EventType;

impl PartialSchema for EventType {
    fn schema() -> RefOr<Schema> {
        let all = pbx_store::EventType::ALL;
        let mut description = String::from("Every event type the platform records:");
        for kind in all {
            description.push_str(&format!("\n- `{}`", kind.as_str()));
        }
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .enum_values(Some(all.iter().map(|k| k.as_str())))
            .into()
    }
}

impl ToSchema for EventType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventType")
    }
}

// ---- apps -------------------------------------------------------------------------------

/// A call app; calls to its numbers run its active version.
#[derive(ToSchema)]
pub(crate) struct App {
    /// `app_` plus hex digits.
    id: String,
    /// The account that owns it.
    account_id: String,
    /// Unique within the account.
    name: String,
    created_at: DateTime<Utc>,
    /// The version new calls run; `null` until one is deployed.
    active_version: Option<u32>,
}

/// One uploaded version of an app's component.
#[derive(ToSchema)]
pub(crate) struct Version {
    app_id: String,
    /// 1, 2, 3... in upload order.
    version: u32,
    /// Hex SHA-256 of the component bytes.
    sha256: String,
    /// Size in bytes.
    size: u64,
    created_at: DateTime<Utc>,
}

/// An app with all its versions.
#[derive(ToSchema)]
pub(crate) struct AppDetail {
    id: String,
    account_id: String,
    name: String,
    created_at: DateTime<Utc>,
    active_version: Option<u32>,
    /// Oldest first.
    versions: Vec<Version>,
}

/// `GET /v1/apps`.
#[derive(ToSchema)]
pub(crate) struct AppList {
    apps: Vec<App>,
}

/// `GET /v1/apps/{id}/versions`.
#[derive(ToSchema)]
pub(crate) struct VersionList {
    versions: Vec<Version>,
}

/// `POST /v1/apps`.
#[derive(ToSchema)]
#[schema(example = json!({"name": "ivr"}))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApp {
    /// 1 to 64 characters of `A-Z a-z 0-9 . _ -`, unique within the account.
    name: String,
}

/// `POST /v1/apps/{id}/deploy`: the version new calls will run (an older one rolls back).
#[derive(ToSchema)]
#[schema(example = json!({"version": 2}))]
#[serde(deny_unknown_fields)]
pub(crate) struct Deploy {
    version: u32,
}

// ---- app settings, configuration, key-value state ---------------------------------------

/// An app's capabilities and limits (the defaults until changed).
#[derive(ToSchema)]
pub(crate) struct AppSettings {
    /// Whether the app may use its key-value store.
    kv_enabled: bool,
    /// Most bytes (keys plus values) the key-value store may hold.
    kv_max_bytes: u64,
    /// Host names the app may send HTTP requests to (`*.example.com` allows subdomains).
    http_allow: Vec<String>,
    /// Timeout of one outbound HTTP request.
    http_timeout_ms: u32,
    /// Largest outbound HTTP answer body.
    http_max_response_bytes: u64,
    /// Memory cap of one instance; `null` is the server's default.
    max_memory_bytes: Option<u64>,
    /// CPU time one event may take; `null` is the server's default.
    event_deadline_ms: Option<u32>,
}

/// `PUT /v1/apps/{id}/settings`: any subset of the settings; absent fields keep their value.
#[derive(ToSchema)]
#[schema(example = json!({"kv_enabled": true, "http_allow": ["api.example.com"]}))]
#[serde(deny_unknown_fields)]
pub(crate) struct AppSettingsUpdate {
    kv_enabled: Option<bool>,
    kv_max_bytes: Option<u64>,
    http_allow: Option<Vec<String>>,
    http_timeout_ms: Option<u32>,
    http_max_response_bytes: Option<u64>,
    /// `null` returns to the server's default.
    max_memory_bytes: Option<u64>,
    /// `null` returns to the server's default.
    event_deadline_ms: Option<u32>,
}

/// One configuration value of an app; secret values are write-only (`null` here).
#[derive(ToSchema)]
pub(crate) struct ConfigEntry {
    name: String,
    /// The version it applies to; `null` for every version.
    version: Option<u32>,
    /// The value, or `null` when it is a secret.
    value: Option<String>,
    secret: bool,
}

/// `GET /v1/apps/{id}/config`: app-wide values first.
#[derive(ToSchema)]
pub(crate) struct ConfigList {
    config: Vec<ConfigEntry>,
}

/// `PUT /v1/apps/{id}/config/{name}`.
#[derive(ToSchema)]
#[schema(example = json!({"value": "s3cret", "secret": true}))]
#[serde(deny_unknown_fields)]
pub(crate) struct SetConfig {
    value: String,
    /// Hide the value in answers (default false).
    secret: Option<bool>,
    /// Only for this version (default: every version).
    version: Option<u32>,
}

/// One key of an app's key-value store.
#[derive(ToSchema)]
pub(crate) struct KvEntry {
    key: String,
    /// Size of the value in bytes.
    size: u64,
    updated_at: DateTime<Utc>,
}

/// `GET /v1/apps/{id}/kv`: keys in order.
#[derive(ToSchema)]
pub(crate) struct KvList {
    keys: Vec<KvEntry>,
    /// Bytes the store holds now.
    bytes_used: u64,
    /// The app's limit.
    kv_max_bytes: u64,
}

// ---- accounts and API keys --------------------------------------------------------------

/// An account's quotas; `null` is unlimited.
#[derive(ToSchema)]
pub(crate) struct Quotas {
    max_concurrent_calls: Option<u32>,
    max_apps: Option<u32>,
    max_storage_bytes: Option<u64>,
}

/// A tenant: every resource belongs to exactly one account.
#[derive(ToSchema)]
pub(crate) struct Account {
    /// `acc_` plus hex digits; the default account is `acc_0000000000000000`.
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    quotas: Quotas,
}

/// What an account uses now.
#[derive(ToSchema)]
pub(crate) struct Usage {
    apps: u64,
    /// Component and audio bytes stored.
    storage_bytes: u64,
    live_calls: u64,
}

/// An account with its current usage.
#[derive(ToSchema)]
pub(crate) struct AccountWithUsage {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    quotas: Quotas,
    usage: Usage,
}

/// `GET /v1/accounts`: oldest first.
#[derive(ToSchema)]
pub(crate) struct AccountList {
    accounts: Vec<Account>,
}

/// `POST /v1/accounts`.
#[derive(ToSchema)]
#[schema(example = json!({"name": "acme", "max_concurrent_calls": 10}))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAccount {
    name: String,
    max_concurrent_calls: Option<u32>,
    max_apps: Option<u32>,
    max_storage_bytes: Option<u64>,
}

/// `PATCH /v1/accounts/{id}`: quotas to change; `null` lifts one.
#[derive(ToSchema)]
#[schema(example = json!({"max_apps": null}))]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateAccount {
    max_concurrent_calls: Option<u32>,
    max_apps: Option<u32>,
    max_storage_bytes: Option<u64>,
}

/// An API key's metadata (the key itself is shown once, on creation).
#[derive(ToSchema)]
pub(crate) struct ApiKey {
    /// `key_` plus hex digits.
    id: String,
    account_id: String,
    name: String,
    /// The key's first characters, to recognise it.
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    /// Set once revoked; a revoked key answers 401.
    revoked_at: Option<DateTime<Utc>>,
}

/// A new API key: its metadata and `key`, shown this once.
#[derive(ToSchema)]
pub(crate) struct NewApiKey {
    id: String,
    account_id: String,
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    /// `pbx_` plus hex digits: the bearer token; store it now, it is never shown again.
    key: String,
}

/// `GET /v1/accounts/{id}/keys`.
#[derive(ToSchema)]
pub(crate) struct ApiKeyList {
    keys: Vec<ApiKey>,
}

/// `POST /v1/accounts/{id}/keys`.
#[derive(ToSchema)]
#[schema(example = json!({"name": "ci"}))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKey {
    name: String,
}

// ---- numbers ----------------------------------------------------------------------------

/// A dialled number bound to an app.
#[derive(ToSchema)]
pub(crate) struct NumberRoute {
    /// The Request-URI user part, e.g. `1000` or `+4930123456`.
    number: String,
    app_id: String,
    account_id: String,
    updated_at: DateTime<Utc>,
}

/// `GET /v1/numbers`.
#[derive(ToSchema)]
pub(crate) struct NumberList {
    numbers: Vec<NumberRoute>,
}

/// `PUT /v1/numbers/{number}`.
#[derive(ToSchema)]
#[schema(example = json!({"app_id": "app_0123456789abcdef"}))]
#[serde(deny_unknown_fields)]
pub(crate) struct BindNumber {
    app_id: String,
}

// ---- files ------------------------------------------------------------------------------

/// An uploaded audio file; the decoder's findings (`format`, `rate`, `channels`,
/// `duration_ms`, ...) are merged in at the top level.
#[derive(ToSchema)]
pub(crate) struct File {
    id: String,
    account_id: String,
    /// The `name` given on upload.
    name: Option<String>,
    content_type: String,
    size: u64,
    sha256: String,
    created_at: DateTime<Utc>,
    /// What the decoder found (`format`, `rate`, `channels`, `duration_ms`, ...).
    #[serde(flatten)]
    findings: std::collections::HashMap<String, Value>,
}

/// `GET /v1/files`.
#[derive(ToSchema)]
pub(crate) struct FileList {
    files: Vec<File>,
}

// ---- calls ------------------------------------------------------------------------------

/// Which way a call was set up, seen from the pbx.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

/// Where a call is in its life; `hangup` is final.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CallStatus {
    Dialing,
    Ringing,
    Progressing,
    Terminating,
    Canceling,
    Hangup,
}

/// Who ended a call.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HangupBy {
    Local,
    Remote,
}

/// Why a call ended (the WIT `hangup-reason`).
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum HangupReason {
    Normal,
    Failed,
    Busy,
    Cancel,
    Timeout,
    Noanswer,
    AppError,
    Rejected,
    Admin,
}

/// One call leg, live or from the history.
#[derive(ToSchema)]
pub(crate) struct Call {
    /// The host's call id (the WIT `call-id`).
    id: String,
    account_id: String,
    app_id: Option<String>,
    app_version: Option<u32>,
    direction: Direction,
    from: String,
    to: String,
    status: CallStatus,
    hangup_by: Option<HangupBy>,
    hangup_reason: Option<HangupReason>,
    tm_create: DateTime<Utc>,
    tm_ringing: Option<DateTime<Utc>>,
    tm_progressing: Option<DateTime<Utc>>,
    tm_hangup: Option<DateTime<Utc>>,
    /// The SIP Call-ID of the dialog.
    sip_call_id: Option<String>,
    /// The call whose session dialled this leg; `null` for a session's first call.
    master_call_id: Option<String>,
    /// The legs this call's session dialled, oldest first.
    chained_call_ids: Vec<String>,
}

/// `GET /v1/calls`: the live calls.
#[derive(ToSchema)]
pub(crate) struct CallList {
    calls: Vec<Call>,
}

/// `GET /v1/calls/history`: a page, newest first.
#[derive(ToSchema)]
pub(crate) struct CallHistory {
    calls: Vec<Call>,
    /// Pass as `before` for the next page; `null` on the last page.
    next_before: Option<String>,
}

/// `POST /v1/calls`: dial `to` and run `app_id`'s active version for the new call.
#[derive(ToSchema)]
#[schema(example = json!({"to": {"type": "user", "name": "alice"}, "app_id": "app_0123456789abcdef"}))]
#[serde(deny_unknown_fields)]
pub(crate) struct Originate {
    /// A SIP URI or a user part (1 to 64 of `A-Z a-z 0-9 + . _ -`); default chosen by the
    /// server (a trunk's caller id for phone numbers).
    from: Option<String>,
    to: crate::EndpointSpec,
    app_id: String,
    /// Seconds the call may ring, 1 to 600 (default 60).
    connect_timeout: Option<u32>,
}

/// A hangup was requested and is under way.
#[derive(ToSchema)]
#[schema(example = json!({"id": "call_0123456789abcdef", "status": "terminating"}))]
pub(crate) struct Terminating {
    id: String,
    /// Always `terminating`.
    status: String,
}

// ---- events -----------------------------------------------------------------------------

/// One recorded call or app event.
#[derive(ToSchema)]
pub(crate) struct Event {
    /// Increasing; use it as the `after` cursor.
    id: i64,
    #[serde(rename = "type")]
    kind: EventType,
    account_id: String,
    call_id: Option<String>,
    conference_id: Option<String>,
    app_id: Option<String>,
    #[serde(rename = "timestamp")]
    at: DateTime<Utc>,
    /// Type-specific details (digits, reason, file, ...).
    properties: Value,
}

/// `GET /v1/calls/{id}/events`: oldest first.
#[derive(ToSchema)]
pub(crate) struct EventList {
    events: Vec<Event>,
}

/// `GET /v1/events`: a page, oldest first.
#[derive(ToSchema)]
pub(crate) struct EventPage {
    events: Vec<Event>,
    /// Pass as `after` to poll on; `null` when the page is empty (poll with the same `after`).
    last_id: Option<i64>,
}

// ---- webhooks ---------------------------------------------------------------------------

/// A webhook: events of its types are POSTed to `url`, signed with its secret.
#[derive(ToSchema)]
pub(crate) struct Webhook {
    /// `whk_` plus hex digits.
    id: String,
    account_id: String,
    url: String,
    /// Event types (no two webhooks of an account share one), or `["*"]`.
    event_types: Vec<String>,
    enabled: bool,
    created_at: DateTime<Utc>,
}

/// A webhook with its signing secret (create and rotate-secret answers only).
#[derive(ToSchema)]
pub(crate) struct WebhookWithSecret {
    id: String,
    account_id: String,
    url: String,
    event_types: Vec<String>,
    enabled: bool,
    created_at: DateTime<Utc>,
    /// `whsec_` plus hex digits: the HMAC-SHA256 key of `Pbx-Signature`; shown only here.
    secret: String,
}

/// `GET /v1/webhooks`.
#[derive(ToSchema)]
pub(crate) struct WebhookList {
    webhooks: Vec<Webhook>,
}

/// `POST /v1/webhooks`.
#[derive(ToSchema)]
#[schema(example = json!({"url": "https://example.com/pbx", "event_types": ["CALL_FINISHED"]}))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWebhook {
    url: String,
    event_types: Vec<String>,
    /// Default true.
    enabled: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}`: any of the fields.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateWebhook {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// Where one delivery is.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One event's delivery to one webhook.
#[derive(ToSchema)]
pub(crate) struct Delivery {
    id: String,
    webhook_id: String,
    event_id: i64,
    event_type: Option<EventType>,
    status: DeliveryStatus,
    /// Attempts made so far.
    attempts: u32,
    /// The HTTP status of the last attempt.
    http_status: Option<u16>,
    /// Why the last attempt failed: `HTTP <status>`, or without an answer only `refused by
    /// policy` or `unreachable` (never the network's reason), `queue full`, or why the
    /// delivery was abandoned.
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// When the next retry is due.
    next_attempt_at: Option<DateTime<Utc>>,
}

/// `GET /v1/webhooks/{id}/deliveries`: newest first.
#[derive(ToSchema)]
pub(crate) struct DeliveryList {
    deliveries: Vec<Delivery>,
}

// ---- trunks -----------------------------------------------------------------------------

/// A SIP trunk phone numbers are dialled through (its password is write-only).
#[derive(ToSchema)]
pub(crate) struct Trunk {
    id: String,
    account_id: String,
    name: String,
    /// `host[:port]` or a SIP URI of the provider.
    proxy: String,
    username: Option<String>,
    caller_id: Option<String>,
    number_prefix: Option<String>,
    strip_plus: bool,
    /// Lower is tried first.
    priority: u32,
    enabled: bool,
    created_at: DateTime<Utc>,
    /// Whether a password is set.
    has_password: bool,
}

/// `GET /v1/trunks`: in failover order.
#[derive(ToSchema)]
pub(crate) struct TrunkList {
    trunks: Vec<Trunk>,
}

/// `POST /v1/trunks`; `PATCH` takes any subset (`null` clears an optional field).
#[derive(ToSchema)]
#[schema(example = json!({"name": "carrier", "proxy": "sip.carrier.example:5060", "username": "u", "password": "p"}))]
#[serde(deny_unknown_fields)]
pub(crate) struct TrunkBody {
    name: String,
    proxy: String,
    username: Option<String>,
    password: Option<String>,
    caller_id: Option<String>,
    number_prefix: Option<String>,
    strip_plus: Option<bool>,
    priority: Option<u32>,
    enabled: Option<bool>,
}

// ---- SIP users --------------------------------------------------------------------------

/// A user who REGISTERs with the pbx (the password and its hashes are never shown).
#[derive(ToSchema)]
pub(crate) struct SipUser {
    id: String,
    account_id: String,
    username: String,
    display_name: Option<String>,
    /// The digest realm its password was hashed for.
    realm: String,
    created_at: DateTime<Utc>,
}

/// A SIP user with its current registrations.
#[derive(ToSchema)]
pub(crate) struct SipUserDetail {
    id: String,
    account_id: String,
    username: String,
    display_name: Option<String>,
    realm: String,
    created_at: DateTime<Utc>,
    registrations: Vec<crate::RegistrationView>,
}

/// `GET /v1/sip-users`: by user name.
#[derive(ToSchema)]
pub(crate) struct SipUserList {
    sip_users: Vec<SipUser>,
}

/// `POST /v1/sip-users`.
#[derive(ToSchema)]
#[schema(example = json!({"username": "alice", "password": "correct horse"}))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSipUser {
    username: String,
    password: String,
    display_name: Option<String>,
}

/// `PUT /v1/sip-users/{id}/password`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPassword {
    password: String,
}

// ---- conferences ------------------------------------------------------------------------

/// `active` while live, `finished` once over.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ConferenceStatus {
    Active,
    Finished,
}

/// A conference; `participants` only while it is live.
#[derive(ToSchema)]
pub(crate) struct Conference {
    /// `cnf_` plus hex digits.
    id: String,
    name: Option<String>,
    app_id: Option<String>,
    created_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    status: ConferenceStatus,
    participants: Vec<crate::ParticipantView>,
}

/// `GET /v1/conferences` and `/v1/conferences/history`.
#[derive(ToSchema)]
pub(crate) struct ConferenceList {
    conferences: Vec<Conference>,
}

// ---- recordings -------------------------------------------------------------------------

/// What a recording captures.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RecordingTarget {
    Call,
    Bridge,
    Conference,
}

/// Where a recording is; `ready` and `failed` are final.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RecordingStatus {
    Recording,
    Ready,
    Failed,
}

/// One WAV file of a recording.
#[derive(ToSchema)]
pub(crate) struct RecordingFile {
    index: u32,
    /// `mix` or the participant's call id.
    label: String,
    channels: u16,
    size: u64,
    /// Where to download it.
    url: String,
}

/// A recording with its files.
#[derive(ToSchema)]
pub(crate) struct Recording {
    id: String,
    account_id: String,
    app_id: String,
    call_id: Option<String>,
    conference_id: Option<String>,
    target: RecordingTarget,
    per_participant: bool,
    stereo: bool,
    /// The app's labels.
    metadata: BTreeMap<String, String>,
    status: RecordingStatus,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    duration_ms: Option<u64>,
    files: Vec<RecordingFile>,
    /// The first file's download URL; `null` until ready.
    file_url: Option<String>,
}

/// `GET /v1/recordings`: newest first.
#[derive(ToSchema)]
pub(crate) struct RecordingList {
    recordings: Vec<Recording>,
}

// ---- service ----------------------------------------------------------------------------

/// `GET /healthz`.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub(crate) struct Health {
    /// `ok`, or `draining` (with 503) while the server stops taking calls.
    status: String,
}

/// Raw bytes (a component, audio, a key-value value).
pub(crate) struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("binary".into())))
            .into()
    }
}

impl ToSchema for Binary {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Binary")
    }
}
