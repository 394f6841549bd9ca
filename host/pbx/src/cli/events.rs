//! `pbx events [--follow]` and the stream behind `pbx calls --follow`: the last recorded
//! events from `GET /v1/events`, or live ones from the websocket `GET /v1/events/ws`, one line each.
//!
//! Invariants: the first connection failing is an error (exit 1) naming the URL; once
//! connected, a lost stream is reconnected with exponential backoff (250 ms doubling to
//! 10 s) until Ctrl-C, which exits 0; an answer refusing the key (4xx) is never retried;
//! `STREAM_LAGGED` notices go to stderr; a closed stdout (`| head`) ends the command quietly.
//! Filters go to the server and are applied again here, so a server that ignores one still
//! shows only what was asked for.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Url;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::app::items;
use super::client::{ACCOUNT_HEADER, Api, api_error};
use super::error::{chain, root_cause};
use super::resources::{opt_str, str_of};
use super::{CliError, EventsArgs};

/// Events asked for per `GET /v1/events` page (the API's largest page).
const HISTORY_PAGE: usize = 1000;
/// The first wait before reconnecting.
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Which events to show.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Only these types (any when empty).
    pub(crate) types: Vec<String>,
    /// Only events of this call.
    pub(crate) call_id: Option<String>,
    /// Only events of this app.
    pub(crate) app_id: Option<String>,
    /// Only types starting with this (client side only; `pbx calls --follow` uses `CALL_`).
    pub(crate) type_prefix: Option<String>,
}

impl Filter {
    /// The query the API understands: `types=A,B&call_id=&app_id=`.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if !self.types.is_empty() {
            query.push(("types", self.types.join(",")));
        }
        if let Some(call) = &self.call_id {
            query.push(("call_id", call.clone()));
        }
        if let Some(app) = &self.app_id {
            query.push(("app_id", app.clone()));
        }
        query
    }

    /// Whether `event` passes every filter.
    fn matches(&self, event: &Value) -> bool {
        let kind = str_of(event, "type");
        (self.types.is_empty() || self.types.iter().any(|t| t.eq_ignore_ascii_case(&kind)))
            && self
                .type_prefix
                .as_ref()
                .is_none_or(|prefix| kind.starts_with(prefix.as_str()))
            && self
                .call_id
                .as_ref()
                .is_none_or(|id| str_of(event, "call_id") == *id)
            && self
                .app_id
                .as_ref()
                .is_none_or(|id| str_of(event, "app_id") == *id)
    }
}

/// Runs `pbx events`.
pub(crate) async fn run(args: EventsArgs) -> Result<(), CliError> {
    let api = Api::connect(&args.conn)?;
    let filter = Filter {
        types: args.types.iter().map(|t| t.to_ascii_uppercase()).collect(),
        call_id: args.call_id,
        app_id: args.app_id,
        type_prefix: None,
    };
    if args.follow {
        return follow(&api, &filter, args.json).await;
    }
    let events = last_events(&api, &filter, args.limit as usize).await?;
    if args.json {
        println!("{:#}", serde_json::json!({ "events": events }));
        return Ok(());
    }
    if events.is_empty() {
        println!("no events");
    }
    let mut out = std::io::stdout().lock();
    for event in &events {
        if writeln!(out, "{}", event_line(event)).is_err() {
            break;
        }
    }
    Ok(())
}

