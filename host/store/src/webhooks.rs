//! Webhooks (an account's HTTP endpoints for events) and their delivery log.
//!
//! Invariants: a stored webhook has an `http`/`https` URL with a host and a non-empty list
//! of event types, each a known [`EventType`] or `*` (alone: `*` swallows the others);
//! within one account no two webhooks share an event type (`*` overlaps everything), checked
//! in the same transaction as the write; the secret (`whsec_` + 32 hex) is kept because we
//! sign with it, but it is never serialized and `Debug` redacts it; every read and write
//! through the API's methods is scoped by account, so another account's id is `NotFound`.
//! A delivery row belongs to its webhook and goes with it; its status only moves from
//! `pending` to `delivered` or `failed`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::model::{is_id, new_id};
use crate::{EventType, Store, StoreError, time};

/// Prefix of webhook ids.
pub const WEBHOOK_PREFIX: &str = "whk_";
/// Prefix of delivery ids.
pub const DELIVERY_PREFIX: &str = "dlv_";
/// Prefix of webhook secrets.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// The event-type entry that selects every type.
pub const ALL_EVENT_TYPES: &str = "*";
/// Longest webhook URL accepted.
pub const MAX_WEBHOOK_URL: usize = 2048;
/// Most webhooks one account may have.
pub const MAX_WEBHOOKS_PER_ACCOUNT: usize = 100;
/// Most deliveries one [`Store::deliveries`] page returns.
pub const MAX_DELIVERIES_PAGE: usize = 1000;

const WEBHOOK_COLUMNS: &str = "id, account_id, url, event_types, secret, enabled, created_at";
const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_id, e.type, d.status, d.attempts, \
     d.http_status, d.last_error, d.created_at, d.updated_at, d.next_attempt_at";

/// An account's endpoint that receives the events of the types it lists, signed with its
/// secret.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// `whk_` plus 16 hex digits.
    pub id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// Where events are POSTed (`http` or `https`).
    pub url: String,
    /// The event types it receives (wire spellings), or `["*"]` for all.
    pub event_types: Vec<String>,
    /// The HMAC key for `Pbx-Signature`; never serialized.
    #[serde(skip_serializing)]
    pub secret: String,
    /// A disabled webhook receives nothing (its types still count for overlaps).
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl Webhook {
    /// True when this webhook receives events of `kind` (enabled or not).
    pub fn wants(&self, kind: EventType) -> bool {
        self.event_types
            .iter()
            .any(|t| t == ALL_EVENT_TYPES || t == kind.as_str())
    }
}

/// What [`Store::create_webhook`] needs; the id and the secret are generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// The owning account.
    pub account_id: String,
    /// See [`Webhook::url`].
    pub url: String,
    /// See [`Webhook::event_types`].
    pub event_types: Vec<String>,
    /// See [`Webhook::enabled`].
    pub enabled: bool,
}

/// A partial update for [`Store::update_webhook`]: `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New event types (checked for overlaps again).
    pub event_types: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Where one delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or for a retry.
    Pending,
    /// An attempt got a 2xx answer.
    Delivered,
    /// Every attempt failed, or it could not be queued.
    Failed,
}

impl DeliveryStatus {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            _ => Err(StoreError::invalid(
                "status",
                "must be pending, delivered or failed",
            )),
        }
    }
}

