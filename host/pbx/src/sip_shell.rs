//! The tokio shell around the sans-IO SIP endpoint: it only moves bytes and timers.
//!
//! One task owns the `pbx_sip::Endpoint`. UDP datagrams and framed TCP messages reach it over a
//! channel together with commands from call actors; after every input it drains the endpoint's
//! output (transmissions to sockets, events to call actors) and sleeps until its next timeout.
//! Invariant: nothing here interprets SIP; that is the endpoint's job.
//!
//! Abuse limits live here because they are about sockets: accepted SIP TCP connections are
//! capped in total and per source (an IPv4 address or an IPv6 /64, as
//! [`crate::auth_guard::source_key`] says; over the cap the connection is closed at once, so
//! descriptors stay free for the HTTP listener and RTP); a connection, accepted or opened by
//! us, that carries no SIP message or keep-alive for the idle time is closed unless a call
//! still rides on it or it carries a live registration (a phone behind NAT gets its calls
//! over the connection it registered on); an accept error (EMFILE) backs off and is logged
//! at most every few seconds. Sources the
//! registrar banned get 403 to new INVITEs before any call is created.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use pbx_sip::{CallKey, Endpoint, OutgoingCall, Output, Peer, RequestKey, SipEvent, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::call::{CallMsg, Calls, SipMsg};
use crate::log_limit::RateLimit;
use crate::registrar::Registrar;

/// How long an outbound SIP-over-TCP connection may take to open.
const TCP_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Largest SIP datagram we accept; larger ones are cut by the kernel and then fail to parse.
const MAX_DATAGRAM: usize = 65_535;
/// At most one log line per this long about refused connections and accept errors.
const LIMIT_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Caps on accepted SIP TCP connections.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Most accepted connections at once.
    pub max_connections: usize,
    /// Most accepted connections from one source (an IPv4 address or an IPv6 /64).
    pub max_per_source: usize,
    /// A connection with no message (or keep-alive) for this long is closed, unless a call
    /// uses it or a live registration binding was made over it.
    pub idle: std::time::Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 2048,
            max_per_source: 32,
            idle: std::time::Duration::from_secs(120),
        }
    }
}

/// Open accepted connections, in total and per source ([`crate::auth_guard::source_key`]).
#[derive(Debug, Default)]
struct ConnCounts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One accepted connection's place in [`ConnCounts`]; freed when dropped.
struct ConnSlot {
    counts: Arc<Mutex<ConnCounts>>,
    ip: IpAddr,
}

