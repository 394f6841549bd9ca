//! The database schema as numbered migrations, applied in order at open.
//!
//! Invariants: a released migration is never edited, only followed by a new one; each
//! migration runs in one transaction together with the bump of `schema_version`, so a crash
//! leaves the database at the previous or the next version, never in between. Timestamps are
//! RFC 3339 text in UTC with nine fraction digits, so text order is time order.

use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

/// `(version, SQL)`; versions count from 1 without gaps.
const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE apps (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    created_at     TEXT NOT NULL,
    active_version INTEGER
) STRICT;

CREATE TABLE versions (
    app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, version)
) STRICT;

CREATE TABLE artifacts (
    app_id     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    engine_key TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, version),
    FOREIGN KEY (app_id, version) REFERENCES versions(app_id, version) ON DELETE CASCADE
) STRICT;

CREATE TABLE numbers (
    number     TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX numbers_by_app ON numbers(app_id);

CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    name         TEXT,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    meta         TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;

CREATE TABLE calls (
    id             TEXT PRIMARY KEY,
    app_id         TEXT,
    app_version    INTEGER,
    direction      TEXT NOT NULL,
    from_party     TEXT NOT NULL,
    to_party       TEXT NOT NULL,
    status         TEXT NOT NULL,
    hangup_by      TEXT,
    hangup_reason  TEXT,
    tm_create      TEXT NOT NULL,
    tm_ringing     TEXT,
    tm_progressing TEXT,
    tm_hangup      TEXT,
    sip_call_id    TEXT
) STRICT;
CREATE INDEX calls_history
    ON calls(COALESCE(tm_hangup, tm_create) DESC, tm_create DESC, id DESC)
    WHERE status = 'hangup';
CREATE INDEX calls_open ON calls(status) WHERE status <> 'hangup';
"#,
    ),
    (
        2,
        r#"
ALTER TABLE calls ADD COLUMN master_call_id TEXT;
CREATE INDEX calls_by_master ON calls(master_call_id, tm_create)
    WHERE master_call_id IS NOT NULL;

CREATE TABLE trunks (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    proxy         TEXT NOT NULL,
    username      TEXT,
    password      TEXT,
    caller_id     TEXT,
    number_prefix TEXT,
    strip_plus    INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    enabled       INTEGER NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX trunks_by_priority ON trunks(priority, name);

CREATE TABLE sip_users (
    id           TEXT PRIMARY KEY,
    username     TEXT NOT NULL UNIQUE,
    display_name TEXT,
    realm        TEXT NOT NULL,
    ha1_md5      TEXT NOT NULL,
    ha1_sha256   TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;

CREATE TABLE conferences (
    id         TEXT PRIMARY KEY,
    app_id     TEXT,
    name       TEXT,
    created_at TEXT NOT NULL,
    ended_at   TEXT
) STRICT;
CREATE INDEX conferences_by_time ON conferences(created_at DESC, id DESC);

CREATE TABLE recordings (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL,
    call_id         TEXT,
    conference_id   TEXT,
    target          TEXT NOT NULL,
    per_participant INTEGER NOT NULL,
    stereo          INTEGER NOT NULL,
    metadata        TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    duration_ms     INTEGER
) STRICT;
CREATE INDEX recordings_by_call ON recordings(call_id) WHERE call_id IS NOT NULL;
CREATE INDEX recordings_by_conference ON recordings(conference_id)
    WHERE conference_id IS NOT NULL;

CREATE TABLE recording_files (
    recording_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    label        TEXT NOT NULL,
    channels     INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    path         TEXT NOT NULL,
    PRIMARY KEY (recording_id, idx)
) STRICT;
"#,
    ),
    (
        3,
        r#"
CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    created_at           TEXT NOT NULL,
    max_concurrent_calls INTEGER,
    max_apps             INTEGER,
    max_storage_bytes    INTEGER
) STRICT;
INSERT INTO accounts (id, name, created_at)
VALUES ('acc_0000000000000000', 'default',
        strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000000Z');

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    sha256       TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;
CREATE INDEX api_keys_by_account ON api_keys(account_id, created_at);

-- App names become unique per account, and versions are numbered from a counter so a
-- deleted version's number is never reused (compiled code is cached by number).
CREATE TABLE new_apps (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id),
    name           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    active_version INTEGER,
    last_version   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
) STRICT;
INSERT INTO new_apps (id, name, created_at, active_version, last_version)
SELECT id, name, created_at, active_version,
       COALESCE((SELECT MAX(version) FROM versions v WHERE v.app_id = apps.id), 0)
FROM apps;
DROP TABLE apps;
ALTER TABLE new_apps RENAME TO apps;

-- Trunk names become unique per account.
CREATE TABLE new_trunks (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id),
    name          TEXT NOT NULL,
    proxy         TEXT NOT NULL,
    username      TEXT,
    password      TEXT,
    caller_id     TEXT,
    number_prefix TEXT,
    strip_plus    INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    enabled       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (account_id, name)
) STRICT;
INSERT INTO new_trunks (id, name, proxy, username, password, caller_id, number_prefix,
                        strip_plus, priority, enabled, created_at)
SELECT id, name, proxy, username, password, caller_id, number_prefix,
       strip_plus, priority, enabled, created_at
FROM trunks;
DROP TABLE trunks;
ALTER TABLE new_trunks RENAME TO trunks;
CREATE INDEX trunks_by_priority ON trunks(account_id, priority, name);

-- Numbers and SIP user names stay unique across the server (SIP routes them without an
-- account); every other row just learns its owner.
ALTER TABLE numbers ADD COLUMN
    account_id TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id);
