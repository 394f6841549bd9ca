//! Sessions of many legs driven through `deliver`: the conference-callback example app in
//! both outcomes (the mirror follows the events, dialled legs become joinable once answered),
//! and `pbx:app@0.1.0` and `@0.2.0` compatibility through the `legacy_hello` and
//! `legacy_v0_2_hello` fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{CALL, call_info, ctx, runtime};
use pbx_plugin::{
    AbiVersion, Action, AppInstance, CallEnded, ConferenceOptions, Direction, Endpoint, Event,
    HangupBy, HangupReason, LegPhase, MediaFinished, RecordingInfo, Runtime, SayOptions,
};

const GREETING: &str = "Hello, we are trying to connect another caller";
const JOINING: &str = "Another caller is joining the call now";
const SORRY: &str = "Sorry, the other party could not join the call";

async fn session(rt: &Runtime, name: &str) -> AppInstance {
    let app = common::compile(rt, name);
    rt.instantiate(&app, ctx()).await.expect("instantiate")
}

fn plain(text: &str, id: u64) -> (u64, String) {
    (id, text.to_string())
}

/// Starts conference-callback and returns (instance, conference id, callee leg).
async fn conference_callback_started(rt: &Runtime) -> (AppInstance, String, String) {
    let mut app = session(rt, "conference_callback").await;
    assert_eq!(app.abi(), AbiVersion::V0_3);
    let actions = app
        .deliver(&Event::CallReceived(call_info()))
        .await
        .unwrap();
    assert_eq!(actions.len(), 6, "{actions:#?}");
    assert_eq!(actions[0], Action::Answer { call: CALL.into() });
    let Action::ConferenceCreate {
        id: conference,
        opts,
    } = &actions[1]
    else {
        panic!("expected a conference, got {:?}", actions[1]);
    };
    assert_eq!(
        opts,
        &ConferenceOptions {
            name: Some("conference-callback".into()),
            music_file: None,
            music_when_alone: false,
            end_when_moderator_leaves: false,
            max_participants: 100,
        }
    );
    assert!(
        matches!(&actions[2], Action::ConferenceJoin { conference: c, call, .. }
        if c == conference && call == CALL)
    );
    match &actions[3] {
        Action::Say { call, id, text, .. } => {
            assert_eq!(call, CALL);
            assert_eq!(plain(text, *id), plain(GREETING, 1));
        }
        other => panic!("expected the greeting, got {other:?}"),
    }
    assert_eq!(
        actions[4],
        Action::PlayMusic {
            call: CALL.into(),
            id: 2,
            file_id: None
        }
    );
    let Action::Dial {
        call: callee,
        target,
        opts,
    } = &actions[5]
    else {
        panic!("expected a dial, got {:?}", actions[5]);
    };
    assert_eq!(target, &Endpoint::User("1000".into()));
    assert_eq!(opts.connect_timeout_ms, 30_000);
    assert_eq!(app.leg_phase(callee), Some(LegPhase::Dialing));
    assert_eq!(app.leg_phase(CALL), Some(LegPhase::Answered));
    (app, conference.clone(), callee.clone())
}

