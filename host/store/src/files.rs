//! Uploaded audio files: metadata rows plus one blob per file under `files/`.
//!
//! Invariants: the blob is renamed into place before its row commits, so `file_exists`
//! (the per-`play` check) being true means the bytes are there; another account's file
//! is treated exactly like a missing one, except by [`Store::file_bytes`], which the
//! server's player calls by id alone.

use rusqlite::{OptionalExtension, Row, params};

use crate::blob::{self, TempBlob};
use crate::model::{FILE_PREFIX, is_id, new_id, validate_content_type, validate_file_name};
use crate::{FILES_DIR, FileMeta, Store, StoreError, accounts, time};

const FILE_COLUMNS: &str = "id, account_id, name, content_type, size, sha256, meta, created_at";

fn file_from_row(row: &Row<'_>) -> rusqlite::Result<FileMeta> {
    let meta: String = row.get(6)?;
    let meta = serde_json::from_str(&meta).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(FileMeta {
        id: row.get(0)?,
        account_id: row.get(1)?,
        name: row.get(2)?,
        content_type: row.get(3)?,
        size: row.get(4)?,
        sha256: row.get(5)?,
        meta,
        created_at: time::get(row, 7)?,
    })
}

impl Store {
    /// Stores an audio file the caller has already validated for `account` and returns
    /// its metadata; `QuotaExceeded` (`max_storage_bytes`) when it would take the account
    /// past its storage quota.
    ///
    /// `meta` is what decoding learnt about it (format, rate, channels, duration_ms, ...).
    pub fn add_file(
        &self,
        account: &str,
        name: Option<String>,
        content_type: &str,
        bytes: &[u8],
        meta: serde_json::Value,
    ) -> Result<FileMeta, StoreError> {
        if let Some(name) = &name {
            validate_file_name(name)?;
        }
        validate_content_type(content_type)?;
        let meta_text =
            serde_json::to_string(&meta).map_err(|e| StoreError::invalid("meta", e.to_string()))?;
        let file = FileMeta {
            id: new_id(FILE_PREFIX),
            account_id: account.to_owned(),
            name,
            content_type: content_type.to_owned(),
            size: bytes.len() as u64,
            sha256: blob::sha256_hex(bytes),
            created_at: time::now(),
            meta,
        };
        accounts::check_storage(&self.conn(), account, file.size)?;
        let temp = TempBlob::write(&self.dir.join(FILES_DIR), bytes)?;
        let conn = self.conn();
        // Checked again under the lock the insert holds, so racing uploads cannot both pass.
        accounts::check_storage(&conn, account, file.size)?;
        temp.persist(&self.file_path(&file.id))?;
        conn.execute(
            &format!("INSERT INTO files ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                file.id,
                file.account_id,
                file.name,
                file.content_type,
                file.size,
                file.sha256,
                meta_text,
                time::to_sql(&file.created_at)
            ],
        )?;
        tracing::info!(file_id = %file.id, size = file.size, "file stored");
        Ok(file)
    }

    /// One of `account`'s files; `None` when it has no such file.
    pub fn file(&self, account: &str, file_id: &str) -> Result<Option<FileMeta>, StoreError> {
        if !is_id(FILE_PREFIX, file_id) {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1 AND account_id = ?2"),
                [file_id, account],
                file_from_row,
            )
            .optional()?)
    }

    /// `account`'s files, oldest first.
    pub fn list_files(&self, account: &str) -> Result<Vec<FileMeta>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE account_id = ?1 ORDER BY created_at, id"
        ))?;
        let files = stmt
            .query_map([account], file_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(files)
    }

    /// True when `account` has a file with this id; cheap enough to call on every `play`.
    pub fn file_exists(&self, account: &str, file_id: &str) -> Result<bool, StoreError> {
        if !is_id(FILE_PREFIX, file_id) {
            return Ok(false);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM files WHERE id = ?1 AND account_id = ?2",
                [file_id, account],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// A file's bytes by id alone; `NotFound` when there is no such file. Unscoped: the
    /// player calls it after `file_exists` checked the call's account; the API checks
    /// the account with [`Store::file`] first.
    pub fn file_bytes(&self, file_id: &str) -> Result<Vec<u8>, StoreError> {
        let exists = is_id(FILE_PREFIX, file_id)
            && self
                .conn()
                .query_row("SELECT 1 FROM files WHERE id = ?1", [file_id], |_| Ok(()))
                .optional()?
                .is_some();
        if !exists {
            return Err(StoreError::NotFound(format!("file {file_id}")));
        }
        let path = self.file_path(file_id);
        blob::read(&path)?
            .ok_or_else(|| StoreError::Corrupt(format!("file {} is missing", path.display())))
    }
}
