//! Unit tests of every import rule of `call_control.rs`, `conference.rs`, `recording.rs`,
//! `timers.rs` and the shared checks of `mod.rs`, driven through the generated host traits
//! (what an app sees), plus the 0.1 adapters of `legacy.rs`.

#![allow(clippy::unwrap_used, reason = "tests")]

use super::call_control::{MAX_HAND_OVER_DATA, MAX_LIVE_LEGS, MAX_REFUSE_REASON, check_sip_uri};
use super::conference::MAX_CONFERENCES;
use super::recording::MAX_RECORDINGS;
use super::timers::MAX_TIMERS;
use super::*;
use crate::bindings::v0_3::{
    call_control as cc, conference as cf, recording as rc, timers as tm, types as wit,
};
use pbx_app::{
    CollectOptions, DialOptions, Endpoint, JoinOptions, MuteDirection, ParticipantRole,
    RecordOptions, RecordTarget, RingStrategy,
};

const C1: &str = "c1";

fn state() -> HostState {
    HostState::new(
        C1.into(),
        Leg {
            phase: LegPhase::Ringing,
            direction: Direction::Inbound,
        },
        "app".into(),
        Directory {
            files: Arc::new(|f| f == "known"),
            users: Arc::new(|u| u == "alice" || u == "bob"),
            trunks: Arc::new(|t| t == "main"),
        },
        Capabilities::default(),
        1 << 20,
        200,
    )
}

fn answered() -> HostState {
    let mut s = state();
    cc::Host::answer(&mut s, C1.into()).unwrap();
    s.begin_event();
    s
}

fn say_opts() -> wit::SayOptions {
    wit::SayOptions {
        language: None,
        voice: None,
        loop_count: 0,
        stop_on_dtmf: false,
    }
}

fn play_opts() -> wit::PlayOptions {
    wit::PlayOptions {
        loop_count: 0,
        offset_ms: 0,
        timeout_ms: None,
        stop_on_dtmf: false,
    }
}

fn dial_opts() -> wit::DialOptions {
    wit::DialOptions {
        caller_id: None,
        caller_name: None,
        connect_timeout_ms: 0,
        headers: Vec::new(),
    }
}

fn conf_opts() -> wit::ConferenceOptions {
    wit::ConferenceOptions {
        name: None,
        music_file: None,
        music_when_alone: false,
        end_when_moderator_leaves: false,
        max_participants: 0,
    }
}

fn rec_opts() -> wit::RecordOptions {
    wit::RecordOptions {
        per_participant: false,
        stereo: false,
        max_duration_ms: 0,
        metadata: Vec::new(),
    }
}

fn join_opts() -> wit::JoinOptions {
    wit::JoinOptions {
        muted: true,
        deafened: false,
        role: wit::ParticipantRole::Moderator,
    }
}

fn sip(uri: &str) -> wit::Endpoint {
    wit::Endpoint::SipUri(uri.into())
}

fn user(name: &str) -> wit::Endpoint {
    wit::Endpoint::User(name.into())
}

fn phone(number: &str, trunk: Option<&str>) -> wit::Endpoint {
    wit::Endpoint::Phone(wit::PhoneNumber {
        number: number.into(),
        trunk: trunk.map(String::from),
    })
}

fn is_state<T: std::fmt::Debug>(r: WitResult<T>) -> bool {
    matches!(r, Err(wit::Error::InvalidState(_)))
}
fn is_arg<T: std::fmt::Debug>(r: WitResult<T>) -> bool {
    matches!(r, Err(wit::Error::InvalidArgument(_)))
}
fn is_not_found<T: std::fmt::Debug>(r: WitResult<T>) -> bool {
    matches!(r, Err(wit::Error::NotFound(_)))
}
fn is_failed<T: std::fmt::Debug>(r: WitResult<T>) -> bool {
    matches!(r, Err(wit::Error::Failed(_)))
}

fn phase(s: &HostState, call: &str) -> LegPhase {
    s.legs[call].phase
}

/// A session with an answered inbound leg and an answered outbound leg `b`.
fn two_answered() -> (HostState, String) {
    let mut s = answered();
    let b = cc::Host::dial(&mut s, user("alice"), dial_opts()).unwrap();
    s.set_leg(&b, LegPhase::Answered, Direction::Outbound);
    s.begin_event();
    (s, b)
}

// ---- answer, early media, reject, hangup ----

#[test]
fn answer_needs_an_inbound_unanswered_leg() {
    let mut s = state();
    assert!(is_not_found(cc::Host::answer(&mut s, "c2".into())));
    cc::Host::answer(&mut s, C1.into()).unwrap();
    assert_eq!(phase(&s, C1), LegPhase::Answered);
    assert!(is_state(cc::Host::answer(&mut s, C1.into())));
    assert_eq!(s.actions, vec![Action::Answer { call: C1.into() }]);

    let mut s = state();
    s.set_leg("out", LegPhase::Dialing, Direction::Outbound);
    assert!(is_state(cc::Host::answer(&mut s, "out".into())));
    s.set_leg(C1, LegPhase::Finished, Direction::Inbound);
    assert!(is_state(cc::Host::answer(&mut s, C1.into())));
    assert!(s.actions.is_empty());
}

#[test]
fn early_media_then_answer() {
    let mut s = state();
    cc::Host::early_media(&mut s, C1.into()).unwrap();
    assert_eq!(phase(&s, C1), LegPhase::EarlyMedia);
    assert!(is_state(cc::Host::early_media(&mut s, C1.into())));
    cc::Host::answer(&mut s, C1.into()).unwrap();
    assert!(is_state(cc::Host::early_media(&mut s, C1.into())));
    assert_eq!(
        s.actions,
        vec![
            Action::EarlyMedia { call: C1.into() },
            Action::Answer { call: C1.into() }
        ]
    );
    let mut s = state();
    s.set_leg("out", LegPhase::Dialing, Direction::Outbound);
    assert!(is_state(cc::Host::early_media(&mut s, "out".into())));
}