/// The last `limit` recorded events matching `filter`, oldest first. `GET /v1/events` pages
/// forward from the oldest (`after` = the previous page's `last_id`), so this reads every
/// page and keeps the tail.
async fn last_events(api: &Api, filter: &Filter, limit: usize) -> Result<Vec<Value>, CliError> {
    let page_size = HISTORY_PAGE.to_string();
    let filter_query = filter.query();
    let mut kept: VecDeque<Value> = VecDeque::with_capacity(limit.min(HISTORY_PAGE));
    let mut after: Option<String> = None;
    loop {
        let mut query: Vec<(&str, &str)> = vec![("limit", &page_size)];
        query.extend(filter_query.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(after) = &after {
            query.push(("after", after));
        }
        let answer = api.get(api.url(&["v1", "events"], &query)).await?;
        let page = items(&answer, "events");
        for event in page.iter().filter(|e| filter.matches(e)) {
            kept.push_back(event.clone());
            if kept.len() > limit {
                kept.pop_front();
            }
        }
        let last =
            opt_str(&answer, "last_id").or_else(|| page.last().and_then(|e| opt_str(e, "id")));
        if page.len() < HISTORY_PAGE || last.is_none() || last == after {
            break;
        }
        after = last;
    }
    Ok(kept.into())
}

/// One event as a line: time, type, ids, then the properties as `key=value`.
pub(crate) fn event_line(event: &Value) -> String {
    let time = match event.get("timestamp") {
        Some(Value::String(text)) => chrono::DateTime::parse_from_rfc3339(text).map_or_else(
            |_| text.clone(),
            |t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S%.3f")
                    .to_string()
            },
        ),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut line = format!("{time}  {:<20}", str_of(event, "type"));
    for (label, key) in [
        ("call", "call_id"),
        ("conference", "conference_id"),
        ("app", "app_id"),
    ] {
        let value = str_of(event, key);
        if !value.is_empty() {
            line.push_str(&format!(" {label}={value}"));
        }
    }
    if let Some(Value::Object(properties)) = event.get("properties") {
        let mut properties: Vec<(&String, &Value)> = properties.iter().collect();
        properties.sort_by_key(|(key, _)| *key);
        for (key, value) in properties {
            let text = match value {
                Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => s.clone(),
                other => other.to_string(),
            };
            line.push_str(&format!(" {key}={text}"));
        }
    }
    line.trim_end().to_string()
}

/// Follows the event websocket until Ctrl-C (exit 0) or an error that retrying cannot fix.
pub(crate) async fn follow(api: &Api, filter: &Filter, json: bool) -> Result<(), CliError> {
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling on this platform: run until the stream ends.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = follow_loop(api, filter, json) => result,
        () = interrupted => Ok(()),
    }
}

/// Why connecting failed: retrying may help, or it will not.
enum ConnectFailure {
    Retry(CliError),
    Fatal(CliError),
}

/// How a connected stream ended.
enum StreamEnd {
    /// The connection was lost or closed by the server.
    Lost(String),
    /// Our stdout was closed: stop.
    OutputClosed,
}

/// The websocket URL for `filter`: the API's base with `ws`/`wss` instead of `http`/`https`.
pub(crate) fn ws_url(api: &Api, filter: &Filter) -> Result<Url, CliError> {
    let query = filter.query();
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut url = api.url(&["v1", "events", "ws"], &pairs);
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| CliError::Config(format!("cannot make a websocket URL from {url}")))?;
    Ok(url)
}

