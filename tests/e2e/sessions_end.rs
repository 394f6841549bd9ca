//! Issue 9 (hardening), the ways a session must end and give everything back:
//! - failing apps (trap, spin past the deadline, memory hog) release their sandbox slot and
//!   its memory: many more failing calls than the pool has slots, RSS back near its start,
//!   and hello still answers; a full pool answers 503 with Retry-After and a metric, and the
//!   call already running is untouched;
//! - a vanished peer: an answered call with no RTP ends with reason `timeout`, one whose peer
//!   holds (sends nothing by its own SDP) does not; the maximum call length ends a call;
//! - INVITEs to numbers that reach no app are counted, not written to call history;
//! - RTP ports come from `--rtp-ports` and go back when a call ends.

use std::time::Duration;

use pbx_tests::{Pbx, Sipp, SippRun, scenarios, str_field};

use crate::common::{HELLO, assert_ended, assert_sipp_ok, finished_call, pbx_with_args};

/// The value of the sample of `name` with exactly `labels` (`""` for none), or 0 if absent.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until a live call to `number` is answered and returns it.
async fn answered_live_call(pbx: &Pbx, number: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = pbx.api().calls().await.unwrap();
        if let Some(call) = pbx_tests::list_of(&body, "calls")
            .into_iter()
            .find(|c| str_field(c, "to") == number && str_field(c, "status") == "progressing")
        {
            return call;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answered live call to {number}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sipp call to `number` that waits for the pbx to end it (or refuses to be answered).
fn waiting_call(pbx: &Pbx, name: &str, number: &str, timeout: Duration) -> Sipp {
    Sipp::custom(
        name,
        scenarios::answer_then_wait_bye(),
        pbx.sip_addr(),
        number,
    )
    .timeout(timeout)
}

/// Hangs up a live call through the admin API.
async fn hang_up(pbx: &Pbx, call: &serde_json::Value) {
    let id = str_field(call, "id");
    let (status, body) = pbx
        .api()
        .post_empty(&format!("/v1/calls/{id}/hangup"))
        .await
        .unwrap();
    assert!(status < 300, "{status} {body}");
}

async fn metrics(pbx: &Pbx) -> String {
    let (status, text) = pbx
        .api()
        .get_text_unauthenticated("/metrics")
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    text
}

/// The server's resident set size in KiB, from `/proc/PID/status`.
fn rss_kib(pbx: &Pbx) -> u64 {
    let pid = pbx.pid().expect("pbx runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// `calls` calls to `number`, at most two at a time, each refused or hung up by the pbx.
async fn failing_calls(pbx: &Pbx, number: &str, calls: u32) -> SippRun {
    waiting_call(
        pbx,
        &format!("failing_{number}"),
        number,
        Duration::from_secs(60 + u64::from(calls) / 5),
    )
    .calls(calls)
    .arg("-l")
    .arg("2")
    .arg("-r")
    .arg("200")
    .run()
    .await
    .unwrap()
}

/// Six sandbox slots, 40 (or `PBX_SOAK_CALLS`) failing sessions of each kind: a leaked slot would turn later calls
/// into refusals (`pbx_app_pool_exhausted_total`), and a leaked 64 MiB memory would show in
/// RSS. Every failing call must end as `app-error`, and hello must still answer.
#[tokio::test]
async fn failing_apps_give_back_their_slots_and_memory() {
    // `PBX_SOAK_CALLS=5000` runs the issue's soak (docs/benchmarks.md); CI runs 40 of each.
    let calls: u32 = std::env::var("PBX_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let faulty = [("trap", "1001"), ("spin", "1002"), ("hog", "1003")];
    let mut apps = vec![("hello", HELLO)];
    apps.extend(faulty);
    let (pbx, deployed) = pbx_with_args(&["--max-app-instances", "6"], &apps).await;
    // The spinner's deadline at its floor, so that thousands of spins take seconds, not
    // minutes; the hog keeps the server's 64 MiB cap, the worst case for leaked memory.
    let spin = &deployed[2].app_id;
    let (status, body) = pbx
        .api()
        .put_json(
            &format!("/v1/apps/{spin}/settings"),
            &serde_json::json!({ "event_deadline_ms": 10 }),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // Warm up: each kind once, so caches, code and the allocator's pools are in place.
    for (_, number) in faulty {
        let run = failing_calls(&pbx, number, 2).await;
        assert_sipp_ok(&run, 2);
    }
    let before = rss_kib(&pbx);
    for (app, number) in faulty {
        let run = failing_calls(&pbx, number, calls).await;
        assert_sipp_ok(&run, u64::from(calls));
        let refused = run
            .messages
            .iter()
            .filter(|m| m.status() == Some(503))
            .count();
        assert_eq!(refused, 0, "{app}: calls were refused for want of a slot");
    }
    let text = metrics(&pbx).await;
    assert_eq!(
        sample(&text, "pbx_app_pool_exhausted_total", ""),
        0.0,
        "{text}"
    );
    let total = f64::from(calls + 2);
    assert_eq!(sample(&text, "pbx_app_traps_total", ""), total, "{text}");
    assert_eq!(
        sample(&text, "pbx_app_deadline_hits_total", ""),
        total,
        "{text}"
    );
    assert_eq!(
        sample(&text, "pbx_app_failures_total", "kind=\"out_of_memory\""),
        total,
        "{text}"
    );
    // Every slot is free again: six calls to hello at once all answer.
    let hello = Sipp::uac(pbx.sip_addr(), HELLO)
        .calls(6)
        .arg("-l")
        .arg("6")
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&hello, 6);
    let after = rss_kib(&pbx);
    assert!(
        after <= before + before / 10,
        "RSS grew from {before} KiB to {after} KiB over {} failing calls",
        3 * calls
    );
    eprintln!(
        "soak: {} failing calls; RSS {before} KiB after warm-up, {after} KiB at the end",
        3 * calls
    );
}

/// A minimal INVITE with an SDP offer, sent from `local` over UDP.
fn invite(local: std::net::SocketAddr, target: std::net::SocketAddr, number: &str) -> String {
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = local.ip()
    );
    format!(
        "INVITE sip:{number}@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-pool-{r:x};rport\r\n\
         From: <sip:probe@{local}>;tag=t{r:x}\r\n\
         To: <sip:{number}@{target}>\r\n\
         Call-ID: pool-{r:x}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:probe@{local}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        r = rand::random::<u64>(),
        len = sdp.len()
    )
}

/// One sandbox slot, taken by a live hello call: the next call is refused 503 with
/// Retry-After and counted; the live call goes on and ends normally.
#[tokio::test]
async fn a_full_pool_refuses_new_calls_with_503_and_retry_after() {
    let (pbx, _) = pbx_with_args(&["--max-app-instances", "1"], &[("hello", HELLO)]).await;
    // Held until the admin hangs it up below, however slow the machine.
    let live = waiting_call(&pbx, "live", HELLO, Duration::from_secs(60))
        .spawn()
        .await
        .unwrap();
    let call = answered_live_call(&pbx, HELLO).await;
    let target = pbx.sip_addr();
    let response = pbx_tests::sip_raw::request(
        target,
        pbx_tests::sip_raw::RawTransport::Udp,
        Duration::from_secs(10),
        |local| invite(local, target, HELLO),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 503, "{response:?}");
    assert!(
        response.header("Retry-After").is_some(),
        "503 without Retry-After: {response:?}"
    );
    // The call that held the slot was never disturbed: it is still up, and ends normally.
    let (status, body) = pbx.api().call(str_field(&call, "id")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(str_field(&body, "status"), "progressing", "{body}");
    hang_up(&pbx, &call).await;
    let run = live.finish().await.unwrap();
    assert_sipp_ok(&run, 1);
    let text = metrics(&pbx).await;
    assert_eq!(
        sample(&text, "pbx_app_pool_exhausted_total", ""),
        1.0,
        "{text}"
    );
}

/// A call answered by hello whose caller sends no RTP (sipp without media) ends after the
/// RTP timeout with reason `timeout`, hung up by the pbx.
#[tokio::test]
async fn a_silent_peer_is_hung_up_after_the_rtp_timeout() {
    let (pbx, _) = pbx_with_args(&["--rtp-timeout", "2"], &[("hello", HELLO)]).await;
    let started = std::time::Instant::now();
    let run = waiting_call(&pbx, "silent", HELLO, Duration::from_secs(30))
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    assert!(run.received_request("BYE"), "{}", run.report());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "hung up before the timeout"
    );
    let record = finished_call(&pbx, HELLO, crate::common::sipp_call_id(&run).as_deref()).await;
    assert_ended(&record, "local", "timeout");
    let text = metrics(&pbx).await;
    assert_eq!(
        sample(&text, "pbx_call_timeouts_total", "cause=\"rtp\""),
        1.0,
        "{text}"
    );
}

/// A peer whose SDP says it sends nothing (`a=recvonly`: it holds us) is not timed out.
#[tokio::test]
async fn a_holding_peer_is_not_timed_out() {
    let (pbx, _) = pbx_with_args(&["--rtp-timeout", "1"], &[("hello", HELLO)]).await;
    let scenario = scenarios::answer_then_wait_bye().replace("a=sendrecv", "a=recvonly");
    let sipp = Sipp::custom("holding", scenario, pbx.sip_addr(), HELLO)
        .timeout(Duration::from_secs(30))
        .spawn()
        .await
        .unwrap();
    let live = answered_live_call(&pbx, HELLO).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, call) = pbx.api().call(str_field(&live, "id")).await.unwrap();
    assert_eq!(status, 200, "{call}");
    assert_eq!(str_field(&call, "status"), "progressing", "{call}");
    // The admin ends it; the caller gets the BYE.
    hang_up(&pbx, &live).await;
    let run = sipp.finish().await.unwrap();
    assert_sipp_ok(&run, 1);
    let record = finished_call(&pbx, HELLO, crate::common::sipp_call_id(&run).as_deref()).await;
    assert_ended(&record, "local", "admin");
}

/// `--max-call-secs 2` ends an answered call after two seconds, with reason `timeout`, even
/// though RTP never matters (the RTP timeout is off).
#[tokio::test]
async fn the_maximum_call_length_ends_a_call() {
    let (pbx, _) = pbx_with_args(
        &["--rtp-timeout", "0", "--max-call-secs", "2"],
        &[("hello", HELLO)],
    )
    .await;
    let run = waiting_call(&pbx, "max_length", HELLO, Duration::from_secs(30))
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    let record = finished_call(&pbx, HELLO, crate::common::sipp_call_id(&run).as_deref()).await;
    assert_ended(&record, "local", "timeout");
    let text = metrics(&pbx).await;
    assert_eq!(
        sample(&text, "pbx_call_timeouts_total", "cause=\"max_length\""),
        1.0,
        "{text}"
    );
}

/// 100 INVITEs from an unknown source to numbers that reach no app: each gets 404, none is
/// written to call history, and the metric counts them all.
#[tokio::test]
async fn invites_that_reach_no_app_leave_no_history() {
    let (pbx, _) = pbx_with_args(&[], &[("hello", HELLO)]).await;
    let run = waiting_call(&pbx, "stray", "99999", Duration::from_secs(60))
        .calls(100)
        .arg("-r")
        .arg("50")
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 100);
    assert!(
        run.messages
            .iter()
            .filter(|m| m.status() == Some(404))
            .count()
            >= 100,
        "{}",
        run.report()
    );
    let (status, history) = pbx.api().get("/v1/calls/history").await.unwrap();
    assert_eq!(status, 200, "{history}");
    assert!(
        !history.to_string().contains("99999"),
        "stray INVITEs were written to history: {history}"
    );
    let text = metrics(&pbx).await;
    assert_eq!(
        sample(&text, "pbx_calls_refused_total", "reason=\"no_route\""),
        100.0,
        "{text}"
    );
    // A routed call is still written to history.
    let run = Sipp::uac(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    finished_call(&pbx, HELLO, crate::common::sipp_call_id(&run).as_deref()).await;
}

/// `--rtp-ports` with one even port: the first call's SDP answer offers that port, a second
/// call while it lasts gets 503 (no port), and once the first ends the port is used again.
#[tokio::test]
async fn rtp_ports_come_from_the_configured_range_and_go_back() {
    let base = pbx_tests::net::free_port_block(2).unwrap();
    let range = format!("{base}-{}", base + 1);
    let (pbx, _) = pbx_with_args(&["--rtp-ports", &range], &[("hello", HELLO)]).await;
    let first = waiting_call(&pbx, "first", HELLO, Duration::from_secs(60))
        .spawn()
        .await
        .unwrap();
    let call = answered_live_call(&pbx, HELLO).await;
    let second = waiting_call(&pbx, "second", HELLO, Duration::from_secs(30))
        .run()
        .await
        .unwrap();
    assert_eq!(
        second.final_status("INVITE"),
        Some(503),
        "{}",
        second.report()
    );
    hang_up(&pbx, &call).await;
    let first = first.finish().await.unwrap();
    assert_sipp_ok(&first, 1);
    let answer = format!("m=audio {base} RTP/AVP");
    assert!(
        first.message_log.contains(&answer),
        "the answer should offer port {base}:\n{}",
        first.message_log
    );
    // The port is free again: a third call is answered on it.
    let third = waiting_call(&pbx, "third", HELLO, Duration::from_secs(60))
        .spawn()
        .await
        .unwrap();
    let call = answered_live_call(&pbx, HELLO).await;
    hang_up(&pbx, &call).await;
    let third = third.finish().await.unwrap();
    assert_sipp_ok(&third, 1);
    assert!(third.message_log.contains(&answer), "{}", third.message_log);
}
