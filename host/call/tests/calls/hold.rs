//! Hold and resume: the held party hears music instead of its peer, its own voice reaches
//! nobody, and resume restores the bridge.

use std::time::Duration;

use crate::net::{Net, assert_hears, level_clip};

#[test]
fn a_held_leg_hears_music_and_its_peer_hears_silence_until_resume() {
    let mut net = Net::new(20, 0.02, 0);
    let a = net.phone(0, "a", 1000);
    let b = net.phone(0, "b", 3000);
    net.planes[0].bridge("a", "b");
    net.run(Duration::from_secs(5));
    let now = net.now;
    net.planes[0].hold(now, "a", true, Some(level_clip(700, 3)));
    assert!(net.planes[0].is_held("a"));
    assert!(
        !net.planes[0].is_relaying("a"),
        "a held leg is never relayed"
    );
    net.clear_heard();
    net.run(Duration::from_secs(30));
    assert_hears(&net, a, 700, 0.85);
    assert_hears(&net, b, 0, 0.85);
    assert_eq!(
        net.planes[0].bridge_peer("a").as_deref(),
        Some("b"),
        "hold keeps the bridge"
    );
    let now = net.now;
    net.planes[0].hold(now, "a", false, None);
    net.clear_heard();
    net.run(Duration::from_secs(5));
    assert_hears(&net, a, 3000, 0.85);
    assert_hears(&net, b, 1000, 0.85);
}

#[test]
fn hold_without_a_file_plays_the_built_in_music_and_restarts_the_media_clock() {
    let mut net = Net::new(21, 0.0, 450);
    let a = net.phone(0, "a", 1000);
    let _b = net.phone(0, "b", 3000);
    net.planes[0].bridge("a", "b");
    net.run(Duration::from_secs(1));
    let now = net.now;
    net.planes[0].hold(now, "a", true, None);
    assert_eq!(net.planes[0].media_seen("a"), Some(now));
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert_hears(&net, a, 450, 0.95);
}
