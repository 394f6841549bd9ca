//! SIP trunks: the gateways phone numbers are dialled through, tried in priority order.
//!
//! Invariants: every stored trunk passed the checks below (name like an app name, a SIP
//! URI proxy with a host, priority 0..=1000); the password is kept only to answer the
//! trunk's digest challenges: it is never serialized and `Debug` redacts it. Trunks
//! belong to an account: names are unique per account, every method is scoped by
//! account, and another account's trunk is treated exactly like a missing one.

use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::model::{TRUNK_PREFIX, is_id, new_id};
use crate::{Store, StoreError, time, validate_app_name, validate_sip_uri};

/// Highest trunk priority; lower numbers are tried first.
pub const MAX_TRUNK_PRIORITY: u32 = 1000;
/// Priority of a trunk created without one.
pub const DEFAULT_TRUNK_PRIORITY: u32 = 100;

const TRUNK_COLUMNS: &str = "id, name, proxy, username, password, caller_id, number_prefix, \
     strip_plus, priority, enabled, created_at, account_id";

/// A configured SIP trunk; the dialler reads these through [`Store::trunks_for_dial`].
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Trunk {
    /// `trk_` plus 16 hex digits.
    pub id: String,
    /// The account that owns it.
    pub account_id: String,
    /// Unique in its account, like an app name; what an app's `phone-number.trunk` names.
    pub name: String,
    /// The outbound proxy or gateway, e.g. `sip:gw.example.com:5060;transport=tcp`.
    pub proxy: String,
    /// The digest user name for the trunk's challenges.
    pub username: Option<String>,
    /// The digest password; write-only for the API, never serialized.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// A fixed user part for From; `None` keeps the caller's.
    pub caller_id: Option<String>,
    /// Prepended to every dialled number (after `strip_plus`).
    pub number_prefix: Option<String>,
    /// Drop a leading `+` from dialled numbers.
    pub strip_plus: bool,
    /// Failover order: lower is tried first.
    pub priority: u32,
    /// A disabled trunk is never dialled.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for Trunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trunk")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("proxy", &self.proxy)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("caller_id", &self.caller_id)
            .field("number_prefix", &self.number_prefix)
            .field("strip_plus", &self.strip_plus)
            .field("priority", &self.priority)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl Trunk {
    /// The number as this trunk sends it: `+` stripped if asked, then the prefix prepended.
    pub fn dial_string(&self, number: &str) -> String {
        let number = if self.strip_plus {
            number.strip_prefix('+').unwrap_or(number)
        } else {
            number
        };
        format!("{}{number}", self.number_prefix.as_deref().unwrap_or(""))
    }
}

/// What [`Store::create_trunk`] needs; start from [`NewTrunk::new`].
#[derive(Clone, PartialEq, Eq)]
pub struct NewTrunk {
    /// See [`Trunk::name`].
    pub name: String,
    /// See [`Trunk::proxy`].
    pub proxy: String,
    /// See [`Trunk::username`].
    pub username: Option<String>,
    /// See [`Trunk::password`].
    pub password: Option<String>,
    /// See [`Trunk::caller_id`].
    pub caller_id: Option<String>,
    /// See [`Trunk::number_prefix`].
    pub number_prefix: Option<String>,
    /// See [`Trunk::strip_plus`].
    pub strip_plus: bool,
    /// See [`Trunk::priority`].
    pub priority: u32,
    /// See [`Trunk::enabled`].
    pub enabled: bool,
}

impl fmt::Debug for NewTrunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTrunk")
            .field("name", &self.name)
            .field("proxy", &self.proxy)
            .field("priority", &self.priority)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl NewTrunk {
    /// An enabled trunk with the default priority and no credentials or number rules.
    pub fn new(name: impl Into<String>, proxy: impl Into<String>) -> Self {
        NewTrunk {
            name: name.into(),
            proxy: proxy.into(),
            username: None,
            password: None,
            caller_id: None,
            number_prefix: None,
            strip_plus: false,
            priority: DEFAULT_TRUNK_PRIORITY,
            enabled: true,
        }
    }
}

/// A partial update for [`Store::update_trunk`]: `None` keeps a field; for the optional
/// fields `Some(None)` clears it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrunkPatch {
    /// New name.
    pub name: Option<String>,
    /// New proxy.
    pub proxy: Option<String>,
    /// New or cleared user name.
    pub username: Option<Option<String>>,
    /// New or cleared password.
    pub password: Option<Option<String>>,
    /// New or cleared caller id.
    pub caller_id: Option<Option<String>>,
    /// New or cleared number prefix.
    pub number_prefix: Option<Option<String>>,
    /// New strip-plus rule.
    pub strip_plus: Option<bool>,
    /// New priority.
    pub priority: Option<u32>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

impl fmt::Debug for TrunkPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkPatch")
            .field("name", &self.name)
            .field("proxy", &self.proxy)
            .field("password_changed", &self.password.is_some())
            .finish_non_exhaustive()
    }
}

