//! `/v1/calls`: live calls from the server, finished ones from the history.
//!
//! Invariant: a call id is looked up live first, then in the store, so a call that is
//! still up is always shown with its current state.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::CallRecord;
use serde_json::{Value, json};

use crate::extract::{ApiPath, QueryMap, blocking};
use crate::{ApiError, ApiState};

/// Page size of the history when `limit` is not given.
const DEFAULT_HISTORY_LIMIT: usize = 50;
/// Largest page of the history; bigger `limit`s are clamped to it.
const MAX_HISTORY_LIMIT: usize = 1000;

/// `GET /v1/calls` → `{"calls": [live calls]}`.
pub(crate) async fn live(State(state): State<ApiState>) -> Json<Value> {
    let calls = state.backend.live_calls();
    Json(json!({ "calls": calls }))
}

/// `GET /v1/calls/history?limit=N&before=ID` → `{"calls": [...], "next_before": ID|null}`,
/// newest first; `next_before` is the cursor of the next page when this one is full.
pub(crate) async fn history(
    State(state): State<ApiState>,
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
    let calls = blocking(move || Ok(state.store.history(limit, before.as_deref())?)).await?;
    let next_before = (limit > 0 && calls.len() == limit)
        .then(|| calls.last().map(|c| c.id.clone()))
        .flatten();
    Ok(Json(json!({ "calls": calls, "next_before": next_before })))
}

/// `GET /v1/calls/{id}` → the live call, else the stored one, else 404.
pub(crate) async fn show(
    State(state): State<ApiState>,
    ApiPath(call_id): ApiPath<String>,
) -> Result<Json<CallRecord>, ApiError> {
    if let Some(call) = state.backend.live_call(&call_id) {
        return Ok(Json(call));
    }
    blocking(move || {
        state
            .store
            .call(&call_id)?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("call {call_id} not found")))
    })
    .await
}

/// `POST /v1/calls/{id}/hangup` → 202 `{"id", "status": "terminating"}`, or 404 when the
/// call is not live.
pub(crate) async fn hangup(
    State(state): State<ApiState>,
    ApiPath(call_id): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.backend.hangup_call(&call_id) {
        tracing::info!(call_id, "hangup requested through the admin API");
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "id": call_id, "status": "terminating" })),
        ))
    } else {
        Err(ApiError::not_found(format!("call {call_id} is not live")))
    }
}
