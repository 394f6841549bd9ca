//! Conferences with real phones: the `party-line` fixture (N-1 mixing among four parties, a
//! muted participant, a deafened one) and the `conference-callback` example both ways.

use std::time::{Duration, Instant};

use pbx_tests::{Party, Pbx, TONES, list_of, str_field};

use crate::control::{
    CLOSE_TIMEOUT, LOG_TIMEOUT, assert_tones, caller, finish_all, heard, manual_user, pbx_with,
    user, wait_log,
};

/// The caller dials `number` (bound to party-line); p1..p3 answer; everyone talks for 5 s;
/// the caller hangs up. Returns the four parties (caller first) and the conference's API view
/// while all four were in it.
async fn party_line(number: &str) -> (Pbx, Vec<Party>, serde_json::Value) {
    let (pbx, _) = pbx_with(&[("party_line", number)]).await;
    let mut parties = vec![caller().await];
    for (i, name) in ["p1", "p2", "p3"].iter().enumerate() {
        parties.push(user(&pbx, name, TONES[i + 1]).await);
    }
    parties[0].call_number(&pbx, number).await.unwrap();
    for party in parties.iter_mut() {
        party.wait_established().await.unwrap();
    }
    let api = pbx.api();
    let live = api
        .wait_conferences(Duration::from_secs(5), |list| !list.is_empty())
        .await
        .unwrap();
    let id = str_field(&live[0], "id").to_string();
    let view = wait_participants(&pbx, &id, 4).await;
    parties[0].talk(Duration::from_secs(5)).await.unwrap();
    parties[0].hangup().await.unwrap();
    for party in parties.iter_mut().skip(1) {
        party.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    }
    let mut refs: Vec<&mut Party> = parties.iter_mut().collect();
    finish_all(&mut refs).await;
    // The conference ended with its last participant and is shown as finished.
    let deadline = Instant::now() + LOG_TIMEOUT;
    loop {
        let (status, after) = api.conference(&id).await.unwrap();
        if status == 200 && str_field(&after, "status") == "finished" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "conference {id} not finished: {status} {after}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (pbx, parties, view)
}

/// Polls `/v1/conferences/{id}` until it lists `count` participants; returns the view.
async fn wait_participants(pbx: &Pbx, id: &str, count: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, view) = pbx.api().conference(id).await.unwrap();
        if status == 200 && view["participants"].as_array().map(Vec::len) == Some(count) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "conference {id} never had {count} participants: {status} {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tones_of(parties: &[Party]) -> Vec<u32> {
    parties.iter().map(Party::tone).collect()
}

/// Four parties: each hears the three others and not itself; the API lists the four
/// participants.
#[tokio::test]
async fn conference_of_four_each_hears_all_others() {
    let (_pbx, parties, view) = party_line("room").await;
    assert_eq!(
        view["participants"].as_array().map(Vec::len),
        Some(4),
        "{view}"
    );
    let tones = tones_of(&parties);
    for party in &parties {
        let others: Vec<u32> = tones
            .iter()
            .copied()
            .filter(|t| *t != party.tone())
            .collect();
        assert_tones(
            party.name(),
            &party.heard().unwrap().steady(),
            &others,
            &[party.tone()],
        );
    }
}

/// p1 joins muted: nobody hears p1, and p1 still hears everyone; the API shows it muted.
#[tokio::test]
async fn muted_participant_is_heard_by_nobody() {
    let (_pbx, parties, view) = party_line("room-mute").await;
    let muted = view["participants"]
        .as_array()
        .map(|p| p.iter().filter(|x| x["muted"] == true).count());
    assert_eq!(muted, Some(1), "{view}");
    let tones = tones_of(&parties);
    let p1 = tones[1];
    for party in &parties {
        let audio = party.heard().unwrap().steady();
        let others: Vec<u32> = tones
            .iter()
            .copied()
            .filter(|t| *t != party.tone() && *t != p1)
            .collect();
        if party.tone() == p1 {
            assert_tones(party.name(), &audio, &others, &[p1]);
        } else {
            let mut not = vec![party.tone(), p1];
            not.dedup();
            assert_tones(party.name(), &audio, &others, &not);
        }
    }
}

