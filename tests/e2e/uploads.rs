//! The admin API's guard on uploads and its token: bad components are refused with the
//! contract's status and code, and nothing of them is stored.

use pbx_tests::{Pbx, error_code, paths::plugin_path, str_field};
use serde_json::Value;

async fn app_versions(pbx: &Pbx, app_id: &str) -> Value {
    let (status, app) = pbx.api().app(app_id).await.unwrap();
    assert_eq!(status, 200, "GET /v1/apps/{app_id}: {app}");
    app.get("versions").cloned().unwrap_or(Value::Null)
}

/// 8. Garbage → 400 `not_a_component`; wrong content type → 415; a core wasm module → 400;
/// and the app's version list stays empty.
#[tokio::test]
async fn bad_uploads_are_refused_and_not_stored() {
    let pbx = Pbx::start().await.unwrap();
    let api = pbx.api();
    let (status, app) = api.create_app("guarded").await.unwrap();
    assert_eq!(status, 201, "{app}");
    let id = str_field(&app, "id").to_string();

    let (status, body) = api
        .upload_version(&id, b"this is not wasm at all".to_vec(), "application/wasm")
        .await
        .unwrap();
    assert_eq!(status, 400, "garbage: {body}");
    assert_eq!(
        error_code(&body),
        Some("not_a_component"),
        "garbage: {body}"
    );
    assert!(
        body.pointer("/error/message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "error without message: {body}"
    );

    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let (status, body) = api
        .upload_version(&id, core_module.clone(), "text/plain")
        .await
        .unwrap();
    assert_eq!(status, 415, "wrong content type: {body}");
    assert!(
        error_code(&body).is_some(),
        "415 without error code: {body}"
    );

    let (status, body) = api
        .upload_version(&id, core_module, "application/wasm")
        .await
        .unwrap();
    assert_eq!(status, 400, "core module: {body}");
    assert_eq!(
        error_code(&body),
        Some("not_a_component"),
        "core module: {body}"
    );

    assert_eq!(app_versions(&pbx, &id).await, serde_json::json!([]));
}

/// 8. A component of another world, or one importing more than granted, is a 422 naming why;
/// a good one after them becomes version 1.
#[tokio::test]
async fn wrong_components_are_422_and_good_one_is_version_1() {
    let pbx = Pbx::start().await.unwrap();
    let api = pbx.api();
    let (_, app) = api.create_app("strict").await.unwrap();
    let id = str_field(&app, "id").to_string();
    for (fixture, codes) in [
        ("wrong_world", &["wrong_world", "missing_export"][..]),
        ("bad_import", &["import_not_granted"][..]),
    ] {
        let bytes = std::fs::read(plugin_path(fixture).unwrap()).unwrap();
        let (status, body) = api
            .upload_version(&id, bytes, "application/wasm")
            .await
            .unwrap();
        assert_eq!(status, 422, "{fixture}: {body}");
        let code = error_code(&body).unwrap_or("");
        assert!(
            codes.contains(&code),
            "{fixture}: code {code:?}, want one of {codes:?}: {body}"
        );
    }
    assert_eq!(app_versions(&pbx, &id).await, serde_json::json!([]));

    let hello = std::fs::read(plugin_path("hello").unwrap()).unwrap();
    let (status, body) = api
        .upload_version(&id, hello, "application/wasm")
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], 1, "{body}");
    assert_eq!(str_field(&body, "sha256").len(), 64, "{body}");
}

/// Everything but `/healthz` needs the bearer token.
#[tokio::test]
async fn api_requires_the_token() {
    let pbx = Pbx::start().await.unwrap();
    let api = pbx.api();
    let (status, _) = api.healthz().await.unwrap();
    assert_eq!(status, 200);
    let (status, body) = api.get_unauthenticated("/v1/apps").await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(error_code(&body), Some("unauthorized"), "{body}");
    let (status, body) = api.with_token("not-the-token").apps().await.unwrap();
    assert_eq!(status, 401, "{body}");
    let (status, body) = api.apps().await.unwrap();
    assert_eq!(status, 200, "{body}");
}
