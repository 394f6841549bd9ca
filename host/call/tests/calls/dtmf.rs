//! Key presses: RFC 4733 from a phone becomes one digit per press even at loss, stops media
//! that asked to be interruptible, and feeds the digit collector; a collection times out in
//! virtual time; digits sent by pbx reach the phone.

use std::time::Duration;

use pbx_call::{ClipOwner, MediaOutput};
use pbx_media::collect::{CollectEnd, CollectOpts};
use pbx_media::dtmf::Digit;
use pbx_media::player::{MediaKind, PlayOpts};

use crate::net::{Net, level_clip};

fn digits_of(net: &Net) -> String {
    net.outputs[0]
        .iter()
        .filter_map(|o| match o {
            MediaOutput::Digit { leg, digit } if leg == "a" => Some(digit.as_char()),
            _ => None,
        })
        .collect()
}

fn press(net: &mut Net, phone: usize, keys: &str) {
    for key in keys.chars() {
        let digit = Digit::from_char(key).expect("a key");
        net.phones[phone]
            .rtp
            .send_digits(&[digit], 100)
            .expect("queued");
        net.run(Duration::from_millis(400));
    }
}

#[test]
fn each_press_is_one_digit_at_ten_percent_loss_and_stops_interruptible_media() {
    let mut net = Net::new(50, 0.10, 0);
    let a = net.phone(0, "a", 0);
    let owner = ClipOwner::Leg("a".into());
    let opts = PlayOpts {
        stop_on_dtmf: true,
        ..PlayOpts::once(MediaKind::Say)
    };
    net.planes[0].queue_clip(&owner, 1, opts);
    net.planes[0].handle_clip(&owner, 1, Ok(level_clip(800, 10)));
    net.run(Duration::from_secs(1));
    press(&mut net, a, "1234");
    // RFC 4733 repeats its end packets, so a press survives 10% loss.
    assert_eq!(digits_of(&net), "1234");
    let stopped = net.outputs[0].iter().any(|o| {
        matches!(o, MediaOutput::Finished { id: 1, played_completely: false, digit: Some(d), .. } if d.as_char() == '1')
    });
    assert!(
        stopped,
        "the first key stopped the say: {:?}",
        net.outputs[0]
    );
}

#[test]
fn a_collection_ends_on_its_terminator_or_on_its_timeout_in_virtual_time() {
    let mut net = Net::new(51, 0.0, 0);
    let a = net.phone(0, "a", 0);
    let opts = CollectOpts {
        max_digits: 10,
        terminator: Digit::from_char('#'),
        timeout: Duration::from_secs(5),
    };
    let now = net.now;
    net.planes[0].start_collect(now, "a", opts).expect("valid");
    press(&mut net, a, "42#");
    let collected: Vec<_> = net.outputs[0]
        .iter()
        .filter_map(|o| match o {
            MediaOutput::Collected { collected, .. } => Some(collected.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(collected.len(), 1);
    assert_eq!(collected[0].digits, "42");
    assert_eq!(collected[0].end, CollectEnd::Terminator);

    let now = net.now;
    net.planes[0].start_collect(now, "a", opts).expect("valid");
    press(&mut net, a, "7");
    assert!(net.planes[0].poll_timeout().is_some());
    net.run(Duration::from_secs(6));
    let last = net.outputs[0].iter().rev().find_map(|o| match o {
        MediaOutput::Collected { collected, .. } => Some(collected.clone()),
        _ => None,
    });
    let last = last.expect("the timeout ends the collection");
    assert_eq!(last.digits, "7");
    assert_eq!(last.end, CollectEnd::Timeout);
}

#[test]
fn digits_sent_by_pbx_reach_the_phone_once_each() {
    let mut net = Net::new(52, 0.0, 0);
    let a = net.phone(0, "a", 0);
    let digits: Vec<Digit> = "905".chars().filter_map(Digit::from_char).collect();
    net.planes[0]
        .send_digits("a", &digits, 100)
        .expect("queued");
    net.run(Duration::from_secs(2));
    let heard: String = net.phones[a].digits.iter().map(|d| d.as_char()).collect();
    assert_eq!(heard, "905");
}

#[test]
fn clips_play_in_request_order_and_a_failed_one_is_reported_with_its_error() {
    let mut net = Net::new(53, 0.0, 0);
    let _a = net.phone(0, "a", 0);
    let owner = ClipOwner::Leg("a".into());
    for id in [1, 2, 3] {
        net.planes[0].queue_clip(&owner, id, PlayOpts::once(MediaKind::Play));
    }
    // The third is ready first, the second fails: nothing plays before the first is ready.
    net.planes[0].handle_clip(&owner, 3, Ok(level_clip(100, 1)));
    net.planes[0].handle_clip(&owner, 2, Err("no such file".into()));
    net.run(Duration::from_millis(200));
    assert!(net.outputs[0].is_empty(), "{:?}", net.outputs[0]);
    net.planes[0].handle_clip(&owner, 1, Ok(level_clip(100, 1)));
    net.run(Duration::from_secs(3));
    let order: Vec<(u64, bool, bool)> = net.outputs[0]
        .iter()
        .filter_map(|o| match o {
            MediaOutput::Finished {
                id,
                played_completely,
                error,
                ..
            } => Some((*id, *played_completely, error.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec![(2, false, true), (1, true, false), (3, true, false)]
    );
}
