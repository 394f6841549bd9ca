//! Apps, their versions (component blobs), the compiled-artifact cache, deploys and the
//! number → app bindings.
//!
//! Invariants: version numbers count up per app (1, 2, ...) from the app's `last_version`
//! counter, assigned under the connection lock, and are never reused after a version is
//! deleted (the server caches compiled code by number); a component blob is renamed into
//! place before its row commits; an artifact is only returned for the exact engine key it
//! was stored with and only if its checksum still matches (wasmtime trusts artifact bytes,
//! so a damaged one must never load).
//!
//! Scoping: every method taking `account` treats another account's app or number exactly
//! like a missing one. Numbers are unique across the server (SIP routes them without an
//! account), so binding one that another account holds is a `Conflict` that says only
//! that it is taken. Unscoped on purpose, for the server: [`Store::route`],
//! [`Store::version_bytes`], [`Store::stored_version`], [`Store::artifact`],
//! [`Store::put_artifact`] and [`Store::app_account`].

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::blob::{self, TempBlob};
use crate::model::{APP_PREFIX, is_id, new_id};
use crate::{
    ARTIFACTS_DIR, App, COMPONENTS_DIR, NumberRoute, Route, Store, StoreError, Version, accounts,
    time, validate_app_name, validate_number,
};

const APP_COLUMNS: &str = "id, account_id, name, created_at, active_version";
const VERSION_COLUMNS: &str = "app_id, version, sha256, size, created_at";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    Ok(App {
        id: row.get(0)?,
        account_id: row.get(1)?,
        name: row.get(2)?,
        created_at: time::get(row, 3)?,
        active_version: row.get(4)?,
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
        account_id: row.get(2)?,
        updated_at: time::get(row, 3)?,
    })
}

fn app_not_found(app_id: &str) -> StoreError {
    StoreError::NotFound(format!("app {app_id}"))
}

fn version_not_found(app_id: &str, version: u32) -> StoreError {
    StoreError::NotFound(format!("version {version} of app {app_id}"))
}

const NUMBER_COLUMNS: &str = "number, app_id, account_id, updated_at";

/// Loads `account`'s app by id on an already locked connection.
fn load_app(conn: &Connection, account: &str, app_id: &str) -> Result<Option<App>, StoreError> {
    if !is_id(APP_PREFIX, app_id) {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            &format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1 AND account_id = ?2"),
            [app_id, account],
            app_from_row,
        )
        .optional()?)
}

/// Loads `account`'s app by id or fails with `NotFound`.
pub(crate) fn require_app(
    conn: &Connection,
    account: &str,
    app_id: &str,
) -> Result<App, StoreError> {
    load_app(conn, account, app_id)?.ok_or_else(|| app_not_found(app_id))
}

