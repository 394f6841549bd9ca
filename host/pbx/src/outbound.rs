//! HTTP clients for targets that users choose (webhook URLs, apps' HTTP requests), held to
//! the outbound address policy ([`pbx_api::net_policy`]).
//!
//! Invariants: every such client is built by [`client`] and resolves names through
//! [`PolicyResolver`], which hands the connector only the addresses the policy permits, so
//! the address checked is the address connected to (no window for DNS rebinding); literal
//! addresses never reach a resolver, so [`check_url`] is called before every request;
//! redirects are never followed (a redirect would need its own check) and no proxy is used
//! (a proxy would resolve the target itself, out of the policy's sight). A client that
//! cannot be built is no client: nothing falls back to one outside the policy, and its
//! user's requests fail with [`NO_CLIENT`] without being sent. A failure is described only
//! as [`REFUSED_BY_POLICY`], [`UNREACHABLE`] or [`NO_CLIENT`], never with an OS error
//! text, so a delivery log or an app cannot probe which internal ports are open.

use std::sync::Arc;
use std::time::Duration;

use pbx_api::net_policy::{NetPolicy, PolicyError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What a request the policy refused is logged as.
pub(crate) const REFUSED_BY_POLICY: &str = "refused by policy";
/// What any other failure to get an answer is logged as (refused, reset, timed out, no
/// such name, TLS failure).
pub(crate) const UNREACHABLE: &str = "unreachable";
/// What a request is logged as when its client could not be built ([`client`]): it was
/// never sent.
pub(crate) const NO_CLIENT: &str = "pbx cannot send HTTP requests now (see its log)";

/// Resolves names with the system resolver and keeps the permitted addresses only.
#[derive(Debug, Clone)]
pub(crate) struct PolicyResolver {
    policy: Arc<NetPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in.
            let addrs = policy.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A client with the policy's resolver, no redirects and no proxy, sending `user_agent`,
/// each request (connection included) bounded by `timeout` when one is given. `None`,
/// logged as an error, when it cannot be built (its TLS backend fails to start, say): the
/// caller then fails each request with [`NO_CLIENT`], as no other client would keep to the
/// policy. The only settings are these two, so no caller can add a proxy, a redirect
/// policy or a DNS override that slips past the policy.
pub(crate) fn client(
    policy: Arc<NetPolicy>,
    user_agent: &'static str,
    timeout: Option<Duration>,
) -> Option<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .dns_resolver(PolicyResolver { policy })
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(user_agent);
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout).connect_timeout(timeout);
    }
    match builder.build() {
        Ok(client) => Some(client),
        Err(e) => {
            tracing::error!(
                error = %e,
                user_agent,
                "cannot build an outbound HTTP client; its requests fail until pbx restarts"
            );
            None
        }
    }
}

/// Checks a URL as written before a request: a literal address must be permitted.
pub(crate) fn check_url(policy: &NetPolicy, url: &str) -> Result<(), PolicyError> {
    policy.check_url(url).map(|_| ())
}

/// Whether a failed request failed because the policy refused it (its resolver said no).
pub(crate) fn refused_by_policy(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<PolicyError>()
            .is_some_and(PolicyError::is_refusal)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The one word a failed request is described with.
pub(crate) fn describe(err: &reqwest::Error) -> &'static str {
    if refused_by_policy(err) {
        REFUSED_BY_POLICY
    } else {
        UNREACHABLE
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]
mod tests {
    use super::*;

    /// A local listener the tests must never reach.
    async fn listener() -> (tokio::net::TcpListener, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    #[tokio::test]
    async fn a_name_for_a_denied_address_is_refused_before_connecting() {
        let (listener, port) = listener().await;
        let client = client(Arc::new(NetPolicy::default()), "test", None).unwrap();
        let err = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(describe(&err), REFUSED_BY_POLICY, "{err:?}");
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "the listener was connected to");
    }

    #[tokio::test]
    async fn connection_failures_are_only_unreachable() {
        let (listener, port) = listener().await;
        drop(listener);
        let policy = Arc::new(NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]));
        let client = client(policy.clone(), "test", None).unwrap();
        for url in [
            format!("http://localhost:{port}/"),
            format!("http://127.0.0.1:{port}/"),
        ] {
            check_url(&policy, &url).unwrap();
            let err = client.get(&url).send().await.unwrap_err();
            assert_eq!(describe(&err), UNREACHABLE, "{err:?}");
        }
        assert!(check_url(&NetPolicy::default(), &format!("http://127.0.0.1:{port}/")).is_err());
    }
}
