//! Calls to the `hello` app (bound to 1000) from sipp and baresip: signalling over UDP and TCP,
//! RTP and DTMF, what the caller hears, digits, who hangs up, and unknown numbers.

use std::time::{Duration, Instant};

use pbx_tests::{Audio, Baresip, Pbx, Sipp, Transport, scenarios, str_field};
use serde_json::Value;

use crate::common::{
    ESTABLISH_TIMEOUT, HELLO, assert_ended, assert_sipp_ok, caller, finished_call, pbx_with_hello,
    sipp_call_id,
};

/// How long the greeting "Hello from pbx. Press any key." takes, with margin.
const GREETING: Duration = Duration::from_secs(4);

async fn uac_to_hello(transport: Transport) {
    let (pbx, _) = pbx_with_hello().await;
    let run = Sipp::uac(pbx.sip_addr(), HELLO)
        .transport(transport)
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    assert!(run.received_response(200, "INVITE"), "{}", run.report());
    assert!(run.received_response(200, "BYE"), "{}", run.report());
    let record = finished_call(&pbx, HELLO, sipp_call_id(&run).as_deref()).await;
    assert_ended(&record, "remote", "normal");
    assert_eq!(str_field(&record, "direction"), "inbound", "{record}");
}

/// 1. sipp's `uac` over UDP: 200 OK, then its BYE is answered; one successful call.
#[tokio::test]
async fn uac_udp_to_hello() {
    uac_to_hello(Transport::Udp).await;
}

/// 1. The same over TCP.
#[tokio::test]
async fn uac_tcp_to_hello() {
    uac_to_hello(Transport::Tcp).await;
}

/// 2. sipp's `uac_pcap`: G.711 A-law RTP and an RFC 4733 digit flow for ~9 s, then BYE.
#[tokio::test]
async fn uac_pcap_to_hello() {
    let (pbx, _) = pbx_with_hello().await;
    let run = Sipp::uac_pcap(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    // The pcap's digit is `1`; hello logs every digit it gets.
    pbx.wait_for_log("received digit 1", Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("hello never saw the pcap's DTMF 1: {e}"));
}

/// Dials `uri`, waits for the call to be established, and returns when it was.
async fn dial_established(ua: &mut Baresip, uri: &str) -> Instant {
    ua.dial(uri).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT)
        .await
        .unwrap()
        .at
}

/// Hangs up (unless the call already closed), waits for CALL_CLOSED, quits, and returns the
/// recording of what the caller heard.
async fn finish_and_read(ua: &mut Baresip) -> Audio {
    if !ua.events().iter().any(|e| e.kind == "CALL_CLOSED") {
        ua.hangup().await.unwrap();
        ua.wait_event("CALL_CLOSED", Duration::from_secs(10))
            .await
            .unwrap();
    }
    ua.quit().await.unwrap();
    Audio::read(&ua.last_recording().unwrap()).unwrap()
}

async fn greeting_is_heard(uri_suffix: &str) {
    let (pbx, _) = pbx_with_hello().await;
    let mut ua = caller().await;
    dial_established(&mut ua, &format!("{}{uri_suffix}", pbx.sip_uri(HELLO))).await;
    ua.pump_events(Duration::from_secs(6)).await.unwrap();
    let audio = finish_and_read(&mut ua).await;
    let first = audio.slice(Duration::ZERO, Duration::from_secs(3));
    let report = first.speech_report();
    eprintln!("greeting: {report}");
    assert!(
        first.rms_dbfs() > -40.0,
        "the first 3 s are too quiet for a greeting: {report}"
    );
    assert!(report.is_speech(), "the greeting is not speech: {report}");
}

/// 3. baresip calls 1000 for ~6 s; what it heard is speech (the greeting), not silence or a beep.
#[tokio::test]
async fn caller_hears_greeting() {
    greeting_is_heard("").await;
}

/// 3. The same with SIP over TCP (media is RTP over UDP either way).
#[tokio::test]
async fn caller_over_tcp_hears_greeting() {
    greeting_is_heard(";transport=tcp").await;
}

