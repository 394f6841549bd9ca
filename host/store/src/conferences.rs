//! Conference history: one row per conference, written when it is created and again when
//! it finishes. Live participants are the server's business, never stored.
//!
//! Invariants: `upsert_conference` replaces the whole row (the server's record is the
//! truth); ids are `cnf_` plus 16 hex digits; a conference with `ended_at` is finished and
//! never reopened; reads are scoped by account (another account's conference is treated
//! exactly like a missing one).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::model::{CONFERENCE_PREFIX, is_id};
use crate::{Store, StoreError, time};

const CONFERENCE_COLUMNS: &str = "id, app_id, name, created_at, ended_at, account_id";

/// A conference as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceRecord {
    /// `cnf_` plus 16 hex digits (`new_id(CONFERENCE_PREFIX)`).
    pub id: String,
    /// The account it belongs to (its app's account).
    pub account_id: String,
    /// The app whose session created it.
    pub app_id: Option<String>,
    /// The name the app gave it.
    pub name: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its last participant left; `None` while it is live.
    pub ended_at: Option<DateTime<Utc>>,
}

fn conference_from_row(row: &Row<'_>) -> rusqlite::Result<ConferenceRecord> {
    Ok(ConferenceRecord {
        id: row.get(0)?,
        app_id: row.get(1)?,
        name: row.get(2)?,
        created_at: time::get(row, 3)?,
        ended_at: time::get_opt(row, 4)?,
        account_id: row.get(5)?,
    })
}

impl Store {
    /// Writes a conference's current record, inserting it or replacing the stored one.
    pub fn upsert_conference(&self, conference: &ConferenceRecord) -> Result<(), StoreError> {
        if !is_id(CONFERENCE_PREFIX, &conference.id) {
            return Err(StoreError::invalid(
                "id",
                "must be cnf_ plus 16 lowercase hex digits",
            ));
        }
        if conference.name.as_ref().is_some_and(|n| n.len() > 256) {
            return Err(StoreError::invalid("name", "must be at most 256 bytes"));
        }
        self.conn().execute(
            &format!(
                "INSERT INTO conferences ({CONFERENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET
                    app_id = excluded.app_id, name = excluded.name,
                    created_at = excluded.created_at, ended_at = excluded.ended_at,
                    account_id = excluded.account_id"
            ),
            params![
                conference.id,
                conference.app_id,
                conference.name,
                time::to_sql(&conference.created_at),
                time::opt_to_sql(conference.ended_at.as_ref()),
                conference.account_id,
            ],
        )?;
        Ok(())
    }

    /// Up to `limit` of `account`'s conferences, newest first.
    pub fn list_conferences(
        &self,
        account: &str,
        limit: usize,
    ) -> Result<Vec<ConferenceRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE account_id = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))?;
        let conferences = stmt
            .query_map(params![account, limit], conference_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(conferences)
    }

    /// One of `account`'s conferences by id; `None` when there is none (including a
    /// malformed id).
    pub fn conference(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Option<ConferenceRecord>, StoreError> {
        if !is_id(CONFERENCE_PREFIX, id) {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE id = ?1 AND account_id = ?2"
                ),
                [id, account],
                conference_from_row,
            )
            .optional()?)
    }
}
