//! Apps, their versions (component blobs), the compiled-artifact cache, deploys and the
//! number → app bindings.
//!
//! Invariants: version numbers are dense per app (1, 2, ...) and assigned under the
//! connection lock; a component blob is renamed into place before its row commits; an
//! artifact is only returned for the exact engine key it was stored with and only if its
//! checksum still matches (wasmtime trusts artifact bytes, so a damaged one must never load).

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::blob::{self, TempBlob};
use crate::model::{APP_PREFIX, is_id, new_id};
use crate::{
    ARTIFACTS_DIR, App, COMPONENTS_DIR, NumberRoute, Route, Store, StoreError, Version, time,
    validate_app_name, validate_number,
};

const APP_COLUMNS: &str = "id, name, created_at, active_version";
const VERSION_COLUMNS: &str = "app_id, version, sha256, size, created_at";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    Ok(App {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: time::get(row, 2)?,
        active_version: row.get(3)?,
    })
}

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<Version> {
    Ok(Version {
        app_id: row.get(0)?,
        version: row.get(1)?,
        sha256: row.get(2)?,
        size: row.get(3)?,
        created_at: time::get(row, 4)?,
    })
}

fn number_from_row(row: &Row<'_>) -> rusqlite::Result<NumberRoute> {
    Ok(NumberRoute {
        number: row.get(0)?,
        app_id: row.get(1)?,
        updated_at: time::get(row, 2)?,
    })
}

fn app_not_found(app_id: &str) -> StoreError {
    StoreError::NotFound(format!("app {app_id}"))
}

fn version_not_found(app_id: &str, version: u32) -> StoreError {
    StoreError::NotFound(format!("version {version} of app {app_id}"))
}

/// Loads an app by id on an already locked connection.
fn load_app(conn: &Connection, app_id: &str) -> Result<Option<App>, StoreError> {
    if !is_id(APP_PREFIX, app_id) {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            &format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1"),
            [app_id],
            app_from_row,
        )
        .optional()?)
}

/// Loads an app by id or fails with `NotFound`.
fn require_app(conn: &Connection, app_id: &str) -> Result<App, StoreError> {
    load_app(conn, app_id)?.ok_or_else(|| app_not_found(app_id))
}

fn load_version(
    conn: &Connection,
    app_id: &str,
    version: u32,
) -> Result<Option<Version>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {VERSION_COLUMNS} FROM versions WHERE app_id = ?1 AND version = ?2"),
            params![app_id, version],
            version_from_row,
        )
        .optional()?)
}

impl Store {
    /// Creates an app with a unique name; `Conflict` when the name is taken.
    pub fn create_app(&self, name: &str) -> Result<App, StoreError> {
        validate_app_name(name)?;
        let app = App {
            id: new_id(APP_PREFIX),
            name: name.to_owned(),
            created_at: time::now(),
            active_version: None,
        };
        let conn = self.conn();
        let taken = conn
            .query_row("SELECT 1 FROM apps WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if taken {
            return Err(StoreError::Conflict(format!(
                "an app named {name:?} already exists"
            )));
        }
        conn.execute(
            "INSERT INTO apps (id, name, created_at, active_version) VALUES (?1, ?2, ?3, NULL)",
            params![app.id, app.name, time::to_sql(&app.created_at)],
        )?;
        tracing::info!(app_id = %app.id, name = %app.name, "app created");
        Ok(app)
    }

