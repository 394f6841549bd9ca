//! Accounts (tenants), their quotas and usage, and the API keys that act for them.
//!
//! Invariants:
//! - The default account ([`crate::DEFAULT_ACCOUNT_ID`]) always exists (migration 3 made
//!   it) and cannot be deleted; every resource row names an existing account.
//! - An API key is `pbx_` plus 40 lowercase hex digits (160 random bits). Only its SHA-256
//!   is stored: a fast hash is right for a secret of 160 random bits, because nobody can
//!   enumerate that space, so a slow password hash would only cost time on every request.
//!   The key itself is returned once, by [`Store::create_api_key`], and never again.
//! - `last_used_at` is written at most once a minute per key, so authenticating a request
//!   is normally a single indexed read.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::blob::sha256_hex;
use crate::model::{is_id, new_id};
use crate::{DEFAULT_ACCOUNT_ID, Store, StoreError, time};

/// Prefix of account ids.
pub const ACCOUNT_PREFIX: &str = "acc_";
/// Prefix of API key ids (not of the keys themselves).
pub const API_KEY_ID_PREFIX: &str = "key_";
/// Prefix of every API key; the authenticator tells keys from the admin token by it.
pub const API_KEY_PREFIX: &str = "pbx_";
/// How many leading characters of a key are kept for display.
const DISPLAY_PREFIX_CHARS: usize = 12;
/// How often `last_used_at` is refreshed at most.
const TOUCH_INTERVAL_SECS: i64 = 60;

const ACCOUNT_COLUMNS: &str =
    "id, name, created_at, max_concurrent_calls, max_apps, max_storage_bytes";
const KEY_COLUMNS: &str = "id, account_id, name, prefix, created_at, last_used_at, revoked_at";

/// An account's limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Live calls at once (enforced by the server on inbound SIP and by `POST /v1/calls`).
    pub max_concurrent_calls: Option<u32>,
    /// Apps the account may have.
    pub max_apps: Option<u32>,
    /// Bytes of components, audio files and recordings together.
    pub max_storage_bytes: Option<u64>,
}

/// A change to an account's quotas: `None` keeps a quota, `Some(None)` lifts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotasPatch {
    /// See [`Quotas::max_concurrent_calls`].
    pub max_concurrent_calls: Option<Option<u32>>,
    /// See [`Quotas::max_apps`].
    pub max_apps: Option<Option<u32>>,
    /// See [`Quotas::max_storage_bytes`].
    pub max_storage_bytes: Option<Option<u64>>,
}

/// A tenant: everything else belongs to exactly one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `acc_` plus 16 hex digits.
    pub id: String,
    /// Unique, like an app name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its limits.
    pub quotas: Quotas,
}

/// What an account uses now, for quotas and `GET /v1/account`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// How many apps it has.
    pub apps: u64,
    /// Bytes of its components, audio files and recording files.
    pub storage_bytes: u64,
}

/// What is shown of an API key: never the key, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyMeta {
    /// `key_` plus 16 hex digits.
    pub id: String,
    /// The account it acts for.
    pub account_id: String,
    /// A label given at creation.
    pub name: String,
    /// The key's first 12 characters, so a user can tell keys apart.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

fn get_u32(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<u32>> {
    row.get(idx)
}

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let storage: Option<i64> = row.get(5)?;
    Ok(Account {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: time::get(row, 2)?,
        quotas: Quotas {
            max_concurrent_calls: get_u32(row, 3)?,
            max_apps: get_u32(row, 4)?,
            max_storage_bytes: storage.map(|n| u64::try_from(n).unwrap_or(0)),
        },
    })
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyMeta> {
    Ok(ApiKeyMeta {
        id: row.get(0)?,
        account_id: row.get(1)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        created_at: time::get(row, 4)?,
        last_used_at: time::get_opt(row, 5)?,
        revoked_at: time::get_opt(row, 6)?,
    })
}

fn account_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("account {id}"))
}

/// Checks an account name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
pub fn validate_account_name(name: &str) -> Result<(), StoreError> {
    crate::validate_app_name(name)
}

