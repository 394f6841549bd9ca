//! One call session's actor: the task that owns the app instance and every leg, bridge,
//! conference, recording and timer of the session.
//!
//! Invariants: the actor is the only owner of its instance, sockets, players, mixers and
//! recorders, so media needs no locks; app events are delivered one at a time, in order, and
//! the actions an event returns are carried out before the next event; each leg gets
//! `on-call-finished` exactly once, as its last event; when the session's first (master) leg
//! ends, every other leg is hung up; the session ends when its last leg has ended, and every
//! leg is written to history and leaves the registry on every path.

use std::future::poll_fn;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use chrono::Utc;
use pbx_call::{Attach, ClipOwner, MediaOutput, MediaPlane, RATE};
use pbx_media::collect::{CollectOpts, Collected};
use pbx_media::dtmf::Digit;
use pbx_media::pcm::Pcm;
use pbx_media::player::{MediaKind, PlayOpts};
use pbx_media::recorder::WavRecorder;
use pbx_media::session::{RtpSession, SessionConfig};
use pbx_plugin::{
    Action, AppError, AppInstance, DialOptions, Direction, Endpoint, Event, GroupStage, LegPhase,
    MuteDirection, RecordTarget, RingStrategy,
};
use pbx_sip::{CallKey, EndCause, IncomingCall, OutgoingCall, Peer, Transport};
use pbx_store::CallRecord;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, debug, info_span, warn};

use super::conference::Conference;
use super::leg::{DialParams, Leg, LegRtp, TransferRole};
use super::recording::{RecFile, Recording};
use super::state::{CallState, Ending, HangupBy, HangupReason, reason_for_reject_status};
use super::{CallMsg, Calls, ConferenceView, MovingLeg, ParticipantView, SipMsg};
use crate::sip_shell::{SipCommand, SipHandle};
use pbx_call::dialer::{Dialer, DialerOutput, Member, Stage, Strategy, Target};

mod actions;
mod conferences;
mod handover;
mod platform_events;
mod recordings;

use platform_events::EventQueue;

/// How long we wait for the SIP side to confirm our BYE before we give up on it.
const BYE_GRACE: Duration = Duration::from_secs(40);
/// The ring time of a dial whose options say 0.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// The ring time of a group stage whose options say 0.
const DEFAULT_STAGE_TIMEOUT: Duration = Duration::from_secs(20);

type ClipResult = (ClipOwner, u64, Result<Arc<Pcm>, String>);

/// How the session was started.
pub(crate) enum Start {
    /// A caller reached us.
    Inbound(IncomingCall),
    /// `POST /v1/calls`: dial `target` and run `app_id` for it.
    Outbound {
        /// The account whose API key placed the call.
        account: String,
        app_id: String,
        version: u32,
        from: String,
        target: Endpoint,
        connect_timeout: Duration,
    },
    /// Another session handed a leg over to this session's app.
    HandOver(Box<HandOver>),
}

/// A leg handed over to another app's session, with what that session needs.
pub(crate) struct HandOver {
    pub(crate) leg: MovingLeg,
    pub(crate) app_id: String,
    pub(crate) version: u32,
    pub(crate) from_app: String,
    pub(crate) data: String,
    /// The handing session, told the outcome.
    pub(crate) origin: mpsc::Sender<CallMsg>,
}

/// A leg this session handed over. Its dialog's SIP events keep coming here until the other
/// session accepts it (then the SIP task is told to send them there), and are passed on to
/// `to` meanwhile; so no event is lost whichever way the hand-over ends.
struct Away {
    call: String,
    keys: Vec<CallKey>,
    to: mpsc::Sender<CallMsg>,
    /// Accepted (or ended there): only late events are still passed on.
    resolved: bool,
}

pub(crate) fn spawn(
    calls: Arc<Calls>,
    start: Start,
    sip: SipHandle,
    mailbox_tx: mpsc::Sender<CallMsg>,
    mailbox: mpsc::Receiver<CallMsg>,
) -> String {
    let id = pbx_plugin::new_leg_id();
    let span = info_span!("call", call_id = %id);
    let mut account_id = pbx_store::DEFAULT_ACCOUNT_ID.to_owned();
    if let Start::Outbound {
        app_id,
        version,
        from,
        target,
        account,
        ..
    } = &start
    {
        account_id.clone_from(account);
        metrics::counter!(crate::metrics::CALL_ATTEMPTS, "direction" => "outbound").increment(1);
        // Registered before the task runs, so `POST /v1/calls` answers with the live call.
        calls.register(
            outbound_record(
                &id,
                account,
                None,
                Some(app_id.clone()),
                Some(*version),
                from,
                endpoint_label(target),
            ),
            mailbox_tx.clone(),
        );
    }
    if let Start::HandOver(handover) = &start {
        // The registry points at the new session before the old one lets go of the leg.
        account_id.clone_from(&handover.leg.0.record.account_id);
        calls.register(handover.leg.0.record.clone(), mailbox_tx.clone());
    }
    let (media_tx, media_rx) = mpsc::channel(64);
    let calls_events = calls.events.get().cloned();
    let media = MediaPlane::new(calls.music());
    let session = Session {
        calls,
        sip,
        master: id.clone(),
        account_id,
        app_id: None,
        app_version: None,
        app: None,
        app_failed: false,
        mailbox,
        mailbox_tx,
        legs: Vec::new(),
        media,
        conferences: Vec::new(),
        recordings: Vec::new(),
        timers: Vec::new(),
        events: EventQueue::new(calls_events, &id),
        media_tx,
        media_rx,
        rr: 0,
        away: Vec::new(),
        handover_origin: None,
    };
    tokio::spawn(session.run(id.clone(), start).instrument(span));
    id
}

/// Why a session's app could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppStartFailure {
    /// Every instance slot of the pool is in use (answered 503 with Retry-After).
    PoolFull,
    /// The version could not be loaded or instantiated (answered 500).
    Other,
}

struct Session {
    calls: Arc<Calls>,
    sip: SipHandle,
    /// The first leg's id: when it ends, every other leg is hung up.
    master: String,
    /// The account the session's app belongs to: its calls, conferences, recordings, trunks
    /// and events are that account's (the default account until an inbound call is routed).
    account_id: String,
    app_id: Option<String>,
    app_version: Option<u32>,
    app: Option<AppInstance>,
    /// Set after the app trapped: no more events reach it.
    app_failed: bool,
    mailbox: mpsc::Receiver<CallMsg>,
    mailbox_tx: mpsc::Sender<CallMsg>,
    legs: Vec<Leg>,
    /// The media of every leg, the bridges and conference rooms between them, recording taps.
    media: MediaPlane,
    conferences: Vec<Conference>,
    recordings: Vec<Recording>,
    /// (when, id, tag), unordered; few per session.
    timers: Vec<(Instant, u64, String)>,
    /// App events waiting for delivery; each is also published as a platform event.
    events: EventQueue,
    media_tx: mpsc::Sender<ClipResult>,
    media_rx: mpsc::Receiver<ClipResult>,
    /// Round-robin start for polling the legs' sockets, so no leg starves the others.
    rr: usize,
    /// Legs handed over to other sessions, not yet accepted or given back.
    away: Vec<Away>,
    /// For a session started by a hand-over: who handed the leg over, told once the first
    /// event is done.
    handover_origin: Option<(mpsc::Sender<CallMsg>, String)>,
}

fn ending(by: HangupBy, reason: HangupReason, sip_status: Option<u16>) -> Ending {
    Ending {
        by,
        reason,
        sip_status,
    }
}

