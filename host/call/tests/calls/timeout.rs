//! The RTP inactivity rule in virtual time: an answered leg that expects media and receives
//! none for the timeout has run out of media; a held or ending leg never does.

use std::time::Duration;

use crate::net::Net;

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_silent_answered_leg_runs_out_of_media_a_timeout_after_its_last_datagram() {
    let mut net = Net::new(80, 0.0, 0);
    let a = net.phone(0, "a", 1000);
    net.run(Duration::from_secs(10));
    assert!(net.planes[0].inactive_legs(net.now, TIMEOUT).is_empty());
    // The phone goes quiet (a dead NAT binding, a crashed phone).
    net.phones[a].says = None;
    let last = net.planes[0].media_seen("a").expect("media seen");
    assert_eq!(
        net.planes[0].inactivity_deadline(TIMEOUT),
        Some(last + TIMEOUT)
    );
    net.run(Duration::from_secs(59));
    assert!(net.planes[0].inactive_legs(net.now, TIMEOUT).is_empty());
    net.run(Duration::from_secs(2));
    assert_eq!(net.planes[0].inactive_legs(net.now, TIMEOUT), vec!["a"]);
}

#[test]
fn a_held_or_ending_leg_never_runs_out_of_media() {
    let mut net = Net::new(81, 0.0, 0);
    let a = net.phone(0, "a", 1000);
    let b = net.phone(0, "b", 1000);
    net.phones[a].says = None;
    net.phones[b].says = None;
    let now = net.now;
    net.planes[0].hold(now, "a", true, None);
    net.planes[0].set_ending("b");
    net.run(Duration::from_secs(120));
    assert!(net.planes[0].inactive_legs(net.now, TIMEOUT).is_empty());
    assert_eq!(net.planes[0].inactivity_deadline(TIMEOUT), None);
    // Resumed: the clock starts at the resume, not at the last datagram.
    let now = net.now;
    net.planes[0].hold(now, "a", false, None);
    assert_eq!(
        net.planes[0].inactivity_deadline(TIMEOUT),
        Some(now + TIMEOUT)
    );
}
