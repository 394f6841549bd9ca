//! A conference of one session: its participants, the N-1 mixer and what is played into it.
//!
//! Invariants: a conference is owned by the session that created it, so its mixer runs on
//! that session's 20 ms tick with no locking; it finishes once, and is then removed, when the last
//! participant leaves after at least one joined or when it is hung up, and is never reopened.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use pbx_media::mixer::Mixer;
use pbx_media::player::Player;
use pbx_plugin::{ConferenceOptions, ParticipantRole};

use super::leg::{FRAME, MusicLoop, PendingMedia, RATE};

/// One participant's flags.
pub(crate) struct Participant {
    pub(crate) call: String,
    /// The mixer's key for this leg.
    pub(crate) key: u64,
    pub(crate) muted: bool,
    pub(crate) deafened: bool,
    pub(crate) role: ParticipantRole,
    pub(crate) joined_at: DateTime<Utc>,
}

/// A live conference.
pub(crate) struct Conference {
    pub(crate) id: String,
    pub(crate) opts: ConferenceOptions,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) mixer: Mixer,
    pub(crate) participants: Vec<Participant>,
    /// Announcements (`say`/`play` into the conference).
    pub(crate) player: Player,
    pub(crate) pending: VecDeque<PendingMedia>,
    /// Music for a participant who is alone.
    pub(crate) music: Option<MusicLoop>,
    pub(crate) had_participants: bool,
    next_key: u64,
    pub(crate) announcement: [i16; FRAME],
}

impl Conference {
    pub(crate) fn new(id: String, opts: ConferenceOptions, now: DateTime<Utc>) -> Self {
        Conference {
            id,
            opts,
            created_at: now,
            mixer: Mixer::new(FRAME),
            participants: Vec::new(),
            player: Player::new(RATE),
            pending: VecDeque::new(),
            music: None,
            had_participants: false,
            next_key: 1,
            announcement: [0; FRAME],
        }
    }

    /// The most participants at once.
    pub(crate) fn capacity(&self) -> usize {
        match self.opts.max_participants {
            0 => 100,
            n => n as usize,
        }
    }

    pub(crate) fn participant(&self, call: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.call == call)
    }

    pub(crate) fn participant_mut(&mut self, call: &str) -> Option<&mut Participant> {
        self.participants.iter_mut().find(|p| p.call == call)
    }

    /// Adds a leg; false when the conference is full.
    pub(crate) fn join(
        &mut self,
        call: &str,
        muted: bool,
        deafened: bool,
        role: ParticipantRole,
        now: DateTime<Utc>,
    ) -> bool {
        if self.participants.len() >= self.capacity() {
            return false;
        }
        let key = self.next_key;
        self.next_key += 1;
        self.mixer.add(key);
        self.mixer.set_muted(key, muted);
        self.mixer.set_deafened(key, deafened);
        self.participants.push(Participant {
            call: call.to_string(),
            key,
            muted,
            deafened,
            role,
            joined_at: now,
        });
        self.had_participants = true;
        true
    }

    /// Removes a leg; returns whether it was a participant.
    pub(crate) fn leave(&mut self, call: &str) -> bool {
        let Some(pos) = self.participants.iter().position(|p| p.call == call) else {
            return false;
        };
        let p = self.participants.remove(pos);
        self.mixer.remove(p.key);
        true
    }

    pub(crate) fn set_muted(&mut self, call: &str, muted: bool) {
        if let Some(p) = self.participant_mut(call) {
            p.muted = muted;
            let key = p.key;
            self.mixer.set_muted(key, muted);
        }
    }

    pub(crate) fn set_deafened(&mut self, call: &str, deafened: bool) {
        if let Some(p) = self.participant_mut(call) {
            p.deafened = deafened;
            let key = p.key;
            self.mixer.set_deafened(key, deafened);
        }
    }

    /// True when a moderator is still in.
    pub(crate) fn has_moderator(&self) -> bool {
        self.participants
            .iter()
            .any(|p| p.role == ParticipantRole::Moderator)
    }

    /// True when the conference should end now: it had participants and has none.
    pub(crate) fn is_empty_after_use(&self) -> bool {
        self.had_participants && self.participants.is_empty()
    }
}
