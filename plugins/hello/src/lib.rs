//! hello: the smallest useful call app.
//!
//! It answers, greets the caller, speaks back every key pressed ("You pressed 5"), and on
//! `#` says "Goodbye" and hangs up once that has been spoken. Invariant: after `#` no other
//! key is spoken back, and the hangup waits for the goodbye's finished event (its media id).

use pbx_sdk::log;
use pbx_sdk::{App, Call, CallEnded, CallInfo, MediaFinished, MediaId};

/// Per-call state: the media id of the goodbye, once `#` was pressed.
#[derive(Default)]
struct Hello {
    goodbye: Option<MediaId>,
}

impl App for Hello {
    fn on_call_received(&mut self, call: Call, _info: &CallInfo) {
        if let Err(e) = call.answer() {
            log::warn!("answer failed: {e}");
            return;
        }
        if let Err(e) = call.say("Hello from pbx. Press any key.") {
            log::warn!("greeting failed: {e}");
        }
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

/// How a key is spoken: digits and letters as they are, `*` as "star".
fn spoken(digit: &str) -> &str {
    match digit {
        "*" => "star",
        "#" => "hash",
        other => other,
    }
}

pbx_sdk::export_app!(Hello);