fn trunk_from_row(row: &Row<'_>) -> rusqlite::Result<Trunk> {
    Ok(Trunk {
        id: row.get(0)?,
        name: row.get(1)?,
        proxy: row.get(2)?,
        username: row.get(3)?,
        password: row.get(4)?,
        caller_id: row.get(5)?,
        number_prefix: row.get(6)?,
        strip_plus: row.get(7)?,
        priority: row.get(8)?,
        enabled: row.get(9)?,
        created_at: time::get(row, 10)?,
        account_id: row.get(11)?,
    })
}

/// Checks every field of a trunk about to be written.
fn validate(t: &Trunk) -> Result<(), StoreError> {
    validate_app_name(&t.name)?;
    validate_sip_uri("proxy", &t.proxy)?;
    if let Some(username) = &t.username {
        let ok = (1..=128).contains(&username.len())
            && username
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !ok {
            return Err(StoreError::invalid(
                "username",
                "must be 1 to 128 printable ASCII characters without spaces, \" or \\",
            ));
        }
    }
    if let Some(password) = &t.password {
        let count = password.chars().count();
        if !(1..=128).contains(&count) || password.chars().any(char::is_control) {
            return Err(StoreError::invalid(
                "password",
                "must be 1 to 128 characters without control characters",
            ));
        }
    }
    if let Some(caller_id) = &t.caller_id {
        let ok = (1..=64).contains(&caller_id.len())
            && caller_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'));
        if !ok {
            return Err(StoreError::invalid(
                "caller_id",
                "must be 1 to 64 characters of A-Z a-z 0-9 + . _ -",
            ));
        }
    }
    if let Some(prefix) = &t.number_prefix {
        let ok = (1..=16).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'));
        if !ok {
            return Err(StoreError::invalid(
                "number_prefix",
                "must be 1 to 16 characters of 0-9 + * #",
            ));
        }
    }
    if t.priority > MAX_TRUNK_PRIORITY {
        return Err(StoreError::invalid(
            "priority",
            format!("must be 0 to {MAX_TRUNK_PRIORITY}"),
        ));
    }
    Ok(())
}

fn trunk_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("trunk {id}"))
}

fn load_trunk(conn: &Connection, account: &str, id: &str) -> Result<Option<Trunk>, StoreError> {
    if !is_id(TRUNK_PREFIX, id) {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            &format!("SELECT {TRUNK_COLUMNS} FROM trunks WHERE id = ?1 AND account_id = ?2"),
            [id, account],
            trunk_from_row,
        )
        .optional()?)
}

