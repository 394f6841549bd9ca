//! pbx-store: the pbx's persistent state (accounts and API keys, apps, versions, app settings,
//! configuration and key-value state, numbers, audio files, call and
//! conference history, trunks, SIP users, recordings) in one SQLite database plus blob
//! files, all under one data directory.
//!
//! Layout of the data directory: `pbx.sqlite3` (WAL mode), `components/<app_id>-v<n>.wasm`,
//! `artifacts/<app_id>-v<n>.bin` (compiled code cache), `files/<file_id>`,
//! `recordings/<rec_id>-<idx>.wav`.
//!
//! Invariants:
//! - Only this crate knows SQL. Every public method is short and synchronous; callers on an
//!   async runtime should call the blob-moving ones from a blocking thread.
//! - A blob is renamed into place before the row that names it is committed, so a row never
//!   names a missing or half-written file (an orphan file after a crash is harmless and is
//!   overwritten or ignored).
//! - Ids are checked for shape before they are used, so no input reaches a file path.
//! - Versions are immutable once stored; the active version always names a stored version.
//! - Every resource row belongs to one account; a method that takes `account` treats
//!   another account's row exactly like a missing one. The few unscoped methods are the
//!   server's (routing, the registrar, loading code, playback, the recorder, key-value
//!   state and settings of a running app) and say so in their docs.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, reason = "tests unwrap known-good values")
)]

mod accounts;
mod apps;
mod blob;
mod calls;
mod conferences;
mod error;
mod events;
mod files;
mod kv;
mod model;
mod recordings;
mod schema;
mod settings;
mod sip_users;
mod time;
mod trunks;
mod webhooks;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

pub use accounts::{
    ACCOUNT_PREFIX, API_KEY_ID_PREFIX, API_KEY_PREFIX, Account, ApiKeyMeta, Quotas, QuotasPatch,
    Usage, validate_account_name,
};
pub use conferences::ConferenceRecord;
pub use error::StoreError;
pub use events::{EventFilter, EventRecord, EventType, MAX_EVENTS_PAGE, NewEvent};
pub use kv::{KvEntry, MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES};
pub use model::{
    APP_PREFIX, App, CONFERENCE_PREFIX, CallRecord, CallStatus, Direction, FILE_PREFIX, FileMeta,
    HangupBy, HangupReason, NumberRoute, RECORDING_PREFIX, RecordingStatus, RecordingTarget, Route,
    SIP_USER_PREFIX, TRUNK_PREFIX, Version, is_id, new_id, validate_app_name, validate_number,
    validate_phone_number, validate_sip_uri, validate_sip_username,
};
pub use recordings::{
    MAX_RECORDING_METADATA, NewRecording, RecordedFile, Recording, RecordingFile, RecordingFilter,
};
pub use settings::{
    AppSettings, AppSettingsPatch, ConfigEntry, ConfigValue, DEFAULT_HTTP_MAX_RESPONSE_BYTES,
    DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_KV_MAX_BYTES, HttpAllowEntry, HttpAllowHost,
    MAX_APP_EVENT_DEADLINE_MS, MAX_APP_MEMORY_BYTES,
};
pub use sip_users::{
    DEFAULT_REALM, MAX_SIP_PASSWORD_CHARS, MIN_SIP_PASSWORD_CHARS, SipUser, digest_ha1,
    validate_sip_password,
};
pub use trunks::{DEFAULT_TRUNK_PRIORITY, MAX_TRUNK_PRIORITY, NewTrunk, Trunk, TrunkPatch};
pub use webhooks::{
    ALL_EVENT_TYPES, DELIVERY_PREFIX, Delivery, DeliveryFilter, DeliveryStatus, DeliveryUpdate,
    MAX_DELIVERIES_PAGE, MAX_WEBHOOK_URL, MAX_WEBHOOKS_PER_ACCOUNT, NewWebhook, WEBHOOK_PREFIX,
    WEBHOOK_SECRET_PREFIX, Webhook, WebhookPatch, normalise_event_types, validate_webhook_url,
};

/// The account that owns everything created by the admin token without `Pbx-Account`,
/// and every row that existed before accounts did (migration 3).
pub const DEFAULT_ACCOUNT_ID: &str = "acc_0000000000000000";

