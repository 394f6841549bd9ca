//! Handing a leg to another app's session and taking it back. Invariant: the leg's SIP
//! events reach whichever session has it: the handing session passes them on until the
//! other side accepts, and only then is the dialog rerouted.

use super::*;

impl Session {
    // ----- hand-over ------------------------------------------------------------------------

    pub(super) fn hand_over_failed(&mut self, call: String, reason: String) {
        debug!(leg = %call, %reason, "hand-over not possible");
        self.events.push_back(Event::HandOverResult {
            call,
            accepted: false,
            reason: Some(reason),
        });
    }

    /// The app's `hand-over`: the leg moves, with its sockets and dialog, to a new session of
    /// the other app; its SIP events are rerouted there.
    pub(super) async fn hand_over(&mut self, call: String, app: String, data: String) {
        let Some(idx) = self.live_leg(&call) else {
            return self.hand_over_failed(call, "the leg has ended".into());
        };
        if self.media.attach(&call) != Attach::None {
            return self.hand_over_failed(call, "the leg is in a bridge or conference".into());
        }
        if self.legs[idx].dialer.is_some() {
            return self.hand_over_failed(call, "the leg is still being dialled".into());
        }
        if self
            .handover_origin
            .as_ref()
            .is_some_and(|(_, c)| *c == call)
        {
            // Passing it on before our own acceptance was reported would race two reroutes.
            return self.hand_over_failed(
                call,
                "the leg was just handed to this app; hand it over after on-call-received".into(),
            );
        }
        let found = if pbx_store::is_id(pbx_store::APP_PREFIX, &app) {
            self.calls.store.app(&self.account_id, &app).ok().flatten()
        } else {
            self.calls
                .store
                .list_apps(&self.account_id)
                .ok()
                .and_then(|apps| apps.into_iter().find(|a| a.name == app))
        };
        let Some((app_id, version)) = found.and_then(|a| a.active_version.map(|v| (a.id, v)))
        else {
            return self.hand_over_failed(call, format!("no app `{app}` with a deployed version"));
        };
        self.stop_leg_media(idx);
        self.media.cancel_collect(&call);
        self.pump_media();
        // Recordings of the leg stop with it here, as when it ends.
        let stops: Vec<String> = self
            .recordings
            .iter()
            .filter(|r| matches!(&r.target, RecordTarget::Call(c) | RecordTarget::Bridge(c) if *c == call))
            .map(|r| r.id.clone())
            .collect();
        for id in stops {
            self.stop_recording(&id);
        }
        let mut leg = self.legs.remove(idx);
        leg.reset_for_move();
        leg.media_in_transit = self.media.take_leg(&call);
        let keys: Vec<CallKey> = leg
            .key
            .into_iter()
            .chain(leg.attempts.iter().map(|(_, k)| *k))
            .collect();
        debug!(leg = %call, to_app = %app_id, "handing over");
        let handover = HandOver {
            leg: MovingLeg(Box::new(leg)),
            app_id,
            version,
            from_app: self.app_id.clone().unwrap_or_default(),
            data,
            origin: self.mailbox_tx.clone(),
        };
        let to = self.calls.spawn_handed_over(handover, self.sip.clone());
        self.away.push(Away {
            call,
            keys,
            to,
            resolved: false,
        });
    }

    /// The other app refused a leg we handed over: it is ours again.
    pub(super) async fn take_back(&mut self, mut leg: Leg, reason: String) {
        let call = leg.id.clone();
        self.away.retain(|a| a.call != call);
        leg.reset_for_move();
        leg.record.app_id = self.app_id.clone();
        leg.record.app_version = self.app_version;
        // Its dialog was never rerouted: events for it still reach this session.
        self.calls
            .register(leg.record.clone(), self.mailbox_tx.clone());
        if let Some(media) = leg.media_in_transit.take() {
            self.media.insert_leg(media);
        }
        self.legs.push(leg);
        // The app may act on the leg in `on-hand-over-result`: its mirror must know it first.
        self.sync_phases();
        debug!(leg = %call, %reason, "hand-over refused; the leg is back");
        self.events.push_back(Event::HandOverResult {
            call: call.clone(),
            accepted: false,
            reason: Some(reason),
        });
        if self.master_over()
            && let Some(idx) = self.live_leg(&call)
        {
            let end = ending(HangupBy::Local, HangupReason::Normal, None);
            self.end_leg(idx, end).await;
        }
    }

