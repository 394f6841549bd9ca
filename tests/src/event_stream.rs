//! A client of pbx's event websocket (`GET /v1/events/ws`): connects with the bearer header,
//! reads one JSON event per text message and keeps every event it read, so a test can assert
//! on the whole stream after the call.
//!
//! Invariants: every read is bounded by a timeout; pings are answered by tungstenite itself
//! while reading; a message that is not JSON is kept as a JSON string (never a failure), and
//! the socket is closed when the stream is dropped.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::api::Api;
use crate::error::{HarnessError, Result};

/// An open event websocket and what it has delivered so far.
#[derive(Debug)]
pub struct EventStream {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    url: String,
    received: Vec<Value>,
    closed: bool,
}

impl EventStream {
    /// Opens `GET /v1/events/ws?<query>` on `api`'s server with its token in the
    /// `Authorization: Bearer` header (`query` may be empty, e.g. `types=DTMF_COLLECTED`).
    pub async fn connect(api: &Api, query: &str) -> Result<EventStream> {
        let base = api
            .base()
            .strip_prefix("http://")
            .map(|rest| format!("ws://{rest}"))
            .ok_or_else(|| HarnessError::protocol("event ws", "API base is not http://"))?;
        let url = if query.is_empty() {
            format!("{base}/v1/events/ws")
        } else {
            format!("{base}/v1/events/ws?{query}")
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| HarnessError::protocol("event ws", format!("request {url}: {e}")))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {}", api.token()))
            .map_err(|e| HarnessError::protocol("event ws", format!("token header: {e}")))?;
        request.headers_mut().insert("authorization", bearer);
        let connect = tokio_tungstenite::connect_async(request);
        let (ws, _response) = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| {
                HarnessError::timeout(format!("websocket {url}"), Duration::from_secs(10))
            })?
            .map_err(|e| HarnessError::protocol("event ws", format!("connect {url}: {e}")))?;
        Ok(EventStream {
            ws,
            url,
            received: Vec::new(),
            closed: false,
        })
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` when none came in time or the
    /// server closed the socket.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let message = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => {
                    self.closed = true;
                    return Ok(None);
                }
                Ok(Some(Err(e))) => {
                    return Err(HarnessError::protocol(
                        "event ws",
                        format!("read {}: {e}", self.url),
                    ));
                }
                Ok(Some(Ok(message))) => message,
            };
            let text = match message {
                Message::Text(text) => text.as_str().to_string(),
                Message::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Message::Close(_) => {
                    self.closed = true;
                    return Ok(None);
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            self.received.push(value.clone());
            return Ok(Some(value));
        }
        Ok(None)
    }

    /// Reads events until one satisfies `pred`, at most `timeout`; returns it. The error
    /// lists every event received so far.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await? {
                Some(event) if pred(&event) => return Ok(event),
                Some(_) => {}
                None => {
                    return Err(HarnessError::timeout(
                        format!(
                            "a matching event on {} (closed: {}; received: {})",
                            self.url,
                            self.closed,
                            Value::Array(self.received.clone())
                        ),
                        timeout,
                    ));
                }
            }
        }
    }

    /// Reads whatever arrives for `duration` (to prove that nothing more comes).
    pub async fn drain_for(&mut self, duration: Duration) -> Result<()> {
        let deadline = Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.next(left).await?.is_none() {
                return Ok(());
            }
        }
    }

    /// Every event received so far, in arrival order.
    pub fn received(&self) -> &[Value] {
        &self.received
    }

    /// Whether the server closed the socket.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the socket politely (errors are ignored: the server may be gone).
    pub async fn close(mut self) {
        let _ = self.ws.send(Message::Close(None)).await;
        let _ = self.ws.close(None).await;
    }
}
