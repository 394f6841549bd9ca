//! hello: the smallest useful call app.
//!
//! It answers, greets the caller, speaks back every key pressed ("You pressed 5"), and on
//! `#` says "Goodbye" and hangs up once that has been spoken. A call placed with
//! `POST /v1/calls` is greeted when the called party answers. Invariant: after `#` no other
//! key is spoken back, and the hangup waits for the goodbye's finished event (its media id).

use pbx_sdk::log;
use pbx_sdk::{App, Call, CallEnded, CallInfo, Direction, MediaFinished, MediaId};

/// Per-call state: the media id of the goodbye, once `#` was pressed.
#[derive(Default)]
struct Hello {
    goodbye: Option<MediaId>,
}

impl App for Hello {
    fn on_call_received(&mut self, call: Call, info: &CallInfo) {
        if info.direction == Direction::Outbound {
            // The pbx is dialing this leg; greet once it answers.
            return;
        }
        // A leg another app handed over may be answered already; it is greeted either way.
        if info.handed_over.is_none()
            && let Err(e) = call.answer()
        {
            log::warn!("answer failed: {e}");
            return;
        }
        greet(&call);
    }

    fn on_call_answered(&mut self, call: Call) {
        greet(&call);
    }

    fn on_dtmf(&mut self, call: Call, digit: &str) {
        log::info!("received digit {digit}");
        if self.goodbye.is_some() {
            return;
        }
        if digit == "#" {
            match call.say("Goodbye") {
                Ok(id) => self.goodbye = Some(id),
                Err(e) => {
                    log::warn!("goodbye failed: {e}");
                    let _ = call.hangup();
                }
            }
        } else if let Err(e) = call.say(&format!("You pressed {}", spoken(digit))) {
            log::warn!("echo failed: {e}");
        }
    }

    fn on_say_finished(&mut self, call: Call, finished: &MediaFinished) {
        if self.goodbye == Some(finished.id)
            && let Err(e) = call.hangup()
        {
            log::warn!("hangup failed: {e}");
        }
    }

    fn on_call_finished(&mut self, call: Call, ended: &CallEnded) {
        log::info!(
            "call {} finished: {:?} by {:?}",
            call.id(),
            ended.hangup_reason,
            ended.hangup_by
        );
    }
}

fn greet(call: &Call) {
    if let Err(e) = call.say("Hello from pbx. Press any key.") {
        log::warn!("greeting failed: {e}");
    }
}

/// How a key is spoken: digits and letters as they are, `*` as "star".
fn spoken(digit: &str) -> &str {
    match digit {
        "*" => "star",
        "#" => "hash",
        other => other,
    }
}

pbx_sdk::export_app!(Hello);

#[cfg(test)]
mod tests {
    use pbx_sdk::testing::{self, call_info, finished};
    use pbx_sdk::{App, Call};

    use super::*;

    #[test]
    fn greets_echoes_keys_and_hangs_up_after_goodbye() {
        let mut app = Hello::default();
        let call = Call::from_id("leg-1");
        app.on_call_received(call.clone(), &call_info("leg-1", "alice", "1000"));
        app.on_dtmf(call.clone(), "5");
        app.on_dtmf(call.clone(), "*");
        app.on_dtmf(call.clone(), "#");
        app.on_dtmf(call.clone(), "7");
        assert_eq!(
            testing::take_requests(),
            [
                "answer(leg-1)",
                "say(leg-1, \"Hello from pbx. Press any key.\")",
                "say(leg-1, \"You pressed 5\")",
                "say(leg-1, \"You pressed star\")",
                "say(leg-1, \"Goodbye\")",
            ]
        );
        assert_eq!(
            testing::take_logs(),
            [
                "info: received digit 5",
                "info: received digit *",
                "info: received digit #",
                "info: received digit 7"
            ]
        );
        app.on_say_finished(call.clone(), &finished(3));
        assert!(testing::take_requests().is_empty());
        app.on_say_finished(call, &finished(4));
        assert_eq!(testing::take_requests(), ["hangup(leg-1)"]);
    }

    /// The scenarios `pbx simulate` runs against the built component, run natively here.
    #[test]
    fn scenario_greets() {
        let t = testing::simulate::<Hello>(include_str!("../scenarios/greets.sim"));
        assert!(t.passed(), "{t}");
    }

    #[test]
    fn scenario_hangup_mid_greeting() {
        let t = testing::simulate::<Hello>(include_str!("../scenarios/hangup-mid-greeting.sim"));
        assert!(t.passed(), "{t}");
    }
}