/// 4. A digit after the greeting is said back: speech follows the digit in the recording, and
/// hello's log line for it is in the pbx log.
#[tokio::test]
async fn digit_is_said_back() {
    let (pbx, _) = pbx_with_hello().await;
    let mut ua = caller().await;
    let established = dial_established(&mut ua, &pbx.sip_uri(HELLO)).await;
    // Let the greeting finish (and at least 1 s pass, see the peers README) before the digit.
    ua.pump_events(GREETING).await.unwrap();
    let sent_at = established.elapsed();
    ua.send_dtmf("5").await.unwrap();
    ua.pump_events(Duration::from_secs(4)).await.unwrap();
    let audio = finish_and_read(&mut ua).await;

    pbx.wait_for_log("received digit 5", Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("hello did not log the digit: {e}"));

    let before = audio.slice(
        sent_at.saturating_sub(Duration::from_millis(1000)),
        Duration::from_millis(900),
    );
    let after = audio.slice(sent_at, Duration::from_millis(3500));
    let report = after.speech_report();
    eprintln!(
        "digit sent {:.2}s into the call; before: {}; after: {report}",
        sent_at.as_secs_f64(),
        before.speech_report()
    );
    assert!(
        report.is_speech() && report.active >= Duration::from_millis(500),
        "no speech after the digit (\"You pressed 5\"): {report}"
    );
    assert!(
        report.active > before.active_duration(),
        "the digit did not add speech: before {}, after {report}",
        before.speech_report()
    );

    // Where the API exposes a call's events, the digit must be among them.
    let record = finished_call(&pbx, HELLO, None).await;
    let id = str_field(&record, "id");
    if let Ok((200, events)) = pbx.api().get(&format!("/v1/calls/{id}/events")).await {
        assert!(
            events.to_string().contains('5'),
            "call events without the digit: {events}"
        );
    }
}

/// 5. `#` makes hello say "Goodbye" and hang up: the caller sees the call closed within ~10 s,
/// and the history says the pbx ended it normally.
#[tokio::test]
async fn pound_says_goodbye_and_hangs_up() {
    let (pbx, _) = pbx_with_hello().await;
    let mut ua = caller().await;
    let established = dial_established(&mut ua, &pbx.sip_uri(HELLO)).await;
    ua.pump_events(GREETING).await.unwrap();
    let sent_at = established.elapsed();
    ua.send_dtmf("#").await.unwrap();
    let closed = ua
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("hello did not hang up after #: {e}"));
    eprintln!("CALL_CLOSED after #: {:?}", closed.param);
    let audio = finish_and_read(&mut ua).await;
    let goodbye = audio.from(sent_at).speech_report();
    assert!(
        goodbye.active >= Duration::from_millis(300),
        "no \"Goodbye\" heard: {goodbye}"
    );
    let record = finished_call(&pbx, HELLO, None).await;
    assert_ended(&record, "local", "normal");
}

/// 6. The caller hangs up: the history says the remote side ended it normally.
#[tokio::test]
async fn caller_hangup_is_remote_normal() {
    let (pbx, _) = pbx_with_hello().await;
    let mut ua = caller().await;
    dial_established(&mut ua, &pbx.sip_uri(HELLO)).await;
    ua.pump_events(Duration::from_secs(2)).await.unwrap();
    ua.hangup().await.unwrap();
    ua.wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap();
    ua.quit().await.unwrap();
    let record = finished_call(&pbx, HELLO, None).await;
    assert_ended(&record, "remote", "normal");
    for key in ["tm_create", "tm_hangup"] {
        assert!(
            record.get(key).is_some_and(|v| !v.is_null()),
            "{key} missing: {record}"
        );
    }
    pbx.api()
        .wait_no_live_calls(Duration::from_secs(5))
        .await
        .unwrap();
}

/// 7. An unknown number gets 404, seen by sipp (UDP) and by baresip.
#[tokio::test]
async fn unknown_number_gets_404() {
    let (pbx, _) = pbx_with_hello().await;
    let run = Sipp::custom(
        "expect_404",
        scenarios::expect_final(404),
        pbx.sip_addr(),
        "9999",
    )
    .run()
    .await
    .unwrap();
    assert_sipp_ok(&run, 1);
    let mut ua = caller().await;
    ua.dial(&pbx.sip_uri("9999")).await.unwrap();
    let closed = ua
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        closed.param.contains("404"),
        "baresip's CALL_CLOSED: {:?}",
        closed.param
    );
    ua.quit().await.unwrap();
    assert_no_live_calls(&pbx).await;
}

async fn assert_no_live_calls(pbx: &Pbx) {
    let (status, body): (u16, Value) = pbx.api().calls().await.unwrap();
    assert_eq!(status, 200, "{body}");
    pbx.api()
        .wait_no_live_calls(Duration::from_secs(5))
        .await
        .unwrap();
}
