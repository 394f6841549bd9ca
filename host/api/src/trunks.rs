//! `/v1/trunks`: the SIP trunks phone numbers are dialled through.
//!
//! Invariants: the password is write-only (answers say `"has_password"`); unknown body
//! fields are refused so a misspelt one never silently keeps an old value; the store does
//! the field checks and names the field at fault.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::{MAX_TRUNK_PRIORITY, NewTrunk, Trunk, TrunkPatch};
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, blocking};
use crate::{ApiError, ApiState};

/// Every field a trunk body may have.
const FIELDS: &[&str] = &[
    "name",
    "proxy",
    "username",
    "password",
    "caller_id",
    "number_prefix",
    "strip_plus",
    "priority",
    "enabled",
];

/// A trunk's JSON: its fields without the password, plus `has_password`.
fn trunk_json(trunk: &Trunk) -> Value {
    let mut value = serde_json::to_value(trunk).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut value {
        map.insert("has_password".into(), json!(trunk.password.is_some()));
    }
    value
}

/// An optional, nullable string field of a PATCH: absent is `None`, `null` is `Some(None)`.
fn patch_opt(body: &JsonObject, field: &'static str) -> Result<Option<Option<String>>, ApiError> {
    if body.has(field) {
        Ok(Some(body.opt_string(field)?.map(str::to_owned)))
    } else {
        Ok(None)
    }
}

/// Create a trunk
///
/// `POST /v1/trunks` `{"name","proxy",...}` → 201 with the trunk.
#[utoipa::path(
    post,
    path = "/v1/trunks",
    operation_id = "create_trunk",
    tag = "trunks",
    request_body = crate::openapi::schemas::TrunkBody,
    responses(
        (status = 201, description = "The trunk (its password never shown)", body = crate::openapi::schemas::Trunk),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: a trunk of this name exists", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    body.only(FIELDS)?;
    let mut new = NewTrunk::new(body.string("name")?, body.string("proxy")?);
    new.username = body.opt_string("username")?.map(str::to_owned);
    new.password = body.opt_string("password")?.map(str::to_owned);
    new.caller_id = body.opt_string("caller_id")?.map(str::to_owned);
    new.number_prefix = body.opt_string("number_prefix")?.map(str::to_owned);
    if let Some(strip) = body.opt_bool("strip_plus")? {
        new.strip_plus = strip;
    }
    if let Some(priority) = body.opt_u32_in("priority", 0..=MAX_TRUNK_PRIORITY)? {
        new.priority = priority;
    }
    if let Some(enabled) = body.opt_bool("enabled")? {
        new.enabled = enabled;
    }
    let trunk = blocking(move || Ok(state.store.create_trunk(&caller.account_id, new)?)).await?;
    Ok((StatusCode::CREATED, Json(trunk_json(&trunk))))
}

/// List trunks
///
/// `GET /v1/trunks` → `{"trunks": [...]}` in failover order.
#[utoipa::path(
    get,
    path = "/v1/trunks",
    operation_id = "list_trunks",
    tag = "trunks",
    responses(
        (status = 200, description = "In failover order", body = crate::openapi::schemas::TrunkList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let trunks = blocking(move || Ok(state.store.list_trunks(&caller.account_id)?)).await?;
    let trunks: Vec<Value> = trunks.iter().map(trunk_json).collect();
    Ok(Json(json!({ "trunks": trunks })))
}

/// Show a trunk
///
/// `GET /v1/trunks/{id}` → the trunk, or 404.
#[utoipa::path(
    get,
    path = "/v1/trunks/{id}",
    operation_id = "get_trunk",
    tag = "trunks",
    params(
        ("id" = String, Path, description = "The trunk's id"),
    ),
    responses(
        (status = 200, description = "The trunk", body = crate::openapi::schemas::Trunk),
        (status = 404, description = "`not_found`: no such trunk", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        state
            .store
            .trunk(&caller.account_id, &id)?
            .map(|t| Json(trunk_json(&t)))
            .ok_or_else(|| ApiError::not_found(format!("trunk {id} not found")))
    })
    .await
}

/// Change a trunk
///
/// `PATCH /v1/trunks/{id}` with any subset of the fields (`null` clears an optional
/// one) → the trunk as stored.
#[utoipa::path(
    patch,
    path = "/v1/trunks/{id}",
    operation_id = "update_trunk",
    tag = "trunks",
    params(
        ("id" = String, Path, description = "The trunk's id"),
    ),
    request_body(content = crate::openapi::schemas::TrunkBody, description = "Any subset of the fields; `null` clears an optional one"),
    responses(
        (status = 200, description = "The trunk as stored", body = crate::openapi::schemas::Trunk),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such trunk", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: a trunk of this name exists", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    body.only(FIELDS)?;
    let required = |field: &'static str| -> Result<Option<String>, ApiError> {
        if body.has(field) {
            Ok(Some(body.string(field)?.to_owned()))
        } else {
            Ok(None)
        }
    };
    let patch = TrunkPatch {
        name: required("name")?,
        proxy: required("proxy")?,
        username: patch_opt(&body, "username")?,
        password: patch_opt(&body, "password")?,
        caller_id: patch_opt(&body, "caller_id")?,
        number_prefix: patch_opt(&body, "number_prefix")?,
        strip_plus: body.opt_bool("strip_plus")?,
        priority: body.opt_u32_in("priority", 0..=MAX_TRUNK_PRIORITY)?,
        enabled: body.opt_bool("enabled")?,
    };
    let trunk =
        blocking(move || Ok(state.store.update_trunk(&caller.account_id, &id, patch)?)).await?;
    Ok(Json(trunk_json(&trunk)))
}

/// Delete a trunk
///
/// `DELETE /v1/trunks/{id}` → 204, or 404.
#[utoipa::path(
    delete,
    path = "/v1/trunks/{id}",
    operation_id = "delete_trunk",
    tag = "trunks",
    params(
        ("id" = String, Path, description = "The trunk's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no such trunk", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || Ok(state.store.delete_trunk(&caller.account_id, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