/// `Conflict` when another trunk of `account` than `id` already has `name`.
fn check_name_free(
    conn: &Connection,
    account: &str,
    name: &str,
    id: &str,
) -> Result<(), StoreError> {
    let taken = conn
        .query_row(
            "SELECT 1 FROM trunks WHERE account_id = ?1 AND name = ?2 AND id <> ?3",
            [account, name, id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if taken {
        return Err(StoreError::Conflict(format!(
            "a trunk named {name:?} already exists"
        )));
    }
    Ok(())
}

impl Store {
    /// Creates a trunk for `account`; `Invalid` names the bad field, `Conflict` a name
    /// the account already uses.
    pub fn create_trunk(&self, account: &str, new: NewTrunk) -> Result<Trunk, StoreError> {
        let trunk = Trunk {
            id: new_id(TRUNK_PREFIX),
            account_id: account.to_owned(),
            name: new.name,
            proxy: new.proxy,
            username: new.username,
            password: new.password,
            caller_id: new.caller_id,
            number_prefix: new.number_prefix,
            strip_plus: new.strip_plus,
            priority: new.priority,
            enabled: new.enabled,
            created_at: time::now(),
        };
        validate(&trunk)?;
        let conn = self.conn();
        check_name_free(&conn, account, &trunk.name, &trunk.id)?;
        conn.execute(
            &format!(
                "INSERT INTO trunks ({TRUNK_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                trunk.id,
                trunk.name,
                trunk.proxy,
                trunk.username,
                trunk.password,
                trunk.caller_id,
                trunk.number_prefix,
                trunk.strip_plus,
                trunk.priority,
                trunk.enabled,
                time::to_sql(&trunk.created_at),
                trunk.account_id,
            ],
        )?;
        tracing::info!(trunk_id = %trunk.id, name = %trunk.name, "trunk created");
        Ok(trunk)
    }

    /// `account`'s trunks in failover order (priority, then name).
    pub fn list_trunks(&self, account: &str) -> Result<Vec<Trunk>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TRUNK_COLUMNS} FROM trunks WHERE account_id = ?1 ORDER BY priority, name"
        ))?;
        let trunks = stmt
            .query_map([account], trunk_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(trunks)
    }

    /// One of `account`'s trunks by id; `None` when there is none (including a malformed
    /// id).
    pub fn trunk(&self, account: &str, id: &str) -> Result<Option<Trunk>, StoreError> {
        load_trunk(&self.conn(), account, id)
    }

    /// One of `account`'s trunks by name, enabled or not.
    pub fn trunk_by_name(&self, account: &str, name: &str) -> Result<Option<Trunk>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {TRUNK_COLUMNS} FROM trunks WHERE account_id = ?1 AND name = ?2"),
                [account, name],
                trunk_from_row,
            )
            .optional()?)
    }

    /// Applies a partial update and returns the trunk as stored; `NotFound`, `Invalid`
    /// or `Conflict` (name taken) leave it unchanged.
    pub fn update_trunk(
        &self,
        account: &str,
        id: &str,
        patch: TrunkPatch,
    ) -> Result<Trunk, StoreError> {
        let conn = self.conn();
        let mut trunk = load_trunk(&conn, account, id)?.ok_or_else(|| trunk_not_found(id))?;
        let TrunkPatch {
            name,
            proxy,
            username,
            password,
            caller_id,
            number_prefix,
            strip_plus,
            priority,
            enabled,
        } = patch;
        if let Some(v) = name {
            trunk.name = v;
        }
        if let Some(v) = proxy {
            trunk.proxy = v;
        }
        if let Some(v) = username {
            trunk.username = v;
        }
        if let Some(v) = password {
            trunk.password = v;
        }
        if let Some(v) = caller_id {
            trunk.caller_id = v;
        }
        if let Some(v) = number_prefix {
            trunk.number_prefix = v;
        }
        if let Some(v) = strip_plus {
            trunk.strip_plus = v;
        }
        if let Some(v) = priority {
            trunk.priority = v;
        }
        if let Some(v) = enabled {
            trunk.enabled = v;
        }
        validate(&trunk)?;
        check_name_free(&conn, account, &trunk.name, &trunk.id)?;
        conn.execute(
            "UPDATE trunks SET name = ?2, proxy = ?3, username = ?4, password = ?5,
                caller_id = ?6, number_prefix = ?7, strip_plus = ?8, priority = ?9, enabled = ?10
             WHERE id = ?1",
            params![
                trunk.id,
                trunk.name,
                trunk.proxy,
                trunk.username,
                trunk.password,
                trunk.caller_id,
                trunk.number_prefix,
                trunk.strip_plus,
                trunk.priority,
                trunk.enabled,
            ],
        )?;
        tracing::info!(trunk_id = %trunk.id, "trunk updated");
        Ok(trunk)
    }

    /// Removes one of `account`'s trunks; `NotFound` when there is none.
    pub fn delete_trunk(&self, account: &str, id: &str) -> Result<(), StoreError> {
        if !is_id(TRUNK_PREFIX, id) {
            return Err(trunk_not_found(id));
        }
        let deleted = self.conn().execute(
            "DELETE FROM trunks WHERE id = ?1 AND account_id = ?2",
            [id, account],
        )?;
        if deleted == 0 {
            return Err(trunk_not_found(id));
        }
        tracing::info!(trunk_id = id, "trunk deleted");
        Ok(())
    }

    /// The trunks a phone-number dial by `account`'s call may use, in the order to try
    /// them: with a name, that trunk alone if it is enabled; without, every enabled trunk
    /// of the account by priority then name.
    pub fn trunks_for_dial(
        &self,
        account: &str,
        name: Option<&str>,
    ) -> Result<Vec<Trunk>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TRUNK_COLUMNS} FROM trunks
             WHERE account_id = ?2 AND enabled AND (?1 IS NULL OR name = ?1)
             ORDER BY priority, name"
        ))?;
        let trunks = stmt
            .query_map(params![name, account], trunk_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(trunks)
    }
}
