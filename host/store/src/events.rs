//! Recorded events: every call, conference and app event the platform emits, one row each,
//! read back per call, or as a filtered page for polling.
//!
//! Invariants: ids come from one global `AUTOINCREMENT` sequence, so an event's id is
//! larger than that of every event stored before it (a poller's `after` cursor never
//! misses a committed event that was inserted in an earlier transaction); a batch is
//! inserted in one transaction, in order, so ids follow the order of the batch; stored
//! properties are always a JSON object. Retention (deleting old events) is not done here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, time};

/// Most events one [`Store::events`] page returns.
pub const MAX_EVENTS_PAGE: usize = 1000;

const EVENT_COLUMNS: &str = "id, account_id, type, call_id, conference_id, app_id, at, properties";

macro_rules! event_types {
    ($($variant:ident => $wire:literal, $doc:literal;)*) => {
        /// Every event type the platform records; SCREAMING_SNAKE_CASE on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum EventType {
            $(
                #[doc = $doc]
                #[serde(rename = $wire)]
                $variant,
            )*
        }

        impl EventType {
            /// Every event type, in declaration order (for documentation and validation).
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The wire spelling, e.g. `CALL_RECEIVED`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $wire,)*
                }
            }
        }

        impl FromStr for EventType {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($wire => Ok(EventType::$variant),)*
                    _ => Err(StoreError::invalid(
                        "type",
                        format!("unknown event type `{s}`"),
                    )),
                }
            }
        }
    };
}

event_types! {
    CallReceived => "CALL_RECEIVED", "An inbound call reached an app.";
    CallDialing => "CALL_DIALING", "An outbound leg is being placed.";
    CallRinging => "CALL_RINGING", "A leg is ringing.";
    CallEarlyMedia => "CALL_EARLY_MEDIA", "A leg has early media (183 with SDP).";
    CallEstablished => "CALL_ESTABLISHED", "A leg was answered.";
    CallFinished => "CALL_FINISHED", "A leg ended after being established.";
    CallFailed => "CALL_FAILED", "A leg ended without being established.";
    DtmfReceived => "DTMF_RECEIVED", "A single DTMF digit arrived.";
    DtmfCollected => "DTMF_COLLECTED", "A digit collection finished.";
    SayFinished => "SAY_FINISHED", "A text-to-speech prompt finished or was stopped.";
    PlayFinished => "PLAY_FINISHED", "An audio file finished or was stopped.";
    ConferenceCreated => "CONFERENCE_CREATED", "A conference was created.";
    ConferenceFinished => "CONFERENCE_FINISHED", "A conference ended.";
    ParticipantJoined => "PARTICIPANT_JOINED", "A leg joined a conference.";
    ParticipantLeft => "PARTICIPANT_LEFT", "A leg left a conference.";
    RecordingStarted => "RECORDING_STARTED", "A recording started.";
    RecordingReady => "RECORDING_READY", "A recording's files are written and can be fetched.";
    CallTransferred => "CALL_TRANSFERRED", "A leg was transferred.";
    CallHandedOver => "CALL_HANDED_OVER", "A leg was handed over to another app.";
    TimerFired => "TIMER_FIRED", "An app's timer fired.";
    AppError => "APP_ERROR", "An app trapped, ran out of time or memory, or misbehaved.";
    AppDeployed => "APP_DEPLOYED", "A version of an app was deployed.";
    SipAuthFailed => "SIP_AUTH_FAILED", "A SIP client failed digest authentication (source, username, reason, banned).";
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to record; [`Store::insert_events`] gives it its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The account whose call, conference or app this is about.
    pub account_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The leg it is about, if any.
    pub call_id: Option<String>,
    /// The conference it is about, if any.
    pub conference_id: Option<String>,
    /// The app involved, if any.
    pub app_id: Option<String>,
    /// When it happened.
    #[serde(rename = "timestamp")]
    pub at: DateTime<Utc>,
    /// Type-specific details; a JSON object (anything else is stored wrapped as
    /// `{"value": ...}`, and `null` as `{}`).
    pub properties: serde_json::Value,
}

