//! `/v1/apps`: create, list and delete apps, upload, download and delete versions, deploy (and
//! roll back: any stored version can be deployed).
//!
//! Invariants: an upload is checked in this order (app exists in the caller's account,
//! content type, size, not empty, `Backend::check_component`, storage quota) and only
//! then stored; the server's cache warm-up (`version_stored`) never delays the answer; a
//! version is deleted only when it is neither active nor run by a live call, an app only
//! when no live call runs any of its versions.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::{App, Version};
use serde::Serialize;
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, blocking, media_type, read_body};
use crate::{ApiError, ApiState, MAX_COMPONENT_BYTES, RejectionCode};

/// An app with its versions, as `GET /v1/apps/{id}` and deploy answer it.
#[derive(Debug, Serialize)]
pub(crate) struct AppDetail {
    #[serde(flatten)]
    app: App,
    versions: Vec<Version>,
}

/// Loads one of `account`'s apps and its versions, or 404.
fn detail(state: &ApiState, account: &str, app_id: &str) -> Result<AppDetail, ApiError> {
    let app = state
        .store
        .app(account, app_id)?
        .ok_or_else(|| ApiError::not_found(format!("app {app_id} not found")))?;
    let versions = state.store.versions(account, app_id)?;
    Ok(AppDetail { app, versions })
}

/// 413 `quota_exceeded` when storing `size` more bytes would take `account` past its
/// `max_storage_bytes`. Files and versions call it before the expensive checks.
pub(crate) fn check_storage_quota(
    state: &ApiState,
    account: &str,
    size: u64,
) -> Result<(), ApiError> {
    Ok(state.store.check_storage_quota(account, size)?)
}

/// Tells the server about a stored or deployed version without waiting for it.
fn notify_version(state: &ApiState, app_id: String, version: u32) {
    let backend = state.backend.clone();
    drop(tokio::task::spawn_blocking(move || {
        backend.version_stored(&app_id, version);
    }));
}

