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
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
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
    fn versions_are_dense_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }
}
