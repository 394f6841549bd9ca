//! Group calls: how one outbound leg rings its members (ring-all, linear, trunk failover) in
//! virtual time, and a ring-all group whose winner is bridged with the caller.

use std::time::Duration;

use pbx_app::HangupReason;
use pbx_call::dialer::{AttemptId, Dialer, DialerOutput, Member, Stage, Strategy, Target};

use crate::net::{Net, assert_hears, origin};

fn target(name: &str) -> Target {
    Target {
        request_uri: format!("sip:{name}@127.0.0.1"),
        label: name.to_string(),
        trunk: None,
    }
}

fn drain(d: &mut Dialer) -> Vec<DialerOutput> {
    std::iter::from_fn(|| d.poll_output()).collect()
}

fn started(outputs: &[DialerOutput]) -> Vec<(AttemptId, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            DialerOutput::Start { attempt, target } => Some((*attempt, target.label.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn ring_all_first_answer_wins_and_the_rest_are_cancelled() {
    let t0 = origin();
    let mut d = Dialer::new(vec![Stage {
        members: vec![
            Member::Parallel(vec![target("alice")]),
            Member::Parallel(vec![target("bob")]),
        ],
        strategy: Strategy::RingAll,
        timeout: Duration::from_secs(20),
    }]);
    d.start(t0);
    let out = drain(&mut d);
    assert_eq!(started(&out), vec![(1, "alice".into()), (2, "bob".into())]);
    d.on_answered(2);
    assert_eq!(
        drain(&mut d),
        vec![
            DialerOutput::Cancel { attempt: 1 },
            DialerOutput::Answered { attempt: 2 }
        ]
    );
    assert!(d.is_finished());
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn ring_all_then_linear_in_virtual_time() {
    let t0 = origin();
    let mut d = Dialer::new(vec![
        Stage {
            members: vec![
                Member::Parallel(vec![target("alice")]),
                Member::Parallel(vec![target("bob")]),
            ],
            strategy: Strategy::RingAll,
            timeout: Duration::from_secs(20),
        },
        Stage {
            members: vec![
                Member::Parallel(vec![target("carol")]),
                Member::Parallel(vec![target("dave")]),
            ],
            strategy: Strategy::Linear,
            timeout: Duration::from_secs(10),
        },
    ]);
    d.start(t0);
    drain(&mut d);
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    // Too early: nothing happens.
    d.handle_timeout(t0 + Duration::from_secs(19));
    assert!(drain(&mut d).is_empty());
    let t1 = t0 + Duration::from_secs(20);
    d.handle_timeout(t1);
    let out = drain(&mut d);
    assert!(out.contains(&DialerOutput::Cancel { attempt: 1 }));
    assert!(out.contains(&DialerOutput::Cancel { attempt: 2 }));
    assert_eq!(started(&out), vec![(3, "carol".into())]);
    // carol is busy: dave rings at once with a fresh 10 s.
    let t2 = t1 + Duration::from_secs(3);
    d.on_failed(t2, 3, 486);
    assert_eq!(started(&drain(&mut d)), vec![(4, "dave".into())]);
    assert_eq!(d.poll_timeout(), Some(t2 + Duration::from_secs(10)));
    d.handle_timeout(t2 + Duration::from_secs(10));
    let out = drain(&mut d);
    assert_eq!(
        out,
        vec![
            DialerOutput::Cancel { attempt: 4 },
            DialerOutput::Failed {
                reason: HangupReason::Noanswer,
                status: Some(408)
            }
        ]
    );
    assert!(d.is_finished());
}

#[test]
fn failover_moves_on_only_when_a_trunk_failed() {
    let t0 = origin();
    let stage = |members| Stage {
        members,
        strategy: Strategy::RingAll,
        timeout: Duration::from_secs(30),
    };
    // 503 from the first trunk: the second is tried.
    let mut d = Dialer::new(vec![stage(vec![Member::Failover(vec![
        target("trunk1"),
        target("trunk2"),
    ])])]);
    d.start(t0);
    assert_eq!(started(&drain(&mut d)), vec![(1, "trunk1".into())]);
    d.on_failed(t0, 1, 503);
    assert_eq!(started(&drain(&mut d)), vec![(2, "trunk2".into())]);
    d.on_answered(2);
    assert_eq!(drain(&mut d), vec![DialerOutput::Answered { attempt: 2 }]);

    // 486 from the first trunk: busy is final, no failover.
    for (status, reason) in [
        (486, HangupReason::Busy),
        (480, HangupReason::Noanswer),
        (487, HangupReason::Cancel),
    ] {
        let mut d = Dialer::new(vec![stage(vec![Member::Failover(vec![
            target("trunk1"),
            target("trunk2"),
        ])])]);
        d.start(t0);
        drain(&mut d);
        d.on_failed(t0, 1, status);
        let out = drain(&mut d);
        assert!(started(&out).is_empty(), "{status} must not fail over");
        assert_eq!(
            out,
            vec![DialerOutput::Failed {
                reason,
                status: Some(status)
            }]
        );
    }
}

#[test]
fn unreachable_members_are_skipped_and_reported() {
    let t0 = origin();
    let mut d = Dialer::new(vec![Stage {
        members: vec![Member::Unreachable(HangupReason::Failed)],
        strategy: Strategy::Linear,
        timeout: Duration::from_secs(5),
    }]);
    d.start(t0);
    assert_eq!(
        drain(&mut d),
        vec![DialerOutput::Failed {
            reason: HangupReason::Failed,
            status: None
        }]
    );
}

#[test]
fn abort_cancels_live_attempts_and_reports_nothing_more() {
    let t0 = origin();
    let mut d = Dialer::new(vec![Stage {
        members: vec![Member::Parallel(vec![target("a"), target("b")])],
        strategy: Strategy::RingAll,
        timeout: Duration::from_secs(5),
    }]);
    d.start(t0);
    drain(&mut d);
    d.abort();
    assert_eq!(
        drain(&mut d),
        vec![
            DialerOutput::Cancel { attempt: 1 },
            DialerOutput::Cancel { attempt: 2 }
        ]
    );
    d.on_answered(1);
    d.handle_timeout(t0 + Duration::from_secs(60));
    assert!(drain(&mut d).is_empty());
}

#[test]
fn the_first_member_of_a_ring_all_group_to_answer_is_bridged_with_the_caller() {
    let mut net = Net::new(70, 0.02, 0);
    let caller = net.phone(0, "caller", 1000);
    let mut d = Dialer::new(vec![Stage {
        members: vec![
            Member::Parallel(vec![target("desk")]),
            Member::Parallel(vec![target("mobile")]),
        ],
        strategy: Strategy::RingAll,
        timeout: Duration::from_secs(20),
    }]);
    let t0 = net.now;
    d.start(t0);
    assert_eq!(started(&drain(&mut d)).len(), 2);
    // Both ring for 7 s while the caller hears the built-in music.
    net.planes[0].start_music("caller", None);
    net.run(Duration::from_secs(7));
    assert!(d.poll_timeout().is_some_and(|t| t > net.now));
    // The mobile answers: the desk is cancelled and the mobile's leg is bridged.
    d.on_answered(2);
    assert_eq!(
        drain(&mut d),
        vec![
            DialerOutput::Cancel { attempt: 1 },
            DialerOutput::Answered { attempt: 2 }
        ]
    );
    let mobile = net.phone(0, "mobile", 4000);
    net.planes[0].bridge("caller", "mobile");
    net.clear_heard();
    net.run(Duration::from_secs(30));
    assert_hears(&net, caller, 4000, 0.85);
    assert_hears(&net, mobile, 1000, 0.85);
}
