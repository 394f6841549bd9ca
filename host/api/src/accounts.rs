//! `/v1/accounts` (admin only): accounts, their quotas and their API keys; and
//! `/v1/account`: the caller's own account with quotas and usage.
//!
//! Invariants: every `/v1/accounts` route answers 403 to an API key before it reads
//! anything; a new key is in the create answer (`key`) and nowhere else, and no answer
//! ever holds a key's hash; quotas are non-negative integers or `null` (unlimited).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::{Account, ApiKeyMeta, Quotas, QuotasPatch};
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, blocking};
use crate::{ApiError, ApiState};

const QUOTA_FIELDS: &[&str] = &["max_concurrent_calls", "max_apps", "max_storage_bytes"];

/// A `u32` quota field of a body: absent is `None`, `null` is `Some(None)`.
fn patch_u32(body: &JsonObject, field: &'static str) -> Result<Option<Option<u32>>, ApiError> {
    body.patch_u64(field)?
        .map(|v| {
            v.map(|n| {
                u32::try_from(n).map_err(|_| {
                    ApiError::invalid_field(
                        field,
                        format!("`{field}` must be at most {}", u32::MAX),
                    )
                })
            })
            .transpose()
        })
        .transpose()
}

fn quotas_patch(body: &JsonObject) -> Result<QuotasPatch, ApiError> {
    let max_storage_bytes = body.patch_u64("max_storage_bytes")?;
    if let Some(Some(n)) = max_storage_bytes
        && i64::try_from(n).is_err()
    {
        return Err(ApiError::invalid_field(
            "max_storage_bytes",
            "`max_storage_bytes` is too large",
        ));
    }
    Ok(QuotasPatch {
        max_concurrent_calls: patch_u32(body, "max_concurrent_calls")?,
        max_apps: patch_u32(body, "max_apps")?,
        max_storage_bytes,
    })
}

/// An account's JSON with its usage (apps, stored bytes, live calls).
fn with_usage(state: &ApiState, account: &Account) -> Result<Value, ApiError> {
    let usage = state.store.account_usage(&account.id)?;
    let live_calls = state
        .backend
        .live_calls()
        .iter()
        .filter(|c| c.account_id == account.id)
        .count();
    let mut value = serde_json::to_value(account).map_err(|e| {
        tracing::error!(error = %e, "cannot serialize an account");
        ApiError::internal()
    })?;
    value["usage"] = json!({
        "apps": usage.apps,
        "storage_bytes": usage.storage_bytes,
        "live_calls": live_calls,
    });
    Ok(value)
}

fn account_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("account {id} not found"))
}

/// The caller's account
///
/// `GET /v1/account` → the caller's account with `quotas` and `usage`.
#[utoipa::path(
    get,
    path = "/v1/account",
    operation_id = "get_own_account",
    tag = "accounts",
    responses(
        (status = 200, description = "The account with its quotas and usage", body = crate::openapi::schemas::AccountWithUsage),
        (status = 404, description = "`not_found`: the account no longer exists", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn own(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let account = state
            .store
            .account(&caller.account_id)?
            .ok_or_else(|| account_not_found(&caller.account_id))?;
        Ok(Json(with_usage(&state, &account)?))
    })
    .await
}

