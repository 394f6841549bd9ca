//! `/v1/conferences`: live conferences from the server, finished ones from the history.
//!
//! Invariants: an id is looked up live first, then in the store, so a live conference is
//! always shown with its participants; every conference's JSON has the same keys (`id`,
//! `name`, `app_id`, `created_at`, `ended_at`, `status` = `active` | `finished`,
//! `participants`, empty once finished).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::ConferenceRecord;
use serde_json::{Value, json};

use crate::extract::{ApiPath, QueryMap, blocking};
use crate::{ApiError, ApiState, ConferenceView};

/// Page size of the history when `limit` is not given.
const DEFAULT_HISTORY_LIMIT: usize = 50;
/// Largest page of the history.
const MAX_HISTORY_LIMIT: usize = 1000;

fn live_json(conference: ConferenceView) -> Value {
    json!({
        "id": conference.id,
        "name": conference.name,
        "app_id": conference.app_id,
        "created_at": conference.created_at,
        "ended_at": null,
        "status": "active",
        "participants": conference.participants,
    })
}

fn stored_json(conference: ConferenceRecord) -> Value {
    let status = if conference.ended_at.is_some() {
        "finished"
    } else {
        "active"
    };
    json!({
        "id": conference.id,
        "name": conference.name,
        "app_id": conference.app_id,
        "created_at": conference.created_at,
        "ended_at": conference.ended_at,
        "status": status,
        "participants": [],
    })
}

/// `GET /v1/conferences` → `{"conferences": [live conferences]}`.
pub(crate) async fn live(State(state): State<ApiState>) -> Json<Value> {
    let conferences: Vec<Value> = state
        .backend
        .conferences()
        .into_iter()
        .map(live_json)
        .collect();
    Json(json!({ "conferences": conferences }))
}

/// `GET /v1/conferences/history?limit=N` → `{"conferences": [...]}`, newest first, as
/// stored (live ones included, without participants).
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
    let stored = blocking(move || Ok(state.store.list_conferences(limit)?)).await?;
    let conferences: Vec<Value> = stored.into_iter().map(stored_json).collect();
    Ok(Json(json!({ "conferences": conferences })))
}

/// `GET /v1/conferences/{id}` → the live conference with participants, else the stored
/// one as `finished`, else 404.
pub(crate) async fn show(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some(conference) = state.backend.conference(&id) {
        return Ok(Json(live_json(conference)));
    }
    blocking(move || {
        let stored = state
            .store
            .conference(&id)?
            .ok_or_else(|| ApiError::not_found(format!("conference {id} not found")))?;
        // Not live, so it is over even if its end was never written.
        let mut value = stored_json(stored);
        value["status"] = json!("finished");
        Ok(Json(value))
    })
    .await
}

/// `POST /v1/conferences/{id}/hangup` → 202 `{"id","status":"terminating"}`, or 404
/// when it is not live.
pub(crate) async fn hangup(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.backend.hangup_conference(&id) {
        tracing::info!(
            conference_id = id,
            "conference hangup requested through the admin API"
        );
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "status": "terminating" })),
        ))
    } else {
        Err(ApiError::not_found(format!("conference {id} is not live")))
    }
}