impl Session {
    async fn run(mut self, id: String, start: Start) {
        match start {
            Start::Inbound(incoming) => self.start_inbound(id, incoming).await,
            Start::Outbound {
                app_id,
                version,
                from,
                target,
                connect_timeout,
                ..
            } => {
                self.start_outbound(id, app_id, version, from, target, connect_timeout)
                    .await
            }
            Start::HandOver(handover) => self.start_handed_over(*handover).await,
        }
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        loop {
            self.deliver_events().await;
            self.report_hand_over().await;
            if self.legs.iter().all(Leg::is_over)
                && self.events.is_empty()
                && self.away.iter().all(|a| a.resolved)
            {
                break;
            }
            let media_live = self.media.needs_tick();
            let deadline = self.next_deadline();
            let rr = self.rr;
            tokio::select! {
                msg = self.mailbox.recv() => match msg {
                    Some(msg) => self.handle_msg(msg).await,
                    None => self.end_all(ending(HangupBy::Local, HangupReason::Failed, None)).await,
                },
                received = recv_any(&self.legs, rr, &mut buf) => {
                    self.rr = self.rr.wrapping_add(1);
                    if let Some((idx, len, from)) = received {
                        self.handle_rtp(idx, from, &buf[..len]);
                    }
                },
                _ = tick.tick(), if media_live => self.tick(),
                Some((owner, id, result)) = self.media_rx.recv() => {
                    self.media.handle_clip(&owner, id, result);
                    self.pump_media();
                },
                () = sleep_until(deadline), if deadline.is_some() => self.handle_timeouts().await,
            }
        }
        self.pass_on_late_events().await;
        self.finish_session().await;
    }

    /// SIP events the SIP task sent here before it rerouted a handed-over dialog must not be
    /// lost when this session ends: they are passed on to the leg's new session.
    async fn pass_on_late_events(&mut self) {
        if self.away.is_empty() {
            return;
        }
        // Let a reroute sent just now reach the SIP task before we look.
        tokio::task::yield_now().await;
        while let Ok(msg) = self.mailbox.try_recv() {
            if let CallMsg::Sip { key, msg } = msg
                && let Some(away) = self.away.iter().find(|a| a.keys.contains(&key))
            {
                let _ = away.to.send(CallMsg::Sip { key, msg }).await;
            }
        }
    }

    // ----- starting -------------------------------------------------------------------------

    async fn start_inbound(&mut self, id: String, incoming: IncomingCall) {
        let now = Utc::now();
        let record = CallRecord {
            id: id.clone(),
            app_id: None,
            app_version: None,
            direction: Direction::Inbound,
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
            master_call_id: None,
            // Set from the route once the number is routed.
            account_id: pbx_store::DEFAULT_ACCOUNT_ID.to_owned(),
        };
        let mut leg = Leg::new(
            id.clone(),
            Direction::Inbound,
            record,
            CallState::inbound(now),
        );
        leg.key = Some(incoming.key);
        // Written to history once its number reaches an app (`setup_inbound`).
        leg.in_history = false;
        metrics::counter!(crate::metrics::CALL_ATTEMPTS, "direction" => "inbound").increment(1);
        self.calls
            .register(leg.record.clone(), self.mailbox_tx.clone());
        self.media.add_leg(&leg.id);
        self.legs.push(leg);
        if let Err(end) = self.setup_inbound(&incoming).await {
            self.finish_leg(0, end).await;
        }
    }

    /// Routes the call, negotiates media, rings and starts the app; an `Err` is how it ended.
    async fn setup_inbound(&mut self, incoming: &IncomingCall) -> Result<(), Ending> {
        if self.calls.draining() {
            debug!("draining: new calls are refused; 503");
            metrics::counter!(crate::metrics::CALLS_REFUSED, "reason" => "draining").increment(1);
            return Err(self.reject(0, 503, Some("Service Unavailable")).await);
        }
        let number = incoming.to_user.clone().unwrap_or_default();
        let route = match self.calls.store.route(&number) {
            Ok(Some(route)) => route,
            Ok(None) => {
                debug!("no app for the dialled number; 404");
                self.calls
                    .note_unrouted(incoming.peer.addr, &number, Instant::now().into_std());
                return Err(self.reject(0, 404, Some("Not Found")).await);
            }
            Err(err) => {
                warn!(%err, "routing lookup failed");
                return Err(self.reject(0, 500, Some("Routing Failure")).await);
            }
        };
        self.account_id.clone_from(&route.account_id);
        self.legs[0].record.account_id.clone_from(&route.account_id);
        self.legs[0].record.app_id = Some(route.app_id.clone());
        self.legs[0].record.app_version = Some(route.version);
        self.app_id = Some(route.app_id.clone());
        self.app_version = Some(route.version);
        // The registry's copy counts toward the account's quota from now on, and says
        // which app the call runs, so that app cannot be deleted under it
        // (`Backend::app_in_use`): nothing is awaited between routing and this.
        self.calls.update(&self.legs[0].record);
        self.legs[0].in_history = true;
        self.persist(0);
        self.events.sink.set_app(&route.account_id, &route.app_id);
        if let Some(refusal) = self.over_call_quota() {
            debug!(account = %self.account_id, "{refusal}; 486");
            metrics::counter!(crate::metrics::CALLS_REFUSED, "reason" => "quota").increment(1);
            return Err(self.reject(0, 486, Some("Account Call Limit")).await);
        }

        let Some(offer) = incoming
            .sdp
            .as_deref()
            .and_then(|sdp| std::str::from_utf8(sdp).ok())
        else {
            debug!("INVITE without SDP offer is not supported yet; 488");
            return Err(self.reject(0, 488, Some("SDP Offer Required")).await);
        };
        let (socket, local) = match self.bind_rtp().await {
            Some(bound) => bound,
            None => return Err(self.reject(0, 503, Some("No Media Port")).await),
        };
        let session_id: u64 = rand::random::<u32>().into();
        let negotiated = match pbx_media::sdp::negotiate(offer, local, session_id) {
            Ok(negotiated) => negotiated,
            Err(err) => {
                debug!(%err, "SDP negotiation failed; 488");
                return Err(self.reject(0, 488, None).await);
            }
        };
        self.legs[0].rtp = Some(LegRtp {
            socket,
            local,
            local_sdp: negotiated.answer_sdp.clone(),
            sdp_version: 0,
            session_id,
        });
        // The caller's media is known from its offer; audio flows once we answer.
        let id = self.legs[0].id.clone();
        self.media
            .set_remote(Instant::now().into_std(), &id, negotiated, rtp_session);

        self.respond(0, 180, None, None).await;
        self.legs[0].state.ringing(Utc::now());
        self.sync_record(0);

        match self.load_app(&route.app_id, route.version, false).await {
            Ok(()) => {}
            Err(AppStartFailure::PoolFull) => {
                // Every sandbox slot is taken: come back later, as for any overload; calls
                // already running are untouched.
                self.respond(0, 503, Some("Too Many Calls"), None).await;
                return Err(ending(HangupBy::Local, HangupReason::Failed, Some(503)));
            }
            Err(AppStartFailure::Other) => return Err(self.fail_app_start(0).await),
        }
        let info = pbx_plugin::CallInfo {
            id: self.legs[0].id.clone(),
            direction: pbx_plugin::Direction::Inbound,
            from: self.legs[0].record.from.clone(),
            to: self.legs[0].record.to.clone(),
            caller_name: incoming.from_display.clone(),
            config: Vec::new(),
            handed_over: None,
        };
        self.sync_phases();
        self.events.push_back(Event::CallReceived(info));
        Ok(())
    }

    async fn start_outbound(
        &mut self,
        id: String,
        app_id: String,
        version: u32,
        from: String,
        target: Endpoint,
        connect_timeout: Duration,
    ) {
        self.app_id = Some(app_id.clone());
        self.app_version = Some(version);
        let to = endpoint_label(&target);
        let idx = self.new_outbound_leg(id.clone(), from.clone(), to.clone());
        if self.load_app(&app_id, version, true).await.is_err() {
            let end = ending(HangupBy::Local, HangupReason::AppError, None);
            self.finish_leg(idx, end).await;
            return;
        }
        let info = pbx_plugin::CallInfo {
            id: id.clone(),
            direction: pbx_plugin::Direction::Outbound,
            from: from.clone(),
            to,
            caller_name: None,
            config: Vec::new(),
            handed_over: None,
        };
        self.sync_phases();
        self.events.push_back(Event::CallReceived(info));
        let stages = vec![Stage {
            members: vec![self.member_for(&target)],
            strategy: Strategy::RingAll,
            timeout: connect_timeout,
        }];
        let params = DialParams {
            from_user: from,
            from_display: None,
            headers: Vec::new(),
        };
        self.start_dial(idx, stages, params).await;
    }

