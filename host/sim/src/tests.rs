//! Engine tests with a tiny scripted in-crate driver: host-like orders, virtual durations,
//! scripted callees, and how expectations pass and fail.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

use crate::*;

/// A driver whose app is a closure; it hands out media and timer ids from 1 and new legs
/// as `dial-N`, like a host would.
struct Scripted<F> {
    app: F,
    next_id: u64,
    synced: Vec<Vec<LegView>>,
}

impl<F: FnMut(&SimEvent, &mut u64) -> Vec<SimRequest>> Scripted<F> {
    fn new(app: F) -> Self {
        Scripted {
            app,
            next_id: 0,
            synced: Vec::new(),
        }
    }
}

impl<F: FnMut(&SimEvent, &mut u64) -> Vec<SimRequest>> AppDriver for Scripted<F> {
    fn deliver(&mut self, event: &SimEvent) -> Result<Vec<SimRequest>, String> {
        if let SimEvent::Dtmf { digit, .. } = event
            && digit == "9"
        {
            return Err("trap: unreachable".into());
        }
        Ok((self.app)(event, &mut self.next_id))
    }

    fn sync_legs(&mut self, legs: &[LegView]) {
        self.synced.push(legs.to_vec());
    }
}

fn say(call: &str, id: &mut u64, text: &str, stop_on_dtmf: bool) -> SimRequest {
    *id += 1;
    SimRequest::Say {
        call: call.into(),
        id: *id,
        text: text.into(),
        opts: SayOpts {
            loops: 1,
            stop_on_dtmf,
            language: None,
        },
    }
}

/// Answers and greets; speaks back each key; on the menu's key-stop it says the choice.
fn greeter(event: &SimEvent, id: &mut u64) -> Vec<SimRequest> {
    match event {
        SimEvent::CallReceived(info) => vec![
            SimRequest::Answer {
                call: info.id.clone(),
            },
            SimRequest::Log {
                level: LogLevel::Info,
                message: format!("call from {}", info.from),
            },
            say(&info.id, id, "Hello there", true),
        ],
        SimEvent::SayFinished { call, finished } if finished.digit.is_some() => {
            vec![say(
                call,
                id,
                &format!("You chose {}", finished.digit.clone().unwrap_or_default()),
                false,
            )]
        }
        _ => Vec::new(),
    }
}

fn run_with<F: FnMut(&SimEvent, &mut u64) -> Vec<SimRequest>>(text: &str, app: F) -> Transcript {
    let scenario = Scenario::parse(text).unwrap();
    run(&scenario, &mut Scripted::new(app))
}

fn event_names(t: &Transcript) -> Vec<String> {
    t.events().iter().map(ToString::to_string).collect()
}

#[test]
fn greeting_and_hangup_mid_greeting_reports_the_say_before_the_end() {
    let t = run_with(
        "call from=alice to=1000\nexpect answer\nexpect say \"Hello\"\nexpect log \"alice\"\nwait 200ms\nhangup\nexpect finished by=remote reason=normal\nexpect no-more\nexpect idle\n",
        greeter,
    );
    assert!(t.passed(), "{t}");
    assert_eq!(
        event_names(&t),
        [
            "call-received leg-1 alice -> 1000",
            "say-finished leg-1 #1 interrupted",
            "call-finished leg-1 by remote (normal) answered",
        ]
    );
    assert!(t.lines()[0].starts_with("[  0.000] :: line 1"), "{t}");
    assert!(
        t.lines()
            .iter()
            .any(|l| l == "[  0.200] -> say-finished leg-1 #1 interrupted"),
        "{t}"
    );
}

#[test]
fn a_key_stops_the_menu_then_the_app_answers_it() {
    let t = run_with(
        "call\nwait 100ms\npress 2\nexpect say \"You chose 2\"\nwait 10s\nexpect idle",
        greeter,
    );
    assert!(t.passed(), "{t}");
    assert_eq!(
        event_names(&t),
        [
            "call-received leg-1 caller -> 1000",
            "dtmf leg-1 2",
            "say-finished leg-1 #1 interrupted by 2",
            // "You chose 2" is 11 characters: 660 ms.
            "say-finished leg-1 #2 completed",
        ]
    );
    assert!(
        t.lines()
            .iter()
            .any(|l| l.starts_with("[  0.760] -> say-finished leg-1 #2")),
        "{t}"
    );
}

#[test]
fn say_lasts_60_ms_a_character_at_least_500_ms_times_loops() {
    let t = run_with("call\nwait 5s", |e, id| match e {
        SimEvent::CallReceived(info) => {
            let mut long = say(&info.id, id, &"x".repeat(20), false);
            if let SimRequest::Say { opts, .. } = &mut long {
                opts.loops = 2;
            }
            vec![
                SimRequest::Answer {
                    call: info.id.clone(),
                },
                say(&info.id, id, "hi", false),
                long,
            ]
        }
        _ => Vec::new(),
    });
    let at: Vec<&String> = t
        .lines()
        .iter()
        .filter(|l| l.contains("say-finished"))
        .collect();
    assert!(at[0].starts_with("[  0.500]"), "{t}");
    assert!(at[1].starts_with("[  2.900]"), "{t}");
}

