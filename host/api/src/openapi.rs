//! The OpenAPI 3.1 document of the admin API, generated from the handlers' `#[utoipa::path]`
//! annotations and the schemas in [`schemas`], served at `GET /v1/openapi.json`.
//!
//! Invariants: every route of [`crate::router`] is listed in [`ApiDoc`]'s `paths` (a test
//! reads the router's source and fails on a route without an operation); every operation
//! has a unique `operationId` and one tag; every operation secured by `bearerAuth` also
//! documents the `Pbx-Account` header and the 400 (a malformed header or path parameter),
//! 401, 404 (the account the header names does not exist) and 500 answers, and every
//! operation with a JSON body also 413 and 415 (what [`crate::extract`] answers for any
//! route; added here, once, by [`Common`]); the document is built once per process and
//! never changes. `tests/e2e/api_fuzz.rs` (pbx-tests) runs a schema-driven fuzzer against the
//! real binary and fails on any status an operation does not list.

pub(crate) mod schemas;

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The admin API's OpenAPI document: every route, its schemas, tags and security.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pbx",
        description = "The admin API of pbx, a programmable PBX: accounts and API keys, \
                       apps and their versions, numbers, audio files, calls, conferences, \
                       recordings, trunks, SIP users, events and webhooks. Errors are \
                       always `{\"error\": {\"code\", \"message\"}}`; see `/docs` for the \
                       rendered reference and every error code.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/", description = "This pbx server's admin listener")),
    paths(
        crate::accounts::own,
        crate::accounts::create,
        crate::accounts::list,
        crate::accounts::show,
        crate::accounts::update,
        crate::accounts::delete,
        crate::accounts::create_key,
        crate::accounts::list_keys,
        crate::accounts::revoke_key,
        crate::apps::create,
        crate::apps::list,
        crate::apps::show,
        crate::apps::delete,
        crate::apps::upload_version,
        crate::apps::list_versions,
        crate::apps::download_version,
        crate::apps::delete_version,
        crate::apps::deploy,
        crate::app_settings::show,
        crate::app_settings::update,
        crate::app_settings::config,
        crate::app_settings::set_config,
        crate::app_settings::delete_config,
        crate::app_settings::kv_list,
        crate::app_settings::kv_get,
        crate::app_settings::kv_put,
        crate::app_settings::kv_delete,
        crate::numbers::list,
        crate::numbers::set,
        crate::numbers::show,
        crate::numbers::delete,
        crate::files::upload,
        crate::files::list,
        crate::files::show,
        crate::files::content,
        crate::calls::live,
        crate::calls::originate,
        crate::calls::history,
        crate::calls::show,
        crate::calls::hangup,
        crate::events::call_events,
        crate::events::list,
        crate::events::websocket,
        crate::webhooks::create,
        crate::webhooks::list,
        crate::webhooks::show,
        crate::webhooks::update,
        crate::webhooks::delete,
        crate::webhooks::rotate_secret,
        crate::webhooks::deliveries,
        crate::trunks::list,
        crate::trunks::create,
        crate::trunks::show,
        crate::trunks::update,
        crate::trunks::delete,
        crate::sip_users::list,
        crate::sip_users::create,
        crate::sip_users::show,
        crate::sip_users::set_password,
        crate::sip_users::delete,
        crate::sip_bans::list,
        crate::sip_bans::lift,
        crate::conferences::live,
        crate::conferences::history,
        crate::conferences::show,
        crate::conferences::hangup,
        crate::recordings::list,
        crate::recordings::show,
        crate::recordings::first_file,
        crate::recordings::file,
        crate::recordings::delete,
        crate::healthz,
        crate::metrics,
        openapi_json,
        crate::docs::reference,
        crate::docs::wit_reference,
    ),
    components(schemas(
        schemas::ErrorBody,
        schemas::ErrorDetail,
        schemas::ErrorCode,
        schemas::EventType,
        schemas::Binary,
    )),
    modifiers(&Common),
    tags(
        (name = "accounts", description = "Tenants, their quotas and API keys (admin token only, except `GET /v1/account`)."),
        (name = "apps", description = "Call apps, their versions (WebAssembly components), deploy and rollback."),
        (name = "app settings", description = "An app's capabilities and limits, configuration values and secrets, key-value state."),
        (name = "numbers", description = "Dialled numbers bound to apps."),
        (name = "files", description = "Audio files apps can play."),
        (name = "calls", description = "Live calls, the call history, outbound calls and hangup."),
        (name = "conferences", description = "Live and finished conferences."),
        (name = "recordings", description = "Recordings and their WAV files."),
        (name = "events", description = "Recorded call and app events: history, polling and the live websocket."),
        (name = "webhooks", description = "Signed event delivery over HTTP, with retries and a delivery log."),
        (name = "trunks", description = "SIP trunks phone numbers are dialled through."),
        (name = "sip users", description = "Users who REGISTER with the pbx and can be dialled, and the sources banned for failed authentications (admin token only)."),
        (name = "service", description = "Health, metrics and this documentation; no authentication."),
    )
)]
pub(crate) struct ApiDoc;

