//! A conference of one session: who takes part, with which role and flags, and the rules of
//! capacity and moderators. Its audio is a room of the session's media plane with the same id.
//!
//! Invariants: a conference is owned by the session that created it; it finishes once, and is
//! then removed, when the last participant leaves after at least one joined or when it is hung
//! up, and is never reopened.

use chrono::{DateTime, Utc};
use pbx_plugin::{ConferenceOptions, ParticipantRole};

/// One participant's flags.
pub(crate) struct Participant {
    pub(crate) call: String,
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
    pub(crate) participants: Vec<Participant>,
    pub(crate) had_participants: bool,
}

impl Conference {
    pub(crate) fn new(id: String, opts: ConferenceOptions, now: DateTime<Utc>) -> Self {
        Conference {
            id,
            opts,
            created_at: now,
            participants: Vec::new(),
            had_participants: false,
        }
    }

    /// The most participants at once.
    pub(crate) fn capacity(&self) -> usize {
        match self.opts.max_participants {
            0 => 100,
            n => n as usize,
        }
    }

    pub(crate) fn participant_mut(&mut self, call: &str) -> Option<&mut Participant> {
        self.participants.iter_mut().find(|p| p.call == call)
    }

    /// Adds a leg; false when the conference is full. The caller puts it in the room.
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
        self.participants.push(Participant {
            call: call.to_string(),
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
        self.participants.remove(pos);
        true
    }

    pub(crate) fn set_muted(&mut self, call: &str, muted: bool) {
        if let Some(p) = self.participant_mut(call) {
            p.muted = muted;
        }
    }

    pub(crate) fn set_deafened(&mut self, call: &str, deafened: bool) {
        if let Some(p) = self.participant_mut(call) {
            p.deafened = deafened;
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
