//! The run command's path: pbx started with `--example-apps` routes hello on 1000 and ivr on
//! 2000 by itself, idempotently across restarts; and the ivr menu works with a real phone.

use std::time::Duration;

use pbx_tests::{Pbx, PbxOptions, Sipp, calls_of, paths::plugins_dir, str_field};

use crate::common::{ESTABLISH_TIMEOUT, assert_ended, assert_sipp_ok, caller, finished_call};

/// The number `--example-apps` binds ivr to.
const IVR: &str = "2000";

async fn pbx_with_examples() -> Pbx {
    Pbx::start_with(PbxOptions {
        extra_args: vec!["--example-apps".into(), plugins_dir().display().to_string()],
        ..PbxOptions::default()
    })
    .await
    .unwrap()
}

/// A pbx with the examples and a baresip caller connected to the ivr.
async fn ivr_call() -> (Pbx, pbx_tests::Baresip) {
    let pbx = pbx_with_examples().await;
    let mut ua = caller().await;
    ua.dial(&pbx.sip_uri(IVR)).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT)
        .await
        .unwrap();
    (pbx, ua)
}

/// `--example-apps` installs hello on 1000 and ivr on 2000, both answer, and a restart neither
/// duplicates versions nor rebinds anything.
#[tokio::test]
async fn example_apps_are_installed_and_answer() {
    let mut pbx = pbx_with_examples().await;
    let (status, numbers) = pbx.api().get("/v1/numbers").await.unwrap();
    assert_eq!(status, 200, "{numbers}");
    let (_, apps) = pbx.api().get("/v1/apps").await.unwrap();
    let app_name = |id: &str| {
        apps["apps"]
            .as_array()
            .and_then(|a| a.iter().find(|app| str_field(app, "id") == id))
            .map(|app| str_field(app, "name").to_string())
    };
    let bound: Vec<(String, Option<String>)> = numbers["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                str_field(n, "number").to_string(),
                app_name(str_field(n, "app_id")),
            )
        })
        .collect();
    assert!(
        bound.contains(&("1000".into(), Some("hello".into())))
            && bound.contains(&(IVR.into(), Some("ivr".into()))),
        "example routes missing: {bound:?}"
    );
    for number in ["1000", IVR] {
        let run = Sipp::uac(pbx.sip_addr(), number).run().await.unwrap();
        assert_sipp_ok(&run, 1);
    }

    pbx.restart().await.unwrap();
    let (_, apps_after) = pbx.api().get("/v1/apps").await.unwrap();
    assert_eq!(apps["apps"], apps_after["apps"], "restart changed the apps");
    for app in apps_after["apps"].as_array().unwrap() {
        let (_, detail) = pbx
            .api()
            .get(&format!("/v1/apps/{}", str_field(app, "id")))
            .await
            .unwrap();
        assert_eq!(
            detail["versions"].as_array().map(Vec::len),
            Some(1),
            "a restart must not add versions: {detail}"
        );
    }
    let (_, numbers_after) = pbx.api().get("/v1/numbers").await.unwrap();
    assert_eq!(numbers["numbers"], numbers_after["numbers"]);
}

/// ivr: pressing 2 during the menu stops it, routes to support, and the app hangs up after
/// saying so.
#[tokio::test]
async fn ivr_key_two_goes_to_support_and_hangs_up() {
    let (pbx, mut ua) = ivr_call().await;
    ua.pump_events(Duration::from_millis(1500)).await.unwrap();
    ua.send_dtmf("2").await.unwrap();
    ua.wait_event("CALL_CLOSED", Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("ivr did not hang up after choosing support: {e}"));
    pbx.wait_for_log("menu choice 2", Duration::from_secs(5))
        .await
        .unwrap();
    let record = finished_call(&pbx, IVR, None).await;
    assert_ended(&record, "local", "normal");
    ua.quit().await.unwrap();
}

/// ivr: with no key at all, the menu plays three times (the default branch repeats it twice),
/// then the app says goodbye and hangs up.
#[tokio::test]
async fn ivr_without_a_key_repeats_twice_then_hangs_up() {
    let (pbx, mut ua) = ivr_call().await;
    ua.wait_event("CALL_CLOSED", Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("ivr did not give up on a silent caller: {e}"));
    pbx.wait_for_log("menu play 3", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        !pbx.log_text().contains("menu play 4"),
        "the menu played more than three times"
    );
    let record = finished_call(&pbx, IVR, None).await;
    assert_ended(&record, "local", "normal");
    let (_, live) = pbx.api().calls().await.unwrap();
    assert!(calls_of(&live).is_empty(), "calls still live: {live}");
    ua.quit().await.unwrap();
}
