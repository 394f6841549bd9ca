//! The call model: live sessions and their legs, conferences, and the registries the admin
//! API reads.
//!
//! Each call session is one tokio task (`session.rs`) that owns its app instance and every leg,
//! bridge, conference, recording and timer of the session, so a slow or failing session never
//! blocks another. The registries hold copies of each live leg's record and each live
//! conference's view, with the owning session's mailbox, and nothing else.

mod conference;
mod leg;
mod recording;
pub mod rtp_ports;
mod session;
pub mod state;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use pbx_media::pcm::Pcm;
use pbx_sip::{CallKey, EndCause, IncomingCall};
use pbx_store::CallRecord;
use tokio::sync::mpsc;

use crate::apps::AppCache;
use crate::history::HistoryWriter;
use crate::media_cache::MediaCache;
use crate::registrar::Registrar;
use crate::sip_shell::SipHandle;

/// Messages a session actor receives.
#[derive(Debug)]
pub enum CallMsg {
    /// Something happened on the SIP dialog (or dial attempt) `key`.
    Sip { key: CallKey, msg: SipMsg },
    /// The SIP endpoint no longer knows `key`.
    SipGone { key: CallKey },
    /// The admin API asked a leg to end.
    AdminHangup { call: String },
    /// The admin API asked a conference to end.
    ConferenceHangup { conference: String },
    /// The server is shutting down.
    Shutdown,
    /// A leg this session handed over was accepted by the other app's session.
    HandOverAccepted { call: String },
    /// A leg this session handed over comes back: the other app refused it.
    HandBack { leg: MovingLeg, reason: String },
    /// An app HTTP request (`http.send`) finished.
    HttpDone {
        id: pbx_plugin::RequestId,
        result: Result<pbx_plugin::HttpResponse, pbx_plugin::HttpError>,
    },
    /// A leg this session handed over ended in the other session before it was accepted
    /// (the app failed); it does not come back.
    HandOverFailed {
        call: String,
        reason: String,
        outbound: bool,
        ended: pbx_plugin::CallEnded,
    },
}

/// A leg on its way between two sessions (hand-over); its sockets and dialog travel with it.
pub struct MovingLeg(pub(crate) Box<leg::Leg>);

impl std::fmt::Debug for MovingLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MovingLeg").field(&self.0.id).finish()
    }
}

/// What the SIP side reports about one dialog.
#[derive(Debug)]
pub enum SipMsg {
    /// The ACK for our 200 OK arrived.
    Confirmed,
    /// The caller cancelled before answer (the endpoint already sent 487).
    Cancelled,
    /// The dialog is over.
    Ended(EndCause),
    /// A digit sent with SIP INFO.
    Dtmf(String),
    /// A dial attempt got 180 or 183.
    Progress { status: u16, sdp: Option<Vec<u8>> },
    /// A dial attempt was answered (the endpoint sent the ACK).
    Answered { sdp: Option<Vec<u8>> },
    /// A dial attempt failed with this final status.
    Failed { status: u16 },
    /// Our re-INVITE's outcome.
    ReinviteDone { status: u16, sdp: Option<Vec<u8>> },
    /// The far end re-INVITEd (the endpoint answered it).
    RemoteReinvite { sdp: Option<Vec<u8>> },
}

/// How deep a session's mailbox is; SIP events for one session are few, so a full mailbox
/// means the actor is stuck.
const MAILBOX_DEPTH: usize = 256;

pub use pbx_api::{ConferenceView, ParticipantView};

struct LiveCall {
    record: CallRecord,
    mailbox: mpsc::Sender<CallMsg>,
}

struct LiveConference {
    view: ConferenceView,
    mailbox: mpsc::Sender<CallMsg>,
}

/// Why an outbound call could not be started.
#[derive(Debug, thiserror::Error)]
pub enum OriginateError {
    /// The server is stopping or the SIP task is gone.
    #[error("the server cannot place calls now")]
    Unavailable,
}

/// Shared services and the registries of live legs and conferences.
pub struct Calls {
    live: Mutex<HashMap<String, LiveCall>>,
    conferences: Mutex<HashMap<String, LiveConference>>,
    pub(crate) store: Arc<pbx_store::Store>,
    pub(crate) apps: Arc<AppCache>,
    pub(crate) media: Arc<MediaCache>,
    pub(crate) registrar: Arc<Registrar>,
    /// The address our RTP sockets bind to and SDP advertises.
    pub(crate) media_ip: IpAddr,
    /// The host part of our From URIs.
    pub(crate) sip_host: String,
    sip: OnceLock<SipHandle>,
    music: OnceLock<Arc<Pcm>>,
    /// Where sessions publish platform events (set once at start; tests may run without).
    pub(crate) events: OnceLock<crate::events::EventHub>,
    /// Set by the first stop signal: new calls are refused (503) while live ones finish.
    draining: std::sync::atomic::AtomicBool,
    /// How long answered legs may go without media, and how long they may last.
    pub(crate) limits: CallLimits,
    /// Where sessions write call history, off their own task.
    pub(crate) history: HistoryWriter,
    /// Which ports RTP sockets bind.
    pub(crate) rtp_ports: rtp_ports::RtpPorts,
    /// The log line about INVITEs that reached no app (one per [`UNROUTED_LOG_EVERY`]).
    unrouted: Mutex<crate::log_limit::RateLimit>,
}