#[test]
fn reject_checks_status_direction_and_phase() {
    let mut s = state();
    assert!(is_arg(cc::Host::reject(&mut s, C1.into(), 399)));
    assert!(is_arg(cc::Host::reject(&mut s, C1.into(), 700)));
    assert_eq!(phase(&s, C1), LegPhase::Ringing);
    cc::Host::reject(&mut s, C1.into(), 486).unwrap();
    assert_eq!(phase(&s, C1), LegPhase::Finished);
    assert!(is_state(cc::Host::answer(&mut s, C1.into())));
    assert!(is_state(cc::Host::reject(&mut s, C1.into(), 486)));

    let mut s = answered();
    assert!(is_state(cc::Host::reject(&mut s, C1.into(), 486)));
    s.set_leg("out", LegPhase::Dialing, Direction::Outbound);
    assert!(is_state(cc::Host::reject(&mut s, "out".into(), 486)));
    let mut s = state();
    cc::Host::early_media(&mut s, C1.into()).unwrap();
    cc::Host::reject(&mut s, C1.into(), 603).unwrap();
}

#[test]
fn hangup_of_the_first_leg_ends_every_leg() {
    let (mut s, b) = two_answered();
    let c = cc::Host::dial(&mut s, user("bob"), dial_opts()).unwrap();
    assert!(is_not_found(cc::Host::hangup(&mut s, "nope".into())));
    // A dialling leg may be hung up (CANCEL).
    cc::Host::hangup(&mut s, c.clone()).unwrap();
    assert_eq!(phase(&s, &c), LegPhase::Finished);
    assert_eq!(phase(&s, &b), LegPhase::Answered);
    assert!(is_state(cc::Host::hangup(&mut s, c.clone())));
    cc::Host::hangup(&mut s, C1.into()).unwrap();
    assert!(s.legs.values().all(|l| l.phase == LegPhase::Finished));
    assert!(is_state(cc::Host::hangup(&mut s, b.clone())));
    assert_eq!(
        s.actions[1..],
        [
            Action::Hangup { call: c },
            Action::Hangup { call: C1.into() }
        ]
    );
}

#[test]
fn hangup_of_an_unanswered_inbound_leg_is_allowed() {
    let mut s = state();
    cc::Host::hangup(&mut s, C1.into()).unwrap();
    assert!(is_state(cc::Host::say(
        &mut s,
        C1.into(),
        "hi".into(),
        say_opts()
    )));
}

// ---- media ----

#[test]
fn media_needs_early_media_or_answered() {
    let mut s = state();
    assert!(is_state(cc::Host::say(
        &mut s,
        C1.into(),
        "hi".into(),
        say_opts()
    )));
    assert!(is_state(cc::Host::play(
        &mut s,
        C1.into(),
        "known".into(),
        play_opts()
    )));
    assert!(is_state(cc::Host::play_music(&mut s, C1.into(), None)));
    assert!(is_state(cc::Host::stop_media(&mut s, C1.into())));
    s.set_leg("out", LegPhase::Dialing, Direction::Outbound);
    assert!(is_state(cc::Host::say(
        &mut s,
        "out".into(),
        "hi".into(),
        say_opts()
    )));
    assert!(is_not_found(cc::Host::say(
        &mut s,
        "x".into(),
        "hi".into(),
        say_opts()
    )));
    cc::Host::early_media(&mut s, C1.into()).unwrap();
    assert_eq!(
        cc::Host::say(&mut s, C1.into(), "hi".into(), say_opts()).unwrap(),
        1
    );
    cc::Host::stop_media(&mut s, C1.into()).unwrap();
    assert_eq!(s.actions.len(), 3);
}

