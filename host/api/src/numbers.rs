//! `/v1/numbers`: bind dialled numbers to apps.
//!
//! Invariants: the number is validated before the body is looked at, so a bad number is
//! always 400 whatever the body holds; numbers are unique across the server, so binding
//! one another account holds is 409 ("number is taken"), while reading or deleting it is
//! 404 as if it were unbound.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::{NumberRoute, validate_number};
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, blocking};
use crate::{ApiError, ApiState};

/// Bind a number to an app
///
/// `PUT /v1/numbers/{number}` `{"app_id"}` → 200 with the binding.
#[utoipa::path(
    put,
    path = "/v1/numbers/{number}",
    operation_id = "bind_number",
    tag = "numbers",
    params(
        ("number" = String, Path, description = "The dialled number (Request-URI user part)"),
    ),
    request_body = crate::openapi::schemas::BindNumber,
    responses(
        (status = 200, description = "The binding", body = crate::openapi::schemas::NumberRoute),
        (status = 400, description = "`invalid_request`: a malformed number or body", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: another account holds the number", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn set(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(number): ApiPath<String>,
    body: JsonObject,
) -> Result<Json<NumberRoute>, ApiError> {
    validate_number(&number)?;
    body.only(&["app_id"])?;
    let app_id = body.string("app_id")?.to_owned();
    let route = blocking(move || {
        Ok(state
            .store
            .set_number(&caller.account_id, &number, &app_id)?)
    })
    .await?;
    Ok(Json(route))
}

/// List bound numbers
///
/// `GET /v1/numbers` → `{"numbers": [...]}`.
#[utoipa::path(
    get,
    path = "/v1/numbers",
    operation_id = "list_numbers",
    tag = "numbers",
    responses(
        (status = 200, description = "The account's numbers", body = crate::openapi::schemas::NumberList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let numbers = blocking(move || Ok(state.store.list_numbers(&caller.account_id)?)).await?;
    Ok(Json(json!({ "numbers": numbers })))
}

/// Show a number's binding
///
/// `GET /v1/numbers/{number}` → the binding, or 404.
#[utoipa::path(
    get,
    path = "/v1/numbers/{number}",
    operation_id = "get_number",
    tag = "numbers",
    params(
        ("number" = String, Path, description = "The dialled number (Request-URI user part)"),
    ),
    responses(
        (status = 200, description = "The binding", body = crate::openapi::schemas::NumberRoute),
        (status = 404, description = "`not_found`: the number is not bound", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<NumberRoute>, ApiError> {
    blocking(move || {
        state
            .store
            .number(&caller.account_id, &number)?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("number {number} is not bound")))
    })
    .await
}

/// Unbind a number
///
/// `DELETE /v1/numbers/{number}` → 204, or 404 when the number was not bound.
#[utoipa::path(
    delete,
    path = "/v1/numbers/{number}",
    operation_id = "unbind_number",
    tag = "numbers",
    params(
        ("number" = String, Path, description = "The dialled number (Request-URI user part)"),
    ),
    responses(
        (status = 204, description = "Unbound"),
        (status = 404, description = "`not_found`: the number is not bound", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(number): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || Ok(state.store.delete_number(&caller.account_id, &number)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
