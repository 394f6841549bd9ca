//! `/v1/webhooks`: an account's webhooks, their secrets and their delivery logs.
//!
//! Invariants: the secret appears in exactly two answers, the create answer and the
//! rotate-secret answer, never in a list or a show; everything is scoped by the caller's
//! account (another account's webhook is 404); overlapping event types are 409 `conflict`
//! naming the type and the webhook (the store checks it in the write's transaction);
//! after every change the server is told through [`crate::Backend::webhooks_changed`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::{
    DeliveryFilter, DeliveryStatus, MAX_DELIVERIES_PAGE, NewWebhook, Webhook, WebhookPatch,
};
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, QueryMap, blocking};
use crate::{ApiError, ApiState};

/// Every field a webhook body may have.
const FIELDS: &[&str] = &["url", "event_types", "enabled"];

/// A webhook's JSON without its secret.
fn webhook_json(hook: &Webhook) -> Value {
    serde_json::to_value(hook).unwrap_or_else(|_| json!({}))
}

/// A webhook's JSON with its secret: only for create and rotate-secret.
fn webhook_json_with_secret(hook: &Webhook) -> Value {
    let mut value = webhook_json(hook);
    value["secret"] = json!(hook.secret);
    value
}

/// The `event_types` field: a list of strings.
fn event_types(body: &JsonObject) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "event_types",
            "`event_types` must be a list of event types such as \"CALL_RECEIVED\", or [\"*\"]",
        )
    };
    match body.0.get("event_types") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
        None => Err(ApiError::invalid_field(
            "event_types",
            "`event_types` is required",
        )),
    }
}

/// Refuses a URL the server may not post to: malformed (400 `invalid_request`), or a
/// loopback, private, link-local or reserved address, written literally or the only
/// addresses its name resolves to (400 `target_not_allowed`). A name that does not resolve
/// now is accepted; each delivery is checked again when it connects.
async fn check_target(state: &ApiState, url: &str) -> Result<(), ApiError> {
    pbx_store::validate_webhook_url(url)?;
    state
        .backend
        .net_policy()
        .check_target(url)
        .await
        .map_err(|e| crate::net_policy::refused("url", &e))
}

/// Tells the server the webhook list changed (off the async threads: it may lock).
async fn changed(state: &ApiState) {
    let backend = state.backend.clone();
    let _ = blocking(move || {
        backend.webhooks_changed();
        Ok(())
    })
    .await;
}

/// Create a webhook
///
/// `POST /v1/webhooks` `{"url","event_types":[...],"enabled"?}` → 201 with the webhook
/// and its `secret` (shown this once).
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    request_body = crate::openapi::schemas::CreateWebhook,
    responses(
        (status = 201, description = "The webhook with its `secret`, shown only here and on rotation", body = crate::openapi::schemas::WebhookWithSecret),
        (status = 400, description = "`invalid_request`: a field is missing or malformed; `target_not_allowed`: `url` is (or its name resolves only to) a loopback, private, link-local or reserved address the server's admin has not allowed", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: an event type is already another webhook's", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    body.only(FIELDS)?;
    let url = body.string("url")?.to_owned();
    check_target(&state, &url).await?;
    let new = NewWebhook {
        account_id: caller.account_id,
        url,
        event_types: event_types(&body)?,
        enabled: body.opt_bool("enabled")?.unwrap_or(true),
    };
    let store = state.store.clone();
    let hook = blocking(move || Ok(store.create_webhook(new)?)).await?;
    changed(&state).await;
    Ok((StatusCode::CREATED, Json(webhook_json_with_secret(&hook))))
}

/// List webhooks
///
/// `GET /v1/webhooks` → `{"webhooks": [...]}`, oldest first, without secrets.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "Oldest first, without secrets", body = crate::openapi::schemas::WebhookList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let hooks = blocking(move || Ok(state.store.webhooks(&caller.account_id)?)).await?;
    let hooks: Vec<Value> = hooks.iter().map(webhook_json).collect();
    Ok(Json(json!({ "webhooks": hooks })))
}