/// The security scheme name every authenticated operation refers to.
pub(crate) const BEARER: &str = "bearerAuth";

/// Adds what every operation shares: the `bearerAuth` scheme, the info version, and on
/// each authenticated operation the `Pbx-Account` header and the answers any route gives.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (every account; pick one with `Pbx-Account`, \
                         default `acc_0000000000000000`) or an account's API key \
                         (`pbx_...`, that account only).",
                    ))
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if is_authenticated(op) {
                    add_common(op);
                }
            }
        }
    }
}

/// Whether `op` names the bearer scheme in its security requirements.
fn is_authenticated(op: &Operation) -> bool {
    op.security.as_ref().is_some_and(|reqs| {
        reqs.iter().any(|req| {
            serde_json::to_value(req)
                .ok()
                .and_then(|v| v.get(BEARER).cloned())
                .is_some()
        })
    })
}

/// The `Pbx-Account` header and the answers every authenticated operation can give: 400,
/// 401, 404 and 500, and 413 and 415 with a JSON body.
fn add_common(op: &mut Operation) {
    let account = ParameterBuilder::new()
        .name("Pbx-Account")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "With the admin token: the account to act on (default the default account). \
             With an API key: must be the key's own account, or absent.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        ))
        .build();
    op.parameters
        .get_or_insert_with(Vec::new)
        .push(account.into());
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let responses = &mut op.responses.responses;
    responses.entry("401".to_owned()).or_insert_with(|| {
        error("`unauthorized`: missing or wrong bearer token, unknown or revoked API key").into()
    });
    responses.entry("500".to_owned()).or_insert_with(|| {
        error("`internal`: a failure on the server's side (details in its log)").into()
    });
    responses.entry("400".to_owned()).or_insert_with(|| {
        error("`invalid_request`: an empty `Pbx-Account` header or a malformed path parameter")
            .into()
    });
    responses.entry("404".to_owned()).or_insert_with(|| {
        error("`not_found`: the account `Pbx-Account` names does not exist").into()
    });
    let json_body = op.request_body.as_ref().is_some_and(|body| match body {
        RefOr::T(body) => body.content.contains_key("application/json"),
        RefOr::Ref(_) => false,
    });
    if json_body {
        let responses = &mut op.responses.responses;
        responses.entry("413".to_owned()).or_insert_with(|| {
            error("`payload_too_large`: the JSON body is larger than 1 MiB").into()
        });
        responses.entry("415".to_owned()).or_insert_with(|| {
            error("`unsupported_media_type`: the body is not `application/json`").into()
        });
    }
}

/// The document, built once.
pub(crate) fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The document as JSON, built once.
pub(crate) fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document().to_pretty_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialise the OpenAPI document");
            String::from("{}")
        })
    })
}

/// The OpenAPI 3.1 document of this API
///
/// Generated from the code at build time; no authentication.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = serde_json::Value),
    )
)]
pub(crate) async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}