/// Checks an API key's label: 1 to 64 characters without control characters.
fn validate_key_name(name: &str) -> Result<(), StoreError> {
    let count = name.chars().count();
    if (1..=64).contains(&count) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "name",
            "must be 1 to 64 characters without control characters",
        ))
    }
}

fn storage_to_sql(bytes: Option<u64>) -> Result<Option<i64>, StoreError> {
    bytes
        .map(|b| {
            i64::try_from(b).map_err(|_| StoreError::invalid("max_storage_bytes", "is too large"))
        })
        .transpose()
}

/// Loads an account on a locked connection.
pub(crate) fn load_account(conn: &Connection, id: &str) -> Result<Option<Account>, StoreError> {
    if !is_id(ACCOUNT_PREFIX, id) {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
            [id],
            account_from_row,
        )
        .optional()?)
}

/// The quotas of `account` on a locked connection; `NotFound` when there is no such account.
pub(crate) fn quotas(conn: &Connection, account: &str) -> Result<Quotas, StoreError> {
    load_account(conn, account)?
        .map(|a| a.quotas)
        .ok_or_else(|| account_not_found(account))
}

/// Bytes `account` stores now (components, audio files, recording files).
pub(crate) fn storage_bytes(conn: &Connection, account: &str) -> Result<u64, StoreError> {
    let total: i64 = conn.query_row(
        "SELECT
            (SELECT COALESCE(SUM(v.size), 0) FROM versions v JOIN apps a ON a.id = v.app_id
              WHERE a.account_id = ?1)
          + (SELECT COALESCE(SUM(size), 0) FROM files WHERE account_id = ?1)
          + (SELECT COALESCE(SUM(f.size), 0) FROM recording_files f
              JOIN recordings r ON r.id = f.recording_id WHERE r.account_id = ?1)",
        [account],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(total).unwrap_or(0))
}

/// `QuotaExceeded` when storing `extra` more bytes would take `account` past its storage
/// quota; `NotFound` when the account does not exist.
pub(crate) fn check_storage(
    conn: &Connection,
    account: &str,
    extra: u64,
) -> Result<(), StoreError> {
    let Some(limit) = quotas(conn, account)?.max_storage_bytes else {
        return Ok(());
    };
    let used = storage_bytes(conn, account)?;
    if used.saturating_add(extra) > limit {
        return Err(StoreError::QuotaExceeded {
            quota: "max_storage_bytes",
            limit,
            message: format!(
                "storing {extra} more bytes would exceed the account's storage quota \
                 max_storage_bytes = {limit} ({used} bytes used)"
            ),
        });
    }
    Ok(())
}

impl Store {
    /// `QuotaExceeded` (quota `max_storage_bytes`) when storing `extra` more bytes would
    /// take `account` past its storage quota: a cheap check before an upload is validated.
    /// The write itself checks again inside its transaction.
    pub fn check_storage_quota(&self, account: &str, extra: u64) -> Result<(), StoreError> {
        check_storage(&self.conn(), account, extra)
    }

