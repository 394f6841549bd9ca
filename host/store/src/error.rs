//! The store's error type: one enum that callers can match on for NotFound, Conflict and
//! Invalid (the user's fault) versus everything else (the host's fault).
//!
//! Invariant: `NotFound`, `Conflict`, `Invalid` and `QuotaExceeded` messages are safe to show to an API client;
//! the other variants may carry paths and SQL details and are for the log.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory cannot be used (not a directory, not writable, ...).
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The directory that was asked for.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The thing named does not exist; the text says what, e.g. `app app_0123456789abcdef`.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule was broken, e.g. an app name already in use.
    #[error("{0}")]
    Conflict(String),
    /// An argument is malformed; `field` names it so the API can point at it.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field or argument at fault, such as `name` or `number`.
        field: &'static str,
        /// What a valid value looks like.
        message: String,
    },
    /// An account quota or an app's key-value limit would be exceeded; the message names
    /// the quota and its value.
    #[error("{message}")]
    QuotaExceeded {
        /// The quota's name, such as `max_apps`, `max_storage_bytes` or `kv_max_bytes`.
        quota: &'static str,
        /// Its value.
        limit: u64,
        /// What was refused and why, for the client.
        message: String,
    },
    /// Stored data does not read back as it was written (bad checksum, bad timestamp, ...).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer build; opening it could lose data.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// The version recorded in the database.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Reading or writing a blob file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an `Invalid` error for `field`.
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }
}
