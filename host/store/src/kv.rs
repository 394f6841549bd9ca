//! Apps' key-value state: small values by key, persisted per app.
//!
//! Invariants: keys are 1 to 256 bytes of UTF-8, values at most 64 KiB; an app's total
//! (the byte lengths of all its keys plus values) never exceeds the limit given to
//! [`Store::kv_set`], checked and written under one lock so concurrent writers cannot
//! both squeeze in. These methods are unscoped (by app id): the server calls them for the
//! app a call runs, and the API checks the app's account first.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::model::{APP_PREFIX, is_id};
use crate::{Store, StoreError, time};

/// Longest key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 64 * 1024;
/// Most entries one `kv_list` returns.
const MAX_LIST: usize = 1000;

/// One key as listed: its name and size, not its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// The value's size in bytes.
    pub size: u64,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if (1..=MAX_KV_KEY_BYTES).contains(&key.len()) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "key",
            format!("must be 1 to {MAX_KV_KEY_BYTES} bytes"),
        ))
    }
}

impl Store {
    /// One value; `None` when the key is not set.
    pub fn kv_get(&self, app_id: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM kv WHERE app_id = ?1 AND key = ?2",
                params![app_id, key],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Sets a value, replacing the old one. `QuotaExceeded` (quota `kv_max_bytes`) when
    /// the app's total would pass `max_total_bytes`; `Invalid` for a bad key or a value
    /// over 64 KiB; `NotFound` when the app does not exist.
    pub fn kv_set(
        &self,
        app_id: &str,
        key: &str,
        value: &[u8],
        max_total_bytes: u64,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        if value.len() > MAX_KV_VALUE_BYTES {
            return Err(StoreError::invalid(
                "value",
                format!("must be at most {MAX_KV_VALUE_BYTES} bytes"),
            ));
        }
        let mut conn = self.conn();
        let exists = is_id(APP_PREFIX, app_id)
            && conn
                .query_row("SELECT 1 FROM apps WHERE id = ?1", [app_id], |_| Ok(()))
                .optional()?
                .is_some();
        if !exists {
            return Err(StoreError::NotFound(format!("app {app_id}")));
        }
        let tx = conn.transaction()?;
        let others: i64 = tx.query_row(
            "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) FROM kv
             WHERE app_id = ?1 AND key <> ?2",
            params![app_id, key],
            |row| row.get(0),
        )?;
        let total = u64::try_from(others)
            .unwrap_or(0)
            .saturating_add((key.len() + value.len()) as u64);
        if total > max_total_bytes {
            return Err(StoreError::QuotaExceeded {
                quota: "kv_max_bytes",
                limit: max_total_bytes,
                message: format!(
                    "the app's key-value state would take {total} bytes, more than its \
                     kv_max_bytes = {max_total_bytes}"
                ),
            });
        }
        tx.execute(
            "INSERT INTO kv (app_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (app_id, key) DO UPDATE SET
                value = excluded.value, updated_at = excluded.updated_at",
            params![app_id, key, value, time::to_sql(&time::now())],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a key; false when it was not set.
    pub fn kv_delete(&self, app_id: &str, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let deleted = self.conn().execute(
            "DELETE FROM kv WHERE app_id = ?1 AND key = ?2",
            params![app_id, key],
        )?;
        Ok(deleted > 0)
    }

    /// Up to `limit` (at most 1000) keys starting with `prefix`, in key order, with sizes.
    pub fn kv_list(
        &self,
        app_id: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<KvEntry>, StoreError> {
        let limit = i64::try_from(limit.min(MAX_LIST)).unwrap_or(0);
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, length(value), updated_at FROM kv
             WHERE app_id = ?1 AND key >= ?2 AND key < ?2 || x'ff'
               AND substr(key, 1, length(?2)) = ?2
             ORDER BY key LIMIT ?3",
        )?;
        let entries = stmt
            .query_map(params![app_id, prefix, limit], |row| {
                Ok(KvEntry {
                    key: row.get(0)?,
                    size: row.get(1)?,
                    updated_at: time::get(row, 2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entries)
    }

    /// The bytes (keys plus values) an app's key-value state holds now.
    pub fn kv_usage(&self, app_id: &str) -> Result<u64, StoreError> {
        let total: i64 = self.conn().query_row(
            "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) FROM kv
             WHERE app_id = ?1",
            [app_id],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(total).unwrap_or(0))
    }
}
