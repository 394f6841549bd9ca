//! Recordings: a row per recording, a row per WAV file it produced, and the WAV files under
//! `recordings/<rec_id>-<idx>.wav`, written by the server's recorder in place.
//!
//! Invariants: file rows are only written by `finish_recording`, after the recorder closed
//! the files, and each row's size is the file's size on disk at that moment; a recording
//! row is only deleted when it is not `recording`, row first and files after (an orphan
//! file is harmless, a row naming a missing file is not); recording ids are checked for
//! shape before they reach a path. The API's reads and deletes are scoped by account
//! (another account's recording is treated exactly like a missing one); the recorder's
//! writes (`recording_path`, `finish_recording`, `fail_recording`) go by id alone.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::model::{RECORDING_PREFIX, is_id, new_id};
use crate::{RECORDINGS_DIR, RecordingStatus, RecordingTarget, Store, StoreError, time};

/// Most metadata entries on one recording.
pub const MAX_RECORDING_METADATA: usize = 32;

const RECORDING_COLUMNS: &str = "id, app_id, call_id, conference_id, target, per_participant, \
     stereo, metadata, status, started_at, ended_at, duration_ms, account_id";

/// What [`Store::start_recording`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    /// The id to use: the one the app's `start` import already returned (`rec_` + 16 hex);
    /// none makes a new one.
    pub id: Option<String>,
    /// The account it belongs to (its app's account).
    pub account_id: String,
    /// The app whose session started it.
    pub app_id: String,
    /// The leg recorded, or the leg whose bridge is recorded.
    pub call_id: Option<String>,
    /// The conference recorded.
    pub conference_id: Option<String>,
    /// What it captures.
    pub target: RecordingTarget,
    /// One file per participant instead of one mixed file.
    pub per_participant: bool,
    /// A stereo mixed file.
    pub stereo: bool,
    /// The app's metadata (name → value; at most 32, names 1 to 64 bytes, values to 1024).
    pub metadata: BTreeMap<String, String>,
}

/// One WAV file of a finished recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFile {
    /// 0, 1, ...; file 0 is the mixed file of a mixed recording.
    pub index: u32,
    /// `mixed`, or the call id of the participant a per-participant file holds.
    pub label: String,
    /// 1 (mono) or 2 (stereo).
    pub channels: u16,
    /// Size in bytes.
    pub size: u64,
}

/// A file the recorder finished writing at [`Store::recording_path`], for
/// [`Store::finish_recording`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    /// The index the path was asked for with.
    pub index: u32,
    /// `mixed`, or the participant's call id.
    pub label: String,
    /// 1 or 2.
    pub channels: u16,
}

/// A recording as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// `rec_` plus 16 hex digits.
    pub id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// The app whose session started it.
    pub app_id: String,
    /// The leg recorded (or whose bridge is recorded).
    pub call_id: Option<String>,
    /// The conference recorded.
    pub conference_id: Option<String>,
    /// What it captures.
    pub target: RecordingTarget,
    /// One file per participant.
    pub per_participant: bool,
    /// A stereo mixed file.
    pub stereo: bool,
    /// The app's metadata.
    pub metadata: BTreeMap<String, String>,
    /// Where it is in its life.
    pub status: RecordingStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished or failed.
    pub ended_at: Option<DateTime<Utc>>,
    /// How long it ran, once finished.
    pub duration_ms: Option<u64>,
    /// Its files, by index; empty unless `ready`.
    pub files: Vec<RecordingFile>,
}

/// Which recordings [`Store::list_recordings`] returns; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    /// Only recordings of this leg.
    pub call_id: Option<String>,
    /// Only recordings of this conference.
    pub conference_id: Option<String>,
    /// At most this many, newest first; `None` means 1000.
    pub limit: Option<usize>,
}

fn recording_from_row(row: &Row<'_>) -> rusqlite::Result<Recording> {
    let target: String = row.get(4)?;
    let status: String = row.get(8)?;
    let metadata: String = row.get(7)?;
    let conversion = |idx: usize, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e)
    };
    Ok(Recording {
        id: row.get(0)?,
        app_id: row.get(1)?,
        call_id: row.get(2)?,
        conference_id: row.get(3)?,
        target: target.parse().map_err(|e| conversion(4, Box::new(e)))?,
        per_participant: row.get(5)?,
        stereo: row.get(6)?,
        metadata: serde_json::from_str(&metadata).map_err(|e| conversion(7, Box::new(e)))?,
        status: status.parse().map_err(|e| conversion(8, Box::new(e)))?,
        started_at: time::get(row, 9)?,
        ended_at: time::get_opt(row, 10)?,
        duration_ms: row.get(11)?,
        account_id: row.get(12)?,
        files: Vec::new(),
    })
}

fn recording_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("recording {id}"))
}

fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), StoreError> {
    if metadata.len() > MAX_RECORDING_METADATA {
        return Err(StoreError::invalid(
            "metadata",
            format!("at most {MAX_RECORDING_METADATA} entries"),
        ));
    }
    for (name, value) in metadata {
        if !(1..=64).contains(&name.len()) || value.len() > 1024 {
            return Err(StoreError::invalid(
                "metadata",
                "names must be 1 to 64 bytes and values at most 1024 bytes",
            ));
        }
    }
    Ok(())
}

/// Loads a recording with its files on a locked connection; with `account`, only that
/// account's.
fn load_recording(
    conn: &Connection,
    account: Option<&str>,
    id: &str,
) -> Result<Option<Recording>, StoreError> {
    if !is_id(RECORDING_PREFIX, id) {
        return Ok(None);
    }
    let recording = conn
        .query_row(
            &format!(
                "SELECT {RECORDING_COLUMNS} FROM recordings
                 WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)"
            ),
            params![id, account],
            recording_from_row,
        )
        .optional()?;
    recording.map(|r| with_files(conn, r)).transpose()
}

fn with_files(conn: &Connection, mut recording: Recording) -> Result<Recording, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, label, channels, size FROM recording_files
         WHERE recording_id = ?1 ORDER BY idx",
    )?;
    recording.files = stmt
        .query_map([&recording.id], |row| {
            Ok(RecordingFile {
                index: row.get(0)?,
                label: row.get(1)?,
                channels: row.get(2)?,
                size: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(recording)
}

impl Store {
    /// Records that a recording started and returns it (`recording`, no files yet); the
    /// recorder then writes each file to [`Store::recording_path`].
    pub fn start_recording(&self, new: NewRecording) -> Result<Recording, StoreError> {
        validate_metadata(&new.metadata)?;
        if new.call_id.is_none() && new.conference_id.is_none() {
            return Err(StoreError::invalid(
                "target",
                "a recording needs a call id or a conference id",
            ));
        }
        let metadata = serde_json::to_string(&new.metadata)
            .map_err(|e| StoreError::invalid("metadata", e.to_string()))?;
        let id = match new.id {
            Some(id) if is_id(RECORDING_PREFIX, &id) => id,
            Some(_) => return Err(StoreError::invalid("id", "not a recording id")),
            None => new_id(RECORDING_PREFIX),
        };
        let recording = Recording {
            id,
            account_id: new.account_id,
            app_id: new.app_id,
            call_id: new.call_id,
            conference_id: new.conference_id,
            target: new.target,
            per_participant: new.per_participant,
            stereo: new.stereo,
            metadata: new.metadata,
            status: RecordingStatus::Recording,
            started_at: time::now(),
            ended_at: None,
            duration_ms: None,
            files: Vec::new(),
        };
        self.conn().execute(
            &format!(
                "INSERT INTO recordings ({RECORDING_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, NULL, ?11)"
            ),
            params![
                recording.id,
                recording.app_id,
                recording.call_id,
                recording.conference_id,
                recording.target.as_str(),
                recording.per_participant,
                recording.stereo,
                metadata,
                recording.status.as_str(),
                time::to_sql(&recording.started_at),
                recording.account_id,
            ],
        )?;
        tracing::info!(recording_id = %recording.id, target = %recording.target, "recording started");
        Ok(recording)
    }

    /// Where the recorder writes file `index` of recording `id`; `Invalid` for an id that
    /// is not a recording id (so no input reaches a path).
    pub fn recording_path(&self, id: &str, index: u32) -> Result<PathBuf, StoreError> {
        if !is_id(RECORDING_PREFIX, id) {
            return Err(StoreError::invalid(
                "id",
                "must be rec_ plus 16 lowercase hex digits",
            ));
        }
        Ok(self
            .dir
            .join(RECORDINGS_DIR)
            .join(format!("{id}-{index}.wav")))
    }

    /// Marks a recording `ready` with the files the recorder closed; each must exist at
    /// its [`Store::recording_path`]. `Conflict` when it is not `recording` any more.
    pub fn finish_recording(
        &self,
        id: &str,
        duration_ms: u64,
        files: Vec<RecordedFile>,
    ) -> Result<Recording, StoreError> {
        let mut sized = Vec::with_capacity(files.len());
        for file in files {
            let path = self.recording_path(id, file.index)?;
            let size = fs::metadata(&path)
                .map_err(|e| StoreError::io(&path, e))?
                .len();
            sized.push((file, path, size));
        }
        let mut conn = self.conn();
        let current = load_recording(&conn, None, id)?.ok_or_else(|| recording_not_found(id))?;
        if current.status != RecordingStatus::Recording {
            return Err(StoreError::Conflict(format!(
                "recording {id} is already {}",
                current.status
            )));
        }
        let tx = conn.transaction()?;
        for (file, path, size) in &sized {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            tx.execute(
                "INSERT INTO recording_files (recording_id, idx, label, channels, size, path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, file.index, file.label, file.channels, size, name],
            )?;
        }
        tx.execute(
            "UPDATE recordings SET status = 'ready', ended_at = ?2, duration_ms = ?3
             WHERE id = ?1",
            params![id, time::to_sql(&time::now()), duration_ms],
        )?;
        tx.commit()?;
        let recording = load_recording(&conn, None, id)?.ok_or_else(|| recording_not_found(id))?;
        tracing::info!(
            recording_id = id,
            duration_ms,
            files = recording.files.len(),
            "recording ready"
        );
        Ok(recording)
    }

    /// Marks a recording `failed` and removes whatever the recorder wrote; `Conflict`
    /// when it is not `recording` any more.
    pub fn fail_recording(&self, id: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        let current = load_recording(&conn, None, id)?.ok_or_else(|| recording_not_found(id))?;
        if current.status != RecordingStatus::Recording {
            return Err(StoreError::Conflict(format!(
                "recording {id} is already {}",
                current.status
            )));
        }
        conn.execute(
            "UPDATE recordings SET status = 'failed', ended_at = ?2 WHERE id = ?1",
            params![id, time::to_sql(&time::now())],
        )?;
        drop(conn);
        self.remove_recording_blobs(id);
        tracing::warn!(recording_id = id, "recording failed");
        Ok(())
    }

    /// One of `account`'s recordings with its files; `None` when there is none
    /// (including a malformed id).
    pub fn recording(&self, account: &str, id: &str) -> Result<Option<Recording>, StoreError> {
        load_recording(&self.conn(), Some(account), id)
    }

    /// `account`'s recordings matching `filter`, newest first, each with its files.
    pub fn list_recordings(
        &self,
        account: &str,
        filter: &RecordingFilter,
    ) -> Result<Vec<Recording>, StoreError> {
        let limit = i64::try_from(filter.limit.unwrap_or(1000)).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings
             WHERE account_id = ?4
               AND (?1 IS NULL OR call_id = ?1) AND (?2 IS NULL OR conference_id = ?2)
             ORDER BY started_at DESC, id DESC LIMIT ?3"
        ))?;
        let recordings = stmt
            .query_map(
                params![filter.call_id, filter.conference_id, limit, account],
                recording_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        recordings
            .into_iter()
            .map(|r| with_files(&conn, r))
            .collect()
    }

    /// The path of file `index` of one of `account`'s ready recordings and what is known
    /// about it; `None` when the recording or the file does not exist.
    pub fn recording_file(
        &self,
        account: &str,
        id: &str,
        index: u32,
    ) -> Result<Option<(RecordingFile, PathBuf)>, StoreError> {
        let Some(recording) = self.recording(account, id)? else {
            return Ok(None);
        };
        let Some(file) = recording.files.into_iter().find(|f| f.index == index) else {
            return Ok(None);
        };
        let path = self.recording_path(id, index)?;
        Ok(Some((file, path)))
    }

    /// Deletes one of `account`'s finished or failed recordings and its files; `Conflict`
    /// while it is still recording, `NotFound` when there is none.
    pub fn delete_recording(&self, account: &str, id: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        let current =
            load_recording(&conn, Some(account), id)?.ok_or_else(|| recording_not_found(id))?;
        if current.status == RecordingStatus::Recording {
            return Err(StoreError::Conflict(format!(
                "recording {id} is still recording"
            )));
        }
        conn.execute("DELETE FROM recordings WHERE id = ?1", [id])?;
        drop(conn);
        self.remove_recording_blobs(id);
        tracing::info!(recording_id = id, "recording deleted");
        Ok(())
    }

    /// Removes every file of recording `id` from disk; errors are logged, not fatal.
    fn remove_recording_blobs(&self, id: &str) {
        let prefix = format!("{id}-");
        let dir = self.dir.join(RECORDINGS_DIR);
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let path = entry.path();
                if let Err(e) = fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove recording file");
                }
            }
        }
    }

    /// Marks recordings left `recording` by an earlier run as failed (their files are
    /// removed); returns how many.
    pub(crate) fn fail_interrupted_recordings(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT id FROM recordings WHERE status = 'recording'")?;
            stmt.query_map([], |row| row.get(0))?
                .collect::<Result<Vec<_>, _>>()?
        };
        if ids.is_empty() {
            return Ok(0);
        }
        self.conn().execute(
            "UPDATE recordings SET status = 'failed', ended_at = ?1 WHERE status = 'recording'",
            [time::to_sql(&now)],
        )?;
        for id in &ids {
            self.remove_recording_blobs(id);
        }
        tracing::warn!(
            failed = ids.len(),
            "failed recordings interrupted by a restart"
        );
        Ok(ids.len())
    }
}
