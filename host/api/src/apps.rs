//! `/v1/apps`: create and list apps, upload versions, deploy.
//!
//! Invariant: an upload is checked in this order (app exists, content type, size, not
//! empty, `Backend::check_component`) and only then stored; the server's cache warm-up
//! (`version_stored`) never delays the answer.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::{App, Version};
use serde::Serialize;
use serde_json::{Value, json};

use crate::extract::{ApiPath, JsonObject, blocking, media_type, read_body};
use crate::{ApiError, ApiState, MAX_COMPONENT_BYTES, RejectionCode};

/// An app with its versions, as `GET /v1/apps/{id}` and deploy answer it.
#[derive(Debug, Serialize)]
pub(crate) struct AppDetail {
    #[serde(flatten)]
    app: App,
    versions: Vec<Version>,
}

/// Loads an app and its versions, or 404.
fn detail(state: &ApiState, app_id: &str) -> Result<AppDetail, ApiError> {
    let app = state
        .store
        .app(app_id)?
        .ok_or_else(|| ApiError::not_found(format!("app {app_id} not found")))?;
    let versions = state.store.versions(app_id)?;
    Ok(AppDetail { app, versions })
}

/// Tells the server about a stored or deployed version without waiting for it.
fn notify_version(state: &ApiState, app_id: String, version: u32) {
    let backend = state.backend.clone();
    drop(tokio::task::spawn_blocking(move || {
        backend.version_stored(&app_id, version);
    }));
}

/// `POST /v1/apps` `{"name"}` → 201 with the new app.
pub(crate) async fn create(
    State(state): State<ApiState>,
    body: JsonObject,
) -> Result<(StatusCode, Json<App>), ApiError> {
    let name = body.string("name")?.to_owned();
    let app = blocking(move || Ok(state.store.create_app(&name)?)).await?;
    Ok((StatusCode::CREATED, Json(app)))
}

/// `GET /v1/apps` → `{"apps": [...]}`.
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let apps = blocking(move || Ok(state.store.list_apps()?)).await?;
    Ok(Json(json!({ "apps": apps })))
}

/// `GET /v1/apps/{id}` → the app and its versions.
pub(crate) async fn show(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
) -> Result<Json<AppDetail>, ApiError> {
    Ok(Json(blocking(move || detail(&state, &app_id)).await?))
}

/// `GET /v1/apps/{id}/versions` → `{"versions": [...]}`.
pub(crate) async fn list_versions(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = blocking(move || Ok(state.store.versions(&app_id)?)).await?;
    Ok(Json(json!({ "versions": versions })))
}

/// `GET /v1/apps/{id}/versions/{version}` → the component bytes.
pub(crate) async fn download_version(
    State(state): State<ApiState>,
    ApiPath((app_id, version)): ApiPath<(String, u32)>,
) -> Result<Response, ApiError> {
    let bytes = blocking(move || Ok(state.store.version_bytes(&app_id, version)?)).await?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/wasm"),
    );
    Ok(response)
}

/// `POST /v1/apps/{id}/versions` with an `application/wasm` body → 201 `{"version", "sha256", ...}`.
pub(crate) async fn upload_version(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    req: Request,
) -> Result<(StatusCode, Json<Version>), ApiError> {
    let app = {
        let state = state.clone();
        let app_id = app_id.clone();
        blocking(move || Ok(state.store.app(&app_id)?)).await?
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
        blocking(move || Ok(state.store.add_version(&app_id, &bytes)?)).await?
    };
    notify_version(&state, version.app_id.clone(), version.version);
    Ok((StatusCode::CREATED, Json(version)))
}

/// `POST /v1/apps/{id}/deploy` `{"version"}` → 200 with the app.
pub(crate) async fn deploy(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    body: JsonObject,
) -> Result<Json<AppDetail>, ApiError> {
    let version = body.u32("version")?;
    let detail = {
        let state = state.clone();
        blocking(move || {
            state.store.deploy(&app_id, version)?;
            detail(&state, &app_id)
        })
        .await?
    };
    notify_version(&state, detail.app.id.clone(), version);
    Ok(Json(detail))
}