    async fn load_app(
        &mut self,
        app_id: &str,
        version: u32,
        outbound: bool,
    ) -> Result<(), AppStartFailure> {
        let compiled = match self.calls.apps.get_async(app_id, version).await {
            Ok(compiled) => compiled,
            Err(err) => {
                warn!(app_id, version, error = %format!("{err:#}"), "cannot load app");
                return Err(AppStartFailure::Other);
            }
        };
        let files = self.calls.store.clone();
        let trunks = self.calls.store.clone();
        // An app sees its own account's files and trunks only.
        let account = self.account_id.clone();
        self.events.sink.set_app(&account, app_id);
        let trunk_account = account.clone();
        // Users are not checked here: an unknown or unregistered user is a member that
        // fails at dial time, so one stale name does not refuse a whole group.
        let mut context = pbx_plugin::CallContext::new(self.master.clone(), app_id.to_string())
            .with_files(Arc::new(move |id: &str| {
                files.file_exists(&account, id).unwrap_or(false)
            }))
            .with_trunks(Arc::new(move |name: &str| {
                trunks
                    .trunk_by_name(&trunk_account, name)
                    .ok()
                    .flatten()
                    .is_some()
            }));
        if outbound {
            context = context.outbound();
        }
        let (store, app) = (self.calls.store.clone(), app_id.to_string());
        let (caps, limits) = tokio::task::spawn_blocking(move || {
            crate::capabilities::for_app(&store, &app, version)
        })
        .await
        .unwrap_or_default();
        context = context.with_capabilities(caps).with_limits(limits);
        match self
            .calls
            .apps
            .runtime()
            .instantiate(&compiled, context)
            .await
        {
            Ok(instance) => {
                self.app = Some(instance);
                Ok(())
            }
            Err(err @ pbx_plugin::PluginError::AtCapacity(_)) => {
                warn!(error = %err, "app instance pool full; refusing the call");
                metrics::counter!(crate::metrics::APP_POOL_EXHAUSTED).increment(1);
                Err(AppStartFailure::PoolFull)
            }
            Err(err) => {
                warn!(error = %err, "cannot instantiate app");
                Err(AppStartFailure::Other)
            }
        }
    }

    async fn bind_rtp(&mut self) -> Option<(UdpSocket, SocketAddr)> {
        self.calls.rtp_ports.bind(self.calls.media_ip).await
    }

    /// Why the session's account may not take another call now (its `max_concurrent_calls`
    /// quota, counting this leg), or `None`.
    fn over_call_quota(&self) -> Option<String> {
        let quotas = self.calls.store.account_quotas(&self.account_id).ok()?;
        let max = quotas.max_concurrent_calls?;
        let live = self.calls.count_for_account(&self.account_id);
        (live > max as usize).then(|| {
            format!("the account has {live} live calls, over its max_concurrent_calls = {max}")
        })
    }
}

/// The history record of a new outbound leg, in `dialing`.
fn outbound_record(
    id: &str,
    account_id: &str,
    master: Option<String>,
    app_id: Option<String>,
    app_version: Option<u32>,
    from: &str,
    to: String,
) -> CallRecord {
    CallRecord {
        id: id.to_string(),
        app_id,
        app_version,
        direction: Direction::Outbound,
        from: from.to_string(),
        to,
        status: pbx_store::CallStatus::Dialing,
        hangup_by: None,
        hangup_reason: None,
        tm_create: Utc::now(),
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: None,
        sip_call_id: None,
        master_call_id: master,
        account_id: account_id.to_owned(),
    }
}

/// Frames of incoming audio buffered per leg (60 ms) before it is mixed or bridged.
const JITTER_DEPTH: usize = 3;

/// A leg's RTP session over what SDP negotiated, with a jitter buffer for its input.
fn rtp_session(negotiated: &pbx_media::sdp::Negotiated) -> RtpSession {
    let mut config = SessionConfig::from_negotiated(negotiated, rand::random());
    config.jitter_depth = Some(JITTER_DEPTH);
    RtpSession::new(config)
}

impl Session {
    /// Adds an outbound leg in `dialing`, registered and in history.
    fn new_outbound_leg(&mut self, id: String, from: String, to: String) -> usize {
        let now = Utc::now();
        let master = (id != self.master).then(|| self.master.clone());
        let record = outbound_record(
            &id,
            &self.account_id,
            master,
            self.app_id.clone(),
            self.app_version,
            &from,
            to,
        );
        if id != self.master {
            // The first leg of an API-placed call is published by its `on-call-received`.
            self.events.sink.publish(
                pbx_store::EventType::CallDialing,
                Some(&id),
                None,
                serde_json::json!({ "from": from, "to": record.to, "master_call_id": self.master }),
            );
        }
        let leg = Leg::new(id, Direction::Outbound, record, CallState::outbound(now));
        if leg.id != self.master {
            // The first leg of an API-placed call was counted when it was registered.
            metrics::counter!(crate::metrics::CALL_ATTEMPTS, "direction" => "outbound")
                .increment(1);
        }
        self.calls
            .register(leg.record.clone(), self.mailbox_tx.clone());
        self.media.add_leg(&leg.id);
        self.legs.push(leg);
        let idx = self.legs.len() - 1;
        self.persist(idx);
        idx
    }

    // ----- dialing --------------------------------------------------------------------------

    /// Expands an endpoint into the SIP targets a dial tries.
    fn member_for(&self, endpoint: &Endpoint) -> Member {
        match endpoint {
            Endpoint::SipUri(uri) => Member::Parallel(vec![Target {
                request_uri: uri.clone(),
                label: uri.clone(),
                trunk: None,
            }]),
            Endpoint::User(name) => {
                // SIP user names are server-wide; an app may only ring its own account's.
                let own = self
                    .calls
                    .store
                    .sip_user_by_username(name)
                    .ok()
                    .flatten()
                    .is_some_and(|u| u.account_id == self.account_id);
                let contacts = if own {
                    self.calls.registrar.contacts(name)
                } else {
                    Vec::new()
                };
                if contacts.is_empty() {
                    debug!(user = %name, "user has no registered contact");
                    Member::Unreachable(HangupReason::Failed)
                } else {
                    Member::Parallel(
                        contacts
                            .into_iter()
                            .map(|contact| Target {
                                request_uri: contact,
                                label: format!("user:{name}"),
                                trunk: None,
                            })
                            .collect(),
                    )
                }
            }
            Endpoint::Phone { number, trunk } => {
                let trunks = match self
                    .calls
                    .store
                    .trunks_for_dial(&self.account_id, trunk.as_deref())
                {
                    Ok(trunks) => trunks,
                    Err(err) => {
                        warn!(%err, "cannot read trunks");
                        Vec::new()
                    }
                };
                if trunks.is_empty() {
                    return Member::Unreachable(HangupReason::Failed);
                }
                Member::Failover(
                    trunks
                        .iter()
                        .filter_map(|t| {
                            let uri = trunk_request_uri(t, number)?;
                            Some(Target {
                                request_uri: uri,
                                label: number.clone(),
                                trunk: Some(t.name.clone()),
                            })
                        })
                        .collect(),
                )
            }
        }
    }

    /// Binds the leg's RTP socket and starts its dialer.
    async fn start_dial(&mut self, idx: usize, stages: Vec<Stage>, params: DialParams) {
        if self.master_over() {
            // Every leg ends with the session's first one, including legs dialled after it.
            let end = ending(HangupBy::Local, HangupReason::Cancel, None);
            self.finish_leg(idx, end).await;
            return;
        }
        let Some((socket, local)) = self.bind_rtp().await else {
            let end = ending(HangupBy::Local, HangupReason::Failed, Some(503));
            self.finish_leg(idx, end).await;
            return;
        };
        let session_id: u64 = rand::random::<u32>().into();
        let offer = pbx_media::sdp::offer(local, session_id);
        let leg = &mut self.legs[idx];
        leg.rtp = Some(LegRtp {
            socket,
            local,
            local_sdp: offer,
            sdp_version: 0,
            session_id,
        });
        leg.dial = Some(params);
        let mut dialer = Dialer::new(stages);
        dialer.start(Instant::now().into_std());
        leg.dialer = Some(dialer);
        self.drive_dialer(idx).await;
    }

