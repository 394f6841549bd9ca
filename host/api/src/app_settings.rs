//! `/v1/apps/{id}/settings`, `/config` and `/kv`: an app's capabilities and limits, its
//! configuration values and secrets, and its key-value state (for inspection and seeding).
//!
//! Invariants: every route first checks that the app belongs to the caller's account
//! (404 otherwise), so the store's unscoped runtime methods (`kv_*`, `app_settings`) are
//! only reached for the caller's own apps; secret configuration values are write-only
//! (listed with `"value": null`); a PUT of settings changes only the fields it names and
//! a bad one is 400 naming the field, changing nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::{AppSettings, AppSettingsPatch, ConfigValue, MAX_KV_VALUE_BYTES};
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, QueryMap, blocking, read_body};
use crate::{ApiError, ApiState};

/// Keys listed when `limit` is not given.
const DEFAULT_KV_LIST: usize = 100;
/// Most keys one list answers.
const MAX_KV_LIST: usize = 1000;

const SETTINGS_FIELDS: &[&str] = &[
    "kv_enabled",
    "kv_max_bytes",
    "http_allow",
    "http_timeout_ms",
    "http_max_response_bytes",
    "max_memory_bytes",
    "event_deadline_ms",
];

/// 404 unless `account` owns the app.
fn require_app(state: &ApiState, account: &str, app_id: &str) -> Result<(), ApiError> {
    match state.store.app(account, app_id)? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("app {app_id} not found"))),
    }
}

/// A field that must be a non-null integer fitting in `u32` when present.
fn opt_u32(body: &JsonObject, field: &'static str) -> Result<Option<u32>, ApiError> {
    body.opt_u64(field)?
        .map(|n| {
            u32::try_from(n).map_err(|_| {
                ApiError::invalid_field(field, format!("`{field}` must be at most {}", u32::MAX))
            })
        })
        .transpose()
}

/// `null` is refused for fields that have no "server default".
fn not_null(body: &JsonObject, field: &'static str) -> Result<(), ApiError> {
    if body.0.get(field).is_some_and(Value::is_null) {
        return Err(ApiError::invalid_field(
            field,
            format!("`{field}` cannot be null"),
        ));
    }
    Ok(())
}

fn settings_patch(body: &JsonObject) -> Result<AppSettingsPatch, ApiError> {
    body.only(SETTINGS_FIELDS)?;
    for field in [
        "kv_enabled",
        "kv_max_bytes",
        "http_allow",
        "http_timeout_ms",
        "http_max_response_bytes",
    ] {
        not_null(body, field)?;
    }
    let http_allow = match body.0.get("http_allow") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        ApiError::invalid_field(
                            "http_allow",
                            "`http_allow` must be a list of host names",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "http_allow",
                "`http_allow` must be a list of host names",
            ));
        }
    };
    let nullable_u32 = |field: &'static str| -> Result<Option<Option<u32>>, ApiError> {
        if body.has(field) {
            opt_u32(body, field).map(Some)
        } else {
            Ok(None)
        }
    };
    Ok(AppSettingsPatch {
        kv_enabled: body.opt_bool("kv_enabled")?,
        kv_max_bytes: body.opt_u64("kv_max_bytes")?,
        http_allow,
        http_timeout_ms: opt_u32(body, "http_timeout_ms")?,
        http_max_response_bytes: body.opt_u64("http_max_response_bytes")?,
        max_memory_bytes: body.patch_u64("max_memory_bytes")?,
        event_deadline_ms: nullable_u32("event_deadline_ms")?,
    })
}

/// Show an app's settings
///
/// `GET /v1/apps/{id}/settings` → the app's settings (defaults when never set).
#[utoipa::path(
    get,
    path = "/v1/apps/{id}/settings",
    operation_id = "get_app_settings",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    responses(
        (status = 200, description = "The settings (defaults when never set)", body = crate::openapi::schemas::AppSettings),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
) -> Result<Json<AppSettings>, ApiError> {
    blocking(move || {
        require_app(&state, &caller.account_id, &app_id)?;
        Ok(Json(state.store.app_settings(&app_id)?))
    })
    .await
}

