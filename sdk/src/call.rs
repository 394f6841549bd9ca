//! The leg handle: one typed method per `pbx:app/call-control` import that acts on a leg.
//!
//! Invariants: every method maps to exactly one import and returns at once; a handle is only
//! an id, so it can be cloned, compared and kept in app state freely, and a handle outliving
//! its leg only gets [`Error::InvalidState`] back.

use std::fmt;
use std::time::Duration;

use crate::host::cc;
use crate::media::{Target, millis};
use crate::{
    Collect, Dial, Endpoint, Error, MediaId, MuteDirection, Play, RecordTarget, Recording, Say,
    StartRecording,
};

/// A handle on one leg of the session, given to every leg event and returned by
/// [`dial`](crate::dial).
///
/// Two handles are equal when they name the same leg, so `call == self.callee` tells which
/// leg an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Call {
    id: String,
}

impl Call {
    /// A handle for a leg id the host gave out (for example one kept as text).
    pub fn from_id(id: impl Into<String>) -> Self {
        Call { id: id.into() }
    }

    #[doc(hidden)]
    pub fn new(id: &str) -> Self {
        Call::from_id(id)
    }

    /// The host's id of this leg, as shown in the admin API.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Answers an inbound leg (SIP 200 OK). Media starts flowing.
    pub fn answer(&self) -> Result<(), Error> {
        Ok(cc::answer(&self.id)?)
    }

    /// Starts early media (SIP 183) so that `say` and `play` are heard before answering.
    pub fn early_media(&self) -> Result<(), Error> {
        Ok(cc::early_media(&self.id)?)
    }

    /// Rejects an unanswered inbound leg with a SIP final status from 400 to 699, such as
    /// 486 (busy here) or 603 (decline).
    pub fn reject(&self, status: u16) -> Result<(), Error> {
        Ok(cc::reject(&self.id, status)?)
    }

    /// Ends the leg: BYE when answered, 480 for an unanswered inbound leg, CANCEL for a leg
    /// still being dialled. Hanging up the session's first leg hangs up every other leg.
    pub fn hangup(&self) -> Result<(), Error> {
        Ok(cc::hangup(&self.id)?)
    }

    /// Speaks `text` in English, once; the end is reported to
    /// [`App::on_say_finished`](crate::App::on_say_finished) with the returned id.
    pub fn say(&self, text: &str) -> Result<MediaId, Error> {
        self.say_with(text).send()
    }

    /// Starts a `say` request with options: `call.say_with("Hallo").language("de").send()`.
    pub fn say_with<'a>(&'a self, text: &'a str) -> Say<'a> {
        Say::new(Target::Call(&self.id), text)
    }

    /// Plays an uploaded audio file once, by its id; the end is reported to
    /// [`App::on_play_finished`](crate::App::on_play_finished).
    pub fn play(&self, file_id: &str) -> Result<MediaId, Error> {
        self.play_with(file_id).send()
    }

    /// Starts a `play` request with options: `call.play_with(id).loops(3).send()`.
    pub fn play_with<'a>(&'a self, file_id: &'a str) -> Play<'a> {
        Play::new(Target::Call(&self.id), file_id)
    }

    /// Plays the built-in music in a loop until [`Call::stop_media`].
    pub fn play_music(&self) -> Result<MediaId, Error> {
        Ok(cc::play_music(&self.id, None)?)
    }

    /// Plays an uploaded file in a loop until [`Call::stop_media`].
    pub fn play_music_file(&self, file_id: &str) -> Result<MediaId, Error> {
        Ok(cc::play_music(&self.id, Some(file_id))?)
    }

    /// Stops the media playing now and drops what is queued; each stopped request still
    /// reports its finished event.
    pub fn stop_media(&self) -> Result<(), Error> {
        Ok(cc::stop_media(&self.id)?)
    }

    /// Collects keypad digits; the result arrives as
    /// [`App::on_dtmf_collected`](crate::App::on_dtmf_collected). A new collection cancels
    /// the one under way.
    pub fn collect_dtmf(&self, collect: Collect) -> Result<(), Error> {
        Ok(cc::collect_dtmf(&self.id, &collect.options())?)
    }

    /// Sends keypad digits ("0"-"9", "*", "#", "A"-"D", up to 32) to an answered leg as
    /// RFC 4733 events of 100 ms each.
    pub fn send_dtmf(&self, digits: &str) -> Result<(), Error> {
        Ok(cc::send_dtmf(&self.id, digits, 0)?)
    }

    /// [`Call::send_dtmf`] with another length per digit (40 ms to 2 s).
    pub fn send_dtmf_with_duration(&self, digits: &str, each: Duration) -> Result<(), Error> {
        Ok(cc::send_dtmf(&self.id, digits, millis(each))?)
    }

    /// Puts an answered leg on hold (re-INVITE `sendonly`) with the built-in music; its
    /// bridge, if any, is suspended.
    pub fn hold(&self) -> Result<(), Error> {
        Ok(cc::hold(&self.id, None)?)
    }