/// One event's delivery to one webhook: the log line `GET /v1/webhooks/{id}/deliveries`
/// shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `dlv_` plus 16 hex digits.
    pub id: String,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// The event it carries.
    pub event_id: i64,
    /// The event's type, while the event is stored.
    pub event_type: Option<EventType>,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt that got an answer.
    pub http_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The outcome of one attempt (or of giving up), for [`Store::update_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    /// The status after the attempt.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The answer's status code, if there was an answer.
    pub http_status: Option<u16>,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// When the next attempt is due (only while pending).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Which deliveries [`Store::deliveries`] lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// At most this many (0 or more than [`MAX_DELIVERIES_PAGE`] means 100).
    pub limit: usize,
}

/// A new secret: `whsec_` plus 32 hex digits (128 random bits).
fn new_secret() -> String {
    format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        hex::encode(rand::random::<[u8; 16]>())
    )
}

/// Checks a webhook URL: `http://` or `https://`, a host, no spaces or control characters.
pub fn validate_webhook_url(url: &str) -> Result<(), StoreError> {
    let bad = |message: &str| Err(StoreError::invalid("url", message));
    if url.is_empty() || url.len() > MAX_WEBHOOK_URL {
        return bad("must be 1 to 2048 bytes");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return bad("must be an http:// or https:// URL");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    if host.is_empty() || host == "[]" {
        return bad("must name a host");
    }
    Ok(())
}

/// Checks and normalises an event-type list: non-empty, known types or `*`, no duplicates,
/// and `*` alone when present.
pub fn normalise_event_types(types: &[String]) -> Result<Vec<String>, StoreError> {
    if types.is_empty() {
        return Err(StoreError::invalid(
            "event_types",
            "must list at least one event type, or \"*\" for all",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if t == ALL_EVENT_TYPES {
            return Ok(vec![ALL_EVENT_TYPES.to_owned()]);
        }
        let kind = t
            .parse::<EventType>()
            .map_err(|_| StoreError::invalid("event_types", format!("unknown event type `{t}`")))?;
        if !out.iter().any(|o| o == kind.as_str()) {
            out.push(kind.as_str().to_owned());
        }
    }
    Ok(out)
}

/// The first event type both lists select, if any.
fn overlap(a: &[String], b: &[String]) -> Option<String> {
    let all = |l: &[String]| l.iter().any(|t| t == ALL_EVENT_TYPES);
    if all(a) {
        return b.first().cloned();
    }
    if all(b) {
        return a.first().cloned();
    }
    a.iter().find(|t| b.contains(t)).cloned()
}

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let types: String = row.get(3)?;
    let event_types = serde_json::from_str(&types)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, Type::Text, Box::new(e)))?;
    Ok(Webhook {
        id: row.get(0)?,
        account_id: row.get(1)?,
        url: row.get(2)?,
        event_types,
        secret: row.get(4)?,
        enabled: row.get(5)?,
        created_at: time::get(row, 6)?,
    })
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let kind: Option<String> = row.get(3)?;
    let status: String = row.get(4)?;
    Ok(Delivery {
        id: row.get(0)?,
        webhook_id: row.get(1)?,
        event_id: row.get(2)?,
        event_type: kind.and_then(|k| k.parse().ok()),
        status: status
            .parse()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, Type::Text, Box::new(e)))?,
        attempts: row.get(5)?,
        http_status: row.get(6)?,
        last_error: row.get(7)?,
        created_at: time::get(row, 8)?,
        updated_at: time::get(row, 9)?,
        next_attempt_at: time::get_opt(row, 10)?,
    })
}

/// The account's webhooks, oldest first.
fn account_webhooks(conn: &Connection, account_id: &str) -> Result<Vec<Webhook>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE account_id = ?1 ORDER BY created_at, id"
    ))?;
    let hooks = stmt
        .query_map([account_id], webhook_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(hooks)
}

/// One webhook of the account, or `NotFound`.
fn account_webhook(conn: &Connection, account_id: &str, id: &str) -> Result<Webhook, StoreError> {
    let not_found = || StoreError::NotFound(format!("webhook {id}"));
    if !is_id(WEBHOOK_PREFIX, id) {
        return Err(not_found());
    }
    conn.query_row(
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND account_id = ?2"),
        params![id, account_id],
        webhook_from_row,
    )
    .optional()?
    .ok_or_else(not_found)
}

/// Refuses `types` when another webhook (not `except`) of the account shares a type.
fn check_overlaps(
    conn: &Connection,
    account_id: &str,
    except: Option<&str>,
    types: &[String],
) -> Result<(), StoreError> {
    for other in account_webhooks(conn, account_id)? {
        if Some(other.id.as_str()) == except {
            continue;
        }
        if let Some(shared) = overlap(types, &other.event_types) {
            return Err(StoreError::Conflict(format!(
                "event type {shared} is already sent to webhook {} (an account's webhooks may \
                 not share an event type; \"*\" overlaps every type)",
                other.id
            )));
        }
    }
    Ok(())
}