    /// Carries out what the leg's dialer asks for.
    async fn drive_dialer(&mut self, idx: usize) {
        loop {
            let Some(output) = self.legs[idx].dialer.as_mut().and_then(Dialer::poll_output) else {
                return;
            };
            match output {
                DialerOutput::Start { attempt, target } => {
                    match self.send_invite(idx, &target).await {
                        Ok(key) => self.legs[idx].attempts.push((attempt, key)),
                        Err(err) => {
                            debug!(target = %target.request_uri, %err, "cannot dial");
                            let now = Instant::now().into_std();
                            if let Some(d) = self.legs[idx].dialer.as_mut() {
                                d.on_failed(now, attempt, 503);
                            }
                        }
                    }
                }
                DialerOutput::Cancel { attempt } => {
                    if let Some(pos) = self.legs[idx]
                        .attempts
                        .iter()
                        .position(|(a, _)| *a == attempt)
                    {
                        let (_, key) = self.legs[idx].attempts.remove(pos);
                        self.sip.send(SipCommand::Hangup { key }).await;
                    }
                }
                DialerOutput::Answered { .. } => {}
                DialerOutput::Failed { reason, status } => {
                    let by = match reason {
                        HangupReason::Noanswer | HangupReason::Cancel => HangupBy::Local,
                        _ => HangupBy::Remote,
                    };
                    debug!(reason = reason.as_str(), ?status, "dial failed");
                    Box::pin(self.finish_leg(idx, ending(by, reason, status))).await;
                    return;
                }
            }
        }
    }

    async fn send_invite(&mut self, idx: usize, target: &Target) -> Result<CallKey, String> {
        let uri = pbx_sip::Uri::parse(&target.request_uri)
            .map_err(|err| format!("bad URI {}: {err:?}", target.request_uri))?;
        let ip = uri
            .host_ip()
            .ok_or_else(|| format!("{} has no IP address host", target.request_uri))?;
        let transport = match uri.param("transport") {
            Some(Some(t)) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            _ => Transport::Udp,
        };
        let destination = Peer {
            transport,
            addr: SocketAddr::new(ip, uri.port().unwrap_or(5060)),
            conn: None,
        };
        let trunk = match &target.trunk {
            Some(name) => self
                .calls
                .store
                .trunks_for_dial(&self.account_id, Some(name))
                .ok()
                .and_then(|t| t.into_iter().next()),
            None => None,
        };
        let leg = &self.legs[idx];
        let params = leg.dial.clone().unwrap_or(DialParams {
            from_user: "pbx".into(),
            from_display: None,
            headers: Vec::new(),
        });
        let from_user = trunk
            .as_ref()
            .and_then(|t| t.caller_id.clone())
            .unwrap_or(params.from_user);
        let credentials = trunk.as_ref().and_then(|t| {
            Some(pbx_sip::Credentials {
                username: t.username.clone()?,
                password: t.password.clone()?,
            })
        });
        let sdp = leg.rtp.as_ref().map(|m| m.local_sdp.clone().into_bytes());
        let call = OutgoingCall {
            request_uri: target.request_uri.clone(),
            destination,
            from_uri: format!("sip:{}@{}", from_user, self.calls.sip_host),
            from_display: params.from_display,
            to_uri: uri.without_params().as_str().to_string(),
            headers: params.headers,
            sdp,
            credentials,
        };
        let (reply, answer) = oneshot::channel();
        self.sip
            .send(SipCommand::Invite {
                call: Box::new(call),
                mailbox: self.mailbox_tx.clone(),
                reply,
            })
            .await;
        answer
            .await
            .map_err(|_| "the SIP task is gone".to_string())?
    }

    // ----- messages -------------------------------------------------------------------------

    fn leg_by_key(&self, key: CallKey) -> Option<(usize, Option<u32>)> {
        self.legs.iter().enumerate().find_map(|(i, leg)| {
            if leg.key == Some(key) {
                return Some((i, None));
            }
            leg.attempts
                .iter()
                .find(|(_, k)| *k == key)
                .map(|(a, _)| (i, Some(*a)))
        })
    }

    fn leg_index(&self, id: &str) -> Option<usize> {
        self.legs.iter().position(|l| l.id == id)
    }

    async fn handle_msg(&mut self, msg: CallMsg) {
        match msg {
            CallMsg::Sip { key, msg } => self.handle_sip(key, msg).await,
            CallMsg::SipGone { key } => {
                if let Some((idx, attempt)) = self.leg_by_key(key) {
                    match attempt {
                        Some(attempt) => self.attempt_failed(idx, attempt, 503).await,
                        None => {
                            let end = ending(HangupBy::Local, HangupReason::Failed, None);
                            self.finish_leg(idx, end).await;
                        }
                    }
                }
            }
            CallMsg::AdminHangup { call } => {
                if let Some(idx) = self.leg_index(&call) {
                    debug!(leg = %call, "ending leg on the admin's request");
                    let end = ending(HangupBy::Local, HangupReason::Admin, None);
                    self.end_leg(idx, end).await;
                }
            }
            CallMsg::ConferenceHangup { conference } => {
                self.hangup_conference(&conference, HangupReason::Admin)
                    .await;
            }
            CallMsg::Shutdown => {
                debug!("ending session: the server is stopping");
                self.end_all(ending(HangupBy::Local, HangupReason::Admin, None))
                    .await;
            }
            CallMsg::HandOverAccepted { call } => {
                if let Some(away) = self.away.iter_mut().find(|a| a.call == call) {
                    away.resolved = true;
                    for key in away.keys.clone() {
                        self.sip
                            .send(SipCommand::Reroute {
                                key,
                                mailbox: away.to.clone(),
                            })
                            .await;
                    }
                }
                debug!(leg = %call, "hand-over accepted");
                self.events.push_back(Event::HandOverResult {
                    call,
                    accepted: true,
                    reason: None,
                });
            }
            CallMsg::HandOverFailed {
                call,
                reason,
                outbound,
                ended,
            } => {
                if let Some(away) = self.away.iter_mut().find(|a| a.call == call) {
                    away.resolved = true;
                }
                if let Some(app) = self.app.as_mut() {
                    let direction = if outbound {
                        pbx_plugin::Direction::Outbound
                    } else {
                        pbx_plugin::Direction::Inbound
                    };
                    app.set_leg(&call, LegPhase::Finished, direction);
                }
                // The leg is not coming back: this app hears how it ended, as its last event.
                self.events.push_back(Event::HandOverResult {
                    call: call.clone(),
                    accepted: false,
                    reason: Some(reason),
                });
                self.events.push_back(Event::CallFinished { call, ended });
            }
            CallMsg::HandBack { leg, reason } => self.take_back(*leg.0, reason).await,
            CallMsg::HttpDone { id, result } => {
                self.events.push_back(Event::HttpResponse { id, result });
            }
        }
    }

