//! The database schema as numbered migrations, applied in order at open.
//!
//! Invariants: a released migration is never edited, only followed by a new one; each
//! migration runs in one transaction together with the bump of `schema_version`, so a crash
//! leaves the database at the previous or the next version, never in between. Timestamps are
//! RFC 3339 text in UTC with nine fraction digits, so text order is time order.

use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

/// `(version, SQL)`; versions count from 1 without gaps.
const MIGRATIONS: &[(u32, &str)] = &[(
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
)];

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
    fn versions_are_dense_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }
}
