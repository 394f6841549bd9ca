//! The types the API exchanges with the running server through [`crate::Backend`] for
//! call control: outbound calls, live conferences, SIP registrations and the server's
//! refusals.
//!
//! Invariants: these types carry no HTTP; `EndpointSpec` is exactly the JSON of the
//! `to` field of `POST /v1/calls` (and of the WIT `endpoint`); a `BackendError` of kind
//! `Internal` never shows its message to the client (it is logged).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// Where an API-created call goes; the JSON is tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum EndpointSpec {
    /// `{"type":"sip","uri":"sip:bob@example.com"}`: a SIP URI dialled directly.
    Sip {
        /// A `sip:`/`sips:` URI with a host.
        uri: String,
    },
    /// `{"type":"user","name":"alice"}`: every registered contact of a SIP user.
    User {
        /// The SIP user's user name.
        name: String,
    },
    /// `{"type":"phone","number":"+4930...","trunk":null}`: a number through a trunk.
    Phone {
        /// An optional `+` and 1 to 32 digits.
        number: String,
        /// A trunk name; `None` tries every enabled trunk in priority order.
        #[serde(default)]
        trunk: Option<String>,
    },
}

/// What `POST /v1/calls` asks the server to do: dial `to` and run `app_id` at `version`
/// for the new call's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginateRequest {
    /// The account the call belongs to (the caller's, which owns `app_id`).
    pub account_id: String,
    /// The caller's user part or SIP URI for From; `None` lets the server choose (the
    /// trunk's caller id for phone numbers).
    pub from: Option<String>,
    /// Where the call goes.
    pub to: EndpointSpec,
    /// The app that handles the call; it exists and has an active version.
    pub app_id: String,
    /// The app's active version when the request was checked.
    pub version: u32,
    /// How long the call may ring before it ends with `noanswer`, 1 to 600 seconds.
    pub connect_timeout_secs: u32,
}

/// A live conference as `GET /v1/conferences` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConferenceView {
    /// `cnf_` plus 16 hex digits.
    pub id: String,
    /// The account it belongs to (its app's); the API shows it to that account only.
    pub account_id: String,
    /// The name the app gave it.
    pub name: Option<String>,
    /// The app whose session created it.
    pub app_id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who is in it now.
    pub participants: Vec<ParticipantView>,
}

/// One participant of a live conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParticipantView {
    /// The participant's leg.
    pub call_id: String,
    /// The others do not hear it.
    pub muted: bool,
    /// It hears nothing from the conference.
    pub deafened: bool,
    /// `participant` or `moderator`.
    pub role: String,
    /// When it joined.
    pub joined_at: DateTime<Utc>,
}

/// One current registration (binding) of a SIP user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegistrationView {
    /// The Contact URI calls to the user are sent to.
    pub contact: String,
    /// When the binding lapses unless refreshed.
    pub expires_at: DateTime<Utc>,
    /// The transport and address the REGISTER came from, e.g. `udp:192.0.2.7:5062`.
    pub source: String,
}

/// How the server refused a call-control request; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendErrorKind {
    /// The request is malformed in a way only the server sees (400 `invalid_request`).
    Invalid,
    /// Something named does not exist or is not reachable now, such as a user with no
    /// registration (404 `not_found`).
    NotFound,
    /// The state does not allow it, such as a call limit (409 `conflict`).
    Conflict,
    /// The server cannot do this now, such as shutting down (503 `unavailable`).
    Unavailable,
    /// A failure on our side (500 `internal`; the message is logged, not shown).
    Internal,
}

/// A refusal from the server: a kind that picks the status and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// Picks the HTTP status and error code.
    pub kind: BackendErrorKind,
    /// What went wrong, for the client (except for `Internal`).
    pub message: String,
}

impl BackendError {
    /// A refusal of `kind` with `message`.
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        match err.kind {
            BackendErrorKind::Invalid => ApiError::invalid(err.message),
            BackendErrorKind::NotFound => ApiError::not_found(err.message),
            BackendErrorKind::Conflict => {
                ApiError::new(StatusCode::CONFLICT, "conflict", err.message)
            }
            BackendErrorKind::Unavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", err.message)
            }
            BackendErrorKind::Internal => {
                tracing::error!(error = %err.message, "backend failure");
                ApiError::internal()
            }
        }
    }
}