impl NewEvent {
    /// An event of `kind` for `account_id` now, with no ids and no properties.
    pub fn new(account_id: impl Into<String>, kind: EventType) -> Self {
        NewEvent {
            account_id: account_id.into(),
            kind,
            call_id: None,
            conference_id: None,
            app_id: None,
            at: time::now(),
            properties: serde_json::Value::Object(serde_json::Map::new()),
        }
    }
}

/// A recorded event. Its JSON (what webhooks POST and the websocket sends) is
/// `{"id","type","account_id","call_id","conference_id","app_id","timestamp","properties"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// From one global increasing sequence: a later event has a larger id.
    pub id: i64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The account it belongs to.
    pub account_id: String,
    /// The leg it is about, if any.
    pub call_id: Option<String>,
    /// The conference it is about, if any.
    pub conference_id: Option<String>,
    /// The app involved, if any.
    pub app_id: Option<String>,
    /// When it happened.
    #[serde(rename = "timestamp")]
    pub at: DateTime<Utc>,
    /// Type-specific details, always a JSON object.
    pub properties: serde_json::Value,
}

/// Which events [`Store::events`] returns; the default is the oldest page of everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events with a larger id (the last id of the previous page).
    pub after_id: Option<i64>,
    /// Only these types; empty means every type.
    pub types: Vec<EventType>,
    /// Only this leg's events.
    pub call_id: Option<String>,
    /// Only this app's events.
    pub app_id: Option<String>,
    /// At most this many (0 or more than [`MAX_EVENTS_PAGE`] means [`MAX_EVENTS_PAGE`]).
    pub limit: usize,
}

/// The properties as stored: always an object.
fn normalise_properties(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(_) => value.clone(),
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        other => serde_json::json!({ "value": other }),
    }
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    let kind: String = row.get(2)?;
    let kind = kind
        .parse::<EventType>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, Type::Text, Box::new(e)))?;
    let properties: String = row.get(7)?;
    let properties = serde_json::from_str(&properties)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, Type::Text, Box::new(e)))?;
    Ok(EventRecord {
        id: row.get(0)?,
        account_id: row.get(1)?,
        kind,
        call_id: row.get(3)?,
        conference_id: row.get(4)?,
        app_id: row.get(5)?,
        at: time::get(row, 6)?,
        properties,
    })
}

