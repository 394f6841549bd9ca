//! ivr: a two-option voice menu, the seed flow (talk, digits_receive, branch, goto with a
//! loop count, hangup) written as a small explicit state machine.
//!
//! Flow: answer; say the menu (a key stops it); if no key stopped it, collect one digit
//! with a 5 s timeout; 1 → "Connecting you to sales.", 2 → "Connecting you to support.",
//! then hang up once that was spoken. Anything else, or the timeout, plays the menu again,
//! at most twice more (three times in all), then says "Goodbye." and hangs up.
//! Invariant: every transition is driven by an event carrying the media id or collection
//! the current state waits for; stale events are ignored.

use pbx_sdk::log;
use pbx_sdk::{App, Call, CallInfo, Collect, CollectEnd, Collected, MediaFinished, MediaId};

const MENU: &str = "Press 1 for sales, 2 for support.";
/// How many times the menu plays before the default branch gives up.
const MENU_PLAYS: u32 = 3;
/// How long to wait for the digit after the menu, in milliseconds.
const DIGIT_TIMEOUT_MS: u32 = 5000;

/// Where the call is in the menu.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the call was answered.
    #[default]
    Start,
    /// The menu prompt with this media id is playing.
    Menu(MediaId),
    /// Waiting for the digit.
    Collecting,
    /// Saying the last words (media id); hang up when they finish.
    Leaving(MediaId),
    /// Hung up.
    Done,
}

#[derive(Default)]
struct Ivr {
    state: State,
    menu_plays: u32,
}

impl Ivr {
    fn menu(&mut self, call: &Call) {
        self.menu_plays += 1;
        log::info!("menu play {}", self.menu_plays);
        match call.say_with(MENU).stop_on_dtmf().send() {
            Ok(id) => self.state = State::Menu(id),
            Err(e) => self.fail(call, "menu", &e),
        }
    }

    fn branch(&mut self, call: &Call, digit: &str) {
        log::info!("menu choice {digit}");
        match digit {
            "1" => self.leave(call, "Connecting you to sales."),
            "2" => self.leave(call, "Connecting you to support."),
            _ => self.default_branch(call),
        }
    }

    fn default_branch(&mut self, call: &Call) {
        if self.menu_plays < MENU_PLAYS {
            self.menu(call);
        } else {
            self.leave(call, "Goodbye.");
        }
    }

    fn leave(&mut self, call: &Call, text: &str) {
        match call.say(text) {
            Ok(id) => self.state = State::Leaving(id),
            Err(e) => self.fail(call, "farewell", &e),
        }
    }

    fn fail(&mut self, call: &Call, what: &str, e: &pbx_sdk::Error) {
        log::warn!("{what} failed: {e}; hanging up");
        let _ = call.hangup();
        self.state = State::Done;
    }
}

impl App for Ivr {
    fn on_call_received(&mut self, call: Call, _info: &CallInfo) {
        if let Err(e) = call.answer() {
            log::warn!("answer failed: {e}");
            self.state = State::Done;
            return;
        }
        self.menu(&call);
    }

    fn on_say_finished(&mut self, call: Call, finished: &MediaFinished) {
        match self.state {
            State::Menu(id) if id == finished.id => match &finished.digit {
                Some(digit) => self.branch(&call, digit),
                None => match call.collect_dtmf(Collect::max(1).timeout_ms(DIGIT_TIMEOUT_MS)) {
                    Ok(()) => self.state = State::Collecting,
                    Err(e) => self.fail(&call, "collect", &e),
                },
            },
            State::Leaving(id) if id == finished.id => {
                let _ = call.hangup();
                self.state = State::Done;
            }
            _ => {}
        }
    }

    fn on_dtmf_collected(&mut self, call: Call, collected: &Collected) {
        if self.state != State::Collecting {
            return;
        }
        match collected.end {
            CollectEnd::Cancelled => self.state = State::Done,
            CollectEnd::MaxDigits | CollectEnd::Terminator | CollectEnd::Timeout => {
                match collected.digits.get(..1) {
                    Some(digit) if !digit.is_empty() => self.branch(&call, digit),
                    _ => self.default_branch(&call),
                }
            }
        }
    }
}

pbx_sdk::export_app!(Ivr);

#[cfg(test)]
mod tests {
    use pbx_sdk::testing::{self, call_info, collected, finished};
    use pbx_sdk::{App, Call, CollectEnd};

    use super::*;

    #[test]
    fn a_key_stopping_the_menu_is_the_choice() {
        let mut app = Ivr::default();
        let call = Call::from_id("leg-1");
        app.on_call_received(call.clone(), &call_info("leg-1", "alice", "2000"));
        let mut stopped = finished(1);
        stopped.played_completely = false;
        stopped.digit = Some("2".into());
        app.on_say_finished(call.clone(), &stopped);
        assert_eq!(
            testing::take_requests(),
            [
                "answer(leg-1)",
                "say(leg-1, \"Press 1 for sales, 2 for support.\")",
                "say(leg-1, \"Connecting you to support.\")",
            ]
        );
        assert_eq!(
            testing::take_logs(),
            ["info: menu play 1", "info: menu choice 2"]
        );
        app.on_say_finished(call, &finished(2));
        assert_eq!(testing::take_requests(), ["hangup(leg-1)"]);
    }

    #[test]
    fn silence_plays_the_menu_three_times_then_says_goodbye() {
        let mut app = Ivr::default();
        let call = Call::from_id("leg-1");
        app.on_call_received(call.clone(), &call_info("leg-1", "alice", "2000"));
        for menu in 1..=3 {
            app.on_say_finished(call.clone(), &finished(menu));
            app.on_dtmf_collected(call.clone(), &collected("", CollectEnd::Timeout));
        }
        let requests = testing::take_requests();
        assert_eq!(
            requests
                .iter()
                .filter(|r| r.starts_with("collect-dtmf(leg-1, max 1, timeout 5000ms)"))
                .count(),
            3
        );
        assert_eq!(
            requests.last().map(String::as_str),
            Some("say(leg-1, \"Goodbye.\")")
        );
        assert_eq!(
            testing::take_logs(),
            [
                "info: menu play 1",
                "info: menu play 2",
                "info: menu play 3"
            ]
        );
    }

    /// The scenarios `pbx simulate` runs against the built component, run natively here.
    #[test]
    fn scenario_sales() {
        let t = testing::simulate::<Ivr>(include_str!("../scenarios/sales.sim"));
        assert!(t.passed(), "{t}");
    }

    #[test]
    fn scenario_support() {
        let t = testing::simulate::<Ivr>(include_str!("../scenarios/support.sim"));
        assert!(t.passed(), "{t}");
    }

    #[test]
    fn scenario_wrong_key() {
        let t = testing::simulate::<Ivr>(include_str!("../scenarios/wrong-key.sim"));
        assert!(t.passed(), "{t}");
    }

    #[test]
    fn scenario_timeout() {
        let t = testing::simulate::<Ivr>(include_str!("../scenarios/timeout.sim"));
        assert!(t.passed(), "{t}");
    }

    #[test]
    fn scenario_caller_gives_up() {
        let t = testing::simulate::<Ivr>(include_str!("../scenarios/caller-gives-up.sim"));
        assert!(t.passed(), "{t}");
    }
}