impl ConnSlot {
    /// Takes a slot for a connection from `ip` (counted against its source), or says which
    /// cap is reached.
    fn acquire(
        counts: &Arc<Mutex<ConnCounts>>,
        ip: IpAddr,
        limits: TcpLimits,
    ) -> Result<ConnSlot, &'static str> {
        let ip = crate::auth_guard::source_key(ip);
        let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= limits.max_connections {
            return Err("total");
        }
        let mine = c.by_ip.entry(ip).or_insert(0);
        if *mine >= limits.max_per_source {
            return Err("per_source");
        }
        *mine += 1;
        c.total += 1;
        Ok(ConnSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit where the system allows it, logs
/// the before and after, and returns the soft limit now in force (`None` if unknown).
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        // Linux refuses a soft limit above fs.nr_open (1048576 by default) even when the hard
        // limit is unlimited.
        const CEILING: u64 = 1 << 20;
        let before = getrlimit(Resource::Nofile);
        let soft = before.current.unwrap_or(u64::MAX);
        let target = before.maximum.unwrap_or(CEILING).min(CEILING);
        if soft >= target {
            info!(soft, hard = ?before.maximum, "open-file limit");
            return Some(soft);
        }
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: before.maximum,
            },
        ) {
            Ok(()) => {
                info!(before = soft, after = target, "raised the open-file limit");
                Some(target)
            }
            Err(err) => {
                warn!(soft, target, %err, "cannot raise the open-file limit");
                Some(soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// What call actors ask of the SIP side.
#[derive(Debug)]
pub enum SipCommand {
    /// Send a provisional or final response to the call's INVITE.
    Respond {
        key: CallKey,
        status: u16,
        reason: Option<String>,
        sdp: Option<Vec<u8>>,
    },
    /// End the call from our side (BYE, or an error response before answer).
    Hangup { key: CallKey },
    /// The call's actor is gone: stop routing the call's events to it.
    Release { key: CallKey },
    /// Place an outbound INVITE; its events go to `mailbox`, its key comes back on `reply`.
    Invite {
        call: Box<OutgoingCall>,
        mailbox: mpsc::Sender<CallMsg>,
        reply: oneshot::Sender<Result<CallKey, String>>,
    },
    /// Route a dialog's events to another session from now on (hand-over).
    Reroute {
        key: CallKey,
        mailbox: mpsc::Sender<CallMsg>,
    },
    /// Send a re-INVITE with a new offer (hold, resume).
    Reinvite { key: CallKey, sdp: Vec<u8> },
    /// Answer a non-INVITE request the endpoint handed up (REGISTER).
    RespondRequest {
        key: RequestKey,
        status: u16,
        headers: Vec<(String, String)>,
    },
}

/// Everything the SIP task reacts to.
enum Input {
    Datagram {
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    TcpOpened {
        conn: u64,
        from: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    TcpMessage {
        conn: u64,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    TcpClosed {
        conn: u64,
        from: SocketAddr,
    },
    /// The connection was idle for the limit: may the SIP side let it go (no call uses it)?
    TcpIdle {
        conn: u64,
        from: SocketAddr,
        reply: oneshot::Sender<bool>,
    },
    Command(SipCommand),
}

/// The bound SIP sockets; binding is separate from running so that a taken port is reported
/// before anything else starts.
pub struct SipSockets {
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    addr: SocketAddr,
}

impl SipSockets {
    /// Binds UDP and TCP on the same address.
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let udp = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot bind SIP UDP on {addr}"))?;
        // With port 0 the kernel picks the UDP port; TCP must use the same one.
        let addr = udp.local_addr().context("SIP UDP socket has no address")?;
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind SIP TCP on {addr}"))?;
        Ok(SipSockets {
            udp: Arc::new(udp),
            tcp,
            addr,
        })
    }

    /// The address both transports listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A handle for sending commands to the SIP task.
#[derive(Clone)]
pub struct SipHandle {
    tx: mpsc::Sender<Input>,
}

impl SipHandle {
    /// Queues a command; a closed SIP task means the server is stopping, so the error is dropped.
    pub async fn send(&self, command: SipCommand) {
        if self.tx.send(Input::Command(command)).await.is_err() {
            debug!("SIP task is gone; command dropped");
        }
    }
}

/// Starts the SIP task and its socket readers. Call actors are spawned through `calls`.
pub fn spawn(
    sockets: SipSockets,
    mut endpoint: Endpoint,
    calls: Arc<Calls>,
    limits: TcpLimits,
) -> SipHandle {
    let (tx, mut rx) = mpsc::channel::<Input>(4096);
    let handle = SipHandle { tx: tx.clone() };
    let SipSockets { udp, tcp, .. } = sockets;

    tokio::spawn(read_udp(udp.clone(), tx.clone()));
    tokio::spawn(accept_tcp(tcp, tx, limits, calls.registrar.clone()));

    let calls_handle = handle.clone();
    let tx_self = handle.tx.clone();
    tokio::spawn(async move {
        let mut tcp_writers: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
        let mut tcp_by_addr: HashMap<SocketAddr, u64> = HashMap::new();
        let mut actors: HashMap<CallKey, mpsc::Sender<CallMsg>> = HashMap::new();
        loop {
            let deadline = endpoint.poll_timeout().map(Instant::from_std);
            let input = match deadline {
                Some(deadline) => tokio::select! {
                    input = rx.recv() => input,
                    () = tokio::time::sleep_until(deadline) => {
                        endpoint.handle_timeout(Instant::now().into_std());
                        drain(&mut endpoint, &udp, &tcp_writers, &tcp_by_addr, &mut actors, &calls, &calls_handle).await;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(input) = input else { break };
            let now = Instant::now().into_std();
            match input {
                Input::Datagram { from, bytes } => {
                    let peer = Peer {
                        transport: Transport::Udp,
                        addr: from,
                        conn: None,
                    };
                    endpoint.handle_input(now, peer, &bytes);
                }
                Input::TcpOpened { conn, from, writer } => {
                    tcp_writers.insert(conn, writer);
                    tcp_by_addr.insert(from, conn);
                }
                Input::TcpMessage { conn, from, bytes } => {
                    let peer = Peer {
                        transport: Transport::Tcp,
                        addr: from,
                        conn: Some(conn),
                    };
                    endpoint.handle_input(now, peer, &bytes);
                }
                Input::TcpIdle { conn, from, reply } => {
                    let busy = endpoint.has_calls_on(Peer {
                        transport: Transport::Tcp,
                        addr: from,
                        conn: Some(conn),
                    });
                    let _ = reply.send(!busy);
                    continue;
                }
                Input::TcpClosed { conn, from } => {
                    tcp_writers.remove(&conn);
                    if tcp_by_addr.get(&from) == Some(&conn) {
                        tcp_by_addr.remove(&from);
                    }
                    // Calls whose signalling rode on this connection can no longer be reached.
                    endpoint.handle_transport_error(Peer {
                        transport: Transport::Tcp,
                        addr: from,
                        conn: Some(conn),
                    });
                }
                Input::Command(SipCommand::Respond {
                    key,
                    status,
                    reason,
                    sdp,
                }) => {
                    if let Err(err) = endpoint.respond(now, key, status, reason.as_deref(), sdp) {
                        debug!(?key, status, %err, "response not sent");
                    }
                }
                Input::Command(SipCommand::Release { key }) => {
                    actors.remove(&key);
                }
                Input::Command(SipCommand::Invite {
                    call,
                    mailbox,
                    reply,
                }) => {
                    let destination = call.destination;
                    if destination.transport == Transport::Tcp
                        && !tcp_by_addr.contains_key(&destination.addr)
                    {
                        // Open the connection first; the INVITE goes out once it is up.
                        connect_tcp(
                            destination.addr,
                            tx_self.clone(),
                            limits.idle,
                            call,
                            mailbox,
                            reply,
                        );
                        continue;
                    }
                    match endpoint.invite(now, *call) {
                        Ok(key) => {
                            actors.insert(key, mailbox);
                            let _ = reply.send(Ok(key));
                        }
                        Err(err) => {
                            let _ = reply.send(Err(err.to_string()));
                        }
                    }
                }
                Input::Command(SipCommand::Reroute { key, mailbox }) => {
                    if actors.contains_key(&key) {
                        actors.insert(key, mailbox);
                    }
                }
                Input::Command(SipCommand::Reinvite { key, sdp }) => {
                    if let Err(err) = endpoint.reinvite(now, key, sdp) {
                        debug!(?key, %err, "re-INVITE not sent");
                    }
                }
                Input::Command(SipCommand::RespondRequest {
                    key,
                    status,
                    headers,
                }) => {
                    if let Err(err) = endpoint.respond_request(now, key, status, headers) {
                        debug!(status, %err, "response not sent");
                    }
                }
                Input::Command(SipCommand::Hangup { key }) => {
                    if let Err(err) = endpoint.hangup(now, key) {
                        debug!(?key, %err, "hangup not sent");
                        // The endpoint no longer knows the call: make sure its actor ends.
                        if let Some(actor) = actors.remove(&key) {
                            let _ = actor.try_send(CallMsg::SipGone { key });
                        }
                    }
                }
            }
            drain(
                &mut endpoint,
                &udp,
                &tcp_writers,
                &tcp_by_addr,
                &mut actors,
                &calls,
                &calls_handle,
            )
            .await;
        }
        info!("SIP task stopped");
    });
    handle
}

/// Carries out everything the endpoint produced: transmissions and call events.
async fn drain(
    endpoint: &mut Endpoint,
    udp: &UdpSocket,
    tcp_writers: &HashMap<u64, mpsc::Sender<Vec<u8>>>,
    tcp_by_addr: &HashMap<SocketAddr, u64>,
    actors: &mut HashMap<CallKey, mpsc::Sender<CallMsg>>,
    calls: &Arc<Calls>,
    sip: &SipHandle,
) {
    while let Some(output) = endpoint.poll_output() {
        match output {
            Output::Event(SipEvent::IncomingCall(incoming))
                if calls.registrar.is_banned(incoming.peer.addr.ip()) =>
            {
                debug!(from = %incoming.peer.addr, "INVITE from a banned source: 403");
                metrics::counter!(crate::metrics::CALLS_REFUSED, "reason" => "banned").increment(1);
                let now = Instant::now().into_std();
                if let Err(err) = endpoint.respond(now, incoming.key, 403, None, None) {
                    debug!(%err, "403 not sent");
                }
            }
            Output::Transmit(transmit) => match transmit.peer.transport {
                Transport::Udp => {
                    if let Err(err) = udp.send_to(&transmit.bytes, transmit.peer.addr).await {
                        warn!(to = %transmit.peer.addr, %err, "SIP UDP send failed");
                    }
                }
                Transport::Tcp => {
                    // Requests we originate carry no connection: use the one to that address.
                    let conn = transmit
                        .peer
                        .conn
                        .or_else(|| tcp_by_addr.get(&transmit.peer.addr).copied());
                    let writer = conn.and_then(|conn| tcp_writers.get(&conn));
                    match writer {
                        Some(writer) => {
                            if writer.try_send(transmit.bytes).is_err() {
                                warn!(to = %transmit.peer.addr, "SIP TCP connection is gone or full");
                            }
                        }
                        None => warn!(to = %transmit.peer.addr, "no TCP connection for response"),
                    }
                }
            },
            Output::Event(event) => route_event(event, actors, calls, sip),
        }
    }
    let shed = endpoint.take_shed_invites();
    if shed > 0 {
        metrics::counter!(crate::metrics::CALLS_REFUSED, "reason" => "overload").increment(shed);
    }
}

fn route_event(
    event: SipEvent,
    actors: &mut HashMap<CallKey, mpsc::Sender<CallMsg>>,
    calls: &Arc<Calls>,
    sip: &SipHandle,
) {
    let (key, msg, last) = match event {
        SipEvent::IncomingCall(incoming) => {
            let key = incoming.key;
            let mailbox = calls.spawn_inbound(incoming, sip.clone());
            actors.insert(key, mailbox);
            return;
        }
        SipEvent::Register(request) => {
            // Store lookups and hashing run off the SIP task.
            let registrar = calls.registrar.clone();
            let calls = calls.clone();
            let sip = sip.clone();
            tokio::spawn(async move {
                let key = request.key;
                let peer = request.peer;
                let answer = tokio::task::spawn_blocking(move || registrar.handle(&request)).await;
                let (status, headers) = match answer {
                    Ok(answer) => {
                        if let Some(failure) = &answer.failure {
                            report_auth_failure(&calls, peer, failure);
                        }
                        // A source that keeps failing waits for its answer.
                        if !answer.delay.is_zero() {
                            tokio::time::sleep(answer.delay).await;
                        }
                        (answer.status, answer.headers)
                    }
                    Err(_) => (500, Vec::new()),
                };
                sip.send(SipCommand::RespondRequest {
                    key,
                    status,
                    headers,
                })
                .await;
            });
            return;
        }
        SipEvent::Confirmed { key } => (key, SipMsg::Confirmed, false),
        SipEvent::Cancelled { key } => (key, SipMsg::Cancelled, true),
        SipEvent::Ended { key, cause } => (key, SipMsg::Ended(cause), true),
        SipEvent::Dtmf { key, digit } => (key, SipMsg::Dtmf(digit), false),
        SipEvent::Progress { key, status, sdp } => (key, SipMsg::Progress { status, sdp }, false),
        SipEvent::Answered { key, sdp } => (key, SipMsg::Answered { sdp }, false),
        SipEvent::Failed { key, status } => (key, SipMsg::Failed { status }, true),
        SipEvent::ReinviteDone { key, status, sdp } => {
            (key, SipMsg::ReinviteDone { status, sdp }, false)
        }
        SipEvent::RemoteReinvite { key, sdp } => (key, SipMsg::RemoteReinvite { sdp }, false),
    };
    let actor = if last {
        actors.remove(&key)
    } else {
        actors.get(&key).cloned()
    };
    match actor {
        // The actor's mailbox is deep; a full one means it is stuck, and it will be reaped.
        Some(actor) => {
            if actor.try_send(CallMsg::Sip { key, msg }).is_err() {
                warn!(?key, "call actor mailbox full or closed");
            }
        }
        None => debug!(?key, "event for a call with no actor"),
    }
}

/// Counts a failed authentication and publishes it as a `SIP_AUTH_FAILED` event of the
/// claimed user's account (the default account for unknown users).
fn report_auth_failure(calls: &Calls, peer: Peer, failure: &crate::registrar::AuthFailure) {
    metrics::counter!(crate::metrics::SIP_AUTH_FAILURES, "reason" => failure.reason).increment(1);
    if failure.banned {
        metrics::counter!(crate::metrics::SIP_BANS).increment(1);
    }
    if let Some(hub) = calls.events.get() {
        hub.emit(pbx_store::NewEvent {
            account_id: failure
                .account_id
                .clone()
                .unwrap_or_else(|| pbx_store::DEFAULT_ACCOUNT_ID.to_owned()),
            kind: pbx_store::EventType::SipAuthFailed,
            call_id: None,
            conference_id: None,
            app_id: None,
            at: chrono::Utc::now(),
            properties: serde_json::json!({
                "source": format!("{}:{}", peer.transport.as_str(), peer.addr),
                "username": failure.username,
                "reason": failure.reason,
                "banned": failure.banned,
            }),
        });
    }
}

/// Opens a TCP connection for an outbound INVITE, then hands the INVITE back to the SIP task.
/// The connection is closed after `idle` without traffic once no call uses it.
fn connect_tcp(
    addr: SocketAddr,
    tx: mpsc::Sender<Input>,
    idle: std::time::Duration,
    call: Box<OutgoingCall>,
    mailbox: mpsc::Sender<CallMsg>,
    reply: oneshot::Sender<Result<CallKey, String>>,
) {
    static NEXT_OUT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
    tokio::spawn(async move {
        // A silent host must not hold the dialling session for the kernel's ~2 minutes.
        let connected = tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(addr)).await;
        match connected.unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer to the TCP connect",
            ))
        }) {
            Ok(stream) => {
                let conn = NEXT_OUT_CONN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (opened_tx, opened_rx) = oneshot::channel();
                tokio::spawn(serve_tcp(
                    stream,
                    addr,
                    conn,
                    tx.clone(),
                    Some(opened_tx),
                    None,
                    IdlePolicy {
                        idle,
                        registrar: None,
                    },
                ));
                let _ = opened_rx.await;
                let _ = tx
                    .send(Input::Command(SipCommand::Invite {
                        call,
                        mailbox,
                        reply,
                    }))
                    .await;
            }
            Err(err) => {
                let _ = reply.send(Err(format!("cannot connect to {addr}: {err}")));
            }
        }
    });
}

async fn read_udp(socket: Arc<UdpSocket>, tx: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                let bytes = buf[..len].to_vec();
                if tx.send(Input::Datagram { from, bytes }).await.is_err() {
                    return;
                }
            }
            // ICMP port-unreachable from an earlier send surfaces here on Linux; keep reading.
            Err(err) => debug!(%err, "SIP UDP receive error"),
        }
    }
}

/// Accepts SIP TCP connections within the limits. Errors (EMFILE when descriptors run out)
/// back off up to a second and are logged at most every ten seconds.
async fn accept_tcp(
    listener: TcpListener,
    tx: mpsc::Sender<Input>,
    limits: TcpLimits,
    registrar: Arc<Registrar>,
) {
    let counts = Arc::new(Mutex::new(ConnCounts::default()));
    let mut next_conn: u64 = 1;
    let mut backoff = std::time::Duration::from_millis(10);
    let mut error_log = RateLimit::new(LIMIT_LOG_EVERY);
    let mut refused_log = RateLimit::new(LIMIT_LOG_EVERY);
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                backoff = std::time::Duration::from_millis(10);
                let slot = match ConnSlot::acquire(&counts, from.ip(), limits) {
                    Ok(slot) => slot,
                    Err(reason) => {
                        metrics::counter!(crate::metrics::SIP_TCP_REFUSED, "reason" => reason)
                            .increment(1);
                        if let Some(suppressed) = refused_log.allow(Instant::now().into_std()) {
                            warn!(%from, reason, suppressed, "SIP TCP connection refused: limit reached");
                        }
                        drop(stream);
                        continue;
                    }
                };
                let conn = next_conn;
                next_conn += 1;
                tokio::spawn(serve_tcp(
                    stream,
                    from,
                    conn,
                    tx.clone(),
                    None,
                    Some(slot),
                    IdlePolicy {
                        idle: limits.idle,
                        registrar: Some(registrar.clone()),
                    },
                ));
            }
            Err(err) => {
                if let Some(suppressed) = error_log.allow(Instant::now().into_std()) {
                    warn!(%err, suppressed, "SIP TCP accept failed; backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            }
        }
    }
}

/// When a connection counts as idle: no message or keep-alive for `idle`, no call on it (the
/// SIP task says), and, when `registrar` is set (accepted connections), no live registration
/// binding made over it.
struct IdlePolicy {
    idle: std::time::Duration,
    registrar: Option<Arc<Registrar>>,
}

/// Reads and writes one SIP TCP connection until it closes, breaks framing, or is idle as
/// `policy` says. `slot` (accepted connections) is freed on return.
async fn serve_tcp(
    stream: TcpStream,
    from: SocketAddr,
    conn: u64,
    tx: mpsc::Sender<Input>,
    opened: Option<oneshot::Sender<()>>,
    slot: Option<ConnSlot>,
    policy: IdlePolicy,
) {
    let idle = policy.idle;
    let _slot = slot;
    let (mut reader, mut writer) = stream.into_split();
    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(256);
    if tx
        .send(Input::TcpOpened {
            conn,
            from,
            writer: wtx,
        })
        .await
        .is_err()
    {
        return;
    }
    if let Some(opened) = opened {
        let _ = opened.send(());
    }
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = wrx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut decoder = pbx_sip::framing::StreamDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut active = Instant::now();
    'read: loop {
        let read = tokio::time::timeout_at(active + idle, reader.read(&mut buf)).await;
        let len = match read {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(len)) => len,
            Err(_) => {
                let (reply, answer) = oneshot::channel();
                if tx.send(Input::TcpIdle { conn, from, reply }).await.is_err() {
                    break;
                }
                let no_call = answer.await.unwrap_or(true);
                // The registrar's table is scanned here, off the SIP task.
                let registered = policy
                    .registrar
                    .as_ref()
                    .is_some_and(|r| r.has_binding_on(conn));
                if no_call && !registered {
                    metrics::counter!(crate::metrics::SIP_TCP_REFUSED, "reason" => "idle")
                        .increment(1);
                    debug!(%from, idle_secs = idle.as_secs(), "closing idle SIP TCP connection");
                    break;
                }
                // A call or a registration still uses it: keep it.
                active = Instant::now();
                continue;
            }
        };
        decoder.push(&buf[..len]);
        loop {
            match decoder.next_message() {
                Ok(Some(bytes)) => {
                    if tx
                        .send(Input::TcpMessage { conn, from, bytes })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    warn!(%from, %err, "closing SIP TCP connection: bad framing");
                    break 'read;
                }
            }
        }
        // Whole messages and keep-alives count as activity; a trickle of one message does not.
        if decoder.buffered() == 0 {
            active = Instant::now();
        }
    }
    write_task.abort();
    let _ = tx.send(Input::TcpClosed { conn, from }).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_are_capped_per_source_and_in_total_and_freed_on_drop() {
        let counts = Arc::new(Mutex::new(ConnCounts::default()));
        let limits = TcpLimits {
            max_connections: 3,
            max_per_source: 2,
            idle: std::time::Duration::from_secs(1),
        };
        let a = IpAddr::from([192, 0, 2, 1]);
        let b = IpAddr::from([192, 0, 2, 2]);
        let first = ConnSlot::acquire(&counts, a, limits).unwrap();
        let _second = ConnSlot::acquire(&counts, a, limits).unwrap();
        assert_eq!(
            ConnSlot::acquire(&counts, a, limits).err(),
            Some("per_source")
        );
        let _third = ConnSlot::acquire(&counts, b, limits).unwrap();
        assert_eq!(ConnSlot::acquire(&counts, b, limits).err(), Some("total"));
        drop(first);
        assert!(ConnSlot::acquire(&counts, a, limits).is_ok());
        assert_eq!(
            counts.lock().unwrap().total,
            2,
            "the temporary slot is freed"
        );
    }

    #[test]
    fn an_ipv6_64_is_one_source_and_mapped_ipv4_is_its_ipv4() {
        let counts = Arc::new(Mutex::new(ConnCounts::default()));
        let limits = TcpLimits {
            max_connections: 100,
            max_per_source: 2,
            idle: std::time::Duration::from_secs(1),
        };
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = ConnSlot::acquire(&counts, v6("2001:db8:0:1::1"), limits).unwrap();
        let _b = ConnSlot::acquire(&counts, v6("2001:db8:0:1:ffff::2"), limits).unwrap();
        assert_eq!(
            ConnSlot::acquire(&counts, v6("2001:db8:0:1:1234:5678:9abc:def0"), limits).err(),
            Some("per_source"),
            "another address of the same /64"
        );
        assert!(ConnSlot::acquire(&counts, v6("2001:db8:0:2::1"), limits).is_ok());
        let _c = ConnSlot::acquire(&counts, v6("::ffff:192.0.2.9"), limits).unwrap();
        let _d = ConnSlot::acquire(&counts, IpAddr::from([192, 0, 2, 9]), limits).unwrap();
        assert_eq!(
            ConnSlot::acquire(&counts, v6("::ffff:192.0.2.9"), limits).err(),
            Some("per_source")
        );
    }
}