    async fn handle_sip(&mut self, key: CallKey, msg: SipMsg) {
        let Some((idx, attempt)) = self.leg_by_key(key) else {
            // A leg on its way to another session: its events follow it.
            if let Some(away) = self.away.iter().find(|a| a.keys.contains(&key)) {
                let _ = away.to.send(CallMsg::Sip { key, msg }).await;
            } else {
                debug!(?key, "SIP event for no leg");
            }
            return;
        };
        if self.legs[idx].is_over() {
            return;
        }
        match msg {
            SipMsg::Confirmed => debug!("ACK received"),
            SipMsg::Cancelled => {
                self.legs[idx].state.canceling();
                let end = ending(HangupBy::Remote, HangupReason::Cancel, Some(487));
                self.finish_leg(idx, end).await;
            }
            SipMsg::Ended(cause) => {
                let end = match cause {
                    EndCause::RemoteBye => ending(HangupBy::Remote, HangupReason::Normal, None),
                    EndCause::LocalByeDone { .. } => {
                        ending(HangupBy::Local, HangupReason::Normal, None)
                    }
                    EndCause::AckTimeout => ending(HangupBy::Local, HangupReason::Timeout, None),
                    other => {
                        debug!(?other, "SIP side ended");
                        ending(HangupBy::Local, HangupReason::Failed, None)
                    }
                };
                self.finish_leg(idx, end).await;
            }
            SipMsg::Dtmf(digit) => match Digit::parse(&digit) {
                Some(digit) => self.digit(idx, digit),
                None => debug!(%digit, "ignoring an unknown SIP INFO digit"),
            },
            SipMsg::Progress { status, sdp } => {
                self.legs[idx].state.ringing(Utc::now());
                self.sync_record(idx);
                if let Some(sdp) = sdp {
                    self.apply_remote_sdp(idx, &sdp);
                }
                let leg = &mut self.legs[idx];
                if status == 180 && !leg.told_ringing {
                    leg.told_ringing = true;
                    let call = leg.id.clone();
                    self.events.push_back(Event::CallRinging { call });
                }
                if self.media.is_flowing(&self.legs[idx].id) && !self.legs[idx].told_early {
                    self.legs[idx].told_early = true;
                    let call = self.legs[idx].id.clone();
                    self.events.push_back(Event::CallEarlyMedia { call });
                    // Dial-and-connect: the caller hears this leg's early media.
                    if let Some(caller) = self.legs[idx].answer_on_answer.clone()
                        && let Some(c) = self.live_leg(&caller)
                    {
                        self.early_media(c).await;
                        self.bridge(c, idx);
                    }
                }
            }
            SipMsg::Answered { sdp } => {
                let Some(attempt) = attempt else { return };
                if let Some(d) = self.legs[idx].dialer.as_mut() {
                    d.on_answered(attempt);
                }
                self.legs[idx].key = Some(key);
                self.legs[idx].attempts.retain(|(a, _)| *a != attempt);
                self.drive_dialer(idx).await;
                if let Some(sdp) = sdp {
                    self.apply_remote_sdp(idx, &sdp);
                }
                let leg = &mut self.legs[idx];
                self.media.start_flowing(&leg.id);
                self.media.set_answered(&leg.id);
                leg.state.answered(Utc::now());
                leg.dialer = None;
                debug!(leg = %leg.id, "answered");
                self.start_call_limits(idx);
                self.sync_record(idx);
                let call = self.legs[idx].id.clone();
                self.events
                    .push_back(Event::CallAnswered { call: call.clone() });
                if let Some(caller) = self.legs[idx].answer_on_answer.take()
                    && let Some(c) = self.live_leg(&caller)
                {
                    self.answer(c).await;
                    self.bridge(c, idx);
                }
                if let Some(other) = self.legs[idx].connect_on_answer.take()
                    && let Some(o) = self.leg_index(&other)
                    && !self.legs[o].is_over()
                {
                    self.media.stop_music(&self.legs[o].id);
                    self.bridge(o, idx);
                }
            }
            SipMsg::Failed { status } => {
                if let Some(attempt) = attempt {
                    self.attempt_failed(idx, attempt, status).await;
                }
            }
            SipMsg::ReinviteDone { status, .. } => {
                debug!(status, "re-INVITE done");
            }
            SipMsg::RemoteReinvite { sdp } => {
                if let Some(sdp) = sdp {
                    self.apply_remote_sdp(idx, &sdp);
                }
            }
        }
    }

    async fn attempt_failed(&mut self, idx: usize, attempt: u32, status: u16) {
        self.legs[idx].attempts.retain(|(a, _)| *a != attempt);
        let now = Instant::now().into_std();
        if let Some(d) = self.legs[idx].dialer.as_mut() {
            d.on_failed(now, attempt, status);
        }
        self.drive_dialer(idx).await;
    }

    /// Takes the far end's SDP (an answer to our offer, or a re-INVITE) for the leg's media.
    fn apply_remote_sdp(&mut self, idx: usize, sdp: &[u8]) {
        let Ok(text) = std::str::from_utf8(sdp) else {
            return;
        };
        let negotiated = match pbx_media::sdp::accept_answer(text) {
            Ok(n) => n,
            Err(err) => {
                debug!(%err, "unusable SDP from the far end");
                return;
            }
        };
        if self.legs[idx].rtp.is_none() {
            return;
        }
        // New media terms (a resume, a new address): the inactivity timeout starts afresh.
        let id = &self.legs[idx].id;
        self.media
            .set_remote(Instant::now().into_std(), id, negotiated, rtp_session);
        self.media.start_flowing(id);
    }

    // ----- media ----------------------------------------------------------------------------

    fn handle_rtp(&mut self, idx: usize, from: SocketAddr, packet: &[u8]) {
        let now = Instant::now().into_std();
        self.media.handle_rtp(now, &self.legs[idx].id, from, packet);
        self.pump_media();
    }

    /// A key press from SIP INFO: handled as one from RTP.
    fn digit(&mut self, idx: usize, digit: Digit) {
        let now = Instant::now().into_std();
        self.media.handle_digit(now, &self.legs[idx].id, digit);
        self.pump_media();
    }

    /// The 20 ms media tick of every leg, bridge, conference and recording of the session.
    fn tick(&mut self) {
        self.media.handle_tick(Instant::now().into_std());
        self.pump_media();
    }

    /// Carries out what the media plane asks: datagrams go out on their leg's socket, events
    /// go to the app in the order they happened, frames go to the recordings' files.
    fn pump_media(&mut self) {
        while let Some(t) = self.media.poll_transmit() {
            if let Some(rtp) = self
                .legs
                .iter()
                .find(|l| l.id == t.leg)
                .and_then(|l| l.rtp.as_ref())
            {
                let _ = rtp.socket.try_send_to(t.bytes, t.to);
            }
        }
        let mut full = Vec::new();
        while let Some(output) = self.media.poll_output() {
            match output {
                MediaOutput::Digit { leg, digit } => {
                    debug!(digit = digit.as_str(), "DTMF");
                    self.events.push_back(Event::Dtmf {
                        call: leg,
                        digit: digit.as_str().to_string(),
                    });
                }
                MediaOutput::Finished {
                    owner,
                    id,
                    kind,
                    played_completely,
                    digit,
                    error,
                } => {
                    if let Some(err) = error {
                        warn!(media_id = id, %err, "media unavailable");
                    }
                    let finished = pbx_plugin::MediaFinished {
                        id,
                        played_completely,
                        digit: digit.map(|d| d.as_str().to_string()),
                    };
                    self.events.push_back(match (owner, kind) {
                        (ClipOwner::Leg(call), MediaKind::Say) => {
                            Event::SayFinished { call, finished }
                        }
                        (ClipOwner::Leg(call), MediaKind::Play) => {
                            Event::PlayFinished { call, finished }
                        }
                        (ClipOwner::Room(conference), _) => Event::ConferenceMediaFinished {
                            conference,
                            finished,
                        },
                    });
                }
                MediaOutput::Collected { leg, collected } => {
                    self.events.push_back(Event::Collected {
                        call: leg,
                        collected: collected_to_app(collected),
                    });
                }
                MediaOutput::Record { tap, file, frame } => {
                    if let Some(rec) = self.recordings.iter_mut().find(|r| r.tap == tap) {
                        rec.write(file, &frame);
                    }
                }
                MediaOutput::TapFull { tap } => full.push(tap),
            }
        }
        for tap in full {
            if let Some(id) = self
                .recordings
                .iter()
                .find(|r| r.tap == tap)
                .map(|r| r.id.clone())
            {
                self.stop_recording(&id);
            }
        }
    }