impl Store {
    /// Records `events` in one transaction, in order, and returns them with their ids.
    pub fn insert_events(&self, events: &[NewEvent]) -> Result<Vec<EventRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut stored = Vec::with_capacity(events.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO events
                    (account_id, type, call_id, conference_id, app_id, at, properties)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for event in events {
                let properties = normalise_properties(&event.properties);
                stmt.execute(params![
                    event.account_id,
                    event.kind.as_str(),
                    event.call_id,
                    event.conference_id,
                    event.app_id,
                    time::to_sql(&event.at),
                    properties.to_string(),
                ])?;
                stored.push(EventRecord {
                    id: tx.last_insert_rowid(),
                    kind: event.kind,
                    account_id: event.account_id.clone(),
                    call_id: event.call_id.clone(),
                    conference_id: event.conference_id.clone(),
                    app_id: event.app_id.clone(),
                    at: event.at,
                    properties,
                });
            }
        }
        tx.commit()?;
        Ok(stored)
    }

    /// Every event of one leg of `account_id`, oldest first.
    pub fn call_events(
        &self,
        account_id: &str,
        call_id: &str,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE account_id = ?1 AND call_id = ?2 ORDER BY id"
        ))?;
        let events = stmt
            .query_map(params![account_id, call_id], event_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(events)
    }

    /// A page of `account_id`'s events matching `filter`, oldest first (poll with
    /// `after_id` = the last id seen).
    pub fn events(
        &self,
        account_id: &str,
        filter: &EventFilter,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let limit = if filter.limit == 0 {
            MAX_EVENTS_PAGE
        } else {
            filter.limit.min(MAX_EVENTS_PAGE)
        };
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE account_id = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![account_id.to_owned().into()];
        if let Some(after) = filter.after_id {
            sql.push_str(" AND id > ?");
            args.push(after.into());
        }
        if let Some(call_id) = &filter.call_id {
            sql.push_str(" AND call_id = ?");
            args.push(call_id.clone().into());
        }
        if let Some(app_id) = &filter.app_id {
            sql.push_str(" AND app_id = ?");
            args.push(app_id.clone().into());
        }
        if !filter.types.is_empty() {
            let marks = vec!["?"; filter.types.len()].join(", ");
            sql.push_str(&format!(" AND type IN ({marks})"));
            args.extend(filter.types.iter().map(|t| t.as_str().to_owned().into()));
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let events = stmt
            .query_map(rusqlite::params_from_iter(args), event_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(account: &str, kind: EventType, call: Option<&str>) -> NewEvent {
        let mut e = NewEvent::new(account, kind);
        e.call_id = call.map(str::to_owned);
        e.app_id = Some("app_0000000000000001".into());
        e.properties = json!({ "n": 1 });
        e
    }

    #[test]
    fn wire_names_round_trip() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>().unwrap(), *kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                json!(kind.as_str()),
                "{kind:?}"
            );
        }
        assert_eq!(EventType::ALL.len(), 23);
        assert_eq!(EventType::CallEarlyMedia.as_str(), "CALL_EARLY_MEDIA");
        assert!("call_received".parse::<EventType>().is_err());
    }

    #[test]
    fn insert_assigns_increasing_ids_and_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut odd = event("acc_a", EventType::DtmfReceived, Some("c1"));
        odd.properties = json!("5");
        let stored = store
            .insert_events(&[
                event("acc_a", EventType::CallReceived, Some("c1")),
                event("acc_b", EventType::CallReceived, Some("c2")),
                odd,
                event("acc_a", EventType::CallFinished, Some("c1")),
            ])
            .unwrap();
        assert_eq!(stored.len(), 4);
        assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(stored[2].properties, json!({ "value": "5" }));

        let c1 = store.call_events("acc_a", "c1").unwrap();
        assert_eq!(
            c1.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [
                EventType::CallReceived,
                EventType::DtmfReceived,
                EventType::CallFinished
            ]
        );
        assert_eq!(c1[0], stored[0]);
        assert!(store.call_events("acc_b", "c1").unwrap().is_empty());

        let json = serde_json::to_value(&c1[0]).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in [
            "id",
            "type",
            "account_id",
            "call_id",
            "conference_id",
            "app_id",
            "timestamp",
            "properties",
        ] {
            assert!(keys.contains(&key), "{key} in {json}");
        }
        assert_eq!(json["type"], "CALL_RECEIVED");
    }

    #[test]
    fn filters_and_pages() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let batch: Vec<NewEvent> = (0..10)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    EventType::CallRinging
                } else {
                    EventType::TimerFired
                };
                event("acc_a", kind, Some(if i < 5 { "c1" } else { "c2" }))
            })
            .collect();
        store.insert_events(&batch).unwrap();
        store.insert_events(&[]).unwrap();

        let all = store.events("acc_a", &EventFilter::default()).unwrap();
        assert_eq!(all.len(), 10);
        assert!(
            store
                .events("acc_b", &EventFilter::default())
                .unwrap()
                .is_empty()
        );

        let page = store
            .events(
                "acc_a",
                &EventFilter {
                    limit: 3,
                    ..EventFilter::default()
                },
            )
            .unwrap();
        assert_eq!(page.len(), 3);
        let next = store
            .events(
                "acc_a",
                &EventFilter {
                    after_id: Some(page[2].id),
                    ..EventFilter::default()
                },
            )
            .unwrap();
        assert_eq!(next.len(), 7);
        assert_eq!(next[0].id, all[3].id);

        let timers_c2 = store
            .events(
                "acc_a",
                &EventFilter {
                    types: vec![EventType::TimerFired],
                    call_id: Some("c2".into()),
                    ..EventFilter::default()
                },
            )
            .unwrap();
        assert_eq!(timers_c2.len(), 3);
        let both = store
            .events(
                "acc_a",
                &EventFilter {
                    types: vec![EventType::TimerFired, EventType::CallRinging],
                    app_id: Some("app_0000000000000001".into()),
                    ..EventFilter::default()
                },
            )
            .unwrap();
        assert_eq!(both.len(), 10);
        let other_app = store
            .events(
                "acc_a",
                &EventFilter {
                    app_id: Some("app_0000000000000002".into()),
                    ..EventFilter::default()
                },
            )
            .unwrap();
        assert!(other_app.is_empty());
    }
}
