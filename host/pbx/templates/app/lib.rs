//! {{name}}: a pbx call app.
//!
//! It answers, greets the caller, repeats every key pressed ("You pressed 5"), and on `#`
//! says "Goodbye" and hangs up once that has been spoken. Edit it, then:
//!
//! ```text
//! pbx simulate target/wasm32-wasip2/release/{{crate}}.wasm scenarios/basic.sim
//! pbx app build && pbx app deploy --number 1234
//! ```

use pbx_sdk::log;
use pbx_sdk::{App, Call, CallEnded, CallInfo, Direction, MediaFinished, MediaId};

/// The state of one call session: the media id of the goodbye, once `#` was pressed.
#[derive(Default)]
struct Greeter {
    goodbye: Option<MediaId>,
}

impl App for Greeter {
    fn on_call_received(&mut self, call: Call, info: &CallInfo) {
        log::info!("call from {} to {}", info.from, info.to);
        if info.direction == Direction::Outbound {
            // A call placed through the admin API: greet once it is answered.
            return;
        }
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
            log::warn!("repeat failed: {e}");
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
        log::info!("call {} finished: {:?}", call.id(), ended.hangup_reason);
    }
}

fn greet(call: &Call) {
    if let Err(e) = call.say("Hello. Press any key, or hash to hang up.") {
        log::warn!("greeting failed: {e}");
    }
}

/// How a key is spoken: digits and letters as they are, `*` as "star".
fn spoken(digit: &str) -> &str {
    match digit {
        "*" => "star",
        other => other,
    }
}

pbx_sdk::export_app!(Greeter);

// Unit tests run on the build machine against the SDK's recording stand-in:
//   cargo test --target x86_64-unknown-linux-gnu   (your machine's triple)
#[cfg(test)]
mod tests {
    use pbx_sdk::testing::{self, call_info, finished};

    use super::*;

    #[test]
    fn greets_repeats_keys_and_hangs_up_after_goodbye() {
        let mut app = Greeter::default();
        let call = Call::from_id("leg-1");
        app.on_call_received(call.clone(), &call_info("leg-1", "alice", "1234"));
        app.on_dtmf(call.clone(), "5");
        app.on_dtmf(call.clone(), "#");
        assert_eq!(
            testing::take_requests(),
            [
                "answer(leg-1)",
                "say(leg-1, \"Hello. Press any key, or hash to hang up.\")",
                "say(leg-1, \"You pressed 5\")",
                "say(leg-1, \"Goodbye\")",
            ]
        );
        app.on_say_finished(call, &finished(3));
        assert_eq!(testing::take_requests(), ["hangup(leg-1)"]);
    }

    /// The scenario `pbx simulate` runs against the built component, here run natively by
    /// the same simulator.
    #[test]
    fn basic_scenario_passes() {
        let run = testing::simulate::<Greeter>(include_str!("../scenarios/basic.sim"));
        assert!(run.passed(), "{run}");
    }
}
