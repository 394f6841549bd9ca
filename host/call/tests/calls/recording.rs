//! Recording taps: a frame per file per tick, exactly what the parties said, in every layout;
//! a tap stops the relay so its audio is decoded, and reports when it is full.

use std::time::Duration;

use pbx_call::{MediaOutput, TapFrame, TapLayout, TapTarget};

use crate::net::{Net, close};

fn frames_of(net: &Net, file: usize) -> Vec<TapFrame> {
    net.outputs[0]
        .iter()
        .filter_map(|o| match o {
            MediaOutput::Record { file: f, frame, .. } if *f == file => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

fn mean(frame: &[i16]) -> i32 {
    frame.iter().map(|&s| i32::from(s)).sum::<i32>() / frame.len() as i32
}

#[test]
fn a_stereo_bridge_tap_holds_one_party_per_channel_and_stops_the_relay() {
    let mut net = Net::new(60, 0.0, 0);
    net.phone(0, "a", 1000);
    net.phone(0, "b", 3000);
    net.planes[0].bridge("a", "b");
    net.run(Duration::from_secs(1));
    assert!(net.planes[0].is_relaying("a"));
    let tap = net.planes[0].start_tap(TapTarget::Bridge("a".into()), TapLayout::Stereo, 1000);
    net.run(Duration::from_secs(2));
    assert!(
        !net.planes[0].is_relaying("a"),
        "a recorded bridge is decoded"
    );
    let frames = frames_of(&net, 0);
    assert_eq!(frames.len(), 100, "one frame per tick");
    let last = frames.last().expect("frames");
    let TapFrame::Stereo(left, right) = last else {
        panic!("stereo expected: {last:?}");
    };
    assert!(close(mean(left), 1000) && close(mean(right), 3000));
    assert_eq!(net.planes[0].stop_tap(tap), Some(100));
}

#[test]
fn a_per_participant_room_tap_gives_every_file_a_frame_each_tick_and_reports_full() {
    let mut net = Net::new(61, 0.0, 0);
    net.phone(0, "a", 1000);
    net.phone(0, "b", 2000);
    net.planes[0].add_room("room", false);
    net.planes[0].join_room("room", "a", false, false);
    net.planes[0].join_room("room", "b", false, false);
    let layout = TapLayout::PerParticipant(vec!["a".into(), "b".into()]);
    let tap = net.planes[0].start_tap(TapTarget::Room("room".into()), layout, 50);
    net.run(Duration::from_millis(600));
    // b leaves: its file goes on with silence, so both files keep the same length.
    net.planes[0].leave_room("b");
    net.run(Duration::from_millis(600));
    let (a, b) = (frames_of(&net, 0), frames_of(&net, 1));
    assert_eq!(a.len(), b.len());
    assert_eq!(a.len(), 60);
    let TapFrame::Mono(b_last) = b.last().expect("frames") else {
        panic!("mono expected")
    };
    assert_eq!(mean(b_last), 0);
    let full: Vec<_> = net.outputs[0]
        .iter()
        .filter(|o| matches!(o, MediaOutput::TapFull { tap: t } if *t == tap))
        .collect();
    assert_eq!(full.len(), 1, "full is reported once");
}
