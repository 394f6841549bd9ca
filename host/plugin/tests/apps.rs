//! The example apps driven event by event: the actions they request, in order.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{CALL, call_info, instance, runtime};
use pbx_plugin::{
    AbiVersion, Action, CallEnded, CollectEnd, CollectOptions, CollectedDigits, Direction,
    HangupBy, HangupReason, LegPhase, MediaFinished, SayOptions,
};

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

fn menu(id: u64) -> Action {
    Action::Say {
        call: CALL.into(),
        id,
        text: "Press 1 for sales, 2 for support.".into(),
        opts: SayOptions {
            language: None,
            voice: None,
            loop_count: 1,
            stop_on_dtmf: true,
        },
    }
}

fn collect_one() -> Action {
    Action::CollectDtmf {
        call: CALL.into(),
        opts: CollectOptions {
            max_digits: 1,
            terminator: None,
            timeout_ms: 5000,
        },
    }
}

fn finished(id: u64, digit: Option<&str>) -> MediaFinished {
    MediaFinished {
        id,
        played_completely: digit.is_none(),
        digit: digit.map(String::from),
    }
}

fn collected(digits: &str, end: CollectEnd) -> CollectedDigits {
    CollectedDigits {
        digits: digits.into(),
        end,
    }
}

const NORMAL_REMOTE: CallEnded = CallEnded {
    hangup_by: HangupBy::Remote,
    hangup_reason: HangupReason::Normal,
    sip_status: None,
    answered: true,
};

fn answer() -> Action {
    Action::Answer { call: CALL.into() }
}

fn hangup() -> Action {
    Action::Hangup { call: CALL.into() }
}

