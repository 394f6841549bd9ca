//! Issue 4, events: the websocket stream during a real baresip call (all events of the call,
//! in order, with a filtered second socket that sees none of them), the same events from
//! `GET /v1/calls/{id}/events`, and a signed webhook that fails twice and is retried in
//! order.

use std::time::Duration;

use pbx_tests::{EventStream, HttpRecorder, Sipp, list_of, str_field, verify_signature};
use serde_json::{Value, json};

use crate::common::{
    ESTABLISH_TIMEOUT, HELLO, assert_in_order, assert_sipp_ok, caller, event_id, event_type,
    finished_call, pbx_with_args, pbx_with_hello, sipp_call_id,
};

/// How long an event may take from the call to the socket or the webhook.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

fn is_end(event: &Value) -> bool {
    matches!(event_type(event), "CALL_FINISHED" | "CALL_FAILED")
}

/// The websocket delivers the call's events live and in order; a socket filtered to
/// DTMF_COLLECTED gets none of them; the call's event history says the same.
#[tokio::test]
async fn websocket_streams_a_real_call_in_order() {
    let (pbx, hello) = pbx_with_hello().await;
    let api = pbx.api();
    let mut all = EventStream::connect(&api, "").await.unwrap();
    let mut dtmf_only = EventStream::connect(&api, "types=DTMF_COLLECTED")
        .await
        .unwrap();

    let mut ua = caller().await;
    ua.dial(&pbx.sip_uri(HELLO)).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT)
        .await
        .unwrap();
    // hello greets once answered; hang up after the greeting has been spoken.
    let said = all
        .wait_for(EVENT_TIMEOUT, |e| event_type(e) == "SAY_FINISHED")
        .await
        .unwrap();
    let call_id = str_field(&said, "call_id").to_string();
    assert!(!call_id.is_empty(), "SAY_FINISHED without call_id: {said}");
    ua.hangup().await.unwrap();
    ua.wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap();
    ua.quit().await.unwrap();
    all.wait_for(EVENT_TIMEOUT, |e| {
        str_field(e, "call_id") == call_id && is_end(e)
    })
    .await
    .unwrap();

    let streamed: Vec<Value> = all
        .received()
        .iter()
        .filter(|e| str_field(e, "call_id") == call_id)
        .cloned()
        .collect();
    let context = format!("streamed: {}", Value::Array(streamed.clone()));
    let types: Vec<&str> = streamed.iter().map(event_type).collect();
    assert_in_order(
        &types,
        &[
            "CALL_RECEIVED",
            "CALL_ESTABLISHED",
            "SAY_FINISHED",
            "CALL_FINISHED",
        ],
        &context,
    );
    for pair in streamed.windows(2) {
        assert!(
            event_id(&pair[0]) < event_id(&pair[1]),
            "ids not increasing: {} then {}; {context}",
            pair[0],
            pair[1]
        );
    }
    for event in &streamed {
        assert_eq!(str_field(event, "app_id"), hello.app_id, "{event}");
        assert!(event_id(event) > 0, "event without id: {event}");
        assert!(
            event.get("timestamp").is_some_and(|t| !t.is_null()),
            "event without timestamp: {event}"
        );
    }
    let record = finished_call(&pbx, HELLO, None).await;
    assert_eq!(str_field(&record, "id"), call_id, "{record}");

    dtmf_only.drain_for(Duration::from_secs(1)).await.unwrap();
    assert!(
        dtmf_only
            .received()
            .iter()
            .all(|e| event_type(e) == "DTMF_COLLECTED"),
        "the DTMF_COLLECTED socket got other types: {:?}",
        dtmf_only.received()
    );
    assert!(
        dtmf_only.received().is_empty(),
        "no digit was collected, yet: {:?}",
        dtmf_only.received()
    );

    let (status, body) = api
        .get(&format!("/v1/calls/{call_id}/events"))
        .await
        .unwrap();
    assert_eq!(status, 200, "GET /v1/calls/{call_id}/events: {body}");
    let history = list_of(&body, "events");
    let ids = |events: &[Value]| -> Vec<(i64, String)> {
        events
            .iter()
            .map(|e| (event_id(e), event_type(e).to_string()))
            .collect()
    };
    assert_eq!(
        ids(&history),
        ids(&streamed),
        "the call's event history differs from the stream; history: {body}; {context}"
    );
    all.close().await;
    dtmf_only.close().await;
}

