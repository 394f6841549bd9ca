//! Calls the pbx places: `POST /v1/calls` to a registered phone (the `originate` fixture
//! greets it once answered), phone numbers through trunks with failover (sipp UAS scenarios
//! as trunks: 503 moves on to the next trunk, 486 does not), and a 0.1.0 app still answering.

use std::time::Duration;

use pbx_tests::{
    Sipp, SippRun, expect_status, phone_endpoint, scenarios, str_field, user_endpoint,
};
use serde_json::json;

use crate::common::{ESTABLISH_TIMEOUT, caller as silent_caller};
use crate::control::{CLOSE_TIMEOUT, finish_all, pbx_with, user};

/// `POST /v1/calls` to SIP user dave runs the app for the new leg: dave's phone rings and
/// answers, and he hears the greeting the app says once he answered.
#[tokio::test]
async fn post_calls_dials_a_registered_phone_and_runs_the_app() {
    let (pbx, apps) = pbx_with(&[("originate", "1100")]).await;
    let mut dave = user(&pbx, "dave", pbx_tests::TONES[0]).await;
    let api = pbx.api();
    let call = expect_status(
        "POST /v1/calls",
        201,
        api.originate(None, user_endpoint("dave"), &apps[0].app_id)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!str_field(&call, "id").is_empty(), "{call}");
    if call.get("direction").is_some() {
        assert_eq!(str_field(&call, "direction"), "outbound", "{call}");
    }
    let up = dave.wait_established().await.unwrap();
    dave.talk(Duration::from_secs(5)).await.unwrap();
    dave.hangup().await.unwrap();
    finish_all(&mut [&mut dave]).await;
    let greeting = dave.heard_between(up, up + Duration::from_secs(4)).unwrap();
    let report = greeting.speech_report();
    assert!(
        report.is_speech(),
        "dave should hear the greeting: {report}"
    );
    pbx.wait_for_log("answered", Duration::from_secs(1))
        .await
        .unwrap();
}

/// A component built against pbx:app@0.1.0 (`legacy-hello`) still loads, answers and greets.
#[tokio::test]
async fn legacy_app_still_answers() {
    let (pbx, _) = pbx_with(&[("legacy_hello", "1000")]).await;
    let mut ua = silent_caller().await;
    ua.dial(&pbx.sip_uri("1000")).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT)
        .await
        .unwrap();
    ua.pump_events(Duration::from_secs(5)).await.unwrap();
    ua.hangup().await.unwrap();
    ua.wait_event("CALL_CLOSED", CLOSE_TIMEOUT).await.unwrap();
    ua.quit().await.unwrap();
    let audio = pbx_tests::Audio::read(&ua.last_recording().unwrap()).unwrap();
    let report = audio
        .slice(Duration::ZERO, Duration::from_secs(3))
        .speech_report();
    assert!(report.is_speech(), "legacy-hello's greeting: {report}");
}

/// Two trunks (priority 1 and 2) played by sipp servers: the first answers INVITE with
/// `first_status`; returns both runs after `POST /v1/calls` to a phone number.
async fn two_trunks(first_status: u16, reason: &str) -> (SippRun, SippRun, serde_json::Value) {
    let (pbx, apps) = pbx_with(&[("originate", "1100")]).await;
    let first = Sipp::custom_server("trunk1", scenarios::server_reject(first_status, reason))
        .timeout(Duration::from_secs(20))
        .spawn()
        .await
        .unwrap();
    let second = Sipp::custom_server("trunk2", scenarios::server_answer_then_bye(3000))
        .timeout(Duration::from_secs(20))
        .spawn()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let api = pbx.api();
    for (name, addr, priority) in [("one", first.addr(), 1), ("two", second.addr(), 2)] {
        expect_status(
            &format!("create trunk {name}"),
            201,
            api.create_trunk(&json!({
                "name": name,
                "proxy": format!("sip:{addr}"),
                "priority": priority,
            }))
            .await
            .unwrap(),
        )
        .unwrap();
    }
    expect_status(
        "POST /v1/calls to a phone number",
        201,
        api.originate(
            Some("1100"),
            phone_endpoint("5551234", None),
            &apps[0].app_id,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let first = first.finish().await.unwrap();
    let second = if first_status == 503 {
        second.finish().await.unwrap()
    } else {
        tokio::time::sleep(Duration::from_secs(3)).await;
        second.kill().await.unwrap()
    };
    let record = match api
        .wait_history(Duration::from_secs(15), |c| {
            str_field(c, "direction") == "outbound" && str_field(c, "status") == "hangup"
        })
        .await
    {
        Ok(record) => record,
        Err(e) => panic!(
            "{e}\nlive calls: {:?}\ntrunk one:\n{}\ntrunk two:\n{}",
            api.calls().await.map(|r| r.1),
            first.report(),
            second.report()
        ),
    };
    (first, second, record)
}

/// Trunk one answers 503 (a failure): the call moves on to trunk two, which answers.
#[tokio::test]
async fn route_failover_on_503_tries_the_next_trunk() {
    let (first, second, record) = two_trunks(503, "Service Unavailable").await;
    assert!(first.succeeded(1), "{}", first.report());
    assert!(second.received_request("INVITE"), "{}", second.report());
    assert!(second.succeeded(1), "{}", second.report());
    assert!(
        second.message_log.contains("INVITE sip:5551234@"),
        "trunk two should get the number: {}",
        second.report()
    );
    eprintln!("outbound call: {record}");
}

/// Trunk one answers 486 (busy): busy is final, trunk two never sees an INVITE.
#[tokio::test]
async fn busy_does_not_fail_over() {
    let (first, second, record) = two_trunks(486, "Busy Here").await;
    assert!(first.succeeded(1), "{}", first.report());
    assert!(
        !second.received_request("INVITE"),
        "busy must not fail over: {}",
        second.report()
    );
    assert_eq!(str_field(&record, "hangup_reason"), "busy", "{record}");
}