/// Create an account
///
/// `POST /v1/accounts` `{"name", "max_concurrent_calls"?, "max_apps"?,
/// "max_storage_bytes"?}` → 201 with the account.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    operation_id = "create_account",
    tag = "accounts",
    request_body = crate::openapi::schemas::CreateAccount,
    responses(
        (status = 201, description = "The new account", body = crate::openapi::schemas::Account),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: an account of this name exists", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: JsonObject,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    caller.require_admin()?;
    let mut known = vec!["name"];
    known.extend_from_slice(QUOTA_FIELDS);
    body.only(&known)?;
    let name = body.string("name")?.to_owned();
    let patch = quotas_patch(&body)?;
    let quotas = Quotas {
        max_concurrent_calls: patch.max_concurrent_calls.flatten(),
        max_apps: patch.max_apps.flatten(),
        max_storage_bytes: patch.max_storage_bytes.flatten(),
    };
    let account = blocking(move || Ok(state.store.create_account(&name, quotas)?)).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// List accounts
///
/// `GET /v1/accounts` → `{"accounts": [...]}`, oldest first.
#[utoipa::path(
    get,
    path = "/v1/accounts",
    operation_id = "list_accounts",
    tag = "accounts",
    responses(
        (status = 200, description = "Every account, oldest first", body = crate::openapi::schemas::AccountList),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let accounts = blocking(move || Ok(state.store.accounts()?)).await?;
    Ok(Json(json!({ "accounts": accounts })))
}

/// Show an account
///
/// `GET /v1/accounts/{id}` → the account with `quotas` and `usage`.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    operation_id = "get_account",
    tag = "accounts",
    params(
        ("id" = String, Path, description = "The account's id"),
    ),
    responses(
        (status = 200, description = "The account with its quotas and usage", body = crate::openapi::schemas::AccountWithUsage),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    blocking(move || {
        let account = state
            .store
            .account(&id)?
            .ok_or_else(|| account_not_found(&id))?;
        Ok(Json(with_usage(&state, &account)?))
    })
    .await
}

/// Change an account's quotas
///
/// `PATCH /v1/accounts/{id}` with any of the quota fields (`null` lifts one) → the account.
#[utoipa::path(
    patch,
    path = "/v1/accounts/{id}",
    operation_id = "update_account",
    tag = "accounts",
    params(
        ("id" = String, Path, description = "The account's id"),
    ),
    request_body = crate::openapi::schemas::UpdateAccount,
    responses(
        (status = 200, description = "The account as stored", body = crate::openapi::schemas::Account),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: JsonObject,
) -> Result<Json<Account>, ApiError> {
    caller.require_admin()?;
    body.only(QUOTA_FIELDS)?;
    let patch = quotas_patch(&body)?;
    let account = blocking(move || Ok(state.store.update_account_quotas(&id, patch)?)).await?;
    Ok(Json(account))
}

/// Delete an account
///
/// `DELETE /v1/accounts/{id}` → 204; 409 for the default account or one that still owns
/// resources.
#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}",
    operation_id = "delete_account",
    tag = "accounts",
    params(
        ("id" = String, Path, description = "The account's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: the default account, or one that still owns resources", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    blocking(move || Ok(state.store.delete_account(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an API key
///
/// `POST /v1/accounts/{id}/keys` `{"name"}` → 201 with the key's metadata and `key`, the
/// only time the key is shown.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/keys",
    operation_id = "create_api_key",
    tag = "accounts",
    params(
        ("id" = String, Path, description = "The account's id"),
    ),
    request_body = crate::openapi::schemas::CreateApiKey,
    responses(
        (status = 201, description = "The key's metadata and `key`, shown only this once", body = crate::openapi::schemas::NewApiKey),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn create_key(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    body.only(&["name"])?;
    let name = body.string("name")?.to_owned();
    let (meta, key) = blocking(move || Ok(state.store.create_api_key(&id, &name)?)).await?;
    let mut value = serde_json::to_value(&meta).map_err(|e| {
        tracing::error!(error = %e, "cannot serialize an API key");
        ApiError::internal()
    })?;
    value["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(value)))
}

/// List an account's API keys
///
/// `GET /v1/accounts/{id}/keys` → `{"keys": [...]}` (metadata only, revoked ones too).
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/keys",
    operation_id = "list_api_keys",
    tag = "accounts",
    params(
        ("id" = String, Path, description = "The account's id"),
    ),
    responses(
        (status = 200, description = "Metadata of every key, revoked ones too", body = crate::openapi::schemas::ApiKeyList),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list_keys(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let keys: Vec<ApiKeyMeta> = blocking(move || Ok(state.store.api_keys(&id)?)).await?;
    Ok(Json(json!({ "keys": keys })))
}

/// Revoke an API key
///
/// `DELETE /v1/accounts/{id}/keys/{key_id}` → 204; the key stops working at once.
#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}/keys/{key_id}",
    operation_id = "revoke_api_key",
    tag = "accounts",
    params(
        ("id" = String, Path, description = "The account's id"),
        ("key_id" = String, Path, description = "The key's id"),
    ),
    responses(
        (status = 204, description = "Revoked; the key stops working at once"),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such account or key", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    blocking(move || Ok(state.store.revoke_api_key(&id, &key_id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
