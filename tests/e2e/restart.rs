//! Issue test 9: a restart keeps apps, numbers and call history, and calls still work afterwards.

use std::time::Duration;

use pbx_tests::{Sipp, calls_of, str_field};
use serde_json::Value;

use crate::common::{HELLO, assert_sipp_ok, finished_call, pbx_with_hello, sipp_call_id};

fn list(body: &Value, key: &str) -> Vec<Value> {
    body.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn restart_keeps_apps_numbers_and_history() {
    let (mut pbx, hello) = pbx_with_hello().await;
    let run = Sipp::uac(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    let call = finished_call(&pbx, HELLO, sipp_call_id(&run).as_deref()).await;

    let api = pbx.api();
    let (_, apps_before) = api.apps().await.unwrap();
    let (_, numbers_before) = api.numbers().await.unwrap();
    let (_, history_before) = api.history().await.unwrap();
    assert!(
        list(&apps_before, "apps")
            .iter()
            .any(|a| str_field(a, "id") == hello.app_id),
        "{apps_before}"
    );
    assert!(
        list(&numbers_before, "numbers")
            .iter()
            .any(|n| str_field(n, "number") == HELLO && str_field(n, "app_id") == hello.app_id),
        "{numbers_before}"
    );

    pbx.restart().await.unwrap();
    let api = pbx.api();

    let (status, apps_after) = api.apps().await.unwrap();
    assert_eq!(status, 200, "{apps_after}");
    assert_eq!(
        list(&apps_after, "apps"),
        list(&apps_before, "apps"),
        "apps changed"
    );
    let (status, numbers_after) = api.numbers().await.unwrap();
    assert_eq!(status, 200, "{numbers_after}");
    assert_eq!(
        list(&numbers_after, "numbers"),
        list(&numbers_before, "numbers"),
        "numbers changed"
    );
    let (status, history_after) = api.history().await.unwrap();
    assert_eq!(status, 200, "{history_after}");
    assert_eq!(
        calls_of(&history_after),
        calls_of(&history_before),
        "history changed"
    );
    let (status, stored) = api.call(str_field(&call, "id")).await.unwrap();
    assert_eq!(status, 200, "GET /v1/calls/{{id}} after restart: {stored}");
    for key in [
        "id",
        "app_id",
        "from",
        "to",
        "status",
        "hangup_by",
        "hangup_reason",
    ] {
        assert_eq!(stored.get(key), call.get(key), "{key}: {stored} vs {call}");
    }

    let run = Sipp::uac(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    let second = finished_call(&pbx, HELLO, sipp_call_id(&run).as_deref()).await;
    assert_ne!(str_field(&second, "id"), str_field(&call, "id"));
    pbx.api()
        .wait_history(Duration::from_secs(10), |c| {
            str_field(c, "id") == str_field(&call, "id")
        })
        .await
        .unwrap();
}
