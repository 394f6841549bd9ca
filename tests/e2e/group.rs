//! Group calls with the `follow-me` example: ring-all to alice and bob (bob answers, alice's
//! phone is cancelled, caller and bob talk), and nobody taking the call (a voicemail
//! recording of the caller lands in `/v1/recordings`).

use std::time::Duration;

use pbx_tests::{Audio, TONES, str_field};

use crate::control::{
    CLOSE_TIMEOUT, assert_tones, caller, finish_all, manual_user, pbx_with, wait_log,
};

/// The number follow-me is bound to.
const FOLLOW_ME: &str = "4000";

/// Ring-all: alice and bob ring at once; bob answers, so alice's phone stops ringing (CANCEL)
/// without ever being answered, and the caller and bob hear each other.
#[tokio::test]
async fn ring_all_first_answer_wins_and_the_other_is_cancelled() {
    let (pbx, _) = pbx_with(&[("follow_me", FOLLOW_ME)]).await;
    let (a, b, c) = (TONES[0], TONES[1], TONES[2]);
    let mut alice = manual_user(&pbx, "alice", b).await;
    let mut bob = manual_user(&pbx, "bob", c).await;
    let mut caller = caller().await;
    caller.call_number(&pbx, FOLLOW_ME).await.unwrap();
    caller.wait_established().await.unwrap();
    alice.wait_incoming().await.unwrap();
    bob.wait_incoming().await.unwrap();
    bob.ua().accept().await.unwrap();
    bob.wait_established().await.unwrap();
    let closed = alice.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    assert!(
        !alice.ua().saw("CALL_ESTABLISHED"),
        "alice was connected: {}",
        alice.ua().event_summary()
    );
    eprintln!("alice's call closed: {}", closed.param);
    wait_log(&pbx, "connected to").await;
    caller.talk(Duration::from_secs(5)).await.unwrap();
    caller.hangup().await.unwrap();
    bob.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    finish_all(&mut [&mut caller, &mut alice, &mut bob]).await;
    let end = caller.heard().unwrap();
    let talk = end.slice(
        end.duration().saturating_sub(Duration::from_secs(4)),
        Duration::from_secs(3),
    );
    assert_tones("caller", &talk, &[c], &[a, b]);
    assert_tones("bob", &bob.heard().unwrap().steady(), &[a], &[b, c]);
}

/// Nobody takes the call (alice and bob decline the ring-all, carol declines the linear
/// stage): the caller is asked to leave a message, speaks (its tone) for a few seconds,
/// presses `#`, and the recording's WAV in `/v1/recordings` holds the tone.
#[tokio::test]
async fn nobody_answers_and_the_message_is_recorded() {
    let (pbx, _) = pbx_with(&[("follow_me", FOLLOW_ME)]).await;
    let tone = TONES[3];
    let mut alice = manual_user(&pbx, "alice", TONES[0]).await;
    let mut bob = manual_user(&pbx, "bob", TONES[1]).await;
    let mut carol = manual_user(&pbx, "carol", TONES[2]).await;
    let mut caller = pbx_tests::Party::start("caller", tone, pbx_tests::AnswerMode::Manual)
        .await
        .unwrap();
    caller.call_number(&pbx, FOLLOW_ME).await.unwrap();
    caller.wait_established().await.unwrap();
    // Hanging up a ringing call makes baresip decline it.
    for party in [&mut alice, &mut bob, &mut carol] {
        party.wait_incoming().await.unwrap();
        party.hangup().await.unwrap();
    }
    pbx.wait_for_log("voicemail recording", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    caller.talk(Duration::from_secs(4)).await.unwrap();
    caller.send_dtmf("#").await.unwrap();
    wait_log(&pbx, "recording ready").await;
    caller
        .wait_closed(Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("the app should hang up after thanking: {e}"));
    finish_all(&mut [&mut caller, &mut alice, &mut bob, &mut carol]).await;
    let api = pbx.api();
    let recording = api
        .wait_recording_ready(Duration::from_secs(5))
        .await
        .unwrap();
    let id = str_field(&recording, "id");
    let bytes = api.recording_file(id).await.unwrap();
    let channels = Audio::channels_from_bytes(&bytes).unwrap();
    assert_eq!(channels.len(), 1, "a mono recording: {recording}");
    let message = &channels[0];
    assert!(
        message.duration() >= Duration::from_secs(3),
        "message too short: {:?}",
        message.duration()
    );
    let middle = message.slice(Duration::from_millis(500), Duration::from_secs(2));
    middle.assert_hears("voicemail recording", tone);
}