    /// Queues a clip in request order and produces it off the actor.
    fn queue_clip(
        &mut self,
        owner: ClipOwner,
        id: u64,
        opts: PlayOpts,
        clip: impl Future<Output = Result<Arc<Pcm>, String>> + Send + 'static,
    ) {
        if let ClipOwner::Leg(call) = &owner
            && self.live_leg(call).is_none()
        {
            return;
        }
        if !self.media.queue_clip(&owner, id, opts) {
            return;
        }
        let tx = self.media_tx.clone();
        tokio::spawn(async move {
            let _ = tx.send((owner, id, clip.await)).await;
        });
    }

    fn stop_leg_media(&mut self, idx: usize) {
        let owner = ClipOwner::Leg(self.legs[idx].id.clone());
        self.media.stop_media(&owner);
        self.pump_media();
    }

    fn stop_conference_media(&mut self, ci: usize) {
        let owner = ClipOwner::Room(self.conferences[ci].id.clone());
        self.media.stop_media(&owner);
        self.pump_media();
    }

    // ----- timeouts -------------------------------------------------------------------------

    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for leg in &self.legs {
            if leg.is_over() {
                continue;
            }
            consider(
                leg.dialer
                    .as_ref()
                    .and_then(Dialer::poll_timeout)
                    .map(Instant::from_std),
            );
            consider(leg.bye_deadline);
            consider(leg.max_end);
        }
        for (when, _, _) in &self.timers {
            consider(Some(*when));
        }
        consider(self.media.poll_timeout().map(Instant::from_std));
        if let Some(timeout) = self.calls.limits.rtp_timeout {
            consider(
                self.media
                    .inactivity_deadline(timeout)
                    .map(Instant::from_std),
            );
        }
        next
    }

    /// An answered leg starts expecting media now, and may last `max_call` from now.
    fn start_call_limits(&mut self, idx: usize) {
        let now = Instant::now();
        let max_call = self.calls.limits.max_call;
        let leg = &mut self.legs[idx];
        self.media.restart_media_clock(now.into_std(), &leg.id);
        leg.max_end = max_call.map(|d| now + d);
    }

    async fn handle_timeouts(&mut self) {
        let now = Instant::now();
        self.media.handle_timeout(now.into_std());
        self.pump_media();
        // Answered legs that expect media and have received none for `--rtp-timeout`.
        let silent_legs = match self.calls.limits.rtp_timeout {
            Some(timeout) => self.media.inactive_legs(now.into_std(), timeout),
            None => Vec::new(),
        };
        for idx in 0..self.legs.len() {
            if self.legs[idx].is_over() {
                continue;
            }
            if let Some(d) = self.legs[idx].dialer.as_mut()
                && d.poll_timeout().is_some_and(|t| t <= now.into_std())
            {
                d.handle_timeout(now.into_std());
                self.drive_dialer(idx).await;
            }
            if self.legs[idx].bye_deadline.is_some_and(|t| t <= now) {
                warn!("no answer to our BYE; ending the leg anyway");
                let end = ending(HangupBy::Local, HangupReason::Normal, None);
                self.finish_leg(idx, end).await;
                continue;
            }
            let silent =
                self.legs[idx].bye_deadline.is_none() && silent_legs.contains(&self.legs[idx].id);
            let too_long = self.legs[idx].max_end.is_some_and(|t| t <= now);
            if too_long {
                self.legs[idx].max_end = None;
            }
            if silent || too_long {
                debug!(
                    leg = %self.legs[idx].id,
                    cause = if silent { "no RTP" } else { "maximum call length" },
                    "ending the leg: timeout"
                );
                metrics::counter!(
                    crate::metrics::CALL_TIMEOUTS,
                    "cause" => if silent { "rtp" } else { "max_length" }
                )
                .increment(1);
                self.end_leg(idx, ending(HangupBy::Local, HangupReason::Timeout, None))
                    .await;
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = self.timers.drain(..).partition(|(t, _, _)| *t <= now);
        self.timers = later;
        for (_, id, tag) in due {
            if let Some(app) = self.app.as_mut() {
                app.timer_done(id);
            }
            self.events.push_back(Event::Timer { id, tag });
        }
    }
}

impl Session {
    // ----- leg control ----------------------------------------------------------------------

    /// True once the session's first leg has ended (it may have been handed over instead).
    fn master_over(&self) -> bool {
        self.leg_index(&self.master.clone())
            .is_some_and(|i| self.legs[i].is_over())
    }

    /// The index of a leg that has not ended.
    fn live_leg(&self, id: &str) -> Option<usize> {
        self.leg_index(id)
            .filter(|&i| !self.legs[i].is_over() && self.legs[i].bye_deadline.is_none())
    }

    /// The caller id a new leg of this session shows by default: the master's caller.
    fn caller_of(&self, call: &str) -> String {
        self.legs
            .iter()
            .find(|l| l.id == call)
            .or_else(|| self.legs.first())
            .map(|l| l.record.from.clone())
            .unwrap_or_else(|| "pbx".into())
    }

    fn stage_for(&self, stage: &GroupStage) -> Stage {
        Stage {
            members: stage.members.iter().map(|m| self.member_for(m)).collect(),
            strategy: match stage.strategy {
                RingStrategy::RingAll => Strategy::RingAll,
                RingStrategy::Linear => Strategy::Linear,
            },
            timeout: match stage.timeout_ms {
                0 => DEFAULT_STAGE_TIMEOUT,
                ms => Duration::from_millis(u64::from(ms)),
            },
        }
    }

    /// Creates the leg the app's import already named, in `dialing`.
    fn prepare_leg(&mut self, id: String, label: String, opts: &DialOptions) -> Option<usize> {
        if self.leg_index(&id).is_some() {
            warn!(leg = %id, "leg id reused; dial ignored");
            return None;
        }
        let from = opts
            .caller_id
            .clone()
            .unwrap_or_else(|| self.caller_of(&self.master.clone()));
        Some(self.new_outbound_leg(id, from, label))
    }

    async fn dial_leg(
        &mut self,
        id: String,
        label: String,
        stages: Vec<Stage>,
        opts: &DialOptions,
    ) {
        if let Some(idx) = self.prepare_leg(id, label, opts) {
            let params = dial_params(opts, &self.legs[idx].record.from);
            self.start_dial(idx, stages, params).await;
        }
    }

    /// Dials `target` for `call`, bridging them when the new leg answers (transfers).
    async fn dial_connected(
        &mut self,
        call: String,
        new_call: String,
        target: Endpoint,
        opts: DialOptions,
    ) {
        let stages = vec![Stage {
            members: vec![self.member_for(&target)],
            strategy: Strategy::RingAll,
            timeout: connect_timeout(&opts),
        }];
        let label = endpoint_label(&target);
        if let Some(idx) = self.prepare_leg(new_call, label, &opts) {
            self.legs[idx].connect_on_answer = Some(call);
            let params = dial_params(&opts, &self.legs[idx].record.from);
            self.start_dial(idx, stages, params).await;
        }
    }

    async fn answer(&mut self, idx: usize) {
        let leg = &self.legs[idx];
        if leg.is_answered() || leg.direction != Direction::Inbound || leg.is_over() {
            return;
        }
        let sdp = leg.rtp.as_ref().map(|m| m.local_sdp.clone().into_bytes());
        self.respond(idx, 200, None, sdp).await;
        let leg = &mut self.legs[idx];
        leg.state.answered(Utc::now());
        self.media.start_flowing(&leg.id);
        self.media.set_answered(&leg.id);
        debug!(leg = %leg.id, "answered");
        self.start_call_limits(idx);
        let leg = &self.legs[idx];
        let call = leg.id.clone();
        self.events.sink.publish(
            pbx_store::EventType::CallEstablished,
            Some(&call),
            None,
            serde_json::json!({ "direction": "inbound" }),
        );
        self.sync_record(idx);
    }

    async fn early_media(&mut self, idx: usize) {
        let leg = &self.legs[idx];
        if leg.is_answered()
            || self.media.is_flowing(&leg.id)
            || leg.direction != Direction::Inbound
        {
            return;
        }
        let sdp = leg.rtp.as_ref().map(|m| m.local_sdp.clone().into_bytes());
        self.respond(idx, 183, None, sdp).await;
        let leg = &mut self.legs[idx];
        self.media.start_flowing(&leg.id);
        leg.state.ringing(Utc::now());
        self.sync_record(idx);
    }

    async fn respond(
        &mut self,
        idx: usize,
        status: u16,
        reason: Option<&str>,
        sdp: Option<Vec<u8>>,
    ) {
        if let Some(key) = self.legs[idx].key {
            self.sip
                .send(SipCommand::Respond {
                    key,
                    status,
                    reason: reason.map(str::to_string),
                    sdp,
                })
                .await;
        }
    }

    /// Sends a final error response and returns how the leg ended.
    async fn reject(&mut self, idx: usize, status: u16, reason: Option<&str>) -> Ending {
        self.respond(idx, status, reason, None).await;
        ending(
            HangupBy::Local,
            reason_for_reject_status(status),
            Some(status),
        )
    }

    /// The app could not be started: answer 500 and end with `app-error`.
    async fn fail_app_start(&mut self, idx: usize) -> Ending {
        self.respond(idx, 500, Some("Application Error"), None)
            .await;
        ending(HangupBy::Local, HangupReason::AppError, Some(500))
    }

    /// Ends a leg from our side: BYE when answered, 480 before answer for an inbound leg,
    /// CANCEL for a leg still dialing.
    async fn end_leg(&mut self, idx: usize, end: Ending) {
        let leg = &mut self.legs[idx];
        if leg.is_over() {
            return;
        }
        if leg.is_answered() {
            if leg.bye_deadline.is_some() {
                return;
            }
            leg.state.terminating(end);
            leg.bye_deadline = Some(Instant::now() + BYE_GRACE);
            self.media.set_ending(&leg.id);
            let key = leg.key;
            self.sync_record(idx);
            if let Some(key) = key {
                self.sip.send(SipCommand::Hangup { key }).await;
            }
        } else if leg.direction == Direction::Outbound {
            if let Some(d) = leg.dialer.as_mut() {
                d.abort();
            }
            self.drive_dialer(idx).await;
            let reason = if end.reason == HangupReason::Normal {
                HangupReason::Cancel
            } else {
                end.reason
            };
            self.finish_leg(idx, Ending { reason, ..end }).await;
        } else {
            if let Some(key) = leg.key {
                self.sip.send(SipCommand::Hangup { key }).await;
            }
            self.finish_leg(
                idx,
                Ending {
                    sip_status: Some(480),
                    ..end
                },
            )
            .await;
        }
    }

    async fn end_all(&mut self, end: Ending) {
        for idx in self.master_last() {
            self.end_leg(idx, end).await;
        }
    }

    /// Leg indices with the master last, so that ending them one by one gives every leg the
    /// reason asked for rather than the master's cascade of `normal`.
    fn master_last(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.legs.len()).collect();
        order.sort_by_key(|&i| self.legs[i].id == self.master);
        order
    }

    /// The leg is over: stop its media, take it out of its bridge or conference, stop the
    /// recordings of it, tell the app, write history, leave the registry.
    async fn finish_leg(&mut self, idx: usize, end: Ending) {
        if self.legs[idx].is_over() {
            return;
        }
        let end = self.legs[idx].state.hangup(Utc::now(), end);
        let call = self.legs[idx].id.clone();
        // The app hears about stopped media and left conferences before on-call-finished;
        // its mirror must already treat the leg as ended so it cannot act on it meanwhile.
        if let Some(app) = self.app.as_mut() {
            app.set_leg(&call, LegPhase::Finished, self.legs[idx].direction);
        }
        debug!(
            leg = %call,
            hangup_by = end.by.as_str(),
            hangup_reason = end.reason.as_str(),
            "leg ended"
        );
        if let Some(d) = self.legs[idx].dialer.as_mut() {
            d.abort();
        }
        self.drive_dialer(idx).await;
        self.legs[idx].dialer = None;
        self.stop_leg_media(idx);
        self.media.cancel_collect(&call);
        self.media.stop_music(&call);
        self.pump_media();
        // Out of its conference or bridge.
        if let Attach::Room(cid) = self.media.attach(&call) {
            self.leave_conference(&cid, &call).await;
        }
        self.detach(idx);
        // Recordings of this leg stop with it.
        let stops: Vec<String> = self
            .recordings
            .iter()
            .filter(|r| matches!(&r.target, RecordTarget::Call(c) | RecordTarget::Bridge(c) if *c == call))
            .map(|r| r.id.clone())
            .collect();
        for id in stops {
            self.stop_recording(&id);
        }
        let answered = self.legs[idx].is_answered();
        self.sync_record(idx);
        self.record_outcome_metrics(idx);
        self.persist(idx);
        self.calls.unregister(&call);
        let keys: Vec<CallKey> = self.legs[idx]
            .key
            .into_iter()
            .chain(self.legs[idx].attempts.iter().map(|(_, k)| *k))
            .collect();
        for key in keys {
            self.sip.send(SipCommand::Release { key }).await;
        }
        self.legs[idx].rtp = None;
        self.media.remove_leg(&call);
        self.pump_media();
        self.events.push_back(Event::CallFinished {
            call: call.clone(),
            ended: call_ended(end, answered),
        });
        // The master's end ends the session.
        if call == self.master {
            for other in 0..self.legs.len() {
                if other != idx && !self.legs[other].is_over() {
                    let end = ending(HangupBy::Local, HangupReason::Normal, None);
                    Box::pin(self.end_leg(other, end)).await;
                }
            }
        }
    }

    /// Counts how the leg ended and what its RTP saw, for `/metrics`.
    fn record_outcome_metrics(&self, idx: usize) {
        let leg = &self.legs[idx];
        let direction = leg.direction.as_str();
        let reason = leg.record.hangup_reason.map_or("none", |r| r.as_str());
        metrics::counter!(
            crate::metrics::CALL_OUTCOMES,
            "direction" => direction,
            "status" => leg.record.status.as_str(),
            "reason" => reason,
        )
        .increment(1);
        if let Some(stats) = self.media.rtp(&leg.id).map(RtpSession::stats) {
            metrics::counter!(crate::metrics::RTP_PACKETS_RECEIVED)
                .increment(stats.packets_received);
            metrics::counter!(crate::metrics::RTP_PACKETS_SENT).increment(stats.packets_sent);
            metrics::counter!(crate::metrics::RTP_PACKETS_LOST).increment(stats.packets_lost);
            if stats.packets_received > 1 {
                metrics::histogram!(crate::metrics::RTP_JITTER_SECONDS)
                    .record(stats.jitter_ms / 1000.0);
            }
        }
    }

    /// The app trapped, ran out of time or memory: its session ends, nothing else is touched.
    async fn app_error(&mut self, err: AppError) {
        warn!(error = %err, app_id = ?self.app_id, "app failed; ending its session");
        metrics::counter!(crate::metrics::APP_FAILURES, "kind" => err.kind()).increment(1);
        self.events.sink.publish(
            pbx_store::EventType::AppError,
            None,
            None,
            serde_json::json!({ "kind": err.kind(), "message": err.to_string() }),
        );
        match err {
            AppError::Trap(_) => metrics::counter!(crate::metrics::APP_TRAPS).increment(1),
            AppError::Deadline => {
                metrics::counter!(crate::metrics::APP_DEADLINE_HITS).increment(1);
            }
            AppError::OutOfMemory => {}
        }
        self.app_failed = true;
        // The instance is poisoned: give its sandbox slot and memory back now, not when the
        // legs have finished hanging up.
        self.app = None;
        self.events.clear();
        for idx in self.master_last() {
            let leg = &self.legs[idx];
            if leg.is_over() {
                continue;
            }
            let end = ending(HangupBy::Local, HangupReason::AppError, None);
            if leg.direction == Direction::Inbound && !leg.is_answered() {
                let end = self.fail_app_start(idx).await;
                self.finish_leg(idx, end).await;
            } else {
                self.end_leg(idx, end).await;
            }
        }
    }

    /// Bridges two legs: each hears the other. Each leaves what it was attached to; the
    /// host's music (transfer, consult) ends, hold music stays.
    fn bridge(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        self.leave_any_conference(a);
        self.leave_any_conference(b);
        self.media.bridge(&self.legs[a].id, &self.legs[b].id);
        debug!(a = %self.legs[a].id, b = %self.legs[b].id, "bridged");
    }

    /// Takes a leg out of the conference it is in, if any, because it is being bridged: the
    /// conference hears it leave and finishes if it was the last participant.
    fn leave_any_conference(&mut self, idx: usize) {
        let call = self.legs[idx].id.clone();
        let Some(cid) = self.media.leave_room(&call) else {
            return;
        };
        let Some(ci) = self.conferences.iter().position(|c| c.id == cid) else {
            return;
        };
        if self.conferences[ci].leave(&call) {
            self.events.push_back(Event::ParticipantLeft {
                conference: cid.clone(),
                call,
            });
        }
        if self.conferences[ci].is_empty_after_use() {
            self.finish_conference(ci);
        } else {
            self.publish_conference(&cid);
        }
    }

    /// Takes a leg out of its bridge (both sides); conferences are left with `leave`.
    fn detach(&mut self, idx: usize) {
        self.media.detach(&self.legs[idx].id);
    }

    async fn hold(&mut self, idx: usize, music_file: Option<String>, hold: bool) {
        let id = self.legs[idx].id.clone();
        if self.media.is_held(&id) == hold {
            return;
        }
        // A held leg sends nothing; after resume the inactivity timeout starts afresh.
        let reoffer = match (self.legs[idx].rtp.as_mut(), self.media.negotiated(&id)) {
            (Some(rtp), Some(negotiated)) => {
                rtp.sdp_version += 1;
                let direction = if hold {
                    pbx_media::sdp::Direction::SendOnly
                } else {
                    pbx_media::sdp::Direction::SendRecv
                };
                let version = rtp.session_id + rtp.sdp_version;
                Some(pbx_media::sdp::reoffer(
                    negotiated,
                    rtp.local,
                    rtp.session_id,
                    version,
                    direction,
                ))
            }
            _ => None,
        };
        let clip = match music_file {
            Some(file) if hold => self.calls.media.file(&file, RATE).await.ok(),
            _ => None,
        };
        self.media.hold(Instant::now().into_std(), &id, hold, clip);
        if let (Some(sdp), Some(key)) = (reoffer, self.legs[idx].key) {
            self.sip
                .send(SipCommand::Reinvite {
                    key,
                    sdp: sdp.into_bytes(),
                })
                .await;
        }
    }

    fn set_mute(&mut self, call: &str, direction: MuteDirection, on: bool) {
        if self.live_leg(call).is_none() {
            return;
        }
        let (inbound, outbound) = match direction {
            MuteDirection::Inbound => (Some(on), None),
            MuteDirection::Outbound => (None, Some(on)),
            MuteDirection::Both => (Some(on), Some(on)),
        };
        self.media.set_mute(call, inbound, outbound);
    }

    // ----- history --------------------------------------------------------------------------

    /// Copies the leg state into the record the API shows.
    fn sync_record(&mut self, idx: usize) {
        let leg = &mut self.legs[idx];
        leg.record.status = leg.state.status;
        leg.record.tm_ringing = leg.state.tm_ringing;
        leg.record.tm_progressing = leg.state.tm_progressing;
        leg.record.tm_hangup = leg.state.tm_hangup;
        if let Some(end) = leg.state.ending {
            leg.record.hangup_by = Some(end.by);
            leg.record.hangup_reason = Some(end.reason);
        }
        self.calls.update(&leg.record);
    }

    fn persist(&self, idx: usize) {
        if !self.legs[idx].in_history {
            return;
        }
        self.calls.history.write(&self.legs[idx].record);
    }

    /// Every leg has ended: conferences and recordings end, the app is done.
    async fn finish_session(&mut self) {
        let ids: Vec<String> = self.recordings.iter().map(|r| r.id.clone()).collect();
        for id in ids {
            self.stop_recording(&id);
        }
        while !self.conferences.is_empty() {
            self.finish_conference(0);
        }
        self.deliver_events().await;
        debug!("session over");
    }
}

