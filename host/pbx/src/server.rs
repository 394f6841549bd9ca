//! Wires the server together: storage, sockets, the app runtime, the SIP shell and the admin
//! API, then runs until SIGINT or SIGTERM.
//!
//! Everything that can fail at start (data directory, ports, runtime) fails before the first
//! packet is accepted, with a message that names the setting to change.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pbx_media::tts::Tts;

use crate::espeak::EspeakNg;
use pbx_plugin::{Runtime, RuntimeConfig};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::apps::AppCache;
use crate::backend::ServerBackend;
use crate::call::{CallServices, Calls};
use crate::config::Config;
use crate::events::{EventHub, WebhookConfig};
use crate::examples;
use crate::history::HistoryWriter;
use crate::media_cache::MediaCache;
use crate::registrar::Registrar;
use crate::sip_shell::{self, SipSockets};

/// How long live calls get to end when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// The digest realm SIP users register in.
const REALM: &str = "pbx";

/// Runs the server until a stop signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    if !crate::metrics::init() {
        warn!("another metrics recorder is installed: /metrics will be unavailable");
    }
    let store = Arc::new(
        pbx_store::Store::open(&config.data)
            .with_context(|| format!("data directory {} is unusable", config.data.display()))?,
    );
    let admin_token = admin_token(&config)?;
    let interrupted = store
        .close_interrupted_calls(chrono::Utc::now())
        .context("cannot read the call history")?;
    if interrupted > 0 {
        warn!(
            interrupted,
            "calls left open by an earlier run were closed as failed"
        );
    }

    let media_ip = advertised_ip(config.sip, config.public_ip)?;
    let sip_sockets = SipSockets::bind(config.sip)
        .await
        .context("is another SIP server running? choose another port with --sip")?;
    let http = TcpListener::bind(config.http).await.with_context(|| {
        format!(
            "cannot bind the admin API on {}: is the port taken? choose another with --http",
            config.http
        )
    })?;
    let sip_addr = sip_sockets.local_addr();
    let http_addr = http
        .local_addr()
        .context("admin API socket has no address")?;

    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            max_instances: config.max_app_instances,
            ..RuntimeConfig::default()
        })
        .context("cannot start the app runtime")?,
    );
    let apps = Arc::new(AppCache::new(runtime.clone(), store.clone()));
    let tts = Arc::new(Tts::new(Arc::new(EspeakNg::new())));
    if let Err(err) = tts.speak("ok", None, None, 8000) {
        warn!(%err, "text-to-speech is unavailable: `say` will fail until espeak-ng works");
    }
    let media = Arc::new(MediaCache::new(tts, store.clone()));
    let registrar = Arc::new(Registrar::new(
        REALM.to_string(),
        config.sip_digest.clone(),
        store.clone(),
        config.sip_guard,
    ));
    let sip_host = SocketAddr::new(media_ip, sip_addr.port()).to_string();
    let (history, history_task) = HistoryWriter::spawn(store.clone());
    let calls = Calls::new(CallServices {
        store: store.clone(),
        apps: apps.clone(),
        media,
        registrar,
        history: history.clone(),
        media_ip,
        sip_host,
        limits: config.call_limits,
        rtp_ports: config.rtp_ports,
    });

    let endpoint = pbx_sip::Endpoint::new(pbx_sip::EndpointConfig {
        udp_addr: Some(SocketAddr::new(media_ip, sip_addr.port())),
        tcp_addr: Some(SocketAddr::new(media_ip, sip_addr.port())),
        user_agent: format!("pbx/{}", env!("CARGO_PKG_VERSION")),
        timers: pbx_sip::Timers::default(),
        seed: rand::random(),
        max_calls: config.sip_max_calls,
        max_transactions: pbx_sip::endpoint::MAX_TRANSACTIONS,
    });
    // Webhooks, apps' HTTP requests and the API's checks of their targets share one policy.
    let net_policy = Arc::new(config.net_policy.clone());
    crate::app_http::set_net_policy(net_policy.clone());
    let (events, events_task) = EventHub::spawn(
        store.clone(),
        WebhookConfig {
            base_delay: config.webhook_retry,
            net_policy: net_policy.clone(),
            ..WebhookConfig::default()
        },
    );
    calls.set_events(events.clone());
    let sip = sip_shell::spawn(
        sip_sockets,
        endpoint,
        calls.clone(),
        sip_tcp_limits(&config),
    );
    calls.set_sip(sip);

    let installed = match &config.example_apps {
        Some(dir) => examples::install(&store, &runtime, dir)
            .with_context(|| format!("cannot install the example apps from {}", dir.display()))?,
        None => Vec::new(),
    };

    let backend = Arc::new(
        ServerBackend::new(calls.clone(), runtime, apps, events.clone())
            .with_net_policy(net_policy),
    );
    let router = pbx_api::router(pbx_api::ApiState {
        store: store.clone(),
        backend,
        admin_token: admin_token.clone(),
    });

    print_banner(sip_addr, http_addr, &admin_token, &installed);
    info!(%sip_addr, %http_addr, "pbx started");

    // First signal: drain (new calls get 503, live ones go on up to the drain timeout).
    // Second signal, the timeout, or the last live call ending: stop.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(drain_on_signals(
        calls.clone(),
        stop_tx,
        config.drain_timeout,
    ));
    let mut stopped = stop_rx.clone();
    let server = axum::serve(http, router).with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });
    let _ = stop_rx.wait_for(|stop| *stop).await;
    // Open websockets would hold a graceful shutdown forever: give requests a moment.
    if let Ok(Ok(Err(err))) = tokio::time::timeout(Duration::from_secs(2), server).await {
        return Err(err).context("admin API server failed");
    }

    info!(live_calls = calls.count(), "stopping: ending live calls");
    calls.shutdown_all();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while calls.count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The calls' last records and events (their ends) are stored before the process exits.
    history.close();
    if tokio::time::timeout(Duration::from_secs(2), history_task)
        .await
        .is_err()
    {
        warn!("the call history writer did not finish in time; the last records may be missing");
    }
    events.close();
    if tokio::time::timeout(Duration::from_secs(2), events_task)
        .await
        .is_err()
    {
        warn!("the event recorder did not finish in time; the last events may be missing");
    }
    Ok(())
}

