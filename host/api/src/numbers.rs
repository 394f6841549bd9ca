//! `/v1/numbers`: bind dialled numbers to apps.
//!
//! Invariant: the number is validated before the body is looked at, so a bad number is
//! always 400 whatever the body holds.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::{NumberRoute, validate_number};
use serde_json::{Value, json};

use crate::extract::{ApiPath, JsonObject, blocking};
use crate::{ApiError, ApiState};

/// `PUT /v1/numbers/{number}` `{"app_id"}` → 200 with the binding.
pub(crate) async fn set(
    State(state): State<ApiState>,
    ApiPath(number): ApiPath<String>,
    body: JsonObject,
) -> Result<Json<NumberRoute>, ApiError> {
    validate_number(&number)?;
    let app_id = body.string("app_id")?.to_owned();
    let route = blocking(move || Ok(state.store.set_number(&number, &app_id)?)).await?;
    Ok(Json(route))
}

/// `GET /v1/numbers` → `{"numbers": [...]}`.
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let numbers = blocking(move || Ok(state.store.list_numbers()?)).await?;
    Ok(Json(json!({ "numbers": numbers })))
}

/// `GET /v1/numbers/{number}` → the binding, or 404.
pub(crate) async fn show(
    State(state): State<ApiState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<NumberRoute>, ApiError> {
    blocking(move || {
        state
            .store
            .number(&number)?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("number {number} is not bound")))
    })
    .await
}

/// `DELETE /v1/numbers/{number}` → 204, or 404 when the number was not bound.
pub(crate) async fn delete(
    State(state): State<ApiState>,
    ApiPath(number): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || Ok(state.store.delete_number(&number)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
