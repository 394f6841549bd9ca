//! Issue 4, draining: after SIGTERM new INVITEs get 503 and `/healthz` answers 503, live
//! calls finish normally, and the process exits by itself once they ended; a second signal
//! stops at once, hanging the live call up with reason `admin`.

use std::time::{Duration, Instant};

use pbx_tests::{Pbx, Sipp, scenarios, str_field};
use rustix::process::Signal;

use crate::common::{HELLO, assert_ended, assert_sipp_ok, hold_call, pbx_with_args};

/// Polls `/healthz` until it answers `status`, at most `timeout`.
async fn wait_health(pbx: &Pbx, status: u16, timeout: Duration) {
    let api = pbx.api();
    let deadline = Instant::now() + timeout;
    let mut last = None;
    while Instant::now() < deadline {
        match api.healthz().await {
            Ok((s, _)) if s == status => return,
            other => last = Some(format!("{other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/healthz never answered {status} within {timeout:?}; last: {last:?}");
}

/// The history row of the one call to hello, read after a restart on the same data dir.
async fn history_after_restart(pbx: &mut Pbx, call_id: &str) -> serde_json::Value {
    pbx.restart().await.unwrap();
    pbx.api()
        .wait_history(Duration::from_secs(10), |c| str_field(c, "id") == call_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn sigterm_drains_live_calls_then_exits() {
    let (mut pbx, _) = pbx_with_args(&["--drain-timeout", "20"], &[("hello", HELLO)]).await;
    let api = pbx.api();
    let holding = hold_call(&pbx, HELLO, Duration::from_secs(6))
        .spawn()
        .await
        .unwrap();
    let live = api
        .wait_live_calls(Duration::from_secs(10), |calls| calls.len() == 1)
        .await
        .unwrap();
    let call_id = str_field(&live[0], "id").to_string();

    pbx.signal(Signal::TERM).unwrap();
    wait_health(&pbx, 503, Duration::from_secs(5)).await;
    let refused = Sipp::custom(
        "refused",
        scenarios::expect_final(503),
        pbx.sip_addr(),
        HELLO,
    )
    .run()
    .await
    .unwrap();
    assert_sipp_ok(&refused, 1);
    pbx.ensure_running()
        .unwrap_or_else(|e| panic!("pbx stopped while a call was live: {e}"));

    let run = holding.finish().await.unwrap();
    assert_sipp_ok(&run, 1);
    assert!(run.received_response(200, "BYE"), "{}", run.report());
    let ended = Instant::now();
    let status = pbx.wait_exit(Duration::from_secs(10)).await.unwrap();
    eprintln!(
        "pbx exited {:?} after the last call ended with {status}",
        ended.elapsed()
    );
    assert!(status.success(), "pbx exit status after draining: {status}");

    let record = history_after_restart(&mut pbx, &call_id).await;
    assert_ended(&record, "remote", "normal");
}

#[tokio::test]
async fn second_sigterm_stops_at_once() {
    let (mut pbx, _) = pbx_with_args(&["--drain-timeout", "60"], &[("hello", HELLO)]).await;
    let api = pbx.api();
    let holding = hold_call(&pbx, HELLO, Duration::from_secs(40))
        .spawn()
        .await
        .unwrap();
    let live = api
        .wait_live_calls(Duration::from_secs(10), |calls| calls.len() == 1)
        .await
        .unwrap();
    let call_id = str_field(&live[0], "id").to_string();

    pbx.signal(Signal::TERM).unwrap();
    wait_health(&pbx, 503, Duration::from_secs(5)).await;
    let second = Instant::now();
    pbx.signal(Signal::TERM).unwrap();
    let status = pbx.wait_exit(Duration::from_secs(8)).await.unwrap();
    let took = second.elapsed();
    eprintln!("pbx exited {took:?} after the second SIGTERM with {status}");
    assert!(
        took <= Duration::from_secs(4),
        "the second SIGTERM took {took:?} to stop the server"
    );
    // sipp got the server's BYE, which its scenario does not expect: only its end matters.
    let _ = holding.kill().await;

    let record = history_after_restart(&mut pbx, &call_id).await;
    assert_eq!(str_field(&record, "status"), "hangup", "{record}");
    assert_eq!(str_field(&record, "hangup_reason"), "admin", "{record}");
}
