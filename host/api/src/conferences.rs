//! `/v1/conferences`: live conferences from the server, finished ones from the history.
//!
//! Invariants: an id is looked up live first, then in the store, so a live conference is
//! always shown with its participants; every conference's JSON has the same keys (`id`,
//! `name`, `app_id`, `created_at`, `ended_at`, `status` = `active` | `finished`,
//! `participants`, empty once finished); only the caller's account's conferences are
//! shown or ended (live ones filtered by `account_id`), others are 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::ConferenceRecord;
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, QueryMap, blocking};
use crate::{ApiError, ApiState, ConferenceView};

/// Page size of the history when `limit` is not given.
const DEFAULT_HISTORY_LIMIT: usize = 50;
/// Largest page of the history.
const MAX_HISTORY_LIMIT: usize = 1000;

/// One live conference of `account`, if it is live.
fn live_of(state: &ApiState, account: &str, id: &str) -> Option<ConferenceView> {
    state
        .backend
        .conference(id)
        .filter(|c| c.account_id == account)
}

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

/// List live conferences
///
/// `GET /v1/conferences` → `{"conferences": [live conferences]}`.
#[utoipa::path(
    get,
    path = "/v1/conferences",
    operation_id = "list_live_conferences",
    tag = "conferences",
    responses(
        (status = 200, description = "Live conferences with their participants", body = crate::openapi::schemas::ConferenceList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn live(State(state): State<ApiState>, caller: Caller) -> Json<Value> {
    let conferences: Vec<Value> = state
        .backend
        .conferences()
        .into_iter()
        .filter(|c| c.account_id == caller.account_id)
        .map(live_json)
        .collect();
    Json(json!({ "conferences": conferences }))
}

/// List stored conferences
///
/// `GET /v1/conferences/history?limit=N` → `{"conferences": [...]}`, newest first, as
/// stored (live ones included, without participants).
#[utoipa::path(
    get,
    path = "/v1/conferences/history",
    operation_id = "conference_history",
    tag = "conferences",
    params(
        ("limit" = Option<u32>, Query, description = "At most this many (default 50, at most 1000)"),
    ),
    responses(
        (status = 200, description = "Newest first, without participants", body = crate::openapi::schemas::ConferenceList),
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
    let stored =
        blocking(move || Ok(state.store.list_conferences(&caller.account_id, limit)?)).await?;
    let conferences: Vec<Value> = stored.into_iter().map(stored_json).collect();
    Ok(Json(json!({ "conferences": conferences })))
}

/// Show a conference
///
/// `GET /v1/conferences/{id}` → the live conference with participants, else the stored
/// one as `finished`, else 404.
#[utoipa::path(
    get,
    path = "/v1/conferences/{id}",
    operation_id = "get_conference",
    tag = "conferences",
    params(
        ("id" = String, Path, description = "The conference's id"),
    ),
    responses(
        (status = 200, description = "The live conference with participants, else the stored one", body = crate::openapi::schemas::Conference),
        (status = 404, description = "`not_found`: no such conference", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some(conference) = live_of(&state, &caller.account_id, &id) {
        return Ok(Json(live_json(conference)));
    }
    blocking(move || {
        let stored = state
            .store
            .conference(&caller.account_id, &id)?
            .ok_or_else(|| ApiError::not_found(format!("conference {id} not found")))?;
        // Not live, so it is over even if its end was never written.
        let mut value = stored_json(stored);
        value["status"] = json!("finished");
        Ok(Json(value))
    })
    .await
}

/// End a live conference
///
/// `POST /v1/conferences/{id}/hangup` → 202 `{"id","status":"terminating"}`, or 404
/// when it is not live.
#[utoipa::path(
    post,
    path = "/v1/conferences/{id}/hangup",
    operation_id = "hangup_conference",
    tag = "conferences",
    params(
        ("id" = String, Path, description = "The conference's id"),
    ),
    responses(
        (status = 202, description = "Ending: every participant is hung up", body = crate::openapi::schemas::Terminating),
        (status = 404, description = "`not_found`: the conference is not live", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn hangup(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if live_of(&state, &caller.account_id, &id).is_some() && state.backend.hangup_conference(&id) {
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
