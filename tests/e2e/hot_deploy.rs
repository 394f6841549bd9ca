//! Issue 4, hot deploy: 20 live sipp calls keep running version 1 of `hello` while version 2
//! is deployed; a new call runs version 2; version 1 cannot be deleted while a call uses it
//! (409) and can once they ended; rollback deploys an earlier version for new calls.

use std::time::Duration;

use pbx_tests::{Sipp, calls_of, error_code, paths::plugin_path, str_field};
use serde_json::Value;

use crate::common::{
    HELLO, HISTORY_TIMEOUT, assert_ended, assert_sipp_ok, finished_call, hold_call, pbx_with_hello,
    sipp_call_id,
};

/// How many calls stay up across the redeploy.
const LIVE: usize = 20;

fn version_of(call: &Value) -> Option<u64> {
    call.get("app_version").and_then(Value::as_u64)
}

/// One sipp `uac` call to hello; returns its history record.
async fn one_call(pbx: &pbx_tests::Pbx) -> Value {
    let run = Sipp::uac(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    finished_call(pbx, HELLO, sipp_call_id(&run).as_deref()).await
}

#[tokio::test]
async fn twenty_live_calls_survive_a_redeploy() {
    let (pbx, hello) = pbx_with_hello().await;
    assert_eq!(hello.version, 1);
    let api = pbx.api();
    let app = hello.app_id.clone();
    let wasm = plugin_path("hello").unwrap();

    // 20 calls, all started within about a second, each held 8 s before sipp's BYE.
    let holding = hold_call(&pbx, HELLO, Duration::from_secs(8))
        .calls(LIVE as u32)
        .arg("-r")
        .arg(&LIVE.to_string())
        .arg("-l")
        .arg(&LIVE.to_string())
        .spawn()
        .await
        .unwrap();
    let live = api
        .wait_live_calls(Duration::from_secs(10), |calls| {
            calls.iter().filter(|c| version_of(c) == Some(1)).count() >= LIVE
        })
        .await
        .unwrap();
    for call in &live {
        assert_eq!(version_of(call), Some(1), "a live call not on v1: {call}");
    }

    // Version 2 (the same component uploaded again) becomes the deployed one.
    let v2 = api.upload_file_version(&app, &wasm).await.unwrap();
    assert_eq!(v2, 2);
    let (status, body) = api.deploy(&app, v2).await.unwrap();
    assert_eq!(status, 200, "deploy v2: {body}");

    // Version 1 is in use by live calls: 409.
    let (status, body) = api
        .delete(&format!("/v1/apps/{app}/versions/1"))
        .await
        .unwrap();
    assert_eq!(status, 409, "DELETE v1 while 20 calls use it: {body}");
    assert_eq!(error_code(&body), Some("conflict"), "{body}");

    // A new call runs version 2 while the old ones are still up.
    let fresh = one_call(&pbx).await;
    assert_eq!(
        version_of(&fresh),
        Some(2),
        "a call after the redeploy: {fresh}"
    );
    let (_, still) = api.calls().await.unwrap();
    assert!(
        calls_of(&still).len() >= LIVE,
        "live calls dropped by the redeploy: {still}"
    );

    // Every one of the 20 completes normally on version 1.
    let run = holding.finish().await.unwrap();
    assert_sipp_ok(&run, LIVE as u64);
    let ids: Vec<String> =
        run.messages
            .iter()
            .map(|m| m.call_id.clone())
            .fold(Vec::new(), |mut ids, id| {
                if !ids.contains(&id) {
                    ids.push(id);
                }
                ids
            });
    assert_eq!(ids.len(), LIVE, "{}", run.report());
    for sip_call_id in &ids {
        let record = finished_call(&pbx, HELLO, Some(sip_call_id)).await;
        assert_eq!(
            str_field(&record, "sip_call_id"),
            sip_call_id,
            "history row of {sip_call_id}: {record}"
        );
        assert_eq!(version_of(&record), Some(1), "{record}");
        assert_ended(&record, "remote", "normal");
    }
    api.wait_no_live_calls(HISTORY_TIMEOUT).await.unwrap();

    // No call uses version 1 any more: it can go.
    let (status, body) = api
        .delete(&format!("/v1/apps/{app}/versions/1"))
        .await
        .unwrap();
    assert!(
        status == 204 || status == 200,
        "DELETE v1 after the calls ended: {status} {body}"
    );
    let (status, body) = api
        .get(&format!("/v1/apps/{app}/versions/1"))
        .await
        .unwrap();
    assert_eq!(status, 404, "v1 still there after DELETE: {body}");
    // The deployed version cannot be deleted.
    let (status, body) = api
        .delete(&format!("/v1/apps/{app}/versions/2"))
        .await
        .unwrap();
    assert_eq!(status, 409, "DELETE of the active version: {body}");

    // Rollback: deploy v3, then back to v2; each new call runs what is deployed.
    let v3 = api.upload_file_version(&app, &wasm).await.unwrap();
    assert_eq!(v3, 3);
    let (status, body) = api.deploy(&app, v3).await.unwrap();
    assert_eq!(status, 200, "deploy v3: {body}");
    assert_eq!(version_of(&one_call(&pbx).await), Some(3));
    let (status, body) = api.deploy(&app, 2).await.unwrap();
    assert_eq!(status, 200, "rollback to v2: {body}");
    assert_eq!(version_of(&one_call(&pbx).await), Some(2));
    let (status, body) = api.deploy(&app, 1).await.unwrap();
    assert_eq!(status, 404, "deploy of the deleted v1: {body}");
}
