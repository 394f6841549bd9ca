//! Call history writes, off the call sessions: a session hands each changed [`CallRecord`] to
//! the [`HistoryWriter`], which never blocks; one task stores what has queued up in a single
//! SQLite transaction on a blocking thread, so no session waits for the disk.
//!
//! Invariants: [`HistoryWriter::write`] never blocks and never fails (a record written after
//! [`HistoryWriter::close`] is dropped and logged at debug); records are stored in the order
//! they were written, and within one batch only the last record of a call is kept (a record
//! is the call's whole state, so the last one is the truth); a failed batch is logged and the
//! next batch goes on; `close` makes the task store everything queued before it, then end.

use std::collections::HashMap;
use std::sync::Arc;

use pbx_store::{CallRecord, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Most records stored in one transaction.
const MAX_BATCH: usize = 512;

enum Msg {
    Record(Box<CallRecord>),
    Close,
}

/// Where sessions write call records; cheap to clone.
#[derive(Clone)]
pub struct HistoryWriter {
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for HistoryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryWriter").finish_non_exhaustive()
    }
}

impl HistoryWriter {
    /// Starts the writer task over `store`; await the handle after [`HistoryWriter::close`].
    pub fn spawn(store: Arc<Store>) -> (HistoryWriter, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (HistoryWriter { tx }, tokio::spawn(run(store, rx)))
    }

    /// Queues the call's current record for storing.
    pub fn write(&self, record: &CallRecord) {
        if self.tx.send(Msg::Record(Box::new(record.clone()))).is_err() {
            debug!(call = %record.id, "history writer closed; record not stored");
        }
    }

    /// Stores what is queued, then stops the task.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
    }
}

async fn run(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut batch: Vec<CallRecord> = Vec::new();
    let mut closing = false;
    while !closing {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Record(record) => batch.push(*record),
                Msg::Close => {
                    closing = true;
                    break;
                }
            }
            next = if batch.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if batch.is_empty() {
            continue;
        }
        let records = last_per_call(std::mem::take(&mut batch));
        let store = store.clone();
        let stored = tokio::task::spawn_blocking(move || store.upsert_calls(&records)).await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(%err, "cannot write call history"),
            Err(err) => warn!(%err, "call history writer failed"),
        }
    }
}

/// The batch with only the last record of each call, in the order of those last records.
fn last_per_call(batch: Vec<CallRecord>) -> Vec<CallRecord> {
    let mut last: HashMap<String, usize> = HashMap::with_capacity(batch.len());
    for (i, record) in batch.iter().enumerate() {
        last.insert(record.id.clone(), i);
    }
    batch
        .into_iter()
        .enumerate()
        .filter(|(i, record)| last.get(&record.id) == Some(i))
        .map(|(_, record)| record)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use chrono::Utc;
    use pbx_store::{CallStatus, Direction};

    fn record(id: &str, status: CallStatus) -> CallRecord {
        CallRecord {
            id: id.into(),
            app_id: None,
            app_version: None,
            direction: Direction::Inbound,
            from: "alice".into(),
            to: "1000".into(),
            status,
            hangup_by: None,
            hangup_reason: None,
            tm_create: Utc::now(),
            tm_ringing: None,
            tm_progressing: None,
            tm_hangup: None,
            sip_call_id: None,
            master_call_id: None,
            account_id: pbx_store::DEFAULT_ACCOUNT_ID.into(),
        }
    }

    #[test]
    fn a_batch_keeps_the_last_record_of_each_call() {
        let kept = last_per_call(vec![
            record("a", CallStatus::Ringing),
            record("b", CallStatus::Ringing),
            record("a", CallStatus::Hangup),
        ]);
        let ids: Vec<_> = kept.iter().map(|r| (r.id.as_str(), r.status)).collect();
        assert_eq!(
            ids,
            vec![("b", CallStatus::Ringing), ("a", CallStatus::Hangup)]
        );
    }

    #[tokio::test]
    async fn close_stores_everything_written_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let (writer, task) = HistoryWriter::spawn(store.clone());
        for i in 0..2000 {
            writer.write(&record(&format!("c{i}"), CallStatus::Ringing));
            writer.write(&record(&format!("c{i}"), CallStatus::Hangup));
        }
        writer.close();
        task.await.unwrap();
        writer.write(&record("late", CallStatus::Ringing));
        let account = pbx_store::DEFAULT_ACCOUNT_ID;
        for i in [0, 999, 1999] {
            let stored = store.call(account, &format!("c{i}")).unwrap().unwrap();
            assert_eq!(stored.status, CallStatus::Hangup);
        }
        assert!(store.call(account, "late").unwrap().is_none());
    }
}
