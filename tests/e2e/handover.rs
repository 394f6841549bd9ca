//! Hand-over between apps: the `handover` fixture answers and hands the caller's leg to the app
//! named after `ho-` in the dialled number. `hello` accepts (the caller hears its greeting and
//! its key echo, and the history names hello); `handover-refuser` refuses, so the leg comes
//! back and `handover` apologises and hangs up.

use std::time::Duration;

use pbx_tests::{Audio, Baresip, str_field};

use crate::common::{caller, finished_call, pbx_with};

const ESTABLISH: Duration = Duration::from_secs(10);
const LOG: Duration = Duration::from_secs(10);

async fn finish(ua: &mut Baresip) -> Audio {
    if !ua.events().iter().any(|e| e.kind == "CALL_CLOSED") {
        ua.hangup().await.unwrap();
        ua.wait_event("CALL_CLOSED", Duration::from_secs(10))
            .await
            .unwrap();
    }
    ua.quit().await.unwrap();
    Audio::read(&ua.last_recording().unwrap()).unwrap()
}

/// hello accepts the leg: it greets the caller (who was already answered by `handover`), echoes
/// a key, and the call's history names hello as its app.
#[tokio::test]
async fn another_app_accepts_the_leg() {
    let (pbx, apps) = pbx_with(&[("handover", "ho-hello"), ("hello", "1000")]).await;
    let mut ua = caller().await;
    ua.dial(&pbx.sip_uri("ho-hello")).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", ESTABLISH).await.unwrap();
    pbx.wait_for_log("handing over to hello", LOG)
        .await
        .unwrap();
    pbx.wait_for_log("hand-over accepted", LOG).await.unwrap();
    ua.pump_events(Duration::from_secs(4)).await.unwrap();
    ua.send_dtmf("7").await.unwrap();
    pbx.wait_for_log("received digit 7", LOG).await.unwrap();
    ua.pump_events(Duration::from_secs(2)).await.unwrap();
    let audio = finish(&mut ua).await;
    let greeting = audio.slice(Duration::ZERO, Duration::from_secs(3));
    assert!(
        greeting.speech_report().is_speech(),
        "hello's greeting after the hand-over: {}",
        greeting.speech_report()
    );
    let record = finished_call(&pbx, "ho-hello", None).await;
    assert_eq!(
        str_field(&record, "app_id"),
        apps[1].app_id,
        "the history should name the app that had the call last: {record}"
    );
    assert_eq!(str_field(&record, "hangup_by"), "remote", "{record}");
}

/// handover-refuser gives the leg back: `handover` hears why, apologises and hangs up.
#[tokio::test]
async fn a_refused_leg_comes_back() {
    let (pbx, apps) = pbx_with(&[
        ("handover", "ho-handover_refuser"),
        ("handover_refuser", "1001"),
    ])
    .await;
    let mut ua = caller().await;
    ua.dial(&pbx.sip_uri("ho-handover_refuser")).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", ESTABLISH).await.unwrap();
    pbx.wait_for_log("refusing hand-over from", LOG)
        .await
        .unwrap();
    pbx.wait_for_log("hand-over refused: busy here", LOG)
        .await
        .unwrap();
    ua.wait_event("CALL_CLOSED", Duration::from_secs(15))
        .await
        .unwrap();
    let audio = finish(&mut ua).await;
    assert!(
        audio.speech_report().is_speech(),
        "the apology: {}",
        audio.speech_report()
    );
    let record = finished_call(&pbx, "ho-handover_refuser", None).await;
    assert_eq!(str_field(&record, "app_id"), apps[0].app_id, "{record}");
    assert_eq!(str_field(&record, "hangup_by"), "local", "{record}");
    assert_eq!(str_field(&record, "hangup_reason"), "normal", "{record}");
}
