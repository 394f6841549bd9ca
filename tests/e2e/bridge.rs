//! Bridges with real phones (the `bridge` fixture): each side hears the other; the API shows
//! the master and chained legs; dial-and-connect answers the caller only when the callee does;
//! hold plays music to the held party and suspends the bridge; a blind transfer hands the
//! caller to a third party; a stereo bridge recording holds one party per channel.

use std::time::{Duration, Instant};

use pbx_tests::{Audio, TONES, calls_of, str_field};

use crate::control::{
    CLOSE_TIMEOUT, SETTLE, assert_tones, caller, finish_all, heard, manual_user, pbx_with, user,
    wait_log, wait_log_count,
};

/// The number the tests bind the bridge fixture to; "dac" selects dial-and-connect.
const BRIDGE: &str = "2100";

/// Caller (tone A) → bridge → callee (tone B): each hears the other and not itself, and while
/// they talk `/v1/calls` shows the callee's leg chained to the caller's.
#[tokio::test]
async fn bridge_each_side_hears_the_other() {
    let (pbx, _) = pbx_with(&[("bridge", BRIDGE)]).await;
    let (a, b) = (TONES[0], TONES[4]);
    let mut callee = user(&pbx, "callee", b).await;
    let mut caller = caller().await;
    caller.call_number(&pbx, BRIDGE).await.unwrap();
    callee.wait_established().await.unwrap();
    caller.wait_established().await.unwrap();
    wait_log(&pbx, "bridged").await;
    let calls = pbx
        .api()
        .wait_live_calls(Duration::from_secs(5), |c| c.len() == 2)
        .await
        .unwrap();
    let inbound = calls
        .iter()
        .find(|c| str_field(c, "direction") == "inbound")
        .unwrap_or_else(|| panic!("no inbound leg: {calls:?}"));
    let outbound = calls
        .iter()
        .find(|c| str_field(c, "direction") == "outbound")
        .unwrap_or_else(|| panic!("no outbound leg: {calls:?}"));
    assert_eq!(
        str_field(outbound, "master_call_id"),
        str_field(inbound, "id"),
        "{calls:?}"
    );
    assert!(
        inbound["chained_call_ids"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|id| id == &outbound["id"])),
        "{calls:?}"
    );
    caller.talk(Duration::from_secs(4)).await.unwrap();
    caller.hangup().await.unwrap();
    callee.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    finish_all(&mut [&mut caller, &mut callee]).await;
    assert_tones("caller", &caller.heard().unwrap().steady(), &[b], &[a]);
    assert_tones("callee", &callee.heard().unwrap().steady(), &[a], &[b]);
    pbx.api().wait_no_live_calls(CLOSE_TIMEOUT).await.unwrap();
    let (_, history) = pbx.api().history().await.unwrap();
    assert_eq!(calls_of(&history).len(), 2, "{history}");
}

/// Dial-and-connect: the caller is not answered while the callee rings, then both are
/// connected and hear each other.
#[tokio::test]
async fn dial_and_connect_answers_the_caller_when_the_callee_answers() {
    let (pbx, _) = pbx_with(&[("bridge", "dac")]).await;
    let (a, b) = (TONES[1], TONES[3]);
    let mut callee = manual_user(&pbx, "callee", b).await;
    let mut caller = pbx_tests::Party::start("caller", a, pbx_tests::AnswerMode::Manual)
        .await
        .unwrap();
    caller.call_number(&pbx, "dac").await.unwrap();
    callee.wait_incoming().await.unwrap();
    caller.talk(Duration::from_secs(2)).await.unwrap();
    assert!(
        !caller.ua().saw("CALL_ESTABLISHED"),
        "the caller was answered before the callee: {}",
        caller.ua().event_summary()
    );
    callee.ua().accept().await.unwrap();
    callee.wait_established().await.unwrap();
    caller.wait_established().await.unwrap();
    caller.talk(Duration::from_secs(4)).await.unwrap();
    callee.hangup().await.unwrap();
    caller.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    finish_all(&mut [&mut caller, &mut callee]).await;
    assert_tones("caller", &caller.heard().unwrap().steady(), &[b], &[a]);
    assert_tones("callee", &callee.heard().unwrap().steady(), &[a], &[b]);
}

