//! The tokio shell around the sans-IO SIP endpoint: it only moves bytes and timers.
//!
//! One task owns the `pbx_sip::Endpoint`. UDP datagrams and framed TCP messages reach it over a
//! channel together with commands from call actors; after every input it drains the endpoint's
//! output (transmissions to sockets, events to call actors) and sleeps until its next timeout.
//! Invariant: nothing here interprets SIP; that is the endpoint's job.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use pbx_sip::{CallKey, Endpoint, OutgoingCall, Output, Peer, RequestKey, SipEvent, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::call::{CallMsg, Calls, SipMsg};

/// How long an outbound SIP-over-TCP connection may take to open.
const TCP_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Largest SIP datagram we accept; larger ones are cut by the kernel and then fail to parse.
const MAX_DATAGRAM: usize = 65_535;

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
pub fn spawn(sockets: SipSockets, mut endpoint: Endpoint, calls: Arc<Calls>) -> SipHandle {
    let (tx, mut rx) = mpsc::channel::<Input>(4096);
    let handle = SipHandle { tx: tx.clone() };
    let SipSockets { udp, tcp, .. } = sockets;

    tokio::spawn(read_udp(udp.clone(), tx.clone()));
    tokio::spawn(accept_tcp(tcp, tx));

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
                        connect_tcp(destination.addr, tx_self.clone(), call, mailbox, reply);
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
            let sip = sip.clone();
            tokio::spawn(async move {
                let key = request.key;
                let answer = tokio::task::spawn_blocking(move || registrar.handle(&request)).await;
                let (status, headers) = match answer {
                    Ok(answer) => (answer.status, answer.headers),
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

/// Opens a TCP connection for an outbound INVITE, then hands the INVITE back to the SIP task.
fn connect_tcp(
    addr: SocketAddr,
    tx: mpsc::Sender<Input>,
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
                tokio::spawn(serve_tcp(stream, addr, conn, tx.clone(), Some(opened_tx)));
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

async fn accept_tcp(listener: TcpListener, tx: mpsc::Sender<Input>) {
    let mut next_conn: u64 = 1;
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let conn = next_conn;
                next_conn += 1;
                tokio::spawn(serve_tcp(stream, from, conn, tx.clone(), None));
            }
            Err(err) => {
                warn!(%err, "SIP TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_tcp(
    stream: TcpStream,
    from: SocketAddr,
    conn: u64,
    tx: mpsc::Sender<Input>,
    opened: Option<oneshot::Sender<()>>,
) {
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
    'read: loop {
        let len = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(len) => len,
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
    }
    write_task.abort();
    let _ = tx.send(Input::TcpClosed { conn, from }).await;
}
