//! Conference operations of a session: join, leave, hang up, finish, and the registry copy
//! the admin API reads. Invariant: a conference finishes exactly once and is then removed.

use super::*;

impl Session {
    // ----- conferences ----------------------------------------------------------------------

    pub(super) fn with_conference(&mut self, id: &str, f: impl FnOnce(&mut Conference)) {
        if let Some(conf) = self.conferences.iter_mut().find(|c| c.id == id) {
            f(conf);
        }
        self.publish_conference(id);
    }

    pub(super) fn join_conference(
        &mut self,
        conference: &str,
        call: &str,
        opts: pbx_plugin::JoinOptions,
    ) {
        self.events.push_back(Event::ParticipantJoining {
            conference: conference.to_string(),
            call: call.to_string(),
        });
        let Some(idx) = self.live_leg(call) else {
            self.events.push_back(Event::ParticipantJoinFailed {
                conference: conference.to_string(),
                call: call.to_string(),
                reason: "the leg has ended".into(),
            });
            return;
        };
        if self.media.attach(call) == Attach::Room(conference.to_string()) {
            self.events.push_back(Event::ParticipantJoinFailed {
                conference: conference.to_string(),
                call: call.to_string(),
                reason: "the leg is already in this conference".into(),
            });
            return;
        }
        // Out of a bridge or another conference first; the host's music ends.
        self.detach(idx);
        self.leave_any_conference(idx);
        if !self.media.is_held(call) {
            self.media.stop_music(call);
        }
        let now = Utc::now();
        let joined = self
            .conferences
            .iter_mut()
            .find(|c| c.id == conference)
            .map(|c| c.join(call, opts.muted, opts.deafened, opts.role, now));
        if joined == Some(true) {
            self.media
                .join_room(conference, call, opts.muted, opts.deafened);
        }
        match joined {
            Some(true) => {
                self.events.push_back(Event::ParticipantJoined {
                    conference: conference.to_string(),
                    call: call.to_string(),
                });
            }
            Some(false) | None => {
                self.events.push_back(Event::ParticipantJoinFailed {
                    conference: conference.to_string(),
                    call: call.to_string(),
                    reason: "the conference is full or has ended".into(),
                });
            }
        }
        self.publish_conference(conference);
    }

    pub(super) async fn leave_conference(&mut self, conference: &str, call: &str) {
        let Some(ci) = self.conferences.iter().position(|c| c.id == conference) else {
            return;
        };
        if !self.conferences[ci].leave(call) {
            return;
        }
        if self.media.attach(call) == Attach::Room(conference.to_string()) {
            self.media.leave_room(call);
        }
        self.events.push_back(Event::ParticipantLeft {
            conference: conference.to_string(),
            call: call.to_string(),
        });
        let conf = &self.conferences[ci];
        let moderator_gone = conf.opts.end_when_moderator_leaves && !conf.has_moderator();
        if conf.is_empty_after_use() {
            self.finish_conference(ci);
        } else if moderator_gone {
            Box::pin(self.hangup_conference(conference, HangupReason::Normal)).await;
        } else {
            self.publish_conference(conference);
        }
    }

    /// Ends a conference: every participant leaves and its leg is hung up.
    pub(super) async fn hangup_conference(&mut self, conference: &str, reason: HangupReason) {
        let Some(ci) = self.conferences.iter().position(|c| c.id == conference) else {
            return;
        };
        let members: Vec<String> = self.conferences[ci]
            .participants
            .iter()
            .map(|p| p.call.clone())
            .collect();
        for call in members {
            let left = self
                .conferences
                .iter_mut()
                .find(|c| c.id == conference)
                .is_some_and(|c| c.leave(&call));
            if !left {
                continue;
            }
            self.events.push_back(Event::ParticipantLeft {
                conference: conference.to_string(),
                call: call.clone(),
            });
            if self.media.attach(&call) == Attach::Room(conference.to_string()) {
                self.media.leave_room(&call);
            }
            if let Some(idx) = self.live_leg(&call) {
                self.end_leg(idx, ending(HangupBy::Local, reason, None))
                    .await;
            }
        }
        if let Some(ci) = self.conferences.iter().position(|c| c.id == conference) {
            self.finish_conference(ci);
        }
    }

    pub(super) fn finish_conference(&mut self, ci: usize) {
        self.stop_conference_media(ci);
        let conf = &self.conferences[ci];
        let id = conf.id.clone();
        debug!(conference = %id, "conference finished");
        let stops: Vec<String> = self
            .recordings
            .iter()
            .filter(|r| matches!(&r.target, RecordTarget::Conference(c) if *c == id))
            .map(|r| r.id.clone())
            .collect();
        for rid in stops {
            self.stop_recording(&rid);
        }
        if let Some(app) = self.app.as_mut() {
            app.conference_ended(&id);
        }
        self.calls.unregister_conference(&id);
        self.media.remove_room(&id);
        self.pump_media();
        let conf = self.conferences.remove(ci);
        if let Err(err) = self
            .calls
            .store
            .upsert_conference(&pbx_store::ConferenceRecord {
                id: conf.id.clone(),
                account_id: self.account_id.clone(),
                app_id: self.app_id.clone(),
                name: conf.opts.name.clone(),
                created_at: conf.created_at,
                ended_at: Some(Utc::now()),
            })
        {
            warn!(%err, "cannot write conference history");
        }
        self.events
            .push_back(Event::ConferenceFinished { conference: id });
    }

    /// Copies a conference's state into the registry the API reads.
    pub(super) fn publish_conference(&self, id: &str) {
        let Some(conf) = self.conferences.iter().find(|c| c.id == id) else {
            return;
        };
        let view = ConferenceView {
            id: conf.id.clone(),
            account_id: self.account_id.clone(),
            name: conf.opts.name.clone(),
            app_id: self.app_id.clone().unwrap_or_default(),
            created_at: conf.created_at,
            participants: conf
                .participants
                .iter()
                .map(|p| ParticipantView {
                    call_id: p.call.clone(),
                    muted: p.muted,
                    deafened: p.deafened,
                    role: match p.role {
                        pbx_plugin::ParticipantRole::Moderator => "moderator".into(),
                        pbx_plugin::ParticipantRole::Participant => "participant".into(),
                    },
                    joined_at: p.joined_at,
                })
                .collect(),
        };
        self.calls.publish_conference(view, self.mailbox_tx.clone());
    }
}