/// Waits for a datagram on any leg's RTP socket, starting the scan at `start` so that no leg
/// starves the others. `None` means a socket reported an error (ICMP), to be polled again.
async fn recv_any(
    legs: &[Leg],
    start: usize,
    buf: &mut [u8],
) -> Option<(usize, usize, SocketAddr)> {
    poll_fn(|cx| {
        let n = legs.len();
        for k in 0..n {
            let i = (start + k) % n;
            let Some(rtp) = legs[i].rtp.as_ref() else {
                continue;
            };
            let mut read = ReadBuf::new(buf);
            match rtp.socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(from)) => return Poll::Ready(Some((i, read.filled().len(), from))),
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn say_opts(opts: &pbx_plugin::SayOptions, stop_on_dtmf: bool) -> PlayOpts {
    PlayOpts {
        kind: MediaKind::Say,
        loop_count: opts.loop_count,
        offset_ms: 0,
        timeout_ms: None,
        stop_on_dtmf,
    }
}

fn play_opts(opts: &pbx_plugin::PlayOptions, stop_on_dtmf: bool) -> PlayOpts {
    PlayOpts {
        kind: MediaKind::Play,
        loop_count: opts.loop_count,
        offset_ms: opts.offset_ms,
        timeout_ms: opts.timeout_ms,
        stop_on_dtmf,
    }
}

fn connect_timeout(opts: &DialOptions) -> Duration {
    match opts.connect_timeout_ms {
        0 => DEFAULT_CONNECT_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)),
    }
}

fn with_caller(opts: &DialOptions, caller: String) -> DialOptions {
    let mut opts = opts.clone();
    if opts.caller_id.is_none() {
        opts.caller_id = Some(caller);
    }
    opts
}

fn dial_params(opts: &DialOptions, from: &str) -> DialParams {
    DialParams {
        from_user: opts.caller_id.clone().unwrap_or_else(|| from.to_string()),
        from_display: opts.caller_name.clone(),
        headers: opts.headers.clone(),
    }
}

/// How an endpoint shows in history (`to`).
pub(crate) fn endpoint_label(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::SipUri(uri) => uri.clone(),
        Endpoint::User(name) => format!("user:{name}"),
        Endpoint::Phone { number, .. } => number.clone(),
    }
}