/// At most one log line per this long about INVITEs to numbers that reach no app.
const UNROUTED_LOG_EVERY: Duration = Duration::from_secs(10);

/// Server-wide limits on one answered leg (`--rtp-timeout`, `--max-call-secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// An answered leg that receives no RTP for this long, while neither side holds it, ends
    /// with reason `timeout` (a phone that lost power or network). `None`: never.
    pub rtp_timeout: Option<Duration>,
    /// An answered leg ends with reason `timeout` this long after its answer. `None`: never.
    pub max_call: Option<Duration>,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            rtp_timeout: Some(Duration::from_secs(60)),
            max_call: None,
        }
    }
}

/// The server's services and settings the call registries are built over.
#[expect(
    missing_debug_implementations,
    reason = "a bundle of services handed over once at start"
)]
pub struct CallServices {
    pub store: Arc<pbx_store::Store>,
    pub apps: Arc<AppCache>,
    pub media: Arc<MediaCache>,
    pub registrar: Arc<Registrar>,
    /// Where sessions write call history.
    pub history: HistoryWriter,
    /// The address our RTP sockets bind to and SDP advertises.
    pub media_ip: IpAddr,
    /// The host part of our From URIs.
    pub sip_host: String,
    pub limits: CallLimits,
    /// The UDP ports RTP binds (`None`: ephemeral ports).
    pub rtp_ports: Option<rtp_ports::RtpPortRange>,
}

impl Calls {
    /// Creates empty registries over the server's services.
    pub fn new(services: CallServices) -> Arc<Self> {
        let CallServices {
            store,
            apps,
            media,
            registrar,
            history,
            media_ip,
            sip_host,
            limits,
            rtp_ports,
        } = services;
        Arc::new(Calls {
            live: Mutex::new(HashMap::new()),
            conferences: Mutex::new(HashMap::new()),
            store,
            apps,
            media,
            registrar,
            media_ip,
            sip_host,
            sip: OnceLock::new(),
            music: OnceLock::new(),
            events: OnceLock::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            limits,
            history,
            rtp_ports: rtp_ports::RtpPorts::new(rtp_ports),
            unrouted: Mutex::new(crate::log_limit::RateLimit::new(UNROUTED_LOG_EVERY)),
        })
    }

    /// Gives sessions the hub they publish platform events to.
    pub fn set_events(&self, hub: crate::events::EventHub) {
        let _ = self.events.set(hub);
    }

    /// Gives the registry the SIP task's handle, for calls the API places.
    pub fn set_sip(&self, sip: SipHandle) {
        let _ = self.sip.set(sip);
    }

    /// The built-in music on hold, synthesised once.
    pub(crate) fn music(&self) -> Arc<Pcm> {
        self.music
            .get_or_init(|| Arc::new(pbx_media::music::default_music(pbx_call::RATE)))
            .clone()
    }

    /// Starts the session for a new inbound call and returns its mailbox.
    pub fn spawn_inbound(
        self: &Arc<Self>,
        incoming: IncomingCall,
        sip: SipHandle,
    ) -> mpsc::Sender<CallMsg> {
        let (tx, rx) = mpsc::channel(MAILBOX_DEPTH);
        session::spawn(
            self.clone(),
            session::Start::Inbound(incoming),
            sip,
            tx.clone(),
            rx,
        );
        tx
    }

    /// Starts a session of `app_id` for a leg another session handed over; returns the new
    /// session's mailbox.
    pub(crate) fn spawn_handed_over(
        self: &Arc<Self>,
        handover: session::HandOver,
        sip: SipHandle,
    ) -> mpsc::Sender<CallMsg> {
        let (tx, rx) = mpsc::channel(MAILBOX_DEPTH);
        session::spawn(
            self.clone(),
            session::Start::HandOver(Box::new(handover)),
            sip,
            tx.clone(),
            rx,
        );
        tx
    }

