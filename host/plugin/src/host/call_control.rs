//! `pbx:app/call-control@0.3.0`: answering, refusing and ending legs, media on a leg, DTMF,
//! dialing (single targets and ringing groups), bridging, hold, mute, transfers and
//! hand-over to another app. This file owns the checks only call control needs (endpoints,
//! SIP URIs, dial, group and collect options, DTMF digits, hand-over arguments) and the
//! session's leg limit.
//!
//! Invariants: a dial enters its new leg as `Dialing` only once every argument was checked
//! and the session's leg limit ([`MAX_LIVE_LEGS`]) and the event's budget allow it, so a
//! refused dial leaves the mirror untouched; the leg id is a fresh [`new_leg_id`].

use super::{
    HostState, WitResult, cut, failed, invalid_arg, invalid_state, is_name, new_leg_id, not_found,
    play_options,
};
use crate::bindings::v0_3::{call_control, types as wit};
use pbx_app::{
    Action, CollectOptions, DialOptions, Direction, Endpoint, GroupStage, LegPhase, MediaId,
};

/// Legs of one session that are not finished, at once.
pub(crate) const MAX_LIVE_LEGS: usize = 128;
/// Longest connect timeout, in milliseconds.
const MAX_CONNECT_TIMEOUT_MS: u32 = 600_000;
/// Connect timeout used for 0.
const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 60_000;
/// Ring time of a group stage used for 0.
const DEFAULT_STAGE_TIMEOUT_MS: u32 = 20_000;
/// Most members of one group stage.
const MAX_STAGE_MEMBERS: usize = 32;
/// Most stages of one group call.
const MAX_STAGES: usize = 16;
/// Most extra SIP headers of one dial.
const MAX_HEADERS: usize = 16;
/// Most bytes of the data `hand-over` passes to the other app.
pub(crate) const MAX_HAND_OVER_DATA: usize = 4096;
/// Most bytes of the reason `refuse-hand-over` gives back.
pub(crate) const MAX_REFUSE_REASON: usize = 256;
/// The keys `collect-dtmf` accepts as a terminator (the WIT contract: "#" or "*").
const TERMINATOR_KEYS: &str = "#*";
/// The keys `send-dtmf` sends.
const DTMF_KEYS: &str = "0123456789*#ABCD";

impl HostState {
    fn check_endpoint(&self, target: wit::Endpoint) -> WitResult<Endpoint> {
        match target {
            wit::Endpoint::SipUri(uri) => {
                check_sip_uri(&uri)?;
                Ok(Endpoint::SipUri(uri))
            }
            wit::Endpoint::User(user) => {
                if !is_name(&user) {
                    return Err(invalid_arg(format!(
                        "user `{}` must be 1 to 64 of A-Z a-z 0-9 . _ -",
                        cut(&user, 64)
                    )));
                }
                if !(self.directory.users)(&user) {
                    return Err(not_found(format!("no SIP user `{user}`")));
                }
                Ok(Endpoint::User(user))
            }
            wit::Endpoint::Phone(phone) => {
                let digits = phone.number.strip_prefix('+').unwrap_or(&phone.number);
                if digits.is_empty()
                    || digits.len() > 32
                    || !digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
                {
                    return Err(invalid_arg(format!(
                        "phone number `{}` must be an optional + and 1 to 32 of 0-9 * #",
                        cut(&phone.number, 40)
                    )));
                }
                if let Some(trunk) = &phone.trunk {
                    if !is_name(trunk) {
                        return Err(invalid_arg(format!(
                            "trunk `{}` must be 1 to 64 of A-Z a-z 0-9 . _ -",
                            cut(trunk, 64)
                        )));
                    }
                    if !(self.directory.trunks)(trunk) {
                        return Err(not_found(format!("no trunk `{trunk}`")));
                    }
                }
                Ok(Endpoint::Phone {
                    number: phone.number,
                    trunk: phone.trunk,
                })
            }
        }
    }

    /// Checks the session's leg limit and the event budget, then enters a new outbound leg
    /// as `Dialing` and returns its id. Call only once every argument was checked.
    fn new_leg(&mut self) -> WitResult<String> {
        if self.live_legs() >= MAX_LIVE_LEGS {
            return Err(failed(format!(
                "the session has {MAX_LIVE_LEGS} live legs, the most it may have"
            )));
        }
        self.need_room()?;
        let id = loop {
            let id = new_leg_id();
            if !self.legs.contains_key(&id) {
                break id;
            }
        };
        self.set_leg(&id, LegPhase::Dialing, Direction::Outbound);
        Ok(id)
    }
}

