//! The audio of one conference room: the N-1 mixer, announcements played into it, and music
//! for a participant who is alone. Membership rules (roles, capacity, who may end it) are the
//! conference's, not the room's.
//!
//! Invariants: each member has one mixer key for as long as it is in the room; a muted
//! member's voice reaches nobody, a deafened member hears nobody (announcements included).

use std::collections::VecDeque;

use pbx_media::mixer::Mixer;
use pbx_media::player::Player;

use crate::leg_media::PendingClip;
use crate::music::MusicLoop;
use crate::{FRAME, Frame, RATE};

/// A conference room's audio.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) id: String,
    pub(crate) mixer: Mixer,
    /// Members: leg id and mixer key.
    pub(crate) members: Vec<(String, u64)>,
    pub(crate) player: Player,
    pub(crate) pending: VecDeque<PendingClip>,
    pub(crate) music_when_alone: bool,
    pub(crate) music: Option<MusicLoop>,
    pub(crate) announcement: Frame,
    next_key: u64,
}

impl Room {
    pub(crate) fn new(id: &str, music_when_alone: bool) -> Self {
        Room {
            id: id.to_owned(),
            mixer: Mixer::new(FRAME),
            members: Vec::new(),
            player: Player::new(RATE),
            pending: VecDeque::new(),
            music_when_alone,
            music: None,
            announcement: [0; FRAME],
            next_key: 1,
        }
    }

    /// Adds a member; returns its mixer key.
    pub(crate) fn add(&mut self, leg: &str, muted: bool, deafened: bool) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.mixer.add(key);
        self.mixer.set_muted(key, muted);
        self.mixer.set_deafened(key, deafened);
        self.members.push((leg.to_owned(), key));
        key
    }

    /// Removes a member; returns whether it was one.
    pub(crate) fn remove(&mut self, leg: &str) -> bool {
        let Some(pos) = self.members.iter().position(|(id, _)| id == leg) else {
            return false;
        };
        let (_, key) = self.members.remove(pos);
        self.mixer.remove(key);
        true
    }

    pub(crate) fn key_of(&self, leg: &str) -> Option<u64> {
        self.members
            .iter()
            .find(|(id, _)| id == leg)
            .map(|(_, key)| *key)
    }
}
