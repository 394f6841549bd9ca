//! Recorded events over HTTP: a call's history (`GET /v1/calls/{id}/events`), a polling
//! feed (`GET /v1/events`) and the live websocket stream (`GET /v1/events/ws`).
//!
//! Invariants: everything is the caller's account's only (the websocket drops every other
//! account's event before filtering); the websocket is live only, from the moment the
//! request is accepted (it subscribes before upgrading), sends each matching event as one
//! JSON text message, tells a lagging client how many it missed with
//! `{"type":"STREAM_LAGGED","missed":n}` and goes on, pings every 20 s, and closes with
//! 1001 when the server's stream ends. Browsers cannot set headers on a websocket, so that
//! route also takes the bearer token as `?token=` (and the account as `?account=`).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pbx_store::{EventFilter, EventRecord, EventType, MAX_EVENTS_PAGE};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::extract::{ACCOUNT_HEADER, ApiPath, Caller, QueryMap, blocking};
use crate::{ApiError, ApiState};

/// How often the websocket pings an idle client.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Default page size of `GET /v1/events`.
const DEFAULT_PAGE: usize = 100;

/// A call's events
///
/// `GET /v1/calls/{id}/events` → `{"events": [...]}`, oldest first; 404 when the call is
/// neither live nor in the history of the caller's account.
#[utoipa::path(
    get,
    path = "/v1/calls/{id}/events",
    operation_id = "list_call_events",
    tag = "events",
    params(
        ("id" = String, Path, description = "The call's id"),
    ),
    responses(
        (status = 200, description = "Every event of the call, oldest first", body = crate::openapi::schemas::EventList),
        (status = 404, description = "`not_found`: no such call", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn call_events(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(call_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let live = state
        .backend
        .live_call(&call_id)
        .is_some_and(|c| c.account_id == caller.account_id);
    blocking(move || {
        let account = caller.account_id;
        if !live && state.store.call(&account, &call_id)?.is_none() {
            return Err(ApiError::not_found(format!("call {call_id} not found")));
        }
        let events = state.store.call_events(&account, &call_id)?;
        Ok(Json(json!({ "events": events })))
    })
    .await
}

/// Poll the account's events
///
/// `GET /v1/events?after=ID&types=A,B&call_id=&app_id=&limit=N` → `{"events": [...],
/// "last_id": ID|null}`, oldest first; poll again with `after` = `last_id` (or the same
/// `after` when it is null).
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "list_events",
    tag = "events",
    params(
        ("after" = Option<i64>, Query, description = "Only events after this id (the previous page's `last_id`)"),
        ("types" = Option<String>, Query, description = "Comma-separated event types, e.g. `CALL_RECEIVED,CALL_FINISHED` (default: all)"),
        ("call_id" = Option<String>, Query, description = "Only this call's events"),
        ("app_id" = Option<String>, Query, description = "Only this app's events"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page, oldest first", body = crate::openapi::schemas::EventPage),
        (status = 400, description = "`invalid_request`: a field is missing or malformed", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    QueryMap(query): QueryMap,
) -> Result<Json<Value>, ApiError> {
    let after_id = match query.get("after") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::invalid_field("after", "`after` must be an event id (an integer)")
                })?,
        ),
    };
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_EVENTS_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "limit",
                    format!("`limit` must be an integer from 1 to {MAX_EVENTS_PAGE}"),
                )
            })?,
    };
    let filter = EventFilter {
        after_id,
        types: parse_types(&query)?,
        call_id: query.get("call_id").cloned(),
        app_id: query.get("app_id").cloned(),
        limit,
    };
    let events = blocking(move || Ok(state.store.events(&caller.account_id, &filter)?)).await?;
    let last_id = events.last().map(|e| e.id);
    Ok(Json(json!({ "events": events, "last_id": last_id })))
}

/// The `types=A,B` query parameter; an unknown type is 400 naming it.
fn parse_types(query: &HashMap<String, String>) -> Result<Vec<EventType>, ApiError> {
    let Some(text) = query.get("types") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<EventType>()
                .map_err(|_| ApiError::invalid_field("types", format!("unknown event type `{t}`")))
        })
        .collect()
}

/// What one websocket wants besides its account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LiveFilter {
    types: Vec<EventType>,
    call_id: Option<String>,
    app_id: Option<String>,
}

impl LiveFilter {
    fn matches(&self, event: &EventRecord) -> bool {
        (self.types.is_empty() || self.types.contains(&event.kind))
            && self
                .call_id
                .as_ref()
                .is_none_or(|id| event.call_id.as_ref() == Some(id))
            && self
                .app_id
                .as_ref()
                .is_none_or(|id| event.app_id.as_ref() == Some(id))
    }
}

/// The websocket route with its own authentication: `?token=` and `?account=` become the
/// headers [`crate::extract::authenticate`] reads when the request has none.
pub(crate) fn ws_routes(state: ApiState) -> Router<ApiState> {
    Router::new()
        .route("/v1/events/ws", get(websocket))
        .route_layer(middleware::from_fn_with_state(
            state,
            crate::extract::authenticate,
        ))
        .route_layer(middleware::from_fn(credentials_from_query))
}

