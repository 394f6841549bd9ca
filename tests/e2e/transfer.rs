//! Attended transfer with the `attended-transfer` example: the caller reaches the agent
//! (dial-and-connect), the agent presses `*2`, an extension and `#` to consult while the
//! caller hears music, then `#` completes (caller and colleague talk, the agent is hung up)
//! or `*` cancels (back to the caller).

use std::time::{Duration, Instant};

use pbx_tests::{Party, Pbx, TONES};

use crate::control::{
    CLOSE_TIMEOUT, SETTLE, assert_tones, caller, finish_all, heard, pbx_with, user, wait_log,
};

/// The number attended-transfer is bound to.
const DESK: &str = "5000";

/// Caller, agent (user `agent`) and colleague (user `201`), the agent consulting the colleague.
async fn consulting() -> (Pbx, Party, Party, Party, Instant) {
    let (pbx, _) = pbx_with(&[("attended_transfer", DESK)]).await;
    let mut agent = user(&pbx, "agent", TONES[2]).await;
    let mut colleague = user(&pbx, "201", TONES[4]).await;
    let mut caller = caller().await;
    caller.call_number(&pbx, DESK).await.unwrap();
    agent.wait_established().await.unwrap();
    caller.wait_established().await.unwrap();
    wait_log(&pbx, "agent answered").await;
    agent.talk(Duration::from_secs(1)).await.unwrap();
    agent.send_dtmf("*2").await.unwrap();
    agent.talk(Duration::from_millis(800)).await.unwrap();
    agent.send_dtmf("201#").await.unwrap();
    wait_log(&pbx, "consulting 201").await;
    colleague.wait_established().await.unwrap();
    let consult_at = Instant::now();
    agent.talk(Duration::from_secs(4)).await.unwrap();
    (pbx, caller, agent, colleague, consult_at)
}

/// `#` completes: the caller then talks with the colleague, the agent's call ends; while
/// consulting, the caller heard neither of them.
#[tokio::test]
async fn attended_transfer_completes() {
    let (pbx, mut caller, mut agent, mut colleague, consult_at) = consulting().await;
    let (a, b, c) = (caller.tone(), agent.tone(), colleague.tone());
    let complete_at = Instant::now();
    agent.send_dtmf("#").await.unwrap();
    wait_log(&pbx, "transfer completed").await;
    agent.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    caller.talk(Duration::from_secs(5)).await.unwrap();
    let end = Instant::now();
    caller.hangup().await.unwrap();
    colleague.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    finish_all(&mut [&mut caller, &mut agent, &mut colleague]).await;
    let waiting = heard(
        &caller,
        consult_at + Duration::from_millis(500),
        complete_at,
    );
    assert_tones("caller during the consultation", &waiting, &[], &[b, c]);
    assert!(
        waiting.rms_dbfs() > -45.0,
        "the caller should hear music while waiting, got {:.1} dBFS",
        waiting.rms_dbfs()
    );
    let consult = heard(&agent, consult_at + Duration::from_millis(500), complete_at);
    assert_tones("agent consulting", &consult, &[c], &[a]);
    let after = heard(
        &caller,
        complete_at + SETTLE,
        end - Duration::from_millis(300),
    );
    assert_tones("caller after the transfer", &after, &[c], &[a, b]);
    let colleague_end = heard(
        &colleague,
        complete_at + SETTLE,
        end - Duration::from_millis(300),
    );
    assert_tones(
        "colleague after the transfer",
        &colleague_end,
        &[a],
        &[b, c],
    );
}

/// `*` cancels: the colleague's call ends and the caller and agent hear each other again.
#[tokio::test]
async fn attended_transfer_cancelled_returns_to_the_caller() {
    let (pbx, mut caller, mut agent, mut colleague, _) = consulting().await;
    let (a, b, c) = (caller.tone(), agent.tone(), colleague.tone());
    let cancel_at = Instant::now();
    agent.send_dtmf("*").await.unwrap();
    wait_log(&pbx, "transfer cancelled").await;
    colleague.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    caller.talk(Duration::from_secs(5)).await.unwrap();
    let end = Instant::now();
    caller.hangup().await.unwrap();
    agent.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    finish_all(&mut [&mut caller, &mut agent, &mut colleague]).await;
    let after = heard(
        &caller,
        cancel_at + SETTLE,
        end - Duration::from_millis(300),
    );
    assert_tones("caller after the cancel", &after, &[b], &[a, c]);
    let agent_after = heard(&agent, cancel_at + SETTLE, end - Duration::from_millis(300));
    assert_tones("agent after the cancel", &agent_after, &[a], &[b, c]);
}
