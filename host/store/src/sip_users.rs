//! SIP users who REGISTER with the pbx, authenticated by digest (RFC 8760: MD5 and SHA-256).
//!
//! Invariants: the password is never stored; only HA1 = H(username:realm:password) for MD5
//! and for SHA-256 is, both computed with the realm stored next to them. HA1 is as good
//! as the password for digest, so it is never serialized and `Debug` redacts it. User
//! names are unique across the server (REGISTER names no account), so creating one that
//! another account holds is a `Conflict` that says only that it is taken; every other
//! method but [`Store::sip_user_by_username`] (the registrar's) is scoped by account.

use std::fmt;

use chrono::{DateTime, Utc};
use md5::Md5;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{SIP_USER_PREFIX, is_id, new_id, validate_display_name};
use crate::{Store, StoreError, time, validate_sip_username};

/// The digest realm the pbx uses unless configured otherwise.
pub const DEFAULT_REALM: &str = "pbx";
/// Shortest accepted SIP password, in characters.
pub const MIN_SIP_PASSWORD_CHARS: usize = 8;
/// Longest accepted SIP password, in characters.
pub const MAX_SIP_PASSWORD_CHARS: usize = 128;

const USER_COLUMNS: &str =
    "id, username, display_name, realm, ha1_md5, ha1_sha256, created_at, account_id";

/// A SIP user; the registrar checks digest responses against its HA1 values.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SipUser {
    /// `usr_` plus 16 hex digits.
    pub id: String,
    /// The account that owns it.
    pub account_id: String,
    /// Unique, `[A-Za-z0-9._-]{1,64}`; the user part it registers and is dialled as.
    pub username: String,
    /// Shown in From when the user calls, if set.
    pub display_name: Option<String>,
    /// The digest realm the HA1 values were computed with.
    pub realm: String,
    /// Lowercase hex MD5(username:realm:password); never serialized.
    #[serde(skip_serializing)]
    pub ha1_md5: String,
    /// Lowercase hex SHA-256(username:realm:password); never serialized.
    #[serde(skip_serializing)]
    pub ha1_sha256: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for SipUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipUser")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("realm", &self.realm)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// HA1 for MD5 and SHA-256 digest (RFC 7616 §3.4.2): H(username ":" realm ":" password),
/// lowercase hex, in that order.
pub fn digest_ha1(username: &str, realm: &str, password: &str) -> (String, String) {
    let a1 = format!("{username}:{realm}:{password}");
    (
        hex::encode(<Md5 as md5::Digest>::digest(a1.as_bytes())),
        hex::encode(Sha256::digest(a1.as_bytes())),
    )
}

/// Checks a SIP user's password: 8 to 128 characters, no control characters.
pub fn validate_sip_password(password: &str) -> Result<(), StoreError> {
    let count = password.chars().count();
    if (MIN_SIP_PASSWORD_CHARS..=MAX_SIP_PASSWORD_CHARS).contains(&count)
        && !password.chars().any(char::is_control)
    {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "password",
            format!(
                "must be {MIN_SIP_PASSWORD_CHARS} to {MAX_SIP_PASSWORD_CHARS} characters \
                 without control characters"
            ),
        ))
    }
}

fn validate_realm(realm: &str) -> Result<(), StoreError> {
    let ok = (1..=128).contains(&realm.len())
        && realm
            .bytes()
            .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "realm",
            "must be 1 to 128 printable ASCII characters without \" or \\",
        ))
    }
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<SipUser> {
    Ok(SipUser {
        id: row.get(0)?,
        username: row.get(1)?,
        display_name: row.get(2)?,
        realm: row.get(3)?,
        ha1_md5: row.get(4)?,
        ha1_sha256: row.get(5)?,
        created_at: time::get(row, 6)?,
        account_id: row.get(7)?,
    })
}

fn user_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("SIP user {id}"))
}

fn load_user(conn: &Connection, account: &str, id: &str) -> Result<Option<SipUser>, StoreError> {
    if !is_id(SIP_USER_PREFIX, id) {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM sip_users WHERE id = ?1 AND account_id = ?2"),
            [id, account],
            user_from_row,
        )
        .optional()?)
}

