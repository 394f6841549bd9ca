//! `/v1/files`: upload and list audio files for `play`.
//!
//! Invariants: only the audio content types below are accepted; the audio is checked by
//! the server (`Backend::check_audio`) before it is stored. A file's JSON is its stored
//! metadata with the decoder's findings (format, rate, ...) merged in at the top level;
//! stored fields win over same-named findings.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::FileMeta;
use serde_json::{Map, Value, json};

use crate::extract::{ApiPath, Caller, QueryMap, blocking, media_type, read_body};
use crate::{ApiError, ApiState, MAX_FILE_BYTES};

/// Content types `POST /v1/files` accepts.
const AUDIO_TYPES: &[&str] = &[
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/mpeg",
    "audio/mp3",
];

/// The API's JSON for a file: stored fields plus the decoder's findings, flattened.
fn file_json(file: FileMeta) -> Value {
    let mut out = match &file.meta {
        Value::Object(meta) => meta.clone(),
        _ => Map::new(),
    };
    let FileMeta {
        id,
        account_id,
        name,
        content_type,
        size,
        sha256,
        created_at,
        meta: _,
    } = file;
    let fields = [
        ("id", json!(id)),
        ("account_id", json!(account_id)),
        ("name", json!(name)),
        ("content_type", json!(content_type)),
        ("size", json!(size)),
        ("sha256", json!(sha256)),
        ("created_at", json!(created_at)),
    ];
    for (key, value) in fields {
        out.insert(key.to_owned(), value);
    }
    Value::Object(out)
}

/// Upload an audio file
///
/// `POST /v1/files[?name=...]` with an audio body → 201 with the file; 413
/// `quota_exceeded` beyond the account's `max_storage_bytes`.
#[utoipa::path(
    post,
    path = "/v1/files",
    operation_id = "upload_file",
    tag = "files",
    params(
        ("name" = Option<String>, Query, description = "A name for the file"),
    ),
    request_body(description = "WAV or MP3 audio (at most 32 MiB), sent as audio/wav, audio/x-wav, audio/wave, audio/vnd.wave, audio/mpeg or audio/mp3", content((crate::openapi::schemas::Binary = "audio/wav"), (crate::openapi::schemas::Binary = "audio/mpeg"))),
    responses(
        (status = 201, description = "The stored file with the decoder's findings", body = crate::openapi::schemas::File),
        (status = 400, description = "`invalid_request` or `invalid_audio`: an empty body, or audio that cannot be decoded", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`payload_too_large` or `quota_exceeded`: larger than 32 MiB, or past the account's `max_storage_bytes`", body = crate::openapi::schemas::ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not an accepted audio type", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    QueryMap(query): QueryMap,
    req: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let content_type = match media_type(req.headers()) {
        Some(ct) if AUDIO_TYPES.contains(&ct.as_str()) => ct,
        Some(ct) => {
            return Err(ApiError::unsupported_media_type(format!(
                "audio must be uploaded as one of {}, not {ct}",
                AUDIO_TYPES.join(", ")
            )));
        }
        None => {
            return Err(ApiError::unsupported_media_type(format!(
                "audio must be uploaded with a Content-Type of {}",
                AUDIO_TYPES.join(", ")
            )));
        }
    };
    let name = query.get("name").cloned();
    let bytes = read_body(req, &state, MAX_FILE_BYTES).await?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "the request body is empty; expected audio",
        ));
    }
    let file = blocking(move || {
        crate::apps::check_storage_quota(&state, &caller.account_id, bytes.len() as u64)?;
        let meta = state.backend.check_audio(&bytes).map_err(|problem| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_audio",
                format!("the audio cannot be used: {problem}"),
            )
        })?;
        Ok(state
            .store
            .add_file(&caller.account_id, name, &content_type, &bytes, meta)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(file_json(file))))
}

/// List audio files
///
/// `GET /v1/files` → `{"files": [...]}`.
#[utoipa::path(
    get,
    path = "/v1/files",
    operation_id = "list_files",
    tag = "files",
    responses(
        (status = 200, description = "The account's files", body = crate::openapi::schemas::FileList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let files = blocking(move || Ok(state.store.list_files(&caller.account_id)?)).await?;
    let files: Vec<Value> = files.into_iter().map(file_json).collect();
    Ok(Json(json!({ "files": files })))
}

/// Show an audio file
///
/// `GET /v1/files/{id}` → the file, or 404.
#[utoipa::path(
    get,
    path = "/v1/files/{id}",
    operation_id = "get_file",
    tag = "files",
    params(
        ("id" = String, Path, description = "The file's id"),
    ),
    responses(
        (status = 200, description = "The file", body = crate::openapi::schemas::File),
        (status = 404, description = "`not_found`: no such file", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(file_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        state
            .store
            .file(&caller.account_id, &file_id)?
            .map(|f| Json(file_json(f)))
            .ok_or_else(|| ApiError::not_found(format!("file {file_id} not found")))
    })
    .await
}

/// Download an audio file
///
/// `GET /v1/files/{id}/content` → the audio bytes with their content type.
#[utoipa::path(
    get,
    path = "/v1/files/{id}/content",
    operation_id = "download_file",
    tag = "files",
    params(
        ("id" = String, Path, description = "The file's id"),
    ),
    responses(
        (status = 200, description = "The audio with its stored content type", body = crate::openapi::schemas::Binary, content_type = "audio/*"),
        (status = 404, description = "`not_found`: no such file", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn content(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(file_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (meta, bytes) = blocking(move || {
        let meta = state
            .store
            .file(&caller.account_id, &file_id)?
            .ok_or_else(|| ApiError::not_found(format!("file {file_id} not found")))?;
        let bytes = state.store.file_bytes(&file_id)?;
        Ok((meta, bytes))
    })
    .await?;
    let mut response = bytes.into_response();
    if let Ok(ct) = HeaderValue::from_str(&meta.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(response)
}
