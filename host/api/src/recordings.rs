//! `/v1/recordings`: list, show, download and delete recordings.
//!
//! Invariants: WAV files are streamed from disk in chunks, never read whole into memory;
//! only `ready` recordings have files (a recording still `recording` answers 409, a
//! failed one 404); a recording is deleted only once it is not recording (409).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::{Recording, RecordingFilter, RecordingStatus};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::extract::{ApiPath, Caller, QueryMap, blocking};
use crate::{ApiError, ApiState};

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// Largest page.
const MAX_LIMIT: usize = 1000;
/// Bytes read from disk per chunk of a download.
const CHUNK: usize = 64 * 1024;

/// A recording's JSON: its stored fields, each file with its download `url`, and
/// `file_url` for the first file (null until ready).
fn recording_json(recording: &Recording) -> Value {
    let mut value = serde_json::to_value(recording).unwrap_or_else(|_| json!({}));
    let base = format!("/v1/recordings/{}", recording.id);
    if let Some(files) = value.get_mut("files").and_then(Value::as_array_mut) {
        for file in files {
            let index = file.get("index").and_then(Value::as_u64).unwrap_or(0);
            file["url"] = json!(format!("{base}/files/{index}"));
        }
    }
    value["file_url"] = if recording.files.is_empty() {
        Value::Null
    } else {
        json!(format!("{base}/file"))
    };
    value
}

/// List recordings
///
/// `GET /v1/recordings?call_id=&conference_id=&limit=` → `{"recordings": [...]}`,
/// newest first.
#[utoipa::path(
    get,
    path = "/v1/recordings",
    operation_id = "list_recordings",
    tag = "recordings",
    params(
        ("call_id" = Option<String>, Query, description = "Only this call's recordings"),
        ("conference_id" = Option<String>, Query, description = "Only this conference's recordings"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "Newest first", body = crate::openapi::schemas::RecordingList),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    QueryMap(query): QueryMap,
) -> Result<Json<Value>, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .map_err(|_| {
                ApiError::invalid_field("limit", "`limit` must be a non-negative integer")
            })?
            .min(MAX_LIMIT),
    };
    let nonempty = |key: &str| query.get(key).filter(|v| !v.is_empty()).cloned();
    let filter = RecordingFilter {
        call_id: nonempty("call_id"),
        conference_id: nonempty("conference_id"),
        limit: Some(limit),
    };
    let recordings =
        blocking(move || Ok(state.store.list_recordings(&caller.account_id, &filter)?)).await?;
    let recordings: Vec<Value> = recordings.iter().map(recording_json).collect();
    Ok(Json(json!({ "recordings": recordings })))
}

/// Show a recording
///
/// `GET /v1/recordings/{id}` → the recording with its files, or 404.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}",
    operation_id = "get_recording",
    tag = "recordings",
    params(
        ("id" = String, Path, description = "The recording's id"),
    ),
    responses(
        (status = 200, description = "The recording with its files", body = crate::openapi::schemas::Recording),
        (status = 404, description = "`not_found`: no such recording", body = crate::openapi::schemas::ErrorBody),
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
            .recording(&caller.account_id, &id)?
            .map(|r| Json(recording_json(&r)))
            .ok_or_else(|| ApiError::not_found(format!("recording {id} not found")))
    })
    .await
}

/// Download a recording's first (mixed) file
///
/// `GET /v1/recordings/{id}/file` → the first (mixed) WAV file.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}/file",
    operation_id = "download_recording",
    tag = "recordings",
    params(
        ("id" = String, Path, description = "The recording's id"),
    ),
    responses(
        (status = 200, description = "The WAV file, streamed", body = crate::openapi::schemas::Binary, content_type = "audio/wav"),
        (status = 404, description = "`not_found`: no such recording, or it failed", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: it is still recording", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn first_file(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    download(state, caller.account_id, id, 0).await
}

/// Download one file of a recording
///
/// `GET /v1/recordings/{id}/files/{index}` → one WAV file.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}/files/{index}",
    operation_id = "download_recording_file",
    tag = "recordings",
    params(
        ("id" = String, Path, description = "The recording's id"),
        ("index" = u32, Path, description = "The file's index"),
    ),
    responses(
        (status = 200, description = "The WAV file, streamed", body = crate::openapi::schemas::Binary, content_type = "audio/wav"),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such recording or file, or it failed", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: it is still recording", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn file(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((id, index)): ApiPath<(String, u32)>,
) -> Result<Response, ApiError> {
    download(state, caller.account_id, id, index).await
}

/// Streams file `index` of `account`'s recording `id` as `audio/wav`.
async fn download(
    state: ApiState,
    account: String,
    id: String,
    index: u32,
) -> Result<Response, ApiError> {
    let (size, path) = blocking(move || {
        let recording = state
            .store
            .recording(&account, &id)?
            .ok_or_else(|| ApiError::not_found(format!("recording {id} not found")))?;
        match recording.status {
            RecordingStatus::Recording => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("recording {id} is still recording"),
                ));
            }
            RecordingStatus::Failed => {
                return Err(ApiError::not_found(format!(
                    "recording {id} failed and has no files"
                )));
            }
            RecordingStatus::Ready => {}
        }
        let (file, path) = state
            .store
            .recording_file(&account, &id, index)?
            .ok_or_else(|| ApiError::not_found(format!("recording {id} has no file {index}")))?;
        Ok((file.size, path))
    })
    .await?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::error!(path = %path.display(), error = %e, "cannot open a recording file");
        ApiError::internal()
    })?;
    let stream = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Some(name) = path.file_name().and_then(|n| n.to_str())
        && let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Delete a recording
///
/// `DELETE /v1/recordings/{id}` → 204; 409 while recording, 404 when there is none.
#[utoipa::path(
    delete,
    path = "/v1/recordings/{id}",
    operation_id = "delete_recording",
    tag = "recordings",
    params(
        ("id" = String, Path, description = "The recording's id"),
    ),
    responses(
        (status = 204, description = "Deleted with its files"),
        (status = 404, description = "`not_found`: no such recording", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: it is still recording", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || Ok(state.store.delete_recording(&caller.account_id, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
