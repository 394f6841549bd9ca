//! `/v1/sip-bans` (admin only): the source addresses the registrar banned for failed SIP
//! authentications, and lifting a ban.
//!
//! Invariants: the bans are live server state, reached only through the `Backend`; both
//! routes need the admin token (403 for an API key), since a ban concerns the whole server.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::extract::{ApiPath, Caller};
use crate::{ApiError, ApiState};

/// One banned source address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SipBanView {
    /// The banned IP address, e.g. `192.0.2.7`.
    pub address: String,
    /// Why it was banned.
    pub reason: String,
    /// When the ban ends by itself.
    pub until: DateTime<Utc>,
    /// Failed authentications counted when it was banned.
    pub failures: u32,
    /// The last user name it tried.
    pub last_user: String,
}

/// `GET /v1/sip-bans`: the bans in force, soonest to end first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SipBanList {
    sip_bans: Vec<SipBanView>,
}

/// List banned SIP sources
///
/// `GET /v1/sip-bans` → `{"sip_bans": [...]}`: sources whose REGISTERs and INVITEs get 403
/// for too many failed authentications.
#[utoipa::path(
    get,
    path = "/v1/sip-bans",
    operation_id = "list_sip_bans",
    tag = "sip users",
    responses(
        (status = 200, description = "The bans in force, soonest to end first", body = SipBanList),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<SipBanList>, ApiError> {
    caller.require_admin()?;
    Ok(Json(SipBanList {
        sip_bans: state.backend.sip_bans(),
    }))
}

/// Lift a SIP ban
///
/// `DELETE /v1/sip-bans/{address}` → 204, or 404 when the address is not banned.
#[utoipa::path(
    delete,
    path = "/v1/sip-bans/{address}",
    operation_id = "lift_sip_ban",
    tag = "sip users",
    params(
        ("address" = String, Path, description = "The banned IP address"),
    ),
    responses(
        (status = 204, description = "Lifted; the address may authenticate again"),
        (status = 400, description = "`invalid_request`: not an IP address", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "`forbidden`: an API key cannot use this route", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`not_found`: the address is not banned", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn lift(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(address): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let ip: IpAddr = address
        .parse()
        .map_err(|_| ApiError::invalid(format!("`{address}` is not an IP address")))?;
    if state.backend.lift_sip_ban(ip) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("{ip} is not banned")))
    }
}
