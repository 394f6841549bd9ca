//! The call model: live calls, their actors, and the registry the admin API reads.
//!
//! Each call is one tokio task (`actor.rs`) that owns its app instance, RTP socket, player and
//! digit collector, so a slow or failing call never blocks another. The registry holds a copy
//! of each live call's record and its mailbox, and nothing else.

mod actor;
pub mod state;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use pbx_sip::{EndCause, IncomingCall};
use pbx_store::CallRecord;
use tokio::sync::mpsc;

use crate::apps::AppCache;
use crate::media_cache::MediaCache;
use crate::sip_shell::SipHandle;

/// Messages a call actor receives.
#[derive(Debug)]
pub enum CallMsg {
    /// The ACK for our 200 OK arrived.
    Confirmed,
    /// The caller cancelled before answer (the endpoint already sent 487).
    Cancelled,
    /// The SIP side of the call is over.
    Ended(EndCause),
    /// The SIP endpoint no longer knows the call.
    SipGone,
    /// A digit sent with SIP INFO.
    SipDtmf(String),
    /// The admin API asked the call to end.
    AdminHangup,
    /// The server is shutting down.
    Shutdown,
}

/// How deep a call's mailbox is; SIP events for one call are few, so a full mailbox means the
/// actor is stuck.
const MAILBOX_DEPTH: usize = 64;

struct LiveCall {
    record: CallRecord,
    mailbox: mpsc::Sender<CallMsg>,
}

/// Shared services and the registry of live calls.
pub struct Calls {
    live: Mutex<HashMap<String, LiveCall>>,
    pub(crate) store: Arc<pbx_store::Store>,
    pub(crate) apps: Arc<AppCache>,
    pub(crate) media: Arc<MediaCache>,
    /// The address our RTP sockets bind to and SDP advertises.
    pub(crate) media_ip: IpAddr,
}

impl Calls {
    /// Creates an empty registry over the server's services.
    pub fn new(
        store: Arc<pbx_store::Store>,
        apps: Arc<AppCache>,
        media: Arc<MediaCache>,
        media_ip: IpAddr,
    ) -> Arc<Self> {
        Arc::new(Calls {
            live: Mutex::new(HashMap::new()),
            store,
            apps,
            media,
            media_ip,
        })
    }

    /// Starts the actor for a new inbound call and returns its mailbox.
    pub fn spawn_inbound(
        self: &Arc<Self>,
        incoming: IncomingCall,
        sip: SipHandle,
    ) -> mpsc::Sender<CallMsg> {
        let (tx, rx) = mpsc::channel(MAILBOX_DEPTH);
        actor::spawn(self.clone(), incoming, sip, tx.clone(), rx);
        tx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveCall>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts and
        // removes), so a poisoned lock is still usable.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

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

    /// Number of live calls.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Asks a live call to end; false when there is no such call.
    pub fn hangup(&self, id: &str) -> bool {
        let mailbox = self.lock().get(id).map(|c| c.mailbox.clone());
        match mailbox {
            Some(mailbox) => mailbox.try_send(CallMsg::AdminHangup).is_ok(),
            None => false,
        }
    }

    /// Tells every live call that the server is stopping.
    pub fn shutdown_all(&self) {
        for live in self.lock().values() {
            let _ = live.mailbox.try_send(CallMsg::Shutdown);
        }
    }
}