#[tokio::test]
async fn conference_callback_joins_the_callee_when_it_answers() {
    let rt = runtime();
    let (mut app, conference, callee) = conference_callback_started(&rt).await;

    for event in [
        Event::CallRinging {
            call: callee.clone(),
        },
        Event::CallEarlyMedia {
            call: callee.clone(),
        },
        Event::ParticipantJoining {
            conference: conference.clone(),
            call: CALL.into(),
        },
        Event::ParticipantJoined {
            conference: conference.clone(),
            call: CALL.into(),
        },
    ] {
        assert!(app.deliver(&event).await.unwrap().is_empty(), "{event:?}");
    }
    // The answer moves the dialled leg to Answered before the app runs, so it may join.
    let actions = app
        .deliver(&Event::CallAnswered {
            call: callee.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec![
            Action::StopMedia { call: CALL.into() },
            Action::ConferenceJoin {
                conference: conference.clone(),
                call: callee.clone(),
                opts: pbx_plugin::JoinOptions {
                    muted: false,
                    deafened: false,
                    role: pbx_plugin::ParticipantRole::Participant
                }
            }
        ]
    );
    assert_eq!(app.leg_phase(&callee), Some(LegPhase::Answered));
    let actions = app
        .deliver(&Event::ParticipantJoined {
            conference: conference.clone(),
            call: callee.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec![Action::ConferenceSay {
            conference: conference.clone(),
            id: 3,
            text: JOINING.into(),
            opts: SayOptions {
                language: None,
                voice: None,
                loop_count: 1,
                stop_on_dtmf: false
            }
        }]
    );
    let actions = app
        .deliver(&Event::ParticipantLeft {
            conference: conference.clone(),
            call: callee.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec![
            Action::ConferenceHangup {
                conference: conference.clone()
            },
            Action::Hangup { call: CALL.into() }
        ]
    );
    // Hanging up the first leg ended every leg in the mirror.
    assert_eq!(app.leg_phase(&callee), Some(LegPhase::Finished));
    // The rest of the session's events still reach the app and change nothing.
    for event in [
        Event::ConferenceFinished {
            conference: conference.clone(),
        },
        Event::CallFinished {
            call: callee.clone(),
            ended: CallEnded {
                hangup_by: HangupBy::Local,
                hangup_reason: HangupReason::Normal,
                sip_status: None,
                answered: true,
            },
        },
    ] {
        app.deliver(&event).await.unwrap();
    }
    assert!(app.failed().is_none());
}

#[tokio::test]
async fn conference_callback_apologises_when_the_callee_does_not_answer() {
    let rt = runtime();
    let (mut app, conference, callee) = conference_callback_started(&rt).await;
    let actions = app
        .deliver(&Event::CallFinished {
            call: callee.clone(),
            ended: CallEnded {
                hangup_by: HangupBy::Remote,
                hangup_reason: HangupReason::Noanswer,
                sip_status: Some(408),
                answered: false,
            },
        })
        .await
        .unwrap();
    assert_eq!(app.leg_phase(&callee), Some(LegPhase::Finished));
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0], Action::StopMedia { call: CALL.into() });
    let Action::Say { id, text, .. } = &actions[1] else {
        panic!("expected the apology, got {:?}", actions[1]);
    };
    assert_eq!(text, SORRY);
    let actions = app
        .deliver(&Event::SayFinished {
            call: CALL.into(),
            finished: MediaFinished {
                id: *id,
                played_completely: true,
                digit: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec![
            Action::ConferenceHangup { conference },
            Action::Hangup { call: CALL.into() }
        ]
    );
}

#[tokio::test]
async fn the_mirror_follows_the_call_layer() {
    let rt = runtime();
    let (mut app, conference, callee) = conference_callback_started(&rt).await;
    // The call layer says the conference ended: the app's later requests naming it are
    // refused (the app logs them), so nothing is queued for it.
    app.conference_ended(&conference);
    let actions = app
        .deliver(&Event::CallAnswered {
            call: callee.clone(),
        })
        .await
        .unwrap();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ConferenceJoin { .. })),
        "{actions:?}"
    );
    // Unknown ids are harmless; set_leg adds a leg.
    app.recording_stopped("rec_nope");
    app.timer_done(42);
    app.set_leg("other", LegPhase::Ringing, Direction::Inbound);
    assert_eq!(app.leg_phase("other"), Some(LegPhase::Ringing));
    assert_eq!(app.leg_phase("nope"), None);
    // Events no handler of this app reacts to still run fine.
    assert!(
        app.deliver(&Event::RecordingReady(RecordingInfo {
            id: "rec_0".into(),
            duration_ms: 10,
            files: 1
        }))
        .await
        .unwrap()
        .is_empty()
    );
    assert!(
        app.deliver(&Event::Timer {
            id: 7,
            tag: "t".into()
        })
        .await
        .unwrap()
        .is_empty()
    );
}

