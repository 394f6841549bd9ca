//! `/v1/calls`: live calls from the server, finished ones from the history, and outbound
//! calls placed through the API.
//!
//! Invariants: a call id is looked up live first, then in the store, so a call that is
//! still up is always shown with its current state; every call's JSON carries
//! `master_call_id` and `chained_call_ids` (stored legs plus live legs whose master it
//! is, oldest first, without repeats); `POST /v1/calls` checks everything it can (body,
//! endpoint, app, active version, named trunk or user, the concurrent-call quota) before
//! asking the server to dial. Everything is the caller's account's only: live calls from
//! the `Backend` are filtered by `account_id`, and another account's call is 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::{CallRecord, validate_phone_number, validate_sip_uri, validate_sip_username};
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, QueryMap, blocking};
use crate::{ApiError, ApiState, EndpointSpec, OriginateRequest};

/// Ring time of an API-created call when `connect_timeout` is not given, in seconds.
const DEFAULT_CONNECT_TIMEOUT_SECS: u32 = 60;
/// Longest ring time of an API-created call, in seconds.
const MAX_CONNECT_TIMEOUT_SECS: u32 = 600;

/// A call's JSON: the record plus its chained legs.
fn call_json(call: &CallRecord, chained: Vec<String>) -> Value {
    let mut value = serde_json::to_value(call).unwrap_or_else(|_| json!({}));
    value["chained_call_ids"] = json!(chained);
    value
}

/// The live calls of `account`.
pub(crate) fn live_calls_of(state: &ApiState, account: &str) -> Vec<CallRecord> {
    let mut calls = state.backend.live_calls();
    calls.retain(|c| c.account_id == account);
    calls
}

/// One live call of `account`, if it is live.
fn live_call_of(state: &ApiState, account: &str, call_id: &str) -> Option<CallRecord> {
    state
        .backend
        .live_call(call_id)
        .filter(|c| c.account_id == account)
}

/// The chained legs of `master` (all of `account`, as `live` is): the stored ones, then
/// live ones not yet stored.
fn chained_ids(
    state: &ApiState,
    account: &str,
    live: &[CallRecord],
    master: &str,
) -> Result<Vec<String>, ApiError> {
    let mut ids = state.store.chained_call_ids(account, master)?;
    for call in live {
        if call.master_call_id.as_deref() == Some(master) && !ids.contains(&call.id) {
            ids.push(call.id.clone());
        }
    }
    Ok(ids)
}

/// The JSON of each call in `calls`, with chained legs from the store and `live`.
fn calls_json(
    state: &ApiState,
    account: &str,
    live: &[CallRecord],
    calls: &[CallRecord],
) -> Result<Vec<Value>, ApiError> {
    calls
        .iter()
        .map(|c| Ok(call_json(c, chained_ids(state, account, live, &c.id)?)))
        .collect()
}

/// Page size of the history when `limit` is not given.
const DEFAULT_HISTORY_LIMIT: usize = 50;
/// Largest page of the history; bigger `limit`s are clamped to it.
const MAX_HISTORY_LIMIT: usize = 1000;

