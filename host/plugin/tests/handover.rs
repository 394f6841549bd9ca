//! Hand-over between apps through real components: the `handover` fixture hands its caller
//! to another app and reacts to both outcomes, `handover_refuser` gives a handed-over leg
//! back, and the session mirror holds a leg in `HandingOver` until the host answers.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{CALL, call_info, ctx, runtime};
use pbx_plugin::{
    Action, AppInstance, CallInfo, Direction, Event, HandOverInfo, LegPhase, MediaFinished,
    Runtime, SayOptions,
};

async fn session(rt: &Runtime, name: &str) -> AppInstance {
    let app = common::compile(rt, name);
    rt.instantiate(&app, ctx()).await.expect("instantiate")
}

fn to(number: &str) -> CallInfo {
    CallInfo {
        to: number.into(),
        ..call_info()
    }
}

fn handed_over() -> CallInfo {
    CallInfo {
        handed_over: Some(HandOverInfo {
            from_app: "app_0123456789abcdef".into(),
            data: "from handover".into(),
        }),
        ..call_info()
    }
}

fn say(id: u64, text: &str) -> Action {
    Action::Say {
        call: CALL.into(),
        id,
        text: text.into(),
        opts: SayOptions {
            language: None,
            voice: None,
            loop_count: 1,
            stop_on_dtmf: false,
        },
    }
}

/// Starts `handover` for `ho-<app>` and checks the answer and the hand-over request.
async fn handing_over(rt: &Runtime, app_name: &str) -> AppInstance {
    let mut app = session(rt, "handover").await;
    let actions = app
        .on_call_received(&to(&format!("ho-{app_name}")))
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec![
            Action::Answer { call: CALL.into() },
            Action::HandOver {
                call: CALL.into(),
                app: app_name.into(),
                data: "from handover".into()
            }
        ]
    );
    assert_eq!(app.leg_phase(CALL), Some(LegPhase::HandingOver));
    app
}

#[tokio::test]
async fn an_accepted_hand_over_forgets_the_leg() {
    let rt = runtime();
    let mut app = handing_over(&rt, "hello").await;
    let actions = app.on_hand_over_result(CALL, true, None).await.unwrap();
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(app.leg_phase(CALL), Some(LegPhase::Finished));
}

#[tokio::test]
async fn a_refused_hand_over_gives_the_leg_back() {
    let rt = runtime();
    let mut app = handing_over(&rt, "handover_refuser").await;
    // The host puts the leg back in its real phase, then reports the refusal.
    app.set_leg(CALL, LegPhase::Answered, Direction::Inbound);
    let actions = app
        .on_hand_over_result(CALL, false, Some("busy here"))
        .await
        .unwrap();
    assert_eq!(actions, vec![say(1, "The other app refused the call")]);
    let actions = app
        .deliver(&Event::SayFinished {
            call: CALL.into(),
            finished: MediaFinished {
                id: 1,
                played_completely: true,
                digit: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(actions, vec![Action::Hangup { call: CALL.into() }]);
}

#[tokio::test]
async fn a_refusal_without_set_leg_restores_the_phase_before_the_hand_over() {
    let rt = runtime();
    let mut app = handing_over(&rt, "handover_refuser").await;
    let actions = app.on_hand_over_result(CALL, false, None).await.unwrap();
    // The say is accepted: the leg is `Answered` again, as it was when the app asked.
    assert_eq!(actions, vec![say(1, "The other app refused the call")]);
    assert_eq!(app.leg_phase(CALL), Some(LegPhase::Answered));
}

#[tokio::test]
async fn the_refuser_gives_a_handed_over_leg_back_during_on_call_received() {
    let rt = runtime();
    let mut app = session(&rt, "handover_refuser").await;
    // A handed-over leg may already be answered: the host says so before delivering it.
    app.set_leg(CALL, LegPhase::Answered, Direction::Inbound);
    let actions = app.on_call_received(&handed_over()).await.unwrap();
    assert_eq!(
        actions,
        vec![Action::RefuseHandOver {
            call: CALL.into(),
            reason: "busy here".into()
        }]
    );
    assert_eq!(app.leg_phase(CALL), Some(LegPhase::Finished));
}

#[tokio::test]
async fn the_refuser_answers_an_ordinary_call() {
    let rt = runtime();
    let mut app = session(&rt, "handover_refuser").await;
    let actions = app.on_call_received(&call_info()).await.unwrap();
    assert_eq!(
        actions,
        vec![Action::Answer { call: CALL.into() }, say(1, "Refuser")]
    );
}

#[tokio::test]
async fn refuse_hand_over_is_refused_outside_the_delivering_event() {
    let rt = runtime();
    let mut app = session(&rt, "handover_refuser").await;
    assert_eq!(app.on_call_received(&call_info()).await.unwrap().len(), 2);
    // The refuser tries a late refusal on a key and says the error it got back.
    let late = |actions: Vec<Action>| match actions.as_slice() {
        [Action::Say { text, .. }] => text.clone(),
        other => panic!("expected one say, got {other:?}"),
    };
    let text = late(app.on_dtmf(CALL, "1").await.unwrap());
    assert!(
        text.starts_with("Late refusal: invalid state:") && text.contains("not handed over"),
        "{text}"
    );
    // Also after an on-call-received that did carry a handed-over leg: the flag is cleared
    // when that event returns.
    app.set_leg("leg-2", LegPhase::Answered, Direction::Inbound);
    let actions = app
        .on_call_received(&CallInfo {
            id: "leg-2".into(),
            ..handed_over()
        })
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec![Action::RefuseHandOver {
            call: "leg-2".into(),
            reason: "busy here".into()
        }]
    );
    let text = late(app.on_dtmf(CALL, "2").await.unwrap());
    assert!(text.contains("not handed over"), "{text}");
}
