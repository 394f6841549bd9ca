//! Hand-over: a leg's media leaves one plane (its session) and joins another with its RTP
//! session intact, so the phone sees one unbroken stream.

use std::time::Duration;

use crate::net::{Net, assert_hears};

#[test]
fn a_handed_over_leg_keeps_its_stream_and_is_bridged_in_the_new_plane() {
    let mut net = Net::new(40, 0.0, 0);
    let second = net.add_plane(0);
    let a = net.phone(0, "a", 1000);
    let b = net.phone(0, "b", 3000);
    net.planes[0].bridge("a", "b");
    net.run(Duration::from_secs(2));
    let ssrc = net.planes[0].rtp("a").map(|r| r.ssrc());
    let sent_before = net.planes[0].rtp("a").map(|r| r.stats().packets_sent);

    let media = net.planes[0].take_leg("a").expect("a is in plane 0");
    assert_eq!(
        net.planes[0].bridge_peer("b"),
        None,
        "its old peer is detached"
    );
    assert!(net.planes[0].leg("a").is_none());
    net.planes[second].insert_leg(media);
    net.phones[a].plane = second;
    let c = net.phone(second, "c", 5000);
    net.planes[second].bridge("a", "c");
    net.clear_heard();
    net.run(Duration::from_secs(3));
    assert_hears(&net, a, 5000, 0.95);
    assert_hears(&net, c, 1000, 0.95);
    assert_hears(&net, b, 0, 0.95);
    // One RTP stream: the same SSRC, its sequence numbers continued (the phone counted no
    // loss across the move).
    assert_eq!(net.planes[second].rtp("a").map(|r| r.ssrc()), ssrc);
    let sent_after = net.planes[second].rtp("a").map(|r| r.stats().packets_sent);
    assert!(sent_after > sent_before);
    assert_eq!(net.phones[a].rtp.stats().packets_lost, 0);
}
