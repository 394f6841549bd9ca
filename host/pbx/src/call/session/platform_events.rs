//! The session's queue of app events, which also publishes each one as a platform event
//! (`CALL_RECEIVED`, `DTMF_COLLECTED`, ...) for history, webhooks and the websocket.
//!
//! Invariants: publishing never blocks the session (`EventHub::emit` is a non-blocking
//! send); an event is published when it is queued, not when the app handles it, so a failed
//! app's legs still report how they ended; events the platform has no type for (joining,
//! media of a conference, hand-over results, HTTP responses) are delivered but not published.

use std::collections::VecDeque;

use chrono::Utc;
use pbx_plugin::{CollectEnd, Direction, Event};
use pbx_store::{EventType, NewEvent};
use serde_json::{Value, json};

use crate::events::EventHub;

/// Where published events go and what they are stamped with.
pub(crate) struct EventSink {
    hub: Option<EventHub>,
    /// The session's first leg: events of the whole session (timers, recordings) belong to
    /// its call history.
    master: String,
    /// The account whose app runs the session; set once the call is routed.
    account_id: Option<String>,
    app_id: Option<String>,
}

impl EventSink {
    pub(crate) fn new(hub: Option<EventHub>, master: &str) -> Self {
        EventSink {
            hub,
            master: master.to_owned(),
            account_id: None,
            app_id: None,
        }
    }

    /// The session's first leg changed (a session started by a hand-over adopts the leg).
    pub(crate) fn set_master(&mut self, master: &str) {
        master.clone_into(&mut self.master);
    }

    /// Stamps later events with the app (and its account) that runs the session.
    pub(crate) fn set_app(&mut self, account_id: &str, app_id: &str) {
        self.account_id = Some(account_id.to_owned());
        self.app_id = Some(app_id.to_owned());
    }

    /// Publishes one platform event (`call_id` `None`: the session's); dropped before the
    /// call is routed to an account.
    pub(crate) fn publish(
        &self,
        kind: EventType,
        call_id: Option<&str>,
        conference_id: Option<&str>,
        properties: Value,
    ) {
        let (Some(hub), Some(account_id)) = (&self.hub, &self.account_id) else {
            return;
        };
        hub.emit(NewEvent {
            account_id: account_id.clone(),
            kind,
            call_id: Some(call_id.unwrap_or(&self.master).to_owned()),
            conference_id: conference_id.map(str::to_owned),
            app_id: self.app_id.clone(),
            at: Utc::now(),
            properties,
        });
    }
}

/// The app events waiting for delivery, in order.
pub(crate) struct EventQueue {
    queue: VecDeque<Event>,
    pub(crate) sink: EventSink,
}

impl EventQueue {
    pub(crate) fn new(hub: Option<EventHub>, master: &str) -> Self {
        EventQueue {
            queue: VecDeque::new(),
            sink: EventSink::new(hub, master),
        }
    }

    /// Queues an event for the app and publishes its platform event.
    pub(crate) fn push_back(&mut self, event: Event) {
        if let Some((kind, call, conference, properties)) = platform_event(&event) {
            self.sink
                .publish(kind, call.as_deref(), conference.as_deref(), properties);
        }
        self.queue.push_back(event);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// Drops what the app has not seen (its instance failed); already published.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

type Platform = (EventType, Option<String>, Option<String>, Value);

/// The platform event an app event stands for, if any.
fn platform_event(event: &Event) -> Option<Platform> {
    let on_call =
        |kind, call: &str, properties| Some((kind, Some(call.to_owned()), None, properties));
    match event {
        Event::CallReceived(info) => {
            let kind = if info.handed_over.is_some() {
                EventType::CallHandedOver
            } else if info.direction == Direction::Outbound {
                EventType::CallDialing
            } else {
                EventType::CallReceived
            };
            let mut properties = json!({
                "direction": info.direction.as_str(),
                "from": info.from,
                "to": info.to,
                "caller_name": info.caller_name,
            });
            if let (Some(h), Some(map)) = (&info.handed_over, properties.as_object_mut()) {
                map.insert("from_app".into(), json!(h.from_app));
            }
            on_call(kind, &info.id, properties)
        }
        Event::CallRinging { call } => on_call(EventType::CallRinging, call, json!({})),
        Event::CallEarlyMedia { call } => on_call(EventType::CallEarlyMedia, call, json!({})),
        Event::CallAnswered { call } => on_call(EventType::CallEstablished, call, json!({})),
        Event::Dtmf { call, digit } => {
            on_call(EventType::DtmfReceived, call, json!({ "digit": digit }))
        }
        Event::Collected { call, collected } => on_call(
            EventType::DtmfCollected,
            call,
            json!({
                "digits": collected.digits,
                "reason": match collected.end {
                    CollectEnd::MaxDigits => "max-digits",
                    CollectEnd::Terminator => "terminator",
                    CollectEnd::Timeout => "timeout",
                    CollectEnd::Cancelled => "cancelled",
                },
            }),
        ),
        Event::SayFinished { call, finished } | Event::PlayFinished { call, finished } => {
            let kind = if matches!(event, Event::SayFinished { .. }) {
                EventType::SayFinished
            } else {
                EventType::PlayFinished
            };
            on_call(
                kind,
                call,
                json!({
                    "media_id": finished.id,
                    "played_completely": finished.played_completely,
                    "digit": finished.digit,
                }),
            )
        }
        Event::CallFinished { call, ended } => {
            let kind = if ended.answered {
                EventType::CallFinished
            } else {
                EventType::CallFailed
            };
            on_call(
                kind,
                call,
                json!({
                    "hangup_by": ended.hangup_by.as_str(),
                    "hangup_reason": ended.hangup_reason.as_str(),
                    "sip_status": ended.sip_status,
                    "answered": ended.answered,
                }),
            )
        }
        Event::ParticipantJoined { conference, call } => Some((
            EventType::ParticipantJoined,
            Some(call.clone()),
            Some(conference.clone()),
            json!({}),
        )),
        Event::ParticipantLeft { conference, call } => Some((
            EventType::ParticipantLeft,
            Some(call.clone()),
            Some(conference.clone()),
            json!({}),
        )),
        Event::ConferenceFinished { conference } => Some((
            EventType::ConferenceFinished,
            None,
            Some(conference.clone()),
            json!({}),
        )),
        Event::RecordingReady(info) => Some((
            EventType::RecordingReady,
            None,
            None,
            json!({
                "recording_id": info.id,
                "duration_ms": info.duration_ms,
                "files": info.files,
            }),
        )),
        Event::Timer { id, tag } => Some((
            EventType::TimerFired,
            None,
            None,
            json!({ "timer_id": id, "tag": tag }),
        )),
        _ => None,
    }
}
