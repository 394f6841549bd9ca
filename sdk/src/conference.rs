//! The conference handle and its builders: create, join, moderate, speak and play into it.
//!
//! Invariants: every method maps to exactly one `pbx:app/conference` import and returns at
//! once; a handle is only an id. Creation defaults: no name, the built-in music for a
//! participant who is alone, no end when the moderator leaves, up to 100 participants.

use std::fmt;

use crate::bindings::pbx::app::types::{ConferenceOptions, JoinOptions};
use crate::host::conf;
use crate::media::Target;
use crate::{
    Call, Error, MediaId, ParticipantRole, Play, RecordTarget, Recording, Say, StartRecording,
};

/// A handle on a conference of this session: many legs, each hearing everyone but itself.
///
/// It lives until its last participant leaves (after at least one joined) or it is hung up;
/// then [`App::on_conference_finished`](crate::App::on_conference_finished) follows and it is
/// never reopened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Conference {
    id: String,
}

impl Conference {
    /// Creates a conference with the defaults (music while a participant is alone).
    pub fn create() -> Result<Conference, Error> {
        Conference::create_with().send()
    }

    /// Starts creating a conference with options:
    /// `Conference::create_with().name("standup").music_when_alone(false).send()`.
    pub fn create_with<'a>() -> CreateConference<'a> {
        CreateConference {
            name: None,
            music_file: None,
            music_when_alone: true,
            end_when_moderator_leaves: false,
            max_participants: 0,
        }
    }

    /// A handle for a conference id the host gave out.
    pub fn from_id(id: impl Into<String>) -> Self {
        Conference { id: id.into() }
    }

    /// The host's id of this conference, as shown in the admin API.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds an answered leg of this session as an ordinary participant;
    /// [`App::on_participant_joined`](crate::App::on_participant_joined) or
    /// [`App::on_participant_join_failed`](crate::App::on_participant_join_failed) follows.
    pub fn join(&self, call: &Call) -> Result<(), Error> {
        self.join_with(call).send()
    }

    /// Starts a join with options: `conf.join_with(&call).muted().moderator().send()`.
    pub fn join_with<'a>(&'a self, call: &'a Call) -> Join<'a> {
        Join {
            conference: self,
            call,
            muted: false,
            deafened: false,
            role: ParticipantRole::Participant,
        }
    }

    /// Takes a participant out; the leg stays up.
    pub fn leave(&self, call: &Call) -> Result<(), Error> {
        Ok(conf::leave(&self.id, call.id())?)
    }

    /// Takes a participant out and hangs up its leg.
    pub fn kick(&self, call: &Call) -> Result<(), Error> {
        Ok(conf::kick(&self.id, call.id())?)
    }

    /// Stops the others hearing a participant.
    pub fn mute(&self, call: &Call) -> Result<(), Error> {
        Ok(conf::mute(&self.id, call.id())?)
    }

    /// Lets the others hear a participant again.
    pub fn unmute(&self, call: &Call) -> Result<(), Error> {
        Ok(conf::unmute(&self.id, call.id())?)
    }

    /// Stops a participant hearing the conference.
    pub fn deafen(&self, call: &Call) -> Result<(), Error> {
        Ok(conf::deafen(&self.id, call.id())?)
    }

    /// Lets a participant hear the conference again.
    pub fn undeafen(&self, call: &Call) -> Result<(), Error> {
        Ok(conf::undeafen(&self.id, call.id())?)
    }

    /// Speaks into the conference in English, once; every participant who is not deafened
    /// hears it, and [`App::on_conference_media_finished`](crate::App::on_conference_media_finished)
    /// reports the end.
    pub fn say(&self, text: &str) -> Result<MediaId, Error> {
        self.say_with(text).send()
    }

    /// Starts a `say` into the conference with options.
    pub fn say_with<'a>(&'a self, text: &'a str) -> Say<'a> {
        Say::new(Target::Conference(&self.id), text)
    }

    /// Plays an uploaded file into the conference once.
    pub fn play(&self, file_id: &str) -> Result<MediaId, Error> {
        self.play_with(file_id).send()
    }

    /// Starts a `play` into the conference with options.
    pub fn play_with<'a>(&'a self, file_id: &'a str) -> Play<'a> {
        Play::new(Target::Conference(&self.id), file_id)
    }

    /// Stops what is playing into the conference.
    pub fn stop_media(&self) -> Result<(), Error> {
        Ok(conf::stop_media(&self.id)?)
    }

    /// Ends the conference: every participant leaves and its leg is hung up.
    pub fn hangup(&self) -> Result<(), Error> {
        Ok(conf::hangup(&self.id)?)
    }

