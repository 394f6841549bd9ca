//! `pbx:app@0.2.0` on top of the 0.3 host: the 0.2 world shares the 0.3 `types` (see
//! `bindings.rs`), so every 0.2 import is a one-line delegation to its 0.3 twin.
//!
//! Invariants: a 0.2 app gets exactly the answers a 0.3 app would get for the same request
//! (the same checks, the same error case and text); 0.2 has no capabilities, so nothing here
//! reaches `kv`, `http` or `config`. Nothing here keeps state of its own.

use crate::bindings::v0_2::{call_control, conference, log, recording, timers};
use crate::bindings::v0_3::{self as v3, types as wit};
use crate::host::{HostState, WitResult};
use pbx_app::{MediaId, TimerId};

impl call_control::Host for HostState {
    fn answer(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::answer(self, call)
    }

    fn early_media(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::early_media(self, call)
    }

    fn reject(&mut self, call: String, status: u16) -> WitResult<()> {
        v3::call_control::Host::reject(self, call, status)
    }

    fn hangup(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::hangup(self, call)
    }

    fn say(&mut self, call: String, text: String, options: wit::SayOptions) -> WitResult<MediaId> {
        v3::call_control::Host::say(self, call, text, options)
    }

    fn play(
        &mut self,
        call: String,
        file_id: String,
        options: wit::PlayOptions,
    ) -> WitResult<MediaId> {
        v3::call_control::Host::play(self, call, file_id, options)
    }

    fn play_music(&mut self, call: String, file_id: Option<String>) -> WitResult<MediaId> {
        v3::call_control::Host::play_music(self, call, file_id)
    }

    fn stop_media(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::stop_media(self, call)
    }

    fn collect_dtmf(&mut self, call: String, options: wit::CollectOptions) -> WitResult<()> {
        v3::call_control::Host::collect_dtmf(self, call, options)
    }

    fn send_dtmf(&mut self, call: String, digits: String, duration_ms: u32) -> WitResult<()> {
        v3::call_control::Host::send_dtmf(self, call, digits, duration_ms)
    }

    fn dial(&mut self, target: wit::Endpoint, options: wit::DialOptions) -> WitResult<String> {
        v3::call_control::Host::dial(self, target, options)
    }

    fn dial_group(
        &mut self,
        stages: Vec<wit::GroupStage>,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        v3::call_control::Host::dial_group(self, stages, options)
    }

    fn connect(&mut self, a: String, b: String) -> WitResult<()> {
        v3::call_control::Host::connect(self, a, b)
    }

    fn disconnect(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::disconnect(self, call)
    }

    fn dial_and_connect(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        v3::call_control::Host::dial_and_connect(self, call, target, options)
    }

    fn hold(&mut self, call: String, music_file: Option<String>) -> WitResult<()> {
        v3::call_control::Host::hold(self, call, music_file)
    }

    fn resume(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::resume(self, call)
    }

    fn mute(&mut self, call: String, direction: wit::MuteDirection) -> WitResult<()> {
        v3::call_control::Host::mute(self, call, direction)
    }

    fn unmute(&mut self, call: String, direction: wit::MuteDirection) -> WitResult<()> {
        v3::call_control::Host::unmute(self, call, direction)
    }

    fn transfer(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        v3::call_control::Host::transfer(self, call, target, options)
    }

    fn consult(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        v3::call_control::Host::consult(self, call, target, options)
    }

    fn complete_transfer(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::complete_transfer(self, call)
    }

    fn cancel_transfer(&mut self, call: String) -> WitResult<()> {
        v3::call_control::Host::cancel_transfer(self, call)
    }

    fn hand_over(&mut self, call: String, app: String, data: String) -> WitResult<()> {
        v3::call_control::Host::hand_over(self, call, app, data)
    }

    fn refuse_hand_over(&mut self, call: String, reason: String) -> WitResult<()> {
        v3::call_control::Host::refuse_hand_over(self, call, reason)
    }
}

impl conference::Host for HostState {
    fn create(&mut self, options: wit::ConferenceOptions) -> WitResult<String> {
        v3::conference::Host::create(self, options)
    }

    fn join(
        &mut self,
        conference: String,
        call: String,
        options: wit::JoinOptions,
    ) -> WitResult<()> {
        v3::conference::Host::join(self, conference, call, options)
    }

    fn leave(&mut self, conference: String, call: String) -> WitResult<()> {
        v3::conference::Host::leave(self, conference, call)
    }

    fn kick(&mut self, conference: String, call: String) -> WitResult<()> {
        v3::conference::Host::kick(self, conference, call)
    }

    fn mute(&mut self, conference: String, call: String) -> WitResult<()> {
        v3::conference::Host::mute(self, conference, call)
    }

    fn unmute(&mut self, conference: String, call: String) -> WitResult<()> {
        v3::conference::Host::unmute(self, conference, call)
    }

    fn deafen(&mut self, conference: String, call: String) -> WitResult<()> {
        v3::conference::Host::deafen(self, conference, call)
    }

    fn undeafen(&mut self, conference: String, call: String) -> WitResult<()> {
        v3::conference::Host::undeafen(self, conference, call)
    }

    fn say(
        &mut self,
        conference: String,
        text: String,
        options: wit::SayOptions,
    ) -> WitResult<MediaId> {
        v3::conference::Host::say(self, conference, text, options)
    }

    fn play(
        &mut self,
        conference: String,
        file_id: String,
        options: wit::PlayOptions,
    ) -> WitResult<MediaId> {
        v3::conference::Host::play(self, conference, file_id, options)
    }

    fn stop_media(&mut self, conference: String) -> WitResult<()> {
        v3::conference::Host::stop_media(self, conference)
    }

    fn hangup(&mut self, conference: String) -> WitResult<()> {
        v3::conference::Host::hangup(self, conference)
    }
}

impl recording::Host for HostState {
    fn start(
        &mut self,
        target: wit::RecordTarget,
        options: wit::RecordOptions,
    ) -> WitResult<String> {
        v3::recording::Host::start(self, target, options)
    }

    fn stop(&mut self, recording: String) -> WitResult<()> {
        v3::recording::Host::stop(self, recording)
    }
}

impl timers::Host for HostState {
    fn set_timer(&mut self, ms: u32, tag: String) -> WitResult<TimerId> {
        v3::timers::Host::set_timer(self, ms, tag)
    }

    fn cancel_timer(&mut self, timer: TimerId) {
        v3::timers::Host::cancel_timer(self, timer)
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Debug => v3::log::Level::Debug,
            log::Level::Info => v3::log::Level::Info,
            log::Level::Warn => v3::log::Level::Warn,
            log::Level::Error => v3::log::Level::Error,
        };
        v3::log::Host::write(self, level, message)
    }
}