/// Name of the database file inside the data directory.
const DB_FILE: &str = "pbx.sqlite3";
/// Directory of uploaded components.
const COMPONENTS_DIR: &str = "components";
/// Directory of compiled artifacts.
const ARTIFACTS_DIR: &str = "artifacts";
/// Directory of uploaded audio files.
const FILES_DIR: &str = "files";
/// Directory of recording WAV files.
const RECORDINGS_DIR: &str = "recordings";
/// How long a statement waits for a lock held by another connection (e.g. a backup tool).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The handle to the pbx's persistent state; share it as `Arc<Store>` across threads.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    dir: PathBuf,
    /// When each API key's `last_used_at` was last written (key id → account, time);
    /// lock it after `conn`, never before.
    key_touches: Mutex<HashMap<String, (String, chrono::DateTime<chrono::Utc>)>>,
}

impl Store {
    /// Opens (creating if needed) the data directory and its database, and migrates it.
    ///
    /// Fails with [`StoreError::DataDir`] when the path is not a directory or not writable,
    /// and with [`StoreError::SchemaTooNew`] for a database written by a newer build.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let dir = data_dir.to_path_buf();
        let data_dir_error = |reason: String| StoreError::DataDir {
            path: dir.clone(),
            reason,
        };
        match fs::metadata(&dir) {
            Ok(meta) if !meta.is_dir() => {
                return Err(data_dir_error("exists but is not a directory".into()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)
                    .map_err(|e| data_dir_error(format!("cannot create it: {e}")))?;
            }
            Err(e) => return Err(data_dir_error(format!("cannot access it: {e}"))),
        }
        // A probe write gives a clear error instead of SQLite's "unable to open database file".
        drop(
            blob::TempBlob::write(&dir, b"")
                .map_err(|e| data_dir_error(format!("not writable: {e}")))?,
        );
        for sub in [COMPONENTS_DIR, ARTIFACTS_DIR, FILES_DIR, RECORDINGS_DIR] {
            let path = dir.join(sub);
            if !path.is_dir() {
                fs::create_dir_all(&path)
                    .map_err(|e| data_dir_error(format!("cannot create {sub}/: {e}")))?;
            }
            blob::sweep_temps(&path);
        }

        let mut conn = Connection::open(dir.join(DB_FILE))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite refused WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        tracing::info!(dir = %dir.display(), schema = schema::latest(), "store opened");
        Ok(Store {
            conn: Mutex::new(conn),
            dir,
            key_touches: Mutex::new(HashMap::new()),
        })
    }

    /// The data directory this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The connection; a panic while it was held cannot leave it inconsistent (SQLite
    /// rolls back an open transaction when its guard drops), so poisoning is ignored.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn component_path(&self, app_id: &str, version: u32) -> PathBuf {
        self.dir
            .join(COMPONENTS_DIR)
            .join(format!("{app_id}-v{version}.wasm"))
    }

    fn artifact_path(&self, app_id: &str, version: u32) -> PathBuf {
        self.dir
            .join(ARTIFACTS_DIR)
            .join(format!("{app_id}-v{version}.bin"))
    }

    fn file_path(&self, file_id: &str) -> PathBuf {
        self.dir.join(FILES_DIR).join(file_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.data_dir(), dir);
        assert!(dir.join(DB_FILE).is_file());
        assert!(dir.join(COMPONENTS_DIR).is_dir());
        assert!(dir.join(FILES_DIR).is_dir());
        assert!(dir.join(RECORDINGS_DIR).is_dir());
        drop(store);
        Store::open(&dir).unwrap();
    }

    #[test]
    fn open_rejects_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let err = Store::open(&file).unwrap_err();
        assert!(matches!(err, StoreError::DataDir { .. }), "{err}");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn open_reports_an_uncreatable_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let err = Store::open(&file.join("data")).unwrap_err();
        assert!(matches!(err, StoreError::DataDir { .. }), "{err}");
    }

    #[test]
    fn open_sweeps_stale_temps() {
        let tmp = tempfile::tempdir().unwrap();
        Store::open(tmp.path()).unwrap();
        let stale = tmp.path().join(COMPONENTS_DIR).join(".tmp-0000");
        fs::write(&stale, b"half").unwrap();
        Store::open(tmp.path()).unwrap();
        assert!(!stale.exists());
    }

    #[test]
    fn open_refuses_newer_schema() {
        let tmp = tempfile::tempdir().unwrap();
        drop(Store::open(tmp.path()).unwrap());
        let conn = Connection::open(tmp.path().join(DB_FILE)).unwrap();
        conn.execute("UPDATE schema_version SET version = 999", [])
            .unwrap();
        drop(conn);
        let err = Store::open(tmp.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
            "{err}"
        );
    }
}
