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

use crate::extract::{ApiPath, JsonObject, blocking};
use crate::{ApiError, ApiState};

/// `POST /v1/sip-users` `{"username","password","display_name"?}` → 201 with the user.
pub(crate) async fn create(
    State(state): State<ApiState>,
    body: JsonObject,
) -> Result<(StatusCode, Json<SipUser>), ApiError> {
    body.only(&["username", "password", "display_name"])?;
    let username = body.string("username")?.to_owned();
    let password = body.string("password")?.to_owned();
    let display_name = body.opt_string("display_name")?.map(str::to_owned);
    let user = blocking(move || {
        let realm = state.backend.sip_realm();
        Ok(state
            .store
            .create_sip_user(&username, &password, display_name.as_deref(), &realm)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `GET /v1/sip-users` → `{"sip_users": [...]}` ordered by user name.
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let users = blocking(move || Ok(state.store.list_sip_users()?)).await?;
    Ok(Json(json!({ "sip_users": users })))
}

/// `GET /v1/sip-users/{id}` → the user with its current `registrations`, or 404.
pub(crate) async fn show(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let user = {
        let state = state.clone();
        blocking(move || {
            state
                .store
                .sip_user(&id)?
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

/// `PUT /v1/sip-users/{id}/password` `{"password"}` → 204.
pub(crate) async fn set_password(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    body: JsonObject,
) -> Result<StatusCode, ApiError> {
    body.only(&["password"])?;
    let password = body.string("password")?.to_owned();
    blocking(move || {
        let realm = state.backend.sip_realm();
        let user = state.store.set_sip_user_password(&id, &password, &realm)?;
        state.backend.sip_user_changed(&user.username);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/sip-users/{id}` → 204, or 404.
pub(crate) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let user = state.store.delete_sip_user(&id)?;
        state.backend.sip_user_changed(&user.username);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