    /// All apps, oldest first.
    pub fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, id"
        ))?;
        let apps = stmt
            .query_map([], app_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(apps)
    }

    /// One app by id; `None` when there is none (including a malformed id).
    pub fn app(&self, app_id: &str) -> Result<Option<App>, StoreError> {
        load_app(&self.conn(), app_id)
    }

    /// Stores a new version of an app's component and returns it (not yet deployed).
    ///
    /// The caller validates the component first; the store only keeps bytes.
    pub fn add_version(&self, app_id: &str, component: &[u8]) -> Result<Version, StoreError> {
        require_app(&self.conn(), app_id)?;
        let sha256 = blob::sha256_hex(component);
        // The slow part (writing and syncing the bytes) runs without the lock.
        let temp = TempBlob::write(&self.dir.join(COMPONENTS_DIR), component)?;
        let created_at = time::now();

        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let last: Option<u32> = tx.query_row(
            "SELECT MAX(version) FROM versions WHERE app_id = ?1",
            [app_id],
            |row| row.get(0),
        )?;
        let version = last
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| StoreError::Conflict(format!("app {app_id} has too many versions")))?;
        temp.persist(&self.component_path(app_id, version))?;
        let size = component.len() as u64;
        tx.execute(
            "INSERT INTO versions (app_id, version, sha256, size, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![app_id, version, sha256, size, time::to_sql(&created_at)],
        )?;
        tx.commit()?;
        tracing::info!(app_id, version, size, "app version stored");
        Ok(Version {
            app_id: app_id.to_owned(),
            version,
            sha256,
            size,
            created_at,
        })
    }

    /// An app's versions, oldest first; `NotFound` when the app does not exist.
    pub fn versions(&self, app_id: &str) -> Result<Vec<Version>, StoreError> {
        let conn = self.conn();
        require_app(&conn, app_id)?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE app_id = ?1 ORDER BY version"
        ))?;
        let versions = stmt
            .query_map([app_id], version_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(versions)
    }

    /// One version's metadata; `None` when the app or the version does not exist.
    pub fn version(&self, app_id: &str, version: u32) -> Result<Option<Version>, StoreError> {
        if !is_id(APP_PREFIX, app_id) {
            return Ok(None);
        }
        load_version(&self.conn(), app_id, version)
    }

    /// The component bytes of a version, checked against their recorded SHA-256.
    pub fn version_bytes(&self, app_id: &str, version: u32) -> Result<Vec<u8>, StoreError> {
        let meta = self
            .version(app_id, version)?
            .ok_or_else(|| version_not_found(app_id, version))?;
        let path = self.component_path(app_id, version);
        let bytes = blob::read(&path)?.ok_or_else(|| {
            StoreError::Corrupt(format!("component file {} is missing", path.display()))
        })?;
        if blob::sha256_hex(&bytes) != meta.sha256 {
            return Err(StoreError::Corrupt(format!(
                "component file {} does not match its checksum",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Caches the compiled form of a version for the engine configuration `engine_key`,
    /// replacing any earlier artifact of that version.
    pub fn put_artifact(
        &self,
        app_id: &str,
        version: u32,
        engine_key: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if self.version(app_id, version)?.is_none() {
            return Err(version_not_found(app_id, version));
        }
        let sha256 = blob::sha256_hex(bytes);
        let temp = TempBlob::write(&self.dir.join(ARTIFACTS_DIR), bytes)?;
        let conn = self.conn();
        // Rename and row change under one lock, so concurrent writers cannot pair one
        // writer's file with the other's engine key.
        temp.persist(&self.artifact_path(app_id, version))?;
        conn.execute(
            "INSERT INTO artifacts (app_id, version, engine_key, sha256, size, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (app_id, version) DO UPDATE SET
                engine_key = excluded.engine_key, sha256 = excluded.sha256,
                size = excluded.size, created_at = excluded.created_at",
            params![
                app_id,
                version,
                engine_key,
                sha256,
                bytes.len() as u64,
                time::to_sql(&time::now())
            ],
        )?;
        tracing::debug!(app_id, version, engine_key, "artifact cached");
        Ok(())
    }

    /// The cached compiled form of a version, if there is one for exactly `engine_key`
    /// and it is intact; `None` means "compile it again".
    pub fn artifact(
        &self,
        app_id: &str,
        version: u32,
        engine_key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if !is_id(APP_PREFIX, app_id) {
            return Ok(None);
        }
        let (bytes, sha256) = {
            let conn = self.conn();
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT engine_key, sha256 FROM artifacts WHERE app_id = ?1 AND version = ?2",
                    params![app_id, version],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((key, sha256)) = row else {
                return Ok(None);
            };
            if key != engine_key {
                return Ok(None);
            }
            // Read under the lock so a concurrent `put_artifact` cannot swap the file
            // between the row and the read.
            (blob::read(&self.artifact_path(app_id, version))?, sha256)
        };
        match bytes {
            Some(bytes) if blob::sha256_hex(&bytes) == sha256 => Ok(Some(bytes)),
            Some(_) => {
                tracing::warn!(app_id, version, "artifact checksum mismatch; ignoring it");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Makes `version` the app's active version (a rollback is deploying an older one).
    pub fn deploy(&self, app_id: &str, version: u32) -> Result<App, StoreError> {
        let conn = self.conn();
        let mut app = require_app(&conn, app_id)?;
        if load_version(&conn, app_id, version)?.is_none() {
            return Err(version_not_found(app_id, version));
        }
        conn.execute(
            "UPDATE apps SET active_version = ?2 WHERE id = ?1",
            params![app_id, version],
        )?;
        tracing::info!(app_id, version, previous = ?app.active_version, "app deployed");
        app.active_version = Some(version);
        Ok(app)
    }

    /// Binds a number to an app, replacing any earlier binding of that number.
    pub fn set_number(&self, number: &str, app_id: &str) -> Result<NumberRoute, StoreError> {
        validate_number(number)?;
        let conn = self.conn();
        require_app(&conn, app_id)?;
        let route = NumberRoute {
            number: number.to_owned(),
            app_id: app_id.to_owned(),
            updated_at: time::now(),
        };
        conn.execute(
            "INSERT INTO numbers (number, app_id, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (number) DO UPDATE SET
                app_id = excluded.app_id, updated_at = excluded.updated_at",
            params![route.number, route.app_id, time::to_sql(&route.updated_at)],
        )?;
        tracing::info!(app_id, "number bound");
        Ok(route)
    }

    /// All number bindings, ordered by number.
    pub fn list_numbers(&self) -> Result<Vec<NumberRoute>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT number, app_id, updated_at FROM numbers ORDER BY number")?;
        let numbers = stmt
            .query_map([], number_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(numbers)
    }

    /// One number binding, if the number is bound.
    pub fn number(&self, number: &str) -> Result<Option<NumberRoute>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT number, app_id, updated_at FROM numbers WHERE number = ?1",
                [number],
                number_from_row,
            )
            .optional()?)
    }

    /// Removes a number binding; `NotFound` when the number was not bound.
    pub fn delete_number(&self, number: &str) -> Result<(), StoreError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM numbers WHERE number = ?1", [number])?;
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("number {number}")));
        }
        tracing::info!("number unbound");
        Ok(())
    }

    /// Where a call to `number` goes now: its app and that app's active version; `None`
    /// when the number is unbound or the app has nothing deployed.
    pub fn route(&self, number: &str) -> Result<Option<Route>, StoreError> {
        let row: Option<(String, Option<u32>)> = self
            .conn()
            .query_row(
                "SELECT a.id, a.active_version FROM numbers n JOIN apps a ON a.id = n.app_id
                 WHERE n.number = ?1",
                [number],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(app_id, version)| version.map(|version| Route { app_id, version })))
    }
}