/// Hold (key 4) and resume (key 5). What the held callee hears is taken from the pbx's own
/// recording of its leg (key 8 starts one, key 0 stops it; a leg recording holds what the
/// party says and what the pbx sends it), because baresip 1.0 stops recording what it hears
/// after a re-INVITE (`harness_hold_stops_baresip_recording`). While held: the callee's leg
/// carries music and neither tone (the caller's is cut, the callee went recvonly), and the
/// caller does not hear the callee. After resume: the callee's leg carries both tones and the
/// caller hears the callee again.
#[tokio::test]
async fn hold_plays_music_and_resume_restores_the_bridge() {
    let (pbx, _) = pbx_with(&[("bridge", BRIDGE)]).await;
    // The two tones furthest from the notes of the built-in music and their harmonics (440 Hz
    // notes with 15 ms attacks leak to -48 dBFS at 453 Hz).
    let (a, b) = (TONES[4], TONES[2]);
    let mut callee = user(&pbx, "callee", b).await;
    let mut caller = pbx_tests::Party::start("caller", a, pbx_tests::AnswerMode::Manual)
        .await
        .unwrap();
    caller.call_number(&pbx, BRIDGE).await.unwrap();
    callee.wait_established().await.unwrap();
    caller.wait_established().await.unwrap();
    wait_log(&pbx, "bridged").await;
    caller.talk(Duration::from_secs(3)).await.unwrap();
    let hold_at = Instant::now();
    caller.send_dtmf("4").await.unwrap();
    wait_log(&pbx, "holding").await;
    caller.talk(SETTLE).await.unwrap();
    caller.send_dtmf("8").await.unwrap();
    wait_log_count(&pbx, "recording rec_", 1).await;
    caller.talk(Duration::from_secs(3)).await.unwrap();
    caller.send_dtmf("0").await.unwrap();
    wait_log_count(&pbx, "recording ready", 1).await;
    let resume_at = Instant::now();
    caller.send_dtmf("5").await.unwrap();
    wait_log(&pbx, "resumed").await;
    caller.talk(SETTLE).await.unwrap();
    caller.send_dtmf("8").await.unwrap();
    wait_log_count(&pbx, "recording rec_", 2).await;
    caller.talk(Duration::from_secs(3)).await.unwrap();
    caller.send_dtmf("0").await.unwrap();
    wait_log_count(&pbx, "recording ready", 2).await;
    let end = Instant::now();
    finish_all(&mut [&mut caller, &mut callee]).await;

    let ids = logged_recording_ids(&pbx);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let api = pbx.api();
    let held_leg = Audio::channels_from_bytes(&api.recording_file(&ids[0]).await.unwrap())
        .unwrap()
        .remove(0);
    let held_leg = held_leg.slice(Duration::from_millis(300), Duration::from_secs(2));
    assert_tones("the held callee's leg", &held_leg, &[], &[a, b]);
    assert!(
        held_leg.rms_dbfs() > -45.0,
        "the held callee should get music, its leg has {:.1} dBFS",
        held_leg.rms_dbfs()
    );
    let resumed_leg = Audio::channels_from_bytes(&api.recording_file(&ids[1]).await.unwrap())
        .unwrap()
        .remove(0);
    let resumed_leg = resumed_leg.slice(Duration::from_millis(300), Duration::from_secs(2));
    assert_tones("the resumed callee's leg", &resumed_leg, &[a, b], &[]);

    let start = caller.established_at().unwrap() + SETTLE;
    assert_tones(
        "caller before hold",
        &heard(&caller, start, hold_at - Duration::from_millis(200)),
        &[b],
        &[a],
    );
    assert_tones(
        "caller while the callee is held",
        &heard(&caller, hold_at + SETTLE, resume_at),
        &[],
        &[a, b],
    );
    assert_tones(
        "caller after resume",
        &heard(
            &caller,
            resume_at + SETTLE,
            end - Duration::from_millis(300),
        ),
        &[b],
        &[a],
    );
}

