//! Issue 4, accounts over SIP: an account limited to one concurrent call, whose app was
//! created with its own API key, gets its second simultaneous call refused (486 Busy Here, as
//! README documents), and another account's key cannot see its live call (404) while the
//! owner's key can.

use std::time::Duration;

use pbx_tests::{
    Api, Pbx, Sipp, calls_of, expect_status, paths::plugin_path, scenarios, str_field,
};
use serde_json::json;

use crate::common::{assert_ended, assert_sipp_ok, hold_call};

/// The number routed to the limited account's app.
const NUMBER: &str = "3100";

/// Creates an account (admin token) with `quotas` and one API key; returns its id and a
/// client that uses the key.
async fn account(admin: &Api, name: &str, quotas: serde_json::Value) -> (String, Api) {
    let mut body = json!({ "name": name });
    if let (Some(body), Some(quotas)) = (body.as_object_mut(), quotas.as_object()) {
        body.extend(quotas.clone());
    }
    let created = expect_status(
        &format!("create account {name}"),
        201,
        admin.post_json("/v1/accounts", &body).await.unwrap(),
    )
    .unwrap();
    let id = str_field(&created, "id").to_string();
    assert!(id.starts_with("acc_"), "account: {created}");
    let key = expect_status(
        &format!("create a key of {name}"),
        201,
        admin
            .post_json(
                &format!("/v1/accounts/{id}/keys"),
                &json!({ "name": "e2e" }),
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let secret = str_field(&key, "key").to_string();
    assert!(secret.starts_with("pbx_"), "key answer: {key}");
    (id, admin.with_token(&secret))
}

#[tokio::test]
async fn concurrent_call_quota_and_isolation_over_sip() {
    let pbx = Pbx::start().await.unwrap();
    let admin = pbx.api();
    let (acme_id, acme) = account(&admin, "acme", json!({ "max_concurrent_calls": 1 })).await;
    let (_, other) = account(&admin, "other", json!({})).await;

    let hello = acme
        .deploy_app("hello", &plugin_path("hello").unwrap(), NUMBER)
        .await
        .unwrap();
    // The app is acme's: the other account does not see it.
    let (status, body) = other.app(&hello.app_id).await.unwrap();
    assert_eq!(status, 404, "other account reading acme's app: {body}");

    let holding = hold_call(&pbx, NUMBER, Duration::from_secs(6))
        .spawn()
        .await
        .unwrap();
    let live = acme
        .wait_live_calls(Duration::from_secs(10), |calls| calls.len() == 1)
        .await
        .unwrap();
    let call_id = str_field(&live[0], "id").to_string();
    assert_eq!(str_field(&live[0], "account_id"), acme_id, "{}", live[0]);

    // The second simultaneous call is over the quota: README documents 486 Busy Here.
    let refused = Sipp::custom(
        "refused",
        scenarios::expect_final_any(&[486, 503]),
        pbx.sip_addr(),
        NUMBER,
    )
    .run()
    .await
    .unwrap();
    assert_sipp_ok(&refused, 1);
    assert_eq!(
        refused.final_status("INVITE"),
        Some(486),
        "{}",
        refused.report()
    );

    // Only the owner sees the live call.
    let (status, body) = other.call(&call_id).await.unwrap();
    assert_eq!(status, 404, "other account reading acme's call: {body}");
    let (status, body) = other.calls().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        calls_of(&body)
            .iter()
            .all(|c| str_field(c, "id") != call_id),
        "acme's call listed for the other account: {body}"
    );
    let (status, body) = other.hangup(&call_id).await.unwrap();
    assert_eq!(status, 404, "other account hanging up acme's call: {body}");
    let (status, body) = acme.call(&call_id).await.unwrap();
    assert_eq!(status, 200, "acme reading its own call: {body}");

    let run = holding.finish().await.unwrap();
    assert_sipp_ok(&run, 1);

    // The held call ended normally (the other key's hangup did nothing), and its history row
    // is acme's alone.
    let record = acme
        .wait_history(Duration::from_secs(10), |c| {
            str_field(c, "id") == call_id && str_field(c, "status") == "hangup"
        })
        .await
        .unwrap();
    assert_ended(&record, "remote", "normal");
    let (status, body) = other.call(&call_id).await.unwrap();
    assert_eq!(status, 404, "other account reading acme's history: {body}");

    // With the call gone, acme can call again.
    let again = hold_call(&pbx, NUMBER, Duration::from_millis(500))
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&again, 1);
}
