//! One call's actor: the task that joins the SIP dialog, the RTP session and the app instance.
//!
//! Invariants: the actor is the only owner of its app instance, RTP socket, player and
//! collector; app events are delivered one at a time, in order, and the actions an event
//! returns are carried out before the next event; `on-call-finished` is the last event and is
//! delivered exactly once; the call is removed from the registry and written to history on
//! every path out of `run`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pbx_media::collect::{CollectOpts, Collected, Collector};
use pbx_media::dtmf::Digit;
use pbx_media::pcm::Pcm;
use pbx_media::player::{MediaKind, PlayOpts, Player, PlayerEvent};
use pbx_media::sdp::Negotiated;
use pbx_media::session::{MediaEvent, RtpSession, SessionConfig};
use pbx_plugin::{Action, AppError, AppInstance, Phase};
use pbx_sip::{CallKey, EndCause, IncomingCall};
use pbx_store::CallRecord;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, debug, info, info_span, warn};

use super::state::{CallState, Ending, HangupBy, HangupReason, reason_for_reject_status};
use super::{CallMsg, Calls};
use crate::sip_shell::{SipCommand, SipHandle};

/// The rate of the call's audio graph: G.711 is 8 kHz.
const RATE: u32 = 8000;
/// Samples in one 20 ms frame at `RATE`.
const FRAME: usize = (RATE / 50) as usize;
/// How long we wait for the SIP side to confirm our BYE before we give up on it.
const BYE_GRACE: Duration = Duration::from_secs(40);

/// An event for the app, queued so that events reach it one at a time.
enum AppEvent {
    CallReceived(pbx_plugin::CallInfo),
    Dtmf(String),
    SayFinished(pbx_plugin::MediaFinished),
    PlayFinished(pbx_plugin::MediaFinished),
    Collected(pbx_plugin::CollectedDigits),
}

/// A `say` or `play` waiting for its audio, kept in request order.
struct PendingMedia {
    id: u64,
    opts: PlayOpts,
    clip: Option<Result<Arc<Pcm>, String>>,
}

/// The media half of a call, present once SDP was negotiated.
struct Media {
    socket: UdpSocket,
    session: RtpSession,
    negotiated: Negotiated,
    /// True once we answered or sent early media, so RTP flows.
    flowing: bool,
}

pub(super) fn spawn(
    calls: Arc<Calls>,
    incoming: IncomingCall,
    sip: SipHandle,
    mailbox_tx: mpsc::Sender<CallMsg>,
    mailbox: mpsc::Receiver<CallMsg>,
) {
    let id = new_call_id();
    let span = info_span!("call", call_id = %id);
    let (media_tx, media_rx) = mpsc::channel(32);
    let now = Utc::now();
    let record = CallRecord {
        id: id.clone(),
        app_id: None,
        app_version: None,
        direction: pbx_store::Direction::Inbound,
        from: incoming
            .from_user
            .clone()
            .unwrap_or(incoming.from_uri.clone()),
        to: incoming.to_user.clone().unwrap_or_default(),
        status: pbx_store::CallStatus::Ringing,
        hangup_by: None,
        hangup_reason: None,
        tm_create: now,
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: None,
        sip_call_id: Some(incoming.call_id.clone()),
    };
    calls.register(record.clone(), mailbox_tx);
    let actor = Actor {
        calls,
        sip,
        key: incoming.key,
        record,
        state: CallState::inbound(now),
        mailbox,
        app: None,
        app_failed: false,
        media: None,
        player: Player::new(RATE),
        collector: Collector::new(),
        pending: VecDeque::new(),
        media_tx,
        media_rx,
        events: VecDeque::new(),
        bye_deadline: None,
    };
    tokio::spawn(actor.run(incoming).instrument(span));
}

fn new_call_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

struct Actor {
    calls: Arc<Calls>,
    sip: SipHandle,
    key: CallKey,
    record: CallRecord,
    state: CallState,
    mailbox: mpsc::Receiver<CallMsg>,
    app: Option<AppInstance>,
    /// Set after the app trapped: no more events reach it.
    app_failed: bool,
    media: Option<Media>,
    player: Player,
    collector: Collector,
    pending: VecDeque<PendingMedia>,
    media_tx: mpsc::Sender<(u64, Result<Arc<Pcm>, String>)>,
    media_rx: mpsc::Receiver<(u64, Result<Arc<Pcm>, String>)>,
    events: VecDeque<AppEvent>,
    /// When our BYE is out: the time after which we stop waiting for its outcome.
    bye_deadline: Option<Instant>,
}

