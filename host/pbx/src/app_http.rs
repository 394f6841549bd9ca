//! Outbound HTTP for apps granted the `http` capability: the requests run on their own
//! tokio tasks, never on a session's task, and their outcomes come back as session messages.
//!
//! Invariants: the request was checked against the app's allow-list by `pbx-plugin`, so
//! redirects are never followed (a redirect could leave the allow-list); the body is read in
//! chunks and abandoned as soon as it passes the request's size limit; the whole exchange is
//! bounded by the request's timeout. Every request is also held to the outbound address
//! policy (`crate::outbound`): an allow-listed name that resolves to a loopback, private,
//! link-local or reserved address the admin has not allowed is refused, and the app learns
//! only "refused by policy" or "unreachable", never why a connection failed; without the
//! policy's client (it could not be built) no request is sent at all. The policy
//! is the server's, set once at startup ([`set_net_policy`]) before any call runs; until
//! then the default policy (every private address denied) applies.

use std::sync::{Arc, OnceLock};

use pbx_api::net_policy::NetPolicy;
use pbx_plugin::{HttpError, HttpRequest, HttpResponse};

use crate::outbound::{REFUSED_BY_POLICY, UNREACHABLE};

/// The server's outbound address policy, once set.
static POLICY: OnceLock<Arc<NetPolicy>> = OnceLock::new();

/// Sets the policy app requests are held to; only the first call counts. Called by the
/// server before it takes calls.
pub fn set_net_policy(policy: Arc<NetPolicy>) {
    let _ = POLICY.set(policy);
}

fn policy() -> &'static Arc<NetPolicy> {
    POLICY.get_or_init(Arc::default)
}

/// The client every app request shares (connection pooling across calls): the policy's
/// resolver, no redirects, no proxy. When it cannot be built (logged once), every request
/// fails unsent: there is no fallback client.
fn client() -> Result<&'static reqwest::Client, HttpError> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            crate::outbound::client(
                policy().clone(),
                concat!("pbx/", env!("CARGO_PKG_VERSION")),
                None,
            )
        })
        .as_ref()
        .ok_or_else(|| HttpError::ConnectionFailed(crate::outbound::NO_CLIENT.into()))
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
    // A literal address never reaches the client's resolver: check it here.
    if crate::outbound::check_url(policy(), &request.url).is_err() {
        return Err(HttpError::ConnectionFailed(REFUSED_BY_POLICY.into()));
    }
    let mut builder = client()?.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = builder.send().await.map_err(|e| {
        // The cause stays in the server's debug log; the app gets a generic error.
        tracing::debug!(error = ?e, "app HTTP request got no answer");
        if crate::outbound::refused_by_policy(&e) {
            HttpError::ConnectionFailed(REFUSED_BY_POLICY.into())
        } else if e.is_timeout() {
            HttpError::Timeout
        } else if e.is_builder() {
            HttpError::InvalidResponse("the request cannot be sent".into())
        } else {
            HttpError::ConnectionFailed(UNREACHABLE.into())
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
        .map_err(|_| HttpError::InvalidResponse("the response body broke off".into()))?
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