/// Show a webhook
///
/// `GET /v1/webhooks/{id}` → the webhook without its secret, or 404.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    operation_id = "get_webhook",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
    ),
    responses(
        (status = 200, description = "The webhook without its secret", body = crate::openapi::schemas::Webhook),
        (status = 404, description = "`not_found`: no such webhook", body = crate::openapi::schemas::ErrorBody),
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
            .webhook(&caller.account_id, &id)?
            .map(|h| Json(webhook_json(&h)))
            .ok_or_else(|| ApiError::not_found(format!("webhook {id} not found")))
    })
    .await
}

/// Change a webhook
///
/// `PATCH /v1/webhooks/{id}` with any of `url`, `event_types`, `enabled` → the webhook.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    operation_id = "update_webhook",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
    ),
    request_body = crate::openapi::schemas::UpdateWebhook,
    responses(
        (status = 200, description = "The webhook as stored", body = crate::openapi::schemas::Webhook),
        (status = 400, description = "`invalid_request`: a field is missing or malformed; `target_not_allowed`: `url` is (or its name resolves only to) a loopback, private, link-local or reserved address the server's admin has not allowed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such webhook", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: an event type is already another webhook's", body = crate::openapi::schemas::ErrorBody),
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
    let patch = WebhookPatch {
        url: if body.has("url") {
            let url = body.string("url")?.to_owned();
            check_target(&state, &url).await?;
            Some(url)
        } else {
            None
        },
        event_types: if body.has("event_types") {
            Some(event_types(&body)?)
        } else {
            None
        },
        enabled: body.opt_bool("enabled")?,
    };
    let store = state.store.clone();
    let hook = blocking(move || Ok(store.update_webhook(&caller.account_id, &id, patch)?)).await?;
    changed(&state).await;
    Ok(Json(webhook_json(&hook)))
}

/// Delete a webhook
///
/// `DELETE /v1/webhooks/{id}` → 204 (its delivery log goes with it), or 404.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
    ),
    responses(
        (status = 204, description = "Deleted with its delivery log"),
        (status = 404, description = "`not_found`: no such webhook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(store.delete_webhook(&caller.account_id, &id)?)).await?;
    changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a webhook's secret
///
/// `POST /v1/webhooks/{id}/rotate-secret` → the webhook with its new `secret` (the old
/// one stops signing at once).
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
    ),
    responses(
        (status = 200, description = "The webhook with its new `secret`; the old one stops signing at once", body = crate::openapi::schemas::WebhookWithSecret),
        (status = 404, description = "`not_found`: no such webhook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let hook = blocking(move || Ok(store.rotate_webhook_secret(&caller.account_id, &id)?)).await?;
    changed(&state).await;
    Ok(Json(webhook_json_with_secret(&hook)))
}

/// A webhook's delivery log
///
/// `GET /v1/webhooks/{id}/deliveries?limit=N&status=S` → `{"deliveries": [...]}`, newest
/// first (default 100, at most 1000).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("status" = Option<String>, Query, description = "Only `pending`, `delivered` or `failed` deliveries"),
    ),
    responses(
        (status = 200, description = "Newest first", body = crate::openapi::schemas::DeliveryList),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such webhook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn deliveries(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    QueryMap(query): QueryMap,
) -> Result<Json<Value>, ApiError> {
    let limit = match query.get("limit") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_DELIVERIES_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "limit",
                    format!("`limit` must be an integer from 1 to {MAX_DELIVERIES_PAGE}"),
                )
            })?,
    };
    let status = match query.get("status") {
        None => None,
        Some(text) => Some(text.parse::<DeliveryStatus>().map_err(|_| {
            ApiError::invalid_field("status", "`status` must be pending, delivered or failed")
        })?),
    };
    let filter = DeliveryFilter { status, limit };
    let rows =
        blocking(move || Ok(state.store.deliveries(&caller.account_id, &id, filter)?)).await?;
    Ok(Json(json!({ "deliveries": rows })))
}
