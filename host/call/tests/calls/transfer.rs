//! Transfers as the call core sees them: blind (the caller waits with music, the new party
//! answers and is bridged) and attended (the agent consults while the caller holds, then
//! completes or cancels).

use std::time::Duration;

use crate::net::{Net, assert_hears};

#[test]
fn a_blind_transfer_plays_music_until_the_new_party_is_bridged() {
    let mut net = Net::new(30, 0.03, 600);
    let caller = net.phone(0, "caller", 1000);
    let _agent = net.phone(0, "agent", 2000);
    net.planes[0].bridge("caller", "agent");
    net.run(Duration::from_secs(3));
    // The agent transfers: it is hung up, the caller hears music while the target rings.
    net.planes[0].detach("caller");
    net.planes[0].remove_leg("agent");
    net.planes[0].start_music("caller", None);
    net.clear_heard();
    net.run(Duration::from_secs(5));
    assert_hears(&net, caller, 600, 0.85);
    let target = net.phone(0, "target", 4000);
    net.planes[0].bridge("caller", "target");
    net.clear_heard();
    net.run(Duration::from_secs(10));
    assert_hears(&net, caller, 4000, 0.85);
    assert_hears(&net, target, 1000, 0.85);
}

#[test]
fn an_attended_transfer_consults_then_completes() {
    let mut net = Net::new(31, 0.03, 600);
    let caller = net.phone(0, "caller", 1000);
    let agent = net.phone(0, "agent", 2000);
    net.planes[0].bridge("caller", "agent");
    net.run(Duration::from_secs(3));
    // Consult: the caller waits with music, the agent talks to the consultee.
    net.planes[0].detach("agent");
    net.planes[0].start_music("caller", None);
    let consult = net.phone(0, "consult", 4000);
    net.planes[0].bridge("agent", "consult");
    net.clear_heard();
    net.run(Duration::from_secs(10));
    assert_hears(&net, caller, 600, 0.85);
    assert_hears(&net, agent, 4000, 0.85);
    assert_hears(&net, consult, 2000, 0.85);
    // Complete: caller and consultee are bridged (the music ends), the agent leaves.
    net.planes[0].stop_music("caller");
    net.planes[0].detach("consult");
    net.planes[0].bridge("caller", "consult");
    net.planes[0].remove_leg("agent");
    net.clear_heard();
    net.run(Duration::from_secs(10));
    assert_hears(&net, caller, 4000, 0.85);
    assert_hears(&net, consult, 1000, 0.85);
}

#[test]
fn a_cancelled_attended_transfer_returns_the_caller_to_the_agent() {
    let mut net = Net::new(32, 0.0, 600);
    let caller = net.phone(0, "caller", 1000);
    let agent = net.phone(0, "agent", 2000);
    net.planes[0].bridge("caller", "agent");
    net.planes[0].detach("agent");
    net.planes[0].start_music("caller", None);
    let _consult = net.phone(0, "consult", 4000);
    net.planes[0].bridge("agent", "consult");
    net.run(Duration::from_secs(2));
    net.planes[0].remove_leg("consult");
    net.planes[0].stop_music("caller");
    net.planes[0].bridge("caller", "agent");
    net.clear_heard();
    net.run(Duration::from_secs(3));
    assert_hears(&net, caller, 2000, 0.95);
    assert_hears(&net, agent, 1000, 0.95);
}
