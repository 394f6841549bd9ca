//! How a session carries out what its app asks for: one `Action` at a time, in order,
//! after the event that produced it. Invariant: every action re-checks the leg it names
//! (`live_leg`), because an earlier action of the same event may have ended or moved it.

use super::*;

impl Session {
    // ----- app events and actions -----------------------------------------------------------

    /// Delivers queued events one at a time and carries out what the app asks for.
    pub(super) async fn deliver_events(&mut self) {
        while let Some(event) = self.events.pop_front() {
            if self.app_failed {
                self.events.clear();
                return;
            }
            let Some(app) = self.app.as_mut() else {
                self.events.clear();
                return;
            };
            let started = std::time::Instant::now();
            let delivered = app.deliver(&event).await;
            metrics::histogram!(crate::metrics::EVENT_DISPATCH_SECONDS)
                .record(started.elapsed().as_secs_f64());
            match delivered {
                Ok(actions) => {
                    for action in actions {
                        self.apply(action).await;
                    }
                    self.sync_phases();
                }
                Err(err) => {
                    self.app_error(err).await;
                    // Ending the legs queued their last events; a failed app gets none, and
                    // a queue left behind would keep the session (and its slot) alive.
                    self.events.clear();
                    return;
                }
            }
        }
    }

    /// Tells the instance every leg's real phase after the app's optimistic updates.
    pub(super) fn sync_phases(&mut self) {
        let Some(app) = self.app.as_mut() else {
            return;
        };
        for leg in &self.legs {
            // A leg whose BYE is out is ending: nothing more may be done to it.
            let phase = if leg.is_over() || leg.bye_deadline.is_some() {
                LegPhase::Finished
            } else if leg.is_answered() {
                LegPhase::Answered
            } else if leg.direction == Direction::Outbound {
                LegPhase::Dialing
            } else if self.media.is_flowing(&leg.id) {
                LegPhase::EarlyMedia
            } else {
                LegPhase::Ringing
            };
            app.set_leg(&leg.id, phase, leg.direction);
        }
    }

