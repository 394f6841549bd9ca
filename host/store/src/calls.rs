//! Call history: one row per call, written when the call is created and again as it
//! changes state and ends.
//!
//! Invariants: `upsert_call` replaces the whole row (the server's record is the truth);
//! history lists only ended calls (`status = hangup`), newest first by
//! `(COALESCE(tm_hangup, tm_create), tm_create, id)`, and pages with a cursor that is the
//! id of the last call of the previous page. Reads are scoped by account: another
//! account's call is treated exactly like a missing one.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{CallRecord, CallStatus, Direction, HangupBy, HangupReason, Store, StoreError, time};

const CALL_COLUMNS: &str = "id, app_id, app_version, direction, from_party, to_party, status, \
     hangup_by, hangup_reason, tm_create, tm_ringing, tm_progressing, tm_hangup, sip_call_id, \
     master_call_id, account_id";

/// The newest-first sort key of finished calls; must match the `calls_history` index.
const HISTORY_ORDER: &str = "COALESCE(tm_hangup, tm_create) DESC, tm_create DESC, id DESC";

/// Parses an enum column, reporting a bad value as a conversion failure of column `idx`.
fn get_enum<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(idx)?;
    text.parse().map_err(|e: T::Err| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn get_opt_enum<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<String> = row.get(idx)?;
    text.map(|t| {
        t.parse().map_err(|e: T::Err| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

fn call_from_row(row: &Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        id: row.get(0)?,
        app_id: row.get(1)?,
        app_version: row.get(2)?,
        direction: get_enum::<Direction>(row, 3)?,
        from: row.get(4)?,
        to: row.get(5)?,
        status: get_enum::<CallStatus>(row, 6)?,
        hangup_by: get_opt_enum::<HangupBy>(row, 7)?,
        hangup_reason: get_opt_enum::<HangupReason>(row, 8)?,
        tm_create: time::get(row, 9)?,
        tm_ringing: time::get_opt(row, 10)?,
        tm_progressing: time::get_opt(row, 11)?,
        tm_hangup: time::get_opt(row, 12)?,
        sip_call_id: row.get(13)?,
        master_call_id: row.get(14)?,
        account_id: row.get(15)?,
    })
}

/// Inserts `call` or replaces the stored record of the same id.
fn upsert(conn: &Connection, call: &CallRecord) -> Result<(), StoreError> {
    if call.id.is_empty() || call.id.len() > 128 {
        return Err(StoreError::invalid("id", "must be 1 to 128 bytes"));
    }
    conn.execute(
        &format!(
            "INSERT INTO calls ({CALL_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (id) DO UPDATE SET
                app_id = excluded.app_id, app_version = excluded.app_version,
                direction = excluded.direction, from_party = excluded.from_party,
                to_party = excluded.to_party, status = excluded.status,
                hangup_by = excluded.hangup_by, hangup_reason = excluded.hangup_reason,
                tm_create = excluded.tm_create, tm_ringing = excluded.tm_ringing,
                tm_progressing = excluded.tm_progressing, tm_hangup = excluded.tm_hangup,
                sip_call_id = excluded.sip_call_id,
                master_call_id = excluded.master_call_id,
                account_id = excluded.account_id"
        ),
        params![
            call.id,
            call.app_id,
            call.app_version,
            call.direction.as_str(),
            call.from,
            call.to,
            call.status.as_str(),
            call.hangup_by.map(HangupBy::as_str),
            call.hangup_reason.map(HangupReason::as_str),
            time::to_sql(&call.tm_create),
            time::opt_to_sql(call.tm_ringing.as_ref()),
            time::opt_to_sql(call.tm_progressing.as_ref()),
            time::opt_to_sql(call.tm_hangup.as_ref()),
            call.sip_call_id,
            call.master_call_id,
            call.account_id,
        ],
    )?;
    Ok(())
}

impl Store {
    /// Writes a call's current record (for the account it names), inserting it or
    /// replacing the stored one.
    pub fn upsert_call(&self, call: &CallRecord) -> Result<(), StoreError> {
        upsert(&self.conn(), call)
    }

    /// Writes many call records in one transaction, in order (a later record of the same
    /// call replaces an earlier one); a record that is refused refuses the whole batch.
    pub fn upsert_calls(&self, calls: &[CallRecord]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for call in calls {
            upsert(&tx, call)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One of `account`'s stored calls by id, finished or not.
    pub fn call(&self, account: &str, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1 AND account_id = ?2"),
                [call_id, account],
                call_from_row,
            )
            .optional()?)
    }

    /// Up to `limit` of `account`'s finished calls, newest first; with `before` (the id of
    /// the last call of the previous page), the page after it. An unknown or unfinished
    /// `before` is `Invalid` (field `before`).
    pub fn history(
        &self,
        account: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let calls = match before {
            None => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {CALL_COLUMNS} FROM calls WHERE account_id = ?1 AND status = 'hangup'
                     ORDER BY {HISTORY_ORDER} LIMIT ?2"
                ))?;
                stmt.query_map(params![account, limit], call_from_row)?
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(cursor) => {
                let key: Option<(String, String)> = conn
                    .query_row(
                        "SELECT COALESCE(tm_hangup, tm_create), tm_create FROM calls
                         WHERE id = ?1 AND account_id = ?2 AND status = 'hangup'",
                        [cursor, account],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()?;
                let (ended, created) = key.ok_or_else(|| {
                    StoreError::invalid("before", "must be the id of a finished call")
                })?;
                let mut stmt = conn.prepare(&format!(
                    "SELECT {CALL_COLUMNS} FROM calls WHERE account_id = ?5 AND status = 'hangup'
                       AND (COALESCE(tm_hangup, tm_create), tm_create, id) < (?1, ?2, ?3)
                     ORDER BY {HISTORY_ORDER} LIMIT ?4"
                ))?;
                stmt.query_map(
                    params![ended, created, cursor, limit, account],
                    call_from_row,
                )?
                .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(calls)
    }

    /// The ids of `account`'s legs that `master` dialled (its chained calls), oldest first.
    pub fn chained_call_ids(&self, account: &str, master: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id FROM calls WHERE master_call_id = ?1 AND account_id = ?2
             ORDER BY tm_create, id",
        )?;
        let ids = stmt
            .query_map([master, account], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Marks every call not yet ended as ended (by us, `failed`) at `now`; the server calls
    /// this at start-up, when no call from an earlier run can still be live. It also ends
    /// open conferences and fails open recordings of that run. Returns how many calls it
    /// closed.
    pub fn close_interrupted_calls(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let closed = self.conn().execute(
            "UPDATE calls SET status = 'hangup', hangup_by = 'local', hangup_reason = 'failed',
                tm_hangup = ?1
             WHERE status <> 'hangup'",
            [time::to_sql(&now)],
        )?;
        let conferences = self.conn().execute(
            "UPDATE conferences SET ended_at = ?1 WHERE ended_at IS NULL",
            [time::to_sql(&now)],
        )?;
        if conferences > 0 {
            tracing::warn!(conferences, "ended conferences interrupted by a restart");
        }
        self.fail_interrupted_recordings(now)?;
        if closed > 0 {
            tracing::warn!(closed, "closed calls interrupted by a restart");
        }
        Ok(closed)
    }
}