/// Create an app
///
/// `POST /v1/apps` `{"name"}` → 201 with the new app; 429 `quota_exceeded` beyond the
/// account's `max_apps`.
#[utoipa::path(
    post,
    path = "/v1/apps",
    operation_id = "create_app",
    tag = "apps",
    request_body = crate::openapi::schemas::CreateApp,
    responses(
        (status = 201, description = "The new app", body = crate::openapi::schemas::App),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: an app of this name exists", body = crate::openapi::schemas::ErrorBody),
        (status = 429, description = "`quota_exceeded`: the account has `max_apps` apps", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: JsonObject,
) -> Result<(StatusCode, Json<App>), ApiError> {
    body.only(&["name"])?;
    let name = body.string("name")?.to_owned();
    let app = blocking(move || Ok(state.store.create_app(&caller.account_id, &name)?)).await?;
    Ok((StatusCode::CREATED, Json(app)))
}

/// List apps
///
/// `GET /v1/apps` → `{"apps": [...]}` (the caller's account's).
#[utoipa::path(
    get,
    path = "/v1/apps",
    operation_id = "list_apps",
    tag = "apps",
    responses(
        (status = 200, description = "The account's apps", body = crate::openapi::schemas::AppList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let apps = blocking(move || Ok(state.store.list_apps(&caller.account_id)?)).await?;
    Ok(Json(json!({ "apps": apps })))
}

/// Show an app and its versions
///
/// `GET /v1/apps/{id}` → the app and its versions.
#[utoipa::path(
    get,
    path = "/v1/apps/{id}",
    operation_id = "get_app",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    responses(
        (status = 200, description = "The app and its versions", body = crate::openapi::schemas::AppDetail),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
) -> Result<Json<AppDetail>, ApiError> {
    Ok(Json(
        blocking(move || detail(&state, &caller.account_id, &app_id)).await?,
    ))
}

/// List an app's versions
///
/// `GET /v1/apps/{id}/versions` → `{"versions": [...]}`.
#[utoipa::path(
    get,
    path = "/v1/apps/{id}/versions",
    operation_id = "list_versions",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    responses(
        (status = 200, description = "Oldest first", body = crate::openapi::schemas::VersionList),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list_versions(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = blocking(move || Ok(state.store.versions(&caller.account_id, &app_id)?)).await?;
    Ok(Json(json!({ "versions": versions })))
}

/// Download a version
///
/// `GET /v1/apps/{id}/versions/{version}` → the component bytes.
#[utoipa::path(
    get,
    path = "/v1/apps/{id}/versions/{version}",
    operation_id = "download_version",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("version" = u32, Path, description = "The version number"),
    ),
    responses(
        (status = 200, description = "The component bytes", body = crate::openapi::schemas::Binary, content_type = "application/wasm"),
        (status = 404, description = "`not_found`: no such app or version", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn download_version(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app_id, version)): ApiPath<(String, u32)>,
) -> Result<Response, ApiError> {
    let bytes = blocking(move || {
        if state
            .store
            .version(&caller.account_id, &app_id, version)?
            .is_none()
        {
            return Err(ApiError::not_found(format!(
                "version {version} of app {app_id} not found"
            )));
        }
        Ok(state.store.version_bytes(&app_id, version)?)
    })
    .await?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/wasm"),
    );
    Ok(response)
}

/// Delete a version
///
/// `DELETE /v1/apps/{id}/versions/{version}` → 204; 409 when it is the active version
/// or a live call runs it.
#[utoipa::path(
    delete,
    path = "/v1/apps/{id}/versions/{version}",
    operation_id = "delete_version",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The app's id"),
        ("version" = u32, Path, description = "The version number"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no such app or version", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: the active version, or one a live call runs", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete_version(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app_id, version)): ApiPath<(String, u32)>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        if state
            .store
            .version(&caller.account_id, &app_id, version)?
            .is_none()
        {
            return Err(ApiError::not_found(format!(
                "version {version} of app {app_id} not found"
            )));
        }
        if state.backend.version_in_use(&app_id, version) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("version {version} of app {app_id} is running in a live call"),
            ));
        }
        Ok(state
            .store
            .delete_version(&caller.account_id, &app_id, version)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upload a version
///
/// `POST /v1/apps/{id}/versions` with an `application/wasm` body → 201 `{"version", "sha256", ...}`;
/// 413 `quota_exceeded` beyond the account's `max_storage_bytes`.
#[utoipa::path(
    post,
    path = "/v1/apps/{id}/versions",
    operation_id = "upload_version",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    request_body(content = crate::openapi::schemas::Binary, content_type = "application/wasm", description = "The component (at most 32 MiB)"),
    responses(
        (status = 201, description = "The stored version (not deployed yet)", body = crate::openapi::schemas::Version),
        (status = 400, description = "`invalid_request` or `not_a_component`: an empty body, or bytes that are not a component", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`payload_too_large` or `quota_exceeded`: larger than 32 MiB, or past the account's `max_storage_bytes`", body = crate::openapi::schemas::ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/wasm`", body = crate::openapi::schemas::ErrorBody),
        (status = 422, description = "`compile_failed`, `missing_export`, `wrong_world` or `import_not_granted`: the component does not fit the host", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn upload_version(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
    req: Request,
) -> Result<(StatusCode, Json<Version>), ApiError> {
    let app = {
        let state = state.clone();
        let app_id = app_id.clone();
        let account = caller.account_id.clone();
        blocking(move || Ok(state.store.app(&account, &app_id)?)).await?
    };
    if app.is_none() {
        return Err(ApiError::not_found(format!("app {app_id} not found")));
    }
    match media_type(req.headers()) {
        Some(ct) if ct == "application/wasm" => {}
        Some(ct) => {
            return Err(ApiError::unsupported_media_type(format!(
                "a component must be uploaded as application/wasm, not {ct}"
            )));
        }
        None => {
            return Err(ApiError::unsupported_media_type(
                "a component must be uploaded with Content-Type: application/wasm",
            ));
        }
    }
    let bytes = read_body(req, &state, MAX_COMPONENT_BYTES).await?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "the request body is empty; expected a wasm component",
        ));
    }
    // The quota is checked before the (slow) compile too; the store checks it again
    // when it stores the bytes.
    {
        let state = state.clone();
        let account = caller.account_id.clone();
        let size = bytes.len() as u64;
        blocking(move || check_storage_quota(&state, &account, size)).await?;
    }

    let backend = state.backend.clone();
    let checked = bytes.clone();
    blocking(move || {
        backend.check_component(&checked).map_err(|rejection| {
            let status = match rejection.code {
                RejectionCode::NotAComponent => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(status, rejection.code.as_str(), rejection.message)
        })
    })
    .await?;

    let version = {
        let state = state.clone();
        blocking(move || {
            Ok(state
                .store
                .add_version(&caller.account_id, &app_id, &bytes)?)
        })
        .await?
    };
    notify_version(&state, version.app_id.clone(), version.version);
    Ok((StatusCode::CREATED, Json(version)))
}

/// Deploy (or roll back to) a version
///
/// `POST /v1/apps/{id}/deploy` `{"version"}` → 200 with the app; any stored version,
/// older ones included (a rollback).
#[utoipa::path(
    post,
    path = "/v1/apps/{id}/deploy",
    operation_id = "deploy_app",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    request_body = crate::openapi::schemas::Deploy,
    responses(
        (status = 200, description = "The app with its new active version", body = crate::openapi::schemas::AppDetail),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such app or version", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn deploy(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
    body: JsonObject,
) -> Result<Json<AppDetail>, ApiError> {
    body.only(&["version"])?;
    let version = body.u32("version")?;
    let detail = {
        let state = state.clone();
        blocking(move || {
            state.store.deploy(&caller.account_id, &app_id, version)?;
            detail(&state, &caller.account_id, &app_id)
        })
        .await?
    };
    notify_version(&state, detail.app.id.clone(), version);
    state
        .backend
        .app_deployed(&detail.app.account_id, &detail.app.id, version);
    Ok(Json(detail))
}

/// Delete an app
///
/// `DELETE /v1/apps/{id}` → 204; the app goes with its versions, its settings,
/// configuration and kv state, and the numbers bound to it become unbound. 409 while a
/// live call runs any of its versions.
#[utoipa::path(
    delete,
    path = "/v1/apps/{id}",
    operation_id = "delete_app",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The app's id"),
    ),
    responses(
        (status = 204, description = "Deleted, with its versions, numbers, settings, configuration and kv state"),
        (status = 404, description = "`not_found`: no such app", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: a live call runs one of its versions", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let (store, account) = (&state.store, caller.account_id.as_str());
        let in_use = || {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("app {app_id} is running in a live call; delete it when the call ends"),
            )
        };
        if store.app(account, &app_id)?.is_none() {
            return Err(ApiError::not_found(format!("app {app_id} not found")));
        }
        // A busy app is refused without touching its routing.
        if state.backend.app_in_use(&app_id) {
            return Err(in_use());
        }
        // Then no new call may start it: every way in (a number's route, a hand-over,
        // `POST /v1/calls`) needs its active version, so that goes first; a call that
        // started between the check above and the undeploy is live now, so look again,
        // and if one did, put the version back (unless another was deployed meanwhile)
        // and refuse. Left open: a call that read its route just before the undeploy but
        // is not yet in the live list (the session lists its app right after routing,
        // with no await between); it runs from the compiled cache or fails to start.
        let previous = store.undeploy(account, &app_id)?;
        if state.backend.app_in_use(&app_id) {
            if let Some(version) = previous {
                store.redeploy_if_undeployed(account, &app_id, version)?;
            }
            return Err(in_use());
        }
        Ok(store.delete_app(account, &app_id)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