impl Actor {
    async fn run(mut self, incoming: IncomingCall) {
        self.persist();
        if let Err(ending) = self.setup(incoming).await {
            self.finish(ending).await;
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        let mut frame = [0i16; FRAME];
        let mut out = [0u8; 1500];
        loop {
            self.deliver_events().await;
            if self.state.is_over() {
                return;
            }
            let collect_deadline = self.collector.poll_timeout().map(Instant::from_std);
            let flowing = self.media.as_ref().is_some_and(|m| m.flowing);
            tokio::select! {
                msg = self.mailbox.recv() => match msg {
                    Some(msg) => self.handle_msg(msg).await,
                    None => {
                        self.finish(Ending { by: HangupBy::Local, reason: HangupReason::Failed, sip_status: None }).await;
                    }
                },
                received = recv_rtp(self.media.as_ref(), &mut buf) => {
                    if let Some((len, from)) = received {
                        self.handle_rtp(from, &buf[..len]);
                    }
                },
                _ = tick.tick(), if flowing => self.send_frame(&mut frame, &mut out).await,
                Some((id, result)) = self.media_rx.recv() => self.media_ready(id, result),
                () = sleep_until(collect_deadline), if collect_deadline.is_some() => {
                    if let Some(collected) = self.collector.handle_timeout(Instant::now().into_std()) {
                        self.events.push_back(AppEvent::Collected(collected_to_app(collected)));
                    }
                },
                () = sleep_until(self.bye_deadline), if self.bye_deadline.is_some() => {
                    warn!("no answer to our BYE; ending the call anyway");
                    self.sip.send(SipCommand::Release { key: self.key }).await;
                    let ending = Ending { by: HangupBy::Local, reason: HangupReason::Normal, sip_status: None };
                    self.finish(ending).await;
                }
            }
        }
    }

    /// Routes the call, negotiates media, rings and starts the app; an `Err` is how it ended.
    async fn setup(&mut self, incoming: IncomingCall) -> Result<(), Ending> {
        let number = incoming.to_user.clone().unwrap_or_default();
        let route = match self.calls.store.route(&number) {
            Ok(Some(route)) => route,
            Ok(None) => {
                info!("no app for the dialled number; 404");
                return Err(self.reject(404, Some("Not Found")).await);
            }
            Err(err) => {
                warn!(%err, "routing lookup failed");
                return Err(self.reject(500, Some("Routing Failure")).await);
            }
        };
        self.record.app_id = Some(route.app_id.clone());
        self.record.app_version = Some(route.version);

        let socket = match UdpSocket::bind((self.calls.media_ip, 0)).await {
            Ok(socket) => socket,
            Err(err) => {
                warn!(%err, "cannot bind an RTP socket");
                return Err(self.reject(503, Some("No Media Port")).await);
            }
        };
        let local = match socket.local_addr() {
            Ok(local) => local,
            Err(err) => {
                warn!(%err, "RTP socket has no address");
                return Err(self.reject(503, Some("No Media Port")).await);
            }
        };
        let Some(offer) = incoming
            .sdp
            .as_deref()
            .and_then(|sdp| std::str::from_utf8(sdp).ok())
        else {
            info!("INVITE without SDP offer is not supported yet; 488");
            return Err(self.reject(488, Some("SDP Offer Required")).await);
        };
        let negotiated = match pbx_media::sdp::negotiate(offer, local, rand::random()) {
            Ok(negotiated) => negotiated,
            Err(err) => {
                info!(%err, "SDP negotiation failed; 488");
                return Err(self.reject(488, None).await);
            }
        };
        let session = RtpSession::new(SessionConfig::from_negotiated(&negotiated, rand::random()));
        self.media = Some(Media {
            socket,
            session,
            negotiated,
            flowing: false,
        });

        self.respond(180, None, None).await;
        self.state.ringing(Utc::now());
        self.sync_record();

        let compiled = match self
            .calls
            .apps
            .get_async(&route.app_id, route.version)
            .await
        {
            Ok(compiled) => compiled,
            Err(err) => {
                warn!(app_id = %route.app_id, version = route.version, error = %format!("{err:#}"), "cannot load app");
                return Err(self.fail_app(500).await);
            }
        };
        let store = self.calls.store.clone();
        let context = pbx_plugin::CallContext::new(self.record.id.clone(), route.app_id.clone())
            .with_files(Arc::new(move |id: &str| {
                store.file_exists(id).unwrap_or(false)
            }));
        match self
            .calls
            .apps
            .runtime()
            .instantiate(&compiled, context)
            .await
        {
            Ok(instance) => self.app = Some(instance),
            Err(err) => {
                warn!(error = %err, "cannot instantiate app");
                return Err(self.fail_app(500).await);
            }
        }
        // Per-app configuration values arrive with app capabilities; v0.1 apps get none.
        let config = Vec::new();
        self.events
            .push_back(AppEvent::CallReceived(pbx_plugin::CallInfo {
                id: self.record.id.clone(),
                direction: pbx_plugin::Direction::Inbound,
                from: self.record.from.clone(),
                to: self.record.to.clone(),
                caller_name: incoming.from_display.clone(),
                config,
            }));
        Ok(())
    }

    async fn handle_msg(&mut self, msg: CallMsg) {
        match msg {
            CallMsg::Confirmed => debug!("ACK received"),
            CallMsg::Cancelled => {
                self.state.canceling();
                let ending = Ending {
                    by: HangupBy::Remote,
                    reason: HangupReason::Cancel,
                    sip_status: Some(487),
                };
                self.finish(ending).await;
            }
            CallMsg::Ended(cause) => {
                let ending = match cause {
                    EndCause::RemoteBye => Ending {
                        by: HangupBy::Remote,
                        reason: HangupReason::Normal,
                        sip_status: None,
                    },
                    EndCause::LocalByeDone { .. } => Ending {
                        by: HangupBy::Local,
                        reason: HangupReason::Normal,
                        sip_status: None,
                    },
                    EndCause::AckTimeout => Ending {
                        by: HangupBy::Local,
                        reason: HangupReason::Timeout,
                        sip_status: None,
                    },
                    other => {
                        debug!(?other, "SIP side ended");
                        Ending {
                            by: HangupBy::Local,
                            reason: HangupReason::Failed,
                            sip_status: None,
                        }
                    }
                };
                self.finish(ending).await;
            }
            CallMsg::SipGone => {
                let ending = Ending {
                    by: HangupBy::Local,
                    reason: HangupReason::Failed,
                    sip_status: None,
                };
                self.finish(ending).await;
            }
            CallMsg::SipDtmf(digit) => match Digit::parse(&digit) {
                Some(digit) => self.digit(digit),
                None => debug!(%digit, "ignoring an unknown SIP INFO digit"),
            },
            CallMsg::AdminHangup | CallMsg::Shutdown => {
                info!("ending call on the admin's request");
                let ending = Ending {
                    by: HangupBy::Local,
                    reason: HangupReason::Admin,
                    sip_status: None,
                };
                self.end_from_our_side(ending).await;
            }
        }
    }

    fn handle_rtp(&mut self, from: SocketAddr, packet: &[u8]) {
        let Some(media) = self.media.as_mut() else {
            return;
        };
        let now = Instant::now().into_std();
        if let Some(MediaEvent::Dtmf { digit }) = media.session.handle_input(now, from, packet) {
            self.digit(digit);
        }
    }

    /// A key press from RTP or SIP INFO: the app hears it, and it may stop media or feed the
    /// collector.
    fn digit(&mut self, digit: Digit) {
        debug!(digit = digit.as_str(), "DTMF");
        self.events
            .push_back(AppEvent::Dtmf(digit.as_str().to_string()));
        self.player.on_dtmf(digit);
        self.drain_player();
        if let Some(collected) = self.collector.on_digit(Instant::now().into_std(), digit) {
            self.events
                .push_back(AppEvent::Collected(collected_to_app(collected)));
        }
    }

    async fn send_frame(&mut self, frame: &mut [i16; FRAME], out: &mut [u8; 1500]) {
        self.player.next_frame(frame);
        self.drain_player();
        let Some(media) = self.media.as_mut() else {
            return;
        };
        if let Some((to, len)) = media.session.send_frame(frame, out)
            && let Err(err) = media.socket.send_to(&out[..len], to).await
        {
            debug!(%to, %err, "RTP send failed");
        }
    }

    fn drain_player(&mut self) {
        while let Some(PlayerEvent::Finished {
            id,
            kind,
            played_completely,
            digit,
        }) = self.player.poll_event()
        {
            let finished = pbx_plugin::MediaFinished {
                id,
                played_completely,
                digit: digit.map(|d| d.as_str().to_string()),
            };
            self.events.push_back(match kind {
                MediaKind::Say => AppEvent::SayFinished(finished),
                MediaKind::Play => AppEvent::PlayFinished(finished),
            });
        }
    }

    /// A clip finished synthesising or decoding: hand every ready clip at the head of the
    /// queue to the player, keeping request order.
    fn media_ready(&mut self, id: u64, result: Result<Arc<Pcm>, String>) {
        if let Some(pending) = self.pending.iter_mut().find(|p| p.id == id) {
            pending.clip = Some(result);
        }
        while self.pending.front().is_some_and(|p| p.clip.is_some()) {
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            match pending.clip {
                Some(Ok(clip)) => self.player.enqueue(pending.id, clip, pending.opts),
                Some(Err(err)) => {
                    warn!(media_id = pending.id, %err, "media unavailable");
                    self.media_stopped(pending.id, pending.opts.kind);
                }
                None => {}
            }
        }
    }

    /// Reports a request that never played.
    fn media_stopped(&mut self, id: u64, kind: MediaKind) {
        let finished = pbx_plugin::MediaFinished {
            id,
            played_completely: false,
            digit: None,
        };
        self.events.push_back(match kind {
            MediaKind::Say => AppEvent::SayFinished(finished),
            MediaKind::Play => AppEvent::PlayFinished(finished),
        });
    }

    /// Delivers queued events one at a time and carries out what the app asks for.
    async fn deliver_events(&mut self) {
        while let Some(event) = self.events.pop_front() {
            if self.state.is_over() || self.app_failed {
                self.events.clear();
                return;
            }
            let Some(app) = self.app.as_mut() else {
                self.events.clear();
                return;
            };
            let call = self.record.id.clone();
            let result = match event {
                AppEvent::CallReceived(info) => app.on_call_received(&info).await,
                AppEvent::Dtmf(digit) => app.on_dtmf(&call, &digit).await,
                AppEvent::SayFinished(finished) => app.on_say_finished(&call, &finished).await,
                AppEvent::PlayFinished(finished) => app.on_play_finished(&call, &finished).await,
                AppEvent::Collected(collected) => app.on_dtmf_collected(&call, &collected).await,
            };
            match result {
                Ok(actions) => {
                    for action in actions {
                        self.apply(action).await;
                        if self.state.is_over() {
                            return;
                        }
                    }
                    self.sync_phase();
                }
                Err(err) => {
                    self.app_error(err).await;
                    return;
                }
            }
        }
    }

    async fn apply(&mut self, action: Action) {
        match action {
            Action::Answer => {
                if self.state.is_answered() {
                    return;
                }
                let sdp = self
                    .media
                    .as_ref()
                    .map(|m| m.negotiated.answer_sdp.clone().into_bytes());
                self.respond(200, None, sdp).await;
                self.state.answered(Utc::now());
                if let Some(media) = self.media.as_mut() {
                    media.flowing = true;
                }
                info!("answered");
                self.sync_record();
            }
            Action::EarlyMedia => {
                if self.state.is_answered() {
                    return;
                }
                let sdp = self
                    .media
                    .as_ref()
                    .map(|m| m.negotiated.answer_sdp.clone().into_bytes());
                self.respond(183, None, sdp).await;
                if let Some(media) = self.media.as_mut() {
                    media.flowing = true;
                }
                self.state.ringing(Utc::now());
                self.sync_record();
            }
            Action::Reject { status } => {
                let ending = self.reject(status, None).await;
                self.finish(ending).await;
            }
            Action::Hangup => {
                let ending = Ending {
                    by: HangupBy::Local,
                    reason: HangupReason::Normal,
                    sip_status: None,
                };
                self.end_from_our_side(ending).await;
            }
            Action::Say {
                id,
                text,
                opts: options,
            } => {
                let opts = PlayOpts {
                    kind: MediaKind::Say,
                    loop_count: options.loop_count,
                    offset_ms: 0,
                    timeout_ms: None,
                    stop_on_dtmf: options.stop_on_dtmf,
                };
                let media = self.calls.media.clone();
                self.queue_media(id, opts, async move {
                    media.say(text, options.language, options.voice, RATE).await
                });
            }
            Action::Play {
                id,
                file_id,
                opts: options,
            } => {
                let opts = PlayOpts {
                    kind: MediaKind::Play,
                    loop_count: options.loop_count,
                    offset_ms: options.offset_ms,
                    timeout_ms: options.timeout_ms,
                    stop_on_dtmf: options.stop_on_dtmf,
                };
                let media = self.calls.media.clone();
                self.queue_media(id, opts, async move { media.file(&file_id, RATE).await });
            }
            Action::StopMedia => self.stop_media(),
            Action::CollectDtmf { opts: options } => {
                let opts = CollectOpts {
                    max_digits: options.max_digits,
                    terminator: options.terminator.and_then(Digit::from_char),
                    timeout: Duration::from_millis(u64::from(options.timeout_ms)),
                };
                match self.collector.start(Instant::now().into_std(), opts) {
                    Ok(Some(previous)) => self
                        .events
                        .push_back(AppEvent::Collected(collected_to_app(previous))),
                    Ok(None) => {}
                    // The runtime validated the options already; this is a host bug, not the app's.
                    Err(err) => warn!(%err, "collect-dtmf options refused"),
                }
            }
        }
    }

    /// Queues a `say` or `play` in request order and produces its clip off the actor; the clip
    /// arrives through `media_rx` and is played once everything before it is ready.
    fn queue_media(
        &mut self,
        id: u64,
        opts: PlayOpts,
        clip: impl Future<Output = Result<Arc<Pcm>, String>> + Send + 'static,
    ) {
        self.pending.push_back(PendingMedia {
            id,
            opts,
            clip: None,
        });
        let tx = self.media_tx.clone();
        tokio::spawn(async move {
            let _ = tx.send((id, clip.await)).await;
        });
    }

    fn stop_media(&mut self) {
        self.player.stop_all();
        self.drain_player();
        while let Some(pending) = self.pending.pop_front() {
            self.media_stopped(pending.id, pending.opts.kind);
        }
    }

    /// Ends the call from our side: BYE when answered, an error response before.
    async fn end_from_our_side(&mut self, ending: Ending) {
        if self.state.is_over() {
            return;
        }
        if self.state.is_answered() {
            self.state.terminating(ending);
            self.sync_record();
            self.sip.send(SipCommand::Hangup { key: self.key }).await;
            self.bye_deadline = Some(Instant::now() + BYE_GRACE);
        } else {
            // Not answered: the endpoint answers the INVITE with 480 and the call is over.
            self.sip.send(SipCommand::Hangup { key: self.key }).await;
            let ending = Ending {
                sip_status: Some(480),
                ..ending
            };
            self.finish(ending).await;
        }
    }

    /// Sends a final error response and returns how the call ended.
    async fn reject(&mut self, status: u16, reason: Option<&str>) -> Ending {
        self.respond(status, reason, None).await;
        Ending {
            by: HangupBy::Local,
            reason: reason_for_reject_status(status),
            sip_status: Some(status),
        }
    }

    /// The app could not be started: answer with `status` and end with `app-error`.
    async fn fail_app(&mut self, status: u16) -> Ending {
        self.respond(status, Some("Application Error"), None).await;
        Ending {
            by: HangupBy::Local,
            reason: HangupReason::AppError,
            sip_status: Some(status),
        }
    }

    /// The app trapped, ran out of time or memory: its call ends, nothing else is touched.
    async fn app_error(&mut self, err: AppError) {
        warn!(error = %err, app_id = ?self.record.app_id, "app failed; ending its call");
        self.app_failed = true;
        self.events.clear();
        let ending = Ending {
            by: HangupBy::Local,
            reason: HangupReason::AppError,
            sip_status: None,
        };
        if self.state.is_answered() {
            self.end_from_our_side(ending).await;
        } else {
            let ending = self.fail_app(500).await;
            self.finish(ending).await;
        }
    }

    async fn respond(&mut self, status: u16, reason: Option<&str>, sdp: Option<Vec<u8>>) {
        self.sip
            .send(SipCommand::Respond {
                key: self.key,
                status,
                reason: reason.map(str::to_string),
                sdp,
            })
            .await;
    }

    /// The call is over: report stopped media and the ending to the app, write history, leave
    /// the registry.
    async fn finish(&mut self, ending: Ending) {
        if self.state.is_over() {
            return;
        }
        let ending = self.state.hangup(Utc::now(), ending);
        info!(
            hangup_by = ending.by.as_str(),
            hangup_reason = ending.reason.as_str(),
            "call ended"
        );
        self.stop_media();
        if let Some(collected) = self.collector.cancel() {
            self.events
                .push_back(AppEvent::Collected(collected_to_app(collected)));
        }
        self.sync_record();
        self.persist();
        self.calls.unregister(&self.record.id);
        self.sip.send(SipCommand::Release { key: self.key }).await;

        // The app hears about stopped media, then the ending, as its last event.
        let events: Vec<AppEvent> = self.events.drain(..).collect();
        if let Some(app) = self.app.as_mut()
            && !self.app_failed
        {
            app.set_phase(Phase::Finished);
            let call = self.record.id.clone();
            for event in events {
                let result = match event {
                    AppEvent::SayFinished(f) => app.on_say_finished(&call, &f).await,
                    AppEvent::PlayFinished(f) => app.on_play_finished(&call, &f).await,
                    AppEvent::Collected(c) => app.on_dtmf_collected(&call, &c).await,
                    AppEvent::Dtmf(_) | AppEvent::CallReceived(_) => continue,
                };
                if let Err(err) = result {
                    warn!(error = %err, "app failed after the call ended");
                    return;
                }
            }
            let ended = pbx_plugin::CallEnded {
                hangup_by: match ending.by {
                    HangupBy::Local => pbx_plugin::HangupBy::Local,
                    HangupBy::Remote => pbx_plugin::HangupBy::Remote,
                },
                hangup_reason: reason_to_app(ending.reason),
                sip_status: ending.sip_status,
            };
            if let Err(err) = app.on_call_finished(&call, &ended).await {
                warn!(error = %err, "app failed in on-call-finished");
            }
        }
    }

    /// Tells the instance the call's real phase after the app's optimistic updates.
    fn sync_phase(&mut self) {
        let phase = if self.state.is_over() {
            Phase::Finished
        } else if self.state.is_answered() {
            Phase::Answered
        } else if self.media.as_ref().is_some_and(|m| m.flowing) {
            Phase::EarlyMedia
        } else {
            Phase::Ringing
        };
        if let Some(app) = self.app.as_mut() {
            app.set_phase(phase);
        }
    }

    /// Copies the call state into the record the API shows.
    fn sync_record(&mut self) {
        self.record.status = self.state.status;
        self.record.tm_ringing = self.state.tm_ringing;
        self.record.tm_progressing = self.state.tm_progressing;
        self.record.tm_hangup = self.state.tm_hangup;
        if let Some(ending) = self.state.ending {
            self.record.hangup_by = Some(ending.by);
            self.record.hangup_reason = Some(ending.reason);
        }
        self.calls.update(&self.record);
    }

    fn persist(&self) {
        if let Err(err) = self.calls.store.upsert_call(&self.record) {
            warn!(%err, "cannot write call history");
        }
    }
}

fn reason_to_app(reason: HangupReason) -> pbx_plugin::HangupReason {
    use pbx_plugin::HangupReason as R;
    match reason {
        HangupReason::Normal => R::Normal,
        HangupReason::Failed => R::Failed,
        HangupReason::Busy => R::Busy,
        HangupReason::Cancel => R::Cancel,
        HangupReason::Timeout => R::Timeout,
        HangupReason::Noanswer => R::Noanswer,
        HangupReason::AppError => R::AppError,
        HangupReason::Rejected => R::Rejected,
        HangupReason::Admin => R::Admin,
    }
}

fn collected_to_app(collected: Collected) -> pbx_plugin::CollectedDigits {
    use pbx_media::collect::CollectEnd as M;
    use pbx_plugin::CollectEnd as P;
    pbx_plugin::CollectedDigits {
        digits: collected.digits,
        end: match collected.end {
            M::MaxDigits => P::MaxDigits,
            M::Terminator => P::Terminator,
            M::Timeout => P::Timeout,
            M::Cancelled => P::Cancelled,
        },
    }
}

async fn recv_rtp(media: Option<&Media>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match media {
        Some(media) => media.socket.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
