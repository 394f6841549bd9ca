//! Bridges: each side hears the other for a whole minute at 5% loss, packets relay without
//! decoding when nothing needs the audio, and decoding resumes the moment something does.

use std::time::Duration;

use crate::net::{Net, assert_hears};

#[test]
fn a_bridge_carries_each_side_to_the_other_for_a_minute_at_five_percent_loss() {
    let mut net = Net::new(1, 0.05, 0);
    let a = net.phone(0, "a", 1000);
    let b = net.phone(0, "b", 3000);
    net.planes[0].bridge("a", "b");
    net.run(Duration::from_secs(60));
    assert_eq!(net.phones[a].heard.len(), 3000, "a minute is 3000 ticks");
    assert_hears(&net, a, 3000, 0.85);
    assert_hears(&net, b, 1000, 0.85);
    // Same codec, answered, nothing playing or recorded: packets are relayed as they come.
    assert!(net.planes[0].is_relaying("a") && net.planes[0].is_relaying("b"));
}

#[test]
fn an_unbridged_leg_hears_silence_and_detach_ends_the_bridge_both_ways() {
    let mut net = Net::new(2, 0.0, 0);
    let a = net.phone(0, "a", 1000);
    let b = net.phone(0, "b", 3000);
    net.run(Duration::from_secs(1));
    assert_hears(&net, a, 0, 0.95);
    net.planes[0].bridge("a", "b");
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert_hears(&net, a, 3000, 0.95);
    net.planes[0].detach("b");
    assert_eq!(net.planes[0].bridge_peer("a"), None, "detach is both ways");
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert_hears(&net, a, 0, 0.9);
    assert_hears(&net, b, 0, 0.9);
}

#[test]
fn muting_a_bridged_leg_stops_the_relay_and_silences_it_for_the_other() {
    let mut net = Net::new(3, 0.0, 0);
    let a = net.phone(0, "a", 1000);
    let b = net.phone(0, "b", 3000);
    net.planes[0].bridge("a", "b");
    net.run(Duration::from_secs(1));
    assert!(net.planes[0].is_relaying("a"));
    // What a says no longer reaches b; a still hears b.
    net.planes[0].set_mute("a", Some(true), None);
    assert!(
        !net.planes[0].is_relaying("a"),
        "a change stops the relay at once"
    );
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert!(!net.planes[0].is_relaying("a"), "a muted leg is decoded");
    assert_hears(&net, b, 0, 0.9);
    assert_hears(&net, a, 3000, 0.9);
    net.planes[0].set_mute("a", Some(false), None);
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert_hears(&net, b, 1000, 0.9);
    assert!(
        net.planes[0].is_relaying("a"),
        "relay resumes when nothing needs the audio"
    );
}

#[test]
fn an_ending_leg_stops_relaying_and_is_decoded_until_removed() {
    let mut net = Net::new(4, 0.0, 0);
    let a = net.phone(0, "a", 1000);
    net.phone(0, "b", 3000);
    net.planes[0].bridge("a", "b");
    net.run(Duration::from_secs(1));
    assert!(net.planes[0].is_relaying("a"));
    net.planes[0].set_ending("b");
    net.clear_heard();
    net.run(Duration::from_secs(1));
    assert!(!net.planes[0].is_relaying("a"));
    assert_hears(&net, a, 3000, 0.9);
}