async fn follow_loop(api: &Api, filter: &Filter, json: bool) -> Result<(), CliError> {
    let url = ws_url(api, filter)?;
    let mut connected_once = false;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        match connect(api, &url).await {
            Ok(stream) => {
                if connected_once {
                    eprintln!("pbx: reconnected to {url}");
                }
                connected_once = true;
                backoff = INITIAL_BACKOFF;
                match read_stream(stream, filter, json).await {
                    StreamEnd::OutputClosed => return Ok(()),
                    StreamEnd::Lost(reason) => {
                        eprintln!("pbx: event stream {url} ended ({reason}); reconnecting");
                    }
                }
            }
            Err(ConnectFailure::Fatal(err)) => return Err(err),
            Err(ConnectFailure::Retry(err)) => {
                if !connected_once {
                    return Err(err);
                }
                eprintln!("pbx: {err}; retrying in {backoff:?}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens the websocket with the bearer key.
async fn connect(
    api: &Api,
    url: &Url,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, ConnectFailure> {
    let fatal = |reason: String| {
        ConnectFailure::Fatal(CliError::Connect {
            url: url.to_string(),
            reason,
        })
    };
    if url.scheme() == "wss" {
        return Err(fatal(
            "this pbx CLI speaks plain ws:// only; reach the API over http:// (a tunnel or \
             loopback)"
                .into(),
        ));
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| fatal(chain(&err)))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", api.key())).map_err(|_| {
        ConnectFailure::Fatal(CliError::Config(
            "the API key is not valid in an HTTP header".into(),
        ))
    })?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    if let Some(account) = api.account() {
        let value = HeaderValue::from_str(account).map_err(|_| {
            ConnectFailure::Fatal(CliError::Config(
                "the account id is not valid in an HTTP header".into(),
            ))
        })?;
        request.headers_mut().insert(ACCOUNT_HEADER, value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _response)) => Ok(stream),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            let err = api_error(status, body);
            if response.status().is_client_error() {
                Err(ConnectFailure::Fatal(err))
            } else {
                Err(ConnectFailure::Retry(err))
            }
        }
        Err(err) => Err(ConnectFailure::Retry(CliError::Connect {
            url: url.to_string(),
            reason: root_cause(&err),
        })),
    }
}

/// Prints events from a connected stream until it ends.
async fn read_stream(
    mut stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    filter: &Filter,
    json: bool,
) -> StreamEnd {
    while let Some(message) = stream.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                let reason = frame.map_or_else(
                    || "closed by the server".to_string(),
                    |f| format!("closed by the server: {} {}", f.code, f.reason),
                );
                return StreamEnd::Lost(reason);
            }
            Ok(_) => continue,
            Err(err) => return StreamEnd::Lost(chain(&err)),
        };
        let event: Value = match serde_json::from_str(text.as_str()) {
            Ok(event) => event,
            Err(err) => {
                eprintln!("pbx: skipping a message that is not JSON: {err}");
                continue;
            }
        };
        if str_of(&event, "type") == "STREAM_LAGGED" {
            let missed = str_of(&event, "missed");
            eprintln!("pbx: the stream fell behind; {missed} events were missed");
            continue;
        }
        if !filter.matches(&event) {
            continue;
        }
        let line = if json {
            event.to_string()
        } else {
            event_line(&event)
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return StreamEnd::OutputClosed;
        }
    }
    StreamEnd::Lost("connection closed".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cli::config::Connection;

    #[test]
    fn filters_match_on_the_client_too() {
        let event = json!({"type": "CALL_RECEIVED", "call_id": "c1", "app_id": "a1"});
        assert!(Filter::default().matches(&event));
        let calls = Filter {
            type_prefix: Some("CALL_".into()),
            ..Filter::default()
        };
        assert!(calls.matches(&event));
        assert!(!calls.matches(&json!({"type": "DTMF_COLLECTED"})));
        let typed = Filter {
            types: vec!["CALL_FINISHED".into()],
            ..Filter::default()
        };
        assert!(!typed.matches(&event));
        let by_call = Filter {
            call_id: Some("c2".into()),
            ..Filter::default()
        };
        assert!(!by_call.matches(&event));
    }

    #[test]
    fn lines_show_ids_and_properties() {
        let line = event_line(&json!({
            "type": "DTMF_COLLECTED",
            "call_id": "c1",
            "app_id": "a1",
            "conference_id": null,
            "timestamp": "not a time",
            "properties": {"digits": "12#", "note": "two words", "n": 2}
        }));
        assert_eq!(
            line,
            "not a time  DTMF_COLLECTED       call=c1 app=a1 digits=12# n=2 note=\"two words\""
        );
    }

    #[test]
    fn websocket_url_carries_the_filters() {
        let api = Api::new(&Connection {
            url: "http://127.0.0.1:8080".into(),
            key: Some("k".into()),
            account: None,
            file: None,
        })
        .unwrap();
        let filter = Filter {
            types: vec!["CALL_RECEIVED".into(), "CALL_FINISHED".into()],
            call_id: Some("c1".into()),
            ..Filter::default()
        };
        assert_eq!(
            ws_url(&api, &filter).unwrap().as_str(),
            "ws://127.0.0.1:8080/v1/events/ws?types=CALL_RECEIVED%2CCALL_FINISHED&call_id=c1"
        );
    }
}