#[tokio::test]
async fn hello_greets_echoes_digits_and_says_goodbye() {
    let rt = runtime();
    let mut app = instance(&rt, "hello").await;
    assert_eq!(app.abi(), AbiVersion::V0_3);
    assert_eq!(app.phase(), LegPhase::Ringing);

    let actions = app.on_call_received(&call_info()).await.unwrap();
    assert_eq!(
        actions,
        vec![answer(), say(1, "Hello from pbx. Press any key.")]
    );
    assert_eq!(app.phase(), LegPhase::Answered);

    assert_eq!(
        app.on_dtmf(CALL, "5").await.unwrap(),
        vec![say(2, "You pressed 5")]
    );
    assert_eq!(
        app.on_dtmf(CALL, "*").await.unwrap(),
        vec![say(3, "You pressed star")]
    );
    // The greeting finishing is not the goodbye: nothing happens.
    assert!(
        app.on_say_finished(CALL, &finished(1, None))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        app.on_dtmf(CALL, "#").await.unwrap(),
        vec![say(4, "Goodbye")]
    );
    // Keys after the goodbye are not spoken back.
    assert!(app.on_dtmf(CALL, "7").await.unwrap().is_empty());
    assert_eq!(
        app.on_say_finished(CALL, &finished(4, None)).await.unwrap(),
        vec![hangup()]
    );
    assert_eq!(app.phase(), LegPhase::Finished);
    assert!(
        app.on_call_finished(CALL, &NORMAL_REMOTE)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(app.failed().is_none());
}

#[tokio::test]
async fn hello_ignores_events_for_another_call_id() {
    let rt = runtime();
    let mut app = instance(&rt, "hello").await;
    app.on_call_received(&call_info()).await.unwrap();
    // The app acts on the id it was given; the host refuses it (not-found), nothing queued.
    assert!(app.on_dtmf("someone-else", "5").await.unwrap().is_empty());
    assert!(app.failed().is_none());
}

#[tokio::test]
async fn ivr_branches_to_sales_when_a_key_stops_the_menu() {
    let rt = runtime();
    let mut app = instance(&rt, "ivr").await;
    assert_eq!(
        app.on_call_received(&call_info()).await.unwrap(),
        vec![answer(), menu(1)]
    );
    // The key also arrives as on-dtmf; the ivr waits for the finished event.
    assert!(app.on_dtmf(CALL, "1").await.unwrap().is_empty());
    assert_eq!(
        app.on_say_finished(CALL, &finished(1, Some("1")))
            .await
            .unwrap(),
        vec![say(2, "Connecting you to sales.")]
    );
    assert_eq!(
        app.on_say_finished(CALL, &finished(2, None)).await.unwrap(),
        vec![hangup()]
    );
}

#[tokio::test]
async fn ivr_collects_a_digit_after_the_menu_and_branches_to_support() {
    let rt = runtime();
    let mut app = instance(&rt, "ivr").await;
    app.on_call_received(&call_info()).await.unwrap();
    assert_eq!(
        app.on_say_finished(CALL, &finished(1, None)).await.unwrap(),
        vec![collect_one()]
    );
    assert_eq!(
        app.on_dtmf_collected(CALL, &collected("2", CollectEnd::MaxDigits))
            .await
            .unwrap(),
        vec![say(2, "Connecting you to support.")]
    );
    assert_eq!(
        app.on_say_finished(CALL, &finished(2, None)).await.unwrap(),
        vec![hangup()]
    );
}

#[tokio::test]
async fn ivr_repeats_the_menu_twice_then_says_goodbye() {
    let rt = runtime();
    let mut app = instance(&rt, "ivr").await;
    app.on_call_received(&call_info()).await.unwrap();

    // First menu: timeout → second menu.
    assert_eq!(
        app.on_say_finished(CALL, &finished(1, None)).await.unwrap(),
        vec![collect_one()]
    );
    assert_eq!(
        app.on_dtmf_collected(CALL, &collected("", CollectEnd::Timeout))
            .await
            .unwrap(),
        vec![menu(2)]
    );
    // Second menu: a wrong key (stopping the prompt) → third menu.
    assert_eq!(
        app.on_say_finished(CALL, &finished(2, Some("9")))
            .await
            .unwrap(),
        vec![menu(3)]
    );
    // Third menu: timeout → goodbye, not a fourth menu.
    assert_eq!(
        app.on_say_finished(CALL, &finished(3, None)).await.unwrap(),
        vec![collect_one()]
    );
    assert_eq!(
        app.on_dtmf_collected(CALL, &collected("", CollectEnd::Timeout))
            .await
            .unwrap(),
        vec![say(4, "Goodbye.")]
    );
    // A stale finished event of an old menu changes nothing.
    assert!(
        app.on_say_finished(CALL, &finished(2, None))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.on_say_finished(CALL, &finished(4, None)).await.unwrap(),
        vec![hangup()]
    );
}

#[tokio::test]
async fn refused_imports_return_errors_the_app_sees() {
    let rt = runtime();
    let mut app = instance(&rt, "probe").await;
    let said = |actions: Vec<Action>| -> Vec<String> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Say { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    };

    let actions = app.on_call_received(&call_info()).await.unwrap();
    assert_eq!(actions[0], answer());
    assert_eq!(
        said(actions),
        vec!["answer again: invalid state: cannot answer: leg `call-1` is already answered"]
    );

    let cases = [
        ("1", "reject: invalid state"),
        ("2", "empty say: invalid argument"),
        ("3", "collect 0: invalid argument"),
        ("4", "play: not found"),
        ("5", "other call: not found"),
        ("6", "early media: invalid state"),
        ("7", "terminator: invalid argument"),
    ];
    for (key, expected) in cases {
        let texts = said(app.on_dtmf(CALL, key).await.unwrap());
        assert_eq!(texts.len(), 1, "key {key}: {texts:?}");
        assert!(texts[0].starts_with(expected), "key {key}: {}", texts[0]);
    }

    // After the end every request is refused; the probe traps if one is accepted.
    app.on_call_finished(CALL, &NORMAL_REMOTE).await.unwrap();
    assert!(app.failed().is_none());
    assert_eq!(rt.stats().traps, 0);
}

#[tokio::test]
async fn set_phase_governs_what_the_app_may_do() {
    let rt = runtime();
    let mut app = instance(&rt, "hello").await;
    // The caller hung up before the app ran: its answer and say are refused, not queued.
    app.set_leg(CALL, LegPhase::Finished, Direction::Inbound);
    assert!(app.on_call_received(&call_info()).await.unwrap().is_empty());
}