impl call_control::Host for HostState {
    fn answer(&mut self, call: String) -> WitResult<()> {
        self.need_inbound_unanswered(&call, "answer")?;
        self.push(Action::Answer { call: call.clone() })?;
        self.set_phase(&call, LegPhase::Answered);
        Ok(())
    }

    fn early_media(&mut self, call: String) -> WitResult<()> {
        let leg = self.need_inbound_unanswered(&call, "start early media")?;
        if leg.phase == LegPhase::EarlyMedia {
            return Err(invalid_state("early media has already started"));
        }
        self.push(Action::EarlyMedia { call: call.clone() })?;
        self.set_phase(&call, LegPhase::EarlyMedia);
        Ok(())
    }

    fn reject(&mut self, call: String, status: u16) -> WitResult<()> {
        self.need_inbound_unanswered(&call, "reject; use hangup")?;
        if !(400..=699).contains(&status) {
            return Err(invalid_arg(format!(
                "status {status} is not a final error status (400 to 699)"
            )));
        }
        self.push(Action::Reject {
            call: call.clone(),
            status,
        })?;
        self.set_phase(&call, LegPhase::Finished);
        Ok(())
    }

    fn hangup(&mut self, call: String) -> WitResult<()> {
        self.need_live(&call)?;
        self.push(Action::Hangup { call: call.clone() })?;
        if call == self.session_id {
            for leg in self.legs.values_mut() {
                leg.phase = LegPhase::Finished;
            }
        } else {
            self.set_phase(&call, LegPhase::Finished);
        }
        Ok(())
    }

