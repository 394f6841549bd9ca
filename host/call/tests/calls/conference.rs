//! Conference rooms: everyone hears everyone else (N-1), mute and deafen, a kick, music for
//! a participant alone, and announcements that everyone hears.

use std::time::Duration;

use pbx_call::{ClipOwner, MediaOutput};
use pbx_media::player::{MediaKind, PlayOpts};

use crate::net::{Net, assert_hears, level_clip};

fn room_of_three(seed: u64, loss: f64) -> (Net, usize, usize, usize) {
    let mut net = Net::new(seed, loss, 500);
    let a = net.phone(0, "a", 1000);
    let b = net.phone(0, "b", 2000);
    let c = net.phone(0, "c", 4000);
    net.planes[0].add_room("room", true);
    for leg in ["a", "b", "c"] {
        assert!(net.planes[0].join_room("room", leg, false, false));
    }
    (net, a, b, c)
}

#[test]
fn each_participant_hears_all_the_others_for_a_minute_at_three_percent_loss() {
    let (mut net, a, b, c) = room_of_three(10, 0.03);
    net.run(Duration::from_secs(60));
    assert_hears(&net, a, 6000, 0.85);
    assert_hears(&net, b, 5000, 0.85);
    assert_hears(&net, c, 3000, 0.85);
}

#[test]
fn a_muted_participant_is_heard_by_nobody_and_a_deafened_one_hears_nobody() {
    let (mut net, a, b, c) = room_of_three(11, 0.0);
    net.planes[0].set_room_muted("room", "b", true);
    net.planes[0].set_room_deafened("room", "c", true);
    net.run(Duration::from_secs(2));
    assert_hears(&net, a, 4000, 0.95);
    assert_hears(&net, b, 5000, 0.95);
    assert_hears(&net, c, 0, 0.95);
    net.planes[0].set_room_muted("room", "b", false);
    net.planes[0].set_room_deafened("room", "c", false);
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert_hears(&net, a, 6000, 0.95);
    assert_hears(&net, c, 3000, 0.95);
}

#[test]
fn a_kicked_participant_leaves_the_mix_and_the_last_one_hears_music() {
    let (mut net, a, b, c) = room_of_three(12, 0.0);
    net.run(Duration::from_secs(1));
    assert_eq!(net.planes[0].leave_room("c").as_deref(), Some("room"));
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert_hears(&net, a, 2000, 0.95);
    assert_hears(&net, b, 1000, 0.95);
    assert_hears(&net, c, 0, 0.95);
    // Alone: the built-in music (a constant 500 here) plays to the last participant.
    net.planes[0].leave_room("b");
    net.clear_heard();
    net.run(Duration::from_secs(2));
    assert_hears(&net, a, 500, 0.95);
    assert_eq!(net.planes[0].room_members("room"), vec!["a".to_string()]);
}

#[test]
fn an_announcement_is_heard_by_every_participant_and_reported_when_done() {
    let (mut net, a, b, c) = room_of_three(13, 0.0);
    let owner = ClipOwner::Room("room".into());
    assert!(net.planes[0].queue_clip(&owner, 7, PlayOpts::once(MediaKind::Say)));
    net.planes[0].handle_clip(&owner, 7, Ok(level_clip(300, 1)));
    net.run(Duration::from_millis(600));
    assert_hears(&net, a, 6300, 0.9);
    assert_hears(&net, b, 5300, 0.9);
    assert_hears(&net, c, 3300, 0.9);
    net.run(Duration::from_secs(1));
    let done = net.outputs[0].iter().any(|o| {
        matches!(o, MediaOutput::Finished { owner: ClipOwner::Room(r), id: 7, played_completely: true, .. } if r == "room")
    });
    assert!(
        done,
        "the announcement is reported finished: {:?}",
        net.outputs[0]
    );
}

#[test]
fn closing_a_room_detaches_everyone() {
    let (mut net, a, _b, _c) = room_of_three(14, 0.0);
    net.run(Duration::from_secs(1));
    net.planes[0].remove_room("room");
    assert_eq!(net.planes[0].attach("a"), pbx_call::Attach::None);
    net.clear_heard();
    net.run(Duration::from_secs(1));
    assert_hears(&net, a, 0, 0.9);
}
