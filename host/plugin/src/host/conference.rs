//! `pbx:app/conference@0.3.0`: conference rooms of the session: creating them, joining,
//! leaving, kicking, muting and deafening members, speaking and playing into the room, and
//! hanging it up. This file owns the conference options check and the session's
//! conference limit.
//!
//! Invariants: a conference id names a room of this session only (`cnf_` and 16 random hex
//! digits); a session holds at most [`MAX_CONFERENCES`] live ones; a conference hangup
//! forgets the room at once, so later requests of the same event naming it are `not-found`.

use super::{HostState, WitResult, failed, invalid_arg, play_options};
use crate::bindings::v0_3::{conference, types as wit};
use pbx_app::{Action, ConferenceOptions, MediaId};

/// Live conferences of one session at once.
pub(crate) const MAX_CONFERENCES: usize = 8;

impl conference::Host for HostState {
    fn create(&mut self, options: wit::ConferenceOptions) -> WitResult<String> {
        if let Some(name) = &options.name
            && (name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control))
        {
            return Err(invalid_arg("name must be 1 to 128 printable characters"));
        }
        if let Some(file) = &options.music_file {
            self.check_file("music-file", file)?;
        }
        let max_participants = match options.max_participants {
            0 => 100,
            n @ 2..=100 => n,
            n => {
                return Err(invalid_arg(format!(
                    "max-participants {n} is outside 2 to 100 (0 means 100)"
                )));
            }
        };
        if self.conferences.len() >= MAX_CONFERENCES {
            return Err(failed(format!(
                "the session has {MAX_CONFERENCES} live conferences, the most it may have"
            )));
        }
        self.need_room()?;
        let id = loop {
            let id = format!("cnf_{:016x}", rand::random::<u64>());
            if !self.conferences.contains(&id) {
                break id;
            }
        };
        self.push(Action::ConferenceCreate {
            id: id.clone(),
            opts: ConferenceOptions {
                name: options.name,
                music_file: options.music_file,
                music_when_alone: options.music_when_alone,
                end_when_moderator_leaves: options.end_when_moderator_leaves,
                max_participants,
            },
        })?;
        self.conferences.insert(id.clone());
        Ok(id)
    }

    fn join(
        &mut self,
        conference: String,
        call: String,
        options: wit::JoinOptions,
    ) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_answered(&call, "join a conference")?;
        self.push(Action::ConferenceJoin {
            conference,
            call,
            opts: options.into(),
        })
    }

    fn leave(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceLeave { conference, call })
    }

    fn kick(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceKick { conference, call })
    }

    fn mute(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceMute { conference, call })
    }

    fn unmute(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceUnmute { conference, call })
    }

    fn deafen(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceDeafen { conference, call })
    }

    fn undeafen(&mut self, conference: String, call: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.need_live(&call)?;
        self.push(Action::ConferenceUndeafen { conference, call })
    }

    fn say(
        &mut self,
        conference: String,
        text: String,
        options: wit::SayOptions,
    ) -> WitResult<MediaId> {
        self.need_conference(&conference)?;
        let (text, opts) = self.say_action(text, options)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::ConferenceSay {
            conference,
            id,
            text,
            opts,
        })?;
        Ok(id)
    }

    fn play(
        &mut self,
        conference: String,
        file_id: String,
        options: wit::PlayOptions,
    ) -> WitResult<MediaId> {
        self.need_conference(&conference)?;
        self.check_file("file id", &file_id)?;
        self.need_room()?;
        let id = self.next_media_id();
        self.push(Action::ConferencePlay {
            conference,
            id,
            file_id,
            opts: play_options(options),
        })?;
        Ok(id)
    }

    fn stop_media(&mut self, conference: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.push(Action::ConferenceStopMedia { conference })
    }

    fn hangup(&mut self, conference: String) -> WitResult<()> {
        self.need_conference(&conference)?;
        self.push(Action::ConferenceHangup {
            conference: conference.clone(),
        })?;
        self.conferences.remove(&conference);
        Ok(())
    }
}