/// List live calls
///
/// `GET /v1/calls` → `{"calls": [live calls]}`.
#[utoipa::path(
    get,
    path = "/v1/calls",
    operation_id = "list_live_calls",
    tag = "calls",
    responses(
        (status = 200, description = "The account's live calls", body = crate::openapi::schemas::CallList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn live(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let live = live_calls_of(&state, &caller.account_id);
    let calls = blocking(move || calls_json(&state, &caller.account_id, &live, &live)).await?;
    Ok(Json(json!({ "calls": calls })))
}

/// Page through the call history
///
/// `GET /v1/calls/history?limit=N&before=ID` → `{"calls": [...], "next_before": ID|null}`,
/// newest first; `next_before` is the cursor of the next page when this one is full.
#[utoipa::path(
    get,
    path = "/v1/calls/history",
    operation_id = "call_history",
    tag = "calls",
    params(
        ("limit" = Option<u32>, Query, description = "Page size (default 50, at most 1000)"),
        ("before" = Option<String>, Query, description = "The `next_before` cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page, newest first", body = crate::openapi::schemas::CallHistory),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn history(
    State(state): State<ApiState>,
    caller: Caller,
    QueryMap(query): QueryMap,
) -> Result<Json<Value>, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_HISTORY_LIMIT,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .map_err(|_| {
                ApiError::invalid_field("limit", "`limit` must be a non-negative integer")
            })?
            .min(MAX_HISTORY_LIMIT),
    };
    let before = query.get("before").cloned();
    let live = live_calls_of(&state, &caller.account_id);
    let (calls, next_before) = blocking(move || {
        let account = caller.account_id;
        let calls = state.store.history(&account, limit, before.as_deref())?;
        let next_before = (limit > 0 && calls.len() == limit)
            .then(|| calls.last().map(|c| c.id.clone()))
            .flatten();
        Ok((calls_json(&state, &account, &live, &calls)?, next_before))
    })
    .await?;
    Ok(Json(json!({ "calls": calls, "next_before": next_before })))
}

/// Show a call
///
/// `GET /v1/calls/{id}` → the live call, else the stored one, else 404.
#[utoipa::path(
    get,
    path = "/v1/calls/{id}",
    operation_id = "get_call",
    tag = "calls",
    params(
        ("id" = String, Path, description = "The call's id"),
    ),
    responses(
        (status = 200, description = "The live call, else the stored one", body = crate::openapi::schemas::Call),
        (status = 404, description = "`not_found`: no such call", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(call_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let account = caller.account_id;
    let live_call = live_call_of(&state, &account, &call_id);
    let live = live_calls_of(&state, &account);
    blocking(move || {
        let call = match live_call {
            Some(call) => call,
            None => state
                .store
                .call(&account, &call_id)?
                .ok_or_else(|| ApiError::not_found(format!("call {call_id} not found")))?,
        };
        let chained = chained_ids(&state, &account, &live, &call.id)?;
        Ok(Json(call_json(&call, chained)))
    })
    .await
}

/// Checks `from` of `POST /v1/calls`: a SIP URI, or a user part of 1 to 64 characters of
/// `A-Z a-z 0-9 + . _ -`.
fn check_from(from: &str) -> Result<(), ApiError> {
    let lower = from.get(..4).map(str::to_ascii_lowercase);
    if lower.as_deref() == Some("sip:") || lower.as_deref() == Some("sips") {
        return validate_sip_uri("from", from)
            .map_err(|e| ApiError::invalid_field("from", e.to_string()));
    }
    let ok = (1..=64).contains(&from.len())
        && from
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "from",
            "`from` must be a SIP URI or 1 to 64 characters of A-Z a-z 0-9 + . _ -",
        ))
    }
}

/// Reads and checks the `to` endpoint's shape (not whether what it names exists).
fn parse_endpoint(body: &JsonObject) -> Result<EndpointSpec, ApiError> {
    let value = body
        .0
        .get("to")
        .cloned()
        .ok_or_else(|| ApiError::invalid_field("to", "`to` is required"))?;
    let to: EndpointSpec = serde_json::from_value(value).map_err(|e| {
        ApiError::invalid_field(
            "to",
            format!(
                "`to` must be {{\"type\":\"sip\",\"uri\"}}, {{\"type\":\"user\",\"name\"}} \
                 or {{\"type\":\"phone\",\"number\",\"trunk\"}}: {e}"
            ),
        )
    })?;
    let checked = match &to {
        EndpointSpec::Sip { uri } => validate_sip_uri("to", uri),
        EndpointSpec::User { name } => validate_sip_username(name),
        EndpointSpec::Phone { number, trunk } => validate_phone_number(number).and_then(|()| {
            trunk
                .as_deref()
                .map_or(Ok(()), pbx_store::validate_app_name)
        }),
    };
    checked.map_err(|e| ApiError::invalid_field("to", format!("`to`: {e}")))?;
    Ok(to)
}