/// p1 joins deafened: p1 hears nothing at all, while everyone else hears p1.
#[tokio::test]
async fn deafened_participant_hears_nothing() {
    let (_pbx, parties, _) = party_line("room-deaf").await;
    let tones = tones_of(&parties);
    let p1 = tones[1];
    for party in &parties {
        let audio = party.heard().unwrap().steady();
        if party.tone() == p1 {
            assert_tones(party.name(), &audio, &[], &tones);
            assert!(
                audio.rms_dbfs() < -50.0,
                "the deafened p1 hears {:.1} dBFS",
                audio.rms_dbfs()
            );
        } else {
            let others: Vec<u32> = tones
                .iter()
                .copied()
                .filter(|t| *t != party.tone())
                .collect();
            assert_tones(party.name(), &audio, &others, &[party.tone()]);
        }
    }
}

/// The number conference-callback is bound to; the callee is the SIP user of that name.
const CALLBACK: &str = "3000";

/// conference-callback, answered: the caller hears the greeting (speech), the callee answers
/// after a while, and then both hear each other in the conference.
#[tokio::test]
async fn conference_callback_connects_the_callee() {
    let (pbx, _) = pbx_with(&[("conference_callback", CALLBACK)]).await;
    let (a, b) = (TONES[0], TONES[3]);
    let mut callee = manual_user(&pbx, CALLBACK, b).await;
    let mut caller = caller().await;
    caller.call_number(&pbx, CALLBACK).await.unwrap();
    let up = caller.wait_established().await.unwrap();
    callee.wait_incoming().await.unwrap();
    caller.talk(Duration::from_secs(4)).await.unwrap();
    callee.ua().accept().await.unwrap();
    callee.wait_established().await.unwrap();
    wait_log(&pbx, "callee answered").await;
    // "Another caller is joining the call now" plays into the conference first.
    caller.talk(Duration::from_secs(7)).await.unwrap();
    let end = Instant::now();
    caller.hangup().await.unwrap();
    callee.wait_closed(CLOSE_TIMEOUT).await.unwrap();
    finish_all(&mut [&mut caller, &mut callee]).await;
    let greeting = heard(&caller, up, up + Duration::from_secs(3));
    let report = greeting.speech_report();
    assert!(
        report.is_speech(),
        "the caller should hear the greeting: {report}"
    );
    let talk_from = end - Duration::from_secs(3);
    assert_tones("caller", &heard(&caller, talk_from, end), &[b], &[a]);
    assert_tones("callee", &heard(&callee, talk_from, end), &[a], &[b]);
}

/// conference-callback, not answered (the callee declines): the caller hears the apology,
/// the pbx ends the call, and the conference is finished.
#[tokio::test]
async fn conference_callback_apologises_when_the_callee_declines() {
    let (pbx, _) = pbx_with(&[("conference_callback", CALLBACK)]).await;
    let mut callee = manual_user(&pbx, CALLBACK, TONES[3]).await;
    let mut caller = Party::start("caller", TONES[0], pbx_tests::AnswerMode::Manual)
        .await
        .unwrap();
    caller.call_number(&pbx, CALLBACK).await.unwrap();
    caller.wait_established().await.unwrap();
    callee.wait_incoming().await.unwrap();
    let api = pbx.api();
    let live = api
        .wait_conferences(Duration::from_secs(5), |list| !list.is_empty())
        .await
        .unwrap();
    let id = str_field(&live[0], "id").to_string();
    caller.talk(Duration::from_secs(3)).await.unwrap();
    let declined_at = Instant::now();
    // Hanging up a ringing call makes baresip decline it.
    callee.hangup().await.unwrap();
    wait_log(&pbx, "callee failed").await;
    let closed = caller.wait_closed(Duration::from_secs(20)).await.unwrap();
    let closed_at = closed.at;
    finish_all(&mut [&mut caller, &mut callee]).await;
    let apology = heard(&caller, declined_at, closed_at);
    let report = apology.speech_report();
    assert!(
        report.is_speech(),
        "the caller should hear the apology: {report}"
    );
    let (status, view) = api.conference(&id).await.unwrap();
    assert_eq!(
        (status, str_field(&view, "status")),
        (200, "finished"),
        "{view}"
    );
    let (_, list) = api.conferences().await.unwrap();
    assert!(list_of(&list, "conferences").is_empty(), "{list}");
}