fn group_label(stages: &[GroupStage]) -> String {
    let names: Vec<String> = stages
        .iter()
        .flat_map(|s| s.members.iter().map(endpoint_label))
        .collect();
    format!("group:{}", names.join(","))
}

/// The Request-URI for a number through a trunk: prefix and plus rules applied, sent to the
/// trunk's proxy.
fn trunk_request_uri(trunk: &pbx_store::Trunk, number: &str) -> Option<String> {
    let proxy = pbx_sip::Uri::parse(&trunk.proxy).ok()?;
    let mut digits = number.to_string();
    if trunk.strip_plus {
        digits = digits.trim_start_matches('+').to_string();
    }
    if let Some(prefix) = &trunk.number_prefix {
        digits = format!("{prefix}{digits}");
    }
    let port = proxy.port().map(|p| format!(":{p}")).unwrap_or_default();
    let transport = match proxy.param("transport") {
        Some(Some(t)) => format!(";transport={t}"),
        _ => String::new(),
    };
    Some(format!("sip:{digits}@{}{port}{transport}", proxy.host()))
}

/// How a leg ended, as the app is told.
fn call_ended(end: Ending, answered: bool) -> pbx_plugin::CallEnded {
    pbx_plugin::CallEnded {
        hangup_by: end.by,
        hangup_reason: end.reason,
        sip_status: end.sip_status,
        answered,
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
