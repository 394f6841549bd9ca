//! Helpers shared by the call-control tests (bridges, conferences, transfers, groups,
//! recordings, originate, trunks): deploying the fixtures, waiting for app log lines, and
//! ending every party before its recording is read.

use std::time::{Duration, Instant};

use pbx_tests::{AnswerMode, Audio, Party, Pbx, TONES};

pub(crate) use crate::common::pbx_with;

/// How long an app log line may take to appear.
pub(crate) const LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call takes to close after the other side hung up.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long media needs after a change (bridge, join, hold) before its audio is steady.
pub(crate) const SETTLE: Duration = Duration::from_millis(1500);

/// Waits for `needle` in the pbx log, panicking with the log's tail otherwise.
pub(crate) async fn wait_log(pbx: &Pbx, needle: &str) {
    pbx.wait_for_log(needle, LOG_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until `needle` occurs at least `count` times in the pbx log.
pub(crate) async fn wait_log_count(pbx: &Pbx, needle: &str, count: usize) {
    let deadline = Instant::now() + LOG_TIMEOUT;
    while pbx.log_text().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "`{needle}` not {count} times in the pbx log within {LOG_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A standalone (unregistered) caller with tone `TONES[0]`.
pub(crate) async fn caller() -> Party {
    Party::start("caller", TONES[0], AnswerMode::Manual)
        .await
        .unwrap()
}

/// A registered SIP user with `tone` that answers by itself.
pub(crate) async fn user(pbx: &Pbx, name: &str, tone: u32) -> Party {
    Party::user(pbx, name, tone, AnswerMode::Auto)
        .await
        .unwrap()
}

/// A registered SIP user with `tone` that rings until told to answer.
pub(crate) async fn manual_user(pbx: &Pbx, name: &str, tone: u32) -> Party {
    Party::user(pbx, name, tone, AnswerMode::Manual)
        .await
        .unwrap()
}

/// Ends every party's call (hanging up where needed) and quits them, so their recordings
/// are complete.
pub(crate) async fn finish_all(parties: &mut [&mut Party]) {
    for party in parties.iter_mut() {
        party.finish().await.unwrap();
    }
}

/// What `party` heard from `from` to `to` (instants of the test's clock).
pub(crate) fn heard(party: &Party, from: Instant, to: Instant) -> Audio {
    party.heard_between(from, to).unwrap()
}

/// Panics unless `audio` holds every tone in `yes` and none in `no`.
pub(crate) fn assert_tones(what: &str, audio: &Audio, yes: &[u32], no: &[u32]) {
    eprintln!("{what}: {}", audio.tone_report(&TONES));
    for &hz in yes {
        audio.assert_hears(what, hz);
    }
    for &hz in no {
        audio.assert_not_hears(what, hz);
    }
}