/// Change an app's settings
///
/// `PUT /v1/apps/{id}/settings` with any subset of the settings → all of them as stored.
#[utoipa::path(
    put,
    path = "/v1/apps/{id}/settings",
    operation_id = "update_app_settings",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    request_body = crate::openapi::schemas::AppSettingsUpdate,
    responses(
        (status = 200, description = "Every setting as stored", body = crate::openapi::schemas::AppSettings),
        (status = 400, description = "`invalid_request`: a field is unknown or malformed; `target_not_allowed`: an `http_allow` entry is a loopback, private, link-local or reserved address the server's admin has not allowed; nothing changed", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "`forbidden`: grants and limits are the admin's to set, not an account key's", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
    body: JsonObject,
) -> Result<Json<AppSettings>, ApiError> {
    let patch = settings_patch(&body)?;
    blocking(move || {
        // Another account's app is not found, whoever asks; then, capabilities are granted
        // by the platform, not taken by the tenant: an account key could otherwise allow
        // its app HTTP to internal hosts or outgrow its storage quota with kv state.
        require_app(&state, &caller.account_id, &app_id)?;
        caller.require_admin()?;
        // A literal address must be one the server may send to; names are judged at each
        // request the app makes, when they are resolved. A malformed entry is refused here
        // as the store would refuse it.
        let policy = state.backend.net_policy();
        for entry in patch.http_allow.iter().flatten() {
            policy
                .check_allow_entry(&pbx_store::HttpAllowEntry::parse(entry)?)
                .map_err(|e| crate::net_policy::refused("http_allow", &e))?;
        }
        Ok(Json(state.store.update_app_settings(
            &caller.account_id,
            &app_id,
            patch,
        )?))
    })
    .await
}

/// A configuration value's JSON; a secret's value is `null`.
fn config_json(value: &ConfigValue) -> Value {
    json!({
        "name": value.name,
        "version": value.version,
        "value": if value.secret { Value::Null } else { json!(value.value) },
        "secret": value.secret,
    })
}

/// List an app's configuration
///
/// `GET /v1/apps/{id}/config` → `{"config": [{"name","version","value","secret"}]}`,
/// app-wide values first; secret values are `null`.
#[utoipa::path(
    get,
    path = "/v1/apps/{id}/config",
    operation_id = "list_app_config",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    responses(
        (status = 200, description = "App-wide values first; secret values are null", body = crate::openapi::schemas::ConfigList),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn config(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let values = blocking(move || Ok(state.store.app_config(&caller.account_id, &app_id)?)).await?;
    let values: Vec<Value> = values.iter().map(config_json).collect();
    Ok(Json(json!({ "config": values })))
}

/// Set a configuration value or secret
///
/// `PUT /v1/apps/{id}/config/{name}` `{"value", "secret"?, "version"?}` → the entry
/// (its value hidden when secret).
#[utoipa::path(
    put,
    path = "/v1/apps/{id}/config/{name}",
    operation_id = "set_app_config",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("name" = String, Path, description = "The configuration value's name"),
    ),
    request_body = crate::openapi::schemas::SetConfig,
    responses(
        (status = 200, description = "The entry (its value null when secret)", body = crate::openapi::schemas::ConfigEntry),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app or version", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn set_config(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app_id, name)): ApiPath<(String, String)>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    body.only(&["value", "secret", "version"])?;
    let value = body.string("value")?.to_owned();
    let secret = body.opt_bool("secret")?.unwrap_or(false);
    let version = opt_u32(&body, "version")?;
    let stored = blocking(move || {
        Ok(state.store.set_app_config(
            &caller.account_id,
            &app_id,
            version,
            &name,
            &value,
            secret,
        )?)
    })
    .await?;
    Ok(Json(config_json(&stored)))
}

/// Reads `?version=N` (absent: the app-wide value).
fn version_query(
    query: &std::collections::HashMap<String, String>,
) -> Result<Option<u32>, ApiError> {
    query
        .get("version")
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.trim().parse::<u32>().map_err(|_| {
                ApiError::invalid_field("version", "`version` must be a positive integer")
            })
        })
        .transpose()
}