/// Middleware: copies `?token=` into `Authorization: Bearer` and `?account=` into
/// `Pbx-Account` when those headers are missing.
async fn credentials_from_query(mut req: Request, next: Next) -> Response {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .and_then(|q| query_pairs(q).ok())
        .unwrap_or_default();
    if !req.headers().contains_key(header::AUTHORIZATION)
        && let Some(token) = query.get("token")
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        req.headers_mut().insert(header::AUTHORIZATION, value);
    }
    if !req.headers().contains_key(ACCOUNT_HEADER)
        && let Some(account) = query.get("account")
        && let Ok(value) = HeaderValue::from_str(account)
    {
        req.headers_mut().insert(ACCOUNT_HEADER, value);
    }
    next.run(req).await
}

/// Parses a query string into name → value (the last repeat wins).
fn query_pairs(query: &str) -> Result<HashMap<String, String>, ()> {
    let uri: axum::http::Uri = format!("/?{query}").parse().map_err(|_| ())?;
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| ())
}

/// Stream events live (websocket)
///
/// `GET /v1/events/ws?types=A,B&call_id=&app_id=`: upgrades to a websocket streaming the
/// caller's account's events live; 503 when the server has no event stream.
#[utoipa::path(
    get,
    path = "/v1/events/ws",
    operation_id = "event_stream",
    tag = "events",
    params(
        ("types" = Option<String>, Query, description = "Comma-separated event types, e.g. `CALL_RECEIVED,CALL_FINISHED` (default: all)"),
        ("call_id" = Option<String>, Query, description = "Only this call's events"),
        ("app_id" = Option<String>, Query, description = "Only this app's events"),
        ("token" = Option<String>, Query, description = "The bearer token, for clients that cannot set headers (browsers)"),
        ("account" = Option<String>, Query, description = "The `Pbx-Account`, for clients that cannot set headers"),
    ),
    responses(
        (status = 101, description = "Switching to the websocket: each event arrives as one JSON text message (an `Event`); `{\"type\":\"STREAM_LAGGED\",\"missed\":n}` when the client fell behind"),
        (status = 400, description = "`invalid_request`: an unknown event type, or not a websocket upgrade", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "`unavailable`: the server has no live event stream", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
async fn websocket(
    State(state): State<ApiState>,
    caller: Caller,
    QueryMap(query): QueryMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let filter = LiveFilter {
        types: parse_types(&query)?,
        call_id: query.get("call_id").cloned(),
        app_id: query.get("app_id").cloned(),
    };
    let Some(rx) = state.backend.subscribe_events() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server has no live event stream",
        ));
    };
    Ok(upgrade
        .on_upgrade(move |socket| stream(socket, rx, caller.account_id, filter))
        .into_response())
}

/// Sends matching events until the client leaves or the server's stream ends.
async fn stream(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<EventRecord>,
    account_id: String,
    filter: LiveFilter,
) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = rx.recv() => {
                let text = match received {
                    Ok(event) => {
                        if event.account_id != account_id || !filter.matches(&event) {
                            continue;
                        }
                        match serde_json::to_string(&event) {
                            Ok(text) => text,
                            Err(e) => {
                                tracing::error!(error = %e, "cannot serialise an event");
                                continue;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        json!({ "type": "STREAM_LAGGED", "missed": missed }).to_string()
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        let _ = socket
                            .send(Message::Close(Some(CloseFrame {
                                code: 1001,
                                reason: "the server's event stream ended".into(),
                            })))
                            .await;
                        return;
                    }
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // A close is answered by the websocket layer on the next read, which then
                // reports the end.
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn record(kind: EventType, call: Option<&str>, app: Option<&str>) -> EventRecord {
        EventRecord {
            id: 1,
            kind,
            account_id: "acc".into(),
            call_id: call.map(str::to_owned),
            conference_id: None,
            app_id: app.map(str::to_owned),
            at: Utc::now(),
            properties: json!({}),
        }
    }

    #[test]
    fn live_filters() {
        let any = LiveFilter::default();
        let e = record(EventType::CallReceived, Some("c1"), Some("a1"));
        assert!(any.matches(&e));
        let f = LiveFilter {
            types: vec![EventType::CallFinished, EventType::CallReceived],
            call_id: Some("c1".into()),
            app_id: Some("a1".into()),
        };
        assert!(f.matches(&e));
        assert!(!f.matches(&record(EventType::AppError, Some("c1"), Some("a1"))));
        assert!(!f.matches(&record(EventType::CallReceived, Some("c2"), Some("a1"))));
        assert!(!f.matches(&record(EventType::CallReceived, None, Some("a1"))));
    }

    #[test]
    fn type_lists() {
        let q = |v: &str| HashMap::from([("types".to_owned(), v.to_owned())]);
        assert_eq!(
            parse_types(&q("CALL_RECEIVED, APP_ERROR,")).unwrap(),
            [EventType::CallReceived, EventType::AppError]
        );
        assert!(parse_types(&q("NOPE")).is_err());
        assert!(parse_types(&HashMap::new()).unwrap().is_empty());
    }

    #[test]
    fn query_pairs_decode() {
        let q = query_pairs("token=a%20b&account=acc_1").unwrap();
        assert_eq!(q["token"], "a b");
        assert_eq!(q["account"], "acc_1");
    }
}