    fn say(&mut self, call: String, text: String, options: wit::SayOptions) -> WitResult<MediaId> {
        self.need_media(&call, "say")?;
        let (text, opts) = self.say_action(text, options)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::Say {
            call,
            id,
            text,
            opts,
        })?;
        Ok(id)
    }

    fn play(
        &mut self,
        call: String,
        file_id: String,
        options: wit::PlayOptions,
    ) -> WitResult<MediaId> {
        self.need_media(&call, "play")?;
        self.check_file("file id", &file_id)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::Play {
            call,
            id,
            file_id,
            opts: play_options(options),
        })?;
        Ok(id)
    }

    fn play_music(&mut self, call: String, file_id: Option<String>) -> WitResult<MediaId> {
        self.need_media(&call, "play music")?;
        if let Some(file_id) = &file_id {
            self.check_file("file id", file_id)?;
        }
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::PlayMusic { call, id, file_id })?;
        Ok(id)
    }

    fn stop_media(&mut self, call: String) -> WitResult<()> {
        self.need_media(&call, "stop media")?;
        self.push(Action::StopMedia { call })
    }

    fn collect_dtmf(&mut self, call: String, options: wit::CollectOptions) -> WitResult<()> {
        self.need_media(&call, "collect digits")?;
        let opts = check_collect_options(options)?;
        self.push(Action::CollectDtmf { call, opts })
    }

    fn send_dtmf(&mut self, call: String, digits: String, duration_ms: u32) -> WitResult<()> {
        self.need_answered(&call, "send digits")?;
        if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| DTMF_KEYS.contains(c))
        {
            return Err(invalid_arg(format!(
                "digits `{}` must be 1 to 32 of 0-9 * # A-D",
                cut(&digits, 40)
            )));
        }
        let duration_ms = match duration_ms {
            0 => 100,
            40..=2000 => duration_ms,
            _ => {
                return Err(invalid_arg(format!(
                    "duration-ms {duration_ms} is outside 40 to 2000"
                )));
            }
        };
        self.push(Action::SendDtmf {
            call,
            digits,
            duration_ms,
        })
    }

    fn dial(&mut self, target: wit::Endpoint, options: wit::DialOptions) -> WitResult<String> {
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let call = self.new_leg()?;
        self.push(Action::Dial {
            call: call.clone(),
            target,
            opts,
        })?;
        Ok(call)
    }

    fn dial_group(
        &mut self,
        stages: Vec<wit::GroupStage>,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        if stages.is_empty() || stages.len() > MAX_STAGES {
            return Err(invalid_arg(format!(
                "a group call has 1 to {MAX_STAGES} stages, not {}",
                stages.len()
            )));
        }
        let mut checked = Vec::with_capacity(stages.len());
        for (n, stage) in stages.into_iter().enumerate() {
            if stage.members.is_empty() || stage.members.len() > MAX_STAGE_MEMBERS {
                return Err(invalid_arg(format!(
                    "stage {} has {} members; a stage has 1 to {MAX_STAGE_MEMBERS}",
                    n + 1,
                    stage.members.len()
                )));
            }
            let timeout_ms = match stage.timeout_ms {
                0 => DEFAULT_STAGE_TIMEOUT_MS,
                t if t <= MAX_CONNECT_TIMEOUT_MS => t,
                t => {
                    return Err(invalid_arg(format!(
                        "stage {} timeout-ms {t} is above {MAX_CONNECT_TIMEOUT_MS}",
                        n + 1
                    )));
                }
            };
            let members = stage
                .members
                .into_iter()
                .map(|m| self.check_endpoint(m))
                .collect::<WitResult<Vec<_>>>()?;
            checked.push(GroupStage {
                members,
                strategy: stage.strategy.into(),
                timeout_ms,
            });
        }
        let opts = check_dial_options(options)?;
        let call = self.new_leg()?;
        self.push(Action::DialGroup {
            call: call.clone(),
            stages: checked,
            opts,
        })?;
        Ok(call)
    }

    fn connect(&mut self, a: String, b: String) -> WitResult<()> {
        self.leg(&a)?;
        self.leg(&b)?;
        self.need_answered(&a, "connect")?;
        self.need_answered(&b, "connect")?;
        if a == b {
            return Err(invalid_arg("cannot connect a leg with itself"));
        }
        self.push(Action::Connect { a, b })
    }

    fn disconnect(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "disconnect")?;
        self.push(Action::Disconnect { call })
    }

    fn dial_and_connect(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        self.need_inbound_unanswered(&call, "dial and connect")?;
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let new_call = self.new_leg()?;
        self.push(Action::DialAndConnect {
            call,
            new_call: new_call.clone(),
            target,
            opts,
        })?;
        Ok(new_call)
    }

    fn hold(&mut self, call: String, music_file: Option<String>) -> WitResult<()> {
        self.need_answered(&call, "hold")?;
        if let Some(file) = &music_file {
            self.check_file("music-file", file)?;
        }
        self.push(Action::Hold { call, music_file })
    }

    fn resume(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "resume")?;
        self.push(Action::Resume { call })
    }

    fn mute(&mut self, call: String, direction: wit::MuteDirection) -> WitResult<()> {
        self.need_answered(&call, "mute")?;
        self.push(Action::Mute {
            call,
            direction: direction.into(),
        })
    }

    fn unmute(&mut self, call: String, direction: wit::MuteDirection) -> WitResult<()> {
        self.need_answered(&call, "unmute")?;
        self.push(Action::Unmute {
            call,
            direction: direction.into(),
        })
    }

    fn transfer(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        self.need_answered(&call, "transfer")?;
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let new_call = self.new_leg()?;
        self.push(Action::Transfer {
            call,
            new_call: new_call.clone(),
            target,
            opts,
        })?;
        Ok(new_call)
    }

    fn consult(
        &mut self,
        call: String,
        target: wit::Endpoint,
        options: wit::DialOptions,
    ) -> WitResult<String> {
        self.need_answered(&call, "consult")?;
        let target = self.check_endpoint(target)?;
        let opts = check_dial_options(options)?;
        let new_call = self.new_leg()?;
        self.push(Action::Consult {
            call,
            new_call: new_call.clone(),
            target,
            opts,
        })?;
        Ok(new_call)
    }

    fn complete_transfer(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "complete a transfer")?;
        self.push(Action::CompleteTransfer { call })
    }

    fn cancel_transfer(&mut self, call: String) -> WitResult<()> {
        self.need_answered(&call, "cancel a transfer")?;
        self.push(Action::CancelTransfer { call })
    }

    fn hand_over(&mut self, call: String, app: String, data: String) -> WitResult<()> {
        let leg = self.need_live(&call)?;
        if leg.phase == LegPhase::Dialing {
            return Err(invalid_state(format!(
                "cannot hand over leg `{}` while it is being dialled",
                cut(&call, 64)
            )));
        }
        if !is_app_ref(&app) {
            return Err(invalid_arg(format!(
                "app `{}` must be an app id (app_ and 16 hex digits) or a name of 1 to 64 of \
                 A-Z a-z 0-9 . _ -",
                cut(&app, 64)
            )));
        }
        if data.len() > MAX_HAND_OVER_DATA {
            return Err(invalid_arg(format!(
                "data has {} bytes; the limit is {MAX_HAND_OVER_DATA}",
                data.len()
            )));
        }
        self.push(Action::HandOver {
            call: call.clone(),
            app,
            data,
        })?;
        self.set_phase(&call, LegPhase::HandingOver);
        self.handing_over.insert(call, leg.phase);
        Ok(())
    }

    fn refuse_hand_over(&mut self, call: String, reason: String) -> WitResult<()> {
        self.need_live(&call)?;
        if self.handed_over_call.as_deref() != Some(call.as_str()) {
            return Err(invalid_state(format!(
                "leg `{}` was not handed over in this on-call-received; refuse-hand-over is \
                 only allowed during the event that delivers a handed-over leg",
                cut(&call, 64)
            )));
        }
        if reason.len() > MAX_REFUSE_REASON {
            return Err(invalid_arg(format!(
                "reason has {} bytes; the limit is {MAX_REFUSE_REASON}",
                reason.len()
            )));
        }
        self.push(Action::RefuseHandOver {
            call: call.clone(),
            reason,
        })?;
        self.set_phase(&call, LegPhase::Finished);
        Ok(())
    }
}

