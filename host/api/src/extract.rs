//! Request plumbing: extractors whose rejections come out in the API's error shape, the
//! authenticator (admin token or API key) and the [`Caller`] it leaves on each request,
//! body reading with limits, and running blocking work.
//!
//! Invariants: no extractor here lets an axum rejection escape in its plain-text form;
//! JSON bodies must be objects and each field is read by name, so every error names the
//! field at fault; the admin token is compared in constant time (SHA-256 of both sides,
//! then a XOR fold), and an empty configured token admits nobody; an API key is looked
//! up by its SHA-256, acts only for its own account, and naming another account with
//! `Pbx-Account` answers 404 exactly as if that account did not exist.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{ApiError, ApiState};

/// Largest JSON request body accepted.
const MAX_JSON_BYTES: usize = 1024 * 1024;

/// A JSON object body. A missing content type is tolerated; another one is 415.
#[derive(Debug)]
pub(crate) struct JsonObject(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = media_type(req.headers())
            && !(ct == "application/json" || ct.ends_with("+json"))
        {
            return Err(ApiError::unsupported_media_type(format!(
                "expected Content-Type application/json, got {ct}"
            )));
        }
        let bytes = read_body(req, state, MAX_JSON_BYTES).await?;
        if bytes.is_empty() {
            return Err(ApiError::invalid(
                "the request body is empty; expected a JSON object",
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::invalid("the request body must be a JSON object")),
            Err(e) => Err(ApiError::invalid(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }
}

impl JsonObject {
    /// A required string field.
    pub(crate) fn string(&self, field: &'static str) -> Result<&str, ApiError> {
        match self.0.get(field) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::invalid_field(
                field,
                format!("`{field}` must be a string"),
            )),
            None => Err(ApiError::invalid_field(
                field,
                format!("`{field}` is required"),
            )),
        }
    }

    /// An optional non-negative integer field: absent or `null` is `None`.
    pub(crate) fn opt_u64(&self, field: &'static str) -> Result<Option<u64>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ApiError::invalid_field(
                    field,
                    format!("`{field}` must be a non-negative integer or null"),
                )
            }),
        }
    }

    /// A nullable integer field of a PATCH: absent is `None`, `null` is `Some(None)`.
    pub(crate) fn patch_u64(&self, field: &'static str) -> Result<Option<Option<u64>>, ApiError> {
        if self.has(field) {
            self.opt_u64(field).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A required non-negative integer field that fits in a `u32`.
    pub(crate) fn u32(&self, field: &'static str) -> Result<u32, ApiError> {
        match self.0.get(field) {
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    ApiError::invalid_field(field, format!("`{field}` must be a positive integer"))
                }),
            None => Err(ApiError::invalid_field(
                field,
                format!("`{field}` is required"),
            )),
        }
    }
}

impl JsonObject {
    /// True when the body has `field` (even as `null`).
    pub(crate) fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// An optional string field: absent or `null` is `None`.
    pub(crate) fn opt_string(&self, field: &'static str) -> Result<Option<&str>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid_field(
                field,
                format!("`{field}` must be a string or null"),
            )),
        }
    }

    /// An optional boolean field: absent or `null` is `None`.
    pub(crate) fn opt_bool(&self, field: &'static str) -> Result<Option<bool>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid_field(
                field,
                format!("`{field}` must be true or false"),
            )),
        }
    }

    /// An optional integer field within `range`: absent or `null` is `None`.
    pub(crate) fn opt_u32_in(
        &self,
        field: &'static str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| range.contains(n))
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        field,
                        format!(
                            "`{field}` must be an integer from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }

    /// Refuses fields other than `known` with 400 naming the first unknown one in `field`,
    /// so a misspelt field is an error, not ignored. Every handler of a JSON body calls it
    /// before reading any field (`host/api/tests/openapi.rs` sends an unknown field to every route).
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(ApiError::invalid_field(
                unknown.clone(),
                format!(
                    "unknown field `{unknown}`; expected one of {}",
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }
}

/// A path parameter; a malformed one is 400 in the API's shape.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::invalid(format!("bad path parameter: {}", e.body_text())))
    }
}

/// The query string as name → value; handlers parse the values they know, by name.
#[derive(Debug)]
pub(crate) struct QueryMap(pub(crate) HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryMap(q))
            .map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))
    }
}