    /// Starts recording the conference (every participant).
    pub fn record(&self) -> StartRecording {
        Recording::start(RecordTarget::Conference(self.clone()))
    }
}

impl fmt::Display for Conference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// A conference being created; [`CreateConference::send`] creates it.
#[derive(Debug, Clone)]
#[must_use = "a CreateConference does nothing until `send` is called"]
pub struct CreateConference<'a> {
    name: Option<&'a str>,
    music_file: Option<&'a str>,
    music_when_alone: bool,
    end_when_moderator_leaves: bool,
    max_participants: u32,
}

impl<'a> CreateConference<'a> {
    /// A name shown in the admin API.
    pub fn name(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
    }

    /// Play music to a participant who is alone (the default) or not.
    pub fn music_when_alone(mut self, on: bool) -> Self {
        self.music_when_alone = on;
        self
    }

    /// An uploaded file to play to a participant who is alone instead of the built-in music.
    pub fn music_file(mut self, file_id: &'a str) -> Self {
        self.music_file = Some(file_id);
        self
    }

    /// End the conference (and hang up everyone) when the last moderator leaves.
    pub fn end_when_moderator_leaves(mut self) -> Self {
        self.end_when_moderator_leaves = true;
        self
    }

    /// Most participants at once (2 to 100); by default 100.
    pub fn max_participants(mut self, max: u32) -> Self {
        self.max_participants = max;
        self
    }

    pub(crate) fn options(&self) -> ConferenceOptions {
        ConferenceOptions {
            name: self.name.map(String::from),
            music_file: self.music_file.map(String::from),
            music_when_alone: self.music_when_alone,
            end_when_moderator_leaves: self.end_when_moderator_leaves,
            max_participants: self.max_participants,
        }
    }

    /// Creates the conference.
    pub fn send(self) -> Result<Conference, Error> {
        Ok(Conference::from_id(conf::create(&self.options())?))
    }
}

/// A leg joining a conference; [`Join::send`] adds it.
#[derive(Debug, Clone)]
#[must_use = "a Join does nothing until `send` is called"]
pub struct Join<'a> {
    conference: &'a Conference,
    call: &'a Call,
    muted: bool,
    deafened: bool,
    role: ParticipantRole,
}

impl Join<'_> {
    /// Join muted: the others do not hear this participant.
    pub fn muted(mut self) -> Self {
        self.muted = true;
        self
    }

    /// Join deafened: this participant hears nothing from the conference.
    pub fn deafened(mut self) -> Self {
        self.deafened = true;
        self
    }

    /// The participant's role (an ordinary participant by default).
    pub fn role(mut self, role: ParticipantRole) -> Self {
        self.role = role;
        self
    }

    /// Join as a moderator (see [`CreateConference::end_when_moderator_leaves`]).
    pub fn moderator(self) -> Self {
        self.role(ParticipantRole::Moderator)
    }

    pub(crate) fn options(&self) -> JoinOptions {
        JoinOptions {
            muted: self.muted,
            deafened: self.deafened,
            role: self.role,
        }
    }

    /// Adds the leg; the outcome arrives as a participant event.
    pub fn send(self) -> Result<(), Error> {
        Ok(conf::join(
            self.conference.id(),
            self.call.id(),
            self.options(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_defaults_and_overrides() {
        let o = Conference::create_with().options();
        assert_eq!(o.name, None);
        assert_eq!(o.music_file, None);
        assert!(o.music_when_alone);
        assert!(!o.end_when_moderator_leaves);
        assert_eq!(o.max_participants, 0);
        let o = Conference::create_with()
            .name("standup")
            .music_when_alone(false)
            .music_file("f1")
            .end_when_moderator_leaves()
            .max_participants(15)
            .options();
        assert_eq!(o.name.as_deref(), Some("standup"));
        assert_eq!(o.music_file.as_deref(), Some("f1"));
        assert!(!o.music_when_alone);
        assert!(o.end_when_moderator_leaves);
        assert_eq!(o.max_participants, 15);
    }

    #[test]
    fn join_defaults_and_overrides() {
        let conf = Conference::from_id("conf-1");
        let call = Call::from_id("leg-1");
        let o = conf.join_with(&call).options();
        assert!(!o.muted && !o.deafened);
        assert_eq!(o.role, ParticipantRole::Participant);
        let o = conf
            .join_with(&call)
            .muted()
            .deafened()
            .moderator()
            .options();
        assert!(o.muted && o.deafened);
        assert_eq!(o.role, ParticipantRole::Moderator);
        assert_eq!(conf.to_string(), "conf-1");
    }
}