/// Checks that what `to` names exists in `account`: the SIP user, the named trunk
/// (enabled) or at least one enabled trunk.
fn check_endpoint_target(
    state: &ApiState,
    account: &str,
    to: &EndpointSpec,
) -> Result<(), ApiError> {
    let conflict = |message: String| ApiError::new(StatusCode::CONFLICT, "conflict", message);
    match to {
        EndpointSpec::Sip { .. } => Ok(()),
        EndpointSpec::User { name } => match state.store.sip_user_by_username(name)? {
            Some(user) if user.account_id == account => Ok(()),
            _ => Err(ApiError::not_found(format!("SIP user {name:?} not found"))),
        },
        EndpointSpec::Phone {
            trunk: Some(name), ..
        } => match state.store.trunk_by_name(account, name)? {
            None => Err(ApiError::not_found(format!("trunk {name:?} not found"))),
            Some(trunk) if !trunk.enabled => Err(conflict(format!("trunk {name:?} is disabled"))),
            Some(_) => Ok(()),
        },
        EndpointSpec::Phone { trunk: None, .. } => {
            if state.store.trunks_for_dial(account, None)?.is_empty() {
                Err(conflict(
                    "no enabled trunk to dial a phone number through".into(),
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// Place an outbound call
///
/// `POST /v1/calls` `{"from"?, "to", "app_id", "connect_timeout"?}` → 201 with the new
/// live call; 429 `quota_exceeded` when the account already has `max_concurrent_calls`
/// live calls.
#[utoipa::path(
    post,
    path = "/v1/calls",
    operation_id = "originate_call",
    tag = "calls",
    request_body = crate::openapi::schemas::Originate,
    responses(
        (status = 201, description = "The new live call (dialing)", body = crate::openapi::schemas::Call),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app, SIP user or trunk, or the user has no registration", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`no_active_version` or `conflict`: the app has no deployed version, or no enabled trunk can dial the number", body = crate::openapi::schemas::ErrorBody),
        (status = 429, description = "`quota_exceeded`: the account has `max_concurrent_calls` live calls", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "`unavailable`: the server cannot place calls now", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn originate(
    State(state): State<ApiState>,
    caller: Caller,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    body.only(&["from", "to", "app_id", "connect_timeout"])?;
    let from = body.opt_string("from")?.map(str::to_owned);
    if let Some(from) = &from {
        check_from(from)?;
    }
    let to = parse_endpoint(&body)?;
    let app_id = body.string("app_id")?.to_owned();
    let connect_timeout_secs = body
        .opt_u32_in("connect_timeout", 1..=MAX_CONNECT_TIMEOUT_SECS)?
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS);

    blocking(move || {
        let account = caller.account_id;
        let app = state
            .store
            .app(&account, &app_id)?
            .ok_or_else(|| ApiError::not_found(format!("app {app_id} not found")))?;
        let version = app.active_version.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_active_version",
                format!("app {app_id} has no deployed version"),
            )
        })?;
        check_endpoint_target(&state, &account, &to)?;
        if let Some(limit) = state.store.account_quotas(&account)?.max_concurrent_calls {
            let live = live_calls_of(&state, &account).len();
            if live >= limit as usize {
                return Err(ApiError::quota_exceeded(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "the account has {live} live calls; its quota is \
                         max_concurrent_calls = {limit}"
                    ),
                ));
            }
        }
        let call_id = state.backend.originate(OriginateRequest {
            account_id: account.clone(),
            from,
            to,
            app_id,
            version,
            connect_timeout_secs,
        })?;
        tracing::info!(call_id, "outbound call placed through the admin API");
        let live = live_calls_of(&state, &account);
        let call = match live_call_of(&state, &account, &call_id) {
            Some(call) => Some(call),
            None => state.store.call(&account, &call_id)?,
        };
        let value = match call {
            Some(call) => {
                let chained = chained_ids(&state, &account, &live, &call.id)?;
                call_json(&call, chained)
            }
            None => json!({ "id": call_id, "status": "dialing", "chained_call_ids": [] }),
        };
        Ok((StatusCode::CREATED, Json(value)))
    })
    .await
}

/// Hang up a live call
///
/// `POST /v1/calls/{id}/hangup` → 202 `{"id", "status": "terminating"}`, or 404 when the
/// call is not live.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/hangup",
    operation_id = "hangup_call",
    tag = "calls",
    params(
        ("id" = String, Path, description = "The call's id"),
    ),
    responses(
        (status = 202, description = "The hangup is under way", body = crate::openapi::schemas::Terminating),
        (status = 404, description = "`not_found`: the call is not live", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn hangup(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(call_id): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if live_call_of(&state, &caller.account_id, &call_id).is_some()
        && state.backend.hangup_call(&call_id)
    {
        tracing::info!(call_id, "hangup requested through the admin API");
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "id": call_id, "status": "terminating" })),
        ))
    } else {
        Err(ApiError::not_found(format!("call {call_id} is not live")))
    }
}