/// The media type of the request (`type/subtype`, lowercase, no parameters), if any.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(essence)
}

/// Reads the whole body, refusing more than `limit` bytes with 413 (early when the
/// Content-Length already says so).
pub(crate) async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut req = req;
    axum::extract::DefaultBodyLimit::max(limit).apply(&mut req);
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::invalid(format!("cannot read the request body: {}", e.body_text()))
        }
    })
}

/// Runs blocking work (SQLite, blob files, compiling, decoding) off the async threads.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "blocking task failed");
        Err(ApiError::internal())
    })
}

/// Who is calling: the account every handler scopes its work to, and whether the caller
/// holds the admin token (needed for the account and key routes). The authenticator puts
/// it on every authenticated request as an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The account the request acts on.
    pub(crate) account_id: String,
    /// True for the admin token, false for an API key.
    pub(crate) admin: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!("a handler asked for the caller on an unauthenticated route");
            ApiError::internal()
        })
    }
}

impl Caller {
    /// 403 `forbidden` unless the caller holds the admin token.
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this route needs the admin token; an API key cannot use it",
            ))
        }
    }
}

/// The header with which the admin token picks the account it acts on.
pub(crate) const ACCOUNT_HEADER: &str = "pbx-account";

/// Middleware: lets a request through only with `Authorization: Bearer <admin token or
/// API key>`, and puts the [`Caller`] on it. The admin token acts on the default account
/// or on the one `Pbx-Account` names; an API key acts on its own account.
pub(crate) async fn authenticate(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let unauthorized =
        |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .map(str::to_owned);
    let Some(presented) = presented else {
        return Err(unauthorized(
            "missing `Authorization: Bearer <token>` header",
        ));
    };
    let requested = match req.headers().get(ACCOUNT_HEADER) {
        None => None,
        Some(value) => Some(account_header(value)?),
    };
    let no_such_account = |id: &str| ApiError::not_found(format!("account {id} not found"));
    let caller = if token_matches(&state.admin_token, &presented) {
        let account_id = match requested {
            None => pbx_store::DEFAULT_ACCOUNT_ID.to_owned(),
            Some(id) => {
                let store = state.store.clone();
                let lookup = id.clone();
                let exists = blocking(move || Ok(store.account(&lookup)?.is_some())).await?;
                if !exists {
                    return Err(no_such_account(&id));
                }
                id
            }
        };
        Caller {
            account_id,
            admin: true,
        }
    } else if presented.starts_with(pbx_store::API_KEY_PREFIX) {
        let store = state.store.clone();
        let account = blocking(move || Ok(store.account_for_key(&presented)?)).await?;
        let Some(account_id) = account else {
            return Err(unauthorized("the API key is unknown or revoked"));
        };
        if let Some(id) = requested
            && id != account_id
        {
            return Err(no_such_account(&id));
        }
        Caller {
            account_id,
            admin: false,
        }
    } else {
        return Err(unauthorized("the admin token is wrong"));
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The account id a `Pbx-Account` header names: 400 naming the header when it is not
/// text or is empty (an absent header means the default account; an empty one is a
/// client's mistake, not a request for an account with no name).
fn account_header(value: &axum::http::HeaderValue) -> Result<String, ApiError> {
    let bad = |message: &str| ApiError::invalid_field(ACCOUNT_HEADER_NAME, message.to_owned());
    let id = value
        .to_str()
        .map_err(|_| bad("the Pbx-Account header is not text"))?
        .trim();
    if id.is_empty() {
        return Err(bad(
            "the Pbx-Account header is empty; name an account id or leave the header out",
        ));
    }
    Ok(id.to_owned())
}

/// The header's name as documented (and as `field` names it in an error).
pub(crate) const ACCOUNT_HEADER_NAME: &str = "Pbx-Account";

/// Constant-time token comparison; an empty expected token never matches.
pub(crate) fn token_matches(expected: &str, presented: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0 && !expected.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", ""));
        assert!(!token_matches("", ""));
    }
}
