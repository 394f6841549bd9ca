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

use crate::extract::{ApiPath, QueryMap, blocking, media_type, read_body};
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
        name,
        content_type,
        size,
        sha256,
        created_at,
        meta: _,
    } = file;
    let fields = [
        ("id", json!(id)),
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

/// `POST /v1/files[?name=...]` with an audio body → 201 with the file.
pub(crate) async fn upload(
    State(state): State<ApiState>,
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
        let meta = state.backend.check_audio(&bytes).map_err(|problem| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_audio",
                format!("the audio cannot be used: {problem}"),
            )
        })?;
        Ok(state.store.add_file(name, &content_type, &bytes, meta)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(file_json(file))))
}

/// `GET /v1/files` → `{"files": [...]}`.
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let files = blocking(move || Ok(state.store.list_files()?)).await?;
    let files: Vec<Value> = files.into_iter().map(file_json).collect();
    Ok(Json(json!({ "files": files })))
}

/// `GET /v1/files/{id}` → the file, or 404.
pub(crate) async fn show(
    State(state): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        state
            .store
            .file(&file_id)?
            .map(|f| Json(file_json(f)))
            .ok_or_else(|| ApiError::not_found(format!("file {file_id} not found")))
    })
    .await
}

/// `GET /v1/files/{id}/content` → the audio bytes with their content type.
pub(crate) async fn content(
    State(state): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (meta, bytes) = blocking(move || {
        let meta = state
            .store
            .file(&file_id)?
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