    /// Creates an account with a unique name; `Conflict` when the name is taken.
    pub fn create_account(&self, name: &str, quotas: Quotas) -> Result<Account, StoreError> {
        validate_account_name(name)?;
        let account = Account {
            id: new_id(ACCOUNT_PREFIX),
            name: name.to_owned(),
            created_at: time::now(),
            quotas,
        };
        let conn = self.conn();
        let taken = conn
            .query_row("SELECT 1 FROM accounts WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if taken {
            return Err(StoreError::Conflict(format!(
                "an account named {name:?} already exists"
            )));
        }
        conn.execute(
            &format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                account.id,
                account.name,
                time::to_sql(&account.created_at),
                quotas.max_concurrent_calls,
                quotas.max_apps,
                storage_to_sql(quotas.max_storage_bytes)?,
            ],
        )?;
        tracing::info!(account_id = %account.id, name = %account.name, "account created");
        Ok(account)
    }

    /// All accounts, oldest first (the default account first).
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id"
        ))?;
        let accounts = stmt
            .query_map([], account_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(accounts)
    }

    /// One account; `None` when there is none (including a malformed id).
    pub fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        load_account(&self.conn(), id)
    }

    /// Changes an account's quotas and returns the account as stored. Lowering a quota
    /// below current usage is allowed: it only refuses further growth.
    pub fn update_account_quotas(
        &self,
        id: &str,
        patch: QuotasPatch,
    ) -> Result<Account, StoreError> {
        let conn = self.conn();
        let mut account = load_account(&conn, id)?.ok_or_else(|| account_not_found(id))?;
        if let Some(v) = patch.max_concurrent_calls {
            account.quotas.max_concurrent_calls = v;
        }
        if let Some(v) = patch.max_apps {
            account.quotas.max_apps = v;
        }
        if let Some(v) = patch.max_storage_bytes {
            account.quotas.max_storage_bytes = v;
        }
        conn.execute(
            "UPDATE accounts SET max_concurrent_calls = ?2, max_apps = ?3, max_storage_bytes = ?4
             WHERE id = ?1",
            params![
                id,
                account.quotas.max_concurrent_calls,
                account.quotas.max_apps,
                storage_to_sql(account.quotas.max_storage_bytes)?,
            ],
        )?;
        tracing::info!(account_id = id, quotas = ?account.quotas, "account quotas changed");
        Ok(account)
    }

    /// Deletes an account and its API keys and call and conference history. Refuses
    /// (`Conflict`) the default account and an account that still owns apps, numbers,
    /// files, trunks, SIP users, recordings or anything else that references it (such as
    /// webhooks): those are deleted one by one first, so nothing disappears by accident.
    pub fn delete_account(&self, id: &str) -> Result<(), StoreError> {
        if id == DEFAULT_ACCOUNT_ID {
            return Err(StoreError::Conflict(
                "the default account cannot be deleted".into(),
            ));
        }
        let mut conn = self.conn();
        if load_account(&conn, id)?.is_none() {
            return Err(account_not_found(id));
        }
        for (table, what) in [
            ("apps", "apps"),
            ("numbers", "numbers"),
            ("files", "files"),
            ("trunks", "trunks"),
            ("sip_users", "SIP users"),
            ("recordings", "recordings"),
        ] {
            let owned: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE account_id = ?1"),
                [id],
                |row| row.get(0),
            )?;
            if owned > 0 {
                return Err(StoreError::Conflict(format!(
                    "account {id} still owns {owned} {what}; delete them first"
                )));
            }
        }
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM calls WHERE account_id = ?1", [id])?;
        tx.execute("DELETE FROM conferences WHERE account_id = ?1", [id])?;
        tx.execute("DELETE FROM api_keys WHERE account_id = ?1", [id])?;
        // Events hold numbers and caller ids: they go with the account.
        tx.execute("DELETE FROM events WHERE account_id = ?1", [id])?;
        match tx.execute("DELETE FROM accounts WHERE id = ?1", [id]) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::Conflict(format!(
                    "account {id} still owns resources; delete them first"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit()?;
        self.key_touches().retain(|_, (account, _)| account != id);
        tracing::info!(account_id = id, "account deleted");
        Ok(())
    }

    /// An account's quotas; `NotFound` when there is no such account. The server reads
    /// `max_concurrent_calls` here to refuse inbound calls beyond it.
    pub fn account_quotas(&self, account: &str) -> Result<Quotas, StoreError> {
        quotas(&self.conn(), account)
    }

    /// What an account uses now: its app count and stored bytes.
    pub fn account_usage(&self, account: &str) -> Result<Usage, StoreError> {
        let conn = self.conn();
        let apps: i64 = conn.query_row(
            "SELECT COUNT(*) FROM apps WHERE account_id = ?1",
            [account],
            |row| row.get(0),
        )?;
        Ok(Usage {
            apps: u64::try_from(apps).unwrap_or(0),
            storage_bytes: storage_bytes(&conn, account)?,
        })
    }

    /// Makes a new API key for `account` and returns what is shown of it plus the key
    /// itself, which the caller shows once: it is not stored and cannot be read again.
    pub fn create_api_key(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(ApiKeyMeta, String), StoreError> {
        validate_key_name(name)?;
        let secret: [u8; 20] = rand::random();
        let key = format!("{API_KEY_PREFIX}{}", hex::encode(secret));
        let meta = ApiKeyMeta {
            id: new_id(API_KEY_ID_PREFIX),
            account_id: account.to_owned(),
            name: name.to_owned(),
            prefix: key.chars().take(DISPLAY_PREFIX_CHARS).collect(),
            created_at: time::now(),
            last_used_at: None,
            revoked_at: None,
        };
        let conn = self.conn();
        if load_account(&conn, account)?.is_none() {
            return Err(account_not_found(account));
        }
        conn.execute(
            "INSERT INTO api_keys (id, account_id, name, prefix, sha256, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                meta.id,
                meta.account_id,
                meta.name,
                meta.prefix,
                sha256_hex(key.as_bytes()),
                time::to_sql(&meta.created_at)
            ],
        )?;
        tracing::info!(account_id = account, key_id = %meta.id, "API key created");
        Ok((meta, key))
    }

    /// An account's API keys, revoked ones included, oldest first; `NotFound` when there
    /// is no such account.
    pub fn api_keys(&self, account: &str) -> Result<Vec<ApiKeyMeta>, StoreError> {
        let conn = self.conn();
        if load_account(&conn, account)?.is_none() {
            return Err(account_not_found(account));
        }
        let mut stmt = conn.prepare(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = ?1 ORDER BY created_at, id"
        ))?;
        let keys = stmt
            .query_map([account], key_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(keys)
    }

    /// Revokes one of `account`'s keys at once (revoking twice keeps the first time);
    /// `NotFound` when the account has no such key.
    pub fn revoke_api_key(&self, account: &str, key_id: &str) -> Result<ApiKeyMeta, StoreError> {
        let not_found = || StoreError::NotFound(format!("API key {key_id}"));
        if !is_id(API_KEY_ID_PREFIX, key_id) {
            return Err(not_found());
        }
        let conn = self.conn();
        conn.execute(
            "UPDATE api_keys SET revoked_at = ?3
             WHERE id = ?1 AND account_id = ?2 AND revoked_at IS NULL",
            params![key_id, account, time::to_sql(&time::now())],
        )?;
        let meta = conn
            .query_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND account_id = ?2"),
                params![key_id, account],
                key_from_row,
            )
            .optional()?
            .ok_or_else(not_found)?;
        drop(conn);
        self.key_touches().remove(key_id);
        tracing::info!(account_id = account, key_id, "API key revoked");
        Ok(meta)
    }

    /// The account a presented API key acts for; `None` for an unknown or revoked key
    /// (or anything that is not shaped like a key). The lookup goes by the key's SHA-256
    /// through a unique index, so its time does not depend on how much of a key matches.
    pub fn account_for_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        if !key.starts_with(API_KEY_PREFIX) || key.len() > 128 {
            return Ok(None);
        }
        let hash = sha256_hex(key.as_bytes());
        let conn = self.conn();
        let found: Option<(String, String)> = conn
            .query_row(
                "SELECT id, account_id FROM api_keys WHERE sha256 = ?1 AND revoked_at IS NULL",
                [hash],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((key_id, account)) = found else {
            return Ok(None);
        };
        let now = time::now();
        let due = {
            let mut touches = self.key_touches();
            let due = touches
                .get(&key_id)
                .is_none_or(|(_, last)| now - *last >= Duration::seconds(TOUCH_INTERVAL_SECS));
            if due {
                touches.insert(key_id.clone(), (account.clone(), now));
            }
            due
        };
        if due {
            conn.execute(
                "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
                params![key_id, time::to_sql(&now)],
            )?;
        }
        Ok(Some(account))
    }

    /// When each key's `last_used_at` was last written, by key id (with its account).
    fn key_touches(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, DateTime<Utc>)>> {
        self.key_touches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