#[tokio::test]
async fn a_0_2_app_still_runs_and_skips_0_3_events() {
    let rt = runtime();
    let mut app = session(&rt, "legacy_v0_2_hello").await;
    assert_eq!(app.abi(), AbiVersion::V0_2);
    let say = |id, text: &str| Action::Say {
        call: CALL.into(),
        id,
        text: text.into(),
        opts: SayOptions {
            language: None,
            voice: None,
            loop_count: 1,
            stop_on_dtmf: false,
        },
    };
    assert_eq!(
        app.deliver(&Event::CallReceived(call_info()))
            .await
            .unwrap(),
        vec![
            Action::Answer { call: CALL.into() },
            say(1, "Hello from pbx 0.2."),
            Action::SetTimer {
                id: 1,
                ms: 1000,
                tag: "tick".into()
            },
        ]
    );
    assert_eq!(
        app.deliver(&Event::Timer {
            id: 1,
            tag: "tick".into()
        })
        .await
        .unwrap(),
        vec![say(2, "Timer tick")]
    );
    let events_before = rt.stats().events;
    let response = Event::HttpResponse {
        id: 1,
        result: Err(pbx_plugin::HttpError::Timeout),
    };
    assert!(app.deliver(&response).await.unwrap().is_empty());
    assert_eq!(
        rt.stats().events,
        events_before,
        "0.3 events never enter wasm"
    );
    assert_eq!(
        app.on_dtmf(CALL, "7").await.unwrap(),
        vec![say(3, "You pressed 7")]
    );
    assert!(app.failed().is_none());
}

#[tokio::test]
async fn a_0_1_app_still_runs_and_skips_0_2_events() {
    let rt = runtime();
    let mut app = session(&rt, "legacy_hello").await;
    assert_eq!(app.abi(), AbiVersion::V0_1);
    let say = |id, text: &str| Action::Say {
        call: CALL.into(),
        id,
        text: text.into(),
        opts: SayOptions {
            language: None,
            voice: None,
            loop_count: 1,
            stop_on_dtmf: false,
        },
    };
    assert_eq!(
        app.deliver(&Event::CallReceived(call_info()))
            .await
            .unwrap(),
        vec![
            Action::Answer { call: CALL.into() },
            say(1, "Hello from pbx. Press any key.")
        ]
    );
    let events_before = rt.stats().events;
    for event in [
        Event::CallRinging { call: CALL.into() },
        Event::Timer {
            id: 1,
            tag: String::new(),
        },
        Event::ConferenceFinished {
            conference: "cnf_1".into(),
        },
        Event::HandOverResult {
            call: CALL.into(),
            accepted: false,
            reason: Some("busy".into()),
        },
    ] {
        assert!(app.deliver(&event).await.unwrap().is_empty());
    }
    assert_eq!(
        rt.stats().events,
        events_before,
        "0.2 events never enter wasm"
    );
    assert_eq!(
        app.on_dtmf(CALL, "5").await.unwrap(),
        vec![say(2, "You pressed 5")]
    );
    assert_eq!(
        app.on_dtmf(CALL, "#").await.unwrap(),
        vec![say(3, "Goodbye")]
    );
    assert_eq!(
        app.deliver(&Event::SayFinished {
            call: CALL.into(),
            finished: MediaFinished {
                id: 3,
                played_completely: true,
                digit: None
            }
        })
        .await
        .unwrap(),
        vec![Action::Hangup { call: CALL.into() }]
    );
    assert_eq!(app.phase(), LegPhase::Finished);
    app.deliver(&Event::CallFinished {
        call: CALL.into(),
        ended: CallEnded {
            hangup_by: HangupBy::Local,
            hangup_reason: HangupReason::Normal,
            sip_status: None,
            answered: true,
        },
    })
    .await
    .unwrap();
    assert!(app.failed().is_none());
}