#[test]
fn say_checks_text_and_options() {
    let mut s = answered();
    assert!(is_arg(cc::Host::say(
        &mut s,
        C1.into(),
        "".into(),
        say_opts()
    )));
    assert!(is_arg(cc::Host::say(
        &mut s,
        C1.into(),
        "  ".into(),
        say_opts()
    )));
    assert!(is_arg(cc::Host::say(
        &mut s,
        C1.into(),
        "x".repeat(4001),
        say_opts()
    )));
    assert_eq!(
        cc::Host::say(&mut s, C1.into(), "x".repeat(4000), say_opts()).unwrap(),
        1
    );
    let mut bad = say_opts();
    bad.language = Some("en; rm -rf".into());
    assert!(is_arg(cc::Host::say(&mut s, C1.into(), "hi".into(), bad)));
    let mut bad = say_opts();
    bad.voice = Some("f3/../../x".into());
    assert!(is_arg(cc::Host::say(&mut s, C1.into(), "hi".into(), bad)));
    let mut good = say_opts();
    good.language = Some("en-us".into());
    good.voice = Some("f3".into());
    assert_eq!(
        cc::Host::say(&mut s, C1.into(), "hi".into(), good).unwrap(),
        2
    );
    match &s.actions[1] {
        Action::Say { call, id, opts, .. } => {
            assert_eq!((call.as_str(), *id, opts.loop_count), (C1, 2, 1));
            assert_eq!(opts.language.as_deref(), Some("en-us"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn play_and_music_check_files() {
    let mut s = answered();
    assert!(is_not_found(cc::Host::play(
        &mut s,
        C1.into(),
        "nope".into(),
        play_opts()
    )));
    assert!(is_arg(cc::Host::play(
        &mut s,
        C1.into(),
        "".into(),
        play_opts()
    )));
    assert!(is_arg(cc::Host::play(
        &mut s,
        C1.into(),
        "a\nb".into(),
        play_opts()
    )));
    assert_eq!(
        cc::Host::play(&mut s, C1.into(), "known".into(), play_opts()).unwrap(),
        1
    );
    assert!(is_not_found(cc::Host::play_music(
        &mut s,
        C1.into(),
        Some("nope".into())
    )));
    assert_eq!(cc::Host::play_music(&mut s, C1.into(), None).unwrap(), 2);
    assert_eq!(
        cc::Host::play_music(&mut s, C1.into(), Some("known".into())).unwrap(),
        3
    );
    assert_eq!(
        s.actions[1],
        Action::PlayMusic {
            call: C1.into(),
            id: 2,
            file_id: None
        }
    );
    match &s.actions[0] {
        Action::Play { opts, .. } => assert_eq!(opts.loop_count, 1),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn collect_checks_its_options() {
    let mut s = answered();
    let opts = |max, term: Option<&str>, timeout| wit::CollectOptions {
        max_digits: max,
        terminator: term.map(String::from),
        timeout_ms: timeout,
    };
    for bad in [
        opts(0, None, 5000),
        opts(65, None, 5000),
        opts(4, Some("##"), 5000),
        opts(4, Some("x"), 5000),
        opts(4, Some("5"), 5000),
        opts(4, Some(""), 5000),
        opts(4, None, 0),
    ] {
        assert!(is_arg(cc::Host::collect_dtmf(&mut s, C1.into(), bad)));
    }
    cc::Host::collect_dtmf(&mut s, C1.into(), opts(4, Some("#"), 5000)).unwrap();
    assert_eq!(
        s.actions,
        vec![Action::CollectDtmf {
            call: C1.into(),
            opts: CollectOptions {
                max_digits: 4,
                terminator: Some('#'),
                timeout_ms: 5000
            }
        }]
    );
    let mut s = state();
    assert!(is_state(cc::Host::collect_dtmf(
        &mut s,
        C1.into(),
        opts(4, None, 5000)
    )));
}

#[test]
fn send_dtmf_needs_an_answered_leg_and_valid_digits() {
    let mut s = state();
    cc::Host::early_media(&mut s, C1.into()).unwrap();
    assert!(is_state(cc::Host::send_dtmf(
        &mut s,
        C1.into(),
        "1".into(),
        0
    )));
    let mut s = answered();
    for bad in ["", "12x", "a", &"1".repeat(33), "1 2"] {
        assert!(
            is_arg(cc::Host::send_dtmf(&mut s, C1.into(), bad.into(), 0)),
            "{bad}"
        );
    }
    assert!(is_arg(cc::Host::send_dtmf(
        &mut s,
        C1.into(),
        "1".into(),
        39
    )));
    assert!(is_arg(cc::Host::send_dtmf(
        &mut s,
        C1.into(),
        "1".into(),
        2001
    )));
    cc::Host::send_dtmf(&mut s, C1.into(), "0123456789*#ABCD".into(), 0).unwrap();
    cc::Host::send_dtmf(&mut s, C1.into(), "1".repeat(32), 40).unwrap();
    cc::Host::send_dtmf(&mut s, C1.into(), "1".into(), 2000).unwrap();
    assert_eq!(
        s.actions[0],
        Action::SendDtmf {
            call: C1.into(),
            digits: "0123456789*#ABCD".into(),
            duration_ms: 100
        }
    );
}

// ---- dialing ----

#[test]
fn dial_adds_a_dialing_outbound_leg_with_a_uuid() {
    let mut s = state();
    let leg = cc::Host::dial(&mut s, sip("sip:bob@127.0.0.1:5080"), dial_opts()).unwrap();
    assert_eq!(
        s.legs[&leg],
        Leg {
            phase: LegPhase::Dialing,
            direction: Direction::Outbound
        }
    );
    let parts: Vec<&str> = leg.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(
        leg.chars()
            .all(|c| c == '-' || matches!(c, '0'..='9' | 'a'..='f'))
    );
    assert!(parts[2].starts_with('4'));
    assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    assert_eq!(
        s.actions,
        vec![Action::Dial {
            call: leg.clone(),
            target: Endpoint::SipUri("sip:bob@127.0.0.1:5080".into()),
            opts: DialOptions {
                caller_id: None,
                caller_name: None,
                connect_timeout_ms: 60_000,
                headers: Vec::new()
            }
        }]
    );
    let other = cc::Host::dial(&mut s, user("alice"), dial_opts()).unwrap();
    assert_ne!(leg, other);
    // A dialling leg cannot be spoken to or bridged yet.
    assert!(is_state(cc::Host::say(
        &mut s,
        leg.clone(),
        "hi".into(),
        say_opts()
    )));
}

#[test]
fn endpoint_syntax() {
    let mut s = state();
    for good in [
        sip("sip:bob@127.0.0.1:5080"),
        sip("sips:bob@example.com"),
        sip("sip:example.com;transport=tcp"),
        sip("sip:bob@[::1]:5060"),
        user("alice"),
        phone("+4930123456", None),
        phone("*21#", Some("main")),
    ] {
        cc::Host::dial(&mut s, good.clone(), dial_opts())
            .unwrap_or_else(|e| panic!("{good:?}: {e:?}"));
    }
    for bad in [
        sip("bob@example.com"),
        sip("sip:"),
        sip("sip:bob@"),
        sip("sip:bob@:5060"),
        sip("http://example.com"),
        sip("sip:bob @example.com"),
        sip("sip:bob@example.com\r\nX-Evil: 1"),
        user(""),
        user("al ice"),
        user(&"a".repeat(65)),
        phone("", None),
        phone("+", None),
        phone("12a", None),
        phone(&"1".repeat(33), None),
        phone("++1", None),
        phone("123", Some("bad trunk")),
    ] {
        assert!(
            is_arg(cc::Host::dial(&mut s, bad.clone(), dial_opts())),
            "{bad:?}"
        );
    }
    assert!(is_not_found(cc::Host::dial(
        &mut s,
        user("carol"),
        dial_opts()
    )));
    assert!(is_not_found(cc::Host::dial(
        &mut s,
        phone("123", Some("other")),
        dial_opts()
    )));
    // Refused requests change nothing.
    assert_eq!(s.legs.len(), 1 + 7);
    assert_eq!(s.actions.len(), 7);
}

#[test]
fn dial_options_are_checked_and_normalised() {
    let mut s = state();
    let with = |f: &dyn Fn(&mut wit::DialOptions)| {
        let mut o = dial_opts();
        f(&mut o);
        o
    };
    let bad = [
        with(&|o| o.connect_timeout_ms = 600_001),
        with(&|o| o.caller_id = Some("".into())),
        with(&|o| o.caller_id = Some("bob smith".into())),
        with(&|o| o.caller_name = Some("a\"b".into())),
        with(&|o| o.caller_name = Some("line\nbreak".into())),
        with(&|o| o.headers = vec![("Subject".into(), "x".into())]),
        with(&|o| o.headers = vec![("X-".into(), "x".into())]),
        with(&|o| o.headers = vec![("X-A B".into(), "x".into())]),
        with(&|o| o.headers = vec![("X-Ok".into(), "a\r\nb".into())]),
        with(&|o| o.headers = vec![("X-Ok".into(), "é".into())]),
        with(&|o| o.headers = (0..17).map(|i| (format!("X-H{i}"), "v".into())).collect()),
    ];
    for o in bad {
        assert!(
            is_arg(cc::Host::dial(&mut s, user("alice"), o.clone())),
            "{o:?}"
        );
    }
    let good = with(&|o| {
        o.caller_id = Some("+4930123".into());
        o.caller_name = Some("Front desk".into());
        o.connect_timeout_ms = 600_000;
        o.headers = (0..16).map(|i| (format!("X-H{i}"), "v 1".into())).collect();
    });
    cc::Host::dial(&mut s, user("alice"), good).unwrap();
    match &s.actions[0] {
        Action::Dial { opts, .. } => {
            assert_eq!(opts.connect_timeout_ms, 600_000);
            assert_eq!(opts.headers.len(), 16);
            assert_eq!(opts.caller_id.as_deref(), Some("+4930123"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_session_has_at_most_32_live_legs() {
    let mut s = answered();
    let mut legs = Vec::new();
    for _ in 0..MAX_LIVE_LEGS - 1 {
        legs.push(cc::Host::dial(&mut s, user("alice"), dial_opts()).unwrap());
    }
    s.begin_event();
    assert!(is_failed(cc::Host::dial(
        &mut s,
        user("alice"),
        dial_opts()
    )));
    assert!(is_failed(cc::Host::transfer(
        &mut s,
        C1.into(),
        user("alice"),
        dial_opts()
    )));
    // The call layer's own legs are not limited, but count.
    s.set_leg("in2", LegPhase::Ringing, Direction::Inbound);
    assert!(is_failed(cc::Host::dial_and_connect(
        &mut s,
        "in2".into(),
        user("alice"),
        dial_opts()
    )));
    s.set_leg("in2", LegPhase::Finished, Direction::Inbound);
    s.set_leg(&legs[0], LegPhase::Finished, Direction::Outbound);
    cc::Host::dial(&mut s, user("alice"), dial_opts()).unwrap();
    assert!(is_failed(cc::Host::dial(
        &mut s,
        user("alice"),
        dial_opts()
    )));
}

#[test]
fn finished_legs_are_forgotten_past_the_memory_bound() {
    let mut s = state();
    for i in 0..MAX_REMEMBERED_LEGS + 10 {
        s.set_leg(&format!("old{i}"), LegPhase::Finished, Direction::Outbound);
    }
    assert!(s.legs.len() <= MAX_REMEMBERED_LEGS + 1);
    assert_eq!(phase(&s, C1), LegPhase::Ringing);
}

#[test]
fn dial_group_checks_stages() {
    let mut s = state();
    let stage = |members: Vec<wit::Endpoint>, timeout_ms| wit::GroupStage {
        members,
        strategy: wit::RingStrategy::RingAll,
        timeout_ms,
    };
    assert!(is_arg(cc::Host::dial_group(&mut s, vec![], dial_opts())));
    assert!(is_arg(cc::Host::dial_group(
        &mut s,
        vec![stage(vec![], 0)],
        dial_opts()
    )));
    assert!(is_arg(cc::Host::dial_group(
        &mut s,
        vec![stage(vec![user("alice"); 33], 0)],
        dial_opts()
    )));
    assert!(is_arg(cc::Host::dial_group(
        &mut s,
        vec![stage(vec![user("alice")], 600_001)],
        dial_opts()
    )));
    assert!(is_arg(cc::Host::dial_group(
        &mut s,
        vec![stage(vec![user("alice"), sip("nope")], 0)],
        dial_opts()
    )));
    assert!(is_arg(cc::Host::dial_group(
        &mut s,
        vec![stage(vec![user("alice")], 0); 17],
        dial_opts()
    )));
    assert!(is_not_found(cc::Host::dial_group(
        &mut s,
        vec![stage(vec![user("zed")], 0)],
        dial_opts()
    )));
    assert_eq!(s.legs.len(), 1);
    let linear = wit::GroupStage {
        members: vec![user("bob")],
        strategy: wit::RingStrategy::Linear,
        timeout_ms: 5000,
    };
    let leg = cc::Host::dial_group(
        &mut s,
        vec![stage(vec![user("alice"); 32], 0), linear],
        dial_opts(),
    )
    .unwrap();
    assert_eq!(phase(&s, &leg), LegPhase::Dialing);
    match &s.actions[0] {
        Action::DialGroup { call, stages, .. } => {
            assert_eq!(call, &leg);
            assert_eq!(stages.len(), 2);
            assert_eq!(stages[0].timeout_ms, 20_000);
            assert_eq!(stages[0].strategy, RingStrategy::RingAll);
            assert_eq!(stages[1].strategy, RingStrategy::Linear);
            assert_eq!(stages[1].members, vec![Endpoint::User("bob".into())]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn dial_and_connect_needs_an_inbound_unanswered_leg() {
    let mut s = state();
    assert!(is_not_found(cc::Host::dial_and_connect(
        &mut s,
        "x".into(),
        user("alice"),
        dial_opts()
    )));
    assert!(is_arg(cc::Host::dial_and_connect(
        &mut s,
        C1.into(),
        sip("x"),
        dial_opts()
    )));
    let leg = cc::Host::dial_and_connect(&mut s, C1.into(), user("alice"), dial_opts()).unwrap();
    assert_eq!(phase(&s, &leg), LegPhase::Dialing);
    assert_eq!(phase(&s, C1), LegPhase::Ringing);
    assert!(
        matches!(&s.actions[0], Action::DialAndConnect { call, new_call, .. } if call == C1 && *new_call == leg)
    );
    assert!(is_state(cc::Host::dial_and_connect(
        &mut s,
        leg,
        user("alice"),
        dial_opts()
    )));
    let mut s = answered();
    assert!(is_state(cc::Host::dial_and_connect(
        &mut s,
        C1.into(),
        user("alice"),
        dial_opts()
    )));
}

// ---- bridges, hold, mute, transfer ----

#[test]
fn connect_needs_two_distinct_answered_legs() {
    let (mut s, b) = two_answered();
    assert!(is_not_found(cc::Host::connect(
        &mut s,
        C1.into(),
        "x".into()
    )));
    assert!(is_not_found(cc::Host::connect(
        &mut s,
        "x".into(),
        C1.into()
    )));
    assert!(is_arg(cc::Host::connect(&mut s, C1.into(), C1.into())));
    let c = cc::Host::dial(&mut s, user("bob"), dial_opts()).unwrap();
    assert!(is_state(cc::Host::connect(&mut s, C1.into(), c.clone())));
    assert!(is_state(cc::Host::connect(&mut s, c, C1.into())));
    cc::Host::connect(&mut s, C1.into(), b.clone()).unwrap();
    assert_eq!(
        s.actions.last(),
        Some(&Action::Connect {
            a: C1.into(),
            b: b.clone()
        })
    );
    cc::Host::disconnect(&mut s, b.clone()).unwrap();
    s.set_leg(&b, LegPhase::Finished, Direction::Outbound);
    assert!(is_state(cc::Host::connect(&mut s, C1.into(), b.clone())));
    assert!(is_state(cc::Host::disconnect(&mut s, b)));
}

#[test]
fn leg_controls_need_an_answered_leg() {
    type Op = fn(&mut HostState, String) -> WitResult<()>;
    let ops: [(&str, Op); 10] = [
        ("disconnect", |s, c| cc::Host::disconnect(s, c)),
        ("hold", |s, c| cc::Host::hold(s, c, None)),
        ("resume", |s, c| cc::Host::resume(s, c)),
        ("mute", |s, c| {
            cc::Host::mute(s, c, wit::MuteDirection::Both)
        }),
        ("unmute", |s, c| {
            cc::Host::unmute(s, c, wit::MuteDirection::Inbound)
        }),
        ("transfer", |s, c| {
            cc::Host::transfer(s, c, user("alice"), dial_opts()).map(|_| ())
        }),
        ("consult", |s, c| {
            cc::Host::consult(s, c, user("alice"), dial_opts()).map(|_| ())
        }),
        ("complete", |s, c| cc::Host::complete_transfer(s, c)),
        ("cancel", |s, c| cc::Host::cancel_transfer(s, c)),
        ("send-dtmf", |s, c| cc::Host::send_dtmf(s, c, "1".into(), 0)),
    ];
    for (name, op) in ops {
        let mut s = state();
        assert!(is_not_found(op(&mut s, "x".into())), "{name}");
        assert!(is_state(op(&mut s, C1.into())), "{name} while ringing");
        cc::Host::early_media(&mut s, C1.into()).unwrap();
        assert!(is_state(op(&mut s, C1.into())), "{name} in early media");
        cc::Host::answer(&mut s, C1.into()).unwrap();
        op(&mut s, C1.into()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        cc::Host::hangup(&mut s, C1.into()).unwrap();
        assert!(is_state(op(&mut s, C1.into())), "{name} after hangup");
    }
}

#[test]
fn leg_control_actions_carry_their_arguments() {
    let mut s = answered();
    assert!(is_not_found(cc::Host::hold(
        &mut s,
        C1.into(),
        Some("nope".into())
    )));
    cc::Host::hold(&mut s, C1.into(), Some("known".into())).unwrap();
    cc::Host::mute(&mut s, C1.into(), wit::MuteDirection::Outbound).unwrap();
    assert!(is_arg(cc::Host::transfer(
        &mut s,
        C1.into(),
        sip("bad"),
        dial_opts()
    )));
    let t = cc::Host::transfer(&mut s, C1.into(), user("bob"), dial_opts()).unwrap();
    let c = cc::Host::consult(&mut s, C1.into(), phone("100", None), dial_opts()).unwrap();
    assert_eq!(phase(&s, &t), LegPhase::Dialing);
    assert_eq!(phase(&s, &c), LegPhase::Dialing);
    assert_eq!(
        s.actions[..2],
        [
            Action::Hold {
                call: C1.into(),
                music_file: Some("known".into())
            },
            Action::Mute {
                call: C1.into(),
                direction: MuteDirection::Outbound
            }
        ]
    );
    assert!(
        matches!(&s.actions[2], Action::Transfer { call, new_call, target: Endpoint::User(u), .. }
        if call == C1 && *new_call == t && u == "bob")
    );
    assert!(
        matches!(&s.actions[3], Action::Consult { new_call, target: Endpoint::Phone { number, trunk: None }, .. }
        if *new_call == c && number == "100")
    );
}

// ---- conferences ----

#[test]
fn conference_create_checks_options_and_the_limit() {
    let mut s = state();
    let with = |f: &dyn Fn(&mut wit::ConferenceOptions)| {
        let mut o = conf_opts();
        f(&mut o);
        o
    };
    for bad in [
        with(&|o| o.max_participants = 1),
        with(&|o| o.max_participants = 101),
        with(&|o| o.name = Some("".into())),
        with(&|o| o.name = Some("a\nb".into())),
    ] {
        assert!(is_arg(cf::Host::create(&mut s, bad.clone())), "{bad:?}");
    }
    assert!(is_not_found(cf::Host::create(
        &mut s,
        with(&|o| o.music_file = Some("nope".into()))
    )));
    let id = cf::Host::create(&mut s, conf_opts()).unwrap();
    assert!(id.starts_with("cnf_") && id.len() == 20, "{id}");
    assert!(id[4..].chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    match &s.actions[0] {
        Action::ConferenceCreate { id: got, opts } => {
            assert_eq!(got, &id);
            assert_eq!(opts.max_participants, 100);
        }
        other => panic!("unexpected {other:?}"),
    }
    cf::Host::create(&mut s, with(&|o| o.max_participants = 2)).unwrap();
    for _ in 2..MAX_CONFERENCES {
        cf::Host::create(&mut s, conf_opts()).unwrap();
    }
    assert!(is_failed(cf::Host::create(&mut s, conf_opts())));
    s.conferences.remove(&id);
    cf::Host::create(&mut s, conf_opts()).unwrap();
}

#[test]
fn conference_functions_need_a_live_conference_of_this_session() {
    let (mut s, b) = two_answered();
    let conf = cf::Host::create(&mut s, conf_opts()).unwrap();
    let other = "cnf_0000000000000000".to_string();
    assert!(is_not_found(cf::Host::join(
        &mut s,
        other.clone(),
        C1.into(),
        join_opts()
    )));
    assert!(is_not_found(cf::Host::stop_media(&mut s, other.clone())));
    assert!(is_not_found(cf::Host::say(
        &mut s,
        other.clone(),
        "hi".into(),
        say_opts()
    )));
    assert!(is_not_found(cf::Host::join(
        &mut s,
        conf.clone(),
        "x".into(),
        join_opts()
    )));
    cf::Host::join(&mut s, conf.clone(), C1.into(), join_opts()).unwrap();
    cf::Host::join(&mut s, conf.clone(), b.clone(), join_opts()).unwrap();
    assert_eq!(
        s.actions[1],
        Action::ConferenceJoin {
            conference: conf.clone(),
            call: C1.into(),
            opts: JoinOptions {
                muted: true,
                deafened: false,
                role: ParticipantRole::Moderator
            }
        }
    );
    type Op = fn(&mut HostState, String, String) -> WitResult<()>;
    let ops: [Op; 6] = [
        |s, c, l| cf::Host::leave(s, c, l),
        |s, c, l| cf::Host::kick(s, c, l),
        |s, c, l| cf::Host::mute(s, c, l),
        |s, c, l| cf::Host::unmute(s, c, l),
        |s, c, l| cf::Host::deafen(s, c, l),
        |s, c, l| cf::Host::undeafen(s, c, l),
    ];
    for op in ops {
        assert!(is_not_found(op(&mut s, other.clone(), b.clone())));
        assert!(is_not_found(op(&mut s, conf.clone(), "x".into())));
        op(&mut s, conf.clone(), b.clone()).unwrap();
    }
    assert_eq!(
        cf::Host::say(&mut s, conf.clone(), "hi".into(), say_opts()).unwrap(),
        1
    );
    assert!(is_arg(cf::Host::say(
        &mut s,
        conf.clone(),
        "".into(),
        say_opts()
    )));
    assert!(is_not_found(cf::Host::play(
        &mut s,
        conf.clone(),
        "nope".into(),
        play_opts()
    )));
    assert_eq!(
        cf::Host::play(&mut s, conf.clone(), "known".into(), play_opts()).unwrap(),
        2
    );
    cf::Host::stop_media(&mut s, conf.clone()).unwrap();
    cf::Host::hangup(&mut s, conf.clone()).unwrap();
    assert_eq!(
        s.actions.last(),
        Some(&Action::ConferenceHangup {
            conference: conf.clone()
        })
    );
    assert!(is_not_found(cf::Host::hangup(&mut s, conf.clone())));
    assert!(is_not_found(cf::Host::join(
        &mut s,
        conf,
        C1.into(),
        join_opts()
    )));
}

#[test]
fn joining_needs_an_answered_leg_and_members_must_be_live() {
    let mut s = state();
    let conf = cf::Host::create(&mut s, conf_opts()).unwrap();
    assert!(is_state(cf::Host::join(
        &mut s,
        conf.clone(),
        C1.into(),
        join_opts()
    )));
    let leg = cc::Host::dial(&mut s, user("alice"), dial_opts()).unwrap();
    assert!(is_state(cf::Host::join(
        &mut s,
        conf.clone(),
        leg.clone(),
        join_opts()
    )));
    s.set_leg(&leg, LegPhase::Finished, Direction::Outbound);
    assert!(is_state(cf::Host::kick(&mut s, conf, leg)));
}

// ---- recordings ----

#[test]
fn recording_targets_and_options() {
    let mut s = state();
    let conf = cf::Host::create(&mut s, conf_opts()).unwrap();
    assert!(is_state(rc::Host::start(
        &mut s,
        wit::RecordTarget::Call(C1.into()),
        rec_opts()
    )));
    assert!(is_state(rc::Host::start(
        &mut s,
        wit::RecordTarget::Bridge(C1.into()),
        rec_opts()
    )));
    assert!(is_not_found(rc::Host::start(
        &mut s,
        wit::RecordTarget::Call("x".into()),
        rec_opts()
    )));
    assert!(is_not_found(rc::Host::start(
        &mut s,
        wit::RecordTarget::Conference("cnf_x".into()),
        rec_opts()
    )));
    cc::Host::answer(&mut s, C1.into()).unwrap();
    s.begin_event();
    let with = |f: &dyn Fn(&mut wit::RecordOptions)| {
        let mut o = rec_opts();
        f(&mut o);
        o
    };
    for bad in [
        with(&|o| {
            o.per_participant = true;
            o.stereo = true
        }),
        with(&|o| o.max_duration_ms = 86_400_001),
        with(&|o| o.metadata = vec![("bad name".into(), "v".into())]),
        with(&|o| o.metadata = vec![("k".into(), "a\u{0}b".into())]),
        with(&|o| o.metadata = (0..17).map(|i| (format!("k{i}"), "v".into())).collect()),
    ] {
        assert!(
            is_arg(rc::Host::start(
                &mut s,
                wit::RecordTarget::Call(C1.into()),
                bad.clone()
            )),
            "{bad:?}"
        );
    }
    let id = rc::Host::start(
        &mut s,
        wit::RecordTarget::Bridge(C1.into()),
        with(&|o| {
            o.stereo = true;
            o.metadata = vec![("customer".into(), "42".into())]
        }),
    )
    .unwrap();
    assert!(id.starts_with("rec_") && id.len() == 20, "{id}");
    assert_eq!(
        s.actions[0],
        Action::RecordStart {
            id: id.clone(),
            target: RecordTarget::Bridge(C1.into()),
            opts: RecordOptions {
                per_participant: false,
                stereo: true,
                max_duration_ms: 3_600_000,
                metadata: vec![("customer".into(), "42".into())]
            }
        }
    );
    rc::Host::start(
        &mut s,
        wit::RecordTarget::Conference(conf),
        with(&|o| o.per_participant = true),
    )
    .unwrap();
    rc::Host::stop(&mut s, id.clone()).unwrap();
    assert_eq!(
        s.actions.last(),
        Some(&Action::RecordStop { id: id.clone() })
    );
    assert!(is_not_found(rc::Host::stop(&mut s, id)));
    assert!(is_not_found(rc::Host::stop(&mut s, "rec_nope".into())));
}

#[test]
fn a_session_has_at_most_8_recordings() {
    let mut s = answered();
    let ids: Vec<String> = (0..MAX_RECORDINGS)
        .map(|_| rc::Host::start(&mut s, wit::RecordTarget::Call(C1.into()), rec_opts()).unwrap())
        .collect();
    assert!(is_failed(rc::Host::start(
        &mut s,
        wit::RecordTarget::Call(C1.into()),
        rec_opts()
    )));
    s.recordings.remove(&ids[3]);
    rc::Host::start(&mut s, wit::RecordTarget::Call(C1.into()), rec_opts()).unwrap();
}

// ---- timers ----

#[test]
fn timers_check_range_tag_and_limit() {
    let mut s = state();
    assert!(is_arg(tm::Host::set_timer(&mut s, 0, "t".into())));
    assert!(is_arg(tm::Host::set_timer(&mut s, 86_400_001, "t".into())));
    assert!(is_arg(tm::Host::set_timer(&mut s, 1, "x".repeat(257))));
    let first = tm::Host::set_timer(&mut s, 1, "x".repeat(256)).unwrap();
    assert_eq!(first, 1);
    for _ in 1..MAX_TIMERS {
        tm::Host::set_timer(&mut s, 86_400_000, "".into()).unwrap();
    }
    assert!(is_failed(tm::Host::set_timer(&mut s, 1000, "t".into())));
    s.begin_event();
    tm::Host::cancel_timer(&mut s, 999);
    assert!(s.actions.is_empty());
    tm::Host::cancel_timer(&mut s, first);
    assert_eq!(s.actions, vec![Action::CancelTimer { id: first }]);
    tm::Host::cancel_timer(&mut s, first);
    assert_eq!(s.actions.len(), 1);
    let next = tm::Host::set_timer(&mut s, 1000, "again".into()).unwrap();
    assert_eq!(next, MAX_TIMERS as u64 + 1);
    assert_eq!(
        s.actions[1],
        Action::SetTimer {
            id: next,
            ms: 1000,
            tag: "again".into()
        }
    );
}

// ---- budgets and the 0.1 adapters ----

#[test]
fn an_event_queues_a_bounded_number_of_actions() {
    let mut s = answered();
    for _ in 0..MAX_ACTIONS_PER_EVENT {
        cc::Host::stop_media(&mut s, C1.into()).unwrap();
    }
    assert!(is_failed(cc::Host::stop_media(&mut s, C1.into())));
    // A refused dial leaves no leg behind, a refused create no conference, a refused
    // timer no timer, a refused say no media id.
    let legs = s.legs.len();
    assert!(is_failed(cc::Host::dial(
        &mut s,
        user("alice"),
        dial_opts()
    )));
    assert_eq!(s.legs.len(), legs);
    assert!(is_failed(cf::Host::create(&mut s, conf_opts())));
    assert!(s.conferences.is_empty());
    assert!(is_failed(tm::Host::set_timer(&mut s, 1, "".into())));
    assert!(s.timers.is_empty());
    assert!(is_failed(cc::Host::say(
        &mut s,
        C1.into(),
        "hi".into(),
        say_opts()
    )));
    s.begin_event();
    assert_eq!(
        cc::Host::say(&mut s, C1.into(), "hi".into(), say_opts()).unwrap(),
        1
    );
}

// ---- hand-over ----

fn handing_msg<T: std::fmt::Debug>(r: WitResult<T>) -> String {
    match r {
        Err(wit::Error::InvalidState(m)) => m,
        other => panic!("expected invalid-state, got {other:?}"),
    }
}

#[test]
fn hand_over_needs_a_known_leg_not_dialing_finished_or_handing_over() {
    let mut s = answered();
    assert!(is_not_found(cc::Host::hand_over(
        &mut s,
        "nope".into(),
        "hello".into(),
        String::new()
    )));
    let out = cc::Host::dial(&mut s, user("alice"), dial_opts()).unwrap();
    s.begin_event();
    assert!(is_state(cc::Host::hand_over(
        &mut s,
        out.clone(),
        "hello".into(),
        String::new()
    )));
    s.set_leg(&out, LegPhase::Finished, Direction::Outbound);
    assert!(is_state(cc::Host::hand_over(
        &mut s,
        out,
        "hello".into(),
        String::new()
    )));
    assert!(s.actions.is_empty());

    // An unanswered inbound leg may be handed over as well as an answered one.
    let mut s = state();
    cc::Host::hand_over(&mut s, C1.into(), "hello".into(), "x".into()).unwrap();
    assert_eq!(phase(&s, C1), LegPhase::HandingOver);
    assert_eq!(s.handing_over.get(C1), Some(&LegPhase::Ringing));
    assert_eq!(
        s.actions,
        vec![Action::HandOver {
            call: C1.into(),
            app: "hello".into(),
            data: "x".into()
        }]
    );
    assert!(
        handing_msg(cc::Host::hand_over(
            &mut s,
            C1.into(),
            "hello".into(),
            String::new()
        ))
        .contains("is being handed over")
    );
}

#[test]
fn hand_over_checks_the_app_and_the_data() {
    let mut s = answered();
    for bad in ["", "a b", "app/x", "héllo", &"a".repeat(65)] {
        assert!(
            is_arg(cc::Host::hand_over(
                &mut s,
                C1.into(),
                bad.into(),
                String::new()
            )),
            "{bad:?}"
        );
    }
    assert!(is_arg(cc::Host::hand_over(
        &mut s,
        C1.into(),
        "hello".into(),
        "d".repeat(MAX_HAND_OVER_DATA + 1)
    )));
    // A refused request changes nothing.
    assert_eq!(phase(&s, C1), LegPhase::Answered);
    assert!(s.actions.is_empty() && s.handing_over.is_empty());
    cc::Host::hand_over(
        &mut s,
        C1.into(),
        "app_0123456789abcdef".into(),
        "d".repeat(MAX_HAND_OVER_DATA),
    )
    .unwrap();
    assert_eq!(phase(&s, C1), LegPhase::HandingOver);
    let mut s = answered();
    cc::Host::hand_over(&mut s, C1.into(), "a".repeat(64), String::new()).unwrap();
    let mut s = answered();
    cc::Host::hand_over(&mut s, C1.into(), "my-app_2.v1".into(), String::new()).unwrap();
}

#[test]
fn a_leg_being_handed_over_refuses_every_request_until_the_host_answers() {
    let (mut s, b) = two_answered();
    let conf = cf::Host::create(&mut s, conf_opts()).unwrap();
    cc::Host::hand_over(&mut s, b.clone(), "other".into(), String::new()).unwrap();
    s.begin_event();
    let msg = handing_msg(cc::Host::say(&mut s, b.clone(), "hi".into(), say_opts()));
    assert!(msg.contains("being handed over"), "{msg}");
    assert!(is_state(cc::Host::hangup(&mut s, b.clone())));
    assert!(is_state(cc::Host::stop_media(&mut s, b.clone())));
    assert!(is_state(cc::Host::hold(&mut s, b.clone(), None)));
    assert!(is_state(cc::Host::connect(&mut s, C1.into(), b.clone())));
    assert!(is_state(cc::Host::transfer(
        &mut s,
        b.clone(),
        user("bob"),
        dial_opts()
    )));
    assert!(is_state(cf::Host::join(
        &mut s,
        conf.clone(),
        b.clone(),
        join_opts()
    )));
    assert!(is_state(cf::Host::leave(&mut s, conf, b.clone())));
    assert!(is_state(rc::Host::start(
        &mut s,
        wit::RecordTarget::Call(b.clone()),
        rec_opts()
    )));
    assert!(is_state(cc::Host::refuse_hand_over(
        &mut s,
        b.clone(),
        String::new()
    )));
    assert!(s.actions.is_empty());
    // The other legs are untouched.
    cc::Host::say(&mut s, C1.into(), "hi".into(), say_opts()).unwrap();
    // Refused: the host puts the leg back in its real phase and requests work again.
    s.set_leg(&b, LegPhase::Answered, Direction::Outbound);
    assert!(s.handing_over.is_empty());
    cc::Host::say(&mut s, b.clone(), "hi".into(), say_opts()).unwrap();
    cc::Host::connect(&mut s, C1.into(), b).unwrap();
}

#[test]
fn hand_over_is_bounded_by_the_event_budget() {
    let mut s = answered();
    for _ in 0..MAX_ACTIONS_PER_EVENT {
        cc::Host::stop_media(&mut s, C1.into()).unwrap();
    }
    assert!(is_failed(cc::Host::hand_over(
        &mut s,
        C1.into(),
        "hello".into(),
        String::new()
    )));
    assert_eq!(phase(&s, C1), LegPhase::Answered);
    assert!(s.handing_over.is_empty());
}

#[test]
fn refuse_hand_over_only_for_the_leg_being_delivered() {
    let mut s = state();
    assert!(is_not_found(cc::Host::refuse_hand_over(
        &mut s,
        "nope".into(),
        String::new()
    )));
    // Not during the on-call-received of a handed-over leg.
    let msg = handing_msg(cc::Host::refuse_hand_over(&mut s, C1.into(), "busy".into()));
    assert!(msg.contains("not handed over"), "{msg}");
    // The flag names another leg.
    s.set_leg("c2", LegPhase::Answered, Direction::Inbound);
    s.handed_over_call = Some("c2".into());
    assert!(is_state(cc::Host::refuse_hand_over(
        &mut s,
        C1.into(),
        String::new()
    )));
    s.handed_over_call = Some(C1.into());
    assert!(is_arg(cc::Host::refuse_hand_over(
        &mut s,
        C1.into(),
        "r".repeat(MAX_REFUSE_REASON + 1)
    )));
    assert_eq!(phase(&s, C1), LegPhase::Ringing);
    assert!(s.actions.is_empty());
    cc::Host::refuse_hand_over(&mut s, C1.into(), "r".repeat(MAX_REFUSE_REASON)).unwrap();
    assert_eq!(
        s.actions,
        vec![Action::RefuseHandOver {
            call: C1.into(),
            reason: "r".repeat(MAX_REFUSE_REASON)
        }]
    );
    // The leg is no longer this session's.
    assert_eq!(phase(&s, C1), LegPhase::Finished);
    assert!(is_state(cc::Host::refuse_hand_over(
        &mut s,
        C1.into(),
        String::new()
    )));
    assert!(is_state(cc::Host::answer(&mut s, C1.into())));
}

#[test]
fn a_refused_hand_over_cannot_be_handed_on_in_the_same_event() {
    let mut s = state();
    s.handed_over_call = Some(C1.into());
    // Handing the leg on is allowed; refusing it afterwards is not (it is being handed over).
    cc::Host::hand_over(&mut s, C1.into(), "next".into(), String::new()).unwrap();
    assert!(is_state(cc::Host::refuse_hand_over(
        &mut s,
        C1.into(),
        String::new()
    )));
}

#[test]
fn legacy_imports_run_the_same_checks() {
    use crate::bindings::v0_1::{call_control as cc1, types as wit1};
    let mut s = state();
    assert!(matches!(
        cc1::Host::say(
            &mut s,
            C1.into(),
            "hi".into(),
            wit1::SayOptions {
                language: None,
                voice: None,
                loop_count: 0,
                stop_on_dtmf: true
            }
        ),
        Err(wit1::Error::InvalidState(_))
    ));
    assert!(matches!(
        cc1::Host::answer(&mut s, "c2".into()),
        Err(wit1::Error::NotFound(_))
    ));
    cc1::Host::answer(&mut s, C1.into()).unwrap();
    assert!(matches!(
        cc1::Host::answer(&mut s, C1.into()),
        Err(wit1::Error::InvalidState(_))
    ));
    assert!(matches!(
        cc1::Host::collect_dtmf(
            &mut s,
            C1.into(),
            wit1::CollectOptions {
                max_digits: 0,
                terminator: None,
                timeout_ms: 1
            }
        ),
        Err(wit1::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        cc1::Host::play(
            &mut s,
            C1.into(),
            "nope".into(),
            wit1::PlayOptions {
                loop_count: 1,
                offset_ms: 0,
                timeout_ms: None,
                stop_on_dtmf: false
            }
        ),
        Err(wit1::Error::NotFound(_))
    ));
    assert_eq!(
        cc1::Host::say(
            &mut s,
            C1.into(),
            "hi".into(),
            wit1::SayOptions {
                language: None,
                voice: None,
                loop_count: 0,
                stop_on_dtmf: true
            }
        )
        .unwrap(),
        1
    );
    cc1::Host::hangup(&mut s, C1.into()).unwrap();
    assert_eq!(s.actions.len(), 3);
    assert_eq!(s.actions[2], Action::Hangup { call: C1.into() });
}

#[test]
fn sip_uri_hosts() {
    assert!(check_sip_uri("sip:host").is_ok());
    assert!(check_sip_uri("sip:user:pw@host:5060;transport=tcp?subject=x").is_ok());
    assert!(check_sip_uri("sip:user@host?x").is_ok());
    assert!(check_sip_uri("sip:user@[::1]").is_ok());
    assert!(check_sip_uri("sip:user@[]").is_err());
    assert!(check_sip_uri("sip:;transport=tcp").is_err());
    assert!(check_sip_uri("SIP:host").is_err());
}