/// A webhook for CALL_RECEIVED/FINISHED/FAILED on a local server that fails the first two
/// deliveries with 500: the third attempt is accepted, every request is signed with the
/// secret from the create answer, CALL_FINISHED is not sent before CALL_RECEIVED got
/// through, and the delivery log says 3 attempts and delivered.
#[tokio::test]
async fn signed_webhook_is_retried_in_order() {
    // The receiver listens on loopback, which webhooks may reach only when allowed.
    let (pbx, _) = pbx_with_args(
        &[
            "--webhook-retry-ms",
            "100",
            "--allow-private-networks",
            "127.0.0.0/8",
        ],
        &[("hello", HELLO)],
    )
    .await;
    let api = pbx.api();
    let receiver = HttpRecorder::start(|_, n| {
        if n < 2 {
            (500, "try again".into())
        } else {
            (200, "ok".into())
        }
    })
    .await
    .unwrap();
    let (status, webhook) = api
        .post_json(
            "/v1/webhooks",
            &json!({
                "url": receiver.url("/hook"),
                "event_types": ["CALL_RECEIVED", "CALL_FINISHED", "CALL_FAILED"],
            }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "POST /v1/webhooks: {webhook}");
    let webhook_id = str_field(&webhook, "id").to_string();
    let secret = str_field(&webhook, "secret").to_string();
    assert!(secret.starts_with("whsec_"), "create answer: {webhook}");

    let run = Sipp::uac(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    let record = finished_call(&pbx, HELLO, sipp_call_id(&run).as_deref()).await;
    let call_id = str_field(&record, "id").to_string();

    let requests = receiver
        .wait_until(EVENT_TIMEOUT, |r| {
            r.iter().skip(2).any(|q| {
                let event = q.json();
                str_field(&event, "call_id") == call_id && is_end(&event)
            })
        })
        .await
        .unwrap();
    let described: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                r.path,
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect();
    let context = format!("requests: {described:#?}");
    for request in &requests {
        assert_eq!(request.method, "POST", "{context}");
        assert_eq!(request.path, "/hook", "{context}");
        let signature = request
            .header("pbx-signature")
            .unwrap_or_else(|| panic!("no Pbx-Signature header; {context}"));
        let t = verify_signature(&secret, signature, &request.body)
            .unwrap_or_else(|e| panic!("bad signature: {e}; {context}"));
        assert_eq!(
            request.header("pbx-timestamp"),
            Some(t.to_string().as_str()),
            "Pbx-Timestamp differs from the signature's t; {context}"
        );
        let event = request.json();
        assert_eq!(
            request.header("pbx-event-type"),
            Some(event_type(&event)),
            "{context}"
        );
        assert_eq!(
            request.header("pbx-event-id"),
            Some(event_id(&event).to_string().as_str()),
            "{context}"
        );
    }
    // The first three requests are one event (CALL_RECEIVED) tried three times.
    let first = requests[0].json();
    assert_eq!(event_type(&first), "CALL_RECEIVED", "{context}");
    assert_eq!(str_field(&first, "call_id"), call_id, "{context}");
    for retry in &requests[1..3] {
        assert_eq!(
            retry.body, requests[0].body,
            "a retry changed the body; {context}"
        );
    }
    let finished = requests[3].json();
    assert!(
        is_end(&finished),
        "the 4th request is not the call's end; {context}"
    );
    assert!(
        event_id(&finished) > event_id(&first),
        "event ids out of order; {context}"
    );
    let delays: Vec<Duration> = requests
        .windows(2)
        .take(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect();
    assert!(
        delays[0] >= Duration::from_millis(80) && delays[1] >= Duration::from_millis(160),
        "retries not backed off (100 ms base, doubling): {delays:?}"
    );

    // The log is written once each answer is in: wait until the last delivery is settled.
    let path = format!("/v1/webhooks/{webhook_id}/deliveries");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = api.get(&path).await.unwrap();
        let settled = status == 200
            && list_of(&body, "deliveries")
                .iter()
                .all(|d| d.get("status").and_then(Value::as_str) != Some("pending"));
        if settled || tokio::time::Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 200, "deliveries: {body}");
    let deliveries = list_of(&body, "deliveries");
    let of = |event: &Value| {
        deliveries
            .iter()
            .find(|d| d.get("event_id").and_then(Value::as_i64) == Some(event_id(event)))
            .cloned()
            .unwrap_or_else(|| panic!("no delivery of event {event}: {body}"))
    };
    let received = of(&first);
    assert_eq!(str_field(&received, "status"), "delivered", "{received}");
    assert_eq!(received.get("attempts"), Some(&json!(3)), "{received}");
    assert_eq!(received.get("http_status"), Some(&json!(200)), "{received}");
    let ended = of(&finished);
    assert_eq!(str_field(&ended, "status"), "delivered", "{ended}");
    assert_eq!(ended.get("attempts"), Some(&json!(1)), "{ended}");
}
