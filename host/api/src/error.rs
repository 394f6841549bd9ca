//! The one error shape of the admin API: `{"error": {"code", "message"[, "field"]}}` with a
//! 4xx/5xx status.
//!
//! Invariants: `code` is a stable snake_case string clients can match on; a 5xx never
//! carries internal details (those go to the log); every non-JSON error response that
//! leaves the router (axum's own 405/413/...) is rewritten into this shape by
//! [`json_errors`].

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::StoreError;
use serde_json::{Map, Value, json};

/// An error answer of the API; handlers return `Result<_, ApiError>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// A sentence for humans naming the problem.
    pub message: String,
    /// The request field (or header) at fault, when there is one: a body field's name,
    /// `to` for a nested one, or the name a client misspelt.
    pub field: Option<Cow<'static, str>>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 400 `invalid_request` about one field.
    pub fn invalid_field(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::invalid(message)
        }
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// `quota_exceeded` with `status` (429 for counts, 413 for bytes); the message names
    /// the quota and its value.
    pub fn quota_exceeded(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, "quota_exceeded", message)
    }

    /// 500 `internal`; the details belong in the log, not in the answer.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// The error a bare status maps to, for responses axum produced itself.
    pub(crate) fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "invalid_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            s if s.is_server_error() => "internal",
            _ => "error",
        };
        let message = status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase();
        Self::new(status, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::from(self.message));
        if let Some(field) = self.field {
            error.insert("field".into(), Value::from(field.into_owned()));
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(_) => ApiError::not_found(err.to_string()),
            StoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            StoreError::Invalid { field, ref message } => {
                ApiError::invalid_field(field, format!("invalid {field}: {message}"))
            }
            StoreError::QuotaExceeded { quota, message, .. } => {
                // Storage quotas refuse a body (413); counting quotas refuse a request (429).
                let status = match quota {
                    "max_storage_bytes" | "kv_max_bytes" => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::TOO_MANY_REQUESTS,
                };
                ApiError::quota_exceeded(status, message)
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

/// Rewrites any error response that is not already JSON (axum's 405, 413 and the like)
/// into the API's error shape, keeping its status and an `Allow` header.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut rewritten = ApiError::from_status(status).into_response();
    if let Some(allow) = allow {
        rewritten.headers_mut().insert(header::ALLOW, allow);
    }
    rewritten
}

/// One error code as the documentation lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeDoc {
    /// The `error.code` string.
    pub code: &'static str,
    /// The HTTP status (or statuses) it comes with.
    pub statuses: &'static str,
    /// When a client gets it.
    pub meaning: &'static str,
}

/// Every `error.code` the API answers, for `/docs`, the OpenAPI `ErrorCode` enum and
/// `docs/api.md`. `tests/openapi.rs` reads the crate's sources, so a new code used
/// anywhere without a line here fails the tests.
pub const ERROR_CODES: &[ErrorCodeDoc] = &[
    ErrorCodeDoc {
        code: "invalid_request",
        statuses: "400",
        meaning: "The request is malformed: not a JSON object, a missing, unknown or \
                  ill-typed field (`field` names it), a bad path or query parameter.",
    },
    ErrorCodeDoc {
        code: "not_a_component",
        statuses: "400",
        meaning: "An uploaded version is not a WebAssembly component (a core module or \
                  not wasm at all).",
    },
    ErrorCodeDoc {
        code: "invalid_audio",
        statuses: "400",
        meaning: "An uploaded audio file cannot be decoded or used.",
    },
    ErrorCodeDoc {
        code: "target_not_allowed",
        statuses: "400",
        meaning: "A webhook URL or an app's `http_allow` entry (`field` names it) is a \
                  loopback, private, link-local or reserved address, or a name that \
                  resolves only to such addresses, and the server's admin has not allowed \
                  that network (`--allow-private-networks`).",
    },
    ErrorCodeDoc {
        code: "unauthorized",
        statuses: "401",
        meaning: "No `Authorization: Bearer` header, a wrong admin token, or an unknown or \
                  revoked API key.",
    },
    ErrorCodeDoc {
        code: "forbidden",
        statuses: "403",
        meaning: "The route needs the admin token; an API key cannot use it.",
    },
    ErrorCodeDoc {
        code: "not_found",
        statuses: "404",
        meaning: "No such resource in the caller's account (another account's resources \
                  answer exactly the same), no such route, or a call or conference that \
                  is not live.",
    },
    ErrorCodeDoc {
        code: "method_not_allowed",
        statuses: "405",
        meaning: "The route exists but not with this method; `Allow` lists the methods.",
    },
    ErrorCodeDoc {
        code: "conflict",
        statuses: "409",
        meaning: "The current state forbids it: a duplicate name, a number bound in \
                  another account, deleting the active version or one a live call runs, \
                  deleting an app a live call runs, overlapping webhook event types, a recording still recording, a \
                  disabled trunk, an account that still owns resources.",
    },
    ErrorCodeDoc {
        code: "no_active_version",
        statuses: "409",
        meaning: "The app has no deployed version, so it cannot take a call.",
    },
    ErrorCodeDoc {
        code: "payload_too_large",
        statuses: "413",
        meaning: "The request body is larger than the route accepts.",
    },
    ErrorCodeDoc {
        code: "quota_exceeded",
        statuses: "429, 413",
        meaning: "An account or app quota would be passed: 429 for counts \
                  (`max_apps`, `max_concurrent_calls`), 413 for bytes \
                  (`max_storage_bytes`, `kv_max_bytes`); the message names the quota.",
    },
    ErrorCodeDoc {
        code: "unsupported_media_type",
        statuses: "415",
        meaning: "The request's Content-Type is not one the route accepts.",
    },
    ErrorCodeDoc {
        code: "unprocessable",
        statuses: "422",
        meaning: "The request is well-formed but cannot be processed.",
    },
    ErrorCodeDoc {
        code: "compile_failed",
        statuses: "422",
        meaning: "An uploaded component is well-formed but does not compile.",
    },
    ErrorCodeDoc {
        code: "missing_export",
        statuses: "422",
        meaning: "An uploaded component lacks an export of `pbx:app/handlers`.",
    },
    ErrorCodeDoc {
        code: "wrong_world",
        statuses: "422",
        meaning: "An uploaded component targets another world or an incompatible \
                  `pbx:app` version.",
    },
    ErrorCodeDoc {
        code: "import_not_granted",
        statuses: "422",
        meaning: "An uploaded component imports something the host does not grant.",
    },
    ErrorCodeDoc {
        code: "internal",
        statuses: "500",
        meaning: "A failure on the server's side; the details are in the server log.",
    },
    ErrorCodeDoc {
        code: "unavailable",
        statuses: "503",
        meaning: "The server cannot do this now: it cannot place calls, has no live \
                  event stream or metrics, or is draining.",
    },
    ErrorCodeDoc {
        code: "error",
        statuses: "other 4xx/5xx",
        meaning: "A status without a code of its own (rare; match on the status).",
    },
];