    /// [`Call::hold`] with an uploaded file as the music.
    pub fn hold_with_music(&self, file_id: &str) -> Result<(), Error> {
        Ok(cc::hold(&self.id, Some(file_id))?)
    }

    /// Takes the leg off hold (re-INVITE `sendrecv`); its bridge resumes.
    pub fn resume(&self) -> Result<(), Error> {
        Ok(cc::resume(&self.id)?)
    }

    /// Mutes the leg: `Inbound` (nobody hears it), `Outbound` (it hears silence) or `Both`.
    /// Media the app plays to it is still heard.
    pub fn mute(&self, direction: MuteDirection) -> Result<(), Error> {
        Ok(cc::mute(&self.id, direction)?)
    }

    /// Undoes [`Call::mute`] for the given direction.
    pub fn unmute(&self, direction: MuteDirection) -> Result<(), Error> {
        Ok(cc::unmute(&self.id, direction)?)
    }

    /// Bridges this answered leg with another: each hears the other. A leg is in at most one
    /// bridge or conference; when either leg ends the other stays up for the app.
    pub fn connect(&self, other: &Call) -> Result<(), Error> {
        Ok(cc::connect(&self.id, &other.id)?)
    }

    /// Takes the leg out of its bridge.
    pub fn disconnect(&self) -> Result<(), Error> {
        Ok(cc::disconnect(&self.id)?)
    }

    /// Dials `target` for this unanswered inbound leg and bridges them: this leg hears the
    /// ringing and early media and is answered only when the new leg answers. Returns the
    /// new leg; when it fails, this leg stays unanswered for the app.
    pub fn dial_and_connect(&self, target: &Endpoint) -> Result<Call, Error> {
        self.dial_and_connect_with(target).send()
    }

    /// [`Call::dial_and_connect`] with dial options.
    pub fn dial_and_connect_with<'a>(&'a self, target: &'a Endpoint) -> Dial<'a> {
        Dial::dial_and_connect(self, target)
    }

    /// Blind transfer: hangs up the leg this one is bridged with and dials `target` for this
    /// leg, which hears music until the new leg answers. Returns the new leg.
    pub fn transfer(&self, target: &Endpoint) -> Result<Call, Error> {
        self.transfer_with(target).send()
    }

    /// [`Call::transfer`] with dial options.
    pub fn transfer_with<'a>(&'a self, target: &'a Endpoint) -> Dial<'a> {
        Dial::transfer(self, target)
    }

    /// Attended transfer, first step: this leg (an agent) consults `target` while the party
    /// it was bridged with hears music. Returns the consult leg, bridged with this one once
    /// it answers.
    pub fn consult(&self, target: &Endpoint) -> Result<Call, Error> {
        self.consult_with(target).send()
    }

    /// [`Call::consult`] with dial options.
    pub fn consult_with<'a>(&'a self, target: &'a Endpoint) -> Dial<'a> {
        Dial::consult(self, target)
    }

    /// Attended transfer, last step: bridges the held party with the consult leg and hangs
    /// up this (agent) leg.
    pub fn complete_transfer(&self) -> Result<(), Error> {
        Ok(cc::complete_transfer(&self.id)?)
    }

    /// Abandons a consultation: hangs up the consult leg and bridges this leg with its held
    /// party again.
    pub fn cancel_transfer(&self) -> Result<(), Error> {
        Ok(cc::cancel_transfer(&self.id)?)
    }

    /// Hands this leg over to another app (its id or name; it needs a deployed version),
    /// passing `data` (at most 4 KiB) along: that app starts a new session with the leg and
    /// sees it in `on_call_received` with [`CallInfo::handed_over`](crate::CallInfo) set.
    /// The leg must not be in a bridge or conference, nor still dialing. Until
    /// [`App::on_hand_over_result`](crate::App::on_hand_over_result) arrives, requests on the
    /// leg return [`Error::InvalidState`].
    pub fn hand_over(&self, app: &str, data: &str) -> Result<(), Error> {
        Ok(cc::hand_over(&self.id, app, data)?)
    }

    /// Gives back a leg that another app just handed over to this one; only during the
    /// `on_call_received` that delivered it. The handing app hears `reason` (at most 256
    /// bytes) in its `on_hand_over_result`, and the leg is no longer this session's.
    pub fn refuse_hand_over(&self, reason: &str) -> Result<(), Error> {
        Ok(cc::refuse_hand_over(&self.id, reason)?)
    }

    /// Starts recording this leg (what its party says and what it hears from the pbx).
    pub fn record(&self) -> StartRecording {
        Recording::start(RecordTarget::Call(self.clone()))
    }

    /// Starts recording the bridge this leg is in (both parties).
    pub fn record_bridge(&self) -> StartRecording {
        Recording::start(RecordTarget::Bridge(self.clone()))
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_compare_by_id() {
        let a = Call::from_id("leg-1");
        assert_eq!(a, Call::new("leg-1"));
        assert_ne!(a, Call::from_id(String::from("leg-2")));
        assert_eq!(a.id(), "leg-1");
        assert_eq!(a.to_string(), "leg-1");
    }
}