ALTER TABLE files ADD COLUMN
    account_id TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id);
ALTER TABLE calls ADD COLUMN
    account_id TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id);
ALTER TABLE sip_users ADD COLUMN
    account_id TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id);
ALTER TABLE conferences ADD COLUMN
    account_id TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id);
ALTER TABLE recordings ADD COLUMN
    account_id TEXT NOT NULL DEFAULT 'acc_0000000000000000' REFERENCES accounts(id);
CREATE INDEX numbers_by_account ON numbers(account_id, number);
CREATE INDEX files_by_account ON files(account_id, created_at);
CREATE INDEX sip_users_by_account ON sip_users(account_id, username);
CREATE INDEX recordings_by_account ON recordings(account_id, started_at DESC, id DESC);
DROP INDEX conferences_by_time;
CREATE INDEX conferences_by_time ON conferences(account_id, created_at DESC, id DESC);
DROP INDEX calls_history;
CREATE INDEX calls_history
    ON calls(account_id, COALESCE(tm_hangup, tm_create) DESC, tm_create DESC, id DESC)
    WHERE status = 'hangup';

-- Per-app capabilities and limits; no row means every default.
CREATE TABLE app_settings (
    app_id                 TEXT PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    kv_enabled             INTEGER NOT NULL,
    kv_max_bytes           INTEGER NOT NULL,
    http_allow             TEXT NOT NULL,
    http_timeout_ms        INTEGER NOT NULL,
    http_max_response_bytes INTEGER NOT NULL,
    max_memory_bytes       INTEGER,
    event_deadline_ms      INTEGER
) STRICT;

-- Configuration values and secrets; version 0 means every version of the app.
CREATE TABLE app_config (
    app_id  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    secret  INTEGER NOT NULL,
    PRIMARY KEY (app_id, version, name)
) STRICT;

CREATE TABLE kv (
    app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, key)
) STRICT;
"#,
    ),
    (
        4,
        r#"
-- Events (ids from one global sequence, never reused), webhooks and their delivery log.
-- Events carry their account without a foreign key: recording an event never fails
-- because of its owner, and events are history.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    call_id       TEXT,
    conference_id TEXT,
    app_id        TEXT,
    at            TEXT NOT NULL,
    properties    TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_call ON events(account_id, call_id, id) WHERE call_id IS NOT NULL;
CREATE INDEX events_by_account ON events(account_id, id);

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    url         TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX webhooks_by_account ON webhooks(account_id, created_at);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    http_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    next_attempt_at TEXT
) STRICT;
CREATE INDEX deliveries_by_webhook ON webhook_deliveries(webhook_id);
CREATE INDEX deliveries_pending ON webhook_deliveries(status) WHERE status = 'pending';
"#,
    ),
];

/// The newest schema version this build knows.
pub(crate) fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Brings the database up to [`latest`]; refuses a database from a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: u32 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get::<_, Option<u32>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if current > latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest(),
        });
    }
    if current == latest() {
        return Ok(());
    }
    // SQLite's way to change a schema (https://sqlite.org/lang_altertable.html §7): with
    // foreign keys off, a table can be rebuilt under its old name and a column with
    // REFERENCES can be added with a non-NULL default; the check below then proves the
    // result consistent before they are switched back on. The pragma is a no-op inside a
    // transaction, so it is set around the migrations, not in them.
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = apply(conn, current);
    if enforced {
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    result
}

/// Applies every migration after `current`, each in its own transaction that also checks
/// the foreign keys.
fn apply(conn: &mut Connection, current: u32) -> Result<(), StoreError> {
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(StoreError::Corrupt(format!(
                "migration {version} left a dangling reference in table {table}"
            )));
        }
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_upgrades_keeping_its_calls() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1);
             INSERT INTO calls (id, direction, from_party, to_party, status, tm_create)
             VALUES ('c1', 'inbound', 'a', 'b', 'hangup', '2024-01-01T00:00:00.000000000Z');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (id, master): (String, Option<String>) = conn
            .query_row("SELECT id, master_call_id FROM calls", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((id.as_str(), master), ("c1", None));
        let version: u32 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, latest());
    }

    #[test]
    fn a_version_2_database_moves_into_the_default_account() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(MIGRATIONS[1].1).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (2);
             INSERT INTO apps VALUES ('app_0000000000000001', 'hello', 't', 2);
             INSERT INTO versions VALUES ('app_0000000000000001', 1, 's', 1, 't');
             INSERT INTO versions VALUES ('app_0000000000000001', 2, 's', 1, 't');
             INSERT INTO numbers VALUES ('1000', 'app_0000000000000001', 't');
             INSERT INTO trunks VALUES ('trk_0000000000000001', 'gw', 'sip:gw', NULL, NULL,
                 NULL, NULL, 0, 100, 1, 't');
             INSERT INTO sip_users VALUES ('usr_0000000000000001', 'alice', NULL, 'pbx',
                 'a', 'b', 't');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        for table in ["apps", "numbers", "trunks", "sip_users"] {
            let owner: String = conn
                .query_row(&format!("SELECT account_id FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(owner, crate::DEFAULT_ACCOUNT_ID, "{table}");
        }
        let (active, last): (u32, u32) = conn
            .query_row("SELECT active_version, last_version FROM apps", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((active, last), (2, 2));
        // The versions still reference the rebuilt apps table, and cascades still work.
        let enforced: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(enforced);
        conn.execute("DELETE FROM apps", []).unwrap();
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM versions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        let default: String = conn
            .query_row("SELECT name FROM accounts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(default, "default");
    }

    #[test]
    fn versions_are_dense_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }
}