impl Store {
    /// Creates a SIP user of `account` with HA1 values for `realm`; `Invalid` names the
    /// bad field, `Conflict` a user name taken by any account.
    pub fn create_sip_user(
        &self,
        account: &str,
        username: &str,
        password: &str,
        display_name: Option<&str>,
        realm: &str,
    ) -> Result<SipUser, StoreError> {
        validate_sip_username(username)?;
        validate_sip_password(password)?;
        if let Some(name) = display_name {
            validate_display_name(name)?;
        }
        validate_realm(realm)?;
        let (ha1_md5, ha1_sha256) = digest_ha1(username, realm, password);
        let user = SipUser {
            id: new_id(SIP_USER_PREFIX),
            account_id: account.to_owned(),
            username: username.to_owned(),
            display_name: display_name.map(str::to_owned),
            realm: realm.to_owned(),
            ha1_md5,
            ha1_sha256,
            created_at: time::now(),
        };
        let conn = self.conn();
        let owner: Option<String> = conn
            .query_row(
                "SELECT account_id FROM sip_users WHERE username = ?1",
                [username],
                |row| row.get(0),
            )
            .optional()?;
        match owner {
            Some(owner) if owner == account => {
                return Err(StoreError::Conflict(format!(
                    "a SIP user named {username:?} already exists"
                )));
            }
            Some(_) => return Err(StoreError::Conflict("username is taken".into())),
            None => {}
        }
        conn.execute(
            &format!(
                "INSERT INTO sip_users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                user.id,
                user.username,
                user.display_name,
                user.realm,
                user.ha1_md5,
                user.ha1_sha256,
                time::to_sql(&user.created_at),
                user.account_id,
            ],
        )?;
        tracing::info!(user_id = %user.id, "SIP user created");
        Ok(user)
    }

    /// `account`'s SIP users, ordered by user name.
    pub fn list_sip_users(&self, account: &str) -> Result<Vec<SipUser>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM sip_users WHERE account_id = ?1 ORDER BY username"
        ))?;
        let users = stmt
            .query_map([account], user_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(users)
    }

    /// One of `account`'s SIP users by id; `None` when there is none (including a
    /// malformed id).
    pub fn sip_user(&self, account: &str, id: &str) -> Result<Option<SipUser>, StoreError> {
        load_user(&self.conn(), account, id)
    }

    /// One SIP user by user name (what REGISTER and the `user` endpoint name), whatever
    /// its account. Unscoped: the registrar knows no account; callers that act for one
    /// compare [`SipUser::account_id`].
    pub fn sip_user_by_username(&self, username: &str) -> Result<Option<SipUser>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM sip_users WHERE username = ?1"),
                [username],
                user_from_row,
            )
            .optional()?)
    }

    /// Replaces a user's password (and realm, which the HA1 values depend on).
    pub fn set_sip_user_password(
        &self,
        account: &str,
        id: &str,
        password: &str,
        realm: &str,
    ) -> Result<SipUser, StoreError> {
        validate_sip_password(password)?;
        validate_realm(realm)?;
        let conn = self.conn();
        let mut user = load_user(&conn, account, id)?.ok_or_else(|| user_not_found(id))?;
        let (ha1_md5, ha1_sha256) = digest_ha1(&user.username, realm, password);
        conn.execute(
            "UPDATE sip_users SET realm = ?2, ha1_md5 = ?3, ha1_sha256 = ?4 WHERE id = ?1",
            params![id, realm, ha1_md5, ha1_sha256],
        )?;
        user.realm = realm.to_owned();
        user.ha1_md5 = ha1_md5;
        user.ha1_sha256 = ha1_sha256;
        tracing::info!(user_id = id, "SIP user password changed");
        Ok(user)
    }

    /// Removes one of `account`'s SIP users; `NotFound` when there is none.
    pub fn delete_sip_user(&self, account: &str, id: &str) -> Result<SipUser, StoreError> {
        let conn = self.conn();
        let user = load_user(&conn, account, id)?.ok_or_else(|| user_not_found(id))?;
        conn.execute("DELETE FROM sip_users WHERE id = ?1", [id])?;
        tracing::info!(user_id = id, "SIP user deleted");
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_matches_rfc_examples() {
        // RFC 2617 §3.5: Mufasa:testrealm@host.com:Circle Of Life.
        let (md5, sha) = digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(md5, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(sha.len(), 64);
        // RFC 7616 §3.9.1: Mufasa:http-auth@example.org:Circle of Life.
        let (_, sha) = digest_ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            sha,
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }
}
