//! `/v1/sip-users`: the users who REGISTER with the pbx and can be dialled as `user`
//! endpoints.
//!
//! Invariants: a password is only ever read from a request, hashed by the store for the
//! server's realm and never answered (nor its HA1); after a password change or a delete
//! the server is told (`Backend::sip_user_changed`) so old bindings do not outlive it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pbx_store::SipUser;
use serde_json::{Value, json};

use crate::extract::{ApiPath, Caller, JsonObject, blocking};
use crate::{ApiError, ApiState};

/// Create a SIP user
///
/// `POST /v1/sip-users` `{"username","password","display_name"?}` → 201 with the user.
#[utoipa::path(
    post,
    path = "/v1/sip-users",
    operation_id = "create_sip_user",
    tag = "sip users",
    request_body = crate::openapi::schemas::CreateSipUser,
    responses(
        (status = 201, description = "The user (its password never shown)", body = crate::openapi::schemas::SipUser),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`conflict`: the user name is taken", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: JsonObject,
) -> Result<(StatusCode, Json<SipUser>), ApiError> {
    body.only(&["username", "password", "display_name"])?;
    let username = body.string("username")?.to_owned();
    let password = body.string("password")?.to_owned();
    let display_name = body.opt_string("display_name")?.map(str::to_owned);
    let user = blocking(move || {
        let realm = state.backend.sip_realm();
        Ok(state.store.create_sip_user(
            &caller.account_id,
            &username,
            &password,
            display_name.as_deref(),
            &realm,
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// List SIP users
///
/// `GET /v1/sip-users` → `{"sip_users": [...]}` ordered by user name.
#[utoipa::path(
    get,
    path = "/v1/sip-users",
    operation_id = "list_sip_users",
    tag = "sip users",
    responses(
        (status = 200, description = "By user name", body = crate::openapi::schemas::SipUserList),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let users = blocking(move || Ok(state.store.list_sip_users(&caller.account_id)?)).await?;
    Ok(Json(json!({ "sip_users": users })))
}

/// Show a SIP user and its registrations
///
/// `GET /v1/sip-users/{id}` → the user with its current `registrations`, or 404.
#[utoipa::path(
    get,
    path = "/v1/sip-users/{id}",
    operation_id = "get_sip_user",
    tag = "sip users",
    params(
        ("id" = String, Path, description = "The SIP user's id"),
    ),
    responses(
        (status = 200, description = "The user with its current registrations", body = crate::openapi::schemas::SipUserDetail),
        (status = 404, description = "`not_found`: no such SIP user", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let user = {
        let state = state.clone();
        blocking(move || {
            state
                .store
                .sip_user(&caller.account_id, &id)?
                .ok_or_else(|| ApiError::not_found(format!("SIP user {id} not found")))
        })
        .await?
    };
    let registrations = state.backend.registrations(&user.username);
    let mut value = serde_json::to_value(&user).map_err(|e| {
        tracing::error!(error = %e, "cannot serialize a SIP user");
        ApiError::internal()
    })?;
    if let Value::Object(map) = &mut value {
        map.insert("registrations".into(), json!(registrations));
    }
    Ok(Json(value))
}

/// Change a SIP user's password
///
/// `PUT /v1/sip-users/{id}/password` `{"password"}` → 204.
#[utoipa::path(
    put,
    path = "/v1/sip-users/{id}/password",
    operation_id = "set_sip_user_password",
    tag = "sip users",
    params(
        ("id" = String, Path, description = "The SIP user's id"),
    ),
    request_body = crate::openapi::schemas::SetPassword,
    responses(
        (status = 204, description = "Changed; existing registrations are dropped"),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: no such SIP user", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn set_password(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: JsonObject,
) -> Result<StatusCode, ApiError> {
    body.only(&["password"])?;
    let password = body.string("password")?.to_owned();
    blocking(move || {
        let realm = state.backend.sip_realm();
        let user = state
            .store
            .set_sip_user_password(&caller.account_id, &id, &password, &realm)?;
        state.backend.sip_user_changed(&user.username);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a SIP user
///
/// `DELETE /v1/sip-users/{id}` → 204, or 404.
#[utoipa::path(
    delete,
    path = "/v1/sip-users/{id}",
    operation_id = "delete_sip_user",
    tag = "sip users",
    params(
        ("id" = String, Path, description = "The SIP user's id"),
    ),
    responses(
        (status = 204, description = "Deleted; its registrations are dropped"),
        (status = 404, description = "`not_found`: no such SIP user", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let user = state.store.delete_sip_user(&caller.account_id, &id)?;
        state.backend.sip_user_changed(&user.username);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
