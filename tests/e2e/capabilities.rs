//! Issue 4, app capabilities over real calls: the `capabilities` fixture with kv and HTTP
//! granted (an allow-list naming a local test server) counts its calls in kv, fetches the
//! configured URL and reads its config and secret; with the grants taken away a call still
//! completes normally, the denials being error results the app reports, never a trap.

use std::time::Duration;

use pbx_tests::{HttpRecorder, Pbx, expect_status, str_field};
use serde_json::{Value, json};

use crate::common::{
    HISTORY_TIMEOUT, assert_ended, assert_sipp_ok, hold_call, pbx_with_args, sipp_call_id,
};

/// The number routed to the fixture.
const NUMBER: &str = "3200";

/// One call that stays up long enough for the fixture's HTTP answer; returns its history row.
async fn call(pbx: &Pbx) -> Value {
    let run = hold_call(pbx, NUMBER, Duration::from_millis(2500))
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    let sip_call_id = sipp_call_id(&run).unwrap();
    pbx.api()
        .wait_history(HISTORY_TIMEOUT, |c| {
            str_field(c, "sip_call_id") == sip_call_id && str_field(c, "status") == "hangup"
        })
        .await
        .unwrap()
}

async fn wait_log(pbx: &Pbx, line: &str) {
    pbx.wait_for_log(line, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("the fixture never logged `{line}`: {e}"));
}

#[tokio::test]
async fn granted_capabilities_work_and_denied_ones_do_not_crash() {
    // The test site listens on loopback, which apps may reach only when allowed.
    let (pbx, apps) = pbx_with_args(
        &["--allow-private-networks", "127.0.0.0/8"],
        &[("capabilities", NUMBER)],
    )
    .await;
    let app = apps[0].app_id.clone();
    let api = pbx.api();
    let site = HttpRecorder::start(|_, _| (200, "hi-from-the-test-site".into()))
        .await
        .unwrap();

    let settings = json!({
        "kv_enabled": true,
        "http_allow": [format!("127.0.0.1:{}", site.addr().port())],
    });
    expect_status(
        "grant kv and http",
        200,
        api.put_json(&format!("/v1/apps/{app}/settings"), &settings)
            .await
            .unwrap(),
    )
    .unwrap();
    for (name, value, secret) in [
        ("url", site.url("/fetch"), false),
        ("greeting", "Bonjour".to_string(), false),
        ("token", "s3cret-value".to_string(), true),
    ] {
        expect_status(
            &format!("config {name}"),
            200,
            api.put_json(
                &format!("/v1/apps/{app}/config/{name}"),
                &json!({ "value": value, "secret": secret }),
            )
            .await
            .unwrap(),
        )
        .unwrap();
    }
    let (_, config) = api.get(&format!("/v1/apps/{app}/config")).await.unwrap();
    assert!(
        !config.to_string().contains("s3cret-value"),
        "a secret is readable through the API: {config}"
    );

    for _ in 0..2 {
        let record = call(&pbx).await;
        assert_ended(&record, "remote", "normal");
    }
    let (status, value) = api
        .get_bytes(&format!("/v1/apps/{app}/kv/calls"))
        .await
        .unwrap();
    assert_eq!(
        status,
        200,
        "kv key `calls`: {}",
        String::from_utf8_lossy(&value)
    );
    assert_eq!(
        String::from_utf8_lossy(&value),
        "2",
        "the fixture counts its calls in kv"
    );
    let requests = site
        .wait_until(Duration::from_secs(10), |r| r.len() >= 2)
        .await
        .unwrap();
    for request in &requests {
        assert_eq!(request.method, "GET", "{request:?}");
        assert_eq!(request.path, "/fetch", "{request:?}");
    }
    for line in [
        "kv: call 1",
        "kv: call 2",
        "greeting: Bonjour",
        "token: 12 characters",
        "http response",
        "hi-from-the-test-site",
    ] {
        wait_log(&pbx, line).await;
    }

    // Take kv and HTTP away: the next call still completes normally.
    expect_status(
        "revoke kv and http",
        200,
        api.put_json(
            &format!("/v1/apps/{app}/settings"),
            &json!({ "kv_enabled": false, "http_allow": [] }),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let record = call(&pbx).await;
    assert_ended(&record, "remote", "normal");
    assert_ne!(str_field(&record, "hangup_reason"), "app-error", "{record}");
    wait_log(&pbx, "kv error").await;
    wait_log(&pbx, "http error").await;
    assert_eq!(
        site.requests().len(),
        requests.len(),
        "the site was fetched although HTTP is no longer granted"
    );
    let (_, value) = api
        .get_bytes(&format!("/v1/apps/{app}/kv/calls"))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&value),
        "2",
        "kv changed while disabled"
    );
}