/// Delete a configuration value
///
/// `DELETE /v1/apps/{id}/config/{name}?version=N` → 204, or 404 when it was not set.
#[utoipa::path(
    delete,
    path = "/v1/apps/{id}/config/{name}",
    operation_id = "delete_app_config",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("name" = String, Path, description = "The configuration value's name"),
        ("version" = Option<u32>, Query, description = "The version the value applies to (absent: the app-wide value)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app, or the value was not set", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete_config(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app_id, name)): ApiPath<(String, String)>,
    QueryMap(query): QueryMap,
) -> Result<StatusCode, ApiError> {
    let version = version_query(&query)?;
    blocking(move || {
        Ok(state
            .store
            .delete_app_config(&caller.account_id, &app_id, &name, version)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List an app's keys
///
/// `GET /v1/apps/{id}/kv?prefix=&limit=` → `{"keys": [{"key","size","updated_at"}],
/// "bytes_used", "kv_max_bytes"}`, in key order.
#[utoipa::path(
    get,
    path = "/v1/apps/{id}/kv",
    operation_id = "list_kv",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("prefix" = Option<String>, Query, description = "Only keys starting with this"),
        ("limit" = Option<u32>, Query, description = "At most this many keys (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "Keys in order with the store's usage", body = crate::openapi::schemas::KvList),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn kv_list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
    QueryMap(query): QueryMap,
) -> Result<Json<Value>, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_KV_LIST,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .map_err(|_| {
                ApiError::invalid_field("limit", "`limit` must be a non-negative integer")
            })?
            .min(MAX_KV_LIST),
    };
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    blocking(move || {
        require_app(&state, &caller.account_id, &app_id)?;
        let keys = state.store.kv_list(&app_id, &prefix, limit)?;
        let used = state.store.kv_usage(&app_id)?;
        let settings = state.store.app_settings(&app_id)?;
        Ok(Json(json!({
            "keys": keys,
            "bytes_used": used,
            "kv_max_bytes": settings.kv_max_bytes,
        })))
    })
    .await
}

/// Read a key's value
///
/// `GET /v1/apps/{id}/kv/{key}` → the value's bytes (`application/octet-stream`), or 404.
#[utoipa::path(
    get,
    path = "/v1/apps/{id}/kv/{key}",
    operation_id = "get_kv",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("key" = String, Path, description = "The key"),
    ),
    responses(
        (status = 200, description = "The value's bytes", body = crate::openapi::schemas::Binary, content_type = "application/octet-stream"),
        (status = 404, description = "`not_found`: no such app, or the key is not set", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn kv_get(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app_id, key)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let value = blocking(move || {
        require_app(&state, &caller.account_id, &app_id)?;
        state
            .store
            .kv_get(&app_id, &key)?
            .ok_or_else(|| ApiError::not_found(format!("key {key:?} is not set")))
    })
    .await?;
    let mut response = Bytes::from(value).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// Set a key's value
///
/// `PUT /v1/apps/{id}/kv/{key}` with the value as the body (any content type, at most
/// 64 KiB) → 204; 413 `quota_exceeded` when the app's `kv_max_bytes` would be passed.
#[utoipa::path(
    put,
    path = "/v1/apps/{id}/kv/{key}",
    operation_id = "put_kv",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("key" = String, Path, description = "The key"),
    ),
    request_body(content = crate::openapi::schemas::Binary, content_type = "application/octet-stream", description = "The value (any content type, at most 64 KiB)"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`payload_too_large` or `quota_exceeded`: over 64 KiB, or past the app's `kv_max_bytes`", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn kv_put(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app_id, key)): ApiPath<(String, String)>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    {
        let state = state.clone();
        let account = caller.account_id.clone();
        let app_id = app_id.clone();
        blocking(move || require_app(&state, &account, &app_id)).await?;
    }
    let value = read_body(req, &state, MAX_KV_VALUE_BYTES).await?;
    blocking(move || {
        require_app(&state, &caller.account_id, &app_id)?;
        let limit = state.store.app_settings(&app_id)?.kv_max_bytes;
        Ok(state.store.kv_set(&app_id, &key, &value, limit)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a key
///
/// `DELETE /v1/apps/{id}/kv/{key}` → 204, or 404 when it was not set.
#[utoipa::path(
    delete,
    path = "/v1/apps/{id}/kv/{key}",
    operation_id = "delete_kv",
    tag = "app settings",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("key" = String, Path, description = "The key"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no such app, or the key is not set", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn kv_delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app_id, key)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        require_app(&state, &caller.account_id, &app_id)?;
        if state.store.kv_delete(&app_id, &key)? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::not_found(format!("key {key:?} is not set")))
        }
    })
    .await
}