/// The recording ids the bridge fixture logged (`recording rec_...`), in order.
fn logged_recording_ids(pbx: &pbx_tests::Pbx) -> Vec<String> {
    pbx.log_text()
        .split("recording ")
        .skip(1)
        .filter(|rest| rest.starts_with("rec_"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Blind transfer (key 7): the callee is hung up, user `third` is dialled for the caller, and
/// the caller and third party then hear each other (and not the old callee).
#[tokio::test]
async fn blind_transfer_hands_the_caller_to_a_third_party() {
    let (pbx, _) = pbx_with(&[("bridge", BRIDGE)]).await;
    let (a, b, c) = (TONES[0], TONES[2], TONES[4]);
    let mut callee = user(&pbx, "callee", b).await;
    let mut third = user(&pbx, "third", c).await;
    let mut caller = caller().await;
    caller.call_number(&pbx, BRIDGE).await.unwrap();
    callee.wait_established().await.unwrap();
    caller.wait_established().await.unwrap();
    wait_log(&pbx, "bridged").await;
    caller.talk(Duration::from_secs(2)).await.unwrap();
    caller.send_dtmf("7").await.unwrap();
    wait_log(&pbx, "transferring to third").await;
    callee.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    let third_up = third.wait_established().await.unwrap();
    caller.talk(Duration::from_secs(4)).await.unwrap();
    let end = Instant::now();
    caller.hangup().await.unwrap();
    third.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    finish_all(&mut [&mut caller, &mut callee, &mut third]).await;
    let after = heard(&caller, third_up + SETTLE, end - Duration::from_millis(300));
    assert_tones("caller after the transfer", &after, &[c], &[a, b]);
    assert_tones(
        "third party",
        &third.heard().unwrap().steady(),
        &[a],
        &[b, c],
    );
}

/// A stereo recording of the bridge (key 9 starts, key 0 stops): it appears in
/// `/v1/recordings`, and its WAV has the caller (the first party) on the left and the callee
/// on the right.
#[tokio::test]
async fn stereo_bridge_recording_has_one_party_per_channel() {
    let (pbx, _) = pbx_with(&[("bridge", BRIDGE)]).await;
    let (a, b) = (TONES[1], TONES[3]);
    let mut callee = user(&pbx, "callee", b).await;
    let mut caller = pbx_tests::Party::start("caller", a, pbx_tests::AnswerMode::Manual)
        .await
        .unwrap();
    caller.call_number(&pbx, BRIDGE).await.unwrap();
    callee.wait_established().await.unwrap();
    caller.wait_established().await.unwrap();
    wait_log(&pbx, "bridged").await;
    caller.talk(Duration::from_secs(1)).await.unwrap();
    caller.send_dtmf("9").await.unwrap();
    wait_log(&pbx, "recording rec_").await;
    caller.talk(Duration::from_secs(4)).await.unwrap();
    caller.send_dtmf("0").await.unwrap();
    wait_log(&pbx, "recording ready").await;
    let api = pbx.api();
    let recording = api
        .wait_recording_ready(Duration::from_secs(5))
        .await
        .unwrap();
    let id = str_field(&recording, "id").to_string();
    finish_all(&mut [&mut caller, &mut callee]).await;
    let bytes = api.recording_file(&id).await.unwrap();
    let channels = Audio::channels_from_bytes(&bytes).unwrap();
    assert_eq!(channels.len(), 2, "a stereo recording: {recording}");
    assert!(
        channels[0].duration() >= Duration::from_secs(3),
        "recording too short: {:?} ({recording})",
        channels[0].duration()
    );
    let left = channels[0].slice(Duration::from_millis(500), Duration::from_secs(3));
    let right = channels[1].slice(Duration::from_millis(500), Duration::from_secs(3));
    assert_tones("recording, left", &left, &[a], &[b]);
    assert_tones("recording, right", &right, &[b], &[a]);
    let (status, filtered) = api
        .recordings(Some(str_field(&recording, "call_id")), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{filtered}");
    assert!(filtered.to_string().contains(&id), "{filtered}");
}