    /// A session started by a hand-over: the leg joins it and the app hears about it.
    pub(super) async fn start_handed_over(&mut self, handover: HandOver) {
        let HandOver {
            leg,
            app_id,
            version,
            from_app,
            data,
            origin,
        } = handover;
        let mut leg = *leg.0;
        leg.reset_for_move();
        leg.record.app_id = Some(app_id.clone());
        leg.record.app_version = Some(version);
        let call = leg.id.clone();
        let outbound = leg.direction == Direction::Outbound;
        self.master = call.clone();
        self.events.sink.set_master(&call);
        self.app_id = Some(app_id.clone());
        self.app_version = Some(version);
        if let Some(media) = leg.media_in_transit.take() {
            self.media.insert_leg(media);
        }
        self.legs.push(leg);
        self.sync_record(0);
        if self.load_app(&app_id, version, outbound).await.is_err() {
            let mut leg = self.legs.remove(0);
            leg.media_in_transit = self.media.take_leg(&leg.id);
            let reason = "the other app could not start".to_string();
            let _ = origin
                .send(CallMsg::HandBack {
                    leg: MovingLeg(Box::new(leg)),
                    reason,
                })
                .await;
            return;
        }
        let record = &self.legs[0].record;
        let info = pbx_plugin::CallInfo {
            id: call.clone(),
            direction: if outbound {
                pbx_plugin::Direction::Outbound
            } else {
                pbx_plugin::Direction::Inbound
            },
            from: record.from.clone(),
            to: record.to.clone(),
            caller_name: None,
            config: Vec::new(),
            handed_over: Some(pbx_plugin::HandOverInfo { from_app, data }),
        };
        self.sync_phases();
        self.events.push_back(Event::CallReceived(info));
        self.handover_origin = Some((origin, call));
    }

    /// After the first event of a handed-over session: tell the handing session the outcome.
    pub(super) async fn report_hand_over(&mut self) {
        let Some((origin, call)) = self.handover_origin.take() else {
            return;
        };
        let msg = match self.leg_index(&call) {
            Some(i) if !self.legs[i].is_over() => CallMsg::HandOverAccepted { call },
            Some(i) => {
                let leg = &self.legs[i];
                let end = leg.state.ending.unwrap_or(ending(
                    HangupBy::Local,
                    HangupReason::AppError,
                    None,
                ));
                CallMsg::HandOverFailed {
                    call,
                    reason: "the leg ended in the other app".into(),
                    outbound: leg.direction == Direction::Outbound,
                    ended: call_ended(end, leg.is_answered()),
                }
            }
            // Refused: already handed back.
            None => return,
        };
        let _ = origin.send(msg).await;
    }

    /// The app's `refuse-hand-over`: the leg goes back to the session that handed it over.
    pub(super) async fn refuse_hand_over(&mut self, call: String, reason: String) {
        let Some((origin, expected)) = self.handover_origin.take() else {
            return;
        };
        if expected != call {
            self.handover_origin = Some((origin, expected));
            return;
        }
        let Some(idx) = self.live_leg(&call) else {
            self.handover_origin = Some((origin, expected));
            return;
        };
        self.stop_leg_media(idx);
        let mut leg = self.legs.remove(idx);
        leg.reset_for_move();
        // Its digit collection, if any, ends unreported with the leg's stay here.
        leg.media_in_transit = self.media.take_leg(&call);
        debug!(leg = %call, %reason, "refusing the hand-over");
        let _ = origin
            .send(CallMsg::HandBack {
                leg: MovingLeg(Box::new(leg)),
                reason,
            })
            .await;
    }
}