impl Store {
    /// Creates a webhook with a fresh secret and returns it (the only time, with
    /// [`Store::rotate_webhook_secret`], that the secret leaves the store for the API).
    pub fn create_webhook(&self, new: NewWebhook) -> Result<Webhook, StoreError> {
        validate_webhook_url(&new.url)?;
        let event_types = normalise_event_types(&new.event_types)?;
        let hook = Webhook {
            id: new_id(WEBHOOK_PREFIX),
            account_id: new.account_id,
            url: new.url,
            event_types,
            secret: new_secret(),
            enabled: new.enabled,
            created_at: time::now(),
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM webhooks WHERE account_id = ?1",
            [&hook.account_id],
            |r| r.get(0),
        )?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_WEBHOOKS_PER_ACCOUNT {
            return Err(StoreError::Conflict(format!(
                "an account may have at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks"
            )));
        }
        check_overlaps(&tx, &hook.account_id, None, &hook.event_types)?;
        tx.execute(
            &format!(
                "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ),
            params![
                hook.id,
                hook.account_id,
                hook.url,
                serde_json::to_string(&hook.event_types).unwrap_or_else(|_| "[]".into()),
                hook.secret,
                hook.enabled,
                time::to_sql(&hook.created_at),
            ],
        )?;
        tx.commit()?;
        Ok(hook)
    }

    /// The account's webhooks, oldest first.
    pub fn webhooks(&self, account_id: &str) -> Result<Vec<Webhook>, StoreError> {
        account_webhooks(&self.conn(), account_id)
    }

    /// One webhook of the account, if it exists there.
    pub fn webhook(&self, account_id: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        match account_webhook(&self.conn(), account_id, id) {
            Ok(hook) => Ok(Some(hook)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every enabled webhook of every account: what the event dispatcher sends to.
    pub fn enabled_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled = 1 ORDER BY created_at, id"
        ))?;
        let hooks = stmt
            .query_map([], webhook_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(hooks)
    }

    /// Applies `patch` to the account's webhook and returns it as stored.
    pub fn update_webhook(
        &self,
        account_id: &str,
        id: &str,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut hook = account_webhook(&tx, account_id, id)?;
        if let Some(url) = patch.url {
            validate_webhook_url(&url)?;
            hook.url = url;
        }
        if let Some(types) = patch.event_types {
            hook.event_types = normalise_event_types(&types)?;
            check_overlaps(&tx, account_id, Some(id), &hook.event_types)?;
        }
        if let Some(enabled) = patch.enabled {
            hook.enabled = enabled;
        }
        tx.execute(
            "UPDATE webhooks SET url = ?1, event_types = ?2, enabled = ?3 WHERE id = ?4",
            params![
                hook.url,
                serde_json::to_string(&hook.event_types).unwrap_or_else(|_| "[]".into()),
                hook.enabled,
                hook.id,
            ],
        )?;
        tx.commit()?;
        Ok(hook)
    }

    /// Replaces the account's webhook's secret and returns the webhook with the new one.
    pub fn rotate_webhook_secret(&self, account_id: &str, id: &str) -> Result<Webhook, StoreError> {
        let conn = self.conn();
        let mut hook = account_webhook(&conn, account_id, id)?;
        hook.secret = new_secret();
        conn.execute(
            "UPDATE webhooks SET secret = ?1 WHERE id = ?2",
            params![hook.secret, hook.id],
        )?;
        Ok(hook)
    }

    /// Deletes the account's webhook and its delivery log.
    pub fn delete_webhook(&self, account_id: &str, id: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        let deleted = if is_id(WEBHOOK_PREFIX, id) {
            conn.execute(
                "DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2",
                params![id, account_id],
            )?
        } else {
            0
        };
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("webhook {id}")));
        }
        Ok(())
    }

    /// Queues a delivery per `(webhook_id, event_id)` in one transaction; the answer holds
    /// the new delivery's id per input, or `None` where the webhook no longer exists.
    pub fn create_deliveries(
        &self,
        pairs: &[(String, i64)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let now = time::to_sql(&time::now());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(pairs.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO webhook_deliveries
                    (id, webhook_id, event_id, status, attempts, created_at, updated_at)
                 SELECT ?1, id, ?2, 'pending', 0, ?3, ?3 FROM webhooks WHERE id = ?4",
            )?;
            for (webhook_id, event_id) in pairs {
                let id = new_id(DELIVERY_PREFIX);
                let inserted = stmt.execute(params![id, event_id, now, webhook_id])?;
                ids.push((inserted == 1).then_some(id));
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Records the outcome of an attempt on delivery `id` (a deleted one is ignored).
    pub fn update_delivery(&self, id: &str, update: &DeliveryUpdate) -> Result<(), StoreError> {
        self.update_deliveries(&[(id.to_owned(), update.clone())])
    }

    /// [`Store::update_delivery`] for many at once, in one transaction.
    pub fn update_deliveries(
        &self,
        updates: &[(String, DeliveryUpdate)],
    ) -> Result<(), StoreError> {
        let now = time::to_sql(&time::now());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE webhook_deliveries SET status = ?1, attempts = ?2, http_status = ?3,
                    last_error = ?4, next_attempt_at = ?5, updated_at = ?6
                 WHERE id = ?7",
            )?;
            for (id, u) in updates {
                stmt.execute(params![
                    u.status.as_str(),
                    u.attempts,
                    u.http_status,
                    u.last_error,
                    time::opt_to_sql(u.next_attempt_at.as_ref()),
                    now,
                    id,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// One delivery by id, whatever its account (for the dispatcher and tests).
    pub fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
                     LEFT JOIN events e ON e.id = d.event_id WHERE d.id = ?1"
                ),
                [id],
                delivery_from_row,
            )
            .optional()?)
    }

    /// The delivery log of the account's webhook, newest first; `NotFound` when the
    /// webhook is not the account's.
    pub fn deliveries(
        &self,
        account_id: &str,
        webhook_id: &str,
        filter: DeliveryFilter,
    ) -> Result<Vec<Delivery>, StoreError> {
        let limit = if filter.limit == 0 || filter.limit > MAX_DELIVERIES_PAGE {
            100
        } else {
            filter.limit
        };
        let conn = self.conn();
        account_webhook(&conn, account_id, webhook_id)?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
             LEFT JOIN events e ON e.id = d.event_id
             WHERE d.webhook_id = ?1 AND (?2 IS NULL OR d.status = ?2)
             ORDER BY d.rowid DESC LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    webhook_id,
                    filter.status.map(DeliveryStatus::as_str),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                delivery_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Fails every delivery still pending (the server calls this at start, when no
    /// delivery of an earlier run can still be under way). Returns how many it failed.
    pub fn fail_interrupted_deliveries(&self) -> Result<usize, StoreError> {
        let n = self.conn().execute(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,
                last_error = 'interrupted by a server restart', updated_at = ?1
             WHERE status = 'pending'",
            [time::to_sql(&time::now())],
        )?;
        if n > 0 {
            tracing::warn!(
                deliveries = n,
                "failed webhook deliveries interrupted by a restart"
            );
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_ACCOUNT_ID, NewEvent, Quotas};

    /// A store with the default account (`acc_a`) and a second one (`acc_b`).
    fn store_with_accounts() -> (tempfile::TempDir, Store, String, String) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let b = store.create_account("other", Quotas::default()).unwrap();
        (tmp, store, DEFAULT_ACCOUNT_ID.to_owned(), b.id)
    }

    fn new(account: &str, types: &[&str]) -> NewWebhook {
        NewWebhook {
            account_id: account.into(),
            url: "https://example.com/hook".into(),
            event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            enabled: true,
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "https://example.com",
            "http://127.0.0.1:8080/x?y=1",
            "HTTPS://user@host/p",
            "http://[::1]:80/",
        ] {
            validate_webhook_url(ok).unwrap();
        }
        for bad in [
            "",
            "ftp://example.com",
            "https://",
            "https:///path",
            "http://:80/",
            "https://exa mple.com",
            "example.com",
        ] {
            assert!(validate_webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_type_lists() {
        let norm = |l: &[&str]| {
            normalise_event_types(&l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            norm(&["CALL_RECEIVED", "CALL_RECEIVED", "APP_ERROR"]).unwrap(),
            ["CALL_RECEIVED", "APP_ERROR"]
        );
        assert_eq!(norm(&["APP_ERROR", "*"]).unwrap(), ["*"]);
        assert!(norm(&[]).is_err());
        assert!(norm(&["NOPE"]).is_err());
    }

    #[test]
    fn crud_overlaps_and_scoping() {
        let (_tmp, store, acc_a, acc_b) = store_with_accounts();
        let (acc_a, acc_b) = (acc_a.as_str(), acc_b.as_str());
        let a = store
            .create_webhook(new(acc_a, &["CALL_RECEIVED", "CALL_FINISHED"]))
            .unwrap();
        assert!(is_id(WEBHOOK_PREFIX, &a.id));
        assert!(a.secret.starts_with(WEBHOOK_SECRET_PREFIX) && a.secret.len() == 6 + 32);
        assert!(!format!("{a:?}").contains(&a.secret));
        assert!(serde_json::to_value(&a).unwrap().get("secret").is_none());
        assert!(a.wants(EventType::CallFinished) && !a.wants(EventType::AppError));

        let err = store
            .create_webhook(new(acc_a, &["APP_ERROR", "CALL_FINISHED"]))
            .unwrap_err();
        let StoreError::Conflict(msg) = err else {
            panic!("{err}")
        };
        assert!(
            msg.contains("CALL_FINISHED") && msg.contains(&a.id),
            "{msg}"
        );
        assert!(matches!(
            store.create_webhook(new(acc_a, &["*"])),
            Err(StoreError::Conflict(_))
        ));
        // Another account may use the same types.
        let b = store.create_webhook(new(acc_b, &["*"])).unwrap();
        let a2 = store.create_webhook(new(acc_a, &["APP_ERROR"])).unwrap();
        assert!(matches!(
            store.update_webhook(
                acc_a,
                &a2.id,
                WebhookPatch {
                    event_types: Some(vec!["CALL_RECEIVED".into()]),
                    ..WebhookPatch::default()
                }
            ),
            Err(StoreError::Conflict(_))
        ));
        // Changing its own types is no overlap with itself.
        let a = store
            .update_webhook(
                acc_a,
                &a.id,
                WebhookPatch {
                    event_types: Some(vec!["CALL_RECEIVED".into()]),
                    enabled: Some(false),
                    url: Some("http://10.0.0.1/x".into()),
                },
            )
            .unwrap();
        assert_eq!(a.event_types, ["CALL_RECEIVED"]);
        assert_eq!(store.webhook(acc_a, &a.id).unwrap().unwrap(), a);

        assert_eq!(store.webhooks(acc_a).unwrap().len(), 2);
        assert!(store.webhook(acc_b, &a.id).unwrap().is_none());
        assert!(matches!(
            store.delete_webhook(acc_b, &a.id),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.rotate_webhook_secret(acc_b, &a.id),
            Err(StoreError::NotFound(_))
        ));
        let enabled: Vec<String> = store
            .enabled_webhooks()
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(enabled, [b.id.clone(), a2.id.clone()]);

        let rotated = store.rotate_webhook_secret(acc_a, &a.id).unwrap();
        assert_ne!(rotated.secret, a.secret);
        assert_eq!(
            store.webhook(acc_a, &a.id).unwrap().unwrap().secret,
            rotated.secret
        );
        store.delete_webhook(acc_a, &a.id).unwrap();
        assert!(store.webhook(acc_a, &a.id).unwrap().is_none());
        assert!(matches!(
            store.delete_webhook(acc_a, "../etc"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn delivery_log() {
        let (_tmp, store, acc_a, acc_b) = store_with_accounts();
        let (acc_a, acc_b) = (acc_a.as_str(), acc_b.as_str());
        let hook = store.create_webhook(new(acc_a, &["*"])).unwrap();
        let events = store
            .insert_events(&[
                NewEvent::new(acc_a, EventType::CallReceived),
                NewEvent::new(acc_a, EventType::CallFinished),
            ])
            .unwrap();
        let ids = store
            .create_deliveries(&[
                (hook.id.clone(), events[0].id),
                (hook.id.clone(), events[1].id),
                ("whk_0000000000000000".into(), events[1].id),
            ])
            .unwrap();
        assert!(ids[0].is_some() && ids[1].is_some() && ids[2].is_none());
        let first = ids[0].clone().unwrap();
        store
            .update_delivery(
                &first,
                &DeliveryUpdate {
                    status: DeliveryStatus::Delivered,
                    attempts: 3,
                    http_status: Some(200),
                    last_error: None,
                    next_attempt_at: None,
                },
            )
            .unwrap();
        let log = store
            .deliveries(acc_a, &hook.id, DeliveryFilter::default())
            .unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].id, first, "newest first");
        assert_eq!(log[1].status, DeliveryStatus::Delivered);
        assert_eq!(log[1].attempts, 3);
        assert_eq!(log[1].http_status, Some(200));
        assert_eq!(log[1].event_type, Some(EventType::CallReceived));
        assert_eq!(log[0].status, DeliveryStatus::Pending);
        let delivered = store
            .deliveries(
                acc_a,
                &hook.id,
                DeliveryFilter {
                    status: Some(DeliveryStatus::Delivered),
                    limit: 10,
                },
            )
            .unwrap();
        assert_eq!(delivered.len(), 1);
        assert!(matches!(
            store.deliveries(acc_b, &hook.id, DeliveryFilter::default()),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(store.fail_interrupted_deliveries().unwrap(), 1);
        let second = store.delivery(ids[1].as_ref().unwrap()).unwrap().unwrap();
        assert_eq!(second.status, DeliveryStatus::Failed);
        store.delete_webhook(acc_a, &hook.id).unwrap();
        assert!(store.delivery(&first).unwrap().is_none());
    }
}