/// An app reference for `hand-over`: an app id (`app_` + 16 lowercase hex digits) or an app
/// name (`[A-Za-z0-9._-]{1,64}`); every app id is also a valid name, so the name rule decides.
fn is_app_ref(s: &str) -> bool {
    is_name(s)
}

/// A `sip:`/`sips:` URI of printable ASCII with a non-empty host.
pub(super) fn check_sip_uri(uri: &str) -> WitResult<()> {
    let bad = |why: &str| invalid_arg(format!("sip-uri `{}` {why}", cut(uri, 80)));
    if uri.len() > 512 || !uri.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad(
            "must be at most 512 printable ASCII characters without spaces",
        ));
    }
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .ok_or_else(|| bad("must start with \"sip:\" or \"sips:\""))?;
    let hostport = rest.split([';', '?']).next().unwrap_or("");
    let host_part = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let host = if let Some(v6) = host_part.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_part.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// Printable ASCII without CR or LF (header names and values).
fn is_printable_ascii(s: &str) -> bool {
    s.chars()
        .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
}

fn check_dial_options(o: wit::DialOptions) -> WitResult<DialOptions> {
    if let Some(id) = &o.caller_id
        && (id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+*#._-".contains(c)))
    {
        return Err(invalid_arg(format!(
            "caller-id `{}` must be 1 to 64 of A-Z a-z 0-9 + * # . _ -",
            cut(id, 64)
        )));
    }
    if let Some(name) = &o.caller_name
        && (name.is_empty()
            || name.chars().count() > 64
            || name
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\'))
    {
        return Err(invalid_arg(
            "caller-name must be 1 to 64 printable characters without '\"' or '\\'",
        ));
    }
    let connect_timeout_ms = match o.connect_timeout_ms {
        0 => DEFAULT_CONNECT_TIMEOUT_MS,
        t if t <= MAX_CONNECT_TIMEOUT_MS => t,
        t => {
            return Err(invalid_arg(format!(
                "connect-timeout-ms {t} is above {MAX_CONNECT_TIMEOUT_MS}"
            )));
        }
    };
    if o.headers.len() > MAX_HEADERS {
        return Err(invalid_arg(format!(
            "{} headers; at most {MAX_HEADERS}",
            o.headers.len()
        )));
    }
    for (name, value) in &o.headers {
        let token = name.len() <= 64
            && name.len() > 2
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c));
        if !token || !(name.starts_with("X-") || name.starts_with("x-")) {
            return Err(invalid_arg(format!(
                "header name `{}` must be an X- token of at most 64 characters",
                cut(name, 64)
            )));
        }
        if value.len() > 1024 || !is_printable_ascii(value) {
            return Err(invalid_arg(format!(
                "header `{name}` value must be at most 1024 printable ASCII characters"
            )));
        }
    }
    Ok(DialOptions {
        caller_id: o.caller_id,
        caller_name: o.caller_name,
        connect_timeout_ms,
        headers: o.headers,
    })
}

fn check_collect_options(options: wit::CollectOptions) -> WitResult<CollectOptions> {
    if !(1..=64).contains(&options.max_digits) {
        return Err(invalid_arg(format!(
            "max-digits {} is outside 1 to 64",
            options.max_digits
        )));
    }
    let terminator = match options.terminator.as_deref() {
        None => None,
        Some(t) => {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if TERMINATOR_KEYS.contains(c) => Some(c),
                _ => {
                    return Err(invalid_arg(format!(
                        "terminator `{}` must be \"#\" or \"*\"",
                        cut(t, 16)
                    )));
                }
            }
        }
    };
    if options.timeout_ms == 0 {
        return Err(invalid_arg("timeout-ms must be at least 1"));
    }
    Ok(CollectOptions {
        max_digits: options.max_digits,
        terminator,
        timeout_ms: options.timeout_ms,
    })
}
