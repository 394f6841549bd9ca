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

use crate::extract::{ApiPath, QueryMap, blocking};
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

/// `GET /v1/recordings?call_id=&conference_id=&limit=` → `{"recordings": [...]}`,
/// newest first.
pub(crate) async fn list(
    State(state): State<ApiState>,
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
    let recordings = blocking(move || Ok(state.store.list_recordings(&filter)?)).await?;
    let recordings: Vec<Value> = recordings.iter().map(recording_json).collect();
    Ok(Json(json!({ "recordings": recordings })))
}

/// `GET /v1/recordings/{id}` → the recording with its files, or 404.
pub(crate) async fn show(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        state
            .store
            .recording(&id)?
            .map(|r| Json(recording_json(&r)))
            .ok_or_else(|| ApiError::not_found(format!("recording {id} not found")))
    })
    .await
}

/// `GET /v1/recordings/{id}/file` → the first (mixed) WAV file.
pub(crate) async fn first_file(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    download(state, id, 0).await
}

/// `GET /v1/recordings/{id}/files/{index}` → one WAV file.
pub(crate) async fn file(
    State(state): State<ApiState>,
    ApiPath((id, index)): ApiPath<(String, u32)>,
) -> Result<Response, ApiError> {
    download(state, id, index).await
}

/// Streams file `index` of recording `id` as `audio/wav`.
async fn download(state: ApiState, id: String, index: u32) -> Result<Response, ApiError> {
    let (size, path) = blocking(move || {
        let recording = state
            .store
            .recording(&id)?
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
            .recording_file(&id, index)?
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

/// `DELETE /v1/recordings/{id}` → 204; 409 while recording, 404 when there is none.
pub(crate) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || Ok(state.store.delete_recording(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