/// The SIP TCP limits, after raising the open-file limit: the total cap keeps half of the
/// descriptors for everything else (the HTTP API, RTP sockets, the store).
fn sip_tcp_limits(config: &Config) -> sip_shell::TcpLimits {
    let mut limits = config.sip_tcp;
    if let Some(files) = sip_shell::raise_fd_limit() {
        let room = usize::try_from(files / 2).unwrap_or(usize::MAX).max(16);
        if limits.max_connections > room {
            warn!(
                configured = limits.max_connections,
                allowed = room,
                "SIP TCP connection cap lowered to half the open-file limit"
            );
            limits.max_connections = room;
        }
    }
    limits
}

/// Waits for stop signals: the first starts draining, the second (or the drain ending)
/// sets `stop`.
async fn drain_on_signals(
    calls: Arc<Calls>,
    stop: tokio::sync::watch::Sender<bool>,
    timeout: Duration,
) {
    stop_signal().await;
    calls.start_draining();
    info!(
        live_calls = calls.count(),
        timeout_secs = timeout.as_secs(),
        "draining: new calls are refused; live calls may finish (a second signal stops now)"
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let drained = async {
        while calls.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        () = drained => {
            if calls.count() > 0 {
                warn!(live_calls = calls.count(), "drain timeout: hanging up the remaining calls");
            } else {
                info!("drained: no live calls left");
            }
        }
        () = stop_signal() => info!("second stop signal: stopping now"),
    }
    let _ = stop.send(true);
}

/// The address that SDP and Contact carry: the SIP address, or `--public-ip` when SIP listens
/// on a wildcard.
fn advertised_ip(sip: SocketAddr, public_ip: Option<IpAddr>) -> anyhow::Result<IpAddr> {
    match public_ip {
        Some(ip) => Ok(ip),
        None if sip.ip().is_unspecified() => bail!(
            "SIP listens on the wildcard address {}: set --public-ip to the address callers reach",
            sip.ip()
        ),
        None => Ok(sip.ip()),
    }
}

/// The configured admin token, or the one kept in the data directory (created on first start).
fn admin_token(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = &config.admin_token {
        return Ok(token.clone());
    }
    let path = config.data.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_string();
        if token.len() >= 8 {
            return Ok(token);
        }
    }
    let bytes: [u8; 24] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &token)
        .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

fn print_banner(sip: SocketAddr, http: SocketAddr, token: &str, installed: &[(String, String)]) {
    println!("pbx {} is running", env!("CARGO_PKG_VERSION"));
    println!("  SIP        udp+tcp {sip}");
    println!("  admin API  http://{http}   (Authorization: Bearer {token})");
    for (name, number) in installed {
        println!("  app        {name:<6} on number {number}: call sip:{number}@{sip}");
    }
    if !installed.is_empty() {
        println!(
            "  try        baresip, then `/dial sip:{}@{sip}`",
            installed[0].1
        );
    }
    println!("  stop       Ctrl-C");
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn wildcard_sip_address_needs_a_public_ip() {
        let wildcard: SocketAddr = "0.0.0.0:5060".parse().unwrap();
        assert!(advertised_ip(wildcard, None).is_err());
        let public: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(advertised_ip(wildcard, Some(public)).unwrap(), public);
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(
            advertised_ip(local, None).unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