/// Fails with `NotFound` unless the app has this version stored.
pub(crate) fn require_version(
    conn: &Connection,
    app_id: &str,
    version: u32,
) -> Result<Version, StoreError> {
    load_version(conn, app_id, version)?.ok_or_else(|| version_not_found(app_id, version))
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
    /// Creates an app with a name unique in `account`; `Conflict` when the name is taken,
    /// `QuotaExceeded` (`max_apps`) when the account has as many apps as it may.
    pub fn create_app(&self, account: &str, name: &str) -> Result<App, StoreError> {
        validate_app_name(name)?;
        let app = App {
            id: new_id(APP_PREFIX),
            account_id: account.to_owned(),
            name: name.to_owned(),
            created_at: time::now(),
            active_version: None,
        };
        let conn = self.conn();
        if let Some(limit) = accounts::quotas(&conn, account)?.max_apps {
            let count: i64 = conn.query_row(
                "SELECT COUNT(*) FROM apps WHERE account_id = ?1",
                [account],
                |row| row.get(0),
            )?;
            if count >= i64::from(limit) {
                return Err(StoreError::QuotaExceeded {
                    quota: "max_apps",
                    limit: u64::from(limit),
                    message: format!(
                        "the account already has {count} apps; its quota is max_apps = {limit}"
                    ),
                });
            }
        }
        let taken = conn
            .query_row(
                "SELECT 1 FROM apps WHERE account_id = ?1 AND name = ?2",
                [account, name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if taken {
            return Err(StoreError::Conflict(format!(
                "an app named {name:?} already exists"
            )));
        }
        conn.execute(
            "INSERT INTO apps (id, account_id, name, created_at, active_version, last_version)
             VALUES (?1, ?2, ?3, ?4, NULL, 0)",
            params![app.id, account, app.name, time::to_sql(&app.created_at)],
        )?;
        tracing::info!(app_id = %app.id, account_id = account, name = %app.name, "app created");
        Ok(app)
    }

    /// `account`'s apps, oldest first.
    pub fn list_apps(&self, account: &str) -> Result<Vec<App>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE account_id = ?1 ORDER BY created_at, id"
        ))?;
        let apps = stmt
            .query_map([account], app_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(apps)
    }

    /// One of `account`'s apps by id; `None` when there is none (including a malformed
    /// id or another account's app).
    pub fn app(&self, account: &str, app_id: &str) -> Result<Option<App>, StoreError> {
        load_app(&self.conn(), account, app_id)
    }

    /// The account that owns an app, whatever it is. Unscoped, for the server, which
    /// knows an app only by id (hand-over, a call's app).
    pub fn app_account(&self, app_id: &str) -> Result<Option<String>, StoreError> {
        if !is_id(APP_PREFIX, app_id) {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT account_id FROM apps WHERE id = ?1",
                [app_id],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Stores a new version of `account`'s app and returns it (not yet deployed);
    /// `QuotaExceeded` (`max_storage_bytes`) when it would take the account past its
    /// storage quota.
    ///
    /// The caller validates the component first; the store only keeps bytes.
    pub fn add_version(
        &self,
        account: &str,
        app_id: &str,
        component: &[u8],
    ) -> Result<Version, StoreError> {
        {
            let conn = self.conn();
            require_app(&conn, account, app_id)?;
            accounts::check_storage(&conn, account, component.len() as u64)?;
        }
        let sha256 = blob::sha256_hex(component);
        // The slow part (writing and syncing the bytes) runs without the lock.
        let temp = TempBlob::write(&self.dir.join(COMPONENTS_DIR), component)?;
        let created_at = time::now();

        let mut conn = self.conn();
        // Checked again under the lock that the insert holds, so two uploads racing
        // cannot both pass the quota.
        require_app(&conn, account, app_id)?;
        accounts::check_storage(&conn, account, component.len() as u64)?;
        let tx = conn.transaction()?;
        let last: u32 = tx.query_row(
            "SELECT last_version FROM apps WHERE id = ?1",
            [app_id],
            |row| row.get(0),
        )?;
        let version = last
            .checked_add(1)
            .ok_or_else(|| StoreError::Conflict(format!("app {app_id} has too many versions")))?;
        temp.persist(&self.component_path(app_id, version))?;
        let size = component.len() as u64;
        tx.execute(
            "INSERT INTO versions (app_id, version, sha256, size, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![app_id, version, sha256, size, time::to_sql(&created_at)],
        )?;
        tx.execute(
            "UPDATE apps SET last_version = ?2 WHERE id = ?1",
            params![app_id, version],
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

    /// An app's versions, oldest first; `NotFound` when `account` has no such app.
    pub fn versions(&self, account: &str, app_id: &str) -> Result<Vec<Version>, StoreError> {
        let conn = self.conn();
        require_app(&conn, account, app_id)?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE app_id = ?1 ORDER BY version"
        ))?;
        let versions = stmt
            .query_map([app_id], version_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(versions)
    }

    /// One version's metadata; `None` when `account` has no such app or the version does
    /// not exist.
    pub fn version(
        &self,
        account: &str,
        app_id: &str,
        version: u32,
    ) -> Result<Option<Version>, StoreError> {
        let conn = self.conn();
        if load_app(&conn, account, app_id)?.is_none() {
            return Ok(None);
        }
        load_version(&conn, app_id, version)
    }

    /// One version's metadata whatever the app's account. Unscoped, for the server's
    /// loader, which knows an app by id alone.
    pub fn stored_version(
        &self,
        app_id: &str,
        version: u32,
    ) -> Result<Option<Version>, StoreError> {
        if !is_id(APP_PREFIX, app_id) {
            return Ok(None);
        }
        load_version(&self.conn(), app_id, version)
    }

    /// The component bytes of a version, checked against their recorded SHA-256.
    /// Unscoped, for the server's loader; the API checks the app's account first.
    pub fn version_bytes(&self, app_id: &str, version: u32) -> Result<Vec<u8>, StoreError> {
        let meta = self
            .stored_version(app_id, version)?
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
        if self.stored_version(app_id, version)?.is_none() {
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

    /// Makes `version` the app's active version; any stored version may be deployed, so
    /// a rollback is deploying an older one.
    pub fn deploy(&self, account: &str, app_id: &str, version: u32) -> Result<App, StoreError> {
        let conn = self.conn();
        let mut app = require_app(&conn, account, app_id)?;
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

    /// Takes the app's active version away, so no new call can start it (its numbers route
    /// nowhere, and a hand-over or an outbound call finds nothing deployed); returns the
    /// version that was active. Deleting an app starts here.
    pub fn undeploy(&self, account: &str, app_id: &str) -> Result<Option<u32>, StoreError> {
        let conn = self.conn();
        let app = require_app(&conn, account, app_id)?;
        conn.execute(
            "UPDATE apps SET active_version = NULL WHERE id = ?1",
            [app_id],
        )?;
        tracing::info!(app_id, previous = ?app.active_version, "app undeployed");
        Ok(app.active_version)
    }

    /// Makes `version` active again after [`Self::undeploy`], unless another version was
    /// deployed since (that deploy stands).
    pub fn redeploy_if_undeployed(
        &self,
        account: &str,
        app_id: &str,
        version: u32,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        require_app(&conn, account, app_id)?;
        conn.execute(
            "UPDATE apps SET active_version = ?2 WHERE id = ?1 AND active_version IS NULL",
            params![app_id, version],
        )?;
        Ok(())
    }

    /// Deletes a stored version that is not the active one, with its component and
    /// compiled artifact and its version-specific configuration. `Conflict` for the
    /// active version; the caller checks first that no live call runs it.
    pub fn delete_version(
        &self,
        account: &str,
        app_id: &str,
        version: u32,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let app = require_app(&conn, account, app_id)?;
        require_version(&conn, app_id, version)?;
        if app.active_version == Some(version) {
            return Err(StoreError::Conflict(format!(
                "version {version} is the active version of app {app_id}; deploy another first"
            )));
        }
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM app_config WHERE app_id = ?1 AND version = ?2",
            params![app_id, version],
        )?;
        tx.execute(
            "DELETE FROM artifacts WHERE app_id = ?1 AND version = ?2",
            params![app_id, version],
        )?;
        tx.execute(
            "DELETE FROM versions WHERE app_id = ?1 AND version = ?2",
            params![app_id, version],
        )?;
        tx.commit()?;
        self.remove_version_files(app_id, version);
        tracing::info!(app_id, version, "app version deleted");
        Ok(())
    }

    /// Removes a deleted version's component and compiled artifact, logging (not failing
    /// on) a file that cannot be removed. Called after the rows' deletion is committed:
    /// an orphan file is harmless, a row naming a missing one is not.
    fn remove_version_files(&self, app_id: &str, version: u32) {
        for path in [
            self.component_path(app_id, version),
            self.artifact_path(app_id, version),
        ] {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a version file");
            }
        }
    }

    /// Deletes one of `account`'s apps with everything that is only its own: its versions
    /// (components and compiled artifacts), the numbers bound to it (they become unbound),
    /// its settings, configuration and secrets, and its kv state. Call history, events and
    /// recordings stay (they name the app by id). The caller checks first that no live
    /// call runs any of its versions (after [`Self::undeploy`], so none can start).
    pub fn delete_app(&self, account: &str, app_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        require_app(&conn, account, app_id)?;
        let versions: Vec<u32> = conn
            .prepare("SELECT version FROM versions WHERE app_id = ?1")?
            .query_map([app_id], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let tx = conn.transaction()?;
        // Explicit rather than left to ON DELETE CASCADE, so a database whose tables were
        // rebuilt by a migration cannot keep orphans.
        for table in [
            "kv",
            "app_config",
            "app_settings",
            "numbers",
            "artifacts",
            "versions",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE app_id = ?1"), [app_id])?;
        }
        tx.execute("DELETE FROM apps WHERE id = ?1", [app_id])?;
        tx.commit()?;
        for version in versions {
            self.remove_version_files(app_id, version);
        }
        tracing::info!(app_id, "app deleted");
        Ok(())
    }

    /// Binds a number to one of `account`'s apps, replacing the account's earlier binding
    /// of it. Numbers are unique across the server: one bound by another account is a
    /// `Conflict` ("number is taken").
    pub fn set_number(
        &self,
        account: &str,
        number: &str,
        app_id: &str,
    ) -> Result<NumberRoute, StoreError> {
        validate_number(number)?;
        let conn = self.conn();
        require_app(&conn, account, app_id)?;
        let owner: Option<String> = conn
            .query_row(
                "SELECT account_id FROM numbers WHERE number = ?1",
                [number],
                |row| row.get(0),
            )
            .optional()?;
        if owner.is_some_and(|owner| owner != account) {
            return Err(StoreError::Conflict("number is taken".into()));
        }
        let route = NumberRoute {
            number: number.to_owned(),
            app_id: app_id.to_owned(),
            account_id: account.to_owned(),
            updated_at: time::now(),
        };
        conn.execute(
            &format!(
                "INSERT INTO numbers ({NUMBER_COLUMNS}) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (number) DO UPDATE SET
                    app_id = excluded.app_id, updated_at = excluded.updated_at"
            ),
            params![
                route.number,
                route.app_id,
                account,
                time::to_sql(&route.updated_at)
            ],
        )?;
        tracing::info!(app_id, account_id = account, "number bound");
        Ok(route)
    }

    /// `account`'s number bindings, ordered by number.
    pub fn list_numbers(&self, account: &str) -> Result<Vec<NumberRoute>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {NUMBER_COLUMNS} FROM numbers WHERE account_id = ?1 ORDER BY number"
        ))?;
        let numbers = stmt
            .query_map([account], number_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(numbers)
    }

    /// One of `account`'s number bindings; `None` when the account has not bound it.
    pub fn number(&self, account: &str, number: &str) -> Result<Option<NumberRoute>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {NUMBER_COLUMNS} FROM numbers WHERE number = ?1 AND account_id = ?2"
                ),
                [number, account],
                number_from_row,
            )
            .optional()?)
    }

    /// Removes one of `account`'s number bindings; `NotFound` when it has not bound it.
    pub fn delete_number(&self, account: &str, number: &str) -> Result<(), StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM numbers WHERE number = ?1 AND account_id = ?2",
            [number, account],
        )?;
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("number {number}")));
        }
        tracing::info!("number unbound");
        Ok(())
    }

    /// Where a call to `number` goes now: its app, the app's account and its active
    /// version; `None` when the number is unbound or the app has nothing deployed.
    /// Unscoped: SIP routes a number before it knows an account.
    pub fn route(&self, number: &str) -> Result<Option<Route>, StoreError> {
        let row: Option<(String, String, Option<u32>)> = self
            .conn()
            .query_row(
                "SELECT a.id, a.account_id, a.active_version
                 FROM numbers n JOIN apps a ON a.id = n.app_id
                 WHERE n.number = ?1",
                [number],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        Ok(row.and_then(|(app_id, account_id, version)| {
            version.map(|version| Route {
                app_id,
                account_id,
                version,
            })
        }))
    }
}