    /// Starts a session that dials `target` and runs the app for it (`POST /v1/calls`);
    /// returns the new call's id.
    pub fn originate(
        self: &Arc<Self>,
        account: String,
        app_id: String,
        version: u32,
        from: String,
        target: pbx_plugin::Endpoint,
        connect_timeout: Duration,
    ) -> Result<String, OriginateError> {
        let sip = self.sip.get().cloned().ok_or(OriginateError::Unavailable)?;
        let (tx, rx) = mpsc::channel(MAILBOX_DEPTH);
        let start = session::Start::Outbound {
            account,
            app_id,
            version,
            from,
            target,
            connect_timeout,
        };
        Ok(session::spawn(self.clone(), start, sip, tx, rx))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveCall>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts and
        // removes), so a poisoned lock is still usable.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a live leg (a new one, or one that moves between sessions by hand-over).
    pub(crate) fn register(&self, record: CallRecord, mailbox: mpsc::Sender<CallMsg>) {
        self.lock()
            .insert(record.id.clone(), LiveCall { record, mailbox });
    }

    pub(crate) fn update(&self, record: &CallRecord) {
        if let Some(live) = self.lock().get_mut(&record.id) {
            live.record = record.clone();
        }
    }

    pub(crate) fn unregister(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Copies of every live call's record, oldest first.
    pub fn list(&self) -> Vec<CallRecord> {
        let mut calls: Vec<CallRecord> = self.lock().values().map(|c| c.record.clone()).collect();
        calls.sort_by_key(|c| c.tm_create);
        calls
    }

    /// One live call's record.
    pub fn get(&self, id: &str) -> Option<CallRecord> {
        self.lock().get(id).map(|c| c.record.clone())
    }

    /// Refuses new calls from now on (inbound INVITEs get 503, `POST /v1/calls` 503); live
    /// calls go on.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        metrics::gauge!(crate::metrics::DRAINING).set(1.0);
    }

    /// Whether the server is draining.
    pub fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts an INVITE whose number reaches no app. Such INVITEs (scanners, misdials) never
    /// become call history; they are counted in `pbx_calls_refused_total{reason="no_route"}`
    /// and logged at most once per [`UNROUTED_LOG_EVERY`] with how many there were.
    pub(crate) fn note_unrouted(
        &self,
        source: std::net::SocketAddr,
        number: &str,
        now: std::time::Instant,
    ) {
        metrics::counter!(crate::metrics::CALLS_REFUSED, "reason" => "no_route").increment(1);
        let allowed = self
            .unrouted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(now);
        let Some(suppressed) = allowed else {
            return;
        };
        // This one and those held back since the last line.
        tracing::info!(
            count = suppressed.saturating_add(1),
            last_source = %source,
            last_number = number,
            "INVITEs to numbers that reach no app answered 404 (counted, not kept in call history)"
        );
    }

    /// Number of live calls (legs) of one account.
    pub fn count_for_account(&self, account_id: &str) -> usize {
        self.lock()
            .values()
            .filter(|c| c.record.account_id == account_id)
            .count()
    }

    /// Number of live calls.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Asks a live call to end; false when there is no such call.
    pub fn hangup(&self, id: &str) -> bool {
        let mailbox = self.lock().get(id).map(|c| c.mailbox.clone());
        match mailbox {
            Some(mailbox) => mailbox
                .try_send(CallMsg::AdminHangup {
                    call: id.to_string(),
                })
                .is_ok(),
            None => false,
        }
    }

    /// Tells every live session that the server is stopping.
    pub fn shutdown_all(&self) {
        for live in self.lock().values() {
            let _ = live.mailbox.try_send(CallMsg::Shutdown);
        }
    }

    fn conferences_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveConference>> {
        self.conferences
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish_conference(&self, view: ConferenceView, mailbox: mpsc::Sender<CallMsg>) {
        self.conferences_lock()
            .insert(view.id.clone(), LiveConference { view, mailbox });
    }

    pub(crate) fn unregister_conference(&self, id: &str) {
        self.conferences_lock().remove(id);
    }

    /// Every live conference, oldest first.
    pub fn conferences(&self) -> Vec<ConferenceView> {
        let mut list: Vec<ConferenceView> = self
            .conferences_lock()
            .values()
            .map(|c| c.view.clone())
            .collect();
        list.sort_by_key(|c| c.created_at);
        list
    }

    /// One live conference.
    pub fn conference(&self, id: &str) -> Option<ConferenceView> {
        self.conferences_lock().get(id).map(|c| c.view.clone())
    }

    /// Asks a live conference to end; false when there is no such conference.
    pub fn hangup_conference(&self, id: &str) -> bool {
        let mailbox = self.conferences_lock().get(id).map(|c| c.mailbox.clone());
        match mailbox {
            Some(mailbox) => mailbox
                .try_send(CallMsg::ConferenceHangup {
                    conference: id.to_string(),
                })
                .is_ok(),
            None => false,
        }
    }
}
