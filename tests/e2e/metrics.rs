//! Issue 4, operations: after one call, `GET /metrics` (no token) is Prometheus text with the
//! call counters, the event dispatch latency histogram and the active-call gauge.

use pbx_tests::Sipp;

use crate::common::{HELLO, assert_sipp_ok, finished_call, pbx_with_hello, sipp_call_id};

/// The sum of every sample of `name` (any labels), if there is one: every metric is exported
/// at 0 from start-up, so one labelled series alone says nothing.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .fold(None, |sum, v| Some(sum.unwrap_or(0.0) + v))
}

#[tokio::test]
async fn metrics_after_one_call() {
    let (pbx, _) = pbx_with_hello().await;
    let run = Sipp::uac(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    finished_call(&pbx, HELLO, sipp_call_id(&run).as_deref()).await;

    let (status, text) = pbx
        .api()
        .get_text_unauthenticated("/metrics")
        .await
        .unwrap();
    assert_eq!(status, 200, "GET /metrics without a token: {text}");
    for name in [
        "pbx_call_attempts_total",
        "pbx_call_outcomes_total",
        "pbx_event_dispatch_seconds_bucket",
        "pbx_active_calls",
    ] {
        assert!(
            sample(&text, name).is_some(),
            "no {name} sample in /metrics:\n{text}"
        );
    }
    assert!(
        sample(&text, "pbx_call_attempts_total").is_some_and(|v| v >= 1.0),
        "one call was attempted:\n{text}"
    );
}
