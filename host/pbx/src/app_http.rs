//! Outbound HTTP for apps granted the `http` capability: the requests run on their own
//! tokio tasks, never on a session's task, and their outcomes come back as session messages.
//!
//! Invariants: the request was checked against the app's allow-list by `pbx-plugin`, so
//! redirects are never followed (a redirect could leave the allow-list); the body is read in
//! chunks and abandoned as soon as it passes the request's size limit; the whole exchange is
//! bounded by the request's timeout.

use std::sync::OnceLock;

use pbx_plugin::{HttpError, HttpRequest, HttpResponse};

/// The client every app request shares (connection pooling across calls).
fn client() -> Result<&'static reqwest::Client, HttpError> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("pbx/", env!("CARGO_PKG_VERSION")))
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| HttpError::ConnectionFailed("the HTTP client cannot start".into()))
}

/// Runs one app request to its end.
pub(crate) async fn execute(request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let timeout = request.timeout;
    let outcome = tokio::time::timeout(timeout, exchange(request)).await;
    let result = outcome.unwrap_or(Err(HttpError::Timeout));
    let label = match &result {
        Ok(_) => "ok",
        Err(HttpError::Timeout) => "timeout",
        Err(HttpError::TooLarge) => "too_large",
        Err(HttpError::ConnectionFailed(_)) => "connection_failed",
        Err(HttpError::InvalidResponse(_)) => "invalid_response",
    };
    metrics::counter!(crate::metrics::APP_HTTP_REQUESTS, "outcome" => label).increment(1);
    result
}

async fn exchange(request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
        .map_err(|e| HttpError::InvalidResponse(format!("bad method: {e}")))?;
    let mut builder = client()?.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = builder.send().await.map_err(|e| {
        if e.is_timeout() {
            HttpError::Timeout
        } else if e.is_builder() || e.is_request() && !e.is_connect() {
            HttpError::InvalidResponse(e.to_string())
        } else {
            HttpError::ConnectionFailed(e.to_string())
        }
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    if response
        .content_length()
        .is_some_and(|len| len > request.max_response_bytes as u64)
    {
        return Err(HttpError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpError::InvalidResponse(e.to_string()))?
    {
        if body.len() + chunk.len() > request.max_response_bytes {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}