#[test]
fn collect_ends_on_max_digits_terminator_and_timeout() {
    let collect = |max: u32| {
        move |e: &SimEvent, _: &mut u64| match e {
            SimEvent::CallReceived(info) => vec![
                SimRequest::Answer {
                    call: info.id.clone(),
                },
                SimRequest::Collect {
                    call: info.id.clone(),
                    max_digits: max,
                    terminator: Some('#'),
                    timeout_ms: 3000,
                },
            ],
            _ => Vec::new(),
        }
    };
    let t = run_with("call\npress 1 2 3 4", collect(3));
    assert!(
        event_names(&t).contains(&"dtmf-collected leg-1 \"123\" (max-digits)".to_owned()),
        "{t}"
    );
    let t = run_with("call\npress 12#", collect(8));
    assert!(
        event_names(&t).contains(&"dtmf-collected leg-1 \"12\" (terminator)".to_owned()),
        "{t}"
    );
    // The timeout restarts at each key: keys at 0, 2.9 s; timeout at 5.9 s.
    let t = run_with(
        "call\npress 1 2 gap=2.9s\nwait 2.999s\nexpect idle\nwait 1ms\nexpect idle",
        collect(8),
    );
    assert_eq!(t.failures().len(), 1, "{t}");
    assert_eq!(t.failures()[0].line, 4);
    assert!(
        t.lines()
            .iter()
            .any(|l| l.starts_with("[  5.900] -> dtmf-collected leg-1 \"12\" (timeout)")),
        "{t}"
    );
    // The caller hanging up cancels it, before on-call-finished.
    let t = run_with("call\npress 1\nhangup", collect(8));
    let names = event_names(&t);
    assert_eq!(
        names[names.len() - 2],
        "dtmf-collected leg-1 \"1\" (cancelled)"
    );
}

/// Dials bob when the call arrives, connects on answer, logs the end of every leg.
fn dialer(e: &SimEvent, _: &mut u64) -> Vec<SimRequest> {
    match e {
        SimEvent::CallReceived(info) => vec![
            SimRequest::Answer {
                call: info.id.clone(),
            },
            SimRequest::Dial {
                new_leg: "dial-1".into(),
                endpoint: "user:bob".into(),
                timeout_ms: 30_000,
            },
        ],
        SimEvent::Answered { call } => vec![SimRequest::Connect {
            a: "leg-1".into(),
            b: call.clone(),
        }],
        _ => Vec::new(),
    }
}

#[test]
fn dialled_legs_follow_their_script() {
    let t = run_with(
        "answer out-1 after 2s\ncall\nexpect dial user:bob\nwait 2s\nexpect connect leg-1 out-1\nhangup out-1\nexpect finished out-1 by=remote\nhangup\nexpect finished reason=normal",
        dialer,
    );
    assert!(t.passed(), "{t}");
    assert!(
        t.lines().iter().any(|l| l == "[  0.000] -> ringing out-1"),
        "{t}"
    );
    assert!(
        t.lines().iter().any(|l| l == "[  2.000] -> answered out-1"),
        "{t}"
    );

    let t = run_with(
        "call\nbusy out-1 after 1s\nwait 1s\nexpect finished out-1 by=remote reason=busy status=486",
        dialer,
    );
    assert!(t.passed(), "{t}");

    let t = run_with(
        "call\nwait 30s\nexpect finished out-1 by=local reason=noanswer",
        dialer,
    );
    assert!(t.passed(), "{t}");

    // The first leg's end ends the others: a ringing leg is cancelled, after the first.
    let t = run_with(
        "call\nhangup\nexpect finished out-1 by=local reason=cancel",
        dialer,
    );
    assert!(t.passed(), "{t}");
    let names = event_names(&t);
    assert_eq!(
        names[names.len() - 2],
        "call-finished leg-1 by remote (normal) answered"
    );
    assert_eq!(
        names[names.len() - 1],
        "call-finished dial-1 by local (cancel)"
    );
}

#[test]
fn timers_fire_unless_cancelled() {
    let t = run_with(
        "call\nwait 10s\nexpect timer 2s\nexpect request \"cancel-timer(2)\"",
        |e, _| match e {
            SimEvent::CallReceived(_) => vec![
                SimRequest::SetTimer {
                    id: 1,
                    ms: 2000,
                    tag: "a".into(),
                },
                SimRequest::SetTimer {
                    id: 2,
                    ms: 3000,
                    tag: "b".into(),
                },
                SimRequest::CancelTimer { id: 2 },
            ],
            _ => Vec::new(),
        },
    );
    assert!(t.passed(), "{t}");
    assert_eq!(event_names(&t)[1], "timer 1 \"a\"");
    assert_eq!(t.events().len(), 2);
}