    pub(super) async fn apply(&mut self, action: Action) {
        match action {
            Action::Answer { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.answer(idx).await;
                }
            }
            Action::EarlyMedia { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.early_media(idx).await;
                }
            }
            Action::Reject { call, status } => {
                if let Some(idx) = self.live_leg(&call) {
                    let end = self.reject(idx, status, None).await;
                    self.finish_leg(idx, end).await;
                }
            }
            Action::Hangup { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    let end = ending(HangupBy::Local, HangupReason::Normal, None);
                    self.end_leg(idx, end).await;
                }
            }
            Action::Say {
                call,
                id,
                text,
                opts,
            } => {
                let play = say_opts(&opts, opts.stop_on_dtmf);
                let media = self.calls.media.clone();
                self.queue_clip(ClipOwner::Leg(call), id, play, async move {
                    media.say(text, opts.language, opts.voice, RATE).await
                });
            }
            Action::Play {
                call,
                id,
                file_id,
                opts,
            } => {
                let play = play_opts(&opts, opts.stop_on_dtmf);
                let media = self.calls.media.clone();
                self.queue_clip(ClipOwner::Leg(call), id, play, async move {
                    media.file(&file_id, RATE).await
                });
            }
            Action::PlayMusic { call, id, file_id } => {
                let play = PlayOpts {
                    kind: MediaKind::Play,
                    loop_count: u32::MAX,
                    offset_ms: 0,
                    timeout_ms: None,
                    stop_on_dtmf: false,
                };
                let media = self.calls.media.clone();
                let music = self.calls.music();
                self.queue_clip(ClipOwner::Leg(call), id, play, async move {
                    match file_id {
                        Some(file_id) => media.file(&file_id, RATE).await,
                        None => Ok(music),
                    }
                });
            }
            Action::StopMedia { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.stop_leg_media(idx);
                }
            }
            Action::CollectDtmf { call, opts } => {
                if self.live_leg(&call).is_none() {
                    return;
                }
                let opts = CollectOpts {
                    max_digits: opts.max_digits,
                    terminator: opts.terminator.and_then(Digit::from_char),
                    timeout: Duration::from_millis(u64::from(opts.timeout_ms)),
                };
                if let Err(err) = self
                    .media
                    .start_collect(Instant::now().into_std(), &call, opts)
                {
                    warn!(%err, "collect-dtmf options refused");
                }
                self.pump_media();
            }
            Action::SendDtmf {
                call,
                digits,
                duration_ms,
            } => {
                if self.live_leg(&call).is_none() {
                    return;
                }
                let duration = if duration_ms == 0 { 100 } else { duration_ms };
                let digits: Vec<Digit> = digits.chars().filter_map(Digit::from_char).collect();
                if let Err(err) = self.media.send_digits(&call, &digits, duration) {
                    warn!(%err, "send-dtmf refused");
                }
            }
            Action::Dial { call, target, opts } => {
                let stages = vec![Stage {
                    members: vec![self.member_for(&target)],
                    strategy: Strategy::RingAll,
                    timeout: connect_timeout(&opts),
                }];
                let label = endpoint_label(&target);
                self.dial_leg(call, label, stages, &opts).await;
            }
            Action::DialGroup { call, stages, opts } => {
                let label = group_label(&stages);
                let stages = stages.iter().map(|s| self.stage_for(s)).collect();
                self.dial_leg(call, label, stages, &opts).await;
            }
            Action::Connect { a, b } => {
                if let (Some(a), Some(b)) = (self.live_leg(&a), self.live_leg(&b)) {
                    self.stop_leg_media(a);
                    self.stop_leg_media(b);
                    self.bridge(a, b);
                }
            }
            Action::Disconnect { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.detach(idx);
                }
            }
            Action::DialAndConnect {
                call,
                new_call,
                target,
                opts,
            } => {
                let stages = vec![Stage {
                    members: vec![self.member_for(&target)],
                    strategy: Strategy::RingAll,
                    timeout: connect_timeout(&opts),
                }];
                let label = endpoint_label(&target);
                let opts = with_caller(&opts, self.caller_of(&call));
                if let Some(idx) = self.prepare_leg(new_call.clone(), label, &opts) {
                    self.legs[idx].answer_on_answer = Some(call);
                    self.start_dial(idx, stages, dial_params(&opts, &self.legs[idx].record.from))
                        .await;
                }
            }
            Action::Hold { call, music_file } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.hold(idx, music_file, true).await;
                }
            }
            Action::Resume { call } => {
                if let Some(idx) = self.live_leg(&call) {
                    self.hold(idx, None, false).await;
                }
            }
            Action::Mute { call, direction } => self.set_mute(&call, direction, true),
            Action::Unmute { call, direction } => self.set_mute(&call, direction, false),
            Action::Transfer {
                call,
                new_call,
                target,
                opts,
            } => {
                let Some(idx) = self.live_leg(&call) else {
                    return;
                };
                // The party `call` was bridged with is hung up; `call` hears music until the
                // new leg answers and is bridged with it.
                if let Some(peer) = self.media.bridge_peer(&call) {
                    self.detach(idx);
                    if let Some(p) = self.live_leg(&peer) {
                        let end = ending(HangupBy::Local, HangupReason::Normal, None);
                        self.end_leg(p, end).await;
                    }
                } else {
                    self.detach(idx);
                }
                self.media.start_music(&call, None);
                self.events.sink.publish(
                    pbx_store::EventType::CallTransferred,
                    Some(&call),
                    None,
                    serde_json::json!({ "kind": "blind", "new_call_id": new_call }),
                );
                self.dial_connected(call, new_call, target, opts).await;
            }
            Action::Consult {
                call,
                new_call,
                target,
                opts,
            } => {
                let Some(idx) = self.live_leg(&call) else {
                    return;
                };
                let held = self.media.bridge_peer(&call);
                self.detach(idx);
                if let Some(held) = held.as_ref().filter(|h| self.live_leg(h).is_some()) {
                    self.media.start_music(held, None);
                }
                if let Some(held) = held {
                    self.legs[idx].transfer = Some(TransferRole::Consulting {
                        held,
                        consult: new_call.clone(),
                    });
                }
                self.dial_connected(call, new_call, target, opts).await;
            }
            Action::CompleteTransfer { call } => {
                let Some(idx) = self.live_leg(&call) else {
                    return;
                };
                let Some(TransferRole::Consulting { held, consult }) =
                    self.legs[idx].transfer.take()
                else {
                    return;
                };
                if let (Some(h), Some(c)) = (self.live_leg(&held), self.live_leg(&consult)) {
                    self.media.stop_music(&held);
                    self.detach(c);
                    self.bridge(h, c);
                    self.events.sink.publish(
                        pbx_store::EventType::CallTransferred,
                        Some(&held),
                        None,
                        serde_json::json!({ "kind": "attended", "agent_call_id": call, "new_call_id": consult }),
                    );
                    let end = ending(HangupBy::Local, HangupReason::Normal, None);
                    self.end_leg(idx, end).await;
                }
            }
            Action::CancelTransfer { call } => {
                let Some(idx) = self.live_leg(&call) else {
                    return;
                };
                let Some(TransferRole::Consulting { held, consult }) =
                    self.legs[idx].transfer.take()
                else {
                    return;
                };
                if let Some(c) = self.live_leg(&consult) {
                    let end = ending(HangupBy::Local, HangupReason::Normal, None);
                    self.end_leg(c, end).await;
                }
                if let Some(h) = self.live_leg(&held) {
                    self.media.stop_music(&held);
                    self.bridge(h, idx);
                }
            }
            Action::ConferenceCreate { id, opts } => {
                self.events.sink.publish(
                    pbx_store::EventType::ConferenceCreated,
                    None,
                    Some(&id),
                    serde_json::json!({ "name": opts.name }),
                );
                self.media.add_room(&id, opts.music_when_alone);
                let conf = Conference::new(id.clone(), opts, Utc::now());
                self.conferences.push(conf);
                self.publish_conference(&id);
                if let Err(err) = self
                    .calls
                    .store
                    .upsert_conference(&pbx_store::ConferenceRecord {
                        id: id.clone(),
                        account_id: self.account_id.clone(),
                        app_id: self.app_id.clone(),
                        name: self.conferences.last().and_then(|c| c.opts.name.clone()),
                        created_at: Utc::now(),
                        ended_at: None,
                    })
                {
                    warn!(%err, "cannot write conference history");
                }
            }
            Action::ConferenceJoin {
                conference,
                call,
                opts,
            } => self.join_conference(&conference, &call, opts),
            Action::ConferenceLeave { conference, call } => {
                self.leave_conference(&conference, &call).await;
            }
            Action::ConferenceKick { conference, call } => {
                self.leave_conference(&conference, &call).await;
                if let Some(idx) = self.live_leg(&call) {
                    let end = ending(HangupBy::Local, HangupReason::Normal, None);
                    self.end_leg(idx, end).await;
                }
            }
            Action::ConferenceMute { conference, call } => {
                self.media.set_room_muted(&conference, &call, true);
                self.with_conference(&conference, |c| c.set_muted(&call, true));
            }
            Action::ConferenceUnmute { conference, call } => {
                self.media.set_room_muted(&conference, &call, false);
                self.with_conference(&conference, |c| c.set_muted(&call, false));
            }
            Action::ConferenceDeafen { conference, call } => {
                self.media.set_room_deafened(&conference, &call, true);
                self.with_conference(&conference, |c| c.set_deafened(&call, true));
            }
            Action::ConferenceUndeafen { conference, call } => {
                self.media.set_room_deafened(&conference, &call, false);
                self.with_conference(&conference, |c| c.set_deafened(&call, false));
            }
            Action::ConferenceSay {
                conference,
                id,
                text,
                opts,
            } => {
                // Keys of one participant never stop what everyone hears.
                let play = say_opts(&opts, false);
                let media = self.calls.media.clone();
                self.queue_clip(ClipOwner::Room(conference), id, play, async move {
                    media.say(text, opts.language, opts.voice, RATE).await
                });
            }
            Action::ConferencePlay {
                conference,
                id,
                file_id,
                opts,
            } => {
                let play = play_opts(&opts, false);
                let media = self.calls.media.clone();
                self.queue_clip(ClipOwner::Room(conference), id, play, async move {
                    media.file(&file_id, RATE).await
                });
            }
            Action::ConferenceStopMedia { conference } => {
                if let Some(ci) = self.conferences.iter().position(|c| c.id == conference) {
                    self.stop_conference_media(ci);
                }
            }
            Action::ConferenceHangup { conference } => {
                self.hangup_conference(&conference, HangupReason::Normal)
                    .await;
            }
            Action::RecordStart { id, target, opts } => self.start_recording(id, target, opts),
            Action::RecordStop { id } => self.stop_recording(&id),
            Action::HandOver { call, app, data } => self.hand_over(call, app, data).await,
            Action::RefuseHandOver { call, reason } => self.refuse_hand_over(call, reason).await,
            Action::SetTimer { id, ms, tag } => {
                let when = Instant::now() + Duration::from_millis(u64::from(ms));
                self.timers.push((when, id, tag));
            }
            Action::CancelTimer { id } => {
                self.timers.retain(|(_, t, _)| *t != id);
                if let Some(app) = self.app.as_mut() {
                    app.timer_done(id);
                }
            }
            Action::HttpRequest { id, request } => {
                // Off the session task: a slow server never delays this call's media.
                let mailbox = self.mailbox_tx.clone();
                tokio::spawn(async move {
                    let result = crate::app_http::execute(request).await;
                    let _ = mailbox.send(CallMsg::HttpDone { id, result }).await;
                });
            }
        }
    }
}