#[test]
fn failing_expectations_name_their_line_and_keep_going() {
    let t = run_with(
        "call\nexpect say \"Goodbye\"\nexpect answer\nexpect reject\nexpect finished\nexpect no-more\nexpect app-error",
        greeter,
    );
    let lines: Vec<usize> = t.failures().iter().map(|f| f.line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7], "{t}");
    assert!(!t.passed());
    assert!(
        t.failures()[0].message.contains("answer(leg-1)"),
        "{}",
        t.failures()[0]
    );
    assert!(t.lines().last().unwrap().contains("FAILED (5 of 6"), "{t}");
}

#[test]
fn an_app_failure_ends_every_leg_and_fails_the_run_unless_expected() {
    let t = run_with(
        "call\npress 9\nexpect finished by=local reason=app-error\npress 1",
        greeter,
    );
    assert_eq!(t.failures().len(), 1, "{t}");
    assert!(t.failures()[0].message.contains("trap"));
    assert_eq!(t.failures()[0].line, 2);
    let t = run_with("call\npress 9\nexpect app-error", greeter);
    assert!(t.passed(), "{t}");
}

#[test]
fn keys_before_answer_are_not_heard_and_sync_reports_phases() {
    let mut driver = Scripted::new(|_: &SimEvent, _: &mut u64| Vec::new());
    let t = run(
        &Scenario::parse("call\npress 1\nhangup").unwrap(),
        &mut driver,
    );
    assert_eq!(
        event_names(&t),
        [
            "call-received leg-1 caller -> 1000",
            "call-finished leg-1 by remote (cancel) sip 487"
        ]
    );
    assert_eq!(driver.synced[0][0].phase, LegPhase::Ringing);
    assert_eq!(driver.synced[1][0].phase, LegPhase::Finished);
}

#[test]
fn play_uses_the_file_table_and_timeouts() {
    let t = run_with(
        "file f_a 2s\ncall\nwait 10s\nexpect play f_a",
        |e, _| match e {
            SimEvent::CallReceived(info) => vec![
                SimRequest::Answer {
                    call: info.id.clone(),
                },
                SimRequest::Play {
                    call: info.id.clone(),
                    id: 1,
                    file: "f_a".into(),
                    opts: PlayOpts {
                        loops: 2,
                        offset_ms: 500,
                        timeout_ms: None,
                        stop_on_dtmf: false,
                    },
                },
                SimRequest::Play {
                    call: info.id.clone(),
                    id: 2,
                    file: "other".into(),
                    opts: PlayOpts {
                        loops: 1,
                        offset_ms: 0,
                        timeout_ms: Some(300),
                        stop_on_dtmf: false,
                    },
                },
            ],
            _ => Vec::new(),
        },
    );
    assert!(t.passed(), "{t}");
    assert!(
        t.lines()
            .iter()
            .any(|l| l == "[  3.500] -> play-finished leg-1 #1 completed"),
        "{t}"
    );
    assert!(
        t.lines()
            .iter()
            .any(|l| l == "[  3.800] -> play-finished leg-1 #2 interrupted"),
        "{t}"
    );
}

#[test]
fn parse_errors_become_failed_transcripts() {
    let t = run_text("call\nfly away", &mut Scripted::new(greeter));
    assert!(!t.passed());
    assert_eq!(t.failures()[0].line, 2);
}

#[test]
fn http_requests_are_answered_by_the_scenario() {
    let t = run_with(
        "call\nexpect http \"GET https://crm/\"\nhttp-response 1 200 \"{}\"\nhttp-error 2 timeout\nhttp-response 7 200",
        |e, _| match e {
            SimEvent::CallReceived(_) => vec![
                SimRequest::Http {
                    id: 1,
                    method: "GET".into(),
                    url: "https://crm/x".into(),
                },
                SimRequest::Http {
                    id: 2,
                    method: "POST".into(),
                    url: "https://crm/y".into(),
                },
            ],
            _ => Vec::new(),
        },
    );
    assert!(t.passed(), "{t}");
    assert_eq!(
        event_names(&t)[1..],
        [
            "http-response #1 200 \"{}\"",
            "http-response #2 failed: timeout"
        ]
    );
    assert!(
        t.lines().iter().any(|l| l.contains("no HTTP request #7")),
        "{t}"
    );
}

#[test]
fn expect_event_checks_the_order_of_deliveries() {
    let t = run_with(
        "call\nhangup\nexpect event \"say-finished leg-1 #1 interrupted\"\nexpect event \"call-finished\"\nexpect event \"say-finished\"",
        greeter,
    );
    let lines: Vec<usize> = t.failures().iter().map(|f| f.line).collect();
    assert_eq!(lines, [5], "{t}");
}
